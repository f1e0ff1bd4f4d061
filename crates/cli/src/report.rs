//! The one-line JSON report printed for each received envelope (`--json`;
//! `show` prints the text form).

use std::path::{Path, PathBuf};

use anyhow::Context;
use natsbridge::{Envelope, PayloadRecord, PayloadType, sha256_hex, upload_file_name};
use serde_json::{Map, Value, json};

use crate::receive::Streamed;

/// The envelope's top-level fields except `payloads`, the peer's unknown
/// top-level keys nested under `extra`, and a summary of each payload:
/// `dataname`, `payload_type`, `transport`, `size`, `sha256` of the bytes
/// as received, and `path` where they were saved under `out` (or null).
pub(crate) fn line(envelope: &Envelope, out: Option<&Path>) -> anyhow::Result<String> {
    let dir = match out {
        Some(out) if envelope.payloads.iter().any(|r| r.bytes().is_some()) => {
            Some(message_dir(out, &envelope.msg_id)?)
        }
        _ => None,
    };
    let paths = save_all(envelope, dir.as_deref())?;
    Ok(line_with_paths(envelope, &paths, &[]))
}

/// Creates a fresh directory for one message's payloads under `out`,
/// named by its `msg_id` made safe for a path: `ID`, or `ID-2`, `ID-3` ...
/// when that name is taken (another message with the same id, or anything
/// planted there, a symlink included), so a message never writes into
/// another's directory nor through a link.
pub(crate) fn message_dir(out: &Path, msg_id: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let base = natsbridge::claimcheck::safe_file_name(msg_id);
    for n in 1u32.. {
        let name = if n == 1 { base.clone() } else { format!("{base}-{n}") };
        let dir = out.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("u32 names run out only after 4 billion messages with one id")
}

/// Saves each payload whose bytes are here into the message's directory
/// `dir` (from [`message_dir`], if saving); the paths, one per payload
/// (None where nothing was saved).
pub(crate) fn save_all(
    envelope: &Envelope,
    dir: Option<&Path>,
) -> anyhow::Result<Vec<Option<PathBuf>>> {
    envelope
        .payloads
        .iter()
        .enumerate()
        .map(|(index, record)| match (dir, record.bytes()) {
            (Some(dir), Some(bytes)) => save(dir, index, record, bytes).map(Some),
            _ => Ok(None),
        })
        .collect()
}

/// [`line`] for payloads already saved at `paths` (from [`save_all`]) and
/// links streamed past their digest (`streamed`, by payload index).
pub(crate) fn line_with_paths(
    envelope: &Envelope,
    paths: &[Option<PathBuf>],
    streamed: &[Option<Streamed>],
) -> String {
    let mut obj = Map::new();
    for (key, value) in envelope.header_fields() {
        obj.insert(key.into(), value.into());
    }
    obj.insert("metadata".into(), Value::Object(envelope.metadata.clone()));
    // A peer's keys never sit beside ours (an `error` a script trusts):
    // all of them in one object of their own.
    let extra = envelope.extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    obj.insert("extra".into(), Value::Object(extra));
    let mut payloads = Vec::with_capacity(envelope.payloads.len());
    for (index, record) in envelope.payloads.iter().enumerate() {
        let streamed = streamed.get(index).and_then(Option::as_ref);
        let path = paths
            .get(index)
            .and_then(Option::as_ref)
            .or_else(|| streamed.and_then(|s| s.path.as_ref()));
        payloads.push(json!({
            "dataname": record.dataname,
            "payload_type": record.payload_type.as_str(),
            "transport": record.transport().as_str(),
            "size": record.size().or(streamed.map(|s| s.size)),
            "sha256": record.bytes().map(|b| sha256_hex(b)).or(streamed.map(|s| s.sha256.clone())),
            "path": path.map(|p| p.display().to_string()),
        }));
    }
    obj.insert("payloads".into(), Value::Array(payloads));
    Value::Object(obj).to_string()
}

/// The file name payload `index` is saved under in its message's
/// directory: `INDEX-NAME.EXT`, unique within the message.
pub(crate) fn file_name(index: usize, record: &PayloadRecord) -> String {
    let mut name = upload_file_name(&record.dataname, &record.payload_type);
    // A table saved as `sales.csv` would say CSV and hold Arrow IPC.
    if matches!(record.payload_type, PayloadType::ArrowTable | PayloadType::Table)
        && !name.ends_with(".arrow")
    {
        name.push_str(".arrow");
    }
    format!("{index}-{name}")
}

fn save(dir: &Path, index: usize, record: &PayloadRecord, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let path = dir.join(file_name(index, record));
    write_new(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Writes a file that must not exist yet: never over another file, never
/// through a symlink (`O_CREAT | O_EXCL` fails on both).
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(bytes)
}

/// The line printed for a message that could not be decoded:
/// `{"error": {"kind": ..., "message": ..., "hint": ...}}`, `hint` only
/// where [`crate::hint`] has one.
pub(crate) fn error_line(error: &natsbridge::Error) -> String {
    let mut fields = Map::new();
    fields.insert("kind".into(), kind_name(error.kind()).into());
    fields.insert("message".into(), chain(error).into());
    if let Some(hint) = crate::hint::for_received(error) {
        fields.insert("hint".into(), hint.into());
    }
    json!({"error": fields}).to_string()
}

/// The line `--json` prints on stderr for a command's own error (it could
/// not connect, a payload argument was refused, ...): `{"error": {"kind":
/// ..., "message": ..., "hint": ..., "exit": ...}}`, `kind` the first
/// natsbridge error's in the chain (`other` when there is none, `input`
/// for the command line's own refusals), `hint` only where there is one.
pub(crate) fn command_error_line(error: &anyhow::Error, hint: Option<&str>) -> String {
    let kind = error
        .chain()
        .find_map(|cause| {
            let kind = match cause.downcast_ref::<natsbridge::Error>() {
                Some(e) => e.kind().clone(),
                None => natsbridge::ErrorKind::Nats(
                    cause.downcast_ref::<natsbridge::transport::Error>()?.kind().clone(),
                ),
            };
            Some(kind_name(&kind))
        })
        .unwrap_or_else(|| {
            let input = error.downcast_ref::<crate::exit::BadInput>().is_some();
            if input { "input" } else { "other" }.to_string()
        });
    let mut fields = Map::new();
    fields.insert("kind".into(), kind.into());
    fields.insert("message".into(), crate::one_line(error).into());
    if let Some(hint) = hint {
        fields.insert("hint".into(), hint.into());
    }
    fields.insert("exit".into(), crate::exit::number(error).into());
    json!({"error": fields}).to_string()
}

/// An error and its causes on one line, `: ` between them, each cause
/// once: a cause whose text the line already holds (a layer that prints
/// its cause in its own message) is left out, and so is an empty one (a
/// marker such as `exit::BadInput`). Within a message, a part that repeats
/// the one before it, alone or behind a one-word label (async-nats writes
/// `authorization violation: nats: authorization violation`), is left out
/// too.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        next = cause.source();
    }
    without_repeats(&line.replace('\n', " "))
}

/// `line` without a `: `-separated part equal to the one before it, nor
/// a one-word label and such a part (`a: a`, `a: nats: a` are `a`).
fn without_repeats(line: &str) -> String {
    let parts: Vec<&str> = line.split(": ").collect();
    let mut kept: Vec<&str> = Vec::with_capacity(parts.len());
    let mut i = 0;
    while i < parts.len() {
        let last = kept.last().copied();
        let label = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase());
        if Some(parts[i]) == last {
            i += 1;
        } else if label(parts[i]) && i + 1 < parts.len() && Some(parts[i + 1]) == last {
            i += 2;
        } else {
            kept.push(parts[i]);
            i += 1;
        }
    }
    kept.join(": ")
}

/// A stable, short name for an error kind: `envelope.not_json`,
/// `claimcheck.integrity`, `nats.timed_out`, ...
pub(crate) fn kind_name(kind: &natsbridge::ErrorKind) -> String {
    let (layer, inner) = match kind {
        natsbridge::ErrorKind::Envelope(k) => ("envelope", format!("{k:?}")),
        natsbridge::ErrorKind::ClaimCheck(k) => ("claimcheck", format!("{k:?}")),
        natsbridge::ErrorKind::Nats(k) => ("nats", format!("{k:?}")),
        other => ("other", format!("{other:?}")),
    };
    let variant: String = inner.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    let mut snake = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    format!("{layer}.{snake}")
}

#[cfg(test)]
mod tests {
    use super::without_repeats;

    #[test]
    fn repeated_parts_are_left_out() {
        assert_eq!(
            without_repeats("server x: authorization violation: nats: authorization violation"),
            "server x: authorization violation"
        );
        assert_eq!(
            without_repeats("invalid subject: invalid subject format: invalid subject format"),
            "invalid subject: invalid subject format"
        );
        // Different parts, and a label before a different part, stay.
        let kept = "connecting: nats: timed out: http://h:1/x: HTTP 404: not found";
        assert_eq!(without_repeats(kept), kept);
    }
}
