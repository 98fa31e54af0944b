//! Reading the virtual-line IDs to audit: `--lines FILE|-` (plain or CSV) and `--line ID`.
//!
//! Order is kept, duplicates are dropped (first position wins), and malformed IDs are
//! kept as `invalid` entries so that they appear in the reports without ever being
//! requested.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::report::unneutralise;

/// Longest ID the contract accepts.
pub const MAX_ID_LEN: usize = 512;

/// CSV header names (case-insensitive) that hold the line ID, in the contract's order.
pub const ID_COLUMNS: [&str; 4] = ["id", "virtualLineId", "virtual_line_id", "line_id"];

/// CSV header names (case-insensitive) that hold a display name for the line.
pub const NAME_COLUMNS: [&str; 4] = ["line_name", "name", "displayName", "display_name"];

/// One ID to audit, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLine {
    /// The ID, trimmed.
    pub id: String,
    /// A display name, when a CSV input carried one.
    pub name: Option<String>,
    /// Why the ID is invalid; `None` for a valid ID.
    pub invalid: Option<String>,
    /// Where it came from (`file:line` or `--line`), for messages.
    pub origin: String,
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
    /// A CSV record could not be parsed.
    #[error("{path}:{line}: malformed CSV: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// Line of the record.
        line: u64,
        /// The parser's explanation.
        message: String,
    },
    /// Nothing to audit.
    #[error("no virtual-line IDs given: pass --lines FILE (or -) and/or --line ID")]
    NoIds,
}

/// Why an ID cannot be requested, or `None` when it is fine.
pub fn invalid_reason(id: &str) -> Option<String> {
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
pub fn collect(files: &[PathBuf], ids: &[String]) -> Result<Vec<InputLine>, InputError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |line: InputLine, out: &mut Vec<InputLine>| {
        if seen.insert(line.id.clone()) {
            out.push(line);
        }
    };
    for file in files {
        for line in read_file(file)? {
            push(line, &mut out);
        }
    }
    for id in ids {
        let id = id.trim().to_string();
        push(
            InputLine {
                invalid: invalid_reason(&id),
                id,
                name: None,
                origin: "--line".into(),
            },
            &mut out,
        );
    }
    if out.is_empty() {
        return Err(InputError::NoIds);
    }
    Ok(out)
}

/// Reads one `--lines` source (`-` is stdin). Duplicates are kept here.
pub fn read_file(path: &Path) -> Result<Vec<InputLine>, InputError> {
    let io_err = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .read_to_string(&mut text)
            .map_err(io_err)?;
    } else {
        let file = std::fs::File::open(path).map_err(io_err)?;
        BufReader::new(file)
            .read_to_string(&mut text)
            .map_err(io_err)?;
    }
    parse(path, &text)
}

/// Parses the text of a `--lines` source: plain (one ID a line) unless the first
/// meaningful line contains a comma, in which case it is CSV with a header row.
pub fn parse(path: &Path, text: &str) -> Result<Vec<InputLine>, InputError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n, l.trim()))
        .find(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    match first {
        None => Ok(Vec::new()),
        Some((n, l)) if l.contains(',') => parse_csv(path, text, n),
        Some(_) => Ok(parse_plain(path, text)),
    }
}

fn parse_plain(path: &Path, text: &str) -> Vec<InputLine> {
    text.as_bytes()
        .lines()
        .enumerate()
        .filter_map(|(n, line)| {
            let line = line.ok()?;
            let id = line.trim();
            if id.is_empty() || id.starts_with('#') {
                return None;
            }
            Some(InputLine {
                id: id.to_string(),
                name: None,
                invalid: invalid_reason(id),
                origin: format!("{}:{}", path.display(), n + 1),
            })
        })
        .collect()
}

fn parse_csv(path: &Path, text: &str, header_line: usize) -> Result<Vec<InputLine>, InputError> {
    // Everything before the header is blank or comments: skip it so that the csv
    // reader's line numbers can be offset back to the file's.
    let body: String = text
        .lines()
        .skip(header_line)
        .collect::<Vec<_>>()
        .join("\n");
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(body.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| csv_err(path, header_line, &e))?;
    let find = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
    };
    let Some(id_col) = find(&ID_COLUMNS) else {
        return Err(InputError::NoIdColumn {
            path: path.to_path_buf(),
            line: header_line + 1,
            expected: ID_COLUMNS.join(", "),
            found: headers.iter().collect::<Vec<_>>().join(","),
        });
    };
    let name_col = find(&NAME_COLUMNS);
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_err(path, header_line, &e))?;
        // A lines report fed back has its cells neutralised for spreadsheets; undo it.
        let id = unneutralise(record.get(id_col).unwrap_or("").trim());
        if id.is_empty() {
            continue;
        }
        let line = record.position().map_or(0, |p| p.line()) as usize + header_line;
        out.push(InputLine {
            id: id.to_string(),
            name: name_col
                .and_then(|c| record.get(c))
                .map(unneutralise)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            invalid: invalid_reason(id),
            origin: format!("{}:{}", path.display(), line),
        });
    }
    Ok(out)
}

fn csv_err(path: &Path, header_line: usize, e: &csv::Error) -> InputError {
    InputError::Csv {
        path: path.to_path_buf(),
        line: e.position().map_or(0, |p| p.line()) + header_line as u64,
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(lines: &[InputLine]) -> Vec<&str> {
        lines.iter().map(|l| l.id.as_str()).collect()
    }

    #[test]
    fn plain_skips_blanks_and_comments_and_trims() {
        let got = parse(Path::new("f"), "# head\n\n  a  \nb\n# c\n\tc\n").unwrap();
        assert_eq!(ids(&got), ["a", "b", "c"]);
        assert_eq!(got[0].origin, "f:3");
        assert!(got.iter().all(|l| l.invalid.is_none()));
    }

    #[test]
    fn csv_picks_id_column_case_insensitively_and_name() {
        let text = "# exported\nrun_id,Line_ID,line_name,status\nr1,abc,Lobby,compliant\nr1,\"d,e\",\"Zoë\",x\n";
        let got = parse(Path::new("f.csv"), text).unwrap();
        assert_eq!(ids(&got), ["abc", "d,e"]);
        assert_eq!(got[0].name.as_deref(), Some("Lobby"));
        assert_eq!(got[1].name.as_deref(), Some("Zoë"));
        assert_eq!(got[0].origin, "f.csv:3");
        assert_eq!(got[1].invalid, None);
    }

    #[test]
    fn csv_without_id_column_is_an_error_naming_the_header() {
        let err = parse(Path::new("f.csv"), "name,status\nx,y\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("f.csv:1"), "{msg}");
        assert!(msg.contains("virtualLineId"), "{msg}");
        assert!(msg.contains("name,status"), "{msg}");
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
    }

    #[test]
    fn no_ids_at_all_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("empty.txt");
        std::fs::write(&f, "# nothing\n\n").unwrap();
        assert!(matches!(collect(&[f], &[]), Err(InputError::NoIds)));
    }
}
