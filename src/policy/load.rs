//! Loading policies: finding and reading the files, then the steps in order, every
//! problem of every step collected before giving up.
//!
//! 1. Each file is parsed into position-carrying TOML values ([`super::raw`]).
//! 2. The values are checked against the policy schema, compiling every expression
//!    ([`super::schema`]).
//! 3. Once every file is read: waivers must name a defined rule, and the expressions
//!    of enabled rules are checked statically ([`super::check`]), then by running them
//!    on sample records ([`super::sample`]); a rule without problems is then run on
//!    adversarial samples to see whether it can fail at all ([`super::vacuous`]).
//!
//! Any step may also record a warning ([`PolicySet::warnings`]): something that loads
//! but deserves a look.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::check::Facts;
use super::error::{Diagnostic, PolicyErrors};
use super::expr::{CelEnv, ExprKey};
use super::raw;
use super::sample::Samples;
use super::schema::{Checked, Schema};
use super::{check, vacuous, PolicySet, PolicySource};

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
            // One unreadable file should not hide the problems of the others.
            Err(e) => loader
                .schema
                .problems
                .add_at(&file, None, None, format!("cannot read: {e}")),
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

struct Loader {
    env: CelEnv,
    sources: Vec<PolicySource>,
    schema: Schema,
}

impl Loader {
    fn new() -> Self {
        let env = CelEnv::new();
        Loader {
            schema: Schema::new(env.clone()),
            env,
            sources: Vec::new(),
        }
    }

    fn add_file(&mut self, file: PathBuf, bytes: &[u8]) {
        // Problems are listed by file in load order, even a file whose only problem
        // is found after later files are read.
        self.schema.problems.file_index(&file);
        let sha = Sha256::digest(bytes);
        self.sources.push(PolicySource {
            path: file.display().to_string(),
            sha256: sha.iter().map(|b| format!("{b:02x}")).collect(),
        });
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let pos = raw::LineIndex::new(&String::from_utf8_lossy(bytes)).pos(e.valid_up_to());
                self.schema
                    .problems
                    .add(&file, pos, None, "not UTF-8 text".to_string());
                return;
            }
        };
        // Past a syntax error, the recovered document is a guess: checking it against
        // the schema would mostly report the syntax error again in other words.
        let table = match raw::parse(text) {
            Ok(t) => t,
            Err(errors) => {
                for e in errors {
                    self.schema.problems.add_at(
                        &file,
                        e.pos,
                        None,
                        format!("TOML syntax error: {}", e.message),
                    );
                }
                return;
            }
        };
        self.schema.add_table(&file, &table);
    }

    /// Cross-file checks, CEL checks of enabled rules, then the result.
    fn finish(self) -> Result<PolicySet, PolicyErrors> {
        let Loader {
            env,
            sources,
            mut schema,
        } = self;
        schema.check_waiver_rules();

        let samples = Samples::new();
        let mut found = Vec::new();
        let mut warned = Vec::new();
        let mut linear = true;
        for rule in schema.enabled_rules() {
            let mut facts = Facts::default();
            let mut sound = true;
            for (which, e) in rule.each() {
                let verdict = check::check(&env, e, which, schema.vars());
                let at = |msg| (e.file.clone(), e.pos, rule.id.map(str::to_string), msg);
                let mut problems = verdict.problems;
                // The samples only run an expression the syntax tree finds no fault in.
                if problems.is_empty() {
                    problems.extend(samples.problem(&env, e, which, schema.vars()));
                }
                sound &= problems.is_empty();
                found.extend(problems.into_iter().map(at));
                warned.extend(verdict.warnings.into_iter().map(at));
                linear &= !verdict.facts.superlinear;
                if which != ExprKey::MessageExpr {
                    facts.merge(verdict.facts);
                }
            }
            if let (true, Some(require)) = (sound, rule.require) {
                if let Some(why) =
                    vacuous::cannot_fail(&env, rule.when, require, &facts, schema.vars())
                {
                    let e = if why.starts_with("`when`") {
                        rule.when.unwrap_or(require)
                    } else {
                        require
                    };
                    warned.push((e.file.clone(), e.pos, rule.id.map(str::to_string), why));
                }
            }
        }
        for (file, pos, id, msg) in found {
            schema.problems.add(&file, pos, id.as_deref(), msg);
        }
        for (file, pos, id, msg) in warned {
            schema.problems.warn(&file, pos, id.as_deref(), msg);
        }
        let warnings = schema.problems.take_warnings();

        let Checked {
            rules,
            waivers,
            vars,
            var_origins,
        } = schema.finish()?;
        let mut waivers_by_line: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, w) in waivers.iter().enumerate() {
            waivers_by_line.entry(w.line.clone()).or_default().push(i);
        }
        Ok(PolicySet {
            rules,
            waivers,
            vars,
            var_origins,
            sources,
            warnings,
            env,
            waivers_by_line,
            linear,
        })
    }
}
