//! Step one of loading: a TOML file parsed into owned values that remember where in the
//! file they were written, so that every later complaint can name a line and column.
//!
//! This layer knows TOML, not policies: it accepts any well-formed document. Validation
//! against the policy schema happens in [`super::schema`].

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::value::Datetime;
use toml::Spanned;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// Maps byte offsets of one text to [`Pos`].
#[derive(Debug)]
pub(crate) struct LineIndex<'t> {
    text: &'t str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// The position of byte `offset` (clamped to the text).
    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.starts[line];
        // An offset inside a multi-byte character (never produced by the parser) counts
        // as that character.
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Pos {
            line: line + 1,
            column,
        }
    }
}

/// A TOML value with positions.
#[derive(Debug, Clone)]
pub(crate) enum RawValue {
    String(String),
    Integer(i64),
    /// An integer that does not fit in `i64`, kept as written.
    BigInteger(String),
    Float(f64),
    Boolean(bool),
    Datetime(Datetime),
    Array(Vec<RawItem>),
    Table(RawTable),
}

impl RawValue {
    /// The TOML type name, for "expected X, found Y" messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            RawValue::String(_) => "a string",
            RawValue::Integer(_) | RawValue::BigInteger(_) => "an integer",
            RawValue::Float(_) => "a float",
            RawValue::Boolean(_) => "a boolean",
            RawValue::Datetime(_) => "a date/time",
            RawValue::Array(_) => "an array",
            RawValue::Table(_) => "a table",
        }
    }
}

/// An array element: a value and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct RawItem {
    pub(crate) value: RawValue,
    pub(crate) pos: Pos,
}

/// One `key = value` of a table.
#[derive(Debug, Clone)]
pub(crate) struct RawEntry {
    pub(crate) key: String,
    pub(crate) key_pos: Pos,
    pub(crate) value: RawValue,
    /// Where the value starts; for a `[table]` or `[[array]]` element, its header.
    pub(crate) value_pos: Pos,
}

/// A TOML table.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawTable {
    /// In the order written.
    pub(crate) entries: Vec<RawEntry>,
}

impl RawTable {
    /// The entry for `key`, if any (TOML forbids duplicates, so there is at most one).
    pub(crate) fn get(&self, key: &str) -> Option<&RawEntry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// A TOML syntax error with its position when the parser gave one.
#[derive(Debug, Clone)]
pub(crate) struct SyntaxError {
    pub(crate) pos: Option<Pos>,
    pub(crate) message: String,
}

/// Parses `text` into a positioned table, or every syntax error the parser found.
pub(crate) fn parse(text: &str) -> Result<RawTable, Vec<SyntaxError>> {
    let index = LineIndex::new(text);
    let (table, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|e| {
                let mut message = e.message().trim().to_string();
                // Name the key: in a policy file it is most often a var set twice.
                if let Some(key) = e.span().and_then(|s| text.get(s)) {
                    if message == "duplicate key" && !key.contains('\n') {
                        message = format!(
                            "duplicate key `{key}` (a key, a var included, is set once per \
                             table in a file; a later file may set a var again)"
                        );
                    }
                }
                SyntaxError {
                    pos: e.span().map(|s| index.pos(s.start)),
                    message,
                }
            })
            .collect());
    }
    Ok(convert_table(table.get_ref(), &index))
}

fn convert_table(table: &DeTable<'_>, index: &LineIndex<'_>) -> RawTable {
    RawTable {
        entries: table
            .iter()
            .map(|(k, v)| RawEntry {
                key: k.get_ref().to_string(),
                key_pos: index.pos(k.span().start),
                value: convert_value(v, index),
                value_pos: index.pos(value_start(v)),
            })
            .collect(),
    }
}

fn value_start(v: &Spanned<DeValue<'_>>) -> usize {
    let Range { start, .. } = v.span();
    start
}

fn convert_value(v: &Spanned<DeValue<'_>>, index: &LineIndex<'_>) -> RawValue {
    match v.get_ref() {
        DeValue::String(s) => RawValue::String(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => RawValue::Integer(n),
            Err(_) => RawValue::BigInteger(i.to_string()),
        },
        // The parser has already rejected malformed floats; `nan` stays `nan`.
        DeValue::Float(f) => RawValue::Float(f.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => RawValue::Boolean(*b),
        DeValue::Datetime(d) => RawValue::Datetime(*d),
        DeValue::Array(a) => RawValue::Array(
            a.iter()
                .map(|item| RawItem {
                    value: convert_value(item, index),
                    pos: index.pos(value_start(item)),
                })
                .collect(),
        ),
        DeValue::Table(t) => RawValue::Table(convert_table(t, index)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        let index = LineIndex::new(text);
        assert_eq!(index.pos(0), Pos { line: 1, column: 1 });
        assert_eq!(index.pos(6), Pos { line: 2, column: 1 });
        // `=` after the two-byte `é` is the 4th character of line 2.
        assert_eq!(&text[10..11], "=");
        assert_eq!(index.pos(10), Pos { line: 2, column: 4 });
    }

    #[test]
    fn array_of_tables_elements_point_at_their_headers() {
        let text = "[vars]\nx = 0x10\n\n[[rule]]\nid = 'A'\n\n[[rule]]\nid = 'B'\n";
        let table = parse(text).expect("valid TOML");
        let vars = table.get("vars").expect("vars");
        let RawValue::Table(vars) = &vars.value else {
            panic!("vars is a table")
        };
        assert!(matches!(
            vars.get("x").map(|e| &e.value),
            Some(RawValue::Integer(16))
        ));
        let RawValue::Array(rules) = &table.get("rule").expect("rule").value else {
            panic!("rule is an array")
        };
        let lines: Vec<usize> = rules.iter().map(|r| r.pos.line).collect();
        assert_eq!(lines, [4, 7]);
        let RawValue::Table(second) = &rules[1].value else {
            panic!("a table")
        };
        let id = second.get("id").expect("id");
        assert_eq!(id.key_pos, Pos { line: 8, column: 1 });
        assert_eq!(id.value_pos, Pos { line: 8, column: 6 });
    }

    #[test]
    fn syntax_errors_carry_positions() {
        let errors = parse("a = 1\nb = \n").expect_err("invalid");
        assert_eq!(errors[0].pos.map(|p| p.line), Some(2));
    }
}
