//! The child inherits exactly descriptors 0, 1 and 2, on every path; failed spawns leak nothing.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

use axs_pty::{spawn, FdSweep, SlaveOpen, SpawnMethod, SpawnOptions};
use common::{open_fd_count, type_in, wait_exit, Reader};
use rustix::fs::{Mode, OFlags};
use rustix::io::{Errno, FdFlags};
use rustix::process::WaitOptions;

/// These tests count descriptors and children of the whole process: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Descriptors the test holds on purpose: some inheritable, some close-on-exec.
struct Extra {
    _fds: Vec<OwnedFd>,
    numbers: Vec<i32>,
}

fn hold_extra_fds() -> Extra {
    let plain = rustix::fs::open("/dev/null", OFlags::RDONLY, Mode::empty()).unwrap();
    let cloexec: OwnedFd = File::open("/dev/null").unwrap().into();
    let (pipe_r, pipe_w) = rustix::pipe::pipe().unwrap();
    for fd in [&plain, &pipe_r, &pipe_w] {
        assert!(!rustix::io::fcntl_getfd(fd)
            .unwrap()
            .contains(FdFlags::CLOEXEC));
    }
    assert!(rustix::io::fcntl_getfd(&cloexec)
        .unwrap()
        .contains(FdFlags::CLOEXEC));
    let fds = vec![plain, cloexec, pipe_r, pipe_w];
    let numbers = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    Extra { _fds: fds, numbers }
}

/// Spawns `cat`, waits until it echoes (so it is past start-up), and returns its
/// descriptors with their targets, read from /proc/<pid>/fd.
fn child_fds(slave_open: SlaveOpen, fd_sweep: FdSweep) -> Vec<(i32, String)> {
    child_fds_with(slave_open, fd_sweep, SpawnMethod::Auto)
}

fn child_fds_with(
    slave_open: SlaveOpen,
    fd_sweep: FdSweep,
    method: SpawnMethod,
) -> Vec<(i32, String)> {
    let extra = hold_extra_fds();
    let mut opts = SpawnOptions::new("cat");
    opts.slave_open = slave_open;
    opts.fd_sweep = fd_sweep;
    opts.spawn_method = method;
    let child = spawn(&opts).unwrap();
    let _guard = common::Guard(child.pid);
    let mut out = Reader::new(&child.master);
    type_in(&child.master, "ping\n");
    // Once from the tty echo, once from cat itself.
    out.until("cat's echo", |t| t.matches("ping").count() >= 2);
    let mut fds: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{}/fd", child.pid))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let n = e.file_name().to_str().unwrap().parse().unwrap();
            let target = std::fs::read_link(e.path()).unwrap();
            (n, target.to_string_lossy().into_owned())
        })
        .collect();
    fds.sort();
    type_in(&child.master, "\x04");
    assert_eq!(wait_exit(child.pid), axs_pty::ExitStatus::Code(0));
    for n in &extra.numbers {
        assert!(*n > 2, "extra descriptor {n} should be above 2");
    }
    fds
}

fn assert_only_stdio(fds: &[(i32, String)]) {
    let numbers: Vec<i32> = fds.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, vec![0, 1, 2], "child descriptors: {fds:?}");
    for (n, target) in fds {
        assert!(target.starts_with("/dev/pts/"), "fd {n} -> {target}");
    }
}

#[test]
fn child_gets_only_stdio_normal_path() {
    let _s = serial();
    assert_only_stdio(&child_fds(SlaveOpen::ByName, FdSweep::Auto));
}

#[test]
fn child_gets_only_stdio_peer_path() {
    let _s = serial();
    assert_only_stdio(&child_fds(SlaveOpen::ForcePeer, FdSweep::Auto));
}

#[test]
fn child_gets_only_stdio_without_close_range() {
    let _s = serial();
    assert_only_stdio(&child_fds(SlaveOpen::ByName, FdSweep::ProcWalk));
    assert_only_stdio(&child_fds(SlaveOpen::ForcePeer, FdSweep::ProcWalk));
}

#[test]
fn child_gets_only_stdio_with_limit_loop() {
    let _s = serial();
    assert_only_stdio(&child_fds(SlaveOpen::ByName, FdSweep::LimitLoop));
}

#[test]
fn child_gets_only_stdio_with_fork() {
    let _s = serial();
    for slave_open in [SlaveOpen::ByName, SlaveOpen::ForcePeer] {
        for sweep in [FdSweep::Auto, FdSweep::ProcWalk, FdSweep::LimitLoop] {
            assert_only_stdio(&child_fds_with(slave_open, sweep, SpawnMethod::Fork));
        }
    }
}

#[test]
fn child_shell_lists_only_stdio() {
    let _s = serial();
    let _extra = hold_extra_fds();
    for sweep in [FdSweep::Auto, FdSweep::ProcWalk] {
        let mut opts = SpawnOptions::new("sh");
        // The listing is of the shell itself ($$), while ls runs as its child.
        opts.args = common::args(&["-c", "echo FDS; ls /proc/$$/fd; echo END"]);
        opts.fd_sweep = sweep;
        let child = spawn(&opts).unwrap();
        let _guard = common::Guard(child.pid);
        let mut out = Reader::new(&child.master);
        let text = out.expect("END\r\n").to_string();
        let listed: Vec<&str> = text
            .split("FDS")
            .nth(1)
            .and_then(|rest| rest.split("END").next())
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(listed, ["0", "1", "2"], "{sweep:?}: {text:?}");
        assert_eq!(wait_exit(child.pid), axs_pty::ExitStatus::Code(0));
    }
}

#[test]
fn missing_program_is_a_clear_error_and_leaks_nothing() {
    let _s = serial();
    let before = open_fd_count();
    for method in [SpawnMethod::Auto, SpawnMethod::Fork] {
        for slave_open in [SlaveOpen::ByName, SlaveOpen::ForcePeer] {
            let mut opts = SpawnOptions::new("/bin/nope");
            opts.slave_open = slave_open;
            opts.spawn_method = method;
            let err = spawn(&opts).unwrap_err();
            assert_eq!(err.to_string(), "No such file or directory: /bin/nope");
        }
        let mut opts = SpawnOptions::new("/etc/passwd");
        opts.spawn_method = method;
        let err = spawn(&opts).unwrap_err();
        assert_eq!(err.to_string(), "Permission denied: /etc/passwd");
        let mut opts = SpawnOptions::new("no-such-program-axs");
        opts.spawn_method = method;
        let err = spawn(&opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "No such file or directory: no-such-program-axs"
        );
    }
    assert_eq!(open_fd_count(), before, "descriptors leaked");
    // No child is left, not even a zombie: the failed ones were reaped.
    assert_eq!(
        rustix::process::waitpid(None, WaitOptions::NOHANG).unwrap_err(),
        Errno::CHILD
    );
}

#[test]
fn missing_cwd_is_named() {
    let _s = serial();
    let mut opts = SpawnOptions::new("sh");
    opts.cwd = Some("/no/such/dir".into());
    let err = spawn(&opts).unwrap_err();
    assert_eq!(err.to_string(), "No such file or directory: /no/such/dir");
}

#[test]
fn master_is_cloexec_and_switches_blocking_mode() {
    let _s = serial();
    let before = open_fd_count();
    let child = spawn(&SpawnOptions::new("cat")).unwrap();
    assert!(rustix::io::fcntl_getfd(&child.master)
        .unwrap()
        .contains(FdFlags::CLOEXEC));
    use std::os::fd::AsFd;
    axs_pty::set_nonblocking(child.master.as_fd(), true).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        rustix::io::read(&child.master, &mut buf).unwrap_err(),
        Errno::AGAIN
    );
    axs_pty::set_nonblocking(child.master.as_fd(), false).unwrap();
    assert!(!rustix::fs::fcntl_getfl(&child.master)
        .unwrap()
        .contains(OFlags::NONBLOCK));
    type_in(&child.master, "\x04");
    assert_eq!(wait_exit(child.pid), axs_pty::ExitStatus::Code(0));
    drop(child);
    // SigchldPipe's two descriptors stay open for the process's life.
    assert!(open_fd_count() <= before + 2);
}
