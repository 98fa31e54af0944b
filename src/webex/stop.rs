//! Stopping a run early: a 401 or a signal ends every line that has not been read.

use tokio::sync::watch;

/// Why the run stopped sending requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The API refused the token (401).
    Unauthorized,
    /// SIGINT, SIGTERM or SIGHUP.
    Interrupted,
}

/// A run-wide stop signal: set once, seen by every task, awaitable.
#[derive(Debug, Clone)]
pub struct Stop {
    tx: std::sync::Arc<watch::Sender<Option<StopReason>>>,
}

impl Default for Stop {
    fn default() -> Self {
        Stop {
            tx: std::sync::Arc::new(watch::channel(None).0),
        }
    }
}

impl Stop {
    /// Stops the run; the first reason given is kept.
    pub fn trigger(&self, reason: StopReason) {
        self.tx.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Why the run stopped, if it did.
    pub fn reason(&self) -> Option<StopReason> {
        *self.tx.borrow()
    }

    /// Completes when the run stops.
    pub(crate) async fn stopped(&self) -> StopReason {
        let mut rx = self.tx.subscribe();
        loop {
            if let Some(r) = *rx.borrow_and_update() {
                return r;
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as `self`: cannot happen; never resolve.
                std::future::pending::<()>().await;
            }
        }
    }
}
