//! Every assumption about text frames lives here, so it can be aligned with the server in one place.
//!
//! Assumed shapes:
//! - exit (every client): exactly
//!   `{"type":"exit","data":{"exit_code":N|null,"signal":null|"SIGNAME","message":"..."}}`
//!   with no other keys (clients B prints it verbatim);
//! - control messages (only clients that opted in with `?since=N`): any JSON object with a
//!   string `type` other than `"exit"`, e.g. an attach or offset notice; their content is not
//!   checked by the suite, except [`attached`]: if an opted-in client gets
//!   `{"type":"attached","data":{"offset":N,"resumed":B,...}}`, a resume from an offset the ring
//!   holds must say `resumed: true` and `offset` equal to the `since` value.

use serde_json::Value;

/// A decoded exit frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The exit code, when the program exited normally.
    pub exit_code: Option<i64>,
    /// The signal name (`SIGKILL`), when a signal ended the program.
    pub signal: Option<String>,
    /// The human-readable message.
    pub message: String,
}

/// True when `text` is JSON with `"type":"exit"` (whether or not well-formed otherwise).
pub fn looks_like_exit(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(|t| t == "exit"))
        .unwrap_or(false)
}

/// True when `text` is a control message an opted-in client may receive (not the exit frame).
pub fn is_control_message(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(|t| t != "exit"))
        .unwrap_or(false)
}

/// Parses an exit frame strictly: exact keys and types, nothing else.
pub fn parse_exit(text: &str) -> Result<Exit, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("{text:?} is not JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{text:?} is not an object"))?;
    if keys(obj) != ["data", "type"] {
        return Err(format!(
            "{text:?}: top-level keys must be exactly type and data"
        ));
    }
    let data = obj["data"]
        .as_object()
        .ok_or_else(|| format!("{text:?}: data is not an object"))?;
    if keys(data) != ["exit_code", "message", "signal"] {
        return Err(format!(
            "{text:?}: data keys must be exactly exit_code, signal and message"
        ));
    }
    let exit_code = match &data["exit_code"] {
        Value::Null => None,
        Value::Number(n) => Some(
            n.as_i64()
                .ok_or_else(|| format!("{text:?}: bad exit_code"))?,
        ),
        _ => return Err(format!("{text:?}: exit_code must be a number or null")),
    };
    let signal = match &data["signal"] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        _ => return Err(format!("{text:?}: signal must be a string or null")),
    };
    let message = data["message"]
        .as_str()
        .ok_or_else(|| format!("{text:?}: message must be a string"))?
        .to_string();
    Ok(Exit {
        exit_code,
        signal,
        message,
    })
}

fn keys(obj: &serde_json::Map<String, Value>) -> Vec<&str> {
    let mut k: Vec<&str> = obj.keys().map(|s| s.as_str()).collect();
    k.sort_unstable();
    k
}

/// The `(offset, resumed)` of the first `attached` control message among `texts`, if any.
pub fn attached<'a>(
    texts: impl IntoIterator<Item = &'a str>,
) -> Option<(Option<u64>, Option<bool>)> {
    texts.into_iter().find_map(|t| {
        let v: Value = serde_json::from_str(t).ok()?;
        if v.get("type")?.as_str()? != "attached" {
            return None;
        }
        let data = v.get("data");
        let offset = data.and_then(|d| d.get("offset")).and_then(|o| o.as_u64());
        let resumed = data
            .and_then(|d| d.get("resumed"))
            .and_then(|r| r.as_bool());
        Some((offset, resumed))
    })
}

/// The query that opts a client in to resuming from `offset` (and to control messages).
pub fn since_query(offset: usize) -> String {
    format!("since={offset}")
}
