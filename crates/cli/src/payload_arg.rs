//! `TYPE:NAME=VALUE` payload arguments.

use std::path::Path;

use anyhow::{Context, bail};
use natsbridge::{Payload, PayloadType};

/// The payload types the command line accepts, by wire name.
pub(crate) const TYPES: &str =
    "text, dictionary, arrowtable, jsontable, image, audio, video, binary";

/// Parses `TYPE:NAME=VALUE`, reading `@PATH` values from a file.
pub(crate) fn parse(arg: &str) -> anyhow::Result<Payload> {
    let Some((type_name, rest)) = arg.split_once(':') else {
        bail!("payload {arg:?} is not TYPE:NAME=VALUE (TYPE is one of {TYPES})");
    };
    let Some((name, value)) = rest.split_once('=') else {
        bail!("payload {arg:?} is not TYPE:NAME=VALUE (missing `=`)");
    };
    let payload_type = PayloadType::from_wire(type_name)
        .filter(|t| *t != PayloadType::Table)
        .with_context(|| format!("unknown payload type {type_name:?} (one of {TYPES})"))?;
    let bytes: Vec<u8> = match value.strip_prefix('@') {
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
        PayloadType::ArrowTable if !looks_like_arrow(&bytes) => {
            bail!(
                "arrowtable payload {name:?} is not Arrow IPC (stream or file) bytes; \
                 give @PATH of an .arrow file"
            );
        }
        _ => {}
    }
    Ok(Payload::new(name, payload_type, bytes))
}

/// Arrow IPC file format starts with `ARROW1`; the stream format with a
/// continuation marker (0xFFFFFFFF) or, in the legacy form, a message length.
fn looks_like_arrow(bytes: &[u8]) -> bool {
    bytes.starts_with(b"ARROW1") || bytes.starts_with(&[0xff, 0xff, 0xff, 0xff])
}

#[cfg(test)]
mod tests {
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
        assert!(parse("arrowtable:t=notarrow").is_err());
    }
}
