//! `axs lsp`, the language-server bridge, against the fake server `fake-lsp` (this crate's
//! binary): the CLI contract the editor relies on (the stdout line, the port file,
//! `/status`), the WebSocket ↔ stdio bridging and the process clean-up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::{OrFail, EVENT};
use crate::http;
use crate::procfs;
use crate::server::{read_ready_line, Proc, TempDir, READY_TIMEOUT};
use crate::ws::{Open, Ws};

/// The fake server's binary: `$AXS_FAKE_LSP`, else `fake-lsp` beside the server binary
/// (the same target directory), built with cargo the first time it is missing.
pub fn fake_lsp(bin: &Path) -> PathBuf {
    crate::server::suite_binary(bin, "fake-lsp", "AXS_FAKE_LSP")
}

/// A running bridge with its own HOME.
struct Bridge {
    proc: Proc,
    home: TempDir,
    port: u16,
    port_file: PathBuf,
}

impl Bridge {
    /// Starts `bin lsp --session <session> <extra...> fake-lsp` and waits for the line.
    fn start(bin: &Path, session: &str, extra: &[&str]) -> Bridge {
        let home = TempDir::new("lsp-home");
        let fake = fake_lsp(bin);
        let mut args = vec!["lsp".to_string(), "--session".into(), session.into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(fake.display().to_string());
        let home_str = home.path().display().to_string();
        let proc = Proc::spawn(bin, &args, &[("HOME", &home_str)]);
        let port_file = home
            .path()
            .join(".axs/lsp_ports")
            .join(format!("fake-lsp_{session}"));
        let mut bridge = Bridge {
            proc,
            home,
            port: 0,
            port_file,
        };
        bridge.port = bridge.wait_line();
        bridge
    }

    /// Waits for `listening on 127.0.0.1:<port>`; checks the port file is there already.
    fn wait_line(&mut self) -> u16 {
        let deadline = Instant::now() + EVENT;
        loop {
            let out = self.proc.stdout();
            if let Some(line) = out.lines().next().filter(|_| out.contains('\n')) {
                let port: u16 = line
                    .strip_prefix("listening on 127.0.0.1:")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected stdout line {line:?}"));
                let written = std::fs::read_to_string(&self.port_file)
                    .unwrap_or_else(|e| panic!("port file {:?}: {e}", self.port_file));
                assert_eq!(written.trim(), port.to_string(), "port file content");
                return port;
            }
            if let Some(status) = self.proc.try_wait() {
                panic!(
                    "the bridge exited ({status}) before listening\n{}",
                    self.proc.context()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no listening line\n{}",
                self.proc.context()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn connect(&self) -> Ws {
        Ws::connect(self.port, "/")
            .unwrap_or_else(|e| panic!("bridge socket refused: {e:?}\n{}", self.proc.context()))
    }

    fn status(&self) -> serde_json::Value {
        let r = http::request(
            self.port,
            "GET",
            "/status",
            &[("Origin", "https://localhost")],
            None,
        )
        .or_fail();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://localhost")
        );
        r.json().or_fail()
    }

    fn status_pids(&self) -> Vec<u64> {
        let status = self.status();
        let processes = status["processes"].as_array().cloned().unwrap_or_default();
        processes.iter().filter_map(|p| p["pid"].as_u64()).collect()
    }
}

/// The next text frame (after the `seen` ones), within `EVENT`.
fn next_text(ws: &mut Ws, seen: &mut usize) -> String {
    let deadline = Instant::now() + EVENT;
    while ws.got.texts.len() <= *seen {
        assert!(
            Instant::now() < deadline && ws.pump(),
            "no text frame #{seen}: {}",
            ws.got.summary()
        );
    }
    *seen += 1;
    ws.got.texts[*seen - 1].1.clone()
}

/// Asks the fake server for its pid.
fn program_pid(ws: &mut Ws, seen: &mut usize) -> u32 {
    ws.send_text(r#"{"method":"pid"}"#).or_fail();
    let answer = next_text(ws, seen);
    let value: serde_json::Value = serde_json::from_str(&answer).or_fail_json();
    value["pid"].as_u64().map(|p| p as u32).expect("a pid")
}

trait OrFailJson<T> {
    fn or_fail_json(self) -> T;
}

impl<T> OrFailJson<T> for Result<T, serde_json::Error> {
    fn or_fail_json(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("not JSON: {e}"),
        }
    }
}

/// Waits until none of `pids` is alive (zombies count as gone only once reaped).
fn assert_gone(pids: &[u32], within: Duration, what: &str) {
    let left = procfs::wait_gone(pids, within);
    assert!(
        left.is_empty(),
        "{what}: still there: {}",
        procfs::describe(&left)
    );
}

/// The stdout line and the port file are there when the line is printed, the line is the
/// only stdout line, and SIGTERM removes the file.
pub fn lsp_listening_line_and_port_file(bin: &Path) {
    let mut b = Bridge::start(bin, "line", &[]);
    assert_eq!(
        b.proc.stdout(),
        format!("listening on 127.0.0.1:{}\n", b.port)
    );
    b.proc.signal(Signal::TERM);
    assert!(
        b.proc.wait_timeout(EVENT).is_some(),
        "no exit after SIGTERM"
    );
    assert!(!b.port_file.exists(), "port file left after SIGTERM");
    assert!(b.home.path().join(".axs/lsp_ports").is_dir());
}

/// `/status` before, during and after a connection: program, args, one process while a
/// socket is open, none once it closed.
pub fn lsp_status_before_during_after(bin: &Path) {
    let b = Bridge::start(bin, "status", &[]);
    let status = b.status();
    assert!(
        status["program"]
            .as_str()
            .is_some_and(|p| p.ends_with("fake-lsp")),
        "{status}"
    );
    assert_eq!(status["args"], serde_json::json!([]));
    assert_eq!(status["processes"], serde_json::json!([]));
    let mut ws = b.connect();
    let mut seen = 0;
    let pid = program_pid(&mut ws, &mut seen);
    let during = b.status();
    let process = &during["processes"][0];
    assert_eq!(process["pid"].as_u64(), Some(u64::from(pid)), "{during}");
    assert!(process["uptime_secs"].is_u64(), "{during}");
    assert!(
        process["memory_bytes"].as_u64().is_some_and(|m| m > 0),
        "{during}"
    );
    ws.close();
    assert_gone(&[pid], EVENT, "the program after the socket closed");
    assert!(
        procfs::poll(EVENT, || b.status_pids().is_empty()),
        "{}",
        b.status()
    );
}

/// A small xorshift: the sizes are random but the same on every run.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// 1,000 messages of random sizes (most small, some up to 8 MiB, multi-byte UTF-8 that
/// the pipes split anywhere) come back byte-exact, in order.
pub fn lsp_round_trip_1000_messages(bin: &Path) {
    let b = Bridge::start(bin, "roundtrip", &[]);
    let mut ws = b.connect();
    let mut seen = 0;
    let mut state = 0x2545_f491_4f6c_dd1d;
    for i in 0..1000 {
        let r = next_random(&mut state);
        let size = if i % 100 == 99 {
            (r % (8 << 20)) as usize
        } else {
            (r % 4096) as usize
        };
        let filler = "é→𝄞a".repeat(size / 10 + 1);
        let cut = filler
            .char_indices()
            .map(|(at, _)| at)
            .take_while(|&at| at <= size)
            .last();
        let body = format!(
            "{{\"id\":{i},\"text\":\"{}\"}}",
            &filler[..cut.unwrap_or(0)]
        );
        ws.send_text(&body).or_fail();
        let back = next_text(&mut ws, &mut seen);
        assert!(
            back == body,
            "message {i} of {} bytes came back different",
            body.len()
        );
        // Memory: drop what was checked.
        ws.got.texts[seen - 1].1.clear();
    }
}

/// A malformed header is skipped and the good message after it arrives; the program's
/// stderr lines reach the bridge's stderr prefixed with its name.
pub fn lsp_malformed_header_and_stderr(bin: &Path) {
    let b = Bridge::start(bin, "malformed", &[]);
    let mut ws = b.connect();
    let mut seen = 0;
    let body = r#"{"method":"malformed","id":7}"#;
    ws.send_text(body).or_fail();
    assert_eq!(next_text(&mut ws, &mut seen), body);
    let split = r#"{"method":"split","id":8,"text":"é𝄞"}"#;
    ws.send_text(split).or_fail();
    assert_eq!(next_text(&mut ws, &mut seen), split);
    let noisy = r#"{"method":"stderr","id":9}"#;
    ws.send_text(noisy).or_fail();
    assert_eq!(next_text(&mut ws, &mut seen), noisy);
    let expected = format!("fake-lsp: to stderr: {noisy}");
    assert!(
        procfs::poll(EVENT, || b.proc.stderr().lines().any(|l| l == expected)),
        "no prefixed stderr line {expected:?}\n{}",
        b.proc.context()
    );
    assert!(b.proc.stderr().contains("fake-lsp: fake-lsp started"));
}

/// The program exits: its last message arrives, then a close naming the exit code.
pub fn lsp_exit_closes_after_last_message(bin: &Path) {
    let b = Bridge::start(bin, "exit", &[]);
    let mut ws = b.connect();
    let mut seen = 0;
    let pid = program_pid(&mut ws, &mut seen);
    let body = r#"{"method":"exit","code":3}"#;
    ws.send_text(body).or_fail();
    ws.wait_end(EVENT).or_fail();
    assert_eq!(
        ws.got.texts.last().map(|t| t.1.as_str()),
        Some(body),
        "{}",
        ws.got.summary()
    );
    let close = ws
        .got
        .close
        .clone()
        .unwrap_or_else(|| panic!("no close: {}", ws.got.summary()));
    assert_eq!(close.code, Some(1000));
    assert!(close.reason.contains("code 3"), "{close:?}");
    assert_gone(&[pid], EVENT, "the exited program");
}

/// The socket closes: the program, a child it started and a program that ignores SIGTERM
/// are all gone (killed after the grace), none left a zombie.
pub fn lsp_socket_close_leaves_no_process(bin: &Path) {
    let b = Bridge::start(bin, "cleanup", &[]);
    let mut ws = b.connect();
    let mut seen = 0;
    let pid = program_pid(&mut ws, &mut seen);
    ws.send_text(r#"{"method":"child"}"#).or_fail();
    let answer: serde_json::Value =
        serde_json::from_str(&next_text(&mut ws, &mut seen)).or_fail_json();
    let child = answer["child"].as_u64().expect("child pid") as u32;
    ws.close();
    assert_gone(&[pid, child], EVENT, "after the socket closed");

    let mut stubborn = b.connect();
    let mut seen = 0;
    stubborn.send_text(r#"{"method":"ignore_term"}"#).or_fail();
    let answer: serde_json::Value =
        serde_json::from_str(&next_text(&mut stubborn, &mut seen)).or_fail_json();
    let pid = answer["pid"].as_u64().expect("pid") as u32;
    stubborn.close();
    // Stdin closed, SIGTERM at +2 s (ignored), SIGKILL at +4 s.
    assert_gone(&[pid], EVENT, "a program ignoring SIGTERM");
    assert!(
        procfs::poll(EVENT, || b.status_pids().is_empty()),
        "{}",
        b.status()
    );
}

/// Two sockets get two processes that never see each other's messages.
pub fn lsp_two_sockets_isolated(bin: &Path) {
    let b = Bridge::start(bin, "two", &[]);
    let (mut one, mut two) = (b.connect(), b.connect());
    let (mut seen_one, mut seen_two) = (0, 0);
    let pid_one = program_pid(&mut one, &mut seen_one);
    let pid_two = program_pid(&mut two, &mut seen_two);
    assert_ne!(pid_one, pid_two);
    for i in 0..20 {
        one.send_text(&format!("{{\"from\":\"one\",\"i\":{i}}}"))
            .or_fail();
        two.send_text(&format!("{{\"from\":\"two\",\"i\":{i}}}"))
            .or_fail();
    }
    for i in 0..20 {
        assert_eq!(
            next_text(&mut one, &mut seen_one),
            format!("{{\"from\":\"one\",\"i\":{i}}}")
        );
        assert_eq!(
            next_text(&mut two, &mut seen_two),
            format!("{{\"from\":\"two\",\"i\":{i}}}")
        );
    }
    let mut pids = b.status_pids();
    pids.sort();
    let mut expected = vec![u64::from(pid_one), u64::from(pid_two)];
    expected.sort();
    assert_eq!(pids, expected);
}

/// A client that reads nothing for a while, then reads: every message arrives, in order.
pub fn lsp_slow_reader_loses_nothing(bin: &Path) {
    let b = Bridge::start(bin, "slow", &[]);
    let mut ws = Ws::open(
        b.port,
        "/",
        Open {
            headers: vec![("Origin", "https://localhost".into())],
            recv_buffer: Some(4096),
        },
    )
    .unwrap_or_else(|e| panic!("refused: {e:?}"));
    let count = 200_000;
    ws.send_text(&format!("{{\"method\":\"flood\",\"count\":{count}}}"))
        .or_fail();
    std::thread::sleep(Duration::from_secs(2));
    let mut seen = 0;
    for n in 0..count {
        let text = next_text(&mut ws, &mut seen);
        assert!(text == format!("{{\"n\":{n}}}"), "message {n} is {text:?}");
        ws.got.texts[seen - 1].1.clear();
    }
}

/// Origin `https://evil.example` is refused before anything is spawned.
pub fn lsp_origin_refused(bin: &Path) {
    let b = Bridge::start(bin, "origin", &[]);
    let refused = Ws::open(
        b.port,
        "/",
        Open {
            headers: vec![("Origin", "https://evil.example".into())],
            recv_buffer: None,
        },
    );
    match refused {
        Err(crate::ws::Refused::Status(403, _)) => {}
        Err(other) => panic!("evil Origin: expected 403, got {other:?}"),
        Ok(_) => panic!("evil Origin: the upgrade was accepted"),
    }
    assert!(b.status_pids().is_empty());
    let r = http::request(b.port, "GET", "/nope", &[], None).or_fail();
    assert_eq!(r.status, 404);
    assert!(r.json().is_ok(), "{}", r.describe());
}

/// A busy `--port` and a missing program: one clear line on stderr, `ERROR` on the ready
/// pipe, non-zero exit, no port file.
pub fn lsp_startup_failures(bin: &Path) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").or_fail_io();
    let port = taken.local_addr().or_fail_io().port().to_string();
    let fake = fake_lsp(bin).display().to_string();
    for (args, expected) in [
        (
            vec!["lsp", "--session", "busy", "--port", &port, &fake],
            "already in use",
        ),
        (
            vec!["lsp", "--session", "busy", "no-such-language-server-x"],
            "not found",
        ),
    ] {
        let home = TempDir::new("lsp-fail");
        let fifo = home.fifo("ready");
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let home_str = home.path().display().to_string();
        let fifo_str = fifo.display().to_string();
        let mut proc = Proc::spawn(
            bin,
            &args,
            &[("HOME", &home_str), ("AXS_READY_PIPE", &fifo_str)],
        );
        let ready = read_ready_line(&fifo, &mut proc, READY_TIMEOUT)
            .unwrap_or_else(|e| panic!("ready pipe: {e:?}\n{}", proc.context()));
        let status = proc.wait_timeout(EVENT).expect("the bridge should exit");
        assert!(!status.success(), "{status}");
        let stderr = proc.stderr();
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(stderr.contains(expected), "{stderr:?}");
        assert!(
            ready.starts_with("ERROR") && ready.contains(expected),
            "{ready:?}"
        );
        assert_eq!(proc.stdout(), "");
        assert!(!home.path().join(".axs/lsp_ports/fake-lsp_busy").exists());
    }
}

/// SIGTERM to the bridge: its language servers and their children are gone, and so is
/// the port file.
pub fn lsp_sigterm_ends_children(bin: &Path) {
    let mut b = Bridge::start(bin, "sigterm", &[]);
    let mut ws = b.connect();
    let mut seen = 0;
    let pid = program_pid(&mut ws, &mut seen);
    ws.send_text(r#"{"method":"child"}"#).or_fail();
    let answer: serde_json::Value =
        serde_json::from_str(&next_text(&mut ws, &mut seen)).or_fail_json();
    let child = answer["child"].as_u64().expect("child pid") as u32;
    b.proc.signal(Signal::TERM);
    assert!(
        b.proc.wait_timeout(EVENT).is_some(),
        "no exit after SIGTERM"
    );
    assert_gone(
        &[pid, child],
        Duration::from_secs(5),
        "after the bridge's SIGTERM",
    );
    assert!(!b.port_file.exists());
}

/// A message over 64 MiB closes that socket with 1009; the bridge stays up.
pub fn lsp_oversized_message(bin: &Path) {
    let b = Bridge::start(bin, "big", &[]);
    let mut ws = b.connect();
    let _ = ws.send_text(&"x".repeat((64 << 20) + 1));
    let _ = ws.wait_end(EVENT);
    let close = ws
        .got
        .close
        .clone()
        .unwrap_or_else(|| panic!("no close: {}", ws.got.summary()));
    assert_eq!(close.code, Some(1009), "{close:?}");
    let mut again = b.connect();
    let mut seen = 0;
    program_pid(&mut again, &mut seen);
}

trait OrFailIo<T> {
    fn or_fail_io(self) -> T;
}

impl<T> OrFailIo<T> for std::io::Result<T> {
    fn or_fail_io(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }
}
