//! The cases, grouped by topic; each is `pub fn name(bin: &Path)`.

mod editor;
mod exit;
mod faults;
mod fds;
mod flood;
mod flow;
mod http_api;
pub mod lsp;
mod procs;
mod ready;
mod replay;
mod security;
mod storm;
mod viewers;
mod web;

pub use editor::*;
pub use exit::*;
pub use faults::*;
pub use fds::*;
pub use flood::*;
pub use flow::*;
pub use http_api::*;
pub use lsp::*;
pub use procs::*;
pub use ready::*;
pub use replay::*;
pub use security::*;
pub use storm::*;
pub use viewers::*;
pub use web::*;

use std::time::Duration;

use crate::server::TempDir;

/// The bound for one ordinary event (an echo, an answer, a marker in the output).
pub(crate) const EVENT: Duration = Duration::from_secs(20);

/// Unwraps a harness result, panicking with its message.
pub(crate) trait OrFail<T> {
    /// The value, or a panic with the error text.
    fn or_fail(self) -> T;
}

impl<T> OrFail<T> for Result<T, String> {
    #[track_caller]
    fn or_fail(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Writes `body` as a shell script in `dir` and returns the `-c` value that runs it with sh.
pub(crate) fn sh_script(dir: &TempDir, name: &str, body: &str) -> String {
    let p = dir.write(name, body);
    format!("sh {}", p.display())
}

/// Waits until the session's program blocks reading its terminal, then sends `input`.
///
/// Scripts start with `stty -echo` and a `read`: input sent once the read is waiting is
/// never echoed, and no marker needs to be replayed before the test can go on.
pub(crate) fn when_reading(ws: &mut crate::ws::Ws, pid: u32, input: &str) {
    crate::procfs::wait_reading_stdin(pid, EVENT).or_fail();
    ws.send_text(input).or_fail();
}

/// The pid of a session that no server could have (above Linux's pid_max limit of 2^22).
pub(crate) const UNKNOWN_PID: u32 = 999_999_999;
