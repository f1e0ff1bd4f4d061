//! natsbridge: the Rust peer of the cross-language message bridge over NATS.
//!
//! Julia, Python, JavaScript and MicroPython services exchange one JSON
//! envelope on NATS: small payloads ride inside it as base64, large ones are
//! uploaded to an HTTP file server and only their URL travels (the
//! claim-check pattern). This crate joins that conversation. It composes the
//! layers and re-exports them:
//!
//! - [`envelope`] (`natsbridge-envelope-core`): the envelope, payload types,
//!   codec and transport plan;
//! - [`claimcheck`] (`natsbridge-claimcheck`): the claim-check role (the
//!   upload and download traits, errors, retries), with its stores beneath
//!   it: `claimcheck::http` (`natsbridge-claimcheck-http`, feature `http`:
//!   Plik, HTTP PUT, S3 uploads and the HTTP downloader) and
//!   `claimcheck::objectstore` (`natsbridge-claimcheck-objectstore`, feature
//!   `objectstore`: the JetStream object store, `nats-os://` links, Rust
//!   peers only), both on by default;
//! - [`transport`] (`natsbridge-transport-nats`): NATS connections;
//! - `table` (`natsbridge-table-arrow`, feature `tables`, off by default):
//!   `arrowtable` (Arrow IPC) and `jsontable` payloads to and from Arrow
//!   record batches.
//!
//! Features (`Cargo.toml` says why each default is what it is): `http`
//! (default) the HTTP stores every other peer speaks, `s3` S3-compatible
//! storage, `objectstore` (default) `nats-os://` links, `tables` Arrow
//! conversions, `csv` CSV input for tables. Without `http` and
//! `objectstore`, a bridge sends what fits inside the envelope and fetches
//! links only through the handlers given to its builder.
//!
//! [`connect`] / [`Bridge::builder`] give a [`Bridge`]: `smartsend`,
//! `smartreceive`, subscriptions and JetStream consumers (both
//! [`Stream`](futures_util::Stream)s of decoded envelopes, cancel safe),
//! request-reply, [`Bridge::flush`], with link payloads going through the
//! configured file server, or, between Rust peers only and when the sender
//! opts in with [`BridgeBuilder::object_store`], through a JetStream object
//! store ([`ObjectStoreHandler`], `nats-os://` links). [`Bridge::service`]
//! registers responders as NATS services (ADR-32's `$SRV.PING`, `INFO` and
//! `STATS`, requests and errors counted, error answers marked by headers). The README's quick
//! start shows a bridge end to end; `examples/` has runnable programs.
//!
//! The cross-language names exist for users coming from other peers and
//! mean what they mean there: [`Bridge::smartsend`] and
//! [`Bridge::smartpack`] build an envelope and publish it (unless
//! `is_publish` is `false`); [`Bridge::smartreceive`],
//! [`Bridge::smartunpack`] and the free [`smartunpack`] read one
//! (downloading what came by link). Without a connection, the free
//! [`pack`](fn@pack) builds an envelope (uploading what must go by link)
//! and publishes nothing, which is why it is not called `smartpack`.
//!
//! It does not run servers: the Plik-compatible file server is the
//! `natsbridge-fileserver` crate (and `natsbridge fileserver` on the
//! command line).
//!
//! ```
//! use natsbridge::{Payload, SendOptions, claimcheck::http::HttpDownloader};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let (envelope, json) = natsbridge::pack(
//!     "chat.room1",
//!     vec![Payload::text("message_text", "Hello!")],
//!     SendOptions::default(),
//!     None,                                   // no file server: everything direct
//!     natsbridge::envelope::DEFAULT_MAX_PAYLOAD,
//! ).await?;
//! let received = natsbridge::smartunpack(&json, &HttpDownloader::new()?).await?;
//! assert_eq!(received, envelope);
//! # Ok::<(), natsbridge::Error>(()) }).unwrap();
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod bridge;
mod error;
mod limits;
mod pack;
mod prepared;
mod sent;
mod service;
mod subscription;
mod system;

// The README's Rust snippets, compiled (and run, where they need no
// server) by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

/// The claim-check role (`natsbridge-claimcheck`): the traits every store
/// implements ([`UploadHandler`](claimcheck::UploadHandler),
/// [`DownloadHandler`](claimcheck::DownloadHandler)), their errors and
/// retries, with the stores of this project beneath it, each behind its
/// feature (both on by default).
pub mod claimcheck {
    #[doc(inline)]
    pub use natsbridge_claimcheck::*;
    /// The HTTP stores (`natsbridge-claimcheck-http`): Plik, HTTP PUT and
    /// S3 (feature `s3`) uploads, the HTTP downloader.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub use natsbridge_claimcheck_http as http;
    /// The JetStream object store as a store (`natsbridge-claimcheck-objectstore`).
    #[cfg(feature = "objectstore")]
    #[cfg_attr(docsrs, doc(cfg(feature = "objectstore")))]
    pub use natsbridge_claimcheck_objectstore as objectstore;
}
pub use natsbridge_envelope_core as envelope;
#[cfg(feature = "tables")]
#[cfg_attr(docsrs, doc(cfg(feature = "tables")))]
pub use natsbridge_table_arrow as table;
pub use natsbridge_transport_nats as transport;

pub use crate::bridge::{Bridge, BridgeBuilder, connect};
#[cfg(feature = "objectstore")]
#[cfg_attr(docsrs, doc(cfg(feature = "objectstore")))]
pub use crate::claimcheck::objectstore::{
    OBJECT_STORE_SCHEME, ObjectStoreHandler, ObjectStoreOptions,
};
pub use crate::claimcheck::sha256_hex;
pub use crate::envelope::{
    Body, Envelope, EnvelopeBuf, EnvelopeView, Payload, PayloadRecord, PayloadType, PayloadValue,
    PayloadView, SendOptions, Transport,
};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::limits::ReceiveLimits;
pub use crate::pack::{
    FilePayload, Outgoing, SHA256_KEY, fetch_links_to, fetch_payload, link_request, pack,
    pack_files, unpack as smartunpack, unpack_with as smartunpack_with, upload_file_name,
};
pub use crate::prepared::PreparedSender;
pub use crate::sent::Sent;
pub use crate::service::{Service, ServiceEndpoint, ServiceRequest};
pub use crate::subscription::{
    EnvelopeConsumer, Incoming, LazySubscription, Received, Rejected, Subscription,
};
pub use crate::system::{SystemClock, SystemIds};
pub use crate::transport::{EndpointConfig, ServiceConfig};
