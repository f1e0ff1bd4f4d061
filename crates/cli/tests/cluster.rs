//! `listen --stream` and `send --jetstream` on a 3-node JetStream cluster
//! whose node the listener is on is killed mid-stream.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::time::Duration;

use natsbridge::transport::{ConnectOptions, StreamConfig};
use natsbridge_test_support::NatsCluster;
use serde_json::Value;

use crate::util::{json_lines, natsbridge, start_ready};

/// `send --jetstream` through every node; the envelope's msg_id.
fn send_jetstream(servers: &str, n: usize) -> String {
    let out = natsbridge()
        .args(["send", "jobs.new", &format!("text:job={n}"), "--jetstream", "--server", servers])
        .output()
        .unwrap();
    assert!(out.status.success(), "send {n}: {}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[1]["stream"], "JOBS", "acked by the stream");
    lines[0]["msg_id"].as_str().unwrap().to_string()
}

/// How many clients each node has.
fn clients(cluster: &NatsCluster) -> Vec<u64> {
    cluster
        .nodes
        .iter()
        .map(|n| n.monitor("/connz").map_or(0, |c| c["num_connections"].as_u64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_on_a_stream_goes_on_when_its_node_is_killed() {
    const N: usize = 60;
    let mut cluster = tokio::task::block_in_place(|| NatsCluster::start_jetstream(3));
    let servers = cluster.url_list();
    let urls = cluster.urls();
    let admin = ConnectOptions::new(urls[0].clone())
        .server(urls[1].clone())
        .server(urls[2].clone())
        .connect()
        .await
        .unwrap();
    let config = StreamConfig { replicas: 3, ..StreamConfig::new("JOBS", &["jobs.>"]) };
    admin.jetstream().ensure_stream_with(config).await.unwrap();
    admin.jetstream().pull_consumer("JOBS", "worker").await.unwrap();
    tokio::task::block_in_place(|| cluster.wait_stream_ready("JOBS"));

    let before = clients(&cluster);
    let mut listener = tokio::task::block_in_place(|| {
        start_ready(&[
            "listen",
            "jobs.>",
            "--stream",
            "JOBS",
            "--durable",
            "worker",
            "--json",
            "--count",
            "60",
            "--timeout",
            "90s",
            "--server",
            &servers,
        ])
    });
    let after = clients(&cluster);
    let on = (0..3).find(|&i| after[i] > before[i]).expect("the listener's node");
    // Its node also leads the consumer (the case that stalled): move the
    // consumer's leadership there if it is elsewhere.
    if cluster.consumer_leader("JOBS", "worker") != Some(on) {
        let request = format!(r#"{{"placement":{{"preferred":"n{on}"}}}}"#);
        let answer = admin
            .request(
                "$JS.API.CONSUMER.LEADER.STEPDOWN.JOBS.worker",
                request.into(),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&answer.payload).unwrap();
        assert_eq!(answer["success"], true, "{answer}");
    }

    let mut sent = BTreeSet::new();
    for n in 0..20 {
        sent.insert(tokio::task::block_in_place(|| send_jetstream(&servers, n)));
    }
    // Wait until the listener has shown the first 20, then kill its node.
    let mut shown = BTreeSet::new();
    let mut line = String::new();
    while shown.len() < 20 {
        line.clear();
        tokio::task::block_in_place(|| listener.stdout.read_line(&mut line)).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(shown.insert(v["msg_id"].as_str().unwrap().to_string()), "twice: {line}");
    }
    tokio::task::block_in_place(|| cluster.nodes[on].kill());
    for n in 20..N {
        sent.insert(tokio::task::block_in_place(|| send_jetstream(&servers, n)));
    }
    let status = tokio::task::block_in_place(|| {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut listener.stdout, &mut rest).unwrap();
        for line in rest.lines().filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            assert!(v.get("error").is_none(), "{line}");
            assert!(shown.insert(v["msg_id"].as_str().unwrap().to_string()), "twice: {line}");
        }
        listener.child.wait().unwrap()
    });
    assert!(status.success(), "listen: {status}: {}", listener.rest_of_stderr());
    assert_eq!(shown, sent, "every message shown once");
}
