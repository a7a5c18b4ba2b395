//! One HTTP connection, driven by the core's [`Connection`]: this module reads and writes
//! the socket when it says so, asks the [`Server`](axs_core::server::Server) for the answer
//! to the request, and hands an upgraded socket to the WebSocket.
//!
//! Every connection gets exactly one answer (a refusal at admission included) and is
//! closed after it, except a WebSocket upgrade, which becomes a client of a session.

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;

use axs_core::admission::{Admission, ConnId};
use axs_core::api::Policy;
use axs_core::conn::{ConnEvent, Connection, Request};
use axs_core::http::Response;
use axs_core::limits::CONN_READ_CHUNK;
use axs_core::server::Reply;
use axs_core::time::Time;
use futures_lite::future;

use crate::driver::Driver;
use crate::reactor::Async;
use crate::wake::Wake;
use crate::{job, pty, ws};

type Socket = Async<TcpStream>;

/// What ended one wait of the connection loop.
enum Ready {
    Socket(SocketReady),
    Evicted,
}

/// What a connection's socket or deadline is ready for.
pub(crate) enum SocketReady {
    Readable,
    Writable,
    Timer,
}

/// How the connection loop ended.
enum End {
    /// The `101` is out: the socket is the WebSocket's.
    Upgraded,
    /// Closed, evicted, or nobody answered: drop the socket.
    Over,
}

/// Serves one accepted connection to its end.
pub async fn serve(driver: Rc<Driver>, stream: Socket) {
    let mut conn = Connection::new(driver.now());
    let (cid, evicted) = match driver.call(|server, _| server.connection_opened()) {
        Admission::Admitted(cid) => (Some(cid), driver.add_connection(cid)),
        Admission::Refused(answer) => {
            conn.respond(answer, driver.now());
            (None, Wake::new())
        }
    };
    let mut upgrading = None;
    let end = drive(&driver, &stream, &mut conn, cid, evicted, &mut upgrading).await;
    match (end, upgrading) {
        (End::Upgraded, Some(client)) => {
            if let Some(cid) = cid {
                driver.call(|server, _| server.connection_upgraded(cid));
            }
            ws::serve(driver.clone(), stream, client).await;
        }
        (_, Some(client)) => {
            // The 101 never got out: the client never started.
            driver.remove_client(client.id, client.generation);
            driver.call(|server, now| server.detach(client.id, client.generation, now));
        }
        (_, None) => {}
    }
    if let Some(cid) = cid {
        driver.connection_closed(cid);
    }
}

/// Runs the connection until it is closed, evicted or upgraded.
async fn drive(
    driver: &Rc<Driver>,
    stream: &Socket,
    conn: &mut Connection,
    cid: Option<ConnId>,
    evicted: Wake,
    upgrading: &mut Option<ws::Client>,
) -> End {
    loop {
        while let Some(event) = conn.poll_event() {
            match event {
                ConnEvent::Request(request) => {
                    if let Some(cid) = cid {
                        driver.call(|server, _| server.connection_request_complete(cid));
                    }
                    let Some(answer) = decide(driver, request, upgrading).await else {
                        return End::Over;
                    };
                    conn.respond(answer, driver.now());
                }
                ConnEvent::ShutdownWrite => _ = stream.get_ref().shutdown(Shutdown::Write),
                ConnEvent::Upgraded => return End::Upgraded,
            }
        }
        if conn.is_closed() {
            return End::Over;
        }
        // Write at once: a fresh answer usually fits the socket without a wait.
        if !conn.outgoing().is_empty() && write(driver, stream, conn) {
            continue;
        }
        match wait(driver, stream, conn, &evicted).await {
            Ready::Socket(SocketReady::Readable) => read(driver, stream, conn),
            Ready::Socket(SocketReady::Writable) => _ = write(driver, stream, conn),
            Ready::Socket(SocketReady::Timer) => {
                driver.inspect(|s| conn.handle_timeout(s.policy(), driver.now()));
            }
            Ready::Evicted => {
                _ = stream.get_ref().shutdown(Shutdown::Both);
                return End::Over;
            }
        }
    }
}

/// Waits until the socket can do what the connection wants, its deadline, or eviction.
async fn wait(driver: &Driver, stream: &Socket, conn: &Connection, evicted: &Wake) -> Ready {
    let socket =
        async { Ready::Socket(connection_ready(stream, conn, |at| driver.sleep_until(at)).await) };
    let eviction = when(
        Some(async { while evicted.wait().await {} }),
        Ready::Evicted,
    );
    future::or(socket, eviction).await
}

/// Waits until the socket can do what `conn` wants (read, write) or its deadline passes
/// (`sleep_until` sleeps until a core time). Shared with the LSP bridge.
pub(crate) async fn connection_ready<F: Future<Output = ()>>(
    stream: &Socket,
    conn: &Connection,
    sleep_until: impl FnOnce(Time) -> F,
) -> SocketReady {
    let readable = when(
        conn.wants_read().then(|| stream.readable()),
        SocketReady::Readable,
    );
    let writable = when(
        (!conn.outgoing().is_empty()).then(|| stream.writable()),
        SocketReady::Writable,
    );
    let timer = when(conn.poll_timeout().map(sleep_until), SocketReady::Timer);
    future::or(readable, future::or(writable, timer)).await
}

/// `ready` once `future` is done; never when there is none.
async fn when<T, R>(future: Option<impl Future<Output = T>>, ready: R) -> R {
    match future {
        Some(future) => _ = future.await,
        None => future::pending::<()>().await,
    }
    ready
}

/// Reads what the socket has into the connection (a readiness may be spurious).
fn read(driver: &Driver, stream: &Socket, conn: &mut Connection) {
    driver.with_read_buffer(|buf| {
        let chunk = &mut buf[..CONN_READ_CHUNK];
        driver.inspect(|s| read_into(stream, conn, chunk, s.policy(), driver.now()));
    });
}

/// Writes what the connection has to write, as far as the socket takes it; false when
/// it took nothing (it would block).
fn write(driver: &Driver, stream: &Socket, conn: &mut Connection) -> bool {
    write_from(stream, conn, driver.now())
}

/// One read of the socket into `buf`, handed to the connection: EOF or an error ends
/// its request, a spurious readiness changes nothing. Shared with the LSP bridge.
pub(crate) fn read_into(
    stream: &Socket,
    conn: &mut Connection,
    buf: &mut [u8],
    policy: &Policy,
    now: Time,
) {
    match stream.get_ref().read(buf) {
        Ok(0) => conn.eof(),
        Ok(n) => conn.received(&buf[..n], policy, now),
        Err(e) if is_retry(&e) => {}
        Err(e) => {
            log::debug!("reading a request: {e}");
            conn.eof();
        }
    }
}

/// One write of what the connection has to write; false when the socket took nothing
/// (it would block). Shared with the LSP bridge.
pub(crate) fn write_from(stream: &Socket, conn: &mut Connection, now: Time) -> bool {
    match stream.get_ref().write(conn.outgoing()) {
        Ok(0) => conn.write_failed(),
        Ok(n) => conn.wrote(n, now),
        Err(e) if is_retry(&e) => return false,
        Err(e) => {
            log::debug!("writing an answer: {e}");
            conn.write_failed();
        }
    }
    true
}

pub(crate) fn is_retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The answer to a whole request, after carrying out what the core decided (spawning a
/// session, running a job); `None` when nobody answers (close without one).
async fn decide(
    driver: &Rc<Driver>,
    request: Request,
    upgrading: &mut Option<ws::Client>,
) -> Option<Response> {
    let Request { head, body, early } = request;
    let reply = driver.call(|server, now| server.request(&head, &body, now));
    match reply {
        Reply::Respond(answer) => Some(answer),
        Reply::Spawn(reservation) => Some(pty::start_session(driver, reservation)),
        Reply::Execute { job, command, cwd } => job::run(driver, job, &command, &cwd).await,
        Reply::Upgrade {
            response,
            id,
            generation,
        } => {
            let wake = Wake::new();
            driver.add_client(id, generation, wake.clone());
            // Registered before the 101: a removal of the session meanwhile closes it.
            *upgrading = Some(ws::Client {
                id,
                generation,
                wake,
                early,
            });
            Some(response)
        }
    }
}
