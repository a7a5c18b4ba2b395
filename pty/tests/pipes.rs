//! Programs on pipes (`spawn_piped`): descriptors, session and group, environment, cwd,
//! errors, and SIGTERM to the group.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

use axs_pty::{spawn_piped, ExitStatus, FdSweep, PipedChild, PipedOptions};
use common::{args, open_fd_count, wait_exit};
use rustix::io::FdFlags;

/// These tests count descriptors and change the process environment: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn sh(script: &str) -> PipedOptions {
    let mut opts = PipedOptions::new("sh");
    opts.args = args(&["-c", script]);
    opts
}

/// Everything the child writes on stdout until EOF (stdin is closed first).
fn output(child: PipedChild) -> (String, String, u32) {
    let PipedChild {
        pid,
        stdin,
        stdout,
        stderr,
    } = child;
    drop(stdin);
    let mut out = String::new();
    std::fs::File::from(stdout)
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    std::fs::File::from(stderr)
        .read_to_string(&mut err)
        .unwrap();
    (out, err, pid)
}

#[test]
fn round_trip_through_cat() {
    let _s = serial();
    let child = spawn_piped(&PipedOptions::new("cat")).unwrap();
    let _guard = common::Guard(child.pid);
    std::fs::File::from(child.stdin.try_clone().unwrap())
        .write_all(b"hello\n")
        .unwrap();
    let (out, err, pid) = output(child);
    assert_eq!((out.as_str(), err.as_str()), ("hello\n", ""));
    assert_eq!(wait_exit(pid), ExitStatus::Code(0));
}

#[test]
fn parent_ends_are_cloexec_and_blocking() {
    let _s = serial();
    let child = spawn_piped(&PipedOptions::new("cat")).unwrap();
    let _guard = common::Guard(child.pid);
    for fd in [&child.stdin, &child.stdout, &child.stderr] {
        assert!(rustix::io::fcntl_getfd(fd)
            .unwrap()
            .contains(FdFlags::CLOEXEC));
        assert!(!rustix::fs::fcntl_getfl(fd)
            .unwrap()
            .contains(rustix::fs::OFlags::NONBLOCK));
    }
    let (_, _, pid) = output(child);
    assert_eq!(wait_exit(pid), ExitStatus::Code(0));
}

#[test]
fn child_gets_only_its_three_pipes() {
    let _s = serial();
    // Held open and inheritable on purpose: the child must not see them.
    let (_keep_r, _keep_w): (OwnedFd, OwnedFd) = rustix::pipe::pipe().unwrap();
    assert!(_keep_r.as_raw_fd() > 2);
    for sweep in [FdSweep::Auto, FdSweep::ProcWalk, FdSweep::LimitLoop] {
        let mut opts = sh("ls /proc/$$/fd; for n in 0 1 2; do readlink /proc/$$/fd/$n; done");
        opts.fd_sweep = sweep;
        let (out, err, pid) = output(spawn_piped(&opts).unwrap());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[..3], ["0", "1", "2"], "{sweep:?}: {out:?} {err:?}");
        assert_eq!(lines.len(), 6, "{sweep:?}: {out:?}");
        for target in &lines[3..] {
            assert!(target.starts_with("pipe:"), "{sweep:?}: {target}");
        }
        assert_eq!(wait_exit(pid), ExitStatus::Code(0));
    }
}

#[test]
fn child_leads_its_own_session_and_group() {
    let _s = serial();
    let (out, _, pid) = output(spawn_piped(&sh("cat /proc/$$/stat")).unwrap());
    let fields: Vec<&str> = out[out.rfind(')').unwrap() + 2..].split(' ').collect();
    // state ppid pgrp session tty_nr
    assert_eq!(fields[2], pid.to_string(), "pgrp: {out}");
    assert_eq!(fields[3], pid.to_string(), "session: {out}");
    assert_eq!(fields[4], "0", "no controlling terminal: {out}");
    assert_eq!(wait_exit(pid), ExitStatus::Code(0));
}

#[test]
fn environment_has_no_axs_variables_and_cwd_is_the_servers() {
    let _s = serial();
    std::env::set_var("AXS_SECRET_FOR_TEST", "x");
    std::env::set_var("AXS_READY_PIPE", "/tmp/nope");
    std::env::set_var("KEEP_ME_FOR_TEST", "kept");
    let child = spawn_piped(&sh("env; echo CWD=$(pwd -P)")).unwrap();
    std::env::remove_var("AXS_SECRET_FOR_TEST");
    std::env::remove_var("AXS_READY_PIPE");
    std::env::remove_var("KEEP_ME_FOR_TEST");
    let (out, _, pid) = output(child);
    assert!(!out.lines().any(|l| l.starts_with("AXS_")), "{out}");
    assert!(out.contains("KEEP_ME_FOR_TEST=kept"), "{out}");
    let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
    assert!(out.contains(&format!("CWD={}\n", cwd.display())), "{out}");
    assert_eq!(wait_exit(pid), ExitStatus::Code(0));
}

#[test]
fn missing_program_and_cwd_are_clear_errors_and_leak_nothing() {
    let _s = serial();
    let before = open_fd_count();
    let err = spawn_piped(&PipedOptions::new("/bin/nope")).unwrap_err();
    assert_eq!(err.to_string(), "No such file or directory: /bin/nope");
    let mut opts = PipedOptions::new("sh");
    opts.cwd = Some("/no/such/dir".into());
    let err = spawn_piped(&opts).unwrap_err();
    assert_eq!(err.to_string(), "No such file or directory: /no/such/dir");
    assert_eq!(open_fd_count(), before, "descriptors leaked");
}

#[test]
fn sigterm_group_reaches_the_programs_children() {
    let _s = serial();
    // The grandchild prints its pid, then both wait; SIGTERM to the group ends both.
    let child = spawn_piped(&sh("sleep 30 & echo $!; wait")).unwrap();
    let _guard = common::Guard(child.pid);
    let mut line = [0u8; 32];
    let n = rustix::io::read(&child.stdout, &mut line).unwrap();
    let grandchild: u32 = std::str::from_utf8(&line[..n])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    axs_pty::sigterm_group(child.pid).unwrap();
    let status = wait_exit(child.pid);
    assert_eq!(status.signal_name(), Some("SIGTERM"), "{status:?}");
    let deadline = std::time::Instant::now() + common::LIMIT;
    while axs_pty::group_alive(child.pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
    assert!(
        !axs_pty::group_alive(child.pid),
        "the grandchild survived SIGTERM to the group: {state}"
    );
}
