//! The inspector's HTTP side, an axum router served as the file server is
//! (`natsbridge_fileserver::serve`): the page, its live updates as
//! server-sent events (axum's `Sse`), and a small JSON API.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` (`/app.js`, `/style.css`) | the page, embedded in the binary |
//! | `GET /api/info` | what is watched, the limits, where links go |
//! | `GET /api/events` | server-sent events: `reset`, then `added` for each kept message (oldest first), then `added`, `updated`, `evicted` as they happen |
//! | `GET /api/messages` | `{"messages": [...]}`, the kept messages' summaries, oldest first |
//! | `GET /api/messages/{seq}/raw` | the message body exactly as it arrived |
//! | `GET /api/messages/{seq}/payloads/{i}` | a payload's bytes (`?download` as an attachment); a link only once fetched |
//! | `POST /api/messages/{seq}/payloads/{i}/fetch` | fetches a link payload (the only way one is fetched) |
//! | `POST /api/files?name=NAME` | stores a file for a send (raw body) |
//! | `POST /api/send` | builds and publishes an envelope |
//!
//! Requests must name this server in `Host` (a DNS rebinding page cannot
//! reach it) unless `--allow-remote`; a `POST` must come with a JSON or
//! octet-stream body and, when the browser says where it comes from, from
//! this page's own origin, so that no other site can make it send.
//!
//! Everything read from a request is bounded: the request line and headers
//! by hyper (417,792 bytes, 100 headers; `431`), the time to send them (30
//! seconds, then the connection is closed; see `start` in `mod.rs`), a
//! send's JSON by [`MAX_SEND_JSON`] (`413`), a file for a send by
//! `--max-upload` (streamed to a private temporary directory, `413`). No
//! other route reads a body, and none takes multipart forms. At most 256
//! connections are served at once.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, Query, Request, State as With};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use natsbridge::Bridge;
use natsbridge::claimcheck::DownloadHandler;
use natsbridge::envelope::bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast;

use super::history::{self, Changes, History, Missing, PayloadView};
use super::outgoing;
use super::preview;
use crate::report;

const INDEX_HTML: &str = include_str!("../../assets/inspector/index.html");
const APP_JS: &str = include_str!("../../assets/inspector/app.js");
const STYLE_CSS: &str = include_str!("../../assets/inspector/style.css");

/// The page's own policy: its scripts and styles only, payloads from this
/// server (images, audio, video by URL), nothing framed.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";
/// Payload bytes and raw bodies come from other peers: never run as a
/// document of this origin (an SVG image keeps its inline styles).
const PAYLOAD_POLICY: &str =
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'";

/// The most a send's JSON may hold (files go through `/api/files`).
const MAX_SEND_JSON: usize = 4 << 20;

/// What every request handler shares.
pub(crate) struct State {
    pub(crate) history: Mutex<History>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) bridge: Bridge,
    pub(crate) downloader: Arc<dyn DownloadHandler>,
    /// Links being fetched now, so that a second click cannot consume a
    /// one-shot link the first is downloading.
    pub(crate) fetching: Mutex<HashSet<(u64, usize)>>,
    pub(crate) info: Value,
    pub(crate) send: outgoing::Settings,
    pub(crate) files: tempfile::TempDir,
    pub(crate) next_file: AtomicU64,
    pub(crate) max_upload: u64,
    pub(crate) allow_remote: bool,
    pub(crate) local_addr: SocketAddr,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl State {
    /// Keeps a message that arrived and tells the pages.
    pub(crate) fn arrived(&self, subject: String, raw: Bytes) {
        let (received_ms, content) = (now_ms(), history::decode(&raw));
        let mut history = self.history.lock().unwrap();
        let changes = history.add(subject, received_ms, raw, content);
        // Sent under the lock, so that a page subscribing sees each change
        // exactly once: in its snapshot or as an event.
        self.publish(changes);
    }

    fn publish(&self, changes: Changes) {
        let updated = changes.updated.iter().map(|summary| sse("updated", summary));
        let added = changes.added.iter().map(|summary| sse("added", summary));
        let evicted = changes.evicted.iter().map(|seq| sse("evicted", &json!({"seq": seq})));
        for event in updated.chain(added).chain(evicted) {
            let _ = self.events.send(event);
        }
    }
}

/// One server-sent event.
fn sse(event: &str, data: &Value) -> Event {
    Event::default().event(event).data(data.to_string())
}

/// Every route, behind the guard that checks `Host` and what a POST carries.
pub(crate) fn router(state: Arc<State>) -> Router {
    let page = |text: &'static str, content_type: &'static str| {
        get(move || async move { served(text, content_type, PAGE_POLICY, "no-cache") })
    };
    Router::new()
        .route("/", page(INDEX_HTML, "text/html; charset=utf-8"))
        .route("/index.html", page(INDEX_HTML, "text/html; charset=utf-8"))
        .route("/app.js", page(APP_JS, "text/javascript; charset=utf-8"))
        .route("/style.css", page(STYLE_CSS, "text/css; charset=utf-8"))
        .route("/api/info", get(info))
        .route("/api/events", get(events))
        .route("/api/messages", get(messages))
        .route("/api/messages/{seq}/raw", get(raw))
        .route("/api/messages/{seq}/payloads/{index}", get(payload_bytes))
        .route("/api/messages/{seq}/payloads/{index}/fetch", post(fetch))
        .route("/api/files", post(upload))
        .route("/api/send", post(send).layer(DefaultBodyLimit::max(MAX_SEND_JSON)))
        .fallback(not_routed)
        .method_not_allowed_fallback(not_routed)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Refuses a request that does not name this server in `Host`, and a POST
/// that a page of another site could have made.
async fn guard(With(state): With<Arc<State>>, request: Request, next: Next) -> Response {
    if !host_allowed(&state, request.headers()) {
        return error(
            StatusCode::FORBIDDEN,
            "inspector.host",
            "this server answers only to its own address (a loopback name); see --allow-remote",
        );
    }
    if request.method() == Method::POST
        && let Some(refusal) = post_refusal(&state, request.headers())
    {
        return error(StatusCode::FORBIDDEN, "inspector.origin", refusal);
    }
    next.run(request).await
}

/// What no route answers: a JSON error under `/api`, else a plain 404.
async fn not_routed(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return error(StatusCode::NOT_FOUND, "inspector.not_found", format!("no {method} {path}"));
    }
    not_found()
}

async fn info(With(state): With<Arc<State>>) -> Response {
    let mut info = state.info.clone();
    let (messages, bytes) = state.history.lock().unwrap().usage();
    info["kept"] = json!({"messages": messages, "bytes": bytes});
    json_response(StatusCode::OK, &info)
}

async fn messages(With(state): With<Arc<State>>) -> Response {
    let summaries = state.history.lock().unwrap().summaries();
    json_response(StatusCode::OK, &json!({"messages": summaries}))
}

/// `POST /api/send`: builds and publishes what the page asked for.
/// Its body is at most [`MAX_SEND_JSON`] bytes (axum's `DefaultBodyLimit`).
async fn send(With(state): With<Arc<State>>, body: Result<Bytes, BytesRejection>) -> Response {
    let sent = match body {
        Ok(body) => outgoing::send(&state, &body).await,
        Err(e) => Err((e.status(), "inspector.request", format!("reading the request: {e}"))),
    };
    match sent {
        Ok(sent) => json_response(StatusCode::OK, &sent),
        Err((status, kind, message)) => error(status, kind, message),
    }
}

/// Whether the `Host` header names this server (a loopback name and its
/// port), or anything goes (`--allow-remote`).
fn host_allowed(state: &State, headers: &HeaderMap) -> bool {
    if state.allow_remote {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let port = state.local_addr.port();
    [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")]
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(host))
}

/// Why a POST is refused, if it is: a body type a plain HTML form can send
/// (a cross-site form needs no permission to send those), or an `Origin`
/// other than this page's.
fn post_refusal(state: &State, headers: &HeaderMap) -> Option<String> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let content_type = content_type.unwrap_or("").to_ascii_lowercase();
    let allowed = ["application/json", "application/octet-stream"];
    if !allowed.iter().any(|t| content_type.starts_with(t)) {
        return Some("a POST must carry application/json or application/octet-stream".into());
    }
    if state.allow_remote {
        return None;
    }
    let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or("");
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let refused = !origin.eq_ignore_ascii_case(&format!("http://{host}"));
    refused.then(|| format!("requests from {origin} are not accepted: only this page may send"))
}

/// What a browser must know of bytes it is given: their type, the policy
/// they run under, no type sniffing, and how long it may keep them.
fn served(
    body: impl Into<Body>,
    content_type: &str,
    policy: &'static str,
    cache: &'static str,
) -> Response {
    let headers = [
        (header::CONTENT_SECURITY_POLICY, policy),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, cache),
    ];
    ([(header::CONTENT_TYPE, content_type)], headers, body.into()).into_response()
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    let headers = [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")];
    (status, headers, value.to_string()).into_response()
}

/// `{"error": {"kind", "message"}}` with `status`.
fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    json_response(status, &json!({"error": {"kind": kind, "message": message.into()}}))
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

fn missing(what: Missing, seq: u64, index: usize) -> Response {
    let (kind, message) = match what {
        Missing::Message => {
            ("gone", format!("message {seq} is not kept (no longer, or never was)"))
        }
        Missing::Payload => ("no_payload", format!("message {seq} has no payload {index}")),
    };
    error(StatusCode::NOT_FOUND, &format!("inspector.{kind}"), message)
}

/// Bytes a peer sent, served so that they cannot act as this origin's page.
fn untrusted(bytes: Bytes, content_type: &str) -> Response {
    served(bytes, content_type, PAYLOAD_POLICY, "no-store")
}

/// A message's number and a payload's index from the path; a path whose
/// numbers do not parse names nothing.
type Numbers<T> = Result<Path<T>, PathRejection>;

async fn raw(With(state): With<Arc<State>>, seq: Numbers<u64>) -> Response {
    let Ok(Path(seq)) = seq else { return not_found() };
    let history = state.history.lock().unwrap();
    match history.get(seq) {
        Some(entry) => untrusted(entry.raw.clone(), "text/plain; charset=utf-8"),
        None => missing(Missing::Message, seq, 0),
    }
}

async fn payload_bytes(
    With(state): With<Arc<State>>,
    path: Numbers<(u64, usize)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Ok(Path((seq, index))) = path else { return not_found() };
    let history = state.history.lock().unwrap();
    let record = match history.record(seq, index) {
        Ok(record) => record,
        Err(m) => return missing(m, seq, index),
    };
    let Some(bytes) = record.bytes() else {
        return error(
            StatusCode::CONFLICT,
            "inspector.not_fetched",
            "a link payload not fetched yet: the inspector fetches a link only when asked \
             (POST .../fetch, the page's fetch button)",
        );
    };
    if !query.contains_key("download") {
        return untrusted(bytes.clone(), preview::media_type(&record.payload_type, bytes));
    }
    let name = natsbridge::upload_file_name(&record.dataname, &record.payload_type);
    let disposition = format!("attachment; filename=\"{name}\"");
    let disposition =
        HeaderValue::from_str(&disposition).ok().map(|v| [(header::CONTENT_DISPOSITION, v)]);
    (disposition, untrusted(bytes.clone(), "application/octet-stream")).into_response()
}

/// Fetches link payload `index` of message `seq` with the facade's
/// `fetch_payload`, checked as `smartunpack` checks every link (the
/// download handler's allowlist, size cap and retries; the record's size
/// and `sha256`), keeps the bytes, and answers with the message's new
/// summary.
async fn fetch(With(state): With<Arc<State>>, path: Numbers<(u64, usize)>) -> Response {
    let Ok(Path((seq, index))) = path else { return not_found() };
    let link = {
        let history = state.history.lock().unwrap();
        match history.record(seq, index) {
            Ok(record) if record.bytes().is_some() => {
                let summary = history.get(seq).map(|e| e.summary()).unwrap_or_default();
                return json_response(StatusCode::OK, &summary);
            }
            Ok(record) => record.clone(),
            Err(m) => return missing(m, seq, index),
        }
    };
    if !state.fetching.lock().unwrap().insert((seq, index)) {
        return error(
            StatusCode::CONFLICT,
            "inspector.busy",
            "this link is being fetched already (a one-shot link can be read once)",
        );
    }
    tracing::info!(seq, index, "fetching a link payload the page asked for");
    let result = natsbridge::fetch_payload(&link, state.downloader.as_ref()).await;
    state.fetching.lock().unwrap().remove(&(seq, index));
    let result = result
        .map(|record| (PayloadView::of(&record), record))
        .map_err(|e| json!({"kind": report::kind_name(e.kind()), "message": e.to_string()}));
    let failed = result.is_err();
    let mut history = state.history.lock().unwrap();
    match history.fetched(seq, index, result) {
        Ok(changes) => {
            let summary = changes.updated.first().cloned().unwrap_or_default();
            state.publish(changes);
            let status = if failed { StatusCode::BAD_GATEWAY } else { StatusCode::OK };
            json_response(status, &summary)
        }
        Err(m) => missing(m, seq, index),
    }
}

/// `POST /api/files?name=NAME`: stores a file the page is about to send,
/// returning its id; at most `max_upload` bytes.
async fn upload(
    With(state): With<Arc<State>>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> Response {
    let name = query.get("name").map_or("file", String::as_str);
    let mut body = body.into_data_stream();
    let id = state.next_file.fetch_add(1, Ordering::Relaxed);
    let dir = state.files.path().join(id.to_string());
    // The name keeps its extension (a .csv table is converted) but cannot
    // leave the directory: the one sanitizer every store uses.
    let safe = natsbridge::claimcheck::safe_file_name(name);
    let path = dir.join(&safe);
    let write = async {
        tokio::fs::create_dir_all(&dir).await?;
        let mut file = tokio::fs::File::create(&path).await?;
        let mut written = 0u64;
        while let Some(data) = body.next().await {
            let data = data.map_err(std::io::Error::other)?;
            written += data.len() as u64;
            if written > state.max_upload {
                let too_big =
                    format!("the file is larger than {} bytes (--max-upload)", state.max_upload);
                return Err(std::io::Error::other(too_big));
            }
            file.write_all(&data).await?;
        }
        file.flush().await?;
        Ok::<u64, std::io::Error>(written)
    };
    let file = format!("{id}/{safe}");
    match write.await {
        Ok(size) => {
            json_response(StatusCode::OK, &json!({"file": file, "name": name, "size": size}))
        }
        Err(e) => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "inspector.upload",
                format!("storing {name:?}: {e}"),
            )
        }
    }
}

/// The live updates: `reset`, every kept message, then changes as they
/// happen, with a comment every 15 seconds so that idle proxies and
/// browsers keep the stream open. A page that falls too far behind is
/// disconnected; its EventSource reconnects and starts again from `reset`.
async fn events(With(state): With<Arc<State>>) -> Response {
    let (snapshot, live) = {
        let history = state.history.lock().unwrap();
        (history.summaries(), state.events.subscribe())
    };
    let reset = Event::default().retry(Duration::from_secs(1)).event("reset").data("{}");
    let replay: Vec<Event> =
        std::iter::once(reset).chain(snapshot.iter().map(|s| sse("added", s))).collect();
    let live = futures_util::stream::unfold(live, |mut live| async move {
        // Behind or closed: end; the page reconnects.
        let event = live.recv().await.ok()?;
        Some((event, live))
    });
    let stream = futures_util::stream::iter(replay).chain(live).map(Ok::<_, Infallible>);
    let keepalive = KeepAlive::new().interval(Duration::from_secs(15)).text("keepalive");
    ([(header::CACHE_CONTROL, "no-store")], Sse::new(stream).keep_alive(keepalive)).into_response()
}
