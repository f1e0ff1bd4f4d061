//! The file server against a hostile peer or a tampered storage directory:
//! every request element it reads is bounded, no symbolic link below its
//! directory is followed, what it stores is private, and what it serves is
//! never sniffed into a page.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use natsbridge_fileserver::FileServer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{Plik, Put, file_server, payload, raw_request};

/// Where a Plik link's file lives: `(upload directory, file path)`.
fn stored(root: &Path, link: &str) -> (PathBuf, PathBuf) {
    let rest: Vec<&str> = link.split("/file/").nth(1).unwrap().split('/').collect();
    let dir = root.join("plik").join(rest[0]);
    let file = dir.join(rest[1]);
    (dir, file)
}

fn client() -> reqwest::Client {
    crate::util::client()
}

async fn create_upload(base: &str) -> (String, String) {
    let reply = client()
        .post(format!("{base}/upload"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let v: Value = serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
    (v["id"].as_str().unwrap().to_owned(), v["uploadToken"].as_str().unwrap().to_owned())
}

/// What a request sent in pieces got: how many body bytes were written
/// before the server stopped taking them, and its answer (empty if the
/// connection was reset before it could be read).
struct Pushed {
    written: usize,
    answer: String,
}

/// Sends `head`, then `body_start`, then `filler` bytes of `b'a'` in 64 KiB
/// writes, then `body_end`, reading the answer meanwhile.
async fn push(
    addr: std::net::SocketAddr,
    head: String,
    body_start: Vec<u8>,
    filler: usize,
    body_end: Vec<u8>,
) -> Pushed {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let sending = tokio::spawn(async move {
        let mut written = 0;
        if writer.write_all(head.as_bytes()).await.is_err()
            || writer.write_all(&body_start).await.is_err()
        {
            return written;
        }
        let piece = vec![b'a'; 64 * 1024];
        while written < filler {
            let n = piece.len().min(filler - written);
            if writer.write_all(&piece[..n]).await.is_err() {
                return written;
            }
            written += n;
        }
        let _ = writer.write_all(&body_end).await;
        written
    });
    let mut answer = Vec::new();
    // A guard against a server that never answers, not a measure of time.
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        let mut buf = vec![0; 16 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server neither answered nor closed the connection");
    let written = sending.await.unwrap();
    Pushed { written, answer: String::from_utf8_lossy(&answer).into_owned() }
}

/// A part header line that never ends (64 MiB of it announced) is refused
/// once it passes the 64 KiB bound: the server answers 400 and closes the
/// connection, having read a small part of it; it did not buffer it all.
#[tokio::test]
async fn endless_part_headers_are_refused_unread() {
    const FILLER: usize = 64 << 20;
    let served = file_server().await;
    let (id, token) = create_upload(served.url()).await;
    let start =
        b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\nX-Long: "
            .to_vec();
    let end = b"\r\n\r\nabc\r\n--b--\r\n".to_vec();
    let head = format!(
        "POST /file/{id} HTTP/1.1\r\nHost: x\r\nX-UploadToken: {token}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n",
        start.len() + FILLER + end.len()
    );
    let pushed = push(served.server.local_addr(), head, start, FILLER, end).await;
    assert!(
        pushed.written < FILLER,
        "the server read the whole {FILLER}-byte header ({} written); answer: {:?}",
        pushed.written,
        pushed.answer
    );
    if !pushed.answer.is_empty() {
        assert!(pushed.answer.starts_with("HTTP/1.1 400"), "{:?}", pushed.answer);
        assert!(pushed.answer.contains("part headers are larger than 65536 bytes"));
        assert!(pushed.answer.to_ascii_lowercase().contains("connection: close"));
    }
    // A preamble that never reaches the first boundary is bounded alike.
    let (id, token) = create_upload(served.url()).await;
    let head = format!(
        "POST /file/{id} HTTP/1.1\r\nHost: x\r\nX-UploadToken: {token}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {FILLER}\r\n\r\n"
    );
    let pushed = push(served.server.local_addr(), head, Vec::new(), FILLER, Vec::new()).await;
    assert!(pushed.written < FILLER, "the server read the whole preamble");

    // The server still takes a well-formed upload, with headers of any
    // ordinary size.
    let link = Plik::new(served.url()).upload("ok.bin", payload(3000)).await;
    assert!(link.is_ok(), "{link:?}");
}

/// `POST /upload` reads at most 1 MiB of JSON (413 past it), and request
/// headers are bounded by hyper (431).
#[tokio::test]
async fn upload_json_and_request_headers_are_bounded() {
    let served = file_server().await;
    let big = format!("{{\"ttl\": 60, \"pad\": \"{}\"}}", "x".repeat(1 << 20));
    let (status, body) = raw_request(
        served.url(),
        &format!(
            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{big}",
            big.len()
        ),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("request body too large (limit is 1048576 bytes)"), "{body}");
    let head = "GET /put/x HTTP/1.1\r\nHost: x\r\nX-Long: ".to_owned();
    let pushed =
        push(served.server.local_addr(), head, Vec::new(), 64 << 20, b"\r\n\r\n".to_vec()).await;
    assert!(pushed.written < 64 << 20, "the server read a 64 MiB header line");
    if !pushed.answer.is_empty() {
        assert!(pushed.answer.starts_with("HTTP/1.1 431"), "{:?}", pushed.answer);
    }
}

/// An upload directory replaced by a link to a directory outside `--dir`
/// (holding a copy of the upload and a file of someone else's): at start
/// the link is removed, what it points to is neither tidied nor removed,
/// and nothing is served through it.
#[tokio::test]
async fn a_symlinked_upload_dir_is_not_followed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path();
    let first = FileServer::builder().dir(root).bind("127.0.0.1:0").await.unwrap();
    let link = Plik::new(first.url()).upload("a.bin", payload(100)).await;
    let link = link.unwrap();
    first.shutdown().await;

    let (upload_dir, file) = stored(root, &link);
    let target = outside.path().join("moved");
    std::fs::rename(&upload_dir, &target).unwrap();
    std::fs::write(target.join("precious.txt"), b"not the server's").unwrap();
    symlink(&target, &upload_dir).unwrap();

    let second = FileServer::builder().dir(root).bind("127.0.0.1:0").await.unwrap();
    assert_eq!(std::fs::read(target.join("precious.txt")).unwrap(), b"not the server's");
    assert!(target.join(file.file_name().unwrap()).exists());
    assert!(target.join("upload.json").exists());
    assert!(std::fs::symlink_metadata(&upload_dir).is_err(), "the link is removed");
    let moved = link.replacen(first_url(&link), second.url(), 1);
    let reply = client().get(&moved).send().await.unwrap();
    assert_eq!(reply.status(), 404);
    second.shutdown().await;
}

/// The `http://ip:port` a link starts with.
fn first_url(link: &str) -> &str {
    &link[..link.find("/file/").unwrap()]
}

/// A stored file (Plik or PUT) replaced by a link to a file outside is not
/// served.
#[tokio::test]
async fn a_symlinked_file_is_not_served() {
    let served = file_server().await;
    let root = served.dir.path().canonicalize().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, b"SECRET-SECRET-SECRET").unwrap();

    let link = Plik::new(served.url()).upload("a.bin", payload(20)).await;
    let link = link.unwrap();
    let (_, file) = stored(&root, &link);
    std::fs::remove_file(&file).unwrap();
    symlink(&secret, &file).unwrap();
    let reply = client().get(&link).send().await.unwrap();
    assert_ne!(reply.status(), 200);
    assert!(!reply.text().await.unwrap().contains("SECRET"));

    let put = Put::new(served.server.put_template());
    let put_link = put.upload("p.bin", payload(20)).await.unwrap();
    let key = put_link.split("/put/").nth(1).unwrap();
    let path = root.join("put").join(key);
    std::fs::remove_file(&path).unwrap();
    symlink(&secret, &path).unwrap();
    let reply = client().get(&put_link).send().await.unwrap();
    assert_eq!(reply.status(), 404);
    assert!(!reply.text().await.unwrap().contains("SECRET"));
}

/// A PUT whose key goes through a directory that is a link to one outside
/// `--dir` is refused (403) and writes nothing there.
#[tokio::test]
async fn a_put_through_a_symlinked_directory_does_not_write_outside() {
    let served = file_server().await;
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), served.dir.path().join("put").join("linked")).unwrap();
    let (status, body) = raw_request(
        served.url(),
        "PUT /put/linked/x.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("symbolic link"), "{body}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    // Deeper below the link too.
    let (status, _) = raw_request(
        served.url(),
        "PUT /put/linked/a/b.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Stored files and upload records (which hold upload tokens) are `0o600`,
/// their directories `0o700`, under any umask.
#[tokio::test]
async fn stored_files_and_records_are_private() {
    let served = file_server().await;
    let root = served.dir.path();
    let link = Plik::new(served.url()).upload("a.bin", payload(10)).await;
    let (upload_dir, file) = stored(root, &link.unwrap());
    assert_eq!(mode(&file), 0o600, "{}", file.display());
    assert_eq!(mode(&upload_dir.join("upload.json")), 0o600);
    assert_eq!(mode(&upload_dir), 0o700);
    assert_eq!(mode(&root.join("plik")), 0o700);
    assert_eq!(mode(&root.join("put")), 0o700);

    let put = Put::new(served.server.put_template());
    let put_link = put.upload("p.bin", payload(10)).await.unwrap();
    let key = put_link.split("/put/").nth(1).unwrap();
    let path = root.join("put").join(key);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
}

/// Every download (Plik's GET and HEAD, the PUT area's) says
/// `X-Content-Type-Options: nosniff`.
#[tokio::test]
async fn downloads_carry_nosniff() {
    let served = file_server().await;
    let plik = Plik::new(served.url()).one_shot(false);
    let link = plik.upload("a.html", payload(10)).await;
    let put = Put::new(served.server.put_template());
    let put_link = put.upload("p.html", payload(10)).await.unwrap();
    let client = client();
    for url in [link.unwrap(), put_link] {
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let reply = client.request(method.clone(), &url).send().await.unwrap();
            assert_eq!(reply.status(), 200, "{method} {url}");
            let nosniff = reply.headers().get("x-content-type-options");
            assert_eq!(nosniff.map(|v| v.as_bytes()), Some(&b"nosniff"[..]), "{method} {url}");
        }
    }
}

/// A PUT whose Content-Length is past the maximum file size (and what the
/// server would drain) is answered `413` before any of its body is sent.
#[tokio::test]
async fn a_put_declared_too_big_is_refused_before_its_body() {
    let served = crate::util::file_server_with(|b| b.max_file_size(1000)).await;
    let declared = 1000 + (64 << 20) + 1;
    let head =
        format!("PUT /put/a/big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n\r\n");
    // Nothing of the body is sent: only an answer to the head ends this.
    let answered = tokio::time::timeout(Duration::from_secs(60), raw_request(served.url(), &head));
    let (status, body) = answered.await.expect("no answer before the body was sent");
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("file too big (limit is set to 1.0 kB)"), "{body}");
}
