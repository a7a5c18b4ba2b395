//! The driver: the core's [`Server`] plus what the runtime holds for it (sessions' pty
//! sides, clients' and connections' wake-ups, jobs' readers and waiting answers), and the
//! one place that carries out the core's outputs.
//!
//! Everything runs on one thread: the core sits in a `RefCell`, borrowed only inside
//! [`Driver::call`], never across an await. Outputs are drained under the borrow and
//! carried out after it is released, in the order the core decided them.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use axs_core::admission::ConnId;
use axs_core::client::Generation;
use axs_core::http::Response;
use axs_core::job::{JobAction, JobId};
use axs_core::limits::CONN_READ_CHUNK;
use axs_core::server::{Output, Server, SessionId};
use axs_core::session::Action;
use axs_core::time::Time;
use axs_host::Clock;
use axs_pty::{SpawnOptions, WinSize};
use smol::channel::{self, Receiver, Sender};
use smol::{LocalExecutor, Task};

use crate::pty::SessionIo;
use crate::reactor::Timer;
use crate::wake::Wake;

/// What the runtime holds for one `execute-command` job; gone once both are taken.
struct JobEntry {
    /// The pty reader (it owns the master), until `ClosePty`.
    reader: Option<Task<()>>,
    /// Where the answer goes: the connection waiting for it.
    answer: Option<Sender<Response>>,
}

/// The server and the runtime's tables; shared by every task as `Rc<Driver>`.
pub struct Driver {
    server: RefCell<Server>,
    clock: Clock,
    executor: Rc<LocalExecutor<'static>>,
    program: SpawnOptions,
    /// Sessions' pty sides, until `ClosePty` (or `Remove`).
    sessions: RefCell<HashMap<SessionId, Rc<SessionIo>>>,
    clients: RefCell<HashMap<(SessionId, Generation), Wake>>,
    /// Admitted connections' eviction wake-ups: closed on `Evict`.
    connections: RefCell<HashMap<ConnId, Wake>>,
    jobs: RefCell<HashMap<JobId, JobEntry>>,
    /// The deadline the timer task sleeps toward, and its wake-up when that changes.
    scheduled: Cell<Option<Time>>,
    timer: Wake,
    /// Closed on `Exit`.
    exit: Wake,
    /// The one buffer every pty and HTTP connection is read into: reads happen on this
    /// thread only and each is handed to the core before the next can start, so one
    /// buffer serves them all (one each would cost its size per idle session).
    read_buffer: RefCell<Vec<u8>>,
}

impl Driver {
    /// A driver for `server`, spawning its tasks on `executor`.
    pub fn new(
        server: Server,
        executor: Rc<LocalExecutor<'static>>,
        program: SpawnOptions,
    ) -> Rc<Driver> {
        Rc::new(Driver {
            server: RefCell::new(server),
            clock: Clock::start(),
            executor,
            program,
            sessions: RefCell::new(HashMap::new()),
            clients: RefCell::new(HashMap::new()),
            connections: RefCell::new(HashMap::new()),
            jobs: RefCell::new(HashMap::new()),
            scheduled: Cell::new(None),
            timer: Wake::new(),
            exit: Wake::new(),
            read_buffer: RefCell::new(Vec::new()),
        })
    }

    /// The program sessions run (sized per session).
    pub fn program(&self) -> &SpawnOptions {
        &self.program
    }

    /// The core's time now.
    pub fn now(&self) -> Time {
        self.clock.now()
    }

    /// Sleeps until the core's time `at`.
    pub async fn sleep_until(&self, at: Time) {
        Timer::at(self.clock.instant(at)).await;
    }

    /// Spawns a task on the executor; dropping the handle cancels it.
    pub fn spawn<T: 'static>(
        &self,
        future: impl std::future::Future<Output = T> + 'static,
    ) -> Task<T> {
        self.executor.spawn(future)
    }

    /// Calls into the core with the current time, then carries out every output.
    pub fn call<R>(&self, f: impl FnOnce(&mut Server, Time) -> R) -> R {
        let (result, outputs, deadline) = {
            let mut server = self.server.borrow_mut();
            let result = f(&mut server, self.clock.now());
            let outputs: Vec<Output> = std::iter::from_fn(|| server.poll_output()).collect();
            (result, outputs, server.poll_timeout())
        };
        for output in outputs {
            self.perform(output);
        }
        if deadline != self.scheduled.get() {
            self.timer.notify();
        }
        result
    }

    /// Reads the core without calling into it (no outputs can come of it).
    pub fn inspect<R>(&self, f: impl FnOnce(&Server) -> R) -> R {
        f(&self.server.borrow())
    }

    /// Runs `f` on the shared read buffer (at least the core's `read_size` and
    /// [`CONN_READ_CHUNK`] bytes). Never call it from inside `f`, and never hold it across
    /// an await.
    pub fn with_read_buffer<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let mut buffer = self.read_buffer.borrow_mut();
        if buffer.is_empty() {
            let size = self.inspect(Server::read_size).max(CONN_READ_CHUNK);
            buffer.resize(size, 0);
        }
        f(&mut buffer)
    }

    fn perform(&self, output: Output) {
        match output {
            Output::Session(id, action) => self.perform_session(id, action),
            Output::Signal(signal) => axs_host::signal::deliver(signal),
            Output::Job(job, action) => self.perform_job(job, action),
            Output::Evict(cid) => {
                if let Some(evicted) = self.connections.borrow_mut().remove(&cid) {
                    evicted.close();
                }
            }
            Output::Exit => self.exit.close(),
        }
    }

    fn perform_session(&self, id: SessionId, action: Action) {
        match &action {
            // Input may be a password: its length only.
            Action::WritePty(bytes) => log::trace!("session {id}: write {} bytes", bytes.len()),
            other => log::trace!("session {id}: {other:?}"),
        }
        match action {
            Action::WritePty(bytes) => self.with_io(id, |io| io.queue_input(&bytes)),
            Action::ResizePty { cols, rows } => {
                self.with_io(id, |io| io.resize(WinSize { cols, rows }));
            }
            Action::PausePty => self.with_io(id, SessionIo::pause),
            Action::ResumePty => self.with_io(id, SessionIo::resume),
            Action::Wake(generation) => {
                if let Some(wake) = self.clients.borrow().get(&(id, generation)) {
                    wake.notify();
                }
            }
            Action::ClosePty => self.close_pty(id),
            // The server turns it into `Output::Signal`s; it never comes out.
            Action::Terminate => {}
            Action::Remove => self.remove(id),
        }
    }

    fn perform_job(&self, job: JobId, action: JobAction) {
        let mut jobs = self.jobs.borrow_mut();
        let Some(entry) = jobs.get_mut(&job) else {
            return;
        };
        match action {
            // Dropping the reader cancels it and closes the master it owns.
            JobAction::ClosePty => drop(entry.reader.take()),
            JobAction::Answer(answer) => {
                if let Some(waiting) = entry.answer.take() {
                    // The connection may have gone; nobody else wants the answer.
                    let _ = waiting.try_send(answer);
                }
            }
        }
        if entry.reader.is_none() && entry.answer.is_none() {
            jobs.remove(&job);
        }
    }

    fn with_io(&self, id: SessionId, f: impl FnOnce(&SessionIo)) {
        if let Some(io) = self.io(id) {
            f(&io);
        }
    }

    fn io(&self, id: SessionId) -> Option<Rc<SessionIo>> {
        self.sessions.borrow().get(&id).cloned()
    }

    /// Waits while session `id` has more input queued than its program takes.
    pub async fn input_room(&self, id: SessionId) {
        if let Some(io) = self.io(id) {
            io.input_room().await;
        }
    }

    fn close_pty(&self, id: SessionId) {
        let io = self.sessions.borrow_mut().remove(&id);
        if let Some(io) = io {
            io.close();
        }
    }

    fn remove(&self, id: SessionId) {
        self.close_pty(id);
        // Clients of a removed session have had their close; end their writers.
        self.clients.borrow_mut().retain(|(sid, _), wake| {
            if *sid == id {
                wake.close();
            }
            *sid != id
        });
    }

    /// Registers a freshly spawned session's pty side.
    pub fn add_session(&self, id: SessionId, io: Rc<SessionIo>) {
        self.sessions.borrow_mut().insert(id, io);
    }

    /// Registers a WebSocket client's wake-up.
    pub fn add_client(&self, id: SessionId, generation: Generation, wake: Wake) {
        self.clients.borrow_mut().insert((id, generation), wake);
    }

    /// Forgets a WebSocket client's wake-up.
    pub fn remove_client(&self, id: SessionId, generation: Generation) {
        self.clients.borrow_mut().remove(&(id, generation));
    }

    /// Registers an admitted connection; the wake-up is closed if the core evicts it.
    pub fn add_connection(&self, cid: ConnId) -> Wake {
        let evicted = Wake::new();
        self.connections.borrow_mut().insert(cid, evicted.clone());
        evicted
    }

    /// The connection ended: forgets it and tells the core.
    pub fn connection_closed(&self, cid: ConnId) {
        self.connections.borrow_mut().remove(&cid);
        self.call(|server, _| server.connection_closed(cid));
    }

    /// Registers a job about to be spawned; its answer comes out of the receiver.
    pub fn add_job(&self, job: JobId) -> Receiver<Response> {
        let (answer, waiting) = channel::bounded(1);
        let entry = JobEntry {
            reader: None,
            answer: Some(answer),
        };
        self.jobs.borrow_mut().insert(job, entry);
        waiting
    }

    /// Hands a spawned job its pty reader (before the core hears of the spawn).
    pub fn set_job_reader(&self, job: JobId, reader: Task<()>) {
        if let Some(entry) = self.jobs.borrow_mut().get_mut(&job) {
            entry.reader = Some(reader);
        }
    }

    /// SIGCHLD arrived: reaps exactly the children the core lists, each reported at once
    /// (before any later spawn could reuse its pid).
    pub fn reap(&self) {
        let pids: Vec<u32> = self.inspect(|server| server.unreaped().collect());
        for pid in pids {
            match axs_pty::try_wait(pid) {
                Ok(Some(status)) => {
                    log::debug!("child {pid} ended: {status}");
                    let status = axs_host::exit_status(status);
                    self.call(|server, now| server.child_exited(pid, status, now));
                }
                Ok(None) => {}
                Err(e) => log::debug!("waitpid({pid}): {e}"),
            }
        }
    }

    /// The timer task: sleeps until the core's next deadline (or until it changes) and
    /// hands the core its timeouts.
    pub async fn run_timers(self: Rc<Driver>) {
        loop {
            let deadline = self.inspect(Server::poll_timeout);
            self.scheduled.set(deadline);
            let fired = match deadline {
                Some(at) => {
                    futures_lite::future::or(
                        async {
                            self.sleep_until(at).await;
                            true
                        },
                        async { !self.timer.wait().await },
                    )
                    .await
                }
                None => !self.timer.wait().await,
            };
            if fired {
                self.call(|server, now| server.handle_timeout(now));
            }
        }
    }

    /// Waits for the core's `Exit` (every output before it is carried out by then).
    pub async fn exited(&self) {
        while self.exit.wait().await {}
    }
}
