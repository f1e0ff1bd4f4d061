//! The file server's router and its request handlers, by API: Plik's upload
//! and download routes ([`plik`], with `POST /file` in [`add_file`]), the
//! plain PUT area ([`put`]), and what they share ([`reply`]).

mod add_file;
mod part_heads;
mod plik;
mod put;
mod reply;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::cors::Cors;
use crate::store::State as Store;
pub(crate) use reply::text;

/// Every route, with the layers every answer goes through.
pub(crate) fn router(store: Arc<Store>, cors: Cors) -> Router {
    let routes = Router::new()
        .route(
            "/upload",
            post(plik::create_upload).layer(DefaultBodyLimit::max(plik::MAX_UPLOAD_JSON)),
        )
        .route("/file/{upload_id}", post(add_file::add_file))
        .route(
            "/file/{upload_id}/{file_id}/{name}",
            post(add_file::add_declared_file).get(plik::get_file),
        )
        .route("/put/{*key}", get(put::get).put(put::put));
    #[cfg(test)]
    let routes = routes.route("/test-panic", post(test_panic));
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(store)
        .layer(cors.layer())
        .layer(axum::middleware::from_fn(crate::cors::preflight_status))
        // Stored files are other peers' bytes: a browser must not guess a
        // type for them (and run one as a page of this origin).
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // A handler that panics answers 500 instead of dropping the
        // connection; the store's locks survive it (see `store::lock`).
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("file server: a request handler panicked");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
        }))
        // Request details at debug, under this crate's name (what
        // `natsbridge fileserver -vv` shows); tower-http's own events follow.
        // The span names the path only: tower-http's default span shows the
        // whole URI, whose query can hold a presigned link's signature.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    tracing::debug_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                })
                .on_request(|request: &Request, _: &tracing::Span| {
                    tracing::debug!(
                        method = %request.method(),
                        path = %request.uri().path(),
                        "file server request"
                    );
                }),
        )
}

/// Go's `http.NotFound`, which Plik answers for what it does not route.
async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found")
}

/// Unit tests only: a handler that panics while holding the uploads lock,
/// which poisons it.
#[cfg(test)]
async fn test_panic(axum::extract::State(store): axum::extract::State<Arc<Store>>) -> Response {
    let _uploads = store.uploads();
    panic!("a test handler panics while holding the uploads lock");
}
