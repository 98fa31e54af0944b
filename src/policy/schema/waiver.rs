//! `[[waiver]]` entries.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::{closest, Schema, WAIVER_KEYS, WAIVER_REQUIRED};
use crate::policy::raw::{Pos, RawEntry, RawTable, RawValue};
use crate::policy::Waiver;

/// A waiver as far as it could be read.
pub(super) struct WaiverDraft {
    /// With where it is written, to report a rule no policy defines.
    rule: Option<(String, Pos)>,
    line: Option<String>,
    reason: Option<String>,
    expires: Option<NaiveDate>,
    ticket: Option<String>,
    owner: Option<String>,
    label: Option<String>,
    file: PathBuf,
    line_no: usize,
}

impl WaiverDraft {
    /// The waiver, if every required part was read.
    pub(crate) fn into_waiver(self) -> Option<Waiver> {
        let (Some((rule, _)), Some(line), Some(reason), Some(expires)) =
            (self.rule, self.line, self.reason, self.expires)
        else {
            return None;
        };
        Some(Waiver {
            rule,
            line,
            reason,
            expires,
            ticket: self.ticket,
            owner: self.owner,
            label: self.label,
            file: self.file,
            line_no: self.line_no,
        })
    }
}

impl Schema {
    pub(super) fn add_waiver(&mut self, file: &Path, header: Pos, table: &RawTable) {
        let rule = match table.get("rule") {
            Some(RawEntry {
                value: RawValue::String(s),
                value_pos,
                ..
            }) => Some((s.clone(), *value_pos)),
            _ => None,
        };
        let rid = rule.as_ref().map(|(s, _)| s.as_str());
        let mut w = WaiverDraft {
            rule: rule.clone(),
            line: None,
            reason: None,
            expires: None,
            ticket: None,
            owner: None,
            label: None,
            file: file.to_path_buf(),
            line_no: header.line,
        };
        for entry in &table.entries {
            let key = entry.key.as_str();
            if !WAIVER_KEYS.contains(&key) {
                self.unknown_key(file, entry, rid, WAIVER_KEYS);
                continue;
            }
            if key == "expires" {
                w.expires = self.expires(file, entry, rid);
                continue;
            }
            let RawValue::String(s) = &entry.value else {
                self.problems.add(
                    file,
                    entry.value_pos,
                    rid,
                    format!(
                        "waiver: `{key}` must be a string, found {}",
                        entry.value.type_name()
                    ),
                );
                continue;
            };
            // Free text: an empty one says nothing, as if left out.
            let optional = (!s.trim().is_empty()).then(|| s.clone());
            match key {
                "ticket" => w.ticket = optional,
                "owner" => w.owner = optional,
                "label" => w.label = optional,
                _ if s.trim().is_empty() => {
                    let why = match key {
                        "reason" => {
                            "waiver: `reason` must not be empty: say why the exception is accepted"
                        }
                        "line" => "waiver: `line` must not be empty: give the virtual-line ID",
                        _ => "waiver: `rule` must not be empty: give the rule ID",
                    };
                    self.problems
                        .add(file, entry.value_pos, rid, why.to_string());
                }
                "line" => w.line = Some(s.clone()),
                "reason" => w.reason = Some(s.clone()),
                _ => {}
            }
        }
        for key in WAIVER_REQUIRED {
            if table.get(key).is_none() {
                let extra = if *key == "expires" {
                    " (waivers must expire, e.g. expires = 2027-01-31)"
                } else {
                    ""
                };
                self.problems.add(
                    file,
                    header,
                    rid,
                    format!("waiver: missing required key `{key}`{extra}"),
                );
            }
        }
        self.waivers.push(w);
    }

    /// The `expires` date. Each wrong way to write it gets its own message, because
    /// TOML's date syntax (no quotes, no time) is easy to get almost right.
    fn expires(&mut self, file: &Path, entry: &RawEntry, rid: Option<&str>) -> Option<NaiveDate> {
        match &entry.value {
            RawValue::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
                (Some(date), None, None) => {
                    let expires = NaiveDate::from_ymd_opt(
                        i32::from(date.year),
                        u32::from(date.month),
                        u32::from(date.day),
                    );
                    if expires.is_none() {
                        self.problems.add(
                            file,
                            entry.value_pos,
                            rid,
                            format!("waiver: `expires` is not a valid date: {dt}"),
                        );
                    }
                    return expires;
                }
                _ => self.problems.add(
                    file,
                    entry.value_pos,
                    rid,
                    format!("waiver: `expires` must be a date without a time, like 2027-01-31, found {dt}"),
                ),
            },
            RawValue::String(s) => self.problems.add(
                file,
                entry.value_pos,
                rid,
                format!("waiver: `expires` must be a TOML date, written without quotes (expires = {s}), found a string"),
            ),
            other => self.problems.add(
                file,
                entry.value_pos,
                rid,
                format!(
                    "waiver: `expires` must be a TOML date like 2027-01-31, found {}",
                    other.type_name()
                ),
            ),
        }
        None
    }

    /// Cross-file: every waiver names a rule some file defines. Run once every file
    /// is read, since a waiver may come before the rule it waives. Warns about waivers
    /// that can never apply: of a disabled rule, or a second one for the same rule and
    /// line (only one applies at a time).
    pub(in crate::policy) fn check_waiver_rules(&mut self) {
        let disabled: Vec<String> = self.disabled_rule_ids();
        let mut seen: Vec<(&str, &str, &Path, usize)> = Vec::new();
        let mut warnings = Vec::new();
        for w in &self.waivers {
            let (Some((rule, pos)), Some(line)) = (&w.rule, &w.line) else {
                continue;
            };
            if disabled.contains(rule) {
                warnings.push((
                    w.file.clone(),
                    *pos,
                    rule.clone(),
                    format!(
                        "waiver of line {line}: rule `{rule}` is disabled, so this waiver never \
                         applies"
                    ),
                ));
            }
            match seen.iter().find(|(r, l, _, _)| r == rule && l == line) {
                Some((_, _, first_file, first_line)) => warnings.push((
                    w.file.clone(),
                    *pos,
                    rule.clone(),
                    format!(
                        "a second waiver of line {line} for this rule (the first is at {}:{}): \
                         only one applies at a time; keep the one you mean",
                        first_file.display(),
                        first_line
                    ),
                )),
                None => seen.push((rule, line, &w.file, w.line_no)),
            }
        }
        for (file, pos, rule, message) in warnings {
            self.problems.warn(&file, pos, Some(&rule), message);
        }

        let waiver_rules: Vec<(PathBuf, (String, Pos))> = self
            .waivers
            .iter()
            .filter_map(|w| w.rule.clone().map(|r| (w.file.clone(), r)))
            .collect();
        for (file, (rule, pos)) in waiver_rules {
            if !rule.is_empty() && !self.rule_ids.contains_key(&rule) {
                let hint = match closest(&rule, self.rule_ids.keys().map(String::as_str)) {
                    Some(s) => format!(" (did you mean `{s}`?)"),
                    None => String::new(),
                };
                self.problems.add(
                    &file,
                    pos,
                    Some(&rule),
                    format!("waiver names rule `{rule}`, which no policy defines{hint}"),
                );
            }
        }
    }
}
