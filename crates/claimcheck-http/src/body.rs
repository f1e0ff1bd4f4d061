//! Turning an [`UploadSource`] into a request body of known length.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use crate::error::{Error, ErrorKind};
use natsbridge_claimcheck::UploadSource;

use natsbridge_claimcheck::fileio::{CHUNK, read_stream};

/// A body stream and its exact length. If the source fails or runs short,
/// the stream yields an I/O error (which aborts the request) and the real
/// cause is kept in `failure`, so the caller can report it rather than the
/// transport's "body error".
pub(crate) struct SourceBody {
    pub(crate) stream: BoxStream<'static, io::Result<Bytes>>,
    pub(crate) len: u64,
    pub(crate) failure: Arc<Mutex<Option<Error>>>,
}

impl SourceBody {
    pub(crate) async fn open(source: UploadSource) -> Result<SourceBody, Error> {
        let failure = Arc::new(Mutex::new(None));
        let (stream, len): (BoxStream<'static, io::Result<Bytes>>, u64) = match source {
            UploadSource::Bytes(b) => {
                let len = b.len() as u64;
                (Box::pin(futures_util::stream::iter((!b.is_empty()).then_some(Ok(b)))), len)
            }
            UploadSource::File(path) => {
                let file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
                let len = file
                    .metadata()
                    .await
                    .map_err(|e| Error::io(format!("reading metadata of {}", path.display()), e))?
                    .len();
                let stream = read_stream(file.into_std().await, len);
                (Box::pin(Counted::new(stream, len, failure.clone())), len)
            }
            UploadSource::Reader { reader, len } => {
                let stream = ReaderStream::with_capacity(reader.take(len), CHUNK);
                (Box::pin(Counted::new(stream, len, failure.clone())), len)
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "an upload source of a later kind",
                ));
            }
        };
        Ok(SourceBody { stream, len, failure })
    }

    /// Prepends and appends fixed bytes (a multipart envelope) to the body.
    pub(crate) fn wrap(self, prefix: Bytes, suffix: Bytes) -> SourceBody {
        let len = self.len + prefix.len() as u64 + suffix.len() as u64;
        let stream = futures_util::stream::iter([Ok(prefix)])
            .chain(self.stream)
            .chain(futures_util::stream::iter([Ok(suffix)]));
        SourceBody { stream: Box::pin(stream), len, failure: self.failure }
    }

    pub(crate) fn into_reqwest(self) -> (reqwest::Body, u64, Arc<Mutex<Option<Error>>>) {
        (reqwest::Body::wrap_stream(self.stream), self.len, self.failure)
    }
}

/// Counts the bytes of a source and turns a short one into an error.
struct Counted<S> {
    inner: S,
    expected: u64,
    seen: u64,
    done: bool,
    failure: Arc<Mutex<Option<Error>>>,
}

impl<S> Counted<S> {
    fn new(inner: S, expected: u64, failure: Arc<Mutex<Option<Error>>>) -> Self {
        Counted { inner, expected, seen: 0, done: false, failure }
    }

    fn fail(&mut self, err: Error) -> io::Error {
        self.done = true;
        let msg = err.to_string();
        *self.failure.lock().unwrap() = Some(err);
        io::Error::other(msg)
    }
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> Stream for Counted<S> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                self.seen += b.len() as u64;
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                let err = Error::io("reading the upload source", e);
                Poll::Ready(Some(Err(self.fail(err))))
            }
            Poll::Ready(None) if self.seen < self.expected => {
                let err = Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "the upload source ended after {} of its declared {} bytes",
                        self.seen, self.expected
                    ),
                );
                Poll::Ready(Some(Err(self.fail(err))))
            }
            other => other,
        }
    }
}

/// Takes the source's own error, if it caused the request to fail.
pub(crate) fn take_failure(failure: &Mutex<Option<Error>>) -> Option<Error> {
    failure.lock().unwrap().take()
}
