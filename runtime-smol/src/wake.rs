//! A wake-up permit: `notify` stores at most one, `wait` takes it (or waits for it).
//!
//! Built on a one-slot channel, so a notify before the wait is never lost and many
//! notifies before one wait cost one wake-up.

use smol::channel::{self, Receiver, Sender, TrySendError};

/// One waiter's wake-up permit.
#[derive(Debug, Clone)]
pub struct Wake {
    tx: Sender<()>,
    rx: Receiver<()>,
}

impl Wake {
    /// A permit slot, empty.
    pub fn new() -> Wake {
        let (tx, rx) = channel::bounded(1);
        Wake { tx, rx }
    }

    /// Stores the permit (a stored one stays; nothing accumulates).
    pub fn notify(&self) {
        match self.tx.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Closed(())) => {}
        }
    }

    /// Waits for the permit and takes it; `false` once [`Wake::close`] was called.
    pub async fn wait(&self) -> bool {
        self.rx.recv().await.is_ok()
    }

    /// Wakes the waiter for good: every later `wait` returns `false` at once.
    pub fn close(&self) {
        self.tx.close();
    }
}
