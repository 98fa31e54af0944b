//! What an answer's body says: the line's settings, or the API's own account of an
//! error (its message and tracking ID). Pure: bytes in, values out.

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::model::{ErrorKind, LineError};

/// Fields the API marks required in a PTT settings answer. A 200 without them is not
/// the line's settings (a proxy's page, an error body, an API change) and must not be
/// evaluated: rules that only look at `members` would pass it.
pub(crate) const REQUIRED_FIELDS: [&str; 3] = ["allowAutoAnswer", "connectionType", "accessType"];

/// The settings in a 2xx body, or why the body is not settings.
pub(crate) fn decode(body: &[u8]) -> Result<serde_json::Value, String> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => {
            let missing: Vec<&str> = REQUIRED_FIELDS
                .into_iter()
                .filter(|f| map.get(*f).is_none_or(serde_json::Value::is_null))
                .collect();
            if missing.is_empty() {
                Ok(serde_json::Value::Object(map))
            } else {
                Err(format!(
                    "the answer is not PTT settings: required field(s) {} missing",
                    missing.join(", ")
                ))
            }
        }
        Ok(other) => Err(format!(
            "expected a JSON object, got {}",
            match other {
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::Null => "null",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Number(_) => "a number",
                _ => "a boolean",
            }
        )),
        Err(e) => Err(format!("response body is not valid JSON: {e}")),
    }
}

/// The error for an HTTP answer, with the API's `message` and tracking ID: the body's
/// `trackingId` when it has one, else the `TrackingID` header. `detail` (may be
/// empty) is appended after the API's message.
pub(crate) fn line_error(
    kind: ErrorKind,
    status: StatusCode,
    detail: String,
    headers: &HeaderMap,
    body: &[u8],
    attempts: u32,
) -> LineError {
    #[derive(serde::Deserialize)]
    struct ApiError {
        message: Option<String>,
        #[serde(rename = "trackingId")]
        tracking_id: Option<String>,
        errors: Option<Vec<ApiErrorItem>>,
    }
    #[derive(serde::Deserialize)]
    struct ApiErrorItem {
        description: Option<String>,
    }
    let api: Option<ApiError> = serde_json::from_slice(body).ok();
    let header_tracking = headers
        .get("trackingid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let api_message = api.as_ref().and_then(|a| {
        a.message.clone().or_else(|| {
            a.errors
                .as_ref()
                .and_then(|e| e.iter().find_map(|i| i.description.clone()))
        })
    });
    let mut message = format!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_string();
    for part in [api_message, Some(detail)].into_iter().flatten() {
        if !part.is_empty() {
            message.push_str(": ");
            message.push_str(&part);
        }
    }
    LineError {
        kind,
        http_status: Some(status.as_u16()),
        message,
        tracking_id: api.and_then(|a| a.tracking_id).or(header_tracking),
        attempts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn api_error_fields_are_kept() {
        let mut headers = HeaderMap::new();
        headers.insert("TrackingID", HeaderValue::from_static("HDR_1"));
        let body =
            br#"{"message":"Line not found","errors":[{"description":"x"}],"trackingId":"BODY_1"}"#;
        let e = line_error(
            ErrorKind::Http,
            StatusCode::NOT_FOUND,
            String::new(),
            &headers,
            body,
            1,
        );
        assert_eq!(e.tracking_id.as_deref(), Some("BODY_1"));
        assert_eq!(e.message, "HTTP 404 Not Found: Line not found");
        let e = line_error(
            ErrorKind::Http,
            StatusCode::FORBIDDEN,
            String::new(),
            &headers,
            b"",
            2,
        );
        assert_eq!(e.tracking_id.as_deref(), Some("HDR_1"));
        assert_eq!(e.http_status, Some(403));
        assert_eq!(e.attempts, 2);
    }

    #[test]
    fn the_first_error_description_stands_in_for_a_missing_message() {
        let body = br#"{"errors":[{"errorCode":1},{"description":"busy"}]}"#;
        let e = line_error(
            ErrorKind::Http,
            StatusCode::SERVICE_UNAVAILABLE,
            "and more".into(),
            &HeaderMap::new(),
            body,
            1,
        );
        assert_eq!(e.message, "HTTP 503 Service Unavailable: busy: and more");
        assert_eq!(e.tracking_id, None);
    }

    #[test]
    fn only_an_object_with_every_required_field_is_settings() {
        let ok = br#"{"allowAutoAnswer":false,"connectionType":"ONE_WAY","accessType":"BLOCK_MEMBERS","newField":1}"#;
        assert_eq!(decode(ok).unwrap()["newField"], 1);
        let null_field =
            br#"{"allowAutoAnswer":null,"connectionType":"ONE_WAY","accessType":"BLOCK_MEMBERS"}"#;
        let e = decode(null_field).unwrap_err();
        assert!(
            e.ends_with("required field(s) allowAutoAnswer missing"),
            "{e}"
        );
        let e = decode(b"{}").unwrap_err();
        assert!(
            e.contains("allowAutoAnswer, connectionType, accessType"),
            "{e}"
        );
        assert_eq!(
            decode(b"[]").unwrap_err(),
            "expected a JSON object, got an array"
        );
        assert_eq!(
            decode(b"null").unwrap_err(),
            "expected a JSON object, got null"
        );
        let e = decode(b"<html>").unwrap_err();
        assert!(e.starts_with("response body is not valid JSON"), "{e}");
    }
}
