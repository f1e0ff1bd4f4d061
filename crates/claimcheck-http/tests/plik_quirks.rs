//! The Plik client against a test double that behaves like a real Plik
//! server, quirks included: error redirects to its web page for client names
//! it does not know, its 404 texts, plain-text errors, and a web app that
//! answers 200 with HTML where an API reply was expected.

use natsbridge_claimcheck_http::{
    DownloadHandlerExt, DownloadRequest, ErrorKind, HttpDownloader, PlikUploader, UploadHandlerExt,
};

use crate::util::{Failure, FaultServer, Reply, Seen, fast_retry, payload, respond};

const UPLOAD_ID: &str = "Xz8fK2pQ9mN4rT6v";
const FILE_ID: &str = "Ab3dE5gH7jK9mP1q";
const TOKEN: &str = "SECRET-upload-token-0123456789";

/// Plik's error: plain text for its known clients, a 301 to the web app
/// (with the message in the fragment) for anyone else.
fn plik_fail(request: &Seen, status: u16, message: &str) -> Reply {
    let ua = request.header("user-agent").unwrap_or("").to_ascii_lowercase();
    let known = ["wget", "curl", "python-urllib", "go-http-client", "plik_client"];
    if known.iter().any(|k| ua.starts_with(k)) {
        respond(
            status,
            &[("Content-Type", "text/plain; charset=utf-8")],
            format!("{message}\n").as_bytes(),
        )
    } else {
        let location = format!("/#/?err={message}&errcode={status}&uri={}", request.path);
        respond(301, &[("Location", &location)], b"")
    }
}

fn json(body: &str) -> Reply {
    respond(200, &[("Content-Type", "application/json")], body.as_bytes())
}

/// A Plik that accepts one upload and serves it once.
fn plik_double(request: &Seen, _n: usize) -> Reply {
    let file_path = format!("/file/{UPLOAD_ID}/{FILE_ID}/report%20v2.csv");
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/upload") => json(&format!(
            r#"{{"id":"{UPLOAD_ID}","uploadToken":"{TOKEN}","oneShot":true,"ttl":60,"files":[]}}"#
        )),
        ("POST", p) if p == format!("/file/{UPLOAD_ID}") => {
            if request.header("x-uploadtoken") != Some(TOKEN) {
                return plik_fail(request, 403, "you are not allowed to add file to this upload");
            }
            json(&format!(
                r#"{{"id":"{FILE_ID}","fileName":"report v2.csv","fileSize":{},"status":"uploaded","fileMd5":"x"}}"#,
                request.body.len()
            ))
        }
        ("GET", p) if p == file_path => plik_fail(
            request,
            404,
            &format!("file report v2.csv ({FILE_ID}) is not available : removed"),
        ),
        _ => plik_fail(request, 404, "404 page not found"),
    }
}

#[tokio::test]
async fn uploads_the_way_plik_expects() {
    let server = FaultServer::start(plik_double).await;
    let plik = PlikUploader::builder(&server.url)
        .ttl(std::time::Duration::from_millis(1500))
        .build()
        .unwrap();
    let bytes = payload(123_456);
    let link = plik.upload_bytes("report v2.csv", bytes.clone()).await.unwrap();
    assert_eq!(link, format!("{}/file/{UPLOAD_ID}/{FILE_ID}/report%20v2.csv", server.url));

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let create = &seen[0];
    assert_eq!(create.header("content-type"), Some("application/json"));
    let params: serde_json::Value = serde_json::from_slice(&create.body).unwrap();
    assert_eq!(params["oneShot"], true);
    assert_eq!(params["ttl"], 2, "whole seconds, rounded up");
    assert!(create.header("user-agent").unwrap().starts_with("plik_client"));

    let file = &seen[1];
    assert_eq!(file.header("x-uploadtoken"), Some(TOKEN));
    assert_eq!(file.header("content-length"), Some(file.body.len().to_string().as_str()));
    let ct = file.header("content-type").unwrap();
    let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
    let body = &file.body;
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"report v2.csv\"\r\n"
    );
    assert!(body.starts_with(head.as_bytes()), "{:?}", String::from_utf8_lossy(&body[..200]));
    let start = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let tail = format!("\r\n--{boundary}--\r\n");
    assert!(body.ends_with(tail.as_bytes()));
    assert!(body[start..body.len() - tail.len()] == bytes[..]);
}

#[tokio::test]
async fn one_shot_is_configurable() {
    let server = FaultServer::start(plik_double).await;
    let plik = PlikUploader::builder(&server.url).one_shot(false).build().unwrap();
    plik.upload_bytes("report v2.csv", vec![1u8; 10]).await.unwrap();
    let params: serde_json::Value = serde_json::from_slice(&server.seen()[0].body).unwrap();
    assert_eq!(params["oneShot"], false);
    assert!(params.get("ttl").is_none());
}

#[tokio::test]
async fn plain_text_errors_reach_the_error_but_the_token_does_not() {
    let server = FaultServer::start(|request, _| match request.path.as_str() {
        "/upload" => json(&format!(r#"{{"id":"{UPLOAD_ID}","uploadToken":"{TOKEN}"}}"#)),
        _ => plik_fail(request, 400, "file too big (limit is set to 1.0 MB)"),
    })
    .await;
    let plik = PlikUploader::builder(&server.url).plik_token("SECRET-user-token").build().unwrap();
    let err = plik.upload_bytes("big.bin", payload(2_000)).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Http { status: 400 }, "{err}");
    let shown = format!("{err} {err:?} {plik:?}");
    assert!(shown.contains("file too big (limit is set to 1.0 MB)"), "{shown}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert_eq!(server.seen()[1].header("x-pliktoken"), Some("SECRET-user-token"));
}

#[tokio::test]
async fn a_web_page_where_json_was_due_is_an_invalid_response() {
    // Pointed at the web app (or any site that answers 200 to everything).
    let server = FaultServer::start(|_, _| {
        respond(200, &[("Content-Type", "text/html")], b"<!doctype html><title>Plik</title>")
    })
    .await;
    let plik = PlikUploader::new(&server.url).unwrap();
    let err = plik.upload_bytes("x.bin", vec![0u8; 10]).await.failure();
    assert_eq!(err.kind(), &ErrorKind::InvalidResponse, "{err}");
    assert_eq!(server.hits(), 1, "nothing uploaded after a bad reply");

    // And a download of that page in place of a payload does not pass as one.
    let request = DownloadRequest::new(format!("{}/file/a/b/c", server.url), 10);
    let err = HttpDownloader::new().unwrap().download_bytes(&request).await.failure();
    assert!(matches!(err.kind(), ErrorKind::SizeMismatch { expected: 10, .. }), "{err}");
}

#[tokio::test]
async fn error_redirects_for_unknown_clients_are_read_not_followed() {
    // A client with a browser's User-Agent gets Plik's 301 to the web app:
    // the error it carries is reported, the page is never fetched.
    let server = FaultServer::start(|request, n| {
        if n < 2 {
            plik_fail(request, 404, "file c.bin (b) is not available : uploading")
        } else {
            plik_fail(request, 404, "file c.bin (b) is not available : removed")
        }
    })
    .await;
    let browser = natsbridge_claimcheck_http::client_builder()
        .unwrap()
        .user_agent("Mozilla/5.0")
        .build()
        .unwrap();
    let down = HttpDownloader::builder().client(browser).retry(fast_retry(5)).build().unwrap();
    let request = DownloadRequest::new(format!("{}/file/a/b/c.bin", server.url), 3);
    let err = down.download_bytes(&request).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Gone, "{err}");
    assert!(err.to_string().contains("is not available : removed"), "{err}");
    // Two "uploading" redirects retried, then "removed": three requests,
    // none of them to the web app's page.
    assert_eq!(server.hits(), 3);
    assert!(server.seen().iter().all(|s| s.path.starts_with("/file/")));

    // The crate's own client is one Plik knows: it gets the plain text.
    let server = FaultServer::start(|request, _| plik_fail(request, 404, "file b not found")).await;
    let request = DownloadRequest::new(format!("{}/file/a/b/c.bin", server.url), 3);
    let err = HttpDownloader::new().unwrap().download_bytes(&request).await.failure();
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("file b not found"), "{err}");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn upload_to_a_missing_server_or_path_fails_cleanly() {
    let server =
        FaultServer::start(|request, _| plik_fail(request, 404, "404 page not found")).await;
    let plik = PlikUploader::new(format!("{}/not-plik/", server.url)).unwrap();
    let err = plik.upload_bytes("x", vec![1]).await.failure();
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");
    assert_eq!(server.seen()[0].path, "/not-plik/upload");

    assert_eq!(PlikUploader::new("file:///tmp").failure().kind(), &ErrorKind::InvalidInput);
}
