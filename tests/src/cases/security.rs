//! Origin checks and the auth token.

use std::path::Path;

use crate::http::Response;
use crate::server::Server;
use crate::ws::{Open, Refused, Ws};

const EVIL: &str = "https://evil.example";

fn ws_status(server: &Server, path: &str, headers: Vec<(&str, String)>) -> u16 {
    match Ws::open(
        server.port,
        path,
        Open {
            headers,
            recv_buffer: None,
        },
    ) {
        Ok(_) => 101,
        Err(Refused::Status(s, _)) => s,
        Err(e) => panic!("WebSocket {path}: {e:?}\n{}", server.proc.context()),
    }
}

fn post(server: &Server, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    server.request("POST", path, &h, Some(body.as_bytes()))
}

const SIZE: &str = r#"{"cols":80,"rows":24}"#;

/// Upgrades and POSTs from a foreign origin are refused with 403; the local ones work.
pub fn origin_checks(bin: &Path) {
    let server = Server::start(bin, &["-c", "sh"], &[]);
    let pid = server.create_terminal(80, 24);
    let path = format!("/terminals/{pid}");
    let own = server.origin();
    let s = ws_status(&server, &path, vec![("Origin", EVIL.into())]);
    assert_eq!(
        s, 403,
        "WebSocket upgrade from {EVIL} must be refused with 403"
    );
    for (post_path, body) in [
        ("/terminals", SIZE),
        ("/execute-command", r#"{"command":"echo FOUND"}"#),
        (&format!("/terminals/{pid}/resize") as &str, SIZE),
    ] {
        let r = post(&server, post_path, &[("Origin", EVIL)], body);
        assert_eq!(
            r.status,
            403,
            "POST {post_path} from {EVIL}: expected 403, got {}",
            r.describe()
        );
    }
    for origin in [None, Some("https://localhost"), Some(own.as_str())] {
        let headers: Vec<(&str, String)> = origin
            .map(|o| ("Origin", o.to_string()))
            .into_iter()
            .collect();
        let s = ws_status(&server, &path, headers);
        assert_eq!(
            s, 101,
            "WebSocket upgrade with Origin {origin:?} must be accepted"
        );
        let h: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        let r = post(&server, "/terminals", &h, SIZE);
        server.expect_pid(&r);
    }
    server.assert_alive("origin checks");
}

/// `--allow-any-origin` lets a foreign origin in.
pub fn origin_allow_any(bin: &Path) {
    let server = Server::start(bin, &["-c", "sh", "--allow-any-origin"], &[]);
    let r = post(&server, "/terminals", &[("Origin", EVIL)], SIZE);
    let pid = server.expect_pid(&r);
    let s = ws_status(
        &server,
        &format!("/terminals/{pid}"),
        vec![("Origin", EVIL.into())],
    );
    assert_eq!(
        s, 101,
        "with --allow-any-origin a WebSocket from {EVIL} must be accepted"
    );
}

fn check_token(server: &Server, token: &str) {
    let status = server.get("/status");
    assert!(
        status.is_success(),
        "GET /status must not need the token: {}",
        status.describe()
    );
    let r = post(server, "/terminals", &[], SIZE);
    assert_eq!(
        r.status,
        401,
        "POST /terminals without the token: expected 401, got {}",
        r.describe()
    );
    let r = post(
        server,
        "/terminals",
        &[("Authorization", "Bearer wrong")],
        SIZE,
    );
    assert_eq!(
        r.status,
        401,
        "POST /terminals with a wrong token: expected 401, got {}",
        r.describe()
    );
    let bearer = format!("Bearer {token}");
    let r = post(server, "/terminals", &[("Authorization", &bearer)], SIZE);
    let pid = server.expect_pid(&r);
    let r = post(server, &format!("/terminals?token={token}"), &[], SIZE);
    server.expect_pid(&r);
    let path = format!("/terminals/{pid}");
    let s = ws_status(server, &path, vec![("Origin", "https://localhost".into())]);
    assert_eq!(s, 401, "WebSocket without the token: expected 401");
    let s = ws_status(server, &format!("{path}?token={token}"), vec![]);
    assert_eq!(s, 101, "WebSocket with ?token= must be accepted");
    let s = ws_status(server, &path, vec![("Authorization", bearer.clone())]);
    assert_eq!(
        s, 101,
        "WebSocket with Authorization: Bearer must be accepted"
    );
    let r = server.request(
        "POST",
        &format!("/terminals/{pid}/resize"),
        &[("Content-Type", "application/json")],
        Some(SIZE.as_bytes()),
    );
    assert_eq!(
        r.status,
        401,
        "resize without the token: expected 401, got {}",
        r.describe()
    );
}

/// `--token T`: everything but /status needs `Authorization: Bearer T` or `?token=T`.
pub fn token_required(bin: &Path) {
    let server = Server::start(bin, &["-c", "sh", "--token", "s3cret-T"], &[]);
    check_token(&server, "s3cret-T");
}

/// `AXS_TOKEN` works like `--token`.
pub fn token_from_env(bin: &Path) {
    let server = Server::start(bin, &["-c", "sh"], &[("AXS_TOKEN", "env-T0ken")]);
    check_token(&server, "env-T0ken");
}
