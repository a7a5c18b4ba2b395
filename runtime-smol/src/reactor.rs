//! The event loop: the executor and the reactor on one thread, which also waits in
//! `epoll_wait` itself.
//!
//! Why not async-io's `block_on`: async-io drives its reactor from whichever thread holds
//! its lock, and after about 20 ms without events its helper thread blocks on that lock
//! and takes the reactor as soon as `block_on` lets go of it. Every event after a pause
//! (each keystroke of someone typing) then reaches this thread through the helper: one
//! more thread wake-up, and the helper's own `epoll_wait`, eventfd and timerfd syscalls.
//! Here the thread that runs the tasks waits for I/O, so an event wakes it directly.
//!
//! Invariants:
//! - One thread: the sources and timers live in thread-locals; [`Async`] and [`Timer`]
//!   are `!Send`. Other threads (async-signal's, through async-io) wake the loop only
//!   through the eventfd, and only while it sleeps in `epoll_wait`.
//! - Level-triggered epoll by default. A direction is armed when a waiter wants it and
//!   disarmed lazily, when an event finds nobody waiting: a reader that reads, finds
//!   nothing and waits again costs no `epoll_ctl`. A source nobody waits on is left in
//!   one-shot mode with no interest, so a hung-up descriptor reports its hang-up at most
//!   once.
//! - Edge-triggered sources ([`Async::new_edge_triggered`], for pty masters) are
//!   registered once for input and never re-armed for it: epoll polls them for input only
//!   when the kernel woke them. Output interest is added while a writer waits and dropped
//!   lazily, as for the others (each of those two `epoll_ctl`s polls the descriptor once).
//! - A readiness wait ([`Async::readable`], [`Async::writable`]) completes only on an
//!   event reported after it started waiting; the interest is armed before the loop next
//!   sleeps. Level-triggered, no readiness is lost; edge-triggered, only new readiness
//!   is reported, so callers try the operation before every wait (as `read_with` and
//!   `write_with` do). A readiness may be spurious: callers retry on `WouldBlock`.
//! - While tasks are runnable, I/O is still looked for (without waiting) every
//!   [`TASKS_PER_IO_POLL`] tasks: an event is noticed after at most that many tasks,
//!   whatever another session's output keeps the executor doing.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};
use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::event::{eventfd, EventfdFlags, Timespec};
use smol::LocalExecutor;

/// The epoll key of the eventfd other threads wake the loop with.
const WAKEUP_KEY: u64 = u64::MAX;

/// Events taken from the kernel per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 256;

/// Tasks run in a row while the executor is busy before the loop looks for I/O (without
/// waiting): a flooding session's reader and writer must not keep another session's
/// keystroke unnoticed, as async-executor's `run` would for 200 tasks. One: a keystroke's
/// every hop (socket, pty, socket) waits behind the tasks run before its event is seen,
/// and a zero-timeout `epoll_wait` costs far less than a flooding task's 4 KiB slice
/// (typing p50 under another session's flood 720 → 526 µs against 4, bulk unchanged;
/// BENCHMARKS.md).
const TASKS_PER_IO_POLL: usize = 1;

/// Runs `main` to completion on this thread together with `executor`'s tasks, waiting for
/// I/O and timers whenever nothing is runnable and looking for I/O every
/// [`TASKS_PER_IO_POLL`] tasks while busy. Fails only if epoll or the eventfd cannot be
/// set up or waited on.
pub fn run<T>(executor: &LocalExecutor<'_>, main: impl Future<Output = T>) -> io::Result<T> {
    let reactor = Reactor::get()?;
    let waker = Waker::from(reactor.wakeup.clone());
    let mut cx = Context::from_waker(&waker);
    let mut main = pin!(main);
    // Kept across waits while pending: it registers this loop's waker with the executor,
    // so a task woken from another thread wakes the loop.
    let mut tick = Box::pin(executor.tick());
    loop {
        reactor.wakeup.notified.store(false, Ordering::SeqCst);
        if let Poll::Ready(value) = main.as_mut().poll(&mut cx) {
            return Ok(value);
        }
        let mut busy = true;
        for _ in 0..TASKS_PER_IO_POLL {
            match tick.as_mut().poll(&mut cx) {
                Poll::Ready(()) => tick.set(executor.tick()),
                Poll::Pending => {
                    busy = false;
                    break;
                }
            }
        }
        if busy {
            reactor.wakeup.notified.store(true, Ordering::SeqCst);
        }
        reactor.wait()?;
    }
}

/// Runs `future` to completion on this thread (no executor), waiting for I/O and timers
/// whenever it has nothing to do.
#[cfg(test)]
pub fn block_on<T>(future: impl Future<Output = T>) -> io::Result<T> {
    run(&LocalExecutor::new(), future)
}

/// Wakes the loop: a flag, and a write to the eventfd when the loop sleeps.
struct Wakeup {
    notified: AtomicBool,
    sleeping: AtomicBool,
    eventfd: OwnedFd,
}

impl Wake for Wakeup {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // The loop sets `sleeping` before it reads `notified`, and this sets `notified`
        // before it reads `sleeping` (both SeqCst): one of the two sees the other.
        if !self.notified.swap(true, Ordering::SeqCst) && self.sleeping.load(Ordering::SeqCst) {
            // A full counter (EAGAIN) still wakes the loop.
            let _ = rustix::io::write(&self.eventfd, &1u64.to_ne_bytes());
        }
    }
}

/// One direction (read or write) of a source.
#[derive(Default)]
struct Direction {
    /// Events reported for this direction so far.
    tick: u64,
    /// Whoever waits for the next one.
    wakers: Vec<Waker>,
}

/// How epoll watches a source.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// Level-triggered, armed while waited for, one-shot with no interest otherwise.
    Level,
    /// Edge-triggered, input always armed (see [`Async::new_edge_triggered`]).
    Edge,
}

/// What the reactor knows of one registered descriptor.
struct Source {
    io: Rc<dyn AsFd>,
    trigger: Trigger,
    /// The directions epoll currently reports.
    armed: EventFlags,
    /// Whether epoll reported a hang-up or an error for it.
    hung_up: bool,
    read: Direction,
    write: Direction,
}

/// Read or write.
#[derive(Clone, Copy)]
enum Way {
    Read,
    Write,
}

impl Way {
    fn flag(self) -> EventFlags {
        match self {
            Way::Read => EventFlags::IN,
            Way::Write => EventFlags::OUT,
        }
    }
}

impl Source {
    fn direction(&mut self, way: Way) -> &mut Direction {
        match way {
            Way::Read => &mut self.read,
            Way::Write => &mut self.write,
        }
    }

    /// The epoll flags that report the directions in `armed`.
    fn epoll_flags(&self, armed: EventFlags) -> EventFlags {
        match self.trigger {
            Trigger::Level if armed.is_empty() => EventFlags::ONESHOT,
            Trigger::Level => armed,
            Trigger::Edge => armed | EventFlags::ET,
        }
    }
}

/// The thread's epoll instance, its sources and its timers.
struct Reactor {
    epoll: OwnedFd,
    wakeup: Arc<Wakeup>,
    /// Sources by key (their epoll data); `None` marks a free key.
    sources: RefCell<Vec<Option<Source>>>,
    free: RefCell<Vec<usize>>,
    /// Deadlines and who waits for them; the `u64` tells equal deadlines apart.
    timers: RefCell<BTreeMap<(Instant, u64), Waker>>,
    next_timer: Cell<u64>,
    events: RefCell<Vec<Event>>,
    /// `epoll_wait`s so far (the tests check that an idle loop sleeps).
    waits: Cell<u64>,
    /// `epoll_ctl` modifications so far (the tests check that edge-triggered input is
    /// never re-armed: each re-arm polls the descriptor).
    modifies: Cell<u64>,
}

thread_local! {
    static REACTOR: RefCell<Option<Rc<Reactor>>> = const { RefCell::new(None) };
}

impl Reactor {
    /// This thread's reactor, created on first use.
    fn get() -> io::Result<Rc<Reactor>> {
        REACTOR.with(|cell| {
            if let Some(reactor) = &*cell.borrow() {
                return Ok(reactor.clone());
            }
            let reactor = Rc::new(Reactor::new()?);
            *cell.borrow_mut() = Some(reactor.clone());
            Ok(reactor)
        })
    }

    fn new() -> io::Result<Reactor> {
        let epoll = epoll::create(CreateFlags::CLOEXEC)?;
        let eventfd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        epoll::add(
            &epoll,
            &eventfd,
            EventData::new_u64(WAKEUP_KEY),
            EventFlags::IN,
        )?;
        Ok(Reactor {
            epoll,
            wakeup: Arc::new(Wakeup {
                notified: AtomicBool::new(false),
                sleeping: AtomicBool::new(false),
                eventfd,
            }),
            sources: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            timers: RefCell::new(BTreeMap::new()),
            next_timer: Cell::new(0),
            events: RefCell::new(Vec::with_capacity(EVENTS_PER_WAIT)),
            waits: Cell::new(0),
            modifies: Cell::new(0),
        })
    }

    /// Registers `io` (level-triggered with nothing armed, or edge-triggered with input
    /// armed); returns its key.
    fn register(&self, io: Rc<dyn AsFd>, trigger: Trigger) -> io::Result<usize> {
        let key = match self.free.borrow_mut().pop() {
            Some(key) => key,
            None => self.sources.borrow().len(),
        };
        let armed = match trigger {
            Trigger::Level => EventFlags::empty(),
            Trigger::Edge => EventFlags::IN,
        };
        let source = Source {
            io,
            trigger,
            armed,
            hung_up: false,
            read: Direction::default(),
            write: Direction::default(),
        };
        let added = epoll::add(
            &self.epoll,
            source.io.as_fd(),
            EventData::new_u64(key as u64),
            source.epoll_flags(armed),
        );
        if let Err(e) = added {
            if key < self.sources.borrow().len() {
                self.free.borrow_mut().push(key);
            }
            return Err(e.into());
        }
        let mut sources = self.sources.borrow_mut();
        if key == sources.len() {
            sources.push(Some(source));
        } else {
            sources[key] = Some(source);
        }
        Ok(key)
    }

    /// Forgets source `key` (its descriptor is still open).
    fn deregister(&self, key: usize, fd: BorrowedFd<'_>) {
        let removed = self
            .sources
            .borrow_mut()
            .get_mut(key)
            .and_then(Option::take);
        if removed.is_some() {
            // Fails only if the descriptor was never added; nothing to undo then.
            let _ = epoll::delete(&self.epoll, fd);
            self.free.borrow_mut().push(key);
        }
    }

    /// The tick of `way` of source `key` now.
    fn tick(&self, key: usize, way: Way) -> u64 {
        let mut sources = self.sources.borrow_mut();
        sources
            .get_mut(key)
            .and_then(Option::as_mut)
            .map_or(0, |s| s.direction(way).tick)
    }

    /// Registers `waker` for the next event of `way` on `key`, arming it if needed.
    fn want(&self, key: usize, way: Way, waker: &Waker) -> io::Result<()> {
        let mut sources = self.sources.borrow_mut();
        let Some(source) = sources.get_mut(key).and_then(Option::as_mut) else {
            return Err(io::Error::other("the source is no longer registered"));
        };
        let direction = source.direction(way);
        if !direction.wakers.iter().any(|w| w.will_wake(waker)) {
            direction.wakers.push(waker.clone());
        }
        if !source.armed.contains(way.flag()) {
            self.rearm(key, source, source.armed | way.flag())?;
        }
        Ok(())
    }

    /// Makes epoll report the directions in `armed` for source `key` (an `epoll_ctl`,
    /// which also polls the descriptor).
    fn rearm(&self, key: usize, source: &mut Source, armed: EventFlags) -> io::Result<()> {
        self.modifies.set(self.modifies.get() + 1);
        epoll::modify(
            &self.epoll,
            source.io.as_fd(),
            EventData::new_u64(key as u64),
            source.epoll_flags(armed),
        )?;
        source.armed = armed;
        Ok(())
    }

    /// Whether epoll reported a hang-up or an error for source `key`.
    fn hung_up(&self, key: usize) -> bool {
        let sources = self.sources.borrow();
        sources
            .get(key)
            .and_then(Option::as_ref)
            .is_some_and(|s| s.hung_up)
    }

    /// Sleeps in `epoll_wait` until an event, the next timer or a wake-up, then wakes
    /// whoever waited for what happened.
    fn wait(&self) -> io::Result<()> {
        self.wakeup.sleeping.store(true, Ordering::SeqCst);
        let timeout = if self.wakeup.notified.load(Ordering::SeqCst) {
            Some(Duration::ZERO)
        } else {
            self.next_deadline()
                .map(|at| at.saturating_duration_since(Instant::now()))
        };
        let timeout = timeout.map(|t| Timespec {
            tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: t.subsec_nanos().into(),
        });
        let mut events = self.events.borrow_mut();
        events.clear();
        let waited = epoll::wait(&self.epoll, spare_capacity(&mut *events), timeout.as_ref());
        self.wakeup.sleeping.store(false, Ordering::SeqCst);
        self.waits.set(self.waits.get() + 1);
        match waited {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let mut wake = Vec::new();
        for event in events.iter() {
            let (key, flags) = (event.data.u64(), event.flags);
            if key == WAKEUP_KEY {
                let mut counter = [0u8; 8];
                let _ = rustix::io::read(&self.wakeup.eventfd, &mut counter);
            } else {
                self.dispatch(key as usize, flags, &mut wake)?;
            }
        }
        drop(events);
        self.expired_timers(&mut wake);
        wake.into_iter().for_each(Waker::wake);
        Ok(())
    }

    /// Moves the wakers of what `flags` reports on source `key` into `wake`; disarms the
    /// directions nobody waits for.
    fn dispatch(&self, key: usize, flags: EventFlags, wake: &mut Vec<Waker>) -> io::Result<()> {
        let mut sources = self.sources.borrow_mut();
        let Some(source) = sources.get_mut(key).and_then(Option::as_mut) else {
            return Ok(());
        };
        let failed = EventFlags::ERR | EventFlags::HUP;
        source.hung_up |= flags.intersects(failed);
        let hits = [
            (Way::Read, EventFlags::IN | EventFlags::RDHUP | failed),
            (Way::Write, EventFlags::OUT | failed),
        ];
        let mut armed = source.armed;
        for (way, reported) in hits {
            if !flags.intersects(reported) {
                continue;
            }
            let trigger = source.trigger;
            let direction = source.direction(way);
            direction.tick += 1;
            // An edge-triggered source's input stays armed: re-arming would poll it.
            let keep = matches!((trigger, way), (Trigger::Edge, Way::Read));
            if direction.wakers.is_empty() && !keep {
                armed -= way.flag();
            }
            wake.append(&mut direction.wakers);
        }
        // Disarmed (level-triggered): one-shot with no interest, so a hang-up is
        // reported once more at most, not on every wait. A source that was disarmed
        // already is left alone: its one shot was this event, and modifying it again
        // would re-enable it (a hung-up descriptor nobody waits on would then wake the
        // loop on every wait).
        if armed != source.armed {
            self.rearm(key, source, armed)?;
        }
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.timers.borrow().keys().next().map(|(at, _)| *at)
    }

    fn expired_timers(&self, wake: &mut Vec<Waker>) {
        let now = Instant::now();
        let mut timers = self.timers.borrow_mut();
        while let Some(entry) = timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            wake.push(entry.remove());
        }
    }
}

/// A descriptor registered with this thread's reactor (set non-blocking).
pub struct Async<T: AsFd + 'static> {
    io: Rc<T>,
    key: usize,
    reactor: Rc<Reactor>,
}

impl<T: AsFd + 'static> Async<T> {
    /// Makes `io` non-blocking and registers it.
    pub fn new(io: T) -> io::Result<Async<T>> {
        Async::register(io, Trigger::Level)
    }

    /// Makes `io` non-blocking and registers it edge-triggered, for a descriptor whose
    /// readiness check may block: a pty master's poll, when it finds no input, waits
    /// for the kernel's tty worker, as a read does. Level-triggered, epoll would poll the
    /// master again after every report and on every re-arm; edge-triggered, it polls it
    /// only when the kernel woke it, which a pty does whenever input arrives. So a
    /// readiness wait here completes on new input only: the reader must not wait while
    /// input it knows of is unread (see `axs_pty::unread_bytes`).
    pub fn new_edge_triggered(io: T) -> io::Result<Async<T>> {
        Async::register(io, Trigger::Edge)
    }

    fn register(io: T, trigger: Trigger) -> io::Result<Async<T>> {
        rustix::io::ioctl_fionbio(io.as_fd(), true)?;
        let reactor = Reactor::get()?;
        let io = Rc::new(io);
        let key = reactor.register(io.clone(), trigger)?;
        Ok(Async { io, key, reactor })
    }

    /// Whether epoll reported a hang-up or an error for the descriptor.
    pub fn hung_up(&self) -> bool {
        self.reactor.hung_up(self.key)
    }

    /// The descriptor's owner.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Waits until the descriptor is reported readable (or failed, or hung up). On an
    /// edge-triggered source, only input that arrives after the wait began is reported:
    /// read what is there first.
    pub async fn readable(&self) -> io::Result<()> {
        Readiness::new(self, Way::Read).await
    }

    /// Waits until the descriptor is reported writable (or failed, or hung up).
    pub async fn writable(&self) -> io::Result<()> {
        Readiness::new(self, Way::Write).await
    }

    /// Runs `op` until it does not fail with `WouldBlock`, waiting for readability
    /// between tries.
    pub async fn read_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            self.readable().await?;
        }
    }

    /// Runs `op` until it does not fail with `WouldBlock`, waiting for writability
    /// between tries.
    pub async fn write_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            self.writable().await?;
        }
    }

    /// Tries `op`; on `WouldBlock` registers the task for `way` and returns `Pending`
    /// (level-triggered, if the descriptor is ready by the next wait it is reported;
    /// edge-triggered, if it becomes ready after `op`).
    fn poll_op<R>(
        &self,
        cx: &mut Context<'_>,
        way: Way,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        match op(&self.io) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                match self.reactor.want(self.key, way, cx.waker()) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                }
            }
            done => Poll::Ready(done),
        }
    }
}

impl Async<TcpListener> {
    /// Accepts a connection, registered in turn.
    pub async fn accept(&self) -> io::Result<(Async<TcpStream>, SocketAddr)> {
        let (stream, peer) = self.read_with(TcpListener::accept).await?;
        Ok((Async::new(stream)?, peer))
    }
}

impl<T: AsFd + 'static> AsFd for Async<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl<T: AsFd + 'static> Drop for Async<T> {
    fn drop(&mut self) {
        self.reactor.deregister(self.key, self.io.as_fd());
    }
}

impl<T: AsFd + 'static> AsyncRead for &Async<T>
where
    for<'a> &'a T: Read,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_op(cx, Way::Read, |io| {
            let mut io = io;
            io.read(buf)
        })
    }
}

impl<T: AsFd + 'static> AsyncWrite for &Async<T>
where
    for<'a> &'a T: Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_op(cx, Way::Write, |io| {
            let mut io = io;
            io.write(buf)
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_op(cx, Way::Write, |io| {
            let mut io = io;
            io.flush()
        })
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl<T: AsFd + 'static> AsyncRead for Async<T>
where
    for<'a> &'a T: Read,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_read(cx, buf)
    }
}

impl<T: AsFd + 'static> AsyncWrite for Async<T>
where
    for<'a> &'a T: Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_close(cx)
    }
}

/// A wait for the next event of one direction of a source.
struct Readiness<'a, T: AsFd + 'static> {
    source: &'a Async<T>,
    way: Way,
    /// The direction's tick when the wait began.
    since: Option<u64>,
}

impl<'a, T: AsFd + 'static> Readiness<'a, T> {
    fn new(source: &'a Async<T>, way: Way) -> Self {
        Readiness {
            source,
            way,
            since: None,
        }
    }
}

impl<T: AsFd + 'static> Future for Readiness<'_, T> {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Async { key, reactor, .. } = self.source;
        let tick = reactor.tick(*key, self.way);
        match self.since {
            Some(since) if since != tick => return Poll::Ready(Ok(())),
            Some(_) => {}
            None => self.since = Some(tick),
        }
        match reactor.want(*key, self.way, cx.waker()) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// A future that completes at a deadline (never, if the deadline cannot be represented).
pub struct Timer {
    deadline: Option<Instant>,
    /// The registration in this thread's timer table, while waiting.
    id: Option<u64>,
}

impl Timer {
    /// Completes at `deadline`.
    pub fn at(deadline: Instant) -> Timer {
        Timer {
            deadline: Some(deadline),
            id: None,
        }
    }

    /// Completes `duration` from now.
    pub fn after(duration: Duration) -> Timer {
        Timer {
            deadline: Instant::now().checked_add(duration),
            id: None,
        }
    }

    fn unregister(&mut self) {
        if let (Some(at), Some(id)) = (self.deadline, self.id.take()) {
            with_timers(|timers| timers.remove(&(at, id)));
        }
    }
}

/// Runs `f` on this thread's timer table (none when the reactor cannot exist: then no
/// timer can fire either, and `block_on` has failed already).
fn with_timers<R>(f: impl FnOnce(&mut BTreeMap<(Instant, u64), Waker>) -> R) -> Option<R> {
    let reactor = REACTOR.with(|cell| cell.borrow().clone())?;
    let mut timers = reactor.timers.borrow_mut();
    Some(f(&mut timers))
}

impl Future for Timer {
    type Output = Instant;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Instant> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        if Instant::now() >= deadline {
            self.unregister();
            return Poll::Ready(deadline);
        }
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = REACTOR.with(|cell| {
                    cell.borrow().as_ref().map(|r| {
                        let id = r.next_timer.get();
                        r.next_timer.set(id.wrapping_add(1));
                        id
                    })
                });
                let Some(id) = id else {
                    return Poll::Pending;
                };
                self.id = Some(id);
                id
            }
        };
        with_timers(|timers| {
            let slot = timers.entry((deadline, id));
            let waker = slot.or_insert_with(|| cx.waker().clone());
            if !waker.will_wake(cx.waker()) {
                waker.clone_from(cx.waker());
            }
        });
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.unregister();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn timers_fire_in_order_on_this_thread() {
        let fired = block_on(async {
            let late = Timer::after(Duration::from_millis(20));
            let early = Timer::after(Duration::from_millis(5));
            let first = futures_lite::future::or(
                async {
                    late.await;
                    "late"
                },
                async {
                    early.await;
                    "early"
                },
            )
            .await;
            first
        })
        .unwrap();
        assert_eq!(fired, "early");
    }

    #[test]
    fn a_read_waits_for_the_write_and_a_hangup_ends_it() {
        let (a, b) = UnixStream::pair().unwrap();
        let (a, b) = (Async::new(a).unwrap(), Async::new(b).unwrap());
        let got = block_on(async {
            let reader = async {
                let mut buf = [0u8; 4];
                let n = a.read_with(|s| (&*s).read(&mut buf)).await.unwrap();
                let end = a.read_with(|s| (&*s).read(&mut buf)).await.unwrap();
                (n, end)
            };
            let writer = async {
                Timer::after(Duration::from_millis(5)).await;
                b.write_with(|s| (&*s).write(b"hi")).await.unwrap();
                Timer::after(Duration::from_millis(5)).await;
                b.get_ref().shutdown(std::net::Shutdown::Both).unwrap();
            };
            futures_lite::future::zip(reader, writer).await.0
        })
        .unwrap();
        assert_eq!(got, (2, 0));
    }

    #[test]
    fn a_hung_up_source_nobody_waits_on_does_not_keep_waking_the_loop() {
        let (a, b) = UnixStream::pair().unwrap();
        let a = Async::new(a).unwrap();
        drop(b);
        let waits = block_on(async {
            // Armed by the wait, then disarmed by the event after it that finds nobody.
            a.readable().await.unwrap();
            let before = Reactor::get().unwrap().waits.get();
            Timer::after(Duration::from_millis(50)).await;
            Reactor::get().unwrap().waits.get() - before
        })
        .unwrap();
        assert!(
            waits <= 4,
            "{waits} epoll_waits in 50 ms with nothing to do"
        );
    }

    #[test]
    fn an_edge_triggered_source_reports_input_that_came_while_nobody_waited_and_after() {
        let (a, b) = UnixStream::pair().unwrap();
        let a = Async::new_edge_triggered(a).unwrap();
        let b = Async::new(b).unwrap();
        let ms = Duration::from_millis;
        let b = &b;
        let send = |byte: u8| async move {
            let sent = b.write_with(|s| (&*s).write(&[byte])).await;
            assert_eq!(sent.unwrap(), 1);
        };
        let read_one = || {
            let mut buf = [0u8; 4];
            let mut stream: &UnixStream = a.get_ref();
            let n = stream.read(&mut buf).unwrap();
            buf[..n].to_vec()
        };
        let modifies = || Reactor::get().unwrap().modifies.get();
        // The two sides take turns through `step`, not through timings.
        let step = Cell::new(0u8);
        let until = |wanted: u8| {
            let step = &step;
            async move {
                while step.get() != wanted {
                    Timer::after(ms(1)).await;
                }
            }
        };
        let reader = async {
            let before = modifies();
            a.readable().await.unwrap();
            assert_eq!(read_one(), [1]);
            step.set(1);
            // Byte 2 comes while nobody waits (this side sleeps in timers, each after an
            // `epoll_wait` that reports it): its event must not disarm the input.
            until(2).await;
            Timer::after(ms(1)).await;
            assert_eq!(read_one(), [2]);
            step.set(3);
            a.readable().await.unwrap();
            assert_eq!(read_one(), [3]);
            assert_eq!(modifies(), before, "the input was re-armed");
            assert!(!a.hung_up());
            step.set(4);
            a.readable().await.unwrap();
            assert!(a.hung_up(), "the hang-up was not recorded");
            true
        };
        let writer = async {
            send(1).await;
            until(1).await;
            send(2).await;
            step.set(2);
            until(3).await;
            send(3).await;
            until(4).await;
            b.get_ref().shutdown(std::net::Shutdown::Both).unwrap();
            std::future::pending::<bool>().await
        };
        let bound = async {
            Timer::after(Duration::from_secs(10)).await;
            false
        };
        let done = futures_lite::future::or(futures_lite::future::or(reader, writer), bound);
        assert!(
            block_on(done).unwrap(),
            "an input or the hang-up was not reported"
        );
    }

    #[test]
    fn another_thread_wakes_the_sleeping_loop() {
        let (tx, rx) = std::sync::mpsc::channel::<Waker>();
        let woken = Arc::new(AtomicBool::new(false));
        let flag = woken.clone();
        let helper = std::thread::spawn(move || {
            let waker = rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(10));
            flag.store(true, Ordering::SeqCst);
            waker.wake();
        });
        block_on(futures_lite::future::poll_fn(|cx| {
            if woken.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            let _ = tx.send(cx.waker().clone());
            Poll::Pending
        }))
        .unwrap();
        helper.join().unwrap();
    }
}
