//! Atomic report files.
//!
//! A report is written under a hidden temporary name (`.NAME.tmp`) in its destination
//! folder, flushed and fsynced, and only then renamed to `NAME`. A rename within one
//! folder is atomic, so a reader (or a crash) sees either no report or a whole one.
//! The temporary file lives in the same folder because a rename across file systems
//! is a copy, and a copy is not atomic.
//!
//! Dropping a file that was not committed removes its temporary file, so an aborted
//! run leaves nothing behind; only a hard kill (SIGKILL, power loss) can leave a
//! hidden `.…tmp` file, never a final one. The next run into the folder removes those
//! ([`remove_stale_temps`]): a temporary file is held under an OS lock (`flock`,
//! `LockFileEx`) as long as the run writing it has it open, and the OS drops the lock
//! when that process dies, however it dies.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::naming::after_stem;
use super::ReportError;

/// How long ago a temporary report file must have been written last before a later
/// run may remove it, on top of nobody holding its lock. The lock is what tells a live
/// run from a dead one; the age covers the instants in which a live run's file is not
/// locked (between its creation and its lock, and around the final rename), and file
/// systems whose locks are advisory at best.
const STALE_TEMP_AGE: Duration = Duration::from_secs(5 * 60);

/// Bytes buffered per report file before a write to disk. A line costs several
/// kilobytes of JSON (the settings as read) and CSV (one row per rule): with the
/// default 8 KiB, large runs made a system call per line and file.
const WRITE_BUFFER: usize = 64 * 1024;

/// The temporary name under which the file `name` is written: `.NAME.tmp`.
pub(crate) fn temp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// Whether `name` is a temporary name that [`temp_name`] gives a report file:
/// `.` + a report stem + a suffix + `.tmp`.
fn is_report_temp_name(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_suffix(".tmp"))
        .and_then(after_stem)
        .is_some()
}

/// What [`remove_stale_temps`] did.
#[derive(Debug, Default)]
pub(crate) struct Cleanup {
    /// The files removed.
    pub(crate) removed: Vec<PathBuf>,
    /// The files that were stale but could not be removed, and why.
    pub(crate) failed: Vec<(PathBuf, io::Error)>,
}

/// Removes the temporary report files that killed runs left in `dir`: only files
/// named as [`temp_name`] names report files, that no process holds locked (the run
/// that wrote them is gone), and that were last written [`STALE_TEMP_AGE`] ago or
/// more. Anything else, and anything that cannot be checked, is left alone. An
/// unreadable folder is not an error here: choosing the run's file names reports it.
pub(crate) fn remove_stale_temps(dir: &Path) -> Cleanup {
    let mut cleanup = Cleanup::default();
    let Ok(entries) = fs::read_dir(dir) else {
        return cleanup;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_report_temp_name) {
            continue;
        }
        let path = entry.path();
        if is_abandoned(&path, now) {
            match fs::remove_file(&path) {
                Ok(()) => cleanup.removed.push(path),
                // Another run's clean-up was quicker.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => cleanup.failed.push((path, e)),
            }
        }
    }
    cleanup
}

/// Whether the temporary file at `path` is a plain file, old enough, and not locked
/// by a live run. False whenever that cannot be told.
fn is_abandoned(path: &Path, now: SystemTime) -> bool {
    // Not followed: a link is never ours.
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    let old = meta
        .modified()
        .ok()
        .and_then(|written| now.duration_since(written).ok())
        .is_some_and(|age| age >= STALE_TEMP_AGE);
    if !meta.is_file() || !old {
        return false;
    }
    // The lock taken here is released when `file` is dropped, before the removal.
    File::open(path).is_ok_and(|file| file.try_lock().is_ok())
}

/// A buffered scratch file that is removed when dropped, unless it was renamed away.
///
/// Created with `create_new`, so two runs can never share one: the second gets an
/// `AlreadyExists` error and picks another name.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    /// None once closed.
    writer: Option<BufWriter<File>>,
    /// Once closed: the synced file, still open so that its lock keeps telling other
    /// runs that this one is alive. Dropped before a rename or removal, which Windows
    /// needs.
    closed: Option<File>,
    /// Whether Drop should remove `path`; false once the file was renamed away, so that
    /// Drop never deletes a file some other process created under that name since.
    remove_on_drop: bool,
}

impl TempFile {
    /// Creates `path`, failing if it exists, and locks it for as long as it is open.
    pub(crate) fn create_new(path: PathBuf) -> Result<TempFile, ReportError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| ReportError::Io {
                path: path.clone(),
                source,
            })?;
        // Nobody else can hold a lock on a file just created. Where the file system
        // has no locks, a later run cannot lock it either, and so leaves it alone.
        let _ = file.try_lock();
        Ok(TempFile {
            path,
            writer: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            closed: None,
            remove_on_drop: true,
        })
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes what was written and returns a buffered reader from its start.
    ///
    /// Writing after reading is not supported (it would continue where reading stopped).
    pub(crate) fn reader(&mut self) -> Result<impl BufRead + '_, ReportError> {
        let path = &self.path;
        let io_err = |source| ReportError::Io {
            path: path.clone(),
            source,
        };
        let writer = self.writer.as_mut().ok_or_else(|| io_err(closed()))?;
        writer.flush().map_err(io_err)?;
        let file = writer.get_mut();
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        Ok(BufReader::with_capacity(WRITE_BUFFER, file))
    }

    /// Flushes the buffer and fsyncs the file's data; no more writing. The file stays
    /// open (and locked) until renamed or removed.
    fn close(&mut self) -> Result<(), ReportError> {
        let path = &self.path;
        let io_err = |source| ReportError::Io {
            path: path.clone(),
            source,
        };
        let writer = self.writer.take().ok_or_else(|| io_err(closed()))?;
        let file = writer.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.sync_all().map_err(io_err)?;
        self.closed = Some(file);
        Ok(())
    }

    fn writer(&mut self) -> io::Result<&mut BufWriter<File>> {
        self.writer.as_mut().ok_or_else(closed)
    }
}

fn closed() -> io::Error {
    io::Error::other("report file already closed")
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer()?.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer()?.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer()?.flush()
    }
}

/// The xlsx container (a zip) goes back to fill in sizes: it needs to seek.
impl Seek for TempFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.writer()?.seek(pos)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Close before removing: Windows cannot delete an open file right away.
        drop(self.writer.take());
        drop(self.closed.take());
        if self.remove_on_drop {
            // Nothing useful can be done about a failure here: the file is hidden and
            // its name is never reused by a later run's stem choice.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A file that appears under its final name only when it is [sealed](AtomicFile::seal)
/// and [committed](Sealed::commit).
#[derive(Debug)]
pub(crate) struct AtomicFile {
    tmp: TempFile,
    final_path: PathBuf,
}

impl AtomicFile {
    /// Starts writing `dir/name` by creating `dir/.name.tmp` (which must not exist).
    pub(crate) fn create(dir: &Path, name: &str) -> Result<AtomicFile, ReportError> {
        let tmp_path = dir.join(temp_name(name));
        // A killed run may have left this very name behind (`ptt-audit lines --out
        // FILE` uses the same name each time): taken away on the same terms as
        // `remove_stale_temps` takes report temporaries.
        if is_abandoned(&tmp_path, SystemTime::now()) {
            let _ = fs::remove_file(&tmp_path);
        }
        let tmp = TempFile::create_new(tmp_path).map_err(|e| match e {
            ReportError::Io { path, source } if source.kind() == io::ErrorKind::AlreadyExists => {
                ReportError::Io {
                    path,
                    source: io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!(
                            "it exists: another run is writing {name}, or a killed run left \
                             it (removed by the next run once nobody holds it and it is \
                             {} old)",
                            humantime::format_duration(STALE_TEMP_AGE)
                        ),
                    ),
                }
            }
            other => other,
        })?;
        Ok(AtomicFile {
            tmp,
            final_path: dir.join(name),
        })
    }

    /// The temporary file being written.
    pub(crate) fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Flushes, fsyncs and closes the file, still under its temporary name: what is
    /// left to do, the rename, can be done for several files together.
    pub(crate) fn seal(mut self) -> Result<Sealed, ReportError> {
        self.tmp.close()?;
        Ok(Sealed {
            tmp: self.tmp,
            final_path: self.final_path,
        })
    }
}

/// A complete, synced file waiting under its temporary name; dropping it removes it.
#[derive(Debug)]
pub(crate) struct Sealed {
    tmp: TempFile,
    final_path: PathBuf,
}

impl Sealed {
    /// Renames the file to its final name; returns that name.
    pub(crate) fn commit(mut self) -> Result<PathBuf, ReportError> {
        // Closed at the last moment: Windows cannot rename an open file.
        drop(self.tmp.closed.take());
        fs::rename(self.tmp.path(), &self.final_path).map_err(|source| ReportError::Io {
            path: self.final_path.clone(),
            source,
        })?;
        self.tmp.remove_on_drop = false;
        sync_parent(&self.final_path);
        Ok(self.final_path.clone())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.tmp.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.tmp.seek(pos)
    }
}

/// Fsyncs the folder holding `path`, so that the rename itself survives a power loss.
///
/// Best effort: the report is complete and in place either way, and some platforms
/// (Windows) and file systems cannot open or sync a folder.
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests;
