//! What changed since the previous report and what is about to change: the counts of
//! `summary.changes`, and each waiver's state and days left.

use chrono::NaiveDate;
use serde::Serialize;

use super::counts::ChangeCounts;
use super::WaiverState;
use crate::policy::PolicySet;

/// `summary.changes`: results by change since the previous report, and the lines
/// added and removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// Results by how they changed (`new`, `unchanged`, `regressed`, …).
    #[serde(flatten)]
    pub results: ChangeCounts,
    /// Lines this run has and the previous report had not.
    pub lines_added: u64,
    /// Lines the previous report had and this run has not.
    pub lines_removed: u64,
}

/// One waiver at the end of a run, in `PolicySet::waivers` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaiverEntry {
    /// Its index in `PolicySet::waivers`.
    pub index: usize,
    /// Applied, unused or expired.
    pub state: WaiverState,
    /// Days from the run's date to `expires`: 0 on its last day, negative once expired.
    pub days_left: i64,
}

impl WaiverEntry {
    /// Still in force, and expiring within `days` days (its last day included).
    pub fn expires_within(&self, days: u32) -> bool {
        (0..=i64::from(days)).contains(&self.days_left)
    }
}

/// Every waiver's entry, judged on `today` (the run's date). `applied[i]` says whether
/// waiver `i` turned some `fail` into `waived`.
pub(crate) fn waiver_entries(
    policies: &PolicySet,
    applied: &[bool],
    today: NaiveDate,
) -> Vec<WaiverEntry> {
    crate::eval::waiver_states(policies, applied, today)
        .into_iter()
        .zip(&policies.waivers)
        .enumerate()
        .map(|(index, (state, w))| WaiverEntry {
            index,
            state,
            days_left: (w.expires - today).num_days(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_and_expiring_soon() {
        let p = crate::policy::load_str(
            std::path::Path::new("t.toml"),
            "[[rule]]\nid = \"A\"\ntitle = \"t\"\nseverity = \"low\"\nrequire = \"true\"\n\
             [[waiver]]\nrule = \"A\"\nline = \"L1\"\nreason = \"r\"\nexpires = 2026-12-02\n\
             [[waiver]]\nrule = \"A\"\nline = \"L2\"\nreason = \"r\"\nexpires = 2026-11-28\n",
        )
        .expect("loads");
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).expect("a day");
        let e = waiver_entries(&p, &[true, false], today);
        assert_eq!(
            e,
            [
                WaiverEntry {
                    index: 0,
                    state: WaiverState::Applied,
                    days_left: 3
                },
                WaiverEntry {
                    index: 1,
                    state: WaiverState::Expired,
                    days_left: -1
                },
            ]
        );
        assert!(e[0].expires_within(3));
        assert!(!e[0].expires_within(2));
        assert!(!e[1].expires_within(14), "already expired");
    }

    #[test]
    fn changes_serialise_flat() {
        let c = Changes {
            lines_added: 2,
            lines_removed: 1,
            ..Changes::default()
        };
        assert_eq!(
            serde_json::to_string(&c).expect("serialises"),
            r#"{"new":0,"unchanged":0,"regressed":0,"resolved":0,"changed":0,"lines_added":2,"lines_removed":1}"#
        );
    }
}
