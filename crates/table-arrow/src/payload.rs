//! Glue to the envelope's [`Payload`].

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use bytes::Bytes;
use natsbridge_envelope_core::{Payload, PayloadType};

use crate::error::{Error, ErrorKind, Result};
use crate::ipc::{Table, WriteOptions, read_ipc, write_ipc, write_ipc_with};
use crate::json::{read_json_rows, write_json_rows};

/// An `arrowtable` payload of batches, as Arrow IPC stream bytes.
///
/// Errors as [`write_ipc`]: no batches, or batches of different fields, is
/// [`ErrorKind::Schema`].
pub fn arrow_payload(dataname: impl Into<String>, batches: &[RecordBatch]) -> Result<Payload> {
    Ok(Payload::new(dataname, PayloadType::ArrowTable, write_ipc(batches)?))
}

/// A `table` payload of batches, as Arrow IPC stream bytes: the first
/// seed's (NATSBridge) name for `arrowtable`, for peers that know only it.
pub fn table_payload(dataname: impl Into<String>, batches: &[RecordBatch]) -> Result<Payload> {
    Ok(Payload::new(dataname, PayloadType::Table, write_ipc(batches)?))
}

/// An `arrowtable` payload with an explicit schema (so it may hold no
/// batches) and [`WriteOptions`] (compression, or the file format for a
/// receiver that wants it).
pub fn arrow_payload_with(
    dataname: impl Into<String>,
    schema: &Schema,
    batches: &[RecordBatch],
    options: &WriteOptions,
) -> Result<Payload> {
    Ok(Payload::new(dataname, PayloadType::ArrowTable, write_ipc_with(schema, batches, options)?))
}

/// A `jsontable` payload of batches: a JSON array of row objects.
pub fn json_payload(dataname: impl Into<String>, batches: &[RecordBatch]) -> Result<Payload> {
    Ok(Payload::new(dataname, PayloadType::JsonTable, write_json_rows(batches)?))
}

/// The table in a payload of type `arrowtable`, `table` (the older name,
/// read the same) or `jsontable`.
///
/// Arrow IPC is read zero-copy over the payload's bytes ([`read_ipc`]); a
/// `jsontable` becomes one batch with an inferred schema
/// ([`read_json_rows`]). Any other payload type is
/// [`ErrorKind::Unsupported`].
pub fn table_from_payload(payload: &Payload) -> Result<Table> {
    match &payload.payload_type {
        PayloadType::ArrowTable | PayloadType::Table => read_ipc(&payload.bytes),
        PayloadType::JsonTable => {
            let batch = read_json_rows(&payload.bytes)?;
            Ok(Table::new(batch.schema(), vec![batch]))
        }
        other => Err(Error::new(
            ErrorKind::Unsupported,
            format!("payload {:?} is {}, not a table", payload.dataname, other.as_str()),
        )),
    }
}

/// The record batches of Arrow IPC bytes (stream or file), zero-copy: a
/// shorthand for `read_ipc(bytes)?.batches`.
pub fn batches_from_payload(bytes: &Bytes) -> Result<Vec<RecordBatch>> {
    Ok(read_ipc(bytes)?.batches)
}
