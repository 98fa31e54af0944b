//! `--lines` files that are CSV: a header row, the IDs from its ID column.
//!
//! Strict where the csv crate is lenient, because a lenient reading of a broken file
//! loses lines without a word: an unclosed quote would read the rest of the file as
//! one value, and a row with an unquoted comma would shift its values. So a quote that
//! is never closed, text after a closing quote, and a row with more or fewer fields
//! than the header are errors naming the line where the record starts.

use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::Arc;

use super::{
    invalid_reason, InputError, InputLine, Origin, IDENTITY_COLUMNS, ID_COLUMNS, NAME_COLUMNS,
};
use crate::model::LineIdentity;
use crate::report::unneutralise;

/// Drops the `\r` of a line ending in `\r\n`.
pub(super) fn lf_only(line: &mut Vec<u8>) {
    if line.ends_with(b"\r\n") {
        line.remove(line.len() - 2);
    }
}

/// Hands the CSV reader its input with `\n` line ends only, and watches its quotes on
/// the way, noting where each record starts: the csv crate's own line numbers are off
/// after `\r\n`, blank and comment lines, and they end up in messages.
pub(super) struct LfLines<R> {
    inner: R,
    /// The current line, already converted.
    line: Vec<u8>,
    /// How much of `line` has been handed out.
    pos: usize,
    quotes: Quotes,
}

impl<R> LfLines<R> {
    /// `first` (the header line, raw) then the rest of `inner`; `first_line` is the
    /// header's line number in the file.
    pub(super) fn new(inner: R, mut first: Vec<u8>, first_line: usize) -> LfLines<R> {
        lf_only(&mut first);
        LfLines {
            inner,
            line: first,
            pos: 0,
            quotes: Quotes::new(first_line),
        }
    }
}

impl<R> LfLines<R> {
    /// The file's line number where the next record the csv reader returns starts.
    fn next_record_line(&mut self) -> Option<usize> {
        self.quotes.starts.pop_front()
    }
}

impl<R: BufRead> Read for LfLines<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.quotes.problem.is_some() {
            return Err(std::io::Error::other("malformed CSV"));
        }
        if self.pos == self.line.len() {
            self.line.clear();
            self.pos = 0;
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                self.quotes.end();
                return match self.quotes.problem {
                    Some(_) => Err(std::io::Error::other("malformed CSV")),
                    None => Ok(0),
                };
            }
            lf_only(&mut self.line);
        }
        let n = out.len().min(self.line.len() - self.pos);
        let chunk = &self.line[self.pos..self.pos + n];
        if !self.quotes.feed(chunk) {
            // Stop the reader before it reads a broken record as a good one.
            return Err(std::io::Error::other("malformed CSV"));
        }
        out[..n].copy_from_slice(chunk);
        self.pos += n;
        Ok(n)
    }
}

/// Where the reader is, as the csv crate's parser would be (same configuration:
/// `"` quotes, `""` inside quotes, `#` comments, `,` delimiter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    RecordStart,
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: the closing one, or the first of `""`.
    QuoteInQuoted,
    /// Blanks after a closing quote, which trimming removes.
    AfterQuote,
    Comment,
}

/// Follows the quoting of a CSV text, to find what the csv crate accepts silently.
#[derive(Debug)]
struct Quotes {
    state: State,
    /// The file's line number of the byte being read.
    line: usize,
    /// Where the current record and the current quoted field started.
    record_line: usize,
    quote_line: usize,
    /// Where each record read so far starts (the reader reads ahead of the records it
    /// returns, so this holds those it has not returned yet).
    starts: VecDeque<usize>,
    problem: Option<(usize, String)>,
}

impl Quotes {
    fn new(first_line: usize) -> Quotes {
        Quotes {
            state: State::RecordStart,
            line: first_line,
            record_line: first_line,
            quote_line: first_line,
            starts: VecDeque::new(),
            problem: None,
        }
    }

    /// Follows `bytes`; false (and `problem` set) at the first malformed one.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        use State::*;
        for &b in bytes {
            let end = matches!(b, b'\n' | b'\r');
            self.state = match (self.state, b) {
                (RecordStart, _) if end => RecordStart,
                (RecordStart, b'#') => Comment,
                (Comment, b'\n') => RecordStart,
                (Comment, _) => Comment,
                (RecordStart | FieldStart, b'"') => {
                    self.start_record();
                    self.quote_line = self.line;
                    Quoted
                }
                (Quoted, b'"') => QuoteInQuoted,
                (Quoted, _) => Quoted,
                (QuoteInQuoted, b'"') => Quoted,
                (QuoteInQuoted | AfterQuote, b' ' | b'\t') => AfterQuote,
                (QuoteInQuoted | AfterQuote | RecordStart | FieldStart | Unquoted, b',') => {
                    self.start_record();
                    FieldStart
                }
                (QuoteInQuoted | AfterQuote | FieldStart | Unquoted, _) if end => RecordStart,
                (QuoteInQuoted | AfterQuote, other) => {
                    self.text_after_quote(other);
                    return false;
                }
                (RecordStart, _) => {
                    self.start_record();
                    Unquoted
                }
                (FieldStart | Unquoted, _) => Unquoted,
            };
            if b == b'\n' {
                self.line += 1;
            }
        }
        true
    }

    /// Notes a record's start, if the state says one starts here.
    fn start_record(&mut self) {
        if self.state == State::RecordStart {
            self.record_line = self.line;
            self.starts.push_back(self.line);
        }
    }

    /// The end of the text: a quoted field still open swallowed everything after it.
    fn end(&mut self) {
        // The csv crate reads a comment that ends the text without a line end as one
        // empty record.
        if self.state == State::Comment {
            self.starts.push_back(self.line);
        }
        if self.state == State::Quoted && self.problem.is_none() {
            self.problem = Some((
                self.record_line,
                format!(
                    "the quoted value opened on line {} is never closed, so the rest of the \
                     file would be read as one value; close it with `\"` (a quote inside a \
                     quoted value is written twice: `\"\"`)",
                    self.quote_line
                ),
            ));
        }
    }

    fn text_after_quote(&mut self, byte: u8) {
        let shown = if byte.is_ascii_graphic() || byte == b' ' {
            format!("`{}`", char::from(byte))
        } else {
            format!("byte 0x{byte:02x}")
        };
        let message = if self.quote_line == self.line {
            format!(
                "a quoted value is followed by {shown} before the next comma; a quote inside \
                 a quoted value is written twice (`\"\"`)"
            )
        } else {
            format!(
                "the quoted value opened on line {} ends on line {} and is followed by \
                 {shown}: a closing quote is probably missing on line {}",
                self.quote_line, self.line, self.quote_line
            )
        };
        self.problem = Some((self.record_line, message));
    }
}

/// Reads the CSV `body` (starting with its header, on line `header_line` + 1 of the
/// file) into `out`.
pub(super) fn parse_csv<R: BufRead>(
    path: &Path,
    source: &Arc<str>,
    body: LfLines<R>,
    header_line: usize,
    out: &mut Vec<InputLine>,
) -> Result<(), InputError> {
    // Flexible, because a field count that differs from the
    // header's is reported below with a clearer message than the crate's.
    let mut reader = ::csv::ReaderBuilder::new()
        .flexible(true)
        .trim(::csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(body);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(csv_err(path, header_line, reader.get_mut(), &e)),
    };
    reader.get_mut().next_record_line();
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
    // `name` first, then the rest, in `LineIdentity::FIELDS` order.
    let identity_cols: Vec<(&str, usize)> = std::iter::once(("name", find(&NAME_COLUMNS)))
        .chain(IDENTITY_COLUMNS.iter().map(|c| (*c, find(&[*c]))))
        .filter_map(|(field, col)| Some((field, col?)))
        .collect();
    let mut record = ::csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_err(path, header_line, reader.get_mut(), &e)),
        }
        let line = reader
            .get_mut()
            .next_record_line()
            .unwrap_or_else(|| record.position().map_or(0, |p| p.line()) as usize + header_line);
        if record.len() != headers.len() {
            // A line of blanks is a blank line, not a row.
            if record.len() == 1 && record[0].is_empty() {
                continue;
            }
            return Err(InputError::Csv {
                path: path.to_path_buf(),
                line: line as u64,
                message: format!(
                    "{} fields where the header has {} (a value holding a comma must be \
                     quoted: \"a,b\")",
                    record.len(),
                    headers.len()
                ),
            });
        }
        // A lines report fed back has its cells neutralised for spreadsheets; undo it.
        let id = unneutralise(record.get(id_col).unwrap_or("").trim());
        if id.is_empty() {
            continue;
        }
        out.push(InputLine {
            id: id.to_string(),
            identity: identity(&identity_cols, &record),
            invalid: invalid_reason(id),
            origin: Origin::at(source, line),
        });
    }
    Ok(())
}

/// The identity in a record's identity columns (`(field, column)` pairs): cells as
/// written before the reports neutralised them; empty cells are unknown.
fn identity(cols: &[(&str, usize)], record: &::csv::StringRecord) -> Arc<LineIdentity> {
    let mut identity = LineIdentity::default();
    for &(field, col) in cols {
        let value = record.get(col).map(unneutralise).filter(|s| !s.is_empty());
        if let (Some(slot), Some(value)) = (identity.field_mut(field), value) {
            *slot = Some(value.to_string());
        }
    }
    if identity.is_unknown() {
        LineIdentity::unknown()
    } else {
        Arc::new(identity)
    }
}

/// The error for a failed read: the quoting problem that stopped the reader, if that
/// is what happened, else the crate's error with the file's line number (the reader
/// starts at the header, so its line numbers are offset by `header_line`).
fn csv_err<R>(
    path: &Path,
    header_line: usize,
    body: &mut LfLines<R>,
    e: &::csv::Error,
) -> InputError {
    if let Some((line, message)) = body.quotes.problem.take() {
        return InputError::Csv {
            path: path.to_path_buf(),
            line: line as u64,
            message,
        };
    }
    let line = body.next_record_line().map_or_else(
        || e.position().map_or(0, |p| p.line()) + header_line as u64,
        |l| l as u64,
    );
    match e.kind() {
        ::csv::ErrorKind::Utf8 { .. } => InputError::NotUtf8 {
            path: path.to_path_buf(),
            line: line as usize,
        },
        ::csv::ErrorKind::Io(source) => InputError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        _ => InputError::Csv {
            path: path.to_path_buf(),
            line,
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
