//! Ending a session: hang up, wait a grace period, then kill what remains.
//!
//! The target is the child's whole *session* (sid = pgid = pid, since the child is a
//! session leader), not only its process group: an interactive shell puts each
//! background job in a process group of its own, and a job that ignores SIGHUP
//! would survive a signal to the leader's group alone. Members are found by
//! scanning `/proc/<pid>/stat`; without `/proc`, only the leader's group is reached.
//!
//! Nothing here reaps the leader: the runtime's waiter (`wait_blocking`, or
//! `try_wait` on SIGCHLD) does. Zombies do not count as alive, so [`terminate`]
//! returns as soon as every member has exited, reaped or not. Call these only while
//! the session may still have members: once all are gone and reaped, the id can be
//! reused by an unrelated process.

use std::collections::HashMap;
use std::io;
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{Pid, Signal};

/// How often the grace wait checks whether the session is gone.
const POLL: Duration = Duration::from_millis(10);
/// How long SIGKILL rounds go on (a forking process may add members between rounds).
const KILL_BOUND: Duration = Duration::from_secs(2);

/// Sends SIGHUP then SIGCONT (so stopped jobs see the hangup) to every process
/// group of session `pid`.
pub fn hangup_group(pid: u32) -> io::Result<()> {
    signal_session(pid, Signal::HUP)?;
    signal_session(pid, Signal::CONT)
}

/// Sends SIGTERM then SIGCONT (so a stopped member sees it) to every process group of
/// session `pid`: the polite end for a program without a terminal to hang up.
pub fn sigterm_group(pid: u32) -> io::Result<()> {
    signal_session(pid, Signal::TERM)?;
    signal_session(pid, Signal::CONT)
}

/// Sends SIGKILL to every process group of session `pid`.
pub fn kill_group(pid: u32) -> io::Result<()> {
    signal_session(pid, Signal::KILL)
}

/// Whether session `pid` still has a member that has not exited (zombies excluded).
pub fn group_alive(pid: u32) -> bool {
    let Ok(sid) = to_pid(pid) else {
        return false;
    };
    match session_groups(sid) {
        Some(groups) => !groups.is_empty(),
        // No /proc: a signal 0 to the group also counts an unreaped zombie leader.
        None => !matches!(
            rustix::process::test_kill_process_group(sid),
            Err(Errno::SRCH)
        ),
    }
}

/// Hangs up session `pid`, waits up to `grace` for it to end, then kills what remains.
///
/// Blocks the calling thread for at most `grace` plus the kill rounds; async
/// runtimes use [`hangup_group`], a timer, [`group_alive`] and [`kill_group`] instead.
/// Does not reap the leader (see the module doc).
pub fn terminate(pid: u32, grace: Duration) -> io::Result<()> {
    hangup_group(pid)?;
    let deadline = Instant::now() + grace;
    while group_alive(pid) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return kill_until_gone(pid);
        }
        thread::sleep(left.min(POLL));
    }
    Ok(())
}

/// SIGKILL rounds until no member is left (bounded).
fn kill_until_gone(pid: u32) -> io::Result<()> {
    let deadline = Instant::now() + KILL_BOUND;
    loop {
        kill_group(pid)?;
        if !group_alive(pid) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::other(format!(
                "session {pid} still has processes after SIGKILL"
            )));
        }
        thread::sleep(POLL);
    }
}

/// Refuses 0 and 1 besides out-of-range values: `kill(-1, sig)` would signal every
/// process we may signal, and `kill(-0, sig)` our own group. No child is ever either.
fn to_pid(pid: u32) -> io::Result<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|&raw| raw > 1)
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::from(Errno::INVAL))
}

/// Signals the leader's group and every other group found in the session.
fn signal_session(pid: u32, sig: Signal) -> io::Result<()> {
    let sid = to_pid(pid)?;
    let mut groups = session_groups(sid).unwrap_or_default();
    if !groups.contains(&sid) {
        groups.push(sid);
    }
    for group in groups {
        match rustix::process::kill_process_group(group, sig) {
            // Gone already, or not ours (a member that changed uid): nothing to do.
            Ok(()) | Err(Errno::SRCH) | Err(Errno::PERM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// How long one scan of `/proc` answers for every session. Ending many sessions at once
/// (a server's shutdown) then costs one scan, not one per session: without it, shutting
/// down 2000 sessions read every process's stat 2000 times over (minutes).
///
/// A stale answer is safe where it is used: a session the scan found is answered from it
/// (a process forked since is caught by the kill rounds, which rescan); a session it did
/// not find is only answered "no members" when its leader has ended too (a session gains
/// members only by a member's fork); a live leader the scan missed (a session started
/// since) means a new scan.
const SNAPSHOT_TTL: Duration = Duration::from_millis(20);

/// The process groups of every session's live members, as of one scan of `/proc`.
struct Snapshot {
    /// When the scan finished: a scan of thousands of processes takes longer than the TTL.
    taken: Instant,
    /// How long the scan took; a snapshot lives at least four times that, so scanning
    /// stays a small share of the time however many processes there are.
    cost: Duration,
    groups: HashMap<i32, Vec<Pid>>,
}

static SNAPSHOT: Mutex<Option<Snapshot>> = Mutex::new(None);

/// Distinct process groups of the live (non-zombie) members of session `sid`;
/// `None` when `/proc` cannot be read.
fn session_groups(sid: Pid) -> Option<Vec<Pid>> {
    let raw = sid.as_raw_nonzero().get();
    let mut snapshot = SNAPSHOT.lock().unwrap_or_else(PoisonError::into_inner);
    let usable = snapshot.as_ref().is_some_and(|s| {
        s.taken.elapsed() < SNAPSHOT_TTL.max(s.cost * 4)
            && (s.groups.contains_key(&raw) || !leader_alive(raw))
    });
    if !usable {
        *snapshot = Some(scan_proc()?);
    }
    let groups = snapshot.as_ref()?.groups.get(&raw);
    Some(groups.cloned().unwrap_or_default())
}

/// Whether process `pid` exists and is not a zombie (an ended leader not yet reaped).
fn leader_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| parse_stat(&stat))
        .is_some_and(|fields| fields.live)
}

/// Reads every process's session and group from `/proc`.
fn scan_proc() -> Option<Snapshot> {
    let started = Instant::now();
    let mut groups: HashMap<i32, Vec<Pid>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // A process may exit between listing and reading: skip it.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) else {
            continue;
        };
        let Some(member) = parse_stat(&stat).filter(|m| m.live) else {
            continue;
        };
        if let Some(pgrp) = Pid::from_raw(member.pgrp).filter(|_| member.pgrp > 1) {
            let session = groups.entry(member.session).or_default();
            if !session.contains(&pgrp) {
                session.push(pgrp);
            }
        }
    }
    Some(Snapshot {
        taken: Instant::now(),
        cost: started.elapsed(),
        groups,
    })
}

/// The fields of `/proc/<pid>/stat` that terminate needs.
#[derive(Debug, PartialEq, Eq)]
struct StatFields {
    live: bool,
    pgrp: i32,
    session: i32,
}

/// Parses "pid (comm) S ppid pgrp session ..."; comm may contain spaces and ')'.
fn parse_stat(stat: &str) -> Option<StatFields> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some(StatFields {
        live: state != "Z" && state != "X",
        pgrp,
        session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines() {
        let line = "4242 (we ird) name) S 1 4240 4200 34816 4240 4194560 0 0";
        assert_eq!(
            parse_stat(line),
            Some(StatFields {
                live: true,
                pgrp: 4240,
                session: 4200
            })
        );
        let zombie = "7 (sh) Z 1 7 7 0 -1";
        assert_eq!(parse_stat(zombie).map(|f| f.live), Some(false));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn refuses_pids_that_would_widen_a_kill() {
        for pid in [0, 1, u32::MAX] {
            assert!(hangup_group(pid).is_err());
            assert!(kill_group(pid).is_err());
            assert!(sigterm_group(pid).is_err());
            assert!(terminate(pid, Duration::ZERO).is_err());
            assert!(!group_alive(pid));
        }
    }
}
