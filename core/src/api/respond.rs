//! The answers of the API, byte for byte what the axs 0.2 clients expect.

use std::time::Duration;

use super::{cors_headers, ApiError, Policy, TermSize};
use crate::frame::ExitStatus;
use crate::http::{RequestHead, Response};

/// The GUID RFC 6455 appends to the client's key before hashing.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Access-Control-Max-Age` of a preflight: 10 minutes (Chromium caps it at 2 hours).
const PREFLIGHT_MAX_AGE: &str = "600";

/// Request headers a preflight allows when the browser does not list them.
const DEFAULT_ALLOW_HEADERS: &str = "content-type, authorization, x-axs-token";

/// `GET /status`: `200`, `OK` as plain text (clients compare the trimmed body to `OK`).
pub fn status_ok() -> Response {
    Response::new(200, "text/plain; charset=utf-8", "OK")
}

/// One session as `GET /terminals` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalInfo {
    /// The session id (the program's pid).
    pub id: u32,
    /// The pty's size.
    pub size: TermSize,
    /// How many clients are attached.
    pub clients: usize,
    /// How long ago the program was spawned.
    pub age: Duration,
    /// How the program ended, once it has.
    pub exit: Option<ExitStatus>,
}

/// `GET /terminals`: `200`, a JSON array with one object per session:
/// `{"id","cols","rows","clients","started_secs_ago","exited","exit_code","signal"}`
/// (`exit_code` and `signal` are `null` unless the program ended that way).
pub fn terminal_list(terminals: &[TerminalInfo]) -> Response {
    let list: Vec<serde_json::Value> = terminals
        .iter()
        .map(|t| {
            let (code, signal) = match &t.exit {
                None => (None, None),
                Some(ExitStatus::Code(code)) => (Some(*code), None),
                Some(ExitStatus::Signal(name)) => (None, Some(name.as_str())),
            };
            serde_json::json!({
                "id": t.id,
                "cols": t.size.cols,
                "rows": t.size.rows,
                "clients": t.clients,
                "started_secs_ago": t.age.as_secs(),
                "exited": t.exit.is_some(),
                "exit_code": code,
                "signal": signal,
            })
        })
        .collect();
    let body = serde_json::Value::Array(list).to_string();
    Response::new(200, "application/json", body)
        .with_headers([("Cache-Control".to_string(), "no-store".to_string())])
}

/// `POST /terminals`: `200` with the new session's id (the child's pid) as plain text.
pub fn created(pid: u32) -> Response {
    Response::new(200, "text/plain; charset=utf-8", pid.to_string())
}

/// Resize and terminate: `200 {"success":true}`.
pub fn success() -> Response {
    Response::new(200, "application/json", r#"{"success":true}"#)
}

/// `execute-command` that ran: `200 {"output":"...","error":null}` (pass [`super::strip_ansi`]'s text).
pub fn command_output(output: &str) -> Response {
    let body = serde_json::json!({ "output": output, "error": null }).to_string();
    Response::new(200, "application/json", body)
}

/// `execute-command` that could not run or timed out: `{"output":"","error":"..."}` with
/// status 500 (axs 0.2 said 200), so a client that checks the status sees the failure,
/// one that only reads `error` finds it, and one that calls `output.trim()` (AcodeX)
/// does not throw.
pub fn command_failed(message: &str) -> Response {
    command_error(500, message)
}

/// An `execute-command` error answer with `status`: `{"output":"","error":"..."}`.
pub fn command_error(status: u16, message: &str) -> Response {
    let body = serde_json::json!({ "output": "", "error": message }).to_string();
    Response::new(status, "application/json", body)
}

/// The CORS preflight answer: `204` allowing `GET, POST, OPTIONS`, the requested headers
/// (or a fixed list with `content-type`, `authorization`, `x-axs-token`), cached for 10
/// minutes, plus the allow-origin headers of [`cors_headers`].
pub fn preflight(head: &RequestHead, policy: &Policy) -> Response {
    let requested = head
        .header("access-control-request-headers")
        .filter(|v| is_header_list(v));
    let mut headers = vec![
        (
            "Access-Control-Allow-Methods".to_string(),
            "GET, POST, OPTIONS".to_string(),
        ),
        (
            "Access-Control-Allow-Headers".to_string(),
            requested.unwrap_or(DEFAULT_ALLOW_HEADERS).to_string(),
        ),
        (
            "Access-Control-Max-Age".to_string(),
            PREFLIGHT_MAX_AGE.to_string(),
        ),
    ];
    // Chromium's Private Network Access asks before a page reaches a loopback server.
    let private_network = head
        .header("access-control-request-private-network")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if private_network {
        headers.push((
            "Access-Control-Allow-Private-Network".to_string(),
            "true".to_string(),
        ));
    }
    Response::empty(204)
        .with_headers(headers)
        .with_headers(cors_headers(head, policy))
}

/// True for a plausible comma-separated list of header names (safe to echo back).
fn is_header_list(value: &str) -> bool {
    let token_char = |c: char| c.is_ascii_alphanumeric() || "-_!#$%&'*+.^`|~".contains(c);
    value.len() <= 1024 && value.chars().all(|c| token_char(c) || c == ',' || c == ' ')
}

/// The final answer to a request: the route's response or the error's JSON, with the
/// CORS headers of [`cors_headers`] (not for 101, nor twice for a preflight).
///
/// `head` is `None` when the head itself could not be parsed.
pub fn answer(
    head: Option<&RequestHead>,
    policy: &Policy,
    result: Result<Response, ApiError>,
) -> Response {
    let cors = head.map(|h| cors_headers(h, policy)).unwrap_or_default();
    match result {
        Err(err) => err.error_response(&cors),
        // A preflight already carries them (its `Vary`); a 101 needs none.
        Ok(response) if response.is_upgrade() || response.header("vary").is_some() => response,
        Ok(response) => response.with_headers(cors),
    }
}

/// The `101 Switching Protocols` answer to a WebSocket upgrade.
///
/// Errors: not an upgrade (400), no key (400), a version other than 13 (426).
pub fn websocket_accept(head: &RequestHead) -> Result<Response, ApiError> {
    upgrade_key(head).map(switching_protocols)
}

/// The key of a valid WebSocket upgrade request (RFC 6455 §4.2.1).
pub(crate) fn upgrade_key(head: &RequestHead) -> Result<&str, ApiError> {
    if !head.is_websocket_upgrade() {
        return Err(ApiError::NotAWebSocket);
    }
    let key = head
        .websocket_key()
        .ok_or_else(|| ApiError::MalformedRequest("missing Sec-WebSocket-Key".into()))?;
    if head.header("sec-websocket-version") != Some("13") {
        return Err(ApiError::UnsupportedWebSocketVersion);
    }
    Ok(key)
}

/// The 101 answer for a client key.
pub(crate) fn switching_protocols(key: &str) -> Response {
    Response::empty(101).with_headers([
        ("Upgrade".to_string(), "websocket".to_string()),
        ("Connection".to_string(), "Upgrade".to_string()),
        (
            "Sec-WebSocket-Accept".to_string(),
            websocket_accept_key(key),
        ),
    ])
}

/// `Sec-WebSocket-Accept` for a client key: base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2).
pub fn websocket_accept_key(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID.as_bytes());
    base64(&sha.digest().bytes())
}

/// Standard base64 with padding (RFC 4648 §4); the handshake is its only user.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let sextets = [n >> 18, n >> 12, n >> 6, n];
        for (i, sextet) in sextets.iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(sextet & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        // RFC 4648 §10.
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn accept_key_from_rfc6455() {
        assert_eq!(
            websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn fixed_answers() {
        let ok = status_ok();
        assert_eq!((ok.status, ok.body.as_slice()), (200, &b"OK"[..]));
        let created = created(4242);
        assert_eq!(
            (created.status, created.body.as_slice()),
            (200, &b"4242"[..])
        );
        assert_eq!(
            created.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(success().body, br#"{"success":true}"#);
    }

    #[test]
    fn command_answers() {
        let out = command_output("FOUND\n\"x\"");
        let value: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(out.status, 200);
        assert_eq!(value["output"], "FOUND\n\"x\"");
        assert!(value["error"].is_null());
        let failed = command_failed("timed out after 30 s");
        let value: serde_json::Value = serde_json::from_slice(&failed.body).unwrap();
        assert_eq!(failed.status, 500);
        assert_eq!(value["output"], "", "a string, so clients may trim() it");
        assert_eq!(value["error"], "timed out after 30 s");
    }

    #[test]
    fn header_lists() {
        assert!(is_header_list("content-type, x-axs-token"));
        assert!(!is_header_list("content-type\r\nx: y"));
        assert!(!is_header_list("a:b"));
    }
}
