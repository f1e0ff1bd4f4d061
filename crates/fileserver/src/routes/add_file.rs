//! `POST /file/{uploadId}` and `POST /file/{uploadId}/{fileId}/{fileName}`:
//! a file added to an upload, in its steps: the checks (upload, token,
//! form), reading the multipart part, writing it with its size and MD5,
//! and registering it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, Request, State};
use http::{StatusCode, header};
use md5::{Digest, Md5};
use natsbridge_claimcheck::hex_lower;

use super::part_heads::{HEAD_TOO_LARGE, PartHeads, Watch};
use super::plik::{check_upload, declared_file, file_object, upload_mut};
use super::reply::{
    NAME_TOO_LONG, Refusal, Step, closing, disk_error, fail, internal_error, json_reply, refuse,
    refused, text, write_body,
};
use crate::disk;
use crate::store::{FileMeta, State as Store, Status, random_id, same_secret};

/// `POST /file/{uploadId}`: a new file.
pub(super) async fn add_file(
    State(state): State<Arc<Store>>,
    Path(upload_id): Path<String>,
    request: Request,
) -> Step {
    steps(&state, request, &upload_id, None).await
}

/// `POST /file/{uploadId}/{fileId}/{fileName}`: a file declared when the
/// upload was created.
pub(super) async fn add_declared_file(
    State(state): State<Arc<Store>>,
    Path((upload_id, file_id, name)): Path<(String, String, String)>,
    request: Request,
) -> Step {
    steps(&state, request, &upload_id, Some((&file_id, &name))).await
}

async fn steps(
    state: &Arc<Store>,
    request: Request,
    upload_id: &str,
    declared: Option<(&str, &str)>,
) -> Step {
    check_upload(state, upload_id)?;
    let given = request.headers().get("x-uploadtoken").and_then(|v| v.to_str().ok()).unwrap_or("");
    if given.is_empty()
        || !state.uploads().get(upload_id).is_some_and(|u| same_secret(given, &u.token))
    {
        return fail(StatusCode::FORBIDDEN, "you are not allowed to add file to this upload");
    }
    let (mut part, file_name) = file_part(request).await?;
    let file_id = register(state, upload_id, declared, &file_name)?;
    let dir = state.upload_dir(upload_id);
    let temp = dir.join(format!("{file_id}.part"));
    let (upload_id, declared) = (upload_id.to_owned(), declared.is_some());
    let mut guard = UploadGuard { state, upload_id, file_id, declared, temp, armed: true };
    match write_part(state, &mut part, &dir, &guard.temp).await {
        Ok((size, md5)) => store(state, &mut guard, size, md5).await,
        Err(refusal) => {
            let max = state.config.max_file_size;
            let what = "writing an upload";
            refuse(refused(refusal, &mut part, StatusCode::BAD_REQUEST, max, what).await)
        }
    }
}

/// The form's part named `file`, and its file name as Go's `FileName()`
/// gives it (the last path element only).
async fn file_part(request: Request) -> Step<(multer::Field<'static>, String)> {
    let invalid = |e: &dyn std::fmt::Display| {
        fail(StatusCode::BAD_REQUEST, format!("invalid multipart form : {e}"))
    };
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let boundary = match content_type.map(multer::parse_boundary) {
        Some(Ok(b)) => b,
        Some(Err(e)) => return invalid(&e),
        None => return invalid(&"no multipart boundary"),
    };
    let watch = Arc::new(Watch::default());
    let body = PartHeads::new(request.into_body().into_data_stream(), &boundary, watch.clone());
    let mut multipart = multer::Multipart::new(body, boundary);
    let part = loop {
        match multipart.next_field().await {
            Ok(Some(f)) if f.name() == Some("file") => break f,
            Ok(Some(_)) => continue,
            Ok(None) => {
                return fail(StatusCode::BAD_REQUEST, "missing file from multipart form");
            }
            // The rest is not read: the connection is closed after the answer.
            Err(_) if watch.exceeded.load(Ordering::Relaxed) => {
                let message = format!("invalid multipart form : {HEAD_TOO_LARGE}");
                return refuse(closing(text(StatusCode::BAD_REQUEST, message)));
            }
            Err(e) => return invalid(&e),
        }
    };
    // The file's data begins: nothing more is buffered before it.
    watch.found.store(true, Ordering::Relaxed);
    let file_name = part.file_name().and_then(|n| n.rsplit(['/', '\\']).next());
    let Some(file_name) = file_name.filter(|n| !n.is_empty() && *n != "." && *n != "..") else {
        return fail(StatusCode::BAD_REQUEST, "missing file name from multipart form");
    };
    if file_name.len() > 1024 {
        return fail(StatusCode::BAD_REQUEST, NAME_TOO_LONG);
    }
    let file_name = file_name.to_owned();
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
    let upload = upload_mut(&mut uploads, upload_id)?;
    let Some((file_id, url_name)) = declared else {
        let file_id = random_id(16);
        let (name, status) = (file_name.to_owned(), Status::Uploading);
        let meta = FileMeta { name, status, size: 0, md5: String::new(), declared: false };
        upload.files.insert(file_id.clone(), meta);
        return Ok(file_id);
    };
    let f = declared_file(upload, file_id, url_name)?;
    if f.name != file_name {
        return fail(StatusCode::BAD_REQUEST, "invalid file name");
    }
    if f.status != Status::Missing {
        let message = format!("invalid file status {}, expected missing", f.status.as_str());
        return fail(StatusCode::BAD_REQUEST, message);
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
    disk::create_dir(state.root(), dir).await.map_err(Refusal::Disk)?;
    let mut md5 = state.config.md5.then(Md5::new);
    let size =
        write_body(state.root(), temp, part, state.config.max_file_size, md5.as_mut()).await?;
    Ok((size, md5.map(|h| hex_lower(&h.finalize())).unwrap_or_default()))
}

/// Moves the written part into place, marks the file `uploaded` and writes
/// the upload's record; answers the file object.
async fn store(state: &Store, guard: &mut UploadGuard<'_>, size: u64, md5: String) -> Step {
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
            return fail(StatusCode::NOT_FOUND, format!("upload {upload_id} has expired"));
        };
        (f.status, f.size, f.md5) = (Status::Uploaded, size, md5);
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
        let Some(upload) = uploads.get_mut(&self.upload_id) else { return };
        if !self.declared {
            upload.files.remove(&self.file_id);
        } else if let Some(f) = upload.files.get_mut(&self.file_id) {
            f.status = Status::Missing;
        }
    }
}
