//! A blocking WebSocket client (tungstenite) that records every frame with its position.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use crate::control::{self, Exit};
use crate::text::show_tail;

/// How long one blocking read may wait before the deadline is checked again.
const READ_SLICE: Duration = Duration::from_millis(50);

/// Why a WebSocket could not be opened.
#[derive(Debug)]
pub enum Refused {
    /// The server answered the upgrade with this status and body.
    Status(u16, String),
    /// The connection or handshake failed otherwise.
    Io(String),
}

/// A close frame as received.
#[derive(Debug, Clone)]
pub struct Closed {
    /// The close code, if the frame had one.
    pub code: Option<u16>,
    /// The close reason.
    pub reason: String,
    /// Binary bytes received before the close.
    pub at_byte: usize,
}

/// Everything a client received, in order.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// All binary payloads concatenated.
    pub binary: Vec<u8>,
    /// Number of binary frames.
    pub binary_frames: usize,
    /// Text frames with the binary length at their arrival.
    pub texts: Vec<(usize, String)>,
    /// The close frame, if one came.
    pub close: Option<Closed>,
    /// Set when the stream ended (close handshake finished, EOF or error), with how.
    pub ended: Option<String>,
}

impl Received {
    /// True when `needle` occurs in the binary output.
    pub fn contains(&self, needle: &[u8]) -> bool {
        crate::text::find(&self.binary, needle).is_some()
    }

    /// The exit frames received.
    pub fn exits(&self) -> Vec<(usize, Result<Exit, String>)> {
        self.texts
            .iter()
            .filter(|(_, t)| control::looks_like_exit(t))
            .map(|(at, t)| (*at, control::parse_exit(t)))
            .collect()
    }

    /// A multi-line summary for failure messages.
    pub fn summary(&self) -> String {
        format!(
            "binary: {} bytes in {} frames, tail: {}\ntext frames: {:?}\nclose: {:?}\nended: {:?}",
            self.binary.len(),
            self.binary_frames,
            show_tail(&self.binary, 400),
            self.texts,
            self.close,
            self.ended
        )
    }
}

/// A connected WebSocket client.
pub struct Ws {
    sock: WebSocket<TcpStream>,
    /// What arrived so far.
    pub got: Received,
    /// A name used in failure messages.
    pub label: String,
}

/// Options for opening a socket.
#[derive(Debug, Clone, Default)]
pub struct Open<'a> {
    /// Extra request headers (Origin, Authorization...).
    pub headers: Vec<(&'a str, String)>,
    /// Receive buffer size to set before connecting (small values make a stall bite sooner).
    pub recv_buffer: Option<usize>,
}

impl Ws {
    /// Opens `ws://127.0.0.1:port{path}` with Origin `https://localhost`, as the editor clients do.
    pub fn connect(port: u16, path: &str) -> Result<Ws, Refused> {
        Ws::open(
            port,
            path,
            Open {
                headers: vec![("Origin", "https://localhost".into())],
                recv_buffer: None,
            },
        )
    }

    /// Opens `ws://127.0.0.1:port{path}` with the given options.
    pub fn open(port: u16, path: &str, opts: Open<'_>) -> Result<Ws, Refused> {
        let stream = tcp_connect(port, opts.recv_buffer)
            .map_err(|e| Refused::Io(format!("connect: {e}")))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .map_err(|e| Refused::Io(e.to_string()))?;
        stream
            .set_write_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| Refused::Io(e.to_string()))?;
        let url = format!("ws://127.0.0.1:{port}{path}");
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| Refused::Io(format!("bad request {url}: {e}")))?;
        for (k, v) in &opts.headers {
            let value = HeaderValue::from_str(v).map_err(|e| Refused::Io(e.to_string()))?;
            let name =
                HeaderName::from_bytes(k.as_bytes()).map_err(|e| Refused::Io(e.to_string()))?;
            req.headers_mut().insert(name, value);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(256 << 20))
            .max_frame_size(Some(256 << 20));
        match tungstenite::client::client_with_config(req, stream, Some(config)) {
            Ok((sock, _resp)) => {
                let _ = sock.get_ref().set_read_timeout(Some(READ_SLICE));
                Ok(Ws {
                    sock,
                    got: Received::default(),
                    label: path.to_string(),
                })
            }
            Err(HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                Err(Refused::Status(resp.status().as_u16(), body))
            }
            Err(HandshakeError::Failure(e)) => Err(Refused::Io(format!("handshake: {e}"))),
            Err(HandshakeError::Interrupted(_)) => Err(Refused::Io("handshake timed out".into())),
        }
    }

    /// Like [`Ws::connect`] but panics with `ctx` when refused.
    pub fn attach(port: u16, path: &str, ctx: &str) -> Ws {
        match Ws::connect(port, path) {
            Ok(ws) => ws,
            Err(e) => panic!("WebSocket {path} refused: {e:?}\n{ctx}"),
        }
    }

    /// The underlying TCP stream (to write raw bytes).
    pub fn tcp(&mut self) -> &mut TcpStream {
        self.sock.get_mut()
    }

    /// Sends `s` as a text frame (keystrokes, as xterm.js sends them).
    pub fn send_text(&mut self, s: &str) -> Result<(), String> {
        self.sock
            .send(Message::text(s))
            .map_err(|e| format!("{}: sending text {s:?}: {e}", self.label))
    }

    /// Sends `b` as a binary frame.
    pub fn send_binary(&mut self, b: &[u8]) -> Result<(), String> {
        self.sock
            .send(Message::binary(b.to_vec()))
            .map_err(|e| format!("{}: sending {} binary bytes: {e}", self.label, b.len()))
    }

    /// Starts a close handshake with this code and reason (errors ignored).
    pub fn close_with(&mut self, code: u16, reason: &str) {
        let frame = tungstenite::protocol::CloseFrame {
            code: code.into(),
            reason: reason.to_string().into(),
        };
        let _ = self.sock.close(Some(frame));
        let _ = self.sock.flush();
    }

    /// Starts a close handshake from the client side (errors ignored).
    pub fn close(&mut self) {
        let _ = self.sock.close(None);
        let _ = self.sock.flush();
    }

    /// Reads one message (waiting at most one read slice); returns false once the stream ended.
    pub fn pump(&mut self) -> bool {
        if self.got.ended.is_some() {
            return false;
        }
        match self.sock.read() {
            Ok(Message::Binary(b)) => {
                self.got.binary.extend_from_slice(&b);
                self.got.binary_frames += 1;
            }
            Ok(Message::Text(t)) => self.got.texts.push((self.got.binary.len(), t.to_string())),
            Ok(Message::Close(frame)) => {
                self.got.close = Some(Closed {
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    at_byte: self.got.binary.len(),
                })
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(tungstenite::Error::ConnectionClosed) => {
                self.got.ended = Some("closed after the close handshake".into())
            }
            Err(e) => self.got.ended = Some(format!("read error: {e}")),
        }
        self.got.ended.is_none()
    }

    /// Reads until `done(&received)` holds or `timeout` passes (then returns an error with
    /// everything received, naming `what` was awaited).
    pub fn read_until(
        &mut self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Received) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.got) {
                return Ok(());
            }
            if self.got.ended.is_some() || Instant::now() >= deadline {
                let why = if self.got.ended.is_some() {
                    "the stream ended"
                } else {
                    "timed out"
                };
                return Err(format!(
                    "{}: {why} after waiting up to {timeout:?} for {what}\n{}",
                    self.label,
                    self.got.summary()
                ));
            }
            self.pump();
        }
    }

    /// Reads until the binary output contains `needle`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<(), String> {
        let n = needle.as_bytes().to_vec();
        // Scan only what arrived since the last look (plus an overlap for a needle split
        // across frames): a rescan of everything after every frame is quadratic, and a
        // slow reader is exactly what the flow-control cases must not be.
        let scanned = std::cell::Cell::new(0usize);
        self.read_until(
            timeout,
            &format!("output containing {needle:?}"),
            move |r| {
                let from = scanned.get().saturating_sub(n.len());
                scanned.set(r.binary.len());
                crate::text::find(&r.binary[from..], &n).is_some()
            },
        )
    }

    /// Reads until the server ends the stream (close frame and EOF).
    pub fn wait_end(&mut self, timeout: Duration) -> Result<(), String> {
        self.read_until(timeout, "the end of the stream", |r| r.ended.is_some())
    }

    /// Reads for `d` regardless of what arrives (used to observe that nothing else comes).
    pub fn read_for(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline && self.pump() {}
    }

    /// Reads until the exit frame and the close arrived; returns the exit, checking that it is
    /// the only exit frame, that it came after all binary output and before the close.
    pub fn expect_exit(&mut self, timeout: Duration) -> Result<Exit, String> {
        self.read_until(timeout, "the exit frame and the close", |r| {
            r.ended.is_some() || (r.close.is_some() && !r.exits().is_empty())
        })
        .ok();
        let exits = self.got.exits();
        let summary = self.got.summary();
        let (at, exit) = match exits.as_slice() {
            [one] => one.clone(),
            [] => return Err(format!("{}: no exit frame arrived\n{summary}", self.label)),
            _ => {
                return Err(format!(
                    "{}: more than one exit frame\n{summary}",
                    self.label
                ))
            }
        };
        let exit = exit.map_err(|e| format!("{}: bad exit frame: {e}\n{summary}", self.label))?;
        if at != self.got.binary.len() {
            return Err(format!(
                "{}: {} bytes of output arrived after the exit frame\n{summary}",
                self.label,
                self.got.binary.len() - at
            ));
        }
        if self.got.close.is_none() {
            return Err(format!(
                "{}: no close frame after the exit frame\n{summary}",
                self.label
            ));
        }
        Ok(exit)
    }

    /// Asserts that no text frame other than an exit frame arrived (a plain client's rule).
    pub fn assert_plain(&self) -> Result<(), String> {
        match self
            .got
            .texts
            .iter()
            .find(|(_, t)| !control::looks_like_exit(t))
        {
            None => Ok(()),
            Some((_, t)) => Err(format!(
                "{}: a plain client received a text frame that is not the exit JSON: {t:?} \
                 (xterm.js would print it)\n{}",
                self.label,
                self.got.summary()
            )),
        }
    }
}

/// Connects to 127.0.0.1:`port`, optionally with a receive buffer set before connecting.
pub fn tcp_connect(port: u16, recv_buffer: Option<usize>) -> std::io::Result<TcpStream> {
    let Some(size) = recv_buffer else {
        return TcpStream::connect(("127.0.0.1", port));
    };
    use rustix::net::{AddressFamily, SocketType};
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None)?;
    rustix::net::sockopt::set_socket_recv_buffer_size(&fd, size)?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    rustix::net::connect(&fd, &addr)?;
    Ok(TcpStream::from(fd))
}

impl crate::server::Server {
    /// A plain client attached to session `pid` of this server (a failure panics with the
    /// server's context).
    pub fn attach(&self, pid: u32) -> Ws {
        Ws::attach(
            self.port,
            &format!("/terminals/{pid}"),
            &self.proc.context(),
        )
    }
}
