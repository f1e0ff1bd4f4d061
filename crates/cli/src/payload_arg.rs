//! `TYPE:NAME=VALUE` payload arguments.

use std::path::Path;

use natsbridge::envelope::bytes::Bytes;

use anyhow::{Context, bail};
use natsbridge::table::{IpcFormat, WriteOptions, read_csv, read_ipc, write_ipc_with};
use natsbridge::{FilePayload, Outgoing, Payload, PayloadType};

/// The payload types the command line accepts, by wire name.
pub(crate) const TYPES: &str =
    "text, dictionary, arrowtable, table, jsontable, image, audio, video, binary";

/// Parses `TYPE:NAME=VALUE` for sending: an `@PATH` of a type whose bytes
/// go as they are (binary, image, audio, video) stays a file, which the
/// bridge streams when it goes by link, so a file of any size is sent
/// without being read into memory. Every other argument is [`parse`]d.
pub(crate) fn parse_outgoing(arg: &str) -> anyhow::Result<Outgoing> {
    if let Some((type_name, rest)) = arg.split_once(':')
        && let Some((name, value)) = rest.split_once('=')
    {
        return outgoing_from_parts(type_name, name, value);
    }
    parse(arg).map(Outgoing::from)
}

/// [`parse_outgoing`] for an argument already split into its TYPE, NAME
/// and VALUE (the inspector page's send form, where a name may hold `=`).
pub(crate) fn outgoing_from_parts(
    type_name: &str,
    name: &str,
    value: &str,
) -> anyhow::Result<Outgoing> {
    if let Some(path) = value.strip_prefix('@')
        && let Some(payload_type) = PayloadType::known(type_name)
        && matches!(
            payload_type,
            PayloadType::Binary | PayloadType::Image | PayloadType::Audio | PayloadType::Video
        )
    {
        std::fs::metadata(path).with_context(|| format!("reading payload {name:?} from {path}"))?;
        return Ok(FilePayload::new(name, payload_type, path).into());
    }
    from_parts(type_name, name, value).map(Outgoing::from)
}

/// Parses `TYPE:NAME=VALUE`, reading `@PATH` values from a file.
pub(crate) fn parse(arg: &str) -> anyhow::Result<Payload> {
    let Some((type_name, rest)) = arg.split_once(':') else {
        bail!("payload {arg:?} is not TYPE:NAME=VALUE (TYPE is one of {TYPES})");
    };
    let Some((name, value)) = rest.split_once('=') else {
        bail!("payload {arg:?} is not TYPE:NAME=VALUE (missing `=`)");
    };
    from_parts(type_name, name, value)
}

/// [`parse`] for an argument already split into its parts.
fn from_parts(type_name: &str, name: &str, value: &str) -> anyhow::Result<Payload> {
    let payload_type = PayloadType::known(type_name)
        .with_context(|| format!("unknown payload type {type_name:?} (one of {TYPES})"))?;
    let path = value.strip_prefix('@');
    let bytes: Vec<u8> = match path {
        Some(path) => std::fs::read(Path::new(path))
            .with_context(|| format!("reading payload {name:?} from {path}"))?,
        None => value.as_bytes().to_vec(),
    };
    match payload_type {
        PayloadType::Text => {
            std::str::from_utf8(&bytes)
                .with_context(|| format!("text payload {name:?} is not UTF-8"))?;
        }
        PayloadType::Dictionary | PayloadType::JsonTable => {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("{payload_type} payload {name:?} is not JSON"))?;
            if payload_type == PayloadType::JsonTable && !v.is_array() {
                bail!("jsontable payload {name:?} must be a JSON array of row objects");
            }
        }
        PayloadType::ArrowTable | PayloadType::Table => {
            let Some(path) = path else {
                bail!(
                    "{payload_type} payload {name:?} takes @PATH of an Arrow IPC file \
                     (stream or file format) or of a .csv"
                );
            };
            return Ok(Payload::new(name, payload_type, arrow_stream(name, path, bytes)?));
        }
        _ => {}
    }
    Ok(Payload::new(name, payload_type, bytes))
}

/// The `arrowtable` wire bytes (an Arrow IPC stream) for the file at `path`:
/// a `.csv` is converted (schema inferred), an IPC stream is checked and
/// sent as it is, and an IPC file is checked and rewritten as a stream.
fn arrow_stream(name: &str, path: &str, bytes: Vec<u8>) -> anyhow::Result<Bytes> {
    let is_csv = Path::new(path).extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let table = if is_csv {
        read_csv(&bytes)
            .with_context(|| format!("arrowtable payload {name:?}: converting {path}"))?
    } else {
        let bytes = Bytes::from(bytes);
        let table = read_ipc(&bytes).with_context(|| {
            format!(
                "arrowtable payload {name:?}: {path} is not Arrow IPC (stream or file); \
                 give an .arrow/.arrows file or a .csv"
            )
        })?;
        if IpcFormat::detect(&bytes) == IpcFormat::Stream {
            return Ok(bytes);
        }
        table
    };
    write_ipc_with(&table.schema, &table.batches, &WriteOptions::default())
        .with_context(|| format!("arrowtable payload {name:?}: writing Arrow IPC"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use natsbridge::table::arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use natsbridge::table::{IpcFormat, WriteOptions, write_ipc_with};

    use super::*;

    #[test]
    fn parses_each_form() {
        let p = parse("text:greeting=hello=world").unwrap();
        assert_eq!((p.dataname.as_str(), p.payload_type), ("greeting", PayloadType::Text));
        assert_eq!(p.bytes.as_ref(), b"hello=world");
        let p = parse(r#"dictionary:config={"a":1}"#).unwrap();
        assert_eq!(p.payload_type, PayloadType::Dictionary);
        assert!(parse("jsontable:rows={}").is_err());
        assert!(parse("dictionary:c={not json").is_err());
        assert!(parse("hologram:x=1").unwrap_err().to_string().contains("unknown payload type"));
        assert!(parse("text-no-colon").is_err());
        assert!(parse("text:noequals").is_err());
        assert!(parse("binary:b=@/nonexistent/file").unwrap_err().to_string().contains("reading"));
        assert!(parse("arrowtable:t=notarrow").unwrap_err().to_string().contains("@PATH"));
    }

    #[test]
    fn arrowtable_from_csv_ipc_stream_and_ipc_file() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.CSV");
        std::fs::write(&csv, "id,name\n1,a\n2,b\n").unwrap();
        let p = parse(&format!("arrowtable:t=@{}", csv.display())).unwrap();
        let table = read_ipc(&p.bytes).unwrap();
        assert_eq!(IpcFormat::detect(&p.bytes), IpcFormat::Stream);
        assert_eq!(table.num_rows(), 2);

        let batch = RecordBatch::try_from_iter([(
            "x",
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
        )])
        .unwrap();
        let stream =
            write_ipc_with(&batch.schema(), std::slice::from_ref(&batch), &WriteOptions::default())
                .unwrap();
        let file = write_ipc_with(
            &batch.schema(),
            std::slice::from_ref(&batch),
            &WriteOptions::new().with_format(IpcFormat::File),
        )
        .unwrap();
        let (stream_path, file_path) = (dir.path().join("s.arrows"), dir.path().join("f.arrow"));
        std::fs::write(&stream_path, &stream).unwrap();
        std::fs::write(&file_path, &file).unwrap();
        let p = parse(&format!("arrowtable:s=@{}", stream_path.display())).unwrap();
        assert_eq!(p.bytes, stream, "a stream travels as it is");
        let p = parse(&format!("arrowtable:f=@{}", file_path.display())).unwrap();
        assert_eq!(IpcFormat::detect(&p.bytes), IpcFormat::Stream, "a file becomes a stream");
        assert_eq!(read_ipc(&p.bytes).unwrap().batches, vec![batch]);
    }

    #[test]
    fn bad_arrowtable_files_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake.arrow");
        std::fs::write(&fake, b"ARROW1\0\0not really").unwrap();
        let err = parse(&format!("arrowtable:t=@{}", fake.display())).unwrap_err();
        assert!(format!("{err:#}").contains("not Arrow IPC"), "{err:#}");
        let ragged = dir.path().join("ragged.csv");
        std::fs::write(&ragged, "a,b\n1,2\n3\n").unwrap();
        let err = parse(&format!("arrowtable:t=@{}", ragged.display())).unwrap_err();
        assert!(format!("{err:#}").contains("invalid CSV"), "{err:#}");
    }
}
