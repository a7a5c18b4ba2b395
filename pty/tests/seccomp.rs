//! Android's app seccomp filter traps syscalls it does not know with SIGSYS. A
//! child whose `close_range` is trapped must survive, fall back, and still
//! inherit only descriptors 0, 1 and 2.
//!
//! A binary of its own: the filter stays on the test thread (and its children).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use axs_pty::{spawn, ExitStatus, FdSweep, SpawnOptions};
use common::{
    bpf_jump, bpf_stmt as stmt, install_seccomp, type_in, wait_exit, Reader, SECCOMP_RET_ALLOW,
};

const SECCOMP_RET_TRAP: u32 = 0x0003_0000;

/// Installs, on the calling thread, a filter that traps `close_range` with SIGSYS.
fn trap_close_range() {
    // BPF: load seccomp_data.nr; if close_range return TRAP, else ALLOW. (No arch
    // check: the test runs native code only.)
    let mut prog = [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        bpf_jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            libc::SYS_close_range as u32,
            0,
            1,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, SECCOMP_RET_TRAP),
        stmt(libc::BPF_RET | libc::BPF_K, SECCOMP_RET_ALLOW),
    ];
    install_seccomp(&mut prog);
}

#[test]
fn trapped_close_range_falls_back() {
    let _hold = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    trap_close_range();
    let mut opts = SpawnOptions::new("cat");
    opts.fd_sweep = FdSweep::Auto;
    let child = spawn(&opts).unwrap();
    let _guard = common::Guard(child.pid);
    let mut out = Reader::new(&child.master);
    type_in(&child.master, "ping\n");
    out.until("cat's echo", |t| t.matches("ping").count() >= 2);
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", child.pid))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"]);
    type_in(&child.master, "\x04");
    assert_eq!(wait_exit(child.pid), ExitStatus::Code(0));
}
