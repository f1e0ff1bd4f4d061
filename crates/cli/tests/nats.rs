//! The binary against a real nats-server and file server: send in one
//! process, listen in another, for every payload type, direct and link;
//! request and reply; the demo.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;

use natsbridge_fileserver::FileServer;
use natsbridge_test_support::NatsServer;
use serde_json::Value;

use natsbridge::table::RecordBatch;
use natsbridge::table::arrow_array::Int64Array;

use crate::util::{interrupt, natsbridge, run, start_json, start_ready, terminate};

#[tokio::test(flavor = "multi_thread")]
async fn every_payload_type_direct_and_link_from_one_process_to_another() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = FileServer::builder().dir(dir.path()).bind("127.0.0.1:0").await.unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, (0..700_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
    let arrow = dir.path().join("t.arrow");
    let batch = RecordBatch::try_from_iter([(
        "x",
        Arc::new(Int64Array::from(vec![1, 2, 3])) as natsbridge::table::arrow_array::ArrayRef,
    )])
    .unwrap();
    std::fs::write(&arrow, natsbridge::table::write_ipc(std::slice::from_ref(&batch)).unwrap())
        .unwrap();
    let csv = dir.path().join("t.csv");
    std::fs::write(&csv, "x,y\n1,a\n2,b\n").unwrap();
    // A table big enough to go by link (a column of 150,000 integers).
    let big_csv = dir.path().join("big.csv");
    let rows: String = (0..150_000).map(|i| format!("{i}\n")).collect();
    std::fs::write(&big_csv, format!("n\n{rows}")).unwrap();
    let payloads = [
        "text:t=h\u{e9}llo".to_string(),
        r#"dictionary:d={"a":[1,2]}"#.to_string(),
        format!("arrowtable:a=@{}", arrow.display()),
        format!("arrowtable:c=@{}", csv.display()),
        format!("arrowtable:bigtable=@{}", big_csv.display()),
        r#"jsontable:j=[{"x":1}]"#.to_string(),
        "image:i=PNGDATA".to_string(),
        "audio:au=RIFF".to_string(),
        "video:v=MP4".to_string(),
        "binary:b=raw".to_string(),
        format!("binary:big=@{}", big.display()),
    ];
    let out = dir.path().join("out");
    let url = server.url();
    let mut listener = start_ready(&[
        "listen",
        "--json",
        "cli.all",
        "--server",
        &url,
        "--count",
        "2",
        "--timeout",
        "30",
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut args = vec!["send", "cli.all", "--server", &url, "--fileserver", files.url()];
    args.extend(payloads.iter().map(String::as_str));
    let sent = run(&args);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    // Piped, the uploads draw no progress bars.
    assert_eq!(String::from_utf8_lossy(&sent.stderr), "");
    let envelope: Value = serde_json::from_slice(&sent.stdout).unwrap();
    // The same payloads again, every one by link (each is at least 1 byte).
    args.extend(["--threshold", "1"]);
    let sent_by_link = run(&args);
    assert!(sent_by_link.status.success(), "{}", String::from_utf8_lossy(&sent_by_link.stderr));
    assert_eq!(String::from_utf8_lossy(&sent_by_link.stderr), "");

    let mut line = String::new();
    listener.stdout.read_line(&mut line).unwrap();
    let mut line_by_link = String::new();
    listener.stdout.read_line(&mut line_by_link).unwrap();
    assert!(listener.child.wait().unwrap().success());
    assert_eq!(listener.rest_of_stderr(), "", "no progress bars when piped");
    let report: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(report["msg_id"], envelope["msg_id"]);
    let got = report["payloads"].as_array().unwrap();
    assert_eq!(got.len(), 11);
    let types: Vec<&str> = got.iter().map(|p| p["payload_type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "text",
            "dictionary",
            "arrowtable",
            "arrowtable",
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
        let expected_transport = if i == 4 || i == 10 { "link" } else { "direct" };
        assert_eq!(p["transport"], expected_transport, "{p}");
        let saved = std::fs::read(p["path"].as_str().unwrap()).unwrap();
        assert_eq!(p["sha256"], natsbridge::sha256_hex(&saved));
        assert_eq!(p["size"], saved.len());
    }
    assert_eq!(
        std::fs::read(got[10]["path"].as_str().unwrap()).unwrap(),
        std::fs::read(&big).unwrap()
    );
    assert_eq!(std::fs::read(got[0]["path"].as_str().unwrap()).unwrap(), "h\u{e9}llo".as_bytes());
    // The tables arrive as Arrow IPC, saved as .arrow: the IPC file as it
    // was, the CSVs converted.
    let table = |i: usize| {
        let path = got[i]["path"].as_str().unwrap();
        assert!(path.ends_with(".arrow"), "{path}");
        natsbridge::table::read_ipc(&std::fs::read(path).unwrap().into()).unwrap()
    };
    assert_eq!(table(2).batches, vec![batch]);
    assert_eq!(table(3).num_rows(), 2);
    assert_eq!(table(4).num_rows(), 150_000);

    // Every payload type by link arrives with the same bytes as direct.
    let by_link: Value = serde_json::from_str(&line_by_link).unwrap();
    let by_link = by_link["payloads"].as_array().unwrap();
    assert_eq!(by_link.len(), got.len());
    for (linked, first) in by_link.iter().zip(got) {
        assert_eq!(linked["transport"], "link", "{linked}");
        assert_eq!(linked["payload_type"], first["payload_type"]);
        assert_eq!(linked["sha256"], first["sha256"], "{linked}");
        let saved = std::fs::read(linked["path"].as_str().unwrap()).unwrap();
        assert_eq!(saved, std::fs::read(first["path"].as_str().unwrap()).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_reports_an_undecodable_message_and_goes_on() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let mut listener = start_ready(&[
        "listen",
        "--json",
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
    listener.stdout.read_line(&mut first).unwrap();
    let mut second = String::new();
    listener.stdout.read_line(&mut second).unwrap();
    // It went on to the next message, and exits with the failure's code.
    assert_eq!(listener.child.wait().unwrap().code(), Some(6));
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
    // The timeout exit code (docs/cli.md).
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
}

#[tokio::test(flavor = "multi_thread")]
async fn request_and_echo_reply() {
    let server = NatsServer::start();
    let url = server.url();
    let mut replier =
        start_ready(&["reply", "cli.echo", "--server", &url, "--echo", "--count", "1"]);
    let out = run(&[
        "request",
        "--json",
        "cli.echo",
        "text:q=ping",
        r#"dictionary:d={"n":1}"#,
        "--server",
        &url,
        "--correlation-id",
        "corr-7",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(replier.child.wait().unwrap().success());
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["correlation_id"], "corr-7");
    assert_ne!(answer["reply_to_msg_id"], "");
    assert_eq!(answer["payloads"][0]["sha256"], natsbridge::sha256_hex(b"ping"));
    assert_eq!(answer["payloads"][1]["payload_type"], "dictionary");
}

/// The seed-transcribed Python peer (`tests/interop/seed/python`), started as
/// its driver: it answers only through the envelope's `reply_to` and copies
/// nothing, or asks with `reply_to` set and waits on that subject.
fn seed_python(args: &[&str]) -> std::process::Command {
    let root = natsbridge_test_support::workspace_root();
    let mut cmd = std::process::Command::new(root.join(".venv/bin/python"));
    cmd.arg(root.join("tests/interop/seed/python/peer.py")).args(args);
    cmd
}

#[test]
fn request_is_answered_by_a_seed_written_responder_and_reply_answers_a_seed_requester() {
    let server = NatsServer::start();
    let url = server.url();
    // natsbridge request -> a seed responder (reads only env["reply_to"]).
    let mut responder = seed_python(&[
        "reply",
        "--server",
        &url,
        "--subject",
        "cli.seed",
        "--fileserver",
        "http://127.0.0.1:9",
        "--count",
        "1",
        "--timeout",
        "60",
        "--echo",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(responder.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        assert_ne!(stderr.read_line(&mut line).unwrap(), 0, "the seed responder exited");
    }
    let out =
        run(&["request", "--json", "cli.seed", "text:q=ping", "--server", &url, "--timeout", "30"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(responder.wait().unwrap().success());
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["payloads"][0]["sha256"], natsbridge::sha256_hex(b"ping"));
    assert_eq!(answer["reply_to_msg_id"], "", "a seed responder copies nothing");

    // A seed requester (sets reply_to, waits there) -> natsbridge reply.
    let mut replier =
        start_ready(&["reply", "cli.seed2", "--server", &url, "--echo", "--count", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, r#"[{"dataname": "q", "type": "text", "value": "pong"}]"#).unwrap();
    let out = seed_python(&[
        "request",
        "--server",
        &url,
        "--subject",
        "cli.seed2",
        "--fileserver",
        "http://127.0.0.1:9",
        "--spec",
        spec.to_str().unwrap(),
        "--timeout",
        "30",
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(replier.child.wait().unwrap().success());
    let line: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    assert_eq!(line["matched"], true);
    assert_eq!(line["reply_to_msg_id"], line["request_msg_id"]);
}

#[test]
fn listening_on_a_subject_nats_refuses_is_a_usage_error() {
    let server = NatsServer::start();
    let out = run(&["listen", "a b", "--server", &server.url(), "--count", "1"]);
    // The usage exit code (docs/cli.md), naming the subject.
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid subject") && stderr.contains("\"a b\""), "{stderr}");
}

#[test]
fn request_without_responders_fails_clearly() {
    let server = NatsServer::start();
    let out = run(&["request", "cli.nobody", "text:q=x", "--server", &server.url()]);
    // The no-responders exit code (docs/cli.md).
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no responders"));
}

#[test]
fn demo_runs_the_walkthroughs_on_its_own_servers() {
    let out = run(&["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for needle in [
        "large_document",
        "link",
        "config",
        "students",
        "arrowtable",
        "4. response (reading)",
        "arrived",
    ] {
        assert!(stdout.contains(needle), "missing {needle}: {stdout}");
    }
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no progress bars when piped");
}

#[test]
fn demo_json_reports_every_walkthrough() {
    let out = run(&["demo", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], true);
    assert!(report["nats_url"].as_str().unwrap().starts_with("nats://127.0.0.1:"));
    let walkthroughs = report["walkthroughs"].as_array().unwrap();
    let names: Vec<&str> = walkthroughs.iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "1. chat, mixed content",
            "2. dictionary exchange",
            "3. table exchange",
            "4. request-response"
        ]
    );
    let payloads = |w: usize| walkthroughs[w]["messages"][0]["payloads"].as_array().unwrap();
    let document = &payloads(0)[2];
    assert_eq!(document["dataname"], "large_document");
    assert_eq!(document["transport"], "link");
    assert_eq!(document["size"], 2_000_000);
    assert_eq!(payloads(2)[0]["dataname"], "students");
    assert_eq!(payloads(2)[0]["payload_type"], "arrowtable");
    assert_eq!(payloads(2)[1]["payload_type"], "jsontable");
    assert_eq!(walkthroughs[3]["messages"].as_array().unwrap().len(), 2);
}

#[test]
fn dev_json_prints_working_urls_and_stops_on_ctrl_c() {
    let (mut child, started) = start_json(["dev", "--json"]);
    let nats_url = started["nats_url"].as_str().unwrap();
    let files_url = started["fileserver_url"].as_str().unwrap();
    assert_eq!(started["env"]["NATS_URL"], nats_url);
    assert_eq!(started["env"]["NATSBRIDGE_FILESERVER"], files_url);
    assert!(started["env"]["NATS_WS_URL"].as_str().unwrap().starts_with("ws://127.0.0.1:"));
    // Both servers work: a payload big enough to go by link is published.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![1u8; 600_000]).unwrap();
    let sent = run(&[
        "send",
        "cli.dev",
        &format!("binary:big=@{}", big.display()),
        "--server",
        nats_url,
        "--fileserver",
        files_url,
    ]);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let envelope: Value = serde_json::from_slice(&sent.stdout).unwrap();
    assert_eq!(envelope["payloads"][0]["transport"], "link");
    assert!(interrupt(&mut child));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_file_server_runs_as_a_service_limits_sigterm_and_restart() {
    use natsbridge::claimcheck::{UploadHandlerExt, http::PlikUploader};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("files");
    let start = || {
        let args = ["fileserver", "--listen", "127.0.0.1:0", "--json", "--max-file-size", "1000"];
        let (child, started) = start_json(
            args.iter().map(std::ffi::OsStr::new).chain(["--dir".as_ref(), store.as_os_str()]),
        );
        (child, started["url"].as_str().unwrap().to_string())
    };
    let (mut server, url) = start();
    let uploader = PlikUploader::builder(&url).one_shot(false).build().unwrap();
    let link = uploader.upload_bytes("kept.bin", vec![7u8; 500]).await.unwrap();
    let too_big = uploader.upload_bytes("big.bin", vec![7u8; 2000]).await;
    assert!(too_big.is_err(), "--max-file-size 1000 accepted 2000 bytes");
    assert!(terminate(&mut server), "SIGTERM is not a clean stop");

    // Restarted on the same directory (on another port): still served.
    let (mut again, new_url) = start();
    let path = link.strip_prefix(&url).unwrap();
    let got = reqwest_get(&format!("{new_url}{path}")).await;
    assert_eq!(got, vec![7u8; 500]);
    assert!(interrupt(&mut again));
}

async fn reqwest_get(url: &str) -> Vec<u8> {
    use natsbridge::claimcheck::{DownloadHandlerExt, DownloadRequest, http::HttpDownloader};
    let down = HttpDownloader::new().unwrap();
    down.download_bytes(&DownloadRequest::with_unknown_size(url)).await.unwrap().to_vec()
}

#[test]
fn dev_stops_its_nats_server_on_sigterm() {
    let (mut child, started) = start_json(["dev", "--json"]);
    let nats_url = started["nats_url"].as_str().unwrap();
    let addr = nats_url.trim_start_matches("nats://").to_string();
    assert!(std::net::TcpStream::connect(&addr).is_ok(), "nothing listens at {addr}");
    assert!(terminate(&mut child), "SIGTERM is not a clean stop");
    assert!(std::net::TcpStream::connect(&addr).is_err(), "dev left its nats-server running");
}

#[test]
fn verbose_logs_never_show_the_servers_credentials() {
    let server = NatsServer::start();
    let port = server.url().rsplit(':').next().unwrap().to_string();
    let with_password = format!("nats://alice:s3cret-pw@127.0.0.1:{port}");
    let out = run(&["-vv", "send", "cli.secret", "text:t=x", "--server", &with_password]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("connecting to NATS"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("s3cret-pw"), "the envelope's broker_url: {stdout}");
}

/// The highest `VmHWM` (peak resident set, KiB) seen while `child` runs.
fn peak_rss_kib_until_exit(child: &mut Child) -> u64 {
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
            && let Some(kib) = line.split_whitespace().nth(1).and_then(|v| v.parse().ok())
        {
            peak = peak.max(kib);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    peak
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_file_is_sent_by_link_without_being_read_into_memory() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let files = FileServer::builder().dir(&store).bind("127.0.0.1:0").await.unwrap();
    // 96 MiB: a send that read it whole would peak above it.
    let path = dir.path().join("big.bin");
    let data: Vec<u8> = (0..96u32 << 20).map(|j| (j.wrapping_mul(31) >> 7) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let sha256 = natsbridge::sha256_hex(&data);
    drop(data);
    let mut child = natsbridge()
        .args(["send", "cli.big", &format!("binary:big=@{}", path.display())])
        .args(["--server", &server.url(), "--fileserver", files.url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let peak_kib = peak_rss_kib_until_exit(&mut child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let envelope: Value = serde_json::from_slice(&out.stdout).unwrap();
    let record = &envelope["payloads"][0];
    assert_eq!(record["transport"], "link");
    assert_eq!(record["size"], 96u64 << 20);
    assert_eq!(record["sha256"], sha256);
    assert!(peak_kib > 0, "VmHWM was read");
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB while sending a 96 MiB file");
}
