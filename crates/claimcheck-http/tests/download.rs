//! The downloader against fault-injecting servers: backoff, what is retried
//! and what is not, lengths, checksums, timeouts, URL safety, redaction.
//! Attempts are counted on the server side; no test looks at a clock.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use natsbridge_claimcheck_http::{
    DownloadHandler, DownloadHandlerExt, DownloadRequest, DownloadSink, Downloaded, Error,
    ErrorKind, HttpDownloader, UploadHandler, UploadHandlerExt, UploadSource, download_fn,
    upload_fn,
};

use crate::util::{
    Failure, FaultServer, Reply, downloader, fast_retry, files_under, payload, respond,
    respond_chunked, respond_lying, sha256_hex,
};

fn ok(body: &[u8]) -> Reply {
    respond(200, &[], body)
}

fn plain(status: u16, text: &str) -> Reply {
    respond(
        status,
        &[("Content-Type", "text/plain; charset=utf-8")],
        format!("{text}\n").as_bytes(),
    )
}

async fn fetch(server: &FaultServer, down: &HttpDownloader, size: u64) -> Result<Bytes, Error> {
    let request = DownloadRequest::new(format!("{}/file/a/b/c.bin", server.url), size);
    down.download_bytes(&request).await
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let body = payload(70_000);
    let b = body.clone();
    let server =
        FaultServer::start(move |_, n| if n < 2 { plain(503, "busy") } else { ok(&b) }).await;
    let got = fetch(&server, &downloader(5), body.len() as u64).await.unwrap();
    assert!(got == body);
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn gives_up_after_max_retries() {
    let server = FaultServer::start(|_, _| plain(503, "down for maintenance")).await;
    let err = fetch(&server, &downloader(3), 10).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Http { status: 503 }, "{err}");
    assert!(err.to_string().contains("down for maintenance"), "{err}");
    assert!(err.to_string().contains("after 4 tries"), "{err}");
    assert_eq!(server.hits(), 4);

    // The defaults: 5 retries, so 6 tries.
    let server = FaultServer::start(|_, _| plain(500, "boom")).await;
    let err = fetch(&server, &downloader(5), 10).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Http { status: 500 }, "{err}");
    assert_eq!(server.hits(), 6);
}

#[tokio::test]
async fn retries_429_and_408() {
    let server = FaultServer::start(|_, n| match n {
        0 => plain(429, "slow down"),
        1 => plain(408, "request timeout"),
        _ => ok(b"done"),
    })
    .await;
    assert_eq!(&fetch(&server, &downloader(5), 4).await.unwrap()[..], b"done");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn retries_plik_missing_and_uploading() {
    let server = FaultServer::start(|_, n| match n {
        0 => plain(404, "file c.bin (b) is not available : missing"),
        1 => plain(404, "file c.bin (b) is not available : uploading"),
        _ => ok(b"here"),
    })
    .await;
    assert_eq!(&fetch(&server, &downloader(5), 4).await.unwrap()[..], b"here");
    assert_eq!(server.hits(), 3);

    let server =
        FaultServer::start(|_, _| plain(404, "file c.bin (b) is not available : uploading")).await;
    let err = fetch(&server, &downloader(2), 4).await.failure();
    assert_eq!(err.kind(), &ErrorKind::NotReady, "{err}");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn other_4xx_are_not_retried() {
    for (status, text, kind) in [
        (404, "file b not found", ErrorKind::NotFound),
        (404, "file c.bin (b) is not available : removed", ErrorKind::Gone),
        (404, "upload a has expired", ErrorKind::Gone),
        (410, "gone", ErrorKind::Gone),
        (403, "forbidden", ErrorKind::Http { status: 403 }),
        (400, "invalid file name", ErrorKind::Http { status: 400 }),
        (401, "Please provide valid credentials", ErrorKind::Http { status: 401 }),
    ] {
        let server = FaultServer::start(move |_, _| plain(status, text)).await;
        let err = fetch(&server, &downloader(5), 4).await.failure();
        assert_eq!(err.kind(), &kind, "{status} {text}: {err}");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains(text), "{err}");
        assert_eq!(server.hits(), 1, "{status} {text} was retried");
    }
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let request = DownloadRequest::new(format!("http://127.0.0.1:{port}/x"), 1);
    let err = downloader(2).download_bytes(&request).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Connection, "{err}");
    assert!(err.to_string().contains("after 3 tries"), "{err}");
}

#[tokio::test]
async fn short_content_length_is_a_size_mismatch() {
    let server = FaultServer::start(|_, _| respond_lying(5, b"12345")).await;
    let err = fetch(&server, &downloader(5), 10).await.failure();
    assert_eq!(err.kind(), &ErrorKind::SizeMismatch { expected: 10, actual: 5 }, "{err}");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn body_cut_short_is_never_a_short_payload() {
    // The server announces the right length, then closes early: a broken
    // transfer, retried, and never returned as a shorter payload.
    let body = payload(100_000);
    let b = body.clone();
    let server = FaultServer::start(move |_, _| respond_lying(b.len(), &b[..40_000])).await;
    let err = fetch(&server, &downloader(2), body.len() as u64).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Connection, "{err}");
    assert_eq!(server.hits(), 3);

    // The same cut on the first try only: the retry starts from zero.
    let b = body.clone();
    let server =
        FaultServer::start(
            move |_, n| {
                if n == 0 { respond_lying(b.len(), &b[..40_000]) } else { ok(&b) }
            },
        )
        .await;
    let got = fetch(&server, &downloader(2), body.len() as u64).await.unwrap();
    assert!(got == body);
    assert_eq!(server.hits(), 2);

    // Chunked, cleanly terminated but short.
    let b = body.clone();
    let server = FaultServer::start(move |_, _| respond_chunked(&b[..99_999])).await;
    let err = fetch(&server, &downloader(2), body.len() as u64).await.failure();
    assert_eq!(err.kind(), &ErrorKind::SizeMismatch { expected: 100_000, actual: 99_999 });
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn longer_than_declared_is_detected() {
    let server = FaultServer::start(|_, _| ok(b"0123456789AB")).await;
    let err = fetch(&server, &downloader(2), 10).await.failure();
    assert_eq!(err.kind(), &ErrorKind::SizeMismatch { expected: 10, actual: 12 }, "{err}");
    assert_eq!(server.hits(), 1);

    // Without a Content-Length, reading stops as soon as the size is passed.
    let big = payload(1_000_000);
    let server = FaultServer::start(move |_, _| respond_chunked(&big)).await;
    let err = fetch(&server, &downloader(2), 100).await.failure();
    assert!(
        matches!(err.kind(), ErrorKind::SizeMismatch { expected: 100, actual } if *actual > 100),
        "{err}"
    );
}

#[tokio::test]
async fn an_undeclared_size_takes_what_arrives_up_to_the_cap() {
    let unsized_fetch = |server: &FaultServer, down: &HttpDownloader| {
        let request = DownloadRequest::with_unknown_size(format!("{}/file/a/b/c.bin", server.url));
        let down = down.clone();
        async move { down.download_bytes(&request).await }
    };
    let body = payload(300_000);
    let b = body.clone();
    let server = FaultServer::start(move |_, _| ok(&b)).await;
    let got = unsized_fetch(&server, &downloader(0)).await.unwrap();
    assert!(got == body, "with a Content-Length");
    let b = body.clone();
    let server = FaultServer::start(move |_, _| respond_chunked(&b)).await;
    let got = unsized_fetch(&server, &downloader(0)).await.unwrap();
    assert!(got == body, "chunked");

    let capped =
        HttpDownloader::builder().retry(fast_retry(2)).max_download_size(100_000).build().unwrap();
    // Announced over the cap: refused on the headers, and not retried.
    let b = body.clone();
    let server = FaultServer::start(move |_, _| ok(&b)).await;
    let err = unsized_fetch(&server, &capped).await.failure();
    assert_eq!(err.kind(), &ErrorKind::TooLarge { limit: 100_000 }, "{err}");
    assert_eq!(server.hits(), 1);
    // Chunked past the cap: reading stops there.
    let b = body.clone();
    let server = FaultServer::start(move |_, _| respond_chunked(&b)).await;
    let err = unsized_fetch(&server, &capped).await.failure();
    assert_eq!(err.kind(), &ErrorKind::TooLarge { limit: 100_000 }, "{err}");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn max_download_size_is_enforced_while_streaming() {
    // The declared size fits the limit; the body does not. Never more than
    // the limit is kept.
    let big = payload(2_000_000);
    let server = FaultServer::start(move |_, _| respond_chunked(&big)).await;
    let down = HttpDownloader::builder()
        .retry(fast_retry(0))
        .max_download_size(1_000_000)
        .build()
        .unwrap();
    let err = fetch(&server, &down, 1_000_000).await.failure();
    assert!(matches!(err.kind(), ErrorKind::SizeMismatch { expected: 1_000_000, .. }), "{err}");

    // Declared over the limit: refused before any request.
    let err = fetch(&server, &down, 1_000_001).await.failure();
    assert_eq!(err.kind(), &ErrorKind::TooLarge { limit: 1_000_000 }, "{err}");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn wrong_checksum_is_integrity_and_not_retried() {
    let body = payload(1000);
    let b = body.clone();
    let server = FaultServer::start(move |_, _| ok(&b)).await;
    let url = format!("{}/f", server.url);
    let down = downloader(3);

    let wrong = DownloadRequest::new(&url, 1000).with_sha256(sha256_hex(b"other"));
    let err = down.download_bytes(&wrong).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Integrity, "{err}");
    assert_eq!(server.hits(), 1);

    let right = DownloadRequest::new(&url, 1000).with_sha256(sha256_hex(&body).to_uppercase());
    assert!(down.download_bytes(&right).await.unwrap() == body);

    let malformed = DownloadRequest::new(&url, 1000).with_sha256("abc");
    let err = down.download_bytes(&malformed).await.failure();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput, "{err}");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_try_that_hangs_times_out_and_is_retried() {
    let server = FaultServer::start(|_, _| Reply::Hang).await;
    let down = HttpDownloader::builder()
        .retry(fast_retry(1))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = fetch(&server, &down, 10).await.failure();
    assert_eq!(err.kind(), &ErrorKind::TimedOut, "{err}");
    crate::util::eventually(|| server.hits() == 2).await;
}

#[tokio::test]
async fn a_body_that_stalls_times_out() {
    let server = FaultServer::start(|_, _| {
        let mut r = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
        r.extend_from_slice(&[7u8; 300]);
        Reply::RawThenHang(r)
    })
    .await;
    let down = HttpDownloader::builder()
        .retry(fast_retry(0))
        .read_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = fetch(&server, &down, 1000).await.failure();
    assert_eq!(err.kind(), &ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("300 of 1000"), "{err}");
}

#[tokio::test]
async fn a_slow_loris_body_times_out() {
    // Headers at once, then a byte every 20 ms: each piece comes well within
    // the read timeout, but the average stays far under the minimum rate.
    let server = FaultServer::start(|_, _| Reply::Trickle {
        head: b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec(),
        body: vec![7u8; 1000],
        every: Duration::from_millis(20),
    })
    .await;
    let down = HttpDownloader::builder()
        .retry(fast_retry(1))
        .read_timeout(Duration::from_millis(300))
        .min_rate(1000)
        .build()
        .unwrap();
    let err = fetch(&server, &down, 1000).await.failure();
    assert_eq!(err.kind(), &ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("trickled"), "{err}");
    assert!(err.to_string().contains("after 2 tries"), "{err}");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn non_http_links_are_refused() {
    let down = downloader(3);
    for url in [
        "file:///etc/passwd",
        "ftp://files.example/x",
        "data:text/plain,hi",
        "javascript:alert(1)",
        "/relative/path",
        "",
    ] {
        let err = down.download_bytes(&DownloadRequest::new(url, 4)).await.failure();
        assert_eq!(err.kind(), &ErrorKind::UrlRefused, "{url}: {err}");
    }
    let work = tempfile::tempdir().unwrap();
    let err = down
        .download_to_file(&DownloadRequest::new("file:///etc/hostname", 4), work.path().join("x"))
        .await
        .failure();
    assert_eq!(err.kind(), &ErrorKind::UrlRefused);
    assert!(files_under(work.path()).is_empty());
}

#[tokio::test]
async fn disallowed_origins_are_refused_without_a_request() {
    let server = FaultServer::start(|_, _| ok(b"x")).await;
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let url = format!("{}/f", server.url);
    for allowed in [
        "http://files.example".to_owned(),
        format!("https://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        "http://127.0.0.1:1".to_owned(),
    ] {
        let down = HttpDownloader::builder().allow_origin(&allowed).build().unwrap();
        let err = down.download_bytes(&DownloadRequest::new(&url, 1)).await.failure();
        assert_eq!(err.kind(), &ErrorKind::UrlRefused, "{allowed}: {err}");
    }
    assert_eq!(server.hits(), 0);

    let down = HttpDownloader::builder()
        .allow_origin("http://files.example")
        .allow_origin(format!("http://127.0.0.1:{port}/any/path"))
        .build()
        .unwrap();
    assert_eq!(&down.download_bytes(&DownloadRequest::new(&url, 1)).await.unwrap()[..], b"x");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn deny_unlisted_refuses_every_link_when_no_origin_is_allowed() {
    let server = FaultServer::start(|_, _| ok(b"internal")).await;
    let url = format!("{}/admin", server.url);
    let down = HttpDownloader::builder().deny_unlisted(true).build().unwrap();
    let err = down.download_bytes(&DownloadRequest::new(&url, 8)).await.failure();
    assert_eq!(err.kind(), &ErrorKind::UrlRefused, "{err}");
    assert!(err.to_string().contains("no file server origin is configured"), "{err}");
    assert_eq!(server.hits(), 0, "a refused link must cost no request");

    // An origin allowed explicitly is still fetched.
    let down =
        HttpDownloader::builder().deny_unlisted(true).allow_origin(&server.url).build().unwrap();
    assert_eq!(
        &down.download_bytes(&DownloadRequest::new(&url, 8)).await.unwrap()[..],
        b"internal"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_receivers_credentials_go_only_to_their_origin_and_a_links_own_never() {
    let files = FaultServer::start(|_, _| ok(b"x")).await;
    let other = FaultServer::start(|_, _| ok(b"y")).await;
    let with_user = files.url.replacen("http://", "http://bob:pa%20ss@", 1);
    let down = HttpDownloader::builder()
        .allow_origin(with_user)
        .allow_origin(&other.url)
        .retry(fast_retry(0))
        .build()
        .unwrap();
    // "bob:pa ss" in basic auth.
    let expected = "Basic Ym9iOnBhIHNz";
    down.download_bytes(&DownloadRequest::new(format!("{}/f", files.url), 1)).await.unwrap();
    // A link that carries user info of its own: dropped, ours sent instead.
    let forged = files.url.replacen("http://", "http://mallory:x@", 1);
    down.download_bytes(&DownloadRequest::new(format!("{forged}/f"), 1)).await.unwrap();
    for seen in files.seen() {
        assert_eq!(seen.header("authorization"), Some(expected), "{seen:?}");
    }
    // Another allowed origin gets no credentials, nor a link's own.
    let forged = other.url.replacen("http://", "http://mallory:x@", 1);
    down.download_bytes(&DownloadRequest::new(format!("{forged}/f"), 1)).await.unwrap();
    assert_eq!(other.seen()[0].header("authorization"), None);
}

#[tokio::test]
async fn a_digest_sink_checks_and_hashes_without_keeping_the_bytes() {
    let body = payload(300_000);
    let b = body.clone();
    let server = FaultServer::start(move |_, _| ok(&b)).await;
    let url = format!("{}/f", server.url);
    let down = downloader(0);
    let request = DownloadRequest::new(&url, body.len() as u64);
    let got = down.download(&request, DownloadSink::Digest).await.unwrap();
    let Downloaded::Digest { size, sha256 } = got else { panic!("not a digest: {got:?}") };
    assert_eq!(size, body.len() as u64);
    assert_eq!(crate::util::hex(&sha256), sha256_hex(&body));
    // A declared SHA-256 is still verified.
    let wrong = request.clone().with_sha256("00".repeat(32));
    let err = down.download(&wrong, DownloadSink::Digest).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Integrity, "{err}");
    // And the declared size.
    let short = DownloadRequest::new(&url, body.len() as u64 + 1);
    let err = down.download(&short, DownloadSink::Digest).await.failure();
    assert!(matches!(err.kind(), ErrorKind::SizeMismatch { .. }), "{err}");
}

#[tokio::test]
async fn a_requests_own_cap_is_enforced_under_the_downloaders() {
    let server = FaultServer::start(|_, _| respond_chunked(&payload(5_000))).await;
    let url = format!("{}/f", server.url);
    let down = downloader(0);
    // Declared over the cap: refused before any request.
    let err = down
        .download_bytes(&DownloadRequest::new(&url, 5_000).with_max_size(4_999))
        .await
        .failure();
    assert_eq!(err.kind(), &ErrorKind::TooLarge { limit: 4_999 }, "{err}");
    assert_eq!(server.hits(), 0);
    // Undeclared: stopped as soon as it passes the cap.
    let err = down
        .download_bytes(&DownloadRequest::with_unknown_size(&url).with_max_size(1_000))
        .await
        .failure();
    assert_eq!(err.kind(), &ErrorKind::TooLarge { limit: 1_000 }, "{err}");
    // Under it, whole.
    let got =
        down.download_bytes(&DownloadRequest::with_unknown_size(&url).with_max_size(5_000)).await;
    assert_eq!(got.unwrap().len(), 5_000);
}

#[tokio::test]
async fn links_never_carry_the_file_servers_user_info() {
    let served = crate::util::file_server().await;
    let with_user = served.url().replacen("http://", "http://alice:s3cret@", 1);
    let plik = natsbridge_claimcheck_http::PlikUploader::new(with_user.as_str()).unwrap();
    let link = plik.upload_bytes("a.bin", payload(1_000)).await.unwrap();
    assert!(!link.contains("alice") && !link.contains("s3cret"), "{link}");
    assert!(link.starts_with(served.url()), "{link}");
    let put = natsbridge_claimcheck_http::HttpPutUploader::builder(format!(
        "{with_user}/put/{{uuid}}/{{name}}"
    ))
    .build()
    .unwrap();
    let link = put.upload_bytes("b.bin", payload(1_000)).await.unwrap();
    assert!(!link.contains("alice") && !link.contains("s3cret"), "{link}");
    let got = downloader(0).download_bytes(&DownloadRequest::new(&link, 1_000)).await.unwrap();
    assert!(got == payload(1_000));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let target = FaultServer::start(|_, _| ok(b"secret")).await;
    let location = format!("{}/elsewhere?sig=SECRET", target.url);
    let server =
        FaultServer::start(move |_, _| respond(302, &[("Location", &location)], b"")).await;
    let err = fetch(&server, &downloader(3), 6).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Redirect { status: 302 }, "{err}");
    assert!(!format!("{err} {err:?}").contains("SECRET"), "{err}");
    assert_eq!(server.hits(), 1);
    assert_eq!(target.hits(), 0);
}

#[tokio::test]
async fn errors_never_show_query_strings() {
    let server = FaultServer::start(|_, _| plain(404, "no such key")).await;
    let url = format!("{}/bucket/key?X-Amz-Credential=AKIA&X-Amz-Signature=SECRET", server.url);
    let err = downloader(0).download_bytes(&DownloadRequest::new(&url, 4)).await.failure();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    let shown = format!("{err} {err:?} {:?}", std::error::Error::source(&err));
    assert!(!shown.contains("SECRET") && !shown.contains("AKIA"), "{shown}");
    assert!(shown.contains("/bucket/key"), "{shown}");

    // Errors that come out of the HTTP client itself are stripped too.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://user:PASSWORD@127.0.0.1:{port}/k?sig=SECRET");
    let err = downloader(0).download_bytes(&DownloadRequest::new(&url, 4)).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Connection);
    let mut shown = format!("{err} {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        shown.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    assert!(!shown.contains("SECRET") && !shown.contains("PASSWORD"), "{shown}");
}

#[tokio::test]
async fn file_sink_retries_from_zero_and_cleans_up() {
    let body = payload(300_000);
    let b = body.clone();
    let server = FaultServer::start(move |_, n| match n {
        0 => respond_lying(b.len(), &b[..1000]),
        1 => plain(503, "busy"),
        _ => ok(&b),
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("out.bin");
    let request = DownloadRequest::new(format!("{}/f", server.url), body.len() as u64)
        .with_sha256(sha256_hex(&body));
    downloader(3).download_to_file(&request, &dest).await.unwrap();
    assert!(std::fs::read(&dest).unwrap() == body);
    assert_eq!(files_under(work.path()), vec![dest.clone()]);

    // A failure leaves the existing target untouched and no temporary file.
    std::fs::write(&dest, b"previous").unwrap();
    let server = FaultServer::start(|_, _| plain(500, "boom")).await;
    let request = DownloadRequest::new(format!("{}/f", server.url), 5);
    let err = downloader(1).download_to_file(&request, &dest).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Http { status: 500 });
    assert_eq!(std::fs::read(&dest).unwrap(), b"previous");
    assert_eq!(files_under(work.path()), vec![dest]);
}

#[tokio::test]
async fn sends_a_user_agent_plik_recognises() {
    let server = FaultServer::start(|_, _| ok(b"ua")).await;
    fetch(&server, &downloader(0), 2).await.unwrap();
    let ua = server.seen()[0].header("user-agent").unwrap_or("").to_ascii_lowercase();
    assert!(ua.starts_with("plik_client"), "{ua}");
}

#[tokio::test]
async fn handlers_can_be_closures_behind_trait_objects() {
    let store: Arc<dyn UploadHandler> = Arc::new(upload_fn(|name: String, source| async move {
        let len = match source {
            UploadSource::Bytes(b) => b.len(),
            other => return Err(Error::new(ErrorKind::InvalidInput, format!("{other:?}"))),
        };
        Ok(format!("mem://{name}/{len}"))
    }));
    assert_eq!(store.upload_bytes("x", vec![1, 2, 3]).await.unwrap(), "mem://x/3");

    let fetcher: Arc<dyn DownloadHandler> =
        Arc::new(download_fn(|request: DownloadRequest, sink| async move {
            assert_eq!(sink, DownloadSink::Memory);
            Ok(Downloaded::Bytes(Bytes::from(vec![9u8; request.size.unwrap_or(0) as usize])))
        }));
    let got = fetcher.download_bytes(&DownloadRequest::new("mem://x/3", 3)).await.unwrap();
    assert_eq!(&got[..], &[9, 9, 9]);

    let failing = download_fn(|_req: DownloadRequest, _sink| async {
        Err::<Downloaded, _>(Error::new(ErrorKind::Other, "my store is down"))
    });
    let err = failing.download_bytes(&DownloadRequest::new("x", 1)).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Other);
}
