//! Carrying out the core's [`Signal`]: hang up, terminate or kill a process group we spawned.
//!
//! The core decides which group and when; the one thing it cannot know is whether a group
//! whose leader was reaped still has live members (only then is its pid still ours: the
//! kernel hands out a pid again once nothing uses it as a group or session id). That check
//! is made here, the same way for both runtimes.

use axs_core::process::{Signal, SignalKind};

/// Sends `signal` to its process group, unless the leader was reaped and nothing of the
/// group is left (the pid may be a stranger's by then). Failures are logged: the group
/// may have ended between the decision and the signal.
pub fn deliver(signal: Signal) {
    let Signal {
        pid,
        kind,
        leader_reaped,
    } = signal;
    if leader_reaped && !axs_pty::group_alive(pid) {
        log::trace!("group {pid}: nothing left to signal");
        return;
    }
    let sent = match kind {
        SignalKind::Hangup => axs_pty::hangup_group(pid),
        SignalKind::Terminate => axs_pty::sigterm_group(pid),
        SignalKind::Kill => {
            log::debug!("group {pid}: still running after its grace; killing");
            axs_pty::kill_group(pid)
        }
    };
    if let Err(e) = sent {
        log::debug!("group {pid}: {kind:?}: {e}");
    }
}
