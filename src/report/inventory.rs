//! The inventory CSV of `ptt-audit lines` (`CONTRACT.md` §7):
//! `id,name,location_id,location_name,phone_number,extension`, one row per line.
//!
//! Same rules as the reports' CSVs: RFC 4180, UTF-8, `\n`, one header row, every cell
//! neutralised (a line named `=HYPERLINK(…)` is written `'=HYPERLINK(…)`). `--lines`
//! reads the file back as it is, identity included, and undoes the neutralising.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::atomic::AtomicFile;
use super::{neutralise, ReportError};
use crate::model::LineIdentity;

/// The inventory's columns.
pub const INVENTORY_HEADER: [&str; 6] = [
    "id",
    "name",
    "location_id",
    "location_name",
    "phone_number",
    "extension",
];

/// Writes inventory rows to any `Write` (stdout, or an [`AtomicOutput`]).
#[derive(Debug)]
pub struct InventoryWriter<W: Write> {
    csv: ::csv::Writer<W>,
    rows: u64,
}

impl<W: Write> InventoryWriter<W> {
    /// Writes the header row.
    pub fn new(out: W) -> std::io::Result<InventoryWriter<W>> {
        let mut csv = ::csv::WriterBuilder::new().from_writer(out);
        csv.write_record(INVENTORY_HEADER)?;
        Ok(InventoryWriter { csv, rows: 0 })
    }

    /// Writes one line's row.
    pub fn write(&mut self, id: &str, identity: &LineIdentity) -> std::io::Result<()> {
        self.csv.write_field(neutralise(id).as_bytes())?;
        for value in identity.values() {
            self.csv
                .write_field(neutralise(value.unwrap_or("")).as_bytes())?;
        }
        self.csv.write_record(None::<&[u8]>)?;
        self.rows += 1;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes and hands the output back.
    pub fn finish(self) -> std::io::Result<W> {
        self.csv.into_inner().map_err(|e| e.into_error())
    }
}

/// A file that appears at its path only complete: written under a hidden temporary
/// name in the same folder, renamed into place by [`AtomicOutput::commit`]. Dropped
/// without committing, it leaves nothing behind.
#[derive(Debug)]
pub struct AtomicOutput {
    file: AtomicFile,
}

impl AtomicOutput {
    /// Starts writing `path` (its folder must exist).
    pub fn create(path: &Path) -> Result<AtomicOutput, ReportError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return Err(ReportError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a file name in UTF-8",
                ),
            });
        };
        Ok(AtomicOutput {
            file: AtomicFile::create(dir, name)?,
        })
    }

    /// Syncs the file and renames it into place; returns its path.
    pub fn commit(self) -> Result<PathBuf, ReportError> {
        self.file.seal()?.commit()
    }
}

impl Write for AtomicOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_neutralised_and_read_back_as_written() {
        let mut w = InventoryWriter::new(Vec::new()).unwrap();
        let identity = LineIdentity {
            name: Some("=HYPERLINK(\"x\")".into()),
            location_name: Some("HQ, north".into()),
            phone_number: Some("+19845550100".into()),
            ..LineIdentity::default()
        };
        w.write("L1", &identity).unwrap();
        w.write("-L2", &LineIdentity::default()).unwrap();
        assert_eq!(w.rows(), 2);
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            "id,name,location_id,location_name,phone_number,extension\n\
             L1,\"'=HYPERLINK(\"\"x\"\")\",,\"HQ, north\",'+19845550100,\n\
             '-L2,,,,,\n"
        );
    }

    #[test]
    fn an_atomic_output_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines.csv");
        let mut out = AtomicOutput::create(&path).unwrap();
        out.write_all(b"id\n").unwrap();
        assert!(!path.exists());
        assert_eq!(out.commit().unwrap(), path);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "id\n");
        let dropped = AtomicOutput::create(&dir.path().join("gone.csv")).unwrap();
        drop(dropped);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
