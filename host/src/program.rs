//! What every session runs and where `execute-command` starts by default.
//!
//! Policy, on top of `axs-pty`'s lookups: `-c` wins; otherwise the login shell is
//! `$SHELL`, else the user database's shell, else [`FALLBACK_SHELL`], each only when it
//! is executable, started with `-l`. Home is `$HOME`, else the user database's, else `/`.
//! The session program is checked at start-up, so a bad one is one start-up error
//! rather than a failure of every session.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use axs_pty::{current_user, find_program, is_executable, SpawnOptions};

use crate::cli::Config;

/// The shell used when neither `$SHELL` nor the user database names a usable one.
pub const FALLBACK_SHELL: &str = "/bin/sh";

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

/// The user's login shell and the arguments that start it as a login shell:
/// `$SHELL`, else the shell of the user database entry, else `/bin/sh`; with `-l`
/// (understood by bash, zsh, fish, dash, busybox ash, mksh and ksh).
pub fn login_shell() -> (PathBuf, Vec<OsString>) {
    let from_env = std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    let program = from_env
        .filter(|p| is_executable(p))
        .or_else(|| current_user().and_then(|u| u.shell).map(PathBuf::from))
        .filter(|p| is_executable(p))
        .unwrap_or_else(|| PathBuf::from(FALLBACK_SHELL));
    (program, vec![OsString::from("-l")])
}

/// The user's home directory: `$HOME`, else the user database entry, else `/`.
pub fn home_dir() -> String {
    std::env::var("HOME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            current_user()
                .and_then(|u| u.home)
                .and_then(|d| d.into_string().ok())
        })
        .unwrap_or_else(|| String::from("/"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::cli;

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
}
