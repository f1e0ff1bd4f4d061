//! The local file server on its own: Plik's states and texts, TTL, size
//! limit, tokens, path safety, one-shot semantics, shutdown.

use std::time::Duration;

use futures_util::StreamExt;
use natsbridge_claimcheck_http::{
    DownloadHandlerExt, DownloadRequest, ErrorKind, HttpDownloader, HttpPutUploader, PlikUploader,
    UploadHandlerExt,
};
use serde_json::Value;

use crate::util::{
    Failure, downloader, eventually, fast_retry, file_server, file_server_with, files_under,
    payload, raw_request,
};

fn client() -> reqwest::Client {
    natsbridge_claimcheck_http::client_builder().unwrap().build().unwrap()
}

async fn post_json(url: String, params: &Value) -> reqwest::Response {
    client()
        .post(url)
        .header("Content-Type", "application/json")
        .body(params.to_string())
        .send()
        .await
        .unwrap()
}

async fn json_of(reply: reqwest::Response) -> Value {
    serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap()
}

async fn create_upload(base: &str, params: Value) -> Value {
    let reply = post_json(format!("{base}/upload"), &params).await;
    assert_eq!(reply.status(), 200);
    json_of(reply).await
}

fn multipart(boundary: &str, name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn speaks_the_plik_api() {
    let served = file_server().await;
    let upload = create_upload(served.url(), serde_json::json!({"oneShot": true, "ttl": 60})).await;
    let id = upload["id"].as_str().unwrap();
    let token = upload["uploadToken"].as_str().unwrap();
    assert_eq!(id.len(), 16);
    assert_eq!(upload["oneShot"], true);
    assert_eq!(upload["ttl"], 60);

    let bytes = payload(1000);
    let reply = client()
        .post(format!("{}/file/{id}", served.url()))
        .header("X-UploadToken", token)
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(multipart("XyZ", "dir/data.bin", &bytes))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let file: Value = json_of(reply).await;
    assert_eq!(file["fileName"], "data.bin", "like Go, only the last path element");
    assert_eq!(file["fileSize"], 1000);
    assert_eq!(file["status"], "uploaded");
    use md5::Digest;
    assert_eq!(file["fileMd5"], crate::util::hex(&md5::Md5::digest(&bytes)));
    let link = format!("{}/file/{id}/{}/data.bin", served.url(), file["id"].as_str().unwrap());

    // HEAD does not consume a one-shot file; the first GET does.
    let head = client().head(&link).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "1000");
    let got = client().get(&link).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert!(got.bytes().await.unwrap() == bytes);
    let again = client().get(&link).send().await.unwrap();
    assert_eq!(again.status(), 404);
    let text = again.text().await.unwrap();
    assert!(text.contains("is not available : removed"), "{text}");

    // Wrong name, unknown file, unknown upload: Plik's answers.
    let fid = file["id"].as_str().unwrap();
    let r =
        client().get(format!("{}/file/{id}/{fid}/other.bin", served.url())).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "invalid file name\n");
    let r = client()
        .get(format!("{}/file/{id}/AAAAAAAAAAAAAAAA/x", served.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (404, "file AAAAAAAAAAAAAAAA not found\n".into())
    );
    let r =
        client().get(format!("{}/file/BBBBBBBBBBBBBBBB/x/y", served.url())).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (404, "upload BBBBBBBBBBBBBBBB not found\n".into())
    );
}

#[tokio::test]
async fn token_mismatch_is_refused() {
    let served = file_server().await;
    let upload = create_upload(served.url(), serde_json::json!({})).await;
    let id = upload["id"].as_str().unwrap();
    for token in [Some("wrong-token"), None] {
        let mut request = client()
            .post(format!("{}/file/{id}", served.url()))
            .header("Content-Type", "multipart/form-data; boundary=b")
            .body(multipart("b", "x.bin", b"abc"));
        if let Some(t) = token {
            request = request.header("X-UploadToken", t);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(r.text().await.unwrap(), "you are not allowed to add file to this upload\n");
    }
    assert!(files_under(served.dir.path()).is_empty());
}

#[tokio::test]
async fn files_over_the_maximum_size_are_rejected() {
    let served = file_server_with(|b| b.max_file_size(1000)).await;
    let plik = PlikUploader::new(served.url()).unwrap();
    let err = plik.upload_bytes("big.bin", payload(1001)).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Http { status: 400 }, "{err}");
    assert!(err.to_string().contains("file too big (limit is set to 1.0 kB)"), "{err}");
    // Far over the limit: the error still arrives, not a reset connection.
    let err = plik.upload_bytes("bigger.bin", payload(3_000_000)).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Http { status: 400 }, "{err}");
    assert!(files_under(served.dir.path()).is_empty(), "{:?}", files_under(served.dir.path()));

    let link = plik.upload_bytes("fits.bin", payload(1000)).await.unwrap();
    let got = downloader(0).download_bytes(&DownloadRequest::new(&link, 1000)).await.unwrap();
    assert!(got == payload(1000));

    let put = HttpPutUploader::builder(served.server.put_template()).build().unwrap();
    let err = put.upload_bytes("big.bin", payload(1001)).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Http { status: 413 }, "{err}");

    // Declared too big at creation.
    let params = serde_json::json!({"files": [{"fileName": "x", "fileSize": 5000}]});
    let r = post_json(format!("{}/upload", served.url()), &params).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().starts_with("file is too big"));
}

#[tokio::test]
async fn uploads_expire_after_their_ttl() {
    let served = file_server_with(|b| b.default_ttl(Duration::from_millis(300))).await;
    let plik = PlikUploader::new(served.url()).unwrap();
    let link = plik.upload_bytes("short-lived.bin", payload(5000)).await.unwrap();
    let put = HttpPutUploader::builder(served.server.put_template()).build().unwrap();
    let put_link = put.upload_bytes("short-lived.bin", payload(5000)).await.unwrap();
    // The two files, and the Plik upload's record beside its file.
    let stored = files_under(served.dir.path());
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert_eq!(stored.iter().filter(|f| f.ends_with("upload.json")).count(), 1, "{stored:?}");

    // The sweeper removes expired files from disk...
    eventually(|| files_under(served.dir.path()).is_empty()).await;
    // ...and the links are dead.
    let down = downloader(0);
    let err = down.download_bytes(&DownloadRequest::new(&link, 5000)).await.failure();
    assert!(matches!(err.kind(), ErrorKind::Gone | ErrorKind::NotFound), "{err}");
    let err = down.download_bytes(&DownloadRequest::new(&put_link, 5000)).await.failure();
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");

    // An upload's own TTL is bounded by the maximum, and "infinite" refused.
    let served = file_server_with(|b| b.max_ttl(Duration::from_secs(60))).await;
    for ttl in [61, -1] {
        let r =
            post_json(format!("{}/upload", served.url()), &serde_json::json!({"ttl": ttl})).await;
        assert_eq!(r.status(), 400, "ttl {ttl}");
    }
}

#[tokio::test]
async fn path_traversal_is_refused() {
    let served = file_server().await;
    let outside = served
        .dir
        .path()
        .parent()
        .unwrap()
        .join(format!("natsbridge-escape-{}", std::process::id()));
    let name = outside.file_name().unwrap().to_str().unwrap().to_owned();
    for path in [
        format!("/put/../{name}"),
        format!("/put/../../{name}"),
        "/put/a/../../x".to_owned(),
        "/put/./x".to_owned(),
        "/put//x".to_owned(),
        "/put/a\\..\\..\\x".to_owned(),
    ] {
        let (status, _) = raw_request(
            served.url(),
            &format!("PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"),
        )
        .await;
        assert_eq!(status, 400, "{path}");
    }
    for path in [
        "/file/../../../etc/passwd".to_owned(),
        "/file/..%2F..%2F..%2Fetc/passwd/x/y".to_owned(),
        "/put/../../../../etc/passwd".to_owned(),
        "/file/aaaaaaaaaaaaaaaa/..%2f..%2f..%2fetc%2fpasswd/passwd".to_owned(),
    ] {
        let (status, body) = raw_request(
            served.url(),
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(status == 404 || status == 400, "{path}: {status}");
        assert!(!body.contains("root:"), "{path}");
    }
    // Encoded dots stay a literal (harmless) name inside the store.
    let (status, _) = raw_request(
        served.url(),
        "PUT /put/%2e%2e/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    )
    .await;
    assert_eq!(status, 201);
    assert!(!outside.exists());
    for f in files_under(served.dir.path()) {
        assert!(f.starts_with(served.dir.path()), "{f:?}");
    }
}

#[tokio::test]
async fn traversal_in_upload_names_and_ids_is_refused() {
    let served = file_server().await;
    let upload = create_upload(served.url(), serde_json::json!({"oneShot": false})).await;
    let id = upload["id"].as_str().unwrap().to_owned();
    let token = upload["uploadToken"].as_str().unwrap().to_owned();

    // Upload ids that are paths, relative or absolute, plain or encoded.
    for bad_id in ["..", "..%2F..%2Fetc", "%2Fetc%2Fpasswd", "%2E%2E", "....//....//x"] {
        let (status, _) = raw_request(
            served.url(),
            &format!(
                "POST /file/{bad_id} HTTP/1.1\r\nHost: x\r\nX-UploadToken: {token}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert!((400..500).contains(&status), "upload id {bad_id:?}: {status}");
    }

    // File names keep only their last path element (as Plik's Go parser
    // does), and a name that is nothing but a path is refused.
    let post = |name: &'static str| {
        client()
            .post(format!("{}/file/{id}", served.url()))
            .header("X-UploadToken", token.clone())
            .header("Content-Type", "multipart/form-data; boundary=XyZ")
            .body(multipart("XyZ", name, b"abc"))
            .send()
    };
    for (name, stored) in [
        ("../../escape.bin", "escape.bin"),
        ("/etc/passwd", "passwd"),
        ("..\\..\\win.ini", "win.ini"),
    ] {
        let reply = post(name).await.unwrap();
        assert_eq!(reply.status(), 200, "{name}");
        assert_eq!(json_of(reply).await["fileName"], stored, "{name}");
    }
    for name in ["..", "../..", "/", "a/.."] {
        let reply = post(name).await.unwrap();
        assert_eq!(reply.status(), 400, "{name}");
    }

    // File ids and names in download paths.
    for path in [
        format!("/file/{id}/..%2F..%2Fetc/passwd"),
        format!("/file/{id}/%2Fetc%2Fpasswd/passwd"),
        format!("/file/{id}/AAAAAAAAAAAAAAAA/..%2F..%2F..%2Fetc%2Fpasswd"),
        "/put/%2Fetc%2Fpasswd".to_owned(),
    ] {
        let (status, body) = raw_request(
            served.url(),
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!((400..500).contains(&status), "{path}: {status}");
        assert!(!body.contains("root:"), "{path}");
    }
    // An absolute PUT key stays a literal name inside the store.
    let (status, _) = raw_request(
        served.url(),
        "PUT /put/%2Fetc%2Fpasswd HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    )
    .await;
    assert!(status == 201 || status == 400, "{status}");
    for f in files_under(served.dir.path()) {
        assert!(f.starts_with(served.dir.path()), "{f:?}");
    }
}

#[tokio::test]
async fn missing_and_uploading_then_served() {
    let served = file_server().await;
    let upload = create_upload(
        served.url(),
        serde_json::json!({"oneShot": true, "files": [{"fileName": "late.bin", "fileSize": 2000000}]}),
    )
    .await;
    let id = upload["id"].as_str().unwrap().to_owned();
    let token = upload["uploadToken"].as_str().unwrap().to_owned();
    let file = &upload["files"][0];
    let fid = file["id"].as_str().unwrap().to_owned();
    assert_eq!(file["status"], "missing");
    let link = format!("{}/file/{id}/{fid}/late.bin", served.url());

    let r = client().get(&link).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.text().await.unwrap(),
        format!("file late.bin ({fid}) is not available : missing\n")
    );

    // A downloader that starts now keeps retrying until the upload is done.
    let bytes = payload(2_000_000);
    let patient = HttpDownloader::builder()
        .retry(fast_retry(1000).with_max_delay(Duration::from_millis(20)))
        .build()
        .unwrap();
    let request =
        DownloadRequest::new(&link, bytes.len() as u64).sha256(crate::util::sha256_hex(&bytes));
    let download = tokio::spawn(async move { patient.download_bytes(&request).await });

    // Upload slowly: half, check "uploading", then the rest.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = multipart("bnd", "late.bin", &bytes);
    let first = body[..1_000_000].to_vec();
    let rest = body[1_000_000..].to_vec();
    let stream = tokio_stream_from(rx);
    let post = tokio::spawn({
        let url = format!("{}/file/{id}/{fid}/late.bin", served.url());
        let len = body.len();
        async move {
            client()
                .post(url)
                .header("X-UploadToken", token)
                .header("Content-Type", "multipart/form-data; boundary=bnd")
                .header("Content-Length", len)
                .body(reqwest::Body::wrap_stream(stream))
                .send()
                .await
                .unwrap()
        }
    });
    tx.send(Ok(first)).await.unwrap();
    let mut saw_uploading = false;
    for _ in 0..500 {
        let r = client().head(&link).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let r = client().get(&link).send().await.unwrap();
        if r.text().await.unwrap().contains("is not available : uploading") {
            saw_uploading = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(saw_uploading);
    tx.send(Ok(rest)).await.unwrap();
    drop(tx);
    let reply = post.await.unwrap();
    assert_eq!(reply.status(), 200);

    let got = download.await.unwrap().unwrap();
    assert!(got == bytes);
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

#[tokio::test]
async fn an_interrupted_one_shot_download_does_not_consume_the_file() {
    let served = file_server().await;
    let bytes = payload(32 << 20);
    let link = PlikUploader::new(served.url())
        .unwrap()
        .upload_bytes("big.bin", bytes.clone())
        .await
        .unwrap();

    // Read the headers and a little of the body, then hang up.
    let response = client().get(&link).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let _ = stream.next().await;
    drop(stream);

    // Once the server has seen the connection go, the file is back to
    // "uploaded" (HEAD says so without consuming it) and the next download
    // gets all of it.
    let client = client();
    let mut back = false;
    for _ in 0..500 {
        if client.head(&link).send().await.unwrap().status() == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(back, "the interrupted one-shot file was not put back");
    let down = downloader(0);
    let got = down.download_bytes(&DownloadRequest::new(&link, bytes.len() as u64)).await.unwrap();
    assert!(got == bytes);
}

#[tokio::test]
async fn put_area_round_trip_and_keys() {
    let served = file_server().await;
    let url = format!("{}/put/some/key.bin", served.url());
    let r = client().put(&url).body(vec![5u8; 100]).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 100);
    let r = client().get(format!("{}/put/some/other.bin", served.url())).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // A key under an existing key's name conflicts.
    let r = client().put(format!("{url}/below")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let served = file_server().await;
    let addr = served.server.local_addr();
    assert!(served.url().starts_with("http://127.0.0.1:"));
    served.server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    // Dropping the handle stops it too.
    let served = file_server().await;
    let addr = served.server.local_addr();
    drop(served);
    let mut refused = false;
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the server still accepts connections after its handle was dropped");

    let dir = tempfile::tempdir().unwrap();
    let err = natsbridge_fileserver::FileServer::builder().bind("127.0.0.1:0").await.failure();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    drop(dir);
}

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

#[tokio::test]
async fn md5_can_be_turned_off() {
    let served = file_server_with(|b| b.md5(false)).await;
    let upload = create_upload(served.url(), serde_json::json!({})).await;
    let (id, token) = (upload["id"].as_str().unwrap(), upload["uploadToken"].as_str().unwrap());
    let reply = client()
        .post(format!("{}/file/{id}", served.url()))
        .header("X-UploadToken", token)
        .header("Content-Type", "multipart/form-data; boundary=b")
        .body(multipart("b", "x.bin", b"abc"))
        .send()
        .await
        .unwrap();
    let file = json_of(reply).await;
    assert_eq!(file["fileMd5"], "");
    assert_eq!(file["fileSize"], 3);
}

/// A small tmpfs mounted over a temporary directory (a real full disk),
/// unmounted on drop. Mounting needs root, which `cargo xtask setup` needs
/// too (it installs Debian packages): CI runs as root.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("the mount command");
        assert!(status.success(), "mounting a {size} tmpfs failed (this test needs root)");
        SmallDisk { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.dir.path()).status();
    }
}

#[tokio::test]
async fn a_full_disk_is_a_clear_error_and_leaves_no_partial_file() {
    let disk = SmallDisk::mount("1m");
    let server = natsbridge_fileserver::FileServer::builder().dir(disk.path()).bind("127.0.0.1:0");
    let server = server.await.unwrap();
    let plik = PlikUploader::new(server.url()).unwrap();
    let err = plik.upload_bytes("big.bin", payload(3_000_000)).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Http { status: 507 }, "{err}");
    assert!(err.to_string().contains("the file server is out of disk space"), "{err}");
    assert!(files_under(disk.path()).is_empty(), "{:?}", files_under(disk.path()));

    let put = HttpPutUploader::builder(server.put_template()).build().unwrap();
    let err = put.upload_bytes("big.bin", payload(3_000_000)).await.failure();
    assert_eq!(err.kind(), &ErrorKind::Http { status: 507 }, "{err}");
    assert!(files_under(disk.path()).is_empty(), "{:?}", files_under(disk.path()));

    // The space freed by the failed uploads serves the next one.
    let link = plik.upload_bytes("fits.bin", payload(100_000)).await.unwrap();
    let got = downloader(0).download_bytes(&DownloadRequest::new(&link, 100_000)).await.unwrap();
    assert!(got == payload(100_000));
    server.shutdown().await;
}

#[tokio::test]
async fn request_keys_match_case_insensitively_as_plik_s_go_decoder() {
    let served = file_server().await;
    let upload = create_upload(
        served.url(),
        serde_json::json!({"OneShot": true, "TTL": 90, "Files": [{"FileName": "a.bin", "filesize": 3}]}),
    )
    .await;
    assert_eq!(upload["oneShot"], true);
    assert_eq!(upload["ttl"], 90);
    assert_eq!(upload["files"][0]["fileName"], "a.bin");
    assert_eq!(upload["files"][0]["fileSize"], 3);
    // The exact spelling wins over another one.
    let upload =
        create_upload(served.url(), serde_json::json!({"ONESHOT": true, "oneShot": false})).await;
    assert_eq!(upload["oneShot"], false);
}

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let page = "http://127.0.0.1:5173";
    let served = file_server_with(|b| b.cors_origin(page)).await;
    let preflight = client()
        .request(reqwest::Method::OPTIONS, format!("{}/upload", served.url()))
        .header("Origin", page)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type,x-uploadtoken")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], page);
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert_eq!(h["access-control-allow-headers"], "content-type,x-uploadtoken");

    // The real request: readable by the page.
    let reply = client()
        .post(format!("{}/upload", served.url()))
        .header("Origin", page)
        .header("Content-Type", "application/json")
        .body(r#"{"oneShot":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["access-control-allow-origin"], page);

    // Another origin gets no CORS headers, and no preflight.
    let other = client()
        .post(format!("{}/upload", served.url()))
        .header("Origin", "http://evil.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let preflight = client()
        .request(reqwest::Method::OPTIONS, format!("{}/upload", served.url()))
        .header("Origin", "http://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 405);
    assert!(preflight.headers().get("access-control-allow-origin").is_none());

    // By default, none at all (as Plik).
    let plain = file_server().await;
    let reply = client()
        .post(format!("{}/upload", plain.url()))
        .header("Origin", page)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(reply.headers().get("access-control-allow-origin").is_none());
}

/// Uploads `bytes` as `name` through the Plik API with these options; the link.
async fn plik_upload(
    base: &str,
    one_shot: bool,
    ttl: Duration,
    name: &str,
    bytes: &[u8],
) -> String {
    PlikUploader::builder(base)
        .one_shot(one_shot)
        .ttl(ttl)
        .build()
        .unwrap()
        .upload_bytes(name, bytes.to_vec())
        .await
        .unwrap()
}

/// The upload directory a link's file lives in.
fn upload_dir_of(root: &std::path::Path, link: &str) -> std::path::PathBuf {
    let id = link.split("/file/").nth(1).unwrap().split('/').next().unwrap();
    root.join("plik").join(id)
}

#[tokio::test]
async fn a_restarted_server_still_serves_expires_and_consumes() {
    use natsbridge_fileserver::FileServer;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let first = FileServer::builder().dir(&root).bind("127.0.0.1:0").await.unwrap();
    let base = first.url().to_owned();
    let started = std::time::Instant::now();
    let hour = Duration::from_secs(3600);
    let kept = plik_upload(&base, false, hour, "kept.bin", &payload(3000)).await;
    let once = plik_upload(&base, true, hour, "once.bin", &payload(2000)).await;
    let gone = plik_upload(&base, false, Duration::from_secs(1), "gone.bin", &payload(1000)).await;
    let later = plik_upload(&base, false, Duration::from_secs(5), "later.bin", &payload(500)).await;
    let put = HttpPutUploader::builder(first.put_template()).build().unwrap();
    let put_link = put.upload_bytes("put.bin", payload(700)).await.unwrap();
    let old_put = put.upload_bytes("old.bin", payload(70)).await.unwrap();
    // An upload created with nothing in it yet: not kept.
    let empty = create_upload(&base, serde_json::json!({})).await;
    // An upload created with a declared file still to come.
    let declared = create_upload(
        &base,
        serde_json::json!({"files": [{"fileName": "late.bin", "fileSize": 3}]}),
    )
    .await;
    // Directories no record explains: one without a record, one with a
    // corrupt record. Both are removed at start.
    for (id, record) in [("AAAAAAAAAAAAAAAA", None), ("BBBBBBBBBBBBBBBB", Some("{not json"))] {
        let d = root.join("plik").join(id);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("CCCCCCCCCCCCCCCC"), b"orphan").unwrap();
        if let Some(r) = record {
            std::fs::write(d.join("upload.json"), r).unwrap();
        }
    }
    first.shutdown().await;
    // A PUT file written two days ago has outlived the default TTL (24 h).
    let old_path = root.join("put").join(old_put.split("/put/").nth(1).unwrap());
    let two_days = std::time::SystemTime::now() - Duration::from_secs(48 * 3600);
    std::fs::File::options().write(true).open(&old_path).unwrap().set_modified(two_days).unwrap();

    // Restart on the same directory, once the 1-second upload has expired.
    tokio::time::sleep(Duration::from_millis(1500).saturating_sub(started.elapsed())).await;
    let second = FileServer::builder().dir(&root).bind("127.0.0.1:0").await.unwrap();
    let moved = |link: &str| link.replacen(&base, second.url(), 1);
    let down = downloader(0);
    let get = |link: String, size: u64| {
        let down = down.clone();
        async move { down.download_bytes(&DownloadRequest::new(&link, size)).await }
    };

    // The kept file is served, as often as asked.
    for _ in 0..2 {
        assert!(get(moved(&kept), 3000).await.unwrap() == payload(3000));
    }
    // The PUT file too.
    assert!(get(moved(&put_link), 700).await.unwrap() == payload(700));
    // The old PUT file expired, and was removed at start.
    assert!(!old_path.exists());
    let err = get(moved(&old_put), 70).await.failure();
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");
    // The upload that held nothing was forgotten.
    let (id, token) = (empty["id"].as_str().unwrap(), empty["uploadToken"].as_str().unwrap());
    let reply = client()
        .post(format!("{}/file/{id}", second.url()))
        .header("X-UploadToken", token)
        .header("Content-Type", "multipart/form-data; boundary=b")
        .body(multipart("b", "x.bin", b"abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 404);
    assert_eq!(reply.text().await.unwrap(), format!("upload {id} not found\n"));
    // The one-shot file is served once, then gone, from disk too.
    assert!(get(moved(&once), 2000).await.unwrap() == payload(2000));
    let r = client().get(moved(&once)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("is not available : removed"));
    eventually(|| !upload_dir_of(&root, &once).exists()).await;
    // The expired upload is gone, and its bytes were removed at start.
    let err = get(moved(&gone), 1000).await.failure();
    assert!(matches!(err.kind(), ErrorKind::Gone | ErrorKind::NotFound), "{err}");
    assert!(!upload_dir_of(&root, &gone).exists());
    // So are the directories without a usable record.
    assert!(!root.join("plik/AAAAAAAAAAAAAAAA").exists());
    assert!(!root.join("plik/BBBBBBBBBBBBBBBB").exists());
    // The declared file can still be uploaded to the restarted server.
    let (id, token) = (declared["id"].as_str().unwrap(), declared["uploadToken"].as_str().unwrap());
    let fid = declared["files"][0]["id"].as_str().unwrap();
    let reply = client()
        .post(format!("{}/file/{id}/{fid}/late.bin", second.url()))
        .header("X-UploadToken", token)
        .header("Content-Type", "multipart/form-data; boundary=b")
        .body(multipart("b", "late.bin", b"abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let late = format!("{}/file/{id}/{fid}/late.bin", second.url());
    assert_eq!(&get(late, 3).await.unwrap()[..], b"abc");

    // Expiry still runs after the restart: the 5-second upload is served
    // now, then removed by the restarted server's sweeper.
    assert!(started.elapsed() < Duration::from_secs(5), "the test ran too slowly");
    assert!(get(moved(&later), 500).await.unwrap() == payload(500));
    let deadline = started + Duration::from_secs(15);
    while upload_dir_of(&root, &later).exists() {
        assert!(std::time::Instant::now() < deadline, "the expired upload was never removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = get(moved(&later), 500).await.failure();
    assert!(matches!(err.kind(), ErrorKind::Gone | ErrorKind::NotFound), "{err}");
    // What is left on disk: the kept file, the late one, their records, the PUT file.
    let left = files_under(&root);
    assert_eq!(left.len(), 5, "{left:?}");
    second.shutdown().await;
}
