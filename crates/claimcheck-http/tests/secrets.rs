//! Presigned signatures and S3 credentials never reach logs or errors: with
//! every `tracing` event and `log` record captured at TRACE level (reqwest,
//! hyper, rustls, object_store and this crate), S3 uploads, presigned
//! downloads that succeed, and presigned downloads that fail and are retried
//! leave none of them in the captured text, nor in any error.

#![cfg(feature = "s3")]

use natsbridge_claimcheck_http::{
    DownloadHandlerExt, DownloadRequest, HttpDownloader, S3Uploader, UploadHandlerExt,
};

use crate::util::{BUCKET, Failure, Moto, fast_retry, payload};

use natsbridge_test_support::capture_logs as capture;

/// The value of `key` in the query string of `url`.
fn query_value(url: &str, key: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {url}"))
        .to_owned()
}

#[tokio::test]
async fn presigned_signatures_and_s3_keys_never_reach_logs_or_errors() {
    let (log, _capturing) = capture();
    let moto = Moto::start().await;
    let access_key = "AKIAEXAMPLEKEY4C9D2E";
    let secret_key = "s3-SECRET-KEY-7b1e0f9a";
    let s3 = S3Uploader::builder(BUCKET)
        .endpoint(&moto.url)
        .region("us-east-1")
        .credentials(access_key, secret_key)
        .build()
        .unwrap();
    let mut shown = format!("{s3:?}");

    let bytes = payload(70_000);
    let link = s3.upload_bytes("report.bin", bytes.clone()).await.unwrap();
    let signature = query_value(&link, "X-Amz-Signature");
    assert!(signature.len() >= 32, "{link}");

    let down = HttpDownloader::builder().retry(fast_retry(2)).build().unwrap();
    // Succeeds: the client's own TRACE logging sees the URL.
    let got = down.download_bytes(&DownloadRequest::new(&link, bytes.len() as u64)).await;
    assert!(got.unwrap() == bytes);
    // Fails without a retry: the wrong size.
    let err = down.download_bytes(&DownloadRequest::new(&link, 5)).await.failure();
    shown += &format!(" {err} {err:?}");
    // Fails with retries: the same signed query on a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let query = link.split_once('?').unwrap().1;
    let refused = format!("http://127.0.0.1:{closed}/{BUCKET}/report.bin?{query}");
    let err = down.download_bytes(&DownloadRequest::new(&refused, 5)).await.failure();
    shown += &format!(" {err} {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        shown += &format!(" {s} {s:?}");
        source = s.source();
    }

    let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    for secret in [signature.as_str(), secret_key, access_key] {
        assert!(!shown.contains(secret), "an error shows {secret:?}: {shown}");
        assert!(!logged.contains(secret), "the log shows {secret:?}: {logged}");
    }
    assert!(logged.contains("download failed, retrying"), "nothing captured: {logged}");
}
