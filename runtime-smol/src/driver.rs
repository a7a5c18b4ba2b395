//! The driver: the core's [`Server`] plus what the runtime holds for it (pty tasks,
//! client wake-ups, children to reap), and the one place that carries out core actions.
//!
//! Everything runs on one thread: the core sits in a `RefCell`, borrowed only inside
//! [`Driver::call`], never across an await. Actions are collected under the borrow and
//! performed after it is released.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use axs_core::client::Generation;
use axs_core::limits::TERMINATE_GRACE;
use axs_core::server::{Server, SessionId};
use axs_core::session::Action;
use axs_core::time::Time;
use axs_host::Clock;
use axs_pty::{SpawnOptions, WinSize};
use smol::{LocalExecutor, Task, Timer};

use crate::pty::SessionIo;
use crate::wake::Wake;

/// A child process the runtime must reap, and who wants to know how it ended.
#[derive(Debug)]
pub enum Child {
    /// A session's program; `serial` tells a reused pid apart.
    Session {
        /// The runtime's number for this spawn.
        serial: u64,
    },
    /// An `execute-command` job; the status goes to its task.
    Job(smol::channel::Sender<axs_pty::ExitStatus>),
    /// Nobody waits any more (its session was removed first); reap it quietly.
    Orphan,
}

/// What the runtime holds for one session.
struct SessionEntry {
    serial: u64,
    /// The pty side, until `ClosePty`.
    io: Option<Rc<SessionIo>>,
    /// The pty reader and input writer; dropping them cancels them.
    tasks: Vec<Task<()>>,
}

/// The server and the runtime's tables; shared by every task as `Rc<Driver>`.
pub struct Driver {
    me: Weak<Driver>,
    server: RefCell<Server>,
    clock: Clock,
    executor: Rc<LocalExecutor<'static>>,
    program: SpawnOptions,
    sessions: RefCell<HashMap<SessionId, SessionEntry>>,
    clients: RefCell<HashMap<(SessionId, Generation), Wake>>,
    children: RefCell<HashMap<u32, Child>>,
    next_serial: Cell<u64>,
    /// Sessions hung up whose grace has not run out (pid to serial).
    hung_up: RefCell<HashMap<SessionId, u64>>,
    /// The deadline the timer task sleeps toward, and its wake-up when that changes.
    scheduled: Cell<Option<Time>>,
    timer: Wake,
    /// Woken after every call into the core, and when a WebSocket client ends.
    progress: Wake,
    /// WebSocket clients still connected.
    connections: Cell<usize>,
    /// The one buffer every session's pty is read into: reads happen on this thread only
    /// and each is handed to the core before the next can start, so one buffer serves
    /// them all (one per session would cost `read_size` of memory per idle session).
    read_buffer: RefCell<Vec<u8>>,
}

impl Driver {
    /// A driver for `server`, spawning its tasks on `executor`.
    pub fn new(
        server: Server,
        executor: Rc<LocalExecutor<'static>>,
        program: SpawnOptions,
    ) -> Rc<Driver> {
        Rc::new_cyclic(|me| Driver {
            me: me.clone(),
            server: RefCell::new(server),
            clock: Clock::start(),
            executor,
            program,
            sessions: RefCell::new(HashMap::new()),
            clients: RefCell::new(HashMap::new()),
            children: RefCell::new(HashMap::new()),
            next_serial: Cell::new(0),
            hung_up: RefCell::new(HashMap::new()),
            scheduled: Cell::new(None),
            timer: Wake::new(),
            progress: Wake::new(),
            connections: Cell::new(0),
            read_buffer: RefCell::new(Vec::new()),
        })
    }

    /// The program sessions run (sized per session).
    pub fn program(&self) -> &SpawnOptions {
        &self.program
    }

    /// Spawns a task on the executor, detached.
    pub fn spawn_detached(&self, future: impl std::future::Future<Output = ()> + 'static) {
        self.executor.spawn(future).detach();
    }

    /// Spawns a task on the executor; dropping the handle cancels it.
    pub fn spawn<T: 'static>(
        &self,
        future: impl std::future::Future<Output = T> + 'static,
    ) -> Task<T> {
        self.executor.spawn(future)
    }

    /// Calls into the core with the current time, then carries out every action it decided.
    pub fn call<R>(&self, f: impl FnOnce(&mut Server, Time) -> R) -> R {
        let (result, actions, deadline) = {
            let mut server = self.server.borrow_mut();
            let result = f(&mut server, self.clock.now());
            let actions: Vec<(SessionId, Action)> =
                std::iter::from_fn(|| server.poll_action()).collect();
            (result, actions, server.poll_timeout())
        };
        for (id, action) in actions {
            self.perform(id, action);
        }
        if deadline != self.scheduled.get() {
            self.timer.notify();
        }
        self.progress.notify();
        result
    }

    /// Runs `f` on the shared pty read buffer (`read_size` bytes). Never call it from
    /// inside `f`, and never hold it across an await.
    pub fn with_read_buffer<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let mut buffer = self.read_buffer.borrow_mut();
        if buffer.is_empty() {
            let size = self.inspect(|server| server.read_size()).max(1);
            buffer.resize(size, 0);
        }
        f(&mut buffer)
    }

    /// Reads the core without calling into it (no actions can come of it).
    pub fn inspect<R>(&self, f: impl FnOnce(&Server) -> R) -> R {
        f(&self.server.borrow())
    }

    fn perform(&self, id: SessionId, action: Action) {
        match &action {
            // Input may be a password: its length only.
            Action::WritePty(bytes) => log::trace!("session {id}: write {} bytes", bytes.len()),
            other => log::trace!("session {id}: {other:?}"),
        }
        match action {
            Action::WritePty(bytes) => {
                if let Some(io) = self.io(id) {
                    io.queue_input(&bytes);
                }
            }
            Action::ResizePty { cols, rows } => {
                if let Some(io) = self.io(id) {
                    io.resize(WinSize { cols, rows });
                }
            }
            Action::PausePty => {
                if let Some(io) = self.io(id) {
                    io.pause();
                }
            }
            Action::ResumePty => {
                if let Some(io) = self.io(id) {
                    io.resume();
                }
            }
            Action::Wake(generation) => {
                if let Some(wake) = self.clients.borrow().get(&(id, generation)) {
                    wake.notify();
                }
            }
            Action::ClosePty => {
                if let Some(entry) = self.sessions.borrow_mut().get_mut(&id) {
                    if let Some(io) = entry.io.take() {
                        io.close();
                    }
                    entry.tasks.clear();
                }
            }
            Action::Terminate => self.terminate(id),
            Action::Remove => self.remove(id),
        }
    }

    /// Waits while session `id` has more input queued than its program takes.
    pub async fn input_room(&self, id: SessionId) {
        if let Some(io) = self.io(id) {
            io.input_room().await;
        }
    }

    fn io(&self, id: SessionId) -> Option<Rc<SessionIo>> {
        self.sessions.borrow().get(&id).and_then(|e| e.io.clone())
    }

    /// Hangs up the session's processes now, and kills what remains after the grace.
    fn terminate(&self, id: SessionId) {
        let Some(serial) = self.sessions.borrow().get(&id).map(|e| e.serial) else {
            return;
        };
        if !self.still_ours(id, serial) {
            // Everything ended and was reaped: the pid may belong to a stranger now.
            return;
        }
        if let Err(e) = axs_pty::hangup_group(id) {
            log::debug!("session {id}: hangup: {e}");
        }
        self.hung_up.borrow_mut().insert(id, serial);
        let Some(driver) = self.me.upgrade() else {
            return;
        };
        self.spawn_detached(async move {
            Timer::after(TERMINATE_GRACE).await;
            driver.kill_leftover(id, serial);
        });
    }

    /// Kills what is left of a hung-up session (a job that ignores SIGHUP), if anything.
    fn kill_leftover(&self, id: SessionId, serial: u64) {
        let mut hung_up = self.hung_up.borrow_mut();
        if hung_up.get(&id) != Some(&serial) {
            return;
        }
        hung_up.remove(&id);
        drop(hung_up);
        if self.still_ours(id, serial) {
            log::debug!("session {id}: still running after the hangup grace; killing");
            if let Err(e) = axs_pty::kill_group(id) {
                log::debug!("session {id}: kill: {e}");
            }
        }
    }

    /// Whether pid `id` still stands for the session spawned as `serial`: its leader is
    /// not reaped yet, or a live member still has it as session id (the kernel does not
    /// reuse a pid while it names a session). A newer session under the same pid is not it.
    fn still_ours(&self, id: SessionId, serial: u64) -> bool {
        match self.children.borrow().get(&id) {
            Some(Child::Session { serial: s }) if *s == serial => true,
            Some(Child::Session { .. }) => false,
            _ => axs_pty::group_alive(id),
        }
    }

    fn remove(&self, id: SessionId) {
        let entry = self.sessions.borrow_mut().remove(&id);
        if let Some(entry) = entry {
            if let Some(io) = &entry.io {
                io.close();
            }
            let mut children = self.children.borrow_mut();
            if let Some(child) = children.get_mut(&id) {
                if matches!(child, Child::Session { serial } if *serial == entry.serial) {
                    *child = Child::Orphan;
                }
            }
        }
        // Clients of a removed session have had their close; end their writers.
        self.clients.borrow_mut().retain(|(sid, _), wake| {
            if *sid == id {
                wake.close();
            }
            *sid != id
        });
    }

    /// Registers a freshly spawned session's pty side and tasks (after the core's `spawned`).
    pub fn add_session(&self, id: SessionId, io: Rc<SessionIo>, tasks: Vec<Task<()>>) {
        let serial = self.next_serial.get() + 1;
        self.next_serial.set(serial);
        self.children
            .borrow_mut()
            .insert(id, Child::Session { serial });
        self.sessions.borrow_mut().insert(
            id,
            SessionEntry {
                serial,
                io: Some(io),
                tasks,
            },
        );
    }

    /// Registers a child to reap whose status goes to `child`'s waiter.
    pub fn add_child(&self, pid: u32, child: Child) {
        self.children.borrow_mut().insert(pid, child);
    }

    /// Registers a WebSocket client's wake-up.
    pub fn add_client(&self, id: SessionId, generation: Generation, wake: Wake) {
        self.clients.borrow_mut().insert((id, generation), wake);
    }

    /// Forgets a WebSocket client's wake-up.
    pub fn remove_client(&self, id: SessionId, generation: Generation) {
        self.clients.borrow_mut().remove(&(id, generation));
    }

    /// SIGCHLD arrived: reaps every child that ended and tells whoever waits for it.
    pub fn reap(&self) {
        let pids: Vec<u32> = self.children.borrow().keys().copied().collect();
        for pid in pids {
            let status = match axs_pty::try_wait(pid) {
                Ok(Some(status)) => status,
                Ok(None) => continue,
                Err(e) => {
                    // ECHILD: not ours any more; nothing will ever report it.
                    log::debug!("waitpid({pid}): {e}");
                    self.children.borrow_mut().remove(&pid);
                    continue;
                }
            };
            let child = self.children.borrow_mut().remove(&pid);
            log::debug!("child {pid} ended: {status}");
            match child {
                Some(Child::Session { .. }) => {
                    let status = axs_host::exit_status(status);
                    self.call(|server, now| server.child_exited(pid, status, now));
                }
                Some(Child::Job(tx)) => {
                    let _ = tx.try_send(status);
                }
                Some(Child::Orphan) | None => {}
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
                Some(t) => {
                    let at = self.clock.instant(t);
                    futures_lite::future::or(
                        async {
                            Timer::at(at).await;
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

    /// A WebSocket client started (shutdown waits for it to get its close).
    pub fn client_opened(&self) {
        self.connections.set(self.connections.get() + 1);
    }

    /// A WebSocket client ended.
    pub fn client_closed(&self) {
        self.connections
            .set(self.connections.get().saturating_sub(1));
        self.progress.notify();
    }

    /// Stops the server: the core terminates every session; this waits until every
    /// session is gone and every WebSocket client has closed (bounded by `limit`), then kills
    /// whatever is left of the sessions' processes.
    pub async fn shutdown(&self, limit: Duration) {
        self.call(|server, _| server.shutdown());
        let deadline = Instant::now() + limit;
        while !(self.inspect(Server::is_shut_down) && self.connections.get() == 0) {
            let done = futures_lite::future::or(
                async {
                    Timer::at(deadline).await;
                    true
                },
                async { !self.progress.wait().await },
            )
            .await;
            if done {
                log::debug!("shutdown: giving up waiting after {limit:?}");
                break;
            }
        }
        // No grace left: kill every session that has not ended, hung up or not.
        let mut left: Vec<(SessionId, u64)> = self.hung_up.borrow().clone().into_iter().collect();
        left.extend(self.sessions.borrow().iter().map(|(id, e)| (*id, e.serial)));
        for (id, serial) in left {
            self.hung_up.borrow_mut().insert(id, serial);
            self.kill_leftover(id, serial);
        }
    }
}
