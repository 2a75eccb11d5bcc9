//! The Voyado Engage HTTP client (docs/contract.md §5, docs/engage-api.md).
//!
//! One [`EngageClient`] per run, built from an [`EngageConfig`]. It sends the headers Engage
//! requires on every request (`apikey`, `User-Agent: engage-sync/<version>`,
//! `Content-Type: application/json`, `Accept`), spaces requests to the configured rate with a
//! bounded number in flight, retries what is safe to retry with backoff and jitter, never
//! repeats a write that may have reached Engage, and stops at the run's deadline. Failures are
//! [`EngageError`]s, each with its exit code (docs/contract.md §8).
//!
//! Personal data and the key stay out of logs: each request is logged at debug level with its
//! method, masked path, status, time and attempt number, never with a body.
//!
//! Where Engage's real behaviour is unconfirmed (docs/engage-api.md \[U\]), the parsers in
//! [`models`] accept each plausible shape; each such choice is documented where it is made.

mod client;
mod config;
mod error;
mod fan_out;
mod limiter;
pub mod models;
pub(crate) mod retry;
mod transport;

pub use client::{format_feed_time, EngageClient, ReceiptFeed, BULK_MAX, MIN_CHANGES_WINDOW};
pub use config::{check_api_key, ApiVersion, EngageConfig};
pub use error::{error_digest, row_digest, EngageError, RequestName, BODY_LIMIT};
pub use limiter::SLACK as RATE_LIMIT_SLACK;
pub use models::{
    ApiContact, BatchState, BulkOptions, BulkRowResult, BulkStatus, ChangeType, ChangesPage,
    CreateOptions, CreateOutcome, KeyType, ReceiptOutcome,
};
