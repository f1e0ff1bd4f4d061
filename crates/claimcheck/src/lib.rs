//! The claim-check role of natsbridge: large payloads are stored elsewhere
//! and only their link travels in the envelope.
//!
//! This crate is the role, not a store. It holds what every store shares:
//!
//! - [`UploadHandler`]: store bytes, a file or a reader of known length
//!   ([`UploadSource`]) and return the link.
//! - [`DownloadHandler`]: fetch a link ([`DownloadRequest`]: the URL, the
//!   declared size if any, the SHA-256 if any) into memory or a file
//!   ([`DownloadSink`]).
//! - [`Error`] and [`ErrorKind`], whose [`ErrorKind::is_retryable`] says what
//!   a retry can fix, and [`RetryConfig`], the retries and their
//!   [`Backoff`] with jitter.
//! - [`VerifiedSink`], which every downloader writes through: the size cap,
//!   the running SHA-256, the part file renamed into place only once the
//!   bytes are checked.
//! - [`LinkRouter`], which sends each link to the handler for its scheme.
//! - [`fileio`]: file reads and writes on one blocking thread per file,
//!   which the sink, the HTTP stores and `natsbridge-fileserver` share.
//!
//! What a link may be is the stores' business: `http`/`https` URLs
//! (`natsbridge-claimcheck-http`: Plik, HTTP PUT, S3 presigned links, and
//! the HTTP downloader), or `nats-os://bucket/object`
//! (`natsbridge-claimcheck-objectstore`: the JetStream object store, Rust
//! peers only). The crate depends on no other natsbridge crate but the
//! dependency-free `natsbridge-common` (the [`Backoff`] formula and
//! [`redact_url`], shared with the NATS transport), and knows nothing of
//! NATS, HTTP or the envelope.
//!
//! Any store, in this workspace or not, can be written against it; a
//! closure is enough for a small one ([`upload_fn`], [`download_fn`]):
//!
//! ```
//! use bytes::Bytes;
//! use natsbridge_claimcheck::{
//!     DownloadHandlerExt, DownloadRequest, Downloaded, Error, UploadHandlerExt, UploadSource,
//!     download_fn, upload_fn,
//! };
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let upload = upload_fn(|name: String, source: UploadSource| async move {
//!     let UploadSource::Bytes(bytes) = source else { unreachable!() };
//!     Ok::<_, Error>(format!("mem://{name}/{}", bytes.len()))
//! });
//! let link = upload.upload_bytes("a.bin", vec![1u8, 2, 3]).await?;
//! assert_eq!(link, "mem://a.bin/3");
//!
//! let download = download_fn(|request: DownloadRequest, _sink| async move {
//!     Ok::<_, Error>(Downloaded::Bytes(Bytes::from(request.url.into_bytes())))
//! });
//! let bytes = download.download_bytes(&DownloadRequest::new("xyz", 3)).await?;
//! assert_eq!(bytes, "xyz");
//! # Ok::<(), Error>(()) }).unwrap();
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod error;
pub mod fileio;
mod handler;
mod hashing;
mod names;
mod retry;
mod router;
mod sink;

pub use crate::{
    error::{Error, ErrorKind},
    handler::{
        BoxFuture, DownloadFn, DownloadHandler, DownloadHandlerExt, DownloadRequest, DownloadSink,
        Downloaded, UploadFn, UploadHandler, UploadHandlerExt, UploadSource, download_fn,
        upload_fn,
    },
    hashing::sha256_hex,
    names::safe_file_name,
    retry::{RetryConfig, retry_upload},
    router::LinkRouter,
    sink::{PartFile, VerifiedSink, hex_lower, sha256_from_hex},
};
/// Shared with the transport through `natsbridge-common`, the one crate of
/// ours this one depends on: [`RetryConfig`]'s backoff formula, and the URL
/// redaction of every error and log line.
pub use natsbridge_common::{Backoff, redact_url};
