//! Reading one line's Push-to-Talk settings: requests, paced and stoppable. What each
//! answer means (the retry rules) is decided in `decide.rs`.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use thiserror::Error;
use tokio::time::Instant;
use url::Url;

use super::answer::decode;
use super::decide::{
    backoff, decide_as, not_audited, Attempt, ForLine, ForRun, Liveness, Tries, Wait,
};
use super::pace::Pacer;
use super::source::TokenSource;
use super::stop::{Stop, StopReason};
use super::token::Token;
use crate::model::{ErrorKind, LineError};
use crate::settings::Rate;

/// The real API.
pub const DEFAULT_BASE_URL: &str = "https://webexapis.com/v1";

/// Prefix of the `TrackingID` header this tool sends, so support can find its requests.
pub(crate) const TRACKING_PREFIX: &str = "PTTAUDIT";

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
/// plain-HTTP request anywhere else would send the token in clear; no user name or
/// password in it (they would be sent to the server and shown in reports).
pub fn parse_base_url(raw: &str) -> Result<Url, ClientError> {
    let bad = |reason: &str| ClientError::BadBaseUrl {
        url: hide_userinfo(raw),
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
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not contain a user name or password; the API token goes in --token-file \
             or WEBEX_TOKEN",
        ));
    }
    Ok(url)
}

/// `raw` with whatever stands before an `@` in its authority replaced by `***`, so an
/// error about a URL never shows a password, even one that does not parse.
fn hide_userinfo(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let rest = &raw[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{}***{}", &raw[..start], &rest[at..]),
        None => raw.to_string(),
    }
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
    /// The pace of the whole run: fixed, off, or `auto` (slow start up to a maximum).
    pub rate: Rate,
    /// Largest answer body read, in bytes; a larger one is a `decode` error.
    pub max_body: u64,
    /// The run stops when no answer has been a 2xx for this long.
    pub max_stall: Duration,
}

/// A line's settings as read.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The JSON object the API returned.
    pub settings: serde_json::Value,
    /// When the answer arrived.
    pub(crate) read_at: DateTime<Utc>,
    /// Requests sent for this line.
    pub attempts: u32,
    /// Bytes of the body the settings were decoded from.
    pub(crate) body_bytes: usize,
}

/// The API client for one run: one connection pool, one pacer, one stop signal, one
/// token source (every request takes its token from it: the token may be refreshed).
#[derive(Debug, Clone)]
pub struct WebexClient {
    pub(super) http: reqwest::Client,
    /// `…/telephony/config/virtualLines/` with `?orgId=…` when given, parsed once: each
    /// line's URL is a copy with its path set, which spares a whole parse per request.
    pub(super) lines_base: Arc<Url>,
    max_retries: u32,
    max_body: u64,
    pacer: Arc<Pacer>,
    liveness: Arc<Mutex<Liveness>>,
    stop: Stop,
    /// Every request takes its token from it; also used to redact the token sent
    /// from what answers say.
    pub(super) token: TokenSource,
}

impl WebexClient {
    /// Builds the client. `stop` is shared with whoever else may stop the run.
    pub fn new(
        config: &ClientConfig,
        token: &TokenSource,
        stop: Stop,
    ) -> Result<Self, ClientError> {
        let mut headers = HeaderMap::new();
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
            // A redirect would hand the line another server's answer (and reqwest
            // would follow it with the token stripped, silently): never followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let base = config.base_url.as_str().trim_end_matches('/');
        let org_query = config.org_id.as_ref().map_or(String::new(), |org| {
            let enc: String = url::form_urlencoded::byte_serialize(org.as_bytes()).collect();
            format!("?orgId={enc}")
        });
        let lines_base = Url::parse(&format!("{base}/telephony/config/virtualLines/{org_query}"))
            .map_err(|e| ClientError::BadBaseUrl {
            url: hide_userinfo(base),
            reason: e.to_string(),
        })?;
        Ok(WebexClient {
            http,
            lines_base: Arc::new(lines_base),
            max_retries: config.max_retries,
            max_body: config.max_body,
            pacer: Arc::new(Pacer::new(config.rate)),
            liveness: Arc::new(Mutex::new(Liveness::new(Instant::now(), config.max_stall))),
            stop,
            token: token.clone(),
        })
    }

    /// Stops the run once no answer has been a 2xx for `--max-stall`; returns when it
    /// has, or when the run stops otherwise. Run it beside the lines for the whole run:
    /// lines waiting out a long pause or backoff cannot notice the stall themselves.
    pub(crate) async fn watch_stall(&self) {
        loop {
            let deadline = self.liveness().stall_deadline();
            tokio::select! {
                _ = self.stop.stopped() => return,
                () = tokio::time::sleep_until(deadline) => {}
            }
            if let Some(reason) = self.liveness().stalled(Instant::now()) {
                tracing::warn!("{}", reason.describe());
                self.stop.trigger(reason);
                return;
            }
        }
    }

    fn liveness(&self) -> std::sync::MutexGuard<'_, Liveness> {
        // Plain counters: consistent even after a panic elsewhere.
        self.liveness.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pacer shared by every request of this client.
    pub(crate) fn pacer(&self) -> &Arc<Pacer> {
        &self.pacer
    }

    /// The pace requests start at now, in requests per second (`None`: no limit). One
    /// atomic load: a progress display may read it on every redraw.
    pub fn current_rate(&self) -> Option<f64> {
        self.pacer.current_rate()
    }

    /// The URL that reads `id`'s settings (the ID as one encoded path segment).
    pub(crate) fn ptt_url(&self, id: &str) -> Url {
        let mut url = Url::clone(&self.lines_base);
        let mut path = String::with_capacity(url.path().len() + 3 * id.len() + 16);
        path.push_str(url.path());
        path.extend(utf8_percent_encode(id, SEGMENT));
        path.push_str("/pushToTalk");
        // Only the path is parsed again; every byte `SEGMENT` leaves alone is one the
        // path keeps as it is, so this is the URL a parse of the whole text gives.
        url.set_path(&path);
        url
    }

    /// Reads one line's Push-to-Talk settings, retrying per the contract. Returns the
    /// reason it could not, with status, API message, tracking ID and attempts.
    pub async fn read_ptt(&self, id: &str) -> Result<Fetched, LineError> {
        let (settings, attempts) = self
            .fetch(&self.ptt_url(id), id, |_, body| {
                decode(body).map(|value| Decoded {
                    value,
                    bytes: body.len(),
                })
            })
            .await?;
        Ok(Fetched {
            body_bytes: settings.bytes,
            settings: settings.value,
            read_at: Utc::now(),
            attempts,
        })
    }

    /// GETs `url` until `read` accepts a 2xx answer, or the rules say to give up;
    /// returns what `read` made of it and the requests sent. `what` names the line (or
    /// page) in debug logs.
    ///
    /// The rules live in `decide.rs`; this loop only sends, waits for the pacer, the
    /// backoff or the stop signal, and carries each decision out. Every endpoint goes
    /// through here, so reads and listing share the pacer, pauses, budgets and stop.
    pub(crate) async fn fetch<T: Redact>(
        &self,
        url: &Url,
        what: &str,
        read: impl Fn(&HeaderMap, &[u8]) -> Result<T, String>,
    ) -> Result<(T, u32), LineError> {
        let mut tries = Tries::new(self.max_retries);
        loop {
            if self.unless_stopped(self.pacer.acquire()).await.is_none() {
                return Err(self.not_audited(tries.attempts, None));
            }
            // Waits while the token is being refreshed; fails once the run has no token.
            let (generation, token) = match self.unless_stopped(self.token.current()).await {
                Some(Ok(current)) => current,
                None | Some(Err(_)) => return Err(self.not_audited(tries.attempts, None)),
            };
            tries.attempts += 1;
            let Some(attempt) = self.unless_stopped(self.send(url, &token)).await else {
                return Err(self.not_audited(tries.attempts, None));
            };
            let run_stop = self.liveness().record(&attempt, Instant::now());
            if let Some(reason) = run_stop {
                tracing::warn!("{}", reason.describe());
                self.stop.trigger(reason);
            }
            let mut decision = decide_as(&attempt, &mut tries, SystemTime::now(), &read);
            redact(&token, &mut decision.line, &attempt);
            if decision.run == ForRun::Unauthorized {
                self.pacer.answered();
                match self
                    .unless_stopped(self.token.renew_after_refusal(generation))
                    .await
                {
                    None => return Err(self.not_audited(tries.attempts, None)),
                    // Renewed: sent again with the new token, no retry spent.
                    Some(Ok(())) => continue,
                    Some(Err(failure)) => {
                        self.stop.trigger(StopReason::Unauthorized);
                        let ForLine::GiveUp(mut error) = decision.line else {
                            unreachable!("a 401 always gives the line up")
                        };
                        error.message = format!("{failure}; {}", error.message);
                        return Err(error);
                    }
                }
            }
            if matches!(attempt, Attempt::Answer { .. }) {
                self.token.accepted(generation);
            }
            self.tell_run(decision.run);
            let (error, wait) = match decision.line {
                ForLine::Done(value) => return Ok((value, tries.attempts)),
                ForLine::GiveUp(error) => return Err(error),
                // The pacer holds every request until the pause ends.
                ForLine::Resend => continue,
                ForLine::Retry { error, wait } => (error, wait),
            };
            let wait = match wait {
                Wait::Backoff { retry } => backoff(retry),
                Wait::RunPause => Duration::ZERO,
            };
            tracing::debug!(
                line = what,
                attempt = tries.attempts,
                kind = error.kind.as_str(),
                wait_ms = wait.as_millis() as u64,
                "retrying: {}",
                error.message
            );
            if self
                .unless_stopped(tokio::time::sleep(wait))
                .await
                .is_none()
            {
                return Err(self.not_audited(tries.attempts, Some(error)));
            }
        }
    }

    /// Runs `work` unless the run stops first. The stop signal is polled first, so
    /// nothing new starts once a 401 or a signal has stopped the run.
    async fn unless_stopped<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            _ = self.stop.stopped() => None,
            done = work => Some(done),
        }
    }

    fn not_audited(&self, attempts: u32, last: Option<LineError>) -> LineError {
        not_audited(self.stop.reason(), attempts, last)
    }

    /// What every line must learn from one answer: the pacer's counts and pauses, and
    /// a 401's stop.
    fn tell_run(&self, run: ForRun) {
        match run {
            ForRun::Nothing => {}
            ForRun::Answered { pause } => {
                self.pacer.answered();
                if let Some(pause) = pause {
                    self.pacer.pause_for(pause);
                }
            }
            // Every line waits out this answer's pause, even when this line gives up.
            ForRun::Throttled { retry_after } => {
                self.pacer.throttled(retry_after);
            }
            // Handled before: the token source decides whether the run stops.
            ForRun::Unauthorized => self.pacer.answered(),
        }
    }

    async fn send(&self, url: &Url, token: &Token) -> Attempt {
        // A version-4 UUID from the thread's RNG: `Uuid::new_v4` asks the kernel for
        // fresh randomness on every call, a system call per request.
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let tracking = format!("{TRACKING_PREFIX}_{id}");
        let result = self
            .http
            .get(url.clone())
            .header(AUTHORIZATION, token.bearer_header())
            .header("TrackingID", tracking)
            .send()
            .await;
        let mut response = match result {
            Ok(r) => r,
            Err(e) => return failed(&e),
        };
        let status = response.status();
        // Taken, not copied: the body is read from the response without them.
        let headers = std::mem::take(response.headers_mut());
        match read_capped(response, self.max_body).await {
            Ok(body) => Attempt::Answer {
                status,
                headers,
                too_large: body.is_none().then_some(self.max_body),
                body: body.unwrap_or_default(),
            },
            Err(e) => failed(&e),
        }
    }
}

/// Takes `token` (the one the request carried) out of whatever the answer put into the
/// line's settings or error (a server may echo the `Authorization` header back).
fn redact<T: Redact>(token: &Token, line: &mut ForLine<T>, attempt: &Attempt) {
    match line {
        ForLine::Done(value) => {
            let body = match attempt {
                Attempt::Answer { body, .. } => &body[..],
                Attempt::Failed { .. } => &[],
            };
            value.redact(token, body);
        }
        ForLine::Retry { error, .. } | ForLine::GiveUp(error) => {
            token.redact_in_place(&mut error.message);
            if let Some(t) = &mut error.tracking_id {
                token.redact_in_place(t);
            }
        }
        ForLine::Resend => {}
    }
}

/// A line's settings and the size of the body they were decoded from.
struct Decoded {
    value: serde_json::Value,
    bytes: usize,
}

/// What a 2xx answer was read into, with the token taken out of whatever it says.
pub(crate) trait Redact {
    /// Replaces every occurrence of `token` in what came from the server; `body` is
    /// the answer's body it was read from.
    fn redact(&mut self, token: &Token, body: &[u8]);
}

impl Redact for Decoded {
    fn redact(&mut self, token: &Token, body: &[u8]) {
        // Decoded from `body` alone: when its bytes cannot spell the token, no string
        // in it holds it, and the walk over every string (3.6% of the CPU per line)
        // is skipped.
        if token.may_be_in_json(body) {
            token.redact_json(&mut self.value);
        }
    }
}

/// Reads an answer's body as it streams in, up to `cap` bytes; `None` as soon as it is
/// larger (a `Content-Length` over the cap is refused before any of it is read), and
/// dropping the response then closes the connection. So neither an endless chunked
/// body nor a huge one is ever held whole.
async fn read_capped(
    mut response: reqwest::Response,
    cap: u64,
) -> Result<Option<bytes::Bytes>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > cap) {
        return Ok(None);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if (body.len() + chunk.len()) as u64 > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
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
    Attempt::Failed {
        kind,
        message,
        connect: e.is_connect(),
    }
}

#[cfg(test)]
mod tests;
