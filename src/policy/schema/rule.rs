//! `[[rule]]` entries.

use std::path::Path;

use super::{closest, Schema, RULE_KEYS, RULE_REQUIRED};
use crate::model::Severity;
use crate::policy::expr::{Expr, ExprKey};
use crate::policy::raw::{Pos, RawEntry, RawTable, RawValue};
use crate::policy::Rule;

/// The compiled expressions of one rule (those that compiled).
pub(in crate::policy) struct RuleExprs<'a> {
    pub(in crate::policy) id: Option<&'a str>,
    pub(in crate::policy) when: Option<&'a Expr>,
    pub(in crate::policy) require: Option<&'a Expr>,
    pub(in crate::policy) message_expr: Option<&'a Expr>,
}

impl<'a> RuleExprs<'a> {
    /// Each expression with its key, in key order.
    pub(in crate::policy) fn each(&self) -> impl Iterator<Item = (ExprKey, &'a Expr)> {
        [
            (ExprKey::When, self.when),
            (ExprKey::Require, self.require),
            (ExprKey::MessageExpr, self.message_expr),
        ]
        .into_iter()
        .filter_map(|(which, e)| e.map(|e| (which, e)))
    }
}

/// A rule as far as it could be read; a [`Rule`] once complete.
pub(super) struct RuleDraft {
    id: Option<String>,
    title: Option<String>,
    severity: Option<Severity>,
    description: Option<String>,
    remediation: Option<String>,
    references: Vec<String>,
    enabled: bool,
    when: Option<Expr>,
    require: Option<Expr>,
    message: Option<String>,
    message_expr: Option<Expr>,
}

impl RuleDraft {
    /// The rule, if every required part was read.
    pub(crate) fn into_rule(self) -> Option<Rule> {
        let (Some(id), Some(title), Some(severity), Some(require)) =
            (self.id, self.title, self.severity, self.require)
        else {
            return None;
        };
        Some(Rule {
            id,
            title,
            severity,
            description: self.description,
            remediation: self.remediation,
            references: self.references,
            enabled: self.enabled,
            when: self.when,
            require,
            message: self.message,
            message_expr: self.message_expr,
        })
    }
}

impl Schema {
    /// The IDs of disabled rules.
    pub(super) fn disabled_rule_ids(&self) -> Vec<String> {
        self.rules
            .iter()
            .filter(|d| !d.enabled)
            .filter_map(|d| d.id.clone())
            .collect()
    }

    /// The compiled expressions of each enabled rule, with the rule's ID when it has
    /// one, in rule order: what the later checks look at.
    pub(in crate::policy) fn enabled_rules(&self) -> impl Iterator<Item = RuleExprs<'_>> + '_ {
        self.rules.iter().filter(|d| d.enabled).map(|d| RuleExprs {
            id: d.id.as_deref(),
            when: d.when.as_ref(),
            require: d.require.as_ref(),
            message_expr: d.message_expr.as_ref(),
        })
    }

    pub(super) fn add_rule(&mut self, file: &Path, header: Pos, table: &RawTable) {
        // The ID first, so every other complaint can name the rule.
        let id = match table.get("id").map(|e| &e.value) {
            Some(RawValue::String(s)) => Some(s.clone()),
            _ => None,
        };
        let rid = id.as_deref();
        let mut d = RuleDraft {
            id: id.clone(),
            title: None,
            severity: None,
            description: None,
            remediation: None,
            references: Vec::new(),
            enabled: true,
            when: None,
            require: None,
            message: None,
            message_expr: None,
        };
        for entry in &table.entries {
            let key = entry.key.as_str();
            if !RULE_KEYS.contains(&key) {
                self.unknown_key(file, entry, rid, RULE_KEYS);
                continue;
            }
            if key == "references" {
                d.references = self.string_list(file, entry, rid);
                continue;
            }
            if key == "enabled" {
                match &entry.value {
                    RawValue::Boolean(b) => d.enabled = *b,
                    other => self.wrong_type(file, entry, rid, "a boolean", other),
                }
                continue;
            }
            let RawValue::String(s) = &entry.value else {
                self.wrong_type(file, entry, rid, "a string", &entry.value);
                continue;
            };
            match key {
                "id" => self.check_id(file, entry, s),
                "title" => {
                    if s.trim().is_empty() {
                        self.problems.add(
                            file,
                            entry.value_pos,
                            rid,
                            "`title` must not be empty".into(),
                        );
                    }
                    d.title = Some(s.clone());
                }
                "severity" => match Severity::parse(s) {
                    Some(sev) => d.severity = Some(sev),
                    None => {
                        let valid = Severity::ALL.map(Severity::as_str);
                        let hint = match closest(s, valid.iter().copied()) {
                            Some(v) => format!(" (did you mean `{v}`?)"),
                            None => String::new(),
                        };
                        self.problems.add(
                            file,
                            entry.value_pos,
                            rid,
                            format!(
                                "bad severity `{s}`: expected one of {}{hint}",
                                valid.join(", ")
                            ),
                        );
                    }
                },
                "when" => d.when = self.compile(file, entry, rid, ExprKey::When, s),
                "require" => d.require = self.compile(file, entry, rid, ExprKey::Require, s),
                "message_expr" => {
                    d.message_expr = self.compile(file, entry, rid, ExprKey::MessageExpr, s);
                }
                "message" => d.message = Some(s.clone()),
                "remediation" => d.remediation = Some(s.clone()),
                "description" => d.description = Some(s.clone()),
                _ => {}
            }
        }
        for key in RULE_REQUIRED {
            if table.get(key).is_none() {
                self.problems
                    .add(file, header, rid, format!("missing required key `{key}`"));
            }
        }
        self.rules.push(d);
    }

    /// The ID's spelling, and that no rule in any file already has it. An invalid ID is
    /// still remembered, so a waiver naming it is not also reported as naming no rule.
    fn check_id(&mut self, file: &Path, entry: &RawEntry, id: &str) {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            self.problems.add(
                file,
                entry.value_pos,
                Some(id),
                format!("invalid rule ID `{id}`: use only letters, digits, `.`, `_` and `-`"),
            );
        }
        if let Some((first_file, first_pos)) = self.rule_ids.get(id).cloned() {
            self.problems.add(
                file,
                entry.value_pos,
                Some(id),
                format!(
                    "duplicate rule ID `{id}` (first defined at {}:{}:{})",
                    first_file.display(),
                    first_pos.line,
                    first_pos.column
                ),
            );
        } else {
            self.rule_ids
                .insert(id.to_string(), (file.to_path_buf(), entry.value_pos));
        }
    }

    fn compile(
        &mut self,
        file: &Path,
        entry: &RawEntry,
        rule: Option<&str>,
        which: ExprKey,
        source: &str,
    ) -> Option<Expr> {
        match self.env.0.compile(source) {
            Ok(program) => Some(Expr {
                source: source.to_string(),
                program,
                file: file.to_path_buf(),
                pos: entry.value_pos,
            }),
            Err(errors) => {
                let detail = errors
                    .errors
                    .iter()
                    .map(|e| format!("{} (at {}:{} of the expression)", e.msg, e.pos.0, e.pos.1))
                    .collect::<Vec<_>>()
                    .join("; ");
                self.problems.add(
                    file,
                    entry.value_pos,
                    rule,
                    format!("`{}` is not valid CEL: {detail}", which.as_str()),
                );
                None
            }
        }
    }

    fn wrong_type(
        &mut self,
        file: &Path,
        entry: &RawEntry,
        rule: Option<&str>,
        expected: &str,
        found: &RawValue,
    ) {
        self.problems.add(
            file,
            entry.value_pos,
            rule,
            format!(
                "`{}` must be {expected}, found {}",
                entry.key,
                found.type_name()
            ),
        );
    }

    fn string_list(&mut self, file: &Path, entry: &RawEntry, rule: Option<&str>) -> Vec<String> {
        let RawValue::Array(items) = &entry.value else {
            self.wrong_type(file, entry, rule, "an array of strings", &entry.value);
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match &item.value {
                RawValue::String(s) => out.push(s.clone()),
                other => self.problems.add(
                    file,
                    item.pos,
                    rule,
                    format!(
                        "`{}` must hold only strings, found {}",
                        entry.key,
                        other.type_name()
                    ),
                ),
            }
        }
        out
    }
}
