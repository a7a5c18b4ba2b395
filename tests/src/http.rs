//! A minimal HTTP/1.1 client: one request per connection (`Connection: close`), bounded waits.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long a request may wait for its answer.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names (as sent) and values.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("body {:?} is not JSON: {e}", self.text()))
    }

    /// A one-line description for failure messages.
    pub fn describe(&self) -> String {
        format!("{} {:?}", self.status, self.text())
    }
}

/// Sends one request to 127.0.0.1:`port` and reads the whole answer.
///
/// A body, when given, is sent with Content-Length. Write errors after the head are ignored
/// so that an early answer (413) can still be read.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    exchange(
        port,
        method,
        path,
        headers,
        body,
        HTTP_TIMEOUT,
        BodyWrite::MayFail,
    )
}

/// Like [`request`] with an optional JSON body, but the whole answer must come within
/// `bound` (each read and write also waits at most that long): for cases that bound an
/// answer far below [`HTTP_TIMEOUT`]. A late answer is an error too.
pub fn request_within(
    port: u16,
    method: &str,
    path: &str,
    json_body: Option<&str>,
    bound: Duration,
) -> Result<Response, String> {
    let started = Instant::now();
    let headers: &[(&str, &str)] = match json_body {
        Some(_) => &[("Content-Type", "application/json")],
        None => &[],
    };
    let body = json_body.map(str::as_bytes);
    let answer = exchange(port, method, path, headers, body, bound, BodyWrite::MayFail);
    let took = started.elapsed();
    match answer {
        Ok(r) if took < bound => Ok(r),
        other => Err(format!(
            "no answer within {bound:?} (took {took:?}): {:?}",
            other.map(|r| r.describe())
        )),
    }
}

/// Like [`request`], but the whole body must be accepted: a write error (the server reset
/// the connection while the body was still arriving) is an error, not ignored.
pub fn request_whole_body(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    exchange(
        port,
        method,
        path,
        headers,
        Some(body),
        HTTP_TIMEOUT,
        BodyWrite::MustSucceed,
    )
}

/// Whether a failed body write fails the exchange.
#[derive(Clone, Copy, PartialEq)]
enum BodyWrite {
    /// Ignored, so an early answer (413) can still be read.
    MayFail,
    /// An error: the server must take the whole body (or drain it) before closing.
    MustSucceed,
}

fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
    body_write: BodyWrite,
) -> Result<Response, String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .map_err(|e| format!("writing the request head: {e}"))?;
    if let Some(b) = body {
        let written = s.write_all(b);
        if let (Err(e), BodyWrite::MustSucceed) = (written, body_write) {
            return Err(format!("sending the {} byte body: {e}", b.len()));
        }
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if let Some(resp) = parse_complete(&raw)? {
                    return Ok(resp);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(format!(
                    "reading the answer: {e} (got {} bytes: {:?})",
                    raw.len(),
                    String::from_utf8_lossy(&raw[..raw.len().min(300)])
                ))
            }
        }
    }
    match parse_complete(&raw)? {
        Some(r) => Ok(r),
        None => parse_until_eof(&raw),
    }
}

/// Splits the head from the body; `None` until the head is complete.
/// The end of the head, the status and the headers.
type Head = (usize, u16, Vec<(String, String)>);

fn split_head(raw: &[u8]) -> Option<Head> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some((end, status, headers))
}

/// A complete response if `raw` holds one (by Content-Length or a finished chunked body).
fn parse_complete(raw: &[u8]) -> Result<Option<Response>, String> {
    let Some((end, status, headers)) = split_head(raw) else {
        return Ok(None);
    };
    let find = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    if let Some(len) = find("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad Content-Length {len:?}"))?;
        if raw.len() >= end + len {
            let body = raw[end..end + len].to_vec();
            return Ok(Some(Response {
                status,
                headers,
                body,
            }));
        }
        return Ok(None);
    }
    if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return Ok(dechunk(&raw[end..]).map(|body| Response {
            status,
            headers,
            body,
        }));
    }
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(Some(Response {
            status,
            headers,
            body: Vec::new(),
        }));
    }
    Ok(None)
}

/// A response whose body runs to EOF.
fn parse_until_eof(raw: &[u8]) -> Result<Response, String> {
    match split_head(raw) {
        Some((end, status, headers)) => Ok(Response {
            status,
            headers,
            body: raw[end..].to_vec(),
        }),
        None => Err(format!(
            "connection closed before a complete answer (got {:?})",
            String::from_utf8_lossy(&raw[..raw.len().min(300)])
        )),
    }
}

/// Decodes a complete chunked body; `None` while incomplete.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
