//! The verified sink every downloader writes through: the size cap, the
//! running SHA-256, and the part file renamed into place only once the
//! bytes are complete and checked.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, redact_url};
use crate::fileio::FileWriter;
use crate::handler::{DownloadRequest, DownloadSink, Downloaded};

/// Memory reserved up front for a download into memory, at most: a record
/// may declare any size, and the bytes have to arrive before they count.
const PREALLOCATE_LIMIT: u64 = 64 << 20;

/// Where a download's bytes go, checked on the way: a downloader for any
/// store ([`DownloadHandler`](crate::DownloadHandler)) creates one per
/// download, calls [`VerifiedSink::start`] before each try and
/// [`VerifiedSink::write`] for each piece, then [`VerifiedSink::finish`].
///
/// - **Size**: no more than the record's declared `size` is taken (more is
///   [`ErrorKind::SizeMismatch`] at once, not after reading it all), or,
///   with no declared size, no more than the downloader's maximum
///   ([`ErrorKind::TooLarge`]); `finish` checks a declared size exactly.
/// - **Integrity**: when the record carries a SHA-256, the bytes are hashed
///   as they arrive and `finish` compares ([`ErrorKind::Integrity`]).
/// - **Files**: a [`DownloadSink::File`] is written to a [`PartFile`]
///   beside the destination and renamed into place by `finish`; a failed,
///   cancelled or dropped download leaves nothing behind and the
///   destination untouched.
#[derive(Debug)]
pub struct VerifiedSink {
    target: Target,
    declared: Option<u64>,
    limit: u64,
    want: Option<[u8; 32]>,
    hasher: Option<Sha256>,
    /// The SHA-256 of the last verified try, for [`DownloadSink::Digest`].
    digest: Option<[u8; 32]>,
    received: u64,
    shown_url: String,
}

#[derive(Debug)]
enum Target {
    Memory(BytesMut),
    /// Hashed and dropped.
    Digest,
    File {
        dest: PathBuf,
        temp: PartFile,
        writer: Option<FileWriter>,
    },
}

impl VerifiedSink {
    /// A sink for `request` into `sink`, taking at most `max_size` bytes
    /// (or the request's own [`max_size`](DownloadRequest::max_size), if
    /// smaller).
    ///
    /// Refuses at once, before any byte is fetched, a declared size over
    /// that ([`ErrorKind::TooLarge`]) and a `sha256` that is not 64
    /// hex digits ([`ErrorKind::InvalidInput`]).
    pub fn new(
        request: &DownloadRequest,
        sink: DownloadSink,
        max_size: u64,
    ) -> Result<VerifiedSink, Error> {
        let max_size = request.max_size.map_or(max_size, |cap| cap.min(max_size));
        let shown_url = redact_url(&request.url);
        if let Some(size) = request.size
            && size > max_size
        {
            return Err(Error::new(
                ErrorKind::TooLarge { limit: max_size },
                format!("{shown_url} declares {size} bytes"),
            ));
        }
        let want = request.sha256.as_deref().map(sha256_from_hex).transpose()?;
        let target = match sink {
            DownloadSink::Memory => Target::Memory(BytesMut::with_capacity(
                request.size.unwrap_or(0).min(PREALLOCATE_LIMIT) as usize,
            )),
            DownloadSink::File(dest) => {
                let temp = PartFile::beside(&dest);
                Target::File { dest, temp, writer: None }
            }
            DownloadSink::Digest => Target::Digest,
        };
        Ok(VerifiedSink {
            target,
            declared: request.size,
            limit: request.size.unwrap_or(max_size),
            want,
            hasher: None,
            digest: None,
            received: 0,
            shown_url,
        })
    }

    /// The size the record declared, if it did.
    pub fn declared(&self) -> Option<u64> {
        self.declared
    }

    /// The most bytes this download may take: the declared size, else the
    /// maximum.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes taken in the current try.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Checks a length the store announces before sending the bytes (an
    /// HTTP `Content-Length`, an object's recorded size) against the
    /// declared size or the cap.
    pub fn check_announced(&self, announced: u64) -> Result<(), Error> {
        match self.declared {
            Some(expected) if announced != expected => Err(Error::new(
                ErrorKind::SizeMismatch { expected, actual: announced },
                format!("{} announces a different length", self.shown_url),
            )),
            None if announced > self.limit => Err(self.too_large(announced)),
            _ => Ok(()),
        }
    }

    /// Starts a try from zero (the first, or a retry after a failed one).
    pub async fn start(&mut self) -> Result<(), Error> {
        self.received = 0;
        let hashed = self.want.is_some() || matches!(self.target, Target::Digest);
        self.hasher = hashed.then(Sha256::new);
        self.digest = None;
        match &mut self.target {
            Target::Memory(buf) => buf.clear(),
            Target::Digest => {}
            Target::File { temp, writer, .. } => {
                // The previous try's writer must let go of the file before
                // it is truncated for this one.
                if let Some(previous) = writer.take() {
                    previous.abandon().await;
                }
                let file = FileWriter::create(temp.path())
                    .await
                    .map_err(|e| Error::io(format!("creating {}", temp.path().display()), e))?;
                *writer = Some(file);
            }
        }
        Ok(())
    }

    /// Takes the next piece of the bytes: refused past the limit, hashed
    /// when a SHA-256 is to be checked, stored.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), Error> {
        self.received += chunk.len() as u64;
        if self.received > self.limit {
            return Err(match self.declared {
                Some(expected) => Error::new(
                    ErrorKind::SizeMismatch { expected, actual: self.received },
                    format!("{} sent more than declared", self.shown_url),
                ),
                None => self.too_large(self.received),
            });
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(&chunk);
        }
        match &mut self.target {
            Target::Memory(buf) => buf.extend_from_slice(&chunk),
            Target::Digest => {}
            Target::File { temp, writer, .. } => {
                if let Some(w) = writer.as_mut() {
                    w.write_bytes(chunk)
                        .await
                        .map_err(|e| Error::io(format!("writing {}", temp.path().display()), e))?;
                }
            }
        }
        Ok(())
    }

    /// Checks the try's bytes (declared size, SHA-256) without finishing,
    /// so a downloader can retry a try that failed them.
    pub fn verify(&mut self) -> Result<(), Error> {
        if let Some(expected) = self.declared
            && self.received != expected
        {
            return Err(Error::new(
                ErrorKind::SizeMismatch { expected, actual: self.received },
                format!("{} sent less than declared", self.shown_url),
            ));
        }
        if let Some(h) = self.hasher.take() {
            self.digest = Some(h.finalize().into());
        }
        if let (Some(got), Some(want)) = (self.digest.as_ref(), self.want.as_ref())
            && got != want
        {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "{}: expected SHA-256 {}, got {}",
                    self.shown_url,
                    hex_lower(want),
                    hex_lower(got)
                ),
            ));
        }
        Ok(())
    }

    /// Verifies the bytes ([`VerifiedSink::verify`], if not done yet) and
    /// hands them over: the bytes, or the file renamed into place.
    pub async fn finish(mut self) -> Result<Downloaded, Error> {
        self.verify()?;
        match self.target {
            Target::Memory(buf) => Ok(Downloaded::Bytes(buf.freeze())),
            Target::Digest => match self.digest {
                Some(sha256) => Ok(Downloaded::Digest { size: self.received, sha256 }),
                None => Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("{}: finished before any try started", self.shown_url),
                )),
            },
            Target::File { dest, temp, writer } => {
                if let Some(w) = writer {
                    w.finish()
                        .await
                        .map_err(|e| Error::io(format!("writing {}", temp.path().display()), e))?;
                }
                tokio::fs::rename(temp.path(), &dest)
                    .await
                    .map_err(|e| Error::io(format!("renaming into {}", dest.display()), e))?;
                temp.keep();
                Ok(Downloaded::File(dest))
            }
        }
    }

    fn too_large(&self, at_least: u64) -> Error {
        Error::new(
            ErrorKind::TooLarge { limit: self.limit },
            format!("{} sends {at_least} bytes or more and declared no size", self.shown_url),
        )
    }
}

/// A temporary file beside a download's destination, `dir/.name.<random>.part`
/// (one file system, so the final rename is atomic), removed when dropped
/// unless kept: a failed, cancelled or panicked download leaves nothing
/// behind.
#[derive(Debug)]
pub struct PartFile(PathBuf);

impl PartFile {
    /// The part file for `dest` (not created yet).
    pub fn beside(dest: &Path) -> PartFile {
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        PartFile(dest.with_file_name(format!(".{name}.{}.part", uuid::Uuid::new_v4().simple())))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Keeps the file (call after renaming it into place).
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The 32 bytes of a SHA-256 written as 64 hex digits (the `sha256` key of a
/// payload record); anything else is an [`ErrorKind::InvalidInput`] error.
pub fn sha256_from_hex(hex_digest: &str) -> Result<[u8; 32], Error> {
    let s = hex_digest.trim().as_bytes();
    let bad = || {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "a SHA-256 is 64 hex digits, not {:?}",
                hex_digest.chars().take(80).collect::<String>()
            ),
        )
    };
    if s.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
        let lo = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Ok(out)
}

/// Lowercase hex, the form the sender puts in the payload record.
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_round_trip() {
        let digest: [u8; 32] = Sha256::digest(b"abc").into();
        let h = hex_lower(&digest);
        assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(sha256_from_hex(&h).unwrap(), digest);
        assert_eq!(sha256_from_hex(&h.to_uppercase()).unwrap(), digest);
        assert_eq!(sha256_from_hex("abc").unwrap_err().kind(), &ErrorKind::InvalidInput);
        let bad = sha256_from_hex(&"g".repeat(64)).unwrap_err();
        assert_eq!(bad.kind(), &ErrorKind::InvalidInput);
    }

    #[test]
    fn temp_file_sits_beside_the_target() {
        let t = PartFile::beside(Path::new("/data/out/x.bin")).path().to_path_buf();
        assert_eq!(t.parent(), Some(Path::new("/data/out")));
        assert!(t.file_name().unwrap().to_str().unwrap().starts_with(".x.bin."));
        let t = PartFile::beside(Path::new("x.bin")).path().to_path_buf();
        assert_eq!(t.parent(), Some(Path::new("")));
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn sizes_digests_and_files_are_checked() {
        run(async {
            let data = Bytes::from_static(b"hello world");
            let sha = hex_lower(&Sha256::digest(&data).into_iter().collect::<Vec<u8>>());
            let request = DownloadRequest::new("http://h/x", 11).with_sha256(&sha);
            // Declared over the cap: refused before any byte.
            let err = VerifiedSink::new(&request, DownloadSink::Memory, 10).unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::TooLarge { limit: 10 });
            // Exact bytes pass; a retry starts from zero.
            let mut sink = VerifiedSink::new(&request, DownloadSink::Memory, 100).unwrap();
            sink.start().await.unwrap();
            sink.write(data.slice(..4)).await.unwrap();
            sink.start().await.unwrap();
            sink.write(data.clone()).await.unwrap();
            assert_eq!(sink.finish().await.unwrap(), Downloaded::Bytes(data.clone()));
            // Longer than declared: stopped at the first piece past it.
            let mut sink = VerifiedSink::new(&request, DownloadSink::Memory, 100).unwrap();
            sink.start().await.unwrap();
            sink.write(data.clone()).await.unwrap();
            let err = sink.write(Bytes::from_static(b"!")).await.unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::SizeMismatch { expected: 11, actual: 12 });
            // Tampered: same length, other bytes.
            let mut sink = VerifiedSink::new(&request, DownloadSink::Memory, 100).unwrap();
            sink.start().await.unwrap();
            sink.write(Bytes::from_static(b"HELLO world")).await.unwrap();
            assert_eq!(sink.finish().await.unwrap_err().kind(), &ErrorKind::Integrity);
            // No declared size: the cap holds.
            let request = DownloadRequest::with_unknown_size("http://h/x");
            let mut sink = VerifiedSink::new(&request, DownloadSink::Memory, 5).unwrap();
            sink.start().await.unwrap();
            assert!(sink.check_announced(6).is_err());
            let err = sink.write(data.clone()).await.unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::TooLarge { limit: 5 });
            // A file appears only once complete and checked.
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("out.bin");
            let request = DownloadRequest::new("http://h/x", 11).with_sha256(&sha);
            let mut sink =
                VerifiedSink::new(&request, DownloadSink::File(dest.clone()), 100).unwrap();
            sink.start().await.unwrap();
            sink.write(Bytes::from_static(b"HELLO world")).await.unwrap();
            assert!(sink.finish().await.is_err());
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left behind");
            let mut sink =
                VerifiedSink::new(&request, DownloadSink::File(dest.clone()), 100).unwrap();
            sink.start().await.unwrap();
            sink.write(data.clone()).await.unwrap();
            assert_eq!(sink.finish().await.unwrap(), Downloaded::File(dest.clone()));
            assert_eq!(std::fs::read(&dest).unwrap(), data);
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        });
    }
}
