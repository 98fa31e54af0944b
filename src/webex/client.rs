//! Reading one line's Push-to-Talk settings, with every retry rule applied here.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use thiserror::Error;
use url::Url;

use super::pace::Pacer;
use super::retry::{classify, parse_retry_after, transient_backoff, Verdict, THROTTLE_BUDGET};
use super::stop::{Stop, StopReason};
use super::token::Token;
use crate::model::{ErrorKind, LineError};

/// The real API.
pub const DEFAULT_BASE_URL: &str = "https://webexapis.com/v1";

/// Prefix of the `TrackingID` header this tool sends, so support can find its requests.
pub const TRACKING_PREFIX: &str = "PTTAUDIT";

/// Everything but RFC 3986 unreserved characters is escaped, so an ID is always
/// exactly one path segment (`/`, `?`, `#`, `%` included).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Configuration problems found before any request (exit 2).
#[derive(Debug, Error)]
pub enum ClientError {
    /// The base URL does not parse or is not http(s).
    #[error("invalid base URL `{url}`: {reason}")]
    BadBaseUrl {
        /// As given.
        url: String,
        /// Why.
        reason: String,
    },
    /// reqwest could not build its client (TLS set-up).
    #[error("cannot set up the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// Checks a base URL: `https://`, or `http://` on a loopback host only, because a
/// plain-HTTP request anywhere else would send the token in clear.
pub fn parse_base_url(raw: &str) -> Result<Url, ClientError> {
    let bad = |reason: &str| ClientError::BadBaseUrl {
        url: raw.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if !loopback {
                return Err(bad(
                    "http:// is only allowed for loopback hosts (localhost, 127.0.0.0/8, [::1]); use https://",
                ));
            }
        }
        other => return Err(bad(&format!("unsupported scheme `{other}`"))),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(url)
}

/// How the client talks to the API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, already checked by [`parse_base_url`].
    pub base_url: Url,
    /// Sent as `orgId` on every request.
    pub org_id: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries per line after the first attempt (429s excepted).
    pub max_retries: u32,
    /// Requests per second for the whole run; `None` = no ceiling.
    pub rate: Option<f64>,
}

/// A line's settings as read.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The JSON object the API returned.
    pub settings: serde_json::Value,
    /// When the answer arrived.
    pub read_at: DateTime<Utc>,
    /// Requests sent for this line.
    pub attempts: u32,
}

/// The API client for one run: one connection pool, one pacer, one stop signal.
#[derive(Debug, Clone)]
pub struct WebexClient {
    http: reqwest::Client,
    lines_url: Arc<str>,
    org_query: Option<Arc<str>>,
    max_retries: u32,
    pacer: Arc<Pacer>,
    stop: Stop,
}

/// What one attempt produced, before the retry decision.
enum Attempt {
    Answer {
        status: reqwest::StatusCode,
        headers: HeaderMap,
        body: bytes::Bytes,
    },
    Failed {
        kind: ErrorKind,
        message: String,
    },
}

impl WebexClient {
    /// Builds the client. `stop` is shared with whoever else may stop the run.
    pub fn new(config: &ClientConfig, token: &Token, stop: Stop) -> Result<Self, ClientError> {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, token.bearer_header());
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("ptt-audit/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(64)
            .build()?;
        let base = config.base_url.as_str().trim_end_matches('/');
        let org_query = config.org_id.as_ref().map(|org| {
            let enc: String = url::form_urlencoded::byte_serialize(org.as_bytes()).collect();
            Arc::from(format!("?orgId={enc}"))
        });
        Ok(WebexClient {
            http,
            lines_url: Arc::from(format!("{base}/telephony/config/virtualLines/")),
            org_query,
            max_retries: config.max_retries,
            pacer: Arc::new(Pacer::new(config.rate)),
            stop,
        })
    }

    /// The pacer shared by every request of this client.
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// The URL that reads `id`'s settings (the ID as one encoded path segment).
    pub fn ptt_url(&self, id: &str) -> String {
        let mut url = String::with_capacity(self.lines_url.len() + id.len() + 64);
        url.push_str(&self.lines_url);
        url.extend(utf8_percent_encode(id, SEGMENT));
        url.push_str("/pushToTalk");
        if let Some(q) = &self.org_query {
            url.push_str(q);
        }
        url
    }

    /// Reads one line's Push-to-Talk settings, retrying per the contract. Returns the
    /// reason it could not, with status, API message, tracking ID and attempts.
    pub async fn read_ptt(&self, id: &str) -> Result<Fetched, LineError> {
        let url = self.ptt_url(id);
        let mut attempts = 0u32;
        let mut retries = 0u32;
        let mut throttled = 0u32;
        loop {
            let not_audited = |attempts, last: Option<LineError>| {
                let mut e = LineError::unrequested(
                    ErrorKind::NotAudited,
                    match self.stop.reason() {
                        Some(StopReason::Unauthorized) => {
                            "not read: the run stopped after the API refused the token (401)"
                        }
                        _ => "not read: the run was interrupted",
                    },
                );
                e.attempts = attempts;
                if let Some(last) = last {
                    e.message = format!("{}; last error: {}", e.message, last.message);
                }
                e
            };
            tokio::select! {
                biased;
                _ = self.stop.stopped() => return Err(not_audited(attempts, None)),
                _ = self.pacer.acquire() => {}
            }
            attempts += 1;
            let attempt = tokio::select! {
                biased;
                _ = self.stop.stopped() => return Err(not_audited(attempts, None)),
                a = self.send(&url) => a,
            };
            let (error, wait) = match attempt {
                Attempt::Answer {
                    status,
                    headers,
                    body,
                } => {
                    let api_error = |kind, detail| {
                        line_error(kind, Some(status), detail, &headers, &body, attempts)
                    };
                    let verdict = classify(status);
                    if verdict != Verdict::Throttled {
                        self.pacer.answered();
                    }
                    let retry_after = headers
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    match verdict {
                        Verdict::Success => match decode(&body) {
                            Ok(settings) => {
                                return Ok(Fetched {
                                    settings,
                                    read_at: Utc::now(),
                                    attempts,
                                })
                            }
                            // A truncated or garbled 200 is retried like a transient
                            // failure: a GET is safe to repeat.
                            Err(message) => (api_error(ErrorKind::Decode, message), None),
                        },
                        Verdict::Throttled => {
                            throttled += 1;
                            // Every line waits out this answer's pause, even when this
                            // line gives up.
                            self.pacer.throttled(retry_after);
                            if throttled > THROTTLE_BUDGET {
                                return Err(api_error(ErrorKind::Http, String::new()));
                            }
                            // The pacer holds every request until the pause ends.
                            continue;
                        }
                        Verdict::Unauthorized => {
                            self.stop.trigger(StopReason::Unauthorized);
                            let mut e = api_error(ErrorKind::Auth, String::new());
                            e.message = format!(
                                "the API refused the token (401): it is missing, wrong or expired; {}",
                                e.message
                            );
                            return Err(e);
                        }
                        Verdict::Transient => {
                            if let Some(d) = retry_after {
                                self.pacer.pause_for(d);
                            }
                            (
                                api_error(ErrorKind::Http, String::new()),
                                retry_after.map(|_| Duration::ZERO),
                            )
                        }
                        Verdict::Permanent => {
                            return Err(api_error(ErrorKind::Http, String::new()))
                        }
                    }
                }
                Attempt::Failed { kind, message } => (
                    LineError {
                        kind,
                        http_status: None,
                        message,
                        tracking_id: None,
                        attempts,
                    },
                    None,
                ),
            };
            if retries >= self.max_retries {
                return Err(error);
            }
            retries += 1;
            let wait = wait.unwrap_or_else(|| transient_backoff(retries));
            tracing::debug!(
                line = id,
                attempt = attempts,
                kind = error.kind.as_str(),
                wait_ms = wait.as_millis() as u64,
                "retrying: {}",
                error.message
            );
            tokio::select! {
                biased;
                _ = self.stop.stopped() => return Err(not_audited(attempts, Some(error))),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn send(&self, url: &str) -> Attempt {
        // A version-4 UUID from the thread's RNG: `Uuid::new_v4` asks the kernel for
        // fresh randomness on every call, a system call per request.
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let tracking = format!("{TRACKING_PREFIX}_{id}");
        let result = self
            .http
            .get(url)
            .header("TrackingID", tracking)
            .send()
            .await;
        let response = match result {
            Ok(r) => r,
            Err(e) => return failed(&e),
        };
        let status = response.status();
        let headers = response.headers().clone();
        match response.bytes().await {
            Ok(body) => Attempt::Answer {
                status,
                headers,
                body,
            },
            Err(e) => failed(&e),
        }
    }
}

fn failed(e: &reqwest::Error) -> Attempt {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Network
    };
    // reqwest's Display names the URL (which holds no secret) and the cause chain.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Attempt::Failed { kind, message }
}

/// Fields the API marks required in a PTT settings answer. A 200 without them is not
/// the line's settings (a proxy's page, an error body, an API change) and must not be
/// evaluated: rules that only look at `members` would pass it.
pub const REQUIRED_FIELDS: [&str; 3] = ["allowAutoAnswer", "connectionType", "accessType"];

fn decode(body: &[u8]) -> Result<serde_json::Value, String> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => {
            let missing: Vec<&str> = REQUIRED_FIELDS
                .into_iter()
                .filter(|f| map.get(*f).is_none_or(serde_json::Value::is_null))
                .collect();
            if missing.is_empty() {
                Ok(serde_json::Value::Object(map))
            } else {
                Err(format!(
                    "the answer is not PTT settings: required field(s) {} missing",
                    missing.join(", ")
                ))
            }
        }
        Ok(other) => Err(format!(
            "expected a JSON object, got {}",
            match other {
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::Null => "null",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Number(_) => "a number",
                _ => "a boolean",
            }
        )),
        Err(e) => Err(format!("response body is not valid JSON: {e}")),
    }
}

/// Builds the error for an HTTP answer, with the API's `message` and tracking ID.
fn line_error(
    kind: ErrorKind,
    status: Option<reqwest::StatusCode>,
    detail: String,
    headers: &HeaderMap,
    body: &[u8],
    attempts: u32,
) -> LineError {
    #[derive(serde::Deserialize)]
    struct ApiError {
        message: Option<String>,
        #[serde(rename = "trackingId")]
        tracking_id: Option<String>,
        errors: Option<Vec<ApiErrorItem>>,
    }
    #[derive(serde::Deserialize)]
    struct ApiErrorItem {
        description: Option<String>,
    }
    let api: Option<ApiError> = serde_json::from_slice(body).ok();
    let header_tracking = headers
        .get("trackingid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let api_message = api.as_ref().and_then(|a| {
        a.message.clone().or_else(|| {
            a.errors
                .as_ref()
                .and_then(|e| e.iter().find_map(|i| i.description.clone()))
        })
    });
    let mut message = match status {
        Some(s) => format!("HTTP {} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
            .trim_end()
            .to_string(),
        None => String::new(),
    };
    for part in [api_message, Some(detail)].into_iter().flatten() {
        if !part.is_empty() {
            message.push_str(": ");
            message.push_str(&part);
        }
    }
    LineError {
        kind,
        http_status: status.map(|s| s.as_u16()),
        message,
        tracking_id: api.and_then(|a| a.tracking_id).or(header_tracking),
        attempts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_rules() {
        assert!(parse_base_url("https://webexapis.com/v1").is_ok());
        assert!(parse_base_url("http://127.0.0.1:8080/v1").is_ok());
        assert!(parse_base_url("http://127.9.9.9/v1").is_ok());
        assert!(parse_base_url("http://localhost:1/v1").is_ok());
        assert!(parse_base_url("http://[::1]:1/v1").is_ok());
        let err = parse_base_url("http://example.com/v1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("loopback"), "{err}");
        assert!(parse_base_url("http://10.0.0.1/v1").is_err());
        assert!(parse_base_url("ftp://x/v1").is_err());
        assert!(parse_base_url("not a url").is_err());
    }

    #[test]
    fn ids_are_one_encoded_segment_and_org_id_is_sent() {
        let config = ClientConfig {
            base_url: parse_base_url("https://webexapis.com/v1/").unwrap(),
            org_id: Some("org/1 &x".into()),
            timeout: Duration::from_secs(1),
            max_retries: 0,
            rate: None,
        };
        let token = Token::new("t", "test").unwrap();
        let c = WebexClient::new(&config, &token, Stop::default()).unwrap();
        assert_eq!(
            c.ptt_url("a/b?c#d%e é"),
            "https://webexapis.com/v1/telephony/config/virtualLines/a%2Fb%3Fc%23d%25e%20%C3%A9/pushToTalk?orgId=org%2F1+%26x"
        );
    }

    #[test]
    fn api_error_fields_are_kept() {
        let mut headers = HeaderMap::new();
        headers.insert("TrackingID", HeaderValue::from_static("HDR_1"));
        let body =
            br#"{"message":"Line not found","errors":[{"description":"x"}],"trackingId":"BODY_1"}"#;
        let e = line_error(
            ErrorKind::Http,
            Some(reqwest::StatusCode::NOT_FOUND),
            String::new(),
            &headers,
            body,
            1,
        );
        assert_eq!(e.tracking_id.as_deref(), Some("BODY_1"));
        assert_eq!(e.message, "HTTP 404 Not Found: Line not found");
        let e = line_error(
            ErrorKind::Http,
            Some(reqwest::StatusCode::FORBIDDEN),
            String::new(),
            &headers,
            b"",
            2,
        );
        assert_eq!(e.tracking_id.as_deref(), Some("HDR_1"));
        assert_eq!(e.http_status, Some(403));
        assert_eq!(e.attempts, 2);
    }
}
