//! natsbridge-python: the Python package `natsbridge` on the Rust core.
//!
//! This crate is the extension module `natsbridge._native`, built by
//! maturin into the `natsbridge` wheel beside a small pure-Python layer
//! (`python/natsbridge/`) that keeps the seeds' signatures: `smartpack` /
//! `smartunpack` (the newer seed's defaults) and `smartsend` /
//! `smartreceive` (the older one's), with `data` as `(dataname, value,
//! type)` tuples. The Python layer turns values into payload bytes and back
//! (`json`, `pyarrow`); this module does everything else with the GIL
//! released: building and parsing the envelope, base64, SHA-256, Plik
//! uploads and checked, retried downloads, and publishing on its own NATS
//! connection. Calls with no I/O (an envelope of direct payloads not
//! published here, one with no links to read) run on the calling thread
//! and build the seeds' dicts themselves, releasing the GIL only for
//! payloads of 64 KB or more (below that, releasing it costs more than the
//! work). Its class `NativeBridge` (with `NativeSubscription` and
//! `NativeRequest`) is the facade's `Bridge` under the Python class
//! `natsbridge.Bridge`.
//!
//! It does not define the Python exceptions: they are classes of
//! `natsbridge.errors` (one base class, subclasses by kind), which
//! the module instantiates by name when a call fails.
//!
//! The functions here are private to the package (the leading underscore of
//! `_native`); their Python signatures are in `natsbridge/_native.pyi`.
//!
//! ```
//! // The module's Rust side has no Rust API of its own; Python calls it.
//! assert_eq!(_native::MODULE, "natsbridge._native");
//! ```
#![deny(missing_docs)]

mod bridge;
mod error;
mod local;
mod native;

/// The import path of the extension module inside the package.
pub const MODULE: &str = "natsbridge._native";
