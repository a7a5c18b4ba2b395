//! JSON request bodies through [`axs_core::api::route`]: `{"cols","rows"}` for create and
//! resize, `{"command","cwd"?,"u_cwd"?}` for `execute-command`.
//!
//! Asserts: a body is refused only with 400; an accepted size is within
//! `1..=MAX_DIMENSION` and is what the JSON says (a whole number, or a numeric string);
//! an accepted command is the JSON's `command` string and its directory a non-empty
//! `cwd` or `u_cwd`; and parse∘print round-trips for sizes and commands the input picks.

use std::net::{IpAddr, SocketAddr};

use axs_core::api::{route, Policy, Route, TermSize, MAX_DIMENSION};
use axs_core::http::{Method, RequestHead};
use serde_json::{json, Value};

use crate::input::Input;

/// Fuzz target `json_body`: the input's first byte picks the endpoint, the rest is the
/// body; then a size and a command from the same bytes make the round trip.
pub fn body(data: &[u8]) {
    let mut input = Input::new(data);
    let endpoint = input.byte() % 3;
    let (cols, rows) = (input.u16(), input.u16());
    let body = input.rest();
    match endpoint {
        0 => check_size_body(route_post("/terminals", body), body),
        1 => check_size_body(route_post("/terminals/42/resize", body), body),
        _ => check_command_body(route_post("/execute-command", body), body),
    }
    size_round_trip(cols, rows);
    command_round_trip(&String::from_utf8_lossy(body));
}

/// Routes `POST path` with `body` under the default loopback policy.
fn route_post(path: &str, body: &[u8]) -> Result<Route, u16> {
    let policy = Policy::new(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 8080));
    let head = RequestHead {
        method: Method::Post,
        path: path.to_string(),
        query: Vec::new(),
        headers: vec![("host".into(), "127.0.0.1:8080".into())],
    };
    route(&head, body, &policy).map_err(|e| e.status())
}

/// An accepted size agrees with the JSON; a refusal is a 400.
fn check_size_body(routed: Result<Route, u16>, body: &[u8]) {
    let size = match routed {
        Ok(Route::CreateTerminal { size } | Route::Resize { size, .. }) => size,
        Ok(other) => panic!("a size body routed to {other:?}"),
        Err(status) => return assert_eq!(status, 400),
    };
    let valid = 1..=MAX_DIMENSION;
    assert!(
        valid.contains(&size.cols) && valid.contains(&size.rows),
        "{size:?}"
    );
    let json: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(field_number(&json["cols"]), f64::from(size.cols));
    assert_eq!(field_number(&json["rows"]), f64::from(size.rows));
}

/// A `cols`/`rows` value as the route reads it: a number, or a numeric string.
fn field_number(value: &Value) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.trim().parse().unwrap(),
        other => panic!("accepted {other} as a dimension"),
    }
}

/// An accepted command is the JSON's; a refusal is a 400.
fn check_command_body(routed: Result<Route, u16>, body: &[u8]) {
    let (command, cwd) = match routed {
        Ok(Route::ExecuteCommand { command, cwd }) => (command, cwd),
        Ok(other) => panic!("a command body routed to {other:?}"),
        Err(status) => return assert_eq!(status, 400),
    };
    let json: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json["command"].as_str(), Some(command.as_str()));
    let named = |field: &str| {
        json[field]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    assert_eq!(cwd, named("cwd").or_else(|| named("u_cwd")));
}

/// `{"cols":c,"rows":r}` printed and routed gives the size back, or 400 out of range.
fn size_round_trip(cols: u16, rows: u16) {
    let body = json!({ "cols": cols, "rows": rows }).to_string();
    let valid = 1..=MAX_DIMENSION;
    let expected = if valid.contains(&cols) && valid.contains(&rows) {
        Ok(Route::CreateTerminal {
            size: TermSize { cols, rows },
        })
    } else {
        Err(400)
    };
    assert_eq!(
        route_post("/terminals", body.as_bytes()),
        expected,
        "{body}"
    );
}

/// `{"command":s,"cwd":s}` printed and routed gives both back (an empty `cwd` is none).
fn command_round_trip(text: &str) {
    let body = json!({ "command": text, "cwd": text }).to_string();
    let cwd = (!text.is_empty()).then(|| text.to_string());
    let expected = Ok(Route::ExecuteCommand {
        command: text.to_string(),
        cwd,
    });
    assert_eq!(route_post("/execute-command", body.as_bytes()), expected);
}
