//! `POST /execute-command` on the connection's thread: `sh -c COMMAND` on a pty in the
//! job's directory, its output collected until EOF, the drain after the shell's exit, or
//! the time limit, whichever comes first; never a read that could block past it.
//!
//! The thread waits in `poll` on the pty master and the job's exit socket: the signal
//! thread reaps the shell on SIGCHLD and drops the socket's other end. Then, whatever
//! holds the pty (a background job that ignores SIGHUP, a `setsid` escapee), the answer
//! leaves at [`COMMAND_DRAIN_AFTER_EXIT`] after the exit, or at
//! [`EXECUTE_COMMAND_TIMEOUT`] with [`limits::command_timed_out`]. What the command left
//! in its session is hung up, and killed after [`TERMINATE_GRACE`] by the timer thread.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use axs_core::api::EXECUTE_COMMAND_TIMEOUT;
use axs_core::http::Response;
use axs_core::limits::{self, COMMAND_DRAIN_AFTER_EXIT, COMMAND_MAX_OUTPUT, TERMINATE_GRACE};
use axs_core::server::{CommandJob, CommandResult};
use rustix::event::{PollFd, PollFlags, Timespec};

use crate::shared::{JobWatch, Shared};

/// Runs an `execute-command` job on this thread and returns the answer.
pub fn execute(shared: &Shared, job: CommandJob) -> Response {
    let result = run(shared, &job);
    shared.call(|server, _| server.command_finished(job, result))
}

/// How the output collection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// EOF (every holder of the pty closed it).
    Eof,
    /// The shell exited and the drain after it is over.
    Drained,
    /// The time limit, with the shell still running.
    TimedOut,
}

fn run(shared: &Shared, job: &CommandJob) -> CommandResult {
    let (exit, exit_end) = match UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => return CommandResult::Failed(format!("cannot watch the command: {e}")),
    };
    let spawned = match axs_host::spawn_command(job) {
        Ok(spawned) => spawned,
        Err(failed) => return failed,
    };
    let pid = spawned.pid;
    let serial = shared.with_state(|state, _| {
        state.last_serial += 1;
        let watch = JobWatch {
            serial: state.last_serial,
            _exit: exit_end,
        };
        state.jobs.insert(pid, watch);
        state.last_serial
    });
    // The shell may have ended before it was registered: its SIGCHLD found nothing.
    crate::signals::reap_job(shared, pid);
    let (output, end) = collect(&File::from(spawned.master), &exit);
    end_job(shared, pid, serial);
    if end == End::TimedOut {
        log::debug!("execute-command {pid} timed out");
        return CommandResult::Failed(limits::command_timed_out());
    }
    CommandResult::Output(output)
}

/// Hangs up what is left of the command's session, and kills it after the grace.
fn end_job(shared: &Shared, pid: u32, serial: u64) {
    if !shared.still_ours(pid, serial) {
        return;
    }
    if let Err(e) = axs_pty::hangup_group(pid) {
        log::debug!("execute-command {pid}: hangup: {e}");
    }
    shared.later(TERMINATE_GRACE, move |shared| {
        if shared.still_ours(pid, serial) && axs_pty::group_alive(pid) {
            log::debug!("execute-command {pid} outlived the hangup: killing it");
            let _ = axs_pty::kill_group(pid);
        }
    });
}

/// Reads the pty until EOF, the drain after the shell's exit, or the time limit, keeping
/// at most [`COMMAND_MAX_OUTPUT`] bytes (the rest is read and dropped, so the command
/// never blocks on a full pty).
fn collect(master: &File, exit: &UnixStream) -> (Vec<u8>, End) {
    let mut deadline = Instant::now() + EXECUTE_COMMAND_TIMEOUT;
    let mut exited = false;
    let mut output = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match wait(master, (!exited).then_some(exit), deadline) {
            Ready::Output => match (&*master).read(&mut buf) {
                Ok(0) => return (output, End::Eof),
                Ok(n) => {
                    let room = COMMAND_MAX_OUTPUT.saturating_sub(output.len());
                    output.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EIO: the last holder of the pty's other side closed it.
                Err(_) => return (output, End::Eof),
            },
            Ready::Exited => {
                exited = true;
                deadline = deadline.min(Instant::now() + COMMAND_DRAIN_AFTER_EXIT);
            }
            Ready::Deadline if exited => return (output, End::Drained),
            Ready::Deadline => return (output, End::TimedOut),
        }
    }
}

/// What a wait in [`collect`] found.
enum Ready {
    Output,
    Exited,
    Deadline,
}

/// Waits until the master is readable (or hung up), the shell exited, or `deadline`.
fn wait(master: &File, exit: Option<&UnixStream>, deadline: Instant) -> Ready {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ready::Deadline;
        }
        let mut fds = vec![PollFd::new(master, PollFlags::IN)];
        if let Some(exit) = exit {
            fds.push(PollFd::new(exit, PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, Some(&timespec(left))) {
            Ok(_) if fds.get(1).is_some_and(|fd| !fd.revents().is_empty()) => return Ready::Exited,
            Ok(_) if !fds[0].revents().is_empty() => return Ready::Output,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                // Cannot wait (out of memory): try again shortly, the deadline still holds.
                log::debug!("execute-command: poll: {e}");
                std::thread::sleep(left.min(Duration::from_millis(10)));
            }
        }
    }
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::OwnedFd;

    /// A socket standing in for a pty master, and its other side (the command's).
    fn fake_pty() -> (File, UnixStream) {
        let (master, slave) = UnixStream::pair().unwrap();
        (File::from(OwnedFd::from(master)), slave)
    }

    #[test]
    fn output_until_eof() {
        let (master, mut slave) = fake_pty();
        let (exit, _exit_end) = UnixStream::pair().unwrap();
        slave.write_all(b"hello\n").unwrap();
        drop(slave);
        assert_eq!(collect(&master, &exit), (b"hello\n".to_vec(), End::Eof));
    }

    #[test]
    fn a_held_pty_delays_the_answer_only_by_the_drain_after_the_exit() {
        // The other side stays open: a background job holds the pty.
        let (master, mut slave) = fake_pty();
        let (exit, exit_end) = UnixStream::pair().unwrap();
        slave.write_all(b"started\n").unwrap();
        drop(exit_end); // the shell was reaped
        let started = Instant::now();
        let collected = collect(&master, &exit);
        assert_eq!(collected, (b"started\n".to_vec(), End::Drained));
        assert!(started.elapsed() >= COMMAND_DRAIN_AFTER_EXIT);
        assert!(started.elapsed() < EXECUTE_COMMAND_TIMEOUT);
        drop(slave);
    }
}
