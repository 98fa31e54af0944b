//! Reading the virtual-line IDs to audit: `--lines FILE|-` (plain or CSV) and `--line ID`.
//! (`--all` lists them from the API instead: see [`crate::discovery`].)
//!
//! Order is kept, duplicates are dropped (first position wins), and malformed IDs are
//! kept as `invalid` entries so that they appear in the reports without ever being
//! requested. A file that cannot be read as the user meant it (not UTF-8, broken CSV
//! quoting, see `csv`) is an error naming the file and line, never a guess.

mod csv;

use std::fmt;
use std::io::{BufRead, BufReader};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use crate::model::LineIdentity;

/// Longest ID the contract accepts.
pub(crate) const MAX_ID_LEN: usize = 512;

/// CSV header names (case-insensitive) that hold the line ID, in the contract's order.
pub(crate) const ID_COLUMNS: [&str; 4] = ["id", "virtualLineId", "virtual_line_id", "line_id"];

/// CSV header names (case-insensitive) that hold a display name for the line.
pub(crate) const NAME_COLUMNS: [&str; 4] = ["line_name", "name", "displayName", "display_name"];

/// CSV header names (case-insensitive) of the other identity columns, each the name
/// of the [`LineIdentity`] field it fills: the inventory (`ptt-audit lines`) and both
/// CSV reports spell them alike, so either reads back with its identity.
pub(crate) const IDENTITY_COLUMNS: [&str; 4] =
    ["location_id", "location_name", "phone_number", "extension"];

/// One ID to audit, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLine {
    /// The ID, trimmed.
    pub(crate) id: String,
    /// Name, location and numbers, when a CSV input or the listing gave them.
    pub(crate) identity: Arc<LineIdentity>,
    /// Why the ID is invalid; `None` for a valid ID.
    pub(crate) invalid: Option<String>,
    /// Where it came from (`file:line` or `--line`), for messages.
    pub(crate) origin: Origin,
}

/// Where an ID came from, for messages: `FILE:LINE`, or a label such as `--line`.
///
/// The source is shared by every line of a file, so an origin costs no allocation
/// of its own: it is kept for every line of runs of 100,000 lines and more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    source: Arc<str>,
    line: Option<NonZeroUsize>,
}

impl Origin {
    /// Line `line` (1-based) of `source`.
    pub(crate) fn at(source: &Arc<str>, line: usize) -> Origin {
        Origin {
            source: Arc::clone(source),
            line: NonZeroUsize::new(line),
        }
    }
}

impl Origin {
    /// A source without line numbers, shared by every line from it.
    pub(crate) fn labelled(source: &Arc<str>) -> Origin {
        Origin {
            source: Arc::clone(source),
            line: None,
        }
    }
}

impl From<&str> for Origin {
    fn from(label: &str) -> Origin {
        Origin {
            source: Arc::from(label),
            line: None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "{}:{n}", self.source),
            None => f.write_str(&self.source),
        }
    }
}

/// Problems that make the whole input unusable (exit 2).
#[derive(Debug, Error)]
pub enum InputError {
    /// The file could not be read.
    #[error("cannot read line list {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not UTF-8 text.
    #[error(
        "{path}:{line}: not UTF-8 text; save the file as UTF-8 (UTF-16, which some Windows \
         tools write, is not read)"
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The line (for CSV: where the record starts).
        line: usize,
    },
    /// A CSV input has no ID column.
    #[error(
        "{path}:{line}: CSV header has no ID column (expected one of: {expected}); found: {found}"
    )]
    NoIdColumn {
        /// The file.
        path: PathBuf,
        /// Line of the header.
        line: usize,
        /// The accepted names.
        expected: String,
        /// The header as found.
        found: String,
    },
    /// A CSV record could not be parsed: quoting, field count.
    #[error("{path}:{line}: malformed CSV: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The line where the record starts.
        line: u64,
        /// The parser's explanation.
        message: String,
    },
    /// Nothing to audit.
    #[error(
        "no virtual-line IDs given: pass --all (every line of the org), --lines FILE (or -) \
         and/or --line ID"
    )]
    NoIds,
}

/// Why an ID cannot be requested, or `None` when it is fine.
pub(crate) fn invalid_reason(id: &str) -> Option<String> {
    if id.is_empty() {
        Some("empty ID".into())
    } else if id == "." || id == ".." {
        Some(format!("`{id}` is not a valid ID"))
    } else if id.chars().count() > MAX_ID_LEN {
        Some(format!(
            "ID is longer than {MAX_ID_LEN} characters ({})",
            id.chars().count()
        ))
    } else if id.chars().any(char::is_whitespace) {
        Some("ID contains whitespace".into())
    } else if id.chars().any(char::is_control) {
        Some("ID contains a control character".into())
    } else {
        None
    }
}

/// Reads every `--lines` source and every `--line` value, in that order, into one
/// deduplicated list. Fails only when a source is unreadable or no ID remains.
///
/// The list is the one thing a run holds per line, so it is kept lean: files are
/// read a line at a time (never whole), and duplicates are found without copying
/// any ID (see `dedupe`).
pub fn collect(files: &[PathBuf], ids: &[String]) -> Result<Vec<InputLine>, InputError> {
    let out = collect_any(files, ids)?;
    if out.is_empty() {
        return Err(InputError::NoIds);
    }
    Ok(out)
}

/// As [`collect`], but an empty result is fine: with `--all`, the listing may be all
/// there is to audit (and an ID file may be empty on purpose).
pub fn collect_any(files: &[PathBuf], ids: &[String]) -> Result<Vec<InputLine>, InputError> {
    let mut out = Vec::new();
    for file in files {
        read_into(file, &mut out)?;
    }
    for id in ids {
        let id = id.trim().to_string();
        out.push(InputLine {
            invalid: invalid_reason(&id),
            id,
            identity: LineIdentity::unknown(),
            origin: "--line".into(),
        });
    }
    dedupe(&mut out);
    out.shrink_to_fit();
    Ok(out)
}

/// Drops repeated IDs, keeping each one's first position.
///
/// Sorting positions by ID instead of filling a set of seen IDs needs no copy of any
/// ID: for 100,000 IDs of 88 characters that is 0.8 MB of positions instead of some
/// 13 MB of cloned strings and hash table, at the moment the run's memory peaks.
fn dedupe(lines: &mut Vec<InputLine>) {
    let mut order: Vec<usize> = (0..lines.len()).collect();
    // Ties broken by position: the first of each run of equal IDs is the first seen.
    order.sort_unstable_by(|&a, &b| (lines[a].id.as_str(), a).cmp(&(lines[b].id.as_str(), b)));
    let mut keep = vec![true; lines.len()];
    for pair in order.windows(2) {
        if lines[pair[0]].id == lines[pair[1]].id {
            keep[pair[1]] = false;
        }
    }
    drop(order);
    let mut keep = keep.into_iter();
    lines.retain(|_| keep.next().unwrap_or(true));
}

/// Appends the lines of one `--lines` source (`-` is stdin) to `out`. Duplicates are
/// kept here.
fn read_into(path: &Path, out: &mut Vec<InputLine>) -> Result<(), InputError> {
    if path == Path::new("-") {
        parse_from(path, std::io::stdin().lock(), out)
    } else {
        let file = std::fs::File::open(path).map_err(|source| InputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        parse_from(path, BufReader::with_capacity(64 * 1024, file), out)
    }
}

/// Parses a `--lines` source one line at a time, appending to `out`: plain (one ID a
/// line) unless the first meaningful line contains a comma, in which case it is CSV
/// with a header row.
fn parse_from<R: BufRead>(
    path: &Path,
    mut reader: R,
    out: &mut Vec<InputLine>,
) -> Result<(), InputError> {
    let source: Arc<str> = Arc::from(path.display().to_string());
    let mut buf = Vec::new();
    let mut n = 0usize;
    // Lines before the first meaningful one (blank or comments) decide nothing.
    loop {
        if !read_line(path, &mut reader, &mut buf, n == 0)? {
            return Ok(());
        }
        let line = line_text(path, &buf, n + 1)?.trim();
        if line.is_empty() || line.starts_with('#') {
            n += 1;
            continue;
        }
        if line.contains(',') {
            // The header line goes back in front of the rest for the CSV reader.
            let body = csv::LfLines::new(reader, std::mem::take(&mut buf), n + 1);
            return csv::parse_csv(path, &source, body, n, out);
        }
        break;
    }
    loop {
        let line = line_text(path, &buf, n + 1)?.trim();
        if !line.is_empty() && !line.starts_with('#') {
            out.push(InputLine {
                id: line.to_string(),
                identity: LineIdentity::unknown(),
                invalid: invalid_reason(line),
                origin: Origin::at(&source, n + 1),
            });
        }
        n += 1;
        if !read_line(path, &mut reader, &mut buf, false)? {
            return Ok(());
        }
    }
}

/// Reads one raw line (terminator included) into `buf`; false at the end. The first
/// line of a source loses its UTF-8 byte order mark.
fn read_line<R: BufRead>(
    path: &Path,
    reader: &mut R,
    buf: &mut Vec<u8>,
    first: bool,
) -> Result<bool, InputError> {
    buf.clear();
    let read = reader
        .read_until(b'\n', buf)
        .map_err(|source| InputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if first && buf.starts_with(b"\xEF\xBB\xBF") {
        buf.drain(..3);
    }
    Ok(read > 0)
}

/// Raw line `number` as text, without its `\n` or `\r\n`.
fn line_text<'a>(path: &Path, buf: &'a [u8], number: usize) -> Result<&'a str, InputError> {
    let line = buf.strip_suffix(b"\n").unwrap_or(buf);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    std::str::from_utf8(line).map_err(|_| InputError::NotUtf8 {
        path: path.to_path_buf(),
        line: number,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn ids(lines: &[InputLine]) -> Vec<&str> {
        lines.iter().map(|l| l.id.as_str()).collect()
    }

    /// The lines of a `--lines` source with this text.
    pub(super) fn parse(path: &Path, text: &str) -> Result<Vec<InputLine>, InputError> {
        let mut out = Vec::new();
        parse_from(path, text.as_bytes(), &mut out)?;
        Ok(out)
    }

    #[test]
    fn plain_skips_blanks_and_comments_and_trims() {
        let got = parse(Path::new("f"), "# head\n\n  a  \nb\n# c\n\tc\n").unwrap();
        assert_eq!(ids(&got), ["a", "b", "c"]);
        assert_eq!(got[0].origin.to_string(), "f:3");
        assert!(got.iter().all(|l| l.invalid.is_none()));
    }

    #[test]
    fn bom_and_crlf_are_handled_in_plain_and_csv_with_file_line_numbers() {
        let got = parse(Path::new("f"), "\u{feff}a\r\n\r\nb\r\nc").unwrap();
        assert_eq!(ids(&got), ["a", "b", "c"]);
        assert_eq!(got[2].origin.to_string(), "f:4");
        let text = "\u{feff}\r\nid,name\r\nx,X\r\ny,Y\r\n";
        let got = parse(Path::new("g.csv"), text).unwrap();
        assert_eq!(ids(&got), ["x", "y"]);
        assert_eq!(got[0].identity.name.as_deref(), Some("X"));
        assert_eq!(got[0].origin.to_string(), "g.csv:3");
        assert_eq!(got[1].origin.to_string(), "g.csv:4");
    }

    #[test]
    fn a_file_that_is_not_utf8_is_an_error_naming_it_and_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ids.txt");
        std::fs::write(&f, b"a\nb\xff\n").unwrap();
        let err = read_into(&f, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("ids.txt:2: not UTF-8"), "{err}");
        // UTF-16 (with its byte order mark), as Windows PowerShell writes by default.
        std::fs::write(&f, b"\xff\xfea\0\n\0").unwrap();
        let err = read_into(&f, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("ids.txt:1: not UTF-8"), "{err}");
        assert!(err.contains("UTF-16"), "{err}");
    }

    #[test]
    fn a_nul_makes_its_id_invalid_and_nothing_else() {
        let got = parse(Path::new("f"), "a\nb\0c\nd\n").unwrap();
        assert_eq!(ids(&got), ["a", "b\0c", "d"]);
        assert!(got[1].invalid.is_some());
        assert!(got[0].invalid.is_none() && got[2].invalid.is_none());
    }

    #[test]
    fn invalid_ids_are_flagged_not_dropped() {
        let long = "x".repeat(MAX_ID_LEN + 1);
        for bad in [".", "..", "a b", "a\u{7}b", long.as_str()] {
            assert!(invalid_reason(bad).is_some(), "{bad:?} should be invalid");
        }
        let ok = "x".repeat(MAX_ID_LEN);
        for good in [
            "a/b",
            "é",
            "Y2lzY29zcGFyazovL3VzL1ZJUlRVQUxfTElORS8x",
            ok.as_str(),
        ] {
            assert!(invalid_reason(good).is_none(), "{good:?} should be valid");
        }
    }

    #[test]
    fn collect_dedupes_keeping_first_position() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ids.txt");
        std::fs::write(&f, "b\na\nb\n..\n").unwrap();
        let got = collect(&[f], &["c".into(), "a".into()]).unwrap();
        assert_eq!(ids(&got), ["b", "a", "..", "c"]);
        assert!(got[2].invalid.is_some());
        assert!(got[0].origin.to_string().ends_with("ids.txt:1"));
        assert_eq!(got[3].origin.to_string(), "--line");
    }

    #[test]
    fn no_ids_at_all_is_an_error_unless_the_listing_may_add_some() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("empty.txt");
        std::fs::write(&f, "# nothing\n\n").unwrap();
        let err = collect(std::slice::from_ref(&f), &[]).unwrap_err();
        assert!(matches!(err, InputError::NoIds));
        assert!(err.to_string().contains("--all"), "{err}");
        assert!(collect_any(&[f], &[]).unwrap().is_empty());
    }
}
