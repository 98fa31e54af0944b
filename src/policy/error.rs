//! Problems found while loading policies, reported all at once.

use std::fmt;
use std::path::PathBuf;

/// One problem in a policy file, with as much position as is known.
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
}
