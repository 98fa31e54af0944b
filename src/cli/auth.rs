//! `ptt-audit auth check`: does the token or credentials file work, and until when.
//! Refreshes when needed (as an audit would), makes one cheap read-only request, and
//! prints the answer and each token's expiry; exit 0 when the token works, 2 when not.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ptt_audit::exit::Exit;
use ptt_audit::settings::{CONFIG_ENV, DEFAULT_MAX_BODY, DEFAULT_MAX_STALL, TOKEN_ENV};
use ptt_audit::webex::{
    parse_base_url, ClientConfig, Stop, TokenExpiry, WebexClient, DEFAULT_BASE_URL,
};
use serde_json::json;

use super::ui::{Tone, Ui};

/// `ptt-audit auth …`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    #[command(subcommand)]
    command: AuthCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum AuthCommand {
    /// Check that the token (or credentials file) works and show when each token
    /// expires: refreshes if needed, then makes one read-only request (list one virtual
    /// line). Exit 0 when the token works, 2 when not.
    Check(CheckArgs),
}

/// What `ptt-audit auth check` takes: `audit`'s token and API options.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Credentials file of an integration or service app (as for `audit`).
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    /// File holding the API token (else the WEBEX_TOKEN environment variable).
    #[arg(long, value_name = "FILE", conflicts_with = "credentials")]
    pub token_file: Option<PathBuf>,

    /// API base URL. `http://` only for loopback hosts.
    #[arg(long, value_name = "URL", env = "WEBEX_BASE_URL", default_value = DEFAULT_BASE_URL)]
    pub base_url: String,

    /// Organization to check access to, sent as `orgId` (partner admins).
    #[arg(long, value_name = "ORG", env = "WEBEX_ORG_ID")]
    pub org_id: Option<String>,

    /// Per-request timeout (`30s`, `2m`).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = super::audit::parse_timeout)]
    pub timeout: Duration,

    /// The audit's config file: its credentials, token file, base URL and org are
    /// checked (its other keys are ignored here).
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
}

/// Runs `ptt-audit auth …`.
pub async fn run(args: AuthArgs, ui: &Ui) -> anyhow::Result<Exit> {
    let AuthCommand::Check(args) = args.command;
    check(args, ui).await
}

async fn check(args: CheckArgs, ui: &Ui) -> anyhow::Result<Exit> {
    let base_url = parse_base_url(&args.base_url)?;
    let timeout = args.timeout;
    let token = super::audit::token_source(
        args.credentials.as_deref(),
        args.token_file.as_deref(),
        std::env::var(TOKEN_ENV).ok(),
        &base_url,
        timeout,
    )?;
    let origin = match (&args.credentials, &args.token_file) {
        (Some(c), _) => format!("credentials file {}", c.display()),
        (None, Some(t)) => format!("token file {}", t.display()),
        (None, None) => TOKEN_ENV.to_string(),
    };
    let probed = match token.prepare().await {
        Ok(()) => {
            let config = ClientConfig {
                base_url,
                org_id: args.org_id.clone(),
                timeout,
                max_retries: 0,
                rate: ptt_audit::settings::Rate::Off,
                max_body: DEFAULT_MAX_BODY,
                max_stall: DEFAULT_MAX_STALL,
            };
            let client = WebexClient::new(&config, &token, Stop::default())?;
            client.probe().await.map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    token.settle().await;
    let expiry = token.expiry().await;
    let now = Utc::now();
    if ui.json {
        let time = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        };
        let (request, status) = match &probed {
            Ok(p) => (Some(p.request.clone()), Some(p.status)),
            Err(_) => (None, None),
        };
        let out = json!({
            "works": probed.is_ok(),
            "error": probed.as_ref().err(),
            "token_from": origin,
            "request": request,
            "status": status,
            "refreshes": expiry.refreshes,
            "access_token_expires_at": time(expiry.access_token_expires_at),
            "refresh_token_expires_at": time(expiry.refresh_token_expires_at),
            "refresh_token_expiring": expiry.refresh_token_expiring(now),
        });
        ui.print(&format!("{out}\n"));
    } else {
        ui.print(&text(&probed, &origin, &expiry, now));
    }
    match probed {
        Ok(_) => Ok(Exit::Ok),
        Err(e) => {
            ui.tell(Tone::Error, &e);
            Ok(Exit::Usage)
        }
    }
}

/// The report for a person.
fn text(
    probed: &Result<ptt_audit::webex::Probe, String>,
    origin: &str,
    expiry: &TokenExpiry,
    now: DateTime<Utc>,
) -> String {
    let mut out = match probed {
        Ok(p) => format!(
            "The token from the {origin} works: {} answered {}.\n",
            p.request, p.status
        ),
        Err(_) => format!("The token from the {origin} does NOT work (see the error below).\n"),
    };
    if expiry.file.is_some() {
        if expiry.refreshes > 0 {
            out.push_str(&format!(
                "The access token was refreshed ({} time{}) and the file rewritten.\n",
                expiry.refreshes,
                if expiry.refreshes == 1 { "" } else { "s" }
            ));
        }
        out.push_str(&format!(
            "Access token:  {}\nRefresh token: {}\n",
            when(expiry.access_token_expires_at, now),
            when(expiry.refresh_token_expires_at, now)
        ));
        if expiry.refresh_token_expiring(now) {
            out.push_str(
                "The refresh token expires within 14 days: authorise the integration again and \
                 put the new refresh token into the file before then.\n",
            );
        }
    } else {
        out.push_str(
            "Access token:  expiry unknown (a token from a file or WEBEX_TOKEN does not say; \
             personal tokens last 12 hours: use --credentials for cron)\n",
        );
    }
    out
}

/// `expires 2026-02-12T02:15:00Z (in 13 days)`, or what is known.
fn when(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = at else {
        return "expiry unknown (ptt-audit writes it after its first refresh)".into();
    };
    let stamp = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let left = at - now;
    let span = |d: chrono::TimeDelta| {
        let d = d.abs();
        if d.num_days() >= 2 {
            format!("{} days", d.num_days())
        } else if d.num_hours() >= 2 {
            format!("{} hours", d.num_hours())
        } else {
            format!("{} minutes", d.num_minutes())
        }
    };
    if left < chrono::TimeDelta::zero() {
        format!("expired {stamp} ({} ago)", span(left))
    } else {
        format!("expires {stamp} (in {})", span(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_reads_in_days_hours_or_minutes() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        assert_eq!(
            when(at("2026-01-14T00:00:00Z"), now),
            "expires 2026-01-14T00:00:00Z (in 13 days)"
        );
        assert_eq!(
            when(at("2026-01-01T05:00:00Z"), now),
            "expires 2026-01-01T05:00:00Z (in 5 hours)"
        );
        assert_eq!(
            when(at("2025-12-31T23:30:00Z"), now),
            "expired 2025-12-31T23:30:00Z (30 minutes ago)"
        );
        assert!(when(None, now).starts_with("expiry unknown"));
    }
}
