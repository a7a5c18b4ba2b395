//! Where a sandbox refuses a vfork-style `clone` (seccomp answering EPERM), spawning
//! falls back to `fork` and keeps every guarantee.
//!
//! A binary of its own: the filter stays on the test thread (and its children), and
//! the fallback, once taken, holds for the process.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use axs_pty::{spawn, ExitStatus, SpawnOptions};
use common::{
    bpf_jump as jump, bpf_stmt as stmt, install_seccomp, type_in, wait_exit, Reader,
    SECCOMP_RET_ALLOW,
};

const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// Offset of the low 32 bits of `seccomp_data.args[0]` (little-endian).
const ARG0_LOW: u32 = 16;

/// Installs, on the calling thread, a filter answering EPERM to `clone` with CLONE_VFORK.
fn refuse_vfork_clone() {
    let mut prog = [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            libc::SYS_clone as u32,
            0,
            3,
        ),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, ARG0_LOW),
        jump(
            libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
            libc::CLONE_VFORK as u32,
            0,
            1,
        ),
        stmt(
            libc::BPF_RET | libc::BPF_K,
            SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, SECCOMP_RET_ALLOW),
    ];
    install_seccomp(&mut prog);
}

#[cfg(target_endian = "little")]
#[test]
fn refused_clone_falls_back_to_fork() {
    refuse_vfork_clone();
    for _ in 0..2 {
        let child = spawn(&SpawnOptions::new("cat")).unwrap();
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
    let err = spawn(&SpawnOptions::new("/bin/nope")).unwrap_err();
    assert_eq!(err.to_string(), "No such file or directory: /bin/nope");
}
