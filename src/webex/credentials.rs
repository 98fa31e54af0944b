//! `--credentials FILE`: an integration's or service app's client ID, client secret and
//! refresh token, and the access token ptt-audit last got with them.
//!
//! The file is the only copy of a refresh token that the server may rotate, so it is
//! handled like one: refused when group or others may read it, rewritten atomically
//! (a temporary file beside it, fsync, rename, mode 0600) before a new token is used,
//! and refreshed by one process at a time (an OS lock on a hidden `.NAME.lock` beside
//! it), each reading the file again once it holds the lock, since another run may have
//! refreshed (and rotated) meanwhile.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use thiserror::Error;

use crate::policy::raw::{self, RawValue};

/// Longest credentials file read: a handful of short values.
const MAX_FILE: u64 = 64 * 1024;

/// How long a run waits for another process that is refreshing the same file.
const LOCK_WAIT: Duration = Duration::from_secs(120);

/// The keys a credentials file may hold: the three a person writes, then the three
/// ptt-audit writes.
const KEYS: [&str; 6] = [
    "client_id",
    "client_secret",
    "refresh_token",
    "access_token",
    "access_token_expires_at",
    "refresh_token_expires_at",
];

/// A secret string (client secret, refresh token, access token): shown by no `Debug`,
/// with no `Display`, read only where it is sent or saved.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    /// The value, for the request or the file that must carry it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Wraps `value` when it could be a credential (not empty, no whitespace or control
    /// characters); `None` otherwise.
    pub(crate) fn new(value: &str) -> Option<Secret> {
        let ok = !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        ok.then(|| Secret(value.to_string()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A credentials file's contents, and where it lives.
pub struct Credentials {
    /// The file as the user named it, for messages.
    shown: PathBuf,
    /// Where it really is (links resolved), so a rewrite replaces the file, not a link.
    real: PathBuf,
    pub(crate) client_id: String,
    pub(crate) client_secret: Secret,
    pub(crate) refresh_token: Secret,
    pub(crate) refresh_token_expires_at: Option<DateTime<Utc>>,
    pub(crate) access_token: Option<Secret>,
    pub(crate) access_token_expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("file", &self.shown)
            .field("access_token_expires_at", &self.access_token_expires_at)
            .field("refresh_token_expires_at", &self.refresh_token_expires_at)
            .finish_non_exhaustive()
    }
}

/// Why a credentials file cannot be used. Never holds a secret: values are described,
/// never quoted.
#[derive(Debug, Error)]
pub enum CredentialsError {
    /// The file cannot be opened or read.
    #[error("cannot read credentials file {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Group or others may read the file.
    #[error(
        "credentials file {} may be read by group or others (mode {mode:03o}); it holds a \
         client secret and a refresh token: run `chmod 600 {}`", path.display(), path.display()
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not TOML.
    #[error("{}:{line}:{column}: credentials file is not valid TOML: {message}", path.display())]
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
    /// A key no credentials file has.
    #[error(
        "{}:{line}:{column}: unknown key `{key}`{hint}; a credentials file holds client_id, \
         client_secret and refresh_token (and the access_token, access_token_expires_at and \
         refresh_token_expires_at that ptt-audit writes)", path.display()
    )]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The key as written.
        key: String,
        /// ` (did you mean …?)`, or empty.
        hint: String,
    },
    /// A value that is not what its key needs.
    #[error("{}:{line}:{column}: `{key}` {problem}", path.display())]
    BadValue {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The key.
        key: &'static str,
        /// What is wrong with its value (never the value itself).
        problem: String,
    },
    /// A key the file must have.
    #[error("credentials file {} has no `{key}`: {what}", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// Where the user finds its value.
        what: &'static str,
    },
    /// The refreshed tokens could not be written back.
    #[error(
        "cannot save the refreshed tokens to {}: {source}; the file was left as it was and \
         the new access token was not used", path.display()
    )]
    Save {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The lock that keeps two runs from refreshing at once could not be taken.
    #[error("cannot lock {} to refresh the tokens in {}: {source}", lock.display(), path.display())]
    Lock {
        /// The credentials file.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Another process kept refreshing the same file for too long.
    #[error(
        "another ptt-audit has been refreshing the tokens in {} for over {} s; try again later",
        path.display(), LOCK_WAIT.as_secs()
    )]
    LockTimeout {
        /// The credentials file.
        path: PathBuf,
    },
}

/// What a value is for, for a message about a missing key.
fn what(key: &str) -> &'static str {
    match key {
        "client_id" => "the Client ID of your integration or service app (developer.webex.com)",
        "client_secret" => "the Client Secret of your integration or service app",
        _ => "the refresh token your integration or service app got when it was authorised",
    }
}

impl Credentials {
    /// Reads and checks `path`: private to its owner, TOML, every required key present
    /// and every value usable.
    pub fn load(path: &Path) -> Result<Credentials, CredentialsError> {
        let unreadable = |source| CredentialsError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        let real = fs::canonicalize(path).map_err(unreadable)?;
        let file = File::open(&real).map_err(unreadable)?;
        let meta = file.metadata().map_err(unreadable)?;
        if !meta.is_file() {
            return Err(unreadable(io::Error::other("not a regular file")));
        }
        check_private(path, &meta)?;
        let mut text = String::new();
        file.take(MAX_FILE)
            .read_to_string(&mut text)
            .map_err(unreadable)?;
        // A byte-order mark (Notepad writes one) is not part of the TOML.
        let mut creds = parse(path, text.strip_prefix('\u{feff}').unwrap_or(&text))?;
        creds.real = real;
        Ok(creds)
    }

    /// The file as the user named it.
    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// When the access token in the file expires, if the file says.
    pub fn access_token_expires_at(&self) -> Option<DateTime<Utc>> {
        self.access_token_expires_at
    }

    /// When the refresh token expires, if known (ptt-audit writes it after a refresh).
    pub fn refresh_token_expires_at(&self) -> Option<DateTime<Utc>> {
        self.refresh_token_expires_at
    }

    /// Writes the values back atomically: a temporary file beside the real one
    /// (mode 0600), synced, then renamed over it. On any error the file is as it was.
    pub(crate) fn save(&self) -> Result<(), CredentialsError> {
        let failed = |source| CredentialsError::Save {
            path: self.shown.clone(),
            source,
        };
        let (dir, name) = dir_and_name(&self.real);
        let tmp = dir.join(format!(".{name}.tmp"));
        // Refreshes of one file are serialised by its lock, so a file under this name
        // is what a killed run left: ours to replace, if it is a plain file.
        match fs::symlink_metadata(&tmp) {
            Ok(m) if m.is_file() => fs::remove_file(&tmp).map_err(failed)?,
            Ok(_) => {
                return Err(failed(io::Error::other(format!(
                    "{} is in the way and is not a file",
                    tmp.display()
                ))))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(e)),
        }
        let written = write_private(&tmp, self.render().as_bytes())
            .and_then(|()| fs::rename(&tmp, &self.real));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(failed(e));
        }
        // The rename itself must survive a power cut: the old refresh token may be
        // dead on the server already.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Takes the lock that makes one process at a time refresh this file, waiting up to
    /// [`LOCK_WAIT`] for another. Released when the returned value is dropped (or the
    /// process ends, however it ends).
    pub(crate) async fn lock(&self) -> Result<File, CredentialsError> {
        let (dir, name) = dir_and_name(&self.real);
        let lock = dir.join(format!(".{name}.lock"));
        let lock_err = |source| CredentialsError::Lock {
            path: self.shown.clone(),
            lock: lock.clone(),
            source,
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&lock).map_err(lock_err)?;
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => return Err(lock_err(e)),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CredentialsError::LockTimeout {
                    path: self.shown.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The file's text: a note for people, then every value.
    fn render(&self) -> String {
        let quoted = |s: &str| toml::Value::String(s.to_string()).to_string();
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut text = String::from(
            "# ptt-audit credentials: an integration's or service app's client and refresh token.\n\
             # Keep this file private (chmod 600): ptt-audit refuses it when others may read it.\n\
             # ptt-audit rewrites it when it refreshes the access token (the refresh token may\n\
             # change then); only client_id, client_secret and refresh_token are yours to set.\n",
        );
        text.push_str(&format!("client_id = {}\n", quoted(&self.client_id)));
        text.push_str(&format!(
            "client_secret = {}\n",
            quoted(self.client_secret.expose())
        ));
        text.push_str(&format!(
            "refresh_token = {}\n",
            quoted(self.refresh_token.expose())
        ));
        if let Some(t) = &self.refresh_token_expires_at {
            text.push_str(&format!("refresh_token_expires_at = {}\n", time(t)));
        }
        if let Some(token) = &self.access_token {
            text.push_str(&format!("access_token = {}\n", quoted(token.expose())));
        }
        if let Some(t) = &self.access_token_expires_at {
            text.push_str(&format!("access_token_expires_at = {}\n", time(t)));
        }
        text
    }
}

/// The folder and file name of `path` (a canonical path: it has both).
fn dir_and_name(path: &Path) -> (PathBuf, String) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, name)
}

/// Creates `path` (which must not exist) readable by its owner only, and writes and
/// syncs `bytes` into it.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Refuses a file that group or others may read or write.
#[cfg(unix)]
fn check_private(path: &Path, meta: &fs::Metadata) -> Result<(), CredentialsError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CredentialsError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Elsewhere the folder's access rules decide; nothing to check here.
#[cfg(not(unix))]
fn check_private(_path: &Path, _meta: &fs::Metadata) -> Result<(), CredentialsError> {
    Ok(())
}

/// Parses a credentials file's text; `path` names it in errors.
fn parse(path: &Path, text: &str) -> Result<Credentials, CredentialsError> {
    let table = raw::parse(text).map_err(|errors| {
        let first = errors.into_iter().next();
        let pos = first.as_ref().and_then(|e| e.pos);
        CredentialsError::Syntax {
            path: path.to_path_buf(),
            line: pos.map_or(1, |p| p.line),
            column: pos.map_or(1, |p| p.column),
            message: first.map_or_else(String::new, |e| e.message),
        }
    })?;
    let mut creds = Credentials {
        shown: path.to_path_buf(),
        real: path.to_path_buf(),
        client_id: String::new(),
        client_secret: Secret(String::new()),
        refresh_token: Secret(String::new()),
        refresh_token_expires_at: None,
        access_token: None,
        access_token_expires_at: None,
    };
    let mut seen = Vec::new();
    for entry in &table.entries {
        let Some(key) = KEYS.iter().copied().find(|k| *k == entry.key) else {
            let hint = crate::policy::suggest::closest(&entry.key, KEYS.iter().copied())
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            return Err(CredentialsError::UnknownKey {
                path: path.to_path_buf(),
                line: entry.key_pos.line,
                column: entry.key_pos.column,
                key: entry.key.clone(),
                hint,
            });
        };
        let bad = |problem: String| CredentialsError::BadValue {
            path: path.to_path_buf(),
            line: entry.value_pos.line,
            column: entry.value_pos.column,
            key,
            problem,
        };
        match key {
            "access_token_expires_at" | "refresh_token_expires_at" => {
                let at = time_value(&entry.value).map_err(bad)?;
                if key == "access_token_expires_at" {
                    creds.access_token_expires_at = at;
                } else {
                    creds.refresh_token_expires_at = at;
                }
            }
            _ => {
                let RawValue::String(s) = &entry.value else {
                    return Err(bad(format!(
                        "must be a string, found {}",
                        entry.value.type_name()
                    )));
                };
                let value = s.trim();
                // An emptied access token means "refresh first"; the others are needed.
                if value.is_empty() && key == "access_token" {
                    continue;
                }
                let Some(secret) = Secret::new(value) else {
                    return Err(bad(
                        "is empty or holds spaces or control characters".to_string()
                    ));
                };
                match key {
                    "client_id" => creds.client_id = secret.0,
                    "client_secret" => creds.client_secret = secret,
                    "refresh_token" => creds.refresh_token = secret,
                    _ => creds.access_token = Some(secret),
                }
            }
        }
        seen.push(key);
    }
    for key in ["client_id", "client_secret", "refresh_token"] {
        if !seen.contains(&key) {
            return Err(CredentialsError::Missing {
                path: path.to_path_buf(),
                key,
                what: what(key),
            });
        }
    }
    Ok(creds)
}

/// An expiry time: an RFC 3339 string or a TOML date-time with an offset; an empty
/// string is "unknown".
fn time_value(value: &RawValue) -> Result<Option<DateTime<Utc>>, String> {
    let text = match value {
        RawValue::String(s) if s.trim().is_empty() => return Ok(None),
        RawValue::String(s) => s.trim().to_string(),
        RawValue::Datetime(d) => d.to_string(),
        other => {
            return Err(format!(
                "must be an RFC 3339 date-time such as 2026-01-31T02:15:00Z, found {}",
                other.type_name()
            ))
        }
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| {
            format!(
                "is not an RFC 3339 date-time with a time zone, e.g. 2026-01-31T02:15:00Z ({e})"
            )
        })
}

#[cfg(test)]
mod tests;
