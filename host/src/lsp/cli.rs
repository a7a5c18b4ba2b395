//! `axs lsp [--session S] [--port N] [-i [ADDR]] [--token T] [--allow-any-origin] SERVER
//! [-- ARGS...]`, parsed into an [`LspConfig`].
//!
//! Invariants: a parsed config has a token whenever the bind is not loopback (as for the
//! terminal server), and a session name that is safe as part of a file name.

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;

use clap::Parser;

use crate::cli::{check_token, Bind, CliExit};

/// The subcommand's name: `axs lsp ...`.
pub const SUBCOMMAND: &str = "lsp";

/// What `axs lsp` was asked for.
#[derive(Clone, PartialEq, Eq)]
pub struct LspConfig {
    /// The port file's suffix; `None`: the bridge's pid.
    pub session: Option<String>,
    /// TCP port (`0`: any free port, the default).
    pub port: u16,
    /// Address to bind.
    pub bind: Bind,
    /// The token every request but `GET /status` and preflights needs, when set.
    pub token: Option<String>,
    /// Accept WebSocket upgrades from any `Origin`.
    pub allow_any_origin: bool,
    /// The language server, as given (a name looked up in `PATH`, or a path).
    pub program: String,
    /// Its arguments (after `--`).
    pub args: Vec<String>,
}

impl fmt::Debug for LspConfig {
    /// Never prints the token itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LspConfig")
            .field("session", &self.session)
            .field("port", &self.port)
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("allow_any_origin", &self.allow_any_origin)
            .field("program", &self.program)
            .field("args", &self.args)
            .finish()
    }
}

/// The flags, as clap sees them.
#[derive(Debug, Parser)]
#[command(
    name = "axs lsp",
    version,
    about = "Bridge a stdio language server to a WebSocket: each socket at / is one \
             server process; GET /status tells whether the bridge is alive",
    after_help = "The port goes to ~/.axs/lsp_ports/<basename of SERVER>_<SESSION or bridge \
                  pid>, then `listening on 127.0.0.1:<port>` is printed on stdout."
)]
struct LspArgs {
    /// Name of the port file's suffix (default: the bridge's pid)
    #[arg(long, value_name = "S")]
    session: Option<String>,

    /// Port to listen on (0: any free port)
    #[arg(short = 'p', long = "port", value_name = "PORT", default_value_t = 0)]
    port: u16,

    /// Listen on the machine's LAN address instead of 127.0.0.1, or on ADDR when given;
    /// requires --token unless ADDR is a loopback address
    #[arg(short = 'i', long = "ip", value_name = "ADDR", num_args = 0..=1)]
    ip: Option<Option<IpAddr>>,

    /// Require this token on every request but GET /status (header
    /// `Authorization: Bearer TOKEN` or `X-Axs-Token: TOKEN`, or query `?token=TOKEN`)
    #[arg(long, value_name = "TOKEN", env = "AXS_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Accept WebSocket upgrades from any web page's Origin
    #[arg(long)]
    allow_any_origin: bool,

    /// The language server: a program name looked up in PATH, or a path
    #[arg(value_name = "SERVER")]
    server: String,

    /// Arguments for the language server
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

/// Whether the command line asks for the bridge: its first argument is `lsp`.
pub fn is_lsp_command(args: &[OsString]) -> bool {
    args.get(1).is_some_and(|a| a == SUBCOMMAND)
}

/// Parses `axs lsp ...` (the first item is the program name, the second `lsp`).
pub fn parse_lsp_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<LspConfig, CliExit> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.len() >= 2 && args[1] == SUBCOMMAND {
        args.remove(1);
    }
    let parsed = LspArgs::try_parse_from(args)?;
    let bind = match parsed.ip {
        None => Bind::Loopback,
        Some(None) => Bind::Lan,
        Some(Some(ip)) => Bind::Addr(ip),
    };
    let session = parsed.session.map(check_session).transpose()?;
    if parsed.server.is_empty() {
        return Err(CliExit::usage("the language server (SERVER) is empty"));
    }
    Ok(LspConfig {
        session,
        port: parsed.port,
        bind,
        token: check_token(parsed.token, bind)?,
        allow_any_origin: parsed.allow_any_origin,
        program: parsed.server,
        args: parsed.args,
    })
}

/// A session name becomes part of a file name: no `/`, no NUL, not empty.
fn check_session(session: String) -> Result<String, CliExit> {
    if session.is_empty() || session.contains(['/', '\0']) {
        return Err(CliExit::usage(
            "--session: expected a name without `/` (it names the port file)",
        ));
    }
    Ok(session)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<LspConfig, CliExit> {
        let all = ["axs", "lsp"].iter().chain(args).map(OsString::from);
        parse_lsp_args(all)
    }

    #[test]
    fn the_editors_command_line() {
        let c = parse(&["--session", "s1", "--port", "0", "pylsp", "--", "-v", "--x"]).unwrap();
        assert_eq!(c.session.as_deref(), Some("s1"));
        assert_eq!((c.port, c.bind), (0, Bind::Loopback));
        assert_eq!(c.program, "pylsp");
        assert_eq!(c.args, ["-v", "--x"]);
        let c = parse(&["typescript-language-server", "--", "--stdio"]).unwrap();
        assert_eq!(c.session, None);
        assert_eq!(c.args, ["--stdio"]);
        assert!(!c.allow_any_origin && c.token.is_none());
    }

    #[test]
    fn flags_and_errors() {
        let c = parse(&["--allow-any-origin", "--token", "t0k", "-p", "9000", "x"]).unwrap();
        assert!(c.allow_any_origin);
        assert_eq!((c.token.as_deref(), c.port), (Some("t0k"), 9000));
        assert!(format!("{c:?}").contains("<set>") && !format!("{c:?}").contains("t0k"));
        assert_eq!(parse(&[]).unwrap_err().code, 2);
        assert_eq!(parse(&["--session", "a/b", "x"]).unwrap_err().code, 2);
        assert_eq!(parse(&["-i", "x"]).unwrap_err().code, 2, "-i needs a token");
        assert!(parse(&["-i", "127.0.0.1", "x"]).is_ok());
        let help = parse(&["--help"]).unwrap_err();
        assert_eq!(help.code, 0);
        assert!(help.message.contains("SERVER"), "{}", help.message);
    }

    #[test]
    fn only_lsp_as_first_argument_selects_the_bridge() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(is_lsp_command(&args(&["axs", "lsp", "pylsp"])));
        assert!(!is_lsp_command(&args(&["axs", "-p", "lsp"])));
        assert!(!is_lsp_command(&args(&["axs"])));
    }
}
