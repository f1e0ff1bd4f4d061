//! A bound on what the multipart parser buffers.
//!
//! `multer` streams a part's data, but buffers everything until it finds
//! the first boundary (the preamble) and everything until the blank line
//! ending a part's headers, with no limit of its own: one header line that
//! never ends would be held in memory whole. [`PartHeads`] sits between
//! the request body and `multer`, follows the form's structure (preamble,
//! then for each part its headers and its data) and fails the stream once
//! the preamble and headers of one part exceed [`MAX_PART_HEAD`] bytes. It
//! stops looking once the handler has the part it wants, so a file's bytes
//! are scanned at most until then.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

/// The most bytes a multipart form may hold before a part's data begins:
/// the preamble (before the first boundary) and that part's boundary line
/// and headers together.
pub(crate) const MAX_PART_HEAD: usize = 64 * 1024;

/// Where in the form the bytes being read are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Before the first `--boundary`.
    Preamble,
    /// After a boundary, before the blank line that ends the headers.
    Head,
    /// A part's data, until the next `\r\n--boundary`.
    Data,
}

/// Why the form's stream failed when the limit was passed.
pub(crate) const HEAD_TOO_LARGE: &str = "part headers are larger than 65536 bytes";
const _: () = assert!(MAX_PART_HEAD == 65_536, "HEAD_TOO_LARGE names the limit");

/// What the handler and the stream share: whether the limit was hit, and
/// whether the handler has its part (scanning can stop).
#[derive(Debug, Default)]
pub(crate) struct Watch {
    pub(crate) exceeded: AtomicBool,
    pub(crate) found: AtomicBool,
}

/// The request body's data, failing once a part's preamble and headers
/// exceed [`MAX_PART_HEAD`].
pub(crate) struct PartHeads<S> {
    inner: S,
    /// `--boundary`, which opens the first part.
    dash_boundary: Vec<u8>,
    /// `\r\n--boundary`, which ends a part's data.
    delimiter: Vec<u8>,
    stage: Stage,
    /// Bytes read since the current preamble or head began.
    head_bytes: usize,
    /// The previous chunk's last bytes, for a pattern cut between chunks.
    tail: Vec<u8>,
    watch: Arc<Watch>,
    failed: bool,
}

impl<S> PartHeads<S> {
    pub(crate) fn new(inner: S, boundary: &str, watch: Arc<Watch>) -> Self {
        PartHeads {
            inner,
            dash_boundary: format!("--{boundary}").into_bytes(),
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            stage: Stage::Preamble,
            head_bytes: 0,
            tail: Vec::new(),
            watch,
            failed: false,
        }
    }

    fn pattern(&self) -> &[u8] {
        match self.stage {
            Stage::Preamble => &self.dash_boundary,
            Stage::Head => b"\r\n\r\n",
            Stage::Data => &self.delimiter,
        }
    }

    /// Follows the form through `chunk`; false once the limit is passed.
    fn scan(&mut self, chunk: &[u8]) -> bool {
        // The previous chunk's tail (counted already), for a pattern cut
        // between chunks, then this chunk.
        let counted = self.tail.len();
        let mut buf = std::mem::take(&mut self.tail);
        buf.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            let pattern = self.pattern();
            let (len, found) = (pattern.len(), memchr::memmem::find(&buf[pos..], pattern));
            let end = found.map(|i| pos + i + len);
            if self.stage != Stage::Data {
                self.head_bytes += end.unwrap_or(buf.len()) - pos.max(counted);
                if self.head_bytes > MAX_PART_HEAD {
                    return false;
                }
            }
            let Some(end) = end else {
                self.tail = buf[buf.len().saturating_sub(len - 1).max(pos)..].to_vec();
                return true;
            };
            self.stage = match self.stage {
                Stage::Preamble | Stage::Data => Stage::Head,
                Stage::Head => {
                    self.head_bytes = 0;
                    Stage::Data
                }
            };
            pos = end;
        }
    }
}

impl<S> Stream for PartHeads<S>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if !self.watch.found.load(Ordering::Relaxed) && !self.scan(&chunk) {
                    self.failed = true;
                    self.watch.exceeded.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(io::Error::other(HEAD_TOO_LARGE))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            other => other.map_err(io::Error::other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads() -> PartHeads<futures_util::stream::Empty<Result<Bytes, axum::Error>>> {
        PartHeads::new(futures_util::stream::empty(), "xyz", Arc::default())
    }

    /// A well-formed form passes whole, however it is cut into chunks; its
    /// data is never counted.
    #[test]
    fn a_form_passes_in_any_chunking() {
        let mut form =
            b"preamble\r\n--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n".to_vec();
        form.extend(std::iter::repeat_n(b'd', 3 * MAX_PART_HEAD));
        form.extend_from_slice(
            b"\r\n--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n",
        );
        form.extend(std::iter::repeat_n(b'e', 3 * MAX_PART_HEAD));
        form.extend_from_slice(b"\r\n--xyz--\r\n");
        for size in [1, 2, 3, 5, 7, 1000, form.len()] {
            let mut h = heads();
            assert!(form.chunks(size).all(|c| h.scan(c)), "chunks of {size}");
            assert_eq!(h.stage, Stage::Head, "chunks of {size}");
        }
    }

    /// Headers that never end fail, cut anywhere; so does a preamble with
    /// no boundary, and a second part's endless headers.
    #[test]
    fn endless_headers_fail() {
        let endless = vec![b'h'; 2 * MAX_PART_HEAD];
        for start in [&b"--xyz\r\nX-Long: "[..], b"", b"--xyz\r\n\r\ndata\r\n--xyz\r\nX: "] {
            let mut form = start.to_vec();
            form.extend_from_slice(&endless);
            for size in [7, 4096, form.len()] {
                let mut h = heads();
                assert!(!form.chunks(size).all(|c| h.scan(c)), "chunks of {size}");
            }
        }
    }

    /// The limit is exact however the form is cut: a first part whose
    /// preamble, boundary line and headers are [`MAX_PART_HEAD`] bytes
    /// passes, one byte more fails; so for a later part's head.
    #[test]
    fn the_limit_is_exact_in_any_chunking() {
        for later in [false, true] {
            for extra in [0, 1] {
                let mut form = b"pre".to_vec();
                if later {
                    form.extend_from_slice(b"--xyz\r\n\r\nfirst\r\n--xyz");
                }
                let start = form.len();
                if !later {
                    form.extend_from_slice(b"--xyz");
                }
                form.extend_from_slice(b"\r\nX: ");
                let head = form.len() - if later { start } else { 0 } + 4;
                form.extend(std::iter::repeat_n(b'h', MAX_PART_HEAD - head + extra));
                form.extend_from_slice(b"\r\n\r\ndata");
                for size in [1, 2, 3, 7, 4096, form.len()] {
                    let mut h = heads();
                    let passed = form.chunks(size).all(|c| h.scan(c));
                    assert_eq!(passed, extra == 0, "chunks of {size}, {extra} over, later {later}");
                }
            }
        }
    }
}
