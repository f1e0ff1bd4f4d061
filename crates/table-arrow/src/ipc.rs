//! `arrowtable`: Arrow IPC stream (and file) bytes to and from record batches.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::{FileDecoder, StreamDecoder, read_footer_length};
use arrow_ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
use arrow_schema::{Schema, SchemaRef};
use bytes::Bytes;

use crate::error::{Error, ErrorKind, Result};

/// The magic at the start (and end) of the Arrow IPC file format.
const FILE_MAGIC: &[u8; 6] = b"ARROW1";

/// Which of Arrow's two IPC layouts some bytes use.
///
/// The wire contract sends [`IpcFormat::Stream`]; on receive both are
/// accepted, told apart by the file format's leading `ARROW1` magic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IpcFormat {
    /// The IPC stream format: a schema message, then dictionary and record
    /// batch messages, then an end-of-stream marker. What `arrowtable`
    /// payloads carry and what every peer writes by default (pyarrow's
    /// `new_stream`, apache-arrow's `tableToIPC`, Arrow.jl's `Arrow.write`).
    #[default]
    Stream,
    /// The IPC file format (Feather v2): `ARROW1`, the stream messages, a
    /// footer indexing them, `ARROW1`. Accepted on receive; written only
    /// when asked for with [`WriteOptions::format`].
    File,
}

impl IpcFormat {
    /// Tells the format of `bytes` from its first six bytes.
    ///
    /// Anything not starting with `ARROW1` is taken for a stream (and
    /// reading it says whether it really is one).
    ///
    /// ```
    /// use natsbridge_table_arrow::IpcFormat;
    /// assert_eq!(IpcFormat::detect(b"ARROW1\0\0..."), IpcFormat::File);
    /// assert_eq!(IpcFormat::detect(b"\xff\xff\xff\xff"), IpcFormat::Stream);
    /// ```
    pub fn detect(bytes: &[u8]) -> IpcFormat {
        if bytes.starts_with(FILE_MAGIC) { IpcFormat::File } else { IpcFormat::Stream }
    }
}

/// A compression codec for the record batch buffers of IPC output.
///
/// Compressed IPC is part of the Arrow format since 1.0 and pyarrow and
/// Arrow.jl read both codecs, but apache-arrow (JS) and several older
/// readers do not: compress only when every receiver is known to cope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// LZ4 frame format (pure Rust, crate feature `lz4`, on by default).
    Lz4,
    /// Zstandard (crate feature `zstd`, off by default: it builds C code).
    Zstd,
}

/// How [`write_ipc_with`] writes.
///
/// The default is the wire contract's: stream format, uncompressed.
/// Non-exhaustive: build it with [`WriteOptions::new`] and the `with_*`
/// setters.
///
/// ```
/// use natsbridge_table_arrow::{IpcFormat, WriteOptions};
///
/// let options = WriteOptions::new().with_format(IpcFormat::File);
/// assert_eq!((options.format, options.compression), (IpcFormat::File, None));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Stream (the default, and what `arrowtable` means) or file format.
    pub format: IpcFormat,
    /// Compress record batch buffers; `None` (the default) does not, since
    /// not every peer reads compressed IPC.
    pub compression: Option<Compression>,
}

impl WriteOptions {
    /// The defaults (the same as [`Default`]); change them with the
    /// `with_*` setters below or by assigning the public fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`format`](Self::format).
    #[must_use]
    pub fn with_format(mut self, format: IpcFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets [`compression`](Self::compression).
    #[must_use]
    pub fn with_compression(mut self, compression: Option<Compression>) -> Self {
        self.compression = compression;
        self
    }
}

/// Record batches sharing one schema: what an `arrowtable` holds.
///
/// Batches read by [`read_ipc`] borrow the received bytes: their column
/// buffers point into the same allocation, which stays alive (reference
/// counted) as long as any batch or array taken from them does.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The schema, with its metadata (pandas' `pandas` key, Arrow.jl's
    /// `JULIA_ARROW_...` keys and the like are kept as they came).
    pub schema: SchemaRef,
    /// The batches in order; possibly none.
    pub batches: Vec<RecordBatch>,
}

impl Table {
    /// A table from its schema and batches (not checked against each other;
    /// writing checks).
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Table {
        Table { schema, batches }
    }

    /// The number of rows over all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Writes batches as Arrow IPC stream bytes, the `arrowtable` wire form.
///
/// The schema (with its metadata) is the first batch's; every batch must
/// have the same fields, or the error is [`ErrorKind::Schema`]. With no
/// batches there is no schema to write: use [`write_ipc_with`].
pub fn write_ipc(batches: &[RecordBatch]) -> Result<Bytes> {
    let first = batches.first().ok_or_else(|| {
        Error::new(ErrorKind::Schema, "no batches: nothing to take a schema from")
    })?;
    write_ipc_with(first.schema_ref(), batches, &WriteOptions::default())
}

/// Writes batches with a given schema and [`WriteOptions`].
///
/// Each batch must have the schema's fields (metadata may differ: the
/// schema's is written). The output is one allocation, handed over as
/// [`Bytes`] without a copy.
pub fn write_ipc_with(
    schema: &Schema,
    batches: &[RecordBatch],
    options: &WriteOptions,
) -> Result<Bytes> {
    for (i, batch) in batches.iter().enumerate() {
        if batch.schema_ref().fields() != schema.fields() {
            return Err(Error::new(
                ErrorKind::Schema,
                format!(
                    "batch {i} has fields {:?}, the table {:?}",
                    batch.schema_ref().fields(),
                    schema.fields()
                ),
            ));
        }
    }
    let codec = match options.compression {
        None => None,
        Some(Compression::Lz4) => Some(arrow_ipc::CompressionType::LZ4_FRAME),
        Some(Compression::Zstd) => Some(arrow_ipc::CompressionType::ZSTD),
    };
    if (codec == Some(arrow_ipc::CompressionType::LZ4_FRAME) && !cfg!(feature = "lz4"))
        || (codec == Some(arrow_ipc::CompressionType::ZSTD) && !cfg!(feature = "zstd"))
    {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{:?} compression needs this crate's feature of that name",
                options.compression
            ),
        ));
    }
    let ipc_options = IpcWriteOptions::default()
        .try_with_compression(codec)
        .map_err(|e| Error::with_source(ErrorKind::Unsupported, e.to_string(), e))?;
    // Sizing the output once avoids the copies of a growing Vec: the IPC
    // body is the batches' buffers (their lengths, not the capacities
    // `get_array_memory_size` counts, which can be half again as large and
    // push a table past the size where the allocator maps fresh pages for
    // every call) plus padding and a little metadata.
    let body: usize = batches
        .iter()
        .flat_map(RecordBatch::columns)
        .map(|column| ipc_body_bound(&column.to_data()))
        .sum();
    let mut out = Vec::with_capacity(body + 1024 + 64 * schema.fields().len());
    let encode = |e: arrow_schema::ArrowError| {
        Error::with_source(ErrorKind::Unsupported, "cannot write Arrow IPC", e)
    };
    match options.format {
        IpcFormat::Stream => {
            let mut writer = StreamWriter::try_new_with_options(&mut out, schema, ipc_options)
                .map_err(encode)?;
            for batch in batches {
                writer.write(batch).map_err(encode)?;
            }
            writer.finish().map_err(encode)?;
        }
        IpcFormat::File => {
            let mut writer =
                FileWriter::try_new_with_options(&mut out, schema, ipc_options).map_err(encode)?;
            for batch in batches {
                writer.write(batch).map_err(encode)?;
            }
            writer.finish().map_err(encode)?;
        }
    }
    Ok(Bytes::from(out))
}

/// An upper bound of the IPC body bytes of one array: its buffers'
/// lengths, its validity bitmap and its children's, each padded to 64.
fn ipc_body_bound(data: &arrow_data::ArrayData) -> usize {
    let padded = |len: usize| len.div_ceil(64) * 64;
    data.buffers().iter().map(|b| padded(b.len())).sum::<usize>()
        + data.nulls().map_or(0, |n| padded(n.buffer().len()))
        + data.child_data().iter().map(ipc_body_bound).sum::<usize>()
        + 64
}

/// Reads Arrow IPC bytes, stream or file format, without copying the
/// column buffers.
///
/// The format is told by [`IpcFormat::detect`]. Arrow's full validation
/// runs on every array (offsets, UTF-8, dictionary keys, lengths), so bytes
/// that are truncated, garbage, carry a wrong magic or a lying length are an
/// [`ErrorKind::Malformed`] error naming the reason, never a panic. A
/// compressed stream whose codec's crate feature is off is
/// [`ErrorKind::Unsupported`].
///
/// Zero-copy: the arrays point into `bytes`' allocation. Arrow needs each
/// buffer aligned to its type; IPC writers align buffers to 8 bytes within
/// the message, so this holds whenever the allocation itself is 8-aligned
/// (every `Vec<u8>` from the system allocator is). A buffer that is not is
/// copied into an aligned one rather than refused.
pub fn read_ipc(bytes: &Bytes) -> Result<Table> {
    let format = IpcFormat::detect(bytes);
    let buffer = Buffer::from(bytes.clone());
    // Arrow's readers return errors for the malformed inputs we know of;
    // this guard turns any panic a future corner case might hit into the
    // same `Malformed` error instead of taking the receiver down.
    match catch_unwind(AssertUnwindSafe(|| {
        check_declared_lengths(bytes, format)?;
        match format {
            IpcFormat::Stream => read_stream(buffer),
            IpcFormat::File => read_file(buffer),
        }
    })) {
        Ok(result) => result,
        Err(panic) => {
            let reason = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("the reader panicked");
            Err(Error::new(ErrorKind::Malformed, format!("Arrow IPC {format:?}: {reason}")))
        }
    }
}

/// How much larger than its compressed bytes a buffer can honestly claim to
/// be: LZ4 frames expand at most about 255 times; zstd's bound is far
/// higher (runs of one byte), so its limit is generous.
const MAX_EXPANSION_LZ4: u64 = 256;
const MAX_EXPANSION_ZSTD: u64 = 1 << 16;

/// Refuses compressed buffers whose codec's crate feature is off
/// ([`ErrorKind::Unsupported`], decided here from the message's own
/// `BodyCompression` rather than from the text of Arrow's error), and those
/// whose declared uncompressed length (the first
/// 8 bytes of each) is more than their codec could produce from them.
///
/// Arrow's reader reserves the declared length before decompressing, so a
/// lie of 2^62 bytes is an allocation failure, which aborts the process
/// rather than panicking (found by the `arrow_ipc` fuzz target). Anything
/// this walk cannot read is left for Arrow's reader to report.
fn check_declared_lengths(bytes: &[u8], format: IpcFormat) -> Result<()> {
    match format {
        IpcFormat::Stream => {
            let mut at = 0;
            while let Some(next) = check_message_at(bytes, at)? {
                at = next;
            }
        }
        IpcFormat::File => {
            let n = bytes.len();
            let Some(footer_len) = bytes
                .get(n.saturating_sub(10)..n.saturating_sub(6))
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(i32::from_le_bytes)
                .and_then(|l| usize::try_from(l).ok())
            else {
                return Ok(());
            };
            let Some(footer) = n
                .checked_sub(10 + footer_len)
                .and_then(|start| bytes.get(start..n - 10))
                .and_then(|b| arrow_ipc::root_as_footer(b).ok())
            else {
                return Ok(());
            };
            let blocks = footer.recordBatches().into_iter().flatten();
            for block in blocks.chain(footer.dictionaries().into_iter().flatten()) {
                if let Ok(offset) = usize::try_from(block.offset()) {
                    check_message_at(bytes, offset)?;
                }
            }
        }
    }
    Ok(())
}

/// Checks the message at `at` (continuation marker, metadata length,
/// metadata, body); returns where the next one starts, or `None` at the end
/// or where the bytes stop making sense.
fn check_message_at(bytes: &[u8], at: usize) -> Result<Option<usize>> {
    let word = |i: usize| {
        bytes.get(i..i + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_le_bytes)
    };
    let (meta_at, len) = match word(at) {
        Some(0xFFFF_FFFF) => (at + 8, word(at + 4)),
        other => (at + 4, other),
    };
    let Some(len) = len.filter(|&l| l > 0 && l < i32::MAX as u32).map(|l| l as usize) else {
        return Ok(None);
    };
    let Some(message) =
        bytes.get(meta_at..meta_at + len).and_then(|b| arrow_ipc::root_as_message(b).ok())
    else {
        return Ok(None);
    };
    let body_at = meta_at + len;
    let batch = message
        .header_as_record_batch()
        .or_else(|| message.header_as_dictionary_batch().and_then(|d| d.data()));
    if let Some(batch) = batch
        && let Some(compression) = batch.compression()
    {
        let codec = compression.codec();
        if (codec == arrow_ipc::CompressionType::LZ4_FRAME && !cfg!(feature = "lz4"))
            || (codec == arrow_ipc::CompressionType::ZSTD && !cfg!(feature = "zstd"))
        {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "Arrow IPC: {codec:?} compressed buffers need this crate's feature of that name"
                ),
            ));
        }
        let limit = if compression.codec() == arrow_ipc::CompressionType::ZSTD {
            MAX_EXPANSION_ZSTD
        } else {
            MAX_EXPANSION_LZ4
        };
        for buffer in batch.buffers().into_iter().flatten() {
            let (Ok(offset), Ok(length)) =
                (usize::try_from(buffer.offset()), u64::try_from(buffer.length()))
            else {
                continue;
            };
            let Some(declared) = body_at
                .checked_add(offset)
                .and_then(|start| bytes.get(start..start.checked_add(8)?))
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(i64::from_le_bytes)
            else {
                continue;
            };
            // -1: stored uncompressed.
            if declared > 0 && declared as u64 > limit.saturating_mul(length) + 64 {
                return Err(Error::new(
                    ErrorKind::Malformed,
                    format!(
                        "Arrow IPC: a compressed buffer of {length} bytes declares {declared} \
                         uncompressed bytes"
                    ),
                ));
            }
        }
    }
    Ok(usize::try_from(message.bodyLength()).ok().and_then(|b| body_at.checked_add(b)))
}

fn read_stream(mut buffer: Buffer) -> Result<Table> {
    let mut decoder = StreamDecoder::new();
    let mut batches = Vec::new();
    while !buffer.is_empty() {
        if let Some(batch) =
            decoder.decode(&mut buffer).map_err(|e| Error::reading("Arrow IPC stream", e))?
        {
            batches.push(batch);
        }
    }
    decoder.finish().map_err(|e| Error::reading("Arrow IPC stream", e))?;
    let schema = decoder
        .schema()
        .ok_or_else(|| Error::new(ErrorKind::Malformed, "Arrow IPC stream: no schema message"))?;
    Ok(Table { schema, batches })
}

fn malformed(reason: impl Into<String>) -> Error {
    Error::new(ErrorKind::Malformed, format!("Arrow IPC file: {}", reason.into()))
}

/// The part of `buffer` a footer block points at, checked to lie in
/// `0..limit` (the footer's start), so a lying offset is an error.
fn block_slice(buffer: &Buffer, block: &arrow_ipc::Block, limit: usize) -> Result<Buffer> {
    let offset = usize::try_from(block.offset()).map_err(|_| malformed("negative block offset"))?;
    let meta = usize::try_from(block.metaDataLength())
        .map_err(|_| malformed("negative block metadata length"))?;
    let body =
        usize::try_from(block.bodyLength()).map_err(|_| malformed("negative block body length"))?;
    let end = offset
        .checked_add(meta)
        .and_then(|n| n.checked_add(body))
        .filter(|&end| end <= limit)
        .ok_or_else(|| {
            malformed(format!(
                "block at {offset} of {} bytes runs past the footer at {limit}",
                meta + body
            ))
        })?;
    Ok(buffer.slice_with_length(offset, end - offset))
}

fn read_file(buffer: Buffer) -> Result<Table> {
    let len = buffer.len();
    // Leading magic and padding (8), trailing footer length and magic (10).
    if len < 8 + 10 {
        return Err(malformed(format!("{len} bytes is too short for a file")));
    }
    let trailer: [u8; 10] = buffer[len - 10..].try_into().expect("ten bytes");
    let footer_len = read_footer_length(trailer).map_err(|e| {
        Error::reading("Arrow IPC file trailer (missing ARROW1 or bad footer length)", e)
    })?;
    let footer_start = (len - 10)
        .checked_sub(footer_len)
        .filter(|&start| start >= 8)
        .ok_or_else(|| malformed(format!("footer length {footer_len} exceeds the {len} bytes")))?;
    let footer = arrow_ipc::root_as_footer(&buffer[footer_start..len - 10])
        .map_err(|e| malformed(format!("footer is not a valid flatbuffer: {e}")))?;
    let fb_schema = footer.schema().ok_or_else(|| malformed("footer has no schema"))?;
    if !fb_schema.endianness().equals_to_target_endianness() {
        return Err(Error::new(ErrorKind::Unsupported, "Arrow IPC file of the other endianness"));
    }
    let schema = Arc::new(
        arrow_ipc::convert::try_fb_to_schema(fb_schema)
            .map_err(|e| Error::reading("Arrow IPC file schema", e))?,
    );
    let mut decoder = FileDecoder::new(schema.clone(), footer.version());
    for block in footer.dictionaries().iter().flatten() {
        let data = block_slice(&buffer, block, footer_start)?;
        decoder
            .read_dictionary(block, &data)
            .map_err(|e| Error::reading("Arrow IPC file dictionary", e))?;
    }
    let blocks =
        footer.recordBatches().ok_or_else(|| malformed("footer lists no record batches"))?;
    let mut batches = Vec::with_capacity(blocks.len());
    for block in blocks {
        let data = block_slice(&buffer, block, footer_start)?;
        if let Some(batch) = decoder
            .read_record_batch(block, &data)
            .map_err(|e| Error::reading("Arrow IPC file record batch", e))?
        {
            batches.push(batch);
        }
    }
    Ok(Table { schema, batches })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int32Array;

    #[test]
    fn detects_file_magic() {
        assert_eq!(IpcFormat::detect(b"ARROW1"), IpcFormat::File);
        assert_eq!(IpcFormat::detect(b"ARROW"), IpcFormat::Stream);
        assert_eq!(IpcFormat::detect(b""), IpcFormat::Stream);
    }

    #[test]
    fn empty_input_is_malformed() {
        let e = read_ipc(&Bytes::new()).unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::Malformed, "{e}");
    }

    #[test]
    fn file_round_trip() {
        let batch = RecordBatch::try_from_iter([(
            "a",
            Arc::new(Int32Array::from(vec![1, 2, 3])) as arrow_array::ArrayRef,
        )])
        .unwrap();
        let options = WriteOptions { format: IpcFormat::File, ..WriteOptions::default() };
        let bytes =
            write_ipc_with(batch.schema_ref(), std::slice::from_ref(&batch), &options).unwrap();
        assert!(bytes.starts_with(FILE_MAGIC));
        assert_eq!(read_ipc(&bytes).unwrap().batches, vec![batch]);
    }
}
