//! Claim-check handlers for natsbridge.
//!
//! This crate will hold the upload and download sides of the claim-check
//! pattern: the Plik one-shot handler the seeds use by default, plain HTTP PUT,
//! S3-compatible storage with presigned URLs, downloads with backoff and
//! integrity checks, and the small Plik-compatible file server used as the
//! local default. It knows nothing of NATS.
#![deny(missing_docs)]
