//! The Webex API client: one HTTP client, one pacer, retries in one place.
//!
//! `client` sends and waits; `decide` holds the retry rules as a pure function of
//! one attempt; `answer` reads bodies (settings, the API's errors); `list` pages
//! through the list of lines, `link` checks its `next` links; `pace` decides when a
//! request may start; `stop` ends the run early.

mod answer;
mod client;
mod decide;
mod link;
mod list;
mod pace;
mod stop;
mod token;

pub use client::{
    parse_base_url, ClientConfig, ClientError, Fetched, WebexClient, DEFAULT_BASE_URL,
};
pub(crate) use list::{Listed, Pages};
pub use stop::{Stop, StopReason};
pub use token::{Token, TokenError};
