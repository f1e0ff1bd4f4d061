//! The natsbridge v1 envelope: schema, payload types, codec and transport plan.
//!
//! Every peer of the bridge (Julia, Python, JavaScript, MicroPython, and this
//! Rust one) publishes the same JSON object on NATS: an [`Envelope`] whose
//! [`PayloadRecord`]s carry small payloads inline as base64 and large ones as
//! a claim-check URL. This crate is that contract and nothing else:
//!
//! - [`Envelope`], [`PayloadRecord`], [`Body`]: the schema, field for field.
//! - [`PayloadType`], [`Payload`], [`PayloadValue`]: what the bytes mean and
//!   their typed form.
//! - [`Envelope::to_json`] and [`Envelope::from_json`]: the codec, built to
//!   run at memory speed (base64 is SIMD-encoded straight into the output
//!   buffer; on receive it is decoded straight out of the input).
//! - [`EnvelopeView`]: the same parse without copying: header strings
//!   borrowed from the input, payloads left base64 until asked for. A
//!   receiver that reads one field or one payload pays for that.
//! - [`plan_transports`]: which payloads go direct and which by link so the
//!   envelope fits the server's `max_payload`.
//! - [`EnvelopeTemplate`]: the fields a stream of messages to one subject
//!   shares, rendered once, so each message writes only its ids, timestamp
//!   and payloads (the same bytes as `pack` + `to_json`, with no allocation
//!   but the output).
//!
//! It does no I/O, has no async and needs no `std`: build it with
//! `default-features = false` for an embedded target (it needs `alloc`).
//! Ids and the clock are injected through [`IdSource`] and [`Clock`].
//! Uploading, downloading and NATS live in the other natsbridge crates.
//!
//! ```
//! use natsbridge_envelope_core::{Envelope, Payload, PayloadValue, SendOptions};
//!
//! let mut counter = 0u32;
//! let mut ids = || { counter += 1; format!("id-{counter}") };
//! let now = || time::OffsetDateTime::UNIX_EPOCH;
//! let envelope = Envelope::pack(
//!     "chat.room1",
//!     vec![Payload::text("message_text", "Hello!")],
//!     SendOptions::default(),
//!     &mut ids,
//!     &now,
//! );
//! let json = envelope.to_json()?;
//! assert!(json.starts_with(br#"{"correlation_id":"id-1","msg_id":"id-2""#));
//!
//! let received = Envelope::from_json(&json)?;
//! assert_eq!(received, envelope);
//! assert_eq!(received.payloads[0].value()?, PayloadValue::Text("Hello!".into()));
//! # Ok::<(), natsbridge_envelope_core::Error>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs, unsafe_code)]

extern crate alloc;

mod buf;
mod envelope;
mod error;
mod fast;
mod lex;
mod payload;
mod plan;
mod read;
mod scan;
mod serde_impl;
mod template;
mod timestamp;
mod view;
mod write;

/// The one place that chooses between `core`, `alloc` and `std` types.
mod prelude {
    pub(crate) use alloc::borrow::Cow;
    pub(crate) use alloc::format;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec::Vec;
    pub(crate) use bytes::Bytes;
    pub(crate) use core::fmt;
}

pub use crate::buf::EnvelopeBuf;
pub use crate::envelope::{
    Body, Clock, DEFAULT_BROKER_URL, DEFAULT_MSG_PURPOSE, DEFAULT_SENDER_NAME, Envelope, IdSource,
    PayloadRecord, SendOptions, uuid_v4_from_random,
};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::payload::{Payload, PayloadType, PayloadValue, Transport};
pub use crate::plan::{
    DEFAULT_LINK_URL_RESERVE, DEFAULT_MAX_PAYLOAD, DEFAULT_SIZE_THRESHOLD,
    MICROPYTHON_SIZE_THRESHOLD, PlanLimits, plan_transports,
};
pub use crate::read::{RECORD_KEYS, TOP_KEYS};
pub use crate::template::EnvelopeTemplate;
pub use crate::timestamp::{format_rfc3339, parse_timestamp};
pub use crate::view::{EnvelopeView, PayloadView};

/// Re-exported so callers name the same `Bytes` and JSON types as this crate.
pub use bytes;
pub use serde_json;
pub use time;
