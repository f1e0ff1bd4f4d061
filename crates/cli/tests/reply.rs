//! `natsbridge reply` as a service, against a real nats-server: fixed
//! answers, `--command`, queue groups shared by replicas, and requesters
//! of both conventions (NATS reply inbox, envelope `reply_to`).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use natsbridge_test_support::NatsServer;
use serde_json::Value;

use crate::util::{Running, natsbridge, run, start_ready, terminate};

/// A running `natsbridge reply --json`, its stdout (one line per answer) and
/// the lines of its stderr after the ready line.
struct Replier {
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: mpsc::Receiver<String>,
}

impl Replier {
    /// Starts `natsbridge reply ARGS` and waits until it is subscribed.
    fn start(args: &[&str]) -> Replier {
        // --json: one line per answer, the request's under "request".
        let args: Vec<&str> = ["reply", "--json"].into_iter().chain(args.iter().copied()).collect();
        let Running { child, stdout, stderr } = start_ready(&args);
        // The rest of stderr (a command's failures, the stop) is read as it
        // comes so that it never blocks the replier.
        let (lines, stderr_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        Replier { child, stdout, stderr: stderr_lines }
    }

    /// Waits for a line on stderr containing `text`.
    fn wait_stderr(&self, text: &str) {
        loop {
            let line = self.stderr.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|e| {
                panic!("no stderr line with {text:?}: {e}");
            });
            if line.contains(text) {
                return;
            }
        }
    }

    /// Sends `signal` (`TERM`, `INT`) to it.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// The next answer's line.
    fn answer(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// Stops it (SIGTERM) and returns every answer line it printed.
    fn stop(mut self) -> Vec<Value> {
        assert!(terminate(&mut self.child), "SIGTERM stops it with exit 0");
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        rest.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

/// `natsbridge request SUBJECT PAYLOADS` against `url`; panics unless it
/// got an answer.
fn request(url: &str, subject: &str, payloads: &[&str]) {
    let mut args = vec!["request", subject, "--server", url, "--timeout", "20"];
    args.extend(payloads);
    let out = run(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `natsbridge request SUBJECT PAYLOADS` against `url`, answered with a
/// failure (exit 7); its stderr.
#[track_caller]
fn request_failed(url: &str, subject: &str, payloads: &[&str]) -> String {
    let mut args = vec!["request", subject, "--server", url, "--timeout", "20"];
    args.extend(payloads);
    let out = run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    stderr
}

fn sha(bytes: &[u8]) -> String {
    natsbridge::sha256_hex(bytes)
}

#[test]
fn static_answer_to_a_nats_request_and_to_a_seed_style_requester() {
    let server = NatsServer::start();
    let url = server.url();
    let mut replier = Replier::start(&[
        "svc.static",
        "text:greeting=hello",
        r#"dictionary:config={"a":1}"#,
        "--server",
        &url,
        "--count",
        "2",
    ]);
    // A NATS request (inbox as the reply subject, and in reply_to).
    request(&url, "svc.static", &["text:q=anything"]);
    let answer = replier.answer();
    let payloads = answer["payloads"].as_array().unwrap();
    assert_eq!(payloads.len(), 2);
    assert_eq!(payloads[0]["dataname"], "greeting");
    assert_eq!(payloads[0]["sha256"], sha(b"hello"));
    assert_eq!(payloads[1]["payload_type"], "dictionary");
    assert_eq!(payloads[1]["sha256"], sha(br#"{"a":1}"#));

    // A seed-style requester: no NATS reply subject, only the envelope's
    // reply_to, listened on.
    let mut listener = natsbridge()
        .args(["listen", "svc.inbox", "--json", "--count", "1", "--server", &url])
        .args(["--timeout", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(listener.stderr.take().unwrap()).read_line(&mut ready).unwrap();
    assert!(ready.contains("listening on"), "{ready}");
    let sent =
        run(&["send", "svc.static", "text:q=x", "--reply-to", "svc.inbox", "--server", &url]);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let request: Value = serde_json::from_slice(&sent.stdout).unwrap();
    let out = listener.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let received: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(received["reply_to_msg_id"], request["msg_id"]);
    assert_eq!(received["payloads"][0]["sha256"], sha(b"hello"));
    assert_eq!(replier.answer()["reply_to_msg_id"], request["msg_id"]);
    assert!(replier.child.wait().unwrap().success(), "--count 2 ends it");
}

#[test]
fn bad_static_payloads_are_bad_input_before_connecting() {
    // Nothing listens on port 9: the payload is refused first.
    let out = run(&["reply", "svc.x", "dictionary:d={nope", "--server", "nats://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["reply", "svc.x", "--echo", "text:a=b"]);
    assert_eq!(out.status.code(), Some(2), "one way of answering");
}

/// The request's text payload upper-cased by a shell pipeline: the path
/// from the JSON line on stdin, `cat`, `tr`.
const UPPER: &str = r#"sed -n 's/.*"path":"\([^"]*\)".*/\1/p' | xargs cat | tr a-z A-Z"#;

#[test]
fn command_transforms_the_request() {
    let server = NatsServer::start();
    let url = server.url();
    let mut replier =
        Replier::start(&["svc.upper", "--command", UPPER, "--server", &url, "--count", "1"]);
    request(&url, "svc.upper", &["text:q=hello, world"]);
    let answer = replier.answer();
    assert_eq!(answer["payloads"][0]["dataname"], "output");
    assert_eq!(answer["payloads"][0]["payload_type"], "text");
    assert_eq!(answer["payloads"][0]["sha256"], sha(b"HELLO, WORLD"));
    assert!(replier.child.wait().unwrap().success());
}

#[test]
fn command_answers_json_payloads_and_errors() {
    let server = NatsServer::start();
    let url = server.url();
    // The command sees the request's line: it answers with the request's
    // first dataname and payload count, as payloads of its own.
    let script = r#"python3 -c '
import json, sys
line = json.loads(sys.stdin.readline())
print(json.dumps({"payloads": [
    {"dataname": "name", "type": "text", "value": line["payloads"][0]["dataname"]},
    {"dataname": "stats", "type": "dictionary", "value": {"n": len(line["payloads"])}},
]}))
'"#;
    let mut replier =
        Replier::start(&["svc.json", "--command", script, "--server", &url, "--count", "1"]);
    request(&url, "svc.json", &["text:first=a", "binary:second=b"]);
    let answer = replier.answer();
    let payloads = answer["payloads"].as_array().unwrap();
    assert_eq!(payloads[0]["dataname"], "name");
    assert_eq!(payloads[0]["sha256"], sha(b"first"));
    assert_eq!(payloads[1]["payload_type"], "dictionary");
    assert_eq!(payloads[1]["sha256"], sha(br#"{"n":2}"#));
    assert!(replier.child.wait().unwrap().success());

    // A failing command and one that runs too long answer an `error` text.
    let mut failing = Replier::start(&[
        "svc.fail",
        "--command",
        "cat >/dev/null; exit 3",
        "--server",
        &url,
        "--count",
        "1",
    ]);
    request_failed(&url, "svc.fail", &["text:q=x"]);
    let answer = failing.answer();
    assert_eq!(answer["payloads"][0]["dataname"], "error");
    assert_eq!(answer["payloads"][0]["sha256"], sha(b"the command exited with status 3"));
    assert!(failing.child.wait().unwrap().success());

    let mut slow = Replier::start(&[
        "svc.slow",
        "--command",
        "sleep 30; echo late",
        "--command-timeout",
        "500ms",
        "--server",
        &url,
        "--count",
        "1",
    ]);
    // Exit 7 (an error answer), not 3: the answer came before the
    // request's 20 s timeout, so the 30 s command was stopped.
    request_failed(&url, "svc.slow", &["text:q=x"]);
    let answer = slow.answer();
    assert_eq!(answer["payloads"][0]["dataname"], "error");
    assert_eq!(answer["payloads"][0]["sha256"], sha(b"the command timed out after 500ms"));
    assert!(slow.child.wait().unwrap().success());
}

#[test]
fn replicas_share_requests_in_the_default_queue_group() {
    let server = NatsServer::start();
    let url = server.url();
    let replicas: Vec<Replier> =
        (0..2).map(|_| Replier::start(&["svc.shared", "--echo", "--server", &url])).collect();
    const N: usize = 20;
    for i in 0..N {
        request(&url, "svc.shared", &[&format!("text:q=request {i}")]);
    }
    let answers: Vec<Vec<Value>> = replicas.into_iter().map(Replier::stop).collect();
    let counts: Vec<usize> = answers.iter().map(Vec::len).collect();
    // Every request was answered (each `request` succeeded), and exactly
    // once: N answers in all, each to a different request.
    assert_eq!(counts.iter().sum::<usize>(), N, "{counts:?}");
    let mut answered: Vec<&str> =
        answers.iter().flatten().map(|a| a["reply_to_msg_id"].as_str().unwrap()).collect();
    answered.sort_unstable();
    answered.dedup();
    assert_eq!(answered.len(), N);
    // Shared: with 20 requests both replicas get some (random choice).
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
}

#[test]
fn without_a_queue_group_every_replica_answers() {
    let server = NatsServer::start();
    let url = server.url();
    let mut replicas: Vec<Replier> = (0..2)
        .map(|_| {
            Replier::start(&["svc.all", "--echo", "--no-queue", "--server", &url, "--count", "1"])
        })
        .collect();
    request(&url, "svc.all", &["text:q=x"]);
    for replica in &mut replicas {
        assert_eq!(replica.answer()["payloads"][0]["sha256"], sha(b"x"));
        assert!(replica.child.wait().unwrap().success());
    }
}

/// Stopping `reply` at once (a second SIGTERM while it drains) while a
/// command runs kills what the command started too (its process group),
/// and exits 143. Linux: reads /proc.
#[cfg(target_os = "linux")]
#[test]
fn a_second_signal_stops_reply_and_its_running_command_at_once() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    // A grandchild of `reply`: the shell's `sleep`, its pid recorded.
    let command = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
    let replier = Replier::start(&["svc.long", "--command", &command, "--server", &url]);
    let mut requester = natsbridge()
        .args(["request", "svc.long", "text:q=x", "--server", &url, "--timeout", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let pid = loop {
        if let Ok(pid) = std::fs::read_to_string(&pidfile)
            && !pid.trim().is_empty()
        {
            break pid.trim().to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the command never ran");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Running: its /proc state is not Z (a zombie, killed and waiting for
    // init to reap it); gone: no /proc entry.
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
    };
    assert!(running());
    // The first SIGTERM drains: the running command is let finish.
    replier.signal("TERM");
    replier.wait_stderr("stopping");
    assert!(running(), "the command still runs while draining");
    // The second stops at once, with 143 (128 + SIGTERM).
    replier.signal("TERM");
    let mut replier = replier;
    assert_eq!(replier.child.wait().unwrap().code(), Some(143));
    let mut rest = String::new();
    replier.stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "nothing was answered");
    let stopped = Instant::now();
    while running() {
        assert!(stopped.elapsed() < Duration::from_secs(5), "the command's sleep still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
    requester.kill().unwrap();
    requester.wait().unwrap();
}

/// Answers with the request's `"msg_id":"..."` after a delay: a slow
/// command that reads the request.
const SLOW_ECHO_ID: &str =
    r#"read -r line; sleep 0.2; printf '%s' "$line" | grep -o '"msg_id":"[^"]*"'"#;

/// Starts `natsbridge request SUBJECT text:q=I` (answer as JSON on stdout).
fn spawn_request(url: &str, subject: &str, i: usize) -> Child {
    natsbridge()
        .args(["request", subject, &format!("text:q={i}"), "--server", url, "--timeout", "60"])
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// SIGTERM drains `reply`: the requests already delivered to it are
/// answered, the queue group's other member takes the new ones, and it
/// exits 0; no requester times out.
#[test]
fn sigterm_drains_reply_while_another_replica_takes_over() {
    let server = NatsServer::start();
    let url = server.url();
    let mut first = Replier::start(&["svc.drain", "--command", SLOW_ECHO_ID, "--server", &url]);
    // 20 requests at once while only `first` is in the queue group: the
    // server delivers them all to it, to be answered one at a time.
    let mut requests: Vec<Child> = (0..20).map(|i| spawn_request(&url, "svc.drain", i)).collect();
    let mut answered_by_first = vec![first.answer()];
    // In the middle: one answered, the rest delivered and waiting.
    let second = Replier::start(&["svc.drain", "--command", SLOW_ECHO_ID, "--server", &url]);
    first.signal("TERM");
    first.wait_stderr("stopping");
    // More requests once it drains: the second replica answers them (or
    // the first, if the server sent them before it processed the drain).
    requests.extend((20..30).map(|i| spawn_request(&url, "svc.drain", i)));
    for (i, request) in requests.into_iter().enumerate() {
        let out = request.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "request {i}: exit {:?} (3 is a timeout): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answer["payloads"][0]["dataname"], "output", "request {i}: {answer}");
    }
    assert!(first.child.wait().unwrap().success(), "the drained replica exits 0");
    let mut rest = String::new();
    first.stdout.read_to_string(&mut rest).unwrap();
    answered_by_first.extend(rest.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
    let answered_by_second = second.stop();
    // The first 20 were all delivered to the first replica, and it
    // answered every one before exiting.
    assert!(answered_by_first.len() >= 20, "{} answered", answered_by_first.len());
    let mut ids: Vec<&str> = answered_by_first
        .iter()
        .chain(&answered_by_second)
        .map(|a| a["reply_to_msg_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 30, "{} + {}", answered_by_first.len(), answered_by_second.len());
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 30, "each request answered once");
}

/// The service's $SRV answers, checked field by field against ADR-32 by a
/// Python client (nats-py, its `nats.micro` types): in a queue group and
/// without one.
#[test]
fn reply_is_a_nats_service_to_a_python_client() {
    let server = NatsServer::start();
    let url = server.url();
    let root = natsbridge_test_support::workspace_root();
    let dir = tempfile::tempdir().unwrap();
    // Fails on a payload named `fail`, else answers `done`.
    let command =
        r#"read -r line; case "$line" in *'"dataname":"fail"'*) exit 3;; esac; echo done"#;
    for (subject, queue) in [("svc.py", Some("workers")), ("svc.py-all", None)] {
        let mut args = vec![subject, "--command", command, "--server", &url];
        args.extend(["--service-version", "1.2.3-rc.1", "--service-description", "checked"]);
        args.extend(["--service-metadata", "team=core", "--service-metadata", "tier=2"]);
        match queue {
            Some(group) => args.extend(["--queue", group]),
            None => args.push("--no-queue"),
        }
        let replier = Replier::start(&args);
        let envelope = |payload: &str, name: &str, extra: &[&str]| {
            let out = run(&[&["send", subject, payload, "--no-publish"][..], extra].concat());
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let path = dir.path().join(name);
            std::fs::write(&path, out.stdout.trim_ascii()).unwrap();
            path
        };
        let ok = envelope("text:q=x", "ok.json", &[]);
        let fail = envelope("text:fail=x", "fail.json", &[]);
        let seed = envelope("text:q=y", "seed.json", &["--reply-to", "py.inbox"]);
        let expected = serde_json::json!({
            "name": natsbridge::transport::service_name(subject),
            "version": "1.2.3-rc.1",
            "description": "checked",
            "metadata": {"team": "core", "tier": "2"},
            "subject": subject,
            "queue_group": queue.unwrap_or(""),
        });
        let expected_path = dir.path().join("expected.json");
        std::fs::write(&expected_path, expected.to_string()).unwrap();
        let out = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tests/service/srv_client.py"))
            .arg(&url)
            .args([&expected_path, &ok, &fail, &seed])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(seen["stats"]["endpoints"][0]["num_requests"], 3);
        assert_eq!(replier.stop().len(), 3, "three answers");
    }
}

#[test]
fn bad_service_names_and_versions_are_bad_input_before_connecting() {
    for flags in [["--service-name", "a.b"], ["--service-version", "1.0"]] {
        let out =
            run(&[&["reply", "svc.x", "--echo", "--server", "nats://127.0.0.1:9"][..], &flags]
                .concat());
        assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = run(&["reply", "svc.x", "--echo", "--service-metadata", "novalue"]);
    assert_eq!(out.status.code(), Some(2), "metadata is KEY=VALUE");
}

/// The command's output may name payloads as its input does
/// (`payload_type` and `path`), so `cat` answers with the request's own
/// payloads, binary and JSON included.
#[test]
fn command_cat_echoes_the_request() {
    let server = NatsServer::start();
    let url = server.url();
    let mut replier =
        Replier::start(&["svc.cat", "--command", "cat", "--server", &url, "--count", "1"]);
    let out = run(&[
        "request",
        "svc.cat",
        "text:t=hello",
        "dictionary:d={\"k\":1}",
        "binary:b=xyz",
        "--server",
        &url,
        "--json",
        "--timeout",
        "20",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<(&str, &str, &str)> = answer["payloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["dataname"].as_str().unwrap(),
                p["payload_type"].as_str().unwrap(),
                p["sha256"].as_str().unwrap(),
            )
        })
        .collect();
    let (t, d, b) = (sha(b"hello"), sha(br#"{"k":1}"#), sha(b"xyz"));
    assert_eq!(got, [("t", "text", t.as_str()), ("d", "dictionary", &d), ("b", "binary", &b)]);
    assert_eq!(answer["msg_purpose"], "chat");
    assert!(replier.child.wait().unwrap().success());
}

/// A command that exits non-zero: the answer is `msg_purpose` `NACK` with
/// the reason and the end of its stderr in the `error` payload; `request`
/// shows it, says so on stderr and exits 7.
#[test]
fn a_failed_command_answers_nack_and_request_exits_non_zero() {
    let server = NatsServer::start();
    let url = server.url();
    let command = "cat >/dev/null; echo starting >&2; echo 'no such table: sales' >&2; exit 3";
    let mut replier =
        Replier::start(&["svc.broken", "--command", command, "--server", &url, "--count", "1"]);
    let stderr = request_failed(&url, "svc.broken", &["text:q=x"]);
    assert!(stderr.contains("svc.broken answered with an error (msg_purpose NACK)"), "{stderr}");
    assert!(stderr.contains("the command exited with status 3"), "{stderr}");
    assert!(stderr.contains("no such table: sales"), "{stderr}");
    let answer = replier.answer();
    assert_eq!(answer["msg_purpose"], "NACK");
    assert_eq!(answer["payloads"][0]["dataname"], "error");
    // The command's stderr still reaches reply's own.
    replier.wait_stderr("no such table: sales");
    assert!(replier.child.wait().unwrap().success());
}
