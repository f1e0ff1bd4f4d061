//! The claim-check role's error, with what HTTP adds to it.

pub(crate) use natsbridge_claimcheck::{Error, ErrorKind, redact_url};

/// Classifies a reqwest error, dropping its URL so a presigned signature
/// cannot leak through `source()`.
pub(crate) fn from_reqwest(err: reqwest::Error, url: &str) -> Error {
    let kind = if err.is_timeout() {
        ErrorKind::TimedOut
    } else if err.is_builder() {
        ErrorKind::InvalidInput
    } else {
        ErrorKind::Connection
    };
    Error::new(kind, redact_url(url)).caused_by(err.without_url())
}
