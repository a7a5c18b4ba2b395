//! A session's pty side: spawning the program, the reader task (output to the core,
//! paused on request) and the writer task (client input to the program, queued so a
//! program that reads no input never blocks the server).

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::rc::Rc;

use async_io::Async;
use axs_core::http::Response;
use axs_core::limits::INPUT_BACKLOG;
use axs_core::server::{Reservation, SessionId};
use axs_pty::WinSize;

use crate::driver::{Child, Driver};
use crate::wake::Wake;

/// Bytes read from one pty in a row before its reader lets other tasks run.
const YIELD_AFTER: usize = 256 * 1024;

/// The runtime's side of one session's pty master.
pub struct SessionIo {
    id: SessionId,
    master: Async<File>,
    paused: Cell<bool>,
    resume: Wake,
    input: RefCell<Vec<u8>>,
    input_ready: Wake,
    /// Woken whenever queued input was written.
    input_taken: Wake,
}

impl SessionIo {
    fn new(id: SessionId, master: Async<File>) -> SessionIo {
        SessionIo {
            id,
            master,
            paused: Cell::new(false),
            resume: Wake::new(),
            input: RefCell::new(Vec::new()),
            input_ready: Wake::new(),
            input_taken: Wake::new(),
        }
    }

    /// Queues client input for the program.
    pub fn queue_input(&self, bytes: &[u8]) {
        self.input.borrow_mut().extend_from_slice(bytes);
        self.input_ready.notify();
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
    let master = match Async::new(File::from(spawned.master)) {
        Ok(master) => master,
        Err(e) => {
            // The master is closed by now, which hangs the program up; make sure it ends.
            let _ = axs_pty::kill_group(pid);
            driver.add_child(pid, Child::Orphan);
            let reason = format!("cannot watch the pty: {e}");
            return driver.call(|server, _| server.spawn_failed(reservation, &reason));
        }
    };
    let response = driver.call(|server, _| server.spawned(reservation, pid));
    let io = Rc::new(SessionIo::new(pid, master));
    let tasks = vec![
        driver.spawn(read_output(driver.clone(), io.clone())),
        driver.spawn(write_input(io.clone())),
    ];
    driver.add_session(pid, io, tasks);
    log::debug!("session {pid} started");
    response
}

/// Reads the pty into the core until EOF (EIO once every slave holder is gone);
/// waits while paused.
async fn read_output(driver: Rc<Driver>, io: Rc<SessionIo>) {
    let id = io.id;
    let mut unyielded = 0;
    loop {
        while io.paused.get() {
            if !io.resume.wait().await {
                return;
            }
        }
        // A read that finds data does not yield; let the clients' writers and other
        // sessions run now and then while a program floods its pty.
        if unyielded >= YIELD_AFTER {
            unyielded = 0;
            futures_lite::future::yield_now().await;
        }
        // The shared buffer is filled and handed to the core with no await in between.
        let read = io
            .master
            .read_with(|f| driver.with_read_buffer(|buf| (&*f).read(buf)));
        match read.await {
            Ok(0) => break,
            Ok(n) => {
                unyielded += n;
                log::trace!("session {id}: {n} bytes of output");
                driver.with_read_buffer(|buf| {
                    driver.call(|server, now| server.pty_output(id, &buf[..n], now));
                });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                if e.raw_os_error() != Some(EIO) {
                    log::debug!("session {id}: pty read: {e}");
                }
                break;
            }
        }
    }
    driver.call(|server, now| server.pty_eof(id, now));
}

/// `EIO` (5 on every Linux architecture): what a pty master read returns once the
/// slave side is closed, i.e. the normal end of a session's output.
const EIO: i32 = 5;

/// Writes queued input to the pty whenever it can take more.
async fn write_input(io: Rc<SessionIo>) {
    while io.input_ready.wait().await {
        loop {
            let data = std::mem::take(&mut *io.input.borrow_mut());
            if data.is_empty() {
                break;
            }
            let mut rest = &data[..];
            while !rest.is_empty() {
                match io.master.write_with(|f| (&*f).write(rest)).await {
                    Ok(0) => return,
                    Ok(n) => {
                        rest = &rest[n..];
                        io.input_taken.notify();
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // The program is gone: its input has nowhere to go.
                        log::debug!("session {}: pty write: {e}", io.id);
                        return;
                    }
                }
            }
        }
    }
}
