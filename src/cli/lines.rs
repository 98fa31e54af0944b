//! `ptt-audit lines`: the org's virtual lines as an inventory CSV
//! (`id,name,location_id,location_name,phone_number,extension`), which `audit --lines`
//! reads back as it is.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use ptt_audit::exit::{Exit, UsageError};
use ptt_audit::report::inventory::{AtomicOutput, InventoryWriter};
use ptt_audit::settings::{
    parse_size, ApiSettings, DiscoverySettings, Rate, DEFAULT_CONCURRENCY, DEFAULT_MAX_RETRIES,
    TOKEN_ENV,
};
use ptt_audit::webex::{parse_base_url, Stop, StopReason, DEFAULT_BASE_URL};

use super::audit::{parse_location_id, parse_max_stall, parse_timeout, token_source};
use super::ui::{listing_hint, Tone, Ui};

/// Everything `ptt-audit lines` takes.
#[derive(Debug, Clone, clap::Args)]
pub struct LinesArgs {
    /// Organization to list, sent as `orgId` (partner admins).
    #[arg(long, value_name = "ORG", env = "WEBEX_ORG_ID")]
    pub org_id: Option<String>,

    /// Only lines of this location (its ID). Repeatable.
    #[arg(long = "location-id", value_name = "ID", value_parser = parse_location_id)]
    pub location_id: Vec<String>,

    /// Where the CSV goes: a file (it appears complete or not at all), or `-` for
    /// stdout.
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub out: PathBuf,

    /// Requests per second, retries included; 0 turns the limiter off.
    #[arg(long, value_name = "N", default_value = "10", value_parser = Rate::parse)]
    pub rate: Rate,

    /// Per-request timeout (`30s`, `2m`).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Retries per page after the first attempt (408/423/5xx, timeouts, connection
    /// errors, garbled answers); 429s have their own, larger budget.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_RETRIES)]
    pub max_retries: u32,

    /// API base URL. `http://` only for loopback hosts.
    #[arg(long, value_name = "URL", env = "WEBEX_BASE_URL", default_value = DEFAULT_BASE_URL)]
    pub base_url: String,

    /// Largest answer body read, in bytes or with a unit (`8MiB`, `512KiB`); a larger
    /// page is a `decode` error.
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub max_body: u64,

    /// Stop listing when no answer has been a success (2xx) for this long.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_max_stall)]
    pub max_stall: Duration,

    /// File holding the API token (else the WEBEX_TOKEN environment variable).
    #[arg(long, value_name = "FILE", conflicts_with = "credentials")]
    pub token_file: Option<PathBuf>,

    /// Credentials of an integration or service app (TOML: client_id, client_secret,
    /// refresh_token; mode 600): the access token is refreshed when needed and the
    /// file rewritten with it.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
}

impl LinesArgs {
    /// The API settings and the listing asked for. `token_env` is `WEBEX_TOKEN`'s value.
    pub fn resolve(
        &self,
        token_env: Option<String>,
    ) -> Result<(ApiSettings, DiscoverySettings), UsageError> {
        let base_url = parse_base_url(&self.base_url)?;
        let token = token_source(
            self.credentials.as_deref(),
            self.token_file.as_deref(),
            token_env,
            &base_url,
            self.timeout,
        )?;
        let api = ApiSettings {
            base_url,
            org_id: self.org_id.clone(),
            token,
            rate: self.rate,
            // Listing asks for one page at a time.
            concurrency: DEFAULT_CONCURRENCY,
            timeout: self.timeout,
            max_retries: self.max_retries,
            max_body: self.max_body,
            max_stall: self.max_stall,
        };
        Ok((api, DiscoverySettings::new(self.location_id.clone())))
    }
}

/// Runs `ptt-audit lines`. Exit 0 when every page was listed; 3 when listing failed
/// part-way (stdout then holds what was listed; a file is not replaced, so a good
/// inventory is never overwritten by part of one); 2 for a refused token.
pub async fn run(args: LinesArgs, ui: &Ui) -> anyhow::Result<Exit> {
    let (api, discovery) = args.resolve(std::env::var(TOKEN_ENV).ok())?;
    let stop = Stop::default();
    let attended = ui.attend_quietly(&stop);
    let to_file = args.out != Path::new("-");
    let (report, rows) = if to_file {
        let file = AtomicOutput::create(&args.out)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        let mut w = InventoryWriter::new(std::io::BufWriter::new(file))
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        let report =
            ptt_audit::discovery::inventory(&api, &discovery, &stop, |id, l| w.write(id, l))
                .await
                .with_context(|| format!("cannot write {}", args.out.display()))?;
        let rows = w.rows();
        let file = w
            .finish()
            .and_then(|b| b.into_inner().map_err(|e| e.into_error()))
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        if report.complete && stop.reason().is_none() {
            file.commit()
                .with_context(|| format!("cannot write {}", args.out.display()))?;
        }
        (report, rows)
    } else {
        let mut w = InventoryWriter::new(std::io::BufWriter::new(std::io::stdout()))
            .context("cannot write the inventory to stdout")?;
        let report =
            ptt_audit::discovery::inventory(&api, &discovery, &stop, |id, l| w.write(id, l))
                .await
                .context("cannot write the inventory to stdout")?;
        let rows = w.rows();
        w.finish()
            .and_then(|mut out| out.flush())
            .context("cannot write the inventory to stdout")?;
        (report, rows)
    };
    drop(attended);
    let pages = report.pages;
    if let Some(e) = &report.error {
        if stop.reason() == Some(StopReason::Unauthorized) {
            ui.tell(
                Tone::Error,
                "the Webex API refused the token (401 Unauthorized). It is missing, wrong or \
                 expired (personal tokens last 12 hours).",
            );
            return Ok(Exit::Usage);
        }
        let kept = if to_file {
            format!("{} was not written", args.out.display())
        } else {
            "stdout holds the lines listed before it failed".to_string()
        };
        ui.tell(
            Tone::Error,
            &format!(
                "listing the virtual lines failed after {rows} line(s) on {pages} page(s): {}; \
                 {kept}",
                e.message
            ),
        );
        if let Some(hint) = listing_hint(e) {
            ui.tell(Tone::Warn, hint);
        }
        return Ok(Exit::Incomplete);
    }
    if report.skipped > 0 {
        ui.tell(
            Tone::Warn,
            &format!(
                "warning: {} listed item(s) had no id and were left out",
                report.skipped
            ),
        );
    }
    if !ui.quiet {
        let into = if to_file {
            format!(" into {}", args.out.display())
        } else {
            String::new()
        };
        ui.tell(
            Tone::Info,
            &format!("listed {rows} virtual line(s) on {pages} page(s){into}"),
        );
    }
    Ok(Exit::Ok)
}
