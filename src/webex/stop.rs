//! Stopping a run early: a 401, a token refused every line (403), a signal or a run
//! that makes no progress ends every line that has not been read.

use std::time::Duration;

use tokio::sync::watch;

/// Why the run stopped sending requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The API refused the token (401).
    Unauthorized,
    /// SIGINT, SIGTERM or SIGHUP.
    Interrupted,
    /// No answer was a 2xx for `--max-stall` (a server that throttles or fails forever).
    Stalled {
        /// `--max-stall`.
        after: Duration,
    },
    /// The first lines answered were all refused (403) and none was read: a wrong
    /// `--org-id`, or a token that may not read this org's lines.
    Forbidden {
        /// Lines answered 403.
        lines: u32,
    },
    /// Every connection attempt failed, none ever got through: nothing is listening, or
    /// the host cannot be reached at all.
    Unreachable {
        /// Connection attempts that failed in a row.
        attempts: u32,
    },
}

impl StopReason {
    /// What stopped the run, as the unread lines' error message and the end-of-run
    /// message say it.
    pub fn describe(self) -> String {
        match self {
            StopReason::Unauthorized => {
                "the run stopped after the API refused the token (401)".into()
            }
            StopReason::Interrupted => "the run was interrupted".into(),
            StopReason::Stalled { after } => format!(
                "the run stopped: no answer was a success (2xx) for {} (--max-stall)",
                humantime::format_duration(after)
            ),
            StopReason::Forbidden { lines } => format!(
                "the run stopped: the API refused each of the first {lines} lines it \
                 answered (403 Forbidden) and read none"
            ),
            StopReason::Unreachable { attempts } => format!(
                "the run stopped: the API could not be reached ({attempts} connection \
                 attempts in a row failed and none ever succeeded)"
            ),
        }
    }
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
