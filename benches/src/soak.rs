//! The soak: every kind of load at once against one server, bounded in time, with every
//! byte and every answer checked (run by `src/bin/axs-soak.rs`).
//!
//! Invariants the workers check:
//! - a numbered stream (`READY`, then `1`, `2`, ... one per line) arrives in order with no
//!   gap and no duplicate, across any number of `?since=` resumes;
//! - a resume from an offset the ring still holds says `resumed:true` at that offset, and
//!   nothing is ever skipped for a client that keeps reading;
//! - every malformed request or frame gets its documented answer (a status with a JSON
//!   error body, or a close code), and the server stays up;
//! - every session created ends: by its own exit (code 3) or by terminate, each with the
//!   exit message.
//!
//! Every worker stops at the deadline and terminates the sessions it created.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

use crate::link::{complete_response, create_session, http_request, upgrade};

/// The program every session runs (`sh` on this file): it turns echo off, says `READY`,
/// and does what the first line typed asks. `stream`: numbers as fast as the reader takes
/// them; `paced`: 50 numbers every 0.2 s; `exit`: exit with code 3; else `cat`.
pub const SESSION_SCRIPT: &str = "stty -echo\nprintf 'READY\\n'\nread mode\ncase $mode in\n\
stream) exec seq 1 999999999999 ;;\n\
paced) i=0; while :; do seq $((i+1)) $((i+50)); i=$((i+50)); sleep 0.2; done ;;\n\
exit) exit 3 ;;\n\
*) exec cat ;;\nesac\n";

/// How long any one wait for the server may take before it counts as a failure.
const WAIT: Duration = Duration::from_secs(20);
/// A slow reader's pace: bytes per second it lets through.
const SLOW_READER_RATE: f64 = 300.0 * 1024.0;
/// Stalled clients kept open at once (the oldest is dropped for a new one).
const STALLED_AT_ONCE: usize = 6;
/// A frame length no server accepts (over the 16 MiB message cap).
const HUGE_FRAME: u64 = 17 * 1024 * 1024;

/// What the workers did, counted as they go.
#[derive(Default)]
pub struct Counters {
    /// Sessions created and ended (by exit or terminate).
    pub sessions_churned: AtomicU64,
    /// `?since=` reconnects, each checked.
    pub reconnects: AtomicU64,
    /// Stream bytes checked line by line (slow reader and storms).
    pub bytes_verified: AtomicU64,
    /// Malformed requests and frames that got the right answer.
    pub bad_inputs_answered: AtomicU64,
    /// Clients opened and never read.
    pub stalled_clients: AtomicU64,
}

/// Shared by every worker: counters, failures, the deadline and the sessions to clean up.
pub struct Soak {
    /// The server's port.
    pub port: u16,
    /// When the load stops.
    pub deadline: Instant,
    /// What was done.
    pub counters: Counters,
    failures: Mutex<Vec<String>>,
    sessions: Mutex<Vec<u32>>,
}

impl Soak {
    /// A soak of the server on `port` that runs until `deadline`.
    pub fn new(port: u16, deadline: Instant) -> Soak {
        Soak {
            port,
            deadline,
            counters: Counters::default(),
            failures: Mutex::new(Vec::new()),
            sessions: Mutex::new(Vec::new()),
        }
    }

    fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    /// Records a failure (printed at once, listed at the end).
    pub fn fail(&self, what: &str, error: &str) {
        let line = format!("{what}: {error}");
        eprintln!("axs-soak: FAIL: {line}");
        if let Ok(mut f) = self.failures.lock() {
            f.push(line);
        }
    }

    /// Every failure so far.
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Every session any worker created (to kill what outlived the server).
    pub fn sessions(&self) -> Vec<u32> {
        self.sessions.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn count(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Creates a session, attaches a client, waits for `READY` and types `mode`; returns
    /// the id, the client and the output received so far.
    fn open(&self, mode: &str, query: &str) -> Result<(u32, Client, Vec<u8>), String> {
        let id = create_session(self.port)?;
        if let Ok(mut s) = self.sessions.lock() {
            s.push(id);
        }
        let mut client = Client::connect(self.port, &format!("/terminals/{id}{query}"))?;
        let mut got = Vec::new();
        while !got.windows(5).any(|w| w == b"READY") {
            client.recv_within(&mut got, WAIT)?;
        }
        client.send_text(&format!("{mode}\n"))?;
        Ok((id, client, got))
    }

    fn terminate(&self, id: u32) -> Result<(), String> {
        let path = format!("/terminals/{id}/terminate");
        match http_request(self.port, "POST", &path, b"")? {
            (status, _) if (200..300).contains(&status) => Ok(()),
            (status, body) => Err(format!("POST {path} answered {status}: {body}")),
        }
    }
}

/// A tiny xorshift generator: the soak's choices follow `--seed`.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `low..high` (`low` when the range is empty).
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % high.saturating_sub(low).max(1)
    }
}

/// Checks a numbered stream: anything up to a `READY` line, then `1`, `2`, ... one per
/// line (`\r\n` or `\n`), with no gap, no duplicate and nothing else.
#[derive(Debug, Default)]
pub struct Numbered {
    next: u64,
    started: bool,
    partial: Vec<u8>,
    /// Bytes of numbered lines checked so far.
    pub verified: u64,
}

/// Longest line a numbered stream holds (`999999999999\r\n`): anything longer is garbage.
const LONGEST_LINE: usize = 16;

impl Numbered {
    /// Checks the next bytes of the stream.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.partial.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(end) = self.partial[start..].iter().position(|&b| b == b'\n') {
            let line = &self.partial[start..start + end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let len = end as u64 + 1;
            start += end + 1;
            if !self.started {
                self.started = line == b"READY";
                self.next = 1;
                continue;
            }
            let number = std::str::from_utf8(line)
                .ok()
                .and_then(|t| t.parse::<u64>().ok());
            if number != Some(self.next) {
                return Err(format!(
                    "expected line {}, got {:?} (lost, duplicated or altered bytes)",
                    self.next,
                    String::from_utf8_lossy(line)
                ));
            }
            self.next += 1;
            self.verified += len;
        }
        self.partial.drain(..start);
        if self.started && self.partial.len() > LONGEST_LINE {
            return Err(format!(
                "a line longer than any number: {:?}",
                String::from_utf8_lossy(&self.partial)
            ));
        }
        Ok(())
    }

    /// The last number seen (0 before the first).
    pub fn last(&self) -> u64 {
        self.next.saturating_sub(1)
    }
}

/// A WebSocket client with bounded reads.
struct Client {
    ws: WebSocket<TcpStream>,
    /// Text frames received, in order.
    texts: Vec<String>,
}

/// What one read brought.
enum Got {
    /// Output bytes (appended to the caller's buffer).
    Bytes,
    /// A text frame (kept in `texts`).
    Text,
    /// Nothing within the wait.
    Nothing,
}

impl Client {
    fn connect(port: u16, path: &str) -> Result<Client, String> {
        let stream = raw_connect(port)?;
        let ws = upgrade(stream, port, path)?;
        Ok(Client {
            ws,
            texts: Vec::new(),
        })
    }

    fn send_text(&mut self, text: &str) -> Result<(), String> {
        self.ws
            .send(Message::text(text))
            .map_err(|e| format!("ws send: {e}"))
    }

    /// Reads one message, waiting at most `wait`.
    fn recv(&mut self, out: &mut Vec<u8>, wait: Duration) -> Result<Got, String> {
        self.ws
            .get_ref()
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(|e| format!("timeout: {e}"))?;
        match self.ws.read() {
            Ok(Message::Binary(b)) => {
                out.extend_from_slice(&b);
                Ok(Got::Bytes)
            }
            Ok(Message::Text(t)) => {
                self.texts.push(t.to_string());
                Ok(Got::Text)
            }
            Ok(Message::Close(c)) => Err(format!("closed by the server: {c:?}")),
            Ok(_) => Ok(Got::Nothing),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                Ok(Got::Nothing)
            }
            Err(e) => Err(format!("ws read: {e}")),
        }
    }

    /// Reads until some output or a text frame arrives; nothing within `wait` is an error.
    fn recv_within(&mut self, out: &mut Vec<u8>, wait: Duration) -> Result<(), String> {
        match self.recv(out, wait)? {
            Got::Nothing => Err(format!("nothing from the server for {wait:?}")),
            _ => Ok(()),
        }
    }

    /// Reads until the exit message; returns it.
    fn wait_exit(&mut self) -> Result<String, String> {
        let deadline = Instant::now() + WAIT;
        let mut sink = Vec::new();
        while Instant::now() < deadline {
            if let Some(exit) = self.texts.iter().find(|t| t.contains("\"exit\"")) {
                return Ok(exit.clone());
            }
            sink.clear();
            self.recv(&mut sink, Duration::from_millis(500))?;
        }
        Err(format!("no exit message within {WAIT:?}"))
    }

    /// Drops the connection without a close handshake (a WebView reload, a lost network).
    fn drop_connection(self) {
        let _ = self.ws.get_ref().shutdown(Shutdown::Both);
    }

    /// Closes with a close handshake, as a tidy client does.
    fn close(mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}

/// Reconnect storm on one session: attach with `?since=` (the bytes this client has),
/// read a random while, drop or close, again, until the deadline. Every resume must be
/// exact and the stream must stay in order across all of them.
pub fn storm(soak: &Soak, seed: u64) {
    let what = format!("reconnect storm {seed}");
    if let Err(e) = storm_session(soak, seed) {
        soak.fail(&what, &e);
    }
}

fn storm_session(soak: &Soak, seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let (id, first, _) = soak.open("paced", "?control=1")?;
    first.drop_connection();
    let mut stream = Numbered::default();
    let mut have: u64 = 0;
    while soak.running() {
        let mut client = Client::connect(soak.port, &format!("/terminals/{id}?since={have}"))?;
        let read_for = Duration::from_millis(rng.between(20, 400));
        let until = Instant::now() + read_for;
        let mut got = Vec::new();
        let mut now = Instant::now();
        while now < until {
            client.recv(&mut got, until - now)?;
            now = Instant::now();
        }
        check_resume(&client.texts, have)?;
        stream
            .feed(&got)
            .map_err(|e| format!("after {have} bytes: {e}"))?;
        have += got.len() as u64;
        Soak::count(&soak.counters.reconnects, 1);
        if rng.between(0, 2) == 0 {
            client.drop_connection();
        } else {
            client.close();
        }
        thread::sleep(Duration::from_millis(rng.between(0, 50)));
    }
    Soak::count(&soak.counters.bytes_verified, stream.verified);
    if stream.last() == 0 {
        return Err("the paced stream never started".into());
    }
    soak.terminate(id)
}

/// The control messages of a resume from `since`: `attached` at `since` with
/// `resumed:true`, and no `skipped` or `notice` (either would mean bytes went missing).
fn check_resume(texts: &[String], since: u64) -> Result<(), String> {
    let compact = |t: &String| t.replace(' ', "");
    let attached = texts
        .iter()
        .map(compact)
        .find(|t| t.contains("\"type\":\"attached\""));
    let Some(attached) = attached else {
        return Ok(()); // The connection was dropped before the first message: nothing to check.
    };
    let offset_ok = attached.contains(&format!("\"offset\":{since},"))
        || attached.contains(&format!("\"offset\":{since}}}"));
    if !offset_ok || !attached.contains("\"resumed\":true") {
        return Err(format!("resume from {since} answered {attached}"));
    }
    match texts
        .iter()
        .find(|t| t.contains("\"skipped\"") || t.contains("\"notice\""))
    {
        Some(t) => Err(format!("resume from {since}: {t}")),
        None => Ok(()),
    }
}

/// A slow reader on a session streaming numbers as fast as it is read: every byte is
/// checked, at [`SLOW_READER_RATE`], until the deadline. A stalled client shares the
/// session: once the server stops waiting for it, the reader must still lose nothing.
pub fn slow_reader(soak: &Soak) {
    let result = soak
        .open("stream", "")
        .and_then(|(id, mut client, mut got)| {
            let stalled = Client::connect(soak.port, &format!("/terminals/{id}"));
            let mut stream = Numbered::default();
            let began = Instant::now();
            let mut total = 0u64;
            stream.feed(&got)?;
            while soak.running() {
                got.clear();
                client.recv_within(&mut got, WAIT)?;
                stream
                    .feed(&got)
                    .map_err(|e| format!("after {total} bytes: {e}"))?;
                total += got.len() as u64;
                let due = Duration::from_secs_f64(total as f64 / SLOW_READER_RATE);
                if let Some(ahead) = due.checked_sub(began.elapsed()) {
                    thread::sleep(ahead);
                }
            }
            Soak::count(&soak.counters.bytes_verified, stream.verified);
            drop(stalled);
            if stream.last() == 0 {
                return Err("the stream never started".into());
            }
            soak.terminate(id)
        });
    if let Err(e) = result {
        soak.fail("slow reader", &e);
    }
}

/// Stalled clients: attaches to a session printing steadily and never reads, keeping
/// [`STALLED_AT_ONCE`] open and replacing the oldest every second.
pub fn stalled_clients(soak: &Soak) {
    let result = soak.open("paced", "").and_then(|(id, first, _)| {
        let mut open = vec![first];
        while soak.running() {
            open.push(Client::connect(soak.port, &format!("/terminals/{id}"))?);
            Soak::count(&soak.counters.stalled_clients, 1);
            if open.len() > STALLED_AT_ONCE {
                open.remove(0).drop_connection();
            }
            thread::sleep(Duration::from_secs(1));
        }
        drop(open);
        soak.terminate(id)
    });
    if let Err(e) = result {
        soak.fail("stalled clients", &e);
    }
}

/// Session churn: create, attach, and end by `exit 3` or by terminate, in turn; each must
/// end with the exit message.
pub fn churn(soak: &Soak) {
    let mut round = 0u64;
    while soak.running() {
        round += 1;
        let by_exit = round.is_multiple_of(2);
        if let Err(e) = churn_one(soak, by_exit) {
            let how = if by_exit { "exit" } else { "terminate" };
            soak.fail(&format!("session churn, round {round} ({how})"), &e);
            return;
        }
        Soak::count(&soak.counters.sessions_churned, 1);
        thread::sleep(Duration::from_millis(50));
    }
}

fn churn_one(soak: &Soak, by_exit: bool) -> Result<(), String> {
    let mode = if by_exit { "exit" } else { "cat" };
    let (id, mut client, _) = soak.open(mode, "")?;
    if !by_exit {
        soak.terminate(id)?;
    }
    let exit = client.wait_exit()?;
    if by_exit && !exit.contains("\"exit_code\":3") {
        return Err(format!("`exit 3` ended with {exit}"));
    }
    Ok(())
}

/// A malformed request and the status it must get.
struct BadRequest {
    what: &'static str,
    bytes: Vec<u8>,
    status: u16,
}

fn bad_requests(port: u16) -> Vec<BadRequest> {
    let host = format!("Host: 127.0.0.1:{port}\r\nOrigin: https://localhost\r\n");
    let post = |extra: &str, body: &[u8]| {
        let mut r = format!(
            "POST /terminals HTTP/1.1\r\n{host}Content-Type: application/json\r\n{extra}\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    let plain = |line: &str, extra: &str| {
        format!("{line} HTTP/1.1\r\n{host}{extra}Connection: close\r\n\r\n").into_bytes()
    };
    let big_header = format!("X-Pad: {}\r\n", "p".repeat(20 * 1024));
    let mut body_of_70k = br#"{"cols":80,"rows":24,"pad":""#.to_vec();
    body_of_70k.resize(70 * 1024, b'x');
    body_of_70k.extend_from_slice(b"\"}");
    let chunked = format!(
        "POST /terminals HTTP/1.1\r\n{host}Content-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    .into_bytes();
    vec![
        BadRequest {
            what: "PUT /terminals",
            bytes: plain("PUT /terminals", ""),
            status: 405,
        },
        BadRequest {
            what: "DELETE /status",
            bytes: plain("DELETE /status", ""),
            status: 405,
        },
        BadRequest {
            what: "a 70 KiB body",
            bytes: post("", &body_of_70k),
            status: 413,
        },
        BadRequest {
            what: "a 20 KiB header",
            bytes: plain("GET /status", &big_header),
            status: 431,
        },
        BadRequest {
            what: "a TLS hello",
            bytes: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(),
            status: 400,
        },
        BadRequest {
            what: "a body that is not JSON",
            bytes: post("", b"not json"),
            status: 400,
        },
        BadRequest {
            what: "cols 70000",
            bytes: post("", br#"{"cols":70000,"rows":24}"#),
            status: 400,
        },
        BadRequest {
            what: "an unknown path",
            bytes: plain("GET /nowhere", ""),
            status: 404,
        },
        BadRequest {
            what: "a chunked body",
            bytes: chunked,
            status: 411,
        },
        BadRequest {
            what: "a WebSocket to an unknown session",
            bytes: plain(
                "GET /terminals/999999999",
                "Upgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
            ),
            status: 404,
        },
    ]
}

/// A malformed WebSocket frame and the close code it must get.
struct BadFrame {
    what: &'static str,
    bytes: Vec<u8>,
    code: u16,
}

fn bad_frames() -> Vec<BadFrame> {
    let mut huge = vec![0x82, 0xff];
    huge.extend_from_slice(&HUGE_FRAME.to_be_bytes());
    huge.extend_from_slice(&[0, 0, 0, 0]);
    vec![
        BadFrame {
            what: "an unmasked frame",
            bytes: b"\x81\x05hello".to_vec(),
            code: 1002,
        },
        BadFrame {
            what: "reserved bits and opcode",
            bytes: b"\xf3\x80\x00\x00\x00\x00".to_vec(),
            code: 1002,
        },
        BadFrame {
            what: "a text frame with invalid UTF-8",
            bytes: b"\x81\x82\x00\x00\x00\x00\xc3\x28".to_vec(),
            code: 1007,
        },
        BadFrame {
            what: "a frame over the message cap",
            bytes: huge,
            code: 1009,
        },
    ]
}

/// A stream of malformed requests and frames, in a seeded order, each checked for its
/// answer, until the deadline.
pub fn malformed(soak: &Soak, seed: u64) {
    let mut rng = Rng::new(seed);
    let requests = bad_requests(soak.port);
    let frames = bad_frames();
    let session = match soak.open("cat", "") {
        Ok((id, client, _)) => {
            client.close();
            id
        }
        Err(e) => return soak.fail("malformed input: the target session", &e),
    };
    let kinds = (requests.len() + frames.len()) as u64;
    while soak.running() {
        let pick = rng.between(0, kinds) as usize;
        let result = match requests.get(pick) {
            Some(r) => bad_request(soak.port, r).map_err(|e| format!("{}: {e}", r.what)),
            None => {
                let f = &frames[pick - requests.len()];
                bad_frame(soak.port, session, f).map_err(|e| format!("{}: {e}", f.what))
            }
        };
        match result {
            Ok(()) => Soak::count(&soak.counters.bad_inputs_answered, 1),
            Err(e) => soak.fail("malformed input", &e),
        }
        thread::sleep(Duration::from_millis(20));
    }
    if let Err(e) = soak.terminate(session) {
        soak.fail("malformed input: terminating its session", &e);
    }
}

fn raw_connect(port: u16) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(WAIT))
        .map_err(|e| format!("timeout: {e}"))?;
    Ok(stream)
}

/// Sends `request` whole, reads the answer: the status must match, with a JSON error body.
fn bad_request(port: u16, request: &BadRequest) -> Result<(), String> {
    let mut stream = raw_connect(port)?;
    stream
        .write_all(&request.bytes)
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let answer = loop {
        if let Some(done) = complete_response(&raw) {
            break done;
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err(format!("closed after {} bytes of answer", raw.len())),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("no answer: {e}")),
        }
    };
    match answer {
        (status, body) if status == request.status && body.contains("\"error\"") => Ok(()),
        (status, body) => Err(format!(
            "expected {} with a JSON error, got {status} {body:?}",
            request.status
        )),
    }
}

/// Upgrades a raw socket to session `id`, sends the bad frame, and reads frames until the
/// server's close: its code must match.
fn bad_frame(port: u16, id: u32, frame: &BadFrame) -> Result<(), String> {
    let mut stream = raw_connect(port)?;
    let upgrade = format!(
        "GET /terminals/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: https://localhost\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(upgrade.as_bytes())
        .map_err(|e| format!("upgrade: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err("closed during the upgrade".into()),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("upgrade answer: {e}")),
        }
    };
    if !raw.starts_with(b"HTTP/1.1 101") {
        let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
        return Err(format!("upgrade refused: {head:?}"));
    }
    raw.drain(..head_end);
    stream
        .write_all(&frame.bytes)
        .map_err(|e| format!("send: {e}"))?;
    loop {
        if let Some(code) = close_code(&raw)? {
            return match code {
                Some(c) if c == frame.code => Ok(()),
                other => Err(format!("expected close {}, got {other:?}", frame.code)),
            };
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err(format!("closed without a close frame ({})", frame.code)),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("no close frame: {e}")),
        }
    }
}

/// Walks the server's (unmasked) frames in `raw`: `Some(code)` once a close frame is
/// complete (`None` inside when it has no code), `None` while none is.
fn close_code(raw: &[u8]) -> Result<Option<Option<u16>>, String> {
    let mut at = 0;
    while raw.len() >= at + 2 {
        let opcode = raw[at] & 0x0f;
        let (len, header) = match raw[at + 1] & 0x7f {
            126 if raw.len() >= at + 4 => {
                (u64::from(u16::from_be_bytes([raw[at + 2], raw[at + 3]])), 4)
            }
            127 if raw.len() >= at + 10 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&raw[at + 2..at + 10]);
                (u64::from_be_bytes(b), 10)
            }
            126 | 127 => return Ok(None),
            n => (u64::from(n), 2),
        };
        let len = usize::try_from(len).map_err(|_| "a frame longer than memory")?;
        let end = at + header + len;
        if raw.len() < end {
            return Ok(None);
        }
        if opcode == 0x8 {
            let payload = &raw[at + header..end];
            let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            return Ok(Some(code));
        }
        at = end;
    }
    Ok(None)
}

/// Runs every worker at once until the deadline; returns when all have stopped.
pub fn run_all(soak: &Arc<Soak>, seed: u64, storms: usize) {
    let mut workers = Vec::new();
    let mut spawn = |name: &str, work: Box<dyn FnOnce(&Soak) + Send>| {
        let shared = Arc::clone(soak);
        let spawned = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || work(&shared));
        match spawned {
            Ok(handle) => workers.push(handle),
            Err(e) => soak.fail(name, &format!("cannot start its thread: {e}")),
        }
    };
    for i in 0..storms as u64 {
        spawn(
            "storm",
            Box::new(move |s| storm(s, seed ^ ((i + 1) * 0x9e37))),
        );
    }
    spawn("slow reader", Box::new(slow_reader));
    spawn("stalled", Box::new(stalled_clients));
    spawn("churn", Box::new(churn));
    spawn("malformed", Box::new(move |s| malformed(s, seed ^ 0x5bd1)));
    for worker in workers {
        if worker.join().is_err() {
            soak.fail("a worker", "panicked");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbered_streams_accept_order_across_any_split() {
        let text = b"junk\r\nREADY\r\n1\r\n2\r\n3\r\n10".to_vec();
        for cut in 0..text.len() {
            let mut n = Numbered::default();
            n.feed(&text[..cut]).unwrap();
            n.feed(&text[cut..]).unwrap();
            assert_eq!(n.last(), 3);
            assert_eq!(n.verified, 9);
        }
    }

    #[test]
    fn numbered_streams_refuse_gaps_duplicates_and_garbage() {
        for bad in [
            &b"READY\n1\n3\n"[..],
            b"READY\n1\n2\n2\n",
            b"READY\n1\n2x\n",
            b"READY\n2\n",
            b"READY\n1\n12345678901234567",
        ] {
            assert!(Numbered::default().feed(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resumes_must_be_exact() {
        let ok = r#"{"type":"attached","data":{"generation":2,"head":90,"offset":40,"resumed":true,"viewer":false}}"#;
        assert!(check_resume(&[ok.into()], 40).is_ok());
        assert!(check_resume(&[ok.into()], 4).is_err());
        let replay = ok.replace("true", "false");
        assert!(check_resume(&[replay], 40).is_err());
        let skipped = r#"{"type":"skipped","data":{"bytes":5,"offset":45}}"#;
        assert!(check_resume(&[ok.into(), skipped.into()], 40).is_err());
        assert!(check_resume(&[], 40).is_ok());
    }

    #[test]
    fn close_codes_are_found_after_other_frames() {
        let mut raw = vec![0x82, 3, b'a', b'b', b'c'];
        assert_eq!(close_code(&raw).unwrap(), None);
        raw.extend_from_slice(&[0x88, 2, 0x03, 0xf1]);
        assert_eq!(close_code(&raw).unwrap(), Some(Some(1009)));
        assert_eq!(close_code(&[0x88, 0]).unwrap(), Some(None));
        assert_eq!(close_code(&[0x82, 126, 1]).unwrap(), None);
    }
}
