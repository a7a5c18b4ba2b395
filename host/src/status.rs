//! A child's exit status as the core's exit message has it.
//!
//! Invariant: a signal is always named (`SIGKILL`), an unnamed one as `SIG<n>`.

use axs_core::frame::ExitStatus as CoreStatus;
use axs_pty::{signal_name, ExitStatus};

/// An exit status as the core's exit message has it: a code, or a signal's name
/// (`SIGKILL`; an unnamed signal is `SIG<n>`).
pub fn exit_status(status: ExitStatus) -> CoreStatus {
    match status {
        ExitStatus::Code(code) => CoreStatus::Code(code),
        ExitStatus::Signal(sig) => {
            CoreStatus::Signal(signal_name(sig).map_or_else(|| format!("SIG{sig}"), String::from))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_name_signals() {
        assert_eq!(exit_status(ExitStatus::Code(7)), CoreStatus::Code(7));
        let named = exit_status(ExitStatus::Signal(9));
        assert_eq!(named, CoreStatus::Signal(String::from("SIGKILL")));
        let unnamed = exit_status(ExitStatus::Signal(99));
        assert_eq!(unnamed, CoreStatus::Signal(String::from("SIG99")));
    }
}
