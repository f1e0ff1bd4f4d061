//! The facade's error: which layer failed, and that layer's own kind.

use std::fmt;

use crate::{claimcheck, envelope, transport};

/// Which layer failed, with that layer's kind of failure.
///
/// Match on the inner kind for the detail a caller acts on, e.g.
/// `ErrorKind::Envelope(envelope::ErrorKind::PayloadTooLarge { .. })` or
/// `ErrorKind::ClaimCheck(claimcheck::ErrorKind::Integrity)`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Building or reading the envelope failed (malformed input, a payload
    /// that does not fit, bad base64, a size mismatch). Not retried.
    Envelope(envelope::ErrorKind),
    /// Uploading or downloading a claim-check payload failed. The download
    /// handler has already retried what can succeed on retry.
    ClaimCheck(claimcheck::ErrorKind),
    /// NATS failed (connect, auth, publish, request timed out, no
    /// responders).
    Nats(transport::ErrorKind),
    /// The bridge's configuration contradicts itself (decided by
    /// [`BridgeBuilder::connect`](crate::BridgeBuilder::connect) before it
    /// connects: an object store and a file server both for sending). Not
    /// retried.
    Config,
    /// A local file named as a payload ([`FilePayload`](crate::FilePayload))
    /// could not be read; the message names the payload and the path and
    /// the cause is the I/O error. Not retried.
    Io,
}

impl ErrorKind {
    /// Whether an error of this kind may pass on retry (see
    /// [`Error::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            ErrorKind::ClaimCheck(kind) => kind.is_retryable(),
            ErrorKind::Nats(kind) => kind.is_retryable(),
            ErrorKind::Envelope(_) | ErrorKind::Config | ErrorKind::Io => false,
        }
    }
}

/// The error of every fallible call of the facade.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    context: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error the facade itself decides, with its message and cause.
    pub(crate) fn new(
        kind: ErrorKind,
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error { kind, context: message.into(), source }
    }

    /// Which layer failed and how.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether the same call may succeed if tried again: the layer's own
    /// answer ([`claimcheck::ErrorKind::is_retryable`],
    /// [`transport::ErrorKind::is_retryable`]); an envelope, configuration
    /// or local file error never is. A claim-check error has already been
    /// retried as far as the store's [`RetryConfig`](crate::claimcheck::RetryConfig)
    /// allows.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// Says what was being done when the error happened (`downloading
    /// payload "x"`): `Display` shows it, and the layer's error becomes the
    /// [`source`](std::error::Error::source), so a chain printer shows
    /// each once. A second call replaces the first.
    #[must_use]
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.context = context.into();
        self
    }
}

// With a context, Display is the context and the layer's error is the
// source; without one, the layer's error is shown directly. Either way a
// chain printer shows each message once.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.source, self.context.is_empty()) {
            (_, false) => f.write_str(&self.context),
            (Some(source), true) => write!(f, "{source}"),
            (None, true) => write!(f, "{:?}", self.kind),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let inner = self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static));
        if self.context.is_empty() { inner.and_then(|e| e.source()) } else { inner }
    }
}

impl From<envelope::Error> for Error {
    fn from(e: envelope::Error) -> Self {
        Error {
            kind: ErrorKind::Envelope(e.kind().clone()),
            context: String::new(),
            source: Some(Box::new(e)),
        }
    }
}

impl From<claimcheck::Error> for Error {
    fn from(e: claimcheck::Error) -> Self {
        Error {
            kind: ErrorKind::ClaimCheck(e.kind().clone()),
            context: String::new(),
            source: Some(Box::new(e)),
        }
    }
}

impl From<transport::Error> for Error {
    fn from(e: transport::Error) -> Self {
        Error {
            kind: ErrorKind::Nats(e.kind().clone()),
            context: String::new(),
            source: Some(Box::new(e)),
        }
    }
}

/// Shorthand for results of the facade.
pub type Result<T, E = Error> = std::result::Result<T, E>;
