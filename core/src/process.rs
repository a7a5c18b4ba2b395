//! The process table: every process group the server spawned (a session's program or a
//! job's shell; the group's id is the leader's pid), until nothing of it can need a signal.
//!
//! Termination is hang up now, kill [`TERMINATE_GRACE`] later: a hangup lets a program save
//! its state; the kill makes sure nothing that ignores SIGHUP outlives it.
//!
//! Invariants:
//! - One entry per pid: the newest spawn's. A spawn under a pid that has an entry replaces
//!   it and cancels its pending kill: the kernel hands a pid out again only once its old
//!   process was reaped and no live process has it as group or session id, so nothing of
//!   the old group is left to kill.
//! - Every signal names the entry it was decided for: an owner's request for a pid another
//!   owner now holds is ignored, and a kill comes out only while its (pid, serial) is the
//!   entry's.
//! - A hangup schedules exactly one kill; a second hangup while it is pending does nothing.
//! - An entry goes once its leader is reaped, its owner let go of it and no kill is pending.
//!
//! A [`Signal`] carries whether the group's leader was reaped: once it was, the pid stays
//! ours only while a live member has it as group id, so the runtime checks that
//! (`axs_pty::group_alive`) before it signals; before, the leader holds it.

use std::collections::BTreeMap;

use crate::deadline::Deadlines;
use crate::job::JobId;
use crate::limits::TERMINATE_GRACE;
use crate::server::SessionId;
use crate::time::Time;

/// Which signal to send to a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// SIGHUP: the terminal went away; programs save and exit.
    Hangup,
    /// SIGTERM: a program without a terminal (an `axs lsp` language server) is asked to end.
    Terminate,
    /// SIGKILL: what ignored the hangup.
    Kill,
}

/// Signal the process group `pid` (a session's or a job's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    /// The group's id: its leader's pid.
    pub pid: u32,
    /// Which signal.
    pub kind: SignalKind,
    /// The leader was reaped: signal only if the group still has live members (else the
    /// pid may be a stranger's by now).
    pub leader_reaped: bool,
}

/// Who spawned a process: a session (its id is the pid) or an `execute-command` job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Owner {
    /// A session's program.
    Session(SessionId),
    /// A job's shell.
    Job(JobId),
}

/// One spawned process group.
#[derive(Debug, Clone)]
struct Process {
    serial: u64,
    owner: Owner,
    leader_reaped: bool,
    released: bool,
}

/// Every process group the server spawned and may still signal.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcessTable {
    procs: BTreeMap<u32, Process>,
    kills: Deadlines<(u32, u64)>,
    last_serial: u64,
}

impl ProcessTable {
    /// `owner` spawned a process group led by `pid`; returns the owner of the entry it
    /// replaces (a reused pid), if any.
    pub(crate) fn spawned(&mut self, pid: u32, owner: Owner) -> Option<Owner> {
        self.last_serial += 1;
        let process = Process {
            serial: self.last_serial,
            owner,
            leader_reaped: false,
            released: false,
        };
        let old = self.procs.insert(pid, process)?;
        self.kills.set((pid, old.serial), None);
        Some(old.owner)
    }

    /// The leader `pid` was reaped: returns its owner, or `None` when the pid is not an
    /// unreaped leader of ours (its status then belongs to nobody).
    pub(crate) fn reaped(&mut self, pid: u32) -> Option<Owner> {
        let process = self.procs.get_mut(&pid).filter(|p| !p.leader_reaped)?;
        process.leader_reaped = true;
        let owner = process.owner;
        self.forget_if_done(pid);
        Some(owner)
    }

    /// `owner` no longer needs the entry of `pid` (its session or job is gone).
    pub(crate) fn release(&mut self, pid: u32, owner: Owner) {
        if let Some(process) = self.owned(pid, owner) {
            process.released = true;
            self.forget_if_done(pid);
        }
    }

    /// Hangs up `owner`'s group `pid` and schedules its kill at `now + TERMINATE_GRACE`.
    /// `None` when the pid is not `owner`'s any more or a kill is already pending.
    pub(crate) fn hang_up(&mut self, pid: u32, owner: Owner, now: Time) -> Option<Signal> {
        let process = self.owned(pid, owner)?;
        let (serial, leader_reaped) = (process.serial, process.leader_reaped);
        if self.kills.contains((pid, serial)) {
            return None;
        }
        self.kills
            .set((pid, serial), Some(now.after(TERMINATE_GRACE)));
        Some(Signal {
            pid,
            kind: SignalKind::Hangup,
            leader_reaped,
        })
    }

    /// The kills due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Time) -> Vec<Signal> {
        let due = self.kills.due(now);
        due.into_iter().filter_map(|key| self.kill(key)).collect()
    }

    /// Every pending kill, now (the server is exiting).
    pub(crate) fn kill_all_pending(&mut self) -> Vec<Signal> {
        let pending = self.kills.keys();
        pending
            .into_iter()
            .filter_map(|key| self.kill(key))
            .collect()
    }

    /// When the next kill is due.
    pub(crate) fn poll_timeout(&self) -> Option<Time> {
        self.kills.first()
    }

    /// The pids whose leader is not reaped yet.
    pub(crate) fn unreaped(&self) -> impl Iterator<Item = u32> + '_ {
        self.procs
            .iter()
            .filter(|(_, p)| !p.leader_reaped)
            .map(|(pid, _)| *pid)
    }

    /// How many process groups the table still tracks.
    pub(crate) fn len(&self) -> usize {
        self.procs.len()
    }

    /// The kill of `(pid, serial)`, unless the entry was replaced or is gone.
    fn kill(&mut self, (pid, serial): (u32, u64)) -> Option<Signal> {
        self.kills.set((pid, serial), None);
        let process = self.procs.get(&pid).filter(|p| p.serial == serial)?;
        let signal = Signal {
            pid,
            kind: SignalKind::Kill,
            leader_reaped: process.leader_reaped,
        };
        self.forget_if_done(pid);
        Some(signal)
    }

    fn owned(&mut self, pid: u32, owner: Owner) -> Option<&mut Process> {
        self.procs.get_mut(&pid).filter(|p| p.owner == owner)
    }

    fn forget_if_done(&mut self, pid: u32) {
        let done = self.procs.get(&pid).is_some_and(|p| {
            p.leader_reaped && p.released && !self.kills.contains((pid, p.serial))
        });
        if done {
            self.procs.remove(&pid);
        }
    }
}
