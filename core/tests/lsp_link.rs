//! One WebSocket ↔ language server pair ([`Link`]): named cases and the properties its
//! module docs promise (flow-control bounds, nothing lost or duplicated, the close after
//! the last message, the exact kill schedule).

#![allow(clippy::unwrap_used)] // tests may unwrap

use axs_core::frame::ExitStatus;
use axs_core::lsp::{
    encode, ClientMessage, Decoded, Decoder, Link, LinkLimits, LinkOutput, Sinks, CLOSE_NOT_UTF8,
    EXIT_DRAIN, SIGTERM_GRACE, STDIN_CLOSE_GRACE,
};
use axs_core::process::{Signal, SignalKind};
use axs_core::time::Time;
use proptest::prelude::*;

const PID: u32 = 4242;

/// Small limits so that the properties reach them.
const LIMITS: LinkLimits = LinkLimits {
    max_message: 64,
    max_header: 48,
    client_backlog: 100,
    stdin_backlog: 100,
    stderr_line: 16,
};

/// A model runtime: records everything the link hands out.
struct Runtime {
    link: Link,
    now: Time,
    texts: Vec<String>,
    close: Option<(u16, String)>,
    after_close: usize,
    stdin: Vec<u8>,
    stdin_closed: bool,
    lines: Vec<String>,
    signals: Vec<(Time, Signal)>,
    dropped: bool,
}

impl Runtime {
    fn new(limits: LinkLimits) -> Runtime {
        Runtime {
            link: Link::with_limits(PID, "fake", Time::ZERO, limits),
            now: Time::ZERO,
            texts: Vec::new(),
            close: None,
            after_close: 0,
            stdin: Vec::new(),
            stdin_closed: false,
            lines: Vec::new(),
            signals: Vec::new(),
            dropped: false,
        }
    }

    /// Polls once with `sinks`; records the output.
    fn step(&mut self, sinks: Sinks) -> bool {
        let Some(out) = self.link.poll(sinks, self.now) else {
            return false;
        };
        match out {
            LinkOutput::Text(t) => {
                assert!(
                    sinks.client,
                    "a frame handed out while one is being written"
                );
                if self.close.is_some() {
                    self.after_close += 1;
                }
                self.texts.push(t);
            }
            LinkOutput::Close { code, reason } => {
                assert!(sinks.client);
                assert!(self.close.is_none(), "two closes");
                self.close = Some((code, reason));
            }
            LinkOutput::DropClient => self.dropped = true,
            LinkOutput::Stdin(bytes) => {
                assert!(sinks.stdin && !self.stdin_closed);
                self.stdin.extend_from_slice(&bytes);
            }
            LinkOutput::CloseStdin => {
                assert!(sinks.stdin && !self.stdin_closed, "stdin closed twice");
                self.stdin_closed = true;
            }
            LinkOutput::StderrLine(line) => self.lines.push(line),
            LinkOutput::Signal(s) => self.signals.push((self.now, s)),
        }
        true
    }

    fn drain(&mut self) {
        while self.step(Sinks::BOTH) {}
    }

    /// The bodies the program received on stdin.
    fn stdin_bodies(&self) -> Vec<String> {
        let mut decoder = Decoder::new();
        decoder.push(&self.stdin);
        std::iter::from_fn(|| decoder.poll())
            .map(|d| match d {
                Decoded::Message(m) => m,
                other => panic!("stdin got {other:?}"),
            })
            .collect()
    }

    fn advance_to(&mut self, ms: u64) {
        self.now = Time::from_millis(ms);
        self.link.handle_timeout(self.now);
        self.drain();
    }
}

fn signal(kind: SignalKind, leader_reaped: bool) -> Signal {
    Signal {
        pid: PID,
        kind,
        leader_reaped,
    }
}

fn framed(messages: &[String]) -> Vec<u8> {
    messages.iter().flat_map(|m| encode(m.as_bytes())).collect()
}

#[test]
fn messages_flow_both_ways() {
    let mut rt = Runtime::new(LinkLimits::default());
    rt.link
        .client_message(ClientMessage::Text(r#"{"id":1}"#.into()));
    rt.link
        .client_message(ClientMessage::Binary("{\"é\":2}".as_bytes().to_vec()));
    rt.link.stdout(&encode(b"{\"result\":1}")[..7]);
    rt.drain();
    assert!(rt.texts.is_empty());
    rt.link.stdout(&encode(b"{\"result\":1}")[7..]);
    rt.drain();
    assert_eq!(rt.texts, [r#"{"result":1}"#]);
    assert_eq!(rt.stdin_bodies(), [r#"{"id":1}"#, "{\"é\":2}"]);
    assert!(rt.lines.is_empty() && rt.signals.is_empty() && rt.close.is_none());
}

#[test]
fn stderr_lines_are_prefixed_kept_whole_and_bounded() {
    let mut rt = Runtime::new(LIMITS);
    rt.link.stderr(b"first li");
    rt.drain();
    assert!(rt.lines.is_empty(), "a partial line waits");
    rt.link.stderr(b"ne\r\nsecond\n");
    rt.link.stderr(b"0123456789abcdefXYZ\n");
    rt.link.stderr(b"0123456789abcdef\n");
    rt.link.stderr(b"tail");
    rt.link.stderr_eof();
    rt.drain();
    assert_eq!(
        rt.lines,
        [
            "fake: first line",
            "fake: second",
            "fake: 0123456789abcdef",
            "fake: XYZ",
            "fake: 0123456789abcdef",
            "fake: tail"
        ]
    );
    assert!(!rt.link.wants_stderr());
}

#[test]
fn refusals_close_the_socket_with_their_code() {
    let mut rt = Runtime::new(LIMITS);
    rt.link.stdout(&encode(b"before"));
    rt.link.client_message(ClientMessage::Text("x".repeat(65)));
    rt.link
        .client_message(ClientMessage::Text("ignored".into()));
    rt.drain();
    assert_eq!(rt.texts, ["before"]);
    let (code, reason) = rt.close.clone().unwrap();
    assert_eq!(code, 1009);
    assert!(reason.contains("65 bytes"), "{reason}");
    assert!(rt.stdin_bodies().is_empty());

    let mut rt = Runtime::new(LIMITS);
    rt.link
        .client_message(ClientMessage::Binary(vec![0xff, 0xfe]));
    rt.drain();
    assert_eq!(rt.close.as_ref().map(|c| c.0), Some(CLOSE_NOT_UTF8));

    // The program's message over the limit closes too, after what came before.
    let mut rt = Runtime::new(LIMITS);
    rt.link.stdout(&encode(b"ok"));
    rt.link.stdout(b"Content-Length: 1000\r\n\r\n");
    rt.drain();
    assert_eq!(rt.texts, ["ok"]);
    assert_eq!(rt.close.as_ref().map(|c| c.0), Some(1009));
}

#[test]
fn a_malformed_header_is_logged_and_the_next_message_arrives() {
    let mut rt = Runtime::new(LinkLimits::default());
    let mut bytes = b"Content-Lenth: 5\r\n\r\nhello".to_vec();
    bytes.extend(encode(b"{\"good\":true}"));
    rt.link.stdout(&bytes);
    rt.drain();
    assert_eq!(rt.texts, ["{\"good\":true}"]);
    assert_eq!(rt.lines.len(), 1, "{:?}", rt.lines);
    assert!(rt.lines[0].contains("malformed"), "{:?}", rt.lines);
    assert!(rt.close.is_none());
}

#[test]
fn exit_closes_after_the_last_message_and_stdout_end() {
    let mut rt = Runtime::new(LinkLimits::default());
    rt.link.client_message(ClientMessage::Text("unsent".into()));
    rt.link.stdout(&encode(b"one"));
    rt.link.exited(ExitStatus::Code(3), Time::from_millis(10));
    rt.link.stdout(&encode(b"two"));
    rt.drain();
    assert_eq!(rt.texts, ["one", "two"]);
    assert!(rt.close.is_none(), "waits for stdout's end");
    assert!(
        rt.stdin_closed && rt.stdin.is_empty(),
        "stdin dropped at exit"
    );
    rt.link.stdout_eof();
    rt.drain();
    assert_eq!(
        rt.close,
        Some((1000, "language server exited with code 3".into()))
    );
    assert_eq!(rt.after_close, 0);
    rt.link.client_closed(Time::from_millis(20));
    rt.drain();
    assert_eq!(rt.signals, [(Time::ZERO, signal(SignalKind::Kill, true))]);
    assert!(rt.link.is_finished());
}

#[test]
fn exit_stops_waiting_for_stdout_after_the_drain() {
    let mut rt = Runtime::new(LinkLimits::default());
    rt.link
        .exited(ExitStatus::Signal("SIGKILL".into()), Time::from_millis(100));
    rt.drain();
    let drain_end = 100 + EXIT_DRAIN.as_millis() as u64;
    assert_eq!(rt.link.poll_timeout(), Some(Time::from_millis(drain_end)));
    rt.advance_to(drain_end - 1);
    assert!(rt.close.is_none());
    rt.advance_to(drain_end);
    assert_eq!(
        rt.close,
        Some((1000, "language server terminated by SIGKILL".into()))
    );
}

#[test]
fn a_client_that_never_answers_the_close_is_dropped() {
    let mut rt = Runtime::new(LinkLimits::default());
    rt.link.exited(ExitStatus::Code(0), Time::ZERO);
    rt.link.stdout_eof();
    rt.drain();
    assert!(rt.close.is_some());
    let wait = rt.link.poll_timeout().unwrap();
    rt.advance_to(wait.as_millis());
    assert!(rt.dropped);
    assert!(rt.link.is_finished());
    assert!(!rt.link.wants_client());
}

#[test]
fn kill_schedule_after_the_socket_closes() {
    let mut rt = Runtime::new(LinkLimits::default());
    rt.link
        .client_message(ClientMessage::Text("last words".into()));
    rt.now = Time::from_millis(1_000);
    rt.link.client_closed(rt.now);
    // The backlog goes first, then stdin closes.
    assert!(rt.step(Sinks::BOTH));
    assert!(rt.step(Sinks::BOTH));
    assert_eq!(rt.stdin_bodies(), ["last words"]);
    assert!(rt.stdin_closed);
    let term = 1_000 + STDIN_CLOSE_GRACE.as_millis() as u64;
    let kill = term + SIGTERM_GRACE.as_millis() as u64;
    assert_eq!(rt.link.poll_timeout(), Some(Time::from_millis(term)));
    rt.advance_to(term - 1);
    assert!(rt.signals.is_empty());
    rt.advance_to(term);
    assert_eq!(rt.link.poll_timeout(), Some(Time::from_millis(kill)));
    rt.advance_to(kill);
    assert_eq!(
        rt.signals,
        [
            (
                Time::from_millis(term),
                signal(SignalKind::Terminate, false)
            ),
            (Time::from_millis(kill), signal(SignalKind::Kill, false)),
        ]
    );
    assert!(!rt.link.is_finished(), "not reaped yet");
    rt.link.exited(
        ExitStatus::Signal("SIGKILL".into()),
        Time::from_millis(kill),
    );
    rt.drain();
    assert_eq!(rt.signals.last().unwrap().1, signal(SignalKind::Kill, true));
    assert!(rt.link.is_finished());
}

#[test]
fn a_program_that_exits_on_stdin_close_ends_the_schedule() {
    let mut rt = Runtime::new(LinkLimits::default());
    rt.link.client_closed(Time::from_millis(5));
    rt.drain();
    rt.link.exited(ExitStatus::Code(0), Time::from_millis(50));
    rt.drain();
    assert_eq!(rt.link.poll_timeout(), None);
    assert_eq!(rt.signals, [(Time::ZERO, signal(SignalKind::Kill, true))]);
    assert!(rt.link.is_finished());
}

#[test]
fn shutdown_closes_the_client_and_terminates_now() {
    let mut rt = Runtime::new(LinkLimits::default());
    rt.link.stdout(&encode(b"queued"));
    rt.now = Time::from_millis(7);
    rt.link.shutdown(rt.now);
    rt.drain();
    assert_eq!(rt.texts, ["queued"]);
    assert_eq!(rt.close.as_ref().map(|c| c.0), Some(1001));
    assert_eq!(rt.signals, [(rt.now, signal(SignalKind::Terminate, false))]);
    assert!(rt.stdin_closed);
    let kill = 7 + SIGTERM_GRACE.as_millis() as u64;
    assert_eq!(rt.link.poll_timeout(), Some(Time::from_millis(kill)));
}

#[test]
fn shutdown_drops_a_client_that_takes_nothing() {
    let mut rt = Runtime::new(LinkLimits::default());
    rt.link.stdout(&encode(b"stuck behind a full socket"));
    rt.link.shutdown(Time::ZERO);
    // The socket never takes a frame: the close cannot go out.
    while rt.step(Sinks {
        client: false,
        stdin: true,
    }) {}
    assert!(rt.close.is_none());
    rt.link
        .exited(ExitStatus::Signal("SIGTERM".into()), Time::from_millis(10));
    // A bounded number of deadlines (a link that never drops the client would loop).
    for _ in 0..8 {
        let Some(due) = rt.link.poll_timeout().filter(|_| !rt.dropped) else {
            break;
        };
        rt.now = due;
        rt.link.handle_timeout(due);
        while rt.step(Sinks {
            client: false,
            stdin: true,
        }) {}
    }
    assert!(rt.dropped);
    assert_eq!(rt.now, Time::ZERO.after(axs_core::limits::CLOSE_WAIT));
    assert!(rt.link.is_finished());
}

/// What a model runtime does next.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// The client sends its next message (if the link reads the socket).
    ClientSends,
    /// The runtime reads the next stdout chunk (if the link reads stdout).
    ReadStdout,
    /// The socket takes one frame.
    ClientTakes,
    /// Stdin takes one chunk.
    StdinTakes,
}

fn op() -> impl Strategy<Value = Op> {
    // Mostly input, so that the backlogs reach their bounds.
    prop_oneof![
        4 => Just(Op::ClientSends),
        4 => Just(Op::ReadStdout),
        1 => Just(Op::ClientTakes),
        1 => Just(Op::StdinTakes)
    ]
}

fn bodies() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z{}\":,0-9]{0,58}é?", 0..40)
}

/// Splits `bytes` at the given cut sizes (1..=CHUNK) until its end.
fn chunks(bytes: &[u8], sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    for &n in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = n.min(rest.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    out
}

const CHUNK: usize = 40;

/// Runs `ops` against a link; the runtime obeys `wants_client` and `wants_stdout`. Checks
/// the bounds after every step; returns the runtime with what is left undelivered.
fn run(
    client_msgs: &[String],
    program_chunks: &[Vec<u8>],
    ops: &[Op],
    exit_after: Option<usize>,
) -> Runtime {
    let mut rt = Runtime::new(LIMITS);
    let (mut sent, mut read) = (0, 0);
    for (i, op) in ops.iter().enumerate() {
        if exit_after == Some(i) {
            rt.link.exited(ExitStatus::Code(0), rt.now);
        }
        match op {
            Op::ClientSends if rt.link.wants_client() && sent < client_msgs.len() => {
                rt.link
                    .client_message(ClientMessage::Text(client_msgs[sent].clone()));
                sent += 1;
            }
            Op::ReadStdout if rt.link.wants_stdout() && read < program_chunks.len() => {
                rt.link.stdout(&program_chunks[read]);
                read += 1;
                if read == program_chunks.len() {
                    rt.link.stdout_eof();
                }
            }
            Op::ClientTakes => {
                while rt.step(Sinks {
                    client: true,
                    stdin: false,
                }) {}
            }
            Op::StdinTakes => {
                while rt.step(Sinks {
                    client: false,
                    stdin: true,
                }) {}
            }
            _ => {}
        }
        // Logs and signals drain with no sink free.
        while rt.step(Sinks::default()) {}
        let header = 32;
        assert!(
            rt.link.client_backlog() < LIMITS.client_backlog + CHUNK + LIMITS.max_message,
            "client backlog {}",
            rt.link.client_backlog()
        );
        assert!(
            rt.link.stdin_backlog() < LIMITS.stdin_backlog + LIMITS.max_message + header,
            "stdin backlog {}",
            rt.link.stdin_backlog()
        );
    }
    // Then everything is let through, as a runtime would.
    loop {
        let mut progress = false;
        if rt.link.wants_client() && sent < client_msgs.len() {
            rt.link
                .client_message(ClientMessage::Text(client_msgs[sent].clone()));
            sent += 1;
            progress = true;
        }
        if rt.link.wants_stdout() && read < program_chunks.len() {
            rt.link.stdout(&program_chunks[read]);
            read += 1;
            if read == program_chunks.len() {
                rt.link.stdout_eof();
            }
            progress = true;
        }
        while rt.step(Sinks::BOTH) {
            progress = true;
        }
        if !progress {
            break;
        }
    }
    if program_chunks.is_empty() {
        rt.link.stdout_eof();
        rt.drain();
    }
    rt
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any interleaving of client sends, program reads and the two sinks taking data:
    /// the backlogs stay bounded, and every message arrives once, in order, both ways.
    #[test]
    fn nothing_lost_or_duplicated_and_backlogs_bounded(
        client_msgs in bodies(),
        program_msgs in bodies(),
        sizes in prop::collection::vec(1..=CHUNK, 1..10),
        ops in prop::collection::vec(op(), 0..200),
    ) {
        let program_chunks = chunks(&framed(&program_msgs), &sizes);
        let rt = run(&client_msgs, &program_chunks, &ops, None);
        prop_assert_eq!(&rt.texts, &program_msgs);
        prop_assert_eq!(rt.stdin_bodies(), client_msgs);
        prop_assert!(rt.close.is_none());
    }

    /// The program exits at any point: every message it wrote reaches the client, then
    /// the close naming the exit, and nothing after it.
    #[test]
    fn exit_delivers_every_message_before_the_close(
        program_msgs in bodies(),
        sizes in prop::collection::vec(1..=CHUNK, 1..10),
        ops in prop::collection::vec(op(), 1..200),
        exit_at in any::<prop::sample::Index>(),
    ) {
        let program_chunks = chunks(&framed(&program_msgs), &sizes);
        let exit_after = exit_at.index(ops.len());
        let rt = run(&[], &program_chunks, &ops, Some(exit_after));
        prop_assert_eq!(&rt.texts, &program_msgs);
        prop_assert_eq!(rt.close, Some((1000, "language server exited with code 0".to_string())));
        prop_assert_eq!(rt.after_close, 0);
        prop_assert!(rt.stdin_closed);
    }

    /// The socket closes at any time; the runtime wakes early at random, at its
    /// deadline, or late: the deadlines are exactly STDIN_CLOSE_GRACE after the close for
    /// SIGTERM and SIGTERM_GRACE after that for SIGKILL (however late the wake), each
    /// signal comes at its first wake from its deadline on, nothing else comes, and stdin
    /// is closed before either.
    #[test]
    fn kill_schedule_is_exact(
        closed_at in 0u64..10_000,
        wakes in prop::collection::vec((1u64..3_000, 0u64..3, 0u64..500), 1..40),
    ) {
        let mut rt = Runtime::new(LinkLimits::default());
        rt.advance_to(closed_at);
        rt.link.client_closed(rt.now);
        rt.drain();
        prop_assert!(rt.stdin_closed);
        let mut deadlines: Vec<Time> = Vec::new();
        let mut expected_signals = Vec::new();
        // Every wake advances the clock by at least 1 ms until the last deadline, so this
        // many always reach it (200 did not when every wake was 1 ms early).
        let enough = (STDIN_CLOSE_GRACE + SIGTERM_GRACE).as_millis() as usize + 2;
        for &(early, how, late) in wakes.iter().cycle().take(enough) {
            let Some(deadline) = rt.link.poll_timeout() else { break };
            if deadlines.last() != Some(&deadline) {
                deadlines.push(deadline);
            }
            let wake = match how {
                0 => rt.now.after(std::time::Duration::from_millis(early)).min(deadline),
                1 => deadline,
                _ => deadline.after(std::time::Duration::from_millis(late)),
            };
            let kind = if deadlines.len() == 1 { SignalKind::Terminate } else { SignalKind::Kill };
            if wake >= deadline {
                expected_signals.push((wake, signal(kind, false)));
            }
            rt.advance_to(wake.as_millis());
        }
        let term = Time::from_millis(closed_at).after(STDIN_CLOSE_GRACE);
        prop_assert_eq!(deadlines, vec![term, term.after(SIGTERM_GRACE)]);
        prop_assert_eq!(rt.signals, expected_signals);
    }
}
