//! One HTTP connection on its own thread, driven by the core's [`Connection`]: blocking
//! reads and writes, each bounded by the connection's next deadline; the request goes to
//! the core, its decision is carried out on this thread (a session spawn, a job), the
//! answer goes back through the connection. A WebSocket upgrade keeps the thread as the
//! client's reader (see [`crate::client`]).
//!
//! Invariant: the core hears `connection_closed` exactly once per admitted connection,
//! when this thread is done with the socket (after the WebSocket, for an upgrade).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;

use axs_core::admission::ConnId;
use axs_core::api::Policy;
use axs_core::conn::{ConnEvent, Connection, Request};
use axs_core::http::Response;
use axs_core::limits::{CONN_READ_CHUNK, SEND_LOW_WATER};
use axs_host::Clock;
use axs_pty::SpawnOptions;

use crate::client;
use crate::handles::{ClientId, ClientSignal, InputQueue};
use crate::shared::{Decision, Shared};
use crate::{job, session};

/// A WebSocket client waiting for its 101 to be written.
struct Upgrade {
    client: ClientId,
    signal: Arc<ClientSignal>,
    input: Option<Arc<InputQueue>>,
    early: Vec<u8>,
}

/// Serves admitted connection `cid` to its end.
pub fn serve(shared: &Arc<Shared>, program: &SpawnOptions, mut stream: TcpStream, cid: ConnId) {
    // Echoes and small frames must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    if let Some(upgrade) = answer(shared, program, &mut stream, cid) {
        client::serve(
            shared,
            upgrade.client,
            stream,
            upgrade.early,
            &upgrade.signal,
            upgrade.input.as_deref(),
        );
    }
    shared.with_state(|state, _| state.close_connection(cid));
}

/// Runs the connection until it closes, or until its 101 is out (then returns the client).
fn answer(
    shared: &Arc<Shared>,
    program: &SpawnOptions,
    stream: &mut TcpStream,
    cid: ConnId,
) -> Option<Upgrade> {
    let mut conn = Connection::new(shared.now());
    let mut buf = vec![0u8; CONN_READ_CHUNK];
    let mut upgrade = None;
    loop {
        while let Some(event) = conn.poll_event() {
            match event {
                ConnEvent::Request(request) => {
                    let (answer, client) = decide(shared, program, cid, request);
                    upgrade = client;
                    match answer {
                        Some(answer) => conn.respond(answer, shared.now()),
                        // The core exited meanwhile: nobody answers.
                        None => return None,
                    }
                }
                ConnEvent::ShutdownWrite => {
                    let _ = stream.shutdown(Shutdown::Write);
                }
                ConnEvent::Upgraded => return upgraded(shared, stream, cid, upgrade),
            }
        }
        if conn.is_closed() {
            if let Some(Upgrade { client, .. }) = upgrade {
                // The 101 never went out: the client is gone before it started.
                shared.with_state(|state, now| state.detach(client, now));
            }
            return None;
        }
        step(shared.clock(), shared.policy(), &mut conn, stream, &mut buf);
    }
}

/// Waits for the socket or the connection's next deadline, and feeds what happened
/// (the `axs lsp` bridge's connections too).
pub(crate) fn step(
    clock: &Clock,
    policy: &Policy,
    conn: &mut Connection,
    stream: &mut TcpStream,
    buf: &mut [u8],
) {
    let wait = conn.poll_timeout().map(|at| {
        clock
            .instant(at)
            .saturating_duration_since(std::time::Instant::now())
    });
    if wait.is_some_and(|left| left.is_zero()) {
        return conn.handle_timeout(policy, clock.now());
    }
    if !conn.outgoing().is_empty() {
        let written = stream
            .set_write_timeout(wait)
            .and_then(|()| stream.write(conn.outgoing()));
        match written {
            Ok(n) if n > 0 => conn.wrote(n, clock.now()),
            Err(e) if is_retry(&e) => {}
            Ok(_) | Err(_) => conn.write_failed(),
        }
    } else if conn.wants_read() {
        let read = stream
            .set_read_timeout(wait)
            .and_then(|()| stream.read(buf));
        match read {
            Ok(n) if n > 0 => conn.received(&buf[..n], policy, clock.now()),
            Err(e) if is_retry(&e) => {}
            Ok(_) | Err(_) => conn.eof(),
        }
    }
}

/// A timeout (the deadline is checked next round) or an interruption.
fn is_retry(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Asks the core about the request and carries out its decision: the answer, and the
/// client to serve once a 101 is out. `None` for the answer if the core gave none.
fn decide(
    shared: &Arc<Shared>,
    program: &SpawnOptions,
    cid: ConnId,
    request: Request,
) -> (Option<Response>, Option<Upgrade>) {
    let decision = shared.with_state(|state, now| state.request(cid, &request, now));
    match decision {
        Decision::Respond(answer) => (Some(answer), None),
        Decision::Spawn(reservation) => (Some(session::create(shared, program, reservation)), None),
        Decision::Execute {
            job,
            command,
            cwd,
            answer,
        } => (job::run(shared, job, &command, &cwd, &answer), None),
        Decision::Upgrade {
            response,
            client,
            signal,
            input,
        } => {
            let early = request.early;
            let upgrade = Upgrade {
                client,
                signal,
                input,
                early,
            };
            (Some(response), Some(upgrade))
        }
    }
}

/// The 101 is out: the socket is the WebSocket's, without timeouts from here on (a client
/// may read nothing for minutes and must not be disconnected for it).
fn upgraded(
    shared: &Shared,
    stream: &TcpStream,
    cid: ConnId,
    upgrade: Option<Upgrade>,
) -> Option<Upgrade> {
    shared.call(|server, _| server.connection_upgraded(cid));
    // The writer then wakes as soon as a slow reader took some data: the core sees its
    // progress early, and little output waits in the kernel.
    if let Err(e) = axs_host::set_send_low_water(stream.as_fd(), SEND_LOW_WATER) {
        log::debug!("TCP_NOTSENT_LOWAT: {e}");
    }
    let cleared = stream
        .set_write_timeout(None)
        .and_then(|()| stream.set_read_timeout(None));
    if let Err(e) = cleared {
        log::debug!("cannot clear the socket's timeouts: {e}");
    }
    upgrade
}
