//! One run per report folder: an exclusive OS lock on `OUT/.ptt-audit.lock`, held for
//! the whole run. Two cron jobs that overlap would otherwise interleave their reports,
//! retention and `--previous latest` in one folder. The OS drops the lock when the
//! process ends, however it ends, so a killed run leaves nothing stale; the file itself
//! stays (an empty lock file is harmless, and removing it would race a new run).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The lock file's name inside `--out`.
pub const LOCK_FILE: &str = ".ptt-audit.lock";

/// The report folder's lock, held until dropped.
#[derive(Debug)]
pub struct OutLock {
    _file: File,
}

/// Why the report folder could not be locked (exit 2).
#[derive(Debug, Error)]
pub enum LockError {
    /// Another run holds it.
    #[error(
        "another ptt-audit run{holder} holds {}: one run at a time writes into a report \
         folder; this one stops without requesting anything (try again when that run has \
         finished, or use another --out)", path.display()
    )]
    Held {
        /// The lock file.
        path: PathBuf,
        /// ` (pid N, started …)` as the holder wrote it, or empty.
        holder: String,
    },
    /// The folder or the lock file cannot be created or locked.
    #[error("cannot lock the report folder with {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Creates `dir` if missing and takes its lock without waiting.
pub(crate) fn lock_out_dir(dir: &Path) -> Result<OutLock, LockError> {
    let path = dir.join(LOCK_FILE);
    let io_err = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    fs::create_dir_all(dir).map_err(io_err)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = (&file).take(200).read_to_string(&mut text);
            let text = text.trim();
            let holder = if text.is_empty() || text.chars().any(char::is_control) {
                String::new()
            } else {
                format!(" ({text})")
            };
            return Err(LockError::Held { path, holder });
        }
        Err(fs::TryLockError::Error(e)) => return Err(io_err(e)),
    }
    // For the message a second run prints; the lock is what counts, not this text.
    let note = format!(
        "pid {}, started {}",
        std::process::id(),
        super::rfc3339(&chrono::Utc::now())
    );
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(note.as_bytes()));
    Ok(OutLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_folder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("reports");
        let first = lock_out_dir(&out).expect("first lock");
        let err = lock_out_dir(&out).expect_err("held");
        let text = err.to_string();
        assert!(matches!(err, LockError::Held { .. }), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains(".ptt-audit.lock"), "{text}");
        drop(first);
        lock_out_dir(&out).expect("free again");
    }
}
