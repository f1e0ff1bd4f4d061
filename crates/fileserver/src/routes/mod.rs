//! The file server's request handlers, by API: Plik's upload and download
//! routes ([`plik`], with `POST /file` in [`add_file`]), the plain PUT area
//! ([`put`]), and what they share ([`reply`]).

mod add_file;
mod part_heads;
mod plik;
mod put;
mod reply;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::store::State;
pub(crate) use reply::Body;
use reply::text;

pub(crate) async fn route(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let origin = state.cors.allowed_origin(request.headers());
    if request.method() == Method::OPTIONS {
        return match origin {
            Some(origin) => state.cors.preflight(origin, request.headers()),
            None => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        };
    }
    // A handler that panics answers 500 instead of dropping the connection;
    // the state's locks survive it (see `store::lock`).
    let mut response = match AssertUnwindSafe(route_api(state, request)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!("file server: a request handler panicked");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
        }
    };
    if let Some(origin) = origin {
        crate::cors::Cors::decorate(origin, &mut response);
    }
    // Stored files are other peers' bytes: a browser must not guess a type
    // for them (and run one as a page of this origin).
    response
        .headers_mut()
        .insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

async fn route_api(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();
    let method = request.method().clone();
    tracing::debug!(%method, path = %path, "file server request");
    let put_key = || &path["/put/".len().min(path.len())..];
    match (&method, segments.as_slice()) {
        (&Method::POST, ["upload"]) => plik::create_upload(&state, request).await,
        (&Method::POST, ["file", upload_id]) => {
            add_file::add_file(&state, request, upload_id, None).await
        }
        (&Method::POST, ["file", upload_id, file_id, name]) => {
            add_file::add_file(&state, request, upload_id, Some((file_id, name))).await
        }
        (&Method::GET | &Method::HEAD, ["file", upload_id, file_id, name]) => {
            plik::get_file(&state, &method, upload_id, file_id, name).await
        }
        (&Method::PUT, ["put", ..]) => put::put(&state, request, put_key()).await,
        (&Method::GET | &Method::HEAD, ["put", ..]) => put::get(&state, &method, put_key()).await,
        #[cfg(test)]
        (&Method::POST, ["test-panic"]) => test_panic(&state),
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// Unit tests only: a handler that panics while holding the uploads lock,
/// which poisons it.
#[cfg(test)]
fn test_panic(state: &State) -> Response<Body> {
    let _uploads = state.uploads();
    panic!("a test handler panics while holding the uploads lock");
}
