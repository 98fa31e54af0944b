//! Declarative policies: TOML files of `[vars]`, `[[rule]]` and `[[waiver]]`.
//!
//! Loading happens in two steps, as in cargo-deny: the files are parsed into raw,
//! position-carrying values, then validated into the checked types below, collecting
//! every problem (with file, line, column and rule ID) instead of stopping at the first.
//! See [`load()`] and [`load_str`]; evaluation lives in [`crate::eval`].
//!
//! # What CEL expressions see
//!
//! Each top-level field of the line's settings under its own name, exactly as the API
//! returned it (`allowAutoAnswer`, `connectionType`, `accessType`, `members`, and any
//! field the API adds); `members` as `[]` when absent or null; `line` (`line.id`);
//! `vars` (the merged `[vars]` tables). `line` and `vars` win over API fields of the
//! same name. JSON integers are CEL `int`s, so `size(members) > vars.max` works.
//!
//! Functions: the CEL standard library of the `cel` crate 0.15 (`size`, `has`, `all`,
//! `exists`, `exists_one`, `map`, `filter`, `in`, `startsWith`, `endsWith`,
//! `contains`, `string`, `int`, `uint`, `double`, `bool`, `type`, `dyn`, optional
//! values), plus its `strings` extension (`lowerAscii`,
//! `upperAscii`, `trim`, `split`, `join`, `replace`, `substring`, `indexOf`,
//! `lastIndexOf`, `charAt`, `format`, `reverse`, `strings.quote`) and `lists`
//! extension (`distinct`, `flatten`, `reverse`, `slice`, `sort`, `sortBy`,
//! `lists.range`). Regular expressions (`matches`), timestamps and durations are not
//! available: the crate is built without its `regex` and `chrono` features.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::NaiveDate;

use crate::model::Severity;

mod check;
mod error;
mod expiry;
pub(crate) mod expr;
mod fields;
mod load;
pub(crate) mod raw;
mod sample;
mod schema;
pub(crate) mod suggest;
mod vacuous;

pub use error::{Diagnostic, PolicyErrors};
pub use load::{load, load_str};

use expr::{CelEnv, Expr};

/// The shipped baseline pack (`policies/baseline.toml`), built into the binary so that
/// `demo` and tests work from any folder.
pub const BASELINE: &str = include_str!("../../policies/baseline.toml");

/// A loaded, validated and compiled set of policies.
#[derive(Debug)]
pub struct PolicySet {
    /// Every rule, in file order (files sorted by name), including disabled ones.
    pub rules: Vec<Rule>,
    /// Every waiver, in file order.
    pub waivers: Vec<Waiver>,
    /// The merged `[vars]` tables, as JSON: for a var set in several files, the value
    /// of the last file loaded.
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// Where each var of [`PolicySet::vars`] got its value.
    pub var_origins: HashMap<String, VarOrigin>,
    /// The files the set was loaded from, with their SHA-256, for the report.
    pub sources: Vec<PolicySource>,
    /// What loads but deserves a look (a field name the API does not document, a rule
    /// whose cost grows with the square of the number of members, a rule that cannot
    /// fail as configured, …), by file then position: `check-policies` prints these and
    /// `audit` logs them. Warnings that depend on the date are
    /// [`PolicySet::waiver_warnings`].
    pub warnings: Vec<Diagnostic>,
    /// The CEL environment every expression was compiled for.
    pub(crate) env: CelEnv,
    /// Waiver indices by line ID, for evaluation.
    pub(crate) waivers_by_line: HashMap<String, Vec<usize>>,
    /// No expression of an enabled rule (`message_expr` included) has a cost that the
    /// check finds growing faster than the number of members: on a small answer every
    /// rule takes microseconds (see `evaluator`).
    pub(crate) linear: bool,
}

impl PolicySet {
    /// The rules that are evaluated, with their index in [`PolicySet::rules`] (the
    /// index [`Finding::rule`](crate::model::Finding::rule) refers to), in rule order.
    pub fn enabled_rules(&self) -> impl Iterator<Item = (usize, &Rule)> + '_ {
        self.rules.iter().enumerate().filter(|(_, r)| r.enabled)
    }
}

/// Where a var's value comes from: files load in name order, and a later file's value
/// replaces an earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarOrigin {
    /// The file whose value is in force.
    pub file: PathBuf,
    /// 1-based line of the var's key in that file.
    pub line: usize,
    /// The earlier settings it replaced, as (file, line), first loaded first.
    pub overrides: Vec<(PathBuf, usize)>,
}

/// One policy file, for the report's `run.policies`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicySource {
    /// The path as given or found.
    pub path: String,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// A checked rule.
#[derive(Debug)]
pub struct Rule {
    /// Unique ID, `[A-Za-z0-9._-]+`.
    pub id: String,
    /// One-line title.
    pub title: String,
    /// How much a failure matters.
    pub severity: Severity,
    /// Why the rule matters.
    pub description: Option<String>,
    /// How to fix a failure.
    pub remediation: Option<String>,
    /// Links to documentation.
    pub references: Vec<String>,
    /// Disabled rules are listed but not evaluated.
    pub enabled: bool,
    pub(crate) when: Option<Expr>,
    pub(crate) require: Expr,
    pub(crate) message: Option<String>,
    pub(crate) message_expr: Option<Expr>,
}

impl Rule {
    /// The fixed failure `message`, if any.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The `message_expr` expression as written, if any.
    pub fn message_expr_source(&self) -> Option<&str> {
        self.message_expr.as_ref().map(|e| e.source.as_str())
    }
}

/// A checked waiver.
#[derive(Debug, Clone)]
pub struct Waiver {
    /// The rule ID it waives.
    pub rule: String,
    /// The line ID it waives.
    pub line: String,
    /// Why (required, not empty).
    pub reason: String,
    /// Last day it applies (inclusive).
    pub expires: NaiveDate,
    /// The ticket that approved it (free text), if given.
    pub ticket: Option<String>,
    /// Who answers for it (free text), if given.
    pub owner: Option<String>,
    /// What the line is, for reviewers who cannot read line IDs (free text), if given.
    pub label: Option<String>,
    /// The file it is written in.
    pub file: PathBuf,
    /// 1-based line of its `[[waiver]]` header.
    pub line_no: usize,
}

impl Waiver {
    /// The line ID, with the waiver's label when it has one: `ID (label)`.
    pub fn line_and_label(&self) -> String {
        match &self.label {
            Some(label) => format!("{} ({label})", self.line),
            None => self.line.clone(),
        }
    }

    /// `ticket T, owner O`: the metadata given, or an empty string.
    pub fn metadata(&self) -> String {
        let parts: Vec<String> = [("ticket", &self.ticket), ("owner", &self.owner)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
            .collect();
        parts.join(", ")
    }
}
