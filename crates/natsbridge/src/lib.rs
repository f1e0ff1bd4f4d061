//! natsbridge: the Rust peer of the cross-language message bridge over NATS.
//!
//! This facade composes the layers: the envelope codec
//! ([`envelope`], from `natsbridge-envelope-core`), the NATS transport, the
//! claim-check handlers and the table conversions, into the cross-language
//! API (`smartsend`, `smartreceive`, `smartpack`, `smartunpack`,
//! request-reply). It holds composition, not logic its layers own.
#![deny(missing_docs)]

pub use natsbridge_envelope_core as envelope;
