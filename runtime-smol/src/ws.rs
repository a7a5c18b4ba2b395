//! One WebSocket client of a session: a writer that sends whatever the core hands out
//! as soon as the socket takes more, and a reader that turns messages into input.
//!
//! The writer batches: it queues frames while the core has more and flushes once it has
//! none (so an echo leaves at once, and bulk output leaves in few large writes).

use std::net::TcpStream;
use std::os::fd::AsFd;
use std::rc::Rc;

use async_io::{Async, Timer};
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use async_tungstenite::tungstenite::Message;
use async_tungstenite::{WebSocketReceiver, WebSocketSender, WebSocketStream};
use axs_core::api::MAX_MESSAGE;
use axs_core::client::Generation;
use axs_core::frame::Frame;
use axs_core::limits::{CLOSE_WAIT, SEND_LOW_WATER, WS_READ_BUFFER, WS_WRITE_BUFFER};
use axs_core::server::SessionId;
use futures_lite::future;
use futures_util::{SinkExt, StreamExt};

use crate::driver::Driver;
use crate::wake::Wake;

type Socket = Async<TcpStream>;

/// How one side of the connection ended.
enum End {
    /// The client closed, or the socket failed, or it sent something invalid.
    Reader,
    /// We sent our close frame (exit, takeover, shutdown).
    Closed,
    /// Writing failed, or the session went away.
    Writer,
}

/// Serves client `generation` of session `id` on `stream`, whose 101 answer is already
/// sent; `early` holds bytes the client sent right after its request.
pub async fn serve(
    driver: Rc<Driver>,
    stream: Socket,
    early: Vec<u8>,
    id: SessionId,
    generation: Generation,
) {
    driver.client_opened();
    // We batch frames ourselves and flush when a batch is done: Nagle's algorithm would
    // only hold an echo back until the previous segment is acknowledged.
    if let Err(e) = stream.get_ref().set_nodelay(true) {
        log::debug!("TCP_NODELAY: {e}");
    }
    if let Err(e) = axs_pty::host::set_send_low_water(stream.as_fd(), SEND_LOW_WATER) {
        log::debug!("TCP_NOTSENT_LOWAT: {e}");
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let ws = WebSocketStream::from_partially_read(stream, early, Role::Server, Some(config)).await;
    let (sender, receiver) = ws.split();
    let wake = Wake::new();
    driver.add_client(id, generation, wake.clone());
    // The reader is a task of its own so that waking the writer does not poll the
    // socket for input too (and the other way round).
    let mut reader = driver.spawn(read_input(driver.clone(), receiver, id, generation));
    let writer = write_output(&driver, sender, &wake, id, generation);
    let end = future::or(&mut reader, writer).await;
    if matches!(end, End::Closed) {
        // The client answers our close; then the stream ends.
        future::or(async { _ = (&mut reader).await }, async {
            Timer::after(CLOSE_WAIT).await;
        })
        .await;
    }
    drop(reader);
    driver.remove_client(id, generation);
    driver.call(|server, now| server.detach(id, generation, now));
    driver.client_closed();
}

/// Hands every text or binary message to the core as input, until the socket ends.
async fn read_input(
    driver: Rc<Driver>,
    mut receiver: WebSocketReceiver<Socket>,
    id: SessionId,
    generation: Generation,
) -> End {
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
            Err(e) => {
                log::debug!("session {id} client {generation}: {e}");
                break;
            }
        }
    }
    End::Reader
}

/// Sends the core's frames for this client; waits for a wake-up when it has none.
async fn write_output(
    driver: &Driver,
    mut sender: WebSocketSender<Socket>,
    wake: &Wake,
    id: SessionId,
    generation: Generation,
) -> End {
    loop {
        let frame = driver.call(|server, now| server.poll_transmit(id, generation, now));
        let sent = match frame {
            Some(Frame::Binary(bytes)) => sender.feed(Message::Binary(bytes.into())).await,
            Some(Frame::Text(text)) => sender.feed(Message::Text(text.into())).await,
            Some(Frame::Close(reason)) => {
                let close = CloseFrame {
                    code: CloseCode::from(reason.code()),
                    reason: reason.reason().into(),
                };
                return match sender.send(Message::Close(Some(close))).await {
                    Ok(()) => End::Closed,
                    Err(_) => End::Writer,
                };
            }
            None => match sender.flush().await {
                Ok(()) if wake.wait().await => Ok(()),
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
