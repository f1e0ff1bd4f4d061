//! The few helpers every natsbridge layer shares, each written once.
//!
//! - [`Backoff`]: capped exponential backoff with jitter, the one formula
//!   of NATS reconnects (`natsbridge-transport-nats`'s `ReconnectPolicy`)
//!   and of claim-check transfers (`natsbridge-claimcheck`'s `RetryConfig`).
//! - [`redact_url`]: a URL as errors and logs may show it, without user
//!   info (passwords, tokens) or query string (presigned signatures). The
//!   NATS server URLs of the transport, the file server and link URLs of
//!   the stores, and everything the command line prints go through it.
//!
//! The file-name sanitizer is not here: it is a claim-check policy and
//! lives with the role (`natsbridge_claimcheck::safe_file_name`).
//!
//! This crate holds no layer's logic: it knows nothing of NATS, HTTP, the
//! envelope or the claim-check role, does no I/O, and depends on no crate at
//! all. That is what lets the claim-check role, which must depend on no
//! other crate of ours, share these with the transport. With default
//! features off it needs only `core` and `alloc`.
//!
//! ```
//! use std::time::Duration;
//! use natsbridge_common::{Backoff, redact_url};
//!
//! let backoff = Backoff {
//!     base_delay: Duration::from_millis(100),
//!     max_delay: Duration::from_secs(5),
//!     jitter: false,
//! };
//! assert_eq!(backoff.delay(3, 0), Duration::from_millis(800));
//!
//! let shown = redact_url("https://user:pw@files.local/f/a.bin?X-Amz-Signature=abc");
//! assert_eq!(shown, "https://files.local/f/a.bin?<redacted>");
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

mod backoff;
mod redact;

pub use crate::{backoff::Backoff, redact::redact_url};
