#![allow(clippy::unwrap_used)] // tests may unwrap

use super::*;

fn parse(args: &[&str]) -> Result<Config, CliExit> {
    let argv = std::iter::once("axs").chain(args.iter().copied());
    parse_args(argv.map(OsString::from))
}

fn config(args: &[&str]) -> Config {
    parse(args).unwrap()
}

fn error(args: &[&str]) -> CliExit {
    let exit = parse(args).unwrap_err();
    assert!(!exit.to_stdout, "{exit:?}");
    assert_eq!(exit.code, 2, "{exit:?}");
    assert_eq!(exit.message.lines().count(), 1, "one line: {exit:?}");
    assert!(exit.message.starts_with("error: "), "{exit:?}");
    assert!(exit.message.ends_with("(see 'axs --help')\n"), "{exit:?}");
    exit
}

// The environment may carry AXS_TOKEN; tests that depend on its absence say so.
fn token_env_is_clear() -> bool {
    std::env::var_os("AXS_TOKEN").is_none()
}

#[test]
fn defaults() {
    if token_env_is_clear() {
        assert_eq!(config(&[]), Config::default());
    }
    let c = config(&[]);
    assert_eq!(c.port, 8767);
    assert_eq!(c.bind, Bind::Loopback);
    assert_eq!(c.command, None);
    assert_eq!(c.scrollback, 256 * 1024);
    assert_eq!(c.attach, AttachPolicy::Shared);
    assert_eq!(c.max_sessions, 64);
    assert_eq!(c.retention, Duration::from_secs(300));
    assert_eq!(c.stall_timeout, Duration::from_secs(30));
}

#[test]
fn axs_02_flags() {
    let c = config(&[
        "-p",
        "9000",
        "-c",
        "bash --rcfile /initrc -i",
        "--allow-any-origin",
    ]);
    assert_eq!(c.port, 9000);
    assert_eq!(c.command.unwrap(), ["bash", "--rcfile", "/initrc", "-i"]);
    assert!(c.allow_any_origin);
    let c = config(&["--port=1", "--command", "sh"]);
    assert_eq!((c.port, c.command.unwrap()), (1, vec!["sh".to_string()]));
}

#[test]
fn ip_flag_with_and_without_value() {
    let c = config(&["-i", "127.0.0.2"]);
    assert_eq!(c.bind, Bind::Addr("127.0.0.2".parse().unwrap()));
    let c = config(&["-i", "::1", "-c", "sh"]);
    assert_eq!(c.bind, Bind::Addr("::1".parse().unwrap()));
    let c = config(&["-i", "--token", LONG]);
    assert_eq!(c.bind, Bind::Lan);
    let c = config(&["--token", LONG, "-i"]);
    assert_eq!(c.bind, Bind::Lan);
    let c = config(&["-i", "0.0.0.0", "--token", LONG]);
    assert_eq!(c.bind, Bind::Addr("0.0.0.0".parse().unwrap()));
    let exit = error(&["-i", "not-an-ip"]);
    assert!(exit.message.contains("not-an-ip"), "{}", exit.message);
}

#[test]
fn token_required_off_loopback() {
    if !token_env_is_clear() {
        return;
    }
    let exit = error(&["-i"]);
    assert!(exit.message.contains("--token"), "{}", exit.message);
    assert!(exit.message.contains("AXS_TOKEN"), "{}", exit.message);
    error(&["-i", "192.168.1.2"]);
    assert_eq!(config(&["-i", "127.0.0.1"]).token, None);
}

/// A token long enough for a non-loopback listener (16 characters).
const LONG: &str = "0123456789abcdef";

#[test]
fn short_tokens_are_refused_off_loopback_only() {
    let exit = error(&["-i", "--token", "0123456789abcde"]);
    assert!(exit.message.contains("at least 16"), "{}", exit.message);
    assert!(
        !exit.message.contains("0123456789abcde"),
        "{}",
        exit.message
    );
    error(&["-i", "192.168.1.2", "--token", "short"]);
    assert_eq!(config(&["--token", "t"]).token.as_deref(), Some("t"));
    assert_eq!(
        config(&["-i", "::1", "--token", "t"]).token.as_deref(),
        Some("t")
    );
    // The view token follows the same rule.
    let exit = error(&["-i", "--token", LONG, "--view-token", "view"]);
    assert!(exit.message.contains("view token"), "{}", exit.message);
}

#[test]
fn view_token() {
    let c = config(&["--view-token", "watch"]);
    assert_eq!(c.view_token.as_deref(), Some("watch"));
    assert!(!format!("{c:?}").contains("watch"));
    let c = config(&["-i", "--token", LONG, "--view-token", "fedcba9876543210"]);
    assert_eq!(c.view_token.as_deref(), Some("fedcba9876543210"));
    let exit = error(&["--token", "same", "--view-token", "same"]);
    assert!(exit.message.contains("differ"), "{}", exit.message);
    assert!(!exit.message.contains("same"), "{}", exit.message);
    let exit = error(&["--view-token", "has space"]);
    assert!(!exit.message.contains("has space"), "{}", exit.message);
    error(&["--view-token="]);
}

#[test]
fn a_view_token_alone_is_refused_off_loopback() {
    if !token_env_is_clear() {
        return;
    }
    let exit = error(&["-i", "--view-token", "fedcba9876543210"]);
    assert!(exit.message.contains("--token"), "{}", exit.message);
}

#[test]
fn allow_any_origin_without_a_token_warns_once() {
    if !token_env_is_clear() {
        return;
    }
    let warnings = startup_warnings(&config(&["--allow-any-origin"]));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("--allow-any-origin"), "{warnings:?}");
    assert!(warnings[0].contains("shell"), "{warnings:?}");
    let warnings = startup_warnings(&config(&["--allow-any-origin", "--view-token", "v"]));
    assert_eq!(warnings.len(), 1, "a view token does not protect the shell");
    assert!(startup_warnings(&config(&["--allow-any-origin", "--token", "t"])).is_empty());
    assert!(startup_warnings(&config(&[])).is_empty());
}

#[test]
fn token_validation_never_echoes_it() {
    let exit = error(&["--token", "has space"]);
    assert!(!exit.message.contains("has space"));
    let exit = error(&["--token="]);
    assert!(exit.message.contains("empty"));
    assert_eq!(
        config(&["--token", "s3cret"]).token.as_deref(),
        Some("s3cret")
    );
    assert!(!format!("{:?}", config(&["--token", "s3cret"])).contains("s3cret"));
}

#[test]
fn command_splitting_errors() {
    let exit = error(&["-c", "sh -c 'unterminated"]);
    assert!(exit.message.contains("unterminated"), "{}", exit.message);
    let exit = error(&["-c", "   "]);
    assert!(exit.message.contains("empty"), "{}", exit.message);
}

#[test]
fn scrollback_sizes() {
    assert_eq!(config(&["--scrollback", "64K"]).scrollback, 64 * 1024);
    assert_eq!(config(&["--scrollback", "1M"]).scrollback, 1024 * 1024);
    assert_eq!(config(&["--scrollback", "1MiB"]).scrollback, 1024 * 1024);
    assert_eq!(config(&["--scrollback", "8192"]).scrollback, 8192);
    assert_eq!(config(&["--scrollback", "4k"]).scrollback, 4096);
    assert_eq!(config(&["--scrollback", "1G"]).scrollback, 1 << 30);
    for bad in [
        "4095",
        "1",
        "2G",
        "12X",
        "K",
        "-1",
        "99999999999999999999999G",
    ] {
        let exit = error(&[&format!("--scrollback={bad}")]);
        assert!(
            exit.message.contains("scrollback"),
            "{bad}: {}",
            exit.message
        );
    }
}

#[test]
fn attach_policy() {
    assert_eq!(
        config(&["--attach", "takeover"]).attach,
        AttachPolicy::Takeover
    );
    assert_eq!(config(&["--attach", "shared"]).attach, AttachPolicy::Shared);
    let exit = error(&["--attach", "steal"]);
    assert!(
        exit.message.contains("shared, takeover"),
        "{}",
        exit.message
    );
}

#[test]
fn limits_and_durations() {
    let c = config(&[
        "--max-sessions",
        "3",
        "--retention",
        "0",
        "--stall-timeout",
        "5",
    ]);
    assert_eq!(c.max_sessions, 3);
    assert_eq!(c.retention, Duration::ZERO);
    assert_eq!(c.stall_timeout, Duration::from_secs(5));
    error(&["--max-sessions", "0"]);
    error(&["--max-sessions", "10001"]);
    error(&["--stall-timeout", "0"]);
    error(&["--retention=-1"]);
}

#[test]
fn bad_flags() {
    let exit = error(&["--bogus"]);
    assert!(exit.message.contains("--bogus"), "{}", exit.message);
    error(&["-p", "70000"]);
    error(&["-p"]);
}

#[test]
fn help_goes_to_stdout_and_documents_everything() {
    let exit = parse(&["--help"]).unwrap_err();
    assert!(exit.to_stdout);
    assert_eq!(exit.code, 0);
    for needle in [
        "--port",
        "--ip",
        "--command",
        "--allow-any-origin",
        "--token",
        "--view-token",
        "--scrollback",
        "--attach",
        "--max-sessions",
        "--retention",
        "--stall-timeout",
        "AXS_TOKEN",
        "AXS_VIEW_TOKEN",
        "AXS_READY_PIPE",
        "RUST_LOG",
        "AXS_PTY_PEER",
        "8767",
    ] {
        assert!(
            exit.message.contains(needle),
            "help lacks {needle}:\n{}",
            exit.message
        );
    }
    assert_eq!(parse(&["-h"]).unwrap_err().code, 0);
}

#[test]
fn version_goes_to_stdout() {
    let exit = parse(&["--version"]).unwrap_err();
    assert!(exit.to_stdout);
    assert_eq!(exit.code, 0);
    assert!(exit.message.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn bind_loopback() {
    assert!(Bind::Loopback.is_loopback());
    assert!(!Bind::Lan.is_loopback());
    assert!(Bind::Addr("::1".parse().unwrap()).is_loopback());
    assert!(!Bind::Addr("10.0.0.1".parse().unwrap()).is_loopback());
}
