//! natscli's habits (issue 27, items 3 and 4): a bare value as the body,
//! `@-` and `@@`, names checked, `send --count/--sleep/-H/--metadata`,
//! `--inbox-prefix`, `--connection-name` and `--no-context`; `send`'s
//! summary, `listen --raw` and its numbered lines, `request`'s round trip,
//! `reply`'s view of the requests, and `--count 0` as no limit.

use std::io::{BufRead, Read};
use std::process::{Output, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use natsbridge::Envelope;
use natsbridge_fileserver::FileServer;
use natsbridge_test_support::NatsServer;
use serde_json::{Value, json};

use crate::util::{json_lines, natsbridge, run, run_with_stdin, start_ready, terminate};

const TIMEOUT: i32 = 3;
const BAD_INPUT: i32 = 6;
const USAGE: i32 = 2;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The one envelope `send --no-publish ARGS` printed (stdout is piped, so
/// it prints JSON).
#[track_caller]
fn built(out: &Output) -> Envelope {
    assert!(out.status.success(), "{:?}: {}", out.status, text(&out.stderr));
    Envelope::from_json(out.stdout.trim_ascii()).unwrap()
}

/// Each payload's name and bytes.
fn payloads(envelope: &Envelope) -> Vec<(String, Vec<u8>)> {
    envelope.payloads.iter().map(|p| (p.dataname.clone(), p.bytes().unwrap().to_vec())).collect()
}

#[test]
fn a_bare_value_is_text_and_values_read_stdin_or_escape_at() {
    let send = |args: &[&str]| {
        let mut all = vec!["send", "cli.in", "--no-publish"];
        all.extend_from_slice(args);
        run(&all)
    };
    // `nats pub SUBJECT BODY`: the body is a text payload named `message`.
    let envelope = built(&send(&["hello there"]));
    assert_eq!(payloads(&envelope), [("message".into(), b"hello there".to_vec())]);
    assert_eq!(envelope.payloads[0].payload_type.as_str(), "text");
    // Beside typed payloads, with `@@` for a literal leading `@`.
    let envelope = built(&send(&["text:handle=@@alice", "@@bob", "dictionary:d={}"]));
    assert_eq!(
        payloads(&envelope),
        [
            ("handle".into(), b"@alice".to_vec()),
            ("message".into(), b"@bob".to_vec()),
            ("d".into(), b"{}".to_vec())
        ]
    );
    // `@-` reads standard input, typed or bare.
    let out = run_with_stdin(&["send", "cli.in", "--no-publish", "text:notes=@-"], b"from stdin");
    assert_eq!(payloads(&built(&out)), [("notes".into(), b"from stdin".to_vec())]);
    let out = run_with_stdin(&["send", "cli.in", "--no-publish", "@-", "text:a=b"], b"piped");
    assert_eq!(payloads(&built(&out))[0], ("message".into(), b"piped".to_vec()));
    // --metadata is the envelope's metadata object.
    let envelope = built(&send(&["hi", "--metadata", r#"{"trace": "t-1", "n": 2}"#]));
    assert_eq!(Value::Object(envelope.metadata), json!({"trace": "t-1", "n": 2}));
    let out = send(&["hi", "--metadata", "[1, 2]"]);
    assert_eq!(out.status.code(), Some(USAGE), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("JSON object"), "{}", text(&out.stderr));
}

#[test]
fn empty_duplicate_and_mistyped_names_are_refused_naming_the_argument() {
    let refused = |args: &[&str], needles: &[&str]| {
        let mut all = vec!["send", "cli.in", "--no-publish"];
        all.extend_from_slice(args);
        let out = run(&all);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(BAD_INPUT), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing is printed");
        for needle in needles {
            assert!(stderr.contains(needle), "{args:?}: no {needle:?} in {stderr}");
        }
    };
    refused(&["text:=hello"], &["\"text:=hello\"", "NAME", "empty"]);
    refused(&["text:a=1", "dictionary:a={}"], &["\"text:a=1\"", "\"dictionary:a={}\"", "\"a\""]);
    // Two bare values would both be `message`.
    refused(&["one", "two"], &["\"one\"", "\"two\"", "\"message\""]);
    refused(&["text:a=@-", "text:b=@-"], &["standard input"]);
    // A typo in TYPE is not silently sent as text.
    refused(&["txet:a=b"], &["unknown payload type \"txet\"", "text:message="]);
}

/// The next message on `subscriber`, within 10 seconds.
async fn next(
    subscriber: &mut natsbridge::transport::Subscriber,
) -> natsbridge::transport::Message {
    tokio::time::timeout(Duration::from_secs(10), subscriber.next())
        .await
        .expect("no message within 10 s")
        .expect("subscription ended")
}

#[tokio::test(flavor = "multi_thread")]
async fn send_repeats_with_headers_and_count_zero_sends_until_stopped() {
    let server = NatsServer::start();
    let url = server.url();
    let raw = natsbridge::transport::connect(url.clone()).await.unwrap();
    let mut subscriber = raw.subscribe("cli.rep").await.unwrap();
    raw.sync().await.unwrap();
    let out = run(&[
        "send", "cli.rep", "hi", "--count", "3", "--sleep", "10ms", "-H", "Trace: a", "--header",
        "Trace:b", "-H", "X-Id:7", "-s", &url,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = json_lines(&out.stdout);
    assert_eq!(printed.len(), 3, "one envelope per message");
    let mut ids = Vec::new();
    for line in &printed {
        let message = next(&mut subscriber).await;
        let body: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(&body, line, "printed as published");
        let headers = message.headers.expect("sent with headers");
        let trace: Vec<&str> = headers.get_all("Trace").map(|v| v.as_str()).collect();
        assert_eq!(trace, ["a", "b"]);
        assert_eq!(headers.get("X-Id").map(|v| v.as_str()), Some("7"));
        ids.push(body["msg_id"].as_str().unwrap().to_owned());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "a fresh envelope each time");
    let out = run(&["send", "cli.rep", "hi", "-H", "no colon", "-s", &url]);
    assert_eq!(out.status.code(), Some(USAGE), "{}", text(&out.stderr));

    // listen shows the headers under its numbered line, as `nats sub` does.
    let mut listener = start_ready(&["listen", "cli.hdr", "--count", "1", "-s", &url]);
    let out = run(&["send", "cli.hdr", "hi", "-H", "Trace:a", "-H", "B-Key: z", "-s", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut shown = String::new();
    listener.stdout.read_to_string(&mut shown).unwrap();
    assert!(listener.child.wait().unwrap().success());
    let lines: Vec<&str> = shown.lines().collect();
    assert!(lines[0].starts_with("[#1] Received on \"cli.hdr\" at "), "{shown}");
    assert_eq!(lines[1..3], ["B-Key: z", "Trace: a"], "{shown}");

    // --count 0: no limit. Five messages arrive and it is still sending.
    let mut sender = natsbridge()
        .args(["send", "cli.rep", "again", "--count", "0", "--sleep", "20ms", "-s", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..5 {
        next(&mut subscriber).await;
    }
    assert!(sender.try_wait().unwrap().is_none(), "--count 0 stopped");
    sender.kill().unwrap();
    sender.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn send_summarises_on_request_and_prints_the_envelope_when_piped() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let files = FileServer::builder().dir(dir.path()).bind("127.0.0.1:0").await.unwrap();
    let blob = dir.path().join("blob.bin");
    std::fs::write(&blob, vec![7u8; 4000]).unwrap();
    let blob_arg = format!("binary:blob=@{}", blob.display());
    let args = ["send", "cli.sum", "hello", &blob_arg, "--threshold", "1000", "-s", &url];
    let mut summary_args = args.to_vec();
    summary_args.extend(["--fileserver", files.url(), "--summary"]);
    let out = run(&summary_args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("Published to \"cli.sum\"  msg_id "), "{stdout}");
    assert_eq!(lines[1], "[0] message (text, 5 bytes, direct)");
    let link = format!("[1] blob (binary, 4000 bytes, link {}/", files.url().trim_end_matches('/'));
    assert!(lines[2].starts_with(&link), "{stdout}");
    assert!(stdout.len() < 400, "no base64 on the terminal: {stdout}");

    // Piped without a choice (and with --json), the envelope as published.
    let mut json_args = args.to_vec();
    json_args.extend(["--fileserver", files.url()]);
    let printed = json_lines(&run(&json_args).stdout);
    assert_eq!(printed.len(), 1);
    assert_eq!(printed[0]["payloads"][1]["transport"], "link");
    json_args.push("--json");
    assert_eq!(json_lines(&run(&json_args).stdout).len(), 1);
    summary_args.push("--json");
    assert_eq!(run(&summary_args).status.code(), Some(USAGE), "--json or --summary, not both");
}

/// On a terminal `send` summarises without being asked: run under
/// `script` (util-linux), whose pseudo-terminal is the command's stdout.
#[test]
fn send_summarises_on_a_terminal_by_default() {
    let command = format!("{} send cli.tty hello --no-publish", env!("CARGO_BIN_EXE_natsbridge"));
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("XDG_CONFIG_HOME", concat!(env!("CARGO_TARGET_TMPDIR"), "/no-natscli-config"))
        .env_remove("NATS_URL")
        .env_remove("NATS_CONTEXT")
        .env_remove("NATSBRIDGE_FILESERVER")
        .stdin(Stdio::null())
        .output()
        .expect("`script` (util-linux) runs the command on a pseudo-terminal");
    let stdout = text(&out.stdout).replace("\r\n", "\n");
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.starts_with("Built (not published) for \"cli.tty\"  msg_id "), "{stdout}");
    assert!(stdout.contains("\n[0] message (text, 5 bytes, direct)"), "{stdout}");
    assert!(!stdout.contains("\"payloads\""), "no JSON on a terminal: {stdout}");
}

#[test]
fn listen_raw_pipes_into_unpack_and_listen_numbers_what_it_shows() {
    let server = NatsServer::start();
    let url = server.url();
    let mut raw = start_ready(&["listen", "cli.raw", "--raw", "--count", "1", "-s", &url]);
    let sent = run(&["send", "cli.raw", "text:greeting=Hello!", "-s", &url]);
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    let mut received = Vec::new();
    raw.stdout.read_to_end(&mut received).unwrap();
    assert!(raw.child.wait().unwrap().success());
    assert_eq!(received, sent.stdout, "the envelope exactly as published, one line");
    let unpacked = run_with_stdin(&["unpack", "-"], &received);
    assert!(unpacked.status.success(), "{}", text(&unpacked.stderr));
    assert!(text(&unpacked.stdout).contains("[0] greeting (text, 6 bytes, direct)\n    Hello!"));

    // Text: `[#N] Received on "SUBJECT" at TIME` above each message, and
    // --count 0 does not stop it.
    let mut listener = start_ready(&["listen", "cli.num", "--count", "0", "-s", &url]);
    for body in ["first", "second"] {
        assert!(run(&["send", "cli.num", body, "-s", &url]).status.success());
    }
    let mut seen = Vec::new();
    let mut line = String::new();
    while seen.len() < 2 {
        line.clear();
        assert_ne!(listener.stdout.read_line(&mut line).unwrap(), 0, "listen exited");
        if line.starts_with("[#") {
            seen.push(line.trim_end().to_owned());
        }
    }
    for (n, line) in seen.iter().enumerate() {
        let prefix = format!("[#{}] Received on \"cli.num\" at ", n + 1);
        let time = line.strip_prefix(&prefix).unwrap_or_else(|| panic!("{line}"));
        natsbridge::envelope::parse_timestamp(time).unwrap();
    }
    assert!(listener.child.try_wait().unwrap().is_none(), "--count 0 is no limit");
    assert!(terminate(&mut listener.child));
}

#[test]
fn request_shows_the_service_and_round_trip_and_reply_the_requests() {
    let server = NatsServer::start();
    let url = server.url();
    let mut replier = start_ready(&["reply", "cli.svc", "--echo", "--count", "0", "-s", &url]);
    for n in 1..=2 {
        let out = run(&["request", "cli.svc", &format!("ping {n}"), "-s", &url]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
        let mut lines = stdout.lines();
        let first = lines.next().unwrap();
        let rtt =
            first.strip_prefix("Answer to \"cli.svc\" in ").unwrap_or_else(|| panic!("{first}"));
        assert!(rtt.ends_with('s'), "a duration: {rtt}");
        assert!(lines.next().unwrap().starts_with("cli.svc  from "), "{stdout}");
        assert!(!stdout.contains("_INBOX"), "the inbox is not shown: {stdout}");
        assert!(stdout.contains(&format!("[0] message (text, 6 bytes, direct)\n    ping {n}")));
    }
    // The replier showed both requests as listen does, and their answers.
    let mut shown = String::new();
    while shown.matches("Answered with msg_id").count() < 2 {
        assert_ne!(replier.stdout.read_line(&mut shown).unwrap(), 0, "reply exited: {shown}");
    }
    assert!(shown.starts_with("[#1] Received on \"cli.svc\" with reply \"_INBOX."), "{shown}");
    assert!(shown.contains("\n[#2] Received on \"cli.svc\""), "{shown}");
    assert!(shown.contains("\n    ping 2\nAnswered with msg_id "), "{shown}");
    assert!(terminate(&mut replier.child), "--count 0 answered until stopped");

    // --json: the answer's line with the request's under "request".
    let mut replier =
        start_ready(&["reply", "cli.svc", "--echo", "--json", "--count", "1", "-s", &url]);
    assert!(run(&["request", "cli.svc", "once", "-s", &url]).status.success());
    let mut line = String::new();
    replier.stdout.read_line(&mut line).unwrap();
    assert!(replier.child.wait().unwrap().success());
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["reply_to_msg_id"], line["request"]["msg_id"]);
    assert_eq!(line["request"]["payloads"][0]["dataname"], "message");
}

/// Writes natscli's context `name` under `root` and selects it.
fn select_context(root: &std::path::Path, name: &str, fields: Value) {
    let dir = root.join("nats").join("context");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.json")), fields.to_string()).unwrap();
    std::fs::write(root.join("nats").join("context.txt"), name).unwrap();
}

#[test]
fn inbox_prefix_connection_name_and_no_context() {
    // alice may subscribe only below her own inbox prefix.
    let server = NatsServer::builder()
        .monitoring()
        .config(
            r#"authorization { users: [
                { user: alice, password: a11ce, permissions: {
                    publish: ">", subscribe: ["_INBOX_alice.>"] } },
                { user: svc, password: svc0 }
            ] }"#,
        )
        .start();
    let url = server.url();
    let mut replier = start_ready(&[
        "reply",
        "cli.priv",
        "--echo",
        "-s",
        &url,
        "--user",
        "svc",
        "--password",
        "svc0",
        "--connection-name",
        "priv-replier",
    ]);
    let names: Vec<Value> = server.monitor("/connz").unwrap()["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert!(names.contains(&json!("priv-replier")), "{names:?}");
    let alice = ["-s", url.as_str(), "--user", "alice", "--password", "a11ce", "--timeout", "2s"];
    let request = |extra: &[&str], env: &[(&str, &str)]| {
        natsbridge()
            .args(["request", "cli.priv", "hi"])
            .args(alice)
            .args(extra)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    // Without the prefix her inbox subscription is refused: no answer.
    let out = request(&[], &[]);
    assert_eq!(out.status.code(), Some(TIMEOUT), "answered on _INBOX: {}", text(&out.stdout));
    let out = request(&["--inbox-prefix", "_INBOX_alice"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("    hi"), "{}", text(&out.stdout));
    // The same from the selected natscli context's `inbox_prefix`, which
    // --no-context then leaves out.
    let config = tempfile::tempdir().unwrap();
    select_context(config.path(), "alice", json!({"inbox_prefix": "_INBOX_alice"}));
    let xdg = [("XDG_CONFIG_HOME", config.path().to_str().unwrap())];
    let out = request(&[], &xdg);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = request(&["--no-context"], &xdg);
    assert_eq!(out.status.code(), Some(TIMEOUT), "the context was read: {}", text(&out.stdout));
    // A selected context that is missing is bad input, unless --no-context.
    std::fs::write(config.path().join("nats").join("context.txt"), "gone").unwrap();
    let out = request(&["--inbox-prefix", "_INBOX_alice"], &xdg);
    assert_eq!(out.status.code(), Some(BAD_INPUT), "{}", text(&out.stderr));
    let out = request(&["--inbox-prefix", "_INBOX_alice", "--no-context"], &xdg);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A prefix no subscription can use is refused before connecting.
    let out = request(&["--inbox-prefix", "_INBOX.*"], &[]);
    assert_eq!(out.status.code(), Some(BAD_INPUT), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("inbox prefix"), "{}", text(&out.stderr));
    assert!(terminate(&mut replier.child));
}
