//! `ptt-audit simulate`: the simulated Webex API as a standalone server.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ptt_audit::exit::Exit;
use ptt_audit::simulator::{self, FailingPage, Faults, ListQuirks, OAuthConfig, SimConfig};

/// `ptt-audit simulate`: a simulated Webex API on your machine, for trying ptt-audit
/// without a Webex account.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// How many synthetic virtual lines to serve.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub lines: usize,

    /// Seed for the synthetic data and the injected faults; the same seed gives the
    /// same lines, IDs and faults.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Address to listen on; port 0 picks a free port. The base URL is printed as the
    /// first line of output.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Write the IDs of the simulated lines to FILE, one per line (ready for
    /// `ptt-audit audit --lines FILE`). Written before the base URL is printed.
    #[arg(long, value_name = "FILE")]
    pub ids_out: Option<PathBuf>,

    /// Answer 429 with Retry-After when more than RPS requests a second arrive
    /// (token bucket over all requests). Default: no limit.
    #[arg(long, value_name = "RPS", value_parser = parse_positive_rate)]
    pub rate_limit: Option<f64>,

    /// How many requests may arrive at once before the rate limit applies
    /// [default: the rate, at least 1].
    #[arg(long, value_name = "N", requires = "rate_limit", value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: Option<u32>,

    /// Inject faults: comma-separated KIND=PROBABILITY with KIND one of 5xx, timeout,
    /// reset, malformed (per request, transient: retries succeed) and 404 (per line,
    /// permanent); oversized, echo and wrongtype play a hostile server (transient).
    /// Example: 5xx=0.02,timeout=0.01,reset=0.005,malformed=0.005,404=0.01
    #[arg(long, value_name = "SPEC", default_value = "none")]
    pub faults: Faults,

    /// Change the rate limit during the run: from AFTER since the start, allow RPS
    /// requests a second (e.g. `30s=5`; a fresh, full bucket). Repeatable.
    #[arg(long, value_name = "AFTER=RPS", value_parser = parse_rate_change)]
    pub rate_limit_change: Vec<(Duration, f64)>,

    /// How long every answer takes (e.g. 250ms; a real API takes a few hundred ms).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,

    /// How long a `timeout` fault stalls before answering (e.g. 60s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub slow_delay: Duration,

    /// Require this bearer token (default: accept any non-empty one). It is a made-up
    /// token for the simulator only, which is why it may be given as a flag; never
    /// pass a real Webex token here.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Act as organisation ORG: requests with another orgId get 403, requests
    /// without one are accepted.
    #[arg(long, value_name = "ORG")]
    pub org_id: Option<String>,

    /// List endpoint: at most N lines a page, whatever `max` asks (the real API may
    /// answer fewer than asked; the last page is the one without a next link).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "List endpoint quirks")]
    pub page_limit: Option<u64>,

    /// List endpoint: next links point at ORIGIN (e.g. http://127.0.0.1:9) instead of
    /// this server, as a hostile or misconfigured proxy would.
    #[arg(long, value_name = "ORIGIN", help_heading = "List endpoint quirks")]
    pub next_origin: Option<String>,

    /// List endpoint: next links leave out orgId, as the real API sometimes does.
    #[arg(long, help_heading = "List endpoint quirks")]
    pub next_drops_org: bool,

    /// List endpoint: page K answers 503, for good (K) or N times (K:N).
    #[arg(long, value_name = "K[:N]", help_heading = "List endpoint quirks")]
    pub fail_page: Option<FailingPage>,

    /// Serve a token endpoint (`POST /v1/access_token`) that accepts this refresh
    /// token, for trying `--credentials`. Then only the access tokens it hands out (and
    /// `--token`) are accepted. Made up, like `--token`.
    #[arg(long, value_name = "TOKEN", help_heading = "Token endpoint")]
    pub refresh_token: Option<String>,

    /// The client ID the token endpoint accepts.
    #[arg(
        long,
        value_name = "ID",
        requires = "refresh_token",
        help_heading = "Token endpoint"
    )]
    pub client_id: Option<String>,

    /// The client secret the token endpoint accepts (made up).
    #[arg(
        long,
        value_name = "SECRET",
        requires = "refresh_token",
        help_heading = "Token endpoint"
    )]
    pub client_secret: Option<String>,

    /// How long an access token lasts (its `expires_in`) [default: 14 days].
    #[arg(long, value_name = "DURATION", requires = "refresh_token", value_parser = parse_lifetime, help_heading = "Token endpoint")]
    pub access_token_lifetime: Option<Duration>,

    /// How many requests an access token may make before it answers 401 (a refresh
    /// mid-run on demand) [default: no limit].
    #[arg(long, value_name = "N", requires = "refresh_token", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Token endpoint")]
    pub access_token_requests: Option<u64>,

    /// How long a refresh token lasts [default: 90 days].
    #[arg(long, value_name = "DURATION", requires = "refresh_token", value_parser = parse_lifetime, help_heading = "Token endpoint")]
    pub refresh_token_lifetime: Option<Duration>,

    /// Hand out a new refresh token on every refresh (the one sent stays valid until
    /// the new one is first used).
    #[arg(long, requires = "refresh_token", help_heading = "Token endpoint")]
    pub rotate_refresh_tokens: bool,
}

fn parse_lifetime(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d >= Duration::from_secs(1) => Ok(d),
        Ok(_) => Err("a token lifetime is at least 1s".into()),
        Err(e) => Err(format!("`{s}` is not a duration ({e}); try 1h or 14days")),
    }
}

fn parse_positive_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a positive number of requests per second"
        )),
    }
}

fn parse_rate_change(s: &str) -> Result<(Duration, f64), String> {
    let (after, rate) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not AFTER=RPS, e.g. 30s=5"))?;
    let after = humantime::parse_duration(after.trim())
        .map_err(|e| format!("`{after}` is not a duration ({e}), e.g. 30s"))?;
    Ok((after, parse_positive_rate(rate)?))
}

impl SimulateArgs {
    /// Splits the flags into the simulator's configuration, the listen address and
    /// the IDs file.
    pub fn into_config(self) -> (SimConfig, SocketAddr, Option<PathBuf>) {
        let defaults = OAuthConfig::default();
        let oauth = self.refresh_token.map(|refresh_token| OAuthConfig {
            client_id: self.client_id.unwrap_or(defaults.client_id),
            client_secret: self.client_secret.unwrap_or(defaults.client_secret),
            refresh_token,
            access_token: None,
            access_token_lifetime: self
                .access_token_lifetime
                .unwrap_or(defaults.access_token_lifetime),
            access_token_requests: self.access_token_requests,
            refresh_token_lifetime: self
                .refresh_token_lifetime
                .unwrap_or(defaults.refresh_token_lifetime),
            rotate: self.rotate_refresh_tokens,
        });
        let config = SimConfig {
            lines: self.lines,
            seed: self.seed,
            token: self.token,
            oauth,
            org_id: self.org_id,
            rate_limit: self.rate_limit,
            burst: self.burst,
            faults: self.faults,
            throttle_windows: Vec::new(),
            slow_delay: self.slow_delay,
            record_arrivals: false,
            listing: ListQuirks {
                page_limit: self
                    .page_limit
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                next_origin: self.next_origin,
                next_drops_org: self.next_drops_org,
                failing_page: self.fail_page,
            },
            rate_limit_changes: self.rate_limit_change,
            latency: self.latency,
        };
        (config, self.listen, self.ids_out)
    }
}

/// `ptt-audit simulate`: starts the simulator, writes the IDs file (if asked), prints
/// the base URL as the first line of stdout, serves until Ctrl-C, then prints what
/// it answered.
pub async fn run(args: SimulateArgs) -> anyhow::Result<Exit> {
    let (config, listen, ids_out) = args.into_config();
    let description = config.describe();
    // Handlers are in place before the URL is printed: a script that reads the URL
    // and interrupts at once must not kill the process before it prints its stats.
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        )
    };
    let sim = simulator::start(config, listen).await?;
    if let Some(path) = ids_out {
        // The IDs file must be complete before the URL appears: scripts wait for the
        // URL and then read the file.
        let ids = Arc::clone(&sim.ids);
        tokio::task::spawn_blocking(move || write_ids(&path, &ids))
            .await
            .context("cannot write the IDs file")??;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", sim.base_url)?;
        out.flush()?;
    }
    if !sim.addr.ip().is_loopback() {
        // Like every write to stderr or stdout: a closed stream must not panic.
        let _ = writeln!(
            std::io::stderr(),
            "warning: listening on {}, reachable from other machines",
            sim.addr
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "ptt-audit simulate: serving {description} at {}; press Ctrl-C to stop",
        sim.base_url
    );
    #[cfg(unix)]
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    let stats = sim.stats();
    sim.shutdown().await;
    let _ = writeln!(std::io::stdout(), "{stats}");
    Ok(Exit::Ok)
}

/// Writes `ids`, one per line, to `path` all at once: the file is filled under a
/// fresh unique name beside `path` and renamed onto it, so a reader never sees half a
/// list, and a failure leaves no stray file behind.
fn write_ids(path: &Path, ids: &[String]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = tempfile::Builder::new();
    // An ordinary output file, readable as the umask allows (as before), rather than
    // the owner-only mode tempfile gives its files.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut file = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mut text = ids.join("\n");
    text.push('\n');
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulate_args_map_onto_the_config() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: SimulateArgs,
        }
        let cli = Cli::try_parse_from([
            "simulate",
            "--lines",
            "7",
            "--seed",
            "9",
            "--rate-limit",
            "2.5",
            "--faults",
            "5xx=0.1,404=0.2",
            "--token",
            "fake",
            "--org-id",
            "ORG",
            "--ids-out",
            "ids.txt",
            "--page-limit",
            "7",
            "--next-drops-org",
            "--fail-page",
            "3:2",
            "--next-origin",
            "http://127.0.0.1:9",
            "--latency",
            "250ms",
            "--rate-limit-change",
            "30s=5",
            "--rate-limit-change",
            "1m=50",
        ])
        .unwrap();
        let (config, listen, ids_out) = cli.args.into_config();
        assert_eq!((config.lines, config.seed), (7, 9));
        assert_eq!(config.rate_limit, Some(2.5));
        assert_eq!(config.faults.not_found, 0.2);
        assert_eq!(config.token.as_deref(), Some("fake"));
        assert_eq!(config.org_id.as_deref(), Some("ORG"));
        assert_eq!(listen, "127.0.0.1:0".parse::<SocketAddr>().unwrap());
        assert_eq!(ids_out, Some("ids.txt".into()));
        assert_eq!(
            config.listing,
            ListQuirks {
                page_limit: Some(7),
                next_origin: Some("http://127.0.0.1:9".into()),
                next_drops_org: true,
                failing_page: Some(FailingPage {
                    page: 3,
                    times: Some(2)
                }),
            }
        );
        assert_eq!(config.latency, Duration::from_millis(250));
        assert_eq!(
            config.rate_limit_changes,
            [
                (Duration::from_secs(30), 5.0),
                (Duration::from_secs(60), 50.0)
            ]
        );
        let defaults = Cli::try_parse_from(["simulate"])
            .unwrap()
            .args
            .into_config()
            .0;
        assert_eq!((defaults.lines, defaults.seed), (200, 1));
        assert_eq!(defaults.faults, Faults::NONE);
        assert_eq!(defaults.listing, ListQuirks::default());
        assert!(Cli::try_parse_from(["simulate", "--fail-page", "0"]).is_err());
        assert!(Cli::try_parse_from(["simulate", "--fail-page", "2:x"]).is_err());
        assert!(Cli::try_parse_from(["simulate", "--page-limit", "0"]).is_err());
        assert!(defaults.oauth.is_none());
        let oauth = Cli::try_parse_from([
            "simulate",
            "--refresh-token",
            "rt",
            "--access-token-requests",
            "50",
            "--access-token-lifetime",
            "20m",
            "--rotate-refresh-tokens",
        ])
        .unwrap()
        .args
        .into_config()
        .0
        .oauth
        .expect("a token endpoint");
        assert_eq!(oauth.refresh_token, "rt");
        assert_eq!(oauth.client_id, OAuthConfig::default().client_id);
        assert_eq!(oauth.access_token_requests, Some(50));
        assert_eq!(oauth.access_token_lifetime, Duration::from_secs(1200));
        assert!(oauth.rotate);
        assert!(
            Cli::try_parse_from(["simulate", "--rotate-refresh-tokens"]).is_err(),
            "token endpoint flags need --refresh-token"
        );
        assert_eq!(defaults.latency, Duration::ZERO);
        assert!(Cli::try_parse_from(["simulate", "--faults", "oops=1"]).is_err());
        assert!(Cli::try_parse_from(["simulate", "--rate-limit", "0"]).is_err());
        for bad in ["30s", "soon=5", "30s=0"] {
            let argv = ["simulate", "--rate-limit-change", bad];
            assert!(Cli::try_parse_from(argv).is_err(), "{bad}");
        }
        assert!(
            Cli::try_parse_from(["simulate", "--burst", "3"]).is_err(),
            "burst needs a rate"
        );
    }
}
