//! The contract's exit codes (`CONTRACT.md` §5), and the one error type that means
//! "bad invocation, configuration, policy or credentials": exit 2, nothing audited.

use std::path::PathBuf;

use thiserror::Error;

/// How a command ended, as the process reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every line read, no failure at or above `--fail-on`.
    Ok,
    /// Some failure at or above `--fail-on`.
    Failed,
    /// Bad invocation, configuration, policy or credentials (or a 401 that stopped
    /// the run).
    Usage,
    /// Some line is `error`, `invalid` or `not_audited`.
    Incomplete,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Incomplete => 3,
        }
    }
}

/// A problem found before any work started; always exit 2. Each variant names what
/// is wrong and where.
#[derive(Debug, Error)]
pub enum UsageError {
    /// Policy files that do not load; every problem is listed.
    #[error(transparent)]
    Policies(#[from] crate::policy::PolicyErrors),
    /// Policies that load but would pass every line.
    #[error("{} holds no enabled rule: an audit against it would pass every line", path.display())]
    NoEnabledRule {
        /// The policy file or folder.
        path: PathBuf,
    },
    /// An ID file that cannot be read or has no ID column.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// No usable token.
    #[error(transparent)]
    Token(#[from] crate::webex::TokenError),
    /// A base URL that is not allowed, or an HTTP client that cannot be built.
    #[error(transparent)]
    Client(#[from] crate::webex::ClientError),
    /// A `--previous` report that cannot be read.
    #[error(transparent)]
    Previous(#[from] crate::compare::CompareError),
    /// An `evaluate --from` report that cannot be read.
    #[error(transparent)]
    Saved(#[from] crate::saved::SavedError),
    /// A `--credentials` file that cannot be used.
    #[error(transparent)]
    Credentials(#[from] crate::webex::CredentialsError),
    /// Credentials that would not give a working token before the first request.
    #[error(transparent)]
    Auth(#[from] crate::webex::AuthFailure),
    /// Another run holds the report folder.
    #[error(transparent)]
    Lock(#[from] crate::report::LockError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_contracts() {
        let codes: Vec<u8> = [Exit::Ok, Exit::Failed, Exit::Usage, Exit::Incomplete]
            .iter()
            .map(|e| e.code())
            .collect();
        assert_eq!(codes, [0, 1, 2, 3]);
    }
}
