//! A headless Chromium driven over the Chrome DevTools Protocol, for the browser-page case.
//!
//! Chromium is started with `--remote-debugging-port=0` and prints its DevTools address on
//! stderr; the page's own WebSocket (`/json/list`) is then driven with tungstenite, so the
//! suite needs no CDP or WebDriver crate. Every wait is bounded. Dropping the [`Browser`]
//! kills Chromium and removes its profile directory.

use std::io::{BufRead, BufReader, ErrorKind};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use crate::server::TempDir;

/// How long Chromium may take to start and print its DevTools address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one DevTools command may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium binary: `$AXS_CHROMIUM`, else the first of Debian's and others' names on PATH.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AXS_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let names = ["chromium", "chromium-browser", "google-chrome", "chrome"];
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A running headless Chromium.
pub struct Browser {
    child: Child,
    _profile: TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One page (tab) of the browser, driven over its DevTools WebSocket.
pub struct Page {
    socket: WebSocket<TcpStream>,
    next_id: u64,
}

impl Browser {
    /// Starts `chromium` headless on `url` with a `width`x`height` window; returns the
    /// browser and its page.
    pub fn launch(
        chromium: &Path,
        url: &str,
        width: u32,
        height: u32,
    ) -> Result<(Browser, Page), String> {
        let profile = TempDir::new("chromium");
        // The flags this machine needs: no sandbox as root, and no background traffic
        // (the network is closed; Chromium's own requests would only fail).
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                &format!("--window-size={width},{height}"),
                &format!("--user-data-dir={}", profile.path().display()),
                url,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chromium.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let browser = Browser {
            child,
            _profile: profile,
        };
        let port = devtools_port(stderr)?;
        let page = Page::connect(port, url)?;
        Ok((browser, page))
    }
}

/// Reads Chromium's stderr until `DevTools listening on ws://127.0.0.1:PORT/...`; the rest
/// of stderr is drained in the background so Chromium never blocks on it.
fn devtools_port(stderr: std::process::ChildStderr) -> Result<u16, String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Some(rest) = line.split("DevTools listening on ws://").nth(1) {
                    let port = rest
                        .split('/')
                        .next()
                        .and_then(|hp| hp.rsplit(':').next())
                        .and_then(|p| p.parse::<u16>().ok());
                    sent = tx.send(port).is_ok();
                }
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(port)) => Ok(port),
        Ok(None) => Err("Chromium printed a DevTools address without a port".into()),
        Err(_) => Err(format!(
            "Chromium did not print its DevTools address within {START_TIMEOUT:?}"
        )),
    }
}

impl Page {
    /// Connects to the page target whose URL starts like `url` (the first page otherwise).
    fn connect(port: u16, url: &str) -> Result<Page, String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let ws_url = loop {
            if let Some(found) = page_socket_url(port, url) {
                break found;
            }
            if Instant::now() > deadline {
                return Err("Chromium listed no page target".into());
            }
            thread::sleep(Duration::from_millis(100));
        };
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| e.to_string())?;
        let (socket, _) = tungstenite::client(ws_url.as_str(), stream)
            .map_err(|e| format!("DevTools handshake: {e}"))?;
        let mut page = Page { socket, next_id: 0 };
        page.call("Page.enable", json!({}))?;
        page.call("Runtime.enable", json!({}))?;
        Ok(page)
    }

    /// Sends a DevTools command and returns its `result`; events in between are dropped.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket
            .send(Message::text(message))
            .map_err(|e| format!("{method}: {e}"))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        while Instant::now() < deadline {
            let text = match self.socket.read() {
                Ok(Message::Text(text)) => text,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    continue
                }
                Err(e) => return Err(format!("{method}: {e}")),
            };
            let reply: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            if reply["id"].as_u64() != Some(id) {
                continue;
            }
            if let Some(error) = reply.get("error") {
                return Err(format!("{method}: {error}"));
            }
            return Ok(reply["result"].clone());
        }
        Err(format!("{method}: no answer within {CALL_TIMEOUT:?}"))
    }

    /// Evaluates a JavaScript expression (promises awaited) and returns its JSON value.
    pub fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let params =
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true });
        let result = self.call("Runtime.evaluate", params)?;
        if let Some(details) = result.get("exceptionDetails") {
            return Err(format!("{expression}: {details}"));
        }
        Ok(result["result"]["value"].clone())
    }

    /// Evaluates `expression` every 100 ms until it is truthy; returns its value.
    pub fn wait_for(
        &mut self,
        expression: &str,
        timeout: Duration,
        what: &str,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            // Errors while the page (re)loads are expected: try again.
            if let Ok(value) = self.eval(expression) {
                let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                    && value != json!(0)
                    && value != json!("");
                if truthy {
                    return Ok(value);
                }
                last = value;
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "{what}: not within {timeout:?} (last value {last})"
        ))
    }

    /// Types `text` as the keyboard would (an IME-style insert), then presses Enter.
    pub fn type_line(&mut self, text: &str) -> Result<(), String> {
        if !text.is_empty() {
            self.call("Input.insertText", json!({ "text": text }))?;
        }
        let enter = |kind: &str| {
            json!({ "type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13,
                    "nativeVirtualKeyCode": 13, "text": "\r", "unmodifiedText": "\r" })
        };
        self.call("Input.dispatchKeyEvent", enter("keyDown"))?;
        self.call("Input.dispatchKeyEvent", enter("keyUp"))?;
        Ok(())
    }

    /// Resizes the page's viewport (the page sees a window resize).
    pub fn set_viewport(&mut self, width: u32, height: u32) -> Result<(), String> {
        let params =
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false });
        self.call("Emulation.setDeviceMetricsOverride", params)
            .map(drop)
    }

    /// Saves a PNG screenshot of the page to `path` (its directory is created).
    pub fn screenshot(&mut self, path: &Path) -> Result<(), String> {
        let result = self.call("Page.captureScreenshot", json!({ "format": "png" }))?;
        let data = result["data"].as_str().ok_or("no screenshot data")?;
        let png = base64_decode(data).ok_or("screenshot is not base64")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The DevTools WebSocket URL of the page target whose URL starts with `url`'s origin.
fn page_socket_url(port: u16, url: &str) -> Option<String> {
    let response = crate::http::request(port, "GET", "/json/list", &[], None).ok()?;
    let targets = response.json().ok()?;
    let origin: String = url.split('/').take(3).collect::<Vec<_>>().join("/");
    let pages = targets.as_array()?.iter().filter(|t| t["type"] == "page");
    let mut fallback = None;
    for target in pages {
        let socket = target["webSocketDebuggerUrl"].as_str()?.to_string();
        if target["url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&origin))
        {
            return Some(socket);
        }
        fallback.get_or_insert(socket);
    }
    fallback
}

/// Decodes standard base64 (padding optional); `None` on any other character.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let produced = chunk.len().saturating_sub(1);
        out.extend_from_slice(&n.to_be_bytes()[1..1 + produced]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64_decode("Zm9vYmFy").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(base64_decode("Zm9vYg==").as_deref(), Some(&b"foob"[..]));
        assert_eq!(base64_decode("Zm8=").as_deref(), Some(&b"fo"[..]));
        assert_eq!(
            base64_decode("//79").as_deref(),
            Some(&[0xff, 0xfe, 0xfd][..])
        );
        assert_eq!(base64_decode("Zm9v!"), None);
    }
}
