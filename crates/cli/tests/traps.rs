//! No silent traps (docs/cli.md): subjects checked before anything is
//! sent, `--no-publish` uploads nothing, `listen` does not count other
//! clients' inbox round trips, and a failed message's whole cause chain.

use std::io::Read;
use std::process::Output;

use natsbridge_fileserver::FileServer;
use natsbridge_test_support::NatsServer;
use serde_json::Value;

use crate::util::{json_lines, run, start_ready};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn publish_subjects_are_checked_before_connecting_or_uploading() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![1u8; 600_000]).unwrap();
    let payload = format!("binary:big=@{}", big.display());
    for (subject, rule) in [
        ("chat..x", "two dots in a row"),
        (".chat", "starts or ends with a dot"),
        ("chat.", "starts or ends with a dot"),
        ("chat.*", "wildcards"),
        ("chat.>", "wildcards"),
        ("chat room", "white space"),
        ("text:t=hi", "the subject comes first"),
    ] {
        // Nothing listens at either address: the subject's error comes
        // first, so nothing was connected to, uploaded or sent.
        let args = ["-s", "nats://127.0.0.1:1", "--fileserver", "http://127.0.0.1:1"];
        for command in ["send", "request"] {
            let out = run(&[&[command, subject, &payload][..], &args].concat());
            assert_eq!(out.status.code(), Some(6), "{command} {subject:?}: {}", stderr(&out));
            let said = stderr(&out);
            assert!(said.contains(&format!("{subject:?}")) && said.contains(rule), "{said}");
        }
    }
    // Subjects to subscribe to may hold wildcards, but follow the rest.
    for (args, rule) in [
        (&["listen", "chat..x"][..], "two dots in a row"),
        (&["listen", "chat.>.x"][..], "comes last"),
        (&["reply", "svc x", "--echo"][..], "white space"),
        // The payload first: would answer on a subject named `text:a=b`.
        (&["reply", "text:a=b", "svc.x"][..], "the subject comes first"),
    ] {
        let out = run(&[args, &["-s", "nats://127.0.0.1:1"]].concat());
        assert_eq!(out.status.code(), Some(6), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(rule), "{}", stderr(&out));
    }
    let out = run(&["send", "chat.room", "text:t=x", "--reply-to", "a..b", "--no-publish"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("\"a..b\""), "{}", stderr(&out));
}

#[test]
fn no_publish_uploads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![1u8; 600_000]).unwrap();
    let payload = format!("binary:big=@{}", big.display());
    // Nothing listens at the file server's address: an upload would fail.
    let out =
        run(&["send", "chat.room", &payload, "--no-publish", "--fileserver", "http://127.0.0.1:1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let envelope = &json_lines(&out.stdout)[0];
    let record = &envelope["payloads"][0];
    assert_eq!(record["transport"], "link");
    assert_eq!(record["data"], "http://no-publish.invalid/big.bin");
    assert_eq!(record["size"], 600_000);
    assert_eq!(record["sha256"], natsbridge::sha256_hex(&vec![1u8; 600_000]));
}

#[test]
fn ttl_is_for_plik_uploads_only() {
    let out = run(&["send", "a.b", "text:t=x", "--ttl", "1m", "--no-publish"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("--ttl"), "{}", stderr(&out));
    let put =
        ["--put-url", "http://127.0.0.1:1/{uuid}/{name}", "--fileserver", "http://127.0.0.1:1"];
    let out =
        run(&[&["send", "a.b", "text:t=x", "--ttl", "1m", "--no-publish"][..], &put].concat());
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
}

/// `listen '>'` sees other clients' round trips to the server (an empty
/// message on an `_INBOX.` subject): they are neither shown nor counted.
#[test]
fn listen_neither_shows_nor_counts_inbox_round_trips() {
    let server = NatsServer::start();
    let url = server.url();
    let mut all = start_ready(&["listen", ">", "--count", "1", "--json", "-s", &url]);
    // Its ready line comes after such a round trip of its own.
    let mut other = start_ready(&["listen", "cli.elsewhere", "-s", &url]);
    let sent = run(&["send", "cli.real", "text:t=hello", "-s", &url]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    let mut out = String::new();
    all.stdout.read_to_string(&mut out).unwrap();
    let status = all.child.wait().unwrap();
    let line: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(line["send_to"], "cli.real", "{out}");
    assert_eq!(status.code(), Some(0));
    let _ = other.child.kill();
    let _ = other.child.wait();
}

/// A link that answers 404: `listen` text and `--json` carry the whole
/// chain (the payload, the 404, the URL) and it exits non-zero.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_message_shows_its_whole_cause_chain() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let files = FileServer::builder().dir(dir.path()).bind("127.0.0.1:0").await.unwrap();
    let link = format!("{}/file/AAAAAAAAAAAAAAAA/BBBBBBBBBBBBBBBB/x.bin", files.url());
    let envelope = serde_json::json!({
        "correlation_id": "c", "msg_id": "m", "timestamp": "2026-01-01T00:00:00Z",
        "send_to": "cli.missing", "msg_purpose": "chat", "sender_name": "t", "sender_id": "s",
        "receiver_name": "", "receiver_id": "", "reply_to": "", "reply_to_msg_id": "",
        "broker_url": "", "metadata": {},
        "payloads": [{"id": "p", "dataname": "x", "payload_type": "binary", "transport": "link",
            "encoding": "none", "size": 3, "data": link}],
    })
    .to_string();
    let bridge = natsbridge::connect(&url).await.unwrap();
    for json in [true, false] {
        let mut args = vec!["listen", "cli.missing", "--count", "1", "-s", &url];
        if json {
            args.push("--json");
        }
        let mut listener = tokio::task::block_in_place(|| start_ready(&args));
        bridge.connection().publish("cli.missing", envelope.clone().into()).await.unwrap();
        bridge.connection().flush().await.unwrap();
        let (out, status) = tokio::task::block_in_place(|| {
            let mut out = String::new();
            listener.stdout.read_to_string(&mut out).unwrap();
            (out, listener.child.wait().unwrap())
        });
        let message = if json {
            let line: Value = serde_json::from_str(out.trim()).unwrap();
            assert_eq!(line["error"]["kind"], "claimcheck.not_found", "{line}");
            line["error"]["message"].as_str().unwrap().to_owned()
        } else {
            let error = out.lines().nth(1).unwrap_or_default();
            assert!(error.starts_with("cli.missing  error (claimcheck.not_found): "), "{out}");
            out.clone()
        };
        for part in ["downloading payload \"x\"", "404", "/file/AAAAAAAAAAAAAAAA/"] {
            assert!(message.contains(part), "{part}: {message}");
        }
        assert_eq!(status.code(), Some(1), "{out}");
    }
}
