//! A hostile peer through the binary (docs/security.md): links fetched
//! only where the policy allows, memory bounded per message, one slow link
//! not holding the rest, no credentials on the wire or in `--help`, `--out`
//! never overwriting, machine output a peer cannot forge.

use std::io::{BufRead, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use natsbridge_fileserver::FileServer;
use natsbridge_test_support::NatsServer;
use serde_json::{Value, json};

use crate::util::{natsbridge, run, start_ready};

/// What the test HTTP service answers.
#[derive(Clone, Copy)]
enum Body {
    /// These bytes.
    Fixed(&'static [u8]),
    /// `n` zero bytes, written 64 KiB at a time (never held whole).
    Zeros(u64),
    /// A `Content-Length` of `n`, then 1 KiB every 200 ms: a link that
    /// keeps just above any minimum rate and never ends in a test's time.
    Trickle(u64),
}

/// An HTTP service on another loopback port: an "internal" service a peer
/// should not make us read, a store, or a slow link. It counts requests and
/// keeps their `Authorization` headers.
struct Service {
    url: String,
    hits: Arc<AtomicUsize>,
    authorization: Arc<Mutex<Vec<Option<String>>>>,
}

impl Service {
    fn start(body: Body) -> Service {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let authorization = Arc::new(Mutex::new(Vec::new()));
        let (h, a) = (hits.clone(), authorization.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (h, a) = (h.clone(), a.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, body, &h, &a);
                });
            }
        });
        Service { url, hits, authorization }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn serve(
    mut stream: TcpStream,
    body: Body,
    hits: &AtomicUsize,
    authorization: &Mutex<Vec<Option<String>>>,
) -> std::io::Result<()> {
    let mut reader = std::io::BufReader::new(stream.try_clone()?);
    let mut auth = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            auth = Some(value.trim().to_string());
        }
    }
    hits.fetch_add(1, Ordering::SeqCst);
    authorization.lock().unwrap().push(auth);
    let len = match body {
        Body::Fixed(bytes) => bytes.len() as u64,
        Body::Zeros(n) | Body::Trickle(n) => n,
    };
    write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")?;
    match body {
        Body::Fixed(bytes) => stream.write_all(bytes)?,
        Body::Zeros(n) => {
            let piece = vec![0u8; 64 * 1024];
            let mut left = n;
            while left > 0 {
                let take = left.min(piece.len() as u64) as usize;
                stream.write_all(&piece[..take])?;
                left -= take as u64;
            }
        }
        Body::Trickle(_) => loop {
            stream.write_all(&[b'x'; 1024])?;
            std::thread::sleep(Duration::from_millis(200));
        },
    }
    Ok(())
}

const SECRET: &[u8] = b"INTERNAL-ADMIN-TOKEN-4f2a";

/// An envelope with these payload records, as a hostile peer writes it.
fn envelope(msg_id: &str, payloads: Vec<Value>) -> Value {
    json!({
        "correlation_id": "c", "msg_id": msg_id, "timestamp": "2026-01-01T00:00:00.000Z",
        "send_to": "sec", "msg_purpose": "chat", "sender_name": "mallory", "sender_id": "m",
        "receiver_name": "", "receiver_id": "", "reply_to": "", "reply_to_msg_id": "",
        "broker_url": "", "metadata": {}, "payloads": payloads,
    })
}

fn link(name: &str, payload_type: &str, url: &str, size: u64) -> Value {
    json!({"id": "i", "dataname": name, "payload_type": payload_type, "transport": "link",
           "encoding": "none", "size": size, "data": url})
}

fn direct(name: &str, text: &str) -> Value {
    json!({"id": "i", "dataname": name, "payload_type": "text", "transport": "direct",
           "encoding": "base64", "size": text.len(), "data": base64(text.as_bytes())})
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn write_envelope(dir: &Path, name: &str, envelope: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, envelope.to_string()).unwrap();
    path.display().to_string()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_file_server_configured_links_elsewhere_are_refused() {
    let internal = Service::start(Body::Fixed(SECRET));
    let work = tempfile::tempdir().unwrap();
    let files = FileServer::builder().dir(work.path().join("s")).bind("127.0.0.1:0").await.unwrap();
    let secret_link = format!("{}/admin/token", internal.url);
    let env = envelope("m1", vec![link("t", "text", &secret_link, SECRET.len() as u64)]);
    let path = write_envelope(work.path(), "e.json", &env);

    // unpack: refused with a clear kind, nothing of the service printed.
    let out = run(&["unpack", &path, "--fileserver", files.url()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("INTERNAL") && !stderr(&out).contains("INTERNAL"));
    assert_eq!(internal.hits(), 0, "a refused link must cost no request");

    // listen: the message is shown as an error of kind url_refused.
    let server = NatsServer::start();
    let url = server.url();
    let mut listener = start_ready(&[
        "listen",
        "sec.>",
        "--json",
        "--count",
        "1",
        "--server",
        &url,
        "--fileserver",
        files.url(),
        "--timeout",
        "30",
    ]);
    let raw = natsbridge::transport::connect(url.clone()).await.unwrap();
    raw.publish("sec.a", env.to_string().into()).await.unwrap();
    raw.flush().await.unwrap();
    let mut line = String::new();
    listener.stdout.read_line(&mut line).unwrap();
    assert_eq!(listener.child.wait().unwrap().code(), Some(6), "bad input: {line}");
    let shown: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(shown["error"]["kind"], "claimcheck.url_refused", "{line}");
    assert!(!line.contains("INTERNAL"));
    assert_eq!(internal.hits(), 0);

    // The control: the same link from an origin the user allows is fetched
    // (the refusal above is the policy, not a broken link).
    let out = run(&["unpack", &path, "--fileserver", files.url(), "--allow-origin", &internal.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("INTERNAL-ADMIN-TOKEN"));
    assert_eq!(internal.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn reply_echo_fetches_nothing_from_an_origin_nobody_configured() {
    let internal = Service::start(Body::Fixed(SECRET));
    let server = NatsServer::start();
    let url = server.url();
    let secret_link = format!("{}/admin/token", internal.url);
    let request = envelope("m2", vec![link("t", "text", &secret_link, SECRET.len() as u64)]);
    let raw = natsbridge::transport::connect(url.clone()).await.unwrap();

    let mut replier =
        start_ready(&["reply", "--json", "sec.echo", "--echo", "--server", &url, "--count", "1"]);
    let answer = raw.request("sec.echo", request.to_string().into(), Duration::from_secs(3)).await;
    // No answer at all (the request was refused), and nothing fetched.
    assert!(answer.is_err(), "an answer came back: {answer:?}");
    let mut line = String::new();
    replier.stdout.read_line(&mut line).unwrap();
    let refused: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(refused["error"]["kind"], "claimcheck.url_refused", "{line}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("no file server origin"));
    assert_eq!(internal.hits(), 0);
    let _ = replier.child.kill();
    let _ = replier.child.wait();

    // Allowed explicitly, the same request is echoed: the user chose it.
    let mut replier = start_ready(&[
        "reply",
        "sec.echo2",
        "--echo",
        "--server",
        &url,
        "--count",
        "1",
        "--allow-origin",
        &internal.url,
    ]);
    let answer = raw
        .request("sec.echo2", request.to_string().into(), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&answer.payload).contains(&base64(SECRET)));
    assert!(replier.child.wait().unwrap().success());
    assert_eq!(internal.hits(), 1);
}

/// Runs `natsbridge ARGS` to the end and returns its output, whether it
/// exited 0, and its peak resident memory in bytes, as the kernel counts
/// it (`ru_maxrss`).
///
/// The binary is started by a small Python process, not by this test
/// process: a child's `ru_maxrss` includes the memory of the process it was
/// forked from until its `exec`, and this process (every test of the
/// binary, in parallel) may be far larger than what is measured.
fn run_measured(args: &[&str]) -> (String, String, bool, u64) {
    let venv = natsbridge_test_support::workspace_root().join(".venv/bin/python");
    let python = if venv.exists() { venv } else { "python3".into() };
    let work = tempfile::tempdir().unwrap();
    let report = work.path().join("maxrss");
    let script = "import resource, subprocess, sys\n\
                  code = subprocess.run(sys.argv[2:]).returncode\n\
                  open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
                  sys.exit(code)\n";
    // natsbridge()'s program and environment, run through the script.
    let template = natsbridge();
    let mut command = std::process::Command::new(python);
    command.arg("-c").arg(script).arg(&report).arg(template.get_program()).args(args);
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let out = command.output().unwrap();
    let kib: u64 = std::fs::read_to_string(&report).unwrap().trim().parse().unwrap();
    (stdout(&out), stderr(&out), out.status.success(), kib * 1024)
}

#[test]
fn byte_links_stream_to_their_digest_in_bounded_memory() {
    const EACH: u64 = 64 << 20;
    let store = Service::start(Body::Zeros(EACH));
    let work = tempfile::tempdir().unwrap();
    let payloads = (0..6)
        .map(|i| link(&format!("blob{i}"), "binary", &format!("{}/f/{i}", store.url), EACH))
        .collect();
    let path = write_envelope(work.path(), "e.json", &envelope("m3", payloads));
    let (out, err, success, peak) = run_measured(&["unpack", &path, "--json"]);
    assert!(success, "{err}");
    let shown: Value = serde_json::from_str(out.trim()).unwrap();
    let zeros = natsbridge::sha256_hex(&vec![0u8; EACH as usize]);
    for record in shown["payloads"].as_array().unwrap() {
        assert_eq!(record["size"], EACH, "{record}");
        assert_eq!(record["sha256"], zeros.as_str(), "{record}");
    }
    assert_eq!(store.hits(), 6);
    // 384 MiB arrived; holding even one link would take 64 MiB.
    assert!(peak < 48 << 20, "peak RSS {} MiB", peak >> 20);
    eprintln!("unpack of 6 x 64 MiB links: peak RSS {} MiB", peak >> 20);
}

#[test]
fn content_links_over_the_message_budget_are_refused_before_any_request() {
    let store = Service::start(Body::Zeros(30_000_000));
    let work = tempfile::tempdir().unwrap();
    let payloads = (0..2)
        .map(|i| link(&format!("t{i}"), "text", &format!("{}/f/{i}", store.url), 30_000_000))
        .collect();
    let path = write_envelope(work.path(), "e.json", &envelope("m4", payloads));
    let out = run(&["unpack", &path, "--max-message-bytes", "50000000"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("budget of 50000000 bytes"), "{}", stderr(&out));
    assert_eq!(store.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_slow_link_does_not_hold_the_messages_after_it() {
    let slow = Service::start(Body::Trickle(100_000_000));
    let server = NatsServer::start();
    let url = server.url();
    let mut listener = start_ready(&[
        "listen",
        "sec.slow",
        "--json",
        "--count",
        "2",
        "--server",
        &url,
        "--link-deadline",
        "3s",
        "--timeout",
        "60",
    ]);
    let raw = natsbridge::transport::connect(url.clone()).await.unwrap();
    let first =
        envelope("slow", vec![link("big", "binary", &format!("{}/f", slow.url), 100_000_000)]);
    raw.publish("sec.slow", first.to_string().into()).await.unwrap();
    // The slow link is being fetched before the next message is sent.
    while slow.hits() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = envelope("fast", vec![direct("t", "after the slow one")]);
    raw.publish("sec.slow", second.to_string().into()).await.unwrap();
    raw.flush().await.unwrap();
    let mut line = String::new();
    listener.stdout.read_line(&mut line).unwrap();
    let shown: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(shown["msg_id"], "fast", "the message after the slow link waited: {line}");
    let mut line = String::new();
    listener.stdout.read_line(&mut line).unwrap();
    let failed: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(failed["error"]["kind"], "claimcheck.timed_out", "{line}");
    assert!(line.contains("within its deadline of 3s"), "{line}");
    let _ = listener.child.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn file_server_credentials_reach_neither_the_wire_nor_help() {
    let work = tempfile::tempdir().unwrap();
    let files = FileServer::builder().dir(work.path().join("s")).bind("127.0.0.1:0").await.unwrap();
    let with_user = files.url().replacen("http://", "http://alice:s3cret@", 1);
    let big = work.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 600_000]).unwrap();
    let nats = NatsServer::start();
    let out = run(&[
        "send",
        "sec.creds",
        &format!("binary:doc=@{}", big.display()),
        "--server",
        &nats.url(),
        "--fileserver",
        &with_user,
        "--threshold",
        "1000",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sent: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    let published = sent["payloads"][0]["data"].as_str().unwrap();
    assert_eq!(sent["payloads"][0]["transport"], "link");
    assert!(published.starts_with(files.url()), "{published}");
    assert!(!stdout(&out).contains("s3cret") && !stdout(&out).contains("alice"));

    // A receiver's own credentials for its file server: sent to it only.
    let store = Service::start(Body::Fixed(b"hello"));
    let env = envelope("m5", vec![link("t", "text", &format!("{}/f", store.url), 5)]);
    let path = write_envelope(work.path(), "e.json", &env);
    let mine = store.url.replacen("http://", "http://bob:pw@", 1);
    let out = run(&["unpack", &path, "--fileserver", &mine]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(*store.authorization.lock().unwrap(), [Some("Basic Ym9iOnB3".to_string())]);

    // --help shows no value of a variable that may hold a secret.
    for command in ["send", "listen", "reply", "unpack", "inspect", "request"] {
        let help = natsbridge()
            .args([command, "--help"])
            .env("NATSBRIDGE_FILESERVER", "http://u:topsecret1@files.internal")
            .env("NATSBRIDGE_PUT_URL", "http://files.internal/{name}?sig=topsecret2")
            .output()
            .unwrap();
        let text = stdout(&help);
        assert!(help.status.success(), "{command}");
        assert!(!text.contains("topsecret"), "{command} --help shows a secret:\n{text}");
    }
}

#[test]
fn out_never_overwrites_nor_writes_through_a_symlink() {
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    let outside = work.path().join("outside");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let first = write_envelope(work.path(), "1.json", &envelope("same", vec![direct("t", "one")]));
    let second = write_envelope(work.path(), "2.json", &envelope("same", vec![direct("t", "two")]));
    // A symlink planted where the third message with this id would go.
    std::os::unix::fs::symlink(&outside, out_dir.join("same-3")).unwrap();
    let third =
        write_envelope(work.path(), "3.json", &envelope("same", vec![direct("t", "three")]));
    for path in [&first, &second, &third] {
        let out = run(&["unpack", path, "--out", out_dir.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let read = |dir: &str| std::fs::read_to_string(out_dir.join(dir).join("0-t.txt")).unwrap();
    assert_eq!(read("same"), "one");
    assert_eq!(read("same-2"), "two");
    assert_eq!(read("same-4"), "three");
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none(), "written through the symlink");
}

#[test]
fn json_output_nests_a_peers_unknown_keys() {
    let work = tempfile::tempdir().unwrap();
    let mut env = envelope("m6", vec![direct("t", "hi")]);
    env["error"] = json!({"kind": "forged", "message": "all is lost"});
    env["x_custom"] = json!(1);
    let path = write_envelope(work.path(), "e.json", &env);
    let out = run(&["unpack", &path, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(shown.get("error").is_none(), "a peer forged a top-level error: {shown}");
    assert!(shown.get("x_custom").is_none());
    assert_eq!(shown["extra"]["error"]["kind"], "forged");
    assert_eq!(shown["extra"]["x_custom"], 1);
}
