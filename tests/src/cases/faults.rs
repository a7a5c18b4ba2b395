//! Faults from outside the server: a terminal whose last holder closed it while the
//! program lives on, a process group killed by someone else, a client process stopped
//! for longer than any timeout, the wall clock jumping. Attached clients always get
//! the exit message before the close, nothing waits forever, and nothing is left running.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};

use super::{sh_script, when_reading, OrFail, EVENT};
use crate::procfs;
use crate::server::{Server, TempDir};
use crate::ws::Ws;
use crate::ws_process::ClientProcess;

/// How long the programs in these cases would run if nobody ended them: far beyond
/// [`END_BOUND`], so a case can tell "the server ended it" from "it ended by itself".
const PROGRAM_LIFE_SECS: u32 = 120;

/// How long a session may take to end once its terminal is gone: the server's drain grace
/// (1 s) and terminate grace (2 s, for a program that ignores SIGHUP) with room for a
/// loaded machine, and far below [`PROGRAM_LIFE_SECS`].
const END_BOUND: Duration = Duration::from_secs(15);

/// How long the server keeps an exited session (`--retention`), so that "gone from
/// `/terminals`" is seen within the case's time.
const RETENTION_SECS: &str = "2";

/// Two plain clients attached to `pid`, labelled `what 1` and `what 2`.
fn two_clients(server: &Server, pid: u32, what: &str) -> [Ws; 2] {
    [1, 2].map(|n| {
        let mut ws = server.attach(pid);
        ws.label = format!("{what} {n} (session {pid})");
        ws
    })
}

/// The entry for `pid` in `GET /terminals`, `None` when the session is not listed.
fn listed(server: &Server, pid: u32) -> Option<serde_json::Value> {
    let r = server.get("/terminals");
    let Ok(serde_json::Value::Array(list)) = r.json() else {
        panic!(
            "GET /terminals: expected a JSON array, got {}\n{}",
            r.describe(),
            server.proc.context()
        );
    };
    list.into_iter()
        .find(|t| t["id"].as_u64() == Some(u64::from(pid)))
}

/// Waits (bounded) until `pid` has left `GET /terminals` once its clients are gone and the
/// retention is over.
fn assert_leaves_list(server: &Server, pid: u32, when: &str) {
    let gone = procfs::poll(EVENT, || listed(server, pid).is_none());
    assert!(
        gone,
        "{when}: session {pid} is still listed {EVENT:?} after its clients left \
         (retention {RETENTION_SECS} s): {:?}\n{}",
        listed(server, pid),
        server.proc.context()
    );
}

/// Asserts none of `pids` runs within [`END_BOUND`].
fn assert_all_gone(server: &Server, pids: &[u32], when: &str) {
    let left = procfs::wait_gone(pids, END_BOUND);
    assert!(
        left.is_empty(),
        "{when}: these processes still run {END_BOUND:?} later: {}\n{}",
        procfs::describe(&left),
        server.proc.context()
    );
}

/// Creates a session, checks that it echoes, and terminates it.
fn new_session_works(server: &Server, when: &str) {
    server.assert_alive(when);
    let pid = server.create_terminal(80, 24);
    let mut ws = server.attach(pid);
    ws.label = format!("a new session {when}");
    ws.send_text("echo fresh-$((40 + 2))\r").or_fail();
    ws.wait_for("fresh-42\r\n", EVENT).or_fail();
    server.terminate(pid);
    ws.expect_exit(EVENT).or_fail();
    assert_all_gone(server, &[pid], &format!("a new session {when}, terminated"));
}

/// A script that closes its terminal but keeps running, run by `exec sh SCRIPT` typed into
/// the session's shell (`prelude` runs first: `trap '' HUP` makes it ignore the hang-up).
fn terminal_closing_script(prelude: &str) -> String {
    format!(
        "{prelude}\necho CLOSING-TERMINAL\n\
         exec sleep {PROGRAM_LIFE_SECS} 0<&- 1>&- 2>&-\n"
    )
}

/// The program closes every descriptor on its terminal and keeps running (`exec sleep 120
/// 0<&- 1>&- 2>&-`): the pty master's reads now fail with `EIO`, no output can ever come
/// and no input can reach anybody, while the session's leader is alive.
///
/// What is correct (chosen from DESIGN.md and CLIENTS.md): the terminal is gone, so the
/// session is over, as a terminal emulator or tmux closes a window whose pty hung up. The
/// server waits its drain grace (the usual exit closes the terminal an instant before the
/// exit is reaped, in either order), then ends the program as `terminate` does (SIGHUP to
/// the group, SIGKILL after the grace), and every attached client gets the last output,
/// then the exit message with the real status (`SIGHUP`, or `SIGKILL` for a program that
/// ignores the hang-up), then the close. The session is reported exited, leaves
/// `/terminals` after the retention, no process is left, and the server goes on.
pub fn pty_eio_while_attached(bin: &Path) {
    let dir = TempDir::new("pty-eio");
    let hup = sh_script(&dir, "hup.sh", &terminal_closing_script(""));
    let ignoring = sh_script(&dir, "nohup.sh", &terminal_closing_script("trap '' HUP"));
    let server = Server::start(bin, &["--retention", RETENTION_SECS, "-c", "sh"], &[]);
    for (cmd, signal) in [(hup, "SIGHUP"), (ignoring, "SIGKILL")] {
        let pid = server.create_terminal(80, 24);
        let mut clients = two_clients(&server, pid, "client");
        let [first, _] = &mut clients;
        when_reading(first, pid, &format!("exec {cmd}\r"));
        let closed_at = wait_terminal_closed(&server, first, pid);
        for ws in &mut clients {
            let exit = ws.expect_exit(END_BOUND).or_fail();
            assert!(
                ws.got.contains(b"CLOSING-TERMINAL\r\n"),
                "{}: the output written before the terminal closed must arrive\n{}",
                ws.label,
                ws.got.summary()
            );
            assert_eq!(
                (exit.exit_code, exit.signal.as_deref()),
                (None, Some(signal)),
                "{}: the program was ended because its terminal was gone ({exit:?})",
                ws.label
            );
            ws.assert_plain().or_fail();
        }
        let took = closed_at.elapsed();
        assert!(
            took < END_BOUND,
            "the exit messages took {took:?} after the terminal closed (bound {END_BOUND:?})"
        );
        assert_all_gone(&server, &[pid], "once the session ended");
        drop(clients);
        assert_leaves_list(&server, pid, "a session whose terminal closed");
    }
    new_session_works(&server, "after the terminals closed");
}

/// Waits until session `pid`'s program runs `sleep` with no descriptor left (the terminal
/// closed); returns when that was seen.
fn wait_terminal_closed(server: &Server, ws: &mut Ws, pid: u32) -> Instant {
    ws.wait_for("CLOSING-TERMINAL\r\n", EVENT).or_fail();
    let closed = procfs::poll(EVENT, || {
        procfs::comm(pid).as_deref() == Some("sleep")
            && procfs::fds(pid).is_ok_and(|fds| fds.is_empty())
    });
    assert!(
        closed,
        "self-check: session {pid} did not become `sleep` with no descriptors: {} {:?}\n{}",
        procfs::describe(&[pid]),
        procfs::fd_targets(pid),
        server.proc.context()
    );
    Instant::now()
}

/// A session's script with a background job in its group, run by `exec sh SCRIPT`.
const GROUP_SCRIPT: &str = "sleep 1000 &\necho \"JOB $!\"\necho GROUP-READY\nread x\n";

/// Someone outside the server kills the session's whole process group (`kill -KILL
/// -PGID`): both attached clients get the exit message with `SIGKILL` and a close within a
/// bound, every process of the group is gone, the session is listed exited and then
/// leaves `/terminals`, `/status` answers, and a new session works.
pub fn process_group_killed_outside(bin: &Path) {
    let dir = TempDir::new("group-killed");
    let cmd = sh_script(&dir, "group.sh", GROUP_SCRIPT);
    let server = Server::start(bin, &["--retention", RETENTION_SECS, "-c", "sh"], &[]);
    let pid = server.create_terminal(80, 24);
    let mut clients = two_clients(&server, pid, "client");
    let [first, _] = &mut clients;
    when_reading(first, pid, &format!("exec {cmd}\r"));
    first.wait_for("GROUP-READY\r\n", EVENT).or_fail();
    let out = String::from_utf8_lossy(&first.got.binary).into_owned();
    let job = out
        .split("JOB ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("self-check: no `JOB <pid>` in {out:?}"));
    assert_eq!(
        procfs::pgid(job),
        Some(pid),
        "self-check: the job {job} is not in the session's group {pid}"
    );

    let Some(group) = Pid::from_raw(pid as i32) else {
        panic!("self-check: {pid} is not a pid");
    };
    let killed_at = Instant::now();
    if let Err(e) = kill_process_group(group, Signal::KILL) {
        panic!("self-check: kill -KILL -{pid}: {e}");
    }
    for ws in &mut clients {
        let exit = ws.expect_exit(END_BOUND).or_fail();
        assert_eq!(
            (exit.exit_code, exit.signal.as_deref()),
            (None, Some("SIGKILL")),
            "{}: the group was killed with SIGKILL ({exit:?})",
            ws.label
        );
        ws.assert_plain().or_fail();
    }
    let took = killed_at.elapsed();
    assert!(
        took < END_BOUND,
        "the exit messages took {took:?} after the kill (bound {END_BOUND:?})"
    );
    assert_all_gone(&server, &[pid, job], "after the group was killed");
    let entry = listed(&server, pid);
    assert!(
        entry.as_ref().is_none_or(|t| t["exited"] == true
            && t["signal"] == "SIGKILL"
            && t["exit_code"].is_null()),
        "GET /terminals after the kill: session {pid} must be listed exited by SIGKILL or \
         be gone, got {entry:?}"
    );
    drop(clients);
    assert_leaves_list(&server, pid, "a session whose group was killed");
    new_session_works(&server, "after the group was killed");
}

/// The filler line of [`stopped_client_resumes`]' output.
const FILLER: &str = "stopped-client-filler-line";

/// Output the program writes while the clients are stopped: far more than a socket's
/// buffers (a few MiB on loopback) and the 256 KiB scrollback hold.
const STOPPED_OUTPUT: usize = 32 << 20;

/// How long the clients stay stopped: longer than every server timeout that could close a
/// connection (`REQUEST_TIMEOUT` 15 s, `WRITE_TIMEOUT` 10 s, `CLOSE_WAIT` 3 s in
/// `core/src/limits.rs`) and 16 times the stall timeout, which the case sets to 1 s with
/// `--stall-timeout 1` so that the field's "minutes" (the default is 30 s) become seconds.
const STOPPED_FOR: Duration = Duration::from_secs(16);

/// What a client that was skipped gets before its replay: CAN, then RIS (a fresh terminal).
const SKIP_RESET: &[u8] = b"\x18\x1bc";

/// Most bytes of terminal state the server may put between [`SKIP_RESET`] and the replay.
const MAX_STATE_PREFIX: usize = 256;

/// Two client processes, a plain one and one that opted in with `?since=0`, are stopped
/// (`SIGSTOP`) while the program writes 32 MiB, and stay stopped 16 s (see
/// [`STOPPED_FOR`]). Meanwhile a third client, reading, gets every byte and the program is
/// not held up. After `SIGCONT` neither stopped client is closed; each gets what its
/// socket held (exactly the stream's start), then `CAN RIS`, a short state prefix and the
/// stream from a line start to the newest output; the opted-in one is told by exactly one
/// `skipped` message whose `bytes` and `offset` match what it missed, the plain one gets
/// no text frame. Then all three get the same exit.
pub fn stopped_client_resumes(bin: &Path) {
    let dir = TempDir::new("stopped-client");
    let lines = STOPPED_OUTPUT / (FILLER.len() + 1) + 1000;
    let script = format!(
        "stty -echo\nread go\necho START\nyes '{FILLER}' | head -n {lines}\necho DONE\n\
         read x\necho BYE\n"
    );
    let cmd = sh_script(&dir, "stopped.sh", &script);
    let server = Server::start(bin, &["--stall-timeout", "1", "-c", &cmd], &[]);
    let pid = server.create_terminal(80, 24);
    let path = format!("/terminals/{pid}");
    let opted_path = format!("{path}?{}", crate::control::since_query(0));
    let plain = ClientProcess::attach(bin, server.port, &path, "stopped plain client");
    let opted = ClientProcess::attach(bin, server.port, &opted_path, "stopped ?since client");
    let mut reader = server.attach(pid);
    reader.label = "reading client".into();
    plain.stop();
    opted.stop();
    let stopped_at = Instant::now();

    when_reading(&mut reader, pid, "\r");
    reader
        .wait_for("DONE\r\n", Duration::from_secs(90))
        .map_err(|e| format!("stopped clients must not hold the program back: {e}"))
        .or_fail();
    let stream = reader.got.binary.clone();
    assert!(
        stream.len() >= STOPPED_OUTPUT,
        "the reading client lost output: {} bytes, the program wrote more than {STOPPED_OUTPUT}",
        stream.len()
    );
    std::thread::sleep(STOPPED_FOR.saturating_sub(stopped_at.elapsed()));
    for client in [&plain, &opted] {
        client.signal(Signal::CONT);
    }

    let plain_got = resumed_stream(&plain, &stream);
    assert!(
        plain_got.texts.is_empty(),
        "{}: a plain client must get no text frame before the exit\n{}",
        plain.label,
        plain_got.summary()
    );
    let opted_got = resumed_stream(&opted, &stream);
    check_skipped_message(&opted, &opted_got, &stream);

    when_reading(&mut reader, pid, "\r");
    let exit = reader.expect_exit(EVENT).or_fail();
    for client in [&plain, &opted] {
        let got = client
            .wait(EVENT, "the exit and the close", |r| r.got.close.is_some())
            .or_fail()
            .got;
        let exits = got.exits();
        assert!(
            matches!(exits.as_slice(), [(_, Ok(e))] if *e == exit) && got.contains(b"BYE\r\n"),
            "{}: expected BYE and the exit {exit:?} before the close\n{}",
            client.label,
            got.summary()
        );
    }
}

/// Waits until a resumed client reached `DONE`, checks it was not closed and that its bytes
/// are the stream's start, `CAN RIS`, a short state prefix, then the stream from a line
/// start; returns what it received.
fn resumed_stream(client: &ClientProcess, stream: &[u8]) -> crate::ws::Received {
    let got = client
        .wait(EVENT, "the newest output (DONE) after SIGCONT", |r| {
            crate::text::find(&r.got.binary, b"DONE\r\n").is_some() || r.got.close.is_some()
        })
        .or_fail()
        .got;
    let summary = || format!("{}\n{}", client.label, got.summary());
    assert!(
        got.close.is_none() && got.ended.is_none(),
        "a stopped client must not be closed: {}",
        summary()
    );
    let Some(reset) = crate::text::find(&got.binary, SKIP_RESET) else {
        panic!(
            "no CAN RIS: the client was not skipped although the program wrote \
             {STOPPED_OUTPUT} bytes while it was stopped: {}",
            summary()
        );
    };
    assert!(
        stream.get(..reset) == Some(&got.binary[..reset]),
        "before the skip the client must get exactly the stream's start: {}",
        summary()
    );
    let after = &got.binary[reset + SKIP_RESET.len()..];
    let cut = (0..=MAX_STATE_PREFIX.min(after.len())).find_map(|prefix| {
        let resumed = &after[prefix..];
        let at = stream.len().checked_sub(resumed.len())?;
        (stream[at..] == *resumed).then_some(at)
    });
    let Some(cut) = cut else {
        panic!(
            "after CAN RIS and at most {MAX_STATE_PREFIX} bytes of state the client must get \
             the stream up to its newest output: {}",
            summary()
        );
    };
    assert!(
        cut > reset && stream[cut - 1] == b'\n',
        "the stream must resume at a line start past what the client had ({reset} bytes), \
         not at {cut}: {}",
        summary()
    );
    got
}

/// The opted-in client's text frames: `attached` first, then exactly one `skipped` that
/// arrived where its bytes jump, whose `offset` is where the stream resumed and whose
/// `bytes` is the gap; at most `live` besides.
fn check_skipped_message(client: &ClientProcess, got: &crate::ws::Received, stream: &[u8]) {
    let parsed: Vec<(usize, serde_json::Value)> = got
        .texts
        .iter()
        .map(|(at, t)| (*at, serde_json::from_str(t).unwrap_or_default()))
        .collect();
    let kinds: Vec<&str> = parsed
        .iter()
        .map(|(_, v)| v["type"].as_str().unwrap_or("?"))
        .collect();
    let skipped: Vec<&(usize, serde_json::Value)> = parsed
        .iter()
        .filter(|(_, v)| v["type"] == "skipped")
        .collect();
    let ok_kinds = kinds.first() == Some(&"attached")
        && kinds
            .iter()
            .all(|k| ["attached", "live", "skipped"].contains(k))
        && skipped.len() == 1;
    assert!(
        ok_kinds,
        "{}: expected `attached`, one `skipped` and nothing but `live` besides, got {kinds:?}\n{}",
        client.label,
        got.summary()
    );
    let (at, message) = skipped[0];
    let reset = crate::text::find(&got.binary, SKIP_RESET);
    let offset = message["data"]["offset"].as_u64().unwrap_or(0) as usize;
    let bytes = message["data"]["bytes"].as_u64().unwrap_or(0) as usize;
    let resumes_there = offset > 0
        && stream.get(offset - 1) == Some(&b'\n')
        && got.binary.ends_with(&stream[offset.min(stream.len())..]);
    assert!(
        reset == Some(*at) && offset.checked_sub(bytes) == Some(*at) && resumes_there,
        "{}: `skipped` {message} arrived after {at} bytes; it must arrive where CAN RIS \
         ({reset:?}) starts, with offset - bytes = {at}, and the stream must resume at that \
         offset, a line start\n{}",
        client.label,
        got.summary()
    );
}

/// Where Debian's `libfaketime` puts its multi-threaded library, per architecture
/// (`/usr/lib/<triplet>/faketime/`); `$AXS_LIBFAKETIME` names it elsewhere.
fn libfaketime() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AXS_LIBFAKETIME") {
        return Some(PathBuf::from(path));
    }
    let lib = Path::new("faketime").join("libfaketimeMT.so.1");
    let mut dirs = vec![PathBuf::from("/usr/lib")];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        dirs.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    dirs.into_iter().map(|d| d.join(&lib)).find(|p| p.exists())
}

/// The server's wall-clock offset, as libfaketime reads it from its timestamp file.
fn set_wall_clock(file: &Path, offset: &str) {
    std::fs::write(file, format!("{offset}\n"))
        .unwrap_or_else(|e| panic!("self-check: write {}: {e}", file.display()));
}

/// The year of the first log line's timestamp (`YYYY-MM-DDTHH:MM:SSZ ...`).
fn first_log_year(server: &Server) -> Option<u64> {
    server.proc.stderr().get(..4)?.parse().ok()
}

/// The current year, near enough (for telling a ten-year offset).
fn this_year() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    1970 + since_epoch / 31_556_952
}

/// The server's `TERMINATE_GRACE` (core/src/limits.rs): SIGHUP, then SIGKILL this later.
const TERMINATE_GRACE: Duration = Duration::from_secs(2);
/// The server's `REQUEST_TIMEOUT` (core/src/limits.rs): an unfinished request gets 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How late a timeout may fire on a loaded machine.
const LATE: Duration = Duration::from_secs(8);
/// How early a timeout may seem to fire (the case's clock starts before the server's).
const EARLY: Duration = Duration::from_millis(300);

/// The wall clock jumps while deadlines run, and they still fire at the right monotonic
/// time. The server runs under libfaketime (`LD_PRELOAD`, `FAKETIME_DONT_FAKE_MONOTONIC=1`,
/// the offset re-read from a file on every call): ten years ahead at start (seen in its log
/// timestamps), ten more just after an unfinished request began (a wall-clock deadline
/// would fire at once), then twenty years back just after a terminate (a wall-clock
/// deadline would never fire). The program, ignoring SIGHUP, is killed `TERMINATE_GRACE`
/// (2 s) after the terminate, and the request gets its 408 `REQUEST_TIMEOUT` (15 s) after
/// it began, each within [`EARLY`] and [`LATE`].
///
/// Needs Debian's `faketime` package (`.ci/run` installs it): without it the case says so
/// and passes, except under `CI=true`, where it fails.
pub fn clock_jump_keeps_timeouts(bin: &Path) {
    let Some(lib) = libfaketime() else {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "libfaketime is missing (apt-get install faketime, as .ci/run does); \
             set AXS_LIBFAKETIME to its libfaketimeMT.so.1"
        );
        eprintln!("clock_jump_keeps_timeouts: SKIPPED, no libfaketime (apt-get install faketime)");
        return;
    };
    let dir = TempDir::new("clock-jump");
    let clock = dir.path().join("faketime.rc");
    set_wall_clock(&clock, "+3650d");
    let script = "trap '' HUP\nstty -echo\nread go\necho HUP-IGNORED\nexec sleep 1000\n";
    let cmd = sh_script(&dir, "nohup.sh", script);
    let (lib, clock_file) = (lib.display().to_string(), clock.display().to_string());
    let env = [
        ("LD_PRELOAD", lib.as_str()),
        ("FAKETIME_TIMESTAMP_FILE", clock_file.as_str()),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ("RUST_LOG", "info"),
    ];
    let server = Server::start(bin, &["-c", &cmd], &env);
    let year = first_log_year(&server);
    assert!(
        year.is_some_and(|y| y >= this_year() + 9),
        "self-check: the server's wall clock is not ten years ahead (log year {year:?}): \
         libfaketime {lib} did not take\n{}",
        server.proc.context()
    );
    let pid = server.create_terminal(80, 24);
    let mut ws = server.attach(pid);
    when_reading(&mut ws, pid, "\r");
    ws.wait_for("HUP-IGNORED\r\n", EVENT).or_fail();
    let slept = procfs::poll(EVENT, || procfs::comm(pid).as_deref() == Some("sleep"));
    assert!(slept, "self-check: the program did not become `sleep`");

    let request = unfinished_request(server.port);
    set_wall_clock(&clock, "+7300d");
    let terminated_at = Instant::now();
    server.terminate(pid);
    std::thread::sleep(EARLY);
    set_wall_clock(&clock, "-3650d");
    let exit = ws.expect_exit(TERMINATE_GRACE + LATE).or_fail();
    let took = terminated_at.elapsed();
    assert_eq!(
        exit.signal.as_deref(),
        Some("SIGKILL"),
        "the program ignores SIGHUP: it must be killed at the grace ({exit:?})"
    );
    assert!(
        took + EARLY >= TERMINATE_GRACE && took <= TERMINATE_GRACE + LATE,
        "killed {took:?} after the terminate, with the wall clock jumping; the grace is \
         {TERMINATE_GRACE:?} of monotonic time"
    );
    let (answer, took) = match request.join() {
        Ok(answered) => answered,
        Err(_) => panic!("the unfinished request's reader panicked"),
    };
    assert!(
        answer.starts_with("HTTP/1.1 408")
            && took + EARLY >= REQUEST_TIMEOUT
            && took <= REQUEST_TIMEOUT + LATE,
        "an unfinished request must get 408 {REQUEST_TIMEOUT:?} after it began although \
         the wall clock jumped; got {answer:?} after {took:?}\n{}",
        server.proc.context()
    );
}

/// Opens a connection, sends half a request head, and reads the answer on a thread:
/// the answer's text and how long after the connection it came.
fn unfinished_request(port: u16) -> std::thread::JoinHandle<(String, Duration)> {
    use std::io::{Read, Write};
    let began = Instant::now();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("self-check: connect: {e}"));
    let sent = stream.write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    let timeout = stream.set_read_timeout(Some(REQUEST_TIMEOUT + LATE + LATE));
    assert!(
        sent.is_ok() && timeout.is_ok(),
        "self-check: {sent:?} {timeout:?}"
    );
    std::thread::spawn(move || {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        (
            String::from_utf8_lossy(&answer).into_owned(),
            began.elapsed(),
        )
    })
}
