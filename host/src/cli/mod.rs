//! The command line, compatible with axs 0.2, parsed into a resolved [`Config`], and
//! that config as the core's values ([`server`]).
//!
//! Pure: the caller passes the arguments (and clap reads `AXS_TOKEN` and
//! `AXS_VIEW_TOKEN`, the environment values that are flags too); resolving the LAN
//! address of `-i` ([`crate::net`]) and the login shell ([`crate::program`]) happen
//! elsewhere.
//! Invariant: a [`Config`] that parsed has a (full) token whenever the bind is not
//! loopback, and then every token it has is at least [`MIN_LAN_TOKEN_LEN`] characters;
//! neither token is ever printed.

mod core_config;
mod split;

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;

use axs_core::api::AttachPolicy;
pub use core_config::{policy, server, server_config};
pub use split::{split_command, SplitError};

/// Default port, as in axs 0.2.
pub const DEFAULT_PORT: u16 = 8767;
/// Default scrollback per session: 256 KiB.
pub const DEFAULT_SCROLLBACK: usize = 256 * 1024;
/// Smallest scrollback: 4 KiB (one screen of a large terminal, roughly).
pub const MIN_SCROLLBACK: usize = 4 * 1024;
/// Largest scrollback: 1 GiB, so a typo cannot reserve the machine's memory per session.
pub const MAX_SCROLLBACK: usize = 1024 * 1024 * 1024;
/// Default session limit: 64 live sessions, far above what an editor opens, low
/// enough that a runaway client cannot start thousands of shells.
pub const DEFAULT_MAX_SESSIONS: usize = 64;
/// Default retention of an exited session for late reconnects: 5 minutes.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(300);
/// Default stall timeout after which a non-reading client stops holding the program back.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Shortest token accepted when listening beyond loopback: 16 characters, so guessing
/// it over the network is hopeless.
pub const MIN_LAN_TOKEN_LEN: usize = 16;

/// The environment variables `axs --help` documents.
const AFTER_HELP: &str = "\
Environment:
  AXS_TOKEN       the token, instead of --token (keeps it out of the process list)
  AXS_VIEW_TOKEN  the view token, instead of --view-token
                  (spawned programs see neither token)
  AXS_READY_PIPE  path of a FIFO: axs writes \"READY\" once it listens, or \"ERROR <reason>\"
                  if start-up fails; spawned programs do not see this variable
  RUST_LOG        log filter (logs are off by default), e.g. RUST_LOG=info or RUST_LOG=debug
  AXS_PTY_PEER    set to 1 to always obtain pty slaves with TIOCGPTPEER (the fallback for
                  systems that deny opening /dev/pts/N)

API: GET /status, POST /terminals, GET /terminals/{id} (WebSocket),
     POST /terminals/{id}/resize, POST /terminals/{id}/terminate, POST /execute-command";

/// Where the listener binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// `127.0.0.1` (the default).
    Loopback,
    /// The machine's LAN address (`-i` without a value), resolved by the runtime.
    Lan,
    /// This address (`-i ADDR`).
    Addr(IpAddr),
}

impl Bind {
    /// True when only this machine can connect.
    pub fn is_loopback(self) -> bool {
        match self {
            Bind::Loopback => true,
            Bind::Lan => false,
            Bind::Addr(ip) => ip.is_loopback(),
        }
    }
}

/// The resolved configuration of a server.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// TCP port (`0`: any free port).
    pub port: u16,
    /// Address to bind.
    pub bind: Bind,
    /// Program and arguments of each session; `None`: the user's login shell, as a login shell.
    pub command: Option<Vec<String>>,
    /// Accept requests from any `Origin`.
    pub allow_any_origin: bool,
    /// The API token, when set (required unless `bind` is loopback).
    pub token: Option<String>,
    /// The view token, when set: it only lets a client watch (attach as a viewer).
    pub view_token: Option<String>,
    /// Scrollback (ring size) per session, in bytes.
    pub scrollback: usize,
    /// Attach policy for clients that do not choose one.
    pub attach: AttachPolicy,
    /// Most sessions alive at once (503 beyond).
    pub max_sessions: usize,
    /// How long an exited session stays for late reconnects.
    pub retention: Duration,
    /// How long a client may make no progress before it stops holding the program back.
    pub stall_timeout: Duration,
}

impl Default for Config {
    /// The configuration of `axs` without arguments.
    fn default() -> Config {
        Config {
            port: DEFAULT_PORT,
            bind: Bind::Loopback,
            command: None,
            allow_any_origin: false,
            token: None,
            view_token: None,
            scrollback: DEFAULT_SCROLLBACK,
            attach: AttachPolicy::Shared,
            max_sessions: DEFAULT_MAX_SESSIONS,
            retention: DEFAULT_RETENTION,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        }
    }
}

impl fmt::Debug for Config {
    /// Never prints the token itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("port", &self.port)
            .field("bind", &self.bind)
            .field("command", &self.command)
            .field("allow_any_origin", &self.allow_any_origin)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("view_token", &self.view_token.as_ref().map(|_| "<set>"))
            .field("scrollback", &self.scrollback)
            .field("attach", &self.attach)
            .field("max_sessions", &self.max_sessions)
            .field("retention", &self.retention)
            .field("stall_timeout", &self.stall_timeout)
            .finish()
    }
}

/// Parsing stopped: print `message` (to stdout or stderr) and exit with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliExit {
    /// The text to print (help, version, or the error).
    pub message: String,
    /// Print to stdout (help, version) rather than stderr (errors).
    pub to_stdout: bool,
    /// The process exit code: 0 for help and version, 2 for usage errors.
    pub code: i32,
}

impl CliExit {
    /// A usage error: one line on stderr, exit code 2 (the convention clap follows too).
    pub(crate) fn usage(message: impl fmt::Display) -> CliExit {
        CliExit {
            message: format!("error: {message} (see 'axs --help')\n"),
            to_stdout: false,
            code: 2,
        }
    }
}

impl From<clap::Error> for CliExit {
    /// Help and version as clap renders them; errors reduced to their first line, so a
    /// client that shows the server's stderr in a terminal shows one clear line.
    fn from(err: clap::Error) -> CliExit {
        let rendered = err.render().to_string();
        if !err.use_stderr() {
            return CliExit {
                message: rendered,
                to_stdout: true,
                code: err.exit_code(),
            };
        }
        let first = rendered
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("error");
        let mut reason = first.strip_prefix("error: ").unwrap_or(first).to_string();
        // A bad `--attach` value: the choices are worth the rest of the line.
        if let Some(choices) = rendered.lines().find(|l| l.contains("possible values")) {
            reason.push(' ');
            reason.push_str(choices.trim());
        }
        CliExit {
            code: err.exit_code(),
            ..CliExit::usage(reason)
        }
    }
}

/// `--attach` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AttachArg {
    /// Every client gets all output and may type; the newest resize wins.
    Shared,
    /// The newest client owns the session; older clients are detached.
    Takeover,
}

/// The flags, as clap sees them.
#[derive(Debug, Parser)]
#[command(
    name = "axs",
    version,
    about = "Serve interactive terminals over HTTP and WebSocket (compatible with the axs 0.2 API)",
    after_help = AFTER_HELP
)]
struct Args {
    /// Port to listen on (0: any free port)
    #[arg(short = 'p', long = "port", value_name = "PORT", default_value_t = DEFAULT_PORT)]
    port: u16,

    /// Listen on the machine's LAN address instead of 127.0.0.1, or on ADDR when given;
    /// requires --token unless ADDR is a loopback address
    #[arg(short = 'i', long = "ip", value_name = "ADDR", num_args = 0..=1)]
    ip: Option<Option<IpAddr>>,

    /// Program to run in each terminal, with its arguments, split like a shell would
    /// (quotes and backslashes; no variables or globs) [default: your login shell]
    #[arg(short = 'c', long = "command", value_name = "COMMAND")]
    command: Option<String>,

    /// Accept WebSocket upgrades and POSTs from any web page's Origin (by default only
    /// https://localhost, http://localhost and this server's own origins)
    #[arg(long)]
    allow_any_origin: bool,

    /// Require this token on every request but GET /status: header
    /// `Authorization: Bearer TOKEN` or `X-Axs-Token: TOKEN`, or query `?token=TOKEN`
    #[arg(long, value_name = "TOKEN", env = "AXS_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// A second token that only lets a client watch: with it a client may attach to
    /// sessions as a read-only viewer (and GET /status); anything else answers 403
    #[arg(
        long,
        value_name = "TOKEN",
        env = "AXS_VIEW_TOKEN",
        hide_env_values = true
    )]
    view_token: Option<String>,

    /// Output kept per session for replay on reconnect, in bytes; suffixes K, M, G
    /// (powers of 1024); at least 4K
    #[arg(long, value_name = "BYTES", default_value = "256K", value_parser = parse_size)]
    scrollback: usize,

    /// How clients share a session unless they ask (`?attach=`)
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = AttachArg::Shared)]
    attach: AttachArg,

    /// Most sessions alive at once; creating more answers 503
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SESSIONS,
          value_parser = parse_max_sessions)]
    max_sessions: usize,

    /// Seconds an exited session is kept so a late reconnect still sees its output and exit
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_RETENTION.as_secs())]
    retention: u64,

    /// Seconds a client may read nothing before it stops holding the program back
    /// (it is not disconnected; it resumes from newer output)
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_STALL_TIMEOUT.as_secs(),
          value_parser = parse_stall_timeout)]
    stall_timeout: u64,
}

/// Parses the command line (the first item is the program name) into a [`Config`].
pub fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Config, CliExit> {
    let args = Args::try_parse_from(args)?;
    let command = match &args.command {
        Some(line) => Some(parse_command(line)?),
        None => None,
    };
    let bind = match args.ip {
        None => Bind::Loopback,
        Some(None) => Bind::Lan,
        Some(Some(ip)) => Bind::Addr(ip),
    };
    let token = check_token(args.token, bind)?;
    let view_token = check_view_token(args.view_token, token.as_deref(), bind)?;
    Ok(Config {
        port: args.port,
        bind,
        command,
        allow_any_origin: args.allow_any_origin,
        token,
        view_token,
        scrollback: args.scrollback,
        attach: match args.attach {
            AttachArg::Shared => AttachPolicy::Shared,
            AttachArg::Takeover => AttachPolicy::Takeover,
        },
        max_sessions: args.max_sessions,
        retention: Duration::from_secs(args.retention),
        stall_timeout: Duration::from_secs(args.stall_timeout),
    })
}

/// Splits `-c`; an empty command is an error.
fn parse_command(line: &str) -> Result<Vec<String>, CliExit> {
    let words = split_command(line).map_err(|e| CliExit::usage(format!("-c/--command: {e}")))?;
    if words.is_empty() {
        return Err(CliExit::usage("-c/--command: the command is empty"));
    }
    Ok(words)
}

/// Validates the token without ever echoing it: printable ASCII without spaces (it
/// travels in headers and URLs), present whenever the bind is not loopback, and then at
/// least [`MIN_LAN_TOKEN_LEN`] characters.
pub(crate) fn check_token(token: Option<String>, bind: Bind) -> Result<Option<String>, CliExit> {
    match token {
        None if !bind.is_loopback() => Err(CliExit::usage(
            "--token (or AXS_TOKEN) is required when listening on a non-loopback address (-i): \
             without it anyone on the network could open a shell (a --view-token alone is \
             not enough)",
        )),
        None => Ok(None),
        Some(t) => check_token_text(&t, "the token (--token or AXS_TOKEN)", bind).map(|()| Some(t)),
    }
}

/// Validates the view token like the token; it must differ from the token (else it
/// would give full rights).
fn check_view_token(
    view_token: Option<String>,
    token: Option<&str>,
    bind: Bind,
) -> Result<Option<String>, CliExit> {
    let Some(v) = view_token else {
        return Ok(None);
    };
    check_token_text(&v, "the view token (--view-token or AXS_VIEW_TOKEN)", bind)?;
    if token == Some(v.as_str()) {
        return Err(CliExit::usage(
            "the view token (--view-token or AXS_VIEW_TOKEN) must differ from the token",
        ));
    }
    Ok(Some(v))
}

/// The rules every token follows; `what` names it in the message (never its value).
fn check_token_text(token: &str, what: &str, bind: Bind) -> Result<(), CliExit> {
    if token.is_empty() {
        return Err(CliExit::usage(format!("{what} is empty")));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CliExit::usage(format!(
            "{what} may only contain printable ASCII without spaces"
        )));
    }
    if !bind.is_loopback() && token.len() < MIN_LAN_TOKEN_LEN {
        return Err(CliExit::usage(format!(
            "{what} is {} characters long; listening beyond loopback (-i) needs at least \
             {MIN_LAN_TOKEN_LEN}, e.g. from `head -c 18 /dev/urandom | base64`",
            token.len()
        )));
    }
    Ok(())
}

/// Lines to print on stderr at start-up about risky but allowed configurations.
pub fn startup_warnings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    if config.allow_any_origin && config.token.is_none() {
        warnings.push(
            "warning: --allow-any-origin without --token: any web page open in a browser on \
             this machine can open a shell here"
                .to_string(),
        );
    }
    warnings
}

/// Parses a byte size like `262144`, `64K`, `1M`, `1MiB`, `2g` (powers of 1024), within
/// [`MIN_SCROLLBACK`]..=[`MAX_SCROLLBACK`].
fn parse_size(value: &str) -> Result<usize, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, suffix) = value.split_at(split);
    let number: usize = digits
        .parse()
        .map_err(|_| format!("expected a size like 262144, 64K or 1M, got {value:?}"))?;
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("unknown size suffix {suffix:?} (use K, M or G)")),
    };
    let bytes = number
        .checked_mul(1usize << shift)
        .filter(|b| *b <= MAX_SCROLLBACK)
        .ok_or_else(|| "must be at most 1G".to_string())?;
    if bytes < MIN_SCROLLBACK {
        return Err("must be at least 4K (4096 bytes)".into());
    }
    Ok(bytes)
}

/// Parses `--max-sessions`: 1..=10000.
fn parse_max_sessions(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err("expected a number from 1 to 10000".into()),
    }
}

/// Parses `--stall-timeout`: whole seconds, at least 1.
fn parse_stall_timeout(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected whole seconds, at least 1".into()),
    }
}

#[cfg(test)]
mod tests;
