//! The `axs lsp` bridge's decisions, sans-IO: the LSP base-protocol codec ([`encode`],
//! [`Decoder`]), its limits, the close reasons, one socket ↔ program pair ([`Link`]: flow
//! control, close, kill schedule) and the bridge's routes and `/status` ([`Bridge`]).
//! The driving loop a runtime follows is in [`bridge`]'s docs.
//!
//! The bridge spawns a stdio language server per WebSocket. Client → program: each text
//! frame is one body, written with [`encode`]. Program → client: its stdout goes through a
//! [`Decoder`]; each [`Decoded::Message`] is one text frame, each [`Decoded::Notice`] one
//! log line on stderr (and [`Notice::close`] says when that socket must close).
//!
//! Invariants (property tests in `core/tests/lsp_codec.rs`):
//! - the decoded items do not depend on how the stream is split into pushes;
//! - decoding [`encode`]`(body)` gives `body` back, for any UTF-8 body up to the limit;
//! - no input panics; after [`Decoder::poll`] returns `None` the decoder holds fewer than
//!   `max(`[`MAX_LSP_MESSAGE`]`, `[`MAX_HEADER_BLOCK`]`)` bytes, and a body over the limit
//!   is skipped as it arrives, never buffered;
//! - after a malformed header block, a valid message that follows arrives (the resync rule
//!   is in [`Decoder`]'s docs).

pub mod bridge;
mod codec;
mod link;

pub use bridge::{program_base_name, Bridge, BridgeRoute};
pub use codec::{encode, Decoded, Decoder, HeaderError, Notice};
pub use link::{
    ClientMessage, Link, LinkLimits, LinkOutput, Sinks, CLIENT_BACKLOG, CLOSE_GOING_AWAY,
    CLOSE_NOT_UTF8, EXIT_DRAIN, MAX_STDERR_LINE, STDIN_BACKLOG,
};

use crate::frame::ExitStatus;
use std::time::Duration;

/// The largest message body either way (axs 0.2's limit); a larger one closes that
/// socket with 1009 and the bridge stays up.
pub const MAX_LSP_MESSAGE: usize = 64 * 1024 * 1024;

/// The largest header block, its blank line included; a longer one is malformed (real
/// blocks are under 100 bytes: this only bounds what junk can make the decoder hold).
pub const MAX_HEADER_BLOCK: usize = 8 * 1024;

/// After the socket closes, the program's stdin is closed; still running this much
/// later, its process group gets SIGTERM.
pub const STDIN_CLOSE_GRACE: Duration = Duration::from_secs(2);

/// After SIGTERM, a program still running this much later gets SIGKILL (to its group).
pub const SIGTERM_GRACE: Duration = Duration::from_secs(2);

/// The WebSocket close code for a message over [`MAX_LSP_MESSAGE`] (RFC 6455 "message too big").
pub const CLOSE_TOO_LARGE: u16 = 1009;

/// The WebSocket close code after the program exited and its output was delivered.
pub const CLOSE_EXITED: u16 = 1000;

/// The close code and reason when the language server ended (after its last message).
pub fn exit_close(status: &ExitStatus) -> (u16, String) {
    let reason = match status {
        ExitStatus::Code(code) => format!("language server exited with code {code}"),
        ExitStatus::Signal(name) => format!("language server terminated by {name}"),
    };
    (CLOSE_EXITED, reason)
}

/// The close code and reason for a message of `length` bytes (either way) over the limit.
pub fn too_large_close(length: u64) -> (u16, String) {
    (
        CLOSE_TOO_LARGE,
        format!(
            "message of {length} bytes is over the {} MiB limit",
            MAX_LSP_MESSAGE >> 20
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_name_the_exit_and_fit_a_close_frame() {
        assert_eq!(
            exit_close(&ExitStatus::Code(3)),
            (1000, "language server exited with code 3".into())
        );
        assert_eq!(
            exit_close(&ExitStatus::Signal("SIGKILL".into())),
            (1000, "language server terminated by SIGKILL".into())
        );
        let (code, reason) = too_large_close(u64::MAX);
        assert_eq!(code, 1009);
        assert_eq!(
            reason,
            "message of 18446744073709551615 bytes is over the 64 MiB limit"
        );
        // A close frame's reason is at most 123 bytes.
        assert!(reason.len() <= 123);
        let (_, reason) = exit_close(&ExitStatus::Code(i32::MIN));
        assert!(reason.len() <= 123);
    }
}
