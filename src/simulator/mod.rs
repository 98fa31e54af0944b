//! A realistic stand-in for the Webex API, on 127.0.0.1, for `ptt-audit simulate`,
//! `ptt-audit demo`, the tests and the benchmark.
//!
//! It serves `GET /v1/telephony/config/virtualLines/{id}/pushToTalk` and the paginated
//! `GET /v1/telephony/config/virtualLines` over deterministic synthetic data
//! (see `data.rs`), with Webex's bearer auth, `orgId` checks, `TrackingID` headers,
//! Webex-shaped error bodies, an optional token-bucket rate limit answering 429 with
//! `Retry-After`, throttling windows, and injected faults ([`Faults`]).
//!
//! Every answer is pre-rendered at startup; a request costs a hash lookup, a few
//! atomics and a reference count, so the simulator keeps up with the client's own
//! benchmark on a small machine.

mod data;
mod faults;
mod limit;
mod list;
mod oauth;
mod server;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{Faults, FaultsParseError, MAX_FAULT_STREAK, OVERSIZED_BODY};
pub use oauth::OAuthConfig;
pub use stats::{SimStats, SimStatsSnapshot};

/// How a simulator behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How many synthetic virtual lines to serve.
    pub lines: usize,
    /// Seed of the synthetic data and of the fault draws: same seed, same answers.
    pub seed: u64,
    /// The bearer token required; `None` accepts any non-empty bearer token (unless
    /// `oauth` is set: then only the tokens it hands out, and this one, are accepted).
    pub token: Option<String>,
    /// A token endpoint (`POST /v1/access_token`) that refreshes access tokens, which
    /// then expire by time or by use; `None`: no token endpoint.
    pub oauth: Option<OAuthConfig>,
    /// When set, a request with a different `orgId` gets 403 (a missing `orgId` is
    /// accepted, as Webex defaults to the token's own org).
    pub org_id: Option<String>,
    /// Token-bucket rate limit in requests per second over all requests; `None` = no
    /// limit. Excess requests get 429 with `Retry-After`.
    pub rate_limit: Option<f64>,
    /// Bucket capacity; `None` = `max(1, floor(rate_limit))`.
    pub burst: Option<u32>,
    /// Injected faults.
    pub faults: Faults,
    /// `(start after server start, length)`: during each window every request gets
    /// 429 with `Retry-After` = the whole seconds left in the window, at least 1.
    pub throttle_windows: Vec<(Duration, Duration)>,
    /// How long a `timeout` fault stalls before answering.
    pub slow_delay: Duration,
    /// Record when each request arrived, for [`RunningSimulator::arrivals`] (the
    /// benchmark checks the client's pacing with it). Off by default: the list grows
    /// by one entry per request.
    pub record_arrivals: bool,
    /// `(after server start, requests per second)`: from that moment on, the rate
    /// limit is that (a fresh, full bucket of `burst`, or `floor(rate)`), replacing
    /// `rate_limit` and any earlier change: a server whose limit changes during a run.
    pub rate_limit_changes: Vec<(Duration, f64)>,
    /// How long every answer takes (a real API answers in a few hundred ms); zero by
    /// default. The rate limit is checked when a request arrives, as a real gateway
    /// does.
    pub latency: Duration,
    /// How the list endpoint pages, and how it misbehaves.
    pub listing: ListQuirks,
}

/// How the list endpoint (`GET …/virtualLines`) pages, and the pagination troubles
/// the real API has shown, to be switched on one by one. None by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuirks {
    /// At most this many lines a page, whatever `max` asks: the API may answer fewer
    /// than `max`, and a client must not take a short page for the last.
    pub page_limit: Option<usize>,
    /// `next` links point at this origin (`http://127.0.0.1:PORT`) instead of the
    /// server's own: a client that follows them sends its token elsewhere.
    pub next_origin: Option<String>,
    /// `next` links leave out `orgId`, as the real API sometimes does.
    pub next_drops_org: bool,
    /// One page answers 503 for a while, or for good.
    pub failing_page: Option<FailingPage>,
}

/// A page of the listing that answers 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailingPage {
    /// Which page (1 = the first), counted in pages of the size asked for.
    pub page: usize,
    /// How many times it fails before it answers; `None` = every time.
    pub times: Option<u32>,
}

impl std::str::FromStr for FailingPage {
    type Err = String;

    /// `K` (page K always fails) or `K:N` (page K fails N times, then answers).
    fn from_str(s: &str) -> Result<FailingPage, String> {
        let bad = || {
            format!(
                "`{s}` is not a failing page: give K (page K always answers 503) or K:N (N times)"
            )
        };
        let (page, times) = match s.split_once(':') {
            Some((k, n)) => (k, Some(n.trim().parse::<u32>().map_err(|_| bad())?)),
            None => (s, None),
        };
        match page.trim().parse::<usize>() {
            Ok(page) if page >= 1 => Ok(FailingPage { page, times }),
            _ => Err(bad()),
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            lines: 200,
            seed: 1,
            token: None,
            oauth: None,
            org_id: None,
            rate_limit: None,
            burst: None,
            faults: Faults::NONE,
            throttle_windows: Vec::new(),
            slow_delay: Duration::from_secs(60),
            record_arrivals: false,
            listing: ListQuirks::default(),
            rate_limit_changes: Vec::new(),
            latency: Duration::ZERO,
        }
    }
}

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A setting is out of range.
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    /// The fault probabilities are invalid.
    #[error("invalid fault specification: {0}")]
    Faults(#[from] FaultsParseError),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS's reason.
        source: std::io::Error,
    },
}

/// A configured simulator with its synthetic data generated, not yet listening.
pub struct Simulator {
    config: SimConfig,
    data: data::Dataset,
    ids: Arc<Vec<String>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("config", &self.config)
            .field("lines", &self.ids.len())
            .finish()
    }
}

impl Simulator {
    /// Checks `config` and generates the synthetic lines.
    pub fn new(config: SimConfig) -> Result<Simulator, SimError> {
        config.faults.validate()?;
        let rates = config
            .rate_limit
            .iter()
            .chain(config.rate_limit_changes.iter().map(|c| &c.1));
        for &rate in rates {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(SimError::Config(format!(
                    "rate limit must be a positive number of requests per second, got {rate}"
                )));
            }
        }
        if config.burst == Some(0) {
            return Err(SimError::Config("burst must be at least 1".into()));
        }
        if config.token.as_deref().is_some_and(str::is_empty) {
            return Err(SimError::Config("token must not be empty".into()));
        }
        if config.listing.page_limit == Some(0) {
            return Err(SimError::Config("page limit must be at least 1".into()));
        }
        if let Some(origin) = &config.listing.next_origin {
            let ok = url::Url::parse(origin).is_ok_and(|u| u.has_host() && u.path() == "/");
            if !ok {
                return Err(SimError::Config(format!(
                    "next-link origin `{origin}` is not scheme://host[:port]"
                )));
            }
        }
        if let Some(oauth) = &config.oauth {
            let values = [&oauth.client_id, &oauth.client_secret, &oauth.refresh_token];
            if values.iter().any(|v| v.is_empty())
                || oauth.access_token.as_deref().is_some_and(str::is_empty)
            {
                return Err(SimError::Config(
                    "client ID, client secret and tokens must not be empty".into(),
                ));
            }
            if oauth.access_token_lifetime.is_zero() || oauth.refresh_token_lifetime.is_zero() {
                return Err(SimError::Config(
                    "token lifetimes must be above zero".into(),
                ));
            }
            if oauth.access_token_requests == Some(0) {
                return Err(SimError::Config(
                    "an access token must be good for at least one request".into(),
                ));
            }
        }
        let data = data::generate(config.lines, config.seed);
        let ids = Arc::new(data.lines.iter().map(|l| l.id.clone()).collect());
        Ok(Simulator { config, data, ids })
    }

    /// The IDs of every synthetic line, in list order (lines that a `404` fault makes
    /// permanently missing included).
    pub fn line_ids(&self) -> &[String] {
        &self.ids
    }

    /// The settings JSON line `id` answers with when no fault hits it.
    pub fn settings(&self, id: &str) -> Option<serde_json::Value> {
        let index = *self.data.index.get(id)?;
        let line = self.data.lines.get(index)?;
        // The body was serialised from a `Value` at startup: it always parses back.
        serde_json::from_slice(&line.body).ok()
    }

    /// The configuration this simulator was built from.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Binds `listen` (port 0 picks a free port) and serves until shut down.
    pub async fn start(self, listen: SocketAddr) -> Result<RunningSimulator, SimError> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: listen,
            source,
        })?;
        let Simulator { config, data, ids } = self;
        let started = Instant::now();
        let stats = Arc::new(SimStats::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let arrivals = config
            .record_arrivals
            .then(|| Arc::new(std::sync::Mutex::new(Vec::new())));
        let bucket = |rate: f64| {
            let capacity = config
                .burst
                .unwrap_or_else(|| rate.floor().clamp(1.0, f64::from(u32::MAX)) as u32);
            limit::RateLimit::new(rate, capacity)
        };
        let tokens = config
            .oauth
            .map(|oauth| Arc::new(oauth::Tokens::new(oauth, Duration::ZERO)));
        let clock = Arc::new(oauth::Clock::new(started));
        let mut limits: Vec<_> = config
            .rate_limit
            .map(|rate| (Duration::ZERO, bucket(rate)))
            .into_iter()
            .chain(
                config
                    .rate_limit_changes
                    .iter()
                    .map(|&(at, rate)| (at, bucket(rate))),
            )
            .collect();
        limits.sort_by_key(|(at, _)| *at);
        let shared = Arc::new(server::Shared {
            plan: faults::FaultPlan::new(config.faults, config.seed, data.lines.len()),
            data,
            token: config.token,
            tokens: tokens.clone(),
            clock: Arc::clone(&clock),
            org_id: config.org_id,
            limits,
            latency: config.latency,
            windows: config.throttle_windows,
            slow_delay: config.slow_delay,
            started,
            stats: Arc::clone(&stats),
            arrivals: arrivals.clone(),
            tracking: server::TrackingIds::new(config.seed),
            failing_page_failures: std::sync::atomic::AtomicU32::new(0),
            listing: config.listing,
            shutdown: stop_rx.clone(),
            authority: addr.to_string(),
        });
        let app = server::router(shared);
        let mut stop = stop_rx;
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
                // An error means the sender is gone: stop then too.
                let _ = stop.wait_for(|stopping| *stopping).await;
            });
            // accept errors are retried inside axum; the future only ends on shutdown.
            let _ = serving.await;
        });
        Ok(RunningSimulator {
            base_url: format!("http://{addr}/v1"),
            ids,
            addr,
            stats,
            arrivals,
            clock,
            tokens,
            stop: stop_tx,
            task: Some(task),
        })
    }
}

/// Generates the data for `config` and starts serving it on `listen`.
pub async fn start(config: SimConfig, listen: SocketAddr) -> Result<RunningSimulator, SimError> {
    Simulator::new(config)?.start(listen).await
}

/// A simulator serving in the background. Dropping it stops the server too, without
/// waiting; [`RunningSimulator::shutdown`] waits for it.
#[derive(Debug)]
pub struct RunningSimulator {
    /// `http://127.0.0.1:PORT/v1`, to pass as the client's base URL.
    pub base_url: String,
    /// The IDs of every synthetic line.
    pub ids: Arc<Vec<String>>,
    /// The address actually bound.
    pub addr: SocketAddr,
    stats: Arc<SimStats>,
    arrivals: Option<server::Arrivals>,
    clock: Arc<oauth::Clock>,
    tokens: Option<Arc<oauth::Tokens>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningSimulator {
    /// What the simulator has answered so far.
    pub fn stats(&self) -> SimStatsSnapshot {
        self.stats.snapshot()
    }

    /// When each request so far arrived, as time since the server started, in arrival
    /// order (every request counts, refused ones included). Empty unless
    /// [`SimConfig::record_arrivals`] was set.
    pub fn arrivals(&self) -> Vec<Duration> {
        match &self.arrivals {
            // A panic while holding the lock cannot leave the list inconsistent.
            Some(a) => a.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            None => Vec::new(),
        }
    }

    /// Moves the simulator's token clock forward by `by`: access and refresh tokens age
    /// as if that much time had passed (a night, a month), nothing else changes.
    pub fn advance_clock(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Every access and refresh token the token endpoint handed out so far, oldest
    /// first (empty without one): the secrets a test must find nowhere.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.tokens.as_ref().map(|t| t.issued()).unwrap_or_default()
    }

    /// Stops accepting, wakes stalled `timeout` answers, and waits (at most 5 s) for
    /// open connections to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl SimConfig {
    /// One line saying what a configuration simulates (no token value in it).
    pub fn describe(&self) -> String {
        let config = self;
        let mut s = format!("{} virtual lines (seed {})", config.lines, config.seed);
        s.push_str(match config.token {
            Some(_) => ", a fixed bearer token required",
            None => ", any bearer token accepted",
        });
        if let Some(oauth) = &config.oauth {
            s.push_str(&format!(
                ", a token endpoint (access tokens for {}{}{})",
                humantime::format_duration(oauth.access_token_lifetime),
                match oauth.access_token_requests {
                    Some(n) => format!(" or {n} requests"),
                    None => String::new(),
                },
                if oauth.rotate {
                    ", refresh tokens rotated"
                } else {
                    ""
                }
            ));
        }
        if let Some(org) = &config.org_id {
            s.push_str(&format!(", org {org}"));
        }
        let l = &config.listing;
        if let Some(n) = l.page_limit {
            s.push_str(&format!(", list pages of at most {n}"));
        }
        if let Some(origin) = &l.next_origin {
            s.push_str(&format!(", next links to {origin}"));
        }
        if l.next_drops_org {
            s.push_str(", next links without orgId");
        }
        if let Some(f) = l.failing_page {
            match f.times {
                Some(n) => s.push_str(&format!(", list page {} fails {n} time(s)", f.page)),
                None => s.push_str(&format!(", list page {} always fails", f.page)),
            }
        }
        match config.rate_limit {
            Some(rate) => s.push_str(&format!(", rate limit {rate}/s")),
            None => s.push_str(", no rate limit"),
        }
        for (at, rate) in &config.rate_limit_changes {
            s.push_str(&format!(
                ", {rate}/s after {}",
                humantime::format_duration(*at)
            ));
        }
        if !config.latency.is_zero() {
            s.push_str(&format!(
                ", {} per answer",
                humantime::format_duration(config.latency)
            ));
        }
        s.push_str(&format!(", faults: {}", config.faults));
        s
    }
}
