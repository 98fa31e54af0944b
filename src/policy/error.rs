//! Problems found while loading policies, reported all at once.

use std::fmt;
use std::path::{Path, PathBuf};

use super::raw::Pos;

/// One problem (or warning) in a policy file, with as much position as is known.
///
/// Displays as `FILE:LINE:COLUMN: rule ID: MESSAGE`, leaving out what is unknown, so
/// editors and terminals can jump to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file (or folder, when it has no files) the problem is in.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// The rule concerned: the rule's own ID, or for a waiver the rule it names.
    pub rule: Option<String>,
    /// What is wrong, and where possible how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(rule) = &self.rule {
            write!(f, "rule {rule}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a set of policy files. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyErrors {
    /// The problems, by file (in load order), then by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.diagnostics.len();
        write!(
            f,
            "{n} problem{} in policies",
            if n == 1 { "" } else { "s" }
        )?;
        for d in &self.diagnostics {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

/// The problems found so far by every step of loading.
///
/// Each is kept with the load order of its file, so that the result lists problems by
/// file in the order the files were read, then by position, whichever step found them.
#[derive(Debug, Default)]
pub(super) struct Problems {
    files: Vec<PathBuf>,
    found: Vec<(usize, Diagnostic)>,
    /// Warnings, kept the same way: they do not stop loading.
    warned: Vec<(usize, Diagnostic)>,
}

impl Problems {
    /// Where `file` comes in the load order, registering it if it is new.
    pub(crate) fn file_index(&mut self, file: &Path) -> usize {
        match self.files.iter().position(|f| f == file) {
            Some(i) => i,
            None => {
                self.files.push(file.to_path_buf());
                self.files.len() - 1
            }
        }
    }

    fn diagnostic(
        &mut self,
        file: &Path,
        pos: Option<Pos>,
        rule: Option<&str>,
        message: String,
    ) -> (usize, Diagnostic) {
        let index = self.file_index(file);
        let d = Diagnostic {
            file: file.to_path_buf(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            rule: rule.map(str::to_string),
            message,
        };
        (index, d)
    }

    /// Records a problem whose position may be unknown.
    pub(crate) fn add_at(
        &mut self,
        file: &Path,
        pos: Option<Pos>,
        rule: Option<&str>,
        message: String,
    ) {
        let found = self.diagnostic(file, pos, rule, message);
        self.found.push(found);
    }

    /// Records a warning at a known position: it is reported, and loading goes on.
    pub(crate) fn warn(&mut self, file: &Path, pos: Pos, rule: Option<&str>, message: String) {
        let warned = self.diagnostic(file, Some(pos), rule, message);
        self.warned.push(warned);
    }

    /// The warnings recorded so far, by file then position, and no more of them here.
    pub(crate) fn take_warnings(&mut self) -> Vec<Diagnostic> {
        by_place(std::mem::take(&mut self.warned))
    }

    /// Records a problem at a known position.
    pub(crate) fn add(&mut self, file: &Path, pos: Pos, rule: Option<&str>, message: String) {
        self.add_at(file, Some(pos), rule, message);
    }

    /// Every problem, by file then position, or `Ok` when there is none.
    pub(crate) fn into_result(self) -> Result<(), PolicyErrors> {
        if self.found.is_empty() {
            return Ok(());
        }
        Err(PolicyErrors {
            diagnostics: by_place(self.found),
        })
    }
}

/// By file in load order, then by position. Stable: diagnostics at the same place keep
/// the order they were found in.
fn by_place(mut found: Vec<(usize, Diagnostic)>) -> Vec<Diagnostic> {
    found.sort_by_key(|(f, d)| (*f, d.line, d.column));
    found.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_leaves_out_what_is_unknown() {
        let full = Diagnostic {
            file: "policies/base.toml".into(),
            line: Some(12),
            column: Some(9),
            rule: Some("PTT-X".into()),
            message: "unknown key `sevrity`".into(),
        };
        assert_eq!(
            full.to_string(),
            "policies/base.toml:12:9: rule PTT-X: unknown key `sevrity`"
        );
        let bare = Diagnostic {
            line: None,
            column: Some(3),
            rule: None,
            ..full.clone()
        };
        assert_eq!(
            bare.to_string(),
            "policies/base.toml: unknown key `sevrity`"
        );
        let errors = PolicyErrors {
            diagnostics: vec![full, bare],
        };
        assert!(errors.to_string().starts_with("2 problems in policies\n  "));
    }

    #[test]
    fn problems_come_by_file_in_load_order_then_by_position() {
        let (a, b) = (PathBuf::from("a.toml"), PathBuf::from("b.toml"));
        let mut problems = Problems::default();
        problems.file_index(&b);
        problems.add(&a, Pos { line: 3, column: 1 }, None, "a3".into());
        problems.add(&b, Pos { line: 9, column: 1 }, None, "b9 first".into());
        problems.add(&b, Pos { line: 2, column: 5 }, None, "b2".into());
        problems.add(&b, Pos { line: 9, column: 1 }, None, "b9 second".into());
        problems.add_at(&a, None, None, "a".into());
        let messages: Vec<String> = problems
            .into_result()
            .expect_err("problems")
            .diagnostics
            .into_iter()
            .map(|d| d.message)
            .collect();
        assert_eq!(messages, ["b2", "b9 first", "b9 second", "a", "a3"]);
        assert!(Problems::default().into_result().is_ok());
    }
}
