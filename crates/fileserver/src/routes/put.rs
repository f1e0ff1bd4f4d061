//! The plain PUT area: `PUT`, `GET` and `HEAD /put/{key...}`, for
//! `natsbridge_claimcheck_http::HttpPutUploader`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::body::HttpBody;
use axum::extract::State;
use axum::response::Response;
use http::{Method, StatusCode, Uri};

use super::reply::{DRAIN_LIMIT, file_body, octet_stream, refused, text, too_big, write_body};
use crate::disk;
use crate::store::{State as Store, valid_put_key};

/// The key of a `/put/{key...}` request: the raw path after `/put/`, still
/// percent-encoded, so that `%2e%2e` stays a harmless literal name.
fn key_of(uri: &Uri) -> &str {
    uri.path().strip_prefix("/put/").unwrap_or_default()
}

/// `PUT /put/{key...}`: stores the body under the key, replacing what was
/// there; it expires after the default TTL.
pub(super) async fn put(State(state): State<Arc<Store>>, uri: Uri, body: Body) -> Response {
    let key = key_of(&uri);
    if !valid_put_key(key) {
        return text(StatusCode::BAD_REQUEST, "invalid key");
    }
    let max = state.config.max_file_size;
    // Its Content-Length, if it has one.
    if body.size_hint().lower() > max.saturating_add(DRAIN_LIMIT) {
        return too_big(StatusCode::PAYLOAD_TOO_LARGE, max);
    }
    let temp = TempFile(state.put_temp_path());
    let mut body = body.into_data_stream();
    let size = match write_body(state.root(), &temp.0, &mut body, max, None).await {
        Ok(size) => size,
        Err(refusal) => {
            let what = "writing a PUT";
            return refused(refusal, body, StatusCode::PAYLOAD_TOO_LARGE, max, what).await;
        }
    };
    let path = state.put_path(key);
    if let Err(e) = disk::check_below(state.root(), &path) {
        tracing::warn!(key = %key, error = %e, "file server: PUT refused");
        return text(StatusCode::FORBIDDEN, "key goes through a symbolic link");
    }
    if let Some(parent) = path.parent()
        && let Err(e) = disk::create_dir(state.root(), parent).await
    {
        tracing::debug!(error = %e, "file server: PUT key conflicts");
        return text(StatusCode::CONFLICT, "key conflicts with an existing key");
    }
    // The path was checked just now; should a link appear at the key's own
    // name since, the rename replaces it rather than follow it.
    if let Err(e) = tokio::fs::rename(&temp.0, &path).await {
        tracing::debug!(error = %e, "file server: PUT key conflicts");
        return text(StatusCode::CONFLICT, "key conflicts with an existing key");
    }
    std::mem::forget(temp);
    let expires = state.expiry(state.config.default_ttl);
    state.puts().insert(key.to_owned(), expires);
    tracing::info!(key = %key, size, "file server: PUT file stored");
    text(StatusCode::CREATED, "created")
}

/// `GET` and `HEAD /put/{key...}`.
pub(super) async fn get(State(state): State<Arc<Store>>, method: Method, uri: Uri) -> Response {
    let key = key_of(&uri);
    let not_found = || text(StatusCode::NOT_FOUND, "not found");
    if !valid_put_key(key) {
        return not_found();
    }
    let expired = {
        let mut puts = state.puts();
        match puts.get(key) {
            None => return not_found(),
            Some(e) if e.is_some_and(|e| e <= state.now()) => {
                puts.remove(key);
                true
            }
            Some(_) => false,
        }
    };
    let path = state.put_path(key);
    if expired {
        tracing::info!(key = %key, "file server: PUT file expired");
        let _ = disk::remove_file(state.root(), &path).await;
        return not_found();
    }
    // No link followed: a file reached through one is not served.
    let Ok(file) = disk::open(state.root(), &path).await else { return not_found() };
    let meta = file.metadata().await.ok().filter(|m| m.is_file());
    let Some(size) = meta.map(|m| m.len()) else { return not_found() };
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        let key = key.to_owned();
        let logged =
            Box::new(move || tracing::info!(key = %key, "file server: PUT file downloaded"));
        file_body(file, size, Some(logged)).await
    };
    octet_stream(body, size)
}

/// A temporary file removed when dropped unless forgotten.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
