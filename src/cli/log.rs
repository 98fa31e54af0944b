//! What makes stderr safe to write: text-log fields with their control characters
//! escaped, and a writer that never fails.
//!
//! Log messages carry text from servers (error messages, tracking IDs): in a text log a
//! newline in such a text would forge a log line of its own, and an escape sequence
//! would drive the user's terminal. So every control character in a message or field
//! is written escaped (`\n`, `\u{1b}`), and one event is always one line. JSON logs
//! need none of this: JSON escapes control characters itself.
//!
//! And stderr may be a pipe whose reader is gone (`2> >(head -c1)`): a failed log write
//! must be lost quietly, never become a panic in whichever line task logged.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

/// Whether `c` must not reach a text log as it is: C0 and C1 controls and DEL, plus
/// the Unicode line separators and bidirectional overrides, which can make a terminal
/// or an editor show text that is not what was logged.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Writes `text` to `out` with every character [`needs_escape`] names escaped.
fn escape_into(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let mut rest = text;
    while let Some(at) = rest.find(needs_escape) {
        out.write_str(&rest[..at])?;
        let c = rest[at..].chars().next().unwrap_or_default();
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c => write!(out, "\\u{{{:x}}}", u32::from(c))?,
        }
        rest = &rest[at + c.len_utf8()..];
    }
    out.write_str(rest)
}

/// `text` with its control characters escaped, for a message written to stderr
/// without going through the log formatter.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.contains(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    // Writing to a String cannot fail.
    let _ = escape_into(&mut out, text);
    Cow::Owned(out)
}

/// A `fmt::Write` that escapes what passes through it.
struct Escaping<'a, W>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s)
    }
}

/// The text logs' field formatter: tracing-subscriber's default layout (`message`
/// first as it is, then `name=value`), with every value escaped, so that neither a
/// message nor a `%display` field can break the line. Field names come from our code
/// and keep their terminal styling.
#[derive(Debug, Default)]
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = EscapedVisitor {
            writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapedVisitor<'w> {
    writer: Writer<'w>,
    empty: bool,
    result: fmt::Result,
}

impl EscapedVisitor<'_> {
    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let name = field.name();
        // Metadata of events from the `log` crate, already shown by the formatter.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        self.result = self.write_field(name.strip_prefix("r#").unwrap_or(name), value);
    }

    fn write_field(&mut self, name: &str, value: fmt::Arguments<'_>) -> fmt::Result {
        if !std::mem::take(&mut self.empty) {
            self.writer.write_char(' ')?;
        }
        if name != "message" {
            if self.writer.has_ansi_escapes() {
                // Italic name, dimmed `=`, as the default formatter draws them.
                write!(self.writer, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m")?;
            } else {
                write!(self.writer, "{name}=")?;
            }
        }
        Escaping(&mut self.writer).write_fmt(value)
    }
}

impl Visit for EscapedVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, format_args!("{value}"));
        } else {
            self.field(field, format_args!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, format_args!("{}", ErrorChain(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}

/// An error and its sources, `: `-separated.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

/// A writer whose failures are swallowed: for stderr, where a closed pipe must not
/// stop the run, and where there is nobody left to tell.
#[derive(Debug)]
pub struct Lossy<W>(pub W);

impl<W: io::Write> io::Write for Lossy<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.0.write(buf).unwrap_or(buf.len()))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let _ = self.0.write_all(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        let forged =
            "not found\nERROR forged line\r\x1b[31mred\x1b[0m\ttab\u{0}\u{7f}\u{9b}é\u{202e}";
        let got = escape_controls(forged);
        assert_eq!(
            got,
            "not found\\nERROR forged line\\r\\u{1b}[31mred\\u{1b}[0m\\ttab\\u{0}\\u{7f}\\u{9b}é\\u{202e}"
        );
        assert!(!got.chars().any(needs_escape));
        assert!(matches!(escape_controls("plain é / \\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_text_log_event_is_one_line_whatever_its_fields_hold() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        for colour in [false, true] {
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(colour)
                .with_writer(move || writer.clone())
                .fmt_fields(EscapedFields)
                .finish();
            let cause = io::Error::other("cause\nERROR forged cause");
            tracing::subscriber::with_default(subscriber, || {
                let id = "L1\nERROR forged id";
                tracing::warn!(
                    line = %id,
                    tracking_id = "T\r\nERROR forged tracking",
                    error = &cause as &(dyn std::error::Error + 'static),
                    "line not read: gone\nERROR forged line \x1b[31mred"
                );
            });
            let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("UTF-8");
            assert_eq!(text.matches('\n').count(), 1, "{text}");
            assert!(text.ends_with('\n'), "{text}");
            assert!(
                text.contains("line not read: gone\\nERROR forged line \\u{1b}[31mred"),
                "{text}"
            );
            assert!(text.contains("L1\\nERROR forged id"), "{text}");
            assert!(text.contains("cause\\nERROR forged cause"), "{text}");
            assert!(!text.contains('\r'), "{text}");
            assert!(!text.contains("\x1b[31m"), "{text}");
            // Colours stay for a terminal: ours, never the server's.
            assert_eq!(text.contains("\x1b[3mline\x1b[0m"), colour, "{text}");
        }
    }

    #[test]
    fn lossy_writer_swallows_errors() {
        struct Broken;
        impl io::Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
        }
        let mut w = Lossy(Broken);
        assert_eq!(io::Write::write(&mut w, b"abc").ok(), Some(3));
        assert!(io::Write::write_all(&mut w, b"abc").is_ok());
        assert!(io::Write::flush(&mut w).is_ok());
    }
}
