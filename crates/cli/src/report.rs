//! The one-line JSON report printed for each received envelope (`--json`;
//! `show` prints the text form).

use std::path::{Path, PathBuf};

use anyhow::Context;
use natsbridge::{Envelope, PayloadType, sha256_hex, upload_file_name};
use serde_json::{Map, Value, json};

/// The envelope's top-level fields except `payloads`, and a summary of each
/// payload: `dataname`, `payload_type`, `transport`, `size`, `sha256` of the
/// bytes as received, and `path` where `out` saved them (or null).
pub(crate) fn line(envelope: &Envelope, out: Option<&Path>) -> anyhow::Result<String> {
    Ok(line_with_paths(envelope, &save_all(envelope, out)?))
}

/// Saves each payload whose bytes are here under `out` (if given); the
/// paths, one per payload (None where nothing was saved).
pub(crate) fn save_all(
    envelope: &Envelope,
    out: Option<&Path>,
) -> anyhow::Result<Vec<Option<PathBuf>>> {
    envelope
        .payloads
        .iter()
        .enumerate()
        .map(|(index, record)| match (out, record.bytes()) {
            (Some(dir), Some(bytes)) => save(dir, envelope, index, record, bytes).map(Some),
            _ => Ok(None),
        })
        .collect()
}

/// [`line`] for payloads already saved at `paths` (from [`save_all`]).
pub(crate) fn line_with_paths(envelope: &Envelope, paths: &[Option<PathBuf>]) -> String {
    let mut obj = Map::new();
    for (key, value) in [
        ("correlation_id", &envelope.correlation_id),
        ("msg_id", &envelope.msg_id),
        ("timestamp", &envelope.timestamp),
        ("send_to", &envelope.send_to),
        ("msg_purpose", &envelope.msg_purpose),
        ("sender_name", &envelope.sender_name),
        ("sender_id", &envelope.sender_id),
        ("receiver_name", &envelope.receiver_name),
        ("receiver_id", &envelope.receiver_id),
        ("reply_to", &envelope.reply_to),
        ("reply_to_msg_id", &envelope.reply_to_msg_id),
        ("broker_url", &envelope.broker_url),
    ] {
        obj.insert(key.into(), value.as_str().into());
    }
    obj.insert("metadata".into(), Value::Object(envelope.metadata.clone()));
    for (key, value) in &envelope.extra {
        obj.insert(key.clone(), value.clone());
    }
    let mut payloads = Vec::with_capacity(envelope.payloads.len());
    for (index, record) in envelope.payloads.iter().enumerate() {
        let path = paths.get(index).and_then(Option::as_ref);
        payloads.push(json!({
            "dataname": record.dataname,
            "payload_type": record.payload_type.as_str(),
            "transport": record.transport().as_str(),
            "size": record.size(),
            "sha256": record.bytes().map(|b| sha256_hex(b)),
            "path": path.map(|p| p.display().to_string()),
        }));
    }
    obj.insert("payloads".into(), Value::Array(payloads));
    Value::Object(obj).to_string()
}

fn save(
    dir: &Path,
    envelope: &Envelope,
    index: usize,
    record: &natsbridge::PayloadRecord,
    bytes: &[u8],
) -> anyhow::Result<PathBuf> {
    // One directory per message, named by its id made safe for a path.
    let dir = dir.join(natsbridge::claimcheck::safe_file_name(&envelope.msg_id));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut name = upload_file_name(&record.dataname, &record.payload_type);
    // A table saved as `sales.csv` would say CSV and hold Arrow IPC.
    if matches!(record.payload_type, PayloadType::ArrowTable | PayloadType::Table)
        && !name.ends_with(".arrow")
    {
        name.push_str(".arrow");
    }
    let path = dir.join(format!("{index}-{name}"));
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The line printed for a message that could not be decoded:
/// `{"error": {"kind": ..., "message": ...}}`.
pub(crate) fn error_line(error: &natsbridge::Error) -> String {
    json!({"error": {"kind": kind_name(error.kind()), "message": error.to_string()}}).to_string()
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
