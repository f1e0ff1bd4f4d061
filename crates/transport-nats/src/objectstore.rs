//! JetStream object stores: buckets of objects of any size, stored as
//! chunks in a stream and read back as a stream of bytes.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::jetstream::context::ObjectStoreErrorKind;
use async_nats::jetstream::object_store::{self, GetErrorKind, InfoErrorKind, PutErrorKind};
use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};

use crate::{Error, ErrorKind, Result, jserror};

/// How to create an object store bucket that does not exist yet. A bucket
/// that exists is opened as it is; these settings are not applied to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectStoreConfig {
    /// The bucket name: ASCII letters, digits, `-` and `_`.
    pub bucket: String,
    /// How long an object is kept before the server removes it; `None`
    /// keeps objects until they are deleted. Default `None`.
    pub max_age: Option<Duration>,
    /// The most bytes the bucket may hold; `None` for the account's limit.
    /// A put that would exceed it fails. Default `None`.
    pub max_bytes: Option<u64>,
    /// How many servers of a cluster keep a copy (1 to 5). Default 1; 3
    /// survives the loss of any one node of a 3-node cluster.
    pub replicas: usize,
}

impl ObjectStoreConfig {
    /// The defaults for `bucket`: no expiry, no size limit of its own, one
    /// replica.
    pub fn new(bucket: impl Into<String>) -> Self {
        ObjectStoreConfig { bucket: bucket.into(), max_age: None, max_bytes: None, replicas: 1 }
    }
}

/// What the server knows about a stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectInfo {
    /// The bucket holding it.
    pub bucket: String,
    /// Its name in the bucket.
    pub name: String,
    /// Its length in bytes.
    pub size: u64,
    /// How many chunks (stream messages) hold it.
    pub chunks: usize,
    /// The SHA-256 of its bytes, as the writer recorded it; `None` when the
    /// writer recorded none or in a form other than `SHA-256=<base64url>`.
    pub sha256: Option<[u8; 32]>,
}

impl ObjectInfo {
    fn from_nats(info: &object_store::ObjectInfo) -> Self {
        ObjectInfo {
            bucket: info.bucket.clone(),
            name: info.name.clone(),
            size: info.size as u64,
            chunks: info.chunks,
            sha256: info
                .digest
                .as_deref()
                .and_then(|d| d.strip_prefix("SHA-256="))
                .and_then(decode_base64url_32),
        }
    }
}

/// A JetStream object store bucket; see [`crate::JetStream::object_store`].
/// Cheap to clone.
#[derive(Clone)]
pub struct ObjectStore {
    bucket: String,
    store: object_store::ObjectStore,
    context: async_nats::jetstream::Context,
}

impl fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStore").field("bucket", &self.bucket).finish_non_exhaustive()
    }
}

fn os_error(
    kind: ErrorKind,
    what: impl Into<String>,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::with_source(kind, what, e)
}

impl ObjectStore {
    /// Opens the bucket `config.bucket`, creating it with `config` when it
    /// does not exist. A bad bucket name is [`ErrorKind::InvalidConfig`].
    pub(crate) async fn open(
        context: &async_nats::jetstream::Context,
        config: ObjectStoreConfig,
    ) -> Result<ObjectStore> {
        let bucket = config.bucket.clone();
        let invalid = || {
            Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "object store bucket {bucket:?}: a name is ASCII letters, digits, '-' and '_'"
                ),
            )
        };
        if bucket.is_empty()
            || !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return Err(invalid());
        }
        match context.get_object_store(&bucket).await {
            Ok(store) => return Ok(ObjectStore { bucket, store, context: context.clone() }),
            Err(e) if e.kind() == ObjectStoreErrorKind::InvalidBucketName => return Err(invalid()),
            Err(_) => {}
        }
        let nats_config = object_store::Config {
            bucket: bucket.clone(),
            max_age: config.max_age.unwrap_or_default(),
            max_bytes: config.max_bytes.map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX)),
            num_replicas: config.replicas.max(1),
            ..Default::default()
        };
        match context.create_object_store(nats_config).await {
            Ok(store) => Ok(ObjectStore { bucket, store, context: context.clone() }),
            // Another client may have created it in the meantime.
            Err(create) => match context.get_object_store(&bucket).await {
                Ok(store) => Ok(ObjectStore { bucket, store, context: context.clone() }),
                Err(_) => {
                    use async_nats::jetstream::context::CreateKeyValueErrorKind as Kind;
                    let kind = match create.kind() {
                        Kind::TimedOut => ErrorKind::TimedOut,
                        Kind::InvalidStoreName => ErrorKind::InvalidConfig,
                        _ => ErrorKind::JetStream,
                    };
                    Err(os_error(kind, format!("creating object store bucket {bucket}"), create))
                }
            },
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Whether the bucket's stream exists, as the server says: `Ok(false)`
    /// only when JetStream answers that there is no such stream. A call
    /// that found nobody answering for the bucket (its stream electing a
    /// leader after a node of a cluster died) tells a removed bucket from
    /// one that is briefly unavailable this way. No answer at all is an
    /// error ([`ErrorKind::TimedOut`], [`ErrorKind::NoResponders`], ...).
    pub async fn bucket_exists(&self) -> Result<bool> {
        let stream = format!("OBJ_{}", self.bucket);
        match self.context.get_stream(&stream).await {
            Ok(_) => Ok(true),
            Err(e) => match jserror::get_stream(&e) {
                ErrorKind::NotFound => Ok(false),
                kind => Err(os_error(kind, format!("looking up {stream}"), e)),
            },
        }
    }

    /// The kind of a failure async-nats does not classify: it keeps a
    /// failed chunk or metadata publish of a put only as text, and a get
    /// or info on a bucket whose stream is gone as "other". So the server
    /// is asked, typed, whether the bucket's stream is there: gone is
    /// [`ErrorKind::NotFound`]; there, the store did not complete the call
    /// ([`ErrorKind::Closed`] while the connection is down, else
    /// [`ErrorKind::TimedOut`], both retried: a put the server refuses for
    /// its limits is also retried, up to the caller's retry budget); no
    /// answer about it is that answer's kind.
    async fn unclear_kind(&self) -> ErrorKind {
        match self.bucket_exists().await {
            Ok(false) => ErrorKind::NotFound,
            Ok(true) => match self.context.client().connection_state() {
                async_nats::connection::State::Connected => ErrorKind::TimedOut,
                _ => ErrorKind::Closed,
            },
            Err(e) => e.kind().clone(),
        }
    }

    /// Stores everything `reader` yields under `name`, replacing an object
    /// of that name. The bytes are read and sent one chunk (128 KiB) at a
    /// time, each acknowledged by the server, so memory stays flat
    /// whatever the size. Errors: the reader's own as
    /// [`ErrorKind::Io`]; a bucket that is gone as [`ErrorKind::NotFound`];
    /// a chunk or the metadata not stored (its ack lost, the connection
    /// cut) as [`ErrorKind::TimedOut`] or [`ErrorKind::Closed`].
    pub async fn put(
        &self,
        name: &str,
        reader: &mut (impl AsyncRead + Unpin),
    ) -> Result<ObjectInfo> {
        let what = || format!("putting {name} into bucket {}", self.bucket);
        let e = match self.store.put(name, reader).await {
            Ok(info) => return Ok(ObjectInfo::from_nats(&info)),
            Err(e) => e,
        };
        let kind = match e.kind() {
            PutErrorKind::ReadChunks => ErrorKind::Io,
            PutErrorKind::InvalidName => ErrorKind::InvalidConfig,
            PutErrorKind::TimedOut => ErrorKind::TimedOut,
            PutErrorKind::PublishChunks
            | PutErrorKind::PublishMetadata
            | PutErrorKind::PurgeOldChunks
            | PutErrorKind::Other => self.unclear_kind().await,
        };
        Err(os_error(kind, what(), e))
    }

    /// Stores bytes held in memory under `name` (see [`ObjectStore::put`]).
    pub async fn put_bytes(&self, name: &str, bytes: Bytes) -> Result<ObjectInfo> {
        self.put(name, &mut bytes.as_ref()).await
    }

    /// What the server knows about `name`. An object that never existed,
    /// or was deleted, is [`ErrorKind::NotFound`].
    pub async fn info(&self, name: &str) -> Result<ObjectInfo> {
        let info = match self.store.info(name).await {
            Ok(info) => info,
            Err(e) => {
                let kind = match e.kind() {
                    InfoErrorKind::NotFound => ErrorKind::NotFound,
                    InfoErrorKind::TimedOut => ErrorKind::TimedOut,
                    InfoErrorKind::InvalidName => ErrorKind::InvalidConfig,
                    InfoErrorKind::Other => self.unclear_kind().await,
                };
                let what = format!("reading the info of {name} in bucket {}", self.bucket);
                return Err(os_error(kind, what, e));
            }
        };
        if info.deleted {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("object {name} in bucket {} was deleted", self.bucket),
            ));
        }
        Ok(ObjectInfo::from_nats(&info))
    }

    /// Opens `name` for reading. An object that never existed, or was
    /// deleted, is [`ErrorKind::NotFound`].
    pub async fn get(&self, name: &str) -> Result<ObjectReader> {
        let object = match self.store.get(name).await {
            Ok(object) => object,
            Err(e) => {
                let (kind, what) = match e.kind() {
                    GetErrorKind::NotFound => {
                        (ErrorKind::NotFound, format!("no object {name} in bucket {}", self.bucket))
                    }
                    GetErrorKind::InvalidName => {
                        (ErrorKind::InvalidConfig, format!("invalid object name {name:?}"))
                    }
                    GetErrorKind::BucketLink => (
                        ErrorKind::InvalidConfig,
                        format!("object {name} in bucket {} is a link to a bucket", self.bucket),
                    ),
                    GetErrorKind::TimedOut => {
                        (ErrorKind::TimedOut, format!("getting {name} from bucket {}", self.bucket))
                    }
                    GetErrorKind::ConsumerCreate | GetErrorKind::Other => (
                        self.unclear_kind().await,
                        format!("getting {name} from bucket {}", self.bucket),
                    ),
                };
                return Err(os_error(kind, what, e));
            }
        };
        let info = ObjectInfo::from_nats(object.info());
        Ok(ObjectReader { object: Box::pin(object), info })
    }

    /// Deletes `name`: its chunks are purged and a later
    /// [`get`](ObjectStore::get) is [`ErrorKind::NotFound`].
    pub async fn delete(&self, name: &str) -> Result<()> {
        let e = match self.store.delete(name).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let kind = match e.kind() {
            object_store::DeleteErrorKind::NotFound => ErrorKind::NotFound,
            object_store::DeleteErrorKind::TimedOut => ErrorKind::TimedOut,
            object_store::DeleteErrorKind::InvalidName => ErrorKind::InvalidConfig,
            _ => self.unclear_kind().await,
        };
        Err(os_error(kind, format!("deleting {name} from bucket {}", self.bucket), e))
    }
}

/// An object being read; see [`ObjectStore::get`].
///
/// Reading yields the object's bytes as they arrive from the stream. Once
/// the last chunk is in, the bytes are checked against the digest the
/// writer recorded: a mismatch fails the read with
/// [`std::io::ErrorKind::InvalidData`]. The caller still checks the
/// length it expects (a reader is not a size check).
pub struct ObjectReader {
    object: Pin<Box<object_store::Object>>,
    info: ObjectInfo,
}

impl ObjectReader {
    /// The object's info as it was when it was opened.
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }
}

impl fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectReader").field("info", &self.info).finish_non_exhaustive()
    }
}

impl AsyncRead for ObjectReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.object.as_mut().poll_read(cx, buf)
    }
}

/// Decodes 43 or 44 characters of URL-safe base64 (padded or not) into 32
/// bytes, the form object stores record digests in.
fn decode_base64url_32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim_end_matches('=').as_bytes();
    if text.len() != 43 {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = [0u8; 32];
    let mut acc = 0u32;
    let mut bits = 0;
    let mut n = 0;
    for &c in text {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if n == out.len() {
                return None;
            }
            out[n] = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    // 43 characters carry 258 bits: the last two must be zero.
    (n == 32 && acc == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_decode_from_base64url() {
        // SHA-256 of "abc".
        let want: [u8; 32] = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
            0xf2, 0x00, 0x15, 0xad,
        ];
        let padded = "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=";
        assert_eq!(decode_base64url_32(padded), Some(want));
        assert_eq!(decode_base64url_32(padded.trim_end_matches('=')), Some(want));
        assert_eq!(decode_base64url_32("ungWv48Bz"), None);
        assert_eq!(decode_base64url_32(&padded.replace('u', "!")), None);
        // Non-zero trailing bits are not a canonical encoding.
        assert_eq!(decode_base64url_32("ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa1"), None);
    }
}
