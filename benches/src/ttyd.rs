//! ttyd, the reference server of issue 14's tables, run side by side with axs: started on
//! a random loopback port, one program per WebSocket (ttyd spawns a session for each
//! connection), stopped by pid with the sessions it started.
//!
//! ttyd 1.7's protocol: the WebSocket is `/ws` with subprotocol `tty`; the client's first
//! message is JSON (`{"AuthToken":"","columns":80,"rows":24}`), which starts the program;
//! then every message is one command byte and its payload: `0` + input from the client,
//! `0` + output from the server (`1` and `2`, the title and preferences, are ignored).

use std::io::{BufRead, BufReader, ErrorKind};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use crate::link::{connect_loopback, read_failure, Link};
use crate::proc::{children, kill_stray_group, terminate_child};

/// How long ttyd may take to say it listens.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long ttyd gets to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// ttyd's command byte for input (client) and output (server).
const DATA: u8 = b'0';

/// A running ttyd serving `sh -c SCRIPT` to every connection.
pub struct Ttyd {
    child: Child,
    /// Its loopback port.
    pub port: u16,
    stopped: bool,
}

impl Ttyd {
    /// Starts `bin -p 0 -i 127.0.0.1 -W -P 3600 sh -c script` and waits for its "Listening
    /// on port" line (its log keeps being drained by a thread, so ttyd never blocks on it).
    /// `-P 3600`: ttyd pings every client every 5 s by default and hangs up on one whose
    /// pong does not come; the flood phase leaves a client unread for longer than that
    /// (axs never closes a quiet client), which ttyd then cut with a broken pipe.
    pub fn start(bin: &Path, script: &str) -> Result<Ttyd, String> {
        let mut child = Command::new(bin)
            .args([
                "-p",
                "0",
                "-i",
                "127.0.0.1",
                "-W",
                "-P",
                "3600",
                "sh",
                "-c",
                script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let port = child
            .stderr
            .take()
            .ok_or_else(|| "ttyd: no stderr pipe".to_string())
            .and_then(announced_port);
        let mut ttyd = Ttyd {
            child,
            port: 0,
            stopped: false,
        };
        match port {
            Ok(port) => {
                ttyd.port = port;
                Ok(ttyd)
            }
            Err(e) => {
                ttyd.stop();
                Err(format!("{}: {e}", bin.display()))
            }
        }
    }

    /// ttyd's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new connection, hence a new session running the script.
    pub fn open(&self) -> Result<TtydLink, String> {
        TtydLink::connect(self.port)
    }

    /// SIGTERM, a bounded wait, SIGKILL; then the groups of the sessions it had started.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        // forkpty makes each program a session (and group) leader, a child of ttyd.
        let sessions = children(self.pid());
        terminate_child(&mut self.child, STOP_TIMEOUT);
        for pid in sessions {
            kill_stray_group(pid);
        }
    }
}

impl Drop for Ttyd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads ttyd's log on a thread until "Listening on port: N"; returns N. The thread
/// keeps reading (and dropping) the log until ttyd closes it.
fn announced_port(log: std::process::ChildStderr) -> Result<u16, String> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("ttyd-log".into())
        .spawn(move || {
            let mut announced = false;
            for line in BufReader::new(log).lines() {
                let Ok(line) = line else { return };
                if announced {
                    continue;
                }
                if let Some((_, port)) = line.split_once("Listening on port:") {
                    announced = true;
                    let _ = tx.send(port.trim().parse::<u16>().ok());
                }
            }
        })
        .map_err(|e| format!("ttyd log thread: {e}"))?;
    match rx.recv_timeout(LISTEN_TIMEOUT) {
        Ok(Some(port)) => Ok(port),
        Ok(None) => Err("unreadable port in its log".into()),
        Err(_) => Err(format!(
            "no \"Listening on port\" within {LISTEN_TIMEOUT:?}"
        )),
    }
}

/// A WebSocket to ttyd: one session.
pub struct TtydLink {
    ws: WebSocket<TcpStream>,
}

impl TtydLink {
    /// Connects (TCP_NODELAY), upgrades to `/ws` with subprotocol `tty`, and starts the
    /// program at 80x24.
    pub fn connect(port: u16) -> Result<TtydLink, String> {
        let stream = connect_loopback(port)?;
        let url = format!("ws://127.0.0.1:{port}/ws");
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("request {url}: {e}"))?;
        let headers = request.headers_mut();
        headers.insert("Origin", HeaderValue::from_static("https://localhost"));
        headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static("tty"));
        let config = WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let (mut ws, _) = tungstenite::client::client_with_config(request, stream, Some(config))
            .map_err(|e| format!("upgrade {url}: {e}"))?;
        let init = br#"{"AuthToken":"","columns":80,"rows":24}"#;
        ws.send(Message::binary(init.to_vec()))
            .map_err(|e| format!("ttyd init: {e}"))?;
        Ok(TtydLink { ws })
    }
}

impl Link for TtydLink {
    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut message = Vec::with_capacity(bytes.len() + 1);
        message.push(DATA);
        message.extend_from_slice(bytes);
        self.ws
            .send(Message::binary(message))
            .map_err(|e| format!("ws send: {e}"))
    }

    fn recv(&mut self, out: &mut Vec<u8>) -> Result<usize, String> {
        loop {
            match self.ws.read() {
                Ok(Message::Binary(b)) if b.first() == Some(&DATA) => {
                    out.extend_from_slice(&b[1..]);
                    return Ok(b.len() - 1);
                }
                Ok(Message::Close(c)) => return Err(format!("ws closed by ttyd: {c:?}")),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(read_failure(e)),
            }
        }
    }
}
