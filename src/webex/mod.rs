//! The Webex API client: one HTTP client, one pacer, retries in one place.

mod client;
pub mod pace;
pub mod retry;
mod stop;
mod token;

pub use client::{
    parse_base_url, ClientConfig, ClientError, Fetched, WebexClient, DEFAULT_BASE_URL,
};
pub use stop::{Stop, StopReason};
pub use token::{Token, TokenError};
