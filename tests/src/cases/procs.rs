//! Processes and descriptors: the child's fds, terminate, leaks, server death and shutdown.

use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustix::process::Signal;

use super::{sh_script, when_reading, OrFail, EVENT};
use crate::procfs;
use crate::server::{Server, TempDir};
use crate::ws::Ws;

fn check_child_fds(bin: &Path, env: &[(&str, &str)]) {
    let server = Server::start(bin, &["-c", "cat"], env);
    let pid = server.create_terminal(80, 24);
    // Once `cat` blocks reading its terminal it has finished starting (and closed any
    // locale files it opened): what it holds now is what it inherited.
    procfs::wait_reading_stdin(pid, EVENT).or_fail();
    let fds = procfs::fds(pid).or_fail();
    assert_eq!(
        fds,
        vec![0, 1, 2],
        "the child (env {env:?}) must hold only 0, 1, 2; it holds {:?}",
        procfs::fd_targets(pid)
    );
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    assert!(
        crate::text::find(&environ, b"AXS_READY_PIPE=").is_none(),
        "AXS_READY_PIPE must not leak into the spawned program's environment"
    );
    let tty = std::fs::read_link(format!("/proc/{pid}/fd/0")).map(|p| p.display().to_string());
    assert!(
        tty.as_ref().is_ok_and(|t| t.starts_with("/dev/pts/")),
        "the child's stdin must be its pty, got {tty:?}"
    );
}

/// The child's descriptors are exactly 0, 1, 2.
pub fn child_fds(bin: &Path) {
    check_child_fds(bin, &[]);
}

/// The same on the forced TIOCGPTPEER path (`AXS_PTY_PEER=1`).
pub fn child_fds_pty_peer(bin: &Path) {
    check_child_fds(bin, &[("AXS_PTY_PEER", "1")]);
}

const GROUP_SCRIPT: &str = r#"stty -echo
read go
(trap '' HUP; exec sleep 1000) &
echo "BG1 $!"
sleep 1000 &
echo "BG2 $!"
echo START
read x
"#;

fn number_after(text: &str, tag: &str) -> u32 {
    text.split(tag)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("self-check: no `{tag}<pid>` in the output {text:?}"))
}

/// Terminate removes the whole process group, including a job that ignores SIGHUP; the
/// attached client gets the exit frame and a close.
pub fn terminate_kills_group(bin: &Path) {
    let dir = TempDir::new("group");
    let cmd = sh_script(&dir, "group.sh", GROUP_SCRIPT);
    let server = Server::start(bin, &["-c", &cmd], &[]);
    let pid = server.create_terminal(80, 24);
    let mut ws = server.attach(pid);
    when_reading(&mut ws, pid, "\r");
    ws.wait_for("START\r\n", EVENT).or_fail();
    let out = String::from_utf8_lossy(&ws.got.binary).into_owned();
    let pids = [pid, number_after(&out, "BG1 "), number_after(&out, "BG2 ")];
    let members = procfs::group_members(pid);
    assert!(
        pids.iter().all(|p| members.contains(p)),
        "self-check: {pids:?} should all be in process group {pid} ({members:?})"
    );
    server.terminate(pid);
    let left = procfs::wait_gone(&pids, Duration::from_secs(15));
    assert!(
        left.is_empty(),
        "15 s after terminate these processes of the session still run: {}",
        procfs::describe(&left)
    );
    let exit = ws.expect_exit(EVENT).or_fail();
    assert!(
        exit.signal.is_some() || exit.exit_code.is_some(),
        "{exit:?}"
    );
    ws.assert_plain().or_fail();
}

/// One session's whole life: create, attach, echo, terminate, exit frame, gone.
fn session_cycle(server: &Server, n: u32) {
    let pid = server.create_terminal(80, 24);
    let mut ws = server.attach(pid);
    ws.label = format!("session {n} (pid {pid})");
    ws.send_text(&format!("echo ok-$(({n} + 1))\r")).or_fail();
    ws.wait_for(&format!("ok-{}\r\n", n + 1), EVENT).or_fail();
    server.terminate(pid);
    ws.expect_exit(EVENT).or_fail();
    drop(ws);
    let left = procfs::wait_gone(&[pid], EVENT);
    assert!(
        left.is_empty(),
        "session {n}: {} still runs after terminate",
        procfs::describe(&left)
    );
}

/// 200 sessions leave the server's descriptor and thread counts where they started.
pub fn sessions_200(bin: &Path) {
    let server = Arc::new(Server::start(bin, &["-c", "sh"], &[]));
    session_cycle(&server, 0);
    let spid = server.pid();
    // Let anything lazily started by the first session settle before taking the baseline.
    thread::sleep(Duration::from_millis(500));
    let fds0 = procfs::fds(spid).or_fail();
    let threads0 = procfs::threads(spid).unwrap_or(0);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let server = server.clone();
            thread::spawn(move || {
                for i in 0..50 {
                    session_cycle(&server, 1 + w * 50 + i);
                }
            })
        })
        .collect();
    for w in workers {
        if w.join().is_err() {
            panic!("a session worker failed (see its message above)");
        }
    }
    let settled = procfs::poll(Duration::from_secs(30), || {
        procfs::fds(spid).map(|f| f.len()).unwrap_or(usize::MAX) <= fds0.len()
            && procfs::threads(spid).unwrap_or(u32::MAX) <= threads0
    });
    if !settled {
        let now: Vec<String> = procfs::fd_targets(spid);
        panic!(
            "after 200 sessions the server holds {} fds (was {}) and {:?} threads (was {threads0}); fds now:\n{}",
            now.len(),
            fds0.len(),
            procfs::threads(spid),
            now.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
        );
    }
}

/// SIGKILL of the server leaves no session process running.
pub fn sigkill_server(bin: &Path) {
    let mut server = Server::start(bin, &["-c", "sh"], &[]);
    let pids: Vec<u32> = (0..5).map(|_| server.create_terminal(80, 24)).collect();
    let mut clients: Vec<Ws> = pids[..2].iter().map(|p| server.attach(*p)).collect();
    for (i, ws) in clients.iter_mut().enumerate() {
        ws.send_text(&format!("echo ok-$(({i} + 1))\r")).or_fail();
        ws.wait_for(&format!("ok-{}\r\n", i + 1), EVENT).or_fail();
    }
    server.proc.signal(Signal::KILL);
    assert!(
        server.proc.wait_timeout(EVENT).is_some(),
        "the server survived SIGKILL"
    );
    let left = procfs::wait_gone(&pids, Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "10 s after SIGKILL of the server these sessions still run (something else holds their pty master?): {}",
        procfs::describe(&left)
    );
}

/// SIGTERM: every attached client gets its exit frame then a close; exit 0; no session left.
pub fn shutdown_sigterm(bin: &Path) {
    let mut server = Server::start(bin, &["-c", "sh"], &[]);
    let pids: Vec<u32> = (0..3).map(|_| server.create_terminal(80, 24)).collect();
    let mut clients: Vec<Ws> = Vec::new();
    for (i, p) in pids.iter().enumerate() {
        let mut ws = server.attach(*p);
        ws.label = format!("client of session {p}");
        ws.send_text(&format!("echo ok-$(({i} + 1))\r")).or_fail();
        ws.wait_for(&format!("ok-{}\r\n", i + 1), EVENT).or_fail();
        clients.push(ws);
    }
    server.proc.signal(Signal::TERM);
    for ws in &mut clients {
        ws.expect_exit(EVENT)
            .map_err(|e| {
                format!(
                    "at SIGTERM every attached client must get its exit frame, then a close: {e}"
                )
            })
            .or_fail();
        ws.assert_plain().or_fail();
    }
    let status = server.proc.wait_timeout(EVENT);
    assert!(
        status.is_some_and(|s| s.success()),
        "after SIGTERM the server must exit 0, got {status:?}"
    );
    let left = procfs::wait_gone(&pids, Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "sessions left after shutdown: {}",
        procfs::describe(&left)
    );
}

/// How long a session's or a command's processes get between the hang-up and the kill
/// (the servers' `TERMINATE_GRACE`).
const TERMINATE_GRACE: Duration = Duration::from_secs(2);

/// Kills a process the case started through the server if it is still running at the end
/// (a failing case must not leave it behind); checks the name so a reused pid is spared.
struct KillOnDrop {
    pid: u32,
    comm: &'static str,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if procfs::running(self.pid) && procfs::comm(self.pid).as_deref() == Some(self.comm) {
            if let Some(p) = rustix::process::Pid::from_raw(self.pid as i32) {
                let _ = rustix::process::kill_process(p, Signal::KILL);
            }
        }
    }
}

/// SIGTERM while an `execute-command` job that ignores SIGHUP is between its hang-up and
/// its kill: the server still kills it before it exits (a pending clean-up must not die
/// with the server).
pub fn shutdown_kills_hup_ignoring_command(bin: &Path) {
    let mut server = Server::start(bin, &["-c", "sh"], &[]);
    // The shell exits at once, so the answer comes; the job keeps the pty and ignores the
    // hang-up that follows, so only the kill after the grace can end it. The shell ignores
    // SIGHUP before it forks: a trap set in the job itself could come after the hang-up.
    let r = server.post_json(
        "/execute-command",
        r#"{"command":"trap '' HUP; sleep 300 & echo job $!"}"#,
    );
    let answered = std::time::Instant::now();
    assert!(r.is_success(), "execute-command: {}", r.describe());
    let json = r.json().or_fail();
    let job = number_after(json["output"].as_str().unwrap_or_default(), "job ");
    let _cleanup = KillOnDrop {
        pid: job,
        comm: "sleep",
    };
    let before_term = answered.elapsed();
    assert!(
        before_term < TERMINATE_GRACE && procfs::running(job),
        "self-check: SIGTERM must come while the job {job} ({}) ignores its hang-up and \
         waits for its kill; {before_term:?} passed since the answer",
        procfs::describe(&[job])
    );
    server.proc.signal(Signal::TERM);
    let status = server.proc.wait_timeout(EVENT);
    assert!(
        status.is_some(),
        "the server did not exit within {EVENT:?} of SIGTERM"
    );
    let left = procfs::wait_gone(&[job], Duration::from_secs(5));
    assert!(
        left.is_empty(),
        "the execute-command job outlived the server (SIGTERM {before_term:?} after the \
         answer, before its kill was due; server exited with {status:?}): {}",
        procfs::describe(&left)
    );
}
