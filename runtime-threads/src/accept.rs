//! The accept loop, shared by the terminal server and the LSP bridge: both wait on a
//! non-blocking listener and the [`StopAccepting`] eventfd on the main thread, and hand
//! every accepted connection to a thread of its own.
//!
//! Invariants: the loop returns only once the stop eventfd is readable; a failing `poll`
//! or `accept` never ends it (after a real failure it pauses, then tries again); a
//! spurious wake-up (`WouldBlock`, `EINTR`) neither pauses nor reaches the caller.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use axs_core::limits::ACCEPT_RETRY;
use rustix::event::{PollFd, PollFlags};

use crate::handles::StopAccepting;

/// Accepts connections on `listener` until `stop` fires, handing each to `admit`. After an
/// `accept` failure it sleeps for what `pause_after` says (the terminal server asks its
/// core, which may evict an idle connection; the bridge waits [`ACCEPT_RETRY`]).
pub fn accept_until_stopped(
    listener: &TcpListener,
    stop: &StopAccepting,
    mut admit: impl FnMut(TcpStream),
    mut pause_after: impl FnMut(&io::Error) -> Duration,
) {
    loop {
        let mut fds = [
            PollFd::new(listener, PollFlags::IN),
            PollFd::new(stop.fd(), PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) if !fds[1].revents().is_empty() => return,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                log::warn!("poll on the listener: {e}");
                thread::sleep(ACCEPT_RETRY);
            }
        }
        match listener.accept() {
            Ok((stream, _)) => admit(stream),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                log::warn!("accept: {e}");
                thread::sleep(pause_after(&e));
            }
        }
    }
}
