//! JetStream publishing with acks in flight: `Bridge::jetstream_send_async`
//! against raw async-nats JetStream publishing, same window, same run.
//!
//! `cargo bench -p natsbridge --bench jetstream [-- --bench [--quick]]`
//! (`cargo xtask bench --only jetstream`). One nats-server with JetStream,
//! a memory stream (so the figure is the clients' work and the server's,
//! not the disk's), 128 B payloads. Both sides keep `WINDOW` publishes
//! unacknowledged, each with its own `Nats-Msg-Id` (the raw side a counter,
//! the bridge the envelope's msg_id), and await the oldest ack when the
//! window is full. The raw side publishes one pre-built envelope's bytes;
//! the bridge builds a fresh envelope per message. Each side goes first in
//! every other round, the stream is purged before each side; the ratio is
//! taken round by round.
//! Prints a markdown section, also written to `$NATSBRIDGE_BENCH_OUT`, and
//! its ratio line to `$NATSBRIDGE_BENCH_RATIOS`.

use std::collections::VecDeque;
use std::time::Instant;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use natsbridge::{Bridge, Payload, SendOptions};
use natsbridge_test_support::NatsServer;
use natsbridge_test_support::stats::{Stats, stats};

/// Publishes whose acks may be outstanding at once, on both sides.
const WINDOW: usize = 256;

/// Raw async-nats: messages per second, acks included.
async fn raw(js: &jetstream::Context, body: &Bytes, n: usize) -> f64 {
    let started = Instant::now();
    let mut window = VecDeque::with_capacity(WINDOW);
    for i in 0..n {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("raw-{i}-{}", started.elapsed().as_nanos()));
        window.push_back(js.publish_with_headers("bench.js", headers, body.clone()).await.unwrap());
        if window.len() == WINDOW {
            window.pop_front().unwrap().await.unwrap();
        }
    }
    for ack in window {
        ack.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// `Bridge::jetstream_send_async`: messages per second, acks included.
async fn bridge(bridge: &Bridge, payloads: &[Payload], n: usize) -> f64 {
    // Lent, as a stream of messages with the same options does.
    let options = SendOptions::default();
    let started = Instant::now();
    let mut window = VecDeque::with_capacity(WINDOW);
    for _ in 0..n {
        let (_, ack) = bridge.jetstream_send_async("bench.js", payloads, &options).await.unwrap();
        window.push_back(ack);
        if window.len() == WINDOW {
            window.pop_front().unwrap().await.unwrap();
        }
    }
    for ack in window {
        ack.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `cargo test --benches` runs this with no `--bench`: one tiny round.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (rounds, n) = match (smoke, quick) {
        (true, _) => (1, 300),
        (false, true) => (4, 10_000),
        (false, false) => (11, 20_000),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let server = NatsServer::builder().jetstream().start();
    let payloads = vec![Payload::binary("blob", vec![7u8; 128])];
    let (raw_s, br_s, ratios) = runtime.block_on(async {
        let b = natsbridge::connect(&server.url()).await.unwrap();
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = jetstream::new(client);
        let stream = js
            .create_stream(stream::Config {
                name: "BENCH".into(),
                subjects: vec!["bench.js".into()],
                storage: stream::StorageType::Memory,
                ..Default::default()
            })
            .await
            .unwrap();
        // The raw side's bytes: one envelope as the bridge writes it.
        let body = b
            .smartsend("bench.js", &payloads[..], SendOptions::new().with_is_publish(false))
            .await
            .unwrap()
            .json()
            .clone();
        let (mut raw_s, mut br_s, mut ratios) = (vec![], vec![], vec![]);
        // A warm-up round of each, not counted.
        raw(&js, &body, n / 10 + 1).await;
        bridge(&b, &payloads, n / 10 + 1).await;
        for round in 0..rounds {
            // Each side goes first in every other round, so neither always
            // meets the stream's larger duplicate-id table or the
            // machine's load of the moment.
            let (r, s) = if round % 2 == 0 {
                stream.purge().await.unwrap();
                let r = raw(&js, &body, n).await;
                stream.purge().await.unwrap();
                (r, bridge(&b, &payloads, n).await)
            } else {
                stream.purge().await.unwrap();
                let s = bridge(&b, &payloads, n).await;
                stream.purge().await.unwrap();
                (raw(&js, &body, n).await, s)
            };
            raw_s.push(r);
            br_s.push(s);
            ratios.push(s / r);
        }
        (stats(raw_s), stats(br_s), stats(ratios))
    });
    let fmt = |s: &Stats| format!("{:.0} ({:.0}-{:.0})", s.median, s.min, s.max);
    let md = format!(
        "## JetStream: publishing with acks in flight (`Bridge::jetstream_send_async`)\n\n\
         One nats-server with JetStream, a memory stream, 128 B payloads, {WINDOW} publishes \
         unacknowledged at once on both sides (the oldest ack awaited when the window is full), \
         each with its own `Nats-Msg-Id`; {n} messages a side and round, {rounds} rounds, each side \
         first in every other round, the stream purged before each side; median (min-max). The raw side publishes one pre-built \
         envelope's bytes with async-nats's JetStream context; the bridge builds a fresh envelope \
         per message and returns a `PendingAck` (which would retry a lost ack with the same msg id).\n\n\
         | sender | msgs/s, acks included |\n|---|---|\n\
         | raw async-nats `publish_with_headers` + ack futures | {} |\n\
         | `Bridge::jetstream_send_async` + `PendingAck` | {} |\n\n\
         Bridge against raw, round by round: **{:.2}x** ({:.2}-{:.2}; target >= 0.8x).\n",
        fmt(&raw_s),
        fmt(&br_s),
        ratios.median,
        ratios.min,
        ratios.max,
    );
    print!("{md}");
    let line = format!(
        "JetStream publish 128 B, {WINDOW} acks in flight, vs raw\t{}\t{}\t{}\t0.8\t>=\n",
        ratios.median, ratios.min, ratios.max
    );
    if let (Some(path), false) = (std::env::var_os("NATSBRIDGE_BENCH_OUT"), smoke) {
        std::fs::write(path, &md).unwrap();
    }
    if let (Some(path), false) = (std::env::var_os("NATSBRIDGE_BENCH_RATIOS"), smoke) {
        std::fs::write(path, line).unwrap();
    }
}
