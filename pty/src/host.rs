//! What both runtimes do the same way around the core: start-up ([`start_up`]: logging,
//! the command line, the session program, the listener, the ready-pipe outcome), spawning
//! sessions and `execute-command` jobs, and exit statuses as the core wants them.
//!
//! No policy lives here: what to do is decided by the core; this is how to ask the OS.
//! Nothing here sends network traffic.

use std::ffi::{CStr, OsString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use axs_core::api::TermSize;
use axs_core::cli::{self, Bind, CliExit, Config};
use axs_core::server::{CommandJob, CommandResult, Server};
use axs_core::time::Time;

use crate::pty::WinSize;
use crate::ready_pipe::{self, DEFAULT_READY_TIMEOUT};
use crate::spawn::{plain, spawn, SpawnError, SpawnOptions, Spawned};
use crate::status::{signal_name, ExitStatus};

/// What [`start_up`] prepared for a runtime.
#[derive(Debug)]
pub struct StartUp {
    /// The core, configured from the command line.
    pub server: Server,
    /// What every session runs; [`spawn_session`] sets the size per session.
    pub program: SpawnOptions,
    /// The listening socket (blocking, close-on-exec).
    pub listener: TcpListener,
    /// The address it listens on (with the port the OS chose for `-p 0`).
    pub bound: SocketAddr,
}

/// The start-up both runtimes share: logging, the command line, the session program,
/// the listener and the core. Every failure ends the process with the ready pipe told
/// (`ERROR <reason>`, see [`fail_startup`] and [`cli_exit`]). `READY` is the caller's
/// to send, with [`ready`], once its own set-up (signals, threads) is done too.
pub fn start_up(args: impl IntoIterator<Item = OsString>) -> StartUp {
    crate::logging::init();
    let config = cli::parse_args(args).unwrap_or_else(|exit| cli_exit(&exit));
    let program = session_program(&config).unwrap_or_else(|e| fail_startup(&e));
    let ip = bind_address(config.bind).unwrap_or_else(|e| fail_startup(&e));
    let listener = bind_listener(ip, config.port).unwrap_or_else(|e| fail_startup(&e.to_string()));
    let bound = listener
        .local_addr()
        .unwrap_or_else(|e| fail_startup(&format!("cannot read the bound address: {e}")));
    let server = Server::from_config(&config, bound, home_dir());
    StartUp {
        server,
        program,
        listener,
        bound,
    }
}

/// Prints clap's text (help, version or a usage error) and exits with its code; the
/// ready pipe hears about it too, so a waiting client never hangs.
pub fn cli_exit(exit: &CliExit) -> ! {
    let first = exit
        .message
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("bad command line");
    let reason = first.trim().trim_start_matches("error: ");
    if exit.code == 0 {
        announce_failure("no server started (help or version was asked for)");
        print!("{}", exit.message);
    } else {
        announce_failure(reason);
        eprint!("{}", exit.message);
    }
    std::process::exit(exit.code);
}

/// The program every session runs: `-c`, or the login shell, with the environment
/// switches of [`SpawnOptions::new`]. Checked now so a bad one is a start-up error rather
/// than a failure of every session.
pub fn session_program(config: &Config) -> Result<SpawnOptions, String> {
    let (program, args) = match &config.command {
        Some(words) => {
            let mut words = words.iter().map(OsString::from);
            let program = words.next().unwrap_or_else(|| OsString::from("sh"));
            (program, words.collect())
        }
        None => {
            let (shell, args) = login_shell();
            (shell.into_os_string(), args)
        }
    };
    find_program(Path::new(&program)).map_err(|e| format!("unusable program: {e}"))?;
    let mut options = SpawnOptions::new(program);
    options.args = args;
    Ok(options)
}

/// The address to listen on.
pub fn bind_address(bind: Bind) -> Result<IpAddr, String> {
    match bind {
        Bind::Loopback => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Bind::Addr(ip) => Ok(ip),
        Bind::Lan => lan_address().map_err(|e| format!("-i: {e}")),
    }
}

/// Spawns a session's program (from [`StartUp::program`]) on a pty of `size`.
pub fn spawn_session(program: &SpawnOptions, size: TermSize) -> Result<Spawned, SpawnError> {
    let mut options = program.clone();
    options.size = WinSize {
        cols: size.cols,
        rows: size.rows,
    };
    spawn(&options)
}

/// Spawns an `execute-command` job: `sh -c COMMAND` on a pty, in the job's directory.
/// A failure comes back as the job's result: a bad directory is the client's mistake,
/// anything else the server's.
pub fn spawn_command(job: &CommandJob) -> Result<Spawned, CommandResult> {
    let mut options = SpawnOptions::new("sh");
    options.args = vec!["-c".into(), job.command.clone().into()];
    options.cwd = Some(job.cwd.clone().into());
    spawn(&options).map_err(|e| match e {
        SpawnError::Cwd { .. } => CommandResult::BadCwd(e.to_string()),
        e => CommandResult::Failed(e.to_string()),
    })
}

/// The shell used when neither `$SHELL` nor the user database names a usable one.
pub const FALLBACK_SHELL: &str = "/bin/sh";

/// The user's login shell and the arguments that start it as a login shell:
/// `$SHELL`, else the shell of the user database entry, else `/bin/sh`; with `-l`
/// (understood by bash, zsh, fish, dash, busybox ash, mksh and ksh).
pub fn login_shell() -> (PathBuf, Vec<OsString>) {
    let from_env = std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    let program = from_env
        .filter(|p| is_executable(p))
        .or_else(|| passwd_field(Field::Shell).map(PathBuf::from))
        .filter(|p| is_executable(p))
        .unwrap_or_else(|| PathBuf::from(FALLBACK_SHELL));
    (program, vec![OsString::from("-l")])
}

/// The user's home directory: `$HOME`, else the user database entry, else `/`.
pub fn home_dir() -> String {
    std::env::var("HOME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| passwd_field(Field::Dir).and_then(|d| d.into_string().ok()))
        .unwrap_or_else(|| String::from("/"))
}

/// Finds `program` the way `exec` will (a name without `/` is looked up in `PATH`)
/// and checks that it is an executable file; the error is one line a user can act on.
pub fn find_program(program: &Path) -> Result<PathBuf, String> {
    let shown = program.display();
    if program.as_os_str().is_empty() {
        return Err(String::from("the program name is empty"));
    }
    if program.as_os_str().to_string_lossy().contains('/') {
        return match std::fs::metadata(program) {
            Ok(meta) if meta.is_dir() => Err(format!("{shown} is a directory, not a program")),
            Ok(_) if is_executable(program) => Ok(program.to_path_buf()),
            Ok(_) => Err(format!("{shown} is not executable")),
            Err(e) => Err(format!("cannot run {shown}: {}", plain(&e))),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("program {shown} not found in PATH"))
}

/// True for a regular file with an execute bit (a cheap check; `exec` has the last word).
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[derive(Clone, Copy)]
enum Field {
    Shell,
    Dir,
}

/// A field of the current user's entry in the user database (`getpwuid_r`).
fn passwd_field(field: Field) -> Option<OsString> {
    let uid = rustix::process::getuid().as_raw();
    let mut buf = vec![0u8; 4096];
    // SAFETY: an all-zero passwd is a valid value of a plain C struct; getpwuid_r fills it.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives every use of `entry`'s
    // string pointers, which point into it.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    let ptr = match field {
        Field::Shell => entry.pw_shell,
        Field::Dir => entry.pw_dir,
    };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so the field is a NUL-terminated string inside `buf`.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes().to_vec();
    (!bytes.is_empty()).then(|| OsString::from_vec(bytes))
}

/// The IPv4 address of an interface that is up and is not loopback (`getifaddrs`; no
/// traffic is sent). Wi-Fi and Ethernet come first: on a phone the first interface up
/// may be the cellular link (`rmnet*`), which is not the LAN the user means.
pub fn lan_address() -> io::Result<IpAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `list`, freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut best: Option<(u8, Ipv4Addr)> = None;
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cursor };
        cursor = ifa.ifa_next;
        let flags = ifa.ifa_flags;
        let up = flags & libc::IFF_UP as libc::c_uint != 0;
        let loopback = flags & libc::IFF_LOOPBACK as libc::c_uint != 0;
        if !up || loopback || ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to a sockaddr of the family it names.
        let family = unsafe { (*ifa.ifa_addr).sa_family };
        if i32::from(family) != libc::AF_INET {
            continue;
        }
        // SAFETY: the family is AF_INET, so the address is a sockaddr_in.
        let sin = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
        let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        // SAFETY: ifa_name is a non-null, NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) };
        let rank = interface_rank(&name.to_string_lossy());
        if !ip.is_loopback() && !ip.is_unspecified() && best.is_none_or(|(r, _)| rank < r) {
            best = Some((rank, ip));
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once; no reference outlives it.
    unsafe { libc::freeifaddrs(list) };
    best.map(|(_, ip)| IpAddr::V4(ip)).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no network interface with an IPv4 address is up (besides loopback)",
        )
    })
}

/// Lower is preferred: Wi-Fi, then Ethernet, then anything else, cellular last.
fn interface_rank(name: &str) -> u8 {
    const ORDER: [&[&str]; 3] = [
        &["wlan", "wl"],
        &["eth", "en"],
        &["rmnet", "ccmni", "wwan", "ppp"],
    ];
    match ORDER
        .iter()
        .position(|prefixes| prefixes.iter().any(|p| name.starts_with(p)))
    {
        Some(0) => 0,
        Some(1) => 1,
        Some(_) => 3,
        None => 2,
    }
}

/// Binds a TCP listener on `ip:port` (close-on-exec, `SO_REUSEADDR`), with an error
/// message that names the problem: "port 8767 is already in use".
pub fn bind_listener(ip: IpAddr, port: u16) -> io::Result<TcpListener> {
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr).map_err(|e| {
        let text = match e.kind() {
            io::ErrorKind::AddrInUse => format!("port {port} is already in use"),
            io::ErrorKind::AddrNotAvailable => {
                format!("address {ip} does not belong to this machine")
            }
            io::ErrorKind::PermissionDenied => {
                format!("not allowed to listen on port {port} (ports below 1024 need privileges)")
            }
            _ => format!("cannot listen on {addr}: {}", plain(&e)),
        };
        io::Error::new(e.kind(), text)
    })
}

/// Makes a TCP socket report "writable" only while less than `bytes` of queued data is
/// still unsent (`TCP_NOTSENT_LOWAT`). A writer then wakes as soon as a slow reader has
/// taken some data, instead of when a third of a multi-megabyte buffer has drained: its
/// progress is seen early and little data sits queued in the kernel.
pub fn set_send_low_water(socket: BorrowedFd<'_>, bytes: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live c_int; the fd is
    // borrowed, so it is open for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Start-up succeeded: writes `READY` to the ready pipe when `AXS_READY_PIPE` is set.
/// A pipe that cannot take it (not a FIFO, no reader in time) ends the process with
/// status 1 after saying why on stderr.
pub fn ready() {
    let Some(path) = ready_pipe::path_from_env() else {
        return;
    };
    if let Err(e) = ready_pipe::signal_ready(&path, DEFAULT_READY_TIMEOUT) {
        log::error!("{e}");
        eprintln!("axs: {e}");
        std::process::exit(1);
    }
}

/// Start-up failed: tells the ready pipe (`ERROR <reason>`, when `AXS_READY_PIPE` is
/// set), prints `axs: <reason>` on stderr and exits with status 1.
pub fn fail_startup(reason: &str) -> ! {
    announce_failure(reason);
    eprintln!("axs: {reason}");
    std::process::exit(1);
}

/// Writes `ERROR <reason>` to the ready pipe when `AXS_READY_PIPE` is set, so a waiting
/// reader never hangs; a pipe failure is reported on stderr. For exits that print
/// their own message (usage errors).
pub fn announce_failure(reason: &str) {
    log::error!("start-up failed: {reason}");
    if let Some(path) = ready_pipe::path_from_env() {
        if let Err(e) = ready_pipe::signal_error(&path, reason, DEFAULT_READY_TIMEOUT) {
            eprintln!("axs: {e}");
        }
    }
}

/// An exit status as the core's exit message has it: a code, or a signal's name
/// (`SIGKILL`; an unnamed signal is `SIG<n>`).
pub fn exit_status(status: ExitStatus) -> axs_core::frame::ExitStatus {
    use axs_core::frame::ExitStatus as Core;
    match status {
        ExitStatus::Code(code) => Core::Code(code),
        ExitStatus::Signal(sig) => {
            Core::Signal(signal_name(sig).map_or_else(|| format!("SIG{sig}"), String::from))
        }
    }
}

/// The core's clock: the monotonic time since the server started, as the core's
/// [`Time`], and back to an [`Instant`] to sleep until.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose [`Time::ZERO`] is now.
    pub fn start() -> Clock {
        Clock {
            epoch: Instant::now(),
        }
    }

    /// The core's time for this instant.
    pub fn now(&self) -> Time {
        Time::from_duration(self.epoch.elapsed())
    }

    /// The instant a core time stands for.
    pub fn instant(&self, time: Time) -> Instant {
        self.epoch + time.as_duration()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn wifi_and_ethernet_come_before_cellular() {
        let mut names = ["rmnet_data0", "tun0", "eth0", "wlan0"];
        names.sort_by_key(|n| interface_rank(n));
        assert_eq!(names, ["wlan0", "eth0", "tun0", "rmnet_data0"]);
    }

    #[test]
    fn login_shell_is_executable_with_login_flag() {
        let (program, args) = login_shell();
        assert!(is_executable(&program), "{}", program.display());
        assert_eq!(args, vec![OsString::from("-l")]);
    }

    #[test]
    fn home_is_not_empty() {
        assert!(!home_dir().is_empty());
    }

    #[test]
    fn finds_programs() {
        assert!(find_program(Path::new("sh")).is_ok());
        assert!(find_program(Path::new("/bin/sh")).is_ok());
        let missing = find_program(Path::new("no-such-program-axs")).unwrap_err();
        assert_eq!(missing, "program no-such-program-axs not found in PATH");
        let dir = find_program(Path::new("/")).unwrap_err();
        assert_eq!(dir, "/ is a directory, not a program");
        let gone = find_program(Path::new("/no/such/x")).unwrap_err();
        assert_eq!(gone, "cannot run /no/such/x: No such file or directory");
    }

    #[test]
    fn port_in_use_is_named() {
        let first = bind_listener(IpAddr::V4(Ipv4Addr::LOCALHOST), 0).unwrap();
        let port = first.local_addr().unwrap().port();
        let err = bind_listener(IpAddr::V4(Ipv4Addr::LOCALHOST), port).unwrap_err();
        assert_eq!(err.to_string(), format!("port {port} is already in use"));
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn lan_address_is_not_loopback() {
        // Containers may have no interface besides loopback: then the error says so.
        match lan_address() {
            Ok(ip) => assert!(!ip.is_loopback()),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
        }
    }

    #[test]
    fn exit_statuses_name_signals() {
        use axs_core::frame::ExitStatus as Core;
        assert_eq!(exit_status(ExitStatus::Code(7)), Core::Code(7));
        let named = exit_status(ExitStatus::Signal(9));
        assert_eq!(named, Core::Signal(String::from("SIGKILL")));
        let unnamed = exit_status(ExitStatus::Signal(99));
        assert_eq!(unnamed, Core::Signal(String::from("SIG99")));
    }

    #[test]
    fn the_clock_maps_core_times_to_instants_and_back() {
        let clock = Clock::start();
        let now = clock.now();
        assert!(clock.instant(now) <= Instant::now());
        assert_eq!(clock.instant(Time::ZERO), clock.epoch);
        let later = Time::from_millis(now.as_millis() + 1000);
        assert_eq!(
            clock.instant(later) - clock.instant(now),
            std::time::Duration::from_secs(1)
        );
    }

    #[test]
    fn command_is_split_into_program_and_args() {
        let args = ["axs", "-c", "sh -c 'echo hi'"].map(OsString::from);
        let program = session_program(&cli::parse_args(args).unwrap()).unwrap();
        assert_eq!(program.program, OsString::from("sh"));
        assert_eq!(program.args, ["-c", "echo hi"].map(OsString::from).to_vec());
    }

    #[test]
    fn a_missing_program_is_a_startup_error() {
        let args = ["axs", "-c", "no-such-axs-program"].map(OsString::from);
        let err = session_program(&cli::parse_args(args).unwrap()).unwrap_err();
        assert_eq!(
            err,
            "unusable program: program no-such-axs-program not found in PATH"
        );
    }

    #[test]
    fn default_program_is_a_login_shell() {
        let program = session_program(&Config::default()).unwrap();
        assert_eq!(program.args, vec![OsString::from("-l")]);
    }

    #[test]
    fn loopback_by_default() {
        assert_eq!(
            bind_address(Bind::Loopback).unwrap(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(bind_address(Bind::Addr(ip)).unwrap(), ip);
    }
}
