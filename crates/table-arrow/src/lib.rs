//! Table payloads for natsbridge: `arrowtable` and `jsontable`.
//!
//! The wire contract carries tables two ways. An `arrowtable` payload (older
//! name `table`) is Arrow IPC **stream** bytes; on receive the IPC file
//! format is accepted too. A `jsontable` payload is a UTF-8 JSON array of row
//! objects. This crate converts between those bytes and Arrow
//! [`RecordBatch`]es (and, for `jsontable`, serde types). Its main type is
//! [`Table`]: a schema and its batches.
//!
//! Reading IPC is zero-copy: [`read_ipc`] builds the arrays over the
//! received [`Bytes`], so a 30 MB table costs no 30 MB copy. Arrow's
//! validation stays on, so malformed bytes are an [`Error`] with the
//! reason, never a panic. Schema metadata (pandas' `pandas` key, Arrow.jl's
//! keys) is kept. IPC compression (LZ4, and Zstandard behind the `zstd`
//! feature) is written only when asked for, since not every peer reads it.
//!
//! It does no I/O and knows nothing of NATS: the facade crate moves the
//! bytes. [`arrow_payload`] and [`table_from_payload`] connect it to
//! [`natsbridge_envelope_core::Payload`].
//! With the `csv` feature, `read_csv` turns CSV text (a header row, types
//! inferred) into a [`Table`].
//!
//! ```
//! use std::sync::Arc;
//! use natsbridge_table_arrow::arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
//! use natsbridge_table_arrow::{arrow_payload, table_from_payload};
//!
//! let batch = RecordBatch::try_from_iter([
//!     ("id", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
//!     ("name", Arc::new(StringArray::from(vec![Some("Alice"), None])) as ArrayRef),
//! ])?;
//! let payload = arrow_payload("people", &[batch.clone()])?;
//! assert_eq!(payload.payload_type.as_str(), "arrowtable");
//!
//! let table = table_from_payload(&payload)?;
//! assert_eq!(table.batches, vec![batch]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "csv")]
mod csv;
mod error;
mod ipc;
mod json;
mod payload;

#[cfg(feature = "csv")]
#[cfg_attr(docsrs, doc(cfg(feature = "csv")))]
pub use crate::csv::read_csv;
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::ipc::{
    Compression, IpcFormat, Table, WriteOptions, read_ipc, write_ipc, write_ipc_with,
};
pub use crate::json::{
    batches_to_rows, read_json_rows, read_json_rows_as, rows_from_json, rows_to_batch,
    rows_to_json, write_json_rows,
};
pub use crate::payload::{
    arrow_payload, arrow_payload_with, batches_from_payload, json_payload, table_from_payload,
    table_payload,
};

pub use arrow_array;
pub use arrow_array::RecordBatch;
pub use arrow_schema;
pub use bytes::Bytes;
