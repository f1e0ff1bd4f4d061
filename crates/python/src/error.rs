//! The Rust error as a `natsbridge.errors` exception: its class chosen by
//! the error's kind, `.kind` and `.layer` set, the whole cause chain in
//! the message.

use natsbridge::{ErrorKind, claimcheck, envelope, transport};
use pyo3::prelude::*;

/// An error on its way to Python, decided without the GIL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The class name in `natsbridge.errors`.
    pub(crate) class: &'static str,
    /// `envelope`, `claimcheck`, `nats`, `config`, `io` or `input`.
    pub(crate) layer: &'static str,
    /// The layer's kind in snake case (`integrity`, `payload_too_large`).
    pub(crate) kind: String,
    /// The error and its causes, each once, joined by ": ".
    pub(crate) message: String,
}

impl Failure {
    /// The exception instance, ready to raise.
    pub(crate) fn into_py(self, py: Python<'_>) -> PyErr {
        match instantiate(py, &self) {
            Ok(err) => err,
            // The package's Python layer is missing or broken: still raise,
            // as the closest built-in exception.
            Err(_) => pyo3::exceptions::PyRuntimeError::new_err(self.message),
        }
    }
}

fn instantiate(py: Python<'_>, failure: &Failure) -> PyResult<PyErr> {
    let class = py.import("natsbridge.errors")?.getattr(failure.class)?;
    let instance = class.call1((failure.message.as_str(),))?;
    instance.setattr("kind", failure.kind.as_str())?;
    instance.setattr("layer", failure.layer)?;
    Ok(PyErr::from_value(instance))
}

impl From<natsbridge::Error> for Failure {
    fn from(e: natsbridge::Error) -> Failure {
        let (class, layer, kind) = classify(e.kind());
        Failure { class, layer, kind, message: chain(&e) }
    }
}

impl From<claimcheck::Error> for Failure {
    fn from(e: claimcheck::Error) -> Failure {
        Failure::from(natsbridge::Error::from(e))
    }
}

/// The Python class, the layer and the kind's name for a facade error kind.
pub(crate) fn classify(kind: &ErrorKind) -> (&'static str, &'static str, String) {
    use claimcheck::ErrorKind as C;
    use envelope::ErrorKind as E;
    use transport::ErrorKind as N;
    match kind {
        ErrorKind::Envelope(k) => {
            let class = match k {
                E::PayloadTooLarge { .. } => "PayloadTooLargeError",
                E::SizeMismatch { .. } => "IntegrityError",
                E::Encode => "InvalidInputError",
                _ => "MalformedError",
            };
            (class, "envelope", snake(k))
        }
        ErrorKind::ClaimCheck(k) => {
            let class = match k {
                C::Integrity | C::SizeMismatch { .. } => "IntegrityError",
                C::NotFound | C::Gone => "NotFoundError",
                C::TimedOut => "TimeoutError",
                C::TooLarge { .. } => "PayloadTooLargeError",
                C::UrlRefused | C::InvalidInput => "InvalidInputError",
                _ => "TransferError",
            };
            (class, "claimcheck", snake(k))
        }
        ErrorKind::Nats(k) => {
            let class = match k {
                N::TimedOut => "TimeoutError",
                N::PayloadTooLarge { .. } => "PayloadTooLargeError",
                N::NotFound => "NotFoundError",
                N::InvalidSubject | N::InvalidConfig => "InvalidInputError",
                _ => "NatsError",
            };
            (class, "nats", snake(k))
        }
        ErrorKind::Config => ("InvalidInputError", "config", "config".into()),
        ErrorKind::Io => ("Error", "io", "io".into()),
        other => ("Error", "other", snake(other)),
    }
}

/// A kind's variant name in snake case: `PayloadTooLarge { .. }` gives
/// `payload_too_large`.
fn snake(kind: &impl std::fmt::Debug) -> String {
    let debug = format!("{kind:?}");
    let name = debug.split(|c: char| !c.is_alphanumeric()).next().unwrap_or_default();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The error and each of its causes once (a cause whose text the one
/// before already ends with is skipped), joined by ": ".
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_choose_the_class_and_name() {
        let k = ErrorKind::ClaimCheck(claimcheck::ErrorKind::Integrity);
        assert_eq!(classify(&k), ("IntegrityError", "claimcheck", "integrity".into()));
        let k = ErrorKind::Envelope(envelope::ErrorKind::PayloadTooLarge {
            dataname: "x".into(),
            envelope_size: 2,
            limit: 1,
        });
        assert_eq!(classify(&k), ("PayloadTooLargeError", "envelope", "payload_too_large".into()));
        let k = ErrorKind::Nats(transport::ErrorKind::NoResponders);
        assert_eq!(classify(&k), ("NatsError", "nats", "no_responders".into()));
        let k = ErrorKind::Envelope(envelope::ErrorKind::Malformed { field: "msg_id".into() });
        assert_eq!(classify(&k).0, "MalformedError");
    }
}
