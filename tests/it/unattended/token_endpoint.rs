//! A token endpoint that misbehaves (wiremock): many requests refused at once, a
//! refreshed token refused too, `invalid_grant`, a wrong client, 5xx, garbage.

use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const OLD: &str = "old-access-0d3f";
const NEW: &str = "new-access-9a6b";

fn settings() -> serde_json::Value {
    json!({"allowAutoAnswer": false, "connectionType": "ONE_WAY", "accessType": "ALLOW_MEMBERS"})
}

fn granted() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": NEW, "expires_in": 1_209_599,
        "refresh_token": "rotated-refresh-51c0", "refresh_token_expires_in": 7_776_000,
        "token_type": "Bearer"
    }))
}

/// The API: 401 to `OLD` (after `delay`), the settings to `NEW`.
async fn api(server: &MockServer, delay: Duration, new_works: bool) {
    Mock::given(method("GET"))
        .and(path_regex(
            "^/v1/telephony/config/virtualLines/[^/]+/pushToTalk$",
        ))
        .and(header("authorization", format!("Bearer {OLD}").as_str()))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": "expired"}))
                .set_delay(delay),
        )
        .mount(server)
        .await;
    let answer = if new_works {
        ResponseTemplate::new(200).set_body_json(settings())
    } else {
        ResponseTemplate::new(401).set_body_json(json!({"message": "no scope"}))
    };
    Mock::given(method("GET"))
        .and(path_regex(
            "^/v1/telephony/config/virtualLines/[^/]+/pushToTalk$",
        ))
        .and(header("authorization", format!("Bearer {NEW}").as_str()))
        .respond_with(answer)
        .mount(server)
        .await;
}

/// A credentials file holding `OLD`, valid for another day by its own account.
fn with_old_token(dir: &Path) -> PathBuf {
    credentials(
        dir,
        &format!(
            "access_token = \"{OLD}\"\naccess_token_expires_at = \"{}\"\n",
            in_seconds(86_400)
        ),
    )
}

fn line_ids(dir: &Path, n: usize) -> PathBuf {
    let ids: Vec<String> = (0..n).map(|i| format!("L{i}")).collect();
    crate::common::write(dir, "ids.txt", &(ids.join("\n") + "\n"))
}

async fn token_requests(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/v1/access_token")
        .count()
}

#[tokio::test]
async fn twenty_requests_refused_at_once_cause_one_refresh_and_are_all_sent_again() {
    let server = MockServer::start().await;
    // Every line's first request is in flight when the first 401 comes back (a
    // second is a wide margin for sending twenty requests on a busy machine).
    api(&server, Duration::from_secs(1), true).await;
    Mock::given(method("POST"))
        .and(path("/v1/access_token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains(
            format!("client_id={CLIENT_ID}").as_str(),
        ))
        .and(body_string_contains(
            format!("client_secret={CLIENT_SECRET}").as_str(),
        ))
        .and(body_string_contains(
            format!("refresh_token={REFRESH}").as_str(),
        ))
        .respond_with(granted())
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let creds = with_old_token(dir.path());
    let lines = line_ids(dir.path(), 20);
    let out = dir.path().join("reports");
    let base = format!("{}/v1", server.uri());
    let done = run(audit(&base, &creds, &lines, &out, &["--concurrency", "20"])).await;
    assert_eq!(done.status.code(), Some(0), "{}", shown(&done));
    let requests = server.received_requests().await.unwrap();
    let refused = requests
        .iter()
        .filter(|r| {
            r.headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(format!("Bearer {OLD}").as_str())
        })
        .count();
    assert_eq!(refused, 20, "all twenty were in flight with the old token");
    assert_eq!(token_requests(&server).await, 1);
    assert_eq!(requests.len(), 20 + 1 + 20);
    let saved = values(&creds);
    assert_eq!(saved["access_token"].as_str(), Some(NEW));
    assert_eq!(
        saved["refresh_token"].as_str(),
        Some("rotated-refresh-51c0")
    );
}

#[tokio::test]
async fn a_freshly_refreshed_token_refused_stops_the_run_naming_the_file() {
    let server = MockServer::start().await;
    api(&server, Duration::ZERO, false).await;
    Mock::given(method("POST"))
        .and(path("/v1/access_token"))
        .respond_with(granted())
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let creds = with_old_token(dir.path());
    let lines = line_ids(dir.path(), 5);
    let out = dir.path().join("reports");
    let base = format!("{}/v1", server.uri());
    let done = run(audit(&base, &creds, &lines, &out, &["--concurrency", "1"])).await;
    assert_eq!(done.status.code(), Some(2), "{}", shown(&done));
    let stderr = text(&done.stderr);
    assert!(
        stderr.contains("refused an access token just refreshed with"),
        "{stderr}"
    );
    assert!(stderr.contains(&creds.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("spark-admin:telephony_config_read"),
        "{stderr}"
    );
    assert_eq!(
        token_requests(&server).await,
        1,
        "never a second refresh in a row"
    );
    let report = json_report(&out);
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(report["lines"][0]["error"]["kind"], "auth");
    assert_eq!(report["summary"]["lines"]["not_audited"], 4);
}

/// A token endpoint answering `template`, and an API that must not be asked.
async fn endpoint(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/access_token"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

/// Runs with a file that has no access token (so the refresh comes first).
async fn refresh_first(server: &MockServer) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let creds = credentials(dir.path(), "");
    let lines = line_ids(dir.path(), 3);
    let out = dir.path().join("reports");
    let base = format!("{}/v1", server.uri());
    let done = run(audit(&base, &creds, &lines, &out, &[])).await;
    (done, dir)
}

async fn refused_before_any_request(server: &MockServer, wants: &[&str]) {
    let (done, dir) = refresh_first(server).await;
    assert_eq!(done.status.code(), Some(2), "{}", shown(&done));
    let stderr = text(&done.stderr);
    for want in wants {
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
    assert!(
        !stderr.contains(CLIENT_SECRET) && !stderr.contains(REFRESH),
        "{stderr}"
    );
    let requests = server.received_requests().await.unwrap();
    assert!(
        requests.iter().all(|r| r.url.path() == "/v1/access_token"),
        "the API was asked: {requests:?}"
    );
    assert!(reports_in(&dir.path().join("reports")).is_empty());
}

#[tokio::test]
async fn invalid_grant_says_to_renew_the_refresh_token() {
    let server = endpoint(ResponseTemplate::new(400).set_body_json(json!({
        "error": "invalid_grant",
        // A careless server echoing what it got: redacted.
        "error_description": format!("refresh token {REFRESH} is expired")
    })))
    .await;
    refused_before_any_request(
        &server,
        &[
            "refused the refresh token in",
            "credentials.toml",
            "invalid_grant: refresh token [REDACTED] is expired",
            "put the new refresh token into",
        ],
    )
    .await;
    assert_eq!(token_requests(&server).await, 1, "not retried");
}

#[tokio::test]
async fn a_refused_client_says_to_check_the_client_secret() {
    let server = endpoint(ResponseTemplate::new(401).set_body_json(json!({
        "error": "invalid_client", "error_description": "Client authentication failed."
    })))
    .await;
    refused_before_any_request(
        &server,
        &["refused the client ID or client secret", "HTTP 401"],
    )
    .await;
}

#[tokio::test]
async fn garbage_from_the_token_endpoint_is_a_clear_error() {
    let server = endpoint(ResponseTemplate::new(200).set_body_string("<html>login</html>")).await;
    refused_before_any_request(
        &server,
        &["answered HTTP 200 but not with a token", "not JSON"],
    )
    .await;
    let server = endpoint(ResponseTemplate::new(200).set_body_json(json!({"token": "x"}))).await;
    refused_before_any_request(&server, &["no `access_token`"]).await;
}

#[tokio::test]
async fn a_token_endpoint_that_stays_unavailable_is_retried_then_stops_the_run() {
    let server =
        endpoint(ResponseTemplate::new(503).set_body_json(json!({"message": "busy"}))).await;
    refused_before_any_request(
        &server,
        &["did not answer usably after 4 attempts", "HTTP 503"],
    )
    .await;
    assert_eq!(token_requests(&server).await, 4);
}

#[tokio::test]
async fn a_token_endpoint_that_fails_twice_then_answers_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/access_token"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/access_token"))
        .respond_with(granted())
        .mount(&server)
        .await;
    api(&server, Duration::ZERO, true).await;
    let (done, dir) = refresh_first(&server).await;
    assert_eq!(done.status.code(), Some(0), "{}", shown(&done));
    assert_eq!(token_requests(&server).await, 3);
    assert_eq!(
        values(&dir.path().join("credentials.toml"))["access_token"].as_str(),
        Some(NEW)
    );
}

#[tokio::test]
async fn a_refresh_refused_mid_run_stops_the_run_and_keeps_the_reports() {
    let server = MockServer::start().await;
    api(&server, Duration::ZERO, true).await;
    Mock::given(method("POST"))
        .and(path("/v1/access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let creds = with_old_token(dir.path());
    let lines = line_ids(dir.path(), 4);
    let out = dir.path().join("reports");
    let base = format!("{}/v1", server.uri());
    let done = run(audit(&base, &creds, &lines, &out, &["--concurrency", "1"])).await;
    assert_eq!(done.status.code(), Some(2), "{}", shown(&done));
    let stderr = text(&done.stderr);
    assert!(stderr.contains("refused the refresh token in"), "{stderr}");
    assert!(stderr.contains("reports were written"), "{stderr}");
    let report = json_report(&out);
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(report["summary"]["lines"]["not_audited"], 3);
    assert_eq!(token_requests(&server).await, 1);
}
