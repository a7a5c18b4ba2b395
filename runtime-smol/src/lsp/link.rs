//! One WebSocket ↔ language-server pair: the core's [`Link`] and the tasks that move its
//! bytes (stdout and stderr readers, a stdin writer, the socket's reader and writer, a
//! timer).
//!
//! Every input goes through [`LinkIo::call`], which then drains the link's outputs with
//! the [`Sinks`] that are free and carries them out. Invariants: at most one frame is
//! handed to the socket writer and one chunk to the stdin writer at a time (their sink is
//! busy until it is written); a reader only reads while the link wants it; once the link
//! is finished its tasks are cancelled, which closes the pipes and the socket.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use async_tungstenite::tungstenite::error::CapacityError;
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use async_tungstenite::tungstenite::{Error, Message};
use async_tungstenite::{WebSocketReceiver, WebSocketSender, WebSocketStream};
use axs_core::limits::{CONN_READ_CHUNK, YIELD_AFTER};
use axs_core::lsp::{ClientMessage, Link, LinkOutput, Sinks};
use axs_core::time::Time;
use axs_pty::PipedChild;
use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures_util::{SinkExt, StreamExt};
use smol::Task;

use super::Hub;
use crate::reactor::Async;
use crate::wake::Wake;

/// What the stdin writer is asked to do next.
enum StdinJob {
    Write(Vec<u8>),
    Close,
}

/// The runtime's side of one link.
pub struct LinkIo {
    hub: Rc<Hub>,
    pid: u32,
    link: RefCell<Link>,
    /// No frame can go to the socket now (one is being written, or no socket yet).
    client_busy: Cell<bool>,
    /// No chunk can go to stdin now (one is being written, or stdin is closed).
    stdin_busy: Cell<bool>,
    to_client: RefCell<Option<Message>>,
    to_stdin: RefCell<Option<StdinJob>>,
    /// The socket once upgraded, for a `DropClient`.
    socket: RefCell<Option<Rc<Async<TcpStream>>>>,
    /// Wake-ups: the socket writer, the stdin writer, the socket reader and the pipe
    /// readers (they may read), the timer (its deadline changed).
    client_ready: Wake,
    stdin_ready: Wake,
    client_room: Wake,
    stdout_room: Wake,
    stderr_room: Wake,
    timer: Wake,
    /// The deadline the timer sleeps toward.
    scheduled: Cell<Option<Time>>,
    /// Cancelled (dropped) when the link is finished.
    tasks: RefCell<Vec<Task<()>>>,
}

impl LinkIo {
    /// Starts the program side of `link` (its pipes from `child`) and registers it.
    pub fn start(hub: &Rc<Hub>, link: Link, child: PipedChild) -> Rc<LinkIo> {
        let io = Rc::new(LinkIo {
            hub: hub.clone(),
            pid: child.pid,
            link: RefCell::new(link),
            client_busy: Cell::new(true),
            stdin_busy: Cell::new(false),
            to_client: RefCell::new(None),
            to_stdin: RefCell::new(None),
            socket: RefCell::new(None),
            client_ready: Wake::new(),
            stdin_ready: Wake::new(),
            client_room: Wake::new(),
            stdout_room: Wake::new(),
            stderr_room: Wake::new(),
            timer: Wake::new(),
            scheduled: Cell::new(None),
            tasks: RefCell::new(Vec::new()),
        });
        hub.links.borrow_mut().insert(io.pid, io.clone());
        let tasks = vec![
            hub.spawn(read_pipe(io.clone(), child.stdout, Pipe::Stdout)),
            hub.spawn(read_pipe(io.clone(), child.stderr, Pipe::Stderr)),
            hub.spawn(write_stdin(io.clone(), child.stdin)),
            hub.spawn(run_timer(io.clone())),
        ];
        io.tasks.borrow_mut().extend(tasks);
        io
    }

    /// The `101` is out: serves the WebSocket on `stream` (`early`: the bytes the client
    /// sent right after its request).
    pub fn attach(self: &Rc<Self>, stream: Async<TcpStream>, early: Vec<u8>) {
        crate::ws::tune(&stream);
        let stream = Rc::new(stream);
        *self.socket.borrow_mut() = Some(stream.clone());
        let task = self.hub.spawn(serve_client(self.clone(), stream, early));
        self.tasks.borrow_mut().push(task);
    }

    /// Calls into the link with the time now, then carries out every output it has for
    /// the free sinks.
    pub fn call<R>(self: &Rc<Self>, f: impl FnOnce(&mut Link, Time) -> R) -> R {
        let now = self.hub.now();
        let (result, outputs) = {
            let mut link = self.link.borrow_mut();
            let result = f(&mut link, now);
            let mut outputs = Vec::new();
            while let Some(output) = link.poll(self.sinks(), now) {
                self.claim_sink(&output);
                outputs.push(output);
            }
            (result, outputs)
        };
        for output in outputs {
            self.perform(output);
        }
        self.wake_waiters();
        result
    }

    fn sinks(&self) -> Sinks {
        Sinks {
            client: !self.client_busy.get(),
            stdin: !self.stdin_busy.get(),
        }
    }

    /// A write handed out makes its sink busy until it is done.
    fn claim_sink(&self, output: &LinkOutput) {
        match output {
            LinkOutput::Text(_) | LinkOutput::Close { .. } => self.client_busy.set(true),
            LinkOutput::Stdin(_) | LinkOutput::CloseStdin => self.stdin_busy.set(true),
            _ => {}
        }
    }

    fn perform(&self, output: LinkOutput) {
        match output {
            LinkOutput::Text(text) => self.hand_to_client(Message::Text(text.into())),
            LinkOutput::Close { code, reason } => {
                let close = CloseFrame {
                    code: code.into(),
                    reason: reason.into(),
                };
                self.hand_to_client(Message::Close(Some(close)));
            }
            LinkOutput::DropClient => {
                if let Some(socket) = self.socket.borrow_mut().take() {
                    _ = socket.get_ref().shutdown(Shutdown::Both);
                }
            }
            LinkOutput::Stdin(bytes) => self.hand_to_stdin(StdinJob::Write(bytes)),
            LinkOutput::CloseStdin => self.hand_to_stdin(StdinJob::Close),
            LinkOutput::StderrLine(line) => eprintln!("{line}"),
            LinkOutput::Signal(signal) => axs_host::signal::deliver(signal),
        }
    }

    fn hand_to_client(&self, message: Message) {
        *self.to_client.borrow_mut() = Some(message);
        self.client_ready.notify();
    }

    fn hand_to_stdin(&self, job: StdinJob) {
        *self.to_stdin.borrow_mut() = Some(job);
        self.stdin_ready.notify();
    }

    /// Wakes the readers that may read now and the timer if its deadline moved; drops
    /// a finished link.
    fn wake_waiters(&self) {
        let link = self.link.borrow();
        if link.wants_client() {
            self.client_room.notify();
        }
        for pipe in [Pipe::Stdout, Pipe::Stderr] {
            if pipe.wanted(&link) {
                pipe.room(self).notify();
            }
        }
        if link.poll_timeout() != self.scheduled.get() {
            self.timer.notify();
        }
        if link.is_finished() {
            drop(link);
            self.finish();
        }
    }

    /// The link is over: its tasks are cancelled (closing the pipes and the socket) and
    /// the hub forgets it.
    fn finish(&self) {
        log::debug!("language server {}: link finished", self.pid);
        // Taken out of the cell before dropped: a task may hold this `LinkIo` last.
        drop(self.tasks.take());
        drop(self.socket.take());
        self.hub.forget(self.pid);
    }

    /// The socket writer finished a write (`ok`: it went out).
    fn client_written(self: &Rc<Self>, ok: bool) {
        self.client_busy.set(false);
        self.call(|link, now| {
            if !ok {
                link.client_closed(now);
            }
        });
    }

    /// The stdin writer finished a write (`ok`: all of it went out).
    fn stdin_written(self: &Rc<Self>, ok: bool) {
        self.stdin_busy.set(false);
        self.call(|link, _| {
            if !ok {
                link.stdin_broken();
            }
        });
    }
}

/// Which of the program's output pipes a reader reads.
#[derive(Clone, Copy)]
enum Pipe {
    Stdout,
    Stderr,
}

impl Pipe {
    /// The wake-up of this pipe's reader.
    fn room(self, io: &LinkIo) -> &Wake {
        match self {
            Pipe::Stdout => &io.stdout_room,
            Pipe::Stderr => &io.stderr_room,
        }
    }

    fn wanted(self, link: &Link) -> bool {
        match self {
            Pipe::Stdout => link.wants_stdout(),
            Pipe::Stderr => link.wants_stderr(),
        }
    }

    fn feed(self, link: &mut Link, bytes: &[u8]) {
        match self {
            Pipe::Stdout => link.stdout(bytes),
            Pipe::Stderr => link.stderr(bytes),
        }
    }

    fn end(self, link: &mut Link) {
        match self {
            Pipe::Stdout => link.stdout_eof(),
            Pipe::Stderr => link.stderr_eof(),
        }
    }
}

/// Watches a pipe end on the reactor (which makes it non-blocking).
fn watch(fd: OwnedFd) -> io::Result<Async<File>> {
    Async::new(File::from(fd))
}

/// Reads a program's output pipe into the link while it wants it, until the end.
async fn read_pipe(io: Rc<LinkIo>, fd: OwnedFd, pipe: Pipe) {
    match watch(fd) {
        Ok(file) => read_until_end(&io, &file, pipe).await,
        Err(e) => log::warn!("language server {}: cannot watch a pipe: {e}", io.pid),
    }
    io.call(|link, _| pipe.end(link));
}

async fn read_until_end(io: &Rc<LinkIo>, file: &Async<File>, pipe: Pipe) {
    let mut unyielded = 0;
    loop {
        while !pipe.wanted(&io.link.borrow()) {
            pipe.room(io).wait().await;
        }
        if unyielded >= YIELD_AFTER {
            unyielded = 0;
            future::yield_now().await;
        }
        let read = file.read_with(|f| {
            io.hub.with_read_buffer(|buf| {
                let n = (&*f).read(buf)?;
                if n > 0 {
                    io.call(|link, _| pipe.feed(link, &buf[..n]));
                }
                Ok(n)
            })
        });
        match read.await {
            Ok(0) => return,
            Ok(n) => unyielded += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("language server {}: pipe read: {e}", io.pid);
                return;
            }
        }
    }
}

/// Writes what the link hands to the program's stdin; closes it when told.
async fn write_stdin(io: Rc<LinkIo>, fd: OwnedFd) {
    let stdin = watch(fd);
    if let Err(e) = &stdin {
        log::warn!("language server {}: cannot watch stdin: {e}", io.pid);
    }
    loop {
        let job = io.to_stdin.borrow_mut().take();
        match job {
            None => _ = io.stdin_ready.wait().await,
            Some(StdinJob::Close) => return,
            Some(StdinJob::Write(bytes)) => {
                let written = match &stdin {
                    Ok(file) => write_all(file, &bytes).await,
                    Err(_) => false,
                };
                io.stdin_written(written);
            }
        }
    }
}

async fn write_all(file: &Async<File>, bytes: &[u8]) -> bool {
    match (&mut &*file).write_all(bytes).await {
        Ok(()) => true,
        Err(e) => {
            log::debug!("writing to a language server: {e}");
            false
        }
    }
}

/// Hands the link its timeouts when they are due.
async fn run_timer(io: Rc<LinkIo>) {
    loop {
        let deadline = io.link.borrow().poll_timeout();
        io.scheduled.set(deadline);
        let fired = match deadline {
            Some(at) => {
                future::or(
                    async {
                        io.hub.sleep_until(at).await;
                        true
                    },
                    async {
                        io.timer.wait().await;
                        false
                    },
                )
                .await
            }
            None => {
                io.timer.wait().await;
                false
            }
        };
        if fired {
            io.call(Link::handle_timeout);
        }
    }
}

/// The socket shared by the WebSocket's halves and the raw drain after a message over
/// the limit (the WebSocket layer cannot read past one).
struct Shared(Rc<Async<TcpStream>>);

impl AsyncRead for Shared {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Shared {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_close(cx)
    }
}

/// Serves the WebSocket: a reader task of its own, the writer here.
async fn serve_client(io: Rc<LinkIo>, stream: Rc<Async<TcpStream>>, early: Vec<u8>) {
    let config = Some(axs_host::lsp::lsp_ws_config());
    let ws =
        WebSocketStream::from_partially_read(Shared(stream.clone()), early, Role::Server, config)
            .await;
    let (sender, receiver) = ws.split();
    let reader = io
        .hub
        .spawn(read_client(io.clone(), receiver, stream.clone()));
    io.tasks.borrow_mut().push(reader);
    io.client_written(true);
    write_client(&io, sender, &stream).await;
}

/// Hands the client's messages to the link while it wants them, until the socket ends.
async fn read_client(io: Rc<LinkIo>, mut receiver: WebSocketReceiver<Shared>, stream: Rc<Socket>) {
    loop {
        while !io.link.borrow().wants_client() {
            io.client_room.wait().await;
        }
        let message = match receiver.next().await {
            Some(Ok(Message::Text(text))) => ClientMessage::Text(text.as_str().to_owned()),
            Some(Ok(Message::Binary(bytes))) => ClientMessage::Binary(bytes.to_vec()),
            // Pings are answered by tungstenite; a close is answered and ends the stream.
            Some(Ok(_)) => continue,
            Some(Err(Error::Capacity(CapacityError::MessageTooLong { size, .. }))) => {
                io.call(|link, _| link.client_too_large(size as u64));
                drain(&stream).await;
                break;
            }
            Some(Err(e)) => {
                log::debug!("language server {}: socket ends: {e}", io.pid);
                break;
            }
            None => break,
        };
        io.call(|link, _| link.client_message(message));
    }
    io.call(|link, now| link.client_closed(now));
    // Nothing more goes either way: the client sees the connection end now, not when
    // the link is finished (the program may take its grace to go).
    _ = stream.get_ref().shutdown(Shutdown::Both);
}

type Socket = Async<TcpStream>;

/// Reads (and drops) what the client still sends until it closes: the rest of a message
/// the WebSocket layer refused. The link's close deadline bounds it (`DropClient`).
async fn drain(stream: &Socket) {
    let mut chunk = vec![0u8; CONN_READ_CHUNK];
    while let Ok(1..) = (&mut &*stream).read(&mut chunk).await {}
}

/// Sends what the link hands out for the client; after a close, half-closes the socket
/// (the client answers, then ends the stream).
async fn write_client(io: &Rc<LinkIo>, mut sender: WebSocketSender<Shared>, stream: &Socket) {
    loop {
        let message = io.to_client.borrow_mut().take();
        let sent = match message {
            Some(Message::Close(close)) => {
                let sent = sender.send(Message::Close(close)).await;
                _ = stream.get_ref().shutdown(Shutdown::Write);
                sent
            }
            Some(message) => sender.feed(message).await,
            None => {
                if let Err(e) = sender.flush().await {
                    log::debug!("language server {}: send: {e}", io.pid);
                    io.call(|link, now| link.client_closed(now));
                    return;
                }
                io.client_ready.wait().await;
                continue;
            }
        };
        if let Err(e) = &sent {
            log::debug!("language server {}: send: {e}", io.pid);
        }
        io.client_written(sent.is_ok());
    }
}
