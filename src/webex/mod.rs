//! The Webex API client: one HTTP client, one pacer, retries in one place.
//!
//! `client` sends and waits (no redirects, bodies capped at `--max-body`, the token
//! redacted from whatever an answer says); `decide` holds the retry and stop rules as
//! pure functions; `answer` reads bodies (settings, the API's errors); `list` pages
//! through the list of lines, `link` checks its `next` links; `pace` decides when a
//! request may start; `stop` ends the run early. The token: `token` (a fixed
//! one), `credentials` (the `--credentials` file), `refresh` (the token endpoint),
//! `source` (what every request takes its token from, refreshed once per 401 wave);
//! `probe` is `auth check`'s one cheap request.

mod answer;
mod client;
mod credentials;
mod decide;
mod link;
mod list;
mod pace;
mod probe;
mod refresh;
mod source;
mod stop;
mod token;

pub use client::{
    parse_base_url, ClientConfig, ClientError, Fetched, WebexClient, DEFAULT_BASE_URL,
};
pub use credentials::{Credentials, CredentialsError};
pub(crate) use list::{Listed, Pages};
pub use pace::Pace;
pub(crate) use pace::Pacer;
pub use probe::{Probe, ProbeError};
pub use refresh::RefreshError;
pub use source::{AuthFailure, TokenExpiry, TokenSource, REFRESH_MARGIN, REFRESH_TOKEN_WARNING};
pub use stop::{Stop, StopReason};
pub use token::{loose_token_file, LooseTokenFile, Token, TokenError};
