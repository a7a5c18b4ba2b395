//! One attached WebSocket client: two threads over one TCP socket (one descriptor, shared:
//! every descriptor held makes each new session's spawn copy a larger table).
//!
//! - The reader (the connection's own thread, after the 101) blocks in `read`; text and
//!   binary messages go to `server.input` (and the resulting input to the pty, see
//!   [`InputQueue`]), pings become pong requests for the writer, and
//!   when the socket closes or breaks it calls `server.detach`, then waits for the writer.
//! - The writer waits on the client's [`ClientSignal`] (set by `Action::Wake`), then polls
//!   `server.poll_transmit` until it returns `None`, writing each frame, and flushes once
//!   per batch: bulk output leaves in large writes, an echo costs no timer.
//!
//! Only the writer ever writes to the socket (tungstenite's automatic pong and close
//! replies on the reader side go to a sink; the writer sends them instead), so frames
//! never interleave. The server closes a socket only after the core's `Frame::Close`
//! (exit, takeover, shutdown), or in answer to the client's close or a protocol error.
//! [`serve`] returns once both threads are done with the socket.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use axs_core::frame::Frame;
use axs_core::limits::{CLOSE_WAIT, FIRST_FRAME_MAX};
use axs_host::ws;
use tungstenite::protocol::{CloseFrame, Role};
use tungstenite::{Error, Message, WebSocket};

use crate::handles::{ClientId, ClientSignal, ClientWork, End, InputQueue};
use crate::shared::Shared;

/// Stack size of the writer thread.
const STACK_SIZE: usize = 256 * 1024;

/// The reader's side of the socket: writes (tungstenite's automatic replies) go nowhere.
struct ReadHalf(Arc<TcpStream>);

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
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
struct WriteHalf(Arc<TcpStream>);

impl Read for WriteHalf {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

/// Serves an attached client on this thread (as its reader) plus a writer thread; returns
/// when both are done with the socket and the client detached.
pub fn serve(
    shared: &Arc<Shared>,
    client: ClientId,
    stream: TcpStream,
    early: Vec<u8>,
    signal: &Arc<ClientSignal>,
    input: Option<&InputQueue>,
) {
    let stream = Arc::new(stream);
    let writer = start_writer(shared, client, &stream, signal);
    match &writer {
        Ok(_) => {
            let ws = WebSocket::from_partially_read(
                ReadHalf(stream),
                early,
                Role::Server,
                Some(ws::config()),
            );
            read_messages(shared, client, ws, signal, input);
        }
        Err(e) => log::warn!("session {}: cannot serve a client: {e}", client.id),
    }
    shared.with_state(|state, now| state.detach(client, now));
    signal.reader_finished();
    if let Ok(writer) = writer {
        let _ = writer.join();
    }
}

fn start_writer(
    shared: &Arc<Shared>,
    client: ClientId,
    stream: &Arc<TcpStream>,
    signal: &Arc<ClientSignal>,
) -> io::Result<JoinHandle<()>> {
    let socket = Arc::clone(stream);
    let mut ws = WebSocket::from_raw_socket(
        WriteHalf(Arc::clone(stream)),
        Role::Server,
        Some(ws::config()),
    );
    // The first frame (the replay's start) leaves from this thread, right after the 101:
    // on a busy machine a new thread can wait milliseconds for a CPU.
    let first = send_first(shared, client, &mut ws);
    let (shared, signal) = (Arc::clone(shared), Arc::clone(signal));
    thread::Builder::new()
        .name(format!("ws-write-{}-{}", client.id, client.generation))
        .stack_size(STACK_SIZE)
        .spawn(move || write_frames(&shared, client, ws, &socket, &signal, first))
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
    let mut work = ClientWork::first();
    loop {
        for payload in work.pongs.drain(..) {
            ws.write(Message::Pong(payload))?;
        }
        match work.end.take() {
            // The client's code and reason, echoed (RFC 6455 section 5.5.1), as axs does.
            Some(End::PeerClosed(frame)) => return answer_close(ws, frame),
            Some(End::Broken(frame)) => return answer_close(ws, Some(frame)),
            Some(End::Vanished) => return Ok(Finish::Drop),
            None => {}
        }
        if work.wake {
            if let Some(finish) = transmit(shared, client, ws)? {
                return Ok(finish);
            }
        }
        ws.flush()?;
        if work.gone {
            return Ok(Finish::Drop);
        }
        work = signal.wait();
    }
}

/// Sends our close (answering the client's) and flushes it.
fn answer_close(ws: &mut Ws, frame: Option<CloseFrame>) -> Result<Finish, Error> {
    match ws.close(frame) {
        Ok(()) | Err(Error::ConnectionClosed) => Ok(Finish::Answered),
        Err(e) => Err(e),
    }
}
