//! A report writer on a thread of its own: the slow formats (the workbook's cells, the
//! page's rows) are made while the run goes on reading lines, instead of in its way.
//!
//! Lines are shared with the thread (`Arc`), through a bounded channel: memory holds
//! at most `QUEUE` lines per writer, and a slow disk slows the run rather than filling
//! memory. A writer that fails stops taking lines; its error comes back on the next
//! line sent or at the end, and the report set is then not committed (all or nothing).

use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{ReportError, ReportWriter};
use crate::model::LineReport;

/// Lines waiting for a background writer at most.
const QUEUE: usize = 256;

/// What the writer's thread ends with: the writer, ready to finish, or why not.
type Outcome = Result<Box<dyn ReportWriter>, ReportError>;

/// A report writer working on its own thread.
pub(crate) struct Background {
    tx: Option<SyncSender<Arc<LineReport>>>,
    thread: Option<JoinHandle<Outcome>>,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background").finish_non_exhaustive()
    }
}

impl Background {
    /// Moves `writer` to a new thread named `name`.
    pub(crate) fn spawn(
        name: &str,
        mut writer: Box<dyn ReportWriter>,
    ) -> Result<Background, ReportError> {
        let (tx, rx) = sync_channel::<Arc<LineReport>>(QUEUE);
        let thread = std::thread::Builder::new()
            .name(format!("report-{name}"))
            .spawn(move || {
                for line in rx {
                    writer.write_line(&line)?;
                }
                Ok(writer)
            })
            .map_err(|e| ReportError::Internal(format!("cannot start the {name} writer: {e}")))?;
        Ok(Background {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands a line to the writer; fails with the writer's own error once it failed.
    pub(crate) fn send(&mut self, line: Arc<LineReport>) -> Result<(), ReportError> {
        let delivered = self.tx.as_ref().is_some_and(|tx| tx.send(line).is_ok());
        if delivered {
            return Ok(());
        }
        // The thread stopped taking lines: it failed. Its error is the one to report.
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(ReportError::Internal(
                "a report writer stopped taking lines".into(),
            )),
        }
    }

    /// Waits for every line sent to be written; returns the writer, to finish.
    pub(crate) fn into_writer(mut self) -> Outcome {
        self.join()
    }

    fn join(&mut self) -> Outcome {
        drop(self.tx.take());
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|p| Err(ReportError::panicked(&*p))),
            None => Err(ReportError::Internal(
                "a report writer already ended".into(),
            )),
        }
    }
}

impl Drop for Background {
    /// Ends the thread and waits for it, so that the writer's temporary files are gone
    /// before the run returns (an unfinished writer removes them when dropped).
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
