//! One session: a program on a pty, its output stream, and the clients attached to it.
//!
//! # Lifecycle
//!
//! ```text
//! (Spawning: a registry reservation) --spawned--> Running --child exited--> Draining
//!     --pty EOF or grace timer--> Exited --retention timer, no client left--> gone
//! Running --pty EOF, then the drain grace with no exit--> terminated (hang-up, kill)
//! ```
//!
//! Draining exists because a program's last output can still sit in the pty after its exit
//! is known: every client gets every byte, then exactly one exit message, then a close.
//! Exited sessions stay for the retention window so a late reconnect still sees the end.
//!
//! # Output, cursors, replay
//!
//! Every byte the program writes gets an absolute offset; the ring keeps the newest ones.
//! A client is a cursor ([`crate::client`]): attach places it at a safe cut inside the
//! replay window `[head - scrollback, head]` (or at `since` when the ring still holds it),
//! transmit hands out the bytes from the cursor and advances it. Replay and live output
//! are the same operation, so there is no race between "send the scrollback" and "start
//! forwarding". A replay starts with the terminal state at the cut and leaves out queries
//! and side-effect sequences ([`crate::term`]); live output passes untouched.
//!
//! # Flow control (S = scrollback, R = largest pty read)
//!
//! The ring holds `S + R` bytes. Reading the pty is paused when the slowest *reading*
//! (not lagging) client is more than `S` bytes behind, and resumed when it is back within
//! `S - R`. A read already in flight when the pause is issued adds at most `R` bytes, so
//! a reading client never loses a byte. A client with bytes waiting that takes none for
//! the stall timeout is marked lagging: it stops holding the program back, and when it
//! reads again its cursor jumps to a safe cut in the replay window. Nobody is closed for
//! being slow. Memory: the ring, plus per client a state prefix and queued control text.
//!
//! # Viewers
//!
//! A client attached with [`AttachPolicy::View`] is a read-only viewer: it gets the same
//! replay, live output and exit as any client, but its input is dropped (and counted,
//! [`Session::dropped_viewer_input`]), it never takes over and a takeover never closes it,
//! and it never holds the program back: it counts for neither pausing nor the stall clock,
//! and once it is a full scrollback behind it is skipped forward to a safe cut at its next
//! transmit, whatever the stall timeout. So no sequence of viewer actions changes the
//! program's input, size or lifetime, or causes [`Action::PausePty`].

use std::collections::VecDeque;
use std::time::Duration;

pub use crate::api::AttachPolicy;
use crate::api::TermSize;
use crate::client::{Client, ClientPhase, Generation};
use crate::frame::{CloseReason, Control, ExitStatus, Frame};
use crate::ring::Ring;
use crate::term::{plan_replay_bounded, TermState};
use crate::time::Time;

/// Most sequences one client's replay leaves out: the list of ranges to skip is per
/// client, so it is bounded (16 KiB) whatever the program printed (see
/// [`plan_replay_bounded`]).
pub const MAX_REPLAY_DROPS: usize = 1024;

/// What a skipped client's terminal gets before its replay: CAN (abort any sequence in
/// progress), then RIS (reset to the state a replay starts from).
const SKIP_RESET: &[u8] = b"\x18\x1bc";

/// Tunables of a session; see the module docs for how they bound memory and waiting.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Replay window: how many of the newest bytes a new client is sent.
    pub scrollback: usize,
    /// Largest single pty read the runtime performs.
    pub read_size: usize,
    /// Largest output frame sent to a client.
    pub frame_size: usize,
    /// How far past the first safe cut to look for a line start to cut at instead.
    pub line_window: usize,
    /// A client with bytes waiting that takes none for this long stops holding the program back.
    pub stall_timeout: Duration,
    /// How long to wait for pty EOF after the program's exit is known.
    pub drain_grace: Duration,
    /// How long an exited session stays for late reconnects.
    pub retention: Duration,
    /// The policy for clients that do not ask for one.
    pub policy: AttachPolicy,
}

impl SessionConfig {
    /// This configuration with every size at least 1 and reads no larger than the scrollback.
    pub fn normalized(self) -> SessionConfig {
        let scrollback = self.scrollback.max(1);
        SessionConfig {
            scrollback,
            read_size: self.read_size.clamp(1, scrollback),
            frame_size: self.frame_size.max(1),
            ..self
        }
    }

    /// A configuration for `scrollback` bytes of replay, with the read size derived from it.
    pub fn with_scrollback(scrollback: usize) -> SessionConfig {
        let scrollback = scrollback.max(64);
        SessionConfig {
            scrollback,
            read_size: (scrollback / 4).clamp(16, 64 * 1024),
            ..SessionConfig::default()
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            scrollback: 256 * 1024,
            read_size: 64 * 1024,
            frame_size: 64 * 1024,
            line_window: 4 * 1024,
            stall_timeout: Duration::from_secs(30),
            drain_grace: Duration::from_millis(1000),
            retention: Duration::from_secs(300),
            policy: AttachPolicy::Shared,
        }
    }
}

/// What a client asks for when it attaches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttachOptions {
    /// The stream offset the client already has everything before.
    pub since: Option<u64>,
    /// Opted in to control messages (implied by `since`).
    pub control: bool,
    /// Overrides the session's default policy for this attach.
    pub policy: Option<AttachPolicy>,
}

/// An effect the runtime must carry out for a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the pty (client input).
    WritePty(Vec<u8>),
    /// Set the pty's window size.
    ResizePty {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Stop reading the pty until [`Action::ResumePty`].
    PausePty,
    /// Read the pty again.
    ResumePty,
    /// This client has something to transmit: poll it.
    Wake(Generation),
    /// The session reads no more output: stop reading and close the pty master.
    ClosePty,
    /// Hang up the program's process group, and kill what remains after a grace period.
    /// The server turns it into [`crate::process::Signal`]s; it never reaches a runtime.
    Terminate,
    /// The session is gone: free everything the runtime holds for it.
    Remove,
}

/// Where a session is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The program runs.
    Running,
    /// The program exited; its last output may still arrive until EOF or `deadline`.
    Draining {
        /// How it ended.
        status: ExitStatus,
        /// When to stop waiting for EOF.
        deadline: Time,
    },
    /// All output is in; clients get the rest and the exit message.
    Exited {
        /// How it ended.
        status: ExitStatus,
        /// When the session may go (once no client is attached).
        until: Time,
    },
}

/// One session's state machine. Pure: inputs carry `now`, effects come out of [`Session::poll_action`].
#[derive(Debug, Clone)]
pub struct Session {
    config: SessionConfig,
    ring: Ring,
    /// Terminal state as of `ring.start()`: bytes leaving the ring are scanned into it.
    tail_state: TermState,
    phase: Phase,
    eof: bool,
    /// When a program that closed its terminal but runs on is ended (see [`Session::pty_eof`]).
    end_orphan_at: Option<Time>,
    paused: bool,
    terminated: bool,
    removed: bool,
    next_generation: Generation,
    clients: Vec<Client>,
    actions: VecDeque<Action>,
    /// Input messages from viewers, dropped.
    dropped_viewer_input: u64,
    /// The pty's size as last set (told in the session list).
    size: TermSize,
    /// When the program was spawned (told in the session list).
    started: Time,
}

impl Session {
    /// A running session (the program was spawned).
    pub fn new(config: SessionConfig) -> Session {
        let config = config.normalized();
        Session {
            ring: Ring::new(config.scrollback + config.read_size),
            config,
            tail_state: TermState::new(),
            phase: Phase::Running,
            eof: false,
            end_orphan_at: None,
            paused: false,
            terminated: false,
            removed: false,
            next_generation: 1,
            clients: Vec::new(),
            actions: VecDeque::new(),
            dropped_viewer_input: 0,
            size: TermSize::default(),
            started: Time::ZERO,
        }
    }

    /// The same session, its program spawned at `now` on a pty of `size`.
    pub fn started(mut self, size: TermSize, now: Time) -> Session {
        self.size = size;
        self.started = now;
        self
    }

    /// The pty's size as last set.
    pub fn size(&self) -> TermSize {
        self.size
    }

    /// When the program was spawned.
    pub fn started_at(&self) -> Time {
        self.started
    }

    /// How many clients are attached.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// The session's configuration (as clamped).
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The lifecycle phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The stream head: offset one past the newest output byte.
    pub fn head(&self) -> u64 {
        self.ring.end()
    }

    /// Offset of the oldest byte still held.
    pub fn ring_start(&self) -> u64 {
        self.ring.start()
    }

    /// Bytes held in the ring now.
    pub fn ring_len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the runtime should be reading the pty.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// True once the session has asked to be removed.
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// True once the program's exit and all its output are known.
    pub fn is_exited(&self) -> bool {
        matches!(self.phase, Phase::Exited { .. })
    }

    /// The same session, its first client numbered `generation` (a session that takes
    /// over a reused id continues its predecessor's numbers, so no (id, generation) pair
    /// ever names two clients).
    pub fn with_first_generation(mut self, generation: Generation) -> Session {
        self.next_generation = self.next_generation.max(generation);
        self
    }

    /// The generation the next client will get.
    pub fn next_generation(&self) -> Generation {
        self.next_generation
    }

    /// True while any client is attached, including one whose close is still to be sent.
    pub fn has_clients(&self) -> bool {
        !self.clients.is_empty()
    }

    /// Until when an exited session is kept (None while the program runs or drains).
    pub fn retained_until(&self) -> Option<Time> {
        match self.phase {
            Phase::Exited { until, .. } => Some(until),
            _ => None,
        }
    }

    /// Generations of the attached clients, oldest first.
    pub fn generations(&self) -> impl Iterator<Item = Generation> + '_ {
        self.clients
            .iter()
            .filter(|c| c.close.is_none())
            .map(|c| c.generation)
    }

    /// True when this attached client is a read-only viewer.
    pub fn is_viewer(&self, generation: Generation) -> bool {
        self.client(generation).is_some_and(|c| c.viewer)
    }

    /// How many input messages from viewers were dropped.
    pub fn dropped_viewer_input(&self) -> u64 {
        self.dropped_viewer_input
    }

    /// A client's cursor, phase and lagging flag, if it is attached.
    pub fn client_state(&self, generation: Generation) -> Option<(u64, ClientPhase, bool)> {
        self.client(generation)
            .map(|c| (c.cursor, c.phase(), c.lagging))
    }

    /// The first offset of the replay window.
    fn window_start(&self) -> u64 {
        let head = self.ring.end();
        head.saturating_sub(self.config.scrollback as u64)
            .max(self.ring.start())
    }

    fn client(&self, generation: Generation) -> Option<&Client> {
        self.clients.iter().find(|c| c.generation == generation)
    }

    fn client_index(&self, generation: Generation) -> Option<usize> {
        self.clients.iter().position(|c| c.generation == generation)
    }

    /// Attaches a new client and returns its generation.
    pub fn attach(&mut self, options: &AttachOptions, now: Time) -> Generation {
        let generation = self.next_generation;
        self.next_generation += 1;
        let policy = options.policy.unwrap_or(self.config.policy);
        if policy == AttachPolicy::Takeover {
            self.close_all(CloseReason::TakenOver);
        }
        let control = options.control || options.since.is_some();
        let head = self.ring.end();
        let mut client = Client {
            generation,
            cursor: head,
            replay_end: head,
            control,
            viewer: policy == AttachPolicy::View,
            announce_live: control,
            prefix: Vec::new(),
            drops: VecDeque::new(),
            texts: VecDeque::new(),
            waiting_since: None,
            lagging: false,
            idle: false,
            exit_sent: false,
            close: None,
        };
        let resumable = options
            .since
            .filter(|since| (self.window_start()..=head).contains(since));
        match resumable {
            Some(since) => client.cursor = since,
            None => {
                self.plan_client_replay(&mut client);
                if let Some(since) = options.since {
                    let message = format!(
                        "offset {since} is not in the scrollback (it holds {}..{head}); replaying from {}",
                        self.window_start(),
                        client.cursor
                    );
                    client
                        .texts
                        .push_back(Control::Notice { message }.to_json());
                }
            }
        }
        if control {
            let attached = Control::Attached {
                generation,
                offset: client.cursor,
                head,
                resumed: resumable.is_some(),
                viewer: client.viewer,
            };
            client.texts.push_front(attached.to_json());
        }
        if client.cursor < head {
            client.waiting_since = Some(now);
        }
        self.clients.push(client);
        self.update_flow(now);
        generation
    }

    /// Places `client` at a safe cut in the replay window, with the state prefix and drops.
    fn plan_client_replay(&self, client: &mut Client) {
        let window = self.window_start();
        let head = self.ring.end();
        let mut state = self.tail_state.clone();
        let (a, b) = self.ring.slices(self.ring.start(), window);
        state.advance(a);
        state.advance(b);
        let (a, b) = self.ring.slices(window, head);
        let line_window = self.config.line_window;
        let plan = plan_replay_bounded(&state, &[a, b], line_window, MAX_REPLAY_DROPS);
        client.cursor = window + plan.cut as u64;
        client.replay_end = head;
        client.prefix = plan.prefix;
        client.drops = plan
            .drops
            .into_iter()
            .map(|r| window + r.start as u64..window + r.end as u64)
            .collect();
        client.announce_live = client.control;
    }

    /// Marks every attached client but the viewers to be closed with `reason` at its next
    /// transmit.
    fn close_all(&mut self, reason: CloseReason) {
        let closing = self
            .clients
            .iter_mut()
            .filter(|c| c.close.is_none() && !c.viewer);
        for client in closing {
            client.close = Some(reason);
            client.texts.clear();
            client.prefix.clear();
            if client.idle {
                client.idle = false;
                self.actions.push_back(Action::Wake(client.generation));
            }
        }
    }

    /// The client's socket is gone. Unknown generations are ignored.
    pub fn detach(&mut self, generation: Generation, now: Time) {
        if let Some(i) = self.client_index(generation) {
            self.clients.remove(i);
            self.update_flow(now);
            self.remove_if_done(now);
        }
    }

    /// Input from a client, for the program. Ignored from unknown or closing clients and
    /// once the program has exited; dropped (and counted) from viewers.
    pub fn input(&mut self, generation: Generation, bytes: &[u8]) {
        let Some(client) = self.client(generation) else {
            return;
        };
        if client.viewer {
            self.dropped_viewer_input += 1;
            return;
        }
        let attached = client.close.is_none();
        if attached && !bytes.is_empty() && self.phase == Phase::Running {
            self.actions.push_back(Action::WritePty(bytes.to_vec()));
        }
    }

    /// A resize request; the newest wins. Ignored once the program has exited.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        if self.phase == Phase::Running {
            self.size = TermSize { cols, rows };
            self.actions.push_back(Action::ResizePty { cols, rows });
        }
    }

    /// Someone asked to end the session.
    pub fn terminate(&mut self) {
        if !self.terminated {
            self.terminated = true;
            if !self.is_exited() {
                self.actions.push_back(Action::Terminate);
            }
        }
        // A terminated session goes as soon as it has exited and nobody watches: the
        // retention window (the only use of the time) no longer matters.
        self.remove_if_done(Time::ZERO);
    }

    /// Output from the pty.
    pub fn pty_output(&mut self, bytes: &[u8], now: Time) {
        if bytes.is_empty() || self.is_exited() {
            return;
        }
        let tail_state = &mut self.tail_state;
        self.ring.push(bytes, |gone| tail_state.advance(gone));
        let head = self.ring.end();
        for client in &mut self.clients {
            if client.waiting_since.is_none() && client.cursor < head {
                client.waiting_since = Some(now);
            }
            if client.idle {
                client.idle = false;
                self.actions.push_back(Action::Wake(client.generation));
            }
        }
        self.update_flow(now);
    }

    /// The pty reached end of file (the master read `EIO`): no more output will come.
    ///
    /// If the program still runs, nothing holds its terminal any more: no output can come
    /// and no input can reach anyone, so the session is over, as a terminal emulator closes
    /// a window whose pty hung up. An ordinary exit closes the terminal just before it is
    /// reaped, so the program gets the drain grace to be reaped first; after that it is
    /// ended as by a terminate (its clients then get the exit with the real status).
    pub fn pty_eof(&mut self, now: Time) {
        self.eof = true;
        match &self.phase {
            Phase::Draining { status, .. } => {
                let status = status.clone();
                self.enter_exited(status, now);
            }
            Phase::Running => self.end_orphan_at = Some(now.after(self.config.drain_grace)),
            Phase::Exited { .. } => {}
        }
    }

    /// The program exited with `status`.
    pub fn child_exited(&mut self, status: ExitStatus, now: Time) {
        if self.phase != Phase::Running {
            return;
        }
        if self.eof {
            self.enter_exited(status, now);
        } else {
            let deadline = now.after(self.config.drain_grace);
            self.phase = Phase::Draining { status, deadline };
        }
    }

    fn enter_exited(&mut self, status: ExitStatus, now: Time) {
        let until = now.after(self.config.retention);
        self.phase = Phase::Exited { status, until };
        self.actions.push_back(Action::ClosePty);
        for client in &mut self.clients {
            if client.idle {
                client.idle = false;
                self.actions.push_back(Action::Wake(client.generation));
            }
        }
        self.remove_if_done(now);
    }

    /// Goes when exited, no client is attached, and retention is over (or it was terminated).
    fn remove_if_done(&mut self, now: Time) {
        if let Phase::Exited { until, .. } = self.phase {
            if !self.removed && self.clients.is_empty() && (self.terminated || now >= until) {
                self.removed = true;
                self.actions.push_back(Action::Remove);
            }
        }
    }

    /// The next frame for a client, at most `frame_size` output bytes (a state prefix may
    /// add to it). `None`: nothing now; a [`Action::Wake`] will say when there is.
    pub fn poll_transmit(&mut self, generation: Generation, now: Time) -> Option<Frame> {
        let index = self.client_index(generation)?;
        if let Some(reason) = self.clients[index].close {
            self.clients.remove(index);
            self.update_flow(now);
            self.remove_if_done(now);
            return Some(Frame::Close(reason));
        }
        self.skip_if_behind(index);
        if let Some(text) = self.clients[index].texts.pop_front() {
            return Some(Frame::Text(text));
        }
        let frame = self.take_output(index);
        if !frame.is_empty() {
            self.progressed(index, now);
            return Some(Frame::Binary(frame));
        }
        if let Some(live) = self.clients[index].take_live_announcement() {
            return Some(Frame::Text(live));
        }
        self.finish_or_idle(index, now)
    }

    /// A client whose cursor fell out of the replay window jumps to a safe cut in it.
    /// Only a lagging client or a viewer can be there, except when the runtime read more
    /// than allowed.
    fn skip_if_behind(&mut self, index: usize) {
        let window = self.window_start();
        let client = &self.clients[index];
        let evicted = client.cursor < self.ring.start();
        let unheld = client.lagging || client.viewer;
        if !(evicted || (unheld && client.cursor < window)) {
            return;
        }
        let mut client = self.clients[index].clone();
        let old = client.cursor;
        client.lagging = true;
        self.plan_client_replay(&mut client);
        // The replay assumes a fresh terminal, and this one is not: it may be inside a
        // half-sent sequence (CAN aborts it) and in modes the skipped bytes turned off
        // (RIS resets them). Then the state prefix and the replay repaint it, exactly
        // as for a client that reconnects.
        let mut prefix = SKIP_RESET.to_vec();
        prefix.append(&mut client.prefix);
        client.prefix = prefix;
        if client.control {
            let skipped = Control::Skipped {
                bytes: client.cursor - old,
                offset: client.cursor,
            };
            client.texts.push_back(skipped.to_json());
        }
        self.clients[index] = client;
    }

    /// Copies the next output bytes for a client: prefix first, then stream runs between drops.
    fn take_output(&mut self, index: usize) -> Vec<u8> {
        let head = self.ring.end();
        let frame_size = self.config.frame_size;
        let client = &mut self.clients[index];
        let mut out = std::mem::take(&mut client.prefix);
        loop {
            client.skip_drops();
            let room = frame_size.saturating_sub(out.len()) as u64;
            let end = client.run_end(head).min(client.cursor + room);
            if end <= client.cursor {
                break;
            }
            self.ring.copy_into(client.cursor, end, &mut out);
            client.cursor = end;
        }
        client.skip_drops();
        out
    }

    /// After a client took bytes: it is reading, so it is not lagging; restart its stall clock.
    fn progressed(&mut self, index: usize, now: Time) {
        let head = self.ring.end();
        let client = &mut self.clients[index];
        client.lagging = false;
        client.waiting_since = (client.cursor < head).then_some(now);
        self.update_flow(now);
    }

    /// Nothing to send: the exit message and close when the end is reached, else go idle.
    fn finish_or_idle(&mut self, index: usize, now: Time) -> Option<Frame> {
        let head = self.ring.end();
        let client = &mut self.clients[index];
        if let Phase::Exited { status, .. } = &self.phase {
            if client.cursor >= head && !client.exit_sent {
                client.exit_sent = true;
                client.close = Some(CloseReason::Exited);
                return Some(Frame::Text(status.exit_message()));
            }
        }
        client.idle = true;
        client.waiting_since = None;
        self.update_flow(now);
        None
    }

    /// Marks stalled clients lagging, then pauses or resumes pty reads.
    fn update_flow(&mut self, now: Time) {
        if self.is_exited() {
            // The pty is closed: nothing to pause or resume any more.
            return;
        }
        let head = self.ring.end();
        let stall = self.config.stall_timeout;
        for client in self.clients.iter_mut().filter(|c| !c.lagging && !c.viewer) {
            if client.cursor < head && client.waiting_since.is_some_and(|t| t.after(stall) <= now) {
                client.lagging = true;
            }
        }
        let gap = self.max_reading_gap();
        let scrollback = self.config.scrollback as u64;
        let resume_at = scrollback.saturating_sub(self.config.read_size as u64);
        if !self.paused && gap > scrollback {
            self.paused = true;
            self.actions.push_back(Action::PausePty);
        } else if self.paused && gap <= resume_at {
            self.paused = false;
            self.actions.push_back(Action::ResumePty);
            if let Phase::Draining { deadline, .. } = &mut self.phase {
                // The pty is read again: give its remaining output a full grace.
                *deadline = now.after(self.config.drain_grace);
            }
        }
    }

    /// How far behind the head the slowest reading (not lagging, not closing, not viewing)
    /// client is.
    fn max_reading_gap(&self) -> u64 {
        let head = self.ring.end();
        self.clients
            .iter()
            .filter(|c| c.holds_back())
            .map(|c| head.saturating_sub(c.cursor))
            .max()
            .unwrap_or(0)
    }

    /// Timers fired: drain grace, the end of a program without a terminal, stall timeouts,
    /// retention.
    pub fn handle_timeout(&mut self, now: Time) {
        self.end_orphan_if_due(now);
        if let Phase::Draining { status, deadline } = &self.phase {
            // While reads are paused the program's last output may still sit in the pty:
            // the grace only runs while the pty is being read (see `update_flow`).
            if *deadline <= now && !self.paused {
                let status = status.clone();
                self.enter_exited(status, now);
            }
        }
        self.update_flow(now);
        self.remove_if_done(now);
    }

    /// Ends a running program whose terminal closed a drain grace ago (see [`Session::pty_eof`]).
    fn end_orphan_if_due(&mut self, now: Time) {
        let due = self.end_orphan_at.is_some_and(|at| at <= now);
        if due && self.phase == Phase::Running {
            self.end_orphan_at = None;
            if !self.terminated {
                self.actions.push_back(Action::Terminate);
            }
        }
    }

    /// When [`Session::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        let phase_deadline = match &self.phase {
            Phase::Running => self.end_orphan_at,
            Phase::Draining { deadline, .. } => (!self.paused).then_some(*deadline),
            Phase::Exited { until, .. } => {
                (self.clients.is_empty() && !self.removed).then_some(*until)
            }
        };
        let stall_deadline = if self.paused && !self.is_exited() {
            self.clients
                .iter()
                .filter(|c| c.holds_back())
                .filter_map(|c| c.waiting_since)
                .min()
                .map(|t| t.after(self.config.stall_timeout))
        } else {
            None
        };
        match (phase_deadline, stall_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next effect for the runtime to carry out.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }
}
