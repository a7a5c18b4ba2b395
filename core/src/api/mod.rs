//! The axs HTTP API as pure functions: routing, policy, bodies and answers.
//!
//! The runtime's whole request path is:
//!
//! ```text
//! parse_head(buf)            -> RequestHead           (http; 400 / 431)
//! check_body_len(head, pol)  -> how many bytes to read (400 / 411 / 413)
//! route(head, body, pol)     -> Route                  (400 / 401 / 403 / 404 / 405 / 426)
//! perform the route          -> Result<Response, ApiError> (404 unknown session, 503 limit, ...)
//! answer(head, pol, result)  -> Response with CORS headers; write to_bytes(), close unless 101
//! ```
//!
//! # Routes (compatible with axs 0.2)
//!
//! | request | route | answer |
//! |---|---|---|
//! | `GET /status` | [`Route::Status`] (no token needed) | [`status_ok`]: `200 OK` |
//! | `GET /`, `/app.js`, `/app.css`, `/LICENSES.txt` | [`Route::Page`] (no token needed) | [`Asset::respond`]: the browser page, gzip when accepted, ETag/304, CSP |
//! | `GET /terminals` | [`Route::ListTerminals`] | [`terminal_list`]: JSON array of sessions |
//! | `OPTIONS` any known path | [`Route::Preflight`] (no token needed) | [`preflight`]: 204 |
//! | `POST /terminals` `{"cols","rows"}` | [`Route::CreateTerminal`] | [`created`]: the pid as text |
//! | `GET /terminals/{id}` + WebSocket upgrade | [`Route::Attach`] | 404 if unknown, else [`AttachRequest::accept`]: 101 |
//! | `POST /terminals/{id}/resize` `{"cols","rows"}` | [`Route::Resize`] | [`success`] |
//! | `POST /terminals/{id}/terminate`, any body | [`Route::Terminate`] / [`Route::TerminateUnknown`] | [`success`] |
//! | `POST /execute-command` `{"command","cwd"?,"u_cwd"?}` | [`Route::ExecuteCommand`] | [`command_output`] / [`command_failed`] |
//!
//! `cols` and `rows` are numbers or numeric strings (surrounding spaces allowed), each
//! in `1..=1000` ([`MAX_DIMENSION`]). Session ids are decimal `u32` above 1 (the child's pid);
//! anything else in an id position is 404, except for terminate, which answers 2xx for
//! any id because a client shows an error dialog otherwise (CLIENTS.md).
//!
//! # Policy
//!
//! - Origin ([`Policy::origin_allowed`]): WebSocket upgrades, POSTs and preflights are
//!   refused with 403 when they carry an `Origin` that is not allowed. Requests without
//!   `Origin` (curl, native clients) pass. `--allow-any-origin` opens it.
//! - Host ([`Policy::check_host`]): on a loopback listener, a `Host` other than
//!   `127.0.0.1`, `localhost`, `[::1]` or the bound address (any port) is refused with 403
//!   before anything else (DNS rebinding); a request without `Host` passes.
//! - Token ([`Policy::check_token`]): when set, every route but `GET /status`, the page's
//!   files and the preflight needs it (401), as `Authorization: Bearer T`, `X-Axs-Token: T` or `?token=T`
//!   (for browsers' WebSocket, which cannot set headers).
//! - View token: a request carrying only it ([`Access::View`]) may `GET /status`, `GET /`
//!   and attach, always as a viewer ([`AttachPolicy::View`]); every other route is 403.
//!   `?attach=view` makes any client a viewer by choice.
//! - Body size ([`check_body_len`]): 413 beyond [`Policy::max_body`].
//!
//! Errors are [`ApiError`]s; [`ApiError::status`] maps each to its status in one place and
//! [`ApiError::error_response`] renders `{"error":"..."}`.

mod ansi;
mod error;
pub mod page;
mod policy;
mod respond;
mod route;

pub use ansi::strip_ansi;
pub use error::ApiError;
pub use page::{Asset, CONTENT_SECURITY_POLICY};
pub use policy::{check_body_len, cors_headers, Access, Policy, DEFAULT_MAX_BODY};
pub use respond::{
    answer, command_error, command_failed, command_output, created, preflight, status_ok, success,
    terminal_list, websocket_accept, websocket_accept_key, TerminalInfo,
};
pub use route::{
    route, AttachPolicy, AttachRequest, Route, TermSize, EXECUTE_COMMAND_TIMEOUT, MAX_DIMENSION,
    MAX_MESSAGE,
};

#[cfg(test)]
mod tests;
