//! The `hint: ...` line after the common errors (docs/cli.md, "Errors
//! and hints"): one test per hint, each through the binary against what
//! causes it.

use std::io::{BufRead, Read};
use std::process::Output;

use natsbridge_fileserver::FileServer;
use natsbridge_test_support::NatsServer;
use serde_json::Value;

use crate::util::{run, run_with_stdin, start_ready, terminate};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The error's line, then its hint: returns the hint's text.
#[track_caller]
fn hint(out: &Output) -> String {
    let stderr = stderr(out);
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("hint: ")).unwrap_or_else(|| {
        panic!("no hint line: {stderr}");
    });
    assert!(at > 0 && lines[at - 1].starts_with("natsbridge: "), "{stderr}");
    lines[at]["hint: ".len()..].to_owned()
}

#[test]
fn connection_refused_names_dev_and_the_server_flag() {
    let out = run(&["send", "cli.hint", "text:t=hi", "-s", "nats://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Connection refused"), "{}", stderr(&out));
    let hint = hint(&out);
    for needed in ["natsbridge dev", "-s/--server", "NATS_URL"] {
        assert!(hint.contains(needed), "{needed}: {hint}");
    }
}

#[test]
fn with_json_a_command_s_own_error_is_one_json_line() {
    // The connection refused above, asked for JSON: one object on stderr
    // with the kind, the whole chain, the hint and the exit code.
    let out = run(&["send", "cli.hint", "text:t=hi", "-s", "nats://127.0.0.1:1", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    let stderr = stderr(&out);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let error = &serde_json::from_str::<Value>(lines[0]).unwrap()["error"];
    assert_eq!(error["kind"], "nats.connect", "{stderr}");
    assert!(error["message"].as_str().unwrap().contains("Connection refused"), "{stderr}");
    assert!(error["hint"].as_str().unwrap().contains("natsbridge dev"), "{stderr}");
    assert_eq!(error["exit"], 1);

    // A payload argument the command line refuses: kind `input`, exit 6.
    let out = run(&["send", "cli.hint", "nope:t=hi", "--no-publish", "--json"]);
    assert_eq!(out.status.code(), Some(6), "{}", self::stderr(&out));
    let error = serde_json::from_slice::<Value>(&out.stderr).unwrap();
    assert_eq!(error["error"]["exit"], 6, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("nope"), "{error}");
}

#[test]
fn authorization_failure_names_the_credential_flags() {
    let server = NatsServer::builder().token("r1ght-t0ken").start();
    let out = run(&["send", "cli.hint", "text:t=hi", "-s", &server.url(), "--user", "wr0ng"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // Each cause once (async-nats repeats it behind `nats: `).
    assert_eq!(stderr(&out).matches("authorization violation").count(), 1, "{}", stderr(&out));
    let hint = hint(&out);
    for needed in ["--user", "--creds", "--context"] {
        assert!(hint.contains(needed), "{needed}: {hint}");
    }
}

#[test]
fn no_link_handler_names_the_file_server_flag_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 2_000_000]).unwrap();
    let payload = format!("binary:big=@{}", big.display());
    // --no-publish needs no server: the plan fails the same way.
    let out = run(&["send", "cli.hint", &payload, "--no-publish"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("no link handler"), "{}", stderr(&out));
    let hint = hint(&out);
    for needed in ["--fileserver", "NATSBRIDGE_FILESERVER"] {
        assert!(hint.contains(needed), "{needed}: {hint}");
    }
}

#[test]
fn no_stream_says_how_to_make_one() {
    let server = NatsServer::builder().jetstream().start();
    let out = run(&["send", "cli.nostream", "text:t=hi", "-s", &server.url(), "--jetstream"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(hint(&out).contains("nats stream add"), "{}", stderr(&out));
    let out = run(&["listen", "x", "-s", &server.url(), "--stream", "NOPE", "--durable", "d"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(hint(&out).contains("nats stream add"), "{}", stderr(&out));
    // Under a `>` watcher (as `dev`'s inspector) the publish is taken and
    // never acknowledged: the wait times out, and the hint says why.
    let mut watcher = start_ready(&["listen", ">", "-s", &server.url()]);
    let out = run(&[
        "send",
        "cli.nostream",
        "text:t=hi",
        "-s",
        &server.url(),
        "--jetstream",
        "--timeout",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let said = hint(&out);
    for needed in ["no stream acknowledged", "nats stream add", "`>`"] {
        assert!(said.contains(needed), "{needed}: {said}");
    }
    assert!(terminate(&mut watcher.child));
}

#[test]
fn a_request_that_times_out_under_a_wildcard_watcher_says_why() {
    let server = NatsServer::start();
    let url = server.url();
    // What `dev`'s inspector does: interest in every subject, so the
    // server never answers "no responders".
    let mut watcher = start_ready(&["listen", ">", "-s", &url]);
    let out = run(&["request", "cli.nobody", "text:q=x", "-s", &url, "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let said = hint(&out);
    for needed in ["responder", "natsbridge dev", "`>`", "no responders"] {
        assert!(said.contains(needed), "{needed}: {said}");
    }
    assert!(terminate(&mut watcher.child));
    // Without the watcher: no responders at once, and its own hint.
    let out = run(&["request", "cli.nobody", "text:q=x", "-s", &url]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(hint(&out).contains("natsbridge reply"), "{}", stderr(&out));
}

/// Two listeners on one subject and a one-shot link: one gets the payload,
/// the other `claimcheck.gone` with the hint to send with `--ttl`, in its
/// JSON line (and exits non-zero). With `send --ttl` both get it.
#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_link_used_up_by_another_listener_points_to_ttl() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let files = FileServer::builder().dir(dir.path().join("store")).bind("127.0.0.1:0").await;
    let files = files.unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![3u8; 600_000]).unwrap();
    let payload = format!("binary:big=@{}", big.display());
    let listen = ["listen", "cli.fanout", "--count", "1", "--json", "-s", &url];
    let send = ["send", "cli.fanout", &payload, "-s", &url, "--fileserver", files.url()];

    let outcomes = tokio::task::block_in_place(|| {
        let listeners: Vec<_> = (0..2)
            .map(|_| start_ready(&[&listen[..], &["--fileserver", files.url()]].concat()))
            .collect();
        let sent = run(&send);
        assert!(sent.status.success(), "{}", stderr(&sent));
        listeners
            .into_iter()
            .map(|mut l| {
                let mut line = String::new();
                l.stdout.read_line(&mut line).unwrap();
                let status = l.child.wait().unwrap();
                (serde_json::from_str::<Value>(&line).unwrap(), status.code())
            })
            .collect::<Vec<_>>()
    });
    let gone: Vec<_> = outcomes.iter().filter(|(line, _)| line.get("error").is_some()).collect();
    assert_eq!(gone.len(), 1, "{outcomes:?}");
    let (line, code) = gone[0];
    assert_eq!(line["error"]["kind"], "claimcheck.gone", "{line}");
    assert!(line["error"]["hint"].as_str().unwrap().contains("send --ttl"), "{line}");
    assert_eq!(*code, Some(1), "a listener whose message failed exits non-zero");

    // With a TTL the link serves every receiver until it expires.
    let outcomes = tokio::task::block_in_place(|| {
        let listeners: Vec<_> = (0..2)
            .map(|_| start_ready(&[&listen[..], &["--fileserver", files.url()]].concat()))
            .collect();
        let sent = run(&[&send[..], &["--ttl", "10m"]].concat());
        assert!(sent.status.success(), "{}", stderr(&sent));
        listeners
            .into_iter()
            .map(|mut l| {
                let mut out = String::new();
                l.stdout.read_to_string(&mut out).unwrap();
                (out, l.child.wait().unwrap().code())
            })
            .collect::<Vec<_>>()
    });
    for (out, code) in outcomes {
        let line: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(line["payloads"][0]["size"], 600_000, "{line}");
        assert_eq!(code, Some(0));
    }
}

/// The text form has the hint too, on the line after the error; and
/// `unpack` of a used-up link prints it after its error.
#[tokio::test(flavor = "multi_thread")]
async fn the_text_form_of_a_failed_message_carries_its_hint() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let files = FileServer::builder().dir(dir.path().join("store")).bind("127.0.0.1:0").await;
    let files = files.unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![3u8; 600_000]).unwrap();
    let payload = format!("binary:big=@{}", big.display());
    let sent = tokio::task::block_in_place(|| {
        run(&["send", "cli.text", &payload, "-s", &url, "--fileserver", files.url()])
    });
    assert!(sent.status.success(), "{}", stderr(&sent));
    let envelope = sent.stdout;
    let (first, again) = tokio::task::block_in_place(|| {
        let first = run_with_stdin(&["unpack", "-"], &envelope);
        (first, run_with_stdin(&["unpack", "-"], &envelope))
    });
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(hint(&again).contains("send --ttl"), "{}", stderr(&again));

    // The used-up envelope, published again as it was, meets a listener.
    let mut listener = tokio::task::block_in_place(|| {
        start_ready(&["listen", "cli.text", "--count", "1", "-s", &url])
    });
    let bridge = natsbridge::connect(&url).await.unwrap();
    bridge.connection().publish("cli.text", envelope.into()).await.unwrap();
    bridge.connection().flush().await.unwrap();
    let (out, status) = tokio::task::block_in_place(|| {
        let mut out = String::new();
        listener.stdout.read_to_string(&mut out).unwrap();
        (out, listener.child.wait().unwrap())
    });
    // The message's numbered arrival line, its error, then the hint.
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("[#1] Received on \"cli.text\""), "{out}");
    assert!(lines[1].starts_with("cli.text  error (claimcheck.gone): "), "{out}");
    assert!(lines[2].starts_with("    hint: ") && lines[2].contains("send --ttl"), "{out}");
    assert_eq!(status.code(), Some(1));
}
