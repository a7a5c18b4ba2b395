//! Who may call the API: Host and Origin policy, token checks, CORS headers, body limit.
//!
//! Invariants: a request with an `Origin` outside the allowed set never reaches a
//! WebSocket upgrade or a POST (unless `allow_any_origin`); on a loopback listener a
//! request naming a `Host` other than a loopback name or the bound address reaches no
//! route (DNS rebinding); when a token or a view token is set, no route but `GET /status`,
//! the page's static files and the CORS preflight runs without one of them; a request
//! carrying only the view token has [`Access::View`], never more; token comparison takes
//! the same time wherever the first difference is.

use std::net::{IpAddr, SocketAddr};

use super::ApiError;
use crate::http::RequestHead;

/// Default request body limit: 64 KiB, far above any body the clients send.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// The access policy of one listener.
#[derive(Clone, PartialEq, Eq)]
pub struct Policy {
    /// Accept any `Origin` (`--allow-any-origin`); CORS answers then say `*`.
    pub allow_any_origin: bool,
    /// The token every route but `GET /status` and preflights needs, when set.
    pub token: Option<String>,
    /// The view token (`--view-token`): a request carrying it may only watch
    /// ([`Access::View`]).
    pub view_token: Option<String>,
    /// The address the listener is bound to: on loopback, only loopback names and this
    /// address are accepted as `Host`.
    pub bound: SocketAddr,
    /// Origins allowed besides requests without `Origin` (exact, case-insensitive match).
    pub own_origins: Vec<String>,
    /// Largest accepted request body in bytes.
    pub max_body: usize,
}

impl std::fmt::Debug for Policy {
    /// Never prints the token itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("allow_any_origin", &self.allow_any_origin)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("view_token", &self.view_token.as_ref().map(|_| "<set>"))
            .field("bound", &self.bound)
            .field("own_origins", &self.own_origins)
            .field("max_body", &self.max_body)
            .finish()
    }
}

impl Policy {
    /// The default policy for a listener bound to `bound`: no token, own origins only.
    ///
    /// Allowed origins:
    /// - `http://127.0.0.1:PORT` and `http://localhost:PORT`: a page served by this
    ///   server, or any local page on the loopback port;
    /// - `http://<bound ip>:PORT` (IPv6 in brackets) when bound to a specific address,
    ///   for a page loaded from the LAN address (`-i`);
    /// - `https://localhost`: the origin of the editors' Android WebViews (CLIENTS.md);
    /// - `http://localhost`: the origin some WebViews (older Capacitor/Cordova setups)
    ///   give the same app pages.
    pub fn new(bound: SocketAddr) -> Policy {
        let port = bound.port();
        let mut candidates = vec![
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
        ];
        if !bound.ip().is_unspecified() {
            candidates.push(format!("http://{}", SocketAddr::new(bound.ip(), port)));
        }
        candidates.push("https://localhost".into());
        candidates.push("http://localhost".into());
        let mut own_origins: Vec<String> = Vec::new();
        for origin in candidates {
            if !own_origins.contains(&origin) {
                own_origins.push(origin);
            }
        }
        Policy {
            allow_any_origin: false,
            token: None,
            view_token: None,
            bound,
            own_origins,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// The default policy of a loopback listener on `port`.
    #[cfg(test)]
    fn loopback(port: u16) -> Policy {
        Policy::new(SocketAddr::new(
            std::net::IpAddr::from([127, 0, 0, 1]),
            port,
        ))
    }

    /// True when a request carrying this `Origin` value may upgrade or POST.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/');
        self.allow_any_origin
            || self
                .own_origins
                .iter()
                .any(|own| own.eq_ignore_ascii_case(origin))
    }

    /// Refuses (403) a request whose `Origin` header is present and not allowed.
    pub fn check_origin(&self, head: &RequestHead) -> Result<(), ApiError> {
        match head.header("origin") {
            Some(origin) if !self.origin_allowed(origin) => {
                Err(ApiError::OriginNotAllowed(origin.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// What the request may do, from the tokens it carries; 401 when a token or view
    /// token is set and it carries neither.
    ///
    /// Accepted: `Authorization: Bearer T`, `X-Axs-Token: T`, query `?token=T` (for either
    /// token). The full token wins over the view token; without a full token configured, a
    /// request carrying no token has full rights (a loopback listener without `--token`)
    /// and one carrying the view token is a viewer.
    pub fn check_token(&self, head: &RequestHead) -> Result<Access, ApiError> {
        let offered = offered_tokens(head);
        if self
            .token
            .as_deref()
            .is_some_and(|t| any_matches(&offered, t))
        {
            return Ok(Access::Full);
        }
        if self
            .view_token
            .as_deref()
            .is_some_and(|v| any_matches(&offered, v))
        {
            return Ok(Access::View);
        }
        if self.token.is_none() {
            return Ok(Access::Full);
        }
        Err(ApiError::Unauthorized)
    }

    /// Refuses (403) a request to a loopback listener whose `Host` is not `127.0.0.1`,
    /// `localhost`, `[::1]` or the bound address, with any port: a web page that rebinds
    /// its own name to 127.0.0.1 sends its name, never one of these.
    ///
    /// A request without `Host` passes: only HTTP/1.0 tools omit it, and browsers (the
    /// only way a rebinding page reaches us) always send it.
    pub fn check_host(&self, head: &RequestHead) -> Result<(), ApiError> {
        if !self.bound.ip().is_loopback() {
            return Ok(());
        }
        let Some(host) = head.header("host") else {
            return Ok(());
        };
        if self.host_allowed(host) {
            Ok(())
        } else {
            Err(ApiError::HostNotAllowed(host.to_string()))
        }
    }

    /// True when `host` (a `Host` header value) names this loopback listener.
    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host.trim());
        if name.eq_ignore_ascii_case("localhost") {
            return true;
        }
        let literal = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        match literal.parse::<IpAddr>() {
            Ok(ip) => {
                ip == self.bound.ip()
                    || ip == IpAddr::from([127, 0, 0, 1])
                    || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
            }
            Err(_) => false,
        }
    }
}

/// What a request may do, decided by [`Policy::check_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Everything the API offers.
    Full,
    /// Watch only: `GET /status`, `GET /` and attaching as a viewer.
    View,
}

/// The tokens a request offers, wherever it may carry them.
fn offered_tokens(head: &RequestHead) -> [Option<&str>; 3] {
    let bearer = head
        .header("authorization")
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    [
        bearer,
        head.header("x-axs-token"),
        head.query_param("token"),
    ]
}

/// True when any offered token equals `token`. Every candidate is compared, so the time
/// does not reveal which one was sent.
fn any_matches(offered: &[Option<&str>], token: &str) -> bool {
    offered
        .iter()
        .flatten()
        .fold(false, |ok, t| ct_eq(t.as_bytes(), token.as_bytes()) | ok)
}

/// The host part of a `Host` value: `[::1]:80` gives `[::1]`, `localhost:80` `localhost`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

/// The CORS headers an answer to this request carries.
///
/// An allowed `Origin` gets `Access-Control-Allow-Origin` (the origin itself, or `*` with
/// `allow_any_origin`); whenever the request had an `Origin`, `Vary: Origin` tells caches
/// the answer depends on it. No `Origin`, or a refused one: no allow header.
pub fn cors_headers(head: &RequestHead, policy: &Policy) -> Vec<(String, String)> {
    let Some(origin) = head.header("origin") else {
        return Vec::new();
    };
    let mut headers = Vec::new();
    if policy.allow_any_origin {
        headers.push(("Access-Control-Allow-Origin".into(), "*".into()));
    } else if policy.origin_allowed(origin) {
        headers.push(("Access-Control-Allow-Origin".into(), origin.to_string()));
    }
    headers.push(("Vary".into(), "Origin".into()));
    headers
}

/// How many body bytes to read for this request: 0 without a body, 413 when above
/// `policy.max_body`, 411 for chunked bodies, 400 for a malformed length.
///
/// The runtime calls it before reading the body, so an oversized body is never read.
pub fn check_body_len(head: &RequestHead, policy: &Policy) -> Result<usize, ApiError> {
    if is_terminate(head) {
        // Terminate answers 2xx whatever the body (CLIENTS.md): it is never read, so no
        // length, chunking or size can refuse it; the runtime drains it before closing.
        return Ok(0);
    }
    let len = head.content_length()?.unwrap_or(0);
    if len > policy.max_body {
        return Err(ApiError::BodyTooLarge {
            limit: policy.max_body,
        });
    }
    Ok(len)
}

/// `POST /terminals/{anything}/terminate`.
fn is_terminate(head: &RequestHead) -> bool {
    head.method == crate::http::Method::Post
        && head.path.starts_with("/terminals/")
        && head.path.ends_with("/terminate")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::http::Method;

    fn head_with(headers: &[(&str, &str)], query: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: Method::Post,
            path: "/terminals".into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn own_origins_for_loopback() {
        let policy = Policy::loopback(8767);
        assert_eq!(
            policy.own_origins,
            [
                "http://127.0.0.1:8767",
                "http://localhost:8767",
                "https://localhost",
                "http://localhost"
            ]
        );
    }

    #[test]
    fn own_origins_for_a_lan_address() {
        let policy = Policy::new("192.168.1.20:9000".parse().unwrap());
        assert!(policy.origin_allowed("http://192.168.1.20:9000"));
        assert!(!policy.origin_allowed("http://192.168.1.21:9000"));
        let policy = Policy::new("[fe80::1]:9000".parse().unwrap());
        assert!(policy.origin_allowed("http://[fe80::1]:9000"));
        let policy = Policy::new("0.0.0.0:9000".parse().unwrap());
        assert!(!policy.origin_allowed("http://0.0.0.0:9000"));
    }

    #[test]
    fn origin_cases() {
        let policy = Policy::loopback(8767);
        assert!(policy.check_origin(&head_with(&[], &[])).is_ok());
        for ok in [
            "https://localhost",
            "HTTPS://LOCALHOST",
            "https://localhost/",
            "http://localhost",
            "http://127.0.0.1:8767",
            "http://localhost:8767",
        ] {
            assert!(
                policy
                    .check_origin(&head_with(&[("origin", ok)], &[]))
                    .is_ok(),
                "{ok}"
            );
        }
        for refused in [
            "https://evil.example",
            "null",
            "http://127.0.0.1:8768",
            "https://localhost.evil.example",
            "",
        ] {
            let err = policy
                .check_origin(&head_with(&[("origin", refused)], &[]))
                .unwrap_err();
            assert_eq!(err.status(), 403, "{refused}");
        }
    }

    #[test]
    fn allow_any_origin_opens_it() {
        let policy = Policy {
            allow_any_origin: true,
            ..Policy::loopback(8767)
        };
        let head = head_with(&[("origin", "https://evil.example")], &[]);
        assert!(policy.check_origin(&head).is_ok());
        assert_eq!(
            cors_headers(&head, &policy),
            [
                ("Access-Control-Allow-Origin".to_string(), "*".to_string()),
                ("Vary".to_string(), "Origin".to_string())
            ]
        );
    }

    #[test]
    fn cors_headers_echo_allowed_origins_only() {
        let policy = Policy::loopback(8767);
        let head = head_with(&[("origin", "https://localhost")], &[]);
        assert_eq!(
            cors_headers(&head, &policy),
            [
                (
                    "Access-Control-Allow-Origin".to_string(),
                    "https://localhost".to_string()
                ),
                ("Vary".to_string(), "Origin".to_string())
            ]
        );
        let head = head_with(&[("origin", "https://evil.example")], &[]);
        assert_eq!(
            cors_headers(&head, &policy),
            [("Vary".to_string(), "Origin".to_string())]
        );
        assert!(cors_headers(&head_with(&[], &[]), &policy).is_empty());
    }

    #[test]
    fn no_token_configured_means_open() {
        assert!(Policy::loopback(1)
            .check_token(&head_with(&[], &[]))
            .is_ok());
    }

    #[test]
    fn token_via_header_or_query() {
        let policy = Policy {
            token: Some("s3cret".into()),
            ..Policy::loopback(8767)
        };
        let accepted = [
            head_with(&[("authorization", "Bearer s3cret")], &[]),
            head_with(&[("authorization", "bearer  s3cret")], &[]),
            head_with(&[("x-axs-token", "s3cret")], &[]),
            head_with(&[], &[("token", "s3cret")]),
            head_with(&[("x-axs-token", "wrong")], &[("token", "s3cret")]),
        ];
        for head in accepted {
            assert!(policy.check_token(&head).is_ok(), "{head:?}");
        }
        let refused = [
            head_with(&[], &[]),
            head_with(&[("authorization", "Basic s3cret")], &[]),
            head_with(&[("authorization", "Bearer s3cre")], &[]),
            head_with(&[("x-axs-token", "s3cret2")], &[]),
            head_with(&[], &[("token", "")]),
        ];
        for head in refused {
            assert_eq!(
                policy.check_token(&head).unwrap_err().status(),
                401,
                "{head:?}"
            );
        }
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abc\0"));
        assert!(!ct_eq(b"", b"a"));
    }

    #[test]
    fn body_limit() {
        let policy = Policy::loopback(8767);
        assert_eq!(check_body_len(&head_with(&[], &[]), &policy).unwrap(), 0);
        let head = head_with(&[("content-length", "65536")], &[]);
        assert_eq!(check_body_len(&head, &policy).unwrap(), 65536);
        let head = head_with(&[("content-length", "65537")], &[]);
        let err = check_body_len(&head, &policy).unwrap_err();
        assert_eq!(err.status(), 413);
        let head = head_with(&[("transfer-encoding", "chunked")], &[]);
        assert_eq!(check_body_len(&head, &policy).unwrap_err().status(), 411);
    }

    #[test]
    fn debug_hides_the_token() {
        let policy = Policy {
            token: Some("s3cret".into()),
            view_token: Some("v13w".into()),
            ..Policy::loopback(8767)
        };
        let debug = format!("{policy:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("v13w"),
            "{debug}"
        );
    }
}
