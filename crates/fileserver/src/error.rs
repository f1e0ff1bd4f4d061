//! The file server's error: why it could not start.

use std::{fmt, io};

/// Why a [`FileServer`](crate::FileServer) could not start: its
/// configuration, or the listener or storage directory it was given.
///
/// Once started the server answers every failing request itself (with
/// Plik's status codes and texts) and logs what went wrong; nothing it does
/// later returns this type.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<io::Error>,
}

/// What kind of failure an [`Error`] is. Neither is retried: both need the
/// configuration or the machine changed first.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The builder was given something it cannot use (no storage directory).
    InvalidInput,
    /// The listener or the storage directory failed (address in use, a
    /// directory that cannot be created, a `plik` or `put` area that is a
    /// symbolic link); [`std::error::Error::source`] is the I/O error.
    Io,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Error {
        Error { kind: ErrorKind::InvalidInput, message: message.into(), source: None }
    }

    pub(crate) fn io(doing: impl Into<String>, source: io::Error) -> Error {
        Error { kind: ErrorKind::Io, message: doing.into(), source: Some(source) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What was being done ("binding the file server"); the I/O error
        // that stopped it is the source.
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_the_source_and_not_repeated() {
        let err = Error::io("binding 127.0.0.1:1", io::Error::other("address in use"));
        assert_eq!(err.kind(), &ErrorKind::Io);
        assert_eq!(err.to_string(), "binding 127.0.0.1:1");
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(source.to_string(), "address in use");
    }
}
