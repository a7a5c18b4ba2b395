//! The route table: a request head and body in, a [`Route`] or an [`ApiError`] out.
//!
//! Order of checks, so every request gets the most useful answer: `Host` on a loopback
//! listener (403, before anything else so a rebinding page learns nothing), unknown path
//! (404), preflight (origin only), wrong method (405), origin (403), token (401), what a
//! viewer may do (403), then the route's own parameters and body (400, 426).

use std::time::Duration;

use serde_json::{Map, Value};

use super::page::{self, Asset};
use super::{Access, ApiError, Policy};
use crate::http::{Method, RequestHead};

/// Largest accepted `cols` and `rows`; the smallest is 1. Far beyond any real screen,
/// small enough that a typo cannot make a program allocate a gigantic screen.
pub const MAX_DIMENSION: u16 = 1000;

/// How long an `execute-command` may run before it is killed (as in axs 0.2).
pub const EXECUTE_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest WebSocket message a client may send (input: keystrokes, pastes): 16 MiB.
/// xterm.js sends a paste as one message, and a client whose socket closes ends the
/// user's session (CLIENTS.md), so the limit is far above any paste; memory stays
/// bounded because a runtime stops reading a client while its input waits.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TermSize {
    /// Columns, `1..=MAX_DIMENSION`.
    pub cols: u16,
    /// Rows, `1..=MAX_DIMENSION`.
    pub rows: u16,
}

impl Default for TermSize {
    /// 80x24, the classic terminal.
    fn default() -> TermSize {
        TermSize { cols: 80, rows: 24 }
    }
}

/// How a client shares its session with other clients (DESIGN.md "Attach policies").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AttachPolicy {
    /// Every client gets all output; any client's input goes to the program.
    #[default]
    Shared,
    /// The newest client owns the session; attaching detaches the older ones (viewers
    /// stay).
    Takeover,
    /// A read-only viewer: gets all output, its input is dropped, it never takes over and
    /// never holds the program back.
    View,
}

impl AttachPolicy {
    /// Parses `shared`, `takeover` or `view` (ASCII case-insensitive).
    pub fn parse(s: &str) -> Option<AttachPolicy> {
        [
            AttachPolicy::Shared,
            AttachPolicy::Takeover,
            AttachPolicy::View,
        ]
        .into_iter()
        .find(|p| s.eq_ignore_ascii_case(p.as_str()))
    }

    /// The policy's name as the CLI and query spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AttachPolicy::Shared => "shared",
            AttachPolicy::Takeover => "takeover",
            AttachPolicy::View => "view",
        }
    }
}

/// A WebSocket attach to a session: `GET /terminals/{id}?since=N&control=1&attach=takeover`.
/// A request with only the view token always attaches with [`AttachPolicy::View`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachRequest {
    /// The session id.
    pub id: u32,
    /// The stream offset the client already has (`?since=N`); implies `control`.
    pub since: Option<u64>,
    /// The client opted in to control messages (`?control=1`, or `since` given).
    pub control: bool,
    /// The attach policy this client asks for (`?attach=shared|takeover|view`); `None`: the
    /// server's.
    pub policy: Option<AttachPolicy>,
    /// The `Sec-WebSocket-Key`, for the 101 answer.
    pub key: String,
}

impl AttachRequest {
    /// The `101 Switching Protocols` answer for this request (the headers were checked by [`route`]).
    pub fn accept(&self) -> crate::http::Response {
        super::respond::switching_protocols(&self.key)
    }
}

/// What a request asks the server to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /status`: answer [`super::status_ok`].
    Status,
    /// `GET /` and the page's other files: answer [`Asset::respond`] (no token needed: the
    /// page holds no secret, and a reload must load it once the token left the address bar).
    Page(&'static Asset),
    /// `GET /terminals`: answer the list of sessions.
    ListTerminals,
    /// `OPTIONS` on a known path: answer [`super::preflight`].
    Preflight,
    /// `POST /terminals`: start a session of this size, answer [`super::created`].
    CreateTerminal {
        /// The initial size.
        size: TermSize,
    },
    /// `GET /terminals/{id}` with a WebSocket upgrade: look the session up (404 if
    /// unknown), answer [`AttachRequest::accept`], attach.
    Attach(AttachRequest),
    /// `POST /terminals/{id}/resize`: resize, answer [`super::success`].
    Resize {
        /// The session id.
        id: u32,
        /// The new size.
        size: TermSize,
    },
    /// `POST /terminals/{id}/terminate`: terminate the session if it exists (an unknown
    /// id is not an error), answer [`super::success`].
    Terminate {
        /// The session id.
        id: u32,
    },
    /// `POST /terminals/{x}/terminate` where `x` cannot name any session: do nothing,
    /// answer [`super::success`] (clients show an error dialog on anything but 2xx).
    TerminateUnknown,
    /// `POST /execute-command`: run `sh -c command` on a pty, answer
    /// [`super::command_output`] or [`super::command_failed`].
    ExecuteCommand {
        /// The shell command line.
        command: String,
        /// The working directory (`cwd`, else `u_cwd`); `None`: the user's home.
        cwd: Option<String>,
    },
}

/// The paths of the API, before the method is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Page(&'static Asset),
    Status,
    Terminals,
    Terminal(u32),
    Resize(u32),
    Terminate(Option<u32>),
    ExecuteCommand,
}

impl Endpoint {
    /// Matches a decoded path; a trailing slash is ignored.
    fn find(path: &str) -> Option<Endpoint> {
        if let Some(asset) = page::find(path) {
            return Some(Endpoint::Page(asset));
        }
        let trimmed = path.strip_suffix('/').filter(|p| !p.is_empty());
        let segments: Vec<&str> = trimmed.unwrap_or(path).split('/').skip(1).collect();
        match segments.as_slice() {
            ["status"] => Some(Endpoint::Status),
            ["terminals"] => Some(Endpoint::Terminals),
            ["terminals", id] => parse_id(id).map(Endpoint::Terminal),
            ["terminals", id, "resize"] => parse_id(id).map(Endpoint::Resize),
            ["terminals", id, "terminate"] => Some(Endpoint::Terminate(parse_id(id))),
            ["execute-command"] => Some(Endpoint::ExecuteCommand),
            _ => None,
        }
    }

    /// True when the endpoint takes `method` (besides `OPTIONS`).
    fn allows(self, method: &Method) -> bool {
        match self {
            Endpoint::Terminals => matches!(method, Method::Get | Method::Post),
            Endpoint::Page(_) | Endpoint::Status | Endpoint::Terminal(_) => *method == Method::Get,
            _ => *method == Method::Post,
        }
    }

    /// The `Allow` header for a 405.
    fn allow(self) -> &'static str {
        match self {
            Endpoint::Terminals => "GET, POST, OPTIONS",
            Endpoint::Page(_) | Endpoint::Status | Endpoint::Terminal(_) => "GET, OPTIONS",
            _ => "POST, OPTIONS",
        }
    }

    /// Endpoints a viewer may reach: the page, the status, the session list, and
    /// attaching (as a viewer).
    fn open_to_viewers(self, method: &Method) -> bool {
        match self {
            Endpoint::Page(_) | Endpoint::Status | Endpoint::Terminal(_) => true,
            Endpoint::Terminals => *method == Method::Get,
            _ => false,
        }
    }

    /// Endpoints that act or tell about sessions are subject to the Origin policy.
    fn checks_origin(self) -> bool {
        !matches!(self, Endpoint::Page(_) | Endpoint::Status)
    }

    /// Everything but the status probe and the page's files needs the token, when one is set.
    fn needs_token(self) -> bool {
        !matches!(self, Endpoint::Page(_) | Endpoint::Status)
    }
}

/// A session id: decimal digits that fit a `u32`. 0 and 1 are refused: they are never
/// a child's pid (1 is init, or this server in a container), and a runtime must never be
/// handed one it could turn into `kill(-1)` or `kill(0)`.
fn parse_id(s: &str) -> Option<u32> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let id: Option<u32> = digits.then(|| s.parse().ok()).flatten();
    id.filter(|id| *id > 1)
}

/// Routes a request: the full table of the module docs, with every policy check.
pub fn route(head: &RequestHead, body: &[u8], policy: &Policy) -> Result<Route, ApiError> {
    policy.check_host(head)?;
    let endpoint =
        Endpoint::find(&head.path).ok_or_else(|| ApiError::NotFound(head.path.clone()))?;
    if head.method == Method::Options {
        policy.check_origin(head)?;
        return Ok(Route::Preflight);
    }
    if !endpoint.allows(&head.method) {
        return Err(ApiError::MethodNotAllowed {
            allow: endpoint.allow(),
        });
    }
    if endpoint.checks_origin() {
        policy.check_origin(head)?;
    }
    let access = if endpoint.needs_token() {
        policy.check_token(head)?
    } else {
        Access::Full
    };
    if access == Access::View && !endpoint.open_to_viewers(&head.method) {
        return Err(ApiError::ViewOnly);
    }
    match endpoint {
        Endpoint::Page(asset) => Ok(Route::Page(asset)),
        Endpoint::Status => Ok(Route::Status),
        Endpoint::Terminals if head.method == Method::Get => Ok(Route::ListTerminals),
        Endpoint::Terminals => Ok(Route::CreateTerminal {
            size: parse_size(body)?,
        }),
        Endpoint::Terminal(id) => {
            let mut request = attach_request(head, id)?;
            if access == Access::View {
                request.policy = Some(AttachPolicy::View);
            }
            Ok(Route::Attach(request))
        }
        Endpoint::Resize(id) => Ok(Route::Resize {
            id,
            size: parse_size(body)?,
        }),
        Endpoint::Terminate(Some(id)) => Ok(Route::Terminate { id }),
        Endpoint::Terminate(None) => Ok(Route::TerminateUnknown),
        Endpoint::ExecuteCommand => parse_command(body),
    }
}

/// Builds the attach request from the upgrade headers and the query.
fn attach_request(head: &RequestHead, id: u32) -> Result<AttachRequest, ApiError> {
    let key = super::respond::upgrade_key(head)?;
    let since = head.query_param("since").map(parse_since).transpose()?;
    let control = head.query_param("control").map(parse_flag).transpose()?;
    let policy = head
        .query_param("attach")
        .map(|v| {
            AttachPolicy::parse(v.trim()).ok_or_else(|| ApiError::InvalidQuery {
                name: "attach",
                problem: format!("expected `shared`, `takeover` or `view`, got {v:?}"),
            })
        })
        .transpose()?;
    Ok(AttachRequest {
        id,
        since,
        control: since.is_some() || control.unwrap_or(false),
        policy,
        key: key.to_string(),
    })
}

/// Parses `?since=N`: a decimal stream offset.
fn parse_since(value: &str) -> Result<u64, ApiError> {
    value.trim().parse().map_err(|_| ApiError::InvalidQuery {
        name: "since",
        problem: format!("expected a byte offset (a non-negative integer), got {value:?}"),
    })
}

/// Parses `?control=`: `1`, `true`, `yes` or empty turn it on; `0`, `false`, `no` off.
fn parse_flag(value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ApiError::InvalidQuery {
            name: "control",
            problem: format!("expected 1 or 0, got {value:?}"),
        }),
    }
}

/// Parses a JSON object body; `example` shows the expected shape in the error.
fn json_object(body: &[u8], example: &str) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidBody(format!(
            "the body is empty; expected JSON like {example}"
        )));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::InvalidBody(format!(
            "expected a JSON object like {example}"
        ))),
        Err(err) => Err(ApiError::InvalidBody(format!(
            "not JSON ({err}); expected JSON like {example}"
        ))),
    }
}

/// Parses `{"cols":C,"rows":R}`, numbers or numeric strings.
fn parse_size(body: &[u8]) -> Result<TermSize, ApiError> {
    let map = json_object(body, r#"{"cols":80,"rows":24}"#)?;
    Ok(TermSize {
        cols: dimension(&map, "cols")?,
        rows: dimension(&map, "rows")?,
    })
}

/// One of `cols`/`rows`: a number or a numeric string (spaces trimmed), in `1..=MAX_DIMENSION`.
fn dimension(map: &Map<String, Value>, field: &'static str) -> Result<u16, ApiError> {
    let invalid = |problem: String| ApiError::InvalidField { field, problem };
    let range = || format!("must be between 1 and {MAX_DIMENSION}");
    let number: f64 = match map.get(field) {
        None | Some(Value::Null) => return Err(invalid("missing".into())),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| invalid(format!("expected a number, got {s:?}")))?,
        Some(other) => return Err(invalid(format!("expected a number, got {other}"))),
    };
    if number.fract() != 0.0 || number.is_nan() {
        return Err(invalid(format!("expected a whole number, got {number}")));
    }
    if !(1.0..=f64::from(MAX_DIMENSION)).contains(&number) {
        return Err(invalid(format!("{}, got {number}", range())));
    }
    // In range 1..=1000 and whole, so the conversion is exact.
    Ok(number as u16)
}

/// Parses `{"command":"...","cwd"?:"...","u_cwd"?:"..."}`.
fn parse_command(body: &[u8]) -> Result<Route, ApiError> {
    let map = json_object(body, r#"{"command":"ls","cwd":"/tmp"}"#)?;
    let command = match map.get("command") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => {
            return Err(ApiError::InvalidField {
                field: "command",
                problem: "missing".into(),
            })
        }
        Some(other) => {
            return Err(ApiError::InvalidField {
                field: "command",
                problem: format!("expected a string, got {other}"),
            })
        }
    };
    let cwd = optional_path(&map, "cwd")?.or(optional_path(&map, "u_cwd")?);
    Ok(Route::ExecuteCommand { command, cwd })
}

/// An optional string field; empty strings and `null` count as absent.
fn optional_path(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::InvalidField {
            field,
            problem: format!("expected a path string, got {other}"),
        }),
    }
}
