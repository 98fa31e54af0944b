//! Step two of loading: raw TOML values checked against the policy schema, collecting
//! every problem in every file before giving up, the way cargo-deny does.
//!
//! Entries are read into drafts that keep whatever was valid, so that one bad key does
//! not hide the problems of the others, and cross-file checks (duplicate IDs, waivers
//! of unknown rules) still have the IDs of rules with problems. The drafts become
//! [`Rule`]s and [`Waiver`]s only once no problem was found anywhere.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::{PolicyErrors, Problems};
use super::expr::CelEnv;
use super::raw::{Pos, RawEntry, RawTable, RawValue};
use super::suggest::closest;
use super::{Rule, VarOrigin, Waiver};

mod rule;
mod vars;
mod waiver;

use rule::RuleDraft;
use waiver::WaiverDraft;

const TOP_KEYS: &[&str] = &["vars", "rule", "waiver"];
pub(super) const RULE_KEYS: &[&str] = &[
    "id",
    "title",
    "severity",
    "when",
    "require",
    "message",
    "message_expr",
    "remediation",
    "description",
    "references",
    "enabled",
];
const RULE_REQUIRED: &[&str] = &["id", "title", "severity", "require"];
const WAIVER_KEYS: &[&str] = &[
    "rule", "line", "reason", "expires", "ticket", "owner", "label",
];
const WAIVER_REQUIRED: &[&str] = &["rule", "line", "reason", "expires"];

/// Where something was first defined, for "duplicate" messages.
type FirstSeen = (PathBuf, Pos);

/// Everything read from the files so far, and every problem found on the way.
pub(super) struct Schema {
    /// Expressions are compiled as they are read: a syntax error is a schema problem
    /// even on a disabled rule.
    env: CelEnv,
    /// Shared with the other steps of loading, so the result lists all problems.
    pub(super) problems: Problems,
    rules: Vec<RuleDraft>,
    /// Every rule ID seen, even on rules with other problems, with where.
    rule_ids: HashMap<String, FirstSeen>,
    waivers: Vec<WaiverDraft>,
    vars: serde_json::Map<String, serde_json::Value>,
    /// Where each var's value in force was set.
    var_origins: HashMap<String, VarOrigin>,
}

/// The checked content of every file.
pub(super) struct Checked {
    pub(crate) rules: Vec<Rule>,
    pub(crate) waivers: Vec<Waiver>,
    pub(crate) vars: serde_json::Map<String, serde_json::Value>,
    pub(crate) var_origins: HashMap<String, VarOrigin>,
}

impl Schema {
    pub(crate) fn new(env: CelEnv) -> Self {
        Schema {
            env,
            problems: Problems::default(),
            rules: Vec::new(),
            rule_ids: HashMap::new(),
            waivers: Vec::new(),
            vars: serde_json::Map::new(),
            var_origins: HashMap::new(),
        }
    }

    /// The `[vars]` tables read so far, merged.
    pub(crate) fn vars(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.vars
    }

    /// Checks one file's top-level table: `[vars]`, `[[rule]]` and `[[waiver]]`.
    pub(crate) fn add_table(&mut self, file: &Path, table: &RawTable) {
        for entry in &table.entries {
            match entry.key.as_str() {
                "vars" => match &entry.value {
                    RawValue::Table(t) => self.add_vars(file, t),
                    other => self.problems.add(
                        file,
                        entry.value_pos,
                        None,
                        format!(
                            "`vars` must be a table ([vars]), found {}",
                            other.type_name()
                        ),
                    ),
                },
                "rule" | "waiver" => self.add_array_of_tables(file, entry),
                _ => self.unknown_key(file, entry, None, TOP_KEYS),
            }
        }
    }

    /// `rule` or `waiver`: each element is one rule or waiver.
    fn add_array_of_tables(&mut self, file: &Path, entry: &RawEntry) {
        let key = entry.key.as_str();
        match &entry.value {
            RawValue::Array(items) => {
                for item in items {
                    match &item.value {
                        RawValue::Table(t) if key == "rule" => self.add_rule(file, item.pos, t),
                        RawValue::Table(t) => self.add_waiver(file, item.pos, t),
                        other => self.problems.add(
                            file,
                            item.pos,
                            None,
                            format!(
                                "each `{key}` must be a table ([[{key}]]), found {}",
                                other.type_name()
                            ),
                        ),
                    }
                }
            }
            // The likeliest slip of all, so it gets its own message.
            RawValue::Table(_) => self.problems.add(
                file,
                entry.value_pos,
                None,
                format!("`{key}` must be an array of tables: write [[{key}]], not [{key}]"),
            ),
            other => self.problems.add(
                file,
                entry.value_pos,
                None,
                format!(
                    "`{key}` must be an array of tables ([[{key}]]), found {}",
                    other.type_name()
                ),
            ),
        }
    }

    fn unknown_key(&mut self, file: &Path, entry: &RawEntry, rule: Option<&str>, valid: &[&str]) {
        let hint = match closest(&entry.key, valid.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? "),
            None => String::new(),
        };
        let expected = valid
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        self.problems.add(
            file,
            entry.key_pos,
            rule,
            format!(
                "unknown key `{}` ({hint}expected one of {expected})",
                entry.key
            ),
        );
    }

    /// The checked rules, waivers and vars, or every problem found by any step.
    ///
    /// # Errors
    ///
    /// Every problem recorded in [`Schema::problems`], by file then position.
    pub(crate) fn finish(self) -> Result<Checked, PolicyErrors> {
        self.problems.into_result()?;
        Ok(Checked {
            // Without problems every required part is present, so nothing is dropped.
            rules: self
                .rules
                .into_iter()
                .filter_map(RuleDraft::into_rule)
                .collect(),
            waivers: self
                .waivers
                .into_iter()
                .filter_map(WaiverDraft::into_waiver)
                .collect(),
            vars: self.vars,
            var_origins: self.var_origins,
        })
    }
}
