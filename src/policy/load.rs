//! Step two of loading: raw TOML values validated into the checked [`PolicySet`],
//! collecting every problem in every file before giving up, the way cargo-deny does.
//!
//! # Checking CEL without a type checker
//!
//! Every expression of every rule is compiled (a syntax error is a load error even on
//! a disabled rule). Because the cel crate has no type checker, the expressions of
//! enabled rules are then checked statically ([`super::check`]), then by running them
//! on sample records ([`super::sample`]); the first problem of each expression is
//! reported at the line of its key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::error::{Diagnostic, PolicyErrors};
use super::expr::{CelEnv, Expr, ExprKey};
use super::raw::{self, Pos, RawEntry, RawTable, RawValue};
use super::sample::Samples;
use super::suggest::closest;
use super::{check, PolicySet, PolicySource, Rule, Waiver};
use crate::model::Severity;

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
const WAIVER_KEYS: &[&str] = &["rule", "line", "reason", "expires"];

/// Loads the policies at `path`: one `.toml` file, or every `*.toml` file directly in a
/// folder, in name order.
///
/// # Errors
///
/// Every problem found in every file (see [`Diagnostic`]); also a missing path, an
/// unreadable file, and a folder with no `.toml` file.
pub fn load(path: &Path) -> Result<PolicySet, PolicyErrors> {
    let fail = |message: String| PolicyErrors {
        diagnostics: vec![Diagnostic {
            file: path.to_path_buf(),
            line: None,
            column: None,
            rule: None,
            message,
        }],
    };
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => fail("no such file or folder".to_string()),
        _ => fail(format!("cannot read: {e}")),
    })?;
    let files = if meta.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| fail(format!("cannot list: {e}")))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| fail(format!("cannot list: {e}")))?;
            let p = entry.path();
            // Following symlinks, as users expect of a folder of policies.
            if p.extension().is_some_and(|x| x == "toml") && p.is_file() {
                files.push(p);
            }
        }
        if files.is_empty() {
            return Err(fail("folder holds no .toml policy file".to_string()));
        }
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        files
    } else {
        vec![path.to_path_buf()]
    };

    let mut loader = Loader::new();
    for file in files {
        match std::fs::read(&file) {
            Ok(bytes) => loader.add_file(file, &bytes),
            Err(e) => loader.diag_at(&file, None, None, format!("cannot read: {e}")),
        }
    }
    loader.finish()
}

/// Loads policies from text, as if read from a file named `file` (used in messages and
/// in [`PolicySet::sources`]). For tests and for packs built into the binary.
///
/// # Errors
///
/// As [`load`].
pub fn load_str(file: &Path, text: &str) -> Result<PolicySet, PolicyErrors> {
    let mut loader = Loader::new();
    loader.add_file(file.to_path_buf(), text.as_bytes());
    loader.finish()
}

/// A rule as far as it could be read; a [`Rule`] once complete.
struct Draft {
    id: Option<String>,
    file: PathBuf,
    line: usize,
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

/// A waiver as far as it could be read.
struct WaiverDraft {
    rule: Option<(String, Pos)>,
    line: Option<String>,
    reason: Option<String>,
    expires: Option<NaiveDate>,
    file: PathBuf,
    line_no: usize,
}

struct Loader {
    env: CelEnv,
    /// Each diagnostic with the index of its file, for sorting.
    diags: Vec<(usize, Diagnostic)>,
    files: Vec<PathBuf>,
    sources: Vec<PolicySource>,
    drafts: Vec<Draft>,
    /// Every rule ID seen, even on rules with other problems, with where.
    rule_ids: HashMap<String, (PathBuf, Pos)>,
    waivers: Vec<WaiverDraft>,
    vars: serde_json::Map<String, serde_json::Value>,
    var_pos: HashMap<String, (PathBuf, Pos)>,
}

impl Loader {
    fn new() -> Self {
        Loader {
            env: CelEnv::new(),
            diags: Vec::new(),
            files: Vec::new(),
            sources: Vec::new(),
            drafts: Vec::new(),
            rule_ids: HashMap::new(),
            waivers: Vec::new(),
            vars: serde_json::Map::new(),
            var_pos: HashMap::new(),
        }
    }

    fn file_index(&mut self, file: &Path) -> usize {
        match self.files.iter().position(|f| f == file) {
            Some(i) => i,
            None => {
                self.files.push(file.to_path_buf());
                self.files.len() - 1
            }
        }
    }

    fn diag_at(&mut self, file: &Path, pos: Option<Pos>, rule: Option<&str>, message: String) {
        let index = self.file_index(file);
        self.diags.push((
            index,
            Diagnostic {
                file: file.to_path_buf(),
                line: pos.map(|p| p.line),
                column: pos.map(|p| p.column),
                rule: rule.map(str::to_string),
                message,
            },
        ));
    }

    fn diag(&mut self, file: &Path, pos: Pos, rule: Option<&str>, message: String) {
        self.diag_at(file, Some(pos), rule, message);
    }

    fn add_file(&mut self, file: PathBuf, bytes: &[u8]) {
        self.file_index(&file);
        let sha = Sha256::digest(bytes);
        self.sources.push(PolicySource {
            path: file.display().to_string(),
            sha256: sha.iter().map(|b| format!("{b:02x}")).collect(),
        });
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let pos = raw::LineIndex::new(&String::from_utf8_lossy(bytes)).pos(e.valid_up_to());
                self.diag(&file, pos, None, "not UTF-8 text".to_string());
                return;
            }
        };
        // Past a syntax error, the recovered document is a guess: checking it against
        // the schema would mostly report the syntax error again in other words.
        let table = match raw::parse(text) {
            Ok(t) => t,
            Err(errors) => {
                for e in errors {
                    self.diag_at(
                        &file,
                        e.pos,
                        None,
                        format!("TOML syntax error: {}", e.message),
                    );
                }
                return;
            }
        };
        self.add_table(&file, &table);
    }

    fn add_table(&mut self, file: &Path, table: &RawTable) {
        for entry in &table.entries {
            match entry.key.as_str() {
                "vars" => match &entry.value {
                    RawValue::Table(t) => self.add_vars(file, t),
                    other => self.diag(
                        file,
                        entry.value_pos,
                        None,
                        format!(
                            "`vars` must be a table ([vars]), found {}",
                            other.type_name()
                        ),
                    ),
                },
                "rule" | "waiver" => {
                    let key = entry.key.as_str();
                    match &entry.value {
                        RawValue::Array(items) => {
                            for item in items {
                                match &item.value {
                                    RawValue::Table(t) if key == "rule" => {
                                        self.add_rule(file, item.pos, t)
                                    }
                                    RawValue::Table(t) => self.add_waiver(file, item.pos, t),
                                    other => self.diag(
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
                        RawValue::Table(_) => self.diag(
                            file,
                            entry.value_pos,
                            None,
                            format!(
                                "`{key}` must be an array of tables: write [[{key}]], not [{key}]"
                            ),
                        ),
                        other => self.diag(
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
                _ => self.unknown_key(file, entry, None, TOP_KEYS),
            }
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
        self.diag(
            file,
            entry.key_pos,
            rule,
            format!(
                "unknown key `{}` ({hint}expected one of {expected})",
                entry.key
            ),
        );
    }

    fn add_vars(&mut self, file: &Path, table: &RawTable) {
        for entry in &table.entries {
            if let Some((first_file, first_pos)) = self.var_pos.get(&entry.key).cloned() {
                self.diag(
                    file,
                    entry.key_pos,
                    None,
                    format!(
                        "duplicate var `{}` (first defined at {}:{}:{})",
                        entry.key,
                        first_file.display(),
                        first_pos.line,
                        first_pos.column
                    ),
                );
                continue;
            }
            self.var_pos
                .insert(entry.key.clone(), (file.to_path_buf(), entry.key_pos));
            match to_json(&entry.value) {
                Ok(v) => {
                    self.vars.insert(entry.key.clone(), v);
                }
                Err(why) => self.diag(
                    file,
                    entry.value_pos,
                    None,
                    format!("var `{}`: {why}", entry.key),
                ),
            }
        }
    }

    fn add_rule(&mut self, file: &Path, header: Pos, table: &RawTable) {
        // The ID first, so every other complaint can name the rule.
        let id = match table.get("id").map(|e| &e.value) {
            Some(RawValue::String(s)) => Some(s.clone()),
            _ => None,
        };
        let rid = id.as_deref();
        let mut d = Draft {
            id: id.clone(),
            file: file.to_path_buf(),
            line: header.line,
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
                "id" => {
                    if s.is_empty()
                        || !s
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                    {
                        self.diag(
                            file,
                            entry.value_pos,
                            rid,
                            format!(
                                "invalid rule ID `{s}`: use only letters, digits, `.`, `_` and `-`"
                            ),
                        );
                    }
                    if let Some((first_file, first_pos)) = self.rule_ids.get(s).cloned() {
                        self.diag(
                            file,
                            entry.value_pos,
                            rid,
                            format!(
                                "duplicate rule ID `{s}` (first defined at {}:{}:{})",
                                first_file.display(),
                                first_pos.line,
                                first_pos.column
                            ),
                        );
                    } else {
                        self.rule_ids
                            .insert(s.clone(), (file.to_path_buf(), entry.value_pos));
                    }
                }
                "title" => {
                    if s.trim().is_empty() {
                        self.diag(
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
                        self.diag(
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
                "when" | "require" | "message_expr" => {
                    let which = match key {
                        "when" => ExprKey::When,
                        "require" => ExprKey::Require,
                        _ => ExprKey::MessageExpr,
                    };
                    let compiled = self.compile(file, entry, rid, which, s);
                    match which {
                        ExprKey::When => d.when = compiled,
                        ExprKey::Require => d.require = compiled,
                        ExprKey::MessageExpr => d.message_expr = compiled,
                    }
                }
                "message" => d.message = Some(s.clone()),
                "remediation" => d.remediation = Some(s.clone()),
                "description" => d.description = Some(s.clone()),
                _ => {}
            }
        }
        for key in RULE_REQUIRED {
            if table.get(key).is_none() {
                self.diag(file, header, rid, format!("missing required key `{key}`"));
            }
        }
        self.drafts.push(d);
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
                self.diag(
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
        self.diag(
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
                other => self.diag(
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

    fn add_waiver(&mut self, file: &Path, header: Pos, table: &RawTable) {
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
                match &entry.value {
                    RawValue::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
                        (Some(date), None, None) => {
                            w.expires = NaiveDate::from_ymd_opt(
                                i32::from(date.year),
                                u32::from(date.month),
                                u32::from(date.day),
                            );
                            if w.expires.is_none() {
                                self.diag(
                                    file,
                                    entry.value_pos,
                                    rid,
                                    format!("waiver: `expires` is not a valid date: {dt}"),
                                );
                            }
                        }
                        _ => self.diag(
                            file,
                            entry.value_pos,
                            rid,
                            format!("waiver: `expires` must be a date without a time, like 2027-01-31, found {dt}"),
                        ),
                    },
                    RawValue::String(s) => self.diag(
                        file,
                        entry.value_pos,
                        rid,
                        format!("waiver: `expires` must be a TOML date, written without quotes (expires = {s}), found a string"),
                    ),
                    other => self.diag(
                        file,
                        entry.value_pos,
                        rid,
                        format!(
                            "waiver: `expires` must be a TOML date like 2027-01-31, found {}",
                            other.type_name()
                        ),
                    ),
                }
                continue;
            }
            let RawValue::String(s) = &entry.value else {
                self.diag(
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
            if s.trim().is_empty() {
                let why = match key {
                    "reason" => {
                        "waiver: `reason` must not be empty: say why the exception is accepted"
                    }
                    "line" => "waiver: `line` must not be empty: give the virtual-line ID",
                    _ => "waiver: `rule` must not be empty: give the rule ID",
                };
                self.diag(file, entry.value_pos, rid, why.to_string());
            }
            match key {
                "line" => w.line = Some(s.clone()),
                "reason" => w.reason = Some(s.clone()),
                _ => {}
            }
        }
        for key in WAIVER_KEYS {
            if table.get(key).is_none() {
                let extra = if *key == "expires" {
                    " (waivers must expire, e.g. expires = 2027-01-31)"
                } else {
                    ""
                };
                self.diag(
                    file,
                    header,
                    rid,
                    format!("waiver: missing required key `{key}`{extra}"),
                );
            }
        }
        self.waivers.push(w);
    }

    /// Cross-file checks, CEL checks against the samples, then the result.
    fn finish(mut self) -> Result<PolicySet, PolicyErrors> {
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
                self.diag(
                    &file,
                    pos,
                    Some(&rule),
                    format!("waiver names rule `{rule}`, which no policy defines{hint}"),
                );
            }
        }

        let samples = Samples::new();
        let mut problems = Vec::new();
        for d in self.drafts.iter().filter(|d| d.enabled) {
            for (which, e) in [
                (ExprKey::When, &d.when),
                (ExprKey::Require, &d.require),
                (ExprKey::MessageExpr, &d.message_expr),
            ] {
                if let Some(e) = e {
                    // The samples only run an expression the syntax tree finds no fault in.
                    let problem = check::problem(&self.env, e, which, &self.vars)
                        .or_else(|| samples.problem(&self.env, e, which, &self.vars));
                    if let Some(msg) = problem {
                        problems.push((e.file.clone(), e.pos, d.id.clone(), msg));
                    }
                }
            }
        }
        for (file, pos, id, msg) in problems {
            self.diag(&file, pos, id.as_deref(), msg);
        }

        if !self.diags.is_empty() {
            let mut diags = self.diags;
            diags.sort_by_key(|(f, d)| (*f, d.line, d.column));
            return Err(PolicyErrors {
                diagnostics: diags.into_iter().map(|(_, d)| d).collect(),
            });
        }

        let mut rules = Vec::with_capacity(self.drafts.len());
        for d in self.drafts {
            // Without diagnostics every required part is present; the `let-else`
            // keeps that reasoning local instead of unwrapping.
            let (Some(id), Some(title), Some(severity), Some(require)) =
                (d.id, d.title, d.severity, d.require)
            else {
                continue;
            };
            rules.push(Rule {
                id,
                title,
                severity,
                description: d.description,
                remediation: d.remediation,
                references: d.references,
                enabled: d.enabled,
                file: d.file,
                line: d.line,
                when: d.when,
                require,
                message: d.message,
                message_expr: d.message_expr,
            });
        }
        let mut waivers = Vec::with_capacity(self.waivers.len());
        for w in self.waivers {
            let (Some((rule, _)), Some(line), Some(reason), Some(expires)) =
                (w.rule, w.line, w.reason, w.expires)
            else {
                continue;
            };
            waivers.push(Waiver {
                rule,
                line,
                reason,
                expires,
                file: w.file,
                line_no: w.line_no,
            });
        }
        let mut waivers_by_line: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, w) in waivers.iter().enumerate() {
            waivers_by_line.entry(w.line.clone()).or_default().push(i);
        }
        Ok(PolicySet {
            rules,
            waivers,
            vars: self.vars,
            sources: self.sources,
            env: self.env,
            waivers_by_line,
        })
    }
}

/// A TOML value as JSON, for `[vars]`.
fn to_json(v: &RawValue) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        RawValue::String(s) => J::String(s.clone()),
        RawValue::Integer(i) => J::from(*i),
        RawValue::BigInteger(s) => return Err(format!("integer {s} is too large")),
        RawValue::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => J::Number(n),
            None => return Err(format!("{f} cannot be used (not a finite number)")),
        },
        RawValue::Boolean(b) => J::Bool(*b),
        // CEL has no date type bound here: a date is compared as its ISO text.
        RawValue::Datetime(d) => J::String(d.to_string()),
        RawValue::Array(items) => J::Array(
            items
                .iter()
                .map(|i| to_json(&i.value))
                .collect::<Result<_, _>>()?,
        ),
        RawValue::Table(t) => J::Object(
            t.entries
                .iter()
                .map(|e| to_json(&e.value).map(|v| (e.key.clone(), v)))
                .collect::<Result<_, _>>()?,
        ),
    })
}
