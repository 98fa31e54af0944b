//! What an answer's body says: the line's settings, or the API's own account of an
//! error (its message and tracking ID). Pure: bytes in, values out.

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::model::{ErrorKind, LineError};

/// Fields the API marks required in a PTT settings answer. A 200 without them is not
/// the line's settings (a proxy's page, an error body, an API change) and must not be
/// evaluated: rules that only look at `members` would pass it.
pub(crate) const REQUIRED_FIELDS: [&str; 3] = ["allowAutoAnswer", "connectionType", "accessType"];

/// The JSON type each documented field must have. A wrong type is not a value a rule
/// can judge: `allowAutoAnswer: "true"` would make a rule on it `error` while the
/// others pass, and a `--fail-on critical` run would exit 0. `members` may be absent or
/// null (read as `[]`), but when present it is a list.
const FIELD_TYPES: [(&str, JsonType); 4] = [
    ("allowAutoAnswer", JsonType::Boolean),
    ("connectionType", JsonType::String),
    ("accessType", JsonType::String),
    ("members", JsonType::Array),
];

/// The JSON types [`FIELD_TYPES`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonType {
    Boolean,
    String,
    Array,
}

impl JsonType {
    fn of(value: &serde_json::Value) -> &'static str {
        match value {
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::Null => "null",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::Bool(_) => "a boolean",
            serde_json::Value::Object(_) => "an object",
        }
    }

    fn name(self) -> &'static str {
        match self {
            JsonType::Boolean => "a boolean",
            JsonType::String => "a string",
            JsonType::Array => "an array",
        }
    }

    fn matches(self, value: &serde_json::Value) -> bool {
        match self {
            JsonType::Boolean => value.is_boolean(),
            JsonType::String => value.is_string(),
            JsonType::Array => value.is_array(),
        }
    }
}

/// The settings in a 2xx body, or why the body is not settings: not JSON, not an
/// object, a required field missing, or a documented field of the wrong type. The
/// error names fields and types only, never values (they may be huge or secret).
pub(crate) fn decode(body: &[u8]) -> Result<serde_json::Value, String> {
    let map = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(other) => {
            return Err(format!(
                "expected a JSON object, got {}",
                JsonType::of(&other)
            ))
        }
        Err(e) => return Err(format!("response body is not valid JSON: {e}")),
    };
    let missing: Vec<&str> = REQUIRED_FIELDS
        .into_iter()
        .filter(|f| map.get(*f).is_none_or(serde_json::Value::is_null))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the answer is not PTT settings: required field(s) {} missing",
            missing.join(", ")
        ));
    }
    let wrong: Vec<String> = FIELD_TYPES
        .into_iter()
        .filter_map(|(field, want)| {
            let value = map.get(field).filter(|v| !v.is_null())?;
            (!want.matches(value)).then(|| {
                format!(
                    "{field} is {}, expected {}",
                    JsonType::of(value),
                    want.name()
                )
            })
        })
        .collect();
    if !wrong.is_empty() {
        return Err(format!(
            "the answer is not PTT settings: {}",
            wrong.join("; ")
        ));
    }
    Ok(serde_json::Value::Object(map))
}

/// Most characters of the API's `message` copied into a line's error: enough for any
/// real message, and a hostile one cannot fill every log line and report.
pub(crate) const MAX_MESSAGE_CHARS: usize = 1000;
/// Most characters of a tracking ID copied into a line's error.
pub(crate) const MAX_TRACKING_ID_CHARS: usize = 200;

/// `text` cut to at most `max` characters, with `…` when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
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
    let api_message = api_message.map(|m| shorten(&m, MAX_MESSAGE_CHARS));
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
        tracking_id: api
            .and_then(|a| a.tracking_id)
            .or(header_tracking)
            .map(|t| shorten(&t, MAX_TRACKING_ID_CHARS)),
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

    #[test]
    fn documented_fields_of_the_wrong_type_are_not_settings() {
        let e = decode(
            br#"{"allowAutoAnswer":"true","connectionType":"ONE_WAY","accessType":"ALLOW_MEMBERS"}"#,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "the answer is not PTT settings: allowAutoAnswer is a string, expected a boolean"
        );
        let e = decode(
            br#"{"allowAutoAnswer":false,"connectionType":1,"accessType":["x"],"members":{}}"#,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "the answer is not PTT settings: connectionType is a number, expected a string; \
             accessType is an array, expected a string; members is an object, expected an array"
        );
        // `members` absent or null reads as `[]`; an undocumented field may be anything.
        for ok in [
            &br#"{"allowAutoAnswer":true,"connectionType":"TWO_WAY","accessType":"BLOCK_MEMBERS"}"#[..],
            br#"{"allowAutoAnswer":true,"connectionType":"TWO_WAY","accessType":"BLOCK_MEMBERS","members":null,"x":{}}"#,
        ] {
            decode(ok).unwrap();
        }
    }

    #[test]
    fn long_api_texts_are_cut() {
        let long = "é".repeat(5000);
        let body = serde_json::json!({"message": long, "trackingId": long}).to_string();
        let e = line_error(
            ErrorKind::Http,
            StatusCode::BAD_REQUEST,
            String::new(),
            &HeaderMap::new(),
            body.as_bytes(),
            1,
        );
        assert!(
            e.message.chars().count() < MAX_MESSAGE_CHARS + 40,
            "{}",
            e.message.len()
        );
        assert!(e.message.ends_with('…'));
        assert_eq!(
            e.tracking_id.unwrap().chars().count(),
            MAX_TRACKING_ID_CHARS + 1
        );
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "abc…");
    }
}
