//! What to do after one attempt: every retry rule of the contract, in one pure
//! function.
//!
//! [`decide_as`] sees what one request produced and the line's budgets, and says what
//! the whole run must learn from it and what the line does next. It sends nothing,
//! sleeps nothing and reads no clock (the caller passes `now`), so each rule is
//! tested here without a server; the client's loop only carries decisions out.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

#[cfg(test)]
use super::answer::decode;
use super::answer::line_error;
use super::pace::full_jitter;
use super::stop::StopReason;
use crate::model::{ErrorKind, LineError};

/// 429s a single line may receive before it is given up. Much larger than
/// `--max-retries`: a throttling server is still answering, and the run slows down
/// for it, so a line should not fail merely because the server is busy.
pub(crate) const THROTTLE_BUDGET: u32 = 50;

/// Longest `Retry-After` obeyed as given.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What one attempt produced.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The server answered (any status), body read in full.
    Answer {
        /// The status line.
        status: StatusCode,
        /// The answer's headers (`Retry-After`, `TrackingID`).
        headers: HeaderMap,
        /// The answer's body.
        body: bytes::Bytes,
    },
    /// No answer: a timeout or a connection error.
    Failed {
        /// [`ErrorKind::Timeout`] or [`ErrorKind::Network`].
        kind: ErrorKind,
        /// What went wrong, with its causes.
        message: String,
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
    let (status, headers, body) = match attempt {
        Attempt::Answer {
            status,
            headers,
            body,
        } => (*status, headers, body),
        Attempt::Failed { kind, message } => {
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
    let api_error = |kind, detail| line_error(kind, status, detail, headers, body, tries.attempts);
    let retry_after = || {
        headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now))
    };
    let answered = ForRun::Answered { pause: None };
    match status.as_u16() {
        200..=299 => match read(headers, body) {
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
        408 | 423 | 500 | 502 | 503 | 504 => {
            let pause = retry_after();
            let error = api_error(ErrorKind::Http, String::new());
            Decision {
                run: ForRun::Answered { pause },
                line: retry(tries, error, pause),
            }
        }
        // Other 4xx, and 3xx: redirects are not followed.
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

/// The error of a line the run stopped before it was read. `last` is the error of
/// its previous attempt, when it was waiting to retry.
pub(crate) fn not_audited(
    reason: Option<StopReason>,
    attempts: u32,
    last: Option<LineError>,
) -> LineError {
    let mut e = LineError::unrequested(
        ErrorKind::NotAudited,
        match reason {
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
}

// The cases outnumber the rules: they live beside this file, in `decide/tests.rs`.
#[cfg(test)]
mod tests;
