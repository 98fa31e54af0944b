//! One run per report folder: an exclusive OS lock on `OUT/.ptt-audit.lock`, held for
//! the whole run. Two cron jobs that overlap would otherwise interleave their reports,
//! retention and `--previous latest` in one folder. The OS drops the lock when the
//! process ends, however it ends, so a killed run leaves nothing stale (at most the
//! unlocked file, which the next run takes over).
//!
//! A run that ends normally removes the file, while still holding its lock, so the
//! folder holds only reports. A run that opened the file just before, and locks it
//! just after, then holds a lock on a file that is gone: so every run checks, once it
//! holds the lock, that the name still leads to the file it locked, and starts over if
//! not (on Unix; elsewhere the file stays).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The lock file's name inside `--out`.
pub const LOCK_FILE: &str = ".ptt-audit.lock";

/// How often a run starts over because the lock file was replaced under it.
const ATTEMPTS: u32 = 100;

/// The report folder's lock, held until dropped.
#[derive(Debug)]
pub struct OutLock {
    path: PathBuf,
    /// Dropped after `Drop::drop` removed `path`: the lock outlives the name.
    _file: File,
}

impl Drop for OutLock {
    fn drop(&mut self) {
        #[cfg(unix)]
        let _ = fs::remove_file(&self.path);
    }
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
    let mut attempt = 0;
    let mut file = loop {
        attempt += 1;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(held(&file, path.clone())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        if still_named(&file, &path) || attempt >= ATTEMPTS {
            break file;
        }
    };
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
    Ok(OutLock { path, _file: file })
}

/// The refusal, with what the holder wrote into the file (pid, start).
fn held(file: &File, path: PathBuf) -> LockError {
    let mut text = String::new();
    let _ = file.take(200).read_to_string(&mut text);
    let text = text.trim();
    let holder = if text.is_empty() || text.chars().any(char::is_control) {
        String::new()
    } else {
        format!(" ({text})")
    };
    LockError::Held { path, holder }
}

/// Whether `path` still names the file `file` has open (a run that ended may have
/// removed it between our open and our lock).
#[cfg(unix)]
fn still_named(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_named(_file: &File, _path: &Path) -> bool {
    true
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
        #[cfg(unix)]
        assert!(
            !out.join(LOCK_FILE).exists(),
            "a finished run leaves no lock file"
        );
        lock_out_dir(&out).expect("free again");
    }
}
