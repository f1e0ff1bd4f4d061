//! What every route shares: Plik's plain-text errors, JSON replies, size
//! texts, and file bodies streamed from disk.

use std::io;
use std::path::Path;
use std::task::{Poll, ready};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderValue, StatusCode, header};
use md5::{Digest, Md5};
use serde_json::Value;

use natsbridge_claimcheck::fileio::{FileWriter, read_stream};
use tokio::fs::File;

use crate::disk;

/// How much of a refused upload is read (and thrown away) before answering;
/// past this the connection is simply closed.
pub(super) const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Why an upload's bytes did not reach the disk.
pub(super) enum Refusal {
    TooBig,
    Body(String),
    Disk(io::Error),
}

/// Streams `body` into a new file at `path` below `root` (its size and,
/// with `md5`, hashing it), refusing it past `max` bytes.
pub(super) async fn write_body<E: std::fmt::Display>(
    root: &Path,
    path: &Path,
    mut body: impl Stream<Item = Result<Bytes, E>> + Unpin,
    max: u64,
    mut md5: Option<&mut Md5>,
) -> Result<u64, Refusal> {
    let mut writer = FileWriter::new(disk::create_new(root, path).await.map_err(Refusal::Disk)?);
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Refusal::Body(e.to_string()))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(Refusal::TooBig);
        }
        if let Some(h) = md5.as_mut() {
            h.update(&chunk);
        }
        writer.write_bytes(chunk).await.map_err(Refusal::Disk)?;
    }
    writer.finish().await.map_err(Refusal::Disk)?;
    Ok(size)
}

/// The answer to an upload refused while streaming to disk. One over the
/// size limit is drained (up to [`DRAIN_LIMIT`]) first, so that the client,
/// still sending, reads the answer rather than a reset connection.
pub(super) async fn refused<E>(
    refusal: Refusal,
    mut body: impl Stream<Item = Result<Bytes, E>> + Unpin,
    too_big_status: StatusCode,
    max: u64,
    what: &str,
) -> Response {
    match refusal {
        Refusal::TooBig => {
            let mut drained = 0u64;
            while drained < DRAIN_LIMIT
                && let Some(Ok(chunk)) = body.next().await
            {
                drained += chunk.len() as u64;
            }
            too_big(too_big_status, max)
        }
        Refusal::Body(e) => {
            tracing::debug!(error = %e, "file server: upload body failed");
            text(StatusCode::BAD_REQUEST, format!("unable to read data from request body : {e}"))
        }
        Refusal::Disk(e) => disk_error(what, &e),
    }
}

/// A request refused by one of a handler's steps: the answer to send
/// (boxed: a response is large and a refusal the rare path). Handlers
/// return [`Step`], so that `?` answers a refusal.
pub(super) struct Refused(Box<Response>);

/// A handler's step: its result, or the answer refusing the request.
pub(super) type Step<T = Response> = Result<T, Refused>;

impl From<Response> for Refused {
    fn from(answer: Response) -> Self {
        Refused(Box::new(answer))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// Refuses with `answer`.
pub(super) fn refuse<T>(answer: Response) -> Step<T> {
    Err(answer.into())
}

/// Refuses with Plik's plain-text error.
pub(super) fn fail<T>(status: StatusCode, message: impl Into<String>) -> Step<T> {
    refuse(text(status, message))
}

/// Plik's refusal of a file name over 1,024 bytes.
pub(super) const NAME_TOO_LONG: &str = "file name is too long, maximum length is 1024 characters";

/// A plain-text error, as Go's `http.Error` writes it.
pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let (mut body, plain) = (message.into(), "text/plain; charset=utf-8");
    body.push('\n');
    (status, [(header::CONTENT_TYPE, plain)], body).into_response()
}

/// `response`, after which the connection is closed: the request's body was
/// refused unread, and what is left of it is not read either.
pub(super) fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A stored file's answer: `size` bytes of `body` (none for `HEAD`).
pub(super) fn octet_stream(body: Body, size: u64) -> Response {
    let binary = HeaderValue::from_static("application/octet-stream");
    ([(header::CONTENT_TYPE, binary), (header::CONTENT_LENGTH, HeaderValue::from(size))], body)
        .into_response()
}

pub(super) fn json_reply(value: &Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

pub(super) fn internal_error(what: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::warn!(error = %error, "file server: {what}");
    text(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
}

/// A failed write of an upload: a full disk (or a file-size or quota limit)
/// is `507 Insufficient Storage` with a text that says so, anything else a
/// plain internal error. The partial file is removed by the caller's guard.
pub(super) fn disk_error(what: &str, error: &io::Error) -> Response {
    use std::io::ErrorKind as Io;
    if matches!(error.kind(), Io::StorageFull | Io::QuotaExceeded | Io::FileTooLarge) {
        tracing::warn!(error = %error, "file server: {what}: out of space");
        return text(StatusCode::INSUFFICIENT_STORAGE, "the file server is out of disk space");
    }
    internal_error(what, error)
}

/// Plik's answer to a file over the maximum size.
pub(super) fn too_big(status: StatusCode, max: u64) -> Response {
    text(status, format!("file too big (limit is set to {})", human_bytes(max)))
}

/// Caller-controlled text echoed in an error: short and printable.
pub(super) fn shown(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// go-humanize's `Bytes`, which Plik's size errors use.
pub(super) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    // Under 1000 (0 too: its log is -inf, which `as usize` makes 0): bytes.
    let e = (((n as f64).log10() / 3.0).floor() as usize).min(UNITS.len() - 1);
    let v = n as f64 / 1000f64.powi(e as i32);
    match e {
        0 => format!("{n} B"),
        _ if v < 10.0 => format!("{v:.1} {}", UNITS[e]),
        _ => format!("{v:.0} {}", UNITS[e]),
    }
}

/// Called once every byte of a file body has been handed to the connection.
/// Dropped uncalled when the body is dropped early.
pub(super) type OnComplete = Box<dyn FnOnce() + Send>;

/// The body of a stored file of `size` bytes; a file shorter than that
/// ends the body with an error.
pub(super) async fn file_body(file: File, size: u64, done: Option<OnComplete>) -> Body {
    let (mut chunks, mut remaining, mut done) =
        (Box::pin(read_stream(file.into_std().await, size)), size, done);
    Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        let next = ready!(chunks.as_mut().poll_next(cx));
        if let Some(Ok(chunk)) = &next {
            remaining = remaining.saturating_sub(chunk.len() as u64);
        }
        if next.is_none() && remaining > 0 {
            let short = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stored file is shorter than recorded",
            );
            return Poll::Ready(Some(Err(short)));
        }
        // An empty file completes without a single chunk.
        if remaining == 0
            && let Some(done) = done.take()
        {
            done();
        }
        Poll::Ready(next)
    }))
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_read_like_plik() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(5), "5 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_000_000), "1.0 MB");
        assert_eq!(human_bytes(10 << 30), "11 GB");
        assert_eq!(human_bytes(1_500), "1.5 kB");
    }
}
