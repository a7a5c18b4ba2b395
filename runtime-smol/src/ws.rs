//! One WebSocket client of a session: a writer that sends whatever the core hands out
//! as soon as the socket takes more, and a reader that turns messages into input.
//!
//! The writer batches: it queues frames while the core has more and flushes once it has
//! none (so an echo leaves at once, and bulk output leaves in few large writes).

use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::rc::Rc;

use async_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use async_tungstenite::tungstenite::{Error, Message};
use async_tungstenite::{WebSocketReceiver, WebSocketSender, WebSocketStream};
use axs_core::client::Generation;
use axs_core::frame::Frame;
use axs_core::limits::{CLOSE_WAIT, CONN_READ_CHUNK, SEND_LOW_WATER};
use axs_core::server::SessionId;
use futures_lite::{future, AsyncReadExt};
use futures_util::{SinkExt, StreamExt};

use crate::driver::Driver;
use crate::reactor::{Async, Timer};
use crate::wake::Wake;

type Socket = Async<TcpStream>;

/// How one side of the connection ended.
enum End {
    /// The client closed, or the socket failed.
    Reader,
    /// The client broke the protocol; this close tells it how.
    Broken(CloseFrame),
    /// We sent our close frame (exit, takeover, shutdown).
    Closed,
    /// Writing failed, or the session went away.
    Writer,
}

/// A client about to be served.
pub struct Client {
    /// Its session.
    pub id: SessionId,
    /// Its generation in the session.
    pub generation: Generation,
    /// Its wake-up, already registered with the driver.
    pub wake: Wake,
    /// Bytes it sent right after its request (frames the socket no longer holds).
    pub early: Vec<u8>,
}

/// Serves `client` on `stream`, whose 101 answer is already sent.
pub async fn serve(driver: Rc<Driver>, stream: Socket, client: Client) {
    let Client {
        id,
        generation,
        wake,
        early,
    } = client;
    tune(&stream);
    let ws = WebSocketStream::from_partially_read(
        stream,
        early,
        Role::Server,
        Some(axs_host::ws::config()),
    )
    .await;
    let (mut sender, receiver) = ws.split();
    // The reader is a task of its own so that waking the writer does not poll the
    // socket for input too (and the other way round).
    let mut reader = driver.spawn(read_input(driver.clone(), receiver, id, generation));
    let end = future::or(
        async {
            let (end, receiver) = (&mut reader).await;
            (end, Some(receiver))
        },
        async {
            let end = write_output(&driver, &mut sender, &wake, id, generation).await;
            (end, None)
        },
    )
    .await;
    match end {
        (End::Closed, _) => {
            // The client answers our close; then the stream ends.
            future::or(async { _ = (&mut reader).await }, async {
                Timer::after(CLOSE_WAIT).await;
            })
            .await;
        }
        (End::Broken(close), Some(receiver)) => refuse(sender, receiver, close).await,
        _ => {}
    }
    drop(reader);
    driver.remove_client(id, generation);
    driver.call(|server, now| server.detach(id, generation, now));
}

/// Socket options for a terminal client.
pub(crate) fn tune(stream: &Socket) {
    // We batch frames ourselves and flush when a batch is done: Nagle's algorithm would
    // only hold an echo back until the previous segment is acknowledged.
    if let Err(e) = stream.get_ref().set_nodelay(true) {
        log::debug!("TCP_NODELAY: {e}");
    }
    if let Err(e) = axs_host::set_send_low_water(stream.as_fd(), SEND_LOW_WATER) {
        log::debug!("TCP_NOTSENT_LOWAT: {e}");
    }
}

/// Hands every text or binary message to the core as input, until the socket ends;
/// gives the receiver back for [`refuse`].
async fn read_input(
    driver: Rc<Driver>,
    mut receiver: WebSocketReceiver<Socket>,
    id: SessionId,
    generation: Generation,
) -> (End, WebSocketReceiver<Socket>) {
    while let Some(message) = receiver.next().await {
        match message {
            Ok(Message::Text(text)) => {
                driver.call(|server, now| server.input(id, generation, text.as_bytes(), now));
                driver.input_room(id).await;
            }
            Ok(Message::Binary(bytes)) => {
                driver.call(|server, now| server.input(id, generation, &bytes, now));
                driver.input_room(id).await;
            }
            // Pings are answered by tungstenite; a close is answered and ends the stream.
            Ok(_) => {}
            Err(Error::Io(e)) => {
                log::debug!("session {id} client {generation}: socket ends: {e}");
                break;
            }
            Err(e) => {
                log::debug!("session {id} client {generation}: breaks the protocol: {e}");
                return (End::Broken(axs_host::ws::protocol_close(&e)), receiver);
            }
        }
    }
    (End::Reader, receiver)
}

/// Tells a client that broke the protocol why it is dropped, then closes gracefully:
/// it may still be sending (the rest of an oversized message), and closing with unread
/// bytes would reset the connection and could destroy the close frame.
async fn refuse(
    mut sender: WebSocketSender<Socket>,
    receiver: WebSocketReceiver<Socket>,
    close: CloseFrame,
) {
    let deadline = Timer::after(CLOSE_WAIT);
    let linger = async {
        if sender.send(Message::Close(Some(close))).await.is_err() {
            return;
        }
        let Ok(ws) = WebSocketStream::reunite(sender, receiver) else {
            return;
        };
        drain(ws.into_inner()).await;
    };
    future::or(linger, async {
        deadline.await;
    })
    .await;
}

/// Half-closes the socket and reads (and drops) what the peer still sends until it
/// closes; the caller bounds it with [`CLOSE_WAIT`].
async fn drain(mut stream: Socket) {
    _ = stream.get_ref().shutdown(Shutdown::Write);
    let mut chunk = vec![0u8; CONN_READ_CHUNK];
    while let Ok(1..) = stream.read(&mut chunk).await {}
}

/// Sends the core's frames for this client; waits for a wake-up when it has none. Once it
/// sent the core's budget of output bytes in a row it flushes and lets every other task
/// run, as the pty reader does: a backlog sent to a fast client must not hold up another
/// session's keystrokes either.
async fn write_output(
    driver: &Driver,
    sender: &mut WebSocketSender<Socket>,
    wake: &Wake,
    id: SessionId,
    generation: Generation,
) -> End {
    let mut unyielded = 0;
    loop {
        if unyielded >= driver.inspect(|server| server.output_slice(id, driver.now()).budget) {
            unyielded = 0;
            if let Err(e) = sender.flush().await {
                log::debug!("session {id} client {generation}: send: {e}");
                return End::Writer;
            }
            future::yield_now().await;
        }
        let frame = driver.call(|server, now| server.poll_transmit(id, generation, now));
        let sent = match frame {
            Some(Frame::Binary(bytes)) => {
                unyielded += bytes.len();
                sender.feed(Message::Binary(bytes.into())).await
            }
            Some(Frame::Text(text)) => sender.feed(Message::Text(text.into())).await,
            Some(Frame::Close(reason)) => {
                let close = axs_host::ws::close_frame(reason);
                return match sender.send(Message::Close(Some(close))).await {
                    Ok(()) => End::Closed,
                    Err(_) => End::Writer,
                };
            }
            None => match sender.flush().await {
                // A wait is a break: the next batch starts a new slice.
                Ok(()) if wake.wait().await => {
                    unyielded = 0;
                    Ok(())
                }
                Ok(()) => return End::Writer,
                Err(e) => Err(e),
            },
        };
        if let Err(e) = sent {
            log::debug!("session {id} client {generation}: send: {e}");
            return End::Writer;
        }
    }
}
