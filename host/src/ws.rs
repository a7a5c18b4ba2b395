//! The WebSocket settings and close frames both runtimes use (tungstenite 0.30, which
//! `async-tungstenite` re-exports, so one set of types serves both).
//!
//! The core decides every close code: [`ProtocolError::close`] for a client that broke
//! the protocol, [`CloseReason`] for the server's own closes. Invariant: a message or
//! frame is refused exactly when it is larger than the core's [`MAX_MESSAGE`].

use axs_core::api::MAX_MESSAGE;
use axs_core::frame::{CloseReason, ProtocolError};
use axs_core::limits::{WS_READ_BUFFER, WS_WRITE_BUFFER};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::Error;

/// The WebSocket limits: a paste is one message, so a message (and a frame) may be as
/// large as the core allows; anything larger is refused with close 1009.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// What a tungstenite read error says the client did wrong.
pub fn protocol_error(error: &Error) -> ProtocolError {
    match error {
        Error::Capacity(_) => ProtocolError::TooBig,
        Error::Utf8(_) => ProtocolError::NotUtf8,
        _ => ProtocolError::Malformed,
    }
}

/// The close the core decides for a client that broke the protocol with `error`.
pub fn protocol_close(error: &Error) -> CloseFrame {
    let (code, reason) = protocol_error(error).close();
    CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }
}

/// The close frame for one of the server's own closes (exit, takeover, shutdown).
pub fn close_frame(reason: CloseReason) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(reason.code()),
        reason: reason.reason().into(),
    }
}

#[cfg(test)]
mod tests {
    use tungstenite::error::CapacityError;

    use super::*;

    #[test]
    fn limits_follow_the_core() {
        let config = config();
        assert_eq!(config.max_message_size, Some(MAX_MESSAGE));
        assert_eq!(config.max_frame_size, Some(MAX_MESSAGE));
        assert_eq!(config.read_buffer_size, WS_READ_BUFFER);
        assert_eq!(config.write_buffer_size, WS_WRITE_BUFFER);
    }

    #[test]
    fn protocol_errors_close_with_the_cores_codes() {
        let too_big = Error::Capacity(CapacityError::MessageTooLong {
            size: 2,
            max_size: 1,
        });
        assert_eq!(protocol_close(&too_big).code, CloseCode::Size);
        assert_eq!(u16::from(protocol_close(&too_big).code), 1009);
        let other = Error::AlreadyClosed;
        let (code, reason) = ProtocolError::Malformed.close();
        assert_eq!(u16::from(protocol_close(&other).code), code);
        assert_eq!(protocol_close(&other).reason.as_str(), reason);
    }

    #[test]
    fn own_closes_carry_the_cores_code_and_reason() {
        let frame = close_frame(CloseReason::ServerShutdown);
        assert_eq!(u16::from(frame.code), 1001);
        assert_eq!(frame.reason.as_str(), "server shutting down");
    }
}
