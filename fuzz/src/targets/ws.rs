//! What the core decides for WebSocket clients: the attach query (`since`, `control`,
//! `attach`) through [`axs_core::api::route`], then a [`Session`] driven by attaches,
//! client input, pty output, reads, detaches, resizes, time and the program's end.
//!
//! Asserts: the attach query is refused only with 400, and an accepted one says what the
//! query says; client input reaches the program unchanged, exactly once, from an attached
//! client that is neither a viewer nor taken over while the program runs, and never
//! otherwise (a viewer's is counted instead); the ring never holds more than scrollback
//! plus one read while the runtime honours pauses; no pause while only viewers are
//! attached; a client's cursor never goes back nor past the head; every text frame is a
//! JSON object; and after `handle_timeout(now)`, `poll_timeout()` is `None` or later.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axs_core::api::{route, AttachRequest, Policy, Route};
use axs_core::frame::{ExitStatus, Frame};
use axs_core::http::{parse_query, Method, RequestHead};
use axs_core::session::{Action, AttachOptions, AttachPolicy, Phase, Session, SessionConfig};
use axs_core::time::Time;
use serde_json::Value;

use crate::input::Input;

/// A client as the driver models it.
#[derive(Debug, Clone, Copy)]
struct Model {
    viewer: bool,
    /// Taken over: its input is ignored until its close frame.
    closing: bool,
    /// Its cursor when last looked at.
    cursor: u64,
}

/// The session under test and the driver's model of its clients.
struct Driver {
    session: Session,
    clients: BTreeMap<u64, Model>,
    now: Time,
}

/// Fuzz target `ws_control`.
pub fn control(data: &[u8]) {
    let mut input = Input::new(data);
    let config = SessionConfig {
        frame_size: 64,
        ..SessionConfig::with_scrollback(256)
    };
    let mut driver = Driver {
        session: Session::new(config).started(Default::default(), Time::ZERO),
        clients: BTreeMap::new(),
        now: Time::ZERO,
    };
    while !input.is_empty() {
        driver.step(&mut input);
        driver.check();
    }
}

impl Driver {
    /// One operation chosen by the input.
    fn step(&mut self, input: &mut Input<'_>) {
        let op = input.byte();
        let generation = u64::from(input.byte() % 8);
        match op % 10 {
            0 | 1 => self.attach(input.sized()),
            2 | 3 => self.input(generation, input.sized()),
            4 | 5 => self.output(input.sized()),
            6 => self.transmit(generation),
            7 => {
                self.session.detach(generation, self.now);
                self.clients.remove(&generation);
            }
            8 => self.time_passes(input.u16()),
            _ => self.lifecycle(op, input.u16()),
        }
    }

    /// Attaches a client with the options an attach query gives.
    fn attach(&mut self, query: &[u8]) {
        let Some(request) = attach_request(&String::from_utf8_lossy(query)) else {
            return;
        };
        let options = AttachOptions {
            since: request.since,
            control: request.control,
            policy: request.policy,
        };
        let policy = options.policy.unwrap_or(self.session.config().policy);
        if policy == AttachPolicy::Takeover {
            self.clients
                .values_mut()
                .filter(|c| !c.viewer)
                .for_each(|c| c.closing = true);
        }
        let generation = self.session.attach(&options, self.now);
        let cursor = self.session.client_state(generation).map_or(0, |s| s.0);
        let viewer = policy == AttachPolicy::View;
        assert_eq!(self.session.is_viewer(generation), viewer);
        self.clients.insert(
            generation,
            Model {
                viewer,
                closing: false,
                cursor,
            },
        );
        self.drain();
    }

    /// Client input: it reaches the program exactly when the model says it should.
    fn input(&mut self, generation: u64, bytes: &[u8]) {
        let model = self.clients.get(&generation).copied();
        let dropped_before = self.session.dropped_viewer_input();
        let running = *self.session.phase() == Phase::Running;
        self.session.input(generation, bytes);
        let writes: Vec<Vec<u8>> = self
            .drain()
            .into_iter()
            .filter_map(|a| match a {
                Action::WritePty(w) => Some(w),
                _ => None,
            })
            .collect();
        let viewer = model.is_some_and(|m| m.viewer);
        let reaches =
            model.is_some_and(|m| !m.viewer && !m.closing) && running && !bytes.is_empty();
        let expected = if reaches {
            vec![bytes.to_vec()]
        } else {
            Vec::new()
        };
        assert_eq!(writes, expected, "input of {generation} ({model:?})");
        let counted = self.session.dropped_viewer_input() - dropped_before;
        assert_eq!(counted, u64::from(viewer), "viewer input count");
    }

    /// Pty output, as much as one read, unless the session paused the pty.
    fn output(&mut self, bytes: &[u8]) {
        if self.session.is_paused() {
            return;
        }
        let read = &bytes[..bytes.len().min(self.session.config().read_size)];
        self.session.pty_output(read, self.now);
        self.drain();
    }

    /// Reads a client's frames until it has none.
    fn transmit(&mut self, generation: u64) {
        for _ in 0..64 {
            let Some(frame) = self.session.poll_transmit(generation, self.now) else {
                break;
            };
            match frame {
                Frame::Text(text) => {
                    let json: Value = serde_json::from_str(&text).unwrap();
                    assert!(json.is_object(), "{text}");
                }
                Frame::Close(_) => {
                    self.clients.remove(&generation);
                }
                Frame::Binary(bytes) => assert!(!bytes.is_empty()),
            }
            self.drain();
        }
    }

    /// Time passes; the timers due run.
    fn time_passes(&mut self, centis: u16) {
        self.now = self
            .now
            .after(Duration::from_millis(u64::from(centis) * 100));
        self.session.handle_timeout(self.now);
        let now = self.now;
        assert!(
            self.session.poll_timeout().is_none_or(|due| due > now),
            "timer due again"
        );
        self.drain();
    }

    /// The program's end, the pty's EOF, a resize or a terminate.
    fn lifecycle(&mut self, op: u8, value: u16) {
        match op / 10 % 4 {
            0 => self
                .session
                .child_exited(ExitStatus::Code(i32::from(value)), self.now),
            1 => self.session.pty_eof(self.now),
            2 => self.session.resize(value % 300, value / 300),
            _ => self.session.terminate(),
        }
        self.drain();
    }

    /// Every pending action; a pause only while a client that is not a viewer is attached.
    fn drain(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some(action) = self.session.poll_action() {
            if action == Action::PausePty {
                assert!(
                    self.clients.values().any(|c| !c.viewer),
                    "paused by viewers"
                );
            }
            actions.push(action);
        }
        actions
    }

    /// Memory and cursor invariants, after every step.
    fn check(&mut self) {
        let config = self.session.config();
        let bound = config.scrollback + config.read_size;
        assert!(
            self.session.ring_len() <= bound,
            "ring holds {}",
            self.session.ring_len()
        );
        let head = self.session.head();
        for (generation, model) in &mut self.clients {
            let Some((cursor, _, _)) = self.session.client_state(*generation) else {
                continue;
            };
            assert!(
                cursor >= model.cursor && cursor <= head,
                "cursor {cursor} of {generation}"
            );
            model.cursor = cursor;
        }
    }
}

/// The attach request for `GET /terminals/42?QUERY` with valid upgrade headers; `None`
/// when the query is refused (a 400, checked here).
fn attach_request(query: &str) -> Option<AttachRequest> {
    let policy = Policy::new(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 8080));
    let headers = [
        ("host", "127.0.0.1:8080"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];
    let head = RequestHead {
        method: Method::Get,
        path: "/terminals/42".into(),
        query: parse_query(query),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    };
    let request = match route(&head, &[], &policy) {
        Ok(Route::Attach(request)) => request,
        Ok(other) => panic!("an attach routed to {other:?}"),
        Err(e) => {
            assert_eq!(e.status(), 400, "{e:?}");
            return None;
        }
    };
    let since = head
        .query_param("since")
        .map(|v| v.trim().parse::<u64>().ok());
    assert_eq!(since.map(Option::unwrap), request.since);
    let asked = head
        .query_param("attach")
        .and_then(|v| AttachPolicy::parse(v.trim()));
    assert_eq!(asked, request.policy);
    assert!(request.control || request.since.is_none());
    Some(request)
}
