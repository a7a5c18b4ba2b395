//! One HTTP connection: read a request, let the core decide, carry the reply out.
//!
//! Every connection gets exactly one answer and is closed after it, except a WebSocket
//! upgrade, which becomes a client of a session.

use std::net::{Shutdown, TcpStream};
use std::rc::Rc;
use std::time::Instant;

use async_io::{Async, Timer};
use axs_core::api::ApiError;
use axs_core::http::{self, HeadParse, RequestHead, Response};
use axs_core::limits::{LINGER, LINGER_BYTES, REQUEST_TIMEOUT, WRITE_TIMEOUT};
use axs_core::server::Reply;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};

use crate::driver::Driver;
use crate::wake::Wake;
use crate::{exec, pty, ws};

type Socket = Async<TcpStream>;

/// Serves one accepted connection to its end.
pub async fn serve(driver: Rc<Driver>, stream: Socket) {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let request = future::or(read_request(&driver, &stream), async {
        Timer::at(deadline).await;
        let late = ApiError::RequestTimeout;
        Err(Some(
            driver.call(|server, _| server.error_answer(None, late)),
        ))
    })
    .await;
    match request {
        Ok((head, body, early)) => {
            let reply = driver.call(|server, now| server.request(&head, &body, now));
            dispatch(&driver, stream, reply, early).await;
        }
        Err(Some(answer)) => respond(stream, &answer).await,
        Err(None) => log::debug!("a connection went away before its request was complete"),
    }
}

/// Carries out the core's reply.
async fn dispatch(driver: &Rc<Driver>, stream: Socket, reply: Reply, early: Vec<u8>) {
    match reply {
        Reply::Respond(answer) => respond(stream, &answer).await,
        Reply::Spawn(reservation) => {
            let answer = pty::start_session(driver, reservation);
            respond(stream, &answer).await;
        }
        Reply::Execute(job) => {
            let answer = exec::run(driver.clone(), job).await;
            respond(stream, &answer).await;
        }
        Reply::Upgrade {
            response,
            id,
            generation,
        } => {
            // Registered before any await: the session may be removed meanwhile, and
            // only a registered wake-up is closed then (else the writer would wait forever).
            let wake = Wake::new();
            driver.add_client(id, generation, wake.clone());
            if let Err(e) = write_answer(&stream, &response.to_bytes()).await {
                log::debug!("session {id}: the upgrade answer could not be sent: {e}");
                driver.remove_client(id, generation);
                driver.call(|server, now| server.detach(id, generation, now));
                return;
            }
            ws::serve(driver.clone(), stream, early, id, generation, wake).await;
        }
    }
}

/// Reads the head and the body; on failure, the answer to send (`None`: just close).
/// Returns the head, the body and any bytes that came after the body.
async fn read_request(
    driver: &Driver,
    stream: &Socket,
) -> Result<(RequestHead, Vec<u8>, Vec<u8>), Option<Response>> {
    let mut buf = Vec::with_capacity(2048);
    let (head, head_len) = loop {
        match http::parse_head(&buf) {
            Ok(HeadParse::Complete { head, len }) => break (head, len),
            Ok(HeadParse::Partial) => {
                if read_more(stream, &mut buf).await == 0 {
                    return Err(None);
                }
            }
            Err(e) => return Err(Some(driver.inspect(|s| s.error_answer(None, e)))),
        }
    };
    let body_len = driver.inspect(|s| s.body_len(&head)).map_err(Some)?;
    let end = head_len + body_len;
    if buf.len() < end && head.expects_continue() {
        let mut writer = stream;
        writer.write_all(http::CONTINUE).await.map_err(|_| None)?;
    }
    while buf.len() < end {
        if read_more(stream, &mut buf).await == 0 {
            return Err(None);
        }
    }
    let early = buf.split_off(end);
    let body = buf.split_off(head_len);
    Ok((head, body, early))
}

/// Appends what the socket has (up to 16 KiB); 0 at EOF or on error.
async fn read_more(stream: &Socket, buf: &mut Vec<u8>) -> usize {
    let mut chunk = [0u8; 16 * 1024];
    let mut reader = stream;
    match reader.read(&mut chunk).await {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            n
        }
        Err(e) => {
            log::debug!("reading a request: {e}");
            0
        }
    }
}

/// Writes the answer, then closes gracefully: half-close, drain what the client still
/// sends (bounded), close.
async fn respond(mut stream: Socket, answer: &Response) {
    if let Err(e) = write_answer(&stream, &answer.to_bytes()).await {
        log::debug!("writing an answer: {e}");
        return;
    }
    let deadline = Instant::now() + LINGER;
    future::or(half_close_and_drain(&mut stream), async {
        Timer::at(deadline).await;
    })
    .await;
}

/// Half-closes the socket and reads (and drops) what the peer still sends, at most
/// `LINGER_BYTES`: closing with unread bytes would reset the connection and could destroy
/// the answer or close frame just written. Callers bound it in time.
pub async fn half_close_and_drain(stream: &mut Socket) {
    let _ = stream.get_ref().shutdown(Shutdown::Write);
    let mut chunk = [0u8; 16 * 1024];
    let mut total = 0;
    while total < LINGER_BYTES {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

/// Writes an HTTP answer whole, or fails once the client took nothing for
/// [`WRITE_TIMEOUT`]: an answer nobody reads must not hold its memory and socket forever.
async fn write_answer(stream: &Socket, bytes: &[u8]) -> std::io::Result<()> {
    let mut writer = stream;
    let mut rest = bytes;
    while !rest.is_empty() {
        let stalled = async {
            Timer::after(WRITE_TIMEOUT).await;
            Err(std::io::ErrorKind::TimedOut.into())
        };
        match future::or(writer.write(rest), stalled).await {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
