//! The one lock: the core's `Server` plus the runtime's handles, and the output router.
//!
//! Every call into the server goes through [`Shared::call`] (or [`Shared::with_state`]),
//! which drains `poll_output()` before the lock is released and *routes* each output while
//! still holding it: a queue append, a flag flip, a condvar notify, an eventfd write or a
//! `TIOCSWINSZ` ioctl, none of which can block. Routing under the lock keeps the outputs of
//! concurrent threads in the order the core decided them (a `PausePty` can never overtake
//! the `ResumePty` that followed it, nor one client's input another's). What may take time
//! — signalling process groups, closing descriptors, shutting evicted sockets down,
//! re-arming the timer, exiting — happens after the lock is released ([`After`]), in the
//! order decided.
//!
//! Invariants: [`State`]'s tables change only through its methods; a handle is registered
//! in the same critical section as the core decision that makes outputs name it (a
//! client's `Wake`, a job's answer), so no output is lost; children are reaped under the
//! lock, so a reaped pid is reported to the core before any later spawn can reuse it.

use std::collections::HashMap;
use std::fs::File;
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axs_core::admission::{Admission, ConnId};
use axs_core::api::Policy;
use axs_core::conn::Request;
use axs_core::http::Response;
use axs_core::job::{JobAction, JobId};
use axs_core::process::Signal;
use axs_core::server::{Output, Reply, Reservation, Server, SessionId};
use axs_core::session::Action;
use axs_core::time::Time;
use axs_host::Clock;

use crate::handles::{ClientId, ClientSignal, InputQueue, ReadGate, SessionIo};
use crate::timer::Timer;

/// What a connection does with its request, with the handles its outputs will reach.
#[derive(Debug)]
pub enum Decision {
    /// Send this answer.
    Respond(Response),
    /// Spawn a session, then answer what the core says.
    Spawn(Reservation),
    /// Run an `execute-command` job; its answer arrives on `answer`.
    Execute {
        /// The job.
        job: JobId,
        /// What `sh -c` runs.
        command: String,
        /// Where.
        cwd: String,
        /// Receives the job's answer.
        answer: Receiver<Response>,
    },
    /// Send the 101, then serve this WebSocket client.
    Upgrade {
        /// The 101.
        response: Response,
        /// The client.
        client: ClientId,
        /// Its writer's wake-up.
        signal: Arc<ClientSignal>,
        /// Its session's input queue.
        input: Option<Arc<InputQueue>>,
    },
}

/// What the runtime holds for an `execute-command` job.
#[derive(Debug)]
struct JobIo {
    /// Where its answer goes (the connection waiting for it).
    answer: Sender<Response>,
    /// Stops its pty reader; set once its shell is spawned.
    gate: Option<Arc<ReadGate>>,
}

/// Everything behind the lock: the core and the handles its outputs name.
#[derive(Debug)]
pub struct State {
    server: Server,
    sessions: HashMap<SessionId, SessionIo>,
    clients: HashMap<ClientId, Arc<ClientSignal>>,
    jobs: HashMap<JobId, JobIo>,
    /// A clone of the socket of each admitted connection still reading its request, to
    /// shut it down on eviction.
    connections: HashMap<ConnId, TcpStream>,
}

/// Effects that wait until the lock is released, in the order decided.
#[derive(Debug, Default)]
#[must_use = "run it after releasing the lock"]
struct After {
    close: Vec<Arc<File>>,
    signals: Vec<Signal>,
    evicted: Vec<TcpStream>,
    deadline: Option<Time>,
    exit: bool,
    /// The last session went: give the memory its threads freed back (glibc's arenas).
    idle: bool,
}

impl After {
    fn run(self, shared: &Shared) {
        drop(self.close);
        if self.idle {
            axs_pty::release_free_memory();
        }
        for signal in self.signals {
            axs_host::signal::deliver(signal);
        }
        for stream in self.evicted {
            // Its thread's read ends; the connection closes.
            let _ = stream.shutdown(Shutdown::Both);
        }
        if let Some(deadline) = self.deadline {
            shared.timer.arm(shared.clock.instant(deadline));
        }
        if self.exit {
            log::info!("shut down");
            std::process::exit(0);
        }
    }
}

impl State {
    /// The core.
    pub fn server(&mut self) -> &mut Server {
        &mut self.server
    }

    /// Admits a connection just accepted; `stream` is a clone of its socket.
    pub fn open_connection(&mut self, stream: TcpStream) -> Admission {
        let admission = self.server.connection_opened();
        if let Admission::Admitted(cid) = admission {
            self.connections.insert(cid, stream);
        }
        admission
    }

    /// A connection is done with its socket (closed, or its WebSocket ended).
    pub fn close_connection(&mut self, cid: ConnId) {
        self.connections.remove(&cid);
        self.server.connection_closed(cid);
    }

    /// Asks the core about a whole request, and registers the handles its reply needs.
    pub fn request(&mut self, cid: ConnId, request: &Request, now: Time) -> Decision {
        self.server.connection_request_complete(cid);
        // A connection whose request is whole is never evicted: its clone can go now, so
        // an attached client holds no descriptor beyond its own.
        self.connections.remove(&cid);
        match self.server.request(&request.head, &request.body, now) {
            Reply::Respond(response) => Decision::Respond(response),
            Reply::Spawn(reservation) => Decision::Spawn(reservation),
            Reply::Execute { job, command, cwd } => {
                let (sender, answer) = mpsc::channel();
                let io = JobIo {
                    answer: sender,
                    gate: None,
                };
                self.jobs.insert(job, io);
                Decision::Execute {
                    job,
                    command,
                    cwd,
                    answer,
                }
            }
            Reply::Upgrade {
                response,
                id,
                generation,
            } => {
                let client = ClientId { id, generation };
                let signal = Arc::new(ClientSignal::default());
                self.clients.insert(client, Arc::clone(&signal));
                let input = self.sessions.get(&id).map(|io| Arc::clone(io.input()));
                Decision::Upgrade {
                    response,
                    client,
                    signal,
                    input,
                }
            }
        }
    }

    /// A client's socket is done.
    pub fn detach(&mut self, client: ClientId, now: Time) {
        self.clients.remove(&client);
        self.server.detach(client.id, client.generation, now);
    }

    /// Registers a spawned session's handles (before telling the core). A reused pid's old
    /// session is gone from the core by then: its handles are closed, its clients told.
    pub fn add_session(&mut self, id: SessionId, io: SessionIo) -> Option<Arc<File>> {
        let old = self.sessions.insert(id, io);
        old.and_then(|old| self.forget_session(id, old))
    }

    /// A job's shell runs: its reader stops at the core's `ClosePty` through `gate`.
    pub fn job_started(&mut self, job: JobId, gate: &Arc<ReadGate>) {
        if let Some(io) = self.jobs.get_mut(&job) {
            io.gate = Some(Arc::clone(gate));
        }
    }

    /// Reaps every spawned process that has ended and tells the core how it ended.
    pub fn reap(&mut self, now: Time) {
        let unreaped: Vec<u32> = self.server.unreaped().collect();
        for pid in unreaped {
            self.reap_pid(pid, now);
        }
    }

    /// Reaps `pid` if it has ended and tells the core how it ended. After a spawn this,
    /// not [`State::reap`], covers an exit that came before the registration: one
    /// `waitpid` instead of one per live child, under the lock every thread shares.
    pub fn reap_pid(&mut self, pid: u32, now: Time) {
        match axs_pty::try_wait(pid) {
            Ok(None) => {}
            Ok(Some(status)) => {
                log::debug!("process {pid}: {status}");
                let status = axs_host::exit_status(status);
                self.server.child_exited(pid, status, now);
            }
            // Only we reap our children: cannot happen.
            Err(e) => log::warn!("process {pid}: wait: {e}"),
        }
    }

    /// Drains the core's outputs and routes each one (see the module docs).
    fn route_outputs(&mut self) -> After {
        let mut after = After::default();
        while let Some(output) = self.server.poll_output() {
            match output {
                Output::Session(id, action) => self.route_session(id, action, &mut after),
                Output::Signal(signal) => after.signals.push(signal),
                Output::Job(job, action) => self.route_job(job, action),
                Output::Evict(cid) => after.evicted.extend(self.connections.remove(&cid)),
                Output::Exit => after.exit = true,
            }
        }
        after.deadline = self.server.poll_timeout();
        after
    }

    fn route_session(&mut self, id: SessionId, action: Action, after: &mut After) {
        if let Action::Wake(generation) = action {
            if let Some(client) = self.clients.get(&ClientId { id, generation }) {
                client.wake();
            }
            return;
        }
        if matches!(action, Action::Remove) {
            let gone = self.sessions.remove(&id);
            after.idle = self.sessions.is_empty();
            after
                .close
                .extend(gone.and_then(|io| self.forget_session(id, io)));
            return;
        }
        let Some(io) = self.sessions.get_mut(&id) else {
            return;
        };
        match action {
            Action::WritePty(bytes) => io.input().push(bytes),
            Action::ResizePty { cols, rows } => resize(id, io, cols, rows),
            Action::PausePty => io.gate().set_paused(true),
            Action::ResumePty => io.gate().set_paused(false),
            Action::ClosePty => after.close.extend(io.close()),
            // Handled above, or never reaches a runtime (Terminate comes out as signals).
            Action::Wake(_) | Action::Remove | Action::Terminate => {}
        }
    }

    /// Closes a session's handles and tells its clients it is gone; returns the master.
    fn forget_session(&mut self, id: SessionId, mut io: SessionIo) -> Option<Arc<File>> {
        self.clients.retain(|client, signal| {
            if client.id == id {
                signal.gone();
            }
            client.id != id
        });
        io.close()
    }

    fn route_job(&mut self, job: JobId, action: JobAction) {
        match action {
            JobAction::ClosePty => {
                if let Some(gate) = self.jobs.get(&job).and_then(|io| io.gate.as_ref()) {
                    gate.close();
                }
            }
            JobAction::Answer(response) => {
                if let Some(io) = self.jobs.remove(&job) {
                    if let Some(gate) = io.gate {
                        gate.close();
                    }
                    // The connection may be gone: nobody to answer.
                    let _ = io.answer.send(response);
                }
            }
        }
    }
}

/// `TIOCSWINSZ` on the master: one non-blocking ioctl.
fn resize(id: SessionId, io: &SessionIo, cols: u16, rows: u16) {
    if let Some(master) = io.master() {
        let size = axs_pty::WinSize { cols, rows };
        if let Err(e) = axs_pty::resize(master.as_fd(), size) {
            log::debug!("resize session {id}: {e}");
        }
    }
}

/// The state shared by every thread.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    clock: Clock,
    /// The core's next deadline, for the timer thread.
    timer: Timer,
    /// The request policy (it never changes: connections parse without the lock).
    policy: Policy,
    /// How many bytes a pty reader reads at once.
    read_size: usize,
}

impl Shared {
    /// Wraps a server; its clock starts now.
    pub fn new(server: Server) -> Arc<Shared> {
        Arc::new(Shared {
            policy: server.policy().clone(),
            read_size: server.read_size(),
            state: Mutex::new(State {
                server,
                sessions: HashMap::new(),
                clients: HashMap::new(),
                jobs: HashMap::new(),
                connections: HashMap::new(),
            }),
            clock: Clock::start(),
            timer: Timer::default(),
        })
    }

    /// The core's time now.
    pub fn now(&self) -> Time {
        self.clock.now()
    }

    /// The core's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The request policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How many bytes a pty reader reads at once (the core's `read_size`).
    pub fn read_size(&self) -> usize {
        self.read_size
    }

    /// Blocks until the core's deadline passes (the timer thread).
    pub fn wait_deadline(&self) {
        self.timer.wait_due();
    }

    /// The lock; a thread that panicked while holding it does not take the server down
    /// (the core never panics on any input, so its state is consistent).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the server, then carries out the outputs it produced.
    pub fn call<R>(&self, f: impl FnOnce(&mut Server, Time) -> R) -> R {
        self.with_state(|state, now| f(&mut state.server, now))
    }

    /// Like [`Shared::call`], with the runtime's tables too (to register handles in the
    /// same critical section as the core decision that needs them).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut State, Time) -> R) -> R {
        let (result, after) = {
            let mut state = self.lock();
            let result = f(&mut state, self.clock.now());
            (result, state.route_outputs())
        };
        after.run(self);
        result
    }
}
