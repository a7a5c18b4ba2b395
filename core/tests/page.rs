//! The browser page and the session list, through `Server::request` as a runtime calls it.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use axs_core::api::Policy;
use axs_core::frame::ExitStatus;
use axs_core::http::{parse_head, HeadParse, RequestHead, Response};
use axs_core::server::{Reply, Server, ServerConfig};
use axs_core::time::Time;
use serde_json::Value;

fn server(token: Option<&str>) -> Server {
    let bound: SocketAddr = "127.0.0.1:8767".parse().unwrap();
    let policy = Policy {
        token: token.map(String::from),
        ..Policy::new(bound)
    };
    Server::new(ServerConfig::default(), policy)
}

fn head(request_line: &str, headers: &str) -> RequestHead {
    let raw = format!("{request_line} HTTP/1.1\r\nHost: 127.0.0.1:8767\r\n{headers}\r\n");
    match parse_head(raw.as_bytes()).unwrap() {
        HeadParse::Complete { head, .. } => head,
        HeadParse::Partial => panic!("incomplete head: {raw}"),
    }
}

fn respond(
    server: &mut Server,
    request_line: &str,
    headers: &str,
    body: &str,
    now: Time,
) -> Response {
    match server.request(&head(request_line, headers), body.as_bytes(), now) {
        Reply::Respond(response) => response,
        other => panic!("{request_line}: expected an answer, got {other:?}"),
    }
}

fn create(server: &mut Server, pid: u32, body: &str, headers: &str, now: Time) {
    let reply = server.request(&head("POST /terminals", headers), body.as_bytes(), now);
    let Reply::Spawn(reservation) = reply else {
        panic!("expected a spawn, got {reply:?}");
    };
    assert_eq!(server.spawned(reservation, pid, now).status, 200);
}

fn list(server: &mut Server, headers: &str, now: Time) -> Vec<Value> {
    let response = respond(server, "GET /terminals", headers, "", now);
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
    match serde_json::from_slice(&response.body).unwrap() {
        Value::Array(items) => items,
        other => panic!("not a list: {other}"),
    }
}

#[test]
fn the_list_tells_size_clients_age_and_exit() {
    let mut server = server(None);
    assert!(list(&mut server, "", Time::ZERO).is_empty());
    create(
        &mut server,
        100,
        r#"{"cols":120,"rows":40}"#,
        "",
        Time::from_millis(1_000),
    );
    create(
        &mut server,
        200,
        r#"{"cols":"80","rows":"24"}"#,
        "",
        Time::from_millis(5_000),
    );
    let resized = respond(
        &mut server,
        "POST /terminals/200/resize",
        "",
        r#"{"cols":50,"rows":10}"#,
        Time::from_millis(6_000),
    );
    assert_eq!(resized.status, 200);
    let ws = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let attach = server.request(
        &head("GET /terminals/100", ws),
        b"",
        Time::from_millis(6_000),
    );
    assert!(matches!(attach, Reply::Upgrade { .. }), "{attach:?}");
    server.pty_eof(200, Time::from_millis(7_000));
    server.child_exited(200, ExitStatus::Code(3), Time::from_millis(7_000));

    let items = list(&mut server, "", Time::from_millis(11_500));
    assert_eq!(items.len(), 2);
    let first = &items[0];
    assert_eq!(first["id"], 100);
    assert_eq!(
        (first["cols"].as_u64(), first["rows"].as_u64()),
        (Some(120), Some(40))
    );
    assert_eq!(first["clients"], 1);
    assert_eq!(first["started_secs_ago"], 10);
    assert_eq!(first["exited"], false);
    assert!(first["exit_code"].is_null() && first["signal"].is_null());
    let second = &items[1];
    assert_eq!(second["id"], 200);
    assert_eq!(
        (second["cols"].as_u64(), second["rows"].as_u64()),
        (Some(50), Some(10))
    );
    assert_eq!(second["clients"], 0);
    assert_eq!(second["started_secs_ago"], 6);
    assert_eq!(second["exited"], true);
    assert_eq!(second["exit_code"], 3);
    assert!(second["signal"].is_null());
}

#[test]
fn a_signal_death_is_named_in_the_list() {
    let mut server = server(None);
    create(&mut server, 300, r#"{"cols":80,"rows":24}"#, "", Time::ZERO);
    server.child_exited(300, ExitStatus::Signal("SIGKILL".into()), Time::ZERO);
    let items = list(&mut server, "", Time::ZERO);
    assert_eq!(items[0]["exited"], true, "draining counts as exited");
    assert_eq!(items[0]["signal"], "SIGKILL");
    assert!(items[0]["exit_code"].is_null());
}

#[test]
fn the_list_needs_the_token_the_page_does_not() {
    let mut server = server(Some("s3cret"));
    let refused = respond(&mut server, "GET /terminals", "", "", Time::ZERO);
    assert_eq!(refused.status, 401);
    assert!(list(&mut server, "X-Axs-Token: s3cret\r\n", Time::ZERO).is_empty());
    let by_query = respond(
        &mut server,
        "GET /terminals?token=s3cret",
        "",
        "",
        Time::ZERO,
    );
    assert_eq!(by_query.status, 200);
    for path in ["/", "/app.js", "/app.css", "/LICENSES.txt"] {
        let page = respond(&mut server, &format!("GET {path}"), "", "", Time::ZERO);
        assert_eq!(page.status, 200, "{path}");
    }
}

#[test]
fn the_page_is_served_compressed_with_a_validator_and_its_policy() {
    let mut server = server(None);
    let plain = respond(&mut server, "GET /", "", "", Time::ZERO);
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(plain
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
    assert!(String::from_utf8_lossy(&plain.body).contains("app.js"));

    let gz = respond(
        &mut server,
        "GET /app.js",
        "Accept-Encoding: gzip, br\r\n",
        "",
        Time::ZERO,
    );
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(
        gz.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let etag = gz.header("etag").unwrap().to_string();
    let revalidate = format!("Accept-Encoding: gzip\r\nIf-None-Match: {etag}\r\n");
    let not_modified = respond(&mut server, "GET /app.js", &revalidate, "", Time::ZERO);
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    let bytes = not_modified.to_bytes();
    assert!(
        !String::from_utf8_lossy(&bytes).contains("Content-Length"),
        "a 304 has no body length"
    );

    // A page served by this server may call it: its origin is allowed.
    let own = respond(
        &mut server,
        "GET /terminals",
        "Origin: http://127.0.0.1:8767\r\n",
        "",
        Time::ZERO,
    );
    assert_eq!(own.status, 200);
}
