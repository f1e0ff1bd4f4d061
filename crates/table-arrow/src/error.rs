//! The crate's one error type.

use std::fmt;

use arrow_schema::ArrowError;

/// What went wrong, in terms a caller can act on.
///
/// No kind is worth retrying: the same bytes give the same error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The bytes are not valid Arrow IPC (stream or file): truncated,
    /// garbage, a wrong magic, lengths or offsets pointing outside the
    /// buffer, or arrays that fail Arrow's validation. Not retried.
    Malformed,
    /// Valid input this build cannot handle: a payload type that is not a
    /// table, a compression codec whose crate feature is off, or a column
    /// type the JSON writer cannot express. Not retried.
    Unsupported,
    /// A `jsontable` whose rows cannot share one schema: the same key holds
    /// values of incompatible types in different rows (a number here, a
    /// string or an object there). Not retried.
    MixedRows,
    /// A `jsontable` that is not a JSON array of row objects, or rows that
    /// do not (de)serialize to the caller's type. Not retried.
    Json,
    /// The batches handed in disagree on their schema, or there is nothing
    /// to take a schema from (no batches). Not retried.
    Schema,
    /// CSV input (crate feature `csv`) that cannot be read as a table: not
    /// UTF-8, no header row, or a row whose field count differs from the
    /// header's. Not retried.
    Csv,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Malformed => "malformed Arrow IPC",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::MixedRows => "jsontable rows of mixed shapes",
            ErrorKind::Json => "invalid jsontable",
            ErrorKind::Schema => "schema",
            ErrorKind::Csv => "invalid CSV",
        })
    }
}

/// The error of every fallible function in this crate.
///
/// [`Error::kind`] says what to do about it; `Display` gives the reason at
/// this crate's level, and [`std::error::Error::source`] the underlying
/// error (Arrow's, serde_json's, the CSV reader's) where there is one,
/// which `Display` does not repeat.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into(), source: None }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error { kind, message: message.into(), source: Some(Box::new(source)) }
    }

    /// An Arrow error met while reading IPC bytes.
    pub(crate) fn reading(context: &str, e: ArrowError) -> Error {
        // A codec whose feature is off is refused before Arrow reads
        // (`check_declared_lengths`), from the message itself.
        let kind = match &e {
            ArrowError::NotYetImplemented(_) => ErrorKind::Unsupported,
            _ => ErrorKind::Malformed,
        };
        Error::with_source(kind, context, e)
    }

    /// What kind of error this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}
