//! Spawning a session's program and an `execute-command` job, and what a failed
//! job spawn means to the client.
//!
//! Policy: a job's directory that does not exist (or is no directory) is the client's
//! mistake ([`CommandResult::BadCwd`]); any other failure is the server's
//! ([`CommandResult::Failed`]). That one decision is [`command_failure`].

use std::path::Path;

use axs_core::api::TermSize;
use axs_core::server::{CommandJob, CommandResult};
use axs_pty::{spawn, SpawnError, SpawnOptions, Spawned, WinSize};

/// Spawns a session's program (from [`crate::StartUp::program`]) on a pty of `size`.
pub fn spawn_session(program: &SpawnOptions, size: TermSize) -> Result<Spawned, SpawnError> {
    let mut options = program.clone();
    options.size = WinSize {
        cols: size.cols,
        rows: size.rows,
    };
    spawn(&options)
}

/// Spawns `sh -c COMMAND` on a pty, in `cwd`; the OS's error as it is.
pub fn spawn_shell_command(command: &str, cwd: &Path) -> Result<Spawned, SpawnError> {
    let mut options = SpawnOptions::new("sh");
    options.args = vec!["-c".into(), command.into()];
    options.cwd = Some(cwd.to_path_buf());
    spawn(&options)
}

/// Spawns an `execute-command` job: `sh -c COMMAND` on a pty, in the job's directory.
/// A failure comes back as the job's result (see [`command_failure`]).
pub fn spawn_command(job: &CommandJob) -> Result<Spawned, CommandResult> {
    spawn_shell_command(&job.command, Path::new(&job.cwd)).map_err(|e| command_failure(&e))
}

/// The result a job whose spawn failed reports: a bad directory is the client's
/// mistake, anything else the server's.
pub fn command_failure(error: &SpawnError) -> CommandResult {
    match error {
        SpawnError::Cwd { .. } => CommandResult::BadCwd(error.to_string()),
        _ => CommandResult::Failed(error.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_the_clients_mistake() {
        let err = spawn_shell_command("true", Path::new("/no/such/dir/axs")).unwrap_err();
        assert_eq!(
            command_failure(&err),
            CommandResult::BadCwd(String::from("No such file or directory: /no/such/dir/axs"))
        );
    }

    #[test]
    fn other_failures_are_the_servers() {
        let err = SpawnError::Pty(std::io::Error::from_raw_os_error(24));
        assert!(matches!(command_failure(&err), CommandResult::Failed(_)));
    }
}
