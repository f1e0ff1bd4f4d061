//! Sending from the page: the same payload rules as `natsbridge send`
//! (each payload read as `TYPE:NAME=@PATH` is, a `.csv` table converted,
//! media files streamed) and the same transport plan (the size threshold,
//! the server's `max_payload`, links through the configured store).

use std::path::PathBuf;

use anyhow::Context;
use axum::http::StatusCode;
use natsbridge::{PayloadType, SendOptions};
use serde_json::{Value, json};

use super::server::State;
use crate::{exit, payload_arg, report};

/// How the page's messages are sent.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Payloads of this many bytes or more go by link (`--threshold`).
    pub(crate) threshold: usize,
    /// Written as `broker_url` (credentials removed).
    pub(crate) broker_url: String,
}

/// A refusal: the status, the error kind and the message.
pub(crate) type Refusal = (StatusCode, &'static str, String);

fn bad(message: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, "inspector.bad_request", message.into())
}

/// Sends what the page asked for: `{"subject", "payloads": [{"type",
/// "name", "value" | "file"}], "msg_purpose"?, "sender_name"?,
/// "receiver_name"?, "reply_to"?, "reply_to_msg_id"?, "correlation_id"?}`,
/// where `value` is a literal (text, or JSON for `dictionary` and
/// `jsontable`) and `file` an id `/api/files` returned. Answers with what
/// went which way.
pub(crate) async fn send(state: &State, body: &[u8]) -> Result<Value, Refusal> {
    let request: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the request is not JSON: {e}")))?;
    let text = |key: &str| request.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    let subject = text("subject").ok_or_else(|| bad("a subject is needed"))?.to_string();
    let items = request
        .get("payloads")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad("at least one payload is needed"))?;
    // Every value goes through a file, so that the page's payloads are
    // read exactly as `send`'s `TYPE:NAME=@PATH` arguments are (and a
    // literal starting with `@` is never taken for a path).
    let io = |e: std::io::Error| (StatusCode::INTERNAL_SERVER_ERROR, "inspector.io", e.to_string());
    let scratch = tempfile::Builder::new().prefix("send-").tempdir_in(state.files.path());
    let scratch = scratch.map_err(io)?;
    let mut used_files = Vec::new();
    let mut outgoing = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = |key: &str| item.get(key).and_then(Value::as_str);
        let type_name = field("type").ok_or_else(|| bad(format!("payload {i} has no type")))?;
        let name = field("name").filter(|n| !n.is_empty()).unwrap_or("payload");
        if PayloadType::known(type_name).is_none() {
            return Err(bad(format!(
                "payload {name:?}: unknown type {type_name:?} (one of {})",
                payload_arg::TYPES
            )));
        }
        let path = match (item.get("value"), field("file")) {
            (Some(value), None) => {
                let bytes = match value {
                    Value::String(s) => s.clone().into_bytes(),
                    // A dictionary may come as JSON itself.
                    other => other.to_string().into_bytes(),
                };
                let path = scratch.path().join(format!("{i}.value"));
                std::fs::write(&path, bytes).map_err(io)?;
                path
            }
            (None, Some(file)) => {
                let path = uploaded(state, file)
                    .ok_or_else(|| bad(format!("payload {name:?}: no uploaded file {file:?}")))?;
                used_files.push(path.clone());
                path
            }
            _ => return Err(bad(format!("payload {name:?} needs a value or a file, not both"))),
        };
        let value = format!("@{}", path.display());
        let payload = payload_arg::outgoing_from_parts(type_name, name, &value)
            .context(exit::BadInput)
            .map_err(|e| (StatusCode::BAD_REQUEST, "inspector.bad_payload", crate::one_line(&e)))?;
        outgoing.push(payload);
    }
    let mut options = SendOptions::new()
        .with_msg_purpose(text("msg_purpose").unwrap_or(natsbridge::envelope::DEFAULT_MSG_PURPOSE))
        .with_sender_name(text("sender_name").unwrap_or(natsbridge::envelope::DEFAULT_SENDER_NAME))
        .with_receiver_name(text("receiver_name").unwrap_or_default())
        .with_reply_to(text("reply_to").unwrap_or_default())
        .with_reply_to_msg_id(text("reply_to_msg_id").unwrap_or_default())
        .with_broker_url(state.send.broker_url.clone())
        .with_size_threshold(state.send.threshold);
    options.correlation_id = text("correlation_id").map(String::from);
    let sent = async {
        let sent = state.bridge.smartsend_files(&subject, outgoing, options).await?;
        state.bridge.flush().await?;
        sent.envelope()
    }
    .await;
    for dir in used_files.iter().filter_map(|path| path.parent()) {
        let _ = std::fs::remove_dir_all(dir);
    }
    let envelope = sent.map_err(|e| {
        let status = if exit::for_kind(e.kind()) == exit::BAD_INPUT {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::BAD_GATEWAY
        };
        tracing::info!(error = %e, "a send from the page failed");
        (status, "inspector.send", format!("{} ({})", e, report::kind_name(e.kind())))
    })?;
    tracing::info!(subject = %subject, msg_id = %envelope.msg_id, "sent from the page");
    Ok(json!({
        "subject": subject,
        "msg_id": envelope.msg_id,
        "correlation_id": envelope.correlation_id,
        "payloads": envelope.payloads.iter().map(|p| json!({
            "dataname": p.dataname,
            "payload_type": p.payload_type.as_str(),
            "transport": p.transport().as_str(),
            "size": p.size(),
        })).collect::<Vec<_>>(),
    }))
}

/// The path of a file `/api/files` stored, from its id (`N/NAME`), if it
/// is one.
fn uploaded(state: &State, id: &str) -> Option<PathBuf> {
    let (number, name) = id.split_once('/')?;
    let valid_name = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_alphanumeric() || "._-".contains(c));
    if number.parse::<u64>().is_err() || !valid_name {
        return None;
    }
    let path = state.files.path().join(number).join(name);
    path.is_file().then_some(path)
}
