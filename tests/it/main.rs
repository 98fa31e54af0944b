//! The integration tests, one binary (one link, one run): each module drives one
//! boundary of the tool; `common` holds what several of them share (the contract's
//! CSV headers, CSV and report readers, the simulator harness).

mod common;

mod cli;
mod discovery;
mod discovery_sim;
mod hardening_eval;
mod hardening_io;
mod policy_cases;
mod policy_load;
mod reliability;
mod reports;
mod scripted_api;
mod simulator;
mod webex_client;
