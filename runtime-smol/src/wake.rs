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

#[cfg(test)]
mod tests {
    use super::Wake;
    use futures_lite::future;

    #[test]
    fn a_notify_before_the_wait_is_kept_once() {
        let wake = Wake::new();
        wake.notify();
        wake.notify();
        assert!(future::block_on(wake.wait()));
        // Two notifies stored one permit: the next wait would block.
        assert!(future::block_on(future::poll_once(wake.wait())).is_none());
    }

    #[test]
    fn close_ends_every_wait() {
        let wake = Wake::new();
        wake.close();
        assert!(!future::block_on(wake.wait()));
        assert!(!future::block_on(wake.wait()));
    }
}
