//! The one error type of the crate.

use std::fmt;

/// What went wrong, in terms a caller acts on. Each variant says whether
/// retrying the same call can help.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server could not be reached (refused, DNS, I/O, timed out while
    /// connecting). Retrying later can help.
    Connect,
    /// The server refused the credentials (token, user/password, nkey,
    /// `.creds`). Retrying with the same credentials cannot help.
    Auth,
    /// The TLS handshake or certificate check failed. Not retried.
    Tls,
    /// A request, or a JetStream call (a publish's ack, an API request, a
    /// fetch), got no answer in time. Retrying can help (a JetStream
    /// publish with a msg id is retried with the same id, so it is stored
    /// once).
    TimedOut,
    /// Nobody subscribes to the request's subject (for a JetStream call:
    /// JetStream is not enabled, or the stream is electing a leader).
    /// Retrying helps once a responder is up.
    NoResponders,
    /// The message is larger than the server's `max_payload`; it was not
    /// sent and the connection is still up. Not retried.
    PayloadTooLarge {
        /// Bytes the message has (body and headers).
        size: usize,
        /// The server's `max_payload`.
        limit: usize,
    },
    /// The subject is not a valid NATS subject. Not retried.
    InvalidSubject,
    /// The connection is closed or the client could not hand the message
    /// to it. Retrying after a reconnect can help.
    Closed,
    /// JetStream refused the call for a reason no other kind names (a
    /// wrong expected last sequence, a consumer of the wrong type, a pull
    /// over the consumer's limits, an API error); the message and
    /// `source()` say which. A timeout is [`TimedOut`](ErrorKind::TimedOut),
    /// a missing stream, consumer or bucket [`NotFound`](ErrorKind::NotFound).
    /// Not retried.
    JetStream,
    /// The options do not make a valid configuration (unreadable `.creds`
    /// file, bad URL, bad object store bucket name). Not retried.
    InvalidConfig,
    /// What the call names does not exist: no stream captures the
    /// subject of a JetStream publish, no such stream or consumer, an
    /// object store bucket that is gone, an object that never existed or
    /// was deleted. Not retried.
    NotFound,
    /// Reading the local source of an object store put failed. Not retried.
    Io,
}

impl ErrorKind {
    /// Whether the same call may succeed when tried again: true for
    /// [`Connect`](ErrorKind::Connect), [`TimedOut`](ErrorKind::TimedOut),
    /// [`NoResponders`](ErrorKind::NoResponders) and
    /// [`Closed`](ErrorKind::Closed).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ErrorKind::Connect | ErrorKind::TimedOut | ErrorKind::NoResponders | ErrorKind::Closed
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Connect => f.write_str("cannot connect to the NATS server"),
            ErrorKind::Auth => f.write_str("the NATS server refused the credentials"),
            ErrorKind::Tls => f.write_str("TLS with the NATS server failed"),
            ErrorKind::TimedOut => f.write_str("timed out waiting for the server's answer"),
            ErrorKind::NoResponders => f.write_str("no responders on the request subject"),
            ErrorKind::PayloadTooLarge { size, limit } => write!(
                f,
                "message of {size} bytes exceeds the server's max_payload {limit} by {} bytes",
                size.saturating_sub(*limit)
            ),
            ErrorKind::InvalidSubject => f.write_str("invalid subject"),
            ErrorKind::Closed => f.write_str("the NATS connection is closed"),
            ErrorKind::JetStream => f.write_str("JetStream call failed"),
            ErrorKind::InvalidConfig => f.write_str("invalid connection options"),
            ErrorKind::NotFound => f.write_str("not found"),
            ErrorKind::Io => f.write_str("reading the object's source failed"),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error of every fallible call of this crate.
///
/// Its `Display` and `Debug` forms never contain tokens, passwords or nkey
/// seeds: async-nats's own errors do not carry them, and this crate adds
/// only subjects, sizes and server addresses.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    detail: String,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Error { kind, detail: detail.into(), source: None }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        detail: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        let source: BoxError = Box::new(Cause::of(&*source.into()));
        Error { kind, detail: detail.into(), source: Some(source) }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether the same call may succeed when tried again (see
    /// [`ErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

// The cause is not part of `Display`: it is `source()`, so a chain printer
// (`anyhow`'s `{:#}`, the facade's error) shows it once.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A cause as a chain printer should show it: each error's own message,
/// its source beneath it.
///
/// async-nats's `Error<Kind>` prints its source after its kind
/// (`"IO error: Connection refused"`) and also returns it from `source()`,
/// so every chain printer would show the source twice. A `Cause` keeps, for
/// each link of the chain, the message without the text of the link
/// beneath it (when it ends with it; otherwise the message whole): a
/// matter of display only, no kind is decided from it.
#[derive(Debug)]
struct Cause {
    message: String,
    source: Option<Box<Cause>>,
}

impl Cause {
    fn of(error: &(dyn std::error::Error + 'static)) -> Cause {
        let full = error.to_string();
        let Some(next) = error.source() else {
            return Cause { message: full, source: None };
        };
        let below = next.to_string();
        let own = full.strip_suffix(below.as_str()).map(|head| head.trim_end_matches(": "));
        let source = Box::new(Cause::of(next));
        match own {
            // A wrapper that says nothing of its own is left out.
            Some("") => *source,
            Some(own) => Cause { message: own.to_owned(), source: Some(source) },
            None => Cause { message: full, source: Some(source) },
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// An error printing its source after its own message, as async-nats's
    /// errors do.
    #[derive(Debug)]
    struct Repeating(std::io::Error);

    impl fmt::Display for Repeating {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "IO error: {}", self.0)
        }
    }

    impl std::error::Error for Repeating {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_that_prints_its_source_is_shown_once() {
        let e = Error::with_source(
            ErrorKind::Connect,
            "server nats://h:4222",
            Repeating(std::io::Error::other("refused")),
        );
        let mut links = vec![e.to_string()];
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            links.push(s.to_string());
            source = s.source();
        }
        assert_eq!(
            links,
            ["cannot connect to the NATS server: server nats://h:4222", "IO error", "refused"]
        );
    }
}
