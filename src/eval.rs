//! Policy evaluation: one line's settings against a loaded [`PolicySet`]. Pure: no I/O,
//! no clock (the caller passes `today`, which decides whether waivers have expired).

use std::ops::ControlFlow;

use chrono::NaiveDate;
use serde::Serialize;

use crate::model::{Finding, LineIdentity, RuleStatus};
use crate::policy::expr::{self, Expr};
use crate::policy::{PolicySet, Rule};

/// The line being evaluated, as CEL's `line` sees it.
#[derive(Debug, Clone, Copy)]
pub struct LineRef<'a> {
    /// `line.id`.
    pub id: &'a str,
    /// `line.name`, `line.location_id`, `line.location_name`, `line.phone_number`,
    /// `line.extension` (empty strings where unknown).
    pub identity: &'a LineIdentity,
}

/// Evaluates every enabled rule, in rule order, on one line's settings, for a line
/// known only by its ID (`line.name` and the rest are empty strings): see
/// [`evaluate_line`].
pub fn evaluate(
    policies: &PolicySet,
    line_id: &str,
    settings: &serde_json::Value,
    today: NaiveDate,
) -> Vec<Finding> {
    let unknown = LineIdentity::default();
    let line = LineRef {
        id: line_id,
        identity: &unknown,
    };
    evaluate_line(policies, line, settings, today)
}

/// Evaluates every enabled rule, in rule order, on one line's settings.
///
/// CEL sees each top-level field of `settings` under its own name (extra fields too),
/// `members` as `[]` when absent or null, `line` as `{"id", "name", "location_id",
/// "location_name", "phone_number", "extension"}` and `vars`.
/// Settings that are not a JSON object make every rule `Error`.
///
/// A failing rule with a waiver for this line is `Waived` while `today <= expires`;
/// past that it stays `Fail`, still pointing at the waiver so reports can show that it
/// expired. When several waivers match, an unexpired one wins.
///
/// This runs on the calling thread with no time limit: an audit runs rules through
/// its evaluator instead, which bounds each one by `--eval-timeout`.
pub fn evaluate_line(
    policies: &PolicySet,
    line: LineRef<'_>,
    settings: &serde_json::Value,
    today: NaiveDate,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    evaluate_each(policies, line, settings, today, 0, |f| {
        findings.push(f);
        ControlFlow::Continue(())
    });
    findings
}

/// As [`evaluate`], from the `first` enabled rule on (counting from 0 among enabled
/// rules), handing each finding to `each` as soon as it is made, so that a caller
/// watching the clock knows which rule is running; `each` may stop the evaluation.
pub(crate) fn evaluate_each(
    policies: &PolicySet,
    line: LineRef<'_>,
    settings: &serde_json::Value,
    today: NaiveDate,
    first: usize,
    mut each: impl FnMut(Finding) -> ControlFlow<()>,
) {
    let rules = policies.enabled_rules().skip(first);
    let Some(object) = settings.as_object() else {
        let found = match settings {
            serde_json::Value::Null => "null",
            serde_json::Value::Bool(_) => "a boolean",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::Object(_) => "an object",
        };
        let message = format!("the settings are not a JSON object (found {found})");
        for (index, _) in rules {
            if each(error(index, message.clone())).is_break() {
                return;
            }
        }
        return;
    };
    let mut ctx = policies.env.context();
    expr::bind(&mut ctx, object, line.id, line.identity, &policies.vars);
    for (index, rule) in rules {
        if each(evaluate_rule(policies, index, rule, &ctx, line.id, today)).is_break() {
            return;
        }
    }
}

/// One rule on a bound context.
fn evaluate_rule(
    policies: &PolicySet,
    index: usize,
    rule: &Rule,
    ctx: &cel::Context<'_, '_>,
    line_id: &str,
    today: NaiveDate,
) -> Finding {
    let finding = |status, message| Finding {
        rule: index,
        status,
        message,
        waiver: None,
        change: None,
    };
    if let Some(when) = &rule.when {
        match run_bool(when, ctx, "when") {
            Ok(true) => {}
            Ok(false) => return finding(RuleStatus::NotApplicable, None),
            Err(msg) => return finding(RuleStatus::Error, Some(msg)),
        }
    }
    match run_bool(&rule.require, ctx, "require") {
        Ok(true) => finding(RuleStatus::Pass, None),
        Ok(false) => {
            let message = failure_message(rule, ctx);
            match waiver_for(policies, index, line_id, today) {
                Some((w, true)) => Finding {
                    waiver: Some(w),
                    ..finding(RuleStatus::Waived, Some(message))
                },
                Some((w, false)) => Finding {
                    waiver: Some(w),
                    ..finding(RuleStatus::Fail, Some(message))
                },
                None => finding(RuleStatus::Fail, Some(message)),
            }
        }
        Err(msg) => finding(RuleStatus::Error, Some(msg)),
    }
}

/// Rule `index` as `Error` with `message`: never a pass.
pub(crate) fn error(index: usize, message: String) -> Finding {
    Finding {
        rule: index,
        status: RuleStatus::Error,
        message: Some(message),
        waiver: None,
        change: None,
    }
}

/// Every enabled rule as `Error` with `message`: for a line that could not be read,
/// which must never look like a pass.
pub fn unreadable(policies: &PolicySet, message: &str) -> Vec<Finding> {
    policies
        .enabled_rules()
        .map(|(index, _)| error(index, message.to_string()))
        .collect()
}

/// What became of a waiver over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum WaiverState {
    /// It turned at least one `fail` into `waived`.
    Applied,
    /// Its `expires` date has passed; it was ignored.
    Expired,
    /// It is in force but matched no failing rule: maybe the line was fixed, or the
    /// waiver names the wrong line.
    Unused,
}

impl WaiverState {
    /// The report's spelling (`applied`, `expired`, `unused`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The state of every waiver, in [`PolicySet::waivers`] order. `applied[i]` says whether
/// waiver `i` turned some `fail` into `waived` during the run (see [`mark_applied`]);
/// a missing entry counts as `false`. Expiry wins: a waiver past its date is `Expired`.
pub fn waiver_states(policies: &PolicySet, applied: &[bool], today: NaiveDate) -> Vec<WaiverState> {
    policies
        .waivers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if today > w.expires {
                WaiverState::Expired
            } else if applied.get(i).copied().unwrap_or(false) {
                WaiverState::Applied
            } else {
                WaiverState::Unused
            }
        })
        .collect()
}

/// Records in `applied` (one flag per waiver) the waivers that `findings` applied.
/// Indices out of range are ignored.
pub fn mark_applied(applied: &mut [bool], findings: &[Finding]) {
    for f in findings {
        if let (RuleStatus::Waived, Some(w)) = (f.status, f.waiver) {
            if let Some(slot) = applied.get_mut(w) {
                *slot = true;
            }
        }
    }
}

fn run_bool(e: &Expr, ctx: &cel::Context<'_, '_>, key: &str) -> Result<bool, String> {
    match e.run(ctx) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!(
            "`{key}` returned {} instead of a bool",
            expr::with_article(expr::type_name(&other))
        )),
        Err(err) => Err(format!("`{key}` could not be evaluated: {}", explain(&err))),
    }
}

/// CEL's error in the terms of the data: a missing name or key is a field the line's
/// settings lack (the policy itself was checked at load time).
fn explain(err: &cel::ExecutionError) -> String {
    match err {
        cel::ExecutionError::UndeclaredReference(name) => {
            format!("the settings have no field `{name}`")
        }
        cel::ExecutionError::NoSuchKey(key) => format!("no field `{key}` in the data"),
        other => other.to_string(),
    }
}

/// `message_expr` if it gives a string, else `message`, else a default naming the
/// requirement.
fn failure_message(rule: &Rule, ctx: &cel::Context<'_, '_>) -> String {
    if let Some(e) = &rule.message_expr {
        if let Ok(cel::Value::String(s)) = e.run(ctx) {
            return s.as_str().to_string();
        }
    }
    match &rule.message {
        Some(m) => m.clone(),
        None => format!("requirement not met: {}", rule.require.source),
    }
}

/// The waiver for this rule and line: `(index, in force)`. An unexpired one wins over
/// expired ones; among expired ones, the latest to expire.
fn waiver_for(
    policies: &PolicySet,
    rule: usize,
    line_id: &str,
    today: NaiveDate,
) -> Option<(usize, bool)> {
    let rule_id = &policies.rules[rule].id;
    let mut expired: Option<usize> = None;
    for &i in policies.waivers_by_line.get(line_id)? {
        let w = &policies.waivers[i];
        if &w.rule != rule_id {
            continue;
        }
        if today <= w.expires {
            return Some((i, true));
        }
        if expired.is_none_or(|e| policies.waivers[e].expires < w.expires) {
            expired = Some(i);
        }
    }
    expired.map(|i| (i, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load_str;
    use serde_json::json;
    use std::path::Path;

    const POLICY: &str = r#"
[[rule]]
id = "A"
title = "two-way needs an allow list"
severity = "high"
when = "connectionType == 'TWO_WAY'"
require = "accessType == 'ALLOW_MEMBERS'"

[[rule]]
id = "OFF"
title = "disabled"
severity = "low"
require = "false"
enabled = false

[[rule]]
id = "B"
title = "no auto-answer"
severity = "low"
require = "!allowAutoAnswer"

[[waiver]]
rule = "B"
line = "L1"
reason = "lobby"
expires = 2026-06-30
"#;

    fn policies() -> PolicySet {
        match load_str(Path::new("t.toml"), POLICY) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    #[test]
    fn policy_sets_can_be_shared_between_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<PolicySet>();
        shareable::<Finding>();
    }

    #[test]
    fn unreadable_lines_are_never_pass() {
        let p = policies();
        let findings = unreadable(&p, "HTTP 404: not found");
        assert_eq!(findings.len(), 2, "one per enabled rule");
        assert_eq!(findings.iter().map(|f| f.rule).collect::<Vec<_>>(), [0, 2]);
        for f in &findings {
            assert_eq!(f.status, RuleStatus::Error);
            assert_eq!(f.message.as_deref(), Some("HTTP 404: not found"));
            assert_eq!(f.waiver, None);
        }
    }

    #[test]
    fn settings_that_are_not_an_object_error_every_rule() {
        let p = policies();
        for settings in [json!(null), json!([1]), json!("x")] {
            let findings = evaluate(&p, "L1", &settings, day("2026-01-01"));
            assert_eq!(findings.len(), 2);
            for f in &findings {
                assert_eq!(f.status, RuleStatus::Error, "{settings}");
                assert!(
                    f.message
                        .as_deref()
                        .is_some_and(|m| m.contains("not a JSON object")),
                    "{:?}",
                    f.message
                );
            }
        }
    }

    #[test]
    fn waivers_apply_until_their_last_day_then_expire() {
        let p = policies();
        let s = json!({"allowAutoAnswer": true, "connectionType": "ONE_WAY", "accessType": "BLOCK_MEMBERS"});
        let on_last_day = evaluate(&p, "L1", &s, day("2026-06-30"));
        assert_eq!(on_last_day[0].status, RuleStatus::NotApplicable);
        assert_eq!(on_last_day[1].status, RuleStatus::Waived);
        assert_eq!(on_last_day[1].waiver, Some(0));
        let after = evaluate(&p, "L1", &s, day("2026-07-01"));
        assert_eq!(after[1].status, RuleStatus::Fail);
        assert_eq!(after[1].waiver, Some(0));
        let other_line = evaluate(&p, "L2", &s, day("2026-06-30"));
        assert_eq!(other_line[1].status, RuleStatus::Fail);
        assert_eq!(other_line[1].waiver, None);

        let mut applied = vec![false; p.waivers.len()];
        mark_applied(&mut applied, &after);
        assert_eq!(applied, [false], "an expired waiver applies to nothing");
        mark_applied(&mut applied, &on_last_day);
        assert_eq!(applied, [true]);
        assert_eq!(
            waiver_states(&p, &applied, day("2026-06-30")),
            [WaiverState::Applied]
        );
        assert_eq!(
            waiver_states(&p, &applied, day("2026-07-01")),
            [WaiverState::Expired]
        );
        assert_eq!(
            waiver_states(&p, &[], day("2026-06-30")),
            [WaiverState::Unused]
        );
    }
}
