//! Counters of what the simulator answered, cheap enough to bump on every request.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of a running simulator (all relaxed atomics).
#[derive(Debug, Default)]
pub struct SimStats {
    pub(crate) requests: AtomicU64,
    pub(crate) ok: AtomicU64,
    pub(crate) bad_request: AtomicU64,
    pub(crate) unauthorized: AtomicU64,
    pub(crate) forbidden: AtomicU64,
    pub(crate) not_found: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) server_errors: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) oversized: AtomicU64,
    pub(crate) echoed: AtomicU64,
    pub(crate) wrong_type: AtomicU64,
    pub(crate) list_requests: AtomicU64,
    pub(crate) list_without_org: AtomicU64,
    pub(crate) token_requests: AtomicU64,
    pub(crate) tokens_issued: AtomicU64,
}

/// A copy of [`SimStats`] at one moment.
///
/// Status counters count responses actually sent (a stalled `timeout` answer counts
/// as `ok` once it is sent; a malformed body counts as `ok` and as `malformed`);
/// `resets` counts connections dropped without an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SimStatsSnapshot {
    /// Every request received.
    pub requests: u64,
    /// 200 answers.
    pub ok: u64,
    /// 400 and 405 answers.
    pub bad_request: u64,
    /// 401 answers.
    pub unauthorized: u64,
    /// 403 answers.
    pub forbidden: u64,
    /// 404 answers.
    pub not_found: u64,
    /// 429 answers.
    pub throttled: u64,
    /// 500, 502, 503 and 504 answers.
    pub server_errors: u64,
    /// Connections closed without an answer (`reset` faults).
    pub resets: u64,
    /// Requests stalled by a `timeout` fault.
    pub timeouts: u64,
    /// 200 answers with a broken JSON body (`malformed` faults).
    pub malformed: u64,
    /// 200 answers with a body over 8 MiB (`oversized` faults).
    pub oversized: u64,
    /// 502 answers that echo the `Authorization` header (`echo` faults).
    pub echoed: u64,
    /// 200 answers with `allowAutoAnswer` as a string (`wrongtype` faults).
    pub wrong_type: u64,
    /// Requests for the list endpoint (`GET …/virtualLines`), refused ones included.
    pub list_requests: u64,
    /// Of those, requests without an `orgId` while the simulator acts as an org
    /// (`SimConfig::org_id`): a client that follows a next link without putting `orgId`
    /// back would list the token's own org.
    pub list_without_org: u64,
    /// Requests to the token endpoint (also counted in `requests` and by status).
    pub token_requests: u64,
    /// Access tokens the token endpoint handed out (refreshes that succeeded).
    pub tokens_issued: u64,
}

impl SimStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> SimStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStatsSnapshot {
            requests: get(&self.requests),
            ok: get(&self.ok),
            bad_request: get(&self.bad_request),
            unauthorized: get(&self.unauthorized),
            forbidden: get(&self.forbidden),
            not_found: get(&self.not_found),
            throttled: get(&self.throttled),
            server_errors: get(&self.server_errors),
            resets: get(&self.resets),
            timeouts: get(&self.timeouts),
            malformed: get(&self.malformed),
            oversized: get(&self.oversized),
            echoed: get(&self.echoed),
            wrong_type: get(&self.wrong_type),
            list_requests: get(&self.list_requests),
            list_without_org: get(&self.list_without_org),
            token_requests: get(&self.token_requests),
            tokens_issued: get(&self.tokens_issued),
        }
    }

    /// Counts one sent answer under its status.
    pub(crate) fn count_status(&self, status: u16) {
        let counter = match status {
            200 => &self.ok,
            401 => &self.unauthorized,
            403 => &self.forbidden,
            404 => &self.not_found,
            429 => &self.throttled,
            500..=599 => &self.server_errors,
            _ => &self.bad_request,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Display for SimStatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requests={} 200={} 400/405={} 401={} 403={} 404={} 429={} 5xx={} resets={} timeouts={} malformed={} oversized={} echoed={} wrongtype={} list={} list_without_org={} token_requests={} tokens_issued={}",
            self.requests,
            self.ok,
            self.bad_request,
            self.unauthorized,
            self.forbidden,
            self.not_found,
            self.throttled,
            self.server_errors,
            self.resets,
            self.timeouts,
            self.malformed,
            self.oversized,
            self.echoed,
            self.wrong_type,
            self.list_requests,
            self.list_without_org,
            self.token_requests,
            self.tokens_issued
        )
    }
}
