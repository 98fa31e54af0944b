//! What to do after an answer: the retry rules of the contract, in one place.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;

use super::pace::full_jitter;

/// 429s a single line may receive before it is given up. Much larger than
/// `--max-retries`: a throttling server is still answering, and the run slows down
/// for it, so a line should not fail merely because the server is busy.
pub const THROTTLE_BUDGET: u32 = 50;

/// What an answer (or the lack of one) means for the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 200: decode the body.
    Success,
    /// 429: pause the whole run and try again (own budget).
    Throttled,
    /// 401: stop the whole run.
    Unauthorized,
    /// 408, 423, 5xx, timeouts, connection errors: try again (within `--max-retries`).
    Transient,
    /// Any other status: give up on this line.
    Permanent,
}

/// Classifies an HTTP status per the contract.
pub fn classify(status: StatusCode) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Success,
        429 => Verdict::Throttled,
        401 => Verdict::Unauthorized,
        408 | 423 | 500 | 502 | 503 | 504 => Verdict::Transient,
        _ => Verdict::Permanent,
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date. Anything else
/// (`rand(30),add(30)` was seen in the wild) is `None`, and the caller backs off.
///
/// A value longer than [`MAX_RETRY_AFTER`] is cut to it (with a warning): a buggy or
/// hostile server must not stall a nightly job for days.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
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

/// Longest `Retry-After` obeyed as given.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How long a line waits before retrying a transient failure: exponential with full
/// jitter. Only this line waits; other lines go on.
pub fn transient_backoff(retry: u32) -> Duration {
    full_jitter(retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_statuses_classify() {
        for s in [408, 423, 500, 502, 503, 504] {
            assert_eq!(
                classify(StatusCode::from_u16(s).unwrap()),
                Verdict::Transient
            );
        }
        for s in [400, 403, 404, 405, 409, 410] {
            assert_eq!(
                classify(StatusCode::from_u16(s).unwrap()),
                Verdict::Permanent
            );
        }
        assert_eq!(classify(StatusCode::TOO_MANY_REQUESTS), Verdict::Throttled);
        assert_eq!(classify(StatusCode::UNAUTHORIZED), Verdict::Unauthorized);
        assert_eq!(classify(StatusCode::OK), Verdict::Success);
    }

    #[test]
    fn retry_after_seconds_date_and_garbage() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("194", now),
            Some(Duration::from_secs(194))
        );
        assert_eq!(parse_retry_after(" 2 ", now), Some(Duration::from_secs(2)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("rand(30),add(30)", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("1e300", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("18446744073709551615", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("NaN", now), None);
        assert_eq!(parse_retry_after("inf", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }
}
