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
mod tests {
    use super::super::tests::{ids, parse};
    use super::*;

    #[test]
    fn csv_picks_id_column_case_insensitively_and_name() {
        let text = "# exported\nrun_id,Line_ID,line_name,status\nr1,abc,Lobby,compliant\nr1,\"d,e\",\"Zoë\",x\n";
        let got = parse(Path::new("f.csv"), text).unwrap();
        assert_eq!(ids(&got), ["abc", "d,e"]);
        assert_eq!(got[0].identity.name.as_deref(), Some("Lobby"));
        assert_eq!(got[1].identity.name.as_deref(), Some("Zoë"));
        assert_eq!(got[0].origin.to_string(), "f.csv:3");
        assert_eq!(got[1].invalid, None);
    }

    #[test]
    fn identity_columns_of_the_inventory_and_the_reports_read_back() {
        let text = "id,name,location_id,location_name,phone_number,extension\n\
                    L1,'=Lobby,LOC1,HQ,'+19845550100,2002\nL2,,,,,\n";
        let got = parse(Path::new("lines.csv"), text).unwrap();
        assert_eq!(
            got[0].identity.values(),
            [
                Some("=Lobby"),
                Some("LOC1"),
                Some("HQ"),
                Some("+19845550100"),
                Some("2002")
            ]
        );
        assert!(got[1].identity.is_unknown());
        // A lines report: line_id first of the ID names, identity columns at the end.
        let text =
            "run_id,line_id,line_name,status,location_id,location_name,phone_number,extension\n\
                    r,L3,Dock,compliant,LOC2,Berlin,,7\n";
        let got = parse(Path::new("r.csv"), text).unwrap();
        assert_eq!(ids(&got), ["L3"]);
        assert_eq!(got[0].identity.label().as_deref(), Some("Dock (Berlin)"));
        assert_eq!(got[0].identity.phone_number, None);
        assert_eq!(got[0].identity.extension.as_deref(), Some("7"));
    }

    #[test]
    fn csv_without_id_column_is_an_error_naming_the_header() {
        let err = parse(Path::new("f.csv"), "name,status\nx,y\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("f.csv:1"), "{msg}");
        assert!(msg.contains("virtualLineId"), "{msg}");
        assert!(msg.contains("name,status"), "{msg}");
    }

    /// The error message for `text`, which must be refused.
    fn refused(text: &str) -> String {
        match parse(Path::new("in.csv"), text) {
            Err(e @ InputError::Csv { .. }) => e.to_string(),
            other => panic!("{text:?} should be refused as malformed CSV, got {other:?}"),
        }
    }

    #[test]
    fn an_unclosed_quote_is_an_error_at_the_line_where_its_record_starts() {
        let msg = refused("# ids\nid,name\na,A\nb,\"B\nc,C\nd,D\n");
        assert!(msg.starts_with("in.csv:4: "), "{msg}");
        assert!(msg.contains("opened on line 4 is never closed"), "{msg}");
        // In the ID column, with CRLF line ends.
        let msg = refused("id,name\r\na,A\r\n\"b,B\r\nc,C\r\n");
        assert!(msg.starts_with("in.csv:3: "), "{msg}");
    }

    #[test]
    fn a_quote_closed_by_the_next_quoted_value_is_an_error_too() {
        // Every name quoted: the missing quote on line 2 is "closed" on line 3.
        let msg = refused("id,name\na,\"A\nb,\"B\"\nc,\"C\"\n");
        assert!(msg.starts_with("in.csv:2: "), "{msg}");
        assert!(msg.contains("opened on line 2 ends on line 3"), "{msg}");
        let msg = refused("id,name\na,\"A\" x\n");
        assert!(msg.starts_with("in.csv:2: "), "{msg}");
        assert!(msg.contains("followed by `x`"), "{msg}");
    }

    #[test]
    fn quoted_values_that_are_well_formed_still_read() {
        let got = parse(
            Path::new("f.csv"),
            "id,name\n\"a\" ,\"Say \"\"hi\"\"\"\nb,\"two\nlines\"\n\"c\",\"x,y\"  \n",
        )
        .unwrap();
        assert_eq!(ids(&got), ["a", "b", "c"]);
        assert_eq!(got[0].identity.name.as_deref(), Some("Say \"hi\""));
        assert_eq!(got[1].identity.name.as_deref(), Some("two\nlines"));
        assert_eq!(got[2].origin.to_string(), "f.csv:5");
    }

    #[test]
    fn a_row_with_more_or_fewer_fields_than_the_header_is_an_error() {
        let msg = refused("id,name\na,A\nb,Lobby, north\n");
        assert!(msg.starts_with("in.csv:3: "), "{msg}");
        assert!(msg.contains("3 fields where the header has 2"), "{msg}");
        let msg = refused("id,name,site\na,A,x\n\nb,B\n");
        assert!(msg.starts_with("in.csv:4: "), "{msg}");
        assert!(msg.contains("2 fields where the header has 3"), "{msg}");
        // Blank and blank-looking lines are not rows.
        let got = parse(Path::new("f.csv"), "id,name\na,A\n   \n\n# c\nb,B\n").unwrap();
        assert_eq!(ids(&got), ["a", "b"]);
        assert_eq!(got[1].origin.to_string(), "f.csv:6");
        // A comment ending the file without a line end (read as an empty record).
        let got = parse(Path::new("f.csv"), "id,name\na,A\n#").unwrap();
        assert_eq!(ids(&got), ["a"]);
    }

    #[test]
    fn a_non_utf8_byte_is_an_error_naming_its_line() {
        let mut out = Vec::new();
        let err = super::super::parse_from(
            Path::new("in.csv"),
            &b"id,name\na,A\nb,\xff\n"[..],
            &mut out,
        )
        .unwrap_err();
        assert!(
            matches!(err, InputError::NotUtf8 { line: 3, .. }),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("in.csv:3: "), "{err}");
    }

    proptest::proptest! {
        /// The quote watcher sees the records the csv crate sees: one start per
        /// record, so that the line numbers it gives belong to the right records.
        #[test]
        fn the_watcher_counts_the_records_the_csv_crate_reads(
            text in "[a,\"\n\r# \t]{0,40}"
        ) {
            let mut quotes = Quotes::new(1);
            let accepted = quotes.feed(text.as_bytes()) && {
                quotes.end();
                quotes.problem.is_none()
            };
            let records = ::csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .comment(Some(b'#'))
                .from_reader(text.as_bytes())
                .byte_records()
                .count();
            if accepted {
                proptest::prop_assert_eq!(quotes.starts.len(), records);
            }
        }
    }

    #[test]
    fn a_nul_makes_its_id_invalid_and_nothing_else() {
        let got = parse(Path::new("f.csv"), "id,name\na\0x,A\nb,B\0\n").unwrap();
        assert_eq!(ids(&got), ["a\0x", "b"]);
        assert!(got[0].invalid.is_some());
        assert_eq!(got[1].invalid, None);
        assert_eq!(got[1].identity.name.as_deref(), Some("B\0"));
    }
}
