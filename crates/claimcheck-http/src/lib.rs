//! Claim-check stores over HTTP for natsbridge: moving large payloads
//! through an HTTP file server so that only their URL travels over NATS.
//!
//! The role's two traits live in `natsbridge-claimcheck` (re-exported here);
//! this crate implements them over HTTP:
//!
//! - [`UploadHandler`]: store bytes, a file or a reader of known length
//!   ([`UploadSource`]) and return the link. Implemented by [`PlikUploader`]
//!   (the seeds' default: Plik one-shot uploads, exactly as the wire contract
//!   says) and [`HttpPutUploader`] (one PUT to a URL template).
//! - [`DownloadHandler`]: fetch a link into memory or a file
//!   ([`DownloadSink`]), with the exact size the payload record declares and,
//!   when given, its SHA-256. Implemented by [`HttpDownloader`], which retries
//!   with the backoff of [`RetryConfig`], refuses links that are not
//!   `http`/`https` or not on an allowed origin, caps the size, never follows
//!   redirects, and streams (memory stays flat for a file sink).
//!
//! [`UploadHandlerExt::upload_with_sha256`] computes the payload's SHA-256
//! while any handler uploads it, for the record's checksum key;
//! [`DownloadRequest::sha256`] has the downloader verify it.
//!
//! The Plik-compatible server for tests and local setups is the
//! `natsbridge-fileserver` crate. Every fallible call returns the role's
//! [`Error`], whose [`ErrorKind`] says what happened and whether a retry can
//! help. Errors and `Debug` output never show upload tokens, header values or
//! the query string of a URL (where presigned URLs keep their signature).
//!
//! With the `s3` feature, `S3Uploader` stores into S3-compatible storage
//! and returns presigned GET links (any peer downloads them with a plain GET).
//!
//! The crate knows nothing of NATS or of the envelope; the `natsbridge`
//! facade puts the link and size in the payload record. The JetStream object
//! store is `natsbridge-claimcheck-objectstore`.
//!
//! ```
//! use natsbridge_claimcheck_http::{
//!     DownloadHandlerExt, DownloadRequest, ErrorKind, HttpDownloader, PlikUploader,
//!     UploadHandlerExt,
//! };
//! use natsbridge_fileserver::FileServer;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("natsbridge-crate-doc-{}", std::process::id()));
//! let server = FileServer::builder().dir(&dir).bind("127.0.0.1:0").await?;
//!
//! // The sender uploads and puts the link in the envelope...
//! let payload = vec![7u8; 600_000];
//! let link = PlikUploader::new(server.url())?.upload_bytes("blob.bin", payload.clone()).await?;
//!
//! // ...the receiver downloads it, exactly once.
//! let downloader = HttpDownloader::builder().allow_origin(server.url()).build()?;
//! let request = DownloadRequest::new(&link, payload.len() as u64);
//! assert_eq!(downloader.download_bytes(&request).await?, payload);
//! let again = downloader.download_bytes(&request).await;
//! assert_eq!(again.err().map(|e| e.kind().clone()), Some(ErrorKind::Gone));
//! # server.shutdown().await;
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod body;
mod client;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod download;
mod error;
mod plik;
mod put;
#[cfg(feature = "s3")]
mod s3;

pub use crate::{
    client::{USER_AGENT, client_builder},
    download::{HttpDownloader, HttpDownloaderBuilder},
    plik::{PlikUploader, PlikUploaderBuilder, fuzz_plik_replies},
    put::{HttpPutUploader, HttpPutUploaderBuilder},
};

/// The claim-check role these stores implement (`natsbridge-claimcheck`),
/// re-exported so one import serves.
pub use natsbridge_claimcheck::{
    BoxFuture, DownloadFn, DownloadHandler, DownloadHandlerExt, DownloadRequest, DownloadSink,
    Downloaded, Error, ErrorKind, LinkRouter, RetryConfig, UploadFn, UploadHandler,
    UploadHandlerExt, UploadSource, VerifiedSink, download_fn, retry_upload, safe_file_name,
    sha256_hex, upload_fn,
};

#[cfg(feature = "s3")]
pub use crate::s3::{S3Uploader, S3UploaderBuilder};
