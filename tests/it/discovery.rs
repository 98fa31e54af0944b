//! `audit --all` against a scripted Webex API on 127.0.0.1: every request the binary
//! sends is recorded with its time, and each test scripts the answers, including the
//! pagination troubles the real API has shown (a `next` link that drops `orgId`, one
//! that points elsewhere, a `Link` header that does not parse, items without `id`).
//!
//! The API is `scripted_api`, not wiremock: some answers must wait for other requests
//! (to show that auditing starts before the listing ends, and that a 429 on a read
//! pauses the listing), which a wiremock responder cannot do.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::common::{file_ending, read_csv_maps, read_report, run_binary};
use crate::scripted_api::{
    item, json_response, next, page, reply, settings, Api, Reply, Seen, LIST_PATH,
};

const TOKEN: &str = "discovery-token-3b7e91c4";
const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
/// `ptt-audit audit --all` against `base_url`, unpaced, reports into `out`.
async fn audit_all(base_url: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = [
        "audit",
        "--all",
        "--base-url",
        base_url,
        "--rate",
        "0",
        "--policies",
        POLICIES,
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(out.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    run_binary(args, TOKEN).await
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn report_ids(report: &Value) -> Vec<&str> {
    report["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["id"].as_str().expect("id"))
        .collect()
}

/// Three short pages (2, 1 and 0 lines, each but the last with a next link):
/// a short page is not the end while there is a next link. Page 2's link is absolute,
/// on `origin` (the server's own, known once it listens).
fn three_pages(
    origin: Arc<std::sync::OnceLock<String>>,
) -> impl Fn(Seen) -> Reply + Send + Sync + 'static {
    move |seen: Seen| {
        let origin = origin.get().cloned().unwrap_or_default();
        if seen.is_list() {
            let start = seen
                .param("start")
                .first()
                .map_or(0, |s| s.parse().unwrap_or(0));
            let keep: String = seen
                .query
                .iter()
                .filter(|(k, _)| k != "start")
                .map(|(k, v)| format!("&{k}={v}"))
                .collect();
            return reply(match start {
                0 => page(
                    vec![
                        item("L1", "Lobby", "Paging", ("LOC-A", "HQ San José"), "2001"),
                        item("L2", "=Front", "Desk", ("LOC-B", "Berlin"), "2002"),
                    ],
                    // Relative, as RFC 8288 allows.
                    next(&format!("virtualLines?start=2{keep}")),
                ),
                2 => page(
                    vec![item("L3", "Dock", "", ("LOC-A", "HQ San José"), "2003")],
                    next(&format!("{origin}{LIST_PATH}?start=3{keep}")),
                ),
                _ => page(vec![], None),
            });
        }
        let two_way = seen.line_id() == Some("L3");
        reply(settings(if two_way { "TWO_WAY" } else { "ONE_WAY" }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_lists_every_page_with_org_and_locations_and_names_every_line() {
    let origin = Arc::new(std::sync::OnceLock::new());
    let api = Api::start(three_pages(origin.clone())).await;
    origin.set(api.origin.clone()).expect("set once");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit_all(
        &api.base_url,
        dir.path(),
        &[
            "--org-id",
            "ORG 1",
            "--location-id",
            "LOC-A",
            "--location-id",
            "LOC-B",
        ],
    )
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "L3 fails: {}{stdout}",
        text(&out.stderr)
    );

    let lists = api.list_requests();
    assert_eq!(lists.len(), 3, "three pages: {lists:?}");
    assert_eq!(lists[0].param("max"), ["1000"]);
    for l in &lists {
        assert_eq!(l.param("orgId"), ["ORG 1"], "{l:?}");
        assert_eq!(l.param("locationId"), ["LOC-A", "LOC-B"], "{l:?}");
    }
    for s in api.seen() {
        assert_eq!(s.authorization, format!("Bearer {TOKEN}"));
        if !s.is_list() {
            assert_eq!(s.param("orgId"), ["ORG 1"], "{s:?}");
        }
    }

    let report = read_report(dir.path());
    assert_eq!(report_ids(&report), ["L1", "L2", "L3"]);
    assert_eq!(
        report["run"]["discovery"],
        json!({"all": true, "location_ids": ["LOC-A", "LOC-B"], "listed": 3, "pages": 3,
               "complete": true, "error": null, "skipped": 0})
    );
    assert_eq!(report["run"]["complete"], true);
    assert_eq!(
        report["lines"][0]["line"],
        json!({"name": "Lobby Paging", "location_id": "LOC-A", "location_name": "HQ San José",
               "phone_number": "+19845552001", "extension": "2001"})
    );
    assert_eq!(report["lines"][2]["line"]["name"], "Dock");

    let (_, rows) = read_csv_maps(&file_ending(dir.path(), "-lines.csv"));
    let names: Vec<&str> = rows.iter().map(|r| r["line_name"].as_str()).collect();
    assert_eq!(names, ["Lobby Paging", "'=Front Desk", "Dock"]);
    assert_eq!(rows[0]["location_name"], "HQ San José");
    assert_eq!(rows[0]["phone_number"], "'+19845552001");
    assert_eq!(rows[1]["location_id"], "LOC-B");
    assert_eq!(rows[2]["extension"], "2003");
    let (_, findings) = read_csv_maps(&file_ending(dir.path(), "-findings.csv"));
    assert!(findings
        .iter()
        .filter(|r| r["line_id"] == "L3")
        .all(|r| r["line_name"] == "Dock" && r["location_name"] == "HQ San José"));

    assert!(
        stdout.contains("Listed:  3 virtual lines (2 locations) on 3 pages."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Dock (HQ San José)"),
        "the failing line by name: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_link_that_lost_org_and_location_gets_them_back() {
    let api = Api::start(|seen: Seen| {
        if seen.is_list() {
            return reply(if seen.param("start").is_empty() {
                page(
                    vec![item("L1", "A", "B", ("LOC-A", "HQ"), "1")],
                    // The known bug: the next link forgets the query it came from.
                    next(&format!("{LIST_PATH}?start=1&max=1000")),
                )
            } else {
                page(vec![item("L2", "C", "D", ("LOC-A", "HQ"), "2")], None)
            });
        }
        reply(settings("ONE_WAY"))
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit_all(
        &api.base_url,
        dir.path(),
        &["--org-id", "CUSTOMER", "--location-id", "LOC-A"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lists = api.list_requests();
    assert_eq!(lists.len(), 2);
    assert_eq!(lists[1].param("start"), ["1"]);
    assert_eq!(lists[1].param("orgId"), ["CUSTOMER"], "orgId put back");
    assert_eq!(
        lists[1].param("locationId"),
        ["LOC-A"],
        "locationId put back"
    );
    assert!(stderr.contains("lost the orgId or locationId"), "{stderr}");
    assert_eq!(report_ids(&read_report(dir.path())), ["L1", "L2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_link_to_another_origin_is_never_followed_and_the_token_stays_home() {
    let elsewhere = Api::start(|_| reply(page(vec![], None))).await;
    let target = format!("{}{LIST_PATH}?start=1", elsewhere.origin);
    let api = Api::start(move |seen: Seen| {
        if seen.is_list() {
            return reply(page(
                vec![item("L1", "Lobby", "Paging", ("LOC", "HQ"), "1")],
                next(&target),
            ));
        }
        reply(settings("ONE_WAY"))
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit_all(&api.base_url, dir.path(), &[]).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "incomplete: {stdout}{stderr}");
    assert!(
        elsewhere.seen().is_empty(),
        "the other origin got {:?}",
        elsewhere.seen()
    );

    let report = read_report(dir.path());
    assert_eq!(report_ids(&report), ["L1"], "the page listed is audited");
    assert_eq!(report["lines"][0]["status"], "compliant");
    let d = &report["run"]["discovery"];
    assert_eq!(
        (d["complete"].clone(), d["listed"].clone()),
        (json!(false), json!(1))
    );
    assert_eq!(d["error"]["kind"], "decode");
    let message = d["error"]["message"].as_str().expect("a message");
    assert!(message.contains("another origin"), "{message}");
    assert!(message.contains(&elsewhere.origin), "{message}");
    assert_eq!(report["run"]["complete"], false, "part of the org only");
    assert!(stdout.contains("then listing FAILED"), "{stdout}");
    for f in crate::common::files_in(dir.path()) {
        let content = std::fs::read_to_string(&f).expect("a report");
        assert!(!content.contains(TOKEN), "token in {}", f.display());
    }
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_list_answers_are_clear_errors_or_counted_skips() {
    // Items without a usable id are skipped and counted; the rest is audited.
    let api = Api::start(|seen: Seen| {
        if seen.is_list() {
            return reply(page(
                vec![
                    item("L1", "A", "B", ("LOC", "HQ"), "1"),
                    json!({"firstName": "no id"}),
                    json!({"id": ""}),
                    item("L2", "C", "D", ("LOC", "HQ"), "2"),
                ],
                None,
            ));
        }
        reply(settings("ONE_WAY"))
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit_all(&api.base_url, dir.path(), &[]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("2 item(s) of the listing had no usable `id`"),
        "{stderr}"
    );
    let report = read_report(dir.path());
    assert_eq!(report_ids(&report), ["L1", "L2"]);
    assert_eq!(report["run"]["discovery"]["skipped"], 2);

    // A Link header that does not parse: the page's lines are audited, then the
    // listing fails saying why.
    let api = Api::start(|seen: Seen| {
        if seen.is_list() {
            let mut r = page(vec![item("L1", "A", "B", ("LOC", "HQ"), "1")], None);
            r.headers_mut().insert(
                header::LINK,
                header::HeaderValue::from_static("https://x/next; rel=next"),
            );
            return reply(r);
        }
        reply(settings("ONE_WAY"))
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit_all(&api.base_url, dir.path(), &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report = read_report(dir.path());
    assert_eq!(report_ids(&report), ["L1"]);
    let message = report["run"]["discovery"]["error"]["message"]
        .as_str()
        .unwrap_or("");
    assert!(message.contains("Link header does not parse"), "{message}");

    // An answer without `virtualLines` is retried, then the listing fails: nothing
    // listed, nothing audited, exit 3, and the reason in the report and the summary.
    let api = Api::start(|_| reply(json_response(StatusCode::OK, &json!({"items": []})))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit_all(&api.base_url, dir.path(), &["--max-retries", "1"]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}{}", text(&out.stderr));
    assert_eq!(api.list_requests().len(), 2, "one retry");
    let report = read_report(dir.path());
    assert_eq!(report_ids(&report), Vec::<&str>::new());
    let error = &report["run"]["discovery"]["error"];
    assert_eq!(error["attempts"], 2);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("no `virtualLines` array")),
        "{error}"
    );
    assert!(
        stdout.contains("listing the lines (--all) failed"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_while_listing_stops_the_run_with_exit_2() {
    let api = Api::start(|_| {
        reply(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"message": "The request requires a valid access token", "trackingId": "T1"}),
        ))
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit_all(&api.base_url, dir.path(), &["--line", "EXPLICIT"]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused the token"), "{stderr}");
    let report = read_report(dir.path());
    assert_eq!(report_ids(&report), ["EXPLICIT"]);
    // Refused too if its read went out before the listing's 401 came back; else never
    // sent. Never read either way.
    let kind = report["lines"][0]["error"]["kind"]
        .as_str()
        .unwrap_or_default();
    assert!(matches!(kind, "auth" | "not_audited"), "{kind}");
    let d = &report["run"]["discovery"];
    assert_eq!(d["complete"], false);
    let kind = d["error"]["kind"].as_str().unwrap_or_default();
    assert!(matches!(kind, "auth" | "not_audited"), "{kind}");
}

/// Auditing starts while later pages are still being listed: page 2 is answered only
/// once every line of page 1 has been read. A tool that listed everything first would
/// wait for page 2 forever; here it would get it after 20 s, and fail the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_are_audited_while_later_pages_are_still_being_listed() {
    let page_one_read = Arc::new(Notify::new());
    let reads = Arc::new(Mutex::new(0usize));
    let waited_too_long = Arc::new(Mutex::new(false));
    let (notify, count, flag) = (
        page_one_read.clone(),
        reads.clone(),
        waited_too_long.clone(),
    );
    let api = Api::start(move |seen: Seen| {
        let (notify, count, flag) = (notify.clone(), count.clone(), flag.clone());
        Box::pin(async move {
            if !seen.is_list() {
                let mut n = count.lock().expect("not poisoned");
                *n += 1;
                if *n == 3 {
                    notify.notify_one();
                }
                return settings("ONE_WAY");
            }
            if seen.param("start").is_empty() {
                let items = (1..=3)
                    .map(|i| item(&format!("L{i}"), "Line", &i.to_string(), ("LOC", "HQ"), "1"))
                    .collect();
                return page(items, next(&format!("{LIST_PATH}?start=3")));
            }
            let waited = tokio::time::timeout(Duration::from_secs(20), notify.notified()).await;
            *flag.lock().expect("not poisoned") = waited.is_err();
            page(vec![item("L4", "Line", "4", ("LOC", "HQ"), "1")], None)
        })
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit_all(&api.base_url, dir.path(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !*waited_too_long.lock().expect("not poisoned"),
        "page 1's lines were not read before page 2 was answered"
    );
    assert_eq!(
        report_ids(&read_report(dir.path())),
        ["L1", "L2", "L3", "L4"]
    );
}

/// A 429 on a read pauses the listing too: one pacer, one run-wide pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_a_read_pauses_the_listing_as_well() {
    let throttled = Arc::new(Notify::new());
    let throttled_at = Arc::new(Mutex::new(None::<Instant>));
    let (notify, at) = (throttled.clone(), throttled_at.clone());
    let api = Api::start(move |seen: Seen| {
        let (notify, at) = (notify.clone(), at.clone());
        Box::pin(async move {
            if seen.line_id() == Some("EXPLICIT") {
                let mut first = at.lock().expect("not poisoned");
                if first.is_none() {
                    *first = Some(Instant::now());
                    notify.notify_one();
                    let mut r = json_response(StatusCode::TOO_MANY_REQUESTS, &json!({}));
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
                    return r;
                }
                return settings("ONE_WAY");
            }
            if !seen.is_list() {
                return settings("ONE_WAY");
            }
            if seen.param("start").is_empty() {
                // Answered once the 429 is out, so that the next page is asked for
                // during the pause.
                let _ = tokio::time::timeout(Duration::from_secs(20), notify.notified()).await;
                return page(
                    vec![item("L1", "A", "B", ("LOC", "HQ"), "1")],
                    next(&format!("{LIST_PATH}?start=1")),
                );
            }
            page(vec![item("L2", "C", "D", ("LOC", "HQ"), "2")], None)
        })
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = audit_all(&api.base_url, dir.path(), &["--line", "EXPLICIT"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let t429 = throttled_at
        .lock()
        .expect("not poisoned")
        .expect("the 429 was sent");
    let page_two = api
        .list_requests()
        .into_iter()
        .find(|s| !s.param("start").is_empty())
        .expect("page 2 was asked for");
    let waited = page_two.at.duration_since(t429);
    assert!(
        waited >= Duration::from_secs(2),
        "page 2 was asked for {waited:?} after the 429, inside its Retry-After of 2 s"
    );
    assert_eq!(
        report_ids(&read_report(dir.path())),
        ["EXPLICIT", "L1", "L2"]
    );
}
