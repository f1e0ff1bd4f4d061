//! `POST /file/{uploadId}` and `POST /file/{uploadId}/{fileId}/{fileName}`:
//! a file added to an upload, in its steps: the checks (upload, token,
//! form), reading the multipart part, writing it with its size and MD5,
//! and registering it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::{StatusCode, header};
use md5::{Digest, Md5};

use super::part_heads::{PartHeads, Watch};
use super::plik::{file_object, refuse_upload};
use super::reply::{
    DRAIN_LIMIT, Refusal, Refused, closing, disk_error, internal_error, json_reply, refuse, shown,
    text, too_big,
};
use crate::disk;
use crate::store::{FileMeta, State as Store, Status, random_id, same_secret, valid_id};
use natsbridge_claimcheck::fileio::FileWriter;

/// A step's refusal: the answer to send.
type Step<T> = Result<T, Refused>;

/// `POST /file/{uploadId}`: a new file.
pub(super) async fn add_file(
    State(state): State<Arc<Store>>,
    Path(upload_id): Path<String>,
    request: Request,
) -> Response {
    steps(&state, request, &upload_id, None).await.unwrap_or_else(|refused| *refused)
}

/// `POST /file/{uploadId}/{fileId}/{fileName}`: a file declared when the
/// upload was created.
pub(super) async fn add_declared_file(
    State(state): State<Arc<Store>>,
    Path((upload_id, file_id, name)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    let declared = Some((file_id.as_str(), name.as_str()));
    steps(&state, request, &upload_id, declared).await.unwrap_or_else(|refused| *refused)
}

async fn steps(
    state: &Arc<Store>,
    request: Request,
    upload_id: &str,
    declared: Option<(&str, &str)>,
) -> Step<Response> {
    check_upload_and_token(state, &request, upload_id)?;
    let boundary = boundary(&request)?;
    let (mut part, file_name) = file_part(request, boundary).await?;
    let file_id = register(state, upload_id, declared, &file_name)?;
    let dir = state.upload_dir(upload_id);
    let mut guard = UploadGuard {
        state,
        upload_id: upload_id.to_owned(),
        file_id: file_id.clone(),
        declared: declared.is_some(),
        temp: dir.join(format!("{file_id}.part")),
        armed: true,
    };
    let (size, md5) = match write_part(state, &mut part, &dir, &guard.temp).await {
        Ok(written) => written,
        Err(refusal) => return refuse(refused(state, refusal, &mut part).await),
    };
    store(state, &mut guard, size, md5).await
}

/// The upload exists, has not expired, and the request carries its token.
fn check_upload_and_token(state: &Arc<Store>, request: &Request, upload_id: &str) -> Step<()> {
    if let Some(refused) = refuse_upload(state, upload_id) {
        return refuse(refused);
    }
    let given = request.headers().get("x-uploadtoken").and_then(|v| v.to_str().ok()).unwrap_or("");
    let allowed = state
        .uploads()
        .get(upload_id)
        .is_some_and(|u| !given.is_empty() && same_secret(given, &u.token));
    if !allowed {
        return refuse(text(
            StatusCode::FORBIDDEN,
            "you are not allowed to add file to this upload",
        ));
    }
    Ok(())
}

/// The multipart boundary of the request's `Content-Type`.
fn boundary(request: &Request) -> Step<String> {
    match request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(multer::parse_boundary)
    {
        Some(Ok(b)) => Ok(b),
        Some(Err(e)) => {
            refuse(text(StatusCode::BAD_REQUEST, format!("invalid multipart form : {e}")))
        }
        None => {
            refuse(text(StatusCode::BAD_REQUEST, "invalid multipart form : no multipart boundary"))
        }
    }
}

/// The form's part named `file`, and its file name as Go's `FileName()`
/// gives it (the last path element only).
async fn file_part(request: Request, boundary: String) -> Step<(multer::Field<'static>, String)> {
    let watch = Arc::new(Watch::default());
    let body = PartHeads::new(request.into_body().into_data_stream(), &boundary, watch.clone());
    let mut multipart = multer::Multipart::new(body, boundary);
    let part = loop {
        match multipart.next_field().await {
            Ok(Some(f)) if f.name() == Some("file") => break f,
            Ok(Some(_)) => continue,
            Ok(None) => {
                return refuse(text(StatusCode::BAD_REQUEST, "missing file from multipart form"));
            }
            Err(_) if watch.exceeded.load(Ordering::Relaxed) => {
                // The rest is not read: the connection is closed after the answer.
                return refuse(closing(text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "invalid multipart form : {}",
                        super::part_heads::FormError::HeadTooLarge
                    ),
                )));
            }
            Err(e) => {
                return refuse(text(
                    StatusCode::BAD_REQUEST,
                    format!("invalid multipart form : {e}"),
                ));
            }
        }
    };
    // The file's data begins: nothing more is buffered before it.
    watch.found.store(true, Ordering::Relaxed);
    let file_name = part
        .file_name()
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or("").to_owned())
        .filter(|n| !n.is_empty() && n != "." && n != "..");
    let Some(file_name) = file_name else {
        return refuse(text(StatusCode::BAD_REQUEST, "missing file name from multipart form"));
    };
    if file_name.len() > 1024 {
        return refuse(text(
            StatusCode::BAD_REQUEST,
            "file name is too long, maximum length is 1024 characters",
        ));
    }
    Ok((part, file_name))
}

/// Registers the file as `uploading`: a declared one (its id and name must
/// match, and it must still be missing), or a new one. Its id.
fn register(
    state: &Store,
    upload_id: &str,
    declared: Option<(&str, &str)>,
    file_name: &str,
) -> Step<String> {
    let mut uploads = state.uploads();
    let Some(upload) = uploads.get_mut(upload_id) else {
        return refuse(text(StatusCode::NOT_FOUND, format!("upload {upload_id} not found")));
    };
    let Some((file_id, url_name)) = declared else {
        let file_id = random_id(16);
        let meta = FileMeta {
            name: file_name.to_owned(),
            status: Status::Uploading,
            size: 0,
            md5: String::new(),
            declared: false,
        };
        upload.files.insert(file_id.clone(), meta);
        return Ok(file_id);
    };
    let Some(f) = upload.files.get_mut(file_id).filter(|_| valid_id(file_id)) else {
        return refuse(text(StatusCode::NOT_FOUND, format!("file {} not found", shown(file_id))));
    };
    if f.name != file_name || f.name != url_name {
        return refuse(text(StatusCode::BAD_REQUEST, "invalid file name"));
    }
    if f.status != Status::Missing {
        return refuse(text(
            StatusCode::BAD_REQUEST,
            format!("invalid file status {}, expected missing", f.status.as_str()),
        ));
    }
    f.status = Status::Uploading;
    Ok(file_id.to_owned())
}

/// Streams the part to `temp` in `dir`, counting and hashing as it goes:
/// its size and MD5 (empty when MD5 is off).
async fn write_part(
    state: &Store,
    part: &mut multer::Field<'static>,
    dir: &std::path::Path,
    temp: &std::path::Path,
) -> Result<(u64, String), Refusal> {
    let max = state.config.max_file_size;
    disk::create_dir(state.root(), dir).await.map_err(Refusal::Disk)?;
    let file = disk::create_new(state.root(), temp).await.map_err(Refusal::Disk)?;
    let mut writer = FileWriter::new(file);
    let mut md5 = state.config.md5.then(Md5::new);
    let mut size = 0u64;
    loop {
        match part.chunk().await {
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
    Ok((size, md5.map(|h| hex_lower(&h.finalize())).unwrap_or_default()))
}

/// The answer to a part that did not reach the disk. A part over the size
/// limit is drained (up to [`DRAIN_LIMIT`]) first, so the client reads the
/// answer rather than a reset connection.
async fn refused(state: &Store, refusal: Refusal, part: &mut multer::Field<'static>) -> Response {
    match refusal {
        Refusal::TooBig => {
            let mut drained = 0u64;
            while drained < DRAIN_LIMIT {
                match part.chunk().await {
                    Ok(Some(c)) => drained += c.len() as u64,
                    _ => break,
                }
            }
            too_big(StatusCode::BAD_REQUEST, state.config.max_file_size)
        }
        Refusal::Body(e) => {
            tracing::debug!(error = %e, "file server: upload body failed");
            text(StatusCode::BAD_REQUEST, format!("unable to read data from request body : {e}"))
        }
        Refusal::Disk(e) => disk_error("writing an upload", &e),
    }
}

/// Moves the written part into place, marks the file `uploaded` and writes
/// the upload's record; answers the file object.
async fn store(
    state: &Store,
    guard: &mut UploadGuard<'_>,
    size: u64,
    md5: String,
) -> Step<Response> {
    let (upload_id, file_id) = (guard.upload_id.clone(), guard.file_id.clone());
    let final_path = state.file_path(&upload_id, &file_id);
    if let Err(e) = tokio::fs::rename(&guard.temp, &final_path).await {
        return refuse(internal_error("storing an upload", &e));
    }
    // From here on, a failure removes the stored file.
    guard.temp = final_path;
    let meta = {
        let mut uploads = state.uploads();
        let Some(f) = uploads.get_mut(&upload_id).and_then(|u| u.files.get_mut(&file_id)) else {
            // Expired while uploading: the sweeper owns the directory now.
            let _ = std::fs::remove_file(&guard.temp);
            guard.armed = false;
            return refuse(text(StatusCode::NOT_FOUND, format!("upload {upload_id} has expired")));
        };
        f.status = Status::Uploaded;
        f.size = size;
        f.md5 = md5;
        f.clone()
    };
    if let Err(e) = state.persist(&upload_id).await {
        return refuse(disk_error("writing an upload record", &e));
    }
    guard.armed = false;
    tracing::info!(upload = %upload_id, file = %file_id, name = %meta.name, size, "file server: file uploaded");
    Ok(json_reply(&file_object(&file_id, &meta)))
}

/// Undoes a file's registration if its upload does not complete (refused,
/// failed, or the connection dropped and the request was abandoned), and
/// removes what it wrote.
struct UploadGuard<'a> {
    state: &'a Store,
    upload_id: String,
    file_id: String,
    declared: bool,
    /// The part being written, or, once moved into place, the stored file.
    temp: PathBuf,
    armed: bool,
}

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let _ = std::fs::remove_file(&self.temp);
        let mut uploads = self.state.uploads();
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

/// Lower-case hex of `bytes`, as Plik writes `fileMd5`.
fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
