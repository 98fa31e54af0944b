//! Reading a config file (`--config`): TOML whose keys are option names, each key and
//! value with its position, so that every complaint names the file, line and key.
//!
//! What a key means is the binary's business (its command-line options); this module
//! only reads and locates, with the same span-keeping parser as the policy files.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::policy::raw::{self, RawValue};

/// Largest config file read.
const MAX_FILE: u64 = 1024 * 1024;

/// A config file's `key = value` lines, in the order written.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// The file as named.
    pub path: PathBuf,
    /// Its entries.
    pub entries: Vec<ConfigEntry>,
}

impl ConfigFile {
    /// The folder relative paths in the file are relative to.
    pub fn folder(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }
}

/// One `key = value`.
#[derive(Debug, Clone)]
pub struct ConfigEntry {
    /// The key as written.
    pub key: String,
    /// Where the key is: 1-based line and column.
    pub key_at: (usize, usize),
    /// Where the value starts: 1-based line and column.
    pub value_at: (usize, usize),
    /// The value.
    pub value: ConfigValue,
}

/// A config value, as far as options care.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// A string.
    String(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// `true` or `false`.
    Boolean(bool),
    /// An array.
    Array(Vec<ConfigValue>),
    /// Anything no option takes (a table, a date, a huge integer): its type's name.
    Other(&'static str),
}

impl ConfigValue {
    /// The type's name for "found …" messages: "a string", "an array", ….
    pub fn type_name(&self) -> &'static str {
        match self {
            ConfigValue::String(_) => "a string",
            ConfigValue::Integer(_) => "an integer",
            ConfigValue::Float(_) => "a float",
            ConfigValue::Boolean(_) => "a boolean",
            ConfigValue::Array(_) => "an array",
            ConfigValue::Other(name) => name,
        }
    }

    fn from_raw(value: &RawValue) -> ConfigValue {
        match value {
            RawValue::String(s) => ConfigValue::String(s.clone()),
            RawValue::Integer(i) => ConfigValue::Integer(*i),
            RawValue::Float(f) => ConfigValue::Float(*f),
            RawValue::Boolean(b) => ConfigValue::Boolean(*b),
            RawValue::Array(items) => {
                ConfigValue::Array(items.iter().map(|i| Self::from_raw(&i.value)).collect())
            }
            other => ConfigValue::Other(other.type_name()),
        }
    }
}

/// Why a config file cannot be read.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file cannot be opened or read.
    #[error("cannot read config file {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{}:{line}:{column}: config file is not valid TOML: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's explanation.
        message: String,
    },
}

/// Reads `path` into its entries.
pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
    use std::io::Read;
    let unreadable = |source| ConfigError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE).read_to_string(&mut text))
        .map_err(unreadable)?;
    // A byte-order mark (Notepad writes one) is not part of the TOML.
    parse(path, text.strip_prefix('\u{feff}').unwrap_or(&text))
}

/// Parses `text` as the config file `path`.
pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    let table = raw::parse(text).map_err(|errors| {
        let first = errors.into_iter().next();
        let pos = first.as_ref().and_then(|e| e.pos);
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line: pos.map_or(1, |p| p.line),
            column: pos.map_or(1, |p| p.column),
            message: first.map_or_else(String::new, |e| e.message),
        }
    })?;
    let entries = table
        .entries
        .iter()
        .map(|e| ConfigEntry {
            key: e.key.clone(),
            key_at: (e.key_pos.line, e.key_pos.column),
            value_at: (e.value_pos.line, e.value_pos.column),
            value: ConfigValue::from_raw(&e.value),
        })
        .collect();
    Ok(ConfigFile {
        path: path.to_path_buf(),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_their_positions_and_types() {
        let text = "out = \"reports\"\nkeep = 30\n\nline = [\"a\", 'b']\nrate = 0.5\nall = true\nwhen = 2026-01-01\n[table]\nx = 1\n";
        let file = parse(Path::new("/etc/ptt/config.toml"), text).unwrap();
        let keys: Vec<&str> = file.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["out", "keep", "line", "rate", "all", "when", "table"]
        );
        assert_eq!(file.entries[1].key_at, (2, 1));
        assert_eq!(file.entries[1].value_at, (2, 8));
        assert_eq!(file.entries[1].value, ConfigValue::Integer(30));
        assert_eq!(
            file.entries[2].value,
            ConfigValue::Array(vec![
                ConfigValue::String("a".into()),
                ConfigValue::String("b".into())
            ])
        );
        assert_eq!(file.entries[5].value.type_name(), "a date/time");
        assert_eq!(file.entries[6].value.type_name(), "a table");
        assert_eq!(file.folder(), Path::new("/etc/ptt"));
        let err = parse(Path::new("c.toml"), "keep = \n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:1:"), "{err}");
    }
}
