//! NATS transport for natsbridge.
//!
//! The connection layer of the bridge, on async-nats and tokio: connecting
//! ([`ConnectOptions`]: several servers, token, user/password, nkey and
//! `.creds` authentication, TLS, WebSocket URLs, natscli's contexts
//! ([`ConnectOptions::from_context`], [`NatsContext`]), a [`ReconnectPolicy`] with
//! capped exponential backoff and jitter, the one [`Backoff`] of natsbridge),
//! publishing with a `max_payload` check before anything is sent,
//! subscriptions and queue groups, request-reply with distinct timeout and
//! no-responders errors, connection
//! [`Event`]s (slow consumers included), [`JetStream`] publish-with-ack
//! and durable pull consumers, JetStream [`ObjectStore`] buckets
//! (streamed put and get, delete, digests), and responders registered as
//! NATS services ([`Connection::add_service`]: `$SRV.PING`, `INFO` and
//! `STATS` of the Service API, ADR-32).
//!
//! It moves bytes; building and parsing envelopes is
//! `natsbridge-envelope-core`'s job, and composing the two is the
//! `natsbridge` facade's.
//!
//! ```no_run
//! # async fn example() -> natsbridge_transport_nats::Result<()> {
//! use std::time::Duration;
//! use natsbridge_transport_nats::ConnectOptions;
//!
//! let conn = ConnectOptions::new("nats://127.0.0.1:4222").name("my-service").connect().await?;
//! println!("server accepts messages up to {} bytes", conn.max_payload());
//! conn.publish("chat.room1", "hello".into()).await?;
//! let answer = conn.request("device.command", "{}".into(), Duration::from_secs(2)).await?;
//! # let _ = answer; Ok(()) }
//! ```
#![deny(missing_docs)]

mod connection;
mod context;
mod error;
mod jetstream;
mod jserror;
mod moving;
mod objectstore;
mod options;
mod replies;
mod service;

pub use crate::connection::{Connection, Event, connect};
pub use crate::context::{DEFAULT_URL, NatsContext};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::jetstream::{
    Ack, Consumer, JetStream, Messages, PendingAck, PublishRetry, StreamConfig, StreamMessage,
};
pub use crate::moving::Subscriber;
pub use crate::objectstore::{ObjectInfo, ObjectReader, ObjectStore, ObjectStoreConfig};
pub use crate::options::{ConnectOptions, ReconnectPolicy};
pub use crate::replies::Replies;
pub use crate::service::{
    DEFAULT_QUEUE_GROUP, Endpoint, EndpointConfig, EndpointStats, SERVICE_ERROR,
    SERVICE_ERROR_CODE, Service, ServiceConfig, error_headers, service_name,
};
pub use async_nats::{HeaderMap, Message, Subject};
/// The reconnect delays' formula ([`ReconnectPolicy::backoff`]) and the URL
/// redaction of every error and `Debug` here, shared with the claim-check
/// stores through `natsbridge-common`.
pub use natsbridge_common::{Backoff, redact_url};
