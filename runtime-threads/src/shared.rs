//! The one lock: the core's `Server` plus the runtime's handles, and the action dispatcher.
//!
//! Every call into the server goes through [`Shared::call`] (or [`Shared::with_state`]),
//! which drains `poll_action()` before the lock is released and *routes* each action while
//! still holding it: a queue append, a flag flip, a condvar notify or a `TIOCSWINSZ` ioctl,
//! none of which can block. Routing under the lock keeps the actions of concurrent threads
//! in the order the core decided them (a `PausePty` can never overtake the `ResumePty` that
//! followed it, nor one client's input another's). What may take time — signalling a
//! session's processes, closing descriptors, re-arming the timer — happens after the
//! lock is released ([`After`]). Nothing ever does blocking I/O while holding the lock.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;
use std::time::Instant;

use axs_core::client::Generation;
use axs_core::limits::TERMINATE_GRACE;
use axs_core::server::{Server, SessionId};
use axs_core::session::Action;
use axs_core::time::Time;
use axs_host::Clock;

use crate::client::ClientSignal;
use crate::session::{InputQueue, ReadGate};
use crate::timer::Timer;

/// What the runtime holds for one session (the core holds everything else).
#[derive(Debug)]
pub struct SessionIo {
    /// The runtime's number for this spawn: tells a reused pid apart.
    pub serial: u64,
    /// The pty master; `None` once the core closed it.
    pub master: Option<Arc<File>>,
    /// Pauses and stops the pty reader thread.
    pub gate: Arc<ReadGate>,
    /// Client input on its way to the pty.
    pub input: Arc<InputQueue>,
}

impl SessionIo {
    /// Stops the pty reader and input, and hands back the master for closing outside the lock.
    fn close(&mut self) -> Option<Arc<File>> {
        self.gate.close();
        self.input.close();
        self.master.take()
    }
}

/// An `execute-command` shell not reaped yet.
#[derive(Debug)]
pub struct JobWatch {
    /// The runtime's number for this spawn: tells a reused pid apart.
    pub serial: u64,
    /// Dropped when the shell is reaped: the job's thread sees its end of the pair close.
    pub _exit: UnixStream,
}

/// Everything behind the lock.
#[derive(Debug)]
pub struct State {
    /// The core.
    pub server: Server,
    /// Runtime handles of the registered sessions.
    pub sessions: HashMap<SessionId, SessionIo>,
    /// Wake-up handles of the attached WebSocket clients.
    pub clients: HashMap<(SessionId, Generation), Arc<ClientSignal>>,
    /// Session programs not reaped yet, with their spawn's serial (kept apart from
    /// `sessions`: a child is reaped even when its session is gone).
    pub unreaped: HashMap<u32, u64>,
    /// `execute-command` shells not reaped yet.
    pub jobs: HashMap<u32, JobWatch>,
    /// The serial of the latest spawn (sessions and commands alike).
    pub last_serial: u64,
    /// WebSocket writer threads still running (shutdown waits for their close frames).
    pub writers: usize,
}

/// Effects that wait until the lock is released.
#[derive(Debug, Default)]
#[must_use = "run it after releasing the lock"]
pub struct After {
    /// Sessions to hang up, with their spawn's serial.
    terminate: Vec<(SessionId, u64)>,
    close: Vec<Arc<File>>,
    deadline: Option<Time>,
    removed: bool,
}

impl After {
    /// Carries out the deferred effects (call without holding the lock).
    pub fn run(self, shared: &Shared) {
        drop(self.close);
        for (pid, serial) in self.terminate {
            if !shared.still_ours(pid, serial) {
                // Everything ended and was reaped: the pid may belong to a stranger now.
                continue;
            }
            if let Err(e) = axs_pty::hangup_group(pid) {
                log::debug!("hang up session {pid}: {e}");
            }
            shared.later(TERMINATE_GRACE, move |shared| {
                if shared.still_ours(pid, serial) {
                    log::debug!("session {pid} outlived the hangup: killing it");
                    if let Err(e) = axs_pty::kill_group(pid) {
                        log::warn!("kill session {pid}: {e}");
                    }
                }
            });
        }
        if let Some(deadline) = self.deadline {
            shared.timer.arm(shared.clock.instant(deadline));
        }
    }
}

impl State {
    /// Drains the core's actions and routes each one (see the module docs).
    fn route_actions(&mut self) -> After {
        let mut after = After::default();
        while let Some((id, action)) = self.server.poll_action() {
            self.route(id, action, &mut after);
        }
        after.deadline = self.server.poll_timeout();
        after
    }

    fn route(&mut self, id: SessionId, action: Action, after: &mut After) {
        match action {
            Action::Wake(generation) => {
                if let Some(client) = self.clients.get(&(id, generation)) {
                    client.wake();
                }
            }
            Action::Terminate => {
                if let Some(io) = self.sessions.get(&id) {
                    after.terminate.push((id, io.serial));
                }
            }
            Action::Remove => {
                after.removed = true;
                if let Some(mut io) = self.sessions.remove(&id) {
                    after.close.extend(io.close());
                }
                self.clients.retain(|&(sid, _), client| {
                    if sid == id {
                        client.gone();
                    }
                    sid != id
                });
            }
            action => {
                let Some(io) = self.sessions.get_mut(&id) else {
                    return;
                };
                match action {
                    Action::WritePty(bytes) => io.input.push(bytes),
                    Action::ResizePty { cols, rows } => resize(id, io, cols, rows),
                    Action::PausePty => io.gate.set_paused(true),
                    Action::ResumePty => io.gate.set_paused(false),
                    Action::ClosePty => after.close.extend(io.close()),
                    _ => {}
                }
            }
        }
    }
}

/// `TIOCSWINSZ` on the master: one non-blocking ioctl.
fn resize(id: SessionId, io: &SessionIo, cols: u16, rows: u16) {
    if let Some(master) = &io.master {
        let size = axs_pty::WinSize { cols, rows };
        if let Err(e) = axs_pty::resize(master.as_fd(), size) {
            log::debug!("resize session {id}: {e}");
        }
    }
}

/// The state shared by every thread.
#[derive(Debug)]
pub struct Shared {
    /// Itself, for timer jobs that outlive a call.
    me: Weak<Shared>,
    state: Mutex<State>,
    /// Notified when a session goes away or a writer thread ends (shutdown waits on it).
    changed: Condvar,
    clock: Clock,
    /// The timer thread's queue.
    pub timer: Arc<Timer>,
    /// How many bytes a pty reader reads at once.
    pub read_size: usize,
}

impl Shared {
    /// Wraps a server; its clock starts now.
    pub fn new(server: Server) -> Arc<Shared> {
        let read_size = server.read_size();
        Arc::new_cyclic(|me| Shared {
            me: Weak::clone(me),
            state: Mutex::new(State {
                server,
                sessions: HashMap::new(),
                clients: HashMap::new(),
                unreaped: HashMap::new(),
                jobs: HashMap::new(),
                last_serial: 0,
                writers: 0,
            }),
            changed: Condvar::new(),
            clock: Clock::start(),
            timer: Arc::new(Timer::new()),
            read_size,
        })
    }

    /// The lock; a thread that panicked while holding it does not take the server down
    /// (the core never panics on any input, so its state is consistent).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the server, then carries out the actions it produced.
    pub fn call<R>(&self, f: impl FnOnce(&mut Server, Time) -> R) -> R {
        self.with_state(|state, now| f(&mut state.server, now))
    }

    /// Like [`Shared::call`], with the runtime's tables too (to register handles in the
    /// same critical section as the core decision that needs them).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut State, Time) -> R) -> R {
        let (result, after) = {
            let mut state = self.lock();
            let result = f(&mut state, self.clock.now());
            let after = state.route_actions();
            if after.removed {
                self.changed.notify_all();
            }
            (result, after)
        };
        after.run(self);
        result
    }

    /// Blocks until `done` holds or `deadline` passes; `done` is checked whenever a session
    /// goes away or a writer thread ends. Returns whether it holds.
    pub fn wait_until(&self, deadline: Instant, done: impl Fn(&State) -> bool) -> bool {
        let mut state = self.lock();
        loop {
            if done(&state) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Runs `job` on the timer thread after `delay` (jobs must be short).
    pub fn later(&self, delay: Duration, job: impl FnOnce(&Shared) + Send + 'static) {
        let me = Weak::clone(&self.me);
        self.timer.after(delay, move || {
            if let Some(shared) = me.upgrade() {
                job(&shared);
            }
        });
    }

    /// Whether pid `pid` still stands for the session or command spawned as `serial`: its
    /// leader is not reaped yet, or a live member still has it as session id (the kernel
    /// does not reuse a pid while it names a session). A newer spawn under the same pid
    /// is not it.
    pub fn still_ours(&self, pid: u32, serial: u64) -> bool {
        let unreaped = {
            let state = self.lock();
            let session = state.unreaped.get(&pid).copied();
            session.or_else(|| state.jobs.get(&pid).map(|job| job.serial))
        };
        // The /proc scan happens without the lock.
        match unreaped {
            Some(s) => s == serial,
            None => axs_pty::group_alive(pid),
        }
    }

    /// Counts a WebSocket writer thread in (`+1`) or out (`-1`).
    pub fn count_writer(&self, starting: bool) {
        let mut state = self.lock();
        if starting {
            state.writers += 1;
        } else {
            state.writers = state.writers.saturating_sub(1);
            self.changed.notify_all();
        }
    }
}
