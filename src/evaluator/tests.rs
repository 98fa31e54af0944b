use super::*;
use crate::model::RuleStatus;
use crate::policy::load_str;
use crate::webex::StopReason;
use serde_json::json;
use std::path::Path;

/// Quadratic in the members: about 1.5 s on 600 members in a debug build, so well
/// past [`TIMEOUT`], yet it ends, so a stuck thread comes back during a test.
const SLOW: &str = "members.all(a, members.all(b, b.id != ''))";
const TIMEOUT: Duration = Duration::from_millis(150);
/// A body size that sends the line to the pool whatever the rules.
const ON_THE_POOL: usize = usize::MAX;

fn policies(rules: &[(&str, &str)]) -> Arc<PolicySet> {
    let text: String = rules
        .iter()
        .map(|(id, require)| {
            format!(
                "[[rule]]\nid = \"{id}\"\ntitle = \"t\"\nseverity = \"low\"\nrequire = \"{require}\"\n"
            )
        })
        .collect();
    Arc::new(load_str(Path::new("t.toml"), &text).unwrap_or_else(|e| panic!("{e}")))
}

fn line(members: usize) -> Arc<serde_json::Value> {
    let members: Vec<_> = (0..members)
        .map(|i| json!({"id": format!("M{i}")}))
        .collect();
    Arc::new(
        json!({"allowAutoAnswer": false, "connectionType": "ONE_WAY",
                    "accessType": "ALLOW_MEMBERS", "members": members}),
    )
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date")
}

fn evaluator(p: &Arc<PolicySet>, timeout: Duration, workers: usize, max_stuck: usize) -> Evaluator {
    Evaluator::with_size(p.clone(), today(), timeout, PoolSize { workers, max_stuck })
}

fn statuses(findings: &[Finding]) -> Vec<(usize, RuleStatus)> {
    findings.iter().map(|f| (f.rule, f.status)).collect()
}

fn message(f: &Finding) -> &str {
    f.message.as_deref().unwrap_or("")
}

#[tokio::test]
async fn a_line_is_evaluated_as_eval_evaluate_does() {
    let p = policies(&[
        ("A", "!allowAutoAnswer"),
        ("B", "accessType == 'BLOCK_MEMBERS'"),
        ("C", "size(members) == 2"),
    ]);
    let ev = evaluator(&p, Duration::from_secs(60), 2, 1);
    for settings in [line(2), line(0), Arc::new(json!([1]))] {
        let got = ev
            .evaluate(
                "L1",
                &LineIdentity::unknown(),
                &settings,
                ON_THE_POOL,
                &Stop::default(),
            )
            .await;
        let want = eval::evaluate(&p, "L1", &settings, today());
        let got = got.expect("no panic");
        assert_eq!(statuses(&got), statuses(&want), "{settings}");
        let messages = |f: &[Finding]| f.iter().map(|f| f.message.clone()).collect::<Vec<_>>();
        assert_eq!(messages(&got), messages(&want));
    }
    // Evaluation is over: the settings came back to their only holder.
    let settings = line(1);
    ev.evaluate(
        "L1",
        &LineIdentity::unknown(),
        &settings,
        ON_THE_POOL,
        &Stop::default(),
    )
    .await
    .expect("no panic");
    assert_eq!(Arc::strong_count(&settings), 1);
}

#[tokio::test]
async fn a_rule_past_the_timeout_is_error_and_the_rest_of_the_line_still_runs() {
    let p = policies(&[("A", "true"), ("SLOW", SLOW), ("B", "size(members) > 0")]);
    let ev = evaluator(&p, TIMEOUT, 1, 1);
    let findings = ev
        .evaluate(
            "L1",
            &LineIdentity::unknown(),
            &line(600),
            ON_THE_POOL,
            &Stop::default(),
        )
        .await
        .expect("no panic");
    assert_eq!(
        statuses(&findings),
        [
            (0, RuleStatus::Pass),
            (1, RuleStatus::Error),
            (2, RuleStatus::Pass)
        ],
        "{findings:?}"
    );
    assert_eq!(
        message(&findings[1]),
        "evaluation took too long (over 150ms)"
    );
    // The stuck thread was replaced (that is how B ran), and within bounds.
    let c = lock(&ev.pool.shared.counts);
    assert!(
        c.live <= 2 && c.started == 2,
        "{} live, {} started",
        c.live,
        c.started
    );
}

#[tokio::test]
async fn with_every_thread_stuck_evaluations_error_instead_of_queueing_forever() {
    let p = policies(&[("SLOW", SLOW), ("B", "size(members) > 0")]);
    // One thread and no replacement: the slow rule leaves none free.
    let ev = evaluator(&p, TIMEOUT, 1, 0);
    let stop = Stop::default();
    let findings = ev
        .evaluate(
            "L1",
            &LineIdentity::unknown(),
            &line(600),
            ON_THE_POOL,
            &stop,
        )
        .await
        .expect("no panic");
    assert_eq!(
        statuses(&findings),
        [(0, RuleStatus::Error), (1, RuleStatus::Error)]
    );
    assert_eq!(
        message(&findings[0]),
        "evaluation took too long (over 150ms)"
    );
    assert!(
        message(&findings[1]).starts_with("evaluation took too long (over 150ms waiting"),
        "{findings:?}"
    );
    let small = ev
        .evaluate("L2", &LineIdentity::unknown(), &line(1), ON_THE_POOL, &stop)
        .await
        .expect("no panic");
    assert_eq!(
        statuses(&small),
        [(0, RuleStatus::Error), (1, RuleStatus::Error)]
    );

    // Once the slow rule ends, its thread serves again. (The bound only keeps a broken
    // pool from hanging the test.)
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let again = ev
            .evaluate("L2", &LineIdentity::unknown(), &line(1), ON_THE_POOL, &stop)
            .await
            .expect("no panic");
        if statuses(&again) == [(0, RuleStatus::Pass), (1, RuleStatus::Pass)] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pool never recovered: {again:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_interrupt_cuts_a_running_rule_whatever_the_timeout() {
    let p = policies(&[("SLOW", SLOW), ("B", "true")]);
    let ev = evaluator(&p, Duration::from_secs(3600), 1, 1);
    let stop = Stop::default();
    let interrupt = {
        let stop = stop.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            stop.trigger(StopReason::Interrupted);
        }
    };
    let big = line(600);
    let unknown = LineIdentity::unknown();
    let (findings, ()) = tokio::join!(
        ev.evaluate("L1", &unknown, &big, ON_THE_POOL, &stop),
        interrupt
    );
    let findings = findings.expect("no panic");
    assert_eq!(
        statuses(&findings),
        [(0, RuleStatus::Error), (1, RuleStatus::Error)]
    );
    assert_eq!(
        message(&findings[0]),
        "not evaluated: the run was interrupted while this rule ran"
    );
    assert_eq!(
        message(&findings[1]),
        "not evaluated: the run was interrupted"
    );

    // After the interrupt a quick line is still evaluated in full.
    let quick = ev
        .evaluate("L2", &LineIdentity::unknown(), &line(1), ON_THE_POOL, &stop)
        .await
        .expect("no panic");
    assert_eq!(
        statuses(&quick),
        [(0, RuleStatus::Pass), (1, RuleStatus::Pass)]
    );
}

#[tokio::test]
async fn small_answers_under_linear_rules_are_evaluated_on_the_calling_thread() {
    let p = policies(&[("A", "!allowAutoAnswer"), ("C", "size(members) == 2")]);
    assert!(p.linear);
    // No thread at all: only the calling thread can give these results.
    let ev = evaluator(&p, TIMEOUT, 0, 0);
    let settings = line(2);
    let unknown = LineIdentity::unknown();
    let got = ev
        .evaluate("L1", &unknown, &settings, 500, &Stop::default())
        .await
        .expect("no panic");
    let want = eval::evaluate(&p, "L1", &settings, today());
    assert_eq!(statuses(&got), statuses(&want));
    assert!(got.iter().all(|f| f.status == RuleStatus::Pass));
    // A larger answer goes to the pool, which has no thread here.
    let got = ev
        .evaluate(
            "L1",
            &unknown,
            &settings,
            INLINE_MAX_BODY + 1,
            &Stop::default(),
        )
        .await
        .expect("no panic");
    assert!(got.iter().all(|f| f.status == RuleStatus::Error), "{got:?}");
}

#[tokio::test]
async fn a_rule_whose_cost_grows_with_the_square_of_the_members_always_goes_to_the_pool() {
    let p = policies(&[("A", "!allowAutoAnswer"), ("SLOW", SLOW)]);
    assert!(!p.linear);
    let ev = evaluator(&p, TIMEOUT, 0, 0);
    let got = ev
        .evaluate(
            "L1",
            &LineIdentity::unknown(),
            &line(2),
            500,
            &Stop::default(),
        )
        .await
        .expect("no panic");
    assert!(got.iter().all(|f| f.status == RuleStatus::Error), "{got:?}");
}

#[tokio::test]
async fn a_rule_over_the_timeout_on_the_calling_thread_is_error_and_later_lines_use_the_pool() {
    let p = policies(&[("A", "members.all(m, m.id != '')"), ("B", "true")]);
    // No evaluation takes under a nanosecond.
    let ev = evaluator(&p, Duration::from_nanos(1), 1, 1);
    assert!(ev.inline.load(Ordering::Relaxed));
    let got = ev
        .evaluate(
            "L1",
            &LineIdentity::unknown(),
            &line(50),
            900,
            &Stop::default(),
        )
        .await
        .expect("no panic");
    assert_eq!(
        statuses(&got),
        [(0, RuleStatus::Error), (1, RuleStatus::Error)]
    );
    assert!(
        message(&got[0]).starts_with("evaluation took too long"),
        "{got:?}"
    );
    assert!(!ev.inline.load(Ordering::Relaxed));
}

#[test]
fn panics_are_named_in_the_message() {
    let payload: Box<dyn std::any::Any + Send> = Box::new("boom");
    assert_eq!(panic_message(payload.as_ref()), "evaluation panicked: boom");
    let payload: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
    assert_eq!(panic_message(payload.as_ref()), "evaluation panicked: bang");
}
