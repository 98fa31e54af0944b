//! The 403 stop rule (`CONTRACT.md` §3): a wrong `--org-id` gave one identical 403
//! warning per line and exit 3. Now the first lines all refused, none read, stop the
//! run (exit 2) with a message naming the likely cause, after about ten requests.

use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::hardening_api::audit;

const CONCURRENCY: usize = 4;
/// `FORBIDDEN_AFTER` in `webex/decide.rs`, as the contract says it.
const STOP_AFTER: usize = 10;

fn line_args(ids: &[String]) -> Vec<&str> {
    ids.iter().flat_map(|id| ["--line", id.as_str()]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_refused_stops_the_run_after_ten_with_the_likely_cause() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({
            "message": "The request is understood, but it has been refused or access is not allowed.",
            "trackingId": "ROUTER_403"
        })))
        .mount(&server)
        .await;
    let ids: Vec<String> = (0..50).map(|i| format!("L{i:02}")).collect();
    let concurrency = CONCURRENCY.to_string();
    let mut args = vec![
        "--rate",
        "0",
        "--concurrency",
        &concurrency,
        "--org-id",
        "WRONG-ORG",
    ];
    args.extend(line_args(&ids));
    let run = audit(&format!("{}/v1", server.uri()), &args).await;
    let stderr = run.stderr();
    assert_eq!(run.code(), 2, "{stderr}");

    // About ten requests: the tenth refusal stops the run; at most the other requests
    // then in flight reached the server too. Never one per line.
    let requests = server.received_requests().await.expect("recorded").len();
    eprintln!("403 everywhere: {requests} requests for 50 lines");
    assert!(
        (STOP_AFTER..STOP_AFTER + CONCURRENCY).contains(&requests),
        "{requests} requests"
    );

    // The message names the likely causes, the org given, and the scope.
    for needle in [
        "refused each of the first 10 lines it answered (403 Forbidden)",
        "--org-id WRONG-ORG is wrong",
        "not an admin of that org",
        "spark-admin:telephony_config_read",
        "Lines not read are marked not_audited; reports were written.",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    // One warning per refused line at most, not one per line of the input.
    let warnings = stderr.matches("line not read").count();
    assert!(warnings <= requests, "{warnings} warnings: {stderr}");

    // Refused lines keep their 403; the rest are not_audited with the reason.
    let report = run.json();
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(report["run"]["exit_code"], 2);
    let lines = run.lines();
    assert_eq!(lines.len(), 50);
    let refused: Vec<_> = lines.iter().filter(|l| l["status"] == "error").collect();
    assert_eq!(refused.len(), STOP_AFTER, "{lines:?}");
    for line in &refused {
        assert_eq!(line["error"]["kind"], "http", "{line}");
        assert_eq!(line["error"]["http_status"], 403, "{line}");
        assert_eq!(line["error"]["tracking_id"], "ROUTER_403", "{line}");
    }
    let not_audited: Vec<_> = lines
        .iter()
        .filter(|l| l["status"] == "not_audited")
        .collect();
    assert_eq!(refused.len() + not_audited.len(), 50);
    for line in &not_audited {
        let message = line["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("403 Forbidden) and read none"),
            "{message}"
        );
    }
    assert_eq!(
        report["summary"]["lines"]["not_audited"],
        not_audited.len() as u64
    );
    run.assert_no_token();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_org_id_the_message_says_so() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    let ids: Vec<String> = (0..20).map(|i| format!("L{i:02}")).collect();
    let mut args = vec!["--rate", "0", "--concurrency", "1"];
    args.extend(line_args(&ids));
    let run = audit(&format!("{}/v1", server.uri()), &args).await;
    assert_eq!(run.code(), 2, "{}", run.stderr());
    // One at a time: exactly ten requests.
    assert_eq!(server.received_requests().await.unwrap().len(), STOP_AFTER);
    assert!(
        run.stderr().contains("no --org-id was given"),
        "{}",
        run.stderr()
    );
}

/// A line read first: the org and token are right, and the 403s that follow are those
/// lines' own (a line of another org, say). Every line is requested, exit 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_read_first_then_403s_does_not_stop() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(
            "^/v1/telephony/config/virtualLines/OK/pushToTalk$",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "allowAutoAnswer": false, "connectionType": "ONE_WAY",
            "accessType": "ALLOW_MEMBERS", "members": []
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    let mut ids = vec!["OK".to_string()];
    ids.extend((0..30).map(|i| format!("L{i:02}")));
    // One at a time, so the 200 is surely the first answer.
    let mut args = vec!["--rate", "0", "--concurrency", "1"];
    args.extend(line_args(&ids));
    let run = audit(&format!("{}/v1", server.uri()), &args).await;
    let stderr = run.stderr();
    assert_eq!(run.code(), 3, "{stderr}");
    assert_eq!(server.received_requests().await.unwrap().len(), 31);
    assert!(!stderr.contains("403 Forbidden) and read none"), "{stderr}");
    let report = run.json();
    assert_eq!(report["run"]["complete"], true);
    assert_eq!(report["summary"]["lines"]["compliant"], 1);
    assert_eq!(report["summary"]["lines"]["error"], 30);
    assert_eq!(report["summary"]["lines"]["not_audited"], 0);
}
