//! `POST /execute-command`: spawn the job's shell, feed its pty's output to the core, and
//! wait for the answer the core decides. The time limit, the drain after the exit, the
//! output cap and the hang-up and kill of what the command leaves are the core's
//! ([`axs_core::job`]); the exit comes through the reaper, the deadlines through the
//! timer task.

use std::fs::File;
use std::rc::Rc;

use axs_core::http::Response;
use axs_core::job::JobId;
use axs_core::server::Server;
use axs_pty::Spawned;

use crate::driver::Driver;
use crate::pty::read_into_core;
use crate::reactor::Async;

/// Runs job `job` (`sh -c command` in `cwd`) and returns its answer; `None` if nobody
/// answered (the driver went away).
pub async fn run(driver: &Rc<Driver>, job: JobId, command: &str, cwd: &str) -> Option<Response> {
    let answer = driver.add_job(job);
    match axs_host::spawn_command(command, cwd) {
        Ok(spawned) => start(driver, job, spawned),
        Err(failure) => driver.call(|server, _| server.job_spawn_failed(job, &failure)),
    }
    answer.recv().await.ok()
}

/// Starts the reader of a spawned job, then tells the core (no await in between: the
/// spawn is reported before anything else can run).
fn start(driver: &Rc<Driver>, job: JobId, spawned: Spawned) {
    let pid = spawned.pid;
    match Async::new_edge_triggered(File::from(spawned.master)) {
        Ok(master) => {
            let reader = driver.spawn(read_output(driver.clone(), job, master));
            driver.set_job_reader(job, reader);
            driver.call(|server, now| server.job_spawned(job, pid, now));
        }
        Err(e) => {
            // The master is closed by now, which hangs the shell up: its output is over.
            log::warn!("{job}: cannot watch the pty: {e}");
            driver.call(|server, now| {
                server.job_spawned(job, pid, now);
                server.job_eof(job, now);
            });
        }
    }
}

/// Reads the job's pty into the core until EOF; cancelled (and the master closed) on
/// the core's `ClosePty`.
async fn read_output(driver: Rc<Driver>, job: JobId, master: Async<File>) {
    let mut unyielded = 0;
    loop {
        let slice = |server: &Server, now| server.job_output_slice(now);
        let feed = |server: &mut Server, bytes: &[u8], _| server.job_output(job, bytes);
        let read = read_into_core(&driver, &master, &mut unyielded, slice, feed);
        match read.await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                log::debug!("{job}: pty read: {e}");
                break;
            }
        }
    }
    driver.call(|server, now| server.job_eof(job, now));
}
