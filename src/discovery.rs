//! `audit --all` and `ptt-audit lines`: the org's virtual lines, listed from the API.
//!
//! Listing runs beside the audit, a page ahead of it: each page's new lines go to the
//! job as soon as they are read, so auditing starts while later pages are still being
//! listed, and nothing holds the whole list. What is held per line for the whole run
//! is a 16-byte digest of its ID, to list each line once and to leave out the lines
//! given explicitly (they are audited first): 100,000 lines cost about 3 MB.
//!
//! A listing that fails for good (after the same retries as any read, or at a `next`
//! link that is refused) ends there: what was listed is audited, and the report says
//! the discovery is incomplete (`run.discovery`), which makes the exit code 3.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, Semaphore};

use crate::exit::UsageError;
use crate::input::{invalid_reason, InputLine, Origin};
use crate::job::Progress;
use crate::model::{LineError, LineIdentity};
use crate::settings::{ApiSettings, DiscoverySettings};
use crate::webex::{Listed, Pages, Stop, WebexClient};

/// What the listing did: the JSON report's `run.discovery`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiscoveryReport {
    /// Always true: the object is there because `--all` was given.
    pub all: bool,
    /// `--location-id` values; empty = every location.
    pub location_ids: Vec<String>,
    /// Distinct lines listed (with an `id`), those also given explicitly included.
    pub listed: u64,
    /// Pages read.
    pub pages: u64,
    /// True when the listing reached a page without a `next` link.
    pub complete: bool,
    /// Why the listing ended early, shaped like a line's `error`.
    pub error: Option<LineError>,
    /// Items of the listing without a usable `id`, skipped.
    pub skipped: u64,
}

/// A 128-bit digest of an ID: what a run keeps per listed line. Two of 100,000 IDs
/// share one with a probability near 10^-29, unlike a 64-bit hash, whose collision
/// would silently leave a line out.
pub(crate) fn digest(id: &str) -> u128 {
    let hash = Sha256::digest(id.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash[..16]);
    u128::from_le_bytes(first)
}

/// One listing: its pages, and what it has seen.
#[derive(Debug)]
pub(crate) struct Lister<'a> {
    client: &'a WebexClient,
    pages: Pages,
    location_ids: Vec<String>,
    seen: HashSet<u128>,
    listed: u64,
    skipped: u64,
    error: Option<LineError>,
}

impl<'a> Lister<'a> {
    /// The listing `discovery` asks for, of the org `api` names, through `client`.
    pub(crate) fn new(
        client: &'a WebexClient,
        api: &ApiSettings,
        discovery: &DiscoverySettings,
    ) -> Lister<'a> {
        Lister {
            client,
            pages: Pages::new(
                &api.base_url,
                api.org_id.as_deref(),
                &discovery.location_ids,
                discovery.page_size.max(1),
            ),
            location_ids: discovery.location_ids.clone(),
            seen: HashSet::new(),
            listed: 0,
            skipped: 0,
            error: None,
        }
    }

    /// The lines of the next page that were not listed before (possibly none); `None`
    /// once the listing is over, for good or not (see [`Lister::report`]). Each page
    /// request holds one of `permits`, when given: listing counts against
    /// `--concurrency` like a read.
    pub(crate) async fn next_batch(&mut self, permits: Option<&Semaphore>) -> Option<Vec<Listed>> {
        let _permit = match permits {
            Some(p) => Some(p.acquire().await.expect("semaphore is never closed")),
            None => None,
        };
        match self.pages.next(self.client).await? {
            Ok(page) => {
                self.skipped += page.skipped;
                let seen = &mut self.seen;
                let fresh: Vec<Listed> = page
                    .items
                    .into_iter()
                    .filter(|l| seen.insert(digest(&l.id)))
                    .collect();
                self.listed += fresh.len() as u64;
                tracing::debug!(
                    page = self.pages.pages(),
                    lines = fresh.len(),
                    attempts = page.attempts,
                    "listed a page of virtual lines"
                );
                Some(fresh)
            }
            Err(e) => {
                tracing::warn!(
                    kind = e.kind.as_str(),
                    status = e.http_status,
                    tracking_id = e.tracking_id.as_deref().unwrap_or(""),
                    listed = self.listed,
                    pages = self.pages.pages(),
                    "listing the virtual lines failed: {}; the lines listed so far are \
                     audited and the audit is incomplete",
                    e.message
                );
                self.error = Some(e);
                None
            }
        }
    }

    /// What the listing did.
    pub(crate) fn report(self) -> DiscoveryReport {
        if self.skipped > 0 {
            tracing::warn!(
                skipped = self.skipped,
                "{} item(s) of the listing had no usable `id` and were skipped",
                self.skipped
            );
        }
        DiscoveryReport {
            all: true,
            location_ids: self.location_ids,
            listed: self.listed,
            pages: self.pages.pages(),
            complete: self.error.is_none(),
            error: self.error,
            skipped: self.skipped,
        }
    }
}

/// Lists every page into `tx` as lines to audit, leaving out those whose digest is in
/// `explicit` (given with `--lines`/`--line`, audited already), and counts them into
/// `progress`. Ends when the listing does, or when nobody receives any more.
pub(crate) async fn feed(
    lister: &mut Lister<'_>,
    explicit: &HashSet<u128>,
    tx: mpsc::Sender<Vec<InputLine>>,
    permits: &Semaphore,
    progress: &Progress,
) {
    let origin = Origin::labelled(&Arc::from("the listing"));
    loop {
        let batch = tokio::select! {
            biased;
            () = tx.closed() => return,
            batch = lister.next_batch(Some(permits)) => batch,
        };
        let Some(batch) = batch else { return };
        let lines: Vec<InputLine> = batch
            .into_iter()
            .filter(|l| !explicit.contains(&digest(&l.id)))
            .map(|l| InputLine {
                invalid: invalid_reason(&l.id),
                identity: Arc::new(l.identity),
                id: l.id,
                origin: origin.clone(),
            })
            .collect();
        if lines.is_empty() {
            continue;
        }
        progress.add_total(lines.len());
        if tx.send(lines).await.is_err() {
            return;
        }
    }
}

/// `ptt-audit lines`: lists the lines `discovery` asks for and hands each one to
/// `each` (which writes the inventory) as its page arrives. An error from `each` ends
/// the listing and is returned; a listing that fails is not an error here but an
/// incomplete [`DiscoveryReport`].
pub async fn inventory(
    api: &ApiSettings,
    discovery: &DiscoverySettings,
    stop: &Stop,
    mut each: impl FnMut(&str, &LineIdentity) -> std::io::Result<()>,
) -> anyhow::Result<DiscoveryReport> {
    let client = crate::job::client_for(api, stop).map_err(UsageError::from)?;
    // As an audit: a missing or expiring token is refreshed first (exit 2 if it cannot
    // be), and the listing stops once no answer has been a 2xx for `--max-stall`.
    api.token.prepare().await.map_err(UsageError::from)?;
    let watchdog = tokio::spawn({
        let client = client.clone();
        async move { client.watch_stall().await }
    });
    let mut lister = Lister::new(&client, api, discovery);
    while let Some(batch) = lister.next_batch(None).await {
        for line in &batch {
            if let Err(e) = each(&line.id, &line.identity) {
                watchdog.abort();
                return Err(e.into());
            }
        }
    }
    watchdog.abort();
    api.token.settle().await;
    Ok(lister.report())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_differ_and_repeat() {
        assert_eq!(digest("a"), digest("a"));
        assert_ne!(digest("a"), digest("b"));
        assert_ne!(digest(""), digest(" "));
    }

    #[test]
    fn the_report_serialises_to_the_contracts_keys() {
        let r = DiscoveryReport {
            all: true,
            location_ids: vec!["L".into()],
            listed: 3,
            pages: 2,
            complete: true,
            error: None,
            skipped: 0,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"all":true,"location_ids":["L"],"listed":3,"pages":2,"complete":true,"error":null,"skipped":0}"#
        );
    }
}
