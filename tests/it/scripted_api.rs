//! A scripted Webex API on 127.0.0.1 for the `--all` tests: every request is recorded
//! with its time, and each test answers with a script of its own, which may wait for
//! other requests (a wiremock responder cannot: it answers at once).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use crate::common::loopback;

/// The list endpoint's path; a settings read is `{LIST_PATH}/{id}/pushToTalk`.
pub const LIST_PATH: &str = "/v1/telephony/config/virtualLines";

/// One request as the scripted API saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub authorization: String,
}

impl Seen {
    pub fn is_list(&self) -> bool {
        self.path == LIST_PATH
    }

    /// Every value of query parameter `key`.
    pub fn param(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The line ID of a settings read.
    pub fn line_id(&self) -> Option<&str> {
        self.path
            .strip_prefix(LIST_PATH)?
            .strip_prefix('/')?
            .strip_suffix("/pushToTalk")
    }
}

pub type Reply = Pin<Box<dyn Future<Output = Response> + Send>>;
type Script = Arc<dyn Fn(Seen) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Shared {
    script: Script,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A scripted API, serving on this test's runtime.
pub struct Api {
    pub base_url: String,
    pub origin: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Api {
    pub async fn start(script: impl Fn(Seen) -> Reply + Send + Sync + 'static) -> Api {
        let listener = tokio::net::TcpListener::bind(loopback())
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let shared = Shared {
            script: Arc::new(script),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let seen = shared.seen.clone();
        let app = Router::new().fallback(handle).with_state(shared);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Api {
            base_url: format!("http://{addr}/v1"),
            origin: format!("http://{addr}"),
            seen,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }

    pub fn list_requests(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(Seen::is_list).collect()
    }
}

async fn handle(State(s): State<Shared>, req: Request) -> Response {
    let seen = Seen {
        at: Instant::now(),
        path: req.uri().path().to_string(),
        query: url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect(),
        authorization: req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
    };
    s.seen.lock().expect("not poisoned").push(seen.clone());
    (s.script)(seen).await
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A list page with these items, and a `Link` header when `link` is given.
pub fn page(items: Vec<Value>, link: Option<String>) -> Response {
    let mut r = json_response(StatusCode::OK, &json!({ "virtualLines": items }));
    if let Some(link) = link {
        r.headers_mut()
            .insert(header::LINK, link.parse().expect("a header value"));
    }
    r
}

/// `<target>; rel="next"`.
pub fn next(target: &str) -> Option<String> {
    Some(format!("<{target}>; rel=\"next\""))
}

/// A list item as the API shapes it.
pub fn item(id: &str, first: &str, last: &str, location: (&str, &str), ext: &str) -> Value {
    json!({
        "id": id, "firstName": first, "lastName": last,
        "externalCallerIdNamePolicy": "DIRECT_LINE",
        "number": {"external": format!("+1984555{ext}"), "extension": ext, "primary": true},
        "location": {"id": location.0, "name": location.1},
        "numberOfDevicesAssigned": 1,
    })
}

/// A line's settings: compliant with the baseline pack when ONE_WAY.
pub fn settings(connection: &str) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"allowAutoAnswer": false, "connectionType": connection,
                "accessType": "BLOCK_MEMBERS", "members": [{"id": "p", "type": "PEOPLE"}]}),
    )
}

pub fn reply(r: Response) -> Reply {
    Box::pin(async move { r })
}
