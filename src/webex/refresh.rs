//! One refresh at the token endpoint: `POST {base}/access_token`, form-encoded
//! `grant_type=refresh_token&client_id=…&client_secret=…&refresh_token=…`, retried while
//! the endpoint is merely unavailable (5xx, 408, 429, timeouts, connection errors).
//!
//! Only the endpoint's `error` and `error_description` are ever copied into a message,
//! shortened and with every secret of the exchange replaced by `[REDACTED]`.

use std::time::Duration;

use reqwest::StatusCode;
use thiserror::Error;
use url::Url;

use super::credentials::{Credentials, Secret};
use super::decide::parse_retry_after;
use super::pace::full_jitter;

/// Requests sent for one refresh at most.
pub(crate) const REFRESH_ATTEMPTS: u32 = 4;

/// Longest wait between two attempts, whatever a `Retry-After` asks.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Largest token answer read: a few hundred bytes are expected.
const MAX_ANSWER: usize = 64 * 1024;

/// Longest piece of the endpoint's own text kept in a message.
const MAX_DETAIL: usize = 200;

/// What a successful refresh handed out.
#[derive(Debug)]
pub(crate) struct Grant {
    pub(crate) access_token: Secret,
    pub(crate) expires_in: Duration,
    /// `None` when the answer kept the refresh token as it was.
    pub(crate) refresh_token: Option<Secret>,
    pub(crate) refresh_token_expires_in: Option<Duration>,
}

/// Why a refresh failed. Each message says which credential to renew, and none holds
/// a secret.
#[derive(Debug, Clone, Error)]
pub enum RefreshError {
    /// 400 `invalid_grant`: the refresh token is expired, revoked or someone else's.
    #[error(
        "the token endpoint refused the refresh token in {file} ({detail}): it has expired, \
         was revoked, or belongs to another client. Authorise the integration again (or get \
         new tokens for the service app) and put the new refresh token into {file}"
    )]
    RefreshTokenRefused {
        /// The credentials file.
        file: String,
        /// The endpoint's error code and description.
        detail: String,
    },
    /// 401 or `invalid_client`: the client ID or secret is wrong.
    #[error(
        "the token endpoint refused the client ID or client secret in {file} (HTTP {status}: \
         {detail}): copy both again from your integration or service app on \
         developer.webex.com"
    )]
    ClientRefused {
        /// The credentials file.
        file: String,
        /// The HTTP status.
        status: u16,
        /// The endpoint's error code and description.
        detail: String,
    },
    /// Any other refusal (4xx).
    #[error(
        "the token endpoint refused the refresh (HTTP {status}: {detail}); check client_id, \
         client_secret and refresh_token in {file}"
    )]
    Refused {
        /// The credentials file.
        file: String,
        /// The HTTP status.
        status: u16,
        /// The endpoint's error code and description.
        detail: String,
    },
    /// A 2xx whose body is not a token.
    #[error(
        "the token endpoint {url} answered HTTP {status} but not with a token ({reason}); check \
         --base-url. The tokens in {file} are unchanged"
    )]
    NotAToken {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What is wrong with the body.
        reason: String,
        /// The credentials file.
        file: String,
    },
    /// No usable answer after every attempt.
    #[error(
        "the token endpoint {url} did not answer usably after {attempts} attempts (last: \
         {last}); the tokens in {file} are unchanged, try again later"
    )]
    Unavailable {
        /// The endpoint.
        url: String,
        /// Requests sent.
        attempts: u32,
        /// The last attempt's problem.
        last: String,
        /// The credentials file.
        file: String,
    },
}

/// What one attempt produced.
enum Outcome {
    Done(Grant),
    /// Worth another attempt, after at least this long.
    Again(String, Option<Duration>),
    Failed(RefreshError),
}

/// Refreshes with `creds`' refresh token at `url`, retrying what is transient.
pub(crate) async fn refresh(
    http: &reqwest::Client,
    url: &Url,
    creds: &Credentials,
) -> Result<Grant, RefreshError> {
    let mut last = String::new();
    for attempt in 1..=REFRESH_ATTEMPTS {
        match attempt_once(http, url, creds).await {
            Outcome::Done(grant) => return Ok(grant),
            Outcome::Failed(e) => return Err(e),
            Outcome::Again(problem, retry_after) => {
                tracing::debug!(attempt, "token endpoint: {problem}; trying again");
                last = problem;
                if attempt < REFRESH_ATTEMPTS {
                    let wait = retry_after.unwrap_or_else(|| full_jitter(attempt));
                    tokio::time::sleep(wait.min(MAX_WAIT)).await;
                }
            }
        }
    }
    Err(RefreshError::Unavailable {
        url: url.to_string(),
        attempts: REFRESH_ATTEMPTS,
        last,
        file: creds.path().display().to_string(),
    })
}

async fn attempt_once(http: &reqwest::Client, url: &Url, creds: &Credentials) -> Outcome {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", &creds.client_id)
        .append_pair("client_secret", creds.client_secret.expose())
        .append_pair("refresh_token", creds.refresh_token.expose())
        .finish();
    let sent = http
        .post(url.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(form)
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        // reqwest names the URL (no secret: they travel in the body) and the cause.
        Err(e) => return Outcome::Again(network_problem(&e), None),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
    let body = match read_capped(response).await {
        Ok(body) => body,
        Err(problem) => return Outcome::Again(problem, None),
    };
    let file = creds.path().display().to_string();
    if status.is_success() {
        return match grant(&body) {
            Ok(grant) => Outcome::Done(grant),
            Err(reason) => Outcome::Failed(RefreshError::NotAToken {
                url: url.to_string(),
                status: status.as_u16(),
                reason,
                file,
            }),
        };
    }
    let (code, detail) = oauth_detail(&body, creds);
    match status.as_u16() {
        408 | 429 | 500 | 502 | 503 | 504 => {
            Outcome::Again(format!("HTTP {}: {detail}", status.as_u16()), retry_after)
        }
        400 if code == "invalid_grant" => {
            Outcome::Failed(RefreshError::RefreshTokenRefused { file, detail })
        }
        s if s == StatusCode::UNAUTHORIZED.as_u16() || code == "invalid_client" => {
            Outcome::Failed(RefreshError::ClientRefused {
                file,
                status: s,
                detail,
            })
        }
        s => Outcome::Failed(RefreshError::Refused {
            file,
            status: s,
            detail,
        }),
    }
}

/// A failed request's reason, causes included.
fn network_problem(e: &reqwest::Error) -> String {
    let mut message = if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// The body, at most [`MAX_ANSWER`] bytes of it.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER {
                    return Err(format!("answer larger than {MAX_ANSWER} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(network_problem(&e)),
        }
    }
}

/// The grant in a 2xx body, or why it is none.
fn grant(body: &[u8]) -> Result<Grant, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_string())?;
    let text = |key: &str| -> Result<Option<Secret>, String> {
        match value.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Secret::new(s.trim())
                .map(Some)
                .ok_or_else(|| format!("`{key}` is empty or holds spaces")),
            Some(_) => Err(format!("`{key}` is not a string")),
        }
    };
    let seconds = |key: &str| -> Result<Option<Duration>, String> {
        match value.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .map(Some)
                .ok_or_else(|| format!("`{key}` is not a positive number of seconds")),
        }
    };
    let access_token = text("access_token")?.ok_or("no `access_token`")?;
    let expires_in = seconds("expires_in")?.ok_or("no `expires_in`")?;
    Ok(Grant {
        access_token,
        expires_in,
        refresh_token: text("refresh_token")?,
        refresh_token_expires_in: seconds("refresh_token_expires_in")?,
    })
}

/// The endpoint's `error` code and a readable `code: description`, redacted and short;
/// the body's absence or shape when it has neither.
fn oauth_detail(body: &[u8], creds: &Credentials) -> (String, String) {
    let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |key: &str| {
        value
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(serde_json::Value::as_str)
            .map(|s| clean(s, creds))
    };
    let code = field("error").unwrap_or_default();
    let description = field("error_description")
        .or_else(|| field("message"))
        .unwrap_or_default();
    let detail = match (code.is_empty(), description.is_empty()) {
        (false, false) => format!("{code}: {description}"),
        (false, true) => code.clone(),
        (true, false) => description,
        (true, true) if body.is_empty() => "no body".to_string(),
        (true, true) => "no OAuth error in the body".to_string(),
    };
    (code, detail)
}

/// `text` with every secret of the exchange replaced, control characters dropped, and
/// cut to [`MAX_DETAIL`] characters.
fn clean(text: &str, creds: &Credentials) -> String {
    let mut text = text.to_string();
    let mut secrets = vec![creds.client_secret.expose(), creds.refresh_token.expose()];
    if let Some(t) = &creds.access_token {
        secrets.push(t.expose());
    }
    for secret in secrets {
        text = text.replace(secret, "[REDACTED]");
    }
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DETAIL)
        .collect();
    if text.chars().count() > MAX_DETAIL {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_needs_a_token_and_its_lifetime() {
        let g = grant(br#"{"access_token":"a","expires_in":1209599,"refresh_token":"r","refresh_token_expires_in":7776000,"token_type":"Bearer"}"#).unwrap();
        assert_eq!(g.access_token.expose(), "a");
        assert_eq!(g.expires_in, Duration::from_secs(1_209_599));
        assert_eq!(g.refresh_token.unwrap().expose(), "r");
        assert_eq!(
            g.refresh_token_expires_in,
            Some(Duration::from_secs(7_776_000))
        );
        let kept = grant(br#"{"access_token":"a","expires_in":60}"#).unwrap();
        assert!(kept.refresh_token.is_none());
        for (body, want) in [
            (&b"<html>"[..], "not JSON"),
            (br#"{"expires_in":60}"#, "no `access_token`"),
            (br#"{"access_token":"a"}"#, "no `expires_in`"),
            (
                br#"{"access_token":"a","expires_in":"soon"}"#,
                "positive number",
            ),
            (
                br#"{"access_token":"a","expires_in":-5}"#,
                "positive number",
            ),
            (br#"{"access_token":7,"expires_in":5}"#, "not a string"),
            (br#"{"access_token":"a b","expires_in":5}"#, "spaces"),
        ] {
            let e = grant(body).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }
}
