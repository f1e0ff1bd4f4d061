//! Plik's upload routes: `POST /upload` and `GET`/`HEAD
//! /file/{uploadId}/{fileId}/{fileName}` (`POST /file/...` is in
//! [`add_file`](super::add_file)).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use super::reply::{
    NAME_TOO_LONG, OnComplete, Step, closing, disk_error, fail, file_body, human_bytes,
    internal_error, json_reply, octet_stream, refuse, shown, text,
};
use crate::disk;
use crate::store::{FileMeta, State as Store, Status, Upload, random_id, valid_id};

/// The largest JSON body `POST /upload` reads.
pub(crate) const MAX_UPLOAD_JSON: usize = 1 << 20;

/// Refuses a request for an upload that does not exist or has expired. An
/// expired upload is removed on the spot.
pub(super) fn check_upload(state: &Arc<Store>, upload_id: &str) -> Step<()> {
    let not_found =
        || fail(StatusCode::NOT_FOUND, format!("upload {} not found", shown(upload_id)));
    if !valid_id(upload_id) {
        return not_found();
    }
    let expired = match state.uploads().get(upload_id) {
        None => return not_found(),
        Some(u) => u.expired(state.now()),
    };
    if expired {
        state.expire_later(upload_id);
        return fail(StatusCode::NOT_FOUND, format!("upload {upload_id} has expired"));
    }
    Ok(())
}

pub(super) fn file_object(id: &str, meta: &FileMeta) -> Value {
    json!({
        "id": id,
        "fileName": meta.name,
        "fileSize": meta.size,
        "fileMd5": meta.md5,
        "fileType": "application/octet-stream",
        "status": meta.status.as_str(),
        "reference": "",
    })
}

/// A key of a JSON request object, matched as Plik's Go decoder
/// (`encoding/json`) matches struct fields: the exact name, else any
/// spelling that differs only in case (`{"OneShot": true}` works on Plik).
fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    let map = object.as_object()?;
    map.get(name).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// The TTL an upload asks for, as Plik answers it (seconds, -1: infinite),
/// and when it expires; or the refusal.
fn ttl_of(state: &Store, params: &Value) -> Step<(i64, Option<SystemTime>)> {
    let config = &state.config;
    let ttl = field(params, "ttl").and_then(Value::as_i64).unwrap_or(0);
    let (secs, lasts) = match ttl {
        0 => (config.default_ttl.as_secs_f64().ceil() as i64, Some(config.default_ttl)),
        t if t < 0 => {
            if let Some(max) = config.max_ttl {
                let message = "cannot set infinite TTL (maximum allowed is :";
                return fail(StatusCode::BAD_REQUEST, format!("{message} {})", max.as_secs()));
            }
            (-1, None)
        }
        t => {
            if let Some(max) = config.max_ttl
                && t as u64 > max.as_secs()
            {
                let message = format!("invalid TTL. (maximum allowed is : {})", max.as_secs());
                return fail(StatusCode::BAD_REQUEST, message);
            }
            (t, Some(Duration::from_secs(t as u64)))
        }
    };
    Ok((secs, lasts.and_then(|d| state.expiry(d))))
}

/// The files an upload declares at creation, each `missing`.
fn declared_files(state: &Store, params: &Value) -> Step<HashMap<String, FileMeta>> {
    let max = state.config.max_file_size;
    // Plik takes an array; its older versions a map.
    let declared: Vec<&Value> = match field(params, "files") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Object(m)) => m.values().collect(),
        _ => Vec::new(),
    };
    let mut files = HashMap::new();
    for f in declared {
        let name = field(f, "fileName").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            return fail(StatusCode::BAD_REQUEST, "missing file name");
        }
        if name.len() > 1024 {
            return fail(StatusCode::BAD_REQUEST, NAME_TOO_LONG);
        }
        let size = field(f, "fileSize").and_then(Value::as_u64).unwrap_or(0);
        if size > max {
            let (size, max) = (human_bytes(size), human_bytes(max));
            let message = format!("file is too big ({size}), maximum file size is {max}");
            return fail(StatusCode::BAD_REQUEST, message);
        }
        let (name, status, md5) = (name.to_owned(), Status::Missing, String::new());
        files.insert(random_id(16), FileMeta { name, status, size, md5, declared: true });
    }
    Ok(files)
}

/// `POST /upload`, its body bounded by axum's `DefaultBodyLimit`
/// ([`MAX_UPLOAD_JSON`], set on the route).
pub(super) async fn create_upload(
    State(state): State<Arc<Store>>,
    body: Result<Bytes, BytesRejection>,
) -> Step {
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let message = format!("request body too large (limit is {MAX_UPLOAD_JSON} bytes)");
            return refuse(closing(text(StatusCode::PAYLOAD_TOO_LARGE, message)));
        }
        Err(_) => return fail(StatusCode::BAD_REQUEST, "unable to read request body"),
    };
    let params = match serde_json::from_slice(&body) {
        _ if body.iter().all(u8::is_ascii_whitespace) => json!({}),
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) => {
            let message = "unable to deserialize request body : not a JSON upload object";
            return fail(StatusCode::BAD_REQUEST, message);
        }
    };
    let one_shot = field(&params, "oneShot").and_then(Value::as_bool).unwrap_or(false);
    let (ttl, expires) = ttl_of(&state, &params)?;
    let files = declared_files(&state, &params)?;

    let id = random_id(16);
    let token = random_id(32);
    let files_json: Vec<Value> = files.iter().map(|(fid, m)| file_object(fid, m)).collect();
    let upload = Upload { token: token.clone(), one_shot, ttl, expires, files };
    let keep = upload.worth_keeping();
    state.uploads().insert(id.clone(), upload);
    // Only an upload that declares files has something to keep yet.
    if keep && let Err(e) = state.persist(&id).await {
        state.uploads().remove(&id);
        state.remove_upload_dir(&id).await;
        return refuse(disk_error("writing an upload record", &e));
    }
    tracing::info!(upload = %id, one_shot, ttl, declared = files_json.len(), "file server: upload created");
    let mut reply = json!({"id": id, "uploadToken": token, "oneShot": one_shot, "ttl": ttl});
    reply["files"] = Value::Array(files_json);
    Ok(json_reply(&reply))
}

/// `GET` and `HEAD /file/{uploadId}/{fileId}/{fileName}`.
pub(super) async fn get_file(
    State(state): State<Arc<Store>>,
    method: Method,
    Path((upload_id, file_id, name)): Path<(String, String, String)>,
) -> Step {
    let (upload_id, file_id) = (upload_id.as_str(), file_id.as_str());
    check_upload(&state, upload_id)?;
    let get = method == Method::GET;
    let (meta, one_shot) = {
        let mut uploads = state.uploads();
        let upload = upload_mut(&mut uploads, upload_id)?;
        let one_shot = upload.one_shot;
        let file = declared_file(upload, file_id, &name)?;
        if file.status != Status::Uploaded {
            let (name, status) = (shown(&file.name), file.status.as_str());
            let message = format!("file {name} ({file_id}) is not available : {status}");
            return fail(StatusCode::NOT_FOUND, message);
        }
        if get && one_shot {
            file.status = Status::Downloading;
        }
        (file.clone(), one_shot)
    };
    let sent = get.then(|| Sent {
        state: state.clone(),
        upload_id: upload_id.to_owned(),
        file_id: file_id.to_owned(),
        consume: one_shot,
    });

    let path = state.file_path(upload_id, file_id);
    let body = if get {
        match disk::open(state.root(), &path).await {
            Ok(file) => {
                let done = sent.map(|mut s| Box::new(move || s.complete()) as OnComplete);
                file_body(file, meta.size, done).await
            }
            // `sent` is dropped here, which puts a one-shot file back.
            Err(e) => return refuse(internal_error("opening a stored file", &e)),
        }
    } else {
        Body::empty()
    };
    let name: String =
        meta.name.chars().map(|c| if c == '"' || c.is_control() { '_' } else { c }).collect();
    let disposition = HeaderValue::from_str(&format!("filename=\"{name}\"")).ok();
    let no_cache = [
        (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
        (header::PRAGMA, "no-cache"),
        (header::EXPIRES, "0"),
    ];
    let disposition = disposition.map(|v| [(header::CONTENT_DISPOSITION, v)]);
    Ok((one_shot.then_some(no_cache), disposition, octet_stream(body, meta.size)).into_response())
}

/// Upload `upload_id`, which a check found a moment ago.
pub(super) fn upload_mut<'a>(
    uploads: &'a mut HashMap<String, Upload>,
    upload_id: &str,
) -> Step<&'a mut Upload> {
    let message = || format!("upload {upload_id} not found");
    uploads.get_mut(upload_id).map_or_else(|| fail(StatusCode::NOT_FOUND, message()), Ok)
}

/// The file `file_id` of `upload`, which the URL names `name`.
pub(super) fn declared_file<'a>(
    upload: &'a mut Upload,
    file_id: &str,
    name: &str,
) -> Step<&'a mut FileMeta> {
    let Some(file) = upload.files.get_mut(file_id).filter(|_| valid_id(file_id)) else {
        return fail(StatusCode::NOT_FOUND, format!("file {} not found", shown(file_id)));
    };
    if file.name != name {
        return fail(StatusCode::BAD_REQUEST, "invalid file name");
    }
    Ok(file)
}

/// A GET's file being sent: logged once every byte is out, and, for a
/// one-shot file, consumed then; a one-shot file is put back if the GET
/// ends early.
struct Sent {
    state: Arc<Store>,
    upload_id: String,
    file_id: String,
    /// A one-shot file not consumed yet: put back when dropped.
    consume: bool,
}

impl Sent {
    fn complete(&mut self) {
        let (upload, file) = (&self.upload_id, &self.file_id);
        tracing::info!(upload = %upload, file = %file, "file server: file downloaded");
        if !std::mem::take(&mut self.consume) {
            return;
        }
        if let Some(f) = self.state.uploads().get_mut(upload).and_then(|u| u.files.get_mut(file)) {
            f.status = Status::Removed;
        }
        tracing::info!(upload = %upload, file = %file, "file server: one-shot file consumed");
        let state = self.state.clone();
        let (upload, file) = (upload.clone(), file.clone());
        tokio::spawn(async move {
            let _ = disk::remove_file(state.root(), &state.file_path(&upload, &file)).await;
            if let Err(e) = state.persist(&upload).await {
                tracing::warn!(upload = %upload, error = %e, "file server: could not write an upload record");
            }
        });
    }
}

impl Drop for Sent {
    fn drop(&mut self) {
        if !self.consume {
            return;
        }
        let mut uploads = self.state.uploads();
        if let Some(f) =
            uploads.get_mut(&self.upload_id).and_then(|u| u.files.get_mut(&self.file_id))
            && f.status == Status::Downloading
        {
            f.status = Status::Uploaded;
        }
    }
}
