//! The Webex client against wiremock on 127.0.0.1: statuses, retries, pacing, pauses.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ptt_audit::model::{ErrorKind, LineError};
use ptt_audit::settings::Rate;
use ptt_audit::webex::{parse_base_url, ClientConfig, Fetched, Stop, Token, WebexClient};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "test-token-7f3a9c";

fn settings() -> serde_json::Value {
    json!({"allowAutoAnswer": true, "connectionType": "ONE_WAY", "accessType": "ALLOW_MEMBERS", "members": []})
}

fn ptt_path(id: &str) -> String {
    format!("/v1/telephony/config/virtualLines/{id}/pushToTalk")
}

/// A 200 with the settings.
fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(settings())
}

/// Answers the requests for line `id` with `first`, one answer each and in order,
/// then with the settings for good.
async fn answers_then_ok(server: &MockServer, id: &str, first: &[ResponseTemplate]) {
    for answer in first {
        Mock::given(path(ptt_path(id)))
            .respond_with(answer.clone())
            .up_to_n_times(1)
            .mount(server)
            .await;
    }
    Mock::given(path(ptt_path(id)))
        .respond_with(ok())
        .mount(server)
        .await;
}

fn client(
    server: &MockServer,
    max_retries: u32,
    rate: Option<f64>,
    timeout: Duration,
) -> WebexClient {
    let config = ClientConfig {
        base_url: parse_base_url(&format!("{}/v1", server.uri())).unwrap(),
        org_id: Some("ORG-1".into()),
        timeout,
        max_retries,
        // The tests that pace give a fixed ceiling; the others none.
        rate: rate.map_or(Rate::Off, Rate::Fixed),
        max_body: ptt_audit::settings::DEFAULT_MAX_BODY,
        max_stall: ptt_audit::settings::DEFAULT_MAX_STALL,
    };
    WebexClient::new(
        &config,
        &Token::new(TOKEN, "test").unwrap().into(),
        Stop::default(),
    )
    .unwrap()
}

fn quick(server: &MockServer) -> WebexClient {
    client(server, 3, None, Duration::from_secs(5))
}

/// Reads lines `L0`, `L1`, … each on its own task, at most `in_flight` at a time as
/// an audit does; the results in line order.
async fn read_all(
    c: &WebexClient,
    lines: usize,
    in_flight: usize,
) -> Vec<Result<Fetched, LineError>> {
    let sem = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let tasks: Vec<_> = (0..lines)
        .map(|i| {
            let (c, sem) = (c.clone(), sem.clone());
            tokio::spawn(async move {
                let _p = sem.acquire().await.unwrap();
                c.read_ptt(&format!("L{i}")).await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(lines);
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results
}

#[tokio::test]
async fn success_sends_token_org_id_and_tracking_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ptt_path("L1")))
        .and(query_param("orgId", "ORG-1"))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let got = quick(&server).read_ptt("L1").await.unwrap();
    assert_eq!(got.settings, settings());
    assert_eq!(got.attempts, 1);
    let reqs = server.received_requests().await.unwrap();
    let h = &reqs[0].headers;
    assert_eq!(
        h.get("authorization").unwrap().to_str().unwrap(),
        format!("Bearer {TOKEN}")
    );
    let tracking = h.get("trackingid").unwrap().to_str().unwrap();
    let uuid = tracking
        .strip_prefix("PTTAUDIT_")
        .and_then(|u| uuid::Uuid::parse_str(u).ok())
        .unwrap_or_else(|| panic!("{tracking} is not PTTAUDIT_<uuid>"));
    assert_eq!(uuid.get_version_num(), 4, "{tracking}");
}

#[tokio::test]
async fn not_found_keeps_status_message_and_tracking_id_without_retrying() {
    let server = MockServer::start().await;
    Mock::given(path(ptt_path("gone")))
        .respond_with(ResponseTemplate::new(404).insert_header("TrackingID", "HDR_X").set_body_json(
            json!({"message": "Virtual line not found", "errors": [{"description": "x", "errorCode": 4008}], "trackingId": "ROUTER_404"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let e = quick(&server).read_ptt("gone").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Http);
    assert_eq!(e.http_status, Some(404));
    assert_eq!(e.tracking_id.as_deref(), Some("ROUTER_404"));
    assert!(
        e.message.contains("Virtual line not found"),
        "{}",
        e.message
    );
    assert_eq!(e.attempts, 1);
}

#[tokio::test]
async fn forbidden_is_not_retried_and_takes_the_header_tracking_id() {
    let server = MockServer::start().await;
    Mock::given(path(ptt_path("x")))
        .respond_with(ResponseTemplate::new(403).insert_header("TrackingID", "HDR_403"))
        .expect(1)
        .mount(&server)
        .await;
    let e = quick(&server).read_ptt("x").await.unwrap_err();
    assert_eq!(
        (e.kind, e.http_status, e.attempts),
        (ErrorKind::Http, Some(403), 1)
    );
    assert_eq!(e.tracking_id.as_deref(), Some("HDR_403"));
}

#[tokio::test]
async fn malformed_json_is_a_decode_error_after_its_retries() {
    let server = MockServer::start().await;
    Mock::given(path(ptt_path("m")))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"allowAutoAnswer\": tru"))
        .mount(&server)
        .await;
    let e = client(&server, 1, None, Duration::from_secs(5))
        .read_ptt("m")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Decode);
    assert_eq!(e.attempts, 2);
}

/// A 200 that is JSON but not PTT settings (a proxy's answer, an error body) must not
/// be evaluated: a rule that only looks at `members` would pass it.
#[tokio::test]
async fn a_200_without_the_required_fields_is_not_settings() {
    let server = MockServer::start().await;
    Mock::given(path(ptt_path("p")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "ok", "members": []})),
        )
        .mount(&server)
        .await;
    let e = client(&server, 1, None, Duration::from_secs(5))
        .read_ptt("p")
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.attempts), (ErrorKind::Decode, 2));
    assert!(e.message.contains("connectionType"), "{}", e.message);
}

#[tokio::test]
async fn server_errors_are_retried_and_attempts_counted() {
    let server = MockServer::start().await;
    answers_then_ok(
        &server,
        "s",
        &[ResponseTemplate::new(503), ResponseTemplate::new(502)],
    )
    .await;
    let got = quick(&server).read_ptt("s").await.unwrap();
    assert_eq!(got.attempts, 3);
}

#[tokio::test]
async fn retries_give_up_after_max_retries() {
    let server = MockServer::start().await;
    Mock::given(path(ptt_path("s")))
        .respond_with(ResponseTemplate::new(500))
        .expect(3)
        .mount(&server)
        .await;
    let e = client(&server, 2, None, Duration::from_secs(5))
        .read_ptt("s")
        .await
        .unwrap_err();
    assert_eq!((e.http_status, e.attempts), (Some(500), 3));
}

#[tokio::test]
async fn a_timeout_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    answers_then_ok(&server, "t", &[ok().set_delay(Duration::from_secs(3))]).await;
    let got = client(&server, 2, None, Duration::from_millis(300))
        .read_ptt("t")
        .await
        .unwrap();
    assert_eq!(got.attempts, 2);

    let server = MockServer::start().await;
    Mock::given(path(ptt_path("t")))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let e = client(&server, 0, None, Duration::from_millis(200))
        .read_ptt("t")
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.attempts), (ErrorKind::Timeout, 1));
}

#[tokio::test]
async fn an_id_with_a_slash_is_one_encoded_segment() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok())
        .mount(&server)
        .await;
    quick(&server).read_ptt("a/b?c=d#e f").await.unwrap();
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        reqs[0].url.path(),
        "/v1/telephony/config/virtualLines/a%2Fb%3Fc%3Dd%23e%20f/pushToTalk"
    );
    assert_eq!(reqs[0].url.query(), Some("orgId=ORG-1"));
}

/// Answers the n-th request (1-based) of the run.
type Script = Box<dyn Fn(&Request, usize) -> ResponseTemplate + Send + Sync>;

/// Records when each request arrived, and answers from a script.
struct Recorder {
    log: Arc<Mutex<Vec<(Instant, String)>>>,
    answer: Script,
}

impl Respond for Recorder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut log = self.log.lock().unwrap();
        log.push((Instant::now(), request.url.path().to_string()));
        (self.answer)(request, log.len())
    }
}

#[tokio::test]
async fn retry_after_pauses_every_line_of_the_run() {
    let server = MockServer::start().await;
    let log = Arc::new(Mutex::new(Vec::new()));
    // The third request of the run is refused with Retry-After: 1.
    Mock::given(method("GET"))
        .respond_with(Recorder {
            log: log.clone(),
            answer: Box::new(|_, n| {
                if n == 3 {
                    ResponseTemplate::new(429).insert_header("Retry-After", "1")
                } else {
                    ok()
                }
            }),
        })
        .mount(&server)
        .await;
    let c = client(&server, 3, Some(50.0), Duration::from_secs(5));
    for got in read_all(&c, 12, 12).await {
        got.expect("every line read in the end");
    }
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 13, "12 lines + 1 retry");
    let refused_at = log[2].0;
    let next = log[3].0;
    assert!(
        next.duration_since(refused_at) >= Duration::from_millis(990),
        "a request was sent {:?} after the 429",
        next.duration_since(refused_at)
    );
}

#[tokio::test]
async fn malformed_retry_after_falls_back_to_backoff() {
    let server = MockServer::start().await;
    let refused = ResponseTemplate::new(429).insert_header("Retry-After", "rand(30),add(30)");
    answers_then_ok(&server, "r", &[refused.clone(), refused]).await;
    let got = client(&server, 0, None, Duration::from_secs(5))
        .read_ptt("r")
        .await
        .unwrap();
    // 429s have their own budget: max_retries 0 does not stop them.
    assert_eq!(got.attempts, 3);
}

/// A server that allows `rate` requests per second (token bucket of one second).
struct Bucket {
    state: Mutex<(f64, Instant)>,
    rate: f64,
    refused: Arc<Mutex<u32>>,
}

impl Respond for Bucket {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut s = self.state.lock().unwrap();
        let now = Instant::now();
        s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.rate).min(self.rate);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            ok()
        } else {
            *self.refused.lock().unwrap() += 1;
            ResponseTemplate::new(429).insert_header("Retry-After", "1")
        }
    }
}

#[tokio::test]
async fn a_server_slower_than_rate_sees_few_429s_and_every_line_is_read() {
    let server = MockServer::start().await;
    let refused = Arc::new(Mutex::new(0));
    Mock::given(method("GET"))
        .respond_with(Bucket {
            state: Mutex::new((10.0, Instant::now())),
            rate: 10.0,
            refused: refused.clone(),
        })
        .mount(&server)
        .await;
    let c = client(&server, 2, Some(40.0), Duration::from_secs(5));
    for got in read_all(&c, 80, 8).await {
        got.expect("no line lost to throttling");
    }
    let refused = *refused.lock().unwrap();
    let total = server.received_requests().await.unwrap().len() as u32;
    assert!(
        refused * 10 <= total,
        "{refused} of {total} requests refused: more than 10%"
    );
}

#[tokio::test]
async fn unauthorized_stops_every_later_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": "Invalid token", "trackingId": "T401"})),
        )
        .mount(&server)
        .await;
    let c = quick(&server);
    let e = c.read_ptt("a").await.unwrap_err();
    assert_eq!((e.kind, e.http_status), (ErrorKind::Auth, Some(401)));
    assert!(!e.message.contains(TOKEN));
    let e = c.read_ptt("b").await.unwrap_err();
    assert_eq!((e.kind, e.attempts), (ErrorKind::NotAudited, 0));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_rate_limiter_spaces_requests_evenly_without_a_burst() {
    let server = MockServer::start().await;
    let log = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("GET"))
        .respond_with(Recorder {
            log: log.clone(),
            answer: Box::new(|_, _| ok()),
        })
        .mount(&server)
        .await;
    let c = client(&server, 0, Some(20.0), Duration::from_secs(5));
    let start = Instant::now();
    for got in read_all(&c, 10, 10).await {
        got.unwrap();
    }
    let log = log.lock().unwrap();
    let mut times: Vec<_> = log.iter().map(|(t, _)| t.duration_since(start)).collect();
    times.sort();
    assert_eq!(times.len(), 10);
    // Gaps between arrivals carry the machine's scheduling jitter (one late request
    // makes the next gap short), so they are not checked. But a busy machine can only
    // delay a request, never send it before the limiter lets it start: counted from
    // before the first request, the k-th arrival comes at least k periods (50 ms at
    // 20/s) in, whatever the load. An initial burst, two requests at once or a limiter
    // per line puts some request a whole period early. That the ceiling never lets
    // two through within one period (burst 1) is the pacer's unit test
    // `the_ceiling_allows_no_burst`.
    // The tolerance only absorbs the limiter's clock (quanta) against `Instant`.
    let period = Duration::from_millis(50);
    let tolerance = Duration::from_millis(5);
    for (k, at) in times.iter().enumerate() {
        let earliest = period * k as u32;
        assert!(
            *at + tolerance >= earliest,
            "request {} arrived {at:?} after the start, before {earliest:?} at 20/s",
            k + 1
        );
    }
}
