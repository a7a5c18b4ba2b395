//! One attached WebSocket client: two threads over one TCP socket.
//!
//! - The reader (the connection's own thread, after the 101) blocks in `read`; text and
//!   binary messages go to `server.input` (and the resulting input to the pty, see
//!   [`crate::session`]), pings become pong requests for the writer, and
//!   when the socket closes or breaks it calls `server.detach`.
//! - The writer waits on the client's [`ClientSignal`] (set by `Action::Wake`), then polls
//!   `server.poll_transmit` until it returns `None`, writing each frame, and flushes once
//!   per batch: bulk output leaves in large writes, an echo costs no timer.
//!
//! Only the writer ever writes to the socket (tungstenite's automatic pong and close
//! replies on the reader side go to a sink; the writer sends them instead), so frames
//! never interleave. The server closes a socket only after the core's `Frame::Close`
//! (exit, takeover, shutdown), or in answer to the client's close or a protocol error.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use axs_core::client::Generation;
use axs_core::frame::Frame;
use axs_core::limits::CLOSE_WAIT;
use axs_core::server::SessionId;
use axs_host::ws;
use tungstenite::protocol::{CloseFrame, Role};
use tungstenite::{Bytes, Error, Message, WebSocket};

use crate::session::InputQueue;
use crate::shared::Shared;

/// Stack size of the writer thread.
const STACK_SIZE: usize = 256 * 1024;
/// Largest first frame sent by the connection's own thread (it fits a fresh socket's buffer).
const FIRST_FRAME_MAX: usize = 8 * 1024;
/// Most pongs kept waiting (a ping flood gets answers to its latest pings only).
const MAX_PONGS: usize = 8;

/// Why the reader stopped, for the writer to answer.
#[derive(Debug, Clone)]
enum End {
    /// The client sent a close: answer it.
    PeerClosed(Option<CloseFrame>),
    /// The client broke the protocol: close with this.
    Broken(CloseFrame),
    /// The socket ended without a close.
    Vanished,
}

#[derive(Debug, Default)]
struct Pending {
    wake: bool,
    pongs: Vec<Bytes>,
    end: Option<End>,
    gone: bool,
    reader_done: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        !self.wake && self.pongs.is_empty() && self.end.is_none() && !self.gone
    }
}

/// The writer's wake-up: set under the server lock, never blocks.
#[derive(Debug, Default)]
pub struct ClientSignal {
    pending: Mutex<Pending>,
    changed: Condvar,
}

impl ClientSignal {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut Pending)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    /// The core has something for this client (`Action::Wake`).
    pub fn wake(&self) {
        self.update(|p| p.wake = true);
    }

    /// The session is gone.
    pub fn gone(&self) {
        self.update(|p| p.gone = true);
    }

    fn pong(&self, payload: Bytes) {
        self.update(|p| {
            if p.pongs.len() == MAX_PONGS {
                p.pongs.remove(0);
            }
            p.pongs.push(payload);
        });
    }

    fn end(&self, end: End) {
        self.update(|p| {
            p.end.get_or_insert(end);
        });
    }

    fn reader_finished(&self) {
        self.update(|p| {
            p.end.get_or_insert(End::Vanished);
            p.reader_done = true;
        });
    }

    /// Blocks until there is something to do, and takes it.
    fn wait(&self) -> Pending {
        let mut pending = self.lock();
        while pending.is_empty() {
            pending = self
                .changed
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        Pending {
            wake: std::mem::take(&mut pending.wake),
            pongs: std::mem::take(&mut pending.pongs),
            end: pending.end.take(),
            gone: pending.gone,
            reader_done: pending.reader_done,
        }
    }

    /// Waits up to `timeout` for the reader thread to end.
    fn wait_reader(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut pending = self.lock();
        while !pending.reader_done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            pending = self
                .changed
                .wait_timeout(pending, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// The reader's side of the socket: writes (tungstenite's automatic replies) go nowhere.
struct ReadHalf(TcpStream);

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for ReadHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writer's side of the socket: it never reads.
struct WriteHalf(TcpStream);

impl Read for WriteHalf {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Who a client is.
#[derive(Debug, Clone, Copy)]
pub struct ClientId {
    /// The session.
    pub id: SessionId,
    /// The client's generation in it.
    pub generation: Generation,
}

/// Serves an attached client on this thread (as its reader) plus a writer thread; returns
/// when the socket is done and the client detached.
pub fn serve(
    shared: &Arc<Shared>,
    client: ClientId,
    stream: TcpStream,
    early: Vec<u8>,
    signal: Arc<ClientSignal>,
    input: Option<Arc<InputQueue>>,
) {
    if let Err(e) = start_writer(shared, client, &stream, &signal) {
        log::warn!("session {}: cannot serve a client: {e}", client.id);
    } else {
        let ws = WebSocket::from_partially_read(
            ReadHalf(stream),
            early,
            Role::Server,
            Some(ws::config()),
        );
        read_messages(shared, client, ws, &signal, input.as_deref());
    }
    detach(shared, client);
    signal.reader_finished();
}

/// Forgets a client: its socket is done.
pub fn detach(shared: &Shared, client: ClientId) {
    shared.with_state(|state, now| {
        state.clients.remove(&(client.id, client.generation));
        state.server.detach(client.id, client.generation, now);
    });
}

fn start_writer(
    shared: &Arc<Shared>,
    client: ClientId,
    stream: &TcpStream,
    signal: &Arc<ClientSignal>,
) -> io::Result<()> {
    let socket = stream.try_clone()?;
    let mut ws = WebSocket::from_raw_socket(
        WriteHalf(stream.try_clone()?),
        Role::Server,
        Some(ws::config()),
    );
    // The first frame (the replay's start) leaves from this thread, right after the 101:
    // on a busy machine a new thread can wait milliseconds for a CPU.
    let first = send_first(shared, client, &mut ws);
    let (shared, signal) = (Arc::clone(shared), Arc::clone(signal));
    shared.count_writer(true);
    let counted = Arc::clone(&shared);
    let spawned = thread::Builder::new()
        .name(format!("ws-write-{}-{}", client.id, client.generation))
        .stack_size(STACK_SIZE)
        .spawn(move || {
            let _count = WriterCount(&shared);
            write_frames(&shared, client, ws, &socket, &signal, first);
        });
    spawned
        .map(drop)
        .inspect_err(|_| counted.count_writer(false))
}

/// Counts the writer out when its thread ends, even by a panic.
struct WriterCount<'a>(&'a Shared);

impl Drop for WriterCount<'_> {
    fn drop(&mut self) {
        self.0.count_writer(false);
    }
}

fn read_messages(
    shared: &Shared,
    client: ClientId,
    mut ws: WebSocket<ReadHalf>,
    signal: &ClientSignal,
    input: Option<&InputQueue>,
) {
    let deliver = |bytes: &[u8]| {
        shared.call(|server, now| server.input(client.id, client.generation, bytes, now));
        if let Some(queue) = input {
            queue.write_out();
        }
    };
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => deliver(text.as_bytes()),
            Ok(Message::Binary(bytes)) => deliver(&bytes),
            Ok(Message::Ping(payload)) => signal.pong(payload),
            Ok(Message::Close(frame)) => signal.end(End::PeerClosed(frame)),
            Ok(Message::Pong(_) | Message::Frame(_)) => {}
            Err(Error::ConnectionClosed | Error::AlreadyClosed) => return,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(Error::Io(e)) => {
                log::debug!("session {}: client socket ends: {e}", client.id);
                return;
            }
            Err(e) => {
                log::debug!("session {}: client breaks the protocol: {e}", client.id);
                signal.end(End::Broken(ws::protocol_close(&e)));
                return;
            }
        }
    }
}

/// How the writer's loop ended.
enum Finish {
    /// We sent the core's close: let the client answer, then drop the socket.
    Closed,
    /// We answered the client's close or error; the reader ends by itself.
    Answered,
    /// Nothing more to say: drop the socket now (unblocks the reader).
    Drop,
}

fn write_frames(
    shared: &Shared,
    client: ClientId,
    mut ws: Ws,
    socket: &TcpStream,
    signal: &ClientSignal,
    first: Result<Option<Frame>, Error>,
) {
    let finish = first
        .and_then(|first| match first {
            Some(frame) => write_frame(&mut ws, frame),
            None => Ok(None),
        })
        .and_then(|finish| match finish {
            Some(finish) => Ok(finish),
            None => write_loop(shared, client, &mut ws, signal),
        });
    let finish = finish.unwrap_or_else(|e| {
        log::debug!("session {}: client write fails: {e}", client.id);
        Finish::Drop
    });
    match finish {
        Finish::Closed => {
            let _ = socket.shutdown(Shutdown::Write);
            if !signal.wait_reader(CLOSE_WAIT) {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
        Finish::Answered => {
            let _ = socket.shutdown(Shutdown::Write);
        }
        Finish::Drop => {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

type Ws = WebSocket<WriteHalf>;

/// Sends the client's first frame from the calling thread when it is small enough to fit
/// a fresh socket's buffer without blocking (a prompt, a short replay); a larger one, or
/// the close, is handed back for the writer thread.
fn send_first(shared: &Shared, client: ClientId, ws: &mut Ws) -> Result<Option<Frame>, Error> {
    let frame = shared.call(|server, now| server.poll_transmit(client.id, client.generation, now));
    match frame {
        Some(Frame::Binary(bytes)) if bytes.len() <= FIRST_FRAME_MAX => {
            ws.write(Message::Binary(bytes.into()))?;
        }
        Some(Frame::Text(text)) if text.len() <= FIRST_FRAME_MAX => {
            ws.write(Message::Text(text.into()))?;
        }
        other => return Ok(other),
    }
    ws.flush()?;
    Ok(None)
}

/// Writes one frame without flushing; `Some(Closed)` for the core's close.
fn write_frame(ws: &mut Ws, frame: Frame) -> Result<Option<Finish>, Error> {
    match frame {
        Frame::Binary(bytes) => ws.write(Message::Binary(bytes.into()))?,
        Frame::Text(text) => ws.write(Message::Text(text.into()))?,
        Frame::Close(reason) => {
            ws.close(Some(ws::close_frame(reason)))?;
            return Ok(Some(Finish::Closed));
        }
    }
    Ok(None)
}

/// Writes every frame the core has for the client, without flushing; `Some(Closed)` once
/// the core's close went out.
fn transmit(shared: &Shared, client: ClientId, ws: &mut Ws) -> Result<Option<Finish>, Error> {
    while let Some(frame) =
        shared.call(|server, now| server.poll_transmit(client.id, client.generation, now))
    {
        if let Some(finish) = write_frame(ws, frame)? {
            return Ok(Some(finish));
        }
    }
    Ok(None)
}

fn write_loop(
    shared: &Shared,
    client: ClientId,
    ws: &mut Ws,
    signal: &ClientSignal,
) -> Result<Finish, Error> {
    // More of the replay may be waiting: poll once before the first wake-up.
    let mut pending = Pending {
        wake: true,
        ..Pending::default()
    };
    loop {
        for payload in pending.pongs.drain(..) {
            ws.write(Message::Pong(payload))?;
        }
        match pending.end.take() {
            // The client's code and reason, echoed (RFC 6455 section 5.5.1), as axs does.
            Some(End::PeerClosed(frame)) => return answer_close(ws, frame),
            Some(End::Broken(frame)) => return answer_close(ws, Some(frame)),
            Some(End::Vanished) => return Ok(Finish::Drop),
            None => {}
        }
        if pending.wake {
            if let Some(finish) = transmit(shared, client, ws)? {
                return Ok(finish);
            }
        }
        ws.flush()?;
        if pending.gone {
            return Ok(Finish::Drop);
        }
        pending = signal.wait();
    }
}

/// Sends our close (answering the client's) and flushes it.
fn answer_close(ws: &mut Ws, frame: Option<CloseFrame>) -> Result<Finish, Error> {
    match ws.close(frame) {
        Ok(()) | Err(Error::ConnectionClosed) => Ok(Finish::Answered),
        Err(e) => Err(e),
    }
}
