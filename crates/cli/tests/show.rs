//! What `unpack`, `listen` and `request` show a person: each payload
//! decoded by its type, a header line per envelope, and payloads whose bytes
//! are not what their type says named as errors (exit 6, bad input).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use natsbridge::table::RecordBatch;
use natsbridge::table::arrow_array::{ArrayRef, Int64Array, StringArray};
use natsbridge_test_support::NatsServer;
use serde_json::Value;

use crate::util::{natsbridge, run, run_with_stdin, start_ready};

/// An Arrow IPC table of 12 rows (`id`, `name`) written to `dir/t.arrow`.
fn arrow_file(dir: &Path) -> std::path::PathBuf {
    let ids: Vec<i64> = (1..=12).collect();
    let names: Vec<String> = (1..=12).map(|i| format!("name{i}")).collect();
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        ("name", Arc::new(StringArray::from(names)) as ArrayRef),
    ])
    .unwrap();
    let path = dir.join("t.arrow");
    std::fs::write(&path, natsbridge::table::write_ipc(&[batch]).unwrap()).unwrap();
    path
}

/// `send --no-publish` of `payloads` on `chat.room1`, as JSON.
fn envelope(payloads: &[&str]) -> Value {
    let mut args = vec!["send", "chat.room1", "--reply-to", "chat.replies", "--no-publish"];
    args.extend(payloads);
    args.extend(["--msg-purpose", "chat", "--sender-name", "alice"]);
    let out = run(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Makes payload `index` say it is `payload_type` (its bytes unchanged).
fn retype(envelope: &mut Value, index: usize, payload_type: &str) {
    envelope["payloads"][index]["payload_type"] = payload_type.into();
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn unpack_shows_each_payload_decoded_by_type() {
    let dir = tempfile::tempdir().unwrap();
    let arrow = arrow_file(dir.path());
    let image = dir.path().join("avatar.png");
    std::fs::write(&image, [0x89, b'P', b'N', b'G', 0, 1, 2, 3]).unwrap();
    let mut sent = envelope(&[
        "text:message_text=Hello!",
        r#"dictionary:config={"update_interval":60}"#,
        r#"jsontable:rows=[{"id":1,"name":"Alice"}]"#,
        &format!("arrowtable:sales=@{}", arrow.display()),
        &format!("image:user_avatar=@{}", image.display()),
        "binary:h=HOLO",
    ]);
    // A type this peer does not know: shown as bytes.
    retype(&mut sent, 5, "hologram");
    let out_dir = dir.path().join("out");
    let out = run_with_stdin(
        &["unpack", "-", "--out", out_dir.to_str().unwrap()],
        sent.to_string().as_bytes(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let lines: Vec<&str> = stdout.lines().collect();

    // The header line.
    let msg_id = sent["msg_id"].as_str().unwrap();
    assert!(lines[0].starts_with("chat.room1  from alice"), "{stdout}");
    for needle in ["msg_purpose chat", &format!("msg_id {msg_id}"), "reply_to chat.replies"] {
        assert!(lines[0].contains(needle), "{needle}: {stdout}");
    }
    // Text printed.
    assert_eq!(lines[1], "[0] message_text (text, 6 bytes, direct)");
    assert_eq!(lines[2].trim(), "Hello!");
    // Dictionary and jsontable as pretty JSON.
    assert!(
        stdout.contains(
            "[1] config (dictionary, 22 bytes, direct)\n    {\n      \"update_interval\": 60\n    }"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("[2] rows (jsontable,"), "{stdout}");
    assert!(stdout.contains("\n        \"name\": \"Alice\"\n"), "{stdout}");
    // The Arrow table: row count, schema, the first 10 rows.
    assert!(stdout.contains("[3] sales (arrowtable,"), "{stdout}");
    assert!(
        stdout.contains(
            "    12 rows, 2 columns\n      id: Int64 not null\n      name: Utf8 not null\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("    id | name\n    ---+-------\n    1  | name1\n"), "{stdout}");
    assert!(stdout.contains("    10 | name10\n    (2 more rows)"), "{stdout}");
    assert!(!stdout.contains("name11"), "{stdout}");
    // Image and unknown type: name, type, size and SHA-256.
    let original = std::fs::read(&image).unwrap();
    assert!(stdout.contains(&format!(
        "[4] user_avatar (image, 8 bytes, direct)\n    sha256 {}",
        natsbridge::sha256_hex(&original)
    )));
    assert!(stdout.contains(&format!(
        "[5] h (hologram, 4 bytes, direct)\n    sha256 {}",
        natsbridge::sha256_hex(b"HOLO")
    )));
    // --out still saves, and says where.
    let saved = lines.iter().find(|l| l.contains("saved to") && l.contains("user_avatar")).unwrap();
    let path = saved.trim().strip_prefix("saved to ").unwrap();
    assert_eq!(std::fs::read(path).unwrap(), original);
}

#[test]
fn payloads_that_are_not_their_type_are_named_and_exit_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let not_utf8 = dir.path().join("latin1.txt");
    std::fs::write(&not_utf8, b"caf\xe9").unwrap();
    for (bad_arg, payload_type, reason) in [
        (format!("binary:bad=@{}", not_utf8.display()), "text", "not UTF-8"),
        ("binary:bad={not json".to_string(), "dictionary", "not JSON"),
        ("binary:bad=ARROW1nope".to_string(), "arrowtable", "Arrow IPC"),
    ] {
        let mut sent = envelope(&["text:greeting=Hello!", &bad_arg, "image:pic=PNG"]);
        retype(&mut sent, 1, payload_type);
        let input = sent.to_string();

        let out = run_with_stdin(&["unpack", "-"], input.as_bytes());
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(6), "{payload_type}: {stdout}\n{stderr}");
        // Named on stderr, one line, with the reason.
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&format!("payload \"bad\" ({payload_type})")), "{stderr}");
        assert!(stderr.contains(reason), "{payload_type}: {stderr}");
        // The others are still shown, the bad one in its place.
        assert!(stdout.contains("    Hello!\n"), "{stdout}");
        assert!(stdout.contains(&format!("[1] bad ({payload_type},")), "{stdout}");
        assert!(stdout.contains("    error: payload \"bad\""), "{stdout}");
        assert!(stdout.contains(&natsbridge::sha256_hex(b"PNG")), "{stdout}");

        // --json: the same line as ever on stdout, the same error and code.
        let out = run_with_stdin(&["unpack", "-", "--json"], input.as_bytes());
        assert_eq!(out.status.code(), Some(6));
        assert_eq!(text(&out.stderr), stderr);
        let line: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(line["payloads"][1]["payload_type"], payload_type);
        assert_eq!(line["payloads"].as_array().unwrap().len(), 3);
    }
}

#[test]
fn json_keeps_the_one_line_form() {
    let sent = envelope(&["text:t=Hello!", r#"dictionary:d={"a":1}"#]);
    let out = run_with_stdin(&["unpack", "-", "--json"], sent.to_string().as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 1);
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "broker_url",
            "correlation_id",
            "extra",
            "metadata",
            "msg_id",
            "msg_purpose",
            "payloads",
            "receiver_id",
            "receiver_name",
            "reply_to",
            "reply_to_msg_id",
            "send_to",
            "sender_id",
            "sender_name",
            "timestamp"
        ]
    );
    let payload = line["payloads"][0].as_object().unwrap();
    let mut keys: Vec<&str> = payload.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["dataname", "path", "payload_type", "sha256", "size", "transport"]);
    assert_eq!(payload["sha256"], natsbridge::sha256_hex(b"Hello!"));
    assert_eq!(payload["path"], Value::Null);
}

#[test]
fn listen_shows_the_readme_chat_walkthrough_and_request_shows_the_answer() {
    let server = NatsServer::start();
    let url = server.url();
    let mut listener = natsbridge()
        .args(["listen", "chat.room1", "--count", "1", "--timeout", "30", "-s", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(listener.stderr.take().unwrap()).read_line(&mut ready).unwrap();
    assert!(ready.contains("listening on"), "{ready}");
    let sent = run(&["send", "chat.room1", "text:message_text=Hello!", "-s", &url]);
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    let out = listener.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    // natscli's numbered line, then the envelope's header.
    assert!(stdout.starts_with("[#1] Received on \"chat.room1\" at "), "{stdout}");
    assert!(stdout.lines().nth(1).unwrap().starts_with("chat.room1  from "), "{stdout}");
    assert!(stdout.contains("[0] message_text (text, 6 bytes, direct)\n    Hello!\n"), "{stdout}");

    // request: the answer shown the same way.
    let mut replier = natsbridge()
        .args(["reply", "cli.show", "--echo", "--count", "1", "-s", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(replier.stderr.take().unwrap()).read_line(&mut ready).unwrap();
    assert!(ready.contains("answering on"), "{ready}");
    let out = run(&["request", "cli.show", r#"dictionary:d={"n":1}"#, "-s", &url]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(replier.wait().unwrap().success());
    assert!(
        stdout.contains("[0] d (dictionary, 7 bytes, direct)\n    {\n      \"n\": 1\n    }"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_names_a_payload_that_is_not_its_type_and_exits_bad_input() {
    let server = NatsServer::start();
    let url = server.url();
    let mut listener =
        start_ready(&["listen", "cli.badbytes", "--count", "3", "--timeout", "30", "-s", &url]);
    let mut bad = envelope(&["text:greeting=Hello!", "binary:settings={not json"]);
    retype(&mut bad, 1, "dictionary");
    let raw = natsbridge::transport::connect(url.clone()).await.unwrap();
    raw.publish("cli.badbytes", bad.to_string().into()).await.unwrap();
    // Not an envelope at all: shown as an error line, not bad input's code.
    raw.publish("cli.badbytes", "{\"payloads\": 7}".into()).await.unwrap();
    raw.flush().await.unwrap();
    // Listening goes on after it.
    let sent = run(&["send", "cli.badbytes", "text:next=still here", "-s", &url]);
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    // Read to the end (it exits after three messages), then reap it.
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut listener.stdout, &mut out).unwrap();
    let status = listener.child.wait().unwrap();
    let rest = listener.rest_of_stderr();
    let stdout = text(&out);
    assert_eq!(status.code(), Some(6), "{stdout}\n{rest}");
    assert!(rest.contains("payload \"settings\" (dictionary)"), "{rest}");
    assert!(rest.contains("not JSON"), "{rest}");
    assert!(stdout.contains("    Hello!\n"), "{stdout}");
    assert!(stdout.contains("    still here"), "{stdout}");
    assert!(stdout.contains("\ncli.badbytes  error (envelope.malformed): "), "{stdout}");
}
