//! Payload arguments: `TYPE:NAME=VALUE`, or a bare VALUE (a text payload
//! named [`BARE_NAME`], as `nats pub SUBJECT BODY` takes its body). A VALUE
//! is the literal, `@PATH` (a file), `@-` (standard input) or `@@...` (the
//! literal with one `@` less, so `@@alice` is `@alice`).

use std::io::Read;
use std::path::Path;

use natsbridge::envelope::bytes::Bytes;

use anyhow::{Context, bail};
use natsbridge::table::{IpcFormat, WriteOptions, read_csv, read_ipc, write_ipc_with};
use natsbridge::{FilePayload, Outgoing, Payload, PayloadType};

/// The payload types the command line accepts, by wire name.
pub(crate) const TYPES: &str =
    "text, dictionary, arrowtable, table, jsontable, image, audio, video, binary";

/// The name of the text payload a bare VALUE makes (`send chat.room1
/// hello`): the name the seeds' own first examples give their text.
pub(crate) const BARE_NAME: &str = "message";

/// A payload argument split into its parts; nothing read yet.
#[derive(Debug, PartialEq, Eq)]
struct Arg<'a> {
    /// The argument as given, for errors.
    arg: &'a str,
    type_name: &'a str,
    name: &'a str,
    value: Value<'a>,
    /// A bare VALUE (the text payload [`BARE_NAME`]).
    bare: bool,
}

/// Where a VALUE's bytes are.
#[derive(Debug, PartialEq, Eq)]
enum Value<'a> {
    Literal(&'a str),
    File(&'a str),
    Stdin,
}

impl<'a> Value<'a> {
    fn of(value: &'a str) -> Value<'a> {
        match value.strip_prefix('@') {
            None => Value::Literal(value),
            Some("-") => Value::Stdin,
            // `@@x` is the literal `@x`.
            Some(rest) if rest.starts_with('@') => Value::Literal(rest),
            Some(path) => Value::File(path),
        }
    }
}

/// Whether `text` could be a TYPE: a word of ASCII letters, digits and
/// `_` starting with a letter.
fn is_type_word(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits one argument. `TYPE:NAME=VALUE` when TYPE is a known type, or a
/// word followed by `:NAME=` with no whitespace in NAME (an unknown type
/// is then an error, not text); anything else is a bare VALUE.
fn split(arg: &str) -> anyhow::Result<Arg<'_>> {
    if let Some((type_name, rest)) = arg.split_once(':')
        && is_type_word(type_name)
    {
        let known = PayloadType::known(type_name).is_some();
        match rest.split_once('=') {
            Some((name, value)) if known || !name.contains(char::is_whitespace) => {
                if !known {
                    bail!(
                        "payload {arg:?}: unknown payload type {type_name:?} (one of {TYPES}); \
                         to send this as text, write text:{BARE_NAME}={arg}"
                    );
                }
                if name.is_empty() {
                    bail!("payload {arg:?}: the NAME of TYPE:NAME=VALUE is empty");
                }
                return Ok(Arg { arg, type_name, name, value: Value::of(value), bare: false });
            }
            None if known => bail!("payload {arg:?} is not TYPE:NAME=VALUE (missing `=`)"),
            _ => {}
        }
    }
    Ok(Arg { arg, type_name: "text", name: BARE_NAME, value: Value::of(arg), bare: true })
}

/// Splits every argument and checks them together: no two payloads with
/// one name, at most one reading standard input.
fn split_all(args: &[String]) -> anyhow::Result<Vec<Arg<'_>>> {
    let parts = args.iter().map(|a| split(a)).collect::<anyhow::Result<Vec<_>>>()?;
    for (i, part) in parts.iter().enumerate() {
        if let Some(first) = parts[..i].iter().find(|p| p.name == part.name) {
            bail!(
                "payloads {:?} and {:?} are both named {:?}; each payload needs its own \
                 name (TYPE:NAME=VALUE; a bare value is named {BARE_NAME:?})",
                first.arg,
                part.arg,
                part.name
            );
        }
        if part.value == Value::Stdin
            && let Some(first) = parts[..i].iter().find(|p| p.value == Value::Stdin)
        {
            bail!(
                "payloads {:?} and {:?} both read standard input (@-); only one can",
                first.arg,
                part.arg
            );
        }
    }
    Ok(parts)
}

/// Parses a command line's payload arguments for sending: an `@PATH` of a
/// type whose bytes go as they are (binary, image, audio, video) stays a
/// file, which the bridge streams when it goes by link, so a file of any
/// size is sent without being read into memory.
pub(crate) fn parse_all_outgoing(args: &[String]) -> anyhow::Result<Vec<Outgoing>> {
    split_all(args)?.iter().map(|a| outgoing(a, Stdin::Read)).collect()
}

/// Parses a command line's payload arguments into payloads in memory.
pub(crate) fn parse_all(args: &[String]) -> anyhow::Result<Vec<Payload>> {
    split_all(args)?.iter().map(|a| payload(a, Stdin::Read)).collect()
}

/// Whether `@-` may read this process's standard input (the command
/// line's arguments) or not (a page's form, a command's output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stdin {
    Read,
    Refuse,
}

/// The inspector page's send form: a payload already split into its TYPE,
/// NAME and VALUE (a name may hold `=`). `@-` is refused: the page has no
/// standard input.
pub(crate) fn outgoing_from_parts(
    type_name: &str,
    name: &str,
    value: &str,
) -> anyhow::Result<Outgoing> {
    if name.is_empty() {
        bail!("payload of type {type_name:?}: its NAME is empty");
    }
    let arg = Arg { arg: value, type_name, name, value: Value::of(value), bare: false };
    outgoing(&arg, Stdin::Refuse)
}

fn outgoing(arg: &Arg<'_>, stdin: Stdin) -> anyhow::Result<Outgoing> {
    if let Value::File(path) = arg.value
        && let Some(payload_type) = PayloadType::known(arg.type_name)
        && matches!(
            payload_type,
            PayloadType::Binary | PayloadType::Image | PayloadType::Audio | PayloadType::Video
        )
    {
        let name = arg.name;
        std::fs::metadata(path).with_context(|| format!("reading payload {name:?} from {path}"))?;
        return Ok(FilePayload::new(name, payload_type, path).into());
    }
    payload(arg, stdin).map(Outgoing::from)
}

/// Parses one `TYPE:NAME=VALUE` built by a program (`reply --command`'s
/// output), reading `@PATH` values from a file. Stricter than a command
/// line: a bare VALUE is refused (a mistyped TYPE there must not become
/// text), and so is `@-` (standard input is not the program's).
pub(crate) fn parse(arg: &str) -> anyhow::Result<Payload> {
    let part = split(arg)?;
    if part.bare {
        bail!("payload {arg:?} is not TYPE:NAME=VALUE (TYPE is one of {TYPES})");
    }
    payload(&part, Stdin::Refuse)
}

/// Reads an argument's bytes and checks them against its type.
fn payload(arg: &Arg<'_>, stdin: Stdin) -> anyhow::Result<Payload> {
    let name = arg.name;
    let payload_type = PayloadType::known(arg.type_name)
        .with_context(|| format!("unknown payload type {:?} (one of {TYPES})", arg.type_name))?;
    let (bytes, path): (Vec<u8>, Option<&str>) = match arg.value {
        Value::Literal(text) => (text.as_bytes().to_vec(), None),
        Value::File(path) => (
            std::fs::read(Path::new(path))
                .with_context(|| format!("reading payload {name:?} from {path}"))?,
            Some(path),
        ),
        Value::Stdin if stdin == Stdin::Refuse => {
            bail!("payload {name:?}: @- (standard input) cannot be used here")
        }
        Value::Stdin => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .with_context(|| format!("reading payload {name:?} from standard input"))?;
            (bytes, Some("-"))
        }
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
                     (stream or file format) or of a .csv, or @- for Arrow IPC on standard input"
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
        assert!(parse("text:noequals").is_err());
        assert!(parse("binary:b=@/nonexistent/file").unwrap_err().to_string().contains("reading"));
        assert!(parse("arrowtable:t=notarrow").unwrap_err().to_string().contains("@PATH"));
    }

    #[test]
    fn bare_values_are_text_named_message() {
        let arg = |a: &'static str| split(a).unwrap();
        assert_eq!(arg("hello").name, BARE_NAME);
        assert_eq!(arg("hello").value, Value::Literal("hello"));
        // Not TYPE:NAME=VALUE: a colon in prose, a URL's query, no word.
        for text in ["note: hello", "see http://x/?a=b", "a b:c=d", "text-no-colon", ""] {
            assert_eq!(
                arg(text),
                Arg {
                    arg: text,
                    type_name: "text",
                    name: BARE_NAME,
                    value: Value::Literal(text),
                    bare: true
                }
            );
        }
        assert_eq!(arg("@-").value, Value::Stdin);
        assert_eq!(arg("@notes.txt").value, Value::File("notes.txt"));
        assert_eq!(arg("@@alice").value, Value::Literal("@alice"));
        assert_eq!(arg("text:handle=@@alice").value, Value::Literal("@alice"));
        assert_eq!(arg("text:handle=@@@x").value, Value::Literal("@@x"));
        assert_eq!(parse("text:t=@@alice").unwrap().bytes.as_ref(), b"@alice");
        // A program's output is not a command line: no bare values there.
        assert!(parse("foo:my name=x").unwrap_err().to_string().contains("TYPE:NAME=VALUE"));
        // A word before `:NAME=` is a type: a typo is an error, not text.
        let err = split("txet:a=b").unwrap_err().to_string();
        assert!(err.contains("unknown payload type \"txet\"") && err.contains("text:message="));
    }

    #[test]
    fn empty_and_duplicate_names_are_refused() {
        let err = split("text:=hello").unwrap_err().to_string();
        assert!(err.contains("\"text:=hello\"") && err.contains("empty"), "{err}");
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let err = split_all(&args(&["text:a=1", "binary:b=x", "dictionary:a={}"])).unwrap_err();
        let err = err.to_string();
        assert!(err.contains("\"text:a=1\" and \"dictionary:a={}\" are both named \"a\""), "{err}");
        let err = split_all(&args(&["hi", "there"])).unwrap_err().to_string();
        assert!(err.contains("both named \"message\""), "{err}");
        let err = split_all(&args(&["text:a=@-", "@-"])).unwrap_err().to_string();
        assert!(err.contains("both read standard input"), "{err}");
        assert!(parse("text:a=@-").unwrap_err().to_string().contains("cannot be used here"));
        assert!(outgoing_from_parts("text", "", "x").is_err());
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
