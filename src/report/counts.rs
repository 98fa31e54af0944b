//! The run's summary counts (`CONTRACT.md` §6, key `summary`).
//!
//! Each counter struct keeps one named field per enum value, because the field names
//! are both the public API and the JSON keys. The mapping from enum value to field is
//! written once, in the [`enum_counts!`] table that declares the struct, so access by
//! enum value cannot disagree with the fields, and a new enum value without a field is
//! a compile error rather than a silently uncounted result.

use std::collections::BTreeMap;

use serde::Serialize;

use super::drift::{Changes, WaiverEntry};
use super::effective_findings;
use super::spotlight::Spotlight;
use crate::compare::RemovedLine;
use crate::model::{Change, LineReport, LineStatus, RuleStatus, Severity};
use crate::policy::PolicySet;

/// A counter struct's fields by enum value, as [`enum_counts!`] maps them.
///
/// A trait, not inherent methods: the table gives every struct both directions, but
/// only some counters are read by value (an inherent `get` would be dead code on the
/// others).
trait ByKey<K> {
    /// The count for one value.
    fn get(&self, key: K) -> u64;
    /// The field that counts one value.
    fn slot(&mut self, key: K) -> &mut u64;
}

/// Declares a counter struct from a table of `field => Variant` rows: one public `u64`
/// field per row, in row order (which is also the JSON key order), plus `get` and
/// `bump` by enum value. An optional leading `pub total: u64,` counts every bump.
macro_rules! enum_counts {
    (@by_key $name:ident, $key:ident { $( $field:ident => $variant:ident, )+ }) => {
        impl ByKey<$key> for $name {
            fn get(&self, key: $key) -> u64 {
                match key {
                    $( $key::$variant => self.$field, )+
                }
            }

            fn slot(&mut self, key: $key) -> &mut u64 {
                match key {
                    $( $key::$variant => &mut self.$field, )+
                }
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident by $key:ident {
            $(#[$total_meta:meta])*
            pub total: u64,
            $( $(#[$field_meta:meta])* $field:ident => $variant:ident, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
        $vis struct $name {
            $(#[$total_meta])*
            pub total: u64,
            $( $(#[$field_meta])* pub $field: u64, )+
        }

        impl $name {
            fn bump(&mut self, key: $key) {
                self.total += 1;
                *self.slot(key) += 1;
            }
        }

        enum_counts!(@by_key $name, $key { $( $field => $variant, )+ });
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident by $key:ident {
            $( $(#[$field_meta:meta])* $field:ident => $variant:ident, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
        $vis struct $name {
            $( $(#[$field_meta])* pub $field: u64, )+
        }

        impl $name {
            fn bump(&mut self, key: $key) {
                *self.slot(key) += 1;
            }
        }

        enum_counts!(@by_key $name, $key { $( $field => $variant, )+ });
    };
}

enum_counts! {
    /// Line counts by status (contract key `summary.lines`).
    pub struct LineCounts by LineStatus {
        /// Every line.
        pub total: u64,
        /// `compliant` lines.
        compliant => Compliant,
        /// `non_compliant` lines.
        non_compliant => NonCompliant,
        /// `error` lines.
        error => Error,
        /// `invalid` lines.
        invalid => Invalid,
        /// `not_audited` lines.
        not_audited => NotAudited,
    }
}

enum_counts! {
    /// Result counts by status (contract key `summary.results`).
    pub struct ResultCounts by RuleStatus {
        /// `pass` results.
        pass => Pass,
        /// `fail` results.
        fail => Fail,
        /// `waived` results.
        waived => Waived,
        /// `not_applicable` results.
        not_applicable => NotApplicable,
        /// `error` results.
        error => Error,
    }
}

enum_counts! {
    /// `fail` results by the failing rule's severity (contract key
    /// `summary.fail_by_severity`).
    pub struct SeverityCounts by Severity {
        /// Low.
        low => Low,
        /// Medium.
        medium => Medium,
        /// High.
        high => High,
        /// Critical.
        critical => Critical,
    }
}

enum_counts! {
    /// Results by [`Change`], for `summary.changes`.
    pub struct ChangeCounts by Change {
        /// Not in the previous report.
        new => New,
        /// Same status.
        unchanged => Unchanged,
        /// Fail now, did not before.
        regressed => Regressed,
        /// Failed before, not now.
        resolved => Resolved,
        /// Any other change.
        changed => Changed,
    }
}

impl ResultCounts {
    /// All results: one per line and enabled rule.
    pub fn total(&self) -> u64 {
        RuleStatus::ALL.into_iter().map(|s| self.get(s)).sum()
    }
}

/// The run's counts; serialises to exactly the contract's `summary` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Lines by status.
    pub lines: LineCounts,
    /// Results by status.
    pub results: ResultCounts,
    /// `fail` results by severity.
    pub fail_by_severity: SeverityCounts,
    /// Rule index (into `PolicySet::rules`) → number of `fail` results, for the human
    /// summary. Not part of the JSON `summary` object.
    #[serde(skip)]
    pub failing_rules: BTreeMap<usize, u64>,
    /// Changes since the previous report; only with `--previous`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    /// The few lines the human summary names. Not part of the JSON `summary` object.
    #[serde(skip)]
    pub spotlight: Spotlight,
    /// Every waiver's state and days left, in `PolicySet::waivers` order; filled when
    /// the run finishes. Not part of the JSON `summary` object (the report's `waivers`).
    #[serde(skip)]
    pub waivers: Vec<WaiverEntry>,
    /// The lines the previous report had and this run lacks; filled when the run
    /// finishes. Not part of the JSON `summary` object (the report's `removed_lines`).
    #[serde(skip)]
    pub removed_lines: Vec<RemovedLine>,
}

impl Summary {
    /// Counts one line and its results (as [`effective_findings`] gives them).
    ///
    /// A result naming a rule the set does not have is counted by status but cannot be
    /// attributed to a severity; the writers report it as an error.
    pub(crate) fn add(&mut self, line: &LineReport, policies: &PolicySet) {
        self.lines.bump(line.status);
        let mut failed = Vec::new();
        let mut worst = None;
        for f in effective_findings(line, policies).iter() {
            self.results.bump(f.status);
            if let Some(change) = f.change {
                self.changes
                    .get_or_insert_with(Changes::default)
                    .results
                    .bump(change);
            }
            if f.status == RuleStatus::Fail {
                if let Some(rule) = policies.rules.get(f.rule) {
                    self.fail_by_severity.bump(rule.severity);
                    *self.failing_rules.entry(f.rule).or_insert(0) += 1;
                    failed.push(rule.id.as_str());
                    worst = worst.max(Some(rule.severity));
                }
            }
        }
        self.spotlight.add(line, &failed, worst);
    }

    /// `fail` results whose rule is at least `threshold` severe (for `--fail-on`).
    pub fn fails_at_or_above(&self, threshold: Severity) -> u64 {
        Severity::ALL
            .into_iter()
            .filter(|s| *s >= threshold)
            .map(|s| self.fail_by_severity.get(s))
            .sum()
    }

    /// True when some line is `error`, `invalid` or `not_audited` (exit code 3).
    pub fn is_incomplete(&self) -> bool {
        self.lines.error + self.lines.invalid + self.lines.not_audited > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_at_or_above_counts_threshold_and_higher() {
        let s = Summary {
            fail_by_severity: SeverityCounts {
                low: 1,
                medium: 2,
                high: 4,
                critical: 8,
            },
            ..Summary::default()
        };
        assert_eq!(s.fails_at_or_above(Severity::Low), 15);
        assert_eq!(s.fails_at_or_above(Severity::High), 12);
        assert_eq!(s.fails_at_or_above(Severity::Critical), 8);
        assert!(!s.is_incomplete());
    }

    #[test]
    fn bump_reaches_the_named_field_and_total() {
        let mut l = LineCounts::default();
        l.bump(LineStatus::NonCompliant);
        l.bump(LineStatus::NotAudited);
        l.bump(LineStatus::NotAudited);
        assert_eq!(
            l,
            LineCounts {
                total: 3,
                non_compliant: 1,
                not_audited: 2,
                ..LineCounts::default()
            }
        );
        assert_eq!(l.get(LineStatus::NotAudited), 2);

        let mut r = ResultCounts::default();
        for s in RuleStatus::ALL {
            r.bump(s);
        }
        r.bump(RuleStatus::NotApplicable);
        assert_eq!(r.not_applicable, 2);
        assert_eq!(r.total(), 6);

        let mut c = ChangeCounts::default();
        c.bump(Change::Regressed);
        assert_eq!((c.regressed, c.get(Change::Regressed), c.new), (1, 1, 0));
    }

    #[test]
    fn serialises_to_the_contracts_keys_in_order() {
        let s = Summary {
            changes: Some(Changes::default()),
            ..Summary::default()
        };
        assert_eq!(
            serde_json::to_string(&s).expect("serialises"),
            concat!(
                r#"{"lines":{"total":0,"compliant":0,"non_compliant":0,"error":0,"invalid":0,"not_audited":0},"#,
                r#""results":{"pass":0,"fail":0,"waived":0,"not_applicable":0,"error":0},"#,
                r#""fail_by_severity":{"low":0,"medium":0,"high":0,"critical":0},"#,
                r#""changes":{"new":0,"unchanged":0,"regressed":0,"resolved":0,"changed":0,"lines_added":0,"lines_removed":0}}"#
            )
        );
    }
}
