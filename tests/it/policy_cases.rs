//! Snapshot cases for policy evaluation, cargo-deny style: each folder under
//! `tests/policy_cases/` holds policies and line settings, and the accepted result
//! (`evaluation.snap`). See `tests/policy_cases/README.md`.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ptt_audit::eval::{self, WaiverState};
use ptt_audit::model::{LineIdentity, LineReport, RuleStatus};
use ptt_audit::policy::{self, PolicySet};
use serde_json::{json, Value};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).unwrap_or_default()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policy_cases")
}

/// The result of one case, as the snapshot shows it.
fn run_case(dir: &Path) -> Value {
    let policy_file = dir.join("policy.toml");
    let loaded = if policy_file.exists() {
        policy::load(&policy_file)
    } else {
        policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
    };
    let set = match loaded {
        Ok(set) => set,
        Err(errors) => {
            // Paths relative to the case folder, so the snapshot does not depend on
            // where the repository is checked out.
            let lines: Vec<String> = errors
                .diagnostics
                .iter()
                .map(|d| {
                    let mut d = d.clone();
                    d.file = d.file.strip_prefix(dir).unwrap_or(&d.file).to_path_buf();
                    d.message = d.message.replace(&format!("{}/", dir.display()), "");
                    d.to_string()
                })
                .collect();
            return json!({ "load_errors": lines });
        }
    };
    let text = std::fs::read_to_string(dir.join("settings.json"))
        .unwrap_or_else(|e| panic!("{}: settings.json: {e}", dir.display()));
    let lines: Vec<Value> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: settings.json: {e}", dir.display()));
    evaluate_lines(&set, &lines)
}

fn evaluate_lines(set: &PolicySet, lines: &[Value]) -> Value {
    let mut applied = vec![false; set.waivers.len()];
    let mut out = Vec::new();
    for line in lines {
        let id = line["id"]
            .as_str()
            .unwrap_or_else(|| panic!("line without id: {line}"));
        let identity: LineIdentity = match line.get("line") {
            Some(v) => serde_json::from_value(v.clone())
                .unwrap_or_else(|e| panic!("line {id}: `line` is not an identity: {e}")),
            None => LineIdentity::default(),
        };
        let findings = match line.get("unreadable").and_then(Value::as_str) {
            Some(why) => eval::unreadable(set, why),
            None => {
                let line_ref = eval::LineRef {
                    id,
                    identity: &identity,
                };
                eval::evaluate_line(set, line_ref, &line["settings"], today())
            }
        };
        eval::mark_applied(&mut applied, &findings);
        let results: Vec<Value> = findings
            .iter()
            .map(|f| {
                json!({
                    "rule": set.rules[f.rule].id,
                    "status": f.status,
                    "message": f.message,
                    "waiver": f.waiver.map(|w| json!({
                        "index": w,
                        "reason": set.waivers[w].reason,
                        "expires": set.waivers[w].expires.to_string(),
                    })),
                })
            })
            .collect();
        out.push(json!({
            "id": id,
            "line_status": LineReport::status_from_findings(&findings),
            "results": results,
        }));
    }
    let states = eval::waiver_states(set, &applied, today());
    let waivers: Vec<Value> = set
        .waivers
        .iter()
        .zip(&states)
        .map(|(w, s)| {
            json!({
                "rule": w.rule,
                "line": w.line,
                "expires": w.expires.to_string(),
                "state": s,
            })
        })
        .collect();
    json!({
        "today": today().to_string(),
        "lines": out,
        "waivers": waivers,
    })
}

#[test]
fn policy_cases() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root())
        .expect("tests/policy_cases")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "cases: {cases:?}");
    for dir in cases {
        let value = run_case(&dir);
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(&dir);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(format!(
            "case {}",
            dir.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        settings.bind(|| insta::assert_json_snapshot!("evaluation", value));
    }
}

/// The snapshots above must show every status and waiver state at least once, so a
/// case edited away cannot silently drop coverage.
#[test]
fn cases_cover_every_status_and_waiver_state() {
    let mut statuses = Vec::new();
    let mut states = Vec::new();
    for name in ["baseline", "statuses", "waivers"] {
        let value = run_case(&root().join(name));
        for line in value["lines"].as_array().into_iter().flatten() {
            for r in line["results"].as_array().into_iter().flatten() {
                statuses.push(r["status"].clone());
            }
        }
        for w in value["waivers"].as_array().into_iter().flatten() {
            states.push(w["state"].clone());
        }
    }
    for s in [
        RuleStatus::Pass,
        RuleStatus::Fail,
        RuleStatus::Waived,
        RuleStatus::NotApplicable,
        RuleStatus::Error,
    ] {
        assert!(statuses.contains(&json!(s)), "no case shows {s:?}");
    }
    for s in [
        WaiverState::Applied,
        WaiverState::Expired,
        WaiverState::Unused,
    ] {
        assert!(states.contains(&json!(s)), "no case shows {s:?}");
    }
}

/// The baseline's domain rule once `approved_domains` is filled in: case-insensitive,
/// subdomains count, look-alike domains do not, members without e-mail are fine.
#[test]
fn baseline_member_domain_rule_with_approved_domains() {
    let text = policy::BASELINE.replace(
        "approved_domains = []",
        "approved_domains = [\"Example.com\"]",
    );
    assert_ne!(
        text,
        policy::BASELINE,
        "the baseline sets approved_domains = []"
    );
    let set = policy::load_str(Path::new("baseline.toml"), &text).expect("loads");
    let rule = set
        .rules
        .iter()
        .position(|r| r.id == "PTT-MEMBER-DOMAIN")
        .expect("rule present");
    let check = |members: Value| {
        let settings = json!({"allowAutoAnswer": false, "connectionType": "ONE_WAY",
                              "accessType": "ALLOW_MEMBERS", "members": members});
        let findings = eval::evaluate(&set, "L1", &settings, today());
        let f = findings.iter().find(|f| f.rule == rule).cloned();
        f.map(|f| (f.status, f.message))
    };
    assert_eq!(
        check(json!([
            {"id": "a", "type": "PEOPLE", "email": "ALICE@EXAMPLE.COM"},
            {"id": "b", "type": "PEOPLE", "email": "bob@eu.example.com"},
            {"id": "c", "type": "PEOPLE"}
        ])),
        Some((RuleStatus::Pass, None))
    );
    assert_eq!(
        check(json!([
            {"id": "a", "type": "PEOPLE", "email": "alice@example.com"},
            {"id": "m", "type": "PEOPLE", "email": "mallory@notexample.com"},
            {"id": "e", "type": "PEOPLE", "email": "eve@example.com.evil.io"}
        ])),
        Some((
            RuleStatus::Fail,
            Some(
                "members outside the approved domains: mallory@notexample.com, eve@example.com.evil.io"
                    .to_string()
            )
        ))
    );
}
