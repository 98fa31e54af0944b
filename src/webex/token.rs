//! The API token: a secret that can be sent, never shown.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// A Webex bearer token. Its `Debug` is redacted and it has no `Display`, so it cannot
/// leak into logs, errors or panics by accident; only the library's own Webex client
/// reads it, as a header marked sensitive.
#[derive(Clone)]
pub struct Token(String);

/// Why no usable token could be found. Never contains the token itself.
#[derive(Debug, Error)]
pub enum TokenError {
    /// Neither `--token-file` nor `WEBEX_TOKEN` was given.
    #[error("no API token: pass --token-file FILE or set WEBEX_TOKEN")]
    Missing,
    /// The token file could not be read.
    #[error("cannot read token file {path}: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The token is empty or holds characters that are not printable ASCII.
    #[error(
        "the API token from {origin} is empty or contains spaces, control characters or \
         characters that are not ASCII"
    )]
    Malformed {
        /// `--token-file PATH` or `WEBEX_TOKEN`.
        origin: String,
    },
}

impl Token {
    /// Wraps a token, checking that it can be sent in a header. A UTF-8 byte-order
    /// mark (Windows editors write one) is dropped, not sent as part of the token.
    pub fn new(secret: &str, origin: &str) -> Result<Token, TokenError> {
        let secret = secret.strip_prefix('\u{feff}').unwrap_or(secret).trim();
        let secret = secret.strip_prefix("Bearer ").unwrap_or(secret).trim();
        // Webex tokens are printable ASCII; anything else is a copy-paste accident.
        if secret.is_empty() || !secret.chars().all(|c| c.is_ascii_graphic()) {
            return Err(TokenError::Malformed {
                origin: origin.to_string(),
            });
        }
        Ok(Token(secret.to_string()))
    }

    /// The token from `--token-file` if given, else from the `WEBEX_TOKEN` value.
    pub fn resolve(file: Option<&Path>, env_value: Option<String>) -> Result<Token, TokenError> {
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| TokenError::Unreadable {
                path: path.display().to_string(),
                source,
            })?;
            return Token::new(&text, &format!("--token-file {}", path.display()));
        }
        match env_value {
            Some(v) => Token::new(&v, "WEBEX_TOKEN"),
            None => Err(TokenError::Missing),
        }
    }

    /// `text` with every occurrence of the token replaced by [`REDACTED`]: for any
    /// text copied from an answer (a server may echo the `Authorization` header back).
    pub(crate) fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if text.contains(self.0.as_str()) {
            Cow::Owned(text.replace(self.0.as_str(), REDACTED))
        } else {
            Cow::Borrowed(text)
        }
    }

    /// Redacts `text` in place.
    pub(crate) fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.redact(text) {
            *text = clean;
        }
    }

    /// Whether the JSON text `body` may hold the token once decoded: its bytes hold
    /// the token itself, or a backslash (an escape could spell the token in a way the
    /// bytes do not show), or they are not UTF-8. When not, no string decoded from
    /// `body`, key or value, can contain the token, and [`Token::redact_json`] on what
    /// was decoded from it would find nothing: one scan of the bytes instead of a
    /// search in every string.
    pub(crate) fn may_be_in_json(&self, body: &[u8]) -> bool {
        match std::str::from_utf8(body) {
            Ok(text) => text.contains('\\') || text.contains(self.0.as_str()),
            Err(_) => true,
        }
    }

    /// Redacts every string of a JSON value, object keys included, in place.
    pub(crate) fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => self.redact_in_place(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                if map.keys().any(|k| k.contains(self.0.as_str())) {
                    // Rebuilt to rename keys; the order is kept.
                    *map = std::mem::take(map)
                        .into_iter()
                        .map(|(k, v)| (self.redact(&k).into_owned(), v))
                        .collect();
                }
                map.values_mut().for_each(|v| self.redact_json(v));
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// The `Authorization` header value, marked sensitive so that reqwest and hyper
    /// never print it.
    pub(crate) fn bearer_header(&self) -> reqwest::header::HeaderValue {
        let mut value = reqwest::header::HeaderValue::try_from(format!("Bearer {}", self.0))
            .expect("Token::new only accepts header-safe characters");
        value.set_sensitive(true);
        value
    }
}

/// What replaces the token in any text copied from an answer.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// A token file that users other than its owner may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LooseTokenFile {
    /// The file.
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
}

impl std::fmt::Display for LooseTokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the token file {} can be read by group or others (mode {:04o}): \
             run `chmod 600 {}`",
            self.path.display(),
            self.mode & 0o7777,
            self.path.display()
        )
    }
}

/// Whether a token file may be read by group or others (unix; elsewhere never): the
/// token in it is then everybody's on that machine. `None` too when the file cannot
/// be inspected (reading it reports that).
pub fn loose_token_file(path: &Path) -> Option<LooseTokenFile> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        (mode & 0o044 != 0).then(|| LooseTokenFile {
            path: path.to_path_buf(),
            mode,
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_that_may_spell_the_token_needs_the_walk() {
        let t = Token::new("s3cr3t-value", "test").unwrap();
        assert!(!t.may_be_in_json(br#"{"a":"b","members":[{"x":1}]}"#));
        assert!(t.may_be_in_json(br#"{"a":"Bearer s3cr3t-value"}"#));
        assert!(t.may_be_in_json(br#"{"s3cr3t-value":1}"#));
        // An escape can spell the token without its bytes: the walk decides.
        assert!(t.may_be_in_json(br#"{"a":"\u0073\u0033cr3t-value"}"#));
        assert!(t.may_be_in_json(b"{\"a\":\"\xff\"}"));
        let mut decoded: serde_json::Value =
            serde_json::from_slice(br#"{"a":"\u0073\u0033cr3t-value"}"#).unwrap();
        t.redact_json(&mut decoded);
        assert_eq!(decoded["a"], REDACTED);
    }

    #[test]
    fn debug_is_redacted() {
        let t = Token::new("s3cr3t-value", "test").unwrap();
        let shown = format!("{t:?} {:?}", Some(&t));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(t.bearer_header().is_sensitive());
    }

    #[test]
    fn file_token_is_trimmed_and_bearer_prefix_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "Bearer abc123\n").unwrap();
        let t = Token::resolve(Some(&f), Some("other".into())).unwrap();
        assert_eq!(t.bearer_header().to_str().unwrap(), "Bearer abc123");
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "\u{feff}abc123\r\n").unwrap();
        let t = Token::resolve(Some(&f), None).unwrap();
        assert_eq!(t.bearer_header().to_str().unwrap(), "Bearer abc123");
        // Anywhere else it is not a token character.
        assert!(Token::new("abc\u{feff}123", "test").is_err());
        assert!(Token::new("abcé", "test").is_err());
    }

    #[test]
    fn the_token_is_redacted_in_copied_text_and_json() {
        let t = Token::new("s3cr3t", "test").unwrap();
        assert_eq!(t.redact("a s3cr3t b s3cr3t"), "a [REDACTED] b [REDACTED]");
        assert!(matches!(t.redact("clean"), Cow::Borrowed("clean")));
        let mut v = serde_json::json!({
            "a": "Bearer s3cr3t",
            "s3cr3t": [1, {"b": "xs3cr3tx"}],
            "z": true
        });
        t.redact_json(&mut v);
        assert_eq!(
            v.to_string(),
            r#"{"a":"Bearer [REDACTED]","[REDACTED]":[1,{"b":"x[REDACTED]x"}],"z":true}"#
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_token_file_others_can_read_is_named_without_the_token() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "s3cr3t").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(loose_token_file(&f), None);
        for mode in [0o640, 0o604, 0o644] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            let warning = loose_token_file(&f).expect("loose").to_string();
            assert!(warning.contains(&format!("{mode:04o}")), "{warning}");
            assert!(
                warning.contains(&format!("chmod 600 {}", f.display())),
                "{warning}"
            );
            assert!(!warning.contains("s3cr3t"), "{warning}");
        }
    }

    #[test]
    fn malformed_and_missing_tokens_are_errors_without_the_secret() {
        let err = Token::new("abc def", "WEBEX_TOKEN")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("abc"), "{err}");
        assert!(matches!(
            Token::resolve(None, None),
            Err(TokenError::Missing)
        ));
    }
}
