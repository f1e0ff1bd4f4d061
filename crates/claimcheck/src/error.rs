//! The one error type of the crate.

use std::fmt;

/// URLs placed in errors are shown through the one redaction of
/// `natsbridge-common`.
pub(crate) use natsbridge_common::redact_url;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, in terms a caller can act on.
///
/// Each variant says whether a downloader retries it (see
/// [`ErrorKind::is_retryable`]); every store's downloader follows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server answered 404 for a reason that will not change on retry.
    /// Not retried.
    NotFound,
    /// The store says the file existed but is gone for good: a Plik one-shot
    /// file already downloaded (`... is not available : removed`), an expired
    /// upload, or HTTP 410. Not retried.
    Gone,
    /// The file is not there yet: Plik's 404 `... is not available : missing`
    /// or `: uploading`. Retried; seen only once the retries are used up.
    NotReady,
    /// A try took longer than its timeout (waiting for the response, or
    /// between two pieces of the body). Retried.
    TimedOut,
    /// The connection could not be made, or broke before the response was
    /// complete (a body cut short by the peer lands here). Retried.
    Connection,
    /// The server answered with an unexpected status. Retried when the status
    /// is 5xx, 429 or 408; any other status is not retried.
    Http {
        /// The HTTP status code.
        status: u16,
    },
    /// The server answered with a redirect. Redirects are never followed
    /// blindly; a Plik error redirect (a `Location` holding `errcode=`) is
    /// reported as the error it carries instead. Not retried.
    Redirect {
        /// The HTTP status code (301, 302, ...).
        status: u16,
    },
    /// The downloaded bytes do not have the SHA-256 the sender declared.
    /// Not retried.
    Integrity,
    /// The downloaded length differs from the declared size, whether the
    /// server's `Content-Length` said so or the body ran short or long.
    /// `actual` is a lower bound when the body was longer (reading stops as
    /// soon as it passes `expected`). Not retried.
    SizeMismatch {
        /// The size the payload record declared.
        expected: u64,
        /// The size the server sent (or announced).
        actual: u64,
    },
    /// The payload is larger than the configured maximum download size, or
    /// larger than the file server accepts. Checked before any request when
    /// the size is known. Not retried.
    TooLarge {
        /// The limit that was exceeded, in bytes.
        limit: u64,
    },
    /// The URL was refused before any request was made: unparseable, a scheme
    /// other than `http`/`https`, or an origin outside the allowlist.
    /// Not retried.
    UrlRefused,
    /// The server's answer is not what its protocol promises (a Plik reply
    /// without an upload id, an HTML page where JSON was due). Not retried.
    InvalidResponse,
    /// The caller's input is unusable: a malformed SHA-256, a URL template
    /// that yields no URL, a reader shorter than its declared length, a
    /// builder missing a required setting. Not retried.
    InvalidInput,
    /// A local file could not be read, written or renamed. Not retried.
    Io,
    /// An error from a user-supplied handler that fits no other kind.
    /// Not retried.
    Other,
}

impl ErrorKind {
    /// Whether a transfer (download, or upload of bytes or a file) is tried
    /// again after an error of this kind.
    ///
    /// True for [`Connection`](ErrorKind::Connection),
    /// [`TimedOut`](ErrorKind::TimedOut), [`NotReady`](ErrorKind::NotReady)
    /// and [`Http`](ErrorKind::Http) with status 5xx, 429 or 408.
    pub fn is_retryable(&self) -> bool {
        match self {
            ErrorKind::Connection | ErrorKind::TimedOut | ErrorKind::NotReady => true,
            ErrorKind::Http { status } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            ErrorKind::NotFound => "not found".into(),
            ErrorKind::Gone => "gone (consumed or expired)".into(),
            ErrorKind::NotReady => "not available yet".into(),
            ErrorKind::TimedOut => "timed out".into(),
            ErrorKind::Connection => "connection failed".into(),
            ErrorKind::Http { status } => format!("HTTP status {status}"),
            ErrorKind::Redirect { status } => format!("redirect (HTTP {status}) not followed"),
            ErrorKind::Integrity => "SHA-256 mismatch".into(),
            ErrorKind::SizeMismatch { expected, actual } => {
                format!("size mismatch: expected {expected} bytes, got {actual}")
            }
            ErrorKind::TooLarge { limit } => format!("larger than the limit of {limit} bytes"),
            ErrorKind::UrlRefused => "URL refused".into(),
            ErrorKind::InvalidResponse => "invalid response".into(),
            ErrorKind::InvalidInput => "invalid input".into(),
            ErrorKind::Io => "I/O error".into(),
            ErrorKind::Other => "handler error".into(),
        }
    }
}

/// The error of every fallible operation in this crate.
///
/// [`Error::kind`] says what happened; `Display` adds the detail a human needs
/// (the URL without its query string, the server's own error text, the number
/// of tries) but not the cause, which is [`std::error::Error::source`]. Neither `Display` nor `Debug` ever shows an upload token, a
/// header value or a URL's query string (where presigned URLs keep their
/// signature).
pub struct Error {
    kind: ErrorKind,
    detail: Option<Box<str>>,
    source: Option<BoxError>,
}

impl Error {
    /// An error of the given kind with a human-readable detail.
    ///
    /// For user-supplied handlers. The detail is shown as given: do not put
    /// secrets in it.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Error { kind, detail: Some(detail.into().into_boxed_str()), source: None }
    }

    /// An error of the given kind caused by another error.
    ///
    /// For user-supplied handlers. The source is returned by
    /// [`std::error::Error::source`] and shown by `Debug`: make sure it
    /// carries no secrets.
    pub fn with_source(
        kind: ErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error { kind, detail: None, source: Some(source.into()) }
    }

    /// Sets the error's cause, returned by [`std::error::Error::source`]
    /// (`Display` does not repeat it, so a chain printer such as anyhow's
    /// `{:#}` shows it once).
    #[must_use]
    pub fn caused_by(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// An [`ErrorKind::Io`] error: `what` was being done to a local file.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, what).caused_by(source)
    }

    /// Adds context in front of the existing detail.
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        let detail = match self.detail.take() {
            Some(d) => format!("{context}: {d}"),
            None => context.to_string(),
        };
        self.detail = Some(detail.into_boxed_str());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether the downloader would try again after this error.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind.describe())?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        // The cause is `source()`, not part of `Display`: a chain printer
        // shows each message once.
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(detail) = &self.detail {
            d.field("detail", detail);
        }
        if let Some(source) = &self.source {
            // The Display form: a reqwest error's Debug could show headers.
            d.field("source", &format_args!("{source}"));
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classification() {
        assert!(ErrorKind::Http { status: 503 }.is_retryable());
        assert!(ErrorKind::Http { status: 429 }.is_retryable());
        assert!(ErrorKind::Http { status: 408 }.is_retryable());
        assert!(!ErrorKind::Http { status: 403 }.is_retryable());
        assert!(!ErrorKind::NotFound.is_retryable());
        assert!(ErrorKind::NotReady.is_retryable());
        assert!(!ErrorKind::Integrity.is_retryable());
    }

    #[test]
    fn display_shows_kind_and_detail_and_source_holds_the_cause() {
        let e = Error::new(ErrorKind::Io, "writing /tmp/x")
            .caused_by(std::io::Error::other("disk full"));
        assert_eq!(e.to_string(), "I/O error: writing /tmp/x");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk full"));
        let d = format!("{e:?}");
        assert!(d.contains("Io") && d.contains("disk full"), "{d}");
    }
}
