//! The Webex API client: one HTTP client, one pacer, retries in one place.
//!
//! `client` sends and waits (no redirects, bodies capped at `--max-body`, the token
//! redacted from whatever an answer says); `decide` holds the retry and stop rules as
//! pure functions; `answer` reads bodies (settings, the API's errors); `pace` decides
//! when a request may start; `stop` ends the run early.

mod answer;
mod client;
mod decide;
mod pace;
mod stop;
mod token;

pub use client::{
    parse_base_url, ClientConfig, ClientError, Fetched, WebexClient, DEFAULT_BASE_URL,
};
pub use pace::Pace;
pub(crate) use pace::Pacer;
pub use stop::{Stop, StopReason};
pub use token::{loose_token_file, LooseTokenFile, Token, TokenError};
