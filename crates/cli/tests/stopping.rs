//! Stopping as a deploy does (SIGTERM, or Ctrl-C): `listen` and `inspect`
//! drain (nothing new taken, what was delivered handled, exit 0); a second
//! signal stops at once.

use std::io::{BufRead, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use natsbridge_test_support::NatsServer;
use serde_json::{Value, json};

use crate::util::{start_json, start_ready};

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
    assert!(status.unwrap().success(), "kill -{name}");
}

/// An HTTP server answering every GET with `body` once `gate` opens; it
/// counts the requests waiting.
struct GatedFiles {
    url: String,
    waiting: Arc<AtomicUsize>,
    gate: Arc<Mutex<bool>>,
}

impl GatedFiles {
    fn start(body: &'static [u8]) -> GatedFiles {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let waiting = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Mutex::new(false));
        let (w, g) = (waiting.clone(), gate.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (w, g) = (w.clone(), g.clone());
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                        line.clear();
                    }
                    w.fetch_add(1, Ordering::SeqCst);
                    while !*g.lock().unwrap() {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(body);
                });
            }
        });
        GatedFiles { url, waiting, gate }
    }

    fn open(&self) {
        *self.gate.lock().unwrap() = true;
    }
}

fn envelope_with_link(msg_id: &str, url: &str, size: usize) -> Value {
    json!({
        "correlation_id": "c", "msg_id": msg_id, "timestamp": "2026-01-01T00:00:00.000Z",
        "send_to": "stop", "msg_purpose": "chat", "sender_name": "p", "sender_id": "p",
        "receiver_name": "", "receiver_id": "", "reply_to": "", "reply_to_msg_id": "",
        "broker_url": "", "metadata": {},
        "payloads": [{"id": "i", "dataname": "t", "payload_type": "text", "transport": "link",
                      "encoding": "none", "size": size, "data": url}],
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_drains_on_sigterm_and_a_second_signal_stops_at_once() {
    let server = NatsServer::start();
    let url = server.url();
    let files = GatedFiles::start(b"kept");
    let raw = natsbridge::transport::connect(url.clone()).await.unwrap();

    // Three messages whose links are still downloading when SIGTERM comes.
    let mut listener = start_ready(&["listen", "stop.a", "--json", "--server", &url]);
    for i in 0..3 {
        let env = envelope_with_link(&format!("m{i}"), &format!("{}/f{i}", files.url), 4);
        raw.publish("stop.a", env.to_string().into()).await.unwrap();
    }
    raw.sync().await.unwrap();
    while files.waiting.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(listener.child.id(), "TERM");
    let mut line = String::new();
    listener.stderr.read_line(&mut line).unwrap();
    assert!(line.contains("stopping"), "{line}");
    files.open();
    let status = listener.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut out = String::new();
    listener.stdout.read_to_string(&mut out).unwrap();
    let mut ids: Vec<String> = out
        .lines()
        .map(|l| {
            let line: Value = serde_json::from_str(l).unwrap();
            line["msg_id"].as_str().unwrap_or_else(|| panic!("{out}")).to_owned()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["m0", "m1", "m2"], "{out}");

    // A second signal does not wait for a link that never comes.
    let stuck = GatedFiles::start(b"never");
    let mut listener = start_ready(&["listen", "stop.b", "--json", "--server", &url]);
    let env = envelope_with_link("stuck", &format!("{}/f", stuck.url), 5);
    raw.publish("stop.b", env.to_string().into()).await.unwrap();
    raw.sync().await.unwrap();
    while stuck.waiting.load(Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(listener.child.id(), "TERM");
    let mut line = String::new();
    listener.stderr.read_line(&mut line).unwrap();
    assert!(line.contains("stopping"), "{line}");
    signal(listener.child.id(), "TERM");
    let status = listener.child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_stops_cleanly_on_sigterm() {
    let server = NatsServer::start();
    let url = server.url();
    let (mut child, _) =
        start_json(["inspect", "--json", "--listen", "127.0.0.1:0", "--server", &url]);
    signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("stopping"), "{err}");
}

/// Waits up to 30 s for `child` to exit on its own; its status, or `None`
/// (then it is killed) if it is still running.
fn exit_within_30s(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn one_sigterm_stops_listen_reply_and_inspect_when_the_server_is_gone() {
    for command in ["listen", "reply", "inspect"] {
        let mut server = NatsServer::start();
        let url = server.url();
        // Its output is kept open: a closed stderr would fail its
        // "stopping" line.
        let (mut child, _output) = match command {
            "inspect" => {
                let args = ["inspect", "--json", "--listen", "127.0.0.1:0", "--server", &url];
                (start_json(args).0, None)
            }
            "reply" => {
                let running = start_ready(&["reply", "gone.svc", "--echo", "--server", &url]);
                (running.child, Some((running.stdout, running.stderr)))
            }
            _ => {
                let running = start_ready(&["listen", "gone.a", "--server", &url]);
                (running.child, Some((running.stdout, running.stderr)))
            }
        };
        server.kill();
        signal(child.id(), "TERM");
        let status = exit_within_30s(&mut child);
        let status =
            status.unwrap_or_else(|| panic!("{command}: still running 30 s after SIGTERM"));
        assert!(status.success(), "{command}: {status}");
    }
}

#[test]
fn sigterm_drains_even_when_stderr_is_closed() {
    // A parent that stopped reading (a harness that exited, a closed
    // terminal): the "stopping" line cannot be written, and must not cost
    // the drain.
    let server = NatsServer::start();
    let url = server.url();
    let running = start_ready(&["listen", "closed.a", "--server", &url]);
    let (mut child, stdout) = (running.child, running.stdout);
    drop(running.stderr);
    signal(child.id(), "TERM");
    let status = exit_within_30s(&mut child).expect("still running 30 s after SIGTERM");
    assert!(status.success(), "{status}");
    drop(stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_whose_reader_goes_away_exits_0_without_a_message() {
    // `natsbridge listen x | head -1`: once `head` has its line and exits,
    // the next write finds the pipe closed.
    let server = NatsServer::start();
    let url = server.url();
    let raw = natsbridge::transport::connect(url.clone()).await.unwrap();
    let running = start_ready(&["listen", "gone.reader", "--server", &url]);
    let (mut child, stderr) = (running.child, running.stderr);
    drop(running.stdout);
    let mut sent = 0;
    let status = loop {
        let envelope = envelope_with_link(&format!("m{sent}"), "http://127.0.0.1:9/none", 1);
        raw.publish("gone.reader", envelope.to_string().into()).await.unwrap();
        raw.sync().await.unwrap();
        sent += 1;
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(sent < 1_000, "still running after {sent} messages to a closed stdout");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    std::io::BufReader::new(stderr).read_to_string(&mut rest).unwrap();
    assert!(!rest.contains("pipe") && !rest.contains("panicked"), "{rest}");
}
