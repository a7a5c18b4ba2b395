//! Named regression cases for bugs found in review (pid reuse, shutdown mid-spawn, drain while paused, skips, eviction).
#![allow(clippy::unwrap_used)]
use std::net::SocketAddr;
use std::time::Duration;

use axs_core::api::Policy;
use axs_core::frame::ExitStatus;
use axs_core::http::{parse_head, HeadParse, RequestHead};
use axs_core::process::{Signal, SignalKind};
use axs_core::server::{Output, Reply, Server, ServerConfig};
use axs_core::session::{Action, AttachOptions, Session, SessionConfig};
use axs_core::time::Time;

fn cfg() -> SessionConfig {
    SessionConfig {
        scrollback: 64,
        read_size: 16,
        frame_size: 64,
        line_window: 0,
        stall_timeout: Duration::from_secs(30),
        drain_grace: Duration::from_secs(1),
        retention: Duration::from_secs(300),
        ..SessionConfig::default()
    }
}

/// F1: the drain grace expires while reads are paused: ClosePty is issued although the
/// runtime was told not to read, so output still in the pty is never read.
#[test]
fn drain_grace_does_not_close_a_paused_pty() {
    let mut s = Session::new(cfg());
    let g = s.attach(&AttachOptions::default(), Time::ZERO);
    for _ in 0..5 {
        s.pty_output(&[b'x'; 16], Time::ZERO);
    } // client 80 bytes behind
    assert!(s.is_paused());
    s.child_exited(ExitStatus::Code(0), Time::ZERO); // program exited, its tail still in the pty
    s.handle_timeout(s.poll_timeout().unwrap()); // the 1 s grace (stall is 30 s)
    let actions: Vec<Action> = std::iter::from_fn(|| s.poll_action()).collect();
    assert!(
        !(s.is_paused() && actions.contains(&Action::ClosePty)),
        "pty closed while paused (client {g} still reading): {actions:?}"
    );
}

fn server() -> Server {
    let bound: SocketAddr = "127.0.0.1:8767".parse().unwrap();
    Server::new(
        ServerConfig {
            max_sessions: 4,
            ..ServerConfig::default()
        },
        Policy::new(bound),
    )
}
fn head(raw: &str) -> RequestHead {
    match parse_head(raw.as_bytes()).unwrap() {
        HeadParse::Complete { head, .. } => head,
        _ => panic!(),
    }
}
fn create(s: &mut Server, pid: u32) {
    let r = s.request(
        &head("POST /terminals HTTP/1.1\r\nHost: 127.0.0.1:8767\r\n\r\n"),
        br#"{"cols":80,"rows":24}"#,
        Time::ZERO,
    );
    let Reply::Spawn(res) = r else { panic!() };
    assert_eq!(s.spawned(res, pid, Time::ZERO).status, 200);
}
fn ws(s: &mut Server, pid: u32) -> u64 {
    let h = head(&format!(
        "GET /terminals/{pid} HTTP/1.1\r\nHost: 127.0.0.1:8767\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ));
    match s.request(&h, b"", Time::ZERO) {
        Reply::Upgrade { generation, .. } => generation,
        r => panic!("{r:?}"),
    }
}

/// F2: pid reuse. `spawned` removes the old exited session under the same id and queues
/// (id, Remove) *after* the new session is registered; runtime-threads inserts the new
/// SessionIo before calling `spawned`, so routing that Remove closes the NEW pty.
/// The old client's (id, generation) key also aliases the new session's first client.
#[test]
fn reused_pid_remove_is_not_seen_for_a_registered_session() {
    let mut s = server();
    create(&mut s, 100);
    let old_gen = ws(&mut s, 100);
    s.child_exited(100, ExitStatus::Code(0), Time::ZERO);
    s.pty_eof(100, Time::ZERO); // exited, retained 300 s, client attached
    while s.poll_output().is_some() {}
    create(&mut s, 100); // the kernel handed pid 100 out again
    let new_gen = ws(&mut s, 100);
    let actions: Vec<_> = std::iter::from_fn(|| s.poll_output()).collect();
    assert!(
        !(s.contains(100) && actions.contains(&Output::Session(100, Action::Remove))),
        "Remove queued for id 100 while id 100 is registered: {actions:?}"
    );
    assert_ne!(
        old_gen, new_gen,
        "old and new clients share the key (100, {old_gen})"
    );
}

/// F3: a spawn that completes after shutdown() registers a session nobody terminates.
#[test]
fn a_spawn_finishing_during_shutdown_is_terminated() {
    let mut s = server();
    let r = s.request(
        &head("POST /terminals HTTP/1.1\r\nHost: 127.0.0.1:8767\r\n\r\n"),
        br#"{"cols":80,"rows":24}"#,
        Time::ZERO,
    );
    let Reply::Spawn(res) = r else { panic!() };
    s.shutdown(Time::ZERO);
    let _ = s.spawned(res, 7, Time::ZERO);
    let actions: Vec<_> = std::iter::from_fn(|| s.poll_output()).collect();
    let hangup = Signal {
        pid: 7,
        kind: SignalKind::Hangup,
        leader_reaped: false,
    };
    assert!(
        actions.contains(&Output::Signal(hangup)),
        "never terminated: {actions:?}"
    );
}

/// A client that read `seen`, then stopped while the program wrote `unseen` and a lot more,
/// until it was skipped; returns the client's and the program's terminal after it reads again.
fn skip_after(
    seen: &[u8],
    unseen: &[u8],
) -> (axs_core::term::TermState, axs_core::term::TermState, String) {
    use axs_core::frame::Frame;
    use axs_core::term::TermState;
    let mut s = Session::new(SessionConfig {
        frame_size: 1000,
        ..cfg()
    });
    let g = s.attach(&AttachOptions::default(), Time::ZERO);
    let mut stream = Vec::new();
    let mut got = Vec::new();
    let mut out = |s: &mut Session, b: &[u8], t: u64| {
        s.pty_output(b, Time::from_millis(t));
        stream.extend_from_slice(b);
    };
    out(&mut s, seen, 0);
    while let Some(Frame::Binary(b)) = s.poll_transmit(g, Time::ZERO) {
        got.extend(b);
    }
    out(&mut s, unseen, 1_000); // the client stops reading here
    let mut t = 1_000;
    for _ in 0..40 {
        if s.is_paused() {
            // The stall timeout passes: the client is lagging and will be skipped.
            t += 30_000;
            s.handle_timeout(Time::from_millis(t));
        }
        out(&mut s, &b"line of text 1234\r\n"[..16], t);
    }
    while let Some(Frame::Binary(b)) = s.poll_transmit(g, Time::from_millis(t)) {
        got.extend(b);
    }
    let (mut client, mut program) = (TermState::new(), TermState::new());
    client.advance(&got);
    program.advance(&stream);
    (client, program, String::from_utf8_lossy(&got).into_owned())
}

/// F4: the replay after a skip assumed a fresh terminal, but the lagging client's was not:
/// modes it already had (here the alternate screen) were never switched off.
#[test]
fn a_skip_leaves_the_client_terminal_where_the_program_is() {
    let (client, program, got) = skip_after(b"\x1b[?1049h", b"\x1b[?1049l");
    assert_eq!(
        client.modes(),
        program.modes(),
        "after the skip the client got {got:?}"
    );
}

/// F4b: the client had half a sequence (a title) when it stopped; the replay after the skip
/// landed inside it.
#[test]
fn a_skip_aborts_a_half_sent_sequence() {
    let (client, program, got) = skip_after(b"\x1b]0;ti", b"tle\x07");
    assert_eq!(
        client.at_safe_cut(),
        program.at_safe_cut(),
        "after the skip the client got {got:?}"
    );
}

/// F5: eviction counts a client whose exit message went out but whose Close frame is still
/// queued as "no client": the session is removed under it and its Close never comes.
#[test]
fn eviction_spares_a_session_whose_client_still_awaits_its_close() {
    use axs_core::frame::Frame;
    let bound: SocketAddr = "127.0.0.1:8767".parse().unwrap();
    let mut s = Server::new(
        ServerConfig {
            max_sessions: 1,
            ..ServerConfig::default()
        },
        Policy::new(bound),
    );
    create(&mut s, 100);
    let g = ws(&mut s, 100);
    s.child_exited(100, ExitStatus::Code(0), Time::ZERO);
    s.pty_eof(100, Time::ZERO);
    assert!(matches!(
        s.poll_transmit(100, g, Time::ZERO),
        Some(Frame::Text(_))
    )); // exit JSON
    let _ = s.request(
        &head("POST /terminals HTTP/1.1\r\nHost: 127.0.0.1:8767\r\n\r\n"),
        br#"{"cols":80,"rows":24}"#,
        Time::ZERO,
    );
    assert_eq!(
        s.poll_transmit(100, g, Time::ZERO),
        Some(Frame::Close(axs_core::frame::CloseReason::Exited))
    );
}

/// F6: a window full of queries gave each client one range per query to leave out
/// (87,040 ranges, 1.4 MB for a 256 KiB scrollback of `ESC[c`); now at most
/// MAX_REPLAY_DROPS, and the replay still contains none of them.
#[test]
fn a_window_full_of_queries_keeps_a_client_small() {
    use axs_core::frame::Frame;
    use axs_core::session::MAX_REPLAY_DROPS;
    let mut s = Session::new(SessionConfig::with_scrollback(64 * 1024));
    for _ in 0..(64 * 1024 / 3 / 1024) {
        s.pty_output(&b"\x1b[c".repeat(1024), Time::ZERO);
    }
    s.pty_output(b"\r\nprompt$ ", Time::ZERO);
    let g = s.attach(&AttachOptions::default(), Time::ZERO);
    let (cursor, _, _) = s.client_state(g).unwrap();
    let skipped_queries = (cursor - s.ring_start()) / 3;
    assert!(skipped_queries as usize >= 21 * 1024 - MAX_REPLAY_DROPS - 1);
    let mut replay = Vec::new();
    while let Some(Frame::Binary(b)) = s.poll_transmit(g, Time::ZERO) {
        replay.extend(b);
    }
    assert!(replay.ends_with(b"prompt$ "));
    assert!(!replay.windows(3).any(|w| w == b"\x1b[c"));
}
