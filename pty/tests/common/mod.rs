//! Helpers shared by the integration tests: bounded reads from a master, bounded waits.
#![allow(dead_code)]

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use axs_pty::{try_wait, ExitStatus, SigchldPipe};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

/// Upper bound for anything a test waits for.
pub const LIMIT: Duration = Duration::from_secs(10);

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// Waits until `fd` is readable or `left` passes; true when readable.
fn wait_readable(fd: impl AsFd, left: Duration) -> bool {
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    match poll(&mut fds, Some(&timespec(left))) {
        Ok(n) => n > 0,
        Err(Errno::INTR) => false,
        Err(e) => panic!("poll: {e}"),
    }
}

/// Accumulated output of a master, read with deadlines.
pub struct Reader<'a> {
    master: &'a OwnedFd,
    /// Everything read so far, lossily decoded.
    pub text: String,
    /// The slave side was closed by every process (EIO).
    pub closed: bool,
}

impl<'a> Reader<'a> {
    pub fn new(master: &'a OwnedFd) -> Self {
        Reader {
            master,
            text: String::new(),
            closed: false,
        }
    }

    /// Reads whatever is ready within `left`; false on timeout or EOF.
    fn read_some(&mut self, left: Duration) -> bool {
        if self.closed || !wait_readable(self.master, left) {
            return false;
        }
        let mut buf = [0u8; 4096];
        match rustix::io::read(self.master, &mut buf) {
            Ok(0) | Err(Errno::IO) => {
                self.closed = true;
                false
            }
            Ok(n) => {
                self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
                true
            }
            Err(Errno::INTR) | Err(Errno::AGAIN) => true,
            Err(e) => panic!("read master: {e}"),
        }
    }

    /// Reads until `pred(text)` holds; panics with the text so far after `LIMIT`.
    pub fn until(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> &str {
        let deadline = Instant::now() + LIMIT;
        while !pred(&self.text) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (!self.read_some(left) && self.closed) {
                break;
            }
        }
        assert!(
            pred(&self.text),
            "never saw {what}; output: {:?}",
            self.text
        );
        &self.text
    }

    /// Reads until `needle` appears.
    pub fn expect(&mut self, needle: &str) -> &str {
        self.until(needle, |t| t.contains(needle))
    }

    /// Reads until the slave side closes (or `LIMIT`), returning all text.
    pub fn read_to_end(&mut self) -> &str {
        let deadline = Instant::now() + LIMIT;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.read_some(left);
        }
        &self.text
    }
}

/// Writes all of `bytes` to the master.
pub fn type_in(master: &OwnedFd, bytes: &str) {
    let mut rest = bytes.as_bytes();
    while !rest.is_empty() {
        match rustix::io::write(master, rest) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::INTR) => {}
            Err(e) => panic!("write master: {e}"),
        }
    }
}

/// Waits (woken by SIGCHLD) for child `pid` to end and reaps it; kills it after `LIMIT`.
pub fn wait_exit(pid: u32) -> ExitStatus {
    let pipe = SigchldPipe::get().expect("sigchld pipe");
    let deadline = Instant::now() + LIMIT;
    loop {
        pipe.drain();
        if let Some(status) = try_wait(pid).expect("try_wait") {
            return status;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = axs_pty::kill_group(pid);
            let status = axs_pty::wait_blocking(pid);
            panic!("child {pid} did not exit in time ({status:?})");
        }
        wait_readable(pipe.fd(), left);
    }
}

/// Number of descriptors this process has open.
pub fn open_fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Arguments as OsStrings.
pub fn args(list: &[&str]) -> Vec<std::ffi::OsString> {
    list.iter().map(Into::into).collect()
}

/// Kills the session of `pid` if the test panics, so a failure leaves nothing running.
pub struct Guard(pub u32);

impl Drop for Guard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = axs_pty::kill_group(self.0);
            let _ = try_wait(self.0);
        }
    }
}

/// `SECCOMP_RET_ALLOW`: the syscall runs.
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

/// A BPF statement of a seccomp filter.
pub fn bpf_stmt(code: u32, k: u32) -> libc::sock_filter {
    bpf_jump(code, k, 0, 0)
}

/// A BPF conditional jump of a seccomp filter.
pub fn bpf_jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Installs `prog` as a seccomp filter on the calling thread (and its future children);
/// panics with the OS error when the kernel refuses it.
pub fn install_seccomp(prog: &mut [libc::sock_filter]) {
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
