//! NATS transport for natsbridge.
//!
//! This crate will hold the connection layer of the bridge: connecting to
//! `nats-server` (token, user/password, nkey and `.creds` authentication, TLS,
//! WebSocket), publishing envelope bytes with `max_payload` awareness,
//! subscriptions, request-reply and JetStream. It moves bytes; it does not
//! build or parse envelopes (that is `natsbridge-envelope-core`).
#![deny(missing_docs)]
