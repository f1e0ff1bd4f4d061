//! One set of checks, run against every upload handler with the crate's
//! `FileServer` behind it: Plik one-shot, and plain HTTP PUT.

use std::sync::Arc;

use natsbridge_claimcheck_http::{
    DownloadHandlerExt, DownloadRequest, ErrorKind, HttpDownloader, HttpPutUploader, PlikUploader,
    UploadHandler, UploadHandlerExt, UploadSource,
};

use crate::util::{Failure, Served, downloader, file_server, files_under, payload, sha256_hex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Plik,
    Put,
    #[cfg(feature = "s3")]
    S3,
}

/// The store behind a handler, alive as long as the test needs it.
struct Store {
    served: Served,
    #[cfg(feature = "s3")]
    _moto: Option<crate::util::Moto>,
    /// Where the links point.
    origin: String,
}

impl Store {
    fn url(&self) -> &str {
        &self.origin
    }
}

async fn setup(backend: Backend) -> (Store, Arc<dyn UploadHandler>) {
    let served = file_server().await;
    let origin = served.url().to_owned();
    let handler: Arc<dyn UploadHandler> = match backend {
        Backend::Plik => Arc::new(PlikUploader::new(served.url()).unwrap()),
        Backend::Put => {
            Arc::new(HttpPutUploader::builder(served.server.put_template()).build().unwrap())
        }
        #[cfg(feature = "s3")]
        Backend::S3 => {
            let moto = crate::util::Moto::start().await;
            let handler = Arc::new(moto.uploader());
            let origin = moto.url.clone();
            return (Store { served, _moto: Some(moto), origin }, handler);
        }
    };
    let store = Store {
        served,
        #[cfg(feature = "s3")]
        _moto: None,
        origin,
    };
    (store, handler)
}

/// 0 B, 1 B, threshold - 1, threshold, 5 MB: uploaded from memory, downloaded
/// to memory with the checksum verified.
async fn round_trips(backend: Backend) {
    let (served, up) = setup(backend).await;
    let down = downloader(2);
    for size in [0, 1, 499_999, 500_000, 5_000_000] {
        let bytes = payload(size);
        let link = up.upload_bytes("payload.bin", bytes.clone()).await.unwrap();
        assert!(link.starts_with(served.url()), "{link}");
        let request = DownloadRequest::new(&link, size as u64).with_sha256(sha256_hex(&bytes));
        let got = down.download_bytes(&request).await.unwrap();
        assert_eq!(got.len(), size);
        assert!(got == bytes, "{backend:?}: {size} bytes differ after the round trip");
    }
}

/// A file and a reader of known length as sources, a file as sink.
async fn streamed_sources_and_file_sink(backend: Backend) {
    let (served, up) = setup(backend).await;
    let down = downloader(2);
    let work = tempfile::tempdir().unwrap();
    let bytes = payload(1_234_567);
    let src = work.path().join("src.bin");
    std::fs::write(&src, &bytes).unwrap();

    let link = up.upload_file("from file.bin", &src).await.unwrap();
    let dest = work.path().join("out1.bin");
    let request = DownloadRequest::new(&link, bytes.len() as u64).with_sha256(sha256_hex(&bytes));
    assert_eq!(down.download_to_file(&request, &dest).await.unwrap(), dest);
    assert!(std::fs::read(&dest).unwrap() == bytes);

    let reader = std::io::Cursor::new(bytes.clone());
    let link = up
        .upload("from reader.bin", UploadSource::reader(reader, bytes.len() as u64))
        .await
        .unwrap();
    let got = down.download_bytes(&DownloadRequest::new(&link, bytes.len() as u64)).await;
    assert!(got.unwrap() == bytes);

    // A reader shorter than it claims fails the upload, with the caller's
    // mistake named, not the transport's.
    let short = std::io::Cursor::new(vec![1u8; 10]);
    let err = up.upload("short.bin", UploadSource::reader(short, 11)).await.failure();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput, "{err}");
    drop(served);
}

/// The second GET of a Plik one-shot link fails as `Gone`, at once; a PUT
/// link can be fetched again.
async fn second_get(backend: Backend) {
    let (_served, up) = setup(backend).await;
    let down = downloader(3);
    let bytes = payload(10_000);
    let link = up.upload_bytes("once.bin", bytes.clone()).await.unwrap();
    let request = DownloadRequest::new(&link, bytes.len() as u64);
    assert!(down.download_bytes(&request).await.unwrap() == bytes);
    let again = down.download_bytes(&request).await;
    if backend == Backend::Plik {
        let err = again.failure();
        assert_eq!(err.kind(), &ErrorKind::Gone, "{err}");
        assert!(!err.to_string().contains("tries"), "Gone must not be retried: {err}");
    } else {
        assert!(again.unwrap() == bytes);
    }
}

/// A wrong checksum fails with `Integrity`; to a file, nothing is left
/// behind (no target, no temporary file).
async fn wrong_checksum(backend: Backend) {
    let (_served, up) = setup(backend).await;
    let down = downloader(3);
    let work = tempfile::tempdir().unwrap();
    let bytes = payload(300_000);
    let wrong = sha256_hex(b"something else");

    let link = up.upload_bytes("a.bin", bytes.clone()).await.unwrap();
    let request = DownloadRequest::new(&link, bytes.len() as u64).with_sha256(&wrong);
    let err = down.download_bytes(&request).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Integrity, "{err}");

    let link = up.upload_bytes("b.bin", bytes.clone()).await.unwrap();
    let request = DownloadRequest::new(&link, bytes.len() as u64).with_sha256(&wrong);
    let dest = work.path().join("b.bin");
    let err = down.download_to_file(&request, &dest).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Integrity, "{err}");
    assert!(files_under(work.path()).is_empty(), "left behind: {:?}", files_under(work.path()));
}

/// A disallowed origin and a size over the limit are refused before any
/// request: for Plik, the one-shot file is still there afterwards.
async fn refused_before_any_request(backend: Backend) {
    let (served, up) = setup(backend).await;
    let bytes = payload(200_000);
    let link = up.upload_bytes("guarded.bin", bytes.clone()).await.unwrap();
    let request = DownloadRequest::new(&link, bytes.len() as u64);

    let elsewhere =
        HttpDownloader::builder().allow_origin("http://files.example:8080").build().unwrap();
    let err = elsewhere.download_bytes(&request).await.failure();
    assert_eq!(err.kind(), &ErrorKind::UrlRefused, "{err}");

    let small = HttpDownloader::builder().max_download_size(100_000).build().unwrap();
    let err = small.download_bytes(&request).await.failure();
    assert_eq!(err.kind(), &ErrorKind::TooLarge { limit: 100_000 }, "{err}");

    let allowed = HttpDownloader::builder().allow_origin(served.url()).build().unwrap();
    assert!(allowed.download_bytes(&request).await.unwrap() == bytes);
}

/// The SHA-256 computed during the upload is the payload's, from every kind
/// of source, and the download verifies against it.
async fn sha256_on_the_way(backend: Backend) {
    let (_store, up) = setup(backend).await;
    let down = downloader(2);
    let work = tempfile::tempdir().unwrap();
    let bytes = payload(777_777);
    let path = work.path().join("p.bin");
    std::fs::write(&path, &bytes).unwrap();
    let sources = [
        UploadSource::Bytes(bytes.clone().into()),
        UploadSource::File(path),
        UploadSource::reader(std::io::Cursor::new(bytes.clone()), bytes.len() as u64),
    ];
    for source in sources {
        let (link, sha) = up.upload_with_sha256("p.bin", source).await.unwrap();
        assert_eq!(sha, sha256_hex(&bytes));
        let request = DownloadRequest::new(&link, bytes.len() as u64).with_sha256(&sha);
        assert!(down.download_bytes(&request).await.unwrap() == bytes);
    }
}

macro_rules! shared_checks {
    ($($check:ident),* $(,)?) => {
        mod plik {
            $(#[tokio::test]
            async fn $check() {
                super::$check(super::Backend::Plik).await
            })*
        }
        mod put {
            $(#[tokio::test]
            async fn $check() {
                super::$check(super::Backend::Put).await
            })*
        }
        #[cfg(feature = "s3")]
        mod s3 {
            $(#[tokio::test]
            async fn $check() {
                super::$check(super::Backend::S3).await
            })*
        }
    };
}

shared_checks!(
    round_trips,
    streamed_sources_and_file_sink,
    second_get,
    wrong_checksum,
    refused_before_any_request,
    sha256_on_the_way,
);

/// 300 MB from a file to a file through Plik one-shot, streamed both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plik_300_mb_file_to_file() {
    use std::io::Write;

    let (store, up) = setup(Backend::Plik).await;
    let served = &store.served;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("big.bin");
    let size: u64 = 300 * 1000 * 1000;
    {
        // 1 MiB blocks, each stamped with its index, so that a block sent
        // twice or out of order would be noticed.
        let mut block = payload(1 << 20);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        let mut written = 0u64;
        let mut i = 0u64;
        while written < size {
            block[..8].copy_from_slice(&i.to_le_bytes());
            let n = (size - written).min(block.len() as u64) as usize;
            f.write_all(&block[..n]).unwrap();
            written += n as u64;
            i += 1;
        }
        f.flush().unwrap();
    }
    let link = up.upload_file("big.bin", &src).await.unwrap();
    let dest = work.path().join("big.out");
    let down = HttpDownloader::builder()
        .retry(crate::util::fast_retry(0))
        .max_download_size(size)
        .build()
        .unwrap();
    down.download_to_file(&DownloadRequest::new(&link, size), &dest).await.unwrap();

    assert_eq!(std::fs::metadata(&dest).unwrap().len(), size);
    let (mut a, mut b) = (std::fs::File::open(&src).unwrap(), std::fs::File::open(&dest).unwrap());
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        use std::io::Read;
        let n = a.read(&mut x).unwrap();
        let mut m = 0;
        while m < n {
            let k = b.read(&mut y[m..n]).unwrap();
            assert!(k > 0, "downloaded file is short");
            m += k;
        }
        assert!(x[..n] == y[..n], "downloaded file differs");
        if n == 0 {
            break;
        }
    }
    // One-shot: the server deletes its copy once it has been sent.
    crate::util::eventually(|| files_under(served.dir.path()).is_empty()).await;
}

/// S3 beyond the shared checks: a multipart upload streamed from a file,
/// and a presigned link whose signature never shows in an error. (moto does
/// not check signatures, so a forged link cannot be tested against it.)
#[cfg(feature = "s3")]
#[tokio::test]
async fn s3_multipart_and_presigned_links() {
    let moto = crate::util::Moto::start().await;
    let s3 = moto.uploader();
    let work = tempfile::tempdir().unwrap();
    let bytes = payload(20 * 1024 * 1024 + 123);
    let src = work.path().join("big.bin");
    std::fs::write(&src, &bytes).unwrap();
    let link = s3.upload_file("big file.bin", &src).await.unwrap();
    assert!(
        link.starts_with(&format!("{}/{}/natsbridge/", moto.url, crate::util::BUCKET)),
        "{link}"
    );
    assert!(link.contains("X-Amz-Signature="), "{link}");

    let down = HttpDownloader::builder().allow_origin(&moto.url).build().unwrap();
    let request = DownloadRequest::new(&link, bytes.len() as u64).with_sha256(sha256_hex(&bytes));
    let dest = work.path().join("big.out");
    down.download_to_file(&request, &dest).await.unwrap();
    assert!(std::fs::read(&dest).unwrap() == bytes);

    // A wrong size: the error names the object but not the signature.
    let err = down.download_bytes(&DownloadRequest::new(&link, 5)).await.failure();
    assert!(matches!(err.kind(), ErrorKind::SizeMismatch { expected: 5, .. }), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("X-Amz-Signature") && !shown.contains("X-Amz-Credential"), "{shown}");
    // The key is the name made safe (natsbridge_claimcheck::safe_file_name).
    assert!(shown.contains("big_file.bin"), "{shown}");
}

/// A PUT uploader's query signature and headers never show in its error or
/// its `Debug`.
#[tokio::test]
async fn put_uploader_keeps_its_secrets() {
    let served = file_server().await;
    let put = HttpPutUploader::builder(format!("{}/nowhere/{{name}}?sig=SECRET-1", served.url()))
        .header("Authorization", "Bearer SECRET-2")
        .build()
        .unwrap();
    let err = put.upload_bytes("x.bin", vec![1u8; 10]).await.failure();
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");
    let shown = format!("{err} {err:?} {put:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("/nowhere/x.bin"), "{shown}");
}
