//! Terminate ends the whole session, including a background job that ignores
//! SIGHUP, and leaves no zombie.
//!
//! This binary makes itself a child subreaper, so the orphaned job becomes our
//! child when its shell dies: we can then prove how it ended and reap it.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::time::{Duration, Instant};

use axs_pty::{group_alive, spawn, terminate, wait_blocking, ExitStatus, SpawnOptions};
use common::{args, type_in, Reader};

fn become_subreaper() {
    rustix::process::set_child_subreaper(rustix::process::Pid::from_raw(1)).unwrap();
}

/// Reads "BG=<pid>" from the output.
fn background_pid(out: &mut Reader<'_>) -> u32 {
    let text = out
        .until("BG=<pid>", |t| {
            t.split("BG=")
                .nth(1)
                .is_some_and(|rest| rest.contains('\n'))
        })
        .to_string();
    let rest = text.split("BG=").nth(1).unwrap();
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// Reaps `pid`, failing (after killing it) if it has not ended within 5 s: a test must
/// stop by itself even when terminate failed to end the process.
fn wait_within(pid: u32) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = axs_pty::try_wait(pid).unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
            let _ = wait_blocking(pid);
            panic!("{pid} was still running 5 s after terminate");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Bit 0 of SigIgn in /proc/<pid>/status is SIGHUP.
fn ignores_sighup(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("SigIgn:")).unwrap();
    let mask = u64::from_str_radix(line["SigIgn:".len()..].trim(), 16).unwrap();
    mask & 1 == 1
}

fn assert_terminates_with_job(opts: SpawnOptions, start: &str) {
    become_subreaper();
    let child = spawn(&opts).unwrap();
    let _guard = common::Guard(child.pid);
    let mut out = Reader::new(&child.master);
    type_in(&child.master, start);
    let bg = background_pid(&mut out);
    // The job prints its pid after SIGHUP is ignored (inherited across exec).
    assert!(ignores_sighup(bg));

    let started = Instant::now();
    terminate(child.pid, Duration::from_millis(300)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!group_alive(child.pid));

    // The shell died of the hangup; the job, which ignored it, of the SIGKILL.
    assert_eq!(wait_within(child.pid), ExitStatus::Signal(1));
    assert_eq!(wait_within(bg), ExitStatus::Signal(9));
    for pid in [child.pid, bg] {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{pid} is still there"
        );
    }
}

#[test]
fn terminate_kills_shell_and_hup_ignoring_job() {
    let mut opts = SpawnOptions::new("sh");
    opts.args = args(&[
        "-c",
        "read x; (trap '' HUP; exec sh -c 'echo BG=$$; exec sleep 1000') & wait",
    ]);
    assert_terminates_with_job(opts, "\n");
}

#[test]
fn terminate_kills_interactive_shell_job_in_its_own_group() {
    // With job control on, the background job gets a process group of its own.
    let mut opts = SpawnOptions::new("sh");
    opts.args = args(&["-i"]);
    opts.env = vec![("PS1".into(), "$ ".into())];
    assert_terminates_with_job(
        opts,
        "(trap '' HUP; exec sh -c 'echo B''G=$$; exec sleep 1000') &\n",
    );
}

#[test]
fn quick_exit_returns_before_the_grace() {
    let mut opts = SpawnOptions::new("sh");
    opts.args = args(&["-c", "read x"]);
    let child = spawn(&opts).unwrap();
    let _guard = common::Guard(child.pid);
    let started = Instant::now();
    terminate(child.pid, Duration::from_secs(20)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(wait_within(child.pid), ExitStatus::Signal(1));
}
