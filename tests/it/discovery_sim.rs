//! `audit --all` and `ptt-audit lines` against the simulator, with its pagination
//! quirks switched on: short pages, a page that fails for a while or for good, next
//! links without `orgId` or on another origin; and the inventory read back by
//! `--lines`, and a rule on `line.location_name`.

use std::path::Path;

use ptt_audit::simulator::{FailingPage, ListQuirks, RunningSimulator, SimConfig};
use serde_json::{json, Value};

use crate::common::{
    file_ending, read_csv, read_csv_maps, read_report, run_binary, start_sim, write,
    INVENTORY_HEADER,
};

const TOKEN: &str = "discovery-sim-token-0c9d";
const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

fn sim_config(lines: usize, listing: ListQuirks) -> SimConfig {
    SimConfig {
        lines,
        seed: 11,
        token: Some(TOKEN.into()),
        listing,
        ..SimConfig::default()
    }
}

fn short_pages(n: usize) -> ListQuirks {
    ListQuirks {
        page_limit: Some(n),
        ..ListQuirks::default()
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `ptt-audit audit` against `sim`, unpaced, reports into `out`, with `extra`.
async fn audit(sim: &RunningSimulator, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut a = args(&["audit", "--base-url", &sim.base_url, "--rate", "0", "--out"]);
    a.push(out.display().to_string());
    if !extra.contains(&"--policies") {
        a.extend(args(&["--policies", POLICIES]));
    }
    a.extend(args(extra));
    run_binary(a, TOKEN).await
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ids(report: &Value) -> Vec<String> {
    report["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_fails_for_a_while_loses_nothing() {
    let sim = start_sim(sim_config(
        40,
        ListQuirks {
            page_limit: Some(7),
            failing_page: Some(FailingPage {
                page: 2,
                times: Some(2),
            }),
            ..ListQuirks::default()
        },
    ))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit(&sim, dir.path(), &["--all"]).await;
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    let report = read_report(dir.path());
    assert_eq!(ids(&report), *sim.ids, "every line, in list order");
    let d = &report["run"]["discovery"];
    assert_eq!(
        (
            d["complete"].clone(),
            d["listed"].clone(),
            d["pages"].clone()
        ),
        (json!(true), json!(40), json!(6))
    );
    let stats = sim.stats();
    assert_eq!(stats.server_errors, 2, "{stats}");
    assert_eq!(stats.list_requests, 6 + 2, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_fails_for_good_leaves_the_lines_before_it_audited_and_exit_3() {
    let sim = start_sim(sim_config(
        30,
        ListQuirks {
            page_limit: Some(10),
            failing_page: Some(FailingPage {
                page: 2,
                times: None,
            }),
            ..ListQuirks::default()
        },
    ))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit(&sim, dir.path(), &["--all", "--max-retries", "2"]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}{}", text(&out.stderr));
    let report = read_report(dir.path());
    assert_eq!(ids(&report), sim.ids[..10], "page 1's lines");
    assert!(report["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .all(|l| l["read_at"].is_string()));
    let d = &report["run"]["discovery"];
    assert_eq!(d["complete"], false);
    assert_eq!(d["listed"], 10);
    assert_eq!(d["error"]["kind"], "http");
    assert_eq!(d["error"]["http_status"], 503);
    assert_eq!(d["error"]["attempts"], 3);
    assert!(d["error"]["tracking_id"].is_string(), "{d}");
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(report["run"]["exit_code"], 3);
    assert!(stdout.contains("Listed:  10 virtual lines"), "{stdout}");
    assert!(
        stdout.contains("then listing FAILED: listing page 2 failed: HTTP 503"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_links_without_org_id_never_reach_the_server_without_it() {
    let mut config = sim_config(
        25,
        ListQuirks {
            page_limit: Some(4),
            next_drops_org: true,
            ..ListQuirks::default()
        },
    );
    config.org_id = Some("CUSTOMER-ORG".into());
    let sim = start_sim(config).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit(&sim, dir.path(), &["--all", "--org-id", "CUSTOMER-ORG"]).await;
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    let stats = sim.stats();
    assert_eq!(stats.list_requests, 7, "{stats}");
    assert_eq!(
        stats.list_without_org, 0,
        "every page asked with orgId: {stats}"
    );
    assert_eq!(ids(&read_report(dir.path())), *sim.ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_link_to_another_simulator_is_not_followed() {
    let elsewhere = start_sim(sim_config(5, ListQuirks::default())).await;
    let origin = elsewhere.base_url.trim_end_matches("/v1").to_string();
    let sim = start_sim(sim_config(
        12,
        ListQuirks {
            page_limit: Some(5),
            next_origin: Some(origin.clone()),
            ..ListQuirks::default()
        },
    ))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit(&sim, dir.path(), &["--all"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(elsewhere.stats().requests, 0, "nothing reached {origin}");
    let report = read_report(dir.path());
    assert_eq!(ids(&report), sim.ids[..5]);
    let message = report["run"]["discovery"]["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("another origin"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_lines_come_first_and_each_line_once() {
    let sim = start_sim(sim_config(9, short_pages(4))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit(
        &sim,
        dir.path(),
        &[
            "--all",
            "--line",
            &sim.ids[5],
            "--line",
            "NO-SUCH-LINE",
            "--line",
            &sim.ids[0],
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "the unknown line is an error");
    let report = read_report(dir.path());
    let mut want = vec![
        sim.ids[5].clone(),
        "NO-SUCH-LINE".into(),
        sim.ids[0].clone(),
    ];
    want.extend(
        sim.ids
            .iter()
            .filter(|id| *id != &sim.ids[5] && *id != &sim.ids[0])
            .cloned(),
    );
    assert_eq!(ids(&report), want);
    assert_eq!(
        report["run"]["discovery"]["listed"], 9,
        "listed counts every line"
    );
    assert_eq!(report["run"]["discovery"]["complete"], true);
    assert_eq!(report["lines"][1]["status"], "error");
    assert!(
        report["lines"][3]["line"]["name"].is_string(),
        "listed lines are named"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_without_lines_is_a_clean_exit_0_that_says_so() {
    let sim = start_sim(sim_config(0, ListQuirks::default())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit(&sim, dir.path(), &["--all"]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("Listed:  no virtual lines (every location)"),
        "{stdout}"
    );
    assert!(stdout.contains("Lines:   0 total"), "{stdout}");
    let report = read_report(dir.path());
    assert_eq!(ids(&report), Vec::<String>::new());
    assert_eq!(report["run"]["discovery"]["listed"], 0);
    assert_eq!(report["run"]["complete"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_id_needs_all_and_an_id_list_needs_some_input() {
    let sim = start_sim(sim_config(3, ListQuirks::default())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit(&sim, dir.path(), &["--location-id", "LOC"]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--all"), "{stderr}");
    let out = audit(&sim, dir.path(), &[]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pass --all"), "{stderr}");
    assert_eq!(sim.stats().requests, 0, "nothing requested");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_ids_filter_the_listing() {
    let sim = start_sim(sim_config(60, short_pages(6))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = dir.path().join("all.csv");
    let out = run_binary(
        args(&[
            "lines",
            "--base-url",
            &sim.base_url,
            "--rate",
            "0",
            "--out",
            &inventory.display().to_string(),
        ]),
        TOKEN,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (_, rows) = read_csv_maps(&inventory);
    let first = rows[0]["location_id"].clone();
    let want: Vec<&str> = rows
        .iter()
        .filter(|r| r["location_id"] == first)
        .map(|r| r["id"].as_str())
        .collect();
    assert!(want.len() > 1 && want.len() < 60, "{}", want.len());
    let out = audit(
        &sim,
        &dir.path().join("r"),
        &["--all", "--location-id", &first],
    )
    .await;
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    let report = read_report(&dir.path().join("r"));
    assert_eq!(ids(&report), want);
    assert_eq!(report["run"]["discovery"]["location_ids"], json!([first]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_reads_back_with_every_identity_column() {
    let sim = start_sim(sim_config(23, short_pages(5))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("lines.csv");
    let base = ["lines", "--base-url", &sim.base_url, "--rate", "0", "--out"];
    let out = run_binary(
        args(&base)
            .into_iter()
            .chain([file.display().to_string()])
            .collect(),
        TOKEN,
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("listed 23 virtual line(s) on 5 page(s)"),
        "{stderr}"
    );
    let (header, rows) = read_csv(&file);
    assert_eq!(header.join(","), INVENTORY_HEADER);
    assert_eq!(rows.len(), 23);
    let row_ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        row_ids,
        sim.ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(
        rows.iter().all(|r| r[4].starts_with("'+")),
        "numbers neutralised"
    );

    // To stdout: the same bytes.
    let out = run_binary(
        args(&base).into_iter().chain(["-".to_string()]).collect(),
        TOKEN,
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, std::fs::read(&file).expect("the file"));

    // Trimmed in a "spreadsheet" and fed back: the identity comes along.
    let text_in = std::fs::read_to_string(&file).expect("the file");
    let trimmed: Vec<&str> = text_in.lines().take(4).collect();
    let trimmed_file = write(dir.path(), "trimmed.csv", &(trimmed.join("\n") + "\n"));
    let reports = dir.path().join("reports");
    let out = audit(
        &sim,
        &reports,
        &["--lines", &trimmed_file.display().to_string()],
    )
    .await;
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    let report = read_report(&reports);
    assert_eq!(ids(&report), sim.ids[..3]);
    assert_eq!(report["run"]["discovery"], Value::Null);
    for (line, row) in report["lines"].as_array().expect("lines").iter().zip(&rows) {
        let unneutralised = row[4].trim_start_matches('\'');
        assert_eq!(
            line["line"],
            json!({"name": row[1], "location_id": row[2], "location_name": row[3],
                   "phone_number": unneutralised, "extension": row[5]})
        );
    }
    let (_, lines_rows) = read_csv_maps(&file_ending(&reports, "-lines.csv"));
    assert_eq!(lines_rows[0]["location_name"], rows[0][3]);
    assert_eq!(lines_rows[0]["line_name"], rows[0][1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_that_fail_to_list_leave_no_file_and_exit_3() {
    let sim = start_sim(sim_config(
        12,
        ListQuirks {
            page_limit: Some(5),
            failing_page: Some(FailingPage {
                page: 2,
                times: None,
            }),
            ..ListQuirks::default()
        },
    ))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("lines.csv");
    let out = run_binary(
        args(&[
            "lines",
            "--base-url",
            &sim.base_url,
            "--rate",
            "0",
            "--max-retries",
            "0",
            "--out",
            &file.display().to_string(),
        ]),
        TOKEN,
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("failed after 5 line(s) on 1 page(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("was not written"), "{stderr}");
    assert!(!file.exists());
    assert_eq!(
        crate::common::names_in(dir.path()),
        Vec::<String>::new(),
        "no leftovers"
    );
}

/// The baseline's example rule, driven by a var a site file sets: lines in a listed
/// location must be one-way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_on_line_location_name_judges_each_line_by_its_location() {
    let sim = start_sim(sim_config(200, ListQuirks::default())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).expect("mkdir");
    let baseline =
        std::fs::read_to_string(Path::new(POLICIES).join("baseline.toml")).expect("the baseline");
    let tuned = baseline.replace(
        "one_way_locations = []",
        "one_way_locations = [\"hq san josé\"]",
    );
    assert_ne!(tuned, baseline, "the baseline has the var");
    write(&policies, "baseline.toml", &tuned);
    let reports = dir.path().join("reports");
    let out = audit(
        &sim,
        &reports,
        &["--all", "--policies", &policies.display().to_string()],
    )
    .await;
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    let report = read_report(&reports);
    let (mut fails, mut passes, mut elsewhere) = (0, 0, 0);
    for line in report["lines"].as_array().expect("lines") {
        let result = line["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["rule_id"] == "PTT-ONE-WAY-LOCATIONS")
            .expect("the rule's result");
        let at_hq = line["line"]["location_name"] == "HQ San José";
        let two_way = line["settings"]["connectionType"] == "TWO_WAY";
        let want = match (at_hq, two_way) {
            (false, _) => "not_applicable",
            (true, true) => "fail",
            (true, false) => "pass",
        };
        assert_eq!(result["status"], want, "{line}");
        match want {
            "fail" => {
                fails += 1;
                let message = result["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains("TWO_WAY Push-to-Talk in HQ San José"),
                    "{message}"
                );
            }
            "pass" => passes += 1,
            _ => elsewhere += 1,
        }
    }
    assert!(
        fails > 0 && passes > 0 && elsewhere > 0,
        "{fails} {passes} {elsewhere}"
    );
}
