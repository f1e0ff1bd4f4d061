//! File reads on one blocking thread per file, talking to the async side
//! through a small channel of `Bytes`: how an upload's file is read.
//!
//! `tokio::fs::File` sends every read to the blocking pool separately and
//! copies each buffer once more on the way; for large sequential transfers
//! that halves the throughput. Here one blocking task owns the file for the
//! whole transfer, buffers move without copies, and the channel's bound
//! keeps memory flat (a few chunks in flight).

use std::fs::File;
use std::io::{self, Read};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::sync::mpsc;

/// Size of one read.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Pieces in flight between the file thread and the async side.
const IN_FLIGHT: usize = 16;

/// Streams `len` bytes of `file` from its current position. Ends early only
/// with an error; a file shorter than `len` ends the stream short and the
/// caller's length check notices.
pub(crate) fn read_stream(mut file: File, len: u64) -> impl Stream<Item = io::Result<Bytes>> {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut left = len;
        while left > 0 {
            let want = left.min(CHUNK as u64) as usize;
            let mut buf = BytesMut::zeroed(want);
            let n = match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            buf.truncate(n);
            left -= n as u64;
            if tx.blocking_send(Ok(buf.freeze())).is_err() {
                // The reader went away (request cancelled): stop reading.
                return;
            }
        }
    });
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
