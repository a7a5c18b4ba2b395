//! One link's thread: the socket, the program's three pipes and the core's `Link` in
//! one `poll` loop (the driving loop of `axs_core::lsp::bridge`'s docs).
//!
//! Every descriptor is non-blocking. Each round: the waker (reap, stop), the deadlines
//! due, every output the link hands out (a write starts at once; what the kernel does
//! not take waits for writability), then one attempt on each source the link wants read
//! and each write still waiting. Only a round that moved nothing sleeps in `poll`, on
//! exactly those descriptors, the waker and the link's next deadline.
//!
//! Invariants: a sink is free ([`Sinks`]) only when nothing of ours waits for it
//! (tungstenite's buffer flushed, the stdin chunk written whole), so the core's backlog
//! bounds hold; the socket is read only while the link `wants_client`, stdout only
//! while it `wants_stdout`; the link hears `client_closed` exactly when the socket is
//! dropped (except after its own `DropClient`); only this thread reaps its program.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use axs_core::limits::CONN_READ_CHUNK;
use axs_core::lsp::{ClientMessage, Link, LinkOutput, Sinks};
use axs_core::time::Time;
use axs_host::{lsp as host_lsp, ws};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use tungstenite::error::CapacityError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role};
use tungstenite::{Error, Message, WebSocket};

use super::{Hub, Spawned, Waker};

/// Runs a link until it is finished: `socket` is the upgraded connection with the bytes
/// read past its request, `None` when the 101 never went out.
pub(super) fn run(hub: &Hub, spawned: Spawned, socket: Option<(TcpStream, Vec<u8>)>) {
    let Spawned {
        mut link,
        child,
        waker,
    } = spawned;
    let pid = child.pid;
    // Even if this thread panics, the bridge's stop does not wait for it forever.
    let _finished = Finished { hub, pid };
    let mut io = LinkIo {
        pid,
        waker,
        client: socket.and_then(|(stream, early)| Client::open(stream, early)),
        stdin: Some(child.stdin),
        pending: Vec::new(),
        written: 0,
        stdout: Some(child.stdout),
        stderr: Some(child.stderr),
        reaped: false,
        stopped: false,
        buf: vec![0u8; CONN_READ_CHUNK],
    };
    if io.client.is_none() {
        link.client_closed(hub.now());
    }
    io.make_pipes_nonblocking(&mut link);
    io.drive(hub, &mut link);
}

/// Tells the hub a link is over when its thread leaves [`run`], however it leaves.
struct Finished<'a> {
    hub: &'a Hub,
    pid: u32,
}

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.hub.finished(self.pid);
    }
}

/// The WebSocket, with what is still ours to write on it.
struct Client {
    ws: WebSocket<TcpStream>,
    /// Our bytes wait for the kernel to take them (poll for writability).
    blocked: bool,
    /// Frames were written without a flush.
    unflushed: bool,
    /// Our close went out: our side is shut down once it is flushed.
    closing: bool,
    /// The client's stream cannot be parsed any more (a message over the limit, whose
    /// rest is still coming): its bytes are read and discarded until its end.
    discard: bool,
}

impl Client {
    fn open(stream: TcpStream, early: Vec<u8>) -> Option<Client> {
        if let Err(e) = stream.set_nonblocking(true) {
            log::debug!("lsp socket unusable: {e}");
            return None;
        }
        let config = Some(host_lsp::lsp_ws_config());
        Some(Client {
            ws: WebSocket::from_partially_read(stream, early, Role::Server, config),
            blocked: false,
            unflushed: false,
            closing: false,
            discard: false,
        })
    }

    /// After our close is flushed: nothing more from us (the client sees the end).
    fn shut_after_close(&self) {
        if self.closing && !self.blocked {
            let _ = self.ws.get_ref().shutdown(Shutdown::Write);
        }
    }
}

/// The result of one read on a pipe.
enum PipeRead {
    /// Nothing now (or not wanted).
    Idle,
    /// This many bytes, at the start of the buffer.
    Data(usize),
    /// The end (or a read error).
    End,
}

/// What a link's thread holds besides the core's `Link`.
struct LinkIo {
    pid: u32,
    waker: Arc<Waker>,
    client: Option<Client>,
    stdin: Option<OwnedFd>,
    /// The chunk being written to stdin, and how much of it was.
    pending: Vec<u8>,
    written: usize,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    reaped: bool,
    /// The bridge's stop was passed to the link.
    stopped: bool,
    buf: Vec<u8>,
}

impl LinkIo {
    fn drive(&mut self, hub: &Hub, link: &mut Link) {
        loop {
            let now = hub.now();
            self.on_wake(hub, link, now);
            if link.poll_timeout().is_some_and(|at| at <= now) {
                link.handle_timeout(now);
            }
            self.carry_out(link, now);
            if link.is_finished() {
                return;
            }
            if !self.transfer(link, now) {
                self.wait(hub, link);
            }
        }
    }

    /// A descriptor that cannot be made non-blocking counts as ended (the link then
    /// closes and cleans up as for a program that closed it).
    fn make_pipes_nonblocking(&mut self, link: &mut Link) {
        let failed = |fd: &Option<OwnedFd>, what: &str| {
            let result = fd
                .as_ref()
                .map_or(Ok(()), |fd| axs_pty::set_nonblocking(fd.as_fd(), true));
            result
                .inspect_err(|e| log::warn!("program {}: {what}: {e}", self.pid))
                .is_err()
        };
        if failed(&self.stdin, "stdin") {
            link.stdin_broken();
        }
        if failed(&self.stdout, "stdout") {
            self.stdout = None;
            link.stdout_eof();
        }
        if failed(&self.stderr, "stderr") {
            self.stderr = None;
            link.stderr_eof();
        }
    }

    /// The waker fired: the program may have ended (SIGCHLD), the bridge may be stopping.
    fn on_wake(&mut self, hub: &Hub, link: &mut Link, now: Time) {
        if !self.waker.take() {
            return;
        }
        if !self.reaped {
            match axs_pty::try_wait(self.pid) {
                Ok(None) => {}
                Ok(Some(status)) => {
                    log::debug!("program {}: {status}", self.pid);
                    self.reaped = true;
                    // As the link drops its stdin backlog: a chunk half written to a
                    // pipe nobody may read again (a child of the program can hold it)
                    // must not keep the link from finishing.
                    (self.pending, self.written) = (Vec::new(), 0);
                    hub.exited(self.pid);
                    link.exited(axs_host::exit_status(status), now);
                }
                Err(e) => log::warn!("program {}: wait: {e}", self.pid),
            }
        }
        if !self.stopped && hub.stopping() {
            self.stopped = true;
            link.shutdown(now);
        }
    }

    fn sinks(&self) -> Sinks {
        Sinks {
            client: self.client.as_ref().is_some_and(|c| !c.blocked),
            stdin: self.stdin.is_some() && self.written >= self.pending.len(),
        }
    }

    /// Carries out everything the link hands out now.
    fn carry_out(&mut self, link: &mut Link, now: Time) {
        while let Some(output) = link.poll(self.sinks(), now) {
            match output {
                LinkOutput::Text(text) => self.send(link, now, Message::text(text)),
                LinkOutput::Close { code, reason } => self.close(link, now, code, reason),
                LinkOutput::DropClient => self.drop_client(),
                LinkOutput::Stdin(bytes) => {
                    (self.pending, self.written) = (bytes, 0);
                    self.write_stdin(link);
                }
                LinkOutput::CloseStdin => self.stdin = None,
                LinkOutput::StderrLine(line) => {
                    // Not eprintln!: a closed stderr must not end the bridge.
                    let _ = writeln!(io::stderr().lock(), "{line}");
                }
                LinkOutput::Signal(signal) => axs_host::signal::deliver(signal),
            }
        }
        self.flush_client(link, now);
    }

    /// One attempt at every write waiting and every read wanted; whether anything moved.
    fn transfer(&mut self, link: &mut Link, now: Time) -> bool {
        let mut moved = self.flush_client(link, now);
        moved |= self.write_stdin(link);
        moved |= self.read_client(link, now);
        moved |= match read_pipe(&mut self.stdout, &mut self.buf, link.wants_stdout()) {
            PipeRead::Idle => false,
            PipeRead::Data(n) => {
                link.stdout(&self.buf[..n]);
                true
            }
            PipeRead::End => {
                link.stdout_eof();
                true
            }
        };
        moved |= match read_pipe(&mut self.stderr, &mut self.buf, link.wants_stderr()) {
            PipeRead::Idle => false,
            PipeRead::Data(n) => {
                link.stderr(&self.buf[..n]);
                true
            }
            PipeRead::End => {
                link.stderr_eof();
                true
            }
        };
        moved
    }

    /// Sleeps until a descriptor the link waits on is ready, the waker fires, or the
    /// link's next deadline.
    fn wait(&self, hub: &Hub, link: &Link) {
        let timeout = link.poll_timeout().map(|at| {
            let left = hub
                .clock
                .instant(at)
                .saturating_duration_since(Instant::now());
            Timespec::try_from(left).unwrap_or(Timespec {
                tv_sec: i64::MAX,
                tv_nsec: 0,
            })
        });
        let mut fds = vec![PollFd::new(&self.waker.fd, PollFlags::IN)];
        if let Some(client) = &self.client {
            let mut flags = PollFlags::empty();
            flags.set(PollFlags::IN, link.wants_client());
            flags.set(PollFlags::OUT, client.blocked);
            if !flags.is_empty() {
                fds.push(PollFd::new(client.ws.get_ref(), flags));
            }
        }
        let reads = [
            (&self.stdout, link.wants_stdout()),
            (&self.stderr, link.wants_stderr()),
        ];
        for (fd, wanted) in reads {
            if let Some(fd) = fd.as_ref().filter(|_| wanted) {
                fds.push(PollFd::new(fd, PollFlags::IN));
            }
        }
        if let Some(fd) = self
            .stdin
            .as_ref()
            .filter(|_| self.written < self.pending.len())
        {
            fds.push(PollFd::new(fd, PollFlags::OUT));
        }
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => log::warn!("program {}: poll: {e}", self.pid),
        }
    }

    // ----- the program's stdin -----

    /// Writes what the kernel takes of the pending chunk; whether anything moved.
    fn write_stdin(&mut self, link: &mut Link) -> bool {
        let Some(fd) = self
            .stdin
            .as_ref()
            .filter(|_| self.written < self.pending.len())
        else {
            return false;
        };
        match rustix::io::write(fd, &self.pending[self.written..]) {
            Ok(n) => self.written += n,
            Err(Errno::AGAIN) => return false,
            Err(Errno::INTR) => {}
            Err(e) => {
                log::debug!("program {}: stdin: {e}", self.pid);
                self.written = self.pending.len();
                link.stdin_broken();
            }
        }
        if self.written >= self.pending.len() {
            // Frees a large message's buffer at once.
            (self.pending, self.written) = (Vec::new(), 0);
        }
        true
    }

    // ----- the socket -----

    fn send(&mut self, link: &mut Link, now: Time, message: Message) {
        if let Some(client) = self.client.as_mut() {
            client.unflushed = true;
            let result = client.ws.write(message);
            self.after_write(link, now, result);
        }
    }

    fn close(&mut self, link: &mut Link, now: Time, code: u16, reason: String) {
        if let Some(client) = self.client.as_mut() {
            client.closing = true;
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            };
            let result = client.ws.close(Some(frame));
            self.after_write(link, now, result);
            if let Some(client) = &self.client {
                client.shut_after_close();
            }
        }
    }

    /// Flushes what waits for the socket; whether it was blocked and is not any more.
    fn flush_client(&mut self, link: &mut Link, now: Time) -> bool {
        let Some(client) = self.client.as_mut().filter(|c| c.unflushed || c.blocked) else {
            return false;
        };
        let was_blocked = client.blocked;
        client.blocked = false;
        let result = client.ws.flush();
        self.after_write(link, now, result);
        match &mut self.client {
            Some(client) if !client.blocked => {
                client.unflushed = false;
                client.shut_after_close();
                was_blocked
            }
            Some(_) => false,
            None => true,
        }
    }

    /// A write or flush on the socket: done, waiting for the kernel, or the socket is gone.
    fn after_write(&mut self, link: &mut Link, now: Time, result: tungstenite::Result<()>) {
        match result {
            Ok(()) => {}
            Err(Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                if let Some(client) = self.client.as_mut() {
                    client.blocked = true;
                }
            }
            Err(e) => {
                log::debug!("program {}: socket write: {e}", self.pid);
                self.socket_gone(link, now);
            }
        }
    }

    /// Reads one message (or discards one chunk) if the link wants it; whether anything
    /// moved.
    fn read_client(&mut self, link: &mut Link, now: Time) -> bool {
        let Some(client) = self.client.as_mut().filter(|_| link.wants_client()) else {
            return false;
        };
        if client.discard {
            return match client.ws.get_mut().read(&mut self.buf) {
                Ok(n) if n > 0 => true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
                Ok(_) | Err(_) => {
                    self.socket_gone(link, now);
                    true
                }
            };
        }
        match client.ws.read() {
            Ok(Message::Text(text)) => link.client_message(ClientMessage::Text(text.to_string())),
            Ok(Message::Binary(bytes)) => link.client_message(ClientMessage::Binary(bytes.into())),
            // tungstenite queued the pong.
            Ok(Message::Ping(_)) => client.unflushed = true,
            Ok(Message::Pong(_) | Message::Frame(_)) => {}
            Ok(Message::Close(_)) => {
                // The echo of a close the client started (ours needs none), if it fits.
                let _ = client.ws.flush();
                self.socket_gone(link, now);
            }
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(Error::Capacity(CapacityError::MessageTooLong { size, .. })) => {
                client.discard = true;
                link.client_too_large(size as u64);
            }
            Err(e @ (Error::Io(_) | Error::ConnectionClosed | Error::AlreadyClosed)) => {
                log::debug!("program {}: socket ends: {e}", self.pid);
                self.socket_gone(link, now);
            }
            Err(e) => {
                log::debug!("program {}: client breaks the protocol: {e}", self.pid);
                let _ = client.ws.close(Some(ws::protocol_close(&e)));
                self.socket_gone(link, now);
            }
        }
        true
    }

    /// Drops the socket (the link already counts it gone, or is told by the caller).
    fn drop_client(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.ws.get_ref().shutdown(Shutdown::Both);
        }
    }

    fn socket_gone(&mut self, link: &mut Link, now: Time) {
        self.drop_client();
        link.client_closed(now);
    }
}

/// One read on a pipe the link wants read; at its end (or an error) the pipe is dropped.
fn read_pipe(pipe: &mut Option<OwnedFd>, buf: &mut [u8], wanted: bool) -> PipeRead {
    let Some(fd) = pipe.as_ref().filter(|_| wanted) else {
        return PipeRead::Idle;
    };
    match rustix::io::read(fd, &mut *buf) {
        Ok(n) if n > 0 => PipeRead::Data(n),
        Err(Errno::AGAIN | Errno::INTR) => PipeRead::Idle,
        Ok(_) | Err(_) => {
            *pipe = None;
            PipeRead::End
        }
    }
}
