//! The HTTP side: routing, bearer auth, org checks, throttling, faults and the
//! Webex-shaped answers.
//!
//! One fallback handler routes by hand: it is cheaper than a router for two routes
//! and it lets every answer, including 404 and 405, carry a `TrackingID`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use tokio::sync::watch;

use super::data::Dataset;
use super::faults::{splitmix64, Fault, FaultPlan, OVERSIZED_BODY};
use super::limit::RateLimit;
use super::oauth::{Clock, Tokens};
use super::stats::SimStats;
use super::ListQuirks;

/// The path prefix of both endpoints (the base URL ends in `/v1`).
pub(super) const LINES_PATH: &str = "/v1/telephony/config/virtualLines";
/// The token endpoint (when `SimConfig::oauth` is set).
const TOKEN_PATH: &str = "/v1/access_token";

pub(super) const DEFAULT_MAX: usize = 100;
pub(super) const MAX_MAX: usize = 1000;

/// Everything the handler needs, shared by all connections.
pub(crate) struct Shared {
    pub data: Dataset,
    pub plan: FaultPlan,
    pub token: Option<String>,
    /// The token endpoint's tokens, when it has one.
    pub tokens: Option<Arc<Tokens>>,
    /// The clock tokens age by.
    pub clock: Arc<Clock>,
    pub org_id: Option<String>,
    /// Rate limits by start time since `started`, sorted: the last one started rules.
    pub limits: Vec<(Duration, RateLimit)>,
    /// Added to every answer.
    pub latency: Duration,
    pub windows: Vec<(Duration, Duration)>,
    pub slow_delay: Duration,
    pub started: Instant,
    pub stats: Arc<SimStats>,
    /// Arrival times since `started`, when recording was asked for.
    pub arrivals: Option<Arrivals>,
    pub tracking: TrackingIds,
    pub shutdown: watch::Receiver<bool>,
    /// `host:port` for `Link` URLs when a request has no `Host` header.
    pub authority: String,
    /// How the list endpoint pages and misbehaves.
    pub listing: ListQuirks,
    /// 503s the failing page has answered so far.
    pub failing_page_failures: AtomicU32,
}

/// Arrival times of every request, shared with the `RunningSimulator`.
pub(crate) type Arrivals = Arc<std::sync::Mutex<Vec<Duration>>>;

/// Builds the app: one handler for everything.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// `ROUTERGW_<uuid-shaped>` IDs from a per-server prefix and a counter.
pub(crate) struct TrackingIds {
    prefix: u64,
    counter: AtomicU64,
}

impl TrackingIds {
    /// IDs unique to this server instance (the prefix mixes in the wall clock).
    pub(crate) fn new(seed: u64) -> TrackingIds {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        TrackingIds {
            prefix: splitmix64(seed ^ clock),
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let c = self.counter.fetch_add(1, Ordering::Relaxed);
        let p = self.prefix;
        // SplitMix64 is a bijection, so distinct counters give distinct IDs that
        // still look random, like Webex's.
        let h = splitmix64(p ^ c);
        format!(
            "ROUTERGW_{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            p >> 32,
            (p >> 16) & 0xffff,
            p & 0xfff,
            0x8000 | ((h >> 48) & 0x3fff),
            h & 0xffff_ffff_ffff
        )
    }
}

/// Which endpoint a path names.
enum Route<'a> {
    List,
    Line(&'a str),
    Unknown,
}

fn route(path: &str) -> Route<'_> {
    let Some(rest) = path.strip_prefix(LINES_PATH) else {
        return Route::Unknown;
    };
    if rest.is_empty() || rest == "/" {
        return Route::List;
    }
    match rest
        .strip_prefix('/')
        .and_then(|r| r.strip_suffix("/pushToTalk"))
    {
        Some(seg) if !seg.is_empty() && !seg.contains('/') => Route::Line(seg),
        _ => Route::Unknown,
    }
}

/// The first value of query parameter `name`, decoded.
pub(super) fn query_param<'a>(
    query: Option<&'a str>,
    name: &str,
) -> Option<std::borrow::Cow<'a, str>> {
    let query = query?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

async fn handle(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let response = answer(&s, req).await;
    if !s.latency.is_zero() {
        let mut stop = s.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(s.latency) => {}
            _ = stop.wait_for(|stopping| *stopping) => {}
        }
    }
    response
}

async fn answer(s: &Shared, req: Request) -> Response {
    s.stats.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(arrivals) = &s.arrivals {
        let at = s.started.elapsed();
        arrivals.lock().unwrap_or_else(|e| e.into_inner()).push(at);
    }
    let tid = s.tracking.next();

    if req.uri().path() == TOKEN_PATH && s.tokens.is_some() {
        return s.token_endpoint(&tid, req).await;
    }
    if req.method() != Method::GET {
        return s.error(
            StatusCode::METHOD_NOT_ALLOWED,
            &tid,
            "The request method is not supported for this resource.",
            None,
        );
    }
    if !s.authorized(req.headers()) {
        return s.error(
            StatusCode::UNAUTHORIZED,
            &tid,
            "The request requires a valid access token set in the Authorization request header.",
            None,
        );
    }
    let now = Instant::now();
    if let Some(wait) = s.throttle_window(now) {
        return s.throttled(&tid, wait);
    }
    let elapsed = now.saturating_duration_since(s.started);
    let limit = s.limits.iter().rev().find(|(at, _)| *at <= elapsed);
    if let Some((_, limit)) = limit {
        if let Err(wait) = limit.check() {
            return s.throttled(&tid, wait);
        }
    }

    let uri = req.uri();
    let route = route(uri.path());
    if let Route::Unknown = route {
        return s.error(
            StatusCode::NOT_FOUND,
            &tid,
            "The requested resource could not be found.",
            None,
        );
    }
    let org = query_param(uri.query(), "orgId");
    if let Route::List = route {
        s.stats.list_requests.fetch_add(1, Ordering::Relaxed);
        if s.org_id.is_some() && org.is_none() {
            s.stats.list_without_org.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let (Some(want), Some(got)) = (&s.org_id, &org) {
        if want != got {
            return s.error(
                StatusCode::FORBIDDEN,
                &tid,
                "The user is not authorized to perform this action in the requested organization.",
                Some(4003),
            );
        }
    }
    match route {
        Route::Line(seg) => s.line(&tid, seg, req.headers()).await,
        Route::List => s.list(&tid, uri.query(), req.headers()),
        Route::Unknown => s.error(StatusCode::NOT_FOUND, &tid, "Not found.", None),
    }
}

impl Shared {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
        else {
            return false;
        };
        if self.token.as_deref() == Some(given) {
            return true;
        }
        match &self.tokens {
            Some(tokens) => tokens.accept(given, self.clock.now()),
            None => self.token.is_none() && !given.is_empty(),
        }
    }

    fn throttle_window(&self, now: Instant) -> Option<Duration> {
        if self.windows.is_empty() {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.started);
        self.windows
            .iter()
            .map(|(start, len)| (*start, start.saturating_add(*len)))
            .find(|(start, end)| elapsed >= *start && elapsed < *end)
            .map(|(_, end)| end - elapsed)
    }

    async fn line(&self, tid: &str, seg: &str, headers: &HeaderMap) -> Response {
        let index = percent_encoding::percent_decode_str(seg)
            .decode_utf8()
            .ok()
            .and_then(|id| self.data.index.get(id.as_ref()).copied());
        let Some(index) = index.filter(|i| !self.plan.is_not_found(*i)) else {
            return self.error(
                StatusCode::NOT_FOUND,
                tid,
                "[Error 4008] Virtual line not found.",
                Some(4008),
            );
        };
        let Some(line) = self.data.lines.get(index) else {
            return self.error(StatusCode::NOT_FOUND, tid, "Not found.", None);
        };
        match self.plan.next(index) {
            Fault::None => self.json(StatusCode::OK, tid, line.body.clone(), None),
            Fault::Status(code) => self.error(
                code,
                tid,
                match code.as_u16() {
                    500 => "Internal Server Error.",
                    502 => "Bad Gateway: the upstream service did not answer.",
                    503 => "Service Unavailable: please try again later.",
                    _ => "Gateway Timeout: the upstream service took too long.",
                },
                None,
            ),
            Fault::Timeout => {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                let mut stop = self.shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(self.slow_delay) => {}
                    _ = stop.wait_for(|stopping| *stopping) => {}
                }
                self.json(StatusCode::OK, tid, line.body.clone(), None)
            }
            Fault::Reset => {
                self.stats.resets.fetch_add(1, Ordering::Relaxed);
                reset_response()
            }
            Fault::Malformed => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                // A prefix of a JSON object never closes it, so it never parses.
                let cut = (line.body.len() / 2).max(1);
                self.json(StatusCode::OK, tid, line.body.slice(..cut), None)
            }
            Fault::Oversized => {
                self.stats.oversized.fetch_add(1, Ordering::Relaxed);
                self.json(StatusCode::OK, tid, oversized(&line.body), None)
            }
            Fault::Echo => {
                self.stats.echoed.fetch_add(1, Ordering::Relaxed);
                let given = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let message = format!("Bad Gateway: upstream refused the request with {given}");
                self.error(StatusCode::BAD_GATEWAY, tid, &message, None)
            }
            Fault::WrongType => {
                self.stats.wrong_type.fetch_add(1, Ordering::Relaxed);
                self.json(StatusCode::OK, tid, wrong_type(&line.body), None)
            }
        }
    }

    fn throttled(&self, tid: &str, wait: Duration) -> Response {
        // Whole seconds, rounded up, at least 1: a client that obeys it gets through.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let secs = secs.max(1);
        let n = self.stats.throttled.load(Ordering::Relaxed);
        // Webex sometimes sends a 429 with no body at all; alternate the two shapes.
        let mut resp = if n % 2 == 1 {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            self.stats.count_status(429);
            set_tracking(&mut r, tid);
            r
        } else {
            self.error(
                StatusCode::TOO_MANY_REQUESTS,
                tid,
                "Too many requests have been sent in a given amount of time.",
                None,
            )
        };
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        resp
    }

    /// A Webex-shaped error: `message`, `errors[].description`, `trackingId`.
    pub(super) fn error(
        &self,
        status: StatusCode,
        tid: &str,
        message: &str,
        code: Option<u32>,
    ) -> Response {
        let mut detail = serde_json::Map::new();
        detail.insert("description".into(), message.into());
        if let Some(code) = code {
            detail.insert("errorCode".into(), code.into());
        }
        let body = serde_json::json!({
            "message": message,
            "errors": [detail],
            "trackingId": tid,
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        self.json(status, tid, Bytes::from(bytes), None)
    }

    pub(super) fn json(
        &self,
        status: StatusCode,
        tid: &str,
        body: Bytes,
        link: Option<String>,
    ) -> Response {
        self.stats.count_status(status.as_u16());
        let mut r = Response::new(Body::from(body));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=UTF-8"),
        );
        if let Some(link) = link.and_then(|l| HeaderValue::try_from(l).ok()) {
            r.headers_mut().insert(header::LINK, link);
        }
        set_tracking(&mut r, tid);
        r
    }
}

/// The line's settings with a padding field that makes the body larger than the
/// client's default `--max-body`: still valid JSON, so only a size cap refuses it.
fn oversized(body: &Bytes) -> Bytes {
    let mut out = Vec::with_capacity(OVERSIZED_BODY + body.len() + 16);
    out.extend_from_slice(b"{\"padding\":\"");
    out.resize(out.len() + OVERSIZED_BODY, b'x');
    out.extend_from_slice(b"\",");
    out.extend_from_slice(body.get(1..).unwrap_or_default());
    Bytes::from(out)
}

/// The line's settings with `allowAutoAnswer` as a string: a documented field of the
/// wrong type, which a client must refuse rather than evaluate.
fn wrong_type(body: &Bytes) -> Bytes {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.clone();
    };
    if let Some(v) = value.get_mut("allowAutoAnswer") {
        *v = serde_json::Value::String(v.to_string());
    }
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

fn set_tracking(r: &mut Response, tid: &str) {
    if let Ok(v) = HeaderValue::from_str(tid) {
        r.headers_mut().insert("trackingid", v);
    }
}

/// The token of an `Authorization: Bearer …` value (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// An answer whose body fails before its first byte: hyper then drops the connection
/// without having written the status line, so the client sees a closed connection.
fn reset_response() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        ))
    });
    Response::new(Body::from_stream(failing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(
            route("/v1/telephony/config/virtualLines"),
            Route::List
        ));
        assert!(matches!(
            route("/v1/telephony/config/virtualLines/abc/pushToTalk"),
            Route::Line("abc")
        ));
        assert!(matches!(
            route("/v1/telephony/config/virtualLines//pushToTalk"),
            Route::Unknown
        ));
        assert!(matches!(
            route("/v1/telephony/config/virtualLines/a/b/pushToTalk"),
            Route::Unknown
        ));
        assert!(matches!(route("/v1/people"), Route::Unknown));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Basic abc"), None);
    }
}
