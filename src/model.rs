//! Data shared by every stage: severities, statuses, errors and the per-line record
//! that flows from the fetcher through evaluation into the report formats.
//!
//! The serialised names here are the contract's (`CONTRACT.md` §5, §6): renaming a
//! variant breaks users' scripts.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod identity;

pub use identity::LineIdentity;

/// How much a failing rule matters. Ordered: `Low < Medium < High < Critical`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Severity {
    /// Worth fixing when convenient.
    Low,
    /// Should be fixed.
    Medium,
    /// Opens the line to people who should not reach it.
    High,
    /// A live microphone anyone can open.
    Critical,
}

impl Severity {
    /// All severities, lowest first.
    pub(crate) const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The contract's spelling (one place: the strum derive).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses the contract's spelling; `None` for anything else.
    pub(crate) fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// The outcome of one rule on one line.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RuleStatus {
    /// `require` held.
    Pass,
    /// `require` was false.
    Fail,
    /// `require` was false, but an unexpired waiver covers this line and rule.
    Waived,
    /// `when` was false.
    NotApplicable,
    /// The expression could not be evaluated, or the line could not be read.
    Error,
}

impl RuleStatus {
    /// Every status.
    pub(crate) const ALL: [RuleStatus; 5] = [
        RuleStatus::Pass,
        RuleStatus::Fail,
        RuleStatus::Waived,
        RuleStatus::NotApplicable,
        RuleStatus::Error,
    ];

    /// Parses the contract's spelling.
    pub(crate) fn parse(s: &str) -> Option<RuleStatus> {
        RuleStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The contract's spelling (one place: the strum derive).
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The outcome for one line as a whole.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum LineStatus {
    /// Read, and no rule failed or errored.
    Compliant,
    /// Read, and some rule failed.
    NonCompliant,
    /// Could not be read, or some rule errored and none failed.
    Error,
    /// The ID is malformed; it was never requested.
    Invalid,
    /// The run stopped (401, signal) before this line was read.
    NotAudited,
}

impl LineStatus {
    /// The contract's spelling (one place: the strum derive).
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why a line could not be read.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ErrorKind {
    /// The API answered with an HTTP error status.
    Http,
    /// No answer within `--timeout` (after every retry).
    Timeout,
    /// Connection refused, reset, DNS, TLS.
    Network,
    /// The API answered 200 with a body that is not a JSON object.
    Decode,
    /// The ID itself is malformed.
    InvalidId,
    /// The run stopped before this line was read.
    NotAudited,
    /// The token was refused (401).
    Auth,
    /// A bug in this tool (a panic) while auditing the line: not the API's fault, and
    /// not a `decode` error, so nobody goes looking at the server for it.
    Internal,
}

impl ErrorKind {
    /// The contract's spelling (one place: the strum derive).
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A line that could not be read, as the JSON report's `error` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The last HTTP status the API answered with, if any.
    pub http_status: Option<u16>,
    /// Human-readable explanation, including the API's own `message` when it gave one.
    pub message: String,
    /// The API's `trackingId` (body) or `TrackingID` (header): what Webex support asks for.
    pub tracking_id: Option<String>,
    /// Requests sent for this line (0 when it was never requested).
    pub attempts: u32,
}

impl LineError {
    /// An error for a line that was never requested.
    pub fn unrequested(kind: ErrorKind, message: impl Into<String>) -> Self {
        LineError {
            kind,
            http_status: None,
            message: message.into(),
            tracking_id: None,
            attempts: 0,
        }
    }
}

/// How a result differs from the same line and rule in a previous report
/// (`audit --previous`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Change {
    /// The previous report had no result for this line and rule.
    New,
    /// Same status as before.
    Unchanged,
    /// Fails now; did not fail before.
    Regressed,
    /// Failed before; passes, is waived or no longer applies now.
    Resolved,
    /// Any other change of status (for example `pass` to `error`).
    Changed,
}

impl Change {
    /// The contract's spelling (one place: the strum derive).
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }

    /// The change from `before` (absent: never reported) to `now`.
    pub(crate) fn between(before: Option<RuleStatus>, now: RuleStatus) -> Change {
        match before {
            None => Change::New,
            Some(b) if b == now => Change::Unchanged,
            Some(_) if now == RuleStatus::Fail => Change::Regressed,
            Some(RuleStatus::Fail)
                if matches!(
                    now,
                    RuleStatus::Pass | RuleStatus::Waived | RuleStatus::NotApplicable
                ) =>
            {
                Change::Resolved
            }
            Some(_) => Change::Changed,
        }
    }
}

/// One rule's result on one line, as evaluation produces it.
///
/// Rules and waivers are referred to by their index in the loaded
/// [`PolicySet`](crate::policy::PolicySet), so that a result costs no string copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Index into `PolicySet::rules`.
    pub rule: usize,
    /// The outcome.
    pub status: RuleStatus,
    /// Why it failed or errored (the rule's `message`/`message_expr`, or the error).
    pub message: Option<String>,
    /// Index into `PolicySet::waivers` of the waiver that matched this line and rule
    /// (applied when `status` is `Waived`; expired when the status stayed `Fail`).
    pub waiver: Option<usize>,
    /// How this differs from a previous report; `None` when there is none to compare.
    pub change: Option<Change>,
}

/// Everything known about one input line once its fate is settled.
#[derive(Debug, Clone)]
pub struct LineReport {
    /// Position in the deduplicated input (reports keep this order).
    pub index: usize,
    /// The virtual-line ID exactly as given.
    pub id: String,
    /// Name, location and numbers, as far as known (from listing or a CSV input).
    pub identity: Arc<LineIdentity>,
    /// The line's overall status.
    pub status: LineStatus,
    /// When the settings were read.
    pub read_at: Option<DateTime<Utc>>,
    /// The API's JSON body as returned, when the line was read.
    pub settings: Option<serde_json::Value>,
    /// One entry per enabled rule, in rule order.
    pub findings: Vec<Finding>,
    /// Why the line could not be read, when it could not.
    pub error: Option<LineError>,
}

impl LineReport {
    /// The line's name, when known.
    pub fn name(&self) -> Option<&str> {
        self.identity.name.as_deref()
    }

    /// Derives the line status from its findings, per the contract: any `fail` makes it
    /// `non_compliant`; otherwise any `error` makes it `error`; else `compliant`.
    pub fn status_from_findings(findings: &[Finding]) -> LineStatus {
        if findings.iter().any(|f| f.status == RuleStatus::Fail) {
            LineStatus::NonCompliant
        } else if findings.iter().any(|f| f.status == RuleStatus::Error) {
            LineStatus::Error
        } else {
            LineStatus::Compliant
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    /// The spelling is declared twice (serde for the reports, strum for CSV cells and
    /// messages): they must agree for every variant, or CSV and JSON would disagree.
    fn spellings_agree<T: VariantArray + Serialize + Into<&'static str> + Copy>() {
        for v in T::VARIANTS {
            let serde = serde_json::to_value(v).expect("serialises");
            let strum: &'static str = (*v).into();
            assert_eq!(serde, serde_json::Value::from(strum));
        }
    }

    #[test]
    fn serde_and_strum_spell_every_variant_alike() {
        spellings_agree::<Severity>();
        spellings_agree::<RuleStatus>();
        spellings_agree::<LineStatus>();
        spellings_agree::<ErrorKind>();
        spellings_agree::<Change>();
        assert_eq!(LineStatus::NotAudited.as_str(), "not_audited");
        assert_eq!(Severity::Critical.to_string(), "critical");
    }
}
