//! Read-only viewers: nothing a viewer does reaches the program or the other clients.
//!
//! The property runs every random script twice, once with only full clients and once with
//! viewers attaching, reading, typing and leaving in between, and requires the program's
//! side (input, size, pause and resume, termination, pty close) and every full client's
//! frames to be identical. Unit tests pin the rest: a viewer is skipped forward at once,
//! is never taken over, and its `attached` message says it is a viewer.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::HashMap;
use std::time::Duration;

use axs_core::client::Generation;
use axs_core::frame::{CloseReason, ExitStatus, Frame};
use axs_core::session::{Action, AttachOptions, AttachPolicy, Session, SessionConfig};
use axs_core::time::Time;
use proptest::prelude::*;

/// What full clients and the program do.
#[derive(Clone, Debug)]
enum Step {
    Attach {
        takeover: bool,
        control: bool,
    },
    Transmit(u8),
    TransmitAll(u8),
    Input(u8, u8),
    Detach(u8),
    Resize(u16, u16),
    /// One pty read (skipped while reads are paused), as long as the runtime reads.
    Output(Vec<u8>),
    Tick(u16),
    Exit(i32),
    Eof,
    Terminate,
}

/// What viewers do, between the steps of the full clients.
#[derive(Clone, Debug)]
enum ViewerStep {
    Attach { control: bool, since: Option<u8> },
    Transmit(u8),
    TransmitAll(u8),
    Input(u8, Vec<u8>),
    Detach(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (prop::bool::weighted(0.2), any::<bool>())
            .prop_map(|(takeover, control)| Step::Attach { takeover, control }),
        6 => any::<u8>().prop_map(Step::Transmit),
        2 => any::<u8>().prop_map(Step::TransmitAll),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(c, b)| Step::Input(c, b)),
        1 => any::<u8>().prop_map(Step::Detach),
        1 => (1u16..300, 1u16..100).prop_map(|(c, r)| Step::Resize(c, r)),
        8 => prop::collection::vec(prop::sample::select(b"ab\r\n\x1b[31m\xc3\xa9".to_vec()), 1..40)
            .prop_map(Step::Output),
        2 => any::<u16>().prop_map(Step::Tick),
        1 => (0i32..256).prop_map(Step::Exit),
        1 => Just(Step::Eof),
        1 => Just(Step::Terminate),
    ]
}

fn viewer_step() -> impl Strategy<Value = ViewerStep> {
    prop_oneof![
        2 => (any::<bool>(), prop::option::of(any::<u8>()))
            .prop_map(|(control, since)| ViewerStep::Attach { control, since }),
        3 => any::<u8>().prop_map(ViewerStep::Transmit),
        1 => any::<u8>().prop_map(ViewerStep::TransmitAll),
        3 => (any::<u8>(), prop::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(v, b)| ViewerStep::Input(v, b)),
        1 => any::<u8>().prop_map(ViewerStep::Detach),
    ]
}

fn config() -> impl Strategy<Value = SessionConfig> {
    (
        64usize..400,
        8usize..64,
        1usize..200,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(scrollback, read, frame, takeover, stalls)| SessionConfig {
                scrollback,
                read_size: read.min(scrollback / 2),
                frame_size: frame,
                line_window: 16,
                // Either no full client ever stalls, or they do often: both must hold.
                stall_timeout: if stalls {
                    Duration::from_millis(300)
                } else {
                    Duration::from_secs(100_000)
                },
                drain_grace: Duration::from_millis(500),
                retention: Duration::from_millis(2_000),
                policy: if takeover {
                    AttachPolicy::Takeover
                } else {
                    AttachPolicy::Shared
                },
            },
        )
}

/// Everything observable outside the viewers, in order.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// A program-side action (never `Wake`, which names generations, or `Remove`, which
    /// waits for every client, viewers included, to leave an exited session).
    Program(Action),
    /// A frame to the full client attached `n`th (control messages with generations left out).
    Frame(usize, Frame),
}

/// One run: the session, the full clients (by attach order) and the viewers.
struct Run {
    session: Session,
    now: Time,
    /// Full clients' generations by attach order; `None` once closed or detached.
    full: Vec<Option<Generation>>,
    viewers: Vec<Generation>,
    /// Exit messages each viewer received.
    viewer_exits: HashMap<Generation, usize>,
    viewer_inputs: u64,
    seen: Vec<Seen>,
}

impl Run {
    fn new(config: SessionConfig) -> Run {
        Run {
            session: Session::new(config),
            now: Time::ZERO,
            full: Vec::new(),
            viewers: Vec::new(),
            viewer_exits: HashMap::new(),
            viewer_inputs: 0,
            seen: Vec::new(),
        }
    }

    /// The `pick`th full client still open, as (attach index, generation).
    fn full_client(&self, pick: u8) -> Option<(usize, Generation)> {
        let open: Vec<(usize, Generation)> = self
            .full
            .iter()
            .enumerate()
            .filter_map(|(i, g)| g.map(|g| (i, g)))
            .collect();
        (!open.is_empty()).then(|| open[usize::from(pick) % open.len()])
    }

    fn viewer(&self, pick: u8) -> Option<(usize, Generation)> {
        let n = self.viewers.len();
        (n > 0).then(|| {
            let i = usize::from(pick) % n;
            (i, self.viewers[i])
        })
    }

    fn apply(&mut self, step: &Step) {
        let now = self.now;
        match step {
            Step::Attach { takeover, control } => {
                let options = AttachOptions {
                    control: *control,
                    policy: takeover.then_some(AttachPolicy::Takeover),
                    ..AttachOptions::default()
                };
                let generation = self.session.attach(&options, now);
                self.full.push(Some(generation));
            }
            Step::Transmit(pick) => {
                if let Some((i, g)) = self.full_client(*pick) {
                    self.transmit_full(i, g);
                }
            }
            Step::TransmitAll(pick) => {
                if let Some((i, g)) = self.full_client(*pick) {
                    while self.full[i].is_some() && self.transmit_full(i, g) {}
                }
            }
            Step::Input(pick, byte) => {
                if let Some((_, g)) = self.full_client(*pick) {
                    self.session.input(g, &[*byte]);
                }
            }
            Step::Detach(pick) => {
                if let Some((i, g)) = self.full_client(*pick) {
                    self.full[i] = None;
                    self.session.detach(g, now);
                }
            }
            Step::Resize(cols, rows) => self.session.resize(*cols, *rows),
            Step::Output(bytes) => {
                let read = self.session.config().read_size;
                if !self.session.is_paused() && !self.session.is_exited() {
                    self.session
                        .pty_output(&bytes[..bytes.len().min(read)], now);
                }
            }
            Step::Tick(ms) => {
                self.now = now.after(Duration::from_millis(u64::from(*ms) % 1000));
                if self.session.poll_timeout().is_some_and(|t| t <= self.now) {
                    self.session.handle_timeout(self.now);
                }
            }
            Step::Exit(code) => self.session.child_exited(ExitStatus::Code(*code), now),
            Step::Eof => self.session.pty_eof(now),
            Step::Terminate => self.session.terminate(),
        }
        self.record_actions();
    }

    /// One frame for a full client; false when it had none.
    fn transmit_full(&mut self, index: usize, generation: Generation) -> bool {
        let Some(frame) = self.session.poll_transmit(generation, self.now) else {
            return false;
        };
        if matches!(frame, Frame::Close(_)) {
            self.full[index] = None;
        }
        let names_generation = matches!(&frame, Frame::Text(t) if t.contains(r#""generation""#));
        if !names_generation {
            self.seen.push(Seen::Frame(index, frame));
        }
        self.record_actions();
        true
    }

    fn apply_viewer(&mut self, step: &ViewerStep) -> Result<(), String> {
        let now = self.now;
        match step {
            ViewerStep::Attach { control, since } => {
                let before: Vec<Generation> = self.session.generations().collect();
                let since = since.map(|s| self.session.head().saturating_sub(u64::from(s)));
                let options = AttachOptions {
                    since,
                    control: *control,
                    policy: Some(AttachPolicy::View),
                };
                let generation = self.session.attach(&options, now);
                let after: Vec<Generation> = self.session.generations().collect();
                if after[..after.len() - 1] != before[..] || !self.session.is_viewer(generation) {
                    return Err(format!(
                        "viewer {generation} attach changed the clients {before:?} -> {after:?}"
                    ));
                }
                self.viewers.push(generation);
            }
            ViewerStep::Transmit(pick) => {
                if let Some((i, g)) = self.viewer(*pick) {
                    self.transmit_viewer(i, g)?;
                }
            }
            ViewerStep::TransmitAll(pick) => {
                if let Some((i, g)) = self.viewer(*pick) {
                    while self.viewers.get(i) == Some(&g) && self.transmit_viewer(i, g)? {}
                }
            }
            ViewerStep::Input(pick, bytes) => {
                if let Some((_, g)) = self.viewer(*pick) {
                    self.session.input(g, bytes);
                    self.viewer_inputs += 1;
                }
            }
            ViewerStep::Detach(pick) => {
                if let Some((i, g)) = self.viewer(*pick) {
                    self.viewers.remove(i);
                    self.session.detach(g, now);
                }
            }
        }
        self.record_actions();
        if self.session.dropped_viewer_input() != self.viewer_inputs {
            return Err(format!(
                "{} viewer inputs, {} counted as dropped",
                self.viewer_inputs,
                self.session.dropped_viewer_input()
            ));
        }
        Ok(())
    }

    /// One frame for a viewer; false when it had none.
    fn transmit_viewer(&mut self, index: usize, generation: Generation) -> Result<bool, String> {
        let Some(frame) = self.session.poll_transmit(generation, self.now) else {
            return Ok(false);
        };
        if matches!(&frame, Frame::Text(t) if t.starts_with(r#"{"type":"exit""#)) {
            *self.viewer_exits.entry(generation).or_default() += 1;
        }
        if let Frame::Close(reason) = frame {
            if reason != CloseReason::Exited {
                return Err(format!("viewer {generation} closed with {reason:?}"));
            }
            self.viewers.remove(index);
        }
        self.record_actions();
        Ok(true)
    }

    fn record_actions(&mut self) {
        while let Some(action) = self.session.poll_action() {
            if !matches!(action, Action::Wake(_) | Action::Remove) {
                self.seen.push(Seen::Program(action));
            }
        }
    }
}

/// Runs the script without viewers and with them; Err when anything outside the viewers differs.
fn compare(config: SessionConfig, script: &[(Step, Vec<ViewerStep>)]) -> Result<(), String> {
    let mut alone = Run::new(config);
    let mut watched = Run::new(config);
    for (n, (step, viewer_steps)) in script.iter().enumerate() {
        alone.apply(step);
        watched.apply(step);
        for viewer_step in viewer_steps {
            watched
                .apply_viewer(viewer_step)
                .map_err(|e| format!("step {n}, {viewer_step:?}: {e}"))?;
        }
        if alone.seen != watched.seen {
            return Err(format!(
                "step {n} {step:?}: without viewers {:?}\nwith viewers {:?}",
                alone.seen, watched.seen
            ));
        }
    }
    // The end: every viewer still attached gets the exit message, then a close.
    let end = [Step::Exit(3), Step::Eof];
    for step in &end {
        watched.apply(step);
    }
    for generation in watched.viewers.clone() {
        let index = watched.viewers.iter().position(|g| *g == generation);
        while let Some(index) = index.filter(|&i| watched.viewers.get(i) == Some(&generation)) {
            if !watched.transmit_viewer(index, generation)? {
                return Err(format!("viewer {generation} ran dry before its exit"));
            }
        }
    }
    for (generation, exits) in watched.viewer_exits {
        if exits != 1 {
            return Err(format!("viewer {generation} got {exits} exit messages"));
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn viewers_change_nothing_but_what_they_see(
        config in config(),
        script in prop::collection::vec(
            (step(), prop::collection::vec(viewer_step(), 0..4)),
            1..120,
        ),
    ) {
        if let Err(failure) = compare(config, &script) {
            prop_assert!(false, "{}", failure);
        }
    }
}

fn small() -> SessionConfig {
    SessionConfig {
        scrollback: 64,
        read_size: 16,
        frame_size: 1024,
        line_window: 0,
        stall_timeout: Duration::from_secs(3600),
        ..SessionConfig::default()
    }
}

fn view(control: bool) -> AttachOptions {
    AttachOptions {
        control,
        policy: Some(AttachPolicy::View),
        ..AttachOptions::default()
    }
}

fn texts(session: &mut Session, generation: Generation) -> Vec<String> {
    std::iter::from_fn(|| session.poll_transmit(generation, Time::ZERO))
        .filter_map(|f| match f {
            Frame::Text(t) => Some(t),
            _ => None,
        })
        .collect()
}

#[test]
fn a_viewer_a_scrollback_behind_is_skipped_at_once_and_never_pauses() {
    let mut s = Session::new(small());
    let viewer = s.attach(&view(true), Time::ZERO);
    let _ = texts(&mut s, viewer); // attached, live: now idle at the head
    for _ in 0..20 {
        s.pty_output(&[b'x'; 16], Time::ZERO);
    }
    assert!(!s.is_paused(), "a viewer held the program back");
    let actions: Vec<Action> = std::iter::from_fn(|| s.poll_action()).collect();
    assert!(!actions.contains(&Action::PausePty), "{actions:?}");
    let got = texts(&mut s, viewer);
    assert!(
        got.iter().any(|t| t.contains(r#""type":"skipped""#)),
        "no skipped notice, long before any stall timeout: {got:?}"
    );
}

#[test]
fn a_reading_full_client_still_pauses_the_program_with_viewers_around() {
    let mut s = Session::new(small());
    let _viewer = s.attach(&view(false), Time::ZERO);
    let _full = s.attach(&AttachOptions::default(), Time::ZERO);
    for _ in 0..6 {
        s.pty_output(&[b'x'; 16], Time::ZERO);
    }
    assert!(
        s.is_paused(),
        "the full client must still hold the program back"
    );
}

#[test]
fn the_attached_message_says_viewer() {
    let mut s = Session::new(small());
    let viewer = s.attach(&view(true), Time::ZERO);
    let attached = texts(&mut s, viewer).remove(0);
    assert!(attached.contains(r#""viewer":true"#), "{attached}");
    let full = s.attach(
        &AttachOptions {
            control: true,
            ..AttachOptions::default()
        },
        Time::ZERO,
    );
    let attached = texts(&mut s, full).remove(0);
    assert!(attached.contains(r#""viewer":false"#), "{attached}");
}

#[test]
fn takeover_leaves_viewers_and_viewers_take_nothing_over() {
    let mut s = Session::new(SessionConfig {
        policy: AttachPolicy::Takeover,
        ..small()
    });
    let first = s.attach(&AttachOptions::default(), Time::ZERO);
    let viewer = s.attach(&view(false), Time::ZERO);
    assert_eq!(s.generations().collect::<Vec<_>>(), [first, viewer]);
    let second = s.attach(&AttachOptions::default(), Time::ZERO);
    assert_eq!(s.generations().collect::<Vec<_>>(), [viewer, second]);
}

#[test]
fn viewer_input_is_dropped_and_counted() {
    let mut s = Session::new(small());
    let viewer = s.attach(&view(false), Time::ZERO);
    s.input(viewer, b"rm -rf ~\r");
    s.input(viewer, b"");
    assert_eq!(s.dropped_viewer_input(), 2);
    let actions: Vec<Action> = std::iter::from_fn(|| s.poll_action()).collect();
    assert!(
        !actions.iter().any(|a| matches!(a, Action::WritePty(_))),
        "{actions:?}"
    );
}
