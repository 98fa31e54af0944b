//! What to do after one attempt: every retry rule of the contract, in one pure
//! function.
//!
//! [`decide_as`] sees what one request produced and the line's budgets, and says what
//! the whole run must learn from it and what the line does next. It sends nothing,
//! sleeps nothing and reads no clock (the caller passes `now`), so each rule is
//! tested here without a server; the client's loop only carries decisions out.
//!
//! [`Liveness`] holds the rules that stop the whole run for want of progress
//! (`--max-stall`, a server that cannot be reached, a token refused every line), just
//! as pure.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;

#[cfg(test)]
use super::answer::decode;
use super::answer::{line_error, shorten};
use super::pace::full_jitter;
use super::stop::StopReason;
use crate::model::{ErrorKind, LineError};

/// 429s a single line may receive before it is given up. Much larger than
/// `--max-retries`: a throttling server is still answering, and the run slows down
/// for it, so a line should not fail merely because the server is busy.
pub(crate) const THROTTLE_BUDGET: u32 = 50;

/// Longest `Retry-After` obeyed as given.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Connection attempts that may fail in a row, before any 2xx, until the run stops:
/// nothing listening on the port, a host that does not resolve or refuses TLS fails
/// every request at once, and retrying each line in turn would take minutes to say so.
/// A few concurrent lines' worth, so one unlucky moment does not stop a run.
pub(crate) const UNREACHABLE_AFTER: u32 = 20;

/// Lines answered 403, and nothing else, before any was read, after which the run
/// stops: a wrong `--org-id` or a token that may not read the org is refused on every
/// line alike, and 10,000 identical warnings would only bury that.
pub(crate) const FORBIDDEN_AFTER: u32 = 10;

/// Statuses retried with a line's `--max-retries` (429 has its own budget): answers
/// that say the server is busy or failing, nothing about the line.
const RETRIED_STATUSES: [u16; 6] = [408, 423, 500, 502, 503, 504];

/// Most characters of a redirect's `Location` quoted in the line's error.
const MAX_LOCATION_CHARS: usize = 200;

/// What one attempt produced.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The server answered (any status), body read in full or cut at `--max-body`.
    Answer {
        /// The status line.
        status: StatusCode,
        /// The answer's headers (`Retry-After`, `TrackingID`).
        headers: HeaderMap,
        /// The answer's body; empty when it was larger than `--max-body`.
        body: bytes::Bytes,
        /// `Some(--max-body)` when the body was larger than that and was not read past
        /// it: never held whole, never evaluated, never copied into a report.
        too_large: Option<u64>,
    },
    /// No answer: a timeout or a connection error.
    Failed {
        /// [`ErrorKind::Timeout`] or [`ErrorKind::Network`].
        kind: ErrorKind,
        /// What went wrong, with its causes.
        message: String,
        /// No connection could be made at all (refused, no such host, TLS refused):
        /// counts towards [`UNREACHABLE_AFTER`].
        connect: bool,
    },
}

/// One line's counts so far, against its two budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tries {
    /// Requests sent for the line, the one being decided included.
    pub(crate) attempts: u32,
    /// Retries spent of `--max-retries` (timeouts, connection errors, 408, 423, 5xx,
    /// bodies that are not settings).
    pub(crate) retries: u32,
    /// 429s received, counted against [`THROTTLE_BUDGET`].
    pub(crate) throttled: u32,
    /// `--max-retries`.
    pub(crate) max_retries: u32,
}

impl Tries {
    /// Nothing sent yet.
    pub(crate) fn new(max_retries: u32) -> Tries {
        Tries {
            attempts: 0,
            retries: 0,
            throttled: 0,
            max_retries,
        }
    }
}

/// What an attempt means, for the run as a whole and for its line (or, for a page of
/// the listing, that page: `T` is what a good answer holds).
#[derive(Debug, PartialEq)]
pub(crate) struct Decision<T = serde_json::Value> {
    /// Applies whatever becomes of the line: a pause asked for by a line that then
    /// gives up still holds every other line.
    pub(crate) run: ForRun,
    /// What the line does next.
    pub(crate) line: ForLine<T>,
}

/// What the run's pacer and stop signal must learn from an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForRun {
    /// No answer: says nothing about the pace the server accepts.
    Nothing,
    /// An answer other than 429 or 401; with a `Retry-After` on a retried status,
    /// no request of the run starts before `pause` has elapsed.
    Answered {
        /// The server's `Retry-After`, when it gave a usable one.
        pause: Option<Duration>,
    },
    /// A 429: the run pauses (for `retry_after`, else the pacer's own backoff) and
    /// slows down.
    Throttled {
        /// The server's `Retry-After`, when it gave a usable one.
        retry_after: Option<Duration>,
    },
    /// A 401: an answer, after which the run sends nothing more.
    Unauthorized,
}

/// What the line does after an attempt.
#[derive(Debug, PartialEq)]
pub(crate) enum ForLine<T = serde_json::Value> {
    /// Read: the line's settings (or what `T` is for another endpoint).
    Done(T),
    /// Send again after `wait`; one retry spent.
    Retry {
        /// Why this attempt failed: the line's error if the run stops meanwhile.
        error: LineError,
        /// How long this line waits.
        wait: Wait,
    },
    /// Send again as soon as the pacer allows (429): no retry spent, since the run-wide
    /// pause already holds this line.
    Resend,
    /// The line is not read.
    GiveUp(LineError),
}

/// How long a line waits before a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Exponential backoff with full jitter ([`backoff`]), for the `retry`-th retry.
    /// Only this line waits; other lines go on.
    Backoff {
        /// 1 for the first retry.
        retry: u32,
    },
    /// Nothing of its own: the server's `Retry-After` paused the whole run
    /// ([`ForRun::Answered`]), and the pacer holds this line until it ends.
    RunPause,
}

/// Decides what `attempt` means for a settings read, spending the line's budgets in
/// `tries` (whose `attempts` already counts this attempt). `now` dates an HTTP-date
/// `Retry-After`. The client calls [`decide_as`] with the same decoder; the rules'
/// tests call this.
#[cfg(test)]
pub(crate) fn decide(attempt: &Attempt, tries: &mut Tries, now: SystemTime) -> Decision {
    decide_as(attempt, tries, now, |_, body| decode(body))
}

/// As [`decide`], for any endpoint: `read` turns a 2xx answer (headers and body) into
/// what it holds, or says why it cannot, which is retried like a garbled 200. Every
/// other rule (statuses, 429s, 401, budgets, pauses) is the same for every endpoint:
/// the listing of lines obeys exactly what their reads obey.
pub(crate) fn decide_as<T>(
    attempt: &Attempt,
    tries: &mut Tries,
    now: SystemTime,
    read: impl FnOnce(&HeaderMap, &[u8]) -> Result<T, String>,
) -> Decision<T> {
    let (status, headers, body, too_large) = match attempt {
        Attempt::Answer {
            status,
            headers,
            body,
            too_large,
        } => (*status, headers, body, *too_large),
        Attempt::Failed { kind, message, .. } => {
            let error = LineError {
                kind: *kind,
                http_status: None,
                message: message.clone(),
                tracking_id: None,
                attempts: tries.attempts,
            };
            return Decision {
                run: ForRun::Nothing,
                line: retry(tries, error, None),
            };
        }
    };
    // A body over `--max-body` is not the server's account of anything: whatever the
    // status says about retrying, the line's error is `decode` and says why.
    let api_error = |kind, detail: String| match too_large {
        Some(cap) if kind != ErrorKind::Auth => {
            let over = format!("the answer body is larger than --max-body ({cap} bytes): not read");
            let detail = if detail.is_empty() {
                over
            } else {
                format!("{over}; {detail}")
            };
            line_error(
                ErrorKind::Decode,
                status,
                detail,
                headers,
                body,
                tries.attempts,
            )
        }
        _ => line_error(kind, status, detail, headers, body, tries.attempts),
    };
    let retry_after = || {
        headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now))
    };
    let answered = ForRun::Answered { pause: None };
    match status.as_u16() {
        200..=299 => match too_large.map_or_else(|| read(headers, body), |_| Err(String::new())) {
            Ok(settings) => Decision {
                run: answered,
                line: ForLine::Done(settings),
            },
            // A truncated or garbled 200 is retried like a transient failure: a GET
            // is safe to repeat.
            Err(detail) => {
                let error = api_error(ErrorKind::Decode, detail);
                Decision {
                    run: answered,
                    line: retry(tries, error, None),
                }
            }
        },
        429 => {
            tries.throttled += 1;
            let line = if tries.throttled > THROTTLE_BUDGET {
                ForLine::GiveUp(api_error(ErrorKind::Http, String::new()))
            } else {
                ForLine::Resend
            };
            Decision {
                run: ForRun::Throttled {
                    retry_after: retry_after(),
                },
                line,
            }
        }
        401 => {
            let mut error = api_error(ErrorKind::Auth, String::new());
            error.message = format!(
                "the API refused the token (401): it is missing, wrong or expired; {}",
                error.message
            );
            Decision {
                run: ForRun::Unauthorized,
                line: ForLine::GiveUp(error),
            }
        }
        code if RETRIED_STATUSES.contains(&code) => {
            let pause = retry_after();
            let error = api_error(ErrorKind::Http, String::new());
            Decision {
                run: ForRun::Answered { pause },
                line: retry(tries, error, pause),
            }
        }
        // Redirects are not followed: another server's answer is not the line's
        // settings, and the token must not go where the API did not say.
        300..=399 => {
            let location = headers
                .get(LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .unwrap_or_default();
            let detail = format!(
                "redirect not followed (Location: {})",
                shorten(&location, MAX_LOCATION_CHARS)
            );
            Decision {
                run: answered,
                line: ForLine::GiveUp(api_error(ErrorKind::Http, detail)),
            }
        }
        // Other 4xx.
        _ => Decision {
            run: answered,
            line: ForLine::GiveUp(api_error(ErrorKind::Http, String::new())),
        },
    }
}

/// A retry if `--max-retries` allows one, else the line's final error.
fn retry<T>(tries: &mut Tries, error: LineError, run_pause: Option<Duration>) -> ForLine<T> {
    if tries.retries >= tries.max_retries {
        return ForLine::GiveUp(error);
    }
    tries.retries += 1;
    let wait = match run_pause {
        Some(_) => Wait::RunPause,
        None => Wait::Backoff {
            retry: tries.retries,
        },
    };
    ForLine::Retry { error, wait }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date. Anything else
/// (`rand(30),add(30)` was seen in the wild) is `None`, and the caller backs off.
///
/// A value longer than [`MAX_RETRY_AFTER`] is cut to it (with a warning): a buggy or
/// hostile server must not stall a nightly job for days.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let asked = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(secs) = value.parse::<f64>() {
        if !(secs.is_finite() && secs >= 0.0) {
            return None;
        }
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    if asked > MAX_RETRY_AFTER {
        tracing::warn!(
            asked_s = asked.as_secs(),
            "the server asked to wait longer than {} s (Retry-After: {value}); waiting {} s",
            MAX_RETRY_AFTER.as_secs(),
            MAX_RETRY_AFTER.as_secs()
        );
        return Some(MAX_RETRY_AFTER);
    }
    Some(asked)
}

/// The wait before the `retry`-th retry of a line ([`Wait::Backoff`]): exponential
/// with full jitter, so lines that failed together do not come back together.
pub(crate) fn backoff(retry: u32) -> Duration {
    full_jitter(retry)
}

/// What a 401 means for the run, given what it knows about its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnUnauthorized {
    /// The token was renewed after this request was sent: send it again.
    Resend,
    /// Renew the token (one refresh for every request in flight), then send again.
    Refresh,
    /// Nothing can renew the token: the run stops.
    Stop(Refusal),
}

/// Why a 401 stops the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A fixed token (`--token-file`, `WEBEX_TOKEN`): there is nothing to refresh it with.
    FixedToken,
    /// The token was itself just refreshed and the API never accepted it: another
    /// refresh would give the same (a missing scope, a revoked authorisation).
    RefreshedTokenRefused,
}

/// Decides what a 401 to a request sent with token generation `sent_with` means, when
/// the run's token is now at generation `current`. `refreshable`: the token comes from
/// credentials. `unproven_refresh`: the current token came from a refresh by this run
/// and the API has accepted no request sent with it.
pub(crate) fn on_unauthorized(
    sent_with: u64,
    current: u64,
    refreshable: bool,
    unproven_refresh: bool,
) -> OnUnauthorized {
    if sent_with < current {
        OnUnauthorized::Resend
    } else if !refreshable {
        OnUnauthorized::Stop(Refusal::FixedToken)
    } else if unproven_refresh {
        OnUnauthorized::Stop(Refusal::RefreshedTokenRefused)
    } else {
        OnUnauthorized::Refresh
    }
}

/// The error of a line the run stopped before it was read. `last` is the error of
/// its previous attempt, when it was waiting to retry.
pub(crate) fn not_audited(
    reason: Option<StopReason>,
    attempts: u32,
    last: Option<LineError>,
) -> LineError {
    let reason = reason.unwrap_or(StopReason::Interrupted);
    let mut e = LineError::unrequested(
        ErrorKind::NotAudited,
        format!("not read: {}", reason.describe()),
    );
    e.attempts = attempts;
    if let Some(last) = last {
        e.message = format!("{}; last error: {}", e.message, last.message);
    }
    e
}

/// Whether the run still makes progress: the stop rules that look at the whole run
/// rather than one line. Pure: the caller passes the clock.
#[derive(Debug)]
pub(crate) struct Liveness {
    /// When the last 2xx arrived (the run's start until one does).
    last_ok: Instant,
    /// Whether any 2xx ever arrived.
    ever_ok: bool,
    /// Connection attempts that failed in a row.
    unreachable_in_a_row: u32,
    /// Lines answered 403 while every line answered was; `None` once one was answered
    /// otherwise (read, or any other final status): from then on 403s are the lines'
    /// own business.
    forbidden: Option<u32>,
    /// `--max-stall`.
    max_stall: Duration,
}

impl Liveness {
    /// A run starting at `start`.
    pub(crate) fn new(start: Instant, max_stall: Duration) -> Liveness {
        Liveness {
            last_ok: start,
            ever_ok: false,
            unreachable_in_a_row: 0,
            forbidden: Some(0),
            max_stall,
        }
    }

    /// Counts one attempt; says when the run must stop because of it: connection
    /// attempts failed [`UNREACHABLE_AFTER`] times in a row and none ever succeeded
    /// (a run that has had a 2xx relies on `--max-stall` instead: the server was there,
    /// it may come back); or the first [`FORBIDDEN_AFTER`] lines answered were all
    /// refused with 403 and none was read.
    pub(crate) fn record(&mut self, attempt: &Attempt, now: Instant) -> Option<StopReason> {
        match attempt {
            Attempt::Answer { status, .. } => {
                self.unreachable_in_a_row = 0;
                if status.is_success() {
                    self.last_ok = self.last_ok.max(now);
                    self.ever_ok = true;
                }
                self.forbidden(*status)
            }
            Attempt::Failed { connect: true, .. } => {
                self.unreachable_in_a_row += 1;
                (!self.ever_ok && self.unreachable_in_a_row >= UNREACHABLE_AFTER).then_some(
                    StopReason::Unreachable {
                        attempts: self.unreachable_in_a_row,
                    },
                )
            }
            Attempt::Failed { .. } => {
                self.unreachable_in_a_row = 0;
                None
            }
        }
    }

    /// The 403 rule, for one answer. Retried answers (429, 5xx, …) are not a line's
    /// answer and count neither way; a 2xx (even a garbled one) or any other final
    /// status ends the rule for the run.
    fn forbidden(&mut self, status: StatusCode) -> Option<StopReason> {
        let code = status.as_u16();
        if code == 429 || RETRIED_STATUSES.contains(&code) {
            return None;
        }
        let lines = self.forbidden.as_mut()?;
        if status != StatusCode::FORBIDDEN {
            self.forbidden = None;
            return None;
        }
        *lines += 1;
        (*lines == FORBIDDEN_AFTER).then_some(StopReason::Forbidden { lines: *lines })
    }

    /// When the run stops unless a 2xx arrives first.
    pub(crate) fn stall_deadline(&self) -> Instant {
        self.last_ok + self.max_stall
    }

    /// The stop reason once no answer has been a 2xx for `--max-stall`.
    pub(crate) fn stalled(&self, now: Instant) -> Option<StopReason> {
        (now >= self.stall_deadline()).then_some(StopReason::Stalled {
            after: self.max_stall,
        })
    }
}

// The cases outnumber the rules: they live beside this file, in `decide/tests.rs`
// (one line's answers) and `decide/hostile_tests.rs` (broken servers, run-wide stops).
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
