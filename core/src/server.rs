//! The server: the one place that decides about sessions, `execute-command` jobs, the
//! processes they spawn, connection admission and the server's own end.
//!
//! A runtime feeds it inputs (requests, pty bytes, exits, timers) and drains
//! [`Server::poll_output`] until `None` after each, carrying out every [`Output`].
//!
//! Invariants: a session is registered only once its program was spawned (a spawn failure
//! leaves nothing behind); live sessions plus reservations never exceed `max_sessions`;
//! ids are the programs' pids; jobs in flight never exceed [`MAX_JOBS`]; every output comes
//! out in the order it was decided; a removed session is gone from the registry before its
//! `Remove` is seen; a session's or job's processes are hung up, then killed
//! [`crate::limits::TERMINATE_GRACE`] later ([`crate::process`]); [`Output::Exit`] comes
//! exactly once, after shutdown, and every pending kill comes out right before it.
//!
//! # Shutdown
//!
//! [`Server::shutdown`] refuses new sessions and jobs, terminates every session (clients
//! get their exit message and close as the programs end) and answers every job in flight
//! (its output if its shell already exited, else a "shutting down" failure). `Exit` comes
//! once no session, reservation, unreported job spawn or WebSocket is left, or at
//! [`SHUTDOWN_LIMIT`] whatever is left.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::admission::{AcceptFailure, Admission, ConnId, Connections, Opened};
use crate::api::{self, ApiError, AttachRequest, Policy, Route, TermSize, TerminalInfo};
use crate::client::Generation;
use crate::contention::{Activity, OutputSlice};
use crate::deadline::Deadlines;
use crate::frame::{ExitStatus, Frame};
use crate::http::{RequestHead, Response};
use crate::job::{Job, JobAction, JobId, JobSpawnFailure};
use crate::limits::{MAX_CONNECTIONS, MAX_JOBS, SHUTDOWN_LIMIT};
use crate::process::{Owner, ProcessTable, Signal};
use crate::session::{Action, AttachOptions, Phase, Session, SessionConfig};
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
    /// Spawn `sh -c command` on a pty in `cwd`, then report with [`Server::job_spawned`]
    /// or [`Server::job_spawn_failed`]; the answer comes as [`JobAction::Answer`].
    Execute {
        /// The job.
        job: JobId,
        /// The shell command line.
        command: String,
        /// The working directory.
        cwd: String,
    },
}

/// An effect for the runtime to carry out, from [`Server::poll_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A session's effect (never [`Action::Terminate`]: that comes out as signals).
    Session(SessionId, Action),
    /// Signal a process group the server spawned.
    Signal(Signal),
    /// An `execute-command` job's effect.
    Job(JobId, JobAction),
    /// Stop serving this connection now (it made room for a newer one; see
    /// [`crate::admission`]).
    Evict(ConnId),
    /// Shutdown is complete: exit the process with status 0.
    Exit,
}

/// What a deadline in the server's index is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Session(SessionId),
    Job(JobId),
}

/// Every session, job, spawned process and connection, the queue of their effects and the
/// index of their deadlines.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    policy: Policy,
    sessions: BTreeMap<SessionId, Session>,
    reserved: usize,
    jobs: BTreeMap<JobId, Job>,
    last_job: u64,
    processes: ProcessTable,
    connections: Connections,
    outputs: VecDeque<Output>,
    deadlines: Deadlines<Timer>,
    /// Which sessions were in use lately: the pty readers' budgets depend on it.
    activity: Activity,
    /// When shutdown gives up waiting; `Some` once shutting down.
    shutdown_limit: Option<Time>,
    exited: bool,
}

impl Server {
    /// An empty server.
    pub fn new(config: ServerConfig, policy: Policy) -> Server {
        Server {
            config,
            policy,
            sessions: BTreeMap::new(),
            reserved: 0,
            jobs: BTreeMap::new(),
            last_job: 0,
            processes: ProcessTable::default(),
            connections: Connections::default(),
            outputs: VecDeque::new(),
            deadlines: Deadlines::default(),
            activity: Activity::default(),
            shutdown_limit: None,
            exited: false,
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

    /// Number of `execute-command` jobs in flight (not answered, or answered while their
    /// spawn is still to be reported).
    pub fn jobs_in_flight(&self) -> usize {
        self.jobs.len()
    }

    /// How many spawned process groups the server still tracks (not reaped yet, or with
    /// a kill pending, or their session still registered).
    pub fn tracked_processes(&self) -> usize {
        self.processes.len()
    }

    /// Decides what a routed request does.
    fn handle(&mut self, head: &RequestHead, route: Route, now: Time) -> Result<Reply, ApiError> {
        let respond = |r: Response| Ok(Reply::Respond(r));
        let cors = || api::cors_headers(head, &self.policy);
        match route {
            Route::Status => respond(api::status_ok()),
            Route::Page(asset) => respond(asset.respond(head)),
            Route::ListTerminals => respond(api::terminal_list(&self.terminals(now))),
            Route::Preflight => respond(api::preflight(head, &self.policy)),
            Route::CreateTerminal { size } => {
                let cors = cors();
                self.reserve(size, cors).map(Reply::Spawn)
            }
            Route::Attach(request) => self.attach(head, &request, now),
            Route::Resize { id, size } => {
                self.resize(id, size, now)?;
                respond(api::success())
            }
            Route::Terminate { id } => {
                self.terminate(id, now);
                respond(api::success())
            }
            Route::TerminateUnknown => respond(api::success()),
            Route::ExecuteCommand { command, cwd } => {
                let cors = cors();
                Ok(self.execute(command, cwd, cors))
            }
        }
    }

    /// What `GET /terminals` tells about every registered session, by id.
    pub fn terminals(&self, now: Time) -> Vec<TerminalInfo> {
        self.sessions
            .iter()
            .map(|(id, session)| TerminalInfo {
                id: *id,
                size: session.size(),
                clients: session.client_count(),
                age: session.started_at().until(now),
                exit: match session.phase() {
                    Phase::Running => None,
                    Phase::Draining { status, .. } | Phase::Exited { status, .. } => {
                        Some(status.clone())
                    }
                },
            })
            .collect()
    }

    /// Holds a slot for a session about to be spawned; 503 at the limit. At the limit, the
    /// oldest exited session that no client watches makes room first.
    fn reserve(
        &mut self,
        size: TermSize,
        cors: Vec<(String, String)>,
    ) -> Result<Reservation, ApiError> {
        if self.is_shutting_down() {
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
    pub fn spawned(&mut self, reservation: Reservation, id: SessionId, now: Time) -> Response {
        // The pty was opened at the reserved size: the session starts with nothing to do.
        let Reservation { cors, size } = reservation;
        self.reserved = self.reserved.saturating_sub(1);
        // A pid is reused only after the old process was reaped: an old exited session
        // under the same id makes way for the new one. The runtime's entry for the id
        // belongs to the new session now, so no `Remove` is announced for the old one;
        // numbering continues, so the old session's clients never name the new one's.
        let first_generation = self.forget(id).map_or(1, |old| old.next_generation());
        self.processes.spawned(id, Owner::Session(id));
        let mut session = Session::new(self.config.session)
            .with_first_generation(first_generation)
            .started(size, now);
        if self.is_shutting_down() {
            // Reserved before the shutdown began: it ends with the others.
            session.terminate();
        }
        self.sessions.insert(id, session);
        self.after(id, now);
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
        self.after(request.id, now);
        Ok(Reply::Upgrade {
            response,
            id: request.id,
            generation,
        })
    }

    fn resize(&mut self, id: SessionId, size: TermSize, now: Time) -> Result<(), ApiError> {
        let session = self
            .sessions
            .get_mut(&id)
            .ok_or(ApiError::UnknownSession(id))?;
        session.resize(size.cols, size.rows);
        self.after(id, now);
        Ok(())
    }

    /// Ends a session: its processes are hung up now and killed after the grace (unknown
    /// ids are fine: terminating twice is not an error).
    pub fn terminate(&mut self, id: SessionId, now: Time) {
        self.with(id, now, |s, _| s.terminate());
    }

    /// A client's socket closed.
    pub fn detach(&mut self, id: SessionId, generation: Generation, now: Time) {
        self.with(id, now, |s, now| s.detach(generation, now));
    }

    /// Input from a client for the program.
    pub fn input(&mut self, id: SessionId, generation: Generation, bytes: &[u8], now: Time) {
        self.activity.saw(id, now);
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
        self.after(id, now);
        frame
    }

    /// Output read from a session's pty.
    pub fn pty_output(&mut self, id: SessionId, bytes: &[u8], now: Time) {
        self.activity.saw(id, now);
        self.with(id, now, |s, now| s.pty_output(bytes, now));
    }

    /// How session `id`'s pty reader (or a client's writer) may handle its output at
    /// `now`: bytes in a row before it lets every other task run, and whether a read may
    /// wait for more; small slices that never wait while another session is in use
    /// ([`crate::contention`]).
    pub fn output_slice(&self, id: SessionId, now: Time) -> OutputSlice {
        self.activity.output_slice(id, now)
    }

    /// How a job's pty reader may handle its output at `now`: small slices that never
    /// wait while any session is in use ([`crate::contention`]).
    pub fn job_output_slice(&self, now: Time) -> OutputSlice {
        self.activity.job_output_slice(now)
    }

    /// A session's pty reached end of file (or failed: the same to the session).
    pub fn pty_eof(&mut self, id: SessionId, now: Time) {
        self.with(id, now, |s, now| s.pty_eof(now));
    }

    /// The pids of spawned processes not reaped yet: on SIGCHLD, the runtime tries to reap
    /// each and reports what it reaped with [`Server::child_exited`] — before it reports
    /// any later spawn, which could reuse the pid.
    pub fn unreaped(&self) -> impl Iterator<Item = u32> + '_ {
        self.processes.unreaped()
    }

    /// A spawned process was reaped: its status goes to the session or job that spawned
    /// it (a pid that is not an unreaped one of ours is ignored).
    pub fn child_exited(&mut self, pid: u32, status: ExitStatus, now: Time) {
        match self.processes.reaped(pid) {
            Some(Owner::Session(id)) => self.with(id, now, |s, now| s.child_exited(status, now)),
            Some(Owner::Job(job)) => self.with_job(job, now, |j, now| j.exited(now)),
            None => {}
        }
    }

    /// Starts an `execute-command` job; 503 at [`MAX_JOBS`] or while shutting down.
    fn execute(
        &mut self,
        command: String,
        cwd: Option<String>,
        cors: Vec<(String, String)>,
    ) -> Reply {
        let refusal = if self.is_shutting_down() {
            Some(ApiError::ShuttingDown)
        } else if self.jobs.len() >= MAX_JOBS {
            Some(ApiError::TooManyJobs { limit: MAX_JOBS })
        } else {
            None
        };
        if let Some(error) = refusal {
            // The command answers' shape: clients read `output` even from a failure.
            return Reply::Respond(api::command_error(error.status(), &error.to_string()));
        }
        self.last_job += 1;
        let job = JobId(self.last_job);
        self.jobs.insert(job, Job::new(cors));
        Reply::Execute {
            job,
            command,
            cwd: cwd.unwrap_or_else(|| self.config.home.clone()),
        }
    }

    /// A job's shell runs as `pid`: its time limit starts. A job answered meanwhile (the
    /// server is shutting down) ends at once: its pty is closed, its processes hung up.
    pub fn job_spawned(&mut self, job: JobId, pid: u32, now: Time) {
        self.processes.spawned(pid, Owner::Job(job));
        match self.jobs.get_mut(&job) {
            Some(state) if !state.is_answered() => {
                state.spawned(pid, now);
                self.deadlines.set(Timer::Job(job), state.poll_timeout());
            }
            _ => {
                self.jobs.remove(&job);
                self.outputs
                    .push_back(Output::Job(job, JobAction::ClosePty));
                self.end_job_processes(job, pid, now);
            }
        }
    }

    /// A job's shell could not be spawned: the answer says whose mistake it was.
    pub fn job_spawn_failed(&mut self, job: JobId, failure: &JobSpawnFailure) {
        self.deadlines.set(Timer::Job(job), None);
        if let Some(state) = self.jobs.remove(&job) {
            if !state.is_answered() {
                let answer = failure.answer().with_headers(state.cors().to_vec());
                self.outputs
                    .push_back(Output::Job(job, JobAction::Answer(answer)));
            }
        }
    }

    /// Output read from a job's pty (kept up to [`crate::limits::COMMAND_MAX_OUTPUT`]).
    pub fn job_output(&mut self, job: JobId, bytes: &[u8]) {
        if let Some(state) = self.jobs.get_mut(&job) {
            state.output(bytes);
        }
    }

    /// A job's pty reached end of file (or failed).
    pub fn job_eof(&mut self, job: JobId, now: Time) {
        self.with_job(job, now, |j, _| j.eof());
    }

    /// A new connection was accepted. At [`MAX_CONNECTIONS`] the oldest connection still
    /// reading its request is evicted ([`Output::Evict`]); when none is, the new one is
    /// refused.
    pub fn connection_opened(&mut self) -> Admission {
        match self.connections.open() {
            Opened::Admitted { id, evicted } => {
                self.outputs.extend(evicted.map(Output::Evict));
                Admission::Admitted(id)
            }
            Opened::Refused => {
                let error = ApiError::TooManyConnections {
                    limit: MAX_CONNECTIONS,
                };
                Admission::Refused(error.error_response(&[]))
            }
        }
    }

    /// `accept` failed at `now`. Out of descriptors, the oldest connection still reading
    /// its request may be evicted ([`Output::Evict`]) so the backlog's next connection
    /// gets its descriptor (see [`crate::admission`]). Returns how long to wait before
    /// accepting again: zero right after an eviction, else [`crate::limits::ACCEPT_RETRY`].
    pub fn accept_failed(&mut self, failure: AcceptFailure, now: Time) -> Duration {
        let (evicted, pause) = self.connections.accept_failed(failure, now);
        self.outputs.extend(evicted.map(Output::Evict));
        pause
    }

    /// The connection's request arrived whole: it is busy, no longer evictable.
    pub fn connection_request_complete(&mut self, id: ConnId) {
        self.connections.request_complete(id);
    }

    /// The connection is a WebSocket now: it no longer counts against the cap (shutdown
    /// waits for it to close).
    pub fn connection_upgraded(&mut self, id: ConnId) {
        self.connections.upgraded(id);
    }

    /// The connection closed (evicted or unknown ids are ignored).
    pub fn connection_closed(&mut self, id: ConnId) {
        self.connections.close(id);
    }

    /// How many connections count against [`MAX_CONNECTIONS`] now.
    pub fn connections_counted(&self) -> usize {
        self.connections.counted()
    }

    /// The server is stopping (see the module docs): refuse new sessions and jobs,
    /// terminate every session, answer every job. Calling it again does nothing.
    pub fn shutdown(&mut self, now: Time) {
        if self.is_shutting_down() {
            return;
        }
        self.shutdown_limit = Some(now.after(SHUTDOWN_LIMIT));
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.terminate(id, now);
        }
        let jobs: Vec<JobId> = self.jobs.keys().copied().collect();
        for job in jobs {
            self.with_job(job, now, |j, _| j.shutdown());
        }
    }

    /// True once [`Server::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown_limit.is_some()
    }

    /// True when shutting down and every session is gone.
    pub fn is_shut_down(&self) -> bool {
        self.is_shutting_down() && self.sessions.is_empty()
    }

    /// Timers fired: sessions' and jobs' deadlines, kills after the grace, and the
    /// shutdown limit.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.exited {
            return;
        }
        if self.shutdown_limit.is_some_and(|limit| limit <= now) {
            self.exit();
            return;
        }
        for timer in self.deadlines.due(now) {
            match timer {
                Timer::Session(id) => self.with(id, now, |s, now| s.handle_timeout(now)),
                Timer::Job(job) => self.with_job(job, now, Job::handle_timeout),
            }
        }
        let kills = self.processes.handle_timeout(now);
        self.outputs.extend(kills.into_iter().map(Output::Signal));
    }

    /// When [`Server::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.exited {
            return None;
        }
        [
            self.deadlines.first(),
            self.processes.poll_timeout(),
            self.shutdown_limit,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next effect to carry out; call until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() && self.is_done_shutting_down() {
            self.exit();
        }
        self.outputs.pop_front()
    }

    /// Shutting down and nothing is left to wait for.
    fn is_done_shutting_down(&self) -> bool {
        self.is_shutting_down()
            && !self.exited
            && self.sessions.is_empty()
            && self.reserved == 0
            && self.jobs.is_empty()
            && self.connections.upgraded_open() == 0
    }

    /// Every pending kill now, then [`Output::Exit`]: nothing we spawned outlives us.
    fn exit(&mut self) {
        let kills = self.processes.kill_all_pending();
        self.outputs.extend(kills.into_iter().map(Output::Signal));
        self.outputs.push_back(Output::Exit);
        self.exited = true;
    }

    fn with(&mut self, id: SessionId, now: Time, f: impl FnOnce(&mut Session, Time)) {
        if let Some(session) = self.sessions.get_mut(&id) {
            f(session, now);
            self.after(id, now);
        }
    }

    /// Runs `f` on a job; an answer it decides goes out, and the job's processes end.
    fn with_job(
        &mut self,
        job: JobId,
        now: Time,
        f: impl FnOnce(&mut Job, Time) -> Option<Response>,
    ) {
        let Some(state) = self.jobs.get_mut(&job) else {
            return;
        };
        let answer = f(state, now);
        self.deadlines.set(Timer::Job(job), state.poll_timeout());
        let Some(answer) = answer else {
            return;
        };
        let answer = answer.with_headers(state.cors().to_vec());
        let Some(pid) = state.pid() else {
            // Answered while its spawn is in progress: `job_spawned` ends it.
            self.outputs
                .push_back(Output::Job(job, JobAction::Answer(answer)));
            return;
        };
        self.jobs.remove(&job);
        self.outputs
            .push_back(Output::Job(job, JobAction::ClosePty));
        self.outputs
            .push_back(Output::Job(job, JobAction::Answer(answer)));
        self.end_job_processes(job, pid, now);
    }

    /// Hangs up what a job left (killed after the grace) and lets go of its process entry.
    fn end_job_processes(&mut self, job: JobId, pid: u32, now: Time) {
        let owner = Owner::Job(job);
        self.outputs
            .extend(self.processes.hang_up(pid, owner, now).map(Output::Signal));
        self.processes.release(pid, owner);
    }

    /// Moves a session's actions to the queue (a `Terminate` becomes a hangup and a kill
    /// schedule), removes it if it asked to go, and updates its deadline in the index.
    fn after(&mut self, id: SessionId, now: Time) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        while let Some(action) = session.poll_action() {
            let output = match action {
                Action::Terminate => self
                    .processes
                    .hang_up(id, Owner::Session(id), now)
                    .map(Output::Signal),
                action => Some(Output::Session(id, action)),
            };
            self.outputs.extend(output);
        }
        if session.is_removed() {
            self.remove(id);
        } else {
            self.deadlines
                .set(Timer::Session(id), session.poll_timeout());
        }
    }

    /// Takes a session out of the registry and the deadline index, silently.
    fn forget(&mut self, id: SessionId) -> Option<Session> {
        let session = self.sessions.remove(&id)?;
        self.deadlines.set(Timer::Session(id), None);
        Some(session)
    }

    /// Removes a session and tells the runtime (once: a session that asked to go has
    /// already queued its own `Remove`).
    fn remove(&mut self, id: SessionId) {
        if let Some(session) = self.forget(id) {
            self.processes.release(id, Owner::Session(id));
            if !session.is_removed() {
                self.outputs.push_back(Output::Session(id, Action::Remove));
            }
        }
    }
}
