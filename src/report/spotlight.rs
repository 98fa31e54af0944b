//! The few lines the stdout summary names: those failing the most severe rules, and
//! those that could not be read. Bounded, so a run of 100,000 lines keeps at most
//! [`SPOTLIGHT`] of each, named as a person knows them (`Lobby Paging (HQ)`).

use crate::model::{LineReport, LineStatus, Severity};

/// Most lines of each kind the summary names.
pub(crate) const SPOTLIGHT: usize = 10;

/// One line as the summary names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// `Name (Location)` when the name is known, else the ID.
    pub label: String,
    /// What is wrong: the failing rule IDs, or the error.
    pub detail: String,
    /// For a failing line, the most severe failing rule's severity.
    pub severity: Option<Severity>,
}

/// The lines worth naming in the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spotlight {
    /// The lines with the most severe failures (most severe first, then input order).
    pub failing: Vec<Named>,
    /// The first lines that are `error` or `invalid`, in input order.
    pub unread: Vec<Named>,
}

impl Spotlight {
    /// Considers one line: `failed` holds its failing rules' IDs and the most severe
    /// failing severity.
    pub(crate) fn add(&mut self, line: &LineReport, failed: &[&str], worst: Option<Severity>) {
        let label = || match line.identity.label() {
            Some(label) => label,
            None => line.id.clone(),
        };
        if let Some(severity) = worst {
            // Keep the SPOTLIGHT most severe; a later line of equal severity does not
            // displace an earlier one.
            let at = self
                .failing
                .iter()
                .position(|n| n.severity < Some(severity))
                .unwrap_or(self.failing.len());
            if at < SPOTLIGHT {
                self.failing.insert(
                    at,
                    Named {
                        label: label(),
                        detail: failed.join(", "),
                        severity: Some(severity),
                    },
                );
                self.failing.truncate(SPOTLIGHT);
            }
        }
        let unread = matches!(line.status, LineStatus::Error | LineStatus::Invalid)
            && line.read_at.is_none();
        if unread && self.unread.len() < SPOTLIGHT {
            let detail = match &line.error {
                Some(e) => format!("{}: {}", e.kind.as_str(), shorten(&e.message)),
                None => line.status.as_str().to_string(),
            };
            self.unread.push(Named {
                label: label(),
                detail,
                severity: None,
            });
        }
    }
}

/// A message cut to one readable line.
fn shorten(s: &str) -> String {
    const MAX: usize = 120;
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= MAX {
        one_line
    } else {
        format!("{}…", one_line.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ErrorKind, LineError, LineIdentity};
    use std::sync::Arc;

    fn line(i: usize, status: LineStatus, name: Option<&str>) -> LineReport {
        LineReport {
            index: i,
            id: format!("ID{i}"),
            identity: Arc::new(LineIdentity {
                name: name.map(str::to_string),
                location_name: name.map(|_| "HQ".to_string()),
                ..LineIdentity::default()
            }),
            status,
            read_at: None,
            settings: None,
            findings: Vec::new(),
            error: (status == LineStatus::Error)
                .then(|| LineError::unrequested(ErrorKind::Http, "HTTP 404 Not Found\nmore")),
        }
    }

    #[test]
    fn keeps_the_most_severe_first_and_stays_bounded() {
        let mut s = Spotlight::default();
        for i in 0..30 {
            let sev = if i == 20 {
                Severity::Critical
            } else {
                Severity::Low
            };
            s.add(&line(i, LineStatus::NonCompliant, None), &["R"], Some(sev));
        }
        s.add(
            &line(31, LineStatus::NonCompliant, Some("Lobby")),
            &["A", "B"],
            Some(Severity::High),
        );
        assert_eq!(s.failing.len(), SPOTLIGHT);
        let labels: Vec<&str> = s.failing.iter().map(|n| n.label.as_str()).collect();
        assert_eq!(labels[..4], ["ID20", "Lobby (HQ)", "ID0", "ID1"]);
        assert_eq!(s.failing[1].detail, "A, B");
    }

    #[test]
    fn names_unread_lines_with_their_error_on_one_line() {
        let mut s = Spotlight::default();
        s.add(&line(0, LineStatus::Error, Some("Dock")), &[], None);
        s.add(&line(1, LineStatus::NotAudited, None), &[], None);
        s.add(&line(2, LineStatus::Invalid, None), &[], None);
        assert_eq!(s.unread.len(), 2);
        assert_eq!(s.unread[0].label, "Dock (HQ)");
        assert_eq!(s.unread[0].detail, "http: HTTP 404 Not Found more");
        assert_eq!(s.unread[1].detail, "invalid");
    }
}
