//! Secrets never reach logs or errors: with every `tracing` event and `log`
//! record of every crate captured at TRACE level, connect failures with a
//! token, a user and password and an nkey seed, Plik uploads with tokens,
//! and failing downloads of signed URLs leave none of their secrets in the
//! captured text, nor in any error's `Display` or `Debug`.

use std::fmt::Debug;
use std::time::Duration;

use natsbridge::claimcheck::{
    DownloadHandlerExt, DownloadRequest, RetryConfig, UploadHandlerExt,
    http::{HttpDownloader, PlikUploader},
};
use natsbridge::transport::ConnectOptions;
use natsbridge_test_support::NatsServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::util::Store;

use natsbridge_test_support::capture_logs as capture;

/// An error as every way of showing it shows it: `Display`, `Debug`, and
/// each source's `Display` and `Debug`.
fn every_form(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{err} {err:?}");
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(&format!(" | {s} {s:?}"));
        source = s.source();
    }
    text
}

fn assert_hidden(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        if let Some(at) = text.find(secret) {
            let around: String = text[at..].chars().take(secret.len() + 100).collect();
            let before: String = text[..at].chars().rev().take(300).collect();
            let before: String = before.chars().rev().collect();
            panic!("{what} shows {secret:?}: ...{before}{around}...");
        }
    }
}

fn shown<T: Debug, E: std::error::Error + 'static>(result: Result<T, E>) -> String {
    match result {
        Ok(v) => format!("{v:?}"),
        Err(e) => every_form(&e),
    }
}

/// A Plik server that hands out a known upload token and then fails the
/// upload with a 500 (read nothing of the body: the client may see a reset).
async fn plik_that_fails(upload_token: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = if head.starts_with(b"POST /upload ") {
                    let body =
                        format!(r#"{{"id":"abcdefgh12345678","uploadToken":"{upload_token}"}}"#);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\
                     Connection: close\r\n\r\nboom"
                        .to_owned()
                };
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, task)
}

#[tokio::test]
async fn no_secret_reaches_logs_or_errors() {
    let (log, _capturing) = capture();
    let mut secrets: Vec<String> = Vec::new();
    let mut errors = String::new();
    let quick = |url: String| ConnectOptions::new(url);

    // NATS: a token, a user and password, an nkey seed; wrong and right.
    let token = "tok-RIGHT-7f3a9c";
    let wrong_token = "tok-WRONG-2b8e1d";
    let server = NatsServer::builder().token(token).start();
    errors += &shown(quick(server.url()).token(wrong_token).connect().await);
    errors += &shown(quick(server.url()).token(token).connect().await);
    secrets.extend([token.into(), wrong_token.into()]);

    let password = "pw-RIGHT-55d0e1";
    let wrong_password = "pw-WRONG-9a7c2f";
    let server = NatsServer::builder().user_password("alice", password).start();
    errors += &shown(quick(server.url()).user_password("alice", wrong_password).connect().await);
    errors += &shown(quick(server.url()).user_password("alice", password).connect().await);
    let in_url = format!("nats://alice:{wrong_password}@127.0.0.1:{}", server.port());
    errors += &shown(quick(in_url).connect().await);
    secrets.extend([password.into(), wrong_password.into()]);

    let user = nkeys::KeyPair::new_user();
    let stranger = nkeys::KeyPair::new_user();
    let server = NatsServer::builder().nkey_user(user.public_key()).start();
    let seed = user.seed().unwrap();
    let stranger_seed = stranger.seed().unwrap();
    errors += &shown(quick(server.url()).nkey(stranger_seed.clone()).connect().await);
    errors += &shown(quick(server.url()).nkey(seed.clone()).connect().await);
    secrets.extend([seed, stranger_seed]);

    // Plik: a user token on a successful upload to the local server, and a
    // user token plus the server's upload token on a failing one.
    let plik_token = "plik-USER-31c9e0";
    let store = Store::start().await;
    let uploader =
        PlikUploader::builder(store.server.url()).plik_token(plik_token).build().unwrap();
    errors += &format!("{uploader:?}");
    errors += &shown(uploader.upload_bytes("x.bin", vec![1u8; 1000]).await);
    let upload_token = "upl-TOKEN-8d2f6b";
    let (failing, task) = plik_that_fails(upload_token).await;
    let uploader = PlikUploader::builder(failing).plik_token(plik_token).build().unwrap();
    errors += &shown(uploader.upload_bytes("x.bin", vec![1u8; 100_000]).await);
    task.abort();
    secrets.extend([plik_token.into(), upload_token.into()]);

    // Downloads of signed URLs (and URLs with user info) that fail, with
    // retries so the retry log line runs, directly and through the facade.
    let signature = "sig-QUERY-0e4b7a";
    let url_password = "urlpw-4c1d9e";
    let downloader = HttpDownloader::builder()
        .retry(
            RetryConfig::new()
                .with_max_retries(2)
                .with_base_delay(Duration::from_millis(1))
                .with_max_delay(Duration::from_millis(2))
                .with_jitter(false),
        )
        .build()
        .unwrap();
    let missing = format!(
        "{}/file/aaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbb/x.bin?X-Amz-Credential=AKIA&X-Amz-Signature={signature}",
        store.server.url()
    );
    errors += &shown(downloader.download_bytes(&DownloadRequest::new(&missing, 10)).await);
    let closed_port = natsbridge_test_support::free_port();
    let refused =
        format!("http://bob:{url_password}@127.0.0.1:{closed_port}/k?X-Amz-Signature={signature}");
    errors += &shown(downloader.download_bytes(&DownloadRequest::new(&refused, 10)).await);
    let message = format!(
        r#"{{"payloads":[{{"dataname":"d","payload_type":"binary","transport":"link","size":10,"data":"{refused}"}}]}}"#
    );
    match natsbridge::smartunpack(message.as_bytes(), &downloader).await {
        Ok(_) => panic!("a refused download was accepted"),
        Err(e) => errors += &every_form(&e),
    }
    secrets.extend([signature.into(), url_password.into()]);

    let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_hidden("an error", &errors, &secrets);
    assert_hidden("the log", &logged, &secrets);
    // The capture did capture: the download retries were logged, redacted.
    assert!(logged.contains("download failed, retrying"), "nothing captured: {logged}");
    assert!(logged.contains("?<redacted>"), "{logged}");
}
