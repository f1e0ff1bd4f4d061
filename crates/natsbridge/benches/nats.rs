//! The bridge against raw async-nats over a real nats-server, in one run.
//!
//! `cargo bench -p natsbridge --bench nats [-- --quick]`. Each comparison is
//! a ratio against its baseline measured in the same run (the machine is
//! shared and noisy): several rounds, median and min-max. Prints a markdown
//! section, also written to `$NATSBRIDGE_BENCH_OUT` when set (as `cargo
//! xtask bench` does).

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use natsbridge::envelope::Envelope;
use natsbridge::{Bridge, Payload, SendOptions};
use natsbridge_test_support::NatsServer;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    let m = median(&mut v);
    Stats { median: m, min: v[0], max: v[v.len() - 1] }
}

/// Messages per second from first publish to last message received, with
/// `publish` sending message `i` and the subscriber counting.
async fn raw_throughput(server: &NatsServer, body: Bytes, n: usize) -> f64 {
    let rx = async_nats::connect(server.url()).await.unwrap();
    let tx = async_nats::connect(server.url()).await.unwrap();
    let mut sub = rx.subscribe("bench.raw").await.unwrap();
    sync(&rx).await;
    let started = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
                Ok(Some(_)) => got += 1,
                _ => break,
            }
        }
        got
    });
    for _ in 0..n {
        tx.publish("bench.raw", body.clone()).await.unwrap();
    }
    tx.flush().await.unwrap();
    let got = receiver.await.unwrap();
    assert_eq!(got, n, "raw subscriber lost messages");
    n as f64 / started.elapsed().as_secs_f64()
}

async fn bridge_throughput(server: &NatsServer, payload: Payload, n: usize) -> f64 {
    let rx = Bridge::builder(&server.url()).connect().await.unwrap();
    let tx = Bridge::builder(&server.url()).connect().await.unwrap();
    let mut sub = rx.subscribe("bench.bridge").await.unwrap();
    rx.connection().sync().await.unwrap();
    let started = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
                Ok(Some(Ok(received))) => {
                    std::hint::black_box(received);
                    got += 1;
                }
                _ => break,
            }
        }
        got
    });
    for _ in 0..n {
        tx.smartsend("bench.bridge", vec![payload.clone()], SendOptions::default()).await.unwrap();
    }
    tx.connection().flush().await.unwrap();
    let got = receiver.await.unwrap();
    assert_eq!(got, n, "bridge subscriber lost messages");
    n as f64 / started.elapsed().as_secs_f64()
}

async fn sync(client: &async_nats::Client) {
    let _ = client.request(client.new_inbox(), Bytes::new()).await;
}

/// Request-reply round trips in microseconds: raw echo of prebuilt bytes.
async fn raw_rtt(server: &NatsServer, body: Bytes, n: usize) -> Vec<f64> {
    let service = async_nats::connect(server.url()).await.unwrap();
    let mut sub = service.subscribe("bench.rr.raw").await.unwrap();
    let s2 = service.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(reply) = m.reply {
                s2.publish(reply, m.payload).await.unwrap();
            }
        }
    });
    sync(&service).await;
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        client.request("bench.rr.raw", body.clone()).await.unwrap();
        out.push(t.elapsed().as_secs_f64() * 1e6);
    }
    out
}

/// Request-reply with envelopes both ways: the client builds a request
/// envelope, the service parses it and answers with an envelope, the
/// client parses the answer.
async fn bridge_rtt(server: &NatsServer, payload: Payload, n: usize) -> Vec<f64> {
    let service = Bridge::builder(&server.url()).connect().await.unwrap();
    let mut sub = service.subscribe("bench.rr.bridge").await.unwrap();
    let s2 = service.clone();
    tokio::spawn(async move {
        while let Some(Ok(request)) = sub.next().await {
            let payloads = vec![Payload::text("answer", "ok")];
            s2.reply(&request, payloads, SendOptions::default()).await.unwrap();
        }
    });
    service.connection().sync().await.unwrap();
    let client = Bridge::builder(&server.url()).connect().await.unwrap();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let answer = client
            .request(
                "bench.rr.bridge",
                vec![payload.clone()],
                SendOptions::default(),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        std::hint::black_box(answer);
        out.push(t.elapsed().as_secs_f64() * 1e6);
    }
    out
}

fn envelope_bytes(payload: &Payload) -> Bytes {
    let mut n = 0u64;
    let mut ids = || {
        n += 1;
        format!("00000000-0000-4000-8000-{n:012}")
    };
    let env = Envelope::pack(
        "bench",
        vec![payload.clone()],
        SendOptions::default(),
        &mut ids,
        &time::OffsetDateTime::now_utc,
    );
    env.to_json().unwrap().into()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `cargo test --benches` runs this with no `--bench`: do one tiny round.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (rounds, small_n, big_n, rr_n) = match (smoke, quick) {
        (true, _) => (1, 200, 5, 20),
        (false, true) => (3, 20_000, 200, 1_000),
        (false, false) => (5, 100_000, 500, 3_000),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let server = NatsServer::start();
    let small = Payload::text("message", "x".repeat(128));
    let big: Vec<u8> =
        (0..400_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let big = Payload::binary("blob", big);
    let small_bytes = envelope_bytes(&small);
    let big_bytes = envelope_bytes(&big);

    let (mut raw_s, mut br_s, mut raw_b, mut br_b, mut ratio_s, mut ratio_b) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut raw_rr, mut br_rr) = (vec![], vec![]);
    runtime.block_on(async {
        for _ in 0..rounds {
            let r = raw_throughput(&server, small_bytes.clone(), small_n).await;
            let b = bridge_throughput(&server, small.clone(), small_n).await;
            raw_s.push(r);
            br_s.push(b);
            ratio_s.push(b / r);
            let r = raw_throughput(&server, big_bytes.clone(), big_n).await * 0.4;
            let b = bridge_throughput(&server, big.clone(), big_n).await * 0.4;
            raw_b.push(r);
            br_b.push(b);
            ratio_b.push(b / r);
        }
        raw_rr = raw_rtt(&server, small_bytes.clone(), rr_n).await;
        br_rr = bridge_rtt(&server, small.clone(), rr_n).await;
    });
    let (rs, bs, rq) = (stats(raw_s), stats(br_s), stats(ratio_s));
    let (rb, bb, rbq) = (stats(raw_b), stats(br_b), stats(ratio_b));
    let (rp50, rp99) = (percentile(&mut raw_rr, 0.5), percentile(&mut raw_rr, 0.99));
    let (bp50, bp99) = (percentile(&mut br_rr, 0.5), percentile(&mut br_rr, 0.99));
    let md = format!(
        "## NATS: the bridge against raw async-nats (`natsbridge` facade)\n\n\
         `cargo bench -p natsbridge --bench nats` ({rounds} rounds, median (min-max); one nats-server\n\
         on loopback; the raw side publishes the identical pre-built envelope bytes, the bridge\n\
         builds, publishes, receives and decodes a fresh envelope per message).\n\n\
         | what | raw async-nats | natsbridge | ratio | target |\n|---|---|---|---|---|\n\
         | 128 B text envelopes, msgs/s ({small_n}/round) | {:.0} ({:.0}-{:.0}) | {:.0} ({:.0}-{:.0}) | {:.2}x ({:.2}-{:.2}) | >= 0.8x |\n\
         | 400 KB direct payloads, payload MB/s ({big_n}/round) | {:.0} ({:.0}-{:.0}) | {:.0} ({:.0}-{:.0}) | {:.2}x ({:.2}-{:.2}) | >= 0.6x |\n\
         | request-reply 128 B, p50 µs ({rr_n} requests) | {rp50:.0} | {bp50:.0} | {:.2}x | <= 1.1x |\n\
         | request-reply 128 B, p99 µs | {rp99:.0} | {bp99:.0} | {:.2}x | <= 1.2x |\n",
        rs.median,
        rs.min,
        rs.max,
        bs.median,
        bs.min,
        bs.max,
        rq.median,
        rq.min,
        rq.max,
        rb.median,
        rb.min,
        rb.max,
        bb.median,
        bb.min,
        bb.max,
        rbq.median,
        rbq.min,
        rbq.max,
        bp50 / rp50,
        bp99 / rp99,
    );
    println!("{md}");
    if let (Some(path), false) = (std::env::var_os("NATSBRIDGE_BENCH_OUT"), smoke) {
        std::fs::write(path, md).unwrap();
    }
}
