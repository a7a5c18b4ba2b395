//! The child starts with default signal dispositions and an empty mask, whatever the
//! server ignores or blocks, with either spawn method.
//!
//! A binary of its own: it changes process-wide dispositions.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use axs_pty::{spawn, ExitStatus, SpawnMethod, SpawnOptions};
use common::{args, wait_exit, Reader};

/// Ignores `sig` for the whole process.
fn ignore(sig: libc::c_int) {
    // SAFETY: sigaction with a zeroed struct set to SIG_IGN; no handler involved.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_IGN;
        assert_eq!(libc::sigaction(sig, &action, std::ptr::null_mut()), 0);
    }
}

extern "C" fn count(_sig: libc::c_int) {}

/// Catches `sig` with a handler that does nothing.
fn catch(sig: libc::c_int) {
    // SAFETY: sigaction with a zeroed struct and an empty handler.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = count as extern "C" fn(libc::c_int) as libc::sighandler_t;
        assert_eq!(libc::sigaction(sig, &action, std::ptr::null_mut()), 0);
    }
}

/// Blocks `sig` on the calling thread (the one that spawns).
fn block(sig: libc::c_int) {
    // SAFETY: sigset initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
            0
        );
    }
}

/// The child's own `SigIgn`, `SigBlk` and `SigCgt` lines from /proc.
fn child_signal_masks(method: SpawnMethod) -> Vec<String> {
    let mut opts = SpawnOptions::new("sh");
    // cat changes no disposition (GNU grep, for one, catches SIGSEGV).
    opts.args = args(&["-c", "exec cat /proc/self/status"]);
    opts.spawn_method = method;
    let child = spawn(&opts).unwrap();
    let _guard = common::Guard(child.pid);
    let mut out = Reader::new(&child.master);
    out.read_to_end();
    assert_eq!(wait_exit(child.pid), ExitStatus::Code(0));
    out.text
        .lines()
        .map(str::trim)
        .filter(|l| {
            ["SigBlk:", "SigIgn:", "SigCgt:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(String::from)
        .collect()
}

#[test]
fn dispositions_are_default_and_mask_empty() {
    ignore(libc::SIGHUP);
    ignore(libc::SIGPIPE);
    catch(libc::SIGUSR2);
    block(libc::SIGUSR1);
    block(libc::SIGTERM);
    for method in [SpawnMethod::Auto, SpawnMethod::Fork] {
        let lines = child_signal_masks(method);
        assert_eq!(
            lines,
            [
                "SigBlk:\t0000000000000000",
                "SigIgn:\t0000000000000000",
                "SigCgt:\t0000000000000000",
            ],
            "{method:?}"
        );
    }
}
