//! Commands that need no server: `send --no-publish` and `unpack`.

use std::net::TcpStream;

use serde_json::Value;

use crate::util::{interrupt, run, run_with_stdin, start_json};

#[test]
fn send_no_publish_prints_the_envelope_and_unpack_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("avatar.png");
    std::fs::write(&image, [0x89, b'P', b'N', b'G', 0, 1, 2, 3]).unwrap();
    let out = run(&[
        "send",
        "chat.room1",
        "text:message_text=Hello!",
        &format!("image:user_avatar=@{}", image.display()),
        r#"dictionary:config={"update_interval":60}"#,
        r#"jsontable:rows=[{"id":1,"name":"Alice"}]"#,
        "--reply-to",
        "chat.replies",
        "--msg-purpose",
        "updateStatus",
        "--no-publish",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let envelope: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(envelope["send_to"], "chat.room1");
    assert_eq!(envelope["reply_to"], "chat.replies");
    assert_eq!(envelope["msg_purpose"], "updateStatus");
    assert_eq!(envelope["payloads"][1]["payload_type"], "image");
    assert_eq!(envelope["payloads"][1]["size"], 8);

    let out_dir = dir.path().join("out");
    let report =
        run_with_stdin(&["unpack", "-", "--json", "--out", out_dir.to_str().unwrap()], &out.stdout);
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let line: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(line.get("payloads").is_some());
    assert_eq!(line["msg_id"], envelope["msg_id"]);
    let image_line = &line["payloads"][1];
    assert_eq!(image_line["dataname"], "user_avatar");
    assert_eq!(image_line["transport"], "direct");
    let saved = std::fs::read(image_line["path"].as_str().unwrap()).unwrap();
    let original = std::fs::read(&image).unwrap();
    assert_eq!(saved, original);
    assert_eq!(image_line["sha256"], natsbridge::sha256_hex(&original));
}

#[test]
fn unpack_rejects_bad_envelopes_on_one_line_without_panicking() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "not a JSON object"),
        (b"garbage", "not a JSON object"),
        (b"\xff\xfe\x00", "not a JSON object"),
        (b"{}", "`payloads`: missing"),
        (br#"{"payloads":[{"dataname":"x"}]}"#, "payloads[0].payload_type"),
        (
            br#"{"payloads":[{"dataname":"x","payload_type":"binary","transport":"direct","size":9,"data":"AAAA"}]}"#,
            "size mismatch",
        ),
        (
            br#"{"payloads":[{"dataname":"x","payload_type":"binary","transport":"direct","data":"A*AA"}]}"#,
            "invalid base64",
        ),
        (
            br#"{"payloads":[{"dataname":"x","payload_type":"binary","transport":"link","size":3,"data":"file:///etc/passwd"}]}"#,
            "refused",
        ),
    ];
    for (input, expected) in cases {
        let out = run_with_stdin(&["unpack", "-"], input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Bad input's exit code (docs/cli.md).
        assert_eq!(out.status.code(), Some(6), "{input:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{input:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(expected), "{input:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn bad_payload_arguments_are_explained() {
    for (arg, expected) in [
        ("hologram:x=1", "unknown payload type"),
        // A known TYPE and `:` must go on as NAME=VALUE (a bare `text` is
        // a text payload: see habits.rs).
        ("text:noequals", "TYPE:NAME=VALUE"),
        ("dictionary:c={", "not JSON"),
        ("binary:b=@/definitely/not/here", "reading payload"),
    ] {
        let out = run(&["send", "s", arg, "--no-publish"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Bad input's exit code (docs/cli.md).
        assert_eq!(out.status.code(), Some(6), "{arg}: {stderr}");
        assert!(stderr.contains(expected), "{arg}: {stderr}");
    }
}

#[test]
fn verbose_logs_on_stderr_and_default_runs_stay_quiet() {
    let args = ["send", "s", "text:t=x", "--no-publish"];
    let quiet = run(&args);
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "", "no logs without -v");

    let verbose = run(&["-v", "send", "s", "text:t=x", "--no-publish"]);
    assert!(verbose.status.success());
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.iter().any(|l| l.contains("INFO") && l.contains("envelope built")), "{stderr}");
    // Logs never reach stdout: it is still exactly one envelope.
    let envelope: Value = serde_json::from_slice(&verbose.stdout).unwrap();
    assert_eq!(envelope["send_to"], "s");
}

#[test]
fn arrowtable_from_csv_travels_as_arrow_ipc_and_is_saved_as_arrow() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sales.csv");
    std::fs::write(&csv, "region,units,price\nnorth,3,9.5\nsouth,,12\neast,7,1.25\n").unwrap();
    let out =
        run(&["send", "s", &format!("arrowtable:sales.csv=@{}", csv.display()), "--no-publish"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let envelope: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(envelope["payloads"][0]["payload_type"], "arrowtable");

    let out_dir = dir.path().join("out");
    let report =
        run_with_stdin(&["unpack", "-", "--json", "--out", out_dir.to_str().unwrap()], &out.stdout);
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let line: Value = serde_json::from_slice(&report.stdout).unwrap();
    let payload = &line["payloads"][0];
    let path = payload["path"].as_str().unwrap();
    assert!(path.ends_with("sales.csv.arrow"), "{path}");
    let saved = std::fs::read(path).unwrap();
    assert_eq!(payload["sha256"], natsbridge::sha256_hex(&saved));
    let table = natsbridge::table::read_ipc(&saved.into()).unwrap();
    assert_eq!(table.num_rows(), 3);
    let names: Vec<&str> = table.schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["region", "units", "price"]);
}

#[test]
fn bad_arrowtable_files_are_refused_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.arrow");
    std::fs::write(&fake, b"ARROW1\0\0not an arrow file").unwrap();
    let ragged = dir.path().join("ragged.csv");
    std::fs::write(&ragged, "a,b\n1,2\n3\n").unwrap();
    for (arg, expected) in [
        (format!("arrowtable:t=@{}", fake.display()), "not Arrow IPC"),
        (format!("arrowtable:t=@{}", ragged.display()), "invalid CSV"),
        ("arrowtable:t=inline".to_string(), "@PATH"),
    ] {
        let out = run(&["send", "s", &arg, "--no-publish"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Bad input's exit code (docs/cli.md).
        assert_eq!(out.status.code(), Some(6), "{arg}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(expected), "{arg}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn fileserver_json_prints_its_url_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("files");
    let args = ["fileserver", "--listen", "127.0.0.1:0", "--json", "--dir"];
    let (mut child, started) =
        start_json(args.iter().map(std::ffi::OsStr::new).chain([store.as_os_str()]));
    assert_eq!(started["dir"], store.display().to_string());
    let url = started["url"].as_str().unwrap();
    let addr = url.strip_prefix("http://").unwrap().trim_end_matches('/');
    assert!(TcpStream::connect(addr).is_ok(), "nothing listens at {url}");
    assert!(interrupt(&mut child));
}

#[test]
fn table_is_sent_under_the_first_seed_s_name_and_unknown_types_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("students.csv");
    std::fs::write(&csv, "id,name,score\n1,Alice,95\n2,Bob,88\n").unwrap();
    let out = run(&["send", "s", &format!("table:students=@{}", csv.display()), "--no-publish"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut envelope: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(envelope["payloads"][0]["payload_type"], "table");

    // A newer peer's type next to it: shown with its name, bytes kept.
    let mut unknown = envelope["payloads"][0].clone();
    unknown["payload_type"] = "hologram".into();
    unknown["dataname"] = "h".into();
    envelope["payloads"].as_array_mut().unwrap().push(unknown);
    let out_dir = dir.path().join("out");
    let report = run_with_stdin(
        &["unpack", "-", "--json", "--out", out_dir.to_str().unwrap()],
        envelope.to_string().as_bytes(),
    );
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let line: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(line["payloads"][0]["payload_type"], "table");
    assert_eq!(line["payloads"][1]["payload_type"], "hologram");
    assert_eq!(line["payloads"][1]["sha256"], line["payloads"][0]["sha256"]);
    let saved = std::fs::read(line["payloads"][1]["path"].as_str().unwrap()).unwrap();
    assert_eq!(natsbridge::sha256_hex(&saved), line["payloads"][1]["sha256"].as_str().unwrap());
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::util::natsbridge()
        .args(["-v", "--log-format", "json", "send", "t", "text:m=hi", "--no-publish"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines with -v");
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
}
