//! SHA-256 of an upload, computed while it streams.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use crate::error::{Error, ErrorKind};
use crate::handler::{UploadHandler, UploadSource};
use crate::sink::hex_lower as hex;

/// The hex SHA-256 of bytes in memory: the form a payload record carries.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[derive(Default)]
struct Tally {
    hasher: Sha256,
    seen: u64,
}

/// Hashes every byte read through it.
struct HashingReader<R> {
    inner: R,
    tally: Arc<Mutex<Tally>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let new = &buf.filled()[before..];
            let mut tally = self.tally.lock().unwrap();
            tally.hasher.update(new);
            tally.seen += new.len() as u64;
        }
        polled
    }
}

/// Uploads through any handler and returns the link and the payload's
/// SHA-256 (hex).
///
/// Bytes are hashed in memory and a reader as it streams past (read once;
/// a reader cannot be replayed, so its upload is tried once). A file goes
/// to the handler as a file, which the handler opens again for every try,
/// so an upload that a retry can fix is retried; it is hashed in a second
/// read at the same time, on a blocking thread. A file that changes while
/// it is sent then has another hash than the bytes uploaded, and the
/// receiver's check fails: never a payload delivered unchecked.
pub(crate) async fn upload_with_sha256<H: UploadHandler + ?Sized>(
    handler: &H,
    name: &str,
    source: UploadSource,
) -> Result<(String, String), Error> {
    let (reader, len): (Pin<Box<dyn AsyncRead + Send>>, u64) = match source {
        UploadSource::Bytes(bytes) => {
            let sha = sha256_hex(&bytes);
            return Ok((handler.upload(name, UploadSource::Bytes(bytes)).await?, sha));
        }
        UploadSource::File(path) => {
            let hashing = hash_file(path.clone());
            let (link, sha) =
                futures_util::future::join(handler.upload(name, UploadSource::File(path)), hashing)
                    .await;
            return Ok((link?, sha?));
        }
        UploadSource::Reader { reader, len } => (reader, len),
    };
    let tally = Arc::new(Mutex::new(Tally::default()));
    let hashing = HashingReader { inner: reader, tally: tally.clone() };
    let link = handler.upload(name, UploadSource::reader(hashing, len)).await?;
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    // A handler that did not send every byte cannot vouch for them.
    if tally.seen != len {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the upload handler read {} of {len} bytes; no checksum", tally.seen),
        ));
    }
    Ok((link, hex(&tally.hasher.finalize())))
}

/// The hex SHA-256 of the file at `path`, read in pieces on a blocking
/// thread.
async fn hash_file(path: std::path::PathBuf) -> Result<String, Error> {
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok::<_, io::Error>(hex(&hasher.finalize()))
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Io, format!("hashing {shown}: {e}")))?
    .map_err(|e| Error::io(format!("hashing {shown}"), e))
}
