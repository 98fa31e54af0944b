//! Warnings about waivers that depend on the date: expired, or expiring soon. Pure:
//! the caller passes `today`, as evaluation does.

use chrono::NaiveDate;

use super::{Diagnostic, PolicySet, Waiver};

impl PolicySet {
    /// A warning for every waiver that has expired by `today`, and for every one whose
    /// last day is within `within_days` of it, in waiver order: at its `[[waiver]]`
    /// header, naming the rule, the line (and label), the date and the ticket and owner.
    pub fn waiver_warnings(&self, today: NaiveDate, within_days: i64) -> Vec<Diagnostic> {
        self.waivers
            .iter()
            .filter_map(|w| {
                let days = (w.expires - today).num_days();
                let message = if days < 0 {
                    let ago = -days;
                    format!(
                        "waiver of line {} expired on {} ({ago} day{} ago){}: it no longer \
                         applies, so the rule's failures on that line count again; renew it \
                         with a later `expires` or remove it",
                        w.line_and_label(),
                        w.expires,
                        plural(ago),
                        about(w),
                    )
                } else if days <= within_days {
                    let when = match days {
                        0 => "today is its last day".to_string(),
                        n => format!("in {n} day{}", plural(n)),
                    };
                    format!(
                        "waiver of line {} expires on {} ({when}){}: renew it or fix the line \
                         before then",
                        w.line_and_label(),
                        w.expires,
                        about(w),
                    )
                } else {
                    return None;
                };
                Some(Diagnostic {
                    file: w.file.clone(),
                    line: Some(w.line_no),
                    column: None,
                    rule: Some(w.rule.clone()),
                    message,
                })
            })
            .collect()
    }

    /// The line IDs the waivers name, each once, in waiver order: without an audit of
    /// them, nobody can tell whether a waiver is still needed.
    pub fn waived_lines(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        for w in &self.waivers {
            if !ids.contains(&w.line.as_str()) {
                ids.push(&w.line);
            }
        }
        ids
    }
}

fn plural(n: i64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `; ticket T, owner O` when the waiver has any.
fn about(w: &Waiver) -> String {
    match w.metadata() {
        m if m.is_empty() => String::new(),
        m => format!("; {m}"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn day(s: &str) -> chrono::NaiveDate {
        s.parse().expect("a date")
    }

    #[test]
    fn expired_and_expiring_waivers_are_warned_about_with_their_metadata() {
        let set = crate::policy::load_str(
            Path::new("w.toml"),
            r#"[[rule]]
id = "R"
title = "t"
severity = "low"
require = "allowAutoAnswer == false"

[[waiver]]
rule = "R"
line = "OLD"
reason = "r"
expires = 2026-06-01
ticket = "SEC-1"
owner = "ops@example.com"

[[waiver]]
rule = "R"
line = "SOON"
reason = "r"
expires = 2026-06-29
label = "Lobby intercom"

[[waiver]]
rule = "R"
line = "LAST-DAY"
reason = "r"
expires = 2026-06-15

[[waiver]]
rule = "R"
line = "LATER"
reason = "r"
expires = 2026-06-30
"#,
        )
        .expect("loads");
        let warnings = set.waiver_warnings(day("2026-06-15"), 14);
        let shown: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert_eq!(
            shown[0],
            "w.toml:7: rule R: waiver of line OLD expired on 2026-06-01 (14 days ago); ticket \
             SEC-1, owner ops@example.com: it no longer applies, so the rule's failures on that \
             line count again; renew it with a later `expires` or remove it"
        );
        assert!(
            shown[1].starts_with(
                "w.toml:15: rule R: waiver of line SOON (Lobby intercom) expires on 2026-06-29 (in 14 days)"
            ),
            "{}",
            shown[1]
        );
        assert!(shown[2].contains("(today is its last day)"), "{}", shown[2]);
        assert_eq!(set.waived_lines(), ["OLD", "SOON", "LAST-DAY", "LATER"]);
    }
}
