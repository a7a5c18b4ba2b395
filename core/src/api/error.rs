//! Every way a request can fail, and its HTTP status (mapped here, once).

use std::fmt;

use crate::http::Response;

/// A request the server refuses; `Display` is the message the user sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The request head or target cannot be parsed (400).
    MalformedRequest(String),
    /// The body is not the JSON the route expects (400).
    InvalidBody(String),
    /// A body field is missing or has a bad value (400).
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A query parameter has a bad value (400).
    InvalidQuery {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// `GET /terminals/{id}` without the WebSocket upgrade headers (400).
    NotAWebSocket,
    /// The working directory of an `execute-command` does not exist or is unusable (400).
    BadCwd(String),
    /// A token is configured and the request did not carry it (401).
    Unauthorized,
    /// The request's `Origin` is not allowed (403).
    OriginNotAllowed(String),
    /// The request's `Host` does not name this loopback listener (403): DNS rebinding.
    HostNotAllowed(String),
    /// The request carries only the view token and asks for more than watching (403).
    ViewOnly,
    /// No route has this path (404).
    NotFound(String),
    /// No session has this id (404); raised by the session registry.
    UnknownSession(u32),
    /// The path exists but not for this method (405); `allow` lists the methods it takes.
    MethodNotAllowed {
        /// The `Allow` header value.
        allow: &'static str,
    },
    /// A chunked (or otherwise transfer-encoded) body (411).
    LengthRequired,
    /// The body is larger than the limit (413).
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The WebSocket handshake asks for a protocol version other than 13 (426).
    UnsupportedWebSocketVersion,
    /// The request head is larger than [`crate::http::MAX_HEAD`] or has too many lines (431).
    HeadTooLarge,
    /// The program of a new session could not be started (500).
    SpawnFailed(String),
    /// Something failed inside the server (500).
    Internal(String),
    /// The session limit is reached (503); raised by the session registry.
    TooManySessions {
        /// The configured limit.
        limit: usize,
    },
    /// The limit of `execute-command` jobs at once is reached (503).
    TooManyJobs {
        /// The limit.
        limit: usize,
    },
    /// The limit of connections at once is reached and none can make room (503).
    TooManyConnections {
        /// The limit.
        limit: usize,
    },
    /// The server is stopping and starts no new session or command (503).
    ShuttingDown,
    /// The request did not arrive whole within the time allowed (408).
    RequestTimeout,
}

impl ApiError {
    /// The HTTP status for this error: the one place where errors meet statuses.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::MalformedRequest(_)
            | ApiError::InvalidBody(_)
            | ApiError::InvalidField { .. }
            | ApiError::InvalidQuery { .. }
            | ApiError::NotAWebSocket
            | ApiError::BadCwd(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::OriginNotAllowed(_) | ApiError::HostNotAllowed(_) | ApiError::ViewOnly => 403,
            ApiError::NotFound(_) | ApiError::UnknownSession(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::LengthRequired => 411,
            ApiError::BodyTooLarge { .. } => 413,
            ApiError::UnsupportedWebSocketVersion => 426,
            ApiError::HeadTooLarge => 431,
            ApiError::SpawnFailed(_) | ApiError::Internal(_) => 500,
            ApiError::TooManySessions { .. }
            | ApiError::TooManyJobs { .. }
            | ApiError::TooManyConnections { .. }
            | ApiError::ShuttingDown => 503,
            ApiError::RequestTimeout => 408,
        }
    }

    /// Headers the status calls for: `Allow` (405), `WWW-Authenticate` (401),
    /// `Sec-WebSocket-Version` (426).
    pub fn headers(&self) -> Vec<(String, String)> {
        match self {
            ApiError::MethodNotAllowed { allow } => vec![("Allow".into(), (*allow).into())],
            ApiError::Unauthorized => vec![("WWW-Authenticate".into(), "Bearer".into())],
            ApiError::UnsupportedWebSocketVersion => {
                vec![("Sec-WebSocket-Version".into(), "13".into())]
            }
            _ => Vec::new(),
        }
    }

    /// The answer: `{"error":"<message>"}` with the status, plus the given CORS headers.
    pub fn error_response(&self, cors: &[(String, String)]) -> Response {
        let body = serde_json::json!({ "error": self.to_string() }).to_string();
        Response::new(self.status(), "application/json", body)
            .with_headers(self.headers())
            .with_headers(cors.iter().cloned())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::MalformedRequest(why) => write!(f, "malformed request: {why}"),
            ApiError::InvalidBody(why) => write!(f, "invalid request body: {why}"),
            ApiError::InvalidField { field, problem } => write!(f, "field `{field}`: {problem}"),
            ApiError::InvalidQuery { name, problem } => {
                write!(f, "query parameter `{name}`: {problem}")
            }
            ApiError::NotAWebSocket => {
                f.write_str("this endpoint needs a WebSocket upgrade (Upgrade: websocket)")
            }
            ApiError::BadCwd(why) => write!(f, "working directory: {why}"),
            ApiError::Unauthorized => f.write_str(
                "missing or wrong token: send `Authorization: Bearer <token>`, \
                 `X-Axs-Token: <token>` or `?token=<token>`",
            ),
            ApiError::OriginNotAllowed(origin) => write!(
                f,
                "origin {origin} is not allowed (start the server with --allow-any-origin to allow it)"
            ),
            ApiError::HostNotAllowed(host) => write!(
                f,
                "host {host:?} is not allowed: this server listens on loopback and answers \
                 only to 127.0.0.1, localhost and [::1]"
            ),
            ApiError::ViewOnly => f.write_str(
                "the view token only allows watching (GET /status and attaching as a viewer); \
                 this needs the full token",
            ),
            ApiError::NotFound(path) => write!(f, "no such endpoint: {path}"),
            ApiError::UnknownSession(id) => write!(f, "no terminal session with id {id}"),
            ApiError::MethodNotAllowed { allow } => {
                write!(f, "method not allowed here; allowed: {allow}")
            }
            ApiError::LengthRequired => f.write_str(
                "chunked request bodies are not supported; send the body with a Content-Length",
            ),
            ApiError::BodyTooLarge { limit } => {
                write!(f, "request body too large (limit: {limit} bytes)")
            }
            ApiError::UnsupportedWebSocketVersion => {
                f.write_str("unsupported WebSocket version (this server speaks version 13)")
            }
            ApiError::HeadTooLarge => write!(
                f,
                "request head too large (limit: {} bytes, {} header lines)",
                crate::http::MAX_HEAD,
                crate::http::MAX_HEADERS
            ),
            ApiError::SpawnFailed(why) => write!(f, "could not start the program: {why}"),
            ApiError::Internal(why) => write!(f, "internal error: {why}"),
            ApiError::TooManySessions { limit } => write!(
                f,
                "too many terminal sessions (limit: {limit}); terminate one or raise --max-sessions"
            ),
            ApiError::TooManyJobs { limit } => write!(
                f,
                "too many commands running at once (limit: {limit}); try again when one has finished"
            ),
            ApiError::TooManyConnections { limit } => write!(
                f,
                "too many connections at once (limit: {limit}), all busy; try again shortly"
            ),
            ApiError::ShuttingDown => f.write_str("the server is shutting down"),
            ApiError::RequestTimeout => write!(
                f,
                "the request did not arrive within {} s",
                crate::limits::REQUEST_TIMEOUT.as_secs()
            ),
        }
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn body_of(response: &Response) -> serde_json::Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn statuses() {
        let cases = [
            (ApiError::MalformedRequest("x".into()), 400),
            (ApiError::InvalidBody("x".into()), 400),
            (
                ApiError::InvalidField {
                    field: "cols",
                    problem: "x".into(),
                },
                400,
            ),
            (ApiError::NotAWebSocket, 400),
            (ApiError::BadCwd("x".into()), 400),
            (ApiError::Unauthorized, 401),
            (ApiError::OriginNotAllowed("x".into()), 403),
            (ApiError::NotFound("/x".into()), 404),
            (ApiError::UnknownSession(7), 404),
            (ApiError::MethodNotAllowed { allow: "GET" }, 405),
            (ApiError::LengthRequired, 411),
            (ApiError::BodyTooLarge { limit: 1 }, 413),
            (ApiError::UnsupportedWebSocketVersion, 426),
            (ApiError::HeadTooLarge, 431),
            (ApiError::SpawnFailed("x".into()), 500),
            (ApiError::TooManySessions { limit: 64 }, 503),
            (ApiError::TooManyJobs { limit: 16 }, 503),
            (ApiError::TooManyConnections { limit: 512 }, 503),
            (ApiError::ShuttingDown, 503),
        ];
        for (err, status) in cases {
            assert_eq!(err.status(), status, "{err}");
            let response = err.error_response(&[]);
            assert_eq!(response.status, status);
            assert_eq!(response.header("content-type"), Some("application/json"));
            assert_eq!(body_of(&response)["error"], err.to_string());
        }
    }

    #[test]
    fn status_specific_headers() {
        let response = ApiError::MethodNotAllowed {
            allow: "POST, OPTIONS",
        }
        .error_response(&[]);
        assert_eq!(response.header("allow"), Some("POST, OPTIONS"));
        let response = ApiError::Unauthorized.error_response(&[]);
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        let response = ApiError::UnsupportedWebSocketVersion.error_response(&[]);
        assert_eq!(response.header("sec-websocket-version"), Some("13"));
    }

    #[test]
    fn cors_headers_are_added() {
        let cors = [(
            "Access-Control-Allow-Origin".to_string(),
            "https://localhost".to_string(),
        )];
        let response = ApiError::UnknownSession(3).error_response(&cors);
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some("https://localhost")
        );
    }

    #[test]
    fn messages_are_json_escaped() {
        let err = ApiError::InvalidBody("quote \" and newline \n".into());
        let value = body_of(&err.error_response(&[]));
        assert_eq!(value["error"], err.to_string());
    }
}
