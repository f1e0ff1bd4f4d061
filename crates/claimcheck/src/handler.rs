//! The two pluggable roles, what they take and what they give back.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncRead;

use crate::error::{Error, ErrorKind};

/// A boxed, `Send` future: what the handler traits return, so that they can
/// be used as trait objects (`Arc<dyn UploadHandler>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the bytes of an upload come from.
///
/// None of the variants needs the whole payload in memory except
/// [`UploadSource::Bytes`], whose bytes already are. Non-exhaustive: a
/// store outside this crate answers a source it does not know with
/// [`ErrorKind::InvalidInput`].
#[non_exhaustive]
pub enum UploadSource {
    /// Bytes already in memory (cheaply cloned, never copied).
    Bytes(Bytes),
    /// A file, read as it is sent. Its length is taken when the upload
    /// starts; exactly that many bytes are sent.
    File(PathBuf),
    /// A reader and the number of bytes to send from it. Exactly `len` bytes
    /// are read; a reader that ends sooner fails the upload with
    /// [`ErrorKind::InvalidInput`].
    Reader {
        /// The bytes to send.
        reader: Pin<Box<dyn AsyncRead + Send>>,
        /// How many bytes to send.
        len: u64,
    },
}

impl UploadSource {
    /// A reader of known length.
    pub fn reader(reader: impl AsyncRead + Send + 'static, len: u64) -> Self {
        UploadSource::Reader { reader: Box::pin(reader), len }
    }
}

impl fmt::Debug for UploadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadSource::Bytes(b) => f.debug_tuple("Bytes").field(&b.len()).finish(),
            UploadSource::File(p) => f.debug_tuple("File").field(p).finish(),
            UploadSource::Reader { len, .. } => {
                f.debug_struct("Reader").field("len", len).finish_non_exhaustive()
            }
        }
    }
}

impl From<Bytes> for UploadSource {
    fn from(b: Bytes) -> Self {
        UploadSource::Bytes(b)
    }
}

impl From<Vec<u8>> for UploadSource {
    fn from(v: Vec<u8>) -> Self {
        UploadSource::Bytes(v.into())
    }
}

impl From<&'static [u8]> for UploadSource {
    fn from(s: &'static [u8]) -> Self {
        UploadSource::Bytes(Bytes::from_static(s))
    }
}

impl From<PathBuf> for UploadSource {
    fn from(p: PathBuf) -> Self {
        UploadSource::File(p)
    }
}

/// What to download, and what the sender said about it.
///
/// `size` comes from the payload record and is enforced: the download fails
/// with [`ErrorKind::SizeMismatch`] unless exactly that many bytes arrive.
/// `sha256`, when given (lowercase or uppercase hex), is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadRequest {
    /// The link: an absolute `http` or `https` URL.
    pub url: String,
    /// The exact length of the payload in bytes, when the sender declared
    /// it. `None` (a link record without `size`: the seeds never define it)
    /// takes whatever length the store sends, still bounded by the
    /// downloader's maximum download size.
    pub size: Option<u64>,
    /// The payload's SHA-256 as 64 hex digits, if the sender gave one.
    pub sha256: Option<String>,
    /// The most bytes this one download may take, below the downloader's
    /// own maximum: what is left of a receiver's budget for one envelope
    /// (a declared size over it is refused before any request, an
    /// undeclared one stops as soon as it passes). `None`: only the
    /// downloader's maximum applies.
    pub max_size: Option<u64>,
}

impl DownloadRequest {
    /// A request for exactly `size` bytes at `url`, with no checksum.
    pub fn new(url: impl Into<String>, size: u64) -> Self {
        DownloadRequest { url: url.into(), size: Some(size), sha256: None, max_size: None }
    }

    /// A request for the bytes at `url` whose length was not declared: the
    /// downloaded length is the size, up to the downloader's maximum
    /// download size (more is [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge)).
    pub fn with_unknown_size(url: impl Into<String>) -> Self {
        DownloadRequest { url: url.into(), size: None, sha256: None, max_size: None }
    }

    /// Adds the SHA-256 (hex) the bytes must have.
    #[must_use]
    pub fn with_sha256(mut self, hex: impl Into<String>) -> Self {
        self.sha256 = Some(hex.into());
        self
    }

    /// Caps this download at `bytes` (see [`DownloadRequest::max_size`]).
    #[must_use]
    pub fn with_max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }
}

/// Where downloaded bytes go.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownloadSink {
    /// Into memory, returned as [`Downloaded::Bytes`].
    Memory,
    /// Into this file, returned as [`Downloaded::File`]. The bytes are written
    /// to a temporary file beside it, renamed into place only once complete
    /// and verified; on failure the temporary file is removed and the target
    /// is left untouched.
    File(PathBuf),
    /// Nowhere: the bytes are checked (size, SHA-256 when declared) and
    /// hashed as they pass, then dropped; returned as
    /// [`Downloaded::Digest`]. For a receiver that shows a payload's size
    /// and SHA-256 without holding it (memory stays at one piece of the
    /// body whatever the size).
    Digest,
}

/// A finished download.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Downloaded {
    /// The bytes, for [`DownloadSink::Memory`].
    Bytes(Bytes),
    /// The path written, for [`DownloadSink::File`].
    File(PathBuf),
    /// What passed, for [`DownloadSink::Digest`].
    Digest {
        /// How many bytes arrived (the declared size, when there was one).
        size: u64,
        /// Their SHA-256.
        sha256: [u8; 32],
    },
}

impl Downloaded {
    /// The bytes, if the download went to memory.
    pub fn into_bytes(self) -> Option<Bytes> {
        match self {
            Downloaded::Bytes(b) => Some(b),
            Downloaded::File(_) | Downloaded::Digest { .. } => None,
        }
    }
}

/// The upload side of the claim check: store a payload, return the link a
/// peer downloads it from.
///
/// Implemented in `natsbridge-claimcheck-http` by `PlikUploader`,
/// `HttpPutUploader` and `S3Uploader`, and in
/// `natsbridge-claimcheck-objectstore` by `ObjectStoreHandler`; plug in your
/// own store with [`upload_fn`] or by implementing this trait. The link may be
/// any URL a matching [`DownloadHandler`] understands: `http(s)` for the HTTP
/// stores (and every other peer), `nats-os` for the object store. The convenience methods are on
/// [`UploadHandlerExt`].
pub trait UploadHandler: Send + Sync {
    /// Uploads `source` under the file name `name` and returns the link: an
    /// absolute URL from which a plain GET returns exactly the bytes sent.
    fn upload<'a>(
        &'a self,
        name: &'a str,
        source: UploadSource,
    ) -> BoxFuture<'a, Result<String, Error>>;
}

/// The download side of the claim check: fetch a link into memory or a file,
/// checking its size and checksum.
///
/// Implemented by `HttpDownloader` (`natsbridge-claimcheck-http`) and
/// `ObjectStoreHandler` (`natsbridge-claimcheck-objectstore`), both writing
/// through a [`VerifiedSink`](crate::VerifiedSink); [`LinkRouter`](crate::LinkRouter)
/// picks one per link by scheme. Plug in your own with [`download_fn`] or by
/// implementing this trait. The convenience
/// methods are on [`DownloadHandlerExt`].
pub trait DownloadHandler: Send + Sync {
    /// Downloads `request.url` into `sink`.
    fn download<'a>(
        &'a self,
        request: &'a DownloadRequest,
        sink: DownloadSink,
    ) -> BoxFuture<'a, Result<Downloaded, Error>>;
}

/// Shorthands over [`UploadHandler`], for every implementation.
pub trait UploadHandlerExt: UploadHandler {
    /// Uploads bytes held in memory.
    fn upload_bytes<'a>(
        &'a self,
        name: &'a str,
        bytes: impl Into<Bytes>,
    ) -> BoxFuture<'a, Result<String, Error>> {
        self.upload(name, UploadSource::Bytes(bytes.into()))
    }

    /// Uploads a file, streamed from disk.
    fn upload_file<'a>(
        &'a self,
        name: &'a str,
        path: impl Into<PathBuf>,
    ) -> BoxFuture<'a, Result<String, Error>> {
        self.upload(name, UploadSource::File(path.into()))
    }

    /// Uploads and also returns the payload's SHA-256 (lowercase hex), for
    /// the payload record, computed as the bytes stream past: a file is
    /// read once. Works with any handler that sends every byte of its
    /// source (it fails with [`ErrorKind::InvalidInput`] otherwise).
    ///
    /// ```
    /// use natsbridge_claimcheck::{upload_fn, sha256_hex, Error, UploadHandlerExt, UploadSource};
    /// use tokio::io::AsyncReadExt;
    ///
    /// let store = upload_fn(|name: String, source: UploadSource| async move {
    ///     if let UploadSource::Reader { mut reader, .. } = source {
    ///         let mut sink = Vec::new();
    ///         reader.read_to_end(&mut sink).await.unwrap();
    ///     }
    ///     Ok::<_, Error>(format!("https://files.example/{name}"))
    /// });
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let reader = std::io::Cursor::new(b"abc".to_vec());
    /// let (_link, sha) = store.upload_with_sha256("a", UploadSource::reader(reader, 3)).await?;
    /// assert_eq!(sha, sha256_hex(b"abc"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    fn upload_with_sha256<'a>(
        &'a self,
        name: &'a str,
        source: UploadSource,
    ) -> BoxFuture<'a, Result<(String, String), Error>> {
        Box::pin(crate::hashing::upload_with_sha256(self, name, source))
    }
}

impl<T: UploadHandler + ?Sized> UploadHandlerExt for T {}

/// Shorthands over [`DownloadHandler`], for every implementation.
pub trait DownloadHandlerExt: DownloadHandler {
    /// Downloads into memory.
    fn download_bytes<'a>(
        &'a self,
        request: &'a DownloadRequest,
    ) -> BoxFuture<'a, Result<Bytes, Error>> {
        Box::pin(async move {
            match self.download(request, DownloadSink::Memory).await? {
                Downloaded::Bytes(b) => Ok(b),
                _ => Err(Error::new(
                    ErrorKind::InvalidResponse,
                    "download handler returned no bytes when memory was asked for",
                )),
            }
        })
    }

    /// Downloads into the file at `path` (see [`DownloadSink::File`]).
    fn download_to_file<'a>(
        &'a self,
        request: &'a DownloadRequest,
        path: impl Into<PathBuf>,
    ) -> BoxFuture<'a, Result<PathBuf, Error>> {
        let path = path.into();
        Box::pin(async move {
            match self.download(request, DownloadSink::File(path)).await? {
                Downloaded::File(p) => Ok(p),
                _ => Err(Error::new(
                    ErrorKind::InvalidResponse,
                    "download handler returned no file when a file was asked for",
                )),
            }
        })
    }
}

impl<T: DownloadHandler + ?Sized> DownloadHandlerExt for T {}

macro_rules! forward_impls {
    ($trait:ident, $method:ident, ($($arg:ident: $ty:ty),*), $out:ty) => {
        impl<T: $trait + ?Sized> $trait for &T {
            fn $method<'a>(&'a self, $($arg: $ty),*) -> BoxFuture<'a, $out> {
                (**self).$method($($arg),*)
            }
        }
        impl<T: $trait + ?Sized> $trait for Box<T> {
            fn $method<'a>(&'a self, $($arg: $ty),*) -> BoxFuture<'a, $out> {
                (**self).$method($($arg),*)
            }
        }
        impl<T: $trait + ?Sized> $trait for Arc<T> {
            fn $method<'a>(&'a self, $($arg: $ty),*) -> BoxFuture<'a, $out> {
                (**self).$method($($arg),*)
            }
        }
    };
}

forward_impls!(UploadHandler, upload, (name: &'a str, source: UploadSource), Result<String, Error>);
forward_impls!(
    DownloadHandler,
    download,
    (request: &'a DownloadRequest, sink: DownloadSink),
    Result<Downloaded, Error>
);

/// An [`UploadHandler`] made from a closure; see [`upload_fn`].
#[derive(Clone)]
pub struct UploadFn<F>(F);

impl<F> fmt::Debug for UploadFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UploadFn(..)")
    }
}

/// Makes an [`UploadHandler`] from an async closure taking the file name and
/// the source and returning the link.
///
/// ```
/// use natsbridge_claimcheck::{upload_fn, Error, UploadHandlerExt, UploadSource};
///
/// let store = upload_fn(|name: String, source: UploadSource| async move {
///     // Put the bytes wherever you like; return a URL peers can GET.
///     let _ = source;
///     Ok::<_, Error>(format!("https://files.example/{name}"))
/// });
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let link = store.upload_bytes("report.csv", &b"a,b\n"[..]).await?;
/// assert_eq!(link, "https://files.example/report.csv");
/// # Ok::<(), Error>(()) }).unwrap();
/// ```
pub fn upload_fn<F, Fut>(f: F) -> UploadFn<F>
where
    F: Fn(String, UploadSource) -> Fut + Send + Sync,
    Fut: Future<Output = Result<String, Error>> + Send + 'static,
{
    UploadFn(f)
}

impl<F, Fut> UploadHandler for UploadFn<F>
where
    F: Fn(String, UploadSource) -> Fut + Send + Sync,
    Fut: Future<Output = Result<String, Error>> + Send + 'static,
{
    fn upload<'a>(
        &'a self,
        name: &'a str,
        source: UploadSource,
    ) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin((self.0)(name.to_owned(), source))
    }
}

/// A [`DownloadHandler`] made from a closure; see [`download_fn`].
#[derive(Clone)]
pub struct DownloadFn<F>(F);

impl<F> fmt::Debug for DownloadFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DownloadFn(..)")
    }
}

/// Makes a [`DownloadHandler`] from an async closure taking the request and
/// the sink.
///
/// The closure is responsible for the checks a store's downloader makes
/// (size, checksum, URL policy: a [`VerifiedSink`](crate::VerifiedSink) does
/// the first two); it can delegate to another handler.
///
/// ```
/// use bytes::Bytes;
/// use natsbridge_claimcheck::{
///     download_fn, DownloadHandlerExt, DownloadRequest, DownloadSink, Downloaded, Error,
/// };
///
/// let cache = download_fn(|req: DownloadRequest, _sink: DownloadSink| async move {
///     Ok::<_, Error>(Downloaded::Bytes(Bytes::from(vec![0u8; req.size.unwrap_or(0) as usize])))
/// });
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let bytes = cache.download_bytes(&DownloadRequest::new("https://x/y", 3)).await?;
/// assert_eq!(&bytes[..], &[0, 0, 0]);
/// # Ok::<(), Error>(()) }).unwrap();
/// ```
pub fn download_fn<F, Fut>(f: F) -> DownloadFn<F>
where
    F: Fn(DownloadRequest, DownloadSink) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Downloaded, Error>> + Send + 'static,
{
    DownloadFn(f)
}

impl<F, Fut> DownloadHandler for DownloadFn<F>
where
    F: Fn(DownloadRequest, DownloadSink) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Downloaded, Error>> + Send + 'static,
{
    fn download<'a>(
        &'a self,
        request: &'a DownloadRequest,
        sink: DownloadSink,
    ) -> BoxFuture<'a, Result<Downloaded, Error>> {
        Box::pin((self.0)(request.clone(), sink))
    }
}
