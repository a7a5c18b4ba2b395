//! HTTP/1.1 request heads in, responses out, as pure functions.
//!
//! The runtime accumulates bytes from a connection and calls [`parse_head`] after every
//! read until it returns [`HeadParse::Complete`]. The head is limited to [`MAX_HEAD`]
//! bytes (431 beyond that). The body length comes from [`RequestHead::content_length`]
//! (chunked bodies are refused: no client of axs sends them).
//!
//! Connection handling: axs answers exactly one request per connection. Every
//! [`Response::to_bytes`] carries `Connection: close` and the runtime closes the
//! connection after writing it, except for `101 Switching Protocols`
//! ([`Response::is_upgrade`]), after which the connection carries the WebSocket.
//! This keeps the runtimes free of keep-alive bookkeeping; the clients open a new
//! connection per request anyway.

use crate::api::ApiError;

/// Largest accepted request head (request line plus headers), in bytes.
pub const MAX_HEAD: usize = 16 * 1024;

/// Most header lines accepted in one request head (431 beyond that).
pub const MAX_HEADERS: usize = 64;

/// What the runtime writes when a client sent `Expect: 100-continue` before its body.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The request method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `PATCH`
    Patch,
    /// `OPTIONS`
    Options,
    /// Any other token, as sent.
    Other(String),
}

impl Method {
    /// Parses a method token (case-sensitive, as RFC 9110 says).
    pub fn parse(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_string()),
        }
    }

    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
            Method::Other(token) => token,
        }
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The request method.
    pub method: Method,
    /// The path, percent-decoded, without the query.
    pub path: String,
    /// The query pairs in order, percent-decoded (`+` is a space).
    pub query: Vec<(String, String)>,
    /// Header lines in order: lowercased name, value (lossily decoded, trimmed).
    pub headers: Vec<(String, String)>,
}

/// The result of [`parse_head`] on the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadParse {
    /// The head is not complete yet: read more.
    Partial,
    /// A complete head; the body starts at `len` in the buffer.
    Complete {
        /// The parsed head.
        head: RequestHead,
        /// Length of the head in bytes, including the blank line.
        len: usize,
    },
}

/// Parses a request head from the start of `buf`.
///
/// Errors: malformed heads are 400, heads longer than [`MAX_HEAD`] or with more than
/// [`MAX_HEADERS`] lines are 431, a path that is not UTF-8 after decoding is 400.
pub fn parse_head(buf: &[u8]) -> Result<HeadParse, ApiError> {
    let window = &buf[..buf.len().min(MAX_HEAD)];
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let len = match request.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(ApiError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(HeadParse::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(ApiError::HeadTooLarge),
        Err(err) => return Err(ApiError::MalformedRequest(err.to_string())),
    };
    let method = Method::parse(request.method.unwrap_or_default());
    let target = request.path.unwrap_or_default();
    let (path, query) = split_target(target)?;
    let headers = request
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).trim().to_string();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect();
    let head = RequestHead {
        method,
        path,
        query,
        headers,
    };
    Ok(HeadParse::Complete { head, len })
}

/// Splits a request target into its decoded path and query pairs.
fn split_target(target: &str) -> Result<(String, Vec<(String, String)>), ApiError> {
    let target = strip_authority(target);
    let (raw_path, raw_query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let path = String::from_utf8(percent_decode(raw_path, false))
        .map_err(|_| ApiError::MalformedRequest("the path is not valid UTF-8".into()))?;
    let query = raw_query.map(parse_query).unwrap_or_default();
    Ok((path, query))
}

/// Reduces an absolute-form target (`http://host/path`, used through proxies) to its path.
fn strip_authority(target: &str) -> &str {
    let rest = ["http://", "https://"]
        .iter()
        .find_map(|scheme| strip_prefix_ignore_case(target, scheme));
    match rest {
        Some(rest) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => target,
    }
}

/// `s` without `prefix`, compared ASCII case-insensitively.
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Parses `a=1&b=2` into decoded pairs; a key without `=` gets an empty value.
/// Public for the fuzz targets (`fuzz/`); requests reach it through [`parse_head`].
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_lossy(key), decode_lossy(value))
        })
        .collect()
}

/// Percent-decodes a query component (`+` is a space), lossily as UTF-8.
fn decode_lossy(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode(s, true)).into_owned()
}

/// Percent-decodes `s`; malformed escapes stay as they are. Public for the fuzz targets
/// (`fuzz/`); requests reach it through [`parse_head`].
pub fn percent_decode(s: &str, plus_is_space: bool) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex_value(*hi).zip(hex_value(*lo)),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some((hi, lo)), _) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (None, b'+') if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// The value of one hex digit.
fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

/// True when the comma-separated header value contains `token` (ASCII case-insensitive).
fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

impl RequestHead {
    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The declared body length: `None` when there is no body.
    ///
    /// A `Transfer-Encoding` (chunked bodies) is refused with 411 so the client can
    /// retry with `Content-Length`; a malformed or conflicting length is 400.
    pub fn content_length(&self) -> Result<Option<usize>, ApiError> {
        if self.header("transfer-encoding").is_some() {
            return Err(ApiError::LengthRequired);
        }
        let mut found: Option<usize> = None;
        for (_, value) in self.headers.iter().filter(|(n, _)| n == "content-length") {
            let len = parse_length(value)?;
            if found.is_some_and(|earlier| earlier != len) {
                return Err(ApiError::MalformedRequest(
                    "conflicting Content-Length headers".into(),
                ));
            }
            found = Some(len);
        }
        Ok(found)
    }

    /// True when the client sent `Expect: 100-continue` (write [`CONTINUE`] before reading the body).
    pub fn expects_continue(&self) -> bool {
        self.header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    /// True for a `GET` carrying `Upgrade: websocket` and `Connection: upgrade`.
    pub fn is_websocket_upgrade(&self) -> bool {
        let upgrade = self
            .header("upgrade")
            .is_some_and(|v| has_token(v, "websocket"));
        let connection = self
            .headers
            .iter()
            .any(|(n, v)| n == "connection" && has_token(v, "upgrade"));
        self.method == Method::Get && upgrade && connection
    }

    /// The `Sec-WebSocket-Key` header, when present and not empty.
    pub fn websocket_key(&self) -> Option<&str> {
        self.header("sec-websocket-key").filter(|k| !k.is_empty())
    }
}

/// Parses one Content-Length value: decimal digits only.
fn parse_length(value: &str) -> Result<usize, ApiError> {
    let digits_only = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    let parsed = digits_only.then(|| value.parse::<usize>().ok()).flatten();
    parsed.ok_or_else(|| ApiError::MalformedRequest("invalid Content-Length".into()))
}

/// A response ready to be serialised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header lines, without `Content-Length` and `Connection` (added by [`Response::to_bytes`]).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body of the given content type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// A response without a body or headers.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Appends header lines.
    pub fn with_headers(mut self, extra: impl IntoIterator<Item = (String, String)>) -> Response {
        self.headers.extend(extra);
        self
    }

    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True for `101 Switching Protocols`: the connection stays open as a WebSocket.
    /// Every other response is followed by closing the connection.
    pub fn is_upgrade(&self) -> bool {
        self.status == 101
    }

    /// The bytes on the wire: status line, headers, `Content-Length` (except for 1xx,
    /// 204 and 304, which carry no body), `Connection: close` (except for 101), body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.body.len());
        let status_line = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        out.extend_from_slice(status_line.as_bytes());
        for (name, value) in &self.headers {
            push_header(&mut out, name, value);
        }
        let bodiless = self.status < 200 || self.status == 204 || self.status == 304;
        if !bodiless {
            push_header(&mut out, "Content-Length", &self.body.len().to_string());
        }
        if !self.is_upgrade() {
            push_header(&mut out, "Connection", "close");
        }
        out.extend_from_slice(b"\r\n");
        if !bodiless {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// Writes one header line, dropping CR and LF so no value can split the head.
fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    let clean = |s: &str| s.replace(['\r', '\n'], "");
    out.extend_from_slice(format!("{}: {}\r\n", clean(name), clean(value)).as_bytes());
}

/// The reason phrase for the statuses axs uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn complete(raw: &str) -> (RequestHead, usize) {
        match parse_head(raw.as_bytes()) {
            Ok(HeadParse::Complete { head, len }) => (head, len),
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_simple_get() {
        let raw = "GET /status HTTP/1.1\r\nHost: 127.0.0.1:8767\r\n\r\n";
        let (head, len) = complete(raw);
        assert_eq!(len, raw.len());
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.path, "/status");
        assert_eq!(head.header("host"), Some("127.0.0.1:8767"));
    }

    #[test]
    fn body_starts_after_the_head() {
        let raw = "POST /terminals HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        let (head, len) = complete(raw);
        assert_eq!(&raw.as_bytes()[len..], b"{}");
        assert_eq!(head.content_length().unwrap(), Some(2));
    }

    #[test]
    fn partial_until_the_blank_line() {
        assert_eq!(parse_head(b"GET /st").unwrap(), HeadParse::Partial);
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(),
            HeadParse::Partial
        );
        assert_eq!(parse_head(b"").unwrap(), HeadParse::Partial);
    }

    #[test]
    fn oversized_head_is_431() {
        let mut raw = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        raw.resize(MAX_HEAD + 10, b'a');
        let err = parse_head(&raw).unwrap_err();
        assert_eq!(err.status(), 431);
    }

    #[test]
    fn head_just_below_the_limit_is_fine() {
        let mut raw = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        raw.resize(MAX_HEAD - 4, b'a');
        raw.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(parse_head(&raw), Ok(HeadParse::Complete { .. })));
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut raw = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            raw.push_str(&format!("X-{i}: 1\r\n"));
        }
        raw.push_str("\r\n");
        assert_eq!(parse_head(raw.as_bytes()).unwrap_err().status(), 431);
    }

    #[test]
    fn garbage_is_400() {
        let err = parse_head(b"\x00\x01\x02 / HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn path_and_query_are_decoded() {
        let (head, _) = complete("GET /a%20b/c?since=12&token=x%2By+z&flag HTTP/1.1\r\n\r\n");
        assert_eq!(head.path, "/a b/c");
        assert_eq!(head.query_param("since"), Some("12"));
        assert_eq!(head.query_param("token"), Some("x+y z"));
        assert_eq!(head.query_param("flag"), Some(""));
        assert_eq!(head.query_param("missing"), None);
    }

    #[test]
    fn malformed_escapes_stay_literal() {
        let (head, _) = complete("GET /100%zz%4 HTTP/1.1\r\n\r\n");
        assert_eq!(head.path, "/100%zz%4");
    }

    #[test]
    fn non_utf8_path_is_400() {
        let err = parse_head(b"GET /%ff%fe HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn absolute_form_targets_keep_only_the_path() {
        let (head, _) = complete("GET http://localhost:8767/status?x=1 HTTP/1.1\r\n\r\n");
        assert_eq!(head.path, "/status");
        assert_eq!(head.query_param("x"), Some("1"));
        let (head, _) = complete("GET HTTP://localhost HTTP/1.1\r\n\r\n");
        assert_eq!(head.path, "/");
    }

    #[test]
    fn header_names_are_lowercased_and_values_trimmed() {
        let (head, _) = complete("GET / HTTP/1.1\r\nX-Axs-Token:   abc  \r\n\r\n");
        assert_eq!(head.headers[0].0, "x-axs-token");
        assert_eq!(head.header("x-axs-token"), Some("abc"));
        assert_eq!(head.header("X-Axs-Token"), Some("abc"));
    }

    #[test]
    fn content_length_cases() {
        let (head, _) = complete("POST / HTTP/1.1\r\n\r\n");
        assert_eq!(head.content_length().unwrap(), None);
        let (head, _) =
            complete("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(head.content_length().unwrap(), Some(5));
        let (head, _) =
            complete("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
        assert_eq!(head.content_length().unwrap_err().status(), 400);
        let (head, _) = complete("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n");
        assert_eq!(head.content_length().unwrap_err().status(), 400);
        let (head, _) =
            complete("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n");
        assert_eq!(head.content_length().unwrap_err().status(), 400);
        let (head, _) = complete("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        let err = head.content_length().unwrap_err();
        assert_eq!(err.status(), 411);
        assert!(err.to_string().contains("Content-Length"));
    }

    #[test]
    fn websocket_upgrade_detection() {
        let raw = "GET /terminals/1 HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        let (head, _) = complete(raw);
        assert!(head.is_websocket_upgrade());
        assert_eq!(head.websocket_key(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        let (head, _) = complete("GET /terminals/1 HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
        assert!(!head.is_websocket_upgrade());
        let (head, _) = complete(
            "POST /terminals/1 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        );
        assert!(!head.is_websocket_upgrade());
    }

    #[test]
    fn expect_continue() {
        let (head, _) = complete("POST / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n");
        assert!(head.expects_continue());
    }

    #[test]
    fn response_bytes() {
        let response = Response::new(200, "text/plain", "OK");
        let text = String::from_utf8(response.to_bytes()).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"
        );
        assert!(!response.is_upgrade());
    }

    #[test]
    fn no_content_and_switching_protocols_have_no_length() {
        let text = String::from_utf8(Response::empty(204).to_bytes()).unwrap();
        assert_eq!(text, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        let upgrade = Response::empty(101).with_headers([("Upgrade".into(), "websocket".into())]);
        let text = String::from_utf8(upgrade.to_bytes()).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
        );
        assert!(upgrade.is_upgrade());
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        let response =
            Response::empty(200).with_headers([("X".into(), "a\r\nSet-Cookie: b".into())]);
        let text = String::from_utf8(response.to_bytes()).unwrap();
        assert!(text.contains("X: aSet-Cookie: b\r\n"));
    }

    proptest! {
        #[test]
        fn parse_head_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_head(&bytes);
        }

        #[test]
        fn parse_head_never_panics_on_plausible_heads(
            method in "[A-Z]{1,8}",
            target in "[ -~]{0,64}",
            headers in proptest::collection::vec(("[a-zA-Z-]{1,16}", "[ -~]{0,32}"), 0..8),
        ) {
            let mut raw = format!("{method} {target} HTTP/1.1\r\n");
            for (name, value) in headers {
                raw.push_str(&format!("{name}: {value}\r\n"));
            }
            raw.push_str("\r\n");
            if let Ok(HeadParse::Complete { head, .. }) = parse_head(raw.as_bytes()) {
                let _ = head.content_length();
                let _ = head.is_websocket_upgrade();
            }
        }
    }
}
