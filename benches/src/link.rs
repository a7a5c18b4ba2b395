//! The two ways to talk to a terminal program: a WebSocket to a server session, or the
//! master side of a bare pty (the ceiling). Both are a [`Link`]: send bytes, receive bytes.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use crate::proc::wait_readable;

/// How long any single wait for bytes may take before the run is declared hung.
pub const STALL: Duration = Duration::from_secs(20);

/// A byte pipe to a terminal program.
pub trait Link {
    /// Sends `bytes` as one message (one frame, or one write).
    fn send(&mut self, bytes: &[u8]) -> Result<(), String>;
    /// Waits for output and appends what arrived to `out`; returns how many bytes.
    /// `Ok(0)` never happens for a live program: an exit or close is an error.
    fn recv(&mut self, out: &mut Vec<u8>) -> Result<usize, String>;
}

/// Receives until `done(received)` holds; returns everything received.
pub fn recv_until(
    link: &mut dyn Link,
    mut done: impl FnMut(&[u8]) -> bool,
) -> Result<Vec<u8>, String> {
    let mut got = Vec::new();
    while !done(&got) {
        link.recv(&mut got)?;
    }
    Ok(got)
}

/// A bare pty running a program: the ceiling, with no HTTP and no WebSocket in between.
pub struct PtyLink {
    master: File,
    pid: u32,
    buf: Vec<u8>,
}

impl PtyLink {
    /// Runs `sh -c script` on a new 80x24 pty, read non-blocking with `poll` when empty
    /// (every wait is bounded by [`STALL`]).
    pub fn spawn(script: &str) -> Result<PtyLink, String> {
        PtyLink::spawn_with(script, true)
    }

    /// Runs `sh -c script` on a new 80x24 pty read with plain blocking `read`s: one
    /// syscall per wake-up, the kernel's own floor (no stall bound: a dead program ends
    /// the read with EIO).
    pub fn spawn_blocking(script: &str) -> Result<PtyLink, String> {
        PtyLink::spawn_with(script, false)
    }

    fn spawn_with(script: &str, nonblocking: bool) -> Result<PtyLink, String> {
        let mut opts = axs_pty::SpawnOptions::new("sh");
        opts.args = vec!["-c".into(), script.into()];
        let spawned = axs_pty::spawn(&opts).map_err(|e| format!("pty spawn: {e}"))?;
        axs_pty::set_nonblocking(spawned.master.as_fd(), nonblocking)
            .map_err(|e| format!("pty nonblocking: {e}"))?;
        Ok(PtyLink {
            master: File::from(spawned.master),
            pid: spawned.pid,
            buf: vec![0; 64 * 1024],
        })
    }
}

impl PtyLink {
    /// The program's pid (it leads its own session and process group).
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Link for PtyLink {
    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.master
            .write_all(bytes)
            .map_err(|e| format!("pty write: {e}"))
    }

    fn recv(&mut self, out: &mut Vec<u8>) -> Result<usize, String> {
        loop {
            match self.master.read(&mut self.buf) {
                Ok(0) => return Err("pty: end of file".into()),
                Ok(n) => {
                    out.extend_from_slice(&self.buf[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if !wait_readable(&self.master, STALL)? {
                        return Err(format!("pty: no output for {STALL:?}"));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("pty read: {e}")),
            }
        }
    }
}

impl Drop for PtyLink {
    fn drop(&mut self) {
        let _ = axs_pty::hangup_group(self.pid);
        let _ = axs_pty::kill_group(self.pid);
        let _ = axs_pty::wait_blocking(self.pid);
    }
}

/// The least any TCP-fronted server can add to a bare pty: a loopback TCP connection
/// relayed to and from a pty by two threads with blocking `read`s (socket → master,
/// master → socket), no HTTP, no WebSocket, no core. The typing floor for a server.
pub struct RelayLink {
    client: TcpStream,
    pty: PtyLink,
    relays: Vec<std::thread::JoinHandle<()>>,
}

impl RelayLink {
    /// Runs `sh -c script` on a blocking pty and relays it over a new loopback connection.
    pub fn spawn(script: &str) -> Result<RelayLink, String> {
        let pty = PtyLink::spawn_blocking(script)?;
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("relay bind: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("relay address: {e}"))?
            .port();
        let client = connect_loopback(port)?;
        let (served, _) = listener
            .accept()
            .map_err(|e| format!("relay accept: {e}"))?;
        served
            .set_nodelay(true)
            .map_err(|e| format!("relay nodelay: {e}"))?;
        let clone_master = || {
            pty.master
                .try_clone()
                .map_err(|e| format!("relay dup: {e}"))
        };
        let clone_socket = || served.try_clone().map_err(|e| format!("relay dup: {e}"));
        let inbound = relay_thread(clone_socket()?, clone_master()?)?;
        let outbound = relay_thread(clone_master()?, served)?;
        Ok(RelayLink {
            client,
            pty,
            relays: vec![inbound, outbound],
        })
    }
}

/// Copies `from` to `to` on a new thread until either side ends or fails.
fn relay_thread(
    mut from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name("relay".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) if to.write_all(&buf[..n]).is_ok() => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    _ => return,
                }
            }
        })
        .map_err(|e| format!("relay thread: {e}"))
}

impl Link for RelayLink {
    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.client
            .write_all(bytes)
            .map_err(|e| format!("relay write: {e}"))
    }

    fn recv(&mut self, out: &mut Vec<u8>) -> Result<usize, String> {
        let mut buf = [0u8; 4096];
        loop {
            match self.client.read(&mut buf) {
                Ok(0) => return Err("relay: end of file".into()),
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("relay read: {e}")),
            }
        }
    }
}

impl Drop for RelayLink {
    fn drop(&mut self) {
        // The socket's end stops the inbound thread; the program's end (the pty's drop
        // kills its group) gives the outbound thread EIO.
        let _ = self.client.shutdown(std::net::Shutdown::Both);
        let _ = axs_pty::hangup_group(self.pty.pid);
        let _ = axs_pty::kill_group(self.pty.pid);
        for relay in self.relays.drain(..) {
            let _ = relay.join();
        }
    }
}

/// A TCP connection to the server on loopback `port`, as the load clients use it:
/// TCP_NODELAY (small frames are measured, not batched) and [`STALL`] as the read timeout.
pub fn connect_loopback(port: u16) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    stream
        .set_read_timeout(Some(STALL))
        .map_err(|e| format!("timeout: {e}"))?;
    Ok(stream)
}

/// Upgrades a connected `stream` to a WebSocket on `ws://127.0.0.1:{port}{path}` as the
/// editors do (Origin `https://localhost`), with no message or frame size limits so that a
/// load never fails on the client's own caps. Socket options stay the caller's choice.
pub fn upgrade(stream: TcpStream, port: u16, path: &str) -> Result<WebSocket<TcpStream>, String> {
    let url = format!("ws://127.0.0.1:{port}{path}");
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("request {url}: {e}"))?;
    request
        .headers_mut()
        .insert("Origin", HeaderValue::from_static("https://localhost"));
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let (ws, _) = tungstenite::client::client_with_config(request, stream, Some(config))
        .map_err(|e| format!("upgrade {url}: {e}"))?;
    Ok(ws)
}

/// A WebSocket to `/terminals/{id}` of a server, as the editors open it.
pub struct WsLink {
    ws: WebSocket<TcpStream>,
    /// Text frames received (the exit message), in order.
    pub texts: Vec<String>,
}

impl WsLink {
    /// Connects and upgrades (TCP_NODELAY, Origin `https://localhost`, no size limits).
    pub fn connect(port: u16, id: u32) -> Result<WsLink, String> {
        let stream = connect_loopback(port)?;
        let ws = upgrade(stream, port, &format!("/terminals/{id}"))?;
        Ok(WsLink {
            ws,
            texts: Vec::new(),
        })
    }

    /// Closes the TCP connection without a close handshake (as a reloading WebView does).
    pub fn drop_connection(self) {
        let _ = self.ws.get_ref().shutdown(std::net::Shutdown::Both);
    }

    /// Reads until an exit text frame or a close arrives (bounded by `timeout`); returns
    /// how many output bytes came first.
    pub fn read_to_exit(&mut self, timeout: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + timeout;
        let mut extra = Vec::new();
        while Instant::now() < deadline {
            // The exit message comes as text, then the close ends `recv` with an error.
            if let Err(e) = self.recv(&mut extra) {
                let exited = self.texts.iter().any(|t| t.contains("\"exit\""));
                return if exited { Ok(extra.len()) } else { Err(e) };
            }
        }
        Err(format!("no exit message within {timeout:?}"))
    }
}

impl Link for WsLink {
    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        // Keystrokes travel as text frames, as xterm.js sends them.
        let message = match std::str::from_utf8(bytes) {
            Ok(text) => Message::text(text),
            Err(_) => Message::binary(bytes.to_vec()),
        };
        self.ws.send(message).map_err(|e| format!("ws send: {e}"))
    }

    fn recv(&mut self, out: &mut Vec<u8>) -> Result<usize, String> {
        loop {
            match self.ws.read() {
                Ok(Message::Binary(b)) => {
                    out.extend_from_slice(&b);
                    return Ok(b.len());
                }
                Ok(Message::Text(t)) => self.texts.push(t.to_string()),
                Ok(Message::Close(c)) => return Err(format!("ws closed by the server: {c:?}")),
                Ok(_) => {}
                Err(e) => return Err(read_failure(e)),
            }
        }
    }
}

/// Says why a blocking WebSocket read failed; a read timeout means the server sent
/// nothing for [`STALL`].
pub fn read_failure(error: tungstenite::Error) -> String {
    match error {
        tungstenite::Error::Io(e)
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
        {
            format!("ws: no message for {STALL:?}")
        }
        e => format!("ws read: {e}"),
    }
}

/// `POST /terminals` `{"cols":80,"rows":24}`; returns the new session's id.
pub fn create_session(port: u16) -> Result<u32, String> {
    let body = br#"{"cols":80,"rows":24}"#;
    let (status, text) = http_request(port, "POST", "/terminals", body)?;
    match text.trim().parse::<u32>() {
        Ok(id) if (200..300).contains(&status) => Ok(id),
        _ => Err(format!(
            "POST /terminals answered {status}: {}",
            text.trim()
        )),
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and the body.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, String), String> {
    let mut stream = connect_loopback(port)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: https://localhost\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream
        .write_all(&request)
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let mut raw = Vec::new();
    loop {
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("{method} {path}: no answer: {e}")),
        }
        if let Some(done) = complete_response(&raw) {
            return Ok(done);
        }
    }
    complete_response(&raw).ok_or_else(|| format!("{method} {path}: truncated answer"))
}

/// The status and body once `raw` holds the head and the whole Content-Length body.
pub fn complete_response(raw: &[u8]) -> Option<(u16, String)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let body = raw.get(end..end + length)?;
    Some((status, String::from_utf8_lossy(body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::complete_response;

    #[test]
    fn responses_complete_by_content_length() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n1234";
        assert_eq!(complete_response(raw), Some((200, "1234".into())));
        assert_eq!(complete_response(&raw[..raw.len() - 1]), None);
        assert_eq!(complete_response(b"HTTP/1.1 200 OK\r\n"), None);
    }
}
