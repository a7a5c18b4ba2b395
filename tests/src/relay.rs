//! A loopback TCP relay the test can cut and restore: a network drop between a client and
//! the server, without touching either.
//!
//! While cut, every relayed connection is shut down and new ones are closed on accept, as a
//! dead Wi-Fi would look to a browser. Dropping the relay stops its threads.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A relay from a loopback port of its own to `127.0.0.1:upstream`.
pub struct Relay {
    /// The port clients connect to.
    pub port: u16,
    shared: Arc<Shared>,
}

struct Shared {
    cut: AtomicBool,
    stop: AtomicBool,
    /// Both ends of every live relayed connection, to shut them down on a cut.
    live: Mutex<Vec<TcpStream>>,
}

impl Relay {
    /// Starts relaying to `upstream`.
    pub fn start(upstream: u16) -> Result<Relay, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let shared = Arc::new(Shared {
            cut: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            live: Mutex::new(Vec::new()),
        });
        let accepting = Arc::clone(&shared);
        thread::spawn(move || accept_loop(&listener, upstream, &accepting));
        Ok(Relay { port, shared })
    }

    /// Drops every relayed connection and refuses new ones until [`Relay::restore`].
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        self.shared.shut_all();
    }

    /// Relays again.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.shut_all();
    }
}

impl Shared {
    fn shut_all(&self) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for stream in live.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: &TcpListener, upstream: u16, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(_) => return,
        };
        if shared.cut.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let _ = client.set_nonblocking(false);
        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
            continue;
        };
        let clones = (client.try_clone(), server.try_clone());
        let (Ok(client2), Ok(server2)) = clones else {
            continue;
        };
        if let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) {
            let mut live = shared.live.lock().unwrap_or_else(|e| e.into_inner());
            live.push(a);
            live.push(b);
        }
        thread::spawn(move || pump(client, server));
        thread::spawn(move || pump(server2, client2));
    }
}

/// Copies `from` to `to` until either end closes, then closes both directions.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
