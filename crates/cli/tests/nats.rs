//! The binary against a real nats-server and file server: send in one
//! process, listen in another, for every payload type, direct and link;
//! request and reply; the demo.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use natsbridge::claimcheck::FileServer;
use natsbridge_test_support::NatsServer;
use serde_json::Value;

use crate::util::{natsbridge, run};

/// Starts `natsbridge ARGS` and waits for its "listening"/"answering" line
/// on stderr, which it prints once the server has its subscription.
fn start_ready(args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child =
        natsbridge().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("listening on") || line.contains("answering on"), "{line}");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_payload_type_direct_and_link_from_one_process_to_another() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = FileServer::builder().dir(dir.path()).bind("127.0.0.1:0").await.unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, (0..700_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
    let arrow = dir.path().join("t.arrow");
    // Arrow IPC file magic and a minimal body: the CLI checks the format
    // marker; the bytes travel untouched.
    std::fs::write(&arrow, b"ARROW1\0\0fake-ipc-body-for-transport").unwrap();
    let payloads = [
        "text:t=h\u{e9}llo".to_string(),
        r#"dictionary:d={"a":[1,2]}"#.to_string(),
        format!("arrowtable:a=@{}", arrow.display()),
        r#"jsontable:j=[{"x":1}]"#.to_string(),
        "image:i=PNGDATA".to_string(),
        "audio:au=RIFF".to_string(),
        "video:v=MP4".to_string(),
        "binary:b=raw".to_string(),
        format!("binary:big=@{}", big.display()),
    ];
    let out = dir.path().join("out");
    let url = server.url();
    let (mut listener, mut lines) = start_ready(&[
        "listen",
        "cli.all",
        "--server",
        &url,
        "--count",
        "1",
        "--timeout",
        "30",
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut args = vec!["send", "cli.all", "--server", &url, "--fileserver", files.url()];
    args.extend(payloads.iter().map(String::as_str));
    let sent = run(&args);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let envelope: Value = serde_json::from_slice(&sent.stdout).unwrap();

    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    assert!(listener.wait().unwrap().success());
    let report: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(report["msg_id"], envelope["msg_id"]);
    let got = report["payloads"].as_array().unwrap();
    assert_eq!(got.len(), 9);
    let types: Vec<&str> = got.iter().map(|p| p["payload_type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "text",
            "dictionary",
            "arrowtable",
            "jsontable",
            "image",
            "audio",
            "video",
            "binary",
            "binary"
        ]
    );
    for (i, p) in got.iter().enumerate() {
        let expected_transport = if i == 8 { "link" } else { "direct" };
        assert_eq!(p["transport"], expected_transport, "{p}");
        let saved = std::fs::read(p["path"].as_str().unwrap()).unwrap();
        assert_eq!(p["sha256"], natsbridge::sha256_hex(&saved));
        assert_eq!(p["size"], saved.len());
    }
    assert_eq!(
        std::fs::read(got[8]["path"].as_str().unwrap()).unwrap(),
        std::fs::read(&big).unwrap()
    );
    assert_eq!(std::fs::read(got[0]["path"].as_str().unwrap()).unwrap(), "h\u{e9}llo".as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_reports_an_undecodable_message_and_goes_on() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let (mut listener, mut lines) = start_ready(&[
        "listen",
        "cli.bad",
        "--server",
        &url,
        "--count",
        "2",
        "--timeout",
        "30",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let raw = natsbridge::transport::connect(url.clone()).await.unwrap();
    raw.publish("cli.bad", "{\"payloads\": 7}".into()).await.unwrap();
    raw.flush().await.unwrap();
    let sent = run(&["send", "cli.bad", "--server", &url, "text:t=fine"]);
    assert!(sent.status.success());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    let mut second = String::new();
    lines.read_line(&mut second).unwrap();
    assert!(listener.wait().unwrap().success());
    let error: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(error["error"]["kind"], "envelope.malformed");
    assert!(error["error"]["message"].as_str().unwrap().contains("payloads"));
    let saved = std::fs::read(dir.path().join("failed/1.msg")).unwrap();
    assert_eq!(saved, b"{\"payloads\": 7}");
    let ok: Value = serde_json::from_str(&second).unwrap();
    assert_eq!(ok["payloads"][0]["dataname"], "t");
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_times_out_with_a_non_zero_exit() {
    let server = NatsServer::start();
    let out =
        run(&["listen", "cli.none", "--server", &server.url(), "--count", "1", "--timeout", "0.5"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
}

#[tokio::test(flavor = "multi_thread")]
async fn request_and_echo_reply() {
    let server = NatsServer::start();
    let url = server.url();
    let (mut replier, _stdout) =
        start_ready(&["reply", "cli.echo", "--server", &url, "--echo", "--count", "1"]);
    let out = run(&[
        "request",
        "cli.echo",
        "text:q=ping",
        r#"dictionary:d={"n":1}"#,
        "--server",
        &url,
        "--correlation-id",
        "corr-7",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(replier.wait().unwrap().success());
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["correlation_id"], "corr-7");
    assert_ne!(answer["reply_to_msg_id"], "");
    assert_eq!(answer["payloads"][0]["sha256"], natsbridge::sha256_hex(b"ping"));
    assert_eq!(answer["payloads"][1]["payload_type"], "dictionary");
}

#[test]
fn request_without_responders_fails_clearly() {
    let server = NatsServer::start();
    let out = run(&["request", "cli.nobody", "text:q=x", "--server", &server.url()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no responders"));
}

#[test]
fn demo_runs_the_walkthroughs_on_its_own_servers() {
    let out = run(&["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for needle in
        ["large_document", "link", "config", "students", "4. response (reading)", "arrived"]
    {
        assert!(stdout.contains(needle), "missing {needle}: {stdout}");
    }
}
