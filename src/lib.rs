//! ptt-audit: audits the Push-to-Talk settings of Webex Calling virtual lines against
//! declarative policies and writes JSON and CSV reports.
//!
//! The pipeline, one module a stage:
//! [`input`] (IDs) or [`discovery`] (`--all`: the org's lines, listed) → [`webex`] (fetch, paced and retried) → [`eval`] (pure policy
//! evaluation, run on threads of its own, each rule bounded in time) → [`report`]
//! (streaming report formats), driven by [`job`] with checked [`settings`]. [`policy`] loads the rules, [`simulator`] stands in for the Webex API.
//!
//! The library has no command-line code and prints nothing: the binary (`src/main.rs`
//! and `src/cli/`) parses, resolves settings, draws progress, handles signals and
//! maps [`exit::Exit`] to the process exit code. See `ARCHITECTURE.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod compare;
pub mod config;
#[cfg(feature = "simulator")]
pub mod demo;
pub mod discovery;
pub mod eval;
pub mod evaluate;
mod evaluator;
pub mod exit;
pub mod input;
pub mod job;
pub mod model;
pub mod policy;
pub mod report;
pub mod saved;
pub mod settings;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod webex;
