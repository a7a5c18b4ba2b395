//! One HTTP connection, on its own short-lived thread: read one request (bounded in time
//! and size), ask the core, carry out its reply, answer, close. A WebSocket upgrade keeps
//! the thread as the client's reader (see [`crate::client`]).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Instant;

use axs_core::api::ApiError;
use axs_core::http::{self, HeadParse, RequestHead, Response};
use axs_core::limits::{LINGER, LINGER_BYTES, REQUEST_TIMEOUT, SEND_LOW_WATER, WRITE_TIMEOUT};
use axs_core::server::Reply;
use axs_pty::SpawnOptions;

use crate::client::{self, ClientId, ClientSignal};
use crate::session;
use crate::shared::Shared;
use crate::{Slot, Slots};

/// A request as read from the socket.
struct Request {
    head: RequestHead,
    body: Vec<u8>,
    /// Bytes the client sent after the request (WebSocket frames right after an upgrade).
    early: Vec<u8>,
}

/// Serves one connection to its end.
/// `slot` is held while the request is read and answered, and given up by an upgrade.
/// A request that spawns a program first takes a place among `spawning`.
pub fn serve(
    shared: &Arc<Shared>,
    program: &SpawnOptions,
    mut stream: TcpStream,
    slot: Slot,
    spawning: &Arc<Slots>,
) {
    // Echoes and small frames must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let request = match read_request(shared, &mut stream) {
        Ok(request) => request,
        Err(Some(answer)) => return finish(stream, &answer),
        Err(None) => return,
    };
    let reply = shared.with_state(|state, now| {
        let reply = state.server.request(&request.head, &request.body, now);
        let client = match &reply {
            Reply::Upgrade { id, generation, .. } => Some(register(state, *id, *generation)),
            _ => None,
        };
        (reply, client)
    });
    match reply {
        (Reply::Respond(answer), _) => finish(stream, &answer),
        (Reply::Spawn(reservation), _) => {
            let _spawning = spawning.acquire();
            let answer = session::create(shared, program, reservation);
            finish(stream, &answer);
        }
        (Reply::Execute(job), _) => {
            let _spawning = spawning.acquire();
            let answer = crate::exec::execute(shared, job);
            finish(stream, &answer);
        }
        (
            Reply::Upgrade {
                response,
                id,
                generation,
            },
            Some((signal, input)),
        ) => {
            drop(slot);
            let client = ClientId { id, generation };
            if let Err(e) = upgrade(&mut stream, &response) {
                log::debug!("session {id}: upgrade answer not sent: {e}");
                return client::detach(shared, client);
            }
            client::serve(shared, client, stream, request.early, signal, input);
        }
        (Reply::Upgrade { .. }, None) => {}
    }
}

type Registered = (Arc<ClientSignal>, Option<Arc<session::InputQueue>>);

/// Registers a new client's wake-up handle in the same critical section as its attach,
/// so the core's first `Wake` for it is not lost.
fn register(state: &mut crate::shared::State, id: u32, generation: u64) -> Registered {
    let signal = Arc::new(ClientSignal::default());
    state.clients.insert((id, generation), Arc::clone(&signal));
    let input = state.sessions.get(&id).map(|io| Arc::clone(&io.input));
    (signal, input)
}

/// Sends the 101 and makes the socket a WebSocket's: no timeouts from here on (a client
/// may read nothing for minutes and must not be disconnected for it).
fn upgrade(stream: &mut TcpStream, response: &Response) -> io::Result<()> {
    stream.write_all(&response.to_bytes())?;
    // The writer then wakes as soon as a slow reader took some data: the core sees its
    // progress early, and little output waits in the kernel.
    if let Err(e) = axs_host::set_send_low_water(stream.as_fd(), SEND_LOW_WATER) {
        log::debug!("TCP_NOTSENT_LOWAT: {e}");
    }
    stream.set_write_timeout(None)?;
    stream.set_read_timeout(None)
}

/// Reads the head and the body the core asks for. `Err(Some(answer))`: refuse with it;
/// `Err(None)`: the client went away or took too long.
fn read_request(shared: &Shared, stream: &mut TcpStream) -> Result<Request, Option<Response>> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut buf = Vec::with_capacity(4096);
    let (head, head_len) = loop {
        match http::parse_head(&buf) {
            Ok(HeadParse::Complete { head, len }) => break (head, len),
            Ok(HeadParse::Partial) => {
                read_more(stream, &mut buf, deadline).map_err(|e| late_answer(shared, &e))?
            }
            Err(e) => return Err(Some(shared.call(|server, _| server.error_answer(None, e)))),
        }
    };
    let body_len = shared
        .call(|server, _| server.body_len(&head))
        .map_err(Some)?;
    let end = head_len + body_len;
    if head.expects_continue() && buf.len() < end {
        stream.write_all(http::CONTINUE).map_err(|_| None)?;
    }
    while buf.len() < end {
        read_more(stream, &mut buf, deadline).map_err(|e| late_answer(shared, &e))?;
    }
    let early = buf.split_off(end);
    let body = buf.split_off(head_len);
    Ok(Request { head, body, early })
}

/// The 408 answer when the request ran out of time; nothing when the client went away.
fn late_answer(shared: &Shared, error: &io::Error) -> Option<Response> {
    let late = matches!(
        error.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    );
    late.then(|| shared.call(|server, _| server.error_answer(None, ApiError::RequestTimeout)))
}

/// Appends what the socket has (at least one byte) before `deadline`.
fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> io::Result<()> {
    let mut chunk = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes the answer and closes the connection gracefully.
fn finish(mut stream: TcpStream, answer: &Response) {
    if let Err(e) = stream.write_all(&answer.to_bytes()) {
        log::debug!("answer not sent: {e}");
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    drain(&mut stream);
}

/// Reads and drops what the client still sends, until it closes (bounded).
fn drain(stream: &mut TcpStream) {
    let deadline = Instant::now() + LINGER;
    let mut chunk = [0u8; 8192];
    let mut total = 0;
    while total < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
