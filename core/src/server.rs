//! The server: the registry of sessions, its limits, and the request decisions.
//!
//! Invariants: a session is registered only once its program was spawned (a spawn failure
//! leaves nothing behind); live sessions plus reservations never exceed `max_sessions`;
//! ids are the programs' pids; every session's actions come out of [`Server::poll_action`]
//! tagged with its id, in the order they were decided; a removed session is gone from the
//! registry before its `Remove` action is seen.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::api::{self, ApiError, AttachRequest, Policy, Route, TermSize};
use crate::client::Generation;
use crate::frame::{ExitStatus, Frame};
use crate::http::{RequestHead, Response};
use crate::session::{Action, AttachOptions, Session, SessionConfig};
use crate::time::Time;

/// A session's id: its program's pid.
pub type SessionId = u32;

/// Limits and defaults of a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Every new session's configuration.
    pub session: SessionConfig,
    /// Most sessions at once (running, draining or exited), counting spawns in progress.
    pub max_sessions: usize,
    /// The working directory of `execute-command` when the request names none.
    pub home: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            session: SessionConfig::default(),
            max_sessions: 64,
            home: String::from("/"),
        }
    }
}

/// A place held for a session whose program is being spawned. Hand it back to
/// [`Server::spawned`] or [`Server::spawn_failed`].
#[derive(Debug)]
#[must_use = "a reservation holds a session slot until it is handed back"]
pub struct Reservation {
    size: TermSize,
    cors: Vec<(String, String)>,
}

impl Reservation {
    /// The size the new session's pty starts with.
    pub fn size(&self) -> TermSize {
        self.size
    }
}

/// What the runtime does with a routed request.
#[derive(Debug)]
pub enum Reply {
    /// Send this answer.
    Respond(Response),
    /// Spawn the session program on a pty of `reservation.size()`, then report with
    /// [`Server::spawned`] or [`Server::spawn_failed`], which give the answer.
    Spawn(Reservation),
    /// Send `response` (101 Switching Protocols), then serve client `generation` of
    /// session `id` over the WebSocket.
    Upgrade {
        /// The 101 answer.
        response: Response,
        /// The session.
        id: SessionId,
        /// The new client.
        generation: Generation,
    },
    /// Run the job's command, then answer with [`Server::command_finished`].
    Execute(CommandJob),
}

/// An `execute-command` to run: `sh -c command` on a pty in `cwd`, for at most
/// [`api::EXECUTE_COMMAND_TIMEOUT`].
#[derive(Debug)]
pub struct CommandJob {
    /// The shell command line.
    pub command: String,
    /// The working directory.
    pub cwd: String,
    cors: Vec<(String, String)>,
}

/// How an `execute-command` went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandResult {
    /// It ran; everything it printed (escapes are stripped by the core).
    Output(Vec<u8>),
    /// The working directory does not exist or is not a directory.
    BadCwd(String),
    /// It could not run.
    Failed(String),
}

/// Every session, plus the queue of their effects and the index of their deadlines.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    policy: Policy,
    sessions: BTreeMap<SessionId, Session>,
    reserved: usize,
    actions: VecDeque<(SessionId, Action)>,
    deadlines: BTreeSet<(Time, SessionId)>,
    deadline_of: BTreeMap<SessionId, Time>,
    shutting_down: bool,
}

impl Server {
    /// An empty server.
    pub fn new(config: ServerConfig, policy: Policy) -> Server {
        Server {
            config,
            policy,
            sessions: BTreeMap::new(),
            reserved: 0,
            actions: VecDeque::new(),
            deadlines: BTreeSet::new(),
            deadline_of: BTreeMap::new(),
            shutting_down: false,
        }
    }

    /// The request policy (origins, token, body limit).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The answer to a request that failed before it could be routed (`head` when known).
    pub fn error_answer(&self, head: Option<&RequestHead>, error: ApiError) -> Response {
        api::answer(head, &self.policy, Err(error))
    }

    /// How many body bytes to read after `head`, or the answer that refuses the request.
    pub fn body_len(&self, head: &RequestHead) -> Result<usize, Response> {
        api::check_body_len(head, &self.policy).map_err(|e| self.error_answer(Some(head), e))
    }

    /// Routes a whole request and decides what it does. Every [`Reply::Respond`] carries
    /// its CORS headers.
    pub fn request(&mut self, head: &RequestHead, body: &[u8], now: Time) -> Reply {
        let outcome =
            api::route(head, body, &self.policy).and_then(|route| self.handle(head, route, now));
        match outcome {
            Ok(Reply::Respond(response)) => {
                Reply::Respond(api::answer(Some(head), &self.policy, Ok(response)))
            }
            Ok(reply) => reply,
            Err(error) => Reply::Respond(self.error_answer(Some(head), error)),
        }
    }

    /// The server's configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// How many bytes the runtime reads from a pty at once.
    pub fn read_size(&self) -> usize {
        self.config.session.normalized().read_size
    }

    /// Number of registered sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when no session is registered.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Whether a session with this id is registered.
    pub fn contains(&self, id: SessionId) -> bool {
        self.sessions.contains_key(&id)
    }

    /// The session, for inspection.
    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// Decides what a routed request does.
    fn handle(&mut self, head: &RequestHead, route: Route, now: Time) -> Result<Reply, ApiError> {
        let respond = |r: Response| Ok(Reply::Respond(r));
        let cors = || api::cors_headers(head, &self.policy);
        match route {
            Route::Status => respond(api::status_ok()),
            Route::Index => respond(api::index()),
            Route::Preflight => respond(api::preflight(head, &self.policy)),
            Route::CreateTerminal { size } => {
                let cors = cors();
                self.reserve(size, cors).map(Reply::Spawn)
            }
            Route::Attach(request) => self.attach(head, &request, now),
            Route::Resize { id, size } => {
                self.resize(id, size)?;
                respond(api::success())
            }
            Route::Terminate { id } => {
                self.terminate(id);
                respond(api::success())
            }
            Route::TerminateUnknown => respond(api::success()),
            Route::ExecuteCommand { command, cwd } => Ok(Reply::Execute(CommandJob {
                command,
                cwd: cwd.unwrap_or_else(|| self.config.home.clone()),
                cors: cors(),
            })),
        }
    }

    /// Holds a slot for a session about to be spawned; 503 at the limit. At the limit, the
    /// oldest exited session that no client watches makes room first.
    fn reserve(
        &mut self,
        size: TermSize,
        cors: Vec<(String, String)>,
    ) -> Result<Reservation, ApiError> {
        if self.shutting_down {
            return Err(ApiError::ShuttingDown);
        }
        if self.sessions.len() + self.reserved >= self.config.max_sessions {
            self.evict_one_exited();
        }
        if self.sessions.len() + self.reserved >= self.config.max_sessions {
            return Err(ApiError::TooManySessions {
                limit: self.config.max_sessions,
            });
        }
        self.reserved += 1;
        Ok(Reservation { size, cors })
    }

    /// Removes the exited session that nobody watches and that was due to go first.
    fn evict_one_exited(&mut self) {
        let oldest = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.has_clients())
            .filter_map(|(id, s)| s.retained_until().map(|until| (until, *id)))
            .min();
        if let Some((_, id)) = oldest {
            self.remove(id);
        }
    }

    /// The program of a reserved session was spawned with pid `id`: register it. Returns
    /// the answer for the creator.
    pub fn spawned(&mut self, reservation: Reservation, id: SessionId) -> Response {
        // The pty was opened at the reserved size: the session starts with nothing to do.
        let Reservation { cors, .. } = reservation;
        self.reserved = self.reserved.saturating_sub(1);
        // A pid is reused only after the old process was reaped: an old exited session
        // under the same id makes way for the new one. The runtime's entry for the id
        // belongs to the new session now, so no `Remove` is announced for the old one;
        // numbering continues, so the old session's clients never name the new one's.
        let first_generation = self.forget(id).map_or(1, |old| old.next_generation());
        let mut session = Session::new(self.config.session).with_first_generation(first_generation);
        if self.shutting_down {
            // Reserved before the shutdown began: it ends with the others.
            session.terminate();
        }
        self.sessions.insert(id, session);
        self.after(id);
        api::created(id).with_headers(cors)
    }

    /// Spawning a reserved session failed: nothing is registered. Returns the answer.
    pub fn spawn_failed(&mut self, reservation: Reservation, reason: &str) -> Response {
        self.reserved = self.reserved.saturating_sub(1);
        ApiError::SpawnFailed(reason.to_string()).error_response(&reservation.cors)
    }

    fn attach(
        &mut self,
        head: &RequestHead,
        request: &AttachRequest,
        now: Time,
    ) -> Result<Reply, ApiError> {
        let session = self
            .sessions
            .get_mut(&request.id)
            .ok_or(ApiError::UnknownSession(request.id))?;
        let response = api::websocket_accept(head)?;
        let options = AttachOptions {
            since: request.since,
            control: request.control,
            policy: request.policy,
        };
        let generation = session.attach(&options, now);
        self.after(request.id);
        Ok(Reply::Upgrade {
            response,
            id: request.id,
            generation,
        })
    }

    fn resize(&mut self, id: SessionId, size: TermSize) -> Result<(), ApiError> {
        let session = self
            .sessions
            .get_mut(&id)
            .ok_or(ApiError::UnknownSession(id))?;
        session.resize(size.cols, size.rows);
        self.collect(id);
        Ok(())
    }

    /// Ends a session (unknown ids are fine: terminating twice is not an error).
    pub fn terminate(&mut self, id: SessionId) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.terminate();
            self.after(id);
        }
    }

    /// A client's socket closed.
    pub fn detach(&mut self, id: SessionId, generation: Generation, now: Time) {
        self.with(id, now, |s, now| s.detach(generation, now));
    }

    /// Input from a client for the program.
    pub fn input(&mut self, id: SessionId, generation: Generation, bytes: &[u8], now: Time) {
        self.with(id, now, |s, _| s.input(generation, bytes));
    }

    /// The next frame for a client; `None` until a [`Action::Wake`] for it (or forever,
    /// once the client or session is gone).
    pub fn poll_transmit(
        &mut self,
        id: SessionId,
        generation: Generation,
        now: Time,
    ) -> Option<Frame> {
        let frame = self.sessions.get_mut(&id)?.poll_transmit(generation, now);
        self.after(id);
        frame
    }

    /// Output read from a session's pty.
    pub fn pty_output(&mut self, id: SessionId, bytes: &[u8], now: Time) {
        self.with(id, now, |s, now| s.pty_output(bytes, now));
    }

    /// A session's pty reached end of file (or failed: the same to the session).
    pub fn pty_eof(&mut self, id: SessionId, now: Time) {
        self.with(id, now, |s, now| s.pty_eof(now));
    }

    /// A session's program exited.
    pub fn child_exited(&mut self, id: SessionId, status: ExitStatus, now: Time) {
        self.with(id, now, |s, now| s.child_exited(status, now));
    }

    /// The answer to an `execute-command` that ran: its output with escapes stripped, or
    /// why it could not run.
    pub fn command_finished(&self, job: CommandJob, result: CommandResult) -> Response {
        let response = match result {
            CommandResult::Output(output) => api::command_output(&api::strip_ansi(&output)),
            CommandResult::BadCwd(reason) => {
                let error = ApiError::BadCwd(reason);
                api::command_error(error.status(), &error.to_string())
            }
            CommandResult::Failed(reason) => api::command_failed(&reason),
        };
        response.with_headers(job.cors)
    }

    /// The server is stopping: terminate every session and refuse new ones. Clients get
    /// their session's output and exit message as the programs end.
    pub fn shutdown(&mut self) {
        self.shutting_down = true;
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.terminate(id);
        }
    }

    /// True when shutting down and every session is gone.
    pub fn is_shut_down(&self) -> bool {
        self.shutting_down && self.sessions.is_empty()
    }

    /// Timers fired: runs every session whose deadline is due.
    pub fn handle_timeout(&mut self, now: Time) {
        let due: Vec<SessionId> = self
            .deadlines
            .range(..=(now, SessionId::MAX))
            .map(|(_, id)| *id)
            .collect();
        for id in due {
            self.with(id, now, |s, now| s.handle_timeout(now));
        }
    }

    /// The earliest deadline of any session.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// The next effect to carry out, with the session it is for.
    pub fn poll_action(&mut self) -> Option<(SessionId, Action)> {
        self.actions.pop_front()
    }

    fn with(&mut self, id: SessionId, now: Time, f: impl FnOnce(&mut Session, Time)) {
        if let Some(session) = self.sessions.get_mut(&id) {
            f(session, now);
            self.after(id);
        }
    }

    /// Moves a session's actions to the queue, removes it if it asked to go, and updates
    /// its deadline in the index.
    fn after(&mut self, id: SessionId) {
        self.collect(id);
        let deadline = self.sessions.get(&id).and_then(Session::poll_timeout);
        let old = match deadline {
            Some(t) => self.deadline_of.insert(id, t),
            None => self.deadline_of.remove(&id),
        };
        if old != deadline {
            if let Some(old) = old {
                self.deadlines.remove(&(old, id));
            }
            if let Some(new) = deadline {
                self.deadlines.insert((new, id));
            }
        }
    }

    fn collect(&mut self, id: SessionId) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        while let Some(action) = session.poll_action() {
            self.actions.push_back((id, action));
        }
        if session.is_removed() {
            self.remove(id);
        }
    }

    /// Takes a session out of the registry and the deadline index, silently.
    fn forget(&mut self, id: SessionId) -> Option<Session> {
        let session = self.sessions.remove(&id)?;
        if let Some(t) = self.deadline_of.remove(&id) {
            self.deadlines.remove(&(t, id));
        }
        Some(session)
    }

    /// Removes a session and tells the runtime (once: a session that asked to go has
    /// already queued its own `Remove`).
    fn remove(&mut self, id: SessionId) {
        if let Some(session) = self.forget(id) {
            if !session.is_removed() {
                self.actions.push_back((id, Action::Remove));
            }
        }
    }
}
