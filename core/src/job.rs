//! One `execute-command` job: `sh -c COMMAND` on a pty, its output collected until the
//! answer is decided.
//!
//! # Lifecycle
//!
//! ```text
//! Spawning --spawned--> Running --(shell exited and pty EOF) or drain over--> answered
//!     |                    \--EXECUTE_COMMAND_TIMEOUT--> answered (failure)
//!     \--spawn failed--> answered (400 bad cwd, else 500)
//! ```
//!
//! Invariants: a job is answered exactly once; the answer never waits for what the
//! command left behind — at most [`COMMAND_DRAIN_AFTER_EXIT`] after the shell's exit
//! (a background job may hold the pty open forever) and never later than
//! [`EXECUTE_COMMAND_TIMEOUT`] after the spawn; at most [`COMMAND_MAX_OUTPUT`] bytes are
//! kept, the rest is dropped while reading goes on, so the command never blocks on a
//! full pty. What happens to the job's processes once it is answered is the server's
//! (hang up, then kill; see [`crate::process`]).

use std::fmt;

use crate::api::{self, ApiError, EXECUTE_COMMAND_TIMEOUT};
use crate::http::Response;
use crate::limits::{self, COMMAND_DRAIN_AFTER_EXIT, COMMAND_MAX_OUTPUT};
use crate::time::Time;

/// A job's id, given by the server in [`crate::server::Reply::Execute`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub(crate) u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {}", self.0)
    }
}

/// An effect the runtime carries out for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobAction {
    /// Stop reading the job's pty and close its master.
    ClosePty,
    /// The HTTP answer for the job's connection.
    Answer(Response),
}

/// Why a job's shell could not be spawned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSpawnFailure {
    /// The working directory does not exist or is unusable: the client's mistake (400).
    BadCwd(String),
    /// Anything else: the server's trouble (500).
    Failed(String),
}

impl JobSpawnFailure {
    /// The answer for the job's client (CORS headers are added by the server).
    pub(crate) fn answer(&self) -> Response {
        match self {
            JobSpawnFailure::BadCwd(reason) => {
                let error = ApiError::BadCwd(reason.clone());
                api::command_error(error.status(), &error.to_string())
            }
            JobSpawnFailure::Failed(reason) => api::command_failed(reason),
        }
    }
}

/// One job's state machine. Methods that can decide the answer return it (once).
#[derive(Debug, Clone, Default)]
pub(crate) struct Job {
    cors: Vec<(String, String)>,
    pid: Option<u32>,
    output: Vec<u8>,
    exited: bool,
    eof: bool,
    deadline: Option<Time>,
    answered: bool,
}

impl Job {
    /// A job about to be spawned; its answers carry `cors`.
    pub(crate) fn new(cors: Vec<(String, String)>) -> Job {
        Job {
            cors,
            ..Job::default()
        }
    }

    /// The CORS headers of the request that started the job.
    pub(crate) fn cors(&self) -> &[(String, String)] {
        &self.cors
    }

    /// The shell's pid, once spawned.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// True once the answer was given.
    pub(crate) fn is_answered(&self) -> bool {
        self.answered
    }

    /// The shell runs as `pid`: the time limit starts.
    pub(crate) fn spawned(&mut self, pid: u32, now: Time) {
        self.pid = Some(pid);
        if !self.answered {
            self.deadline = Some(now.after(EXECUTE_COMMAND_TIMEOUT));
        }
    }

    /// Output read from the pty: kept up to the cap, the rest dropped.
    pub(crate) fn output(&mut self, bytes: &[u8]) {
        let room = COMMAND_MAX_OUTPUT.saturating_sub(self.output.len());
        self.output
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// The pty reached EOF (or failed): the answer once the shell exited too.
    pub(crate) fn eof(&mut self) -> Option<Response> {
        self.eof = true;
        self.decide_if_done()
    }

    /// The shell exited: the answer at EOF or once the drain is over, whichever is first.
    pub(crate) fn exited(&mut self, now: Time) -> Option<Response> {
        self.exited = true;
        let drain_end = now.after(COMMAND_DRAIN_AFTER_EXIT);
        self.deadline = Some(self.deadline.map_or(drain_end, |d| d.min(drain_end)));
        self.decide_if_done()
    }

    /// Timers fired: the drain or the time limit is over.
    pub(crate) fn handle_timeout(&mut self, now: Time) -> Option<Response> {
        match self.deadline {
            Some(deadline) if deadline <= now && !self.answered => {
                if self.exited {
                    Some(self.answer_with_output())
                } else {
                    Some(self.answer_failed(&limits::command_timed_out()))
                }
            }
            _ => None,
        }
    }

    /// The server is shutting down: the answer now — the output when the shell already
    /// exited (only its last drained bytes may be missing), else a failure that says so.
    pub(crate) fn shutdown(&mut self) -> Option<Response> {
        if self.answered {
            return None;
        }
        if self.exited {
            return Some(self.answer_with_output());
        }
        let error = ApiError::ShuttingDown;
        self.answered = true;
        self.deadline = None;
        Some(api::command_error(error.status(), &error.to_string()))
    }

    /// When [`Job::handle_timeout`] should next be called.
    pub(crate) fn poll_timeout(&self) -> Option<Time> {
        self.deadline.filter(|_| !self.answered)
    }

    fn decide_if_done(&mut self) -> Option<Response> {
        (self.exited && self.eof && !self.answered).then(|| self.answer_with_output())
    }

    fn answer_with_output(&mut self) -> Response {
        self.answered = true;
        self.deadline = None;
        let output = std::mem::take(&mut self.output);
        api::command_output(&api::strip_ansi(&output))
    }

    fn answer_failed(&mut self, reason: &str) -> Response {
        self.answered = true;
        self.deadline = None;
        self.output = Vec::new();
        api::command_failed(reason)
    }
}
