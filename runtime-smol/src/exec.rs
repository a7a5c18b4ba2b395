//! `POST /execute-command`: `sh -c COMMAND` on a pty in the job's directory, its output
//! collected until the shell exits (plus a short drain) or the time limit ends it.

use std::fs::File;
use std::io::Read;
use std::rc::Rc;
use std::time::Instant;

use async_io::{Async, Timer};
use axs_core::api::EXECUTE_COMMAND_TIMEOUT;
use axs_core::http::Response;
use axs_core::limits;
use axs_core::server::{CommandJob, CommandResult};
use axs_pty::Spawned;
use futures_lite::future;

use crate::driver::{Child, Driver};

/// Runs the job and returns the answer.
pub async fn run(driver: Rc<Driver>, job: CommandJob) -> Response {
    let result = match axs_pty::host::spawn_command(&job) {
        Ok(spawned) => collect(&driver, spawned).await,
        Err(failed) => failed,
    };
    driver.inspect(|server| server.command_finished(job, result))
}

/// What ended one wait of the collecting loop.
enum Event {
    Read(std::io::Result<usize>),
    Exited,
    Deadline,
}

/// Reads the command's output until EOF, the drain after its exit, or the time limit.
async fn collect(driver: &Rc<Driver>, spawned: Spawned) -> CommandResult {
    let pid = spawned.pid;
    let (tx, rx) = smol::channel::bounded(1);
    driver.add_child(pid, Child::Job(tx));
    let master = match Async::new(File::from(spawned.master)) {
        Ok(master) => master,
        Err(e) => {
            let _ = axs_pty::kill_group(pid);
            driver.add_child(pid, Child::Orphan);
            return CommandResult::Failed(format!("cannot watch the pty: {e}"));
        }
    };
    let limit = Instant::now() + EXECUTE_COMMAND_TIMEOUT;
    let mut deadline = limit;
    let mut exited = false;
    let mut output = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let timed_out = loop {
        let read = async { Event::Read(master.read_with(|f| (&*f).read(&mut buf)).await) };
        let exit = async {
            if exited || rx.recv().await.is_err() {
                future::pending::<()>().await;
            }
            Event::Exited
        };
        let timer = async {
            Timer::at(deadline).await;
            Event::Deadline
        };
        match future::or(read, future::or(exit, timer)).await {
            Event::Read(Ok(n)) if n > 0 => {
                let room = limits::COMMAND_MAX_OUTPUT.saturating_sub(output.len());
                output.extend_from_slice(&buf[..n.min(room)]);
            }
            Event::Read(_) => break false,
            Event::Exited => {
                exited = true;
                deadline = deadline.min(Instant::now() + limits::COMMAND_DRAIN_AFTER_EXIT);
            }
            Event::Deadline => break !exited,
        }
    };
    drop(master);
    // Whatever the command left behind in its session goes with it (if the shell was
    // reaped, only live members keep the pid from being reused).
    if !exited || axs_pty::group_alive(pid) {
        let _ = axs_pty::hangup_group(pid);
    }
    if timed_out {
        let _ = axs_pty::kill_group(pid);
    }
    if !exited {
        let reaped = future::or(async { rx.recv().await.is_ok() }, async {
            Timer::after(limits::COMMAND_REAP_WAIT).await;
            false
        })
        .await;
        if !reaped {
            let _ = axs_pty::kill_group(pid);
            driver.add_child(pid, Child::Orphan);
        }
    }
    if timed_out {
        return CommandResult::Failed(limits::command_timed_out());
    }
    CommandResult::Output(output)
}
