//! Table payloads for natsbridge.
//!
//! This crate will hold the conversions between Arrow `RecordBatch`es and the
//! two table payload types of the wire contract: `arrowtable` (Arrow IPC
//! stream bytes, with the older name `table`) and `jsontable` (a JSON array of
//! row objects). It does no I/O.
#![deny(missing_docs)]
