//! Who a line is, for the people reading a report: its name, location and numbers.
//!
//! An ID such as `Y2lzY29zcGFyazovL3VzL1ZJUlRVQUxfTElORS8x` tells a reviewer nothing;
//! "Lobby Paging, HQ San José, ext. 2002" does. The identity comes from listing
//! (`audit --all`, `ptt-audit lines`) or from the columns of a CSV given to `--lines`,
//! and travels with the line into every report and into CEL (`line.name`, …).

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A line's identity; every part may be unknown (`None`). Serialises to the JSON
/// report's `lines[].line` object, every key present, unknown ones `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LineIdentity {
    /// `displayName`, else `firstName lastName`.
    pub name: Option<String>,
    /// The location's ID (`location.id`).
    pub location_id: Option<String>,
    /// The location's name (`location.name`).
    pub location_name: Option<String>,
    /// The external number (`number.external`).
    pub phone_number: Option<String>,
    /// The extension (`number.extension`).
    pub extension: Option<String>,
}

impl LineIdentity {
    /// Field names, in the order of the reports' columns and of `lines[].line`.
    pub const FIELDS: [&'static str; 5] = [
        "name",
        "location_id",
        "location_name",
        "phone_number",
        "extension",
    ];

    /// The shared identity of a line nothing is known about: lines from ID files are
    /// the common case, and they all point at this one instead of an allocation each.
    pub fn unknown() -> Arc<LineIdentity> {
        static UNKNOWN: OnceLock<Arc<LineIdentity>> = OnceLock::new();
        Arc::clone(UNKNOWN.get_or_init(|| Arc::new(LineIdentity::default())))
    }

    /// The identity in one item of the list endpoint (`GET …/virtualLines`): name from
    /// `displayName`, else `firstName` and `lastName`; `location.id`, `location.name`,
    /// `number.external`, `number.extension`. Values that are not strings, or are
    /// blank, are unknown.
    pub fn from_list_item(item: &Value) -> LineIdentity {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let name = text(item.get("displayName")).or_else(|| {
            let parts: Vec<String> = [item.get("firstName"), item.get("lastName")]
                .into_iter()
                .filter_map(text)
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
        let location = item.get("location");
        let number = item.get("number");
        LineIdentity {
            name,
            location_id: text(location.and_then(|l| l.get("id"))),
            location_name: text(location.and_then(|l| l.get("name"))),
            phone_number: text(number.and_then(|n| n.get("external"))),
            extension: text(number.and_then(|n| n.get("extension"))),
        }
    }

    /// The values in [`FIELDS`](Self::FIELDS) order.
    pub fn values(&self) -> [Option<&str>; 5] {
        [
            self.name.as_deref(),
            self.location_id.as_deref(),
            self.location_name.as_deref(),
            self.phone_number.as_deref(),
            self.extension.as_deref(),
        ]
    }

    /// Mutable access by field name (one of [`FIELDS`](Self::FIELDS)), for readers
    /// that fill an identity column by column.
    pub(crate) fn field_mut(&mut self, field: &str) -> Option<&mut Option<String>> {
        match field {
            "name" => Some(&mut self.name),
            "location_id" => Some(&mut self.location_id),
            "location_name" => Some(&mut self.location_name),
            "phone_number" => Some(&mut self.phone_number),
            "extension" => Some(&mut self.extension),
            _ => None,
        }
    }

    /// True when nothing is known.
    pub fn is_unknown(&self) -> bool {
        self.values().iter().all(Option::is_none)
    }

    /// How a person names the line in a message: `Lobby Paging (HQ San José)`, the
    /// name alone, or `None` when there is no name.
    pub fn label(&self) -> Option<String> {
        let name = self.name.as_deref()?;
        Some(match self.location_name.as_deref() {
            Some(loc) => format!("{name} ({loc})"),
            None => name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_list_item_gives_name_location_and_numbers() {
        let item = json!({
            "id": "L1", "firstName": "Lobby", "lastName": "Paging",
            "number": {"external": "+19845550100", "extension": "2002", "primary": true},
            "location": {"id": "LOC1", "name": "HQ San José"},
        });
        let id = LineIdentity::from_list_item(&item);
        assert_eq!(
            id.values(),
            [
                Some("Lobby Paging"),
                Some("LOC1"),
                Some("HQ San José"),
                Some("+19845550100"),
                Some("2002")
            ]
        );
        assert_eq!(id.label().as_deref(), Some("Lobby Paging (HQ San José)"));
    }

    #[test]
    fn display_name_wins_and_odd_values_are_unknown() {
        let item = json!({"displayName": " Front Desk ", "firstName": "x",
                          "number": {"extension": 7}, "location": "HQ"});
        let id = LineIdentity::from_list_item(&item);
        assert_eq!(id.name.as_deref(), Some("Front Desk"));
        assert_eq!((id.extension, id.location_name), (None, None));
        let only_last =
            LineIdentity::from_list_item(&json!({"lastName": "Dock", "firstName": " "}));
        assert_eq!(only_last.name.as_deref(), Some("Dock"));
        assert!(LineIdentity::from_list_item(&json!({})).is_unknown());
        assert_eq!(LineIdentity::default().label(), None);
    }

    #[test]
    fn serialises_every_key_in_field_order() {
        let text = serde_json::to_string(&LineIdentity::default()).unwrap();
        assert_eq!(
            text,
            r#"{"name":null,"location_id":null,"location_name":null,"phone_number":null,"extension":null}"#
        );
        let mut id = LineIdentity::default();
        for f in LineIdentity::FIELDS {
            *id.field_mut(f).unwrap() = Some(f.to_uppercase());
        }
        assert_eq!(id.values()[4], Some("EXTENSION"));
        assert!(id.field_mut("nope").is_none());
    }
}
