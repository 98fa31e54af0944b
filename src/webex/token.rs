//! The API token: a secret that can be sent, never shown.

use std::path::Path;

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
    /// The token is empty or contains characters an HTTP header cannot carry.
    #[error("the API token from {origin} is empty or contains spaces or control characters")]
    Malformed {
        /// `--token-file PATH` or `WEBEX_TOKEN`.
        origin: String,
    },
}

impl Token {
    /// Wraps a token, checking that it can be sent in a header.
    pub fn new(secret: &str, origin: &str) -> Result<Token, TokenError> {
        let secret = secret.trim();
        let secret = secret.strip_prefix("Bearer ").unwrap_or(secret).trim();
        if secret.is_empty() || secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
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

    /// The `Authorization` header value, marked sensitive so that reqwest and hyper
    /// never print it.
    pub(crate) fn bearer_header(&self) -> reqwest::header::HeaderValue {
        let mut value = reqwest::header::HeaderValue::try_from(format!("Bearer {}", self.0))
            .expect("Token::new only accepts header-safe characters");
        value.set_sensitive(true);
        value
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
