//! `POST /execute-command`: `sh -c COMMAND` on a pty in the job's directory, its output
//! collected until the shell exits (plus a short drain) or the time limit ends it.
//!
//! The answer never waits for what the command left behind: once it is decided, the
//! command's session is hung up and, after the grace, killed by a task of its own.

use std::fs::File;
use std::io::{self, Read};
use std::rc::Rc;
use std::time::Instant;

use async_io::{Async, Timer};
use axs_core::api::EXECUTE_COMMAND_TIMEOUT;
use axs_core::http::Response;
use axs_core::limits;
use axs_core::server::{CommandJob, CommandResult};
use axs_pty::{ExitStatus, Spawned};
use futures_lite::future;
use smol::channel::Receiver;

use crate::driver::{Child, Driver};

/// Bytes read in a row before the reader lets other tasks run (a command flooding its
/// pty must not stall the server).
const YIELD_AFTER: usize = 256 * 1024;

/// Runs the job and returns the answer.
pub async fn run(driver: Rc<Driver>, job: CommandJob) -> Response {
    let result = match axs_host::spawn_command(&job) {
        Ok(spawned) => collect(&driver, spawned).await,
        Err(failed) => failed,
    };
    driver.inspect(|server| server.command_finished(job, result))
}

/// What ended one wait of the collecting loop.
enum Event {
    Read(io::Result<usize>),
    Exited,
    Deadline,
}

/// Collects the command's output until its shell exited and the pty is drained (EOF, or
/// [`limits::COMMAND_DRAIN_AFTER_EXIT`] after the exit), or the time limit; then leaves
/// the command's session to [`clean_up`].
async fn collect(driver: &Rc<Driver>, spawned: Spawned) -> CommandResult {
    let pid = spawned.pid;
    let (tx, exit) = smol::channel::bounded(1);
    driver.add_child(pid, Child::Job(tx));
    let master = match Async::new(File::from(spawned.master)) {
        Ok(master) => master,
        Err(e) => {
            // The master is closed by now, which hangs the shell up; make sure it ends.
            let _ = axs_pty::kill_group(pid);
            driver.add_child(pid, Child::Orphan);
            return CommandResult::Failed(format!("cannot watch the pty: {e}"));
        }
    };
    let (output, exited) = read_until_done(&master, &exit).await;
    drop(master);
    driver.spawn_detached(clean_up(driver.clone(), pid, exit, exited));
    if !exited {
        return CommandResult::Failed(limits::command_timed_out());
    }
    CommandResult::Output(output)
}

/// Reads the pty until the shell exited and the output is drained, or the time limit
/// ran out; never waits on the pty past either deadline. Returns the output kept and
/// whether the shell exited (and was reaped).
async fn read_until_done(master: &Async<File>, exit: &Receiver<ExitStatus>) -> (Vec<u8>, bool) {
    let mut deadline = Instant::now() + EXECUTE_COMMAND_TIMEOUT;
    let mut exited = false;
    let mut eof = false;
    let mut output = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut unyielded = 0;
    while !(exited && eof) {
        // A read that finds data never polls the timer: check the deadline here too.
        if Instant::now() >= deadline {
            break;
        }
        if unyielded >= YIELD_AFTER {
            unyielded = 0;
            future::yield_now().await;
        }
        let read = async {
            if eof {
                future::pending::<()>().await;
            }
            Event::Read(master.read_with(|f| (&*f).read(&mut buf)).await)
        };
        let exit_event = async {
            if exited || exit.recv().await.is_err() {
                future::pending::<()>().await;
            }
            Event::Exited
        };
        let timer = async {
            Timer::at(deadline).await;
            Event::Deadline
        };
        match future::or(read, future::or(exit_event, timer)).await {
            Event::Read(Ok(n)) if n > 0 => {
                unyielded += n;
                let room = limits::COMMAND_MAX_OUTPUT.saturating_sub(output.len());
                output.extend_from_slice(&buf[..n.min(room)]);
            }
            Event::Read(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            // EOF, or EIO once nothing holds the pty's slave side any more.
            Event::Read(_) => eof = true,
            Event::Exited => {
                exited = true;
                deadline = deadline.min(Instant::now() + limits::COMMAND_DRAIN_AFTER_EXIT);
            }
            Event::Deadline => break,
        }
    }
    (output, exited)
}

/// Ends what the command left in its session: hangs up every group now, kills what is
/// left after [`limits::TERMINATE_GRACE`], and leaves the shell (if not reaped yet) to
/// the reaper.
async fn clean_up(driver: Rc<Driver>, pid: u32, exit: Receiver<ExitStatus>, exited: bool) {
    // Once the shell is reaped, only live members keep its pid from being reused: with
    // none left there is nothing to end, and the pid may soon be a stranger's.
    if exited && !axs_pty::group_alive(pid) {
        return;
    }
    if let Err(e) = axs_pty::hangup_group(pid) {
        log::debug!("command {pid}: hangup: {e}");
    }
    Timer::after(limits::TERMINATE_GRACE).await;
    let reaped = exited || exit.try_recv().is_ok();
    if !reaped || axs_pty::group_alive(pid) {
        log::debug!("command {pid}: still running after the hangup grace; killing");
        if let Err(e) = axs_pty::kill_group(pid) {
            log::debug!("command {pid}: kill: {e}");
        }
    }
    if !reaped {
        // Nobody waits for its status any more; the reaper reaps it quietly.
        driver.add_child(pid, Child::Orphan);
    }
}
