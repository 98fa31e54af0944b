//! Answers from hostile or broken servers (too large, redirects) and the run-wide
//! stop rules ([`Liveness`]), one attempt at a time, no server.

use super::tests::{answer, failed, first, http_error, refused, too_large, SETTINGS};
use super::*;

#[test]
fn a_body_over_max_body_is_a_decode_error_whatever_the_status_says_about_retrying() {
    let detail = "the answer body is larger than --max-body (1024 bytes): not read";
    // A 200: retried like any answer that is not settings.
    let (decision, _) = first(&too_large(200, &[("TrackingID", "HDR_BIG")], 1024), 1);
    assert_eq!(decision.run, ForRun::Answered { pause: None });
    let ForLine::Retry { error, .. } = decision.line else {
        panic!("{:?}", decision.line)
    };
    assert_eq!(
        error,
        LineError {
            kind: ErrorKind::Decode,
            http_status: Some(200),
            message: format!("HTTP 200 OK: {detail}"),
            tracking_id: Some("HDR_BIG".into()),
            attempts: 1,
        }
    );
    // A 503 is still retried and a 404 is still not; both say why they are `decode`.
    let (decision, _) = first(&too_large(503, &[], 1024), 1);
    let ForLine::Retry { error, .. } = decision.line else {
        panic!("{:?}", decision.line)
    };
    assert_eq!(
        (error.kind, error.http_status),
        (ErrorKind::Decode, Some(503))
    );
    let (decision, _) = first(&too_large(404, &[], 1024), 1);
    let ForLine::GiveUp(error) = decision.line else {
        panic!("{:?}", decision.line)
    };
    assert_eq!(error.kind, ErrorKind::Decode);
    assert!(error.message.ends_with(detail), "{}", error.message);
    // A 401 still stops the run, and a 429 still throttles it.
    assert_eq!(
        first(&too_large(401, &[], 1024), 1).0.run,
        ForRun::Unauthorized
    );
    assert_eq!(
        first(&too_large(429, &[("Retry-After", "2")], 1024), 1).0,
        Decision {
            run: ForRun::Throttled {
                retry_after: Some(Duration::from_secs(2))
            },
            line: ForLine::Resend,
        }
    );
}

#[test]
fn a_redirect_is_an_http_error_that_names_where_it_pointed() {
    let (decision, _) = first(&answer(302, &[("Location", "http://127.0.0.1:9/x")], ""), 5);
    let ForLine::GiveUp(e) = decision.line else {
        panic!("{:?}", decision.line)
    };
    assert_eq!(
        e,
        http_error(
            302,
            "HTTP 302 Found: redirect not followed (Location: http://127.0.0.1:9/x)"
        )
    );
    let long = format!("http://x/{}", "a".repeat(1000));
    let (decision, _) = first(&answer(301, &[("Location", &long)], ""), 5);
    let ForLine::GiveUp(e) = decision.line else {
        panic!("{:?}", decision.line)
    };
    assert!(e.message.len() < 300, "{}", e.message);
}

#[test]
fn connection_failures_in_a_row_stop_a_run_that_never_had_a_2xx() {
    let t0 = Instant::now();
    let mut live = Liveness::new(t0, Duration::from_secs(600));
    for _ in 1..UNREACHABLE_AFTER {
        assert_eq!(live.record(&refused(), t0), None);
    }
    assert_eq!(
        live.record(&refused(), t0),
        Some(StopReason::Unreachable {
            attempts: UNREACHABLE_AFTER
        })
    );

    // Any answer, or a failure after connecting, starts the count again.
    let mut live = Liveness::new(t0, Duration::from_secs(600));
    for breaker in [answer(503, &[], ""), failed(ErrorKind::Timeout)] {
        for _ in 1..UNREACHABLE_AFTER {
            assert_eq!(live.record(&refused(), t0), None);
        }
        assert_eq!(live.record(&breaker, t0), None);
    }
    assert_eq!(live.record(&refused(), t0), None);

    // A run that has had a 2xx waits for --max-stall instead: the server was there.
    let mut live = Liveness::new(t0, Duration::from_secs(600));
    live.record(&answer(200, &[], SETTINGS), t0);
    for _ in 0..UNREACHABLE_AFTER * 10 {
        assert_eq!(live.record(&refused(), t0), None);
    }
}

#[test]
fn the_run_stalls_when_no_answer_was_a_2xx_for_max_stall() {
    let t0 = Instant::now();
    let stall = Duration::from_secs(60);
    let mut live = Liveness::new(t0, stall);
    assert_eq!(live.stall_deadline(), t0 + stall);
    assert_eq!(live.stalled(t0 + stall - Duration::from_millis(1)), None);
    assert_eq!(
        live.stalled(t0 + stall),
        Some(StopReason::Stalled { after: stall })
    );
    // Answers that are not 2xx (429s, 503s, 404s) are no progress; a 2xx is, even one
    // whose body is not settings.
    let t1 = t0 + Duration::from_secs(30);
    for other in [
        answer(429, &[], ""),
        answer(503, &[], ""),
        answer(404, &[], ""),
        refused(),
    ] {
        live.record(&other, t1);
    }
    assert_eq!(live.stall_deadline(), t0 + stall);
    live.record(&answer(200, &[], "not settings"), t1);
    assert_eq!(live.stall_deadline(), t1 + stall);
    // An answer recorded late (a slow line) never moves the clock back.
    live.record(&answer(204, &[], ""), t0);
    assert_eq!(live.stall_deadline(), t1 + stall);
}

#[test]
fn the_first_lines_all_refused_with_403_stop_the_run() {
    let t0 = Instant::now();
    let mut live = Liveness::new(t0, Duration::from_secs(600));
    for _ in 1..FORBIDDEN_AFTER {
        assert_eq!(live.record(&answer(403, &[], ""), t0), None);
        // Busy answers and failures in between are no line's answer: they neither
        // count nor end the rule.
        for other in [answer(429, &[], ""), answer(503, &[], ""), refused()] {
            assert_eq!(live.record(&other, t0), None);
        }
    }
    assert_eq!(
        live.record(&answer(403, &[], ""), t0),
        Some(StopReason::Forbidden {
            lines: FORBIDDEN_AFTER
        })
    );
    // The line that tipped it keeps its own 403, like those before it.
    let (decision, _) = first(&answer(403, &[], ""), 5);
    assert_eq!(
        decision.line,
        ForLine::GiveUp(http_error(403, "HTTP 403 Forbidden"))
    );
}

#[test]
fn any_line_read_or_answered_otherwise_ends_the_403_rule_for_the_run() {
    let t0 = Instant::now();
    // A 200 first (even one whose body is not settings), a 404 among the 403s, a
    // redirect: not every line is refused, so 403s are the lines' own business.
    for breaker in [
        answer(200, &[], SETTINGS),
        answer(200, &[], "not settings"),
        answer(404, &[], ""),
        answer(302, &[], ""),
    ] {
        for before in [0, 3, FORBIDDEN_AFTER - 1] {
            let mut live = Liveness::new(t0, Duration::from_secs(600));
            for _ in 0..before {
                assert_eq!(live.record(&answer(403, &[], ""), t0), None);
            }
            assert_eq!(live.record(&breaker, t0), None);
            for _ in 0..FORBIDDEN_AFTER * 10 {
                assert_eq!(live.record(&answer(403, &[], ""), t0), None);
            }
        }
    }
}

#[test]
fn lines_the_403_rule_left_unread_say_why() {
    let e = not_audited(Some(StopReason::Forbidden { lines: 10 }), 0, None);
    assert_eq!(
        e.message,
        "not read: the run stopped: the API refused each of the first 10 lines it answered \
         (403 Forbidden) and read none"
    );
    assert_eq!(e.kind, ErrorKind::NotAudited);
}
