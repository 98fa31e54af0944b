//! `auth check`'s one cheap, read-only request: list at most one virtual line
//! (`GET {base}/telephony/config/virtualLines?max=1`), which needs exactly the scope an
//! audit needs. A 401 is met as in an audit: one refresh when the token can be
//! refreshed, then the request again.

use std::time::Duration;

use reqwest::header::AUTHORIZATION;
use thiserror::Error;
use url::Url;

use super::answer::line_error;
use super::client::WebexClient;
use super::source::AuthFailure;
use crate::model::ErrorKind;

/// Requests sent at most (401 renewals aside).
const PROBE_ATTEMPTS: u32 = 3;

/// What a probe that worked saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The answer's status (a 2xx).
    pub status: u16,
    /// The request that was made, without host, for the user to see.
    pub request: String,
}

/// Why the token does not work, or could not be tried.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// The token was refused, or could not be refreshed.
    #[error(transparent)]
    Auth(#[from] AuthFailure),
    /// The token is valid but may not read telephony settings (of this org).
    #[error(
        "the token is valid but may not read telephony settings (HTTP 403: {message}): it needs \
         the scope spark-admin:telephony_config_read and a full, user or read-only \
         administrator of the org (check --org-id)"
    )]
    Forbidden {
        /// The API's message.
        message: String,
    },
    /// Any other answer, or none.
    #[error("the API did not confirm the token: {message}")]
    Other {
        /// Status, the API's message and tracking ID, or the connection problem.
        message: String,
    },
}

impl WebexClient {
    /// `auth check`'s request: the first line of the list, of `--org-id`'s org if given.
    pub(super) fn probe_url(&self) -> String {
        let mut url = Url::clone(&self.lines_base);
        let path = url.path().trim_end_matches('/').to_string();
        url.set_path(&path);
        let query = match url.query() {
            Some(org) => format!("max=1&{org}"),
            None => "max=1".to_string(),
        };
        url.set_query(Some(&query));
        url.into()
    }

    /// Makes `auth check`'s request with the current token (refreshing it on a 401 if
    /// it can be refreshed).
    pub async fn probe(&self) -> Result<Probe, ProbeError> {
        let url = self.probe_url();
        let request = match url.find("/telephony/") {
            Some(i) => format!("GET …{}", &url[i..]),
            None => format!("GET {url}"),
        };
        let mut attempts = 0;
        let mut last = String::new();
        while attempts < PROBE_ATTEMPTS {
            let (generation, token) = self.token.current().await?;
            attempts += 1;
            let sent = self
                .http
                .get(&url)
                .header(AUTHORIZATION, token.bearer_header())
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    last = format!("no answer: {e}");
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempts))).await;
                    continue;
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.unwrap_or_default();
            if status == reqwest::StatusCode::UNAUTHORIZED {
                // `Ok`: renewed, try again without spending an attempt.
                self.token.renew_after_refusal(generation).await?;
                attempts -= 1;
                continue;
            }
            self.token.accepted(generation);
            if status.is_success() {
                return Ok(Probe {
                    status: status.as_u16(),
                    request,
                });
            }
            let error = line_error(ErrorKind::Http, status, String::new(), &headers, &body, 1);
            let mut message = error.message;
            if let Some(t) = error.tracking_id {
                message.push_str(&format!(" (tracking ID {t})"));
            }
            // A server may echo the `Authorization` header back.
            token.redact_in_place(&mut message);
            match status.as_u16() {
                403 => return Err(ProbeError::Forbidden { message }),
                408 | 423 | 429 | 500 | 502 | 503 | 504 => {
                    last = message;
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempts))).await;
                }
                _ => return Err(ProbeError::Other { message }),
            }
        }
        Err(ProbeError::Other {
            message: format!("{last} (after {PROBE_ATTEMPTS} attempts)"),
        })
    }
}
