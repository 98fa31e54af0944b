//! ptt-audit: audits the Push-to-Talk settings of Webex Calling virtual lines against
//! declarative policies and writes JSON and CSV reports.
//!
//! The pipeline, one module a stage:
//! [`input`] (IDs) → [`webex`] (fetch, paced and retried) → [`eval`] (pure policy
//! evaluation) → [`report`] (streaming report formats), driven by [`audit`].
//! [`policy`] loads the rules, [`simulator`] stands in for the Webex API.

pub mod app;
pub mod audit;
pub mod compare;
pub mod config;
pub mod demo;
pub mod eval;
pub mod input;
pub mod model;
pub mod policy;
pub mod report;
pub mod simulator;
pub mod webex;
