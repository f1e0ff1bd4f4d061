//! Claim-check through a JetStream object store: link payloads stored in a
//! bucket on the NATS server itself, for Rust-to-Rust traffic with no file
//! server at all.
//!
//! The link is `nats-os://<bucket>/<object-name>` (see `docs/spec.md`).
//! Only Rust peers read it, so the natsbridge facade sends it only when the
//! sender opts in (`BridgeBuilder::object_store`).
//!
//! [`ObjectStoreHandler`] implements the claim-check role
//! (`natsbridge-claimcheck`) over a bucket opened through
//! `natsbridge-transport-nats`: uploads stream into the bucket, downloads
//! go through the role's [`VerifiedSink`] (size, SHA-256, part file) and
//! are retried with its [`RetryConfig`] where a retry can help.
#![deny(missing_docs)]

use std::fmt;
use std::time::Duration;

use bytes::BytesMut;
use natsbridge_claimcheck::{
    BoxFuture, DownloadHandler, DownloadRequest, DownloadSink, Downloaded, Error, ErrorKind,
    RetryConfig, UploadHandler, UploadSource, VerifiedSink, hex_lower, retry_upload,
    safe_file_name, sha256_from_hex,
};
use natsbridge_transport_nats::{ErrorKind as NatsKind, JetStream, ObjectStore, ObjectStoreConfig};
use tokio::io::{AsyncReadExt, BufReader};

/// The URL scheme of object store links: `nats-os://<bucket>/<object-name>`.
pub const OBJECT_STORE_SCHEME: &str = "nats-os";

/// One read from the object.
const CHUNK: usize = 256 * 1024;

/// How a bridge uses a JetStream object store for link payloads (the
/// facade's `BridgeBuilder::object_store_options`). Non-exhaustive: build
/// it with [`ObjectStoreOptions::new`] and the `with_*` setters.
///
/// ```
/// use natsbridge_claimcheck_objectstore::ObjectStoreOptions;
///
/// let options = ObjectStoreOptions::new().with_bucket("payloads").with_send(false);
/// assert_eq!((options.bucket.as_str(), options.send, options.replicas), ("payloads", false, 1));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectStoreOptions {
    /// The bucket: ASCII letters, digits, `-` and `_`. Created if missing.
    /// Default `natsbridge`.
    pub bucket: String,
    /// Whether link payloads this bridge sends are stored here (`true`) or
    /// the bucket is only read from, for `nats-os://` links that Rust peers
    /// send while this bridge uploads elsewhere (`false`). Default `true`.
    pub send: bool,
    /// Whether an object is deleted once it has been downloaded and
    /// verified, like a Plik one-shot upload. Off by default so that every
    /// subscriber of a fan-out, and a JetStream redelivery, can read it.
    pub one_shot: bool,
    /// How long objects live when this bridge creates the bucket (an
    /// existing bucket keeps its own setting); `None` keeps them until
    /// deleted. Default 24 hours, so that objects nobody deletes expire.
    pub max_age: Option<Duration>,
    /// The largest object downloaded, in bytes, checked against the record's
    /// size before any read. Default 1 GiB, as for HTTP downloads.
    pub max_download_size: u64,
    /// How failed transfers are retried (a connection lost or a timeout
    /// mid-read; an upload of bytes or a file is sent again whole). Default
    /// [`RetryConfig::default`], as for HTTP.
    pub retry: RetryConfig,
    /// How many servers of a cluster keep a copy of the bucket when this
    /// bridge creates it (an existing bucket keeps its own). Default 1; 3
    /// lets transfers go on when one node of a 3-node cluster dies.
    pub replicas: usize,
    /// A download that receives no byte for this long is abandoned as
    /// [`ErrorKind::TimedOut`] and tried again (a read whose node died
    /// can wait for chunks that never come). Default 30 s.
    pub read_idle_timeout: Duration,
    /// The longest a download may take, tries and delays included; past
    /// it, it fails as [`ErrorKind::TimedOut`]. Default 10 minutes.
    pub download_deadline: Duration,
}

impl Default for ObjectStoreOptions {
    fn default() -> Self {
        ObjectStoreOptions {
            bucket: "natsbridge".into(),
            send: true,
            one_shot: false,
            max_age: Some(Duration::from_secs(24 * 60 * 60)),
            max_download_size: 1 << 30,
            retry: RetryConfig::default(),
            replicas: 1,
            read_idle_timeout: Duration::from_secs(30),
            download_deadline: Duration::from_secs(600),
        }
    }
}

impl ObjectStoreOptions {
    /// The defaults (the same as [`Default`]); change them with the
    /// `with_*` setters below or by assigning the public fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`bucket`](Self::bucket).
    #[must_use]
    pub fn with_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = bucket.into();
        self
    }

    /// Sets [`send`](Self::send).
    #[must_use]
    pub fn with_send(mut self, send: bool) -> Self {
        self.send = send;
        self
    }

    /// Sets [`one_shot`](Self::one_shot).
    #[must_use]
    pub fn with_one_shot(mut self, one_shot: bool) -> Self {
        self.one_shot = one_shot;
        self
    }

    /// Sets [`max_age`](Self::max_age).
    #[must_use]
    pub fn with_max_age(mut self, max_age: Option<Duration>) -> Self {
        self.max_age = max_age;
        self
    }

    /// Sets [`max_download_size`](Self::max_download_size).
    #[must_use]
    pub fn with_max_download_size(mut self, max_download_size: u64) -> Self {
        self.max_download_size = max_download_size;
        self
    }

    /// Sets [`retry`](Self::retry).
    #[must_use]
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Sets [`replicas`](Self::replicas).
    #[must_use]
    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Sets [`read_idle_timeout`](Self::read_idle_timeout).
    #[must_use]
    pub fn with_read_idle_timeout(mut self, read_idle_timeout: Duration) -> Self {
        self.read_idle_timeout = read_idle_timeout;
        self
    }

    /// Sets [`download_deadline`](Self::download_deadline).
    #[must_use]
    pub fn with_download_deadline(mut self, download_deadline: Duration) -> Self {
        self.download_deadline = download_deadline;
        self
    }
}

/// An [`UploadHandler`] and [`DownloadHandler`] over one JetStream object
/// store bucket.
///
/// - **Upload**: the object is named `<uuid>-<file name>` (the file name
///   reduced to URL-safe characters) so concurrent sends never collide, and
///   its bytes are streamed into the bucket chunk by chunk: a file or a
///   reader is never held in memory whole. The link is
///   `nats-os://<bucket>/<object-name>`. Bytes or a file whose put loses
///   its connection or times out waiting for an ack are sent again whole,
///   with the handler's [`RetryConfig`]; a bucket that is gone is
///   [`ErrorKind::NotFound`], not retried.
/// - **Download**: only links into this handler's bucket are read (others
///   are [`ErrorKind::UrlRefused`]). The object's size must equal the
///   record's ([`ErrorKind::SizeMismatch`], checked before reading and
///   again on the bytes read), and the record's `sha256`, when given, must
///   match both the digest the store recorded and the bytes read
///   ([`ErrorKind::Integrity`]). A missing or deleted object is
///   [`ErrorKind::NotFound`], and so is an object in a bucket that is
///   gone. A lost connection or a timeout is retried with
///   the handler's [`RetryConfig`]; nothing else is.
///
/// ```no_run
/// use natsbridge_claimcheck::{DownloadHandlerExt, DownloadRequest, UploadHandlerExt};
/// use natsbridge_claimcheck_objectstore::{ObjectStoreHandler, ObjectStoreOptions};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let conn = natsbridge_transport_nats::connect("nats://127.0.0.1:4222").await?;
/// let options = ObjectStoreOptions::new().with_bucket("payloads");
/// let store = ObjectStoreHandler::open(&conn.jetstream(), &options).await?;
/// let link = store.upload_file("big.bin", "/tmp/big.bin").await?;
/// assert!(link.starts_with("nats-os://payloads/"));
/// let size = std::fs::metadata("/tmp/big.bin")?.len();
/// store.download_to_file(&DownloadRequest::new(&link, size), "/tmp/copy.bin").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ObjectStoreHandler {
    store: ObjectStore,
    one_shot: bool,
    max_download_size: u64,
    retry: RetryConfig,
    read_idle_timeout: Duration,
    download_deadline: Duration,
}

impl fmt::Debug for ObjectStoreHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreHandler")
            .field("bucket", &self.store.bucket())
            .field("one_shot", &self.one_shot)
            .field("max_download_size", &self.max_download_size)
            .field("retry", &self.retry)
            .field("read_idle_timeout", &self.read_idle_timeout)
            .field("download_deadline", &self.download_deadline)
            .finish()
    }
}

impl ObjectStoreHandler {
    /// A handler over an open bucket: objects kept after download, 1 GiB
    /// download limit, the default retries, 30 s read idle timeout, 10
    /// minutes download deadline.
    pub fn new(store: ObjectStore) -> Self {
        ObjectStoreHandler {
            store,
            one_shot: false,
            max_download_size: 1 << 30,
            retry: RetryConfig::default(),
            read_idle_timeout: Duration::from_secs(30),
            download_deadline: Duration::from_secs(600),
        }
    }

    /// How long a download may wait for its next bytes before it is tried
    /// again ([`ObjectStoreOptions::read_idle_timeout`]).
    #[must_use]
    pub fn read_idle_timeout(mut self, timeout: Duration) -> Self {
        self.read_idle_timeout = timeout;
        self
    }

    /// The longest a download may take in all
    /// ([`ObjectStoreOptions::download_deadline`]).
    #[must_use]
    pub fn download_deadline(mut self, deadline: Duration) -> Self {
        self.download_deadline = deadline;
        self
    }

    /// Opens (or creates) `options.bucket` and applies `options`.
    pub async fn open(
        jetstream: &JetStream,
        options: &ObjectStoreOptions,
    ) -> Result<Self, natsbridge_transport_nats::Error> {
        let config = ObjectStoreConfig {
            max_age: options.max_age,
            replicas: options.replicas,
            ..ObjectStoreConfig::new(options.bucket.clone())
        };
        let store = jetstream.object_store_with(config).await?;
        Ok(ObjectStoreHandler::new(store)
            .one_shot(options.one_shot)
            .max_download_size(options.max_download_size)
            .retry(options.retry)
            .read_idle_timeout(options.read_idle_timeout)
            .download_deadline(options.download_deadline))
    }

    /// How failed transfers are retried.
    #[must_use]
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Deletes each object once it has been downloaded and verified.
    #[must_use]
    pub fn one_shot(mut self, one_shot: bool) -> Self {
        self.one_shot = one_shot;
        self
    }

    /// The largest object downloaded, in bytes.
    #[must_use]
    pub fn max_download_size(mut self, bytes: u64) -> Self {
        self.max_download_size = bytes;
        self
    }

    /// The bucket.
    pub fn store(&self) -> &ObjectStore {
        &self.store
    }

    /// The link for object `name` in this handler's bucket.
    pub fn link(&self, name: &str) -> String {
        format!("{OBJECT_STORE_SCHEME}://{}/{name}", self.store.bucket())
    }

    async fn upload_inner(&self, name: &str, source: UploadSource) -> Result<String, Error> {
        let object = object_name(name);
        let (info, expected) = match source {
            UploadSource::Bytes(bytes) => {
                let len = bytes.len() as u64;
                (self.store.put_bytes(&object, bytes).await, len)
            }
            UploadSource::File(path) => {
                let file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| io_error(format!("opening {}", path.display()), e))?;
                let len = file
                    .metadata()
                    .await
                    .map_err(|e| io_error(format!("reading metadata of {}", path.display()), e))?
                    .len();
                let mut reader = BufReader::with_capacity(CHUNK, file).take(len);
                (self.store.put(&object, &mut reader).await, len)
            }
            UploadSource::Reader { reader, len } => {
                let mut reader = reader.take(len);
                (self.store.put(&object, &mut reader).await, len)
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "an upload source of a later kind",
                ));
            }
        };
        let info = match info {
            Ok(info) => info,
            Err(e) => return Err(from_nats(e, "uploading")),
        };
        if info.size != expected {
            // A source shorter than it claimed: the object must not stay
            // behind looking like a payload.
            if let Err(e) = self.store.delete(&object).await {
                tracing::warn!(object, error = %e, "could not delete a short upload");
            }
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("the source of {name:?} gave {} of its {expected} bytes", info.size),
            ));
        }
        Ok(self.link(&object))
    }

    async fn download_inner(
        &self,
        request: &DownloadRequest,
        sink: DownloadSink,
    ) -> Result<Downloaded, Error> {
        let (bucket, name) = parse_link(&request.url)?;
        if bucket != self.store.bucket() {
            return Err(Error::new(
                ErrorKind::UrlRefused,
                format!(
                    "{}: bucket {bucket} is not this bridge's object store bucket {}",
                    request.url,
                    self.store.bucket()
                ),
            ));
        }
        let mut target = VerifiedSink::new(request, sink, self.max_download_size)?;
        let mut retry = 0;
        loop {
            let result = match target.start().await {
                Ok(()) => self.try_once(name, request, &mut target).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => break,
                Err(e) if e.is_retryable() && retry < self.retry.max_retries => {
                    tracing::debug!(object = name, retry, error = %e, "download failed, retrying");
                    tokio::time::sleep(self.retry.delay(retry)).await;
                    retry += 1;
                }
                Err(e) if retry > 0 => return Err(e.context(format!("after {} tries", retry + 1))),
                Err(e) => return Err(e),
            }
        }
        let downloaded = target.finish().await?;
        if self.one_shot {
            // The payload is safe in hand; a failed delete only leaves an
            // object for the bucket's max_age to expire.
            if let Err(e) = self.store.delete(name).await {
                tracing::warn!(object = name, error = %e, "could not delete a one-shot object");
            }
        }
        Ok(downloaded)
    }

    /// One read of the object into `target`: the stored size and digest
    /// checked against the record's before any byte, then the bytes.
    async fn try_once(
        &self,
        name: &str,
        request: &DownloadRequest,
        target: &mut VerifiedSink,
    ) -> Result<(), Error> {
        let mut reader = match self.store.get(name).await {
            Ok(reader) => reader,
            Err(e) => return Err(from_nats(e, "downloading")),
        };
        let info = reader.info();
        target.check_announced(info.size)?;
        if let (Some(want), Some(stored)) = (request.sha256.as_deref(), info.sha256.as_ref())
            && sha256_from_hex(want)? != *stored
        {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "{}: expected SHA-256 {want}, the store recorded {}",
                    request.url,
                    hex_lower(stored)
                ),
            ));
        }
        loop {
            let mut buf = BytesMut::with_capacity(CHUNK);
            let n = tokio::time::timeout(self.read_idle_timeout, reader.read_buf(&mut buf))
                .await
                .map_err(|_| {
                    Error::new(
                        ErrorKind::TimedOut,
                        format!(
                            "{}: no bytes for {:?} after {} bytes",
                            request.url,
                            self.read_idle_timeout,
                            target.received()
                        ),
                    )
                })?
                .map_err(|e| read_error(request, target.received(), e))?;
            if n == 0 {
                break;
            }
            target.write(buf.freeze()).await?;
        }
        target.verify()
    }
}

impl UploadHandler for ObjectStoreHandler {
    fn upload<'a>(
        &'a self,
        name: &'a str,
        source: UploadSource,
    ) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(retry_upload(&self.retry, source, move |source| self.upload_inner(name, source)))
    }
}

impl DownloadHandler for ObjectStoreHandler {
    fn download<'a>(
        &'a self,
        request: &'a DownloadRequest,
        sink: DownloadSink,
    ) -> BoxFuture<'a, Result<Downloaded, Error>> {
        Box::pin(async move {
            let deadline = self.download_deadline;
            tokio::time::timeout(deadline, self.download_inner(request, sink)).await.unwrap_or_else(
                |_| {
                    Err(Error::new(
                        ErrorKind::TimedOut,
                        format!("{}: the download did not finish within {deadline:?}", request.url),
                    ))
                },
            )
        })
    }
}

/// Whether `url` has the object store scheme (compared case-insensitively,
/// as URL schemes are).
pub fn is_object_store_link(url: &str) -> bool {
    url.split_once(':').is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case(OBJECT_STORE_SCHEME))
}

/// Splits `nats-os://<bucket>/<object-name>`. The bucket is letters, digits,
/// `-` and `_`; the name is URL-unreserved characters (`A-Z a-z 0-9 - . _ ~`),
/// so there is nothing to percent-decode. Anything else is refused.
fn parse_link(url: &str) -> Result<(&str, &str), Error> {
    let refuse = |why: &str| {
        let shown: String = url.chars().take(200).collect();
        Error::new(ErrorKind::UrlRefused, format!("{why}: {shown:?}"))
    };
    let rest = url
        .split_once("://")
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(OBJECT_STORE_SCHEME))
        .map(|(_, rest)| rest)
        .ok_or_else(|| refuse("not a nats-os://<bucket>/<object-name> link"))?;
    let (bucket, name) =
        rest.split_once('/').ok_or_else(|| refuse("no object name in the nats-os link"))?;
    if bucket.is_empty()
        || !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return Err(refuse("not a valid object store bucket name in the nats-os link"));
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err(refuse("not a valid object name in the nats-os link"));
    }
    Ok((bucket, name))
}

/// `<uuid>-<name>`, the name made safe ([`safe_file_name`]).
fn object_name(name: &str) -> String {
    format!("{}-{}", uuid::Uuid::new_v4().simple(), safe_file_name(name))
}

fn read_error(request: &DownloadRequest, received: u64, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        // The store's own digest check on the last chunk.
        std::io::ErrorKind::InvalidData => ErrorKind::Integrity,
        std::io::ErrorKind::TimedOut => ErrorKind::TimedOut,
        _ => ErrorKind::Connection,
    };
    Error::new(kind, format!("{}: reading failed after {received} bytes", request.url)).caused_by(e)
}

/// The transport's kind, which says what async-nats's typed kinds (and,
/// where async-nats leaves a failure unclassified, the server's answer
/// about the bucket) say: a lost ack or a cut connection is retried, a
/// bucket or object that is not there is not.
fn from_nats(e: natsbridge_transport_nats::Error, what: &str) -> Error {
    let kind = match e.kind() {
        NatsKind::NotFound => ErrorKind::NotFound,
        NatsKind::TimedOut => ErrorKind::TimedOut,
        NatsKind::Connect | NatsKind::Closed | NatsKind::NoResponders => ErrorKind::Connection,
        NatsKind::InvalidConfig => ErrorKind::InvalidInput,
        NatsKind::Io => ErrorKind::Io,
        _ => ErrorKind::Other,
    };
    Error::new(kind, format!("{what} through the object store")).caused_by(e)
}

fn io_error(what: String, e: std::io::Error) -> Error {
    Error::io(what, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_strictly() {
        assert_eq!(parse_link("nats-os://b_1/abc-x.bin").unwrap(), ("b_1", "abc-x.bin"));
        assert_eq!(parse_link("NATS-OS://b/x").unwrap(), ("b", "x"));
        for bad in [
            "nats-os://b",
            "nats-os://b/",
            "nats-os:///x",
            "nats-os://b.c/x",
            "nats-os://b/x?y=1",
            "nats-os://b/a/b",
            "nats-os://b/%2e%2e",
            "http://b/x",
        ] {
            assert_eq!(parse_link(bad).unwrap_err().kind(), &ErrorKind::UrlRefused, "{bad}");
        }
        assert!(is_object_store_link("nats-os://b/x"));
        assert!(is_object_store_link("Nats-OS:whatever"));
        assert!(!is_object_store_link("https://h/nats-os://b/x"));
    }

    #[test]
    fn object_names_are_unique_and_url_safe() {
        let a = object_name("r\u{e9}sum\u{e9} 1.txt");
        let b = object_name("r\u{e9}sum\u{e9} 1.txt");
        assert_ne!(a, b);
        assert!(a.ends_with("-r_sum__1.txt"), "{a}");
        assert!(parse_link(&format!("nats-os://b/{a}")).is_ok());
    }
}
