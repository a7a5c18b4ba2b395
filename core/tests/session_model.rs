//! The session core against a reference model, over random interleavings of every input.
//!
//! The model keeps the whole output stream and, per client, what that client must receive
//! next: a pending byte string (the replay: state prefix plus the filtered window) followed by
//! the raw stream from the replay's end. After every step it checks the invariants of
//! DESIGN.md ("Testing the core") against the real [`Session`].

use std::collections::VecDeque;
use std::time::Duration;

use axs_core::client::{ClientPhase, Generation};
use axs_core::frame::{CloseReason, ExitStatus, Frame};
use axs_core::session::{
    Action, AttachOptions, AttachPolicy, Session, SessionConfig, MAX_REPLAY_DROPS,
};
use axs_core::term::{plan_replay_bounded, TermState};
use axs_core::time::Time;
use proptest::prelude::*;

/// Output fragments: text, line ends, multi-byte UTF-8, modes, pens, queries, side effects.
const FRAGMENTS: &[&[u8]] = &[
    b"hello ",
    b"world",
    b"\r\n",
    b"\n",
    "é".as_bytes(),
    "€".as_bytes(),
    "😀".as_bytes(),
    b"\x1b[?1049h",
    b"\x1b[?1049l",
    b"\x1b[?2004h",
    b"\x1b[?2004l",
    b"\x1b[?1000h\x1b[?1006h",
    b"\x1b[?1h\x1b=",
    b"\x1b[?25l",
    b"\x1b[?25h",
    b"\x1b[31m",
    b"\x1b[1;38;5;208m",
    b"\x1b[0m",
    b"\x1b[2;20r",
    b"\x1b(0",
    b"\x1b(B",
    b"\x1b[c",
    b"\x1b[>c",
    b"\x1b[6n",
    b"\x1b]10;?\x07",
    b"\x1b]52;c;aGVsbG8=\x07",
    b"\x1b]7777;open;file;/tmp/x\x07",
    b"\x1b]0;title\x07",
    b"\x1bc",
    b"\x1b[",
    b"\xff",
];

/// Byte strings that must never appear in a replay. (`OSC 10;?` only counts when it is the
/// whole payload: `OSC 10;?é` is a malformed colour, not a query, to xterm.js too.)
const FORBIDDEN_IN_REPLAY: &[&[u8]] = &[
    b"\x1b[c",
    b"\x1b[>c",
    b"\x1b[6n",
    b"\x1b]10;?\x07",
    b"\x1b]10;?\x1b",
    b"\x1b]52;",
    b"\x1b]7777;",
];

#[derive(Clone, Debug)]
enum Step {
    Attach {
        since: Option<u8>,
        control: bool,
        takeover: bool,
    },
    Transmit(u8),
    TransmitAll(u8),
    Detach(u8),
    StartRead,
    CompleteRead(Vec<u8>),
    /// Many reads in a row, as when a program floods its terminal.
    Burst(Vec<Vec<u8>>),
    Input(u8, u8),
    Resize(u16, u16),
    Exit(bool, i32),
    Eof,
    Tick(u16),
    Terminate,
}

fn output_chunk() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(0..FRAGMENTS.len(), 1..12),
        any::<u16>(),
    )
        .prop_map(|(picks, n)| {
            let mut bytes: Vec<u8> = picks
                .iter()
                .flat_map(|&i| FRAGMENTS[i].iter().copied())
                .collect();
            // Numbered text makes gaps and duplicates visible.
            bytes.extend_from_slice(format!("{n}\n").as_bytes());
            bytes
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (prop::option::of(any::<u8>()), any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(since, control, takeover)| Step::Attach { since, control, takeover }),
        8 => any::<u8>().prop_map(Step::Transmit),
        2 => any::<u8>().prop_map(Step::TransmitAll),
        1 => any::<u8>().prop_map(Step::Detach),
        6 => Just(Step::StartRead),
        6 => output_chunk().prop_map(Step::CompleteRead),
        2 => prop::collection::vec(output_chunk(), 1..30).prop_map(Step::Burst),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(c, b)| Step::Input(c, b)),
        1 => (1u16..300, 1u16..100).prop_map(|(c, r)| Step::Resize(c, r)),
        1 => (any::<bool>(), 0i32..256).prop_map(|(sig, code)| Step::Exit(sig, code)),
        1 => Just(Step::Eof),
        3 => any::<u16>().prop_map(Step::Tick),
        1 => Just(Step::Terminate),
    ]
}

fn config() -> impl Strategy<Value = SessionConfig> {
    (
        64usize..600,
        8usize..200,
        1usize..300,
        0usize..64,
        any::<bool>(),
    )
        .prop_map(
            |(scrollback, read, frame, line_window, takeover)| SessionConfig {
                scrollback,
                read_size: read.min(scrollback / 2).max(1),
                frame_size: frame,
                line_window,
                stall_timeout: Duration::from_millis(5_000),
                drain_grace: Duration::from_millis(1_000),
                retention: Duration::from_millis(20_000),
                policy: if takeover {
                    AttachPolicy::Takeover
                } else {
                    AttachPolicy::Shared
                },
            },
        )
}

/// What the model knows about one client.
#[derive(Debug)]
struct ModelClient {
    generation: Generation,
    control: bool,
    /// Bytes still owed before the raw stream continues (the replay).
    pending: VecDeque<u8>,
    /// All replay bytes this client got since its last attach or skip.
    replay_received: Vec<u8>,
    /// The head as of attach or skip: where the replay ends.
    replay_end: u64,
    /// Next raw stream offset owed after `pending`.
    live_pos: u64,
    waiting_since: Option<Time>,
    idle: bool,
    woken: bool,
    exit_frames: usize,
    closed: Option<CloseReason>,
    saw_attached: bool,
    live_announced: bool,
    /// A newer client took the session over: the next frame must be the close.
    taken_over: bool,
    /// Every output byte since attach, when the client started from a fresh terminal
    /// (a full replay); None for a resume, whose terminal history the model cannot know.
    terminal: Option<Vec<u8>>,
}

struct Model {
    config: SessionConfig,
    session: Session,
    stream: Vec<u8>,
    now: Time,
    clients: Vec<ModelClient>,
    in_flight: bool,
    paused: bool,
    exit: Option<ExitStatus>,
    eof: bool,
    running: bool,
    takeover_owner: Option<Generation>,
    inputs: VecDeque<Vec<u8>>,
    resizes: VecDeque<(u16, u16)>,
    trace: Vec<String>,
    removed: bool,
}

fn state_after(bytes: &[u8]) -> TermState {
    let mut state = TermState::new();
    state.advance(bytes);
    state
}

impl Model {
    fn new(config: SessionConfig) -> Model {
        Model {
            config,
            session: Session::new(config),
            stream: Vec::new(),
            now: Time::ZERO,
            clients: Vec::new(),
            in_flight: false,
            paused: false,
            exit: None,
            eof: false,
            running: true,
            takeover_owner: None,
            inputs: VecDeque::new(),
            resizes: VecDeque::new(),
            trace: Vec::new(),
            removed: false,
        }
    }

    fn head(&self) -> u64 {
        self.stream.len() as u64
    }

    fn window_start(&self) -> u64 {
        self.head().saturating_sub(self.config.scrollback as u64)
    }

    /// The replay a client attaching (or skipping) now must get: (cut, bytes).
    fn expected_replay(&self) -> (u64, Vec<u8>) {
        let window = self.window_start() as usize;
        let state = state_after(&self.stream[..window]);
        let line_window = self.config.line_window;
        let plan = plan_replay_bounded(
            &state,
            &[&self.stream[window..]],
            line_window,
            MAX_REPLAY_DROPS,
        );
        let cut = window + plan.cut;
        let mut bytes = plan.prefix.clone();
        let mut pos = plan.cut;
        for drop in &plan.drops {
            bytes.extend_from_slice(&self.stream[window + pos..window + drop.start]);
            pos = drop.end;
        }
        bytes.extend_from_slice(&self.stream[window + pos.max(plan.cut)..]);
        (cut as u64, bytes)
    }

    fn live_index(&self, pick: u8) -> Option<usize> {
        let open: Vec<usize> = (0..self.clients.len())
            .filter(|&i| self.clients[i].closed.is_none())
            .collect();
        (!open.is_empty()).then(|| open[pick as usize % open.len()])
    }

    fn apply(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Attach {
                since,
                control,
                takeover,
            } => self.attach(*since, *control, *takeover),
            Step::Transmit(pick) => match self.live_index(*pick) {
                Some(i) => self.transmit(i).map(|_| ()),
                None => Ok(()),
            },
            Step::TransmitAll(pick) => match self.live_index(*pick) {
                Some(i) => {
                    for _ in 0..10_000 {
                        if self.clients[i].closed.is_some() || !self.transmit(i)? {
                            return Ok(());
                        }
                    }
                    Err("transmit never ran dry".into())
                }
                None => Ok(()),
            },
            Step::Detach(pick) => {
                if let Some(i) = self.live_index(*pick) {
                    let generation = self.clients[i].generation;
                    self.clients[i].closed = Some(CloseReason::ServerShutdown);
                    self.session.detach(generation, self.now);
                    if self.session.generations().any(|g| g == generation) {
                        return Err(format!("client {generation} still attached after detach"));
                    }
                }
                Ok(())
            }
            Step::StartRead => {
                if !self.paused && !self.in_flight && !self.eof && !self.exit_known_and_drained() {
                    self.in_flight = true;
                }
                Ok(())
            }
            Step::CompleteRead(bytes) => {
                // After ClosePty the runtime drops a read still in flight.
                if self.in_flight && self.session.is_exited() {
                    self.in_flight = false;
                }
                if self.in_flight {
                    self.in_flight = false;
                    let bytes = &bytes[..bytes.len().min(self.config.read_size)];
                    self.output(bytes);
                }
                Ok(())
            }
            Step::Burst(chunks) => {
                for chunk in chunks {
                    self.apply(&Step::StartRead)?;
                    self.apply(&Step::CompleteRead(chunk.clone()))?;
                    self.check()?;
                }
                Ok(())
            }
            Step::Input(pick, byte) => {
                if let Some(i) = self.live_index(*pick) {
                    let generation = self.clients[i].generation;
                    self.session.input(generation, &[*byte]);
                    if self.running && !self.clients[i].taken_over {
                        self.inputs.push_back(vec![*byte]);
                    }
                }
                Ok(())
            }
            Step::Resize(cols, rows) => {
                self.session.resize(*cols, *rows);
                if self.running {
                    self.resizes.push_back((*cols, *rows));
                }
                Ok(())
            }
            Step::Exit(signal, code) => {
                if self.running {
                    let status = if *signal {
                        ExitStatus::Signal("SIGKILL".into())
                    } else {
                        ExitStatus::Code(*code)
                    };
                    self.running = false;
                    self.exit = Some(status.clone());
                    self.session.child_exited(status, self.now);
                }
                Ok(())
            }
            Step::Eof => {
                if !self.eof && !self.in_flight {
                    self.eof = true;
                    self.session.pty_eof(self.now);
                }
                Ok(())
            }
            Step::Tick(ms) => {
                self.now = self.now.after(Duration::from_millis(u64::from(*ms) * 4));
                if let Some(deadline) = self.session.poll_timeout() {
                    if deadline <= self.now {
                        self.session.handle_timeout(self.now);
                    }
                }
                Ok(())
            }
            Step::Terminate => {
                self.session.terminate();
                Ok(())
            }
        }
    }

    fn exit_known_and_drained(&self) -> bool {
        self.session.is_exited()
    }

    fn output(&mut self, bytes: &[u8]) {
        self.stream.extend_from_slice(bytes);
        let head = self.head();
        for client in self.clients.iter_mut().filter(|c| c.closed.is_none()) {
            if client.waiting_since.is_none() && client.live_pos < head {
                client.waiting_since = Some(self.now);
            }
        }
        self.session.pty_output(bytes, self.now);
    }

    fn attach(&mut self, since: Option<u8>, control: bool, takeover: bool) -> Result<(), String> {
        if self.removed {
            return Ok(());
        }
        let head = self.head();
        let since = since.map(|s| head.saturating_sub(u64::from(s) * 3));
        let policy = takeover.then_some(AttachPolicy::Takeover);
        let options = AttachOptions {
            since,
            control,
            policy,
        };
        let generation = self.session.attach(&options, self.now);
        if let Some(last) = self.clients.last() {
            if generation <= last.generation {
                return Err(format!(
                    "generation {generation} not above {}",
                    last.generation
                ));
            }
        }
        let takes_over = policy.unwrap_or(self.config.policy) == AttachPolicy::Takeover;
        if takes_over {
            self.takeover_owner = Some(generation);
            // A client that already got its exit message is closed for the exit instead.
            for client in self
                .clients
                .iter_mut()
                .filter(|c| c.closed.is_none() && c.exit_frames == 0)
            {
                client.taken_over = true;
            }
        }
        let resumable = since.filter(|s| (self.window_start()..=head).contains(s));
        let (cut, pending) = match resumable {
            Some(s) => (s, Vec::new()),
            None => self.expected_replay(),
        };
        if cut < self.window_start() || cut > head {
            return Err(format!(
                "replay cut {cut} outside the window {}..{head}",
                self.window_start()
            ));
        }
        let (cursor, phase, _) = self
            .session
            .client_state(generation)
            .ok_or("attached client unknown to the session")?;
        if cursor != cut {
            return Err(format!("cursor at {cursor}, model cut at {cut}"));
        }
        let expected_phase = if cut < head {
            ClientPhase::ReplayPending
        } else {
            ClientPhase::Live
        };
        if phase != expected_phase {
            return Err(format!("phase {phase:?}, expected {expected_phase:?}"));
        }
        self.clients.push(ModelClient {
            generation,
            control: control || since.is_some(),
            pending: pending.into(),
            replay_received: Vec::new(),
            replay_end: head,
            live_pos: if resumable.is_some() { cut } else { head },
            waiting_since: (cut < head).then_some(self.now),
            idle: false,
            woken: false,
            exit_frames: 0,
            closed: None,
            saw_attached: false,
            live_announced: false,
            taken_over: false,
            terminal: resumable.is_none().then(Vec::new),
        });
        Ok(())
    }

    /// One poll of one client; Ok(false) when it had nothing.
    fn transmit(&mut self, i: usize) -> Result<bool, String> {
        let generation = self.clients[i].generation;
        let before = self.session.client_state(generation);
        let window = self.window_start();
        let frame = self.session.poll_transmit(generation, self.now);
        self.trace.push(format!("{generation} {frame:?}"));
        let Some(frame) = frame else {
            let client = &mut self.clients[i];
            client.idle = true;
            client.woken = false;
            client.waiting_since = None;
            return Ok(false);
        };
        if self.clients[i].idle && !self.clients[i].woken {
            return Err(format!(
                "client {generation} got {frame:?} after going idle without a wake"
            ));
        }
        self.clients[i].idle = false;
        if self.clients[i].taken_over && frame != Frame::Close(CloseReason::TakenOver) {
            return Err(format!("client {generation} taken over but sent {frame:?}"));
        }
        // A lagging client whose cursor left the window jumps to a fresh replay.
        if let Some((cursor, _, lagging)) = before {
            if lagging && cursor < window && !matches!(frame, Frame::Close(_)) {
                let (cut, pending) = self.expected_replay();
                let client = &mut self.clients[i];
                // CAN aborts a half-sent sequence, RIS resets the terminal, then the replay.
                client.pending = b"\x18\x1bc".iter().chain(&pending).copied().collect();
                client.replay_received.clear();
                client.replay_end = self.stream.len() as u64;
                client.live_pos = client.replay_end;
                if cut < cursor {
                    return Err("skip moved backwards".into());
                }
            }
        }
        let head = self.head();
        let exited = self.session.is_exited();
        let client = &mut self.clients[i];
        match frame {
            Frame::Binary(bytes) => {
                if client.exit_frames > 0 {
                    return Err("output after the exit message".into());
                }
                if let Some(terminal) = &mut client.terminal {
                    terminal.extend_from_slice(&bytes);
                }
                for (n, byte) in bytes.iter().enumerate() {
                    let expected = match client.pending.pop_front() {
                        Some(b) => {
                            client.replay_received.push(b);
                            b
                        }
                        None => {
                            let Some(&b) = self.stream.get(client.live_pos as usize) else {
                                return Err(format!(
                                    "client {generation} sent beyond the head {head}"
                                ));
                            };
                            client.live_pos += 1;
                            b
                        }
                    };
                    if *byte != expected {
                        return Err(format!(
                            "client {generation}: byte {n} of frame is {byte:#04x}, expected {expected:#04x} (live_pos {}, pending {})",
                            client.live_pos,
                            client.pending.len()
                        ));
                    }
                }
                if client.pending.is_empty()
                    && client.live_pos >= client.replay_end
                    && !client.replay_received.is_empty()
                {
                    check_replay(
                        &client.replay_received,
                        &self.stream[..client.replay_end as usize],
                    )?;
                    if let Some(terminal) = &client.terminal {
                        // The client's terminal, from its start, is where the program's is.
                        let seen = state_after(terminal);
                        let program = state_after(&self.stream[..client.live_pos as usize]);
                        if seen.modes() != program.modes()
                            || seen.at_safe_cut() != program.at_safe_cut()
                        {
                            return Err(format!(
                                "client {generation}'s terminal {seen:?} differs from the program's {program:?}"
                            ));
                        }
                    }
                    client.replay_received.clear();
                }
                let waiting = !client.pending.is_empty() || client.live_pos < head;
                client.waiting_since = waiting.then_some(self.now);
            }
            Frame::Text(text) => {
                let is_exit = text.starts_with(r#"{"type":"exit""#);
                if is_exit {
                    let status = self.exit.as_ref().ok_or("exit message before any exit")?;
                    if text != status.exit_message() {
                        return Err(format!("exit message {text}, status {status:?}"));
                    }
                    if !exited || !client.pending.is_empty() || client.live_pos != head {
                        return Err(format!(
                            "exit message before all output ({} of {head})",
                            client.live_pos
                        ));
                    }
                    client.exit_frames += 1;
                    if client.exit_frames > 1 {
                        return Err("second exit message".into());
                    }
                } else {
                    if !client.control {
                        return Err(format!(
                            "plain client {generation} got a control message {text}"
                        ));
                    }
                    let value: serde_json::Value =
                        serde_json::from_str(&text).map_err(|e| e.to_string())?;
                    match value["type"].as_str() {
                        Some("attached") => {
                            if client.saw_attached {
                                return Err("second attached message".into());
                            }
                            client.saw_attached = true;
                        }
                        Some("live") => {
                            if !client.pending.is_empty()
                                || value["data"]["offset"] != client.live_pos
                            {
                                return Err(format!("live message {text} at {}", client.live_pos));
                            }
                            client.live_announced = true;
                        }
                        Some("skipped") | Some("notice") => {}
                        other => return Err(format!("unknown control message {other:?}")),
                    }
                    if !client.saw_attached {
                        return Err("control message before attached".into());
                    }
                }
            }
            Frame::Close(reason) => {
                match reason {
                    CloseReason::Exited if client.exit_frames != 1 => {
                        return Err("closed for exit without the exit message".into())
                    }
                    CloseReason::TakenOver
                        if self.takeover_owner.is_none_or(|o| o <= generation) =>
                    {
                        return Err(format!(
                            "client {generation} taken over, owner {:?}",
                            self.takeover_owner
                        ))
                    }
                    CloseReason::ServerShutdown => {
                        return Err("shutdown close without shutdown".into())
                    }
                    _ => {}
                }
                client.closed = Some(reason);
            }
        }
        Ok(true)
    }

    fn drain_actions(&mut self) -> Result<(), String> {
        while let Some(action) = self.session.poll_action() {
            self.trace.push(format!("{action:?}"));
            match action {
                Action::PausePty if self.paused => return Err("pause while paused".into()),
                Action::PausePty => self.paused = true,
                Action::ResumePty if !self.paused => return Err("resume while running".into()),
                Action::ResumePty => self.paused = false,
                Action::Wake(generation) => {
                    if let Some(c) = self.clients.iter_mut().find(|c| c.generation == generation) {
                        c.woken = true;
                    }
                }
                Action::WritePty(bytes) => {
                    if self.inputs.pop_front() != Some(bytes.clone()) {
                        return Err(format!("unexpected input {bytes:?}"));
                    }
                }
                Action::ResizePty { cols, rows } => {
                    if self.resizes.pop_front() != Some((cols, rows)) {
                        return Err(format!("unexpected resize {cols}x{rows}"));
                    }
                }
                Action::ClosePty => {
                    if !self.session.is_exited() {
                        return Err("pty closed before exit".into());
                    }
                }
                Action::Terminate => {}
                Action::Remove => {
                    if self.removed {
                        return Err("removed twice".into());
                    }
                    self.removed = true;
                }
            }
        }
        if !self.inputs.is_empty() || !self.resizes.is_empty() {
            return Err("input or resize not passed to the program".into());
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), String> {
        self.drain_actions()?;
        let s = &self.session;
        let head = self.head();
        if s.head() != head {
            return Err(format!("head {} != stream length {head}", s.head()));
        }
        let bound = self.config.scrollback + self.config.read_size;
        if s.ring_len() > bound {
            return Err(format!("ring holds {} > {bound}", s.ring_len()));
        }
        if s.is_paused() != self.paused {
            return Err("pause state and actions disagree".into());
        }
        let scrollback = self.config.scrollback as u64;
        let resume_at = scrollback.saturating_sub(self.config.read_size as u64);
        let mut holders = Vec::new();
        let mut max_gap = 0;
        for generation in s.generations() {
            let (cursor, _, lagging) = s.client_state(generation).ok_or("listed client unknown")?;
            let model = self
                .clients
                .iter()
                .find(|c| c.generation == generation)
                .ok_or("unknown generation")?;
            if lagging {
                let stalled = model
                    .waiting_since
                    .is_some_and(|t| t.after(self.config.stall_timeout) <= self.now);
                if !stalled && model.waiting_since.is_some() {
                    return Err(format!("client {generation} lagging but not stalled"));
                }
                continue;
            }
            if cursor < s.ring_start() {
                return Err(format!(
                    "reading client {generation} lost bytes: cursor {cursor} < ring start {}",
                    s.ring_start()
                ));
            }
            let gap = head - cursor;
            max_gap = max_gap.max(gap);
            if gap > resume_at {
                holders.push(model.waiting_since);
            }
        }
        if !self.paused && max_gap > scrollback && !s.is_exited() {
            return Err(format!("not paused with a reading client {max_gap} behind"));
        }
        if self.paused && !s.is_exited() {
            if holders.is_empty() {
                return Err("paused with no reading client behind".into());
            }
            let stall = self.config.stall_timeout;
            let fresh = holders
                .iter()
                .any(|w| w.is_none_or(|t| t.after(stall) > self.now));
            if !fresh {
                return Err(
                    "a stalled client holds the program back past the stall timeout".into(),
                );
            }
        }
        if let Some(owner) = self.takeover_owner {
            if s.generations().any(|g| g == owner) && s.generations().any(|g| g < owner) {
                return Err(format!(
                    "owner {owner} is not the highest attached generation"
                ));
            }
        }
        Ok(())
    }
}

/// A finished replay leaves out queries and side effects and brings the terminal to the
/// state of the stream up to the replay's end.
fn check_replay(replay: &[u8], stream: &[u8]) -> Result<(), String> {
    for pattern in FORBIDDEN_IN_REPLAY {
        // A query is left out when it starts at a safe cut. One whose ESC also ended an
        // unterminated string (`OSC ... ESC [ c`) is kept: dropping it would change how the
        // bytes around it parse. So: no more occurrences in the replay than such
        // unsafe-start ones (or an unfinished one at the end) in the stream.
        let in_replay = occurrences(replay, pattern).len();
        let excusable = occurrences(stream, pattern)
            .into_iter()
            .filter(|&at| {
                !state_after(&stream[..at]).at_safe_cut() || at + 64 + pattern.len() >= stream.len()
            })
            .count();
        if in_replay > excusable {
            return Err(format!(
                "replay contains {:?}: {:?} (stream {:?})",
                String::from_utf8_lossy(pattern),
                String::from_utf8_lossy(replay),
                String::from_utf8_lossy(stream)
            ));
        }
    }
    let got = state_after(replay);
    let want = state_after(stream);
    if got.modes() != want.modes() {
        return Err(format!(
            "replay leaves the terminal in {got:?}, the stream in {want:?}"
        ));
    }
    Ok(())
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

fn run(config: SessionConfig, steps: &[Step]) -> Result<Vec<String>, String> {
    let mut model = Model::new(config);
    for (n, step) in steps.iter().enumerate() {
        model
            .apply(step)
            .and_then(|()| model.check())
            .map_err(|e| format!("step {n} {step:?}: {e}"))?;
    }
    // The end: the program exits, the pty drains, and every attached client gets all of
    // its output, then exactly one exit message, then a close.
    let end = [
        Step::CompleteRead(Vec::new()),
        Step::Exit(false, 3),
        Step::Eof,
    ];
    for step in &end {
        model
            .apply(step)
            .and_then(|()| model.check())
            .map_err(|e| format!("end {step:?}: {e}"))?;
    }
    for i in 0..model.clients.len() {
        model.clients[i].woken = true;
        for _ in 0..100_000 {
            if model.clients[i].closed.is_some() {
                break;
            }
            let sent = model
                .transmit(i)
                .and_then(|sent| model.check().map(|()| sent));
            if !sent.map_err(|e| format!("final drain: {e}"))? {
                return Err(format!(
                    "client {} ran dry before its close",
                    model.clients[i].generation
                ));
            }
        }
        let client = &model.clients[i];
        if client.closed == Some(CloseReason::Exited) && client.exit_frames != 1 {
            return Err("closed without exactly one exit message".into());
        }
    }
    Ok(model.trace)
}

proptest! {
    #[test]
    fn session_matches_the_model(config in config(), steps in prop::collection::vec(step(), 1..160)) {
        let first = run(config, &steps);
        if let Err(failure) = &first {
            prop_assert!(false, "{}", failure);
        }
        let second = run(config, &steps);
        prop_assert_eq!(first, second, "same inputs, different outputs");
    }
}
