//! File reads and writes on one blocking thread per file, talking to the
//! async side through a small channel of [`Bytes`]: how
//! [`VerifiedSink`](crate::VerifiedSink) writes a download into its part
//! file, how the HTTP stores stream a file they upload, and how
//! `natsbridge-fileserver` stores and serves files.
//!
//! `tokio::fs::File` sends every read and write to the blocking pool
//! separately and copies each buffer once more on the way; for large
//! sequential transfers that halves the throughput. Here one blocking task
//! owns the file for the whole transfer, buffers move without copies, and the
//! channel's bound keeps memory flat (a few chunks in flight).
//!
//! ```
//! use futures_util::StreamExt;
//! use natsbridge_claimcheck::fileio::{FileWriter, read_stream};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("x.bin");
//! let mut writer = FileWriter::create(&path).await?;
//! writer.write(b"hello").await?;
//! writer.finish().await?;
//! let mut read = std::pin::pin!(read_stream(std::fs::File::open(&path)?, 5));
//! assert_eq!(read.next().await.unwrap()?, "hello");
//! # Ok::<(), std::io::Error>(()) }).unwrap();
//! ```

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Size of one read, and of the pieces handed to the file thread.
pub const CHUNK: usize = 256 * 1024;
/// Pieces in flight between the file thread and the async side.
const IN_FLIGHT: usize = 16;

/// Streams `len` bytes of `file` from its current position, in pieces of
/// at most [`CHUNK`] bytes. Ends early only with an error; a file shorter
/// than `len` ends the stream short and the caller's length check notices.
/// Reading stops when the stream is dropped.
pub fn read_stream(mut file: File, len: u64) -> impl Stream<Item = io::Result<Bytes>> {
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

/// Writes a file on a blocking thread. Small pieces are gathered into
/// [`CHUNK`]-sized writes on the async side first. Nothing is known to be
/// written until [`finish`](FileWriter::finish) returns `Ok`.
pub struct FileWriter {
    tx: Option<mpsc::Sender<Bytes>>,
    task: Option<JoinHandle<io::Result<()>>>,
    pending: BytesMut,
}

impl FileWriter {
    /// Creates (or truncates) `path`.
    pub async fn create(path: &Path) -> io::Result<FileWriter> {
        let path = path.to_owned();
        let file = tokio::task::spawn_blocking(move || File::create(path))
            .await
            .map_err(io::Error::other)??;
        Ok(FileWriter::new(file))
    }

    /// Takes over an open file (one opened with the caller's own options).
    pub fn new(mut file: File) -> FileWriter {
        let (tx, mut rx) = mpsc::channel::<Bytes>(IN_FLIGHT);
        let task = tokio::task::spawn_blocking(move || {
            while let Some(piece) = rx.blocking_recv() {
                file.write_all(&piece)?;
            }
            file.flush()
        });
        FileWriter { tx: Some(tx), task: Some(task), pending: BytesMut::new() }
    }

    /// Writes a copy of `bytes`.
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.pending.is_empty() && bytes.len() >= CHUNK {
            return self.send(Bytes::copy_from_slice(bytes)).await;
        }
        if self.pending.capacity() == 0 {
            self.pending.reserve(CHUNK);
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= CHUNK {
            let piece = self.pending.split().freeze();
            self.send(piece).await?;
        }
        Ok(())
    }

    /// Writes `bytes`, without copying them when nothing is pending.
    pub async fn write_bytes(&mut self, bytes: Bytes) -> io::Result<()> {
        if self.pending.is_empty() && bytes.len() >= CHUNK / 4 {
            return self.send(bytes).await;
        }
        self.write(&bytes).await
    }

    async fn send(&mut self, piece: Bytes) -> io::Result<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(piece).await.is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // The writer thread stopped: its error says why.
            Err(self.join().await.err().unwrap_or_else(|| io::Error::other("file writer stopped")))
        }
    }

    async fn join(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }

    /// Drops what is pending and waits until the thread has let go of the
    /// file (so that the path can be reused safely).
    pub async fn abandon(mut self) {
        self.pending.clear();
        let _ = self.join().await;
    }

    /// Writes what is pending, waits for the thread, and reports its result.
    pub async fn finish(mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let piece = self.pending.split().freeze();
            self.send(piece).await?;
        }
        self.join().await
    }
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriter").field("pending", &self.pending.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn writes_every_piece_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        let mut w = FileWriter::create(&path).await.unwrap();
        for piece in data.chunks(7_777) {
            w.write(piece).await.unwrap();
        }
        w.finish().await.unwrap();
        assert!(std::fs::read(&path).unwrap() == data);
    }

    #[tokio::test]
    async fn write_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        let mut w = FileWriter::new(File::create(&path).unwrap());
        for piece in data.chunks(7_777) {
            w.write_bytes(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        w.finish().await.unwrap();
        let file = File::open(&path).unwrap();
        let mut back = Vec::new();
        let mut s = std::pin::pin!(read_stream(file, data.len() as u64));
        while let Some(piece) = s.next().await {
            let piece = piece.unwrap();
            assert!(piece.len() <= CHUNK);
            back.extend_from_slice(&piece);
        }
        assert!(back == data);
    }
}
