//! What a client is sent: output, control messages, the exit message, a close.
//!
//! A plain axs client writes every message it receives into its terminal, so it only ever
//! gets binary output frames, the exit JSON (a text frame) and a close. Control messages
//! (offsets, notices) go only to clients that opted in (`?since=` or `?control=1`).

use serde::Serialize;

/// One WebSocket message for one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Terminal output bytes.
    Binary(Vec<u8>),
    /// A JSON message: the exit message, or a control message for an opted-in client.
    Text(String),
    /// Close the socket with this code and reason; the client is detached.
    Close(CloseReason),
}

/// Why the server closes a client's socket: a WebSocket close code and reason text.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The program exited and the client has received everything (1000).
    Exited,
    /// A newer client took the session over (4001).
    TakenOver,
    /// The server is shutting down (1001).
    ServerShutdown,
}

impl CloseReason {
    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            CloseReason::Exited => 1000,
            CloseReason::ServerShutdown => 1001,
            CloseReason::TakenOver => 4001,
        }
    }

    /// The close reason text.
    pub fn reason(self) -> &'static str {
        match self {
            CloseReason::Exited => "session exited",
            CloseReason::ServerShutdown => "server shutting down",
            CloseReason::TakenOver => "taken over by a newer client",
        }
    }
}

/// How a client broke the WebSocket protocol, as the runtime's framing library reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// A message or frame over [`crate::api::MAX_MESSAGE`].
    TooBig,
    /// A text message that is not UTF-8.
    NotUtf8,
    /// Anything else (an unmasked frame, reserved bits, a bad opcode...).
    Malformed,
}

impl ProtocolError {
    /// The close code and reason that answer it (RFC 6455 section 7.4.1). Only that
    /// socket closes; the session goes on.
    pub fn close(self) -> (u16, &'static str) {
        match self {
            ProtocolError::TooBig => (1009, "message too big"),
            ProtocolError::NotUtf8 => (1007, "text is not UTF-8"),
            ProtocolError::Malformed => (1002, "protocol error"),
        }
    }
}

/// How a session's program ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it; the signal's name, e.g. `SIGKILL`.
    Signal(String),
}

impl ExitStatus {
    /// The axs exit message: `{"type":"exit","data":{"exit_code":N|null,"signal":S|null,"message":"..."}}`.
    pub fn exit_message(&self) -> String {
        let (exit_code, signal, message) = match self {
            ExitStatus::Code(code) => (
                Some(*code),
                None,
                format!("Process exited with code {code}"),
            ),
            ExitStatus::Signal(name) => (
                None,
                Some(name.as_str()),
                format!("Process terminated by {name}"),
            ),
        };
        json(&Tagged {
            kind: "exit",
            data: ExitData {
                exit_code,
                signal,
                message,
            },
        })
    }
}

/// A control message for an opted-in client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Sent on attach: the generation, the stream offset the output starts at, the head at
    /// attach, whether this is a resume (only missed bytes follow) or a full replay, and
    /// whether the client is a read-only viewer.
    Attached {
        /// The client's generation.
        generation: u64,
        /// Stream offset of the first output byte that follows (after any state prefix).
        offset: u64,
        /// The stream head at attach: the replay ends here.
        head: u64,
        /// True when `since` was honoured and only missed bytes follow.
        resumed: bool,
        /// True when the client is a read-only viewer (its input is dropped).
        viewer: bool,
    },
    /// The replay is over: from here on, output bytes are the stream from `offset` on, untouched.
    Live {
        /// Stream offset of the next output byte.
        offset: u64,
    },
    /// The client fell behind; `bytes` were skipped and output resumes at `offset` (a safe cut).
    Skipped {
        /// How many stream bytes were skipped.
        bytes: u64,
        /// Stream offset output resumes at.
        offset: u64,
    },
    /// Something the client should know, e.g. that `since` was too old for the scrollback.
    Notice {
        /// Human-readable explanation.
        message: String,
    },
}

impl Control {
    /// The control message as JSON text, `{"type":...,"data":{...}}`.
    pub fn to_json(&self) -> String {
        match self {
            Control::Attached {
                generation,
                offset,
                head,
                resumed,
                viewer,
            } => json(&Tagged {
                kind: "attached",
                data: serde_json::json!({
                    "generation": generation,
                    "offset": offset,
                    "head": head,
                    "resumed": resumed,
                    "viewer": viewer,
                }),
            }),
            Control::Live { offset } => json(&Tagged {
                kind: "live",
                data: serde_json::json!({ "offset": offset }),
            }),
            Control::Skipped { bytes, offset } => json(&Tagged {
                kind: "skipped",
                data: serde_json::json!({"bytes": bytes, "offset": offset}),
            }),
            Control::Notice { message } => json(&Tagged {
                kind: "notice",
                data: serde_json::json!({ "message": message }),
            }),
        }
    }
}

#[derive(Serialize)]
struct Tagged<T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: T,
}

#[derive(Serialize)]
struct ExitData<'a> {
    exit_code: Option<i32>,
    signal: Option<&'a str>,
    message: String,
}

/// Serializes plain data; these shapes (strings, numbers, options) cannot fail to serialize.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_message_has_the_axs_shape() {
        assert_eq!(
            ExitStatus::Code(7).exit_message(),
            r#"{"type":"exit","data":{"exit_code":7,"signal":null,"message":"Process exited with code 7"}}"#
        );
        assert_eq!(
            ExitStatus::Signal("SIGKILL".into()).exit_message(),
            r#"{"type":"exit","data":{"exit_code":null,"signal":"SIGKILL","message":"Process terminated by SIGKILL"}}"#
        );
    }

    #[test]
    fn control_messages_are_tagged_json() {
        let v: serde_json::Value = serde_json::from_str(
            &Control::Skipped {
                bytes: 5,
                offset: 9,
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(v["type"], "skipped");
        assert_eq!(v["data"]["bytes"], 5);
    }
}
