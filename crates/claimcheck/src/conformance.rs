//! The checks every claim-check store must pass, exported so that any
//! store, in this workspace or not, runs the same suite (crate feature
//! `conformance`; the object_store crate's `integration` module is the
//! model).
//!
//! A store's test builds a [`Store`] (its uploader, its downloader, whether
//! links are one-shot, and a link to an object it never had) and calls the
//! checks; [`transient_faults`] and [`permanent_faults`] also need a
//! [`FaultInjector`] that puts real failures between the store's client and
//! its server: one per protocol (`natsbridge_claimcheck_http::conformance::FaultProxy`
//! for HTTP stores, feature `conformance` of that crate; the JetStream
//! object store's tests bring a NATS-aware one). The suite itself knows no
//! protocol. The checks panic with a message naming the
//! case when the store misbehaves, as test assertions do.
//!
//! ```no_run
//! # async fn run(store: natsbridge_claimcheck::conformance::Store) {
//! use natsbridge_claimcheck::conformance;
//! conformance::round_trips(&store).await;
//! conformance::one_shot(&store).await;
//! conformance::missing_object(&store).await;
//! conformance::tampered(&store).await;
//! # }
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::{
    BoxFuture, DownloadHandler, DownloadHandlerExt, DownloadRequest, ErrorKind, UploadHandler,
    UploadHandlerExt, UploadSource, hex_lower,
};

/// A store under test.
pub struct Store {
    /// Its upload side.
    pub uploader: Arc<dyn UploadHandler>,
    /// Its download side (with a retry policy short enough for tests).
    pub downloader: Arc<dyn DownloadHandler>,
    /// Whether a link can be downloaded once only (Plik one-shot).
    pub one_shot: bool,
    /// A link of this store's form to an object it never stored.
    pub missing_link: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("one_shot", &self.one_shot).finish_non_exhaustive()
    }
}

/// Deterministic bytes that do not compress to nothing.
pub fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex_lower(&Sha256::digest(bytes))
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "natsbridge-conformance-{}-{}-{name}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ))
}

/// Uploads `data` the way `how` says (bytes, file, reader), returning the link.
async fn upload(store: &Store, name: &str, data: &[u8], how: usize) -> String {
    let result = match how % 3 {
        0 => store.uploader.upload_bytes(name, data.to_vec()).await,
        1 => {
            let path = temp_path(name);
            std::fs::write(&path, data).expect("writing the upload's source file");
            let link = store.uploader.upload_file(name, path.clone()).await;
            let _ = std::fs::remove_file(&path);
            link
        }
        _ => {
            let reader = Box::pin(std::io::Cursor::new(data.to_vec()));
            let source = UploadSource::Reader { reader, len: data.len() as u64 };
            store.uploader.upload(name, source).await
        }
    };
    result.unwrap_or_else(|e| panic!("uploading {} bytes ({name}): {e}", data.len()))
}

/// Round trips from 0 B to 24 MiB, uploaded from bytes, a file and a
/// reader, downloaded into memory (with the SHA-256 checked) and into a
/// file; and, for a store that is not one-shot, a second download of the
/// same link.
pub async fn round_trips(store: &Store) {
    for (i, len) in [0usize, 1, 1_000, 1 << 20, 24 << 20].into_iter().enumerate() {
        let data = payload(len, i as u32 + 1);
        for how in 0..3 {
            let name = format!("rt-{len}-{how}.bin");
            let link = upload(store, &name, &data, how).await;
            let request = DownloadRequest::new(&link, len as u64).with_sha256(sha256(&data));
            if how == 2 {
                let dest = temp_path(&name);
                store
                    .downloader
                    .download_to_file(&request, &dest)
                    .await
                    .unwrap_or_else(|e| panic!("{name} into a file: {e}"));
                let got = std::fs::read(&dest).expect("reading the downloaded file");
                let _ = std::fs::remove_file(&dest);
                assert!(got == data, "{name}: the file holds other bytes");
            } else {
                let got = store
                    .downloader
                    .download_bytes(&request)
                    .await
                    .unwrap_or_else(|e| panic!("{name} into memory: {e}"));
                assert!(got == data, "{name}: other bytes came back");
            }
            if !store.one_shot && how == 0 {
                let again = store.downloader.download_bytes(&request).await;
                assert!(again.is_ok_and(|b| b == data), "{name}: a second download failed");
            }
        }
    }
}

/// A one-shot store serves a link once (then [`ErrorKind::Gone`] or
/// [`ErrorKind::NotFound`], not retried into a long wait); any other store
/// serves it again.
pub async fn one_shot(store: &Store) {
    let data = payload(10_000, 7);
    let link = upload(store, "once.bin", &data, 0).await;
    let request = DownloadRequest::new(&link, data.len() as u64);
    let first = store.downloader.download_bytes(&request).await;
    assert!(first.is_ok_and(|b| b == data), "the first download failed");
    let second = store.downloader.download_bytes(&request).await;
    if store.one_shot {
        let err = second.expect_err("a one-shot link was served twice");
        assert!(
            matches!(err.kind(), ErrorKind::Gone | ErrorKind::NotFound),
            "a consumed one-shot link: {err}"
        );
    } else {
        assert!(second.is_ok_and(|b| b == data), "a kept link was not served again");
    }
}

/// A link to an object the store never had is [`ErrorKind::NotFound`] (or
/// [`ErrorKind::Gone`]), and is not retried into success.
pub async fn missing_object(store: &Store) {
    let request = DownloadRequest::new(&store.missing_link, 10);
    let err = store.downloader.download_bytes(&request).await.expect_err("a missing object");
    assert!(matches!(err.kind(), ErrorKind::NotFound | ErrorKind::Gone), "a missing object: {err}");
}

/// Bytes that are not what the record says: another SHA-256 is
/// [`ErrorKind::Integrity`], another size is [`ErrorKind::SizeMismatch`],
/// and neither is retried into success.
pub async fn tampered(store: &Store) {
    let data = payload(50_000, 9);
    let link = upload(store, "t1.bin", &data, 0).await;
    let request =
        DownloadRequest::new(&link, data.len() as u64).with_sha256(sha256(b"other bytes"));
    let err = store.downloader.download_bytes(&request).await.expect_err("a wrong SHA-256");
    assert_eq!(err.kind(), &ErrorKind::Integrity, "a wrong SHA-256: {err}");
    for declared in [data.len() as u64 + 1, data.len() as u64 - 1] {
        let link = upload(store, "t2.bin", &data, 0).await;
        let request = DownloadRequest::new(&link, declared);
        let err = store.downloader.download_bytes(&request).await.expect_err("a wrong size");
        assert!(
            matches!(err.kind(), ErrorKind::SizeMismatch { expected, .. } if *expected == declared),
            "declared {declared} for {} bytes: {err}",
            data.len()
        );
    }
}

/// A downloader capped at `cap` bytes refuses a link declared larger
/// before fetching it, and one that declares no size once more than `cap`
/// bytes arrive ([`ErrorKind::TooLarge`] both).
pub async fn oversize(store: &Store, capped: &dyn DownloadHandler, cap: u64) {
    let data = payload(cap as usize + 1, 11);
    let link = upload(store, "big.bin", &data, 0).await;
    let declared = DownloadRequest::new(&link, data.len() as u64);
    let err = capped.download_bytes(&declared).await.expect_err("over the cap");
    assert!(matches!(err.kind(), ErrorKind::TooLarge { .. }), "declared over the cap: {err}");
    let undeclared = DownloadRequest::with_unknown_size(&link);
    let err = capped.download_bytes(&undeclared).await.expect_err("over the cap, undeclared");
    assert!(matches!(err.kind(), ErrorKind::TooLarge { .. }), "undeclared, over the cap: {err}");
}

/// Transient failures between the client and the store are retried with
/// the configured backoff and the transfer succeeds: each of the
/// injector's [`FaultInjector::transient_faults`] (for HTTP an HTTP 503
/// and a connection reset; for NATS a connection cut mid-transfer), met by
/// two tries in a row, on upload and on download. `store` must reach its
/// server through `faults` (its links too), with at least two retries.
pub async fn transient_faults(store: &Store, faults: &dyn FaultInjector) {
    let data = payload(200_000, 13);
    let kinds = faults.transient_faults();
    assert!(!kinds.is_empty(), "the fault injector names no transient fault");
    for fault in kinds {
        faults.arm(Transfer::Upload, fault, 2).await;
        let link = upload(store, "fault.bin", &data, 0).await;
        assert_eq!(faults.injected(), 2, "{fault:?} on upload: every fault was met, then retried");
        faults.arm(Transfer::Download, fault, 2).await;
        let request = DownloadRequest::new(&link, data.len() as u64).with_sha256(sha256(&data));
        let got = store
            .downloader
            .download_bytes(&request)
            .await
            .unwrap_or_else(|e| panic!("{fault:?} on download was not retried: {e}"));
        assert!(got == data, "{fault:?}: other bytes after the retries");
        assert_eq!(faults.injected(), 2, "{fault:?} on download");

        // A file uploaded with its SHA-256 computed (the path of every
        // large file a sender streams) is retried too.
        faults.arm(Transfer::Upload, fault, 2).await;
        let path = temp_path("fault-file.bin");
        std::fs::write(&path, &data).expect("writing the upload's source file");
        let uploaded = store
            .uploader
            .upload_with_sha256("fault-file.bin", UploadSource::File(path.clone()))
            .await;
        let _ = std::fs::remove_file(&path);
        let (link, sha) = uploaded.unwrap_or_else(|e| {
            panic!("{fault:?} on a file upload with its SHA-256 was not retried: {e}")
        });
        assert_eq!(faults.injected(), 2, "{fault:?} on a file upload with its SHA-256");
        assert_eq!(sha, sha256(&data), "{fault:?}: the file's SHA-256");
        faults.disarm().await;
        let request = DownloadRequest::new(&link, data.len() as u64).with_sha256(sha);
        let got = store.downloader.download_bytes(&request).await.expect("the retried file");
        assert!(got == data, "{fault:?}: other bytes after the file's retries");
    }
    faults.disarm().await;
}

/// A permanent failure (the injector's
/// [`FaultInjector::permanent_fault`]: for HTTP a 403 on upload and a 404
/// on download; for NATS the bucket removed) fails at once, with its kind,
/// after one try. `store` reaches its server through `faults`.
pub async fn permanent_faults(store: &Store, faults: &dyn FaultInjector) {
    let data = payload(1_000, 17);
    let fault = faults.permanent_fault(Transfer::Upload);
    faults.arm(Transfer::Upload, fault, usize::MAX).await;
    let err = store.uploader.upload_bytes("p.bin", data.clone()).await.expect_err("refused");
    assert!(refused_as(fault, err.kind()), "{fault:?} on upload: {err}");
    assert!(!err.is_retryable(), "{fault:?} on upload: {err}");
    assert_eq!(faults.injected(), 1, "a refused upload ({fault:?}) was retried");
    faults.disarm().await;
    let link = upload(store, "p.bin", &data, 0).await;
    let fault = faults.permanent_fault(Transfer::Download);
    faults.arm(Transfer::Download, fault, usize::MAX).await;
    let err = store
        .downloader
        .download_bytes(&DownloadRequest::new(&link, data.len() as u64))
        .await
        .expect_err("refused");
    assert!(refused_as(fault, err.kind()), "{fault:?} on download: {err}");
    assert!(!err.is_retryable(), "{fault:?} on download: {err}");
    assert_eq!(faults.injected(), 1, "a refused download ({fault:?}) was retried");
    faults.disarm().await;
}

/// Whether a permanent `fault` was reported as the kind it stands for.
fn refused_as(fault: Fault, kind: &ErrorKind) -> bool {
    match fault {
        Fault::Status(404) | Fault::Removed => {
            matches!(kind, ErrorKind::NotFound | ErrorKind::Http { status: 404 })
        }
        Fault::Status(status) => *kind == ErrorKind::Http { status },
        Fault::Reset => false,
    }
}

/// Which half of a transfer a fault is armed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// The store's uploader.
    Upload,
    /// The store's downloader.
    Download,
}

/// Puts real failures between a store's client and its server, for
/// [`transient_faults`] and [`permanent_faults`]: one implementation per
/// protocol. `natsbridge_claimcheck_http::conformance::FaultProxy` does it
/// for HTTP stores; a store speaking another protocol brings its own (the
/// JetStream object store's tests put a NATS-aware proxy in front of
/// nats-server).
pub trait FaultInjector: Send + Sync {
    /// The transient faults the store must survive, each run on upload
    /// and on download by [`transient_faults`].
    fn transient_faults(&self) -> Vec<Fault>;

    /// The permanent fault of `transfer`, run by [`permanent_faults`]: it
    /// must be refused at once, with the kind it stands for.
    fn permanent_fault(&self, transfer: Transfer) -> Fault;

    /// Arms `fault` for the next `n` tries of `transfer` (`usize::MAX`:
    /// every try), and resets the count of injected faults.
    fn arm(&self, transfer: Transfer, fault: Fault, n: usize) -> BoxFuture<'_, ()>;

    /// Injects nothing more, and undoes a permanent fault.
    fn disarm(&self) -> BoxFuture<'_, ()>;

    /// Faults injected since the last [`FaultInjector::arm`]: one per try
    /// that met the fault.
    fn injected(&self) -> usize;
}

/// A failure a [`FaultInjector`] puts into a try, instead of forwarding it
/// to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answers the request with this HTTP status (a plain-text body) and
    /// closes the connection.
    Status(u16),
    /// Reads the request, then closes the connection without an answer
    /// (for NATS: reads the message that starts a try, or carries a piece
    /// of it, and cuts the connection; the client reconnects).
    Reset,
    /// What the store writes to and reads from (an object store bucket)
    /// is removed: every try finds nothing. An HTTP fault injector answers
    /// it as HTTP 404.
    Removed,
}
