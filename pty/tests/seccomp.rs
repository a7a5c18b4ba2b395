//! Android's app seccomp filter traps syscalls it does not know with SIGSYS. A
//! child whose `close_range` is trapped must survive, fall back, and still
//! inherit only descriptors 0, 1 and 2.
//!
//! A binary of its own: the filter stays on the test thread (and its children).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use axs_pty::{spawn, ExitStatus, FdSweep, SpawnOptions};
use common::{type_in, wait_exit, Reader};

const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// Installs, on the calling thread, a filter that traps `close_range` with SIGSYS.
fn trap_close_range() {
    // BPF: load seccomp_data.nr; if close_range return TRAP, else ALLOW. (No arch
    // check: the test runs native code only.)
    let mut prog = [
        stmt((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_close_range as u32,
        },
        stmt((libc::BPF_RET | libc::BPF_K) as u16, SECCOMP_RET_TRAP),
        stmt((libc::BPF_RET | libc::BPF_K) as u16, SECCOMP_RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: prctl with integer arguments, then with a pointer to a valid program
    // that outlives the call (the kernel copies it).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog
            ),
            0,
            "seccomp: {}",
            std::io::Error::last_os_error()
        );
    }
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
