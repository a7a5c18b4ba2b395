//! Processes, `execute-command` jobs, termination, shutdown and connection admission:
//! every decision the server makes about them, on a virtual clock.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use std::time::Duration;

use axs_core::admission::{AcceptFailure, Admission};
use axs_core::api::{Policy, EXECUTE_COMMAND_TIMEOUT};
use axs_core::frame::ExitStatus;
use axs_core::http::{parse_head, HeadParse, RequestHead, Response};
use axs_core::job::{JobAction, JobId, JobSpawnFailure};
use axs_core::limits::{
    self, ACCEPT_RETRY, COMMAND_DRAIN_AFTER_EXIT, COMMAND_MAX_OUTPUT, MAX_CONNECTIONS, MAX_JOBS,
    SHUTDOWN_LIMIT, TERMINATE_GRACE,
};
use axs_core::process::{Signal, SignalKind};
use axs_core::server::{Output, Reply, Server, ServerConfig};
use axs_core::session::Action;
use axs_core::time::Time;

fn server() -> Server {
    let bound: SocketAddr = "127.0.0.1:8767".parse().unwrap();
    Server::new(ServerConfig::default(), Policy::new(bound))
}

fn post(path: &str) -> RequestHead {
    let raw = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1:8767\r\n\r\n");
    match parse_head(raw.as_bytes()).unwrap() {
        HeadParse::Complete { head, .. } => head,
        HeadParse::Partial => panic!("incomplete head"),
    }
}

fn ms(ms: u64) -> Time {
    Time::from_millis(ms)
}

fn drain(server: &mut Server) -> Vec<Output> {
    std::iter::from_fn(|| server.poll_output()).collect()
}

fn signal(pid: u32, kind: SignalKind, leader_reaped: bool) -> Output {
    Output::Signal(Signal {
        pid,
        kind,
        leader_reaped,
    })
}

fn signals(outputs: &[Output]) -> Vec<Signal> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Signal(s) => Some(*s),
            _ => None,
        })
        .collect()
}

/// Creates a session with pid `pid` at `now`.
fn create(server: &mut Server, pid: u32, now: Time) {
    let reply = server.request(&post("/terminals"), br#"{"cols":80,"rows":24}"#, now);
    let Reply::Spawn(reservation) = reply else {
        panic!("expected a spawn, got {reply:?}");
    };
    assert_eq!(server.spawned(reservation, pid, now).status, 200);
}

/// Starts an `execute-command` of `command` and returns its job.
fn start_job(server: &mut Server, command: &str, now: Time) -> JobId {
    let body = serde_json::json!({ "command": command }).to_string();
    match server.request(&post("/execute-command"), body.as_bytes(), now) {
        Reply::Execute { job, .. } => job,
        other => panic!("expected a job, got {other:?}"),
    }
}

/// A job whose shell runs as `pid` since `now`.
fn running_job(server: &mut Server, pid: u32, now: Time) -> JobId {
    let job = start_job(server, "true", now);
    server.job_spawned(job, pid, now);
    job
}

/// The job's answer among `outputs`, checking that its pty was closed first.
fn answer(outputs: &[Output], job: JobId) -> Option<&Response> {
    let at = outputs
        .iter()
        .position(|o| matches!(o, Output::Job(j, JobAction::Answer(_)) if *j == job))?;
    let Output::Job(_, JobAction::Answer(response)) = &outputs[at] else {
        unreachable!()
    };
    Some(response)
}

fn body(response: &Response) -> serde_json::Value {
    serde_json::from_slice(&response.body).unwrap()
}

fn exited(server: &mut Server, pid: u32, now: Time) {
    server.child_exited(pid, ExitStatus::Code(0), now);
}

#[test]
fn a_job_is_answered_once_its_shell_exited_and_its_pty_is_drained() {
    for eof_first in [true, false] {
        let mut s = server();
        let job = running_job(&mut s, 900, ms(0));
        s.job_output(job, b"\x1b[1mhello\x1b[0m\r\n");
        if eof_first {
            s.job_eof(job, ms(5));
            assert!(
                answer(&drain(&mut s), job).is_none(),
                "the shell still runs"
            );
            exited(&mut s, 900, ms(6));
        } else {
            exited(&mut s, 900, ms(5));
            assert!(
                answer(&drain(&mut s), job).is_none(),
                "output may still come"
            );
            s.job_eof(job, ms(6));
        }
        let outputs = drain(&mut s);
        assert_eq!(
            outputs,
            vec![
                Output::Job(job, JobAction::ClosePty),
                Output::Job(
                    job,
                    JobAction::Answer(answer(&outputs, job).unwrap().clone())
                ),
                signal(900, SignalKind::Hangup, true),
            ],
            "answer, then hang up what the command left"
        );
        let response = answer(&outputs, job).unwrap();
        assert_eq!(
            (response.status, body(response)["output"].as_str()),
            (200, Some("hello\n"))
        );
        assert_eq!(s.jobs_in_flight(), 0);
    }
}

#[test]
fn a_held_pty_delays_the_answer_only_by_the_drain_after_the_exit() {
    let mut s = server();
    let job = running_job(&mut s, 900, ms(0));
    s.job_output(job, b"started\n");
    exited(&mut s, 900, ms(1000));
    let drain_end = ms(1000).after(COMMAND_DRAIN_AFTER_EXIT);
    assert_eq!(s.poll_timeout(), Some(drain_end));
    s.handle_timeout(ms(drain_end.as_millis() - 1));
    assert!(answer(&drain(&mut s), job).is_none());
    s.handle_timeout(drain_end);
    let outputs = drain(&mut s);
    assert_eq!(outputs[0], Output::Job(job, JobAction::ClosePty));
    assert_eq!(body(answer(&outputs, job).unwrap())["output"], "started\n");
    // Output after the answer (the pty is being closed) is ignored.
    s.job_output(job, b"late");
    s.job_eof(job, drain_end);
    assert!(drain(&mut s).is_empty());
}

#[test]
fn the_time_limit_answers_a_failure_at_30_s_and_not_before() {
    let mut s = server();
    let job = running_job(&mut s, 900, ms(500));
    let limit = ms(500).after(EXECUTE_COMMAND_TIMEOUT);
    assert_eq!(s.poll_timeout(), Some(limit));
    s.job_output(job, b"partial");
    s.handle_timeout(ms(limit.as_millis() - 1));
    assert!(drain(&mut s).is_empty());
    s.handle_timeout(limit);
    let outputs = drain(&mut s);
    let response = answer(&outputs, job).unwrap();
    assert_eq!(response.status, 500);
    assert_eq!(body(response)["error"], limits::command_timed_out());
    assert_eq!(
        body(response)["output"],
        "",
        "a string, so clients may trim() it"
    );
    assert_eq!(
        signals(&outputs),
        vec![Signal {
            pid: 900,
            kind: SignalKind::Hangup,
            leader_reaped: false
        }]
    );
    // Still running at the grace's end: killed.
    let grace_end = limit.after(TERMINATE_GRACE);
    assert_eq!(s.poll_timeout(), Some(grace_end));
    s.handle_timeout(grace_end);
    assert_eq!(drain(&mut s), vec![signal(900, SignalKind::Kill, false)]);
    // Reaped: forgotten, nothing more to do.
    assert_eq!(s.unreaped().collect::<Vec<_>>(), vec![900]);
    exited(&mut s, 900, grace_end);
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.tracked_processes(), 0);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn output_beyond_the_cap_is_dropped_and_reading_goes_on() {
    let mut s = server();
    let job = running_job(&mut s, 900, ms(0));
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..(COMMAND_MAX_OUTPUT / chunk.len() + 3) {
        s.job_output(job, &chunk);
    }
    s.job_output(job, b"the end");
    assert!(drain(&mut s).is_empty(), "the pty is never closed for it");
    s.job_eof(job, ms(1));
    exited(&mut s, 900, ms(1));
    let outputs = drain(&mut s);
    let output = body(answer(&outputs, job).unwrap())["output"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(output.len(), COMMAND_MAX_OUTPUT);
    assert!(!output.contains("the end"));
}

#[test]
fn a_bad_cwd_is_the_clients_mistake_and_other_spawn_failures_the_servers() {
    let mut s = server();
    let cases = [
        (
            JobSpawnFailure::BadCwd("No such file or directory: /nope".into()),
            400,
        ),
        (JobSpawnFailure::Failed("out of ptys".into()), 500),
    ];
    for (failure, status) in cases {
        let job = start_job(&mut s, "ls", ms(0));
        s.job_spawn_failed(job, &failure);
        let outputs = drain(&mut s);
        assert_eq!(outputs.len(), 1, "only the answer: no pty, no process");
        let response = answer(&outputs, job).unwrap();
        assert_eq!(response.status, status);
        assert_eq!(body(response)["output"], "");
        let error = body(response)["error"].as_str().unwrap().to_string();
        assert!(error.contains(match &failure {
            JobSpawnFailure::BadCwd(r) | JobSpawnFailure::Failed(r) => r.as_str(),
        }));
    }
    assert_eq!(s.jobs_in_flight(), 0);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_job_left_running_is_hung_up_then_killed_after_the_grace_then_forgotten() {
    let mut s = server();
    let job = running_job(&mut s, 900, ms(0));
    exited(&mut s, 900, ms(10));
    s.job_eof(job, ms(20));
    // The shell was reaped: the runtime signals only if the group still has members.
    assert_eq!(
        signals(&drain(&mut s)),
        vec![Signal {
            pid: 900,
            kind: SignalKind::Hangup,
            leader_reaped: true
        }]
    );
    assert_eq!(s.tracked_processes(), 1, "a kill is pending");
    let grace_end = ms(20).after(TERMINATE_GRACE);
    s.handle_timeout(ms(grace_end.as_millis() - 1));
    assert!(drain(&mut s).is_empty());
    s.handle_timeout(grace_end);
    assert_eq!(drain(&mut s), vec![signal(900, SignalKind::Kill, true)]);
    assert_eq!(
        s.tracked_processes(),
        0,
        "reaped and its kill schedule over"
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn terminating_a_session_hangs_it_up_and_kills_what_is_left_at_the_grace() {
    let mut s = server();
    create(&mut s, 400, ms(0));
    drain(&mut s);
    s.request(&post("/terminals/400/terminate"), b"", ms(100));
    assert_eq!(drain(&mut s), vec![signal(400, SignalKind::Hangup, false)]);
    // The program ends on the hangup; a background job in its group ignores it.
    s.pty_eof(400, ms(150));
    exited(&mut s, 400, ms(150));
    assert!(!s.contains(400));
    assert_eq!(
        drain(&mut s),
        vec![
            Output::Session(400, Action::ClosePty),
            Output::Session(400, Action::Remove)
        ]
    );
    let grace_end = ms(100).after(TERMINATE_GRACE);
    s.handle_timeout(ms(grace_end.as_millis() - 1));
    assert!(drain(&mut s).is_empty(), "no kill before the grace");
    s.handle_timeout(grace_end);
    assert_eq!(drain(&mut s), vec![signal(400, SignalKind::Kill, true)]);
    assert_eq!(s.tracked_processes(), 0);
}

#[test]
fn a_session_still_running_at_the_grace_is_killed_as_a_live_group() {
    let mut s = server();
    create(&mut s, 400, ms(0));
    s.terminate(400, ms(0));
    s.terminate(400, ms(1));
    assert_eq!(
        signals(&drain(&mut s)).len(),
        1,
        "one hangup, however often asked"
    );
    s.handle_timeout(Time::ZERO.after(TERMINATE_GRACE));
    assert_eq!(drain(&mut s), vec![signal(400, SignalKind::Kill, false)]);
}

/// The drain grace of the default session configuration.
fn drain_grace() -> Duration {
    axs_core::session::SessionConfig::default().drain_grace
}

#[test]
fn a_program_that_closed_its_terminal_is_hung_up_after_the_drain_grace() {
    let mut s = server();
    create(&mut s, 400, ms(0));
    drain(&mut s);
    // The master read EIO: nothing holds the terminal, but the program was not reaped.
    s.pty_eof(400, ms(100));
    let due = ms(100).after(drain_grace());
    assert_eq!(
        s.poll_timeout(),
        Some(due),
        "a timer for the end of the program"
    );
    s.handle_timeout(ms(due.as_millis() - 1));
    assert!(
        signals(&drain(&mut s)).is_empty(),
        "no hangup before the grace"
    );
    s.handle_timeout(due);
    assert_eq!(drain(&mut s), vec![signal(400, SignalKind::Hangup, false)]);
    // A program ignoring the hangup is killed at the terminate grace, like any terminate.
    let grace_end = due.after(TERMINATE_GRACE);
    s.handle_timeout(grace_end);
    assert_eq!(drain(&mut s), vec![signal(400, SignalKind::Kill, false)]);
    exited(&mut s, 400, grace_end);
    assert!(s.session(400).is_some_and(|session| session.is_exited()));
    s.handle_timeout(grace_end.after(Duration::from_secs(3600)));
    assert!(signals(&drain(&mut s)).is_empty(), "ended once");
}

#[test]
fn an_exit_reaped_within_the_drain_grace_of_eof_is_an_ordinary_exit() {
    let mut s = server();
    create(&mut s, 400, ms(0));
    drain(&mut s);
    // The usual order of an exit as often as the other: the terminal closes, then the reap.
    s.pty_eof(400, ms(100));
    exited(&mut s, 400, ms(120));
    s.handle_timeout(ms(100).after(drain_grace()));
    s.handle_timeout(ms(100).after(drain_grace()).after(TERMINATE_GRACE));
    assert!(
        signals(&drain(&mut s)).is_empty(),
        "an exited program is neither hung up nor killed"
    );
}

#[test]
fn no_kill_reaches_a_newer_spawn_that_reuses_the_pid() {
    let mut s = server();
    create(&mut s, 400, ms(0));
    s.terminate(400, ms(0));
    s.pty_eof(400, ms(10));
    exited(&mut s, 400, ms(10));
    drain(&mut s);
    // The kernel hands pid 400 out again: the old group was empty, or it could not.
    create(&mut s, 400, ms(20));
    s.handle_timeout(Time::ZERO.after(TERMINATE_GRACE));
    assert_eq!(
        signals(&drain(&mut s)),
        vec![],
        "the new session is not the old one"
    );
    // A job that reuses a session's pid is not killed for it either.
    let job = start_job(&mut s, "sleep 1", ms(30));
    s.terminate(400, ms(40));
    drain(&mut s);
    s.pty_eof(400, ms(50));
    exited(&mut s, 400, ms(50));
    s.job_spawned(job, 400, ms(60));
    s.handle_timeout(ms(40).after(TERMINATE_GRACE));
    assert_eq!(signals(&drain(&mut s)), vec![]);
    // And the reused pid's exit goes to the job.
    s.job_eof(job, ms(70));
    exited(&mut s, 400, ms(70));
    assert!(answer(&drain(&mut s), job).is_some());
}

#[test]
fn exits_of_unknown_pids_are_ignored() {
    let mut s = server();
    create(&mut s, 400, ms(0));
    exited(&mut s, 12345, ms(1));
    assert!(drain(&mut s).is_empty());
    exited(&mut s, 400, ms(1));
    exited(&mut s, 400, ms(2)); // reaped twice: the second is nobody's
    assert_eq!(s.unreaped().count(), 0);
}

#[test]
fn at_most_max_jobs_run_at_once() {
    let mut s = server();
    let jobs: Vec<JobId> = (0..MAX_JOBS)
        .map(|_| start_job(&mut s, "sleep 9", ms(0)))
        .collect();
    let reply = s.request(&post("/execute-command"), br#"{"command":"ls"}"#, ms(0));
    let Reply::Respond(refused) = reply else {
        panic!("expected a refusal, got {reply:?}");
    };
    assert_eq!(refused.status, 503);
    assert_eq!(body(&refused)["output"], "");
    assert!(body(&refused)["error"]
        .as_str()
        .unwrap()
        .contains(&MAX_JOBS.to_string()));
    // One answered: room for one more.
    s.job_spawn_failed(jobs[0], &JobSpawnFailure::Failed("no".into()));
    start_job(&mut s, "ls", ms(1));
}

#[test]
fn shutdown_kills_what_ignored_the_hangup_before_it_exits() {
    let mut s = server();
    create(&mut s, 400, ms(0));
    let job = running_job(&mut s, 900, ms(0));
    s.job_output(job, b"half");
    drain(&mut s);
    s.shutdown(ms(1000));
    let outputs = drain(&mut s);
    let response = answer(&outputs, job).unwrap();
    assert_eq!(response.status, 503, "the job could not finish");
    assert_eq!(
        signals(&outputs),
        vec![
            Signal {
                pid: 400,
                kind: SignalKind::Hangup,
                leader_reaped: false
            },
            Signal {
                pid: 900,
                kind: SignalKind::Hangup,
                leader_reaped: false
            },
        ]
    );
    let reply = s.request(&post("/execute-command"), br#"{"command":"ls"}"#, ms(1000));
    assert!(
        matches!(reply, Reply::Respond(r) if r.status == 503),
        "no new job"
    );
    // The session ends on the hangup; the job's shell ignores it.
    s.pty_eof(400, ms(1100));
    exited(&mut s, 400, ms(1100));
    let outputs = drain(&mut s);
    let exit = outputs
        .iter()
        .position(|o| *o == Output::Exit)
        .expect("exit once all is done");
    assert_eq!(
        &outputs[exit - 2..],
        &[
            signal(400, SignalKind::Kill, true),
            signal(900, SignalKind::Kill, false),
            Output::Exit,
        ],
        "every pending kill right before Exit"
    );
    assert_eq!(exit, outputs.len() - 1);
    assert!(drain(&mut s).is_empty(), "Exit comes once");
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn shutdown_waits_for_websockets_and_spawns_until_its_limit() {
    let mut s = server();
    let Admission::Admitted(ws) = s.connection_opened() else {
        panic!()
    };
    s.connection_request_complete(ws);
    s.connection_upgraded(ws);
    let spawning = start_job(&mut s, "sleep 9", ms(0));
    s.shutdown(ms(0));
    let outputs = drain(&mut s);
    assert_eq!(answer(&outputs, spawning).unwrap().status, 503);
    assert!(
        !outputs.contains(&Output::Exit),
        "a spawn and a WebSocket are pending"
    );
    // The spawn reports late: its pty is closed and its group hung up at once.
    s.job_spawned(spawning, 900, ms(100));
    assert_eq!(
        drain(&mut s),
        vec![
            Output::Job(spawning, JobAction::ClosePty),
            signal(900, SignalKind::Hangup, false)
        ]
    );
    // The kill at the grace comes on time, the WebSocket keeps the server up.
    s.handle_timeout(ms(100).after(TERMINATE_GRACE));
    assert_eq!(drain(&mut s), vec![signal(900, SignalKind::Kill, false)]);
    let limit = Time::ZERO.after(SHUTDOWN_LIMIT);
    assert_eq!(s.poll_timeout(), Some(limit));
    s.handle_timeout(ms(limit.as_millis() - 1));
    assert!(drain(&mut s).is_empty());
    s.handle_timeout(limit);
    assert_eq!(
        drain(&mut s),
        vec![Output::Exit],
        "the limit: whatever is left"
    );
}

#[test]
fn shutdown_exits_as_soon_as_the_last_websocket_closes() {
    let mut s = server();
    let Admission::Admitted(ws) = s.connection_opened() else {
        panic!()
    };
    s.connection_upgraded(ws);
    s.shutdown(ms(0));
    assert!(drain(&mut s).is_empty());
    s.connection_closed(ws);
    assert_eq!(drain(&mut s), vec![Output::Exit]);
}

#[test]
fn shutdown_at_the_limit_kills_every_session_left() {
    let mut s = server();
    create(&mut s, 400, ms(0));
    s.shutdown(ms(0));
    drain(&mut s);
    // Killed at the grace like any terminated session; its leader is stuck, unreaped.
    s.handle_timeout(Time::ZERO.after(TERMINATE_GRACE));
    assert_eq!(drain(&mut s), vec![signal(400, SignalKind::Kill, false)]);
    s.handle_timeout(Time::ZERO.after(SHUTDOWN_LIMIT));
    assert_eq!(drain(&mut s), vec![Output::Exit]);
}

fn admitted(s: &mut Server) -> axs_core::admission::ConnId {
    match s.connection_opened() {
        Admission::Admitted(id) => id,
        Admission::Refused(r) => panic!("refused: {}", r.status),
    }
}

#[test]
fn a_full_server_evicts_its_oldest_idle_connection_for_a_new_one() {
    let mut s = server();
    let ids: Vec<_> = (0..MAX_CONNECTIONS).map(|_| admitted(&mut s)).collect();
    // The two oldest are busy answering: not evictable.
    s.connection_request_complete(ids[0]);
    s.connection_request_complete(ids[1]);
    assert!(drain(&mut s).is_empty());
    let newest = admitted(&mut s);
    assert_eq!(drain(&mut s), vec![Output::Evict(ids[2])]);
    assert_eq!(s.connections_counted(), MAX_CONNECTIONS);
    // A late close of the evicted one changes nothing.
    s.connection_closed(ids[2]);
    assert_eq!(s.connections_counted(), MAX_CONNECTIONS);
    admitted(&mut s);
    assert_eq!(drain(&mut s), vec![Output::Evict(ids[3])]);
    s.connection_closed(newest);
    admitted(&mut s);
    assert!(drain(&mut s).is_empty(), "room again: nobody evicted");
}

#[test]
fn a_full_server_of_busy_connections_refuses_a_new_one() {
    let mut s = server();
    for _ in 0..MAX_CONNECTIONS {
        let id = admitted(&mut s);
        s.connection_request_complete(id);
    }
    let Admission::Refused(refused) = s.connection_opened() else {
        panic!("admitted beyond the cap");
    };
    assert_eq!(refused.status, 503);
    assert!(body(&refused)["error"]
        .as_str()
        .unwrap()
        .contains(&MAX_CONNECTIONS.to_string()));
    assert!(drain(&mut s).is_empty());
}

#[test]
fn upgraded_connections_do_not_count() {
    let mut s = server();
    for _ in 0..MAX_CONNECTIONS {
        let id = admitted(&mut s);
        s.connection_request_complete(id);
        s.connection_upgraded(id);
    }
    assert_eq!(s.connections_counted(), 0);
    for _ in 0..MAX_CONNECTIONS {
        let id = admitted(&mut s);
        s.connection_request_complete(id);
    }
    assert!(drain(&mut s).is_empty());
}

#[test]
fn out_of_descriptors_evicts_the_oldest_idle_connection_and_accepts_at_once() {
    let mut s = server();
    let ids: Vec<_> = (0..4).map(|_| admitted(&mut s)).collect();
    s.connection_request_complete(ids[0]);
    let pause = s.accept_failed(AcceptFailure::OutOfDescriptors, ms(0));
    assert_eq!(
        pause,
        Duration::ZERO,
        "a descriptor is being freed: accept again"
    );
    assert_eq!(drain(&mut s), vec![Output::Evict(ids[1])]);
    assert_eq!(s.connections_counted(), 3);
}

#[test]
fn one_eviction_for_descriptors_at_a_time_until_its_close_is_reported() {
    let mut s = server();
    let ids: Vec<_> = (0..4).map(|_| admitted(&mut s)).collect();
    assert_eq!(
        s.accept_failed(AcceptFailure::OutOfDescriptors, ms(0)),
        Duration::ZERO
    );
    assert_eq!(drain(&mut s), vec![Output::Evict(ids[0])]);
    // The evicted socket is not closed yet: accepting fails again, nobody else goes.
    assert_eq!(
        s.accept_failed(AcceptFailure::OutOfDescriptors, ms(1)),
        ACCEPT_RETRY
    );
    assert!(drain(&mut s).is_empty());
    // Its close is reported: the next failure may free the next descriptor.
    s.connection_closed(ids[0]);
    assert_eq!(
        s.accept_failed(AcceptFailure::OutOfDescriptors, ms(2)),
        Duration::ZERO
    );
    assert_eq!(drain(&mut s), vec![Output::Evict(ids[1])]);
    // A close never reported holds evictions back for `ACCEPT_RETRY` only.
    let later = ms(2).after(ACCEPT_RETRY);
    assert_eq!(
        s.accept_failed(AcceptFailure::OutOfDescriptors, later),
        Duration::ZERO
    );
    assert_eq!(drain(&mut s), vec![Output::Evict(ids[2])]);
}

#[test]
fn out_of_descriptors_with_every_connection_busy_waits() {
    let mut s = server();
    let busy = admitted(&mut s);
    s.connection_request_complete(busy);
    let ws = admitted(&mut s);
    s.connection_upgraded(ws);
    assert_eq!(
        s.accept_failed(AcceptFailure::OutOfDescriptors, ms(0)),
        ACCEPT_RETRY
    );
    assert!(
        drain(&mut s).is_empty(),
        "busy and upgraded are never evicted"
    );
    assert_eq!(s.connections_counted(), 1);
}

#[test]
fn other_accept_failures_evict_nobody() {
    let mut s = server();
    admitted(&mut s);
    assert_eq!(s.accept_failed(AcceptFailure::Other, ms(0)), ACCEPT_RETRY);
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.connections_counted(), 1);
}
