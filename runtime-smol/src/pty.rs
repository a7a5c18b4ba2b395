//! A session's pty side: spawning the program, the reader task (output to the core,
//! paused on request) and the writer task (client input to the program, queued so a
//! program that reads no input never blocks the server).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::rc::Rc;

use axs_core::contention::OutputSlice;
use axs_core::http::Response;
use axs_core::limits::INPUT_BACKLOG;
use axs_core::server::{Reservation, Server, SessionId};
use axs_core::time::Time;
use axs_pty::WinSize;
use smol::Task;

use crate::driver::Driver;
use crate::reactor::Async;
use crate::wake::Wake;

/// The runtime's side of one session's pty master.
pub struct SessionIo {
    id: SessionId,
    master: Async<File>,
    paused: Cell<bool>,
    resume: Wake,
    /// Client input not yet taken by the program, oldest first.
    input: RefCell<VecDeque<u8>>,
    input_ready: Wake,
    /// Woken whenever queued input was written.
    input_taken: Wake,
    /// The reader and the writer; dropped (cancelled) by [`SessionIo::close`].
    tasks: RefCell<Vec<Task<()>>>,
}

impl SessionIo {
    fn new(id: SessionId, master: Async<File>) -> SessionIo {
        SessionIo {
            id,
            master,
            paused: Cell::new(false),
            resume: Wake::new(),
            input: RefCell::new(VecDeque::new()),
            input_ready: Wake::new(),
            input_taken: Wake::new(),
            tasks: RefCell::new(Vec::new()),
        }
    }

    /// Hands client input to the program: written at once when nothing is queued before
    /// it and the pty takes it (a keystroke then needs no hop through the writer task);
    /// what is left is queued for the writer.
    pub fn queue_input(&self, bytes: &[u8]) {
        let was_idle = self.input.borrow().is_empty();
        self.input.borrow_mut().extend(bytes);
        // With input already queued the writer is waiting for the pty to take more:
        // writing past it would reorder the input.
        if was_idle && self.write_queued().is_ok() {
            return;
        }
        self.input_ready.notify();
    }

    /// Writes queued input until the queue is empty (`Ok`) or the pty takes no more
    /// (`WouldBlock`), without waiting.
    fn write_queued(&self) -> io::Result<()> {
        let mut input = self.input.borrow_mut();
        while !input.is_empty() {
            let (front, _) = input.as_slices();
            let mut master: &File = self.master.get_ref();
            match master.write(front) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    input.drain(..n);
                    self.input_taken.notify();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // A paste's buffer is not kept for the keystrokes after it.
        if input.capacity() > KEPT_INPUT_CAPACITY {
            *input = VecDeque::new();
        }
        Ok(())
    }

    /// Waits until the queued input is below [`INPUT_BACKLOG`].
    pub async fn input_room(&self) {
        while self.input.borrow().len() > INPUT_BACKLOG {
            if !self.input_taken.wait().await {
                return;
            }
        }
    }

    /// The pty is done with: whoever waits on it stops waiting.
    pub fn close(&self) {
        // Taken out of the cell before dropped: a task may hold this `SessionIo` last.
        drop(self.tasks.take());
        self.resume.close();
        self.input_ready.close();
        self.input_taken.close();
    }

    /// Sets the terminal size.
    pub fn resize(&self, size: WinSize) {
        if let Err(e) = axs_pty::resize(self.master.as_fd(), size) {
            log::debug!("session {}: resize: {e}", self.id);
        }
    }

    /// Stops reading output (the program blocks once the pty buffer is full).
    pub fn pause(&self) {
        self.paused.set(true);
    }

    /// Reads output again.
    pub fn resume(&self) {
        self.paused.set(false);
        self.resume.notify();
    }
}

/// Spawns the session program for `reservation` and starts its pty tasks; returns the
/// answer for the creator (the pid, or why it failed).
pub fn start_session(driver: &Rc<Driver>, reservation: Reservation) -> Response {
    let spawned = match axs_host::spawn_session(driver.program(), reservation.size()) {
        Ok(spawned) => spawned,
        Err(e) => {
            log::warn!("cannot start a session: {e}");
            return driver.call(|server, _| server.spawn_failed(reservation, &e.to_string()));
        }
    };
    let pid = spawned.pid;
    let response = driver.call(|server, now| server.spawned(reservation, pid, now));
    match Async::new_edge_triggered(File::from(spawned.master)) {
        Ok(master) => {
            let io = Rc::new(SessionIo::new(pid, master));
            io.tasks.replace(vec![
                driver.spawn(read_output(driver.clone(), io.clone())),
                driver.spawn(write_input(io.clone())),
            ]);
            driver.add_session(pid, io);
            log::debug!("session {pid} started");
        }
        Err(e) => {
            // The master is closed by now, which hangs the program up: the session
            // ends as any other whose output ended.
            log::warn!("session {pid}: cannot watch the pty: {e}");
            driver.call(|server, now| server.pty_eof(pid, now));
        }
    }
    response
}

/// Reads the pty into the core until EOF; waits while paused.
async fn read_output(driver: Rc<Driver>, io: Rc<SessionIo>) {
    let id = io.id;
    let mut unyielded = 0;
    loop {
        while io.paused.get() {
            if !io.resume.wait().await {
                return;
            }
        }
        let slice = |server: &Server, now| server.output_slice(id, now);
        let feed = |server: &mut Server, bytes: &[u8], now| server.pty_output(id, bytes, now);
        match read_into_core(&driver, &io.master, &mut unyielded, slice, feed).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                log::debug!("session {id}: pty read: {e}");
                break;
            }
        }
    }
    driver.call(|server, now| server.pty_eof(id, now));
}

/// Reads once from a pty master (see [`read_pty`]) into the shared buffer and hands the
/// bytes to `feed` (no await in between); `Ok(0)` at EOF. The core's `slice` is asked
/// before every read, so a flood slows down as soon as another session is in use: once
/// `unyielded` reached its budget the reader lets every other task run first (a read
/// that finds data never yields by itself), and unless it may wait, the read takes only
/// what the pty holds already.
pub async fn read_into_core(
    driver: &Driver,
    master: &Async<File>,
    unyielded: &mut usize,
    slice: impl Fn(&Server, Time) -> OutputSlice,
    feed: impl Fn(&mut Server, &[u8], Time),
) -> io::Result<usize> {
    let slice = || driver.inspect(|server| slice(server, driver.now()));
    let mut now = slice();
    if *unyielded >= now.budget {
        *unyielded = 0;
        futures_lite::future::yield_now().await;
        now = slice();
    }
    // The first try uses the slice just asked; a later one (after a wait for input, which
    // can be long: someone may have come meanwhile) asks again.
    let mut asked = Some(now.may_wait);
    let may_wait = || asked.take().unwrap_or_else(|| slice().may_wait);
    let read = read_pty(master, may_wait, |f| {
        driver.with_read_buffer(|buf| {
            let n = read_retrying(f, buf)?;
            if n > 0 {
                driver.call(|server, now| feed(server, &buf[..n], now));
            }
            Ok(n)
        })
    });
    let n = read.await?;
    *unyielded += n;
    Ok(n)
}

/// Runs `read` on `master` (registered edge-triggered) once it can, waiting for
/// readiness as often as needed; `Ok(0)` at EOF, which includes EIO: what a master read
/// returns once nothing holds the slave side. Unless the reader `may_wait` (asked at
/// every try), `read` runs only when the pty holds unread output or is hung up: a read that finds nothing waits in the kernel for the tty worker
/// (see `axs_pty::unread_bytes`), and the whole loop with it, while with nothing unread
/// the pty's next wake-up (an edge: `master` is edge-triggered) says when there is.
/// Once hung up, the read drains what is left and reports the end.
async fn read_pty(
    master: &Async<File>,
    mut may_wait: impl FnMut() -> bool,
    mut read: impl FnMut(&File) -> io::Result<usize>,
) -> io::Result<usize> {
    let op = |f: &File| {
        if !may_wait()
            && !master.hung_up()
            && axs_pty::unread_bytes(f.as_fd()).is_ok_and(|n| n == 0)
        {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        read(f)
    };
    match master.read_with(op).await {
        Err(e) if e.raw_os_error() == Some(EIO) => Ok(0),
        read => read,
    }
}

/// One `read`, retried when a signal interrupted it.
fn read_retrying(mut f: &File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match f.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            read => return read,
        }
    }
}

/// `EIO` (5 on every Linux architecture): what a pty master read returns once the
/// slave side is closed, i.e. the normal end of a program's output.
const EIO: i32 = 5;

/// Input queue capacity kept once the queue is empty: enough for a keystroke or the
/// escape sequence of one, not a paste (an idle session holds no paste-sized buffer).
const KEPT_INPUT_CAPACITY: usize = 64;

/// Writes queued input to the pty whenever it can take more.
async fn write_input(io: Rc<SessionIo>) {
    while io.input_ready.wait().await {
        if let Err(e) = io.master.write_with(|_| io.write_queued()).await {
            // The program is gone: its input has nowhere to go.
            log::debug!("session {}: pty write: {e}", io.id);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use axs_pty::{SlaveOpen, WinSize};
    use rustix::event::{PollFd, PollFlags, Timespec};

    use super::*;

    /// A session's pty side on a fresh pty, and the slave end (in raw mode without echo,
    /// so bytes pass unchanged) for the test to read as the program would.
    fn session_and_slave() -> (SessionIo, File) {
        let size = WinSize { cols: 80, rows: 24 };
        let pair = axs_pty::open_pair(size, SlaveOpen::ByName).unwrap();
        axs_pty::set_nonblocking(pair.master.as_fd(), true).unwrap();
        let slave = File::from(pair.slave);
        let stty = Command::new("stty")
            .args(["raw", "-echo"])
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .status()
            .unwrap();
        assert!(stty.success(), "stty raw -echo failed");
        let master = Async::new_edge_triggered(File::from(pair.master)).unwrap();
        (SessionIo::new(1, master), slave)
    }

    /// Whether `master` can take input within `bound`, asked of the pty itself in 10 ms
    /// steps. Not through the reactor: the kernel frees a pty's room for the master when
    /// its worker moves input into the slave's line discipline, and wakes no waiter then
    /// (only the program's next read does), so a wait for the event can miss it (seen
    /// with async-io's reactor and with ours: no event in 200 ms while `poll` said `OUT`).
    fn has_room_within(master: &Async<File>, bound: Duration) -> bool {
        let step = Timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        let steps = bound.as_millis() / 10;
        (0..steps).any(|_| {
            let mut fds = [PollFd::new(master, PollFlags::OUT)];
            rustix::event::poll(&mut fds, Some(&step)).unwrap() > 0
        })
    }

    /// Reads `master` to its end with [`read_pty`]; `None` if that took over 20 s.
    fn read_to_end(master: &Async<File>, may_wait: bool) -> Option<Vec<u8>> {
        let reader = async {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = read_pty(master, || may_wait, |f| read_retrying(f, &mut buf))
                    .await
                    .unwrap();
                if n == 0 {
                    return Some(got);
                }
                got.extend_from_slice(&buf[..n]);
            }
        };
        let bound = async {
            crate::reactor::Timer::after(Duration::from_secs(20)).await;
            None
        };
        crate::reactor::block_on(futures_lite::future::or(reader, bound)).unwrap()
    }

    #[test]
    fn a_reader_gets_every_byte_and_the_end_whether_it_may_wait_or_not() {
        for may_wait in [false, true] {
            let (io, mut slave) = session_and_slave();
            let sent: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
            let writer = {
                let sent = sent.clone();
                std::thread::spawn(move || {
                    // Writes of many sizes: the reader meets both partly and fully
                    // filled line disciplines.
                    let (mut rest, mut size) = (&sent[..], 1);
                    while !rest.is_empty() {
                        let (chunk, after) = rest.split_at(size.min(rest.len()));
                        slave.write_all(chunk).unwrap();
                        (rest, size) = (after, size * 7 % 9000 + 1);
                    }
                })
            };
            let got = read_to_end(&io.master, may_wait);
            writer.join().unwrap();
            let got = got.unwrap_or_else(|| panic!("no end within 20 s (may_wait {may_wait})"));
            assert_eq!(got.len(), sent.len(), "may_wait {may_wait}");
            assert!(got == sent, "bytes differ (may_wait {may_wait})");
        }
    }

    #[test]
    fn input_behind_queued_input_is_written_after_it_even_when_the_pty_has_room() {
        let (io, mut slave) = session_and_slave();
        let paste = vec![b'p'; 256 * 1024];
        io.queue_input(&paste);
        assert!(
            !io.input.borrow().is_empty(),
            "the pty took all of the paste"
        );
        // The program reads some: the pty has room again before the writer ran.
        let mut buf = vec![0u8; 64 * 1024];
        let n = slave.read(&mut buf).unwrap();
        let mut got = buf[..n].to_vec();
        assert!(
            has_room_within(&io.master, Duration::from_secs(5)),
            "the pty had no room within 5 s of a read"
        );
        io.queue_input(b"key");
        while got.len() < paste.len() + 3 {
            match io.write_queued() {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => panic!("write: {e}"),
                _ => {}
            }
            let n = slave.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got.len(), paste.len() + 3);
        assert!(
            got.ends_with(b"key"),
            "the key was written before the paste"
        );
        assert!(got[..paste.len()].iter().all(|&b| b == b'p'));
    }
}
