//! Spawning a session's program and an `execute-command` job, and what a failed
//! job spawn means to the client.
//!
//! A failed job spawn is translated once, in [`command_failure`], into the core's
//! [`JobSpawnFailure`]: a directory that does not exist (or is no directory) is the
//! client's mistake, anything else the server's; the core decides the answer for each.

use std::path::Path;

use axs_core::api::TermSize;
use axs_core::job::JobSpawnFailure;
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

/// Spawns an `execute-command` job: `sh -c COMMAND` on a pty, in `cwd`. A failure comes
/// back as the core's [`JobSpawnFailure`] (see [`command_failure`]).
pub fn spawn_command(command: &str, cwd: &str) -> Result<Spawned, JobSpawnFailure> {
    spawn_shell_command(command, Path::new(cwd)).map_err(|e| command_failure(&e))
}

/// What a failed job spawn was: a bad directory, or anything else.
pub fn command_failure(error: &SpawnError) -> JobSpawnFailure {
    match error {
        SpawnError::Cwd { .. } => JobSpawnFailure::BadCwd(error.to_string()),
        _ => JobSpawnFailure::Failed(error.to_string()),
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
            JobSpawnFailure::BadCwd(String::from("No such file or directory: /no/such/dir/axs"))
        );
    }

    #[test]
    fn other_failures_are_the_servers() {
        let err = SpawnError::Pty(std::io::Error::from_raw_os_error(24));
        assert!(matches!(command_failure(&err), JobSpawnFailure::Failed(_)));
    }
}
