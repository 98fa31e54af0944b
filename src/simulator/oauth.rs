//! The simulated token endpoint (`POST /v1/access_token`) and the access tokens it
//! hands out, so that tests and the demo can show a refresh before the first request,
//! a refresh mid-run, refresh-token rotation, and many nights in a row.
//!
//! Tokens age on the simulator's own clock: real time since start plus whatever
//! [`super::RunningSimulator::advance_clock`] added, so a test can let "a night" pass
//! in a millisecond.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::server::Shared;

/// Largest token request body read: a form with four short fields.
const MAX_TOKEN_FORM: usize = 64 * 1024;

/// What the token endpoint accepts and hands out (`SimConfig::oauth`). The values are
/// made up for the simulator; never put real ones here.
#[derive(Clone)]
pub struct OAuthConfig {
    /// The integration's client ID.
    pub client_id: String,
    /// The integration's client secret.
    pub client_secret: String,
    /// The refresh token handed out when the integration was authorised.
    pub refresh_token: String,
    /// An access token that is valid from the start (as if issued just before), if any.
    pub access_token: Option<String>,
    /// `expires_in` of every access token: after it (on the simulator's clock) the API
    /// answers 401 to it.
    pub access_token_lifetime: Duration,
    /// How many requests one access token may make before the API answers 401 to it;
    /// `None` for no limit. Lets a test expire a token mid-run at a chosen point.
    pub access_token_requests: Option<u64>,
    /// `refresh_token_expires_in` of every refresh token (and of the first one, from
    /// the start).
    pub refresh_token_lifetime: Duration,
    /// Every refresh hands out a new refresh token. The one sent stays valid until the
    /// new one is first used, so a client that lost the answer can still refresh.
    pub rotate: bool,
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("access_token_requests", &self.access_token_requests)
            .field("refresh_token_lifetime", &self.refresh_token_lifetime)
            .field("rotate", &self.rotate)
            .finish_non_exhaustive()
    }
}

impl Default for OAuthConfig {
    /// Webex's usual numbers: access tokens for 14 days, refresh tokens for 90, made-up
    /// client values, no rotation.
    fn default() -> Self {
        OAuthConfig {
            client_id: "sim-client-id".into(),
            client_secret: "sim-client-secret".into(),
            refresh_token: "sim-refresh-token".into(),
            access_token: None,
            access_token_lifetime: Duration::from_secs(14 * 86_400),
            access_token_requests: None,
            refresh_token_lifetime: Duration::from_secs(90 * 86_400),
            rotate: false,
        }
    }
}

/// The simulator's clock for tokens: real time since start, plus what a test added.
#[derive(Debug)]
pub(crate) struct Clock {
    started: Instant,
    /// Milliseconds added by `advance`.
    offset_ms: AtomicU64,
}

impl Clock {
    pub(crate) fn new(started: Instant) -> Clock {
        Clock {
            started,
            offset_ms: AtomicU64::new(0),
        }
    }

    /// Time since start on this clock.
    pub(crate) fn now(&self) -> Duration {
        self.started.elapsed() + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Shared {
    /// `POST /v1/access_token`: a form-encoded refresh, answered as Webex does.
    pub(super) async fn token_endpoint(&self, tid: &str, req: Request) -> Response {
        self.stats.token_requests.fetch_add(1, Ordering::Relaxed);
        let Some(tokens) = &self.tokens else {
            return self.error(StatusCode::NOT_FOUND, tid, "Not found.", None);
        };
        if req.method() != Method::POST {
            return self.error(
                StatusCode::METHOD_NOT_ALLOWED,
                tid,
                "The request method is not supported for this resource.",
                None,
            );
        }
        let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_TOKEN_FORM).await else {
            return self.error(StatusCode::BAD_REQUEST, tid, "Unreadable body.", None);
        };
        let answer = tokens.exchange(&body, self.clock.now());
        if answer.status == 200 {
            self.stats.tokens_issued.fetch_add(1, Ordering::Relaxed);
        }
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST);
        let bytes = serde_json::to_vec(&answer.body).unwrap_or_default();
        self.json(status, tid, Bytes::from(bytes), None)
    }
}

/// An access token handed out.
struct Access {
    /// On the simulator's clock.
    expires_at: Duration,
    /// Requests it was accepted for.
    used: u64,
}

/// A refresh token handed out.
struct Refresh {
    /// On the simulator's clock.
    expires_at: Duration,
}

/// Every token the endpoint handed out, and which are still good.
pub(crate) struct Tokens {
    config: OAuthConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct State {
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    /// Every access and refresh token handed out, in order.
    issued: Vec<String>,
}

/// What the token endpoint answers: a status and a JSON body.
pub(crate) struct TokenAnswer {
    pub(crate) status: u16,
    pub(crate) body: serde_json::Value,
}

impl Tokens {
    /// The first refresh token (and access token, if configured), valid from `now`.
    pub(crate) fn new(config: OAuthConfig, now: Duration) -> Tokens {
        let mut state = State {
            access: HashMap::new(),
            refresh: HashMap::new(),
            issued: Vec::new(),
        };
        state.refresh.insert(
            config.refresh_token.clone(),
            Refresh {
                expires_at: now + config.refresh_token_lifetime,
            },
        );
        if let Some(token) = &config.access_token {
            state.access.insert(
                token.clone(),
                Access {
                    expires_at: now + config.access_token_lifetime,
                    used: 0,
                },
            );
        }
        Tokens {
            config,
            state: Mutex::new(state),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every token handed out so far (access and refresh), oldest first.
    pub(crate) fn issued(&self) -> Vec<String> {
        self.state().issued.clone()
    }

    /// Whether `token` may make one more request at `now`; counts the request.
    pub(crate) fn accept(&self, token: &str, now: Duration) -> bool {
        let mut state = self.state();
        let Some(access) = state.access.get_mut(token) else {
            return false;
        };
        let spent = self
            .config
            .access_token_requests
            .is_some_and(|limit| access.used >= limit);
        if now >= access.expires_at || spent {
            return false;
        }
        access.used += 1;
        true
    }

    /// Answers one `POST /access_token` with the form-encoded `body`.
    pub(crate) fn exchange(&self, body: &[u8], now: Duration) -> TokenAnswer {
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
        if field("grant_type") != "refresh_token" {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "grant_type must be refresh_token",
            );
        }
        if field("client_id") != self.config.client_id
            || field("client_secret") != self.config.client_secret
        {
            return oauth_error(401, "invalid_client", "Client authentication failed.");
        }
        let sent = field("refresh_token");
        let mut state = self.state();
        let valid = state.refresh.get(sent).is_some_and(|r| now < r.expires_at);
        if !valid {
            return oauth_error(
                400,
                "invalid_grant",
                "The refresh token provided is expired, revoked, malformed, or invalid.",
            );
        }
        let access_token = format!("sim-access-{}", uuid::Uuid::new_v4().simple());
        state.access.insert(
            access_token.clone(),
            Access {
                expires_at: now + self.config.access_token_lifetime,
                used: 0,
            },
        );
        state.issued.push(access_token.clone());
        let refresh_expires = now + self.config.refresh_token_lifetime;
        let refresh_token = if self.config.rotate {
            // Only the token just used and its successor stay good: a client that
            // lost this answer still holds `sent`, and once it uses the new one, `sent`
            // is gone.
            let new = format!("sim-refresh-{}", uuid::Uuid::new_v4().simple());
            state.refresh.retain(|token, _| token == sent);
            state.refresh.insert(
                new.clone(),
                Refresh {
                    expires_at: refresh_expires,
                },
            );
            state.issued.push(new.clone());
            new
        } else {
            // A refresh token that is used keeps being renewed.
            if let Some(r) = state.refresh.get_mut(sent) {
                r.expires_at = refresh_expires;
            }
            sent.to_string()
        };
        TokenAnswer {
            status: 200,
            body: json!({
                "access_token": access_token,
                "expires_in": self.config.access_token_lifetime.as_secs(),
                "refresh_token": refresh_token,
                "refresh_token_expires_in": self.config.refresh_token_lifetime.as_secs(),
                "token_type": "Bearer",
            }),
        }
    }
}

/// An OAuth error answer, as Webex's token endpoint gives them.
fn oauth_error(status: u16, error: &str, description: &str) -> TokenAnswer {
    TokenAnswer {
        status,
        body: json!({
            "error": error,
            "error_description": description,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(refresh: &str) -> Vec<u8> {
        format!(
            "grant_type=refresh_token&client_id=sim-client-id&client_secret=sim-client-secret&refresh_token={refresh}"
        )
        .into_bytes()
    }

    fn refreshed(answer: &TokenAnswer) -> (String, String) {
        assert_eq!(answer.status, 200, "{}", answer.body);
        (
            answer.body["access_token"].as_str().unwrap().to_string(),
            answer.body["refresh_token"].as_str().unwrap().to_string(),
        )
    }

    #[test]
    fn rotation_keeps_the_sent_token_until_its_successor_is_used() {
        let tokens = Tokens::new(
            OAuthConfig {
                rotate: true,
                ..OAuthConfig::default()
            },
            Duration::ZERO,
        );
        let (_, second) = refreshed(&tokens.exchange(&form("sim-refresh-token"), Duration::ZERO));
        assert_ne!(second, "sim-refresh-token");
        // The answer was lost: the first token still works and the lost one is dropped.
        let (_, third) = refreshed(&tokens.exchange(&form("sim-refresh-token"), Duration::ZERO));
        assert_eq!(tokens.exchange(&form(&second), Duration::ZERO).status, 400);
        // The new one used: the first is gone.
        let (_, fourth) = refreshed(&tokens.exchange(&form(&third), Duration::ZERO));
        let refused = tokens.exchange(&form("sim-refresh-token"), Duration::ZERO);
        assert_eq!(refused.status, 400);
        assert_eq!(refused.body["error"], "invalid_grant");
        refreshed(&tokens.exchange(&form(&fourth), Duration::ZERO));
    }

    #[test]
    fn access_tokens_expire_by_time_and_by_requests() {
        let tokens = Tokens::new(
            OAuthConfig {
                access_token_lifetime: Duration::from_secs(60),
                access_token_requests: Some(2),
                ..OAuthConfig::default()
            },
            Duration::ZERO,
        );
        let (a, _) = refreshed(&tokens.exchange(&form("sim-refresh-token"), Duration::ZERO));
        assert!(tokens.accept(&a, Duration::ZERO));
        assert!(tokens.accept(&a, Duration::ZERO));
        assert!(!tokens.accept(&a, Duration::ZERO), "third request");
        let (b, _) = refreshed(&tokens.exchange(&form("sim-refresh-token"), Duration::ZERO));
        assert!(!tokens.accept(&b, Duration::from_secs(60)), "expired");
        assert!(!tokens.accept("made-up", Duration::ZERO));
    }

    #[test]
    fn wrong_client_or_grant_is_refused() {
        let tokens = Tokens::new(OAuthConfig::default(), Duration::ZERO);
        let wrong = b"grant_type=refresh_token&client_id=sim-client-id&client_secret=x&refresh_token=sim-refresh-token";
        assert_eq!(tokens.exchange(wrong, Duration::ZERO).status, 401);
        assert_eq!(
            tokens
                .exchange(b"grant_type=password", Duration::ZERO)
                .status,
            400
        );
        let late = tokens.exchange(&form("sim-refresh-token"), Duration::from_secs(91 * 86_400));
        assert_eq!(late.body["error"], "invalid_grant");
    }
}
