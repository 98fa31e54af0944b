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
//! hidden `.…tmp` file, never a final one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::ReportError;

/// Bytes buffered per report file before a write to disk. A line costs several
/// kilobytes of JSON (the settings as read) and CSV (one row per rule): with the
/// default 8 KiB, large runs made a system call per line and file.
const WRITE_BUFFER: usize = 64 * 1024;

/// The temporary name under which the file `name` is written: `.NAME.tmp`.
pub(crate) fn temp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// A buffered scratch file that is removed when dropped, unless it was renamed away.
///
/// Created with `create_new`, so two runs can never share one: the second gets an
/// `AlreadyExists` error and picks another name.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    /// None once closed: the handle is dropped before a rename or removal, which
    /// Windows needs.
    writer: Option<BufWriter<File>>,
    /// Whether Drop should remove `path`; false once the file was renamed away, so that
    /// Drop never deletes a file some other process created under that name since.
    remove_on_drop: bool,
}

impl TempFile {
    /// Creates `path`, failing if it exists.
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
        Ok(TempFile {
            path,
            writer: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
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

    /// Flushes the buffer, fsyncs the file's data and closes it.
    fn close(&mut self) -> Result<(), ReportError> {
        let path = &self.path;
        let io_err = |source| ReportError::Io {
            path: path.clone(),
            source,
        };
        let mut writer = self.writer.take().ok_or_else(|| io_err(closed()))?;
        writer.flush().map_err(io_err)?;
        writer.get_ref().sync_all().map_err(io_err)
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
        let tmp = TempFile::create_new(dir.join(temp_name(name)))?;
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
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn commit_renames_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = AtomicFile::create(dir.path(), "r.json").expect("create");
        let tmp = f.temp_path().to_path_buf();
        assert_eq!(
            tmp.file_name().and_then(|n| n.to_str()),
            Some(".r.json.tmp")
        );
        f.write_all(b"hello").expect("write");
        assert!(tmp.exists());
        assert!(!dir.path().join("r.json").exists());
        let out = f.seal().expect("seal").commit().expect("commit");
        assert_eq!(out, dir.path().join("r.json"));
        assert_eq!(fs::read_to_string(&out).expect("read"), "hello");
        assert!(!tmp.exists());
    }

    #[test]
    fn drop_without_commit_removes_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = AtomicFile::create(dir.path(), "r.csv").expect("create");
        let tmp = f.temp_path().to_path_buf();
        f.write_all(b"partial").expect("write");
        drop(f);
        assert!(!tmp.exists());
        assert!(!dir.path().join("r.csv").exists());
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn second_create_of_same_name_fails_with_already_exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = AtomicFile::create(dir.path(), "r.csv").expect("create");
        match AtomicFile::create(dir.path(), "r.csv") {
            Err(ReportError::Io { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::AlreadyExists)
            }
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
    }

    #[test]
    fn temp_file_reads_back_what_was_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut t = TempFile::create_new(dir.path().join(".spool.tmp")).expect("create");
        t.write_all(b"abc").expect("write");
        t.write_all(b"def").expect("write");
        let mut s = String::new();
        t.reader()
            .expect("reader")
            .read_to_string(&mut s)
            .expect("read");
        assert_eq!(s, "abcdef");
        let p = t.path().to_path_buf();
        drop(t);
        assert!(!p.exists());
    }
}
