//! The server registry: limits, spawn outcomes, routing decisions and timers.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use axs_core::api::Policy;
use axs_core::frame::{CloseReason, ExitStatus, Frame};
use axs_core::http::{parse_head, HeadParse, RequestHead};
use axs_core::job::{JobAction, JobId};
use axs_core::process::{Signal, SignalKind};
use axs_core::server::{Output, Reply, Server, ServerConfig};
use axs_core::session::Action;
use axs_core::time::Time;

fn server(max_sessions: usize) -> Server {
    let bound: SocketAddr = "127.0.0.1:8767".parse().unwrap();
    let config = ServerConfig {
        max_sessions,
        home: "/home/user".into(),
        ..ServerConfig::default()
    };
    Server::new(config, Policy::new(bound))
}

fn head(raw: &str) -> RequestHead {
    match parse_head(raw.as_bytes()).unwrap() {
        HeadParse::Complete { head, .. } => head,
        HeadParse::Partial => panic!("incomplete head: {raw}"),
    }
}

fn post(path: &str) -> RequestHead {
    head(&format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:8767\r\n\r\n"
    ))
}

fn upgrade(path: &str) -> RequestHead {
    head(&format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8767\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ))
}

fn status(reply: &Reply) -> u16 {
    match reply {
        Reply::Respond(r) => r.status,
        Reply::Upgrade { response, .. } => response.status,
        other => panic!("not an answer: {other:?}"),
    }
}

/// Creates a session with pid `pid` through the API.
fn create(server: &mut Server, pid: u32) {
    let body = br#"{"cols":80,"rows":24}"#;
    let reply = server.request(&post("/terminals"), body, Time::ZERO);
    let Reply::Spawn(reservation) = reply else {
        panic!("expected a spawn, got {reply:?}");
    };
    assert_eq!((reservation.size().cols, reservation.size().rows), (80, 24));
    let response = server.spawned(reservation, pid, Time::ZERO);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, pid.to_string().as_bytes());
}

/// Routes an `execute-command` with `body` and returns the job, its command and directory.
fn command_job(server: &mut Server, body: &[u8]) -> (JobId, String, String) {
    match server.request(&post("/execute-command"), body, Time::ZERO) {
        Reply::Execute { job, command, cwd } => (job, command, cwd),
        other => panic!("expected a command job, got {other:?}"),
    }
}

fn drain(server: &mut Server) -> Vec<Output> {
    std::iter::from_fn(|| server.poll_output()).collect()
}

/// The hangup the server sends a live group.
fn hangup(pid: u32) -> Output {
    Output::Signal(Signal {
        pid,
        kind: SignalKind::Hangup,
        leader_reaped: false,
    })
}

/// The answer among `outputs` for `job`.
fn answer_of(outputs: &[Output], job: JobId) -> &axs_core::http::Response {
    outputs
        .iter()
        .find_map(|o| match o {
            Output::Job(j, JobAction::Answer(r)) if *j == job => Some(r),
            _ => None,
        })
        .expect("an answer")
}

#[test]
fn the_session_limit_answers_503_and_a_failed_spawn_frees_its_slot() {
    let mut server = server(2);
    create(&mut server, 100);
    let Reply::Spawn(reservation) = server.request(
        &post("/terminals"),
        br#"{"cols":"80","rows":"24"}"#,
        Time::ZERO,
    ) else {
        panic!("expected a spawn");
    };
    // The reservation counts: a third request is refused while the spawn is in progress.
    let refused = server.request(&post("/terminals"), br#"{"cols":80,"rows":24}"#, Time::ZERO);
    assert_eq!(status(&refused), 503);
    let failed = server.spawn_failed(reservation, "No such file or directory: /bin/nope");
    assert_eq!(failed.status, 500);
    assert!(String::from_utf8_lossy(&failed.body).contains("/bin/nope"));
    assert_eq!(server.len(), 1, "a failed spawn registers nothing");
    create(&mut server, 101);
    assert_eq!(server.len(), 2);
}

#[test]
fn unknown_sessions_are_404_before_the_upgrade_and_terminate_is_always_2xx() {
    let mut server = server(4);
    assert_eq!(
        status(&server.request(&upgrade("/terminals/4242"), b"", Time::ZERO)),
        404
    );
    assert_eq!(
        status(&server.request(&post("/terminals/4242/terminate"), b"junk", Time::ZERO)),
        200
    );
    assert_eq!(
        status(&server.request(&post("/terminals/abc/terminate"), b"", Time::ZERO)),
        200
    );
    let resize = server.request(
        &post("/terminals/4242/resize"),
        br#"{"cols":80,"rows":24}"#,
        Time::ZERO,
    );
    assert_eq!(status(&resize), 404);
}

#[test]
fn attach_output_exit_and_retention_end_in_removal() {
    let mut server = server(4);
    create(&mut server, 300);
    let reply = server.request(&upgrade("/terminals/300"), b"", Time::ZERO);
    let Reply::Upgrade {
        response,
        id,
        generation,
    } = reply
    else {
        panic!("expected an upgrade");
    };
    assert_eq!((response.status, id), (101, 300));
    server.pty_output(300, b"hello\r\n", Time::ZERO);
    assert_eq!(
        server.poll_transmit(300, generation, Time::ZERO),
        Some(Frame::Binary(b"hello\r\n".to_vec()))
    );
    assert_eq!(server.poll_transmit(300, generation, Time::ZERO), None);
    let t1 = Time::from_millis(10);
    server.child_exited(300, ExitStatus::Code(7), t1);
    // Draining: the exit waits for EOF or the grace timer.
    let deadline = server.poll_timeout().expect("a drain deadline");
    assert!(deadline > t1);
    server.handle_timeout(deadline);
    let actions = drain(&mut server);
    assert!(actions.contains(&Output::Session(300, Action::Wake(generation))));
    assert!(actions.contains(&Output::Session(300, Action::ClosePty)));
    let exit = server.poll_transmit(300, generation, deadline);
    assert_eq!(exit, Some(Frame::Text(ExitStatus::Code(7).exit_message())));
    assert_eq!(
        server.poll_transmit(300, generation, deadline),
        Some(Frame::Close(CloseReason::Exited))
    );
    // Kept for the retention window, then gone.
    assert!(server.contains(300));
    let retention_end = server.poll_timeout().expect("a retention deadline");
    server.handle_timeout(retention_end);
    assert!(!server.contains(300));
    assert!(drain(&mut server).contains(&Output::Session(300, Action::Remove)));
    assert_eq!(server.poll_timeout(), None);
}

#[test]
fn terminate_asks_the_runtime_and_a_terminated_session_goes_at_exit() {
    let mut server = server(4);
    create(&mut server, 400);
    drain(&mut server);
    assert_eq!(
        status(&server.request(&post("/terminals/400/terminate"), b"", Time::ZERO)),
        200
    );
    assert_eq!(drain(&mut server), vec![hangup(400)]);
    server.pty_eof(400, Time::ZERO);
    server.child_exited(400, ExitStatus::Signal("SIGHUP".into()), Time::ZERO);
    assert!(
        !server.contains(400),
        "nobody watches a terminated session: it goes at once"
    );
    // Terminating twice, and after it is gone, is fine.
    assert_eq!(
        status(&server.request(&post("/terminals/400/terminate"), b"", Time::ZERO)),
        200
    );
}

#[test]
fn shutdown_terminates_every_session_and_refuses_new_ones() {
    let mut server = server(4);
    create(&mut server, 500);
    create(&mut server, 501);
    drain(&mut server);
    server.shutdown(Time::ZERO);
    let actions = drain(&mut server);
    assert_eq!(actions, vec![hangup(500), hangup(501)]);
    assert_eq!(
        status(&server.request(&post("/terminals"), br#"{"cols":80,"rows":24}"#, Time::ZERO)),
        503
    );
    for id in [500, 501] {
        server.pty_eof(id, Time::ZERO);
        server.child_exited(id, ExitStatus::Signal("SIGHUP".into()), Time::ZERO);
    }
    assert!(server.is_shut_down());
}

#[test]
fn execute_command_runs_in_home_unless_told_and_strips_escapes() {
    let mut server = server(4);
    let (job, command, cwd) = command_job(&mut server, br#"{"command":"echo hi"}"#);
    assert_eq!((command.as_str(), cwd.as_str()), ("echo hi", "/home/user"));
    server.job_spawned(job, 900, Time::ZERO);
    server.job_output(job, b"\x1b[31mred\x1b[0m\r\n");
    server.job_eof(job, Time::ZERO);
    server.child_exited(900, ExitStatus::Code(0), Time::ZERO);
    let outputs = drain(&mut server);
    let body: serde_json::Value = serde_json::from_slice(&answer_of(&outputs, job).body).unwrap();
    assert_eq!(body["output"], "red\n");
    assert!(body["error"].is_null());
    let (job, _, cwd) = command_job(&mut server, br#"{"command":"ls","cwd":"/nope"}"#);
    assert_eq!(cwd, "/nope");
    let failure = axs_core::job::JobSpawnFailure::BadCwd("No such file or directory: /nope".into());
    server.job_spawn_failed(job, &failure);
    assert_eq!(answer_of(&drain(&mut server), job).status, 400);
}

#[test]
fn a_full_server_makes_room_by_evicting_an_exited_session_nobody_watches() {
    let mut server = server(1);
    create(&mut server, 600);
    server.pty_eof(600, Time::ZERO);
    server.child_exited(600, ExitStatus::Code(0), Time::ZERO);
    assert!(server.contains(600), "kept for late reconnects");
    create(&mut server, 601);
    assert!(!server.contains(600));
    assert!(server.contains(601));
}

#[test]
fn terminate_reads_no_body_so_no_body_can_refuse_it() {
    let mut server = server(4);
    create(&mut server, 700);
    for extra in [
        "Transfer-Encoding: chunked\r\n",
        "Content-Length: 99999999\r\n",
        "Content-Length: nope\r\n",
    ] {
        let h = head(&format!(
            "POST /terminals/700/terminate HTTP/1.1\r\nHost: 127.0.0.1:8767\r\n{extra}\r\n"
        ));
        assert_eq!(server.body_len(&h).map_err(|r| r.status), Ok(0), "{extra}");
        assert_eq!(status(&server.request(&h, b"", Time::ZERO)), 200, "{extra}");
    }
    // Other routes still refuse what they cannot read.
    let chunked = head(
        "POST /terminals HTTP/1.1\r\nHost: 127.0.0.1:8767\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(server.body_len(&chunked).map_err(|r| r.status), Err(411));
}

#[test]
fn execute_command_errors_still_carry_a_string_output() {
    let mut server = server(4);
    let (job, _, _) = command_job(&mut server, br#"{"command":"ls","cwd":"/nope"}"#);
    server.job_spawn_failed(job, &axs_core::job::JobSpawnFailure::BadCwd("gone".into()));
    let outputs = drain(&mut server);
    let response = answer_of(&outputs, job);
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!((response.status, body["output"].as_str()), (400, Some("")));
}

#[test]
fn a_flood_reads_small_slices_while_another_session_types() {
    use axs_core::contention::{ALONE, SHARED};
    use axs_core::limits::CONTENDED_WINDOW;
    let mut server = server(4);
    create(&mut server, 500);
    create(&mut server, 600);
    let t = |ms: u64| Time::from_millis(ms);
    // 500 floods alone: full slices, for it and for a job.
    server.pty_output(500, &[b'x'; 4096], t(100));
    assert_eq!(server.output_slice(500, t(100)), ALONE);
    // 600 gets a keystroke (from a client of whatever generation; the budget only
    // cares that the session is in use) and echoes it: 500 now reads small slices.
    server.input(600, 1, b"a", t(200));
    server.pty_output(600, b"a", t(201));
    server.pty_output(500, &[b'x'; 4096], t(202));
    assert_eq!(server.output_slice(500, t(202)), SHARED);
    assert_eq!(server.job_output_slice(t(202)), SHARED);
    // 600 stops typing: once it has been quiet for the window, full slices again.
    let quiet = t(201).after(CONTENDED_WINDOW);
    server.pty_output(500, &[b'x'; 4096], quiet);
    assert_eq!(server.output_slice(500, quiet), ALONE);
    // A job still defers to the flooding session.
    assert_eq!(server.job_output_slice(quiet), SHARED);
}
