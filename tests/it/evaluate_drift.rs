//! `evaluate` (saved settings against new policies, offline) and drift (`--previous`:
//! lines added and removed, waivers about to expire), through the binary against the
//! simulator, as users run them (`CONTRACT.md` §9).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use calamine::{open_workbook, Data, Reader, Xlsx};
use serde_json::Value;

use crate::common::{names_in, read_csv_maps, start_sim, write};
use crate::html_dom::Dom;

use ptt_audit::simulator::SimConfig;

const BASELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn cli(args: &[&str]) -> Run {
    let output = Command::cargo_bin("ptt-audit")
        .unwrap()
        .env("WEBEX_TOKEN", "any-token")
        .env_remove("WEBEX_BASE_URL")
        .env_remove("WEBEX_ORG_ID")
        .args(args)
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into(),
        stderr: String::from_utf8_lossy(&output.stderr).into(),
    }
}

/// `ptt-audit audit --rate 0` of `ids` against `base_url` into `out`.
fn audit(base_url: &str, ids: &[&str], out: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["audit", "--rate", "0", "--base-url", base_url];
    for id in ids {
        args.extend(["--line", id]);
    }
    let out = out.to_str().unwrap();
    args.extend(["--out", out]);
    args.extend(extra);
    cli(&args)
}

/// The only report with `suffix` in `dir`.
fn report(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = names_in(dir)
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .map(|n| dir.join(n))
        .collect();
    assert_eq!(found.len(), 1, "{suffix} in {:?}", names_in(dir));
    found[0].clone()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn line<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == id)
        .unwrap_or_else(|| panic!("line {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_reuses_the_saved_settings_with_no_request() {
    let sim = start_sim(SimConfig {
        lines: 6,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let mut ids: Vec<&str> = sim.ids.iter().map(String::as_str).collect();
    ids.push("bad id");
    let before = audit(&sim.base_url, &ids, &first, &["--policies", BASELINE]);
    assert_eq!(
        before.code, 3,
        "an invalid ID: incomplete\n{}",
        before.stderr
    );
    let source_path = report(&first, ".json");
    let source = json(&source_path);
    let requests = sim.stats().requests;
    assert!(requests >= 6);

    let policy = write(
        dir.path(),
        "new.toml",
        "[[rule]]\nid = \"EVAL-ONE-WAY\"\ntitle = \"one-way only\"\nseverity = \"high\"\n\
         require = \"connectionType == 'ONE_WAY'\"\nmessage_expr = \"'is ' + connectionType\"\n",
    );
    let second = dir.path().join("second");
    let from = source_path.to_str().unwrap();
    let args = [
        "evaluate",
        "--from",
        from,
        "--policies",
        policy.to_str().unwrap(),
        "--out",
        second.to_str().unwrap(),
        "--format",
        "all",
    ];
    let eval = cli(&args);
    assert_eq!(sim.stats().requests, requests, "evaluate sent no request");
    // Still incomplete (the invalid ID stays invalid), so 3 wins over 1.
    assert_eq!(eval.code, 3, "{}\n{}", eval.stdout, eval.stderr);
    let mut names = names_in(&second);
    names
        .iter_mut()
        .for_each(|n| *n = n.split_once('Z').map_or(n.clone(), |(_, s)| s.to_string()));
    names.sort();
    assert_eq!(
        names,
        ["-findings.csv", "-lines.csv", ".html", ".json", ".xlsx"]
    );

    let new = json(&report(&second, ".json"));
    assert_ne!(new["run"]["id"], source["run"]["id"], "a new run");
    assert_eq!(new["run"]["source_report"]["path"], from);
    assert_eq!(new["run"]["source_report"]["run_id"], source["run"]["id"]);
    assert_eq!(
        new["run"]["source_report"]["started_at"],
        source["run"]["started_at"]
    );
    assert_eq!(new["run"]["base_url"], source["run"]["base_url"]);
    assert_eq!(
        new["rules"].as_array().map(Vec::len),
        Some(1),
        "the new policy's rules"
    );
    for id in sim.ids.iter() {
        let (old, now) = (line(&source, id), line(&new, id));
        assert_eq!(now["read_at"], old["read_at"], "read_at kept");
        assert_eq!(now["settings"], old["settings"], "settings kept");
        let one_way = old["settings"]["connectionType"] == "ONE_WAY";
        let results = now["results"].as_array().unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0]["rule_id"], "EVAL-ONE-WAY");
        assert_eq!(
            results[0]["status"],
            if one_way { "pass" } else { "fail" },
            "{id}"
        );
        assert_eq!(
            now["status"],
            if one_way {
                "compliant"
            } else {
                "non_compliant"
            }
        );
    }
    let invalid = line(&new, "bad id");
    assert_eq!(invalid["status"], "invalid");
    assert_eq!(
        invalid["error"],
        line(&source, "bad id")["error"],
        "unread lines stay as they were"
    );
    assert_eq!(invalid["results"][0]["status"], "error", "never a pass");
    assert!(eval.stdout.contains("EVAL-ONE-WAY") || new["summary"]["results"]["fail"] == 0);

    // With the simulator gone, the same re-evaluation works the same.
    sim.shutdown().await;
    let third = dir.path().join("third");
    let again = cli(&[
        "evaluate",
        "--from",
        from,
        "--policies",
        policy.to_str().unwrap(),
        "--out",
        third.to_str().unwrap(),
        "--fail-on",
        "never",
    ]);
    assert_eq!(again.code, 3, "{}", again.stderr);
    let redo = json(&report(&third, ".json"));
    assert_eq!(redo["summary"], new["summary"]);
}

#[test]
fn evaluate_refuses_what_is_not_a_usable_report_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"schema_version": 1, "tool": {"name": "ptt-audit", "version": "0.1.0"},
      "run": {"id": "R", "started_at": "2026-11-29T03:20:56Z", "finished_at": "2026-11-29T03:21:00Z",
              "org_id": null, "base_url": "http://127.0.0.1:9/v1", "complete": true, "exit_code": 0,
              "policies": []},
      "summary": {}, "rules": [], "waivers": [],
      "lines": [{"id": "L1", "status": "compliant", "read_at": "2026-11-29T03:20:57Z",
                 "settings": {"allowAutoAnswer": false, "connectionType": "ONE_WAY", "accessType": "ALLOW_MEMBERS"},
                 "results": [], "error": null, "name": null}]}"#;
    let cases = [
        ("truncated.json", &good[..good.len() - 40], "truncated"),
        (
            "other.json",
            r#"{"hello": "world"}"#,
            "not a ptt-audit JSON report",
        ),
        (
            "old.json",
            &good.replace("\"schema_version\": 1", "\"schema_version\": 0"),
            "schema_version 0 is not supported",
        ),
        ("text.json", "lines,status\n", "not a ptt-audit JSON report"),
    ];
    for (name, text, want) in cases {
        let path = write(dir.path(), name, text);
        let out = dir.path().join(format!("out-{name}"));
        let run = cli(&[
            "evaluate",
            "--from",
            path.to_str().unwrap(),
            "--policies",
            BASELINE,
            "--out",
            out.to_str().unwrap(),
            "--format",
            "all",
        ]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(name) && run.stderr.contains(want),
            "{name}: {}",
            run.stderr
        );
        assert!(
            !out.exists() || names_in(&out).is_empty(),
            "{name}: nothing written"
        );
    }
    let missing = dir.path().join("missing.json");
    let run = cli(&[
        "evaluate",
        "--from",
        missing.to_str().unwrap(),
        "--policies",
        BASELINE,
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("missing.json"), "{}", run.stderr);

    // The good one works, as a control.
    let path = write(dir.path(), "good.json", good);
    let out = dir.path().join("out-good");
    let run = cli(&[
        "evaluate",
        "--from",
        path.to_str().unwrap(),
        "--policies",
        BASELINE,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn an_unknown_format_lists_the_valid_ones() {
    let run = cli(&["audit", "--line", "L1", "--format", "json,pdf"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("\"pdf\"") && run.stderr.contains("json, csv, xlsx, html or all"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_names_the_line_removed_the_line_added_and_the_waiver_expiring() {
    let sim = start_sim(SimConfig {
        lines: 4,
        ..SimConfig::default()
    })
    .await;
    let ids: Vec<&str> = sim.ids.iter().map(String::as_str).collect();
    let (a, b, c, d) = (ids[0], ids[1], ids[2], ids[3]);
    let today = chrono::Utc::now().date_naive();
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "p.toml",
        &format!(
            "[[rule]]\nid = \"ALWAYS\"\ntitle = \"always fails\"\nseverity = \"low\"\nrequire = \"false\"\n\
             [[waiver]]\nrule = \"ALWAYS\"\nline = \"{b}\"\nreason = \"soon over\"\nexpires = {}\n\
             [[waiver]]\nrule = \"ALWAYS\"\nline = \"{c}\"\nreason = \"far off\"\nexpires = {}\n",
            today + chrono::Days::new(3),
            today + chrono::Days::new(30),
        ),
    );
    let policies = ["--policies", policy.to_str().unwrap()];
    let first = dir.path().join("first");
    let before = audit(&sim.base_url, &[a, b, c], &first, &policies);
    assert_eq!(before.code, 1, "{}", before.stderr);
    let previous = report(&first, ".json");

    let second = dir.path().join("second");
    let mut extra = policies.to_vec();
    extra.extend([
        "--previous",
        previous.to_str().unwrap(),
        "--format",
        "all",
        "--warn-expiring",
        "5",
    ]);
    let after = audit(&sim.base_url, &[b, c, d], &second, &extra);
    assert_eq!(after.code, 1, "{}", after.stderr);

    let doc = json(&report(&second, ".json"));
    let changes = &doc["summary"]["changes"];
    assert_eq!(
        (
            changes["lines_added"].as_u64(),
            changes["lines_removed"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(changes["new"], 1, "d's one result");
    assert_eq!(changes["unchanged"], 2);
    assert_eq!(
        doc["removed_lines"],
        serde_json::json!([{"id": a, "name": null, "status": "non_compliant"}])
    );
    let days: Vec<i64> = doc["waivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["days_left"].as_i64().unwrap())
        .collect();
    assert_eq!(days, [3, 30]);

    // The summary on stdout names the removed line and the waiver about to expire only.
    let out = &after.stdout;
    assert!(out.contains("1 line(s) added, 1 removed"), "{out}");
    assert!(
        out.contains(&format!("removed: {a}, was non_compliant")),
        "{out}"
    );
    assert!(out.contains("Waivers expiring within 5 days"), "{out}");
    assert!(
        out.contains(&format!("ALWAYS on {b}: expires")) && out.contains("3 days left"),
        "{out}"
    );
    assert!(!out.contains("far off"), "{out}");

    let (_, rows) = read_csv_maps(&report(&second, "-findings.csv"));
    let change_of = |id: &str| {
        rows.iter()
            .find(|r| r["line_id"] == id)
            .map(|r| r["change"].clone())
    };
    assert_eq!(change_of(d).as_deref(), Some("new"));
    assert_eq!(change_of(b).as_deref(), Some("unchanged"));

    // The workbook and the page show the same.
    let mut book: Xlsx<_> = open_workbook(report(&second, ".xlsx")).unwrap();
    let summary = book.worksheet_range("Summary").unwrap();
    let text: Vec<String> = summary
        .rows()
        .flat_map(|r| r.iter().map(|c| c.to_string()))
        .collect();
    assert!(
        text.contains(&a.to_string()),
        "removed line on the Summary sheet"
    );
    assert!(text.contains(&"lines removed".to_string()) && text.contains(&"soon over".to_string()));
    let waivers = book.worksheet_range("Waivers").unwrap();
    assert_eq!(waivers.get((1, 4)), Some(&Data::Float(3.0)));

    let page = Dom::parse(&std::fs::read_to_string(report(&second, ".html")).unwrap());
    let changes = page
        .elements()
        .into_iter()
        .find(|e| e.attr("id") == Some("changes"))
        .expect("a changes section");
    assert!(changes.text.contains(a) && changes.text.contains("non_compliant"));
    let soon: Vec<&str> = page
        .by_name("tr")
        .into_iter()
        .filter(|r| r.attr("class") == Some("soon"))
        .map(|r| r.text.as_str())
        .collect();
    assert_eq!(soon.len(), 1);
    assert!(soon[0].contains(b) && soon[0].contains("soon over"));
    sim.shutdown().await;
}
