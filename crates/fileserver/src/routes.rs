//! The file server's request handlers.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use md5::{Digest, Md5};
use serde_json::{Value, json};

use crate::store::{
    FileMeta, State, Status, Upload, random_id, remove_dir, same_secret, valid_id, valid_put_key,
};
use natsbridge_claimcheck::fileio::{FileWriter, read_stream};

pub(crate) type Body = UnsyncBoxBody<Bytes, io::Error>;

/// How much of a refused upload is read (and thrown away) before answering,
/// so the client, still sending, gets the error text rather than a reset
/// connection. Past this the connection is simply closed.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

pub(crate) async fn route(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let origin = state.cors.allowed_origin(request.headers());
    if request.method() == Method::OPTIONS {
        return match origin {
            Some(origin) => state.cors.preflight(origin, request.headers()),
            None => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        };
    }
    let mut response = route_api(state, request).await;
    if let Some(origin) = origin {
        crate::cors::Cors::decorate(origin, &mut response);
    }
    response
}

async fn route_api(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();
    let method = request.method().clone();
    tracing::debug!(%method, path = %path, "file server request");
    match (&method, segments.as_slice()) {
        (&Method::POST, ["upload"]) => create_upload(&state, request).await,
        (&Method::POST, ["file", upload_id]) => add_file(&state, request, upload_id, None).await,
        (&Method::POST, ["file", upload_id, file_id, name]) => {
            add_file(&state, request, upload_id, Some((file_id, name))).await
        }
        (&Method::GET | &Method::HEAD, ["file", upload_id, file_id, name]) => {
            get_file(&state, &method, upload_id, file_id, name).await
        }
        (&Method::PUT, ["put", ..]) => {
            put(&state, request, &path["/put/".len().min(path.len())..]).await
        }
        (&Method::GET | &Method::HEAD, ["put", ..]) => {
            get_put(&state, &method, &path["/put/".len().min(path.len())..]).await
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// A plain-text error, as Go's `http.Error` writes it.
fn text(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let mut body = message.into();
    body.push('\n');
    let mut response =
        Response::new(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed_unsync());
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

fn json_reply(value: &Value) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(value.to_string())).map_err(|e| match e {}).boxed_unsync(),
    );
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn internal_error(what: &str, error: &dyn std::fmt::Display) -> Response<Body> {
    tracing::warn!(error = %error, "file server: {what}");
    text(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
}

/// A failed write of an upload: a full disk (or a file-size or quota limit)
/// is `507 Insufficient Storage` with a text that says so, anything else a
/// plain internal error. The partial file is removed by the caller's guard.
fn disk_error(what: &str, error: &std::io::Error) -> Response<Body> {
    use std::io::ErrorKind as Io;
    if matches!(error.kind(), Io::StorageFull | Io::QuotaExceeded | Io::FileTooLarge) {
        tracing::warn!(error = %error, "file server: {what}: out of space");
        return text(StatusCode::INSUFFICIENT_STORAGE, "the file server is out of disk space");
    }
    internal_error(what, error)
}

/// Caller-controlled text echoed in an error: short and printable.
fn shown(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// go-humanize's `Bytes`, which Plik's size errors use.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 10 {
        return format!("{n} B");
    }
    let e = ((n as f64).log10() / 3.0).floor() as usize;
    let e = e.min(UNITS.len() - 1);
    let v = n as f64 / 1000f64.powi(e as i32);
    if e == 0 {
        format!("{n} B")
    } else if v < 10.0 {
        format!("{v:.1} {}", UNITS[e])
    } else {
        format!("{v:.0} {}", UNITS[e])
    }
}

/// The answer refusing a request for an upload that does not exist or has
/// expired, if so. An expired upload is removed on the spot.
fn refuse_upload(state: &State, upload_id: &str) -> Option<Response<Body>> {
    let not_found =
        || text(StatusCode::NOT_FOUND, format!("upload {} not found", shown(upload_id)));
    if !valid_id(upload_id) {
        return Some(not_found());
    }
    let mut uploads = state.uploads.lock().unwrap();
    match uploads.get(upload_id) {
        None => Some(not_found()),
        Some(u) if u.expired(Instant::now()) => {
            uploads.remove(upload_id);
            let dir = state.upload_dir(upload_id);
            tokio::spawn(async move { remove_dir(&dir).await });
            Some(text(StatusCode::NOT_FOUND, format!("upload {upload_id} has expired")))
        }
        Some(_) => None,
    }
}

fn file_object(id: &str, meta: &FileMeta) -> Value {
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

async fn create_upload(state: &State, request: Request<Incoming>) -> Response<Body> {
    let body = match Limited::new(request.into_body(), 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return text(StatusCode::BAD_REQUEST, "unable to read request body"),
    };
    let params: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) | Err(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "unable to deserialize request body : not a JSON upload object",
                );
            }
        }
    };
    let config = state.config;
    let one_shot = field(&params, "oneShot").and_then(Value::as_bool).unwrap_or(false);
    let ttl = field(&params, "ttl").and_then(Value::as_i64).unwrap_or(0);
    let (ttl_secs, expires) = match ttl {
        0 => (config.default_ttl.as_secs_f64().ceil() as i64, state.expiry(config.default_ttl)),
        t if t < 0 => {
            if let Some(max) = config.max_ttl {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("cannot set infinite TTL (maximum allowed is : {})", max.as_secs()),
                );
            }
            (-1, None)
        }
        t => {
            if let Some(max) = config.max_ttl
                && t as u64 > max.as_secs()
            {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("invalid TTL. (maximum allowed is : {})", max.as_secs()),
                );
            }
            (t, state.expiry(Duration::from_secs(t as u64)))
        }
    };

    // Declared files: Plik takes an array; its older versions a map.
    let declared: Vec<&Value> = match field(&params, "files") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Object(m)) => m.values().collect(),
        _ => Vec::new(),
    };
    let mut files = std::collections::HashMap::new();
    for f in declared {
        let name = field(f, "fileName").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            return text(StatusCode::BAD_REQUEST, "missing file name");
        }
        if name.len() > 1024 {
            return text(
                StatusCode::BAD_REQUEST,
                "file name is too long, maximum length is 1024 characters",
            );
        }
        let size = field(f, "fileSize").and_then(Value::as_u64).unwrap_or(0);
        if size > config.max_file_size {
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "file is too big ({}), maximum file size is {}",
                    human_bytes(size),
                    human_bytes(config.max_file_size)
                ),
            );
        }
        files.insert(
            random_id(16),
            FileMeta { name: name.to_owned(), status: Status::Missing, size, md5: String::new() },
        );
    }

    let id = random_id(16);
    let token = random_id(32);
    let files_json: Vec<Value> = files.iter().map(|(fid, m)| file_object(fid, m)).collect();
    state
        .uploads
        .lock()
        .unwrap()
        .insert(id.clone(), Upload { token: token.clone(), one_shot, expires, files });
    json_reply(&json!({
        "id": id,
        "uploadToken": token,
        "oneShot": one_shot,
        "ttl": ttl_secs,
        "files": files_json,
    }))
}

/// Undoes a file's registration if its upload does not complete (refused,
/// failed, or the connection dropped and the request was abandoned).
struct UploadGuard<'a> {
    state: &'a State,
    upload_id: String,
    file_id: String,
    declared: bool,
    temp: PathBuf,
    armed: bool,
}

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let _ = std::fs::remove_file(&self.temp);
        let mut uploads = self.state.uploads.lock().unwrap();
        if let Some(upload) = uploads.get_mut(&self.upload_id) {
            if self.declared {
                if let Some(f) = upload.files.get_mut(&self.file_id) {
                    f.status = Status::Missing;
                }
            } else {
                upload.files.remove(&self.file_id);
            }
        }
    }
}

enum Refusal {
    TooBig,
    Body(String),
    Disk(io::Error),
}

async fn add_file(
    state: &State,
    request: Request<Incoming>,
    upload_id: &str,
    declared: Option<(&str, &str)>,
) -> Response<Body> {
    if let Some(r) = refuse_upload(state, upload_id) {
        return r;
    }
    let given = request.headers().get("x-uploadtoken").and_then(|v| v.to_str().ok()).unwrap_or("");
    let allowed = {
        let uploads = state.uploads.lock().unwrap();
        uploads.get(upload_id).is_some_and(|u| !given.is_empty() && same_secret(given, &u.token))
    };
    if !allowed {
        return text(StatusCode::FORBIDDEN, "you are not allowed to add file to this upload");
    }
    let boundary = match request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(multer::parse_boundary)
    {
        Some(Ok(b)) => b,
        Some(Err(e)) => {
            return text(StatusCode::BAD_REQUEST, format!("invalid multipart form : {e}"));
        }
        None => {
            return text(StatusCode::BAD_REQUEST, "invalid multipart form : no multipart boundary");
        }
    };

    let mut multipart = multer::Multipart::new(request.into_body().into_data_stream(), boundary);
    let mut field = loop {
        match multipart.next_field().await {
            Ok(Some(f)) if f.name() == Some("file") => break f,
            Ok(Some(_)) => continue,
            Ok(None) => return text(StatusCode::BAD_REQUEST, "missing file from multipart form"),
            Err(e) => {
                return text(StatusCode::BAD_REQUEST, format!("invalid multipart form : {e}"));
            }
        }
    };
    // Like Go's `FileName()`: the last path element only.
    let file_name = field
        .file_name()
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or("").to_owned())
        .filter(|n| !n.is_empty() && n != "." && n != "..");
    let Some(file_name) = file_name else {
        return text(StatusCode::BAD_REQUEST, "missing file name from multipart form");
    };
    if file_name.len() > 1024 {
        return text(
            StatusCode::BAD_REQUEST,
            "file name is too long, maximum length is 1024 characters",
        );
    }

    // Register the file as uploading.
    let file_id = {
        let mut uploads = state.uploads.lock().unwrap();
        let Some(upload) = uploads.get_mut(upload_id) else {
            return text(StatusCode::NOT_FOUND, format!("upload {upload_id} not found"));
        };
        match declared {
            Some((file_id, url_name)) => {
                let url_name = percent_encoding::percent_decode_str(url_name).decode_utf8_lossy();
                let Some(f) = upload.files.get_mut(file_id).filter(|_| valid_id(file_id)) else {
                    return text(
                        StatusCode::NOT_FOUND,
                        format!("file {} not found", shown(file_id)),
                    );
                };
                if f.name != file_name || f.name != url_name {
                    return text(StatusCode::BAD_REQUEST, "invalid file name");
                }
                if f.status != Status::Missing {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("invalid file status {}, expected missing", f.status.as_str()),
                    );
                }
                f.status = Status::Uploading;
                file_id.to_owned()
            }
            None => {
                let file_id = random_id(16);
                upload.files.insert(
                    file_id.clone(),
                    FileMeta {
                        name: file_name.clone(),
                        status: Status::Uploading,
                        size: 0,
                        md5: String::new(),
                    },
                );
                file_id
            }
        }
    };
    let dir = state.upload_dir(upload_id);
    let final_path = state.file_path(upload_id, &file_id);
    let mut guard = UploadGuard {
        state,
        upload_id: upload_id.to_owned(),
        file_id: file_id.clone(),
        declared: declared.is_some(),
        temp: dir.join(format!("{file_id}.part")),
        armed: true,
    };

    // Stream the part to disk, counting and hashing as it goes.
    let max = state.config.max_file_size;
    let copied: Result<(u64, String), Refusal> = async {
        tokio::fs::create_dir_all(&dir).await.map_err(Refusal::Disk)?;
        let mut writer = FileWriter::create(&guard.temp).await.map_err(Refusal::Disk)?;
        let mut md5 = state.config.md5.then(Md5::new);
        let mut size = 0u64;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    size += chunk.len() as u64;
                    if size > max {
                        return Err(Refusal::TooBig);
                    }
                    if let Some(h) = md5.as_mut() {
                        h.update(&chunk);
                    }
                    writer.write_bytes(chunk).await.map_err(Refusal::Disk)?;
                }
                Ok(None) => break,
                Err(e) => return Err(Refusal::Body(e.to_string())),
            }
        }
        writer.finish().await.map_err(Refusal::Disk)?;
        Ok((size, md5.map(|h| natsbridge_claimcheck::hex_lower(&h.finalize())).unwrap_or_default()))
    }
    .await;

    let (size, md5) = match copied {
        Ok(done) => done,
        Err(Refusal::TooBig) => {
            let mut drained = 0u64;
            while drained < DRAIN_LIMIT {
                match field.chunk().await {
                    Ok(Some(c)) => drained += c.len() as u64,
                    _ => break,
                }
            }
            drop(guard);
            return text(
                StatusCode::BAD_REQUEST,
                format!("file too big (limit is set to {})", human_bytes(max)),
            );
        }
        Err(Refusal::Body(e)) => {
            tracing::debug!(error = %e, "file server: upload body failed");
            drop(guard);
            return text(
                StatusCode::BAD_REQUEST,
                format!("unable to read data from request body : {e}"),
            );
        }
        Err(Refusal::Disk(e)) => {
            drop(guard);
            return disk_error("writing an upload", &e);
        }
    };
    if let Err(e) = tokio::fs::rename(&guard.temp, &final_path).await {
        drop(guard);
        return internal_error("storing an upload", &e);
    }
    let meta = {
        let mut uploads = state.uploads.lock().unwrap();
        let Some(f) = uploads.get_mut(upload_id).and_then(|u| u.files.get_mut(&file_id)) else {
            // Expired while uploading: the sweeper owns the directory now.
            let _ = std::fs::remove_file(&final_path);
            guard.armed = false;
            return text(StatusCode::NOT_FOUND, format!("upload {upload_id} has expired"));
        };
        f.status = Status::Uploaded;
        f.size = size;
        f.md5 = md5;
        f.clone()
    };
    guard.armed = false;
    json_reply(&file_object(&file_id, &meta))
}

async fn get_file(
    state: &Arc<State>,
    method: &Method,
    upload_id: &str,
    file_id: &str,
    raw_name: &str,
) -> Response<Body> {
    if let Some(r) = refuse_upload(state, upload_id) {
        return r;
    }
    let name = percent_encoding::percent_decode_str(raw_name).decode_utf8_lossy();
    let (meta, one_shot) = {
        let mut uploads = state.uploads.lock().unwrap();
        let Some(upload) = uploads.get_mut(upload_id) else {
            return text(StatusCode::NOT_FOUND, format!("upload {upload_id} not found"));
        };
        let one_shot = upload.one_shot;
        let Some(file) = upload.files.get_mut(file_id).filter(|_| valid_id(file_id)) else {
            return text(StatusCode::NOT_FOUND, format!("file {} not found", shown(file_id)));
        };
        if file.name != name {
            return text(StatusCode::BAD_REQUEST, "invalid file name");
        }
        if file.status != Status::Uploaded {
            return text(
                StatusCode::NOT_FOUND,
                format!(
                    "file {} ({file_id}) is not available : {}",
                    shown(&file.name),
                    file.status.as_str()
                ),
            );
        }
        if method == Method::GET && one_shot {
            file.status = Status::Downloading;
        }
        (file.clone(), one_shot)
    };
    let consume = (method == Method::GET && one_shot).then(|| OneShot {
        state: state.clone(),
        upload_id: upload_id.to_owned(),
        file_id: file_id.to_owned(),
        completed: false,
    });

    let path = state.file_path(upload_id, file_id);
    let body = if method == Method::HEAD {
        Empty::new().map_err(|e| match e {}).boxed_unsync()
    } else {
        match tokio::fs::File::open(&path).await {
            Ok(file) => file_body(file, meta.size, consume).await,
            // `consume` is dropped here, which puts the file back.
            Err(e) => return internal_error("opening a stored file", &e),
        }
    };
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    let disposition: String =
        meta.name.chars().map(|c| if c == '"' || c.is_control() { '_' } else { c }).collect();
    if let Ok(v) = HeaderValue::from_str(&format!("filename=\"{disposition}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if one_shot {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store, must-revalidate"),
        );
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        h.insert(header::EXPIRES, HeaderValue::from_static("0"));
    }
    response
}

/// Consumes a one-shot file once its GET has sent every byte; puts it back
/// if the GET ends early.
struct OneShot {
    state: Arc<State>,
    upload_id: String,
    file_id: String,
    completed: bool,
}

impl OneShot {
    fn complete(&mut self) {
        self.completed = true;
        let mut uploads = self.state.uploads.lock().unwrap();
        if let Some(f) =
            uploads.get_mut(&self.upload_id).and_then(|u| u.files.get_mut(&self.file_id))
        {
            f.status = Status::Removed;
        }
        drop(uploads);
        let path = self.state.file_path(&self.upload_id, &self.file_id);
        tokio::spawn(async move {
            let _ = tokio::fs::remove_file(path).await;
        });
    }
}

impl Drop for OneShot {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        let mut uploads = self.state.uploads.lock().unwrap();
        if let Some(f) =
            uploads.get_mut(&self.upload_id).and_then(|u| u.files.get_mut(&self.file_id))
            && f.status == Status::Downloading
        {
            f.status = Status::Uploaded;
        }
    }
}

/// A file streamed from disk, `size` bytes, in `CHUNK` pieces.
struct FileStream<S> {
    inner: S,
    remaining: u64,
    on_complete: Option<OneShot>,
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> Stream for FileStream<S> {
    type Item = io::Result<Frame<Bytes>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                if self.remaining == 0
                    && let Some(mut one_shot) = self.on_complete.take()
                {
                    one_shot.complete();
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) if self.remaining > 0 => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stored file is shorter than recorded",
            )))),
            Poll::Ready(None) => {
                // An empty file completes without a single chunk.
                if let Some(mut one_shot) = self.on_complete.take() {
                    one_shot.complete();
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

async fn file_body(file: tokio::fs::File, size: u64, on_complete: Option<OneShot>) -> Body {
    let stream = FileStream {
        inner: read_stream(file.into_std().await, size),
        remaining: size,
        on_complete,
    };
    StreamBody::new(stream).boxed_unsync()
}

async fn put(state: &State, request: Request<Incoming>, key: &str) -> Response<Body> {
    if !valid_put_key(key) {
        return text(StatusCode::BAD_REQUEST, "invalid key");
    }
    let max = state.config.max_file_size;
    let too_big = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("file too big (limit is set to {})", human_bytes(max)),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max.saturating_add(DRAIN_LIMIT)) {
        return too_big();
    }
    let temp = TempFile(state.put_temp_path());
    let mut body = request.into_body();
    let copied: Result<(), Refusal> = async {
        let mut writer = FileWriter::create(&temp.0).await.map_err(Refusal::Disk)?;
        let mut size = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Refusal::Body(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                size += data.len() as u64;
                if size > max {
                    return Err(Refusal::TooBig);
                }
                writer.write_bytes(data).await.map_err(Refusal::Disk)?;
            }
        }
        writer.finish().await.map_err(Refusal::Disk)
    }
    .await;
    match copied {
        Ok(()) => {}
        Err(Refusal::TooBig) => {
            let mut drained = 0u64;
            while drained < DRAIN_LIMIT {
                match body.frame().await {
                    Some(Ok(f)) => drained += f.data_ref().map_or(0, |d| d.len() as u64),
                    _ => break,
                }
            }
            return too_big();
        }
        Err(Refusal::Body(e)) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("unable to read data from request body : {e}"),
            );
        }
        Err(Refusal::Disk(e)) => return disk_error("writing a PUT", &e),
    }
    let path = state.put_path(key);
    if let Some(parent) = path.parent()
        && let Err(e) = tokio::fs::create_dir_all(parent).await
    {
        tracing::debug!(error = %e, "file server: PUT key conflicts");
        return text(StatusCode::CONFLICT, "key conflicts with an existing key");
    }
    if let Err(e) = tokio::fs::rename(&temp.0, &path).await {
        tracing::debug!(error = %e, "file server: PUT key conflicts");
        return text(StatusCode::CONFLICT, "key conflicts with an existing key");
    }
    std::mem::forget(temp);
    let expires = state.expiry(state.config.default_ttl);
    state.puts.lock().unwrap().insert(key.to_owned(), expires);
    text(StatusCode::CREATED, "created")
}

async fn get_put(state: &State, method: &Method, key: &str) -> Response<Body> {
    let not_found = || text(StatusCode::NOT_FOUND, "not found");
    if !valid_put_key(key) {
        return not_found();
    }
    let expired = {
        let mut puts = state.puts.lock().unwrap();
        match puts.get(key) {
            None => return not_found(),
            Some(e) if e.is_some_and(|e| e <= Instant::now()) => {
                puts.remove(key);
                true
            }
            Some(_) => false,
        }
    };
    let path = state.put_path(key);
    if expired {
        let _ = tokio::fs::remove_file(&path).await;
        return not_found();
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return not_found(),
    };
    let size = match file.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        _ => return not_found(),
    };
    let body = if method == Method::HEAD {
        Empty::new().map_err(|e| match e {}).boxed_unsync()
    } else {
        file_body(file, size, None).await
    };
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    response
}

/// A temporary file removed when dropped unless forgotten.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_read_like_plik() {
        assert_eq!(human_bytes(5), "5 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_000_000), "1.0 MB");
        assert_eq!(human_bytes(10 << 30), "11 GB");
        assert_eq!(human_bytes(1_500), "1.5 kB");
    }
}
