//! The integration tests, one binary (one link, one run): each module drives one
//! boundary of the tool; `common` holds what several of them share (the contract's
//! CSV headers, CSV and report readers, the simulator harness).

mod common;
mod html_dom;

mod authoring_names;
mod authoring_waivers;
mod cli;
mod discovery;
mod discovery_sim;
mod evaluate_drift;
mod first_hour;
mod hardening_api;
mod hardening_body;
mod hardening_eval;
mod hardening_io;
mod pace_auto;
mod people_reports;
mod policy_cases;
mod policy_load;
mod progress;
mod reliability;
mod reports;
mod scripted_api;
mod simulator;
mod stop_forbidden;
mod unattended;
mod webex_client;
