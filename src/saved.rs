//! Reading a saved `STEM.json` report back (`evaluate --from`, `--previous`), one line
//! at a time: a 100,000-line report is a few hundred megabytes, and only one line of it
//! is ever in memory.
//!
//! Two passes over the file. [`read_header`] parses the whole document but keeps only
//! `schema_version`, `tool` and `run` (the `lines` array is skipped, not built), so a
//! file that is not a report, of another schema version, or cut short is refused
//! before anything is written. `for_each_line` then hands each entry of `lines` to a
//! callback as it is parsed. Neither depends on the order of the top-level keys, so a
//! report that went through `jq -S` still reads.

use std::cell::RefCell;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::model::{LineError, LineIdentity, LineStatus, RuleStatus};
use crate::report::SCHEMA_VERSION;

/// Why a saved report cannot be used (exit 2: the user named the file).
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    /// The file could not be opened or read.
    #[error("cannot read report {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The JSON ends before the document does.
    #[error(
        "{}: the report is truncated (the JSON ends at line {line}, column {column}); \
         was it copied while being written?",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Where the text ends.
        line: usize,
        /// Where the text ends.
        column: usize,
    },
    /// Not JSON at all.
    #[error("{}: not a ptt-audit JSON report (not valid JSON at line {line}, column {column}: {message})", path.display())]
    NotJson {
        /// The file.
        path: PathBuf,
        /// Where the parser stopped.
        line: usize,
        /// Where the parser stopped.
        column: usize,
        /// The parser's explanation.
        message: String,
    },
    /// JSON, but not a report this tool wrote.
    #[error("{}: not a ptt-audit JSON report ({what})", path.display())]
    NotReport {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        what: String,
    },
    /// A report of a schema this version does not read.
    #[error(
        "{}: report schema_version {found} is not supported: this ptt-audit reads \
         schema_version {SCHEMA_VERSION}; run `ptt-audit audit` again to get a current report",
        path.display()
    )]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// The version the file declares.
        found: u64,
    },
}

/// The `run` object of a saved report, as far as re-use needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct SavedRun {
    /// The run's ID.
    pub id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its `--org-id`.
    #[serde(default)]
    pub org_id: Option<String>,
    /// The API it read from.
    #[serde(default)]
    pub base_url: String,
    /// False when it stopped early.
    #[serde(default)]
    pub complete: bool,
}

/// What [`read_header`] keeps of a report.
#[derive(Debug, Clone)]
pub struct SavedHeader {
    /// The file it was read from.
    pub path: PathBuf,
    /// Its run.
    pub run: SavedRun,
    /// How many entries its `lines` has.
    pub lines: usize,
}

/// One entry of a report's `lines`, as `evaluate` re-uses it.
#[derive(Debug, Deserialize)]
pub(crate) struct SavedLine {
    pub(crate) id: String,
    pub(crate) status: LineStatus,
    #[serde(default)]
    pub(crate) read_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(crate) settings: Option<Value>,
    #[serde(default)]
    pub(crate) error: Option<LineError>,
    #[serde(default)]
    name: Option<String>,
    /// The identity object (`CONTRACT.md` §7), when the report has one.
    #[serde(default)]
    line: Option<LineIdentity>,
}

/// `lines[].line`, as `--previous` uses it: only the name.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SavedIdentity {
    #[serde(default)]
    name: Option<String>,
}

impl SavedLine {
    /// The line's name: the identity's, else the top-level `name`.
    #[cfg(test)]
    pub(crate) fn name(&self) -> Option<String> {
        self.line
            .as_ref()
            .and_then(|l| l.name.clone())
            .or_else(|| self.name.clone())
    }

    /// The line's identity as the report saved it (`lines[].line`), its name falling
    /// back to the top-level `name` (a report without `line` objects); the shared
    /// unknown identity when there is neither.
    pub(crate) fn identity(&mut self) -> Arc<LineIdentity> {
        let mut identity = self.line.take().unwrap_or_default();
        if identity.name.is_none() {
            identity.name = self.name.take();
        }
        if identity.is_unknown() {
            LineIdentity::unknown()
        } else {
            Arc::new(identity)
        }
    }
}

/// One entry of a report's `lines`, as `--previous` compares with it.
#[derive(Debug, Deserialize)]
pub(crate) struct PreviousLine {
    pub(crate) id: String,
    pub(crate) status: Option<LineStatus>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    line: Option<SavedIdentity>,
    #[serde(default)]
    pub(crate) results: Vec<PreviousResult>,
}

impl PreviousLine {
    /// The line's name: the identity's, else the top-level `name`.
    pub(crate) fn name(&self) -> Option<String> {
        self.line
            .as_ref()
            .and_then(|l| l.name.clone())
            .or_else(|| self.name.clone())
    }
}

/// One result of a previous line.
#[derive(Debug, Deserialize)]
pub(crate) struct PreviousResult {
    pub(crate) rule_id: String,
    pub(crate) status: RuleStatus,
}

/// The top of a report, every field optional so that each absence gets its own message.
#[derive(Deserialize)]
struct Head {
    schema_version: Option<Value>,
    tool: Option<Tool>,
    run: Option<Value>,
    lines: Option<Count>,
}

/// The length of an array, counted without keeping its elements.
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        struct Counter;
        impl<'de> de::Visitor<'de> for Counter {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
        }
        d.deserialize_seq(Counter)
    }
}

#[derive(Deserialize)]
struct Tool {
    name: Option<String>,
}

fn open(path: &Path) -> Result<BufReader<File>, SavedError> {
    let file = File::open(path).map_err(|source| SavedError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(BufReader::with_capacity(256 * 1024, file))
}

/// The serde error of `path`, classified.
fn classify(path: &Path, e: serde_json::Error) -> SavedError {
    use serde_json::error::Category;
    let path = path.to_path_buf();
    match e.classify() {
        Category::Io => SavedError::Io {
            path,
            source: e.into(),
        },
        Category::Eof => SavedError::Truncated {
            path,
            line: e.line(),
            column: e.column(),
        },
        Category::Syntax => SavedError::NotJson {
            path,
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        },
        Category::Data => SavedError::NotReport {
            path,
            what: e.to_string(),
        },
    }
}

/// Reads and checks the top of the report at `path`, parsing (and so checking the
/// syntax of) the whole file without keeping its lines.
pub fn read_header(path: &Path) -> Result<SavedHeader, SavedError> {
    let head: Head = serde_json::from_reader(open(path)?).map_err(|e| classify(path, e))?;
    let not_report = |what: &str| SavedError::NotReport {
        path: path.to_path_buf(),
        what: what.to_string(),
    };
    let is_ours = head
        .tool
        .as_ref()
        .and_then(|t| t.name.as_deref())
        .is_some_and(|n| n == "ptt-audit");
    let version = match head.schema_version {
        None if !is_ours => return Err(not_report("no `schema_version` and no `tool.name`")),
        None => return Err(not_report("no `schema_version`")),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| not_report("`schema_version` is not a whole number"))?,
    };
    if !is_ours {
        return Err(not_report("`tool.name` is not \"ptt-audit\""));
    }
    if version != u64::from(SCHEMA_VERSION) {
        return Err(SavedError::SchemaVersion {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let run = head.run.ok_or_else(|| not_report("no `run`"))?;
    let run: SavedRun = serde_json::from_value(run)
        .map_err(|e| not_report(&format!("`run` is not a report's run: {e}")))?;
    let Some(Count(lines)) = head.lines else {
        return Err(not_report("no `lines`"));
    };
    Ok(SavedHeader {
        path: path.to_path_buf(),
        run,
        lines,
    })
}

/// Calls `on_line` with each entry of the report's `lines`, in order, parsing one at a
/// time. An error from `on_line` stops the reading and is returned as it is.
///
/// Call [`read_header`] first: this pass assumes the file is a report.
pub(crate) fn for_each_line<T, E>(
    path: &Path,
    on_line: impl FnMut(T) -> Result<(), E>,
) -> Result<(), E>
where
    T: DeserializeOwned,
    E: From<SavedError>,
{
    let state = State {
        on_line: RefCell::new(on_line),
        failed: RefCell::new(None),
        _line: PhantomData,
    };
    let mut de = serde_json::Deserializer::from_reader(open(path)?);
    let parsed = Document(&state)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Some(e) = state.failed.into_inner() {
        return Err(e);
    }
    parsed.map_err(|e| E::from(classify(path, e)))
}

/// The callback and the error it returned (serde only carries messages).
struct State<F, T, E> {
    on_line: RefCell<F>,
    failed: RefCell<Option<E>>,
    _line: PhantomData<fn(T)>,
}

/// The top-level object: every key but `lines` skipped.
struct Document<'s, F, T, E>(&'s State<F, T, E>);

impl<'de, F, T, E> DeserializeSeed<'de> for Document<'_, F, T, E>
where
    F: FnMut(T) -> Result<(), E>,
    T: DeserializeOwned,
{
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F, T, E> de::Visitor<'de> for Document<'_, F, T, E>
where
    F: FnMut(T) -> Result<(), E>,
    T: DeserializeOwned,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a ptt-audit report object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "lines" {
                map.next_value_seed(Lines(self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The `lines` array: each element handed over as it is parsed.
struct Lines<'s, F, T, E>(&'s State<F, T, E>);

impl<'de, F, T, E> DeserializeSeed<'de> for Lines<'_, F, T, E>
where
    F: FnMut(T) -> Result<(), E>,
    T: DeserializeOwned,
{
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F, T, E> de::Visitor<'de> for Lines<'_, F, T, E>
where
    F: FnMut(T) -> Result<(), E>,
    T: DeserializeOwned,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the report's `lines` array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let line = seq.next_element::<T>().map_err(|e| {
                de::Error::custom(format_args!("lines[{index}] is not a report line: {e}"))
            })?;
            let Some(line) = line else { return Ok(()) };
            if let Err(e) = (self.0.on_line.borrow_mut())(line) {
                *self.0.failed.borrow_mut() = Some(e);
                return Err(de::Error::custom("stopped by the caller"));
            }
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests;
