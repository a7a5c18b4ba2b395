//! `POST /execute-command` on the connection's thread: spawn `sh -c COMMAND` on a pty,
//! feed its output to the core until the core closes the pty, then hand back the core's
//! answer. Every decision (time limit, drain after the exit, output cap, hang-up then
//! kill) is the core's job state machine; the exit arrives through the reaper.

use std::fs::File;
use std::io::{self, Read};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use axs_core::http::Response;
use axs_core::job::{JobId, JobSpawnFailure};

use crate::handles::ReadGate;
use crate::shared::Shared;

/// Runs job `job` and returns its answer; `None` if the core never gave one (it exited).
pub fn run(
    shared: &Shared,
    job: JobId,
    command: &str,
    cwd: &str,
    answer: &Receiver<Response>,
) -> Option<Response> {
    let spawned = ReadGate::new()
        .map_err(|e| JobSpawnFailure::Failed(format!("cannot watch the command: {e}")))
        .and_then(|gate| Ok((Arc::new(gate), axs_host::spawn_command(command, cwd)?)));
    match spawned {
        Err(failure) => shared.call(|server, _| server.job_spawn_failed(job, &failure)),
        Ok((gate, spawned)) => {
            let pid = spawned.pid;
            shared.with_state(|state, now| {
                state.job_started(job, &gate);
                state.server().job_spawned(job, pid, now);
                // The shell may have ended before it was registered: its SIGCHLD found nothing.
                state.reap_pid(pid, now);
            });
            read_output(shared, job, &File::from(spawned.master), &gate);
        }
    }
    answer.recv().ok()
}

/// Feeds the pty's output to the core until it closes the pty (after EOF, it waits for
/// the close: the master stays open until the core decides).
fn read_output(shared: &Shared, job: JobId, master: &File, gate: &ReadGate) {
    let mut buf = vec![0u8; shared.read_size().max(1)];
    while gate.wait_readable(master) {
        match (&*master).read(&mut buf) {
            Ok(n) if n > 0 => shared.call(|server, _| server.job_output(job, &buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // EOF, or EIO once the last holder of the pty's other side closed it.
            Ok(_) | Err(_) => {
                shared.call(|server, now| server.job_eof(job, now));
                gate.wait_closed();
            }
        }
    }
}
