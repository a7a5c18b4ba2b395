//! Every route and every error answer, end to end from raw request bytes.
#![allow(clippy::unwrap_used)] // tests may unwrap

use proptest::prelude::*;

use super::*;
use crate::http::{parse_head, HeadParse, RequestHead};

const WS: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

fn policy() -> Policy {
    Policy::new("127.0.0.1:8767".parse().unwrap())
}

fn with_token() -> Policy {
    Policy {
        token: Some("s3cret".into()),
        ..policy()
    }
}

/// Parses `METHOD TARGET` plus extra header lines into a head.
fn head(request_line: &str, headers: &str) -> RequestHead {
    let raw = format!("{request_line} HTTP/1.1\r\nHost: 127.0.0.1:8767\r\n{headers}\r\n");
    match parse_head(raw.as_bytes()) {
        Ok(HeadParse::Complete { head, .. }) => head,
        other => panic!("{raw:?} did not parse: {other:?}"),
    }
}

fn route_of(request_line: &str, headers: &str, body: &str) -> Result<Route, ApiError> {
    route(&head(request_line, headers), body.as_bytes(), &policy())
}

fn status_of(request_line: &str, headers: &str, body: &str) -> u16 {
    match route_of(request_line, headers, body) {
        Ok(route) => panic!("expected an error, got {route:?}"),
        Err(err) => err.status(),
    }
}

fn message_of(request_line: &str, headers: &str, body: &str) -> String {
    route_of(request_line, headers, body)
        .unwrap_err()
        .to_string()
}

fn size(cols: u16, rows: u16) -> TermSize {
    TermSize { cols, rows }
}

// ---- routes ----

#[test]
fn status_route() {
    assert_eq!(route_of("GET /status", "", ""), Ok(Route::Status));
    assert_eq!(route_of("GET /status/", "", ""), Ok(Route::Status));
    assert_eq!(route_of("GET /status?x=1", "", ""), Ok(Route::Status));
    // No token needed, and a foreign page may poll it (it learns nothing).
    let evil = "Origin: https://evil.example\r\n";
    assert_eq!(
        route(&head("GET /status", evil), b"", &with_token()),
        Ok(Route::Status)
    );
}

#[test]
fn page_routes_need_no_token() {
    let index = page::find("/").unwrap();
    assert_eq!(route_of("GET /", "", ""), Ok(Route::Page(index)));
    assert_eq!(route_of("GET /index.html", "", ""), Ok(Route::Page(index)));
    // The page is loaded again on reload, after it took the token out of the address.
    for path in ["/", "/app.js", "/app.css", "/LICENSES.txt"] {
        let asset = page::find(path).unwrap();
        let request = head(&format!("GET {path}"), "");
        assert_eq!(route(&request, b"", &with_token()), Ok(Route::Page(asset)));
    }
    assert_eq!(status_of("POST /", "", ""), 405);
    assert_eq!(status_of("GET /app.js.gz", "", ""), 404);
}

#[test]
fn list_terminals_route_needs_the_token() {
    assert_eq!(route_of("GET /terminals", "", ""), Ok(Route::ListTerminals));
    let list = |headers: &str| route(&head("GET /terminals", headers), b"", &with_token());
    assert_eq!(list("").unwrap_err().status(), 401);
    assert_eq!(list("X-Axs-Token: s3cret\r\n"), Ok(Route::ListTerminals));
    let evil = "Origin: https://evil.example\r\nX-Axs-Token: s3cret\r\n";
    assert_eq!(list(evil).unwrap_err().status(), 403);
}

#[test]
fn create_terminal_with_numbers_and_strings() {
    let create = |body: &str| route_of("POST /terminals", "", body);
    let expected = Ok(Route::CreateTerminal { size: size(80, 24) });
    assert_eq!(create(r#"{"cols":80,"rows":24}"#), expected);
    assert_eq!(create(r#"{"cols":"80","rows":"24"}"#), expected);
    assert_eq!(
        create(r#"{"cols":" 80 ","rows":24.0,"extra":true}"#),
        expected
    );
    assert_eq!(create(r#" {"rows":24,"cols":80} "#), expected);
    assert_eq!(
        create(r#"{"cols":1,"rows":1000}"#),
        Ok(Route::CreateTerminal {
            size: size(1, 1000)
        })
    );
}

#[test]
fn create_terminal_bad_bodies_name_the_field() {
    let cases = [
        (r#"{"cols":-1,"rows":24}"#, "cols"),
        (r#"{"cols":70000,"rows":24}"#, "cols"),
        (r#"{"cols":"abc","rows":24}"#, "cols"),
        (r#"{"cols":0,"rows":24}"#, "cols"),
        (r#"{"cols":1001,"rows":24}"#, "cols"),
        (r#"{"cols":80.5,"rows":24}"#, "cols"),
        (r#"{"cols":true,"rows":24}"#, "cols"),
        (r#"{"cols":null,"rows":24}"#, "cols"),
        (r#"{"cols":[80],"rows":24}"#, "cols"),
        (r#"{"cols":"NaN","rows":24}"#, "cols"),
        (r#"{"cols":"inf","rows":24}"#, "cols"),
        (r#"{"cols":1e400,"rows":24}"#, "JSON"),
        (r#"{"cols":80}"#, "rows"),
        (r#"{"rows":24}"#, "cols"),
        (r#"{"cols":80,"rows":"-3"}"#, "rows"),
        ("", "empty"),
        ("   ", "empty"),
        ("not json", "JSON"),
        ("[80,24]", "object"),
        ("{\"cols\":80", "JSON"),
    ];
    for (body, needle) in cases {
        let err = route_of("POST /terminals", "", body).unwrap_err();
        assert_eq!(err.status(), 400, "{body}");
        assert!(err.to_string().contains(needle), "{body}: {err}");
    }
}

#[test]
fn create_terminal_wrong_method() {
    let err = route_of("PUT /terminals", "", "").unwrap_err();
    assert_eq!(
        err,
        ApiError::MethodNotAllowed {
            allow: "GET, POST, OPTIONS"
        }
    );
    assert_eq!(
        err.error_response(&[]).header("allow"),
        Some("GET, POST, OPTIONS")
    );
    assert_eq!(status_of("PUT /terminals", "", ""), 405);
    assert_eq!(status_of("HEAD /status", "", ""), 405);
    assert_eq!(status_of("BREW /status", "", ""), 405);
}

#[test]
fn attach_route() {
    let expected = AttachRequest {
        id: 1234,
        since: None,
        control: false,
        policy: None,
        key: "dGhlIHNhbXBsZSBub25jZQ==".into(),
    };
    assert_eq!(
        route_of("GET /terminals/1234", WS, ""),
        Ok(Route::Attach(expected.clone()))
    );
    let with = |query: &str| match route_of(&format!("GET /terminals/1234?{query}"), WS, "") {
        Ok(Route::Attach(request)) => request,
        other => panic!("{query}: {other:?}"),
    };
    let since = with("since=4096");
    assert_eq!((since.since, since.control), (Some(4096), true));
    assert!(with("control=1").control);
    assert!(with("control").control);
    assert!(!with("control=0").control);
    assert!(with("since=0&control=0").control, "since implies control");
    assert_eq!(with("attach=takeover").policy, Some(AttachPolicy::Takeover));
    assert_eq!(with("attach=shared").policy, Some(AttachPolicy::Shared));
    assert_eq!(with("attach=view").policy, Some(AttachPolicy::View));
}

#[test]
fn attach_errors() {
    assert_eq!(status_of("GET /terminals/7?since=-1", WS, ""), 400);
    assert!(message_of("GET /terminals/7?since=x", WS, "").contains("since"));
    assert!(message_of("GET /terminals/7?attach=steal", WS, "").contains("attach"));
    assert!(message_of("GET /terminals/7?control=maybe", WS, "").contains("control"));
    // Not an upgrade: 400, with a message saying what is missing.
    assert_eq!(
        route_of("GET /terminals/7", "", ""),
        Err(ApiError::NotAWebSocket)
    );
    let no_key = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
    assert_eq!(status_of("GET /terminals/7", no_key, ""), 400);
    let old = WS.replace("Version: 13", "Version: 8");
    assert_eq!(status_of("GET /terminals/7", &old, ""), 426);
    // Ids are decimal u32, anything else names no session.
    for id in [
        "abc",
        "-1",
        "+1",
        "4294967296",
        "1.0",
        "0x10",
        "%2B1",
        "0",
        "1",
        "00",
    ] {
        assert_eq!(
            status_of(&format!("GET /terminals/{id}"), WS, ""),
            404,
            "{id}"
        );
    }
    assert_eq!(status_of("POST /terminals/7", WS, ""), 405);
}

#[test]
fn percent_encoded_ids_are_decoded() {
    assert!(
        matches!(route_of("GET /terminals/%31%32", WS, ""), Ok(Route::Attach(r)) if r.id == 12)
    );
}

#[test]
fn resize_route() {
    let route = route_of(
        "POST /terminals/77/resize",
        "",
        r#"{"cols":"132","rows":"43"}"#,
    );
    assert_eq!(
        route,
        Ok(Route::Resize {
            id: 77,
            size: size(132, 43)
        })
    );
    assert_eq!(
        status_of("POST /terminals/77/resize", "", r#"{"cols":0,"rows":1}"#),
        400
    );
    assert_eq!(status_of("POST /terminals/77/resize", "", ""), 400);
    assert_eq!(
        status_of("POST /terminals/x/resize", "", r#"{"cols":1,"rows":1}"#),
        404
    );
    assert_eq!(status_of("GET /terminals/77/resize", "", ""), 405);
}

#[test]
fn terminate_takes_any_body_and_any_id() {
    for body in ["", "garbage", "{}", r#"{"cols":"x"}"#, "\u{0}\u{1}"] {
        assert_eq!(
            route_of("POST /terminals/42/terminate", "", body),
            Ok(Route::Terminate { id: 42 }),
            "{body:?}"
        );
    }
    for id in ["abc", "", "99999999999", "-5", "0", "1"] {
        assert_eq!(
            route_of(&format!("POST /terminals/{id}/terminate"), "", "junk"),
            Ok(Route::TerminateUnknown),
            "{id:?}"
        );
    }
    assert_eq!(status_of("GET /terminals/42/terminate", "", ""), 405);
}

#[test]
fn execute_command_route() {
    let run = |body: &str| route_of("POST /execute-command", "", body);
    let expected = |cwd: Option<&str>| {
        Ok(Route::ExecuteCommand {
            command: "command -v git".into(),
            cwd: cwd.map(String::from),
        })
    };
    assert_eq!(run(r#"{"command":"command -v git"}"#), expected(None));
    assert_eq!(
        run(r#"{"command":"command -v git","cwd":"/tmp"}"#),
        expected(Some("/tmp"))
    );
    assert_eq!(
        run(r#"{"command":"command -v git","u_cwd":"/u"}"#),
        expected(Some("/u"))
    );
    assert_eq!(
        run(r#"{"command":"command -v git","cwd":"/c","u_cwd":"/u"}"#),
        expected(Some("/c"))
    );
    assert_eq!(
        run(r#"{"command":"command -v git","cwd":"","u_cwd":"/u"}"#),
        expected(Some("/u"))
    );
    assert_eq!(
        run(r#"{"command":"command -v git","cwd":null}"#),
        expected(None)
    );
}

#[test]
fn execute_command_errors() {
    assert!(message_of("POST /execute-command", "", "{}").contains("command"));
    assert!(message_of("POST /execute-command", "", r#"{"command":1}"#).contains("command"));
    assert!(message_of("POST /execute-command", "", r#"{"command":"x","cwd":5}"#).contains("cwd"));
    assert_eq!(status_of("POST /execute-command", "", "ls"), 400);
    assert_eq!(status_of("POST /execute-command", "", ""), 400);
    assert_eq!(status_of("GET /execute-command", "", ""), 405);
}

#[test]
fn unknown_paths_are_404() {
    for path in [
        "/nope",
        "/status/x",
        "/terminals/7/2",
        "/terminals/7/resize/x",
        "//status",
        "/Status",
    ] {
        let err = route_of(&format!("GET {path}"), "", "").unwrap_err();
        assert_eq!(err.status(), 404, "{path}");
    }
    assert_eq!(
        status_of("OPTIONS /nope", "Origin: https://localhost\r\n", ""),
        404
    );
}

// ---- policy in routing ----

#[test]
fn origin_policy_on_upgrades_and_posts() {
    let allowed = [
        "",
        "Origin: https://localhost\r\n",
        "Origin: http://127.0.0.1:8767\r\n",
    ];
    for origin in allowed {
        let headers = format!("{WS}{origin}");
        assert!(
            route_of("GET /terminals/7", &headers, "").is_ok(),
            "{origin}"
        );
        assert!(
            route_of("POST /terminals/7/terminate", origin, "").is_ok(),
            "{origin}"
        );
    }
    let evil = "Origin: https://evil.example\r\n";
    assert_eq!(
        status_of("GET /terminals/7", &format!("{WS}{evil}"), ""),
        403
    );
    assert_eq!(
        status_of("POST /terminals", evil, r#"{"cols":1,"rows":1}"#),
        403
    );
    assert_eq!(status_of("POST /terminals/7/terminate", evil, ""), 403);
    assert_eq!(
        status_of("POST /execute-command", evil, r#"{"command":"id"}"#),
        403
    );
    assert!(message_of("POST /terminals/7/terminate", evil, "").contains("https://evil.example"));
    let open = Policy {
        allow_any_origin: true,
        ..policy()
    };
    let h = head("POST /execute-command", evil);
    assert!(route(&h, br#"{"command":"id"}"#, &open).is_ok());
}

#[test]
fn token_policy() {
    let policy = with_token();
    let create = |headers: &str, target: &str| {
        route(
            &head(&format!("POST {target}"), headers),
            br#"{"cols":1,"rows":1}"#,
            &policy,
        )
    };
    assert_eq!(create("", "/terminals").unwrap_err().status(), 401);
    assert_eq!(
        create("X-Axs-Token: nope\r\n", "/terminals")
            .unwrap_err()
            .status(),
        401
    );
    assert!(create("Authorization: Bearer s3cret\r\n", "/terminals").is_ok());
    assert!(create("X-Axs-Token: s3cret\r\n", "/terminals").is_ok());
    assert!(create("", "/terminals?token=s3cret").is_ok());
    let ws = route(&head("GET /terminals/9?token=s3cret", WS), b"", &policy);
    assert!(matches!(ws, Ok(Route::Attach(_))));
    let ws = route(&head("GET /terminals/9", WS), b"", &policy);
    assert_eq!(ws.unwrap_err().status(), 401);
    let terminate = route(&head("POST /terminals/9/terminate", ""), b"", &policy);
    assert_eq!(terminate.unwrap_err().status(), 401);
    // Origin is judged before the token, so a foreign page learns nothing about it.
    let evil = head("POST /terminals", "Origin: https://evil.example\r\n");
    assert_eq!(route(&evil, b"", &policy).unwrap_err().status(), 403);
}

// ---- preflight and CORS ----

#[test]
fn preflight_for_an_allowed_origin() {
    let headers = "Origin: https://localhost\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n";
    let h = head("OPTIONS /terminals", headers);
    // No token needed: browsers send none with a preflight.
    assert_eq!(route(&h, b"", &with_token()), Ok(Route::Preflight));
    let response = answer(Some(&h), &policy(), Ok(preflight(&h, &policy())));
    assert_eq!(response.status, 204);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://localhost")
    );
    assert_eq!(
        response.header("access-control-allow-methods"),
        Some("GET, POST, OPTIONS")
    );
    assert_eq!(
        response.header("access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(response.header("access-control-max-age"), Some("600"));
    assert_eq!(response.header("vary"), Some("Origin"));
    let allow_origin_lines = response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("access-control-allow-origin"))
        .count();
    assert_eq!(allow_origin_lines, 1);
    assert!(response.body.is_empty());
}

#[test]
fn preflight_defaults_and_private_network() {
    let headers = "Origin: https://localhost\r\nAccess-Control-Request-Private-Network: true\r\n";
    let h = head("OPTIONS /terminals/5/resize", headers);
    let response = preflight(&h, &policy());
    let allowed = response.header("access-control-allow-headers").unwrap();
    for name in ["content-type", "authorization", "x-axs-token"] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert_eq!(
        response.header("access-control-allow-private-network"),
        Some("true")
    );
}

#[test]
fn preflight_from_a_foreign_origin_is_refused() {
    let h = head("OPTIONS /terminals", "Origin: https://evil.example\r\n");
    assert_eq!(route(&h, b"", &policy()).unwrap_err().status(), 403);
    let open = Policy {
        allow_any_origin: true,
        ..policy()
    };
    assert_eq!(route(&h, b"", &open), Ok(Route::Preflight));
    let response = answer(Some(&h), &open, Ok(preflight(&h, &open)));
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn answers_carry_cors_for_allowed_origins() {
    let h = head("POST /terminals/7/resize", "Origin: https://localhost\r\n");
    let ok = answer(Some(&h), &policy(), Ok(success()));
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://localhost")
    );
    assert_eq!(ok.header("vary"), Some("Origin"));
    let err = answer(Some(&h), &policy(), Err(ApiError::UnknownSession(1)));
    assert_eq!(err.status, 404);
    assert_eq!(
        err.header("access-control-allow-origin"),
        Some("https://localhost")
    );
    let evil = head("GET /status", "Origin: https://evil.example\r\n");
    let status = answer(Some(&evil), &policy(), Ok(status_ok()));
    assert_eq!(status.header("access-control-allow-origin"), None);
    let unparsed = answer(None, &policy(), Err(ApiError::HeadTooLarge));
    assert_eq!(unparsed.status, 431);
    assert_eq!(unparsed.header("access-control-allow-origin"), None);
}

// ---- WebSocket handshake ----

#[test]
fn websocket_accept_answer() {
    let h = head(
        "GET /terminals/7",
        &format!("{WS}Origin: https://localhost\r\n"),
    );
    let response = answer(Some(&h), &policy(), websocket_accept(&h));
    assert_eq!(response.status, 101);
    assert!(response.is_upgrade());
    assert_eq!(
        response.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(response.header("upgrade"), Some("websocket"));
    assert_eq!(response.header("access-control-allow-origin"), None);
    let bytes = String::from_utf8(response.to_bytes()).unwrap();
    assert!(bytes.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(bytes.contains("Connection: Upgrade\r\n"));
    assert!(!bytes.contains("close"));
    assert!(bytes.ends_with("\r\n\r\n"));
}

#[test]
fn attach_request_accepts_like_websocket_accept() {
    let h = head("GET /terminals/7", WS);
    let Ok(Route::Attach(request)) = route(&h, b"", &policy()) else {
        panic!("not an attach");
    };
    assert_eq!(Ok(request.accept()), websocket_accept(&h));
}

#[test]
fn websocket_accept_errors() {
    assert_eq!(
        websocket_accept(&head("GET /terminals/7", ""))
            .unwrap_err()
            .status(),
        400
    );
    let old = WS.replace("Version: 13", "Version: 12");
    let err = websocket_accept(&head("GET /terminals/7", &old)).unwrap_err();
    assert_eq!(err.status(), 426);
    assert_eq!(
        err.error_response(&[]).header("sec-websocket-version"),
        Some("13")
    );
}

// ---- body limit and errors the runtime raises ----

#[test]
fn oversized_body_is_413_before_reading() {
    let h = head("POST /terminals", "Content-Length: 1000000\r\n");
    let err = check_body_len(&h, &policy()).unwrap_err();
    assert_eq!(err.status(), 413);
    assert!(err.to_string().contains("65536"));
}

#[test]
fn session_errors_raised_by_the_registry() {
    let h = head("POST /terminals", "Origin: https://localhost\r\n");
    let full = answer(
        Some(&h),
        &policy(),
        Err(ApiError::TooManySessions { limit: 64 }),
    );
    assert_eq!(full.status, 503);
    let value: serde_json::Value = serde_json::from_slice(&full.body).unwrap();
    assert!(value["error"].as_str().unwrap().contains("64"));
    assert_eq!(ApiError::UnknownSession(5).status(), 404);
}

// ---- never panics ----

/// A plausible JSON value for a size field: numbers of all kinds, strings, junk.
fn field_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<String>().prop_map(|s| serde_json::Value::String(s).to_string()),
        "[ -~]{0,8}".prop_map(|s| format!("\"{s}\"")),
        Just("null".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
    ]
}

// ---- viewers and the view token ----

fn with_view_token(token: Option<&str>) -> Policy {
    Policy {
        token: token.map(String::from),
        view_token: Some("v13w-only".into()),
        ..policy()
    }
}

const VIEW: &str = "Authorization: Bearer v13w-only\r\n";

#[test]
fn the_view_token_only_watches() {
    for policy in [with_view_token(Some("s3cret")), with_view_token(None)] {
        let routed = |line: &str, headers: &str, body: &str| {
            route(&head(line, headers), body.as_bytes(), &policy)
        };
        assert_eq!(routed("GET /status", VIEW, ""), Ok(Route::Status));
        assert!(matches!(routed("GET /", VIEW, ""), Ok(Route::Page(_))));
        for query in ["", "?attach=takeover", "?attach=shared", "?attach=view"] {
            let line = format!("GET /terminals/1234{query}");
            match routed(&line, &format!("{VIEW}{WS}"), "") {
                Ok(Route::Attach(request)) => {
                    assert_eq!(request.policy, Some(AttachPolicy::View), "{query}")
                }
                other => panic!("{query}: {other:?}"),
            }
        }
        let size = r#"{"cols":80,"rows":24}"#;
        for (line, body) in [
            ("POST /terminals", size),
            ("POST /terminals/1234/resize", size),
            ("POST /terminals/1234/terminate", ""),
            ("POST /terminals/x/terminate", ""),
            ("POST /execute-command", r#"{"command":"id"}"#),
        ] {
            let err = routed(line, VIEW, body).unwrap_err();
            assert_eq!(err, ApiError::ViewOnly, "{line}");
            assert_eq!(err.status(), 403);
            let query = format!("{line}?token=v13w-only");
            assert_eq!(
                routed(&query, "", body).unwrap_err().status(),
                403,
                "{query}"
            );
        }
    }
}

#[test]
fn the_full_token_keeps_full_rights_next_to_a_view_token() {
    let policy = with_view_token(Some("s3cret"));
    let full = "Authorization: Bearer s3cret\r\n";
    let create = route(
        &head("POST /terminals", full),
        br#"{"cols":80,"rows":24}"#,
        &policy,
    );
    assert!(
        matches!(create, Ok(Route::CreateTerminal { .. })),
        "{create:?}"
    );
    match route(
        &head("GET /terminals/1234", &format!("{full}{WS}")),
        b"",
        &policy,
    ) {
        Ok(Route::Attach(request)) => assert_eq!(request.policy, None),
        other => panic!("{other:?}"),
    }
    // Neither token: 401, as before.
    let none = route(&head("POST /terminals", ""), b"{}", &policy).unwrap_err();
    assert_eq!(none.status(), 401);
    // Without --token, no token at all still has full rights (a loopback listener).
    let open = with_view_token(None);
    let create = route(
        &head("POST /terminals", ""),
        br#"{"cols":8,"rows":2}"#,
        &open,
    );
    assert!(
        matches!(create, Ok(Route::CreateTerminal { .. })),
        "{create:?}"
    );
}

#[test]
fn check_token_tells_the_access() {
    let policy = with_view_token(Some("s3cret"));
    let access = |headers: &str| policy.check_token(&head("GET /", headers));
    assert_eq!(access("X-Axs-Token: s3cret\r\n"), Ok(Access::Full));
    assert_eq!(access("X-Axs-Token: v13w-only\r\n"), Ok(Access::View));
    // Both offered: the full token wins.
    assert_eq!(
        access("X-Axs-Token: v13w-only\r\nAuthorization: Bearer s3cret\r\n"),
        Ok(Access::Full)
    );
    assert_eq!(access("X-Axs-Token: nope\r\n"), Err(ApiError::Unauthorized));
}

// ---- Host (DNS rebinding) ----

fn head_with_host(request_line: &str, host: Option<&str>) -> RequestHead {
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    let raw = format!("{request_line} HTTP/1.1\r\n{host}\r\n");
    match parse_head(raw.as_bytes()) {
        Ok(HeadParse::Complete { head, .. }) => head,
        other => panic!("{raw:?} did not parse: {other:?}"),
    }
}

#[test]
fn loopback_answers_only_to_loopback_names() {
    let loopback = policy();
    for ok in [
        Some("127.0.0.1:8767"),
        Some("localhost:8767"),
        Some("LOCALHOST"),
        Some("localhost:1"),
        Some("[::1]:8767"),
        Some("[::1]"),
        Some("127.0.0.1"),
        None,
    ] {
        let head = head_with_host("GET /status", ok);
        assert_eq!(route(&head, b"", &loopback), Ok(Route::Status), "{ok:?}");
    }
    for refused in [
        "evil.example",
        "evil.example:8767",
        "localhost.evil.example:8767",
        "127.0.0.1.evil.example",
        "127.0.0.2:8767",
        "0.0.0.0:8767",
        "[::2]:8767",
        "",
    ] {
        for line in [
            "GET /status",
            "POST /terminals",
            "GET /nowhere",
            "OPTIONS /terminals",
        ] {
            let err = route(&head_with_host(line, Some(refused)), b"", &loopback).unwrap_err();
            assert_eq!(
                err,
                ApiError::HostNotAllowed(refused.into()),
                "{line} {refused}"
            );
            assert_eq!(err.status(), 403);
        }
    }
    // The bound address itself, when it is another loopback address.
    let other = Policy::new("127.0.0.9:7000".parse().unwrap());
    let head = head_with_host("GET /status", Some("127.0.0.9:7000"));
    assert_eq!(route(&head, b"", &other), Ok(Route::Status));
    let ipv6 = Policy::new("[::1]:7000".parse().unwrap());
    let head = head_with_host("GET /status", Some("[::1]:7000"));
    assert_eq!(route(&head, b"", &ipv6), Ok(Route::Status));
}

#[test]
fn a_lan_listener_takes_any_host() {
    for bound in ["192.168.1.20:8767", "0.0.0.0:8767"] {
        let lan = Policy::new(bound.parse().unwrap());
        let head = head_with_host("GET /status", Some("my-laptop.local:8767"));
        assert_eq!(route(&head, b"", &lan), Ok(Route::Status), "{bound}");
    }
}

proptest! {
    #[test]
    fn the_view_token_never_routes_to_an_action(
        method in prop_oneof![Just("GET"), Just("POST"), Just("OPTIONS")],
        path in prop_oneof![
            Just("/terminals".to_string()),
            "[0-9a-z]{0,6}".prop_map(|id| format!("/terminals/{id}")),
            "[0-9a-z]{0,6}".prop_map(|id| format!("/terminals/{id}/resize")),
            "[0-9a-z]{0,6}".prop_map(|id| format!("/terminals/{id}/terminate")),
            Just("/execute-command".to_string()),
            Just("/".to_string()),
            Just("/status".to_string()),
        ],
        query in prop_oneof![Just(""), Just("attach=takeover"), Just("attach=shared"), Just("since=0")],
        via_query in any::<bool>(),
        upgrade in any::<bool>(),
        with_full_token in any::<bool>(),
        body in prop_oneof![Just(r#"{"cols":80,"rows":24}"#), Just(r#"{"command":"id"}"#), Just("")],
    ) {
        let (query, auth) = if via_query {
            (format!("{query}&token=v13w-only"), String::new())
        } else {
            (query.to_string(), VIEW.to_string())
        };
        let raw = format!(
            "{method} {path}?{query} HTTP/1.1\r\nHost: localhost:8767\r\n{auth}{}\r\n",
            if upgrade { WS } else { "" }
        );
        let policy = with_view_token(with_full_token.then_some("s3cret"));
        if let Ok(HeadParse::Complete { head, .. }) = parse_head(raw.as_bytes()) {
            match route(&head, body.as_bytes(), &policy) {
                Ok(Route::Status | Route::Page(_) | Route::Preflight | Route::ListTerminals) | Err(_) => {}
                Ok(Route::Attach(request)) => {
                    prop_assert_eq!(request.policy, Some(AttachPolicy::View));
                }
                Ok(other) => prop_assert!(false, "the view token reached {:?}", other),
            }
        }
    }
}

proptest! {
    #[test]
    fn route_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..512),
                          body in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(HeadParse::Complete { head, .. }) = parse_head(&raw) {
            let _ = route(&head, &body, &policy());
            let _ = route(&head, &body, &with_token());
        }
    }

    #[test]
    fn route_never_panics_on_plausible_requests(
        method in prop_oneof![Just("GET"), Just("POST"), Just("OPTIONS"), Just("PUT")],
        path in prop_oneof![
            Just("/terminals".to_string()),
            "[0-9a-z%]{0,12}".prop_map(|id| format!("/terminals/{id}")),
            "[0-9a-z%]{0,12}".prop_map(|id| format!("/terminals/{id}/resize")),
            "[0-9a-z%]{0,12}".prop_map(|id| format!("/terminals/{id}/terminate")),
            Just("/execute-command".to_string()),
            "/[ -~&&[^ ?#]]{0,20}",
        ],
        query in "[a-z=&0-9%-]{0,24}",
        upgrade in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let raw = format!(
            "{method} {path}?{query} HTTP/1.1\r\n{}\r\n",
            if upgrade { WS } else { "" }
        );
        if let Ok(HeadParse::Complete { head, .. }) = parse_head(raw.as_bytes()) {
            let result = route(&head, &body, &policy());
            let response = answer(Some(&head), &policy(), result.map(|_| success()));
            prop_assert!(response.status >= 200);
        }
    }

    #[test]
    fn size_fields_never_panic_and_stay_in_range(cols in field_value(), rows in field_value()) {
        let body = format!(r#"{{"cols":{cols},"rows":{rows}}}"#);
        match route(&head("POST /terminals", ""), body.as_bytes(), &policy()) {
            Ok(Route::CreateTerminal { size }) => {
                prop_assert!((1..=MAX_DIMENSION).contains(&size.cols));
                prop_assert!((1..=MAX_DIMENSION).contains(&size.rows));
            }
            Ok(other) => prop_assert!(false, "unexpected route {:?}", other),
            Err(err) => prop_assert_eq!(err.status(), 400),
        }
    }

    #[test]
    fn in_range_numbers_and_strings_are_accepted(cols in 1u16..=1000, rows in 1u16..=1000, as_string in any::<bool>()) {
        let body = if as_string {
            format!(r#"{{"cols":" {cols}","rows":"{rows} "}}"#)
        } else {
            format!(r#"{{"cols":{cols},"rows":{rows}}}"#)
        };
        let route = route(&head("POST /terminals", ""), body.as_bytes(), &policy());
        prop_assert_eq!(route, Ok(Route::CreateTerminal { size: size(cols, rows) }));
    }
}
