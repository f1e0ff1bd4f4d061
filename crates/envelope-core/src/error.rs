//! The one error type of the crate.

use crate::prelude::*;

/// What went wrong, in terms a caller can act on.
///
/// None of these is worth retrying with the same input: the envelope, the
/// payload or the limits must change first.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The message body is not a JSON object (a syntax error, trailing bytes,
    /// or invalid UTF-8). `offset` is the byte where parsing stopped.
    NotJson {
        /// Byte offset into the message body.
        offset: usize,
    },
    /// A field is missing, has the wrong JSON type or an impossible value.
    /// `field` is a path such as `payloads[1].transport`.
    Malformed {
        /// Path of the offending field.
        field: String,
    },
    /// A direct payload's `data` is not valid standard base64.
    Base64 {
        /// Path of the field, `payloads[N].data`.
        field: String,
    },
    /// A payload's bytes do not have the length its record declares.
    SizeMismatch {
        /// Path of the record's `size` field.
        field: String,
        /// The declared `size`.
        declared: u64,
        /// The length of the bytes actually carried.
        actual: u64,
    },
    /// The envelope cannot fit the server's `max_payload`, even after moving
    /// every payload that may move to link transport (or there is no link
    /// handler to move them to).
    PayloadTooLarge {
        /// The payload that does not fit (the largest direct one), if any.
        dataname: String,
        /// Bytes the finished envelope would have.
        envelope_size: usize,
        /// The server's `max_payload`.
        limit: usize,
    },
    /// A payload's bytes do not decode as its `payload_type` says (text that
    /// is not UTF-8, a dictionary that is not JSON).
    Decode {
        /// The payload's `dataname`.
        dataname: String,
    },
    /// A value could not be serialized (a JSON value with non-string keys).
    Encode,
}

/// The error of every fallible operation in this crate.
///
/// [`Error::kind`] says what happened; the `Display` form adds the detail a
/// human needs ("field `payloads[0].size`: expected a non-negative integer,
/// found a string").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    detail: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Error { kind, detail: detail.into() }
    }

    /// An error of `kind` with a human-readable detail, for layers built on
    /// this crate that find an envelope-level problem themselves (a link
    /// payload without a size, a finished envelope over `max_payload`).
    pub fn from_kind(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Error::new(kind, detail)
    }

    pub(crate) fn malformed(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::new(ErrorKind::Malformed { field: field.into() }, detail)
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The human-readable detail, without the kind.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::NotJson { offset } => {
                write!(f, "envelope is not a JSON object (at byte {offset}): {}", self.detail)
            }
            ErrorKind::Malformed { field } => {
                write!(f, "malformed envelope: field `{field}`: {}", self.detail)
            }
            ErrorKind::Base64 { field } => {
                write!(f, "invalid base64 in `{field}`: {}", self.detail)
            }
            ErrorKind::SizeMismatch { field, declared, actual } => write!(
                f,
                "size mismatch in `{field}`: declared {declared} bytes, carried {actual} bytes"
            ),
            ErrorKind::PayloadTooLarge { dataname, envelope_size, limit } => write!(
                f,
                "envelope of {envelope_size} bytes exceeds max_payload {limit} by {} bytes \
                 (largest direct payload: {dataname:?}): {}",
                envelope_size.saturating_sub(*limit),
                self.detail
            ),
            ErrorKind::Decode { dataname } => {
                write!(f, "payload {dataname:?} does not decode: {}", self.detail)
            }
            ErrorKind::Encode => write!(f, "cannot encode value: {}", self.detail),
        }
    }
}

impl core::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
