//! Where a run's access token comes from: fixed (`--token-file`, `WEBEX_TOKEN`), or
//! refreshed with the refresh token of a credentials file (`--credentials`).
//!
//! Every request asks the [`TokenSource`] for the current token and its generation.
//! A refresh holds the source's lock, so requests wait for it instead of sending a
//! token known to be stale, and requests refused (401) meanwhile see a newer generation
//! once it is done and are sent again: one refresh for a whole wave of 401s. What a
//! 401 means is decided by `decide::on_unauthorized`.
//!
//! A refresh runs as a task of its own, so a line that stops waiting (an interrupt)
//! never cuts it between the token endpoint's answer and the save; the job waits for it
//! ([`TokenSource::settle`]) before it ends.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::{Mutex, OwnedMutexGuard};
use url::Url;

use super::client::ClientError;
use super::credentials::{Credentials, CredentialsError};
use super::decide::{on_unauthorized, OnUnauthorized, Refusal};
use super::refresh::{self, RefreshError};
use super::token::Token;

/// Refresh before the first request when the access token expires sooner than this.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(30 * 60);

/// Warn (every run) when the refresh token expires sooner than this.
pub const REFRESH_TOKEN_WARNING: Duration = Duration::from_secs(14 * 86_400);

/// Why the run has no usable token: says which credential to renew. Holds no secret.
#[derive(Debug, Clone, Error)]
pub enum AuthFailure {
    /// A fixed token was refused.
    #[error(
        "the Webex API refused the token (401 Unauthorized): it is missing, wrong or expired \
         (personal tokens last 12 hours; for cron use --credentials with an integration or \
         service app, see the README)"
    )]
    TokenRefused,
    /// A token just refreshed was refused: refreshing again would not help.
    #[error(
        "the Webex API refused an access token just refreshed with {file} (401 Unauthorized): \
         the integration may lack the scope spark-admin:telephony_config_read, or its \
         authorisation was revoked. Authorise it again and put the new refresh token into {file}"
    )]
    RefreshedTokenRefused {
        /// The credentials file.
        file: String,
    },
    /// The token endpoint would not refresh.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// The credentials file could not be read again, locked or saved.
    #[error("{0}")]
    Credentials(Arc<CredentialsError>),
}

impl From<CredentialsError> for AuthFailure {
    fn from(e: CredentialsError) -> Self {
        AuthFailure::Credentials(Arc::new(e))
    }
}

/// What is known about a source's tokens, for `auth check` and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenExpiry {
    /// The credentials file, when the token comes from one.
    pub file: Option<std::path::PathBuf>,
    /// When the access token expires, when known.
    pub access_token_expires_at: Option<DateTime<Utc>>,
    /// When the refresh token expires, when known.
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    /// Refreshes done by this source so far.
    pub refreshes: u32,
}

impl TokenExpiry {
    /// Whether the refresh token expires within [`REFRESH_TOKEN_WARNING`] of `now`.
    pub fn refresh_token_expiring(&self, now: DateTime<Utc>) -> bool {
        self.refresh_token_expires_at
            .is_some_and(|at| at - now < chrono_duration(REFRESH_TOKEN_WARNING))
    }
}

/// The token (or the credentials behind it) of one run, shared by every request.
/// Cheap to clone; its `Debug` shows no secret.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<Mutex<State>>,
    /// One more than the highest generation the API accepted (0: none yet).
    proven: AtomicU64,
    refreshes: AtomicU32,
    /// How to reach the token endpoint; `None` for a fixed token.
    endpoint: Option<Endpoint>,
}

#[derive(Clone)]
struct Endpoint {
    http: reqwest::Client,
    url: Url,
}

struct State {
    /// `None` until the first refresh when the file holds no access token.
    token: Option<Token>,
    /// Bumped whenever `token` changes.
    generation: u64,
    /// Whether `token` came from a refresh by this run (rather than from a file).
    from_refresh: bool,
    /// `Some` when the token is refreshed from a credentials file.
    creds: Option<Credentials>,
    /// Once set, every request fails with it: the run is stopping.
    failed: Option<AuthFailure>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.inner.endpoint.is_some() {
            "credentials"
        } else {
            "fixed"
        };
        f.debug_struct("TokenSource")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl From<Token> for TokenSource {
    fn from(token: Token) -> Self {
        TokenSource::fixed(token)
    }
}

fn chrono_duration(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

impl TokenSource {
    /// A token that is used as it is; a 401 stops the run.
    pub fn fixed(token: Token) -> TokenSource {
        TokenSource::new(
            State {
                token: Some(token),
                generation: 0,
                from_refresh: false,
                creds: None,
                failed: None,
            },
            None,
        )
    }

    /// A token refreshed with `creds` at `{base_url}/access_token`, each request to it
    /// bounded by `timeout`.
    pub fn refreshing(
        creds: Credentials,
        base_url: &Url,
        timeout: Duration,
    ) -> Result<TokenSource, ClientError> {
        let base = base_url.as_str().trim_end_matches('/');
        let url =
            Url::parse(&format!("{base}/access_token")).map_err(|e| ClientError::BadBaseUrl {
                url: base_url.to_string(),
                reason: e.to_string(),
            })?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("ptt-audit/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A redirect could carry the client secret elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        // A token in the file whose form cannot be sent is as good as none.
        let token = creds
            .access_token
            .as_ref()
            .and_then(|t| Token::new(t.expose(), "the credentials file").ok());
        Ok(TokenSource::new(
            State {
                token,
                generation: 0,
                from_refresh: false,
                creds: Some(creds),
                failed: None,
            },
            Some(Endpoint { http, url }),
        ))
    }

    fn new(state: State, endpoint: Option<Endpoint>) -> TokenSource {
        TokenSource {
            inner: Arc::new(Inner {
                state: Arc::new(Mutex::new(state)),
                proven: AtomicU64::new(0),
                refreshes: AtomicU32::new(0),
                endpoint,
            }),
        }
    }

    /// Before the first request: refreshes when the access token is missing, its expiry
    /// unknown, or within [`REFRESH_MARGIN`]; warns when the refresh token expires
    /// within [`REFRESH_TOKEN_WARNING`]. Nothing to do for a fixed token.
    pub async fn prepare(&self) -> Result<(), AuthFailure> {
        let guard = self.inner.state.clone().lock_owned().await;
        let Some(creds) = &guard.creds else {
            return Ok(());
        };
        let now = Utc::now();
        let fresh = guard.token.is_some()
            && creds
                .access_token_expires_at
                .is_some_and(|at| at - now > chrono_duration(REFRESH_MARGIN));
        if fresh {
            drop(guard);
        } else {
            tracing::info!(
                file = %creds.path().display(),
                "the access token is missing or expires within {} minutes: refreshing it",
                REFRESH_MARGIN.as_secs() / 60
            );
            self.refresh_with(guard).await?;
        }
        let expiry = self.expiry().await;
        if expiry.refresh_token_expiring(Utc::now()) {
            if let (Some(file), Some(at)) = (&expiry.file, expiry.refresh_token_expires_at) {
                tracing::warn!(
                    file = %file.display(),
                    expires_at = %at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "the refresh token expires in {} days: authorise the integration again \
                     (or get new tokens for the service app) and put the new refresh token \
                     into {} before then, or unattended runs stop with exit 2",
                    (at - Utc::now()).num_days().max(0),
                    file.display()
                );
            }
        }
        Ok(())
    }

    /// The token to send now, and its generation. Waits while a refresh runs.
    pub(crate) async fn current(&self) -> Result<(u64, Token), AuthFailure> {
        let guard = self.inner.state.clone().lock_owned().await;
        if let Some(f) = &guard.failed {
            return Err(f.clone());
        }
        if let Some(token) = &guard.token {
            return Ok((guard.generation, token.clone()));
        }
        // No token yet (`prepare` was not called): get one now.
        self.refresh_with(guard).await?;
        let guard = self.inner.state.lock().await;
        match &guard.token {
            Some(token) => Ok((guard.generation, token.clone())),
            None => Err(guard.failed.clone().unwrap_or(AuthFailure::TokenRefused)),
        }
    }

    /// The API answered something other than 401 to a request sent with `generation`:
    /// that token works.
    pub(crate) fn accepted(&self, generation: u64) {
        self.inner
            .proven
            .fetch_max(generation.saturating_add(1), Ordering::Relaxed);
    }

    /// The API refused (401) a request sent with `generation`. `Ok` means: send it again
    /// (the token was renewed, by this call or by another meanwhile); `Err` means the run
    /// must stop, and says why.
    pub(crate) async fn renew_after_refusal(&self, generation: u64) -> Result<(), AuthFailure> {
        let mut guard = self.inner.state.clone().lock_owned().await;
        if let Some(f) = &guard.failed {
            return Err(f.clone());
        }
        let proven = self.inner.proven.load(Ordering::Relaxed) > guard.generation;
        let decision = on_unauthorized(
            generation,
            guard.generation,
            guard.creds.is_some(),
            guard.from_refresh && !proven,
        );
        match decision {
            OnUnauthorized::Resend => Ok(()),
            OnUnauthorized::Refresh => {
                tracing::info!("the API refused the access token (401): refreshing it");
                self.refresh_with(guard).await
            }
            OnUnauthorized::Stop(refusal) => {
                let failure = match (refusal, &guard.creds) {
                    (Refusal::RefreshedTokenRefused, Some(creds)) => {
                        AuthFailure::RefreshedTokenRefused {
                            file: creds.path().display().to_string(),
                        }
                    }
                    _ => AuthFailure::TokenRefused,
                };
                guard.failed = Some(failure.clone());
                Err(failure)
            }
        }
    }

    /// Waits until no refresh is running (one that a stopped line started included).
    pub async fn settle(&self) {
        drop(self.inner.state.lock().await);
    }

    /// Why the run has no usable token, once it has none.
    pub async fn failure(&self) -> Option<AuthFailure> {
        self.inner.state.lock().await.failed.clone()
    }

    /// What is known about the tokens now.
    pub async fn expiry(&self) -> TokenExpiry {
        let guard = self.inner.state.lock().await;
        let creds = guard.creds.as_ref();
        TokenExpiry {
            file: creds.map(|c| c.path().to_path_buf()),
            access_token_expires_at: creds.and_then(Credentials::access_token_expires_at),
            refresh_token_expires_at: creds.and_then(Credentials::refresh_token_expires_at),
            refreshes: self.inner.refreshes.load(Ordering::Relaxed),
        }
    }

    /// Refreshes holding `guard` (so every request waits), in a task of its own that
    /// finishes even if the caller stops waiting.
    async fn refresh_with(&self, guard: OwnedMutexGuard<State>) -> Result<(), AuthFailure> {
        let Some(endpoint) = self.inner.endpoint.clone() else {
            return Err(AuthFailure::TokenRefused);
        };
        let inner = Arc::clone(&self.inner);
        let task = tokio::spawn(async move { refresh_task(guard, endpoint, &inner).await });
        match task.await {
            Ok(result) => result,
            // A panic in the refresh: the token was not replaced.
            Err(e) => Err(AuthFailure::Refresh(RefreshError::Unavailable {
                url: String::new(),
                attempts: 0,
                last: format!("internal error: {e}"),
                file: String::new(),
            })),
        }
    }
}

/// One refresh: lock the file, read it again (another run may have refreshed), else
/// ask the token endpoint, save, and only then use the new token.
async fn refresh_task(
    mut guard: OwnedMutexGuard<State>,
    endpoint: Endpoint,
    inner: &Inner,
) -> Result<(), AuthFailure> {
    let result = refresh_locked(&mut guard, &endpoint, inner).await;
    if let Err(f) = &result {
        guard.failed = Some(f.clone());
    }
    result
}

async fn refresh_locked(
    state: &mut State,
    endpoint: &Endpoint,
    inner: &Inner,
) -> Result<(), AuthFailure> {
    let Some(creds) = &state.creds else {
        return Err(AuthFailure::TokenRefused);
    };
    let _file_lock = creds.lock().await?;
    let on_disk = Credentials::load(creds.path())?;
    // Another process may have refreshed since this run read the file: its token is
    // newer than ours, and with rotation our refresh token may be dead already.
    let fresh = on_disk
        .access_token_expires_at
        .is_some_and(|at| at - Utc::now() > chrono_duration(REFRESH_MARGIN));
    let theirs = on_disk
        .access_token
        .as_ref()
        .filter(|t| fresh && Some(*t) != creds.access_token.as_ref())
        .and_then(|t| Token::new(t.expose(), "the credentials file").ok());
    if let Some(theirs) = theirs {
        tracing::info!(
            file = %on_disk.path().display(),
            "another run refreshed the access token meanwhile: using it"
        );
        state.token = Some(theirs);
        state.generation += 1;
        state.from_refresh = false;
        state.creds = Some(on_disk);
        return Ok(());
    }
    let grant = refresh::refresh(&endpoint.http, &endpoint.url, &on_disk).await?;
    let mut updated = on_disk;
    let now = Utc::now();
    let rotated = grant
        .refresh_token
        .as_ref()
        .is_some_and(|r| *r != updated.refresh_token);
    if let Some(r) = grant.refresh_token {
        updated.refresh_token = r;
    }
    if let Some(d) = grant.refresh_token_expires_in {
        updated.refresh_token_expires_at = Some(now + chrono_duration(d));
    }
    updated.access_token_expires_at = Some(now + chrono_duration(grant.expires_in));
    let token = Token::new(grant.access_token.expose(), "the token endpoint").map_err(|_| {
        RefreshError::NotAToken {
            url: endpoint.url.to_string(),
            status: 200,
            reason: "`access_token` cannot be sent in a header".into(),
            file: updated.path().display().to_string(),
        }
    })?;
    updated.access_token = Some(grant.access_token);
    // Saved before use: a crash after this point leaves the new tokens on disk; a save
    // that fails leaves the old file, whose refresh token the server still honours until
    // the new one is used, and stops the run before the new token is sent anywhere.
    updated.save()?;
    let refreshes = inner.refreshes.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::info!(
        file = %updated.path().display(),
        rotated,
        refreshes,
        expires_at = %updated
            .access_token_expires_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        "refreshed the access token and saved it"
    );
    state.token = Some(token);
    state.generation += 1;
    state.from_refresh = true;
    state.creds = Some(updated);
    Ok(())
}
