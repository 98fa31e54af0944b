//! The retry rules of the contract (section 3), one attempt at a time, no server.

use super::*;
use reqwest::header::HeaderValue;

pub(super) const SETTINGS: &str = r#"{"allowAutoAnswer":true,"connectionType":"ONE_WAY","accessType":"ALLOW_MEMBERS","members":[],"addedLater":1}"#;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

pub(super) fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Attempt {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    Attempt::Answer {
        status: StatusCode::from_u16(status).unwrap(),
        headers: map,
        body: bytes::Bytes::copy_from_slice(body.as_bytes()),
        too_large: None,
    }
}

/// An answer whose body was larger than `--max-body` (`cap`), so not read.
pub(super) fn too_large(status: u16, headers: &[(&'static str, &str)], cap: u64) -> Attempt {
    let Attempt::Answer {
        status, headers, ..
    } = answer(status, headers, "")
    else {
        unreachable!()
    };
    Attempt::Answer {
        status,
        headers,
        body: bytes::Bytes::new(),
        too_large: Some(cap),
    }
}

pub(super) fn failed(kind: ErrorKind) -> Attempt {
    Attempt::Failed {
        kind,
        message: "connection refused".into(),
        connect: false,
    }
}

/// No connection could be made (nothing listening).
pub(super) fn refused() -> Attempt {
    Attempt::Failed {
        kind: ErrorKind::Network,
        message: "connection refused".into(),
        connect: true,
    }
}

/// The first attempt of a line, with `max_retries` retries allowed.
pub(super) fn first(attempt: &Attempt, max_retries: u32) -> (Decision, Tries) {
    let mut tries = Tries::new(max_retries);
    tries.attempts = 1;
    let decision = decide(attempt, &mut tries, now());
    (decision, tries)
}

pub(super) fn http_error(status: u16, message: &str) -> LineError {
    LineError {
        kind: ErrorKind::Http,
        http_status: Some(status),
        message: message.into(),
        tracking_id: None,
        attempts: 1,
    }
}

#[test]
fn every_retried_status_is_retried_after_a_backoff() {
    for (status, message) in [
        (408, "HTTP 408 Request Timeout"),
        (423, "HTTP 423 Locked"),
        (500, "HTTP 500 Internal Server Error"),
        (502, "HTTP 502 Bad Gateway"),
        (503, "HTTP 503 Service Unavailable"),
        (504, "HTTP 504 Gateway Timeout"),
    ] {
        let (decision, tries) = first(&answer(status, &[], ""), 5);
        assert_eq!(
            decision,
            Decision {
                run: ForRun::Answered { pause: None },
                line: ForLine::Retry {
                    error: http_error(status, message),
                    wait: Wait::Backoff { retry: 1 },
                },
            },
            "{status}"
        );
        assert_eq!((tries.retries, tries.throttled), (1, 0), "{status}");
    }
}

#[test]
fn timeouts_and_connection_errors_are_retried_and_tell_the_pacer_nothing() {
    for kind in [ErrorKind::Timeout, ErrorKind::Network] {
        let (decision, tries) = first(&failed(kind), 5);
        let error = LineError {
            kind,
            http_status: None,
            message: "connection refused".into(),
            tracking_id: None,
            attempts: 1,
        };
        assert_eq!(
            decision,
            Decision {
                run: ForRun::Nothing,
                line: ForLine::Retry {
                    error,
                    wait: Wait::Backoff { retry: 1 },
                },
            }
        );
        assert_eq!(tries.retries, 1);
    }
}

#[test]
fn other_4xx_and_redirects_give_up_at_once() {
    // 501 and 505 are not in the contract's list either: not retried.
    for status in [
        301, 302, 307, 400, 402, 403, 404, 405, 409, 410, 413, 422, 451, 501, 505,
    ] {
        let (decision, tries) = first(&answer(status, &[("Retry-After", "5")], ""), 5);
        assert_eq!(decision.run, ForRun::Answered { pause: None }, "{status}");
        match decision.line {
            ForLine::GiveUp(e) => {
                assert_eq!((e.kind, e.http_status), (ErrorKind::Http, Some(status)));
                assert_eq!(e.attempts, 1);
            }
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(tries.retries, 0, "{status}");
    }
}

#[test]
fn a_401_stops_the_run_whatever_the_budget() {
    let body = r#"{"message":"Invalid token","trackingId":"T401"}"#;
    let (decision, tries) = first(&answer(401, &[("Retry-After", "1")], body), 5);
    let error = LineError {
        kind: ErrorKind::Auth,
        http_status: Some(401),
        message: "the API refused the token (401): it is missing, wrong or expired; \
                  HTTP 401 Unauthorized: Invalid token"
            .into(),
        tracking_id: Some("T401".into()),
        attempts: 1,
    };
    assert_eq!(
        decision,
        Decision {
            run: ForRun::Unauthorized,
            line: ForLine::GiveUp(error),
        }
    );
    assert_eq!(tries.retries, 0);
}

#[test]
fn a_429_pauses_the_run_and_spends_no_retry() {
    let (decision, tries) = first(&answer(429, &[("Retry-After", "194")], ""), 0);
    assert_eq!(
        decision,
        Decision {
            run: ForRun::Throttled {
                retry_after: Some(Duration::from_secs(194)),
            },
            line: ForLine::Resend,
        }
    );
    assert_eq!((tries.retries, tries.throttled), (0, 1));
}

#[test]
fn the_429_after_the_throttle_budget_gives_up_and_still_pauses_the_run() {
    let refused = answer(429, &[("Retry-After", "3"), ("TrackingID", "HDR_429")], "");
    let mut tries = Tries::new(0);
    for n in 1..=THROTTLE_BUDGET {
        tries.attempts = n;
        let d = decide(&refused, &mut tries, now());
        assert_eq!(d.line, ForLine::Resend, "429 number {n}");
    }
    tries.attempts += 1;
    let d = decide(&refused, &mut tries, now());
    assert_eq!(
        d.run,
        ForRun::Throttled {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    let ForLine::GiveUp(e) = d.line else {
        panic!("{:?}", d.line)
    };
    assert_eq!((e.kind, e.http_status), (ErrorKind::Http, Some(429)));
    assert_eq!(e.attempts, THROTTLE_BUDGET + 1);
    assert_eq!(e.tracking_id.as_deref(), Some("HDR_429"));
}

#[test]
fn the_retry_budget_runs_out_after_max_retries() {
    for attempt in [answer(503, &[], ""), failed(ErrorKind::Timeout)] {
        let mut tries = Tries::new(2);
        for retry in 1..=2 {
            tries.attempts += 1;
            let d = decide(&attempt, &mut tries, now());
            let ForLine::Retry { wait, .. } = d.line else {
                panic!("retry {retry}: {:?}", d.line)
            };
            assert_eq!(wait, Wait::Backoff { retry });
        }
        tries.attempts += 1;
        let d = decide(&attempt, &mut tries, now());
        let ForLine::GiveUp(e) = d.line else {
            panic!("{:?}", d.line)
        };
        assert_eq!(e.attempts, 3);
        assert_eq!(tries.retries, 2);
    }
}

#[test]
fn a_retry_after_on_the_last_allowed_failure_still_pauses_the_run() {
    let (decision, _) = first(&answer(503, &[("Retry-After", "5")], ""), 0);
    assert_eq!(
        decision,
        Decision {
            run: ForRun::Answered {
                pause: Some(Duration::from_secs(5))
            },
            line: ForLine::GiveUp(http_error(503, "HTTP 503 Service Unavailable")),
        }
    );
}

#[test]
fn retry_after_in_seconds_or_as_an_http_date_pauses_the_whole_run() {
    let in_30s = httpdate::fmt_http_date(now() + Duration::from_secs(30));
    let ago_30s = httpdate::fmt_http_date(now() - Duration::from_secs(30));
    for (status, value, pause) in [
        (503, "2", Duration::from_secs(2)),
        (423, in_30s.as_str(), Duration::from_secs(30)),
        (504, ago_30s.as_str(), Duration::ZERO),
    ] {
        let (decision, _) = first(&answer(status, &[("Retry-After", value)], ""), 5);
        assert_eq!(
            decision.run,
            ForRun::Answered { pause: Some(pause) },
            "{status} {value}"
        );
        // The pacer holds the line until the pause ends: no backoff on top of it.
        let ForLine::Retry { wait, .. } = decision.line else {
            panic!("{:?}", decision.line)
        };
        assert_eq!(wait, Wait::RunPause, "{status} {value}");
    }
    let (decision, _) = first(&answer(429, &[("Retry-After", &in_30s)], ""), 5);
    assert_eq!(
        decision.run,
        ForRun::Throttled {
            retry_after: Some(Duration::from_secs(30))
        }
    );
}

#[test]
fn a_missing_or_garbled_retry_after_falls_back_to_backoff() {
    let mut attempts = vec![answer(503, &[], ""), answer(429, &[], "")];
    for garbled in ["rand(30),add(30)", "-5", "", "NaN", "soon"] {
        attempts.push(answer(503, &[("Retry-After", garbled)], ""));
        attempts.push(answer(429, &[("Retry-After", garbled)], ""));
    }
    let mut not_text = HeaderMap::new();
    not_text.insert(RETRY_AFTER, HeaderValue::from_bytes(b"\xff5").unwrap());
    attempts.push(Attempt::Answer {
        status: StatusCode::SERVICE_UNAVAILABLE,
        headers: not_text,
        body: bytes::Bytes::new(),
        too_large: None,
    });
    for attempt in &attempts {
        let (decision, _) = first(attempt, 5);
        match decision {
            Decision {
                run: ForRun::Answered { pause: None },
                line:
                    ForLine::Retry {
                        wait: Wait::Backoff { retry: 1 },
                        ..
                    },
            } => {}
            // The pacer backs off by itself when a 429 names no usable pause.
            Decision {
                run: ForRun::Throttled { retry_after: None },
                line: ForLine::Resend,
            } => {}
            other => panic!("{attempt:?}: {other:?}"),
        }
    }
}

#[test]
fn a_200_is_read_as_returned_and_ignores_retry_after() {
    let (decision, tries) = first(&answer(200, &[("Retry-After", "60")], SETTINGS), 5);
    let settings: serde_json::Value = serde_json::from_str(SETTINGS).unwrap();
    assert_eq!(
        decision,
        Decision {
            run: ForRun::Answered { pause: None },
            line: ForLine::Done(settings),
        }
    );
    assert_eq!(tries.retries, 0);
}

#[test]
fn a_200_without_the_required_fields_is_a_decode_error_and_retried() {
    let body = r#"{"status":"ok","members":[],"trackingId":"BODY_200"}"#;
    let (decision, _) = first(&answer(200, &[], body), 1);
    assert_eq!(decision.run, ForRun::Answered { pause: None });
    let ForLine::Retry { error, wait } = decision.line else {
        panic!("{:?}", decision.line)
    };
    assert_eq!(wait, Wait::Backoff { retry: 1 });
    assert_eq!(
        error,
        LineError {
            kind: ErrorKind::Decode,
            http_status: Some(200),
            message: "HTTP 200 OK: the answer is not PTT settings: required field(s) \
                      allowAutoAnswer, connectionType, accessType missing"
                .into(),
            tracking_id: Some("BODY_200".into()),
            attempts: 1,
        }
    );

    // Out of retries: the decode error is the line's.
    for body in [
        r#"{"allowAutoAnswer": tru"#,
        "",
        "[]",
        r#"{"connectionType":"ONE_WAY"}"#,
    ] {
        let (decision, _) = first(&answer(200, &[], body), 0);
        let ForLine::GiveUp(e) = decision.line else {
            panic!("{body}: {:?}", decision.line)
        };
        assert_eq!(
            (e.kind, e.http_status),
            (ErrorKind::Decode, Some(200)),
            "{body}"
        );
    }
}

#[test]
fn the_tracking_id_comes_from_the_body_else_the_header() {
    let both = r#"{"message":"Virtual line not found","trackingId":"ROUTER_404"}"#;
    let cases = [
        (
            answer(404, &[("TrackingID", "HDR_404")], both),
            Some("ROUTER_404"),
        ),
        (
            answer(404, &[("TrackingID", "HDR_404")], "{}"),
            Some("HDR_404"),
        ),
        (
            answer(403, &[("trackingid", "HDR_403")], "not json"),
            Some("HDR_403"),
        ),
        (answer(404, &[], "{}"), None),
    ];
    for (attempt, expected) in cases {
        let (decision, _) = first(&attempt, 0);
        let ForLine::GiveUp(e) = decision.line else {
            panic!("{:?}", decision.line)
        };
        assert_eq!(e.tracking_id.as_deref(), expected, "{attempt:?}");
    }
}

#[test]
fn retry_after_seconds_date_and_garbage() {
    let now = now();
    assert_eq!(
        parse_retry_after("194", now),
        Some(Duration::from_secs(194))
    );
    assert_eq!(parse_retry_after(" 2 ", now), Some(Duration::from_secs(2)));
    assert_eq!(
        parse_retry_after("1.5", now),
        Some(Duration::from_millis(1500))
    );
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

#[test]
fn backoff_grows_with_the_retry_and_stays_under_its_cap() {
    for _ in 0..100 {
        assert!(backoff(1) <= crate::webex::pace::BACKOFF_BASE);
        assert!(backoff(3) <= crate::webex::pace::BACKOFF_BASE * 4);
        assert!(backoff(40) <= crate::webex::pace::BACKOFF_CAP);
    }
}

#[test]
fn a_stopped_line_says_why_and_what_failed_last() {
    let e = not_audited(
        Some(StopReason::Unauthorized),
        2,
        Some(http_error(503, "HTTP 503")),
    );
    assert_eq!(
        e,
        LineError {
            kind: ErrorKind::NotAudited,
            http_status: None,
            message: "not read: the run stopped after the API refused the token (401); \
                      last error: HTTP 503"
                .into(),
            tracking_id: None,
            attempts: 2,
        }
    );
    let e = not_audited(Some(StopReason::Interrupted), 0, None);
    assert_eq!(
        (e.message.as_str(), e.attempts),
        ("not read: the run was interrupted", 0)
    );
    let e = not_audited(
        Some(StopReason::Stalled {
            after: Duration::from_secs(600),
        }),
        1,
        None,
    );
    assert_eq!(
        e.message,
        "not read: the run stopped: no answer was a success (2xx) for 10m (--max-stall)"
    );
    let e = not_audited(Some(StopReason::Unreachable { attempts: 20 }), 1, None);
    assert!(
        e.message
            .starts_with("not read: the run stopped: the API could not be reached (20 connection"),
        "{}",
        e.message
    );
}

#[test]
fn a_401_is_resent_after_a_renewal_refreshed_once_and_never_twice_in_a_row() {
    use OnUnauthorized::*;
    // Sent with an older token than the run has now: another request refreshed.
    assert_eq!(on_unauthorized(0, 1, true, true), Resend);
    assert_eq!(on_unauthorized(3, 5, false, false), Resend);
    // A fixed token cannot be renewed.
    assert_eq!(
        on_unauthorized(0, 0, false, false),
        Stop(Refusal::FixedToken)
    );
    // The file's token, or a refreshed one that has worked since: refresh.
    assert_eq!(on_unauthorized(0, 0, true, false), Refresh);
    assert_eq!(on_unauthorized(2, 2, true, false), Refresh);
    // A token just refreshed and refused before the API ever accepted it: stop.
    assert_eq!(
        on_unauthorized(1, 1, true, true),
        Stop(Refusal::RefreshedTokenRefused)
    );
}
