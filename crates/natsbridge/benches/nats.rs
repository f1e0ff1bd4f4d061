//! The bridge against raw async-nats over a real nats-server, in one run.
//!
//! `cargo bench -p natsbridge --bench nats [-- --quick]`. Each comparison is
//! a ratio against its baseline measured in the same run (the machine is
//! shared and noisy): several rounds, median and min-max. Prints a markdown
//! section, also written to `$NATSBRIDGE_BENCH_OUT` when set (as `cargo
//! xtask bench` does).

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use natsbridge::envelope::{Envelope, EnvelopeView};
use natsbridge::transport::ConnectOptions;
use natsbridge::{Bridge, Payload, SendOptions};
use natsbridge_test_support::NatsServer;
use natsbridge_test_support::stats::{Stats, median, percentile, stats};

/// Who sends in a throughput run.
#[derive(Clone, Copy, PartialEq)]
enum Sender {
    /// Raw async-nats publishing the same pre-built envelope bytes each time.
    Raw,
    /// Raw async-nats publishing a fresh copy of those bytes each time: one
    /// allocation and copy per message, the least any sender of a fresh
    /// envelope pays.
    RawFresh,
    /// `Bridge::smartsend`: a fresh envelope per message, from payloads and
    /// options lent (kept by the sender, as a stream of messages does).
    Bridge,
    /// `PreparedSender::send` (`Bridge::prepare`): the same bytes, written
    /// straight from a template.
    Prepared,
    /// Raw async-nats publishing an envelope built per message with
    /// envelope-core alone (`Envelope::write_packed` from the same lent
    /// payloads and options, no bridge): the codec work any sender of a
    /// fresh envelope does, at its cheapest.
    CodecOnly,
}

/// Who receives in a throughput run.
#[derive(Clone, Copy, PartialEq)]
enum Receiver {
    /// A raw async-nats subscriber counting messages.
    Count,
    /// The bridge's lazy subscription (`Bridge::subscribe_lazy`), reading
    /// each envelope in place and decoding its payload into a buffer.
    Bridge,
    /// A raw async-nats subscriber doing the same codec work on each
    /// message with envelope-core alone (`EnvelopeView::parse`, the
    /// payload decoded into a buffer; no bridge): the codec work any
    /// decoding receiver does.
    CodecOnly,
}

/// Messages per second from first publish to last message received, with
/// the subscriber either raw (counting) or the bridge's (decoding).
async fn throughput(
    server: &NatsServer,
    payloads: &[Payload],
    body: &Bytes,
    n: usize,
    sender: Sender,
    receiver: Receiver,
) -> f64 {
    // A publisher faster than a decoding subscriber fills the client's
    // per-subscription buffer (65,536 messages by default) and async-nats
    // drops the overflow: room for the whole run keeps every message.
    let options = ConnectOptions::new(server.url()).subscription_capacity(n.max(65_536));
    let rx = Bridge::builder(&server.url()).connect_options(options).connect().await.unwrap();
    let tx = Bridge::builder(&server.url()).connect().await.unwrap();
    let subject = "bench.throughput";
    let mut bridge_sub = None;
    let mut raw_sub = None;
    if receiver == Receiver::Bridge {
        bridge_sub = Some(rx.subscribe_lazy(subject).await.unwrap());
    } else {
        raw_sub = Some(rx.connection().client().subscribe(subject).await.unwrap());
    }
    let parse = receiver == Receiver::CodecOnly;
    rx.connection().sync().await.unwrap();
    let started = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut got = 0;
        let wait = Duration::from_secs(10);
        let mut buf = Vec::new();
        // What a receiver of the benchmark's envelope reads: the header and
        // every payload's bytes.
        let mut read = |view: EnvelopeView<'_>| {
            for payload in view.payloads() {
                buf.clear();
                payload.decode_into(&mut buf).unwrap();
            }
            std::hint::black_box((view.msg_id().len(), buf.len()));
        };
        while got < n {
            let ok = if let Some(sub) = bridge_sub.as_mut() {
                match tokio::time::timeout(wait, sub.next()).await {
                    Ok(Some(incoming)) => {
                        read(incoming.view().unwrap());
                        true
                    }
                    _ => false,
                }
            } else {
                let sub = raw_sub.as_mut().unwrap();
                match tokio::time::timeout(wait, sub.next()).await {
                    Ok(Some(message)) if parse => {
                        read(EnvelopeView::parse(&message.payload).unwrap());
                        true
                    }
                    Ok(Some(_)) => true,
                    _ => false,
                }
            };
            if !ok {
                break;
            }
            got += 1;
        }
        got
    });
    let raw = tx.connection().client();
    let prepared = tx.prepare(subject, SendOptions::default()).unwrap();
    let options = SendOptions::default();
    for _ in 0..n {
        match sender {
            Sender::Raw => raw.publish(subject, body.clone()).await.unwrap(),
            Sender::RawFresh => raw.publish(subject, Bytes::from(body.to_vec())).await.unwrap(),
            Sender::Bridge => {
                tx.smartsend(subject, payloads, &options).await.unwrap();
            }
            Sender::Prepared => {
                prepared.send(payloads).await.unwrap();
            }
            Sender::CodecOnly => {
                let mut json = Vec::new();
                let (ids, clock) = (&mut natsbridge::SystemIds, &natsbridge::SystemClock);
                Envelope::write_packed(&mut json, subject, payloads, &options, ids, clock).unwrap();
                raw.publish(subject, json.into()).await.unwrap();
            }
        }
    }
    raw.flush().await.unwrap();
    let got = receiver.await.unwrap();
    assert_eq!(got, n, "the subscriber lost messages");
    n as f64 / started.elapsed().as_secs_f64()
}

async fn raw_throughput(server: &NatsServer, body: Bytes, n: usize) -> f64 {
    throughput(server, &[], &body, n, Sender::Raw, Receiver::Count).await
}

async fn bridge_throughput(server: &NatsServer, payloads: Vec<Payload>, n: usize) -> f64 {
    throughput(server, &payloads, &Bytes::new(), n, Sender::Bridge, Receiver::Bridge).await
}

async fn sync(client: &async_nats::Client) {
    let _ = client.request(client.new_inbox(), Bytes::new()).await;
}

/// One request-reply run: round trips in microseconds for each pairing,
/// measured request by request in rotation so that all see the same
/// machine, and the client-side codec time inside the round trips.
#[derive(Default)]
struct RttRun {
    /// Raw async-nats client, raw echo service (the baseline).
    raw: Vec<f64>,
    /// `Bridge::request` to a bridge service answering with `Bridge::reply`.
    bridge: Vec<f64>,
    /// The bridge's client path to the raw echo service: the client side's cost.
    client_side: Vec<f64>,
    /// The raw client (pre-built bytes) to the bridge service: the service side's cost.
    service_side: Vec<f64>,
    /// The raw client to a raw service that only does the codec work a
    /// bridge service must (parse the request, build and serialize the
    /// answer): the floor for any envelope-speaking service.
    codec_service: Vec<f64>,
    /// Building the request (smartpack) inside a round trip, µs.
    pack: Vec<f64>,
    /// Reading the answer (smartunpack) inside a round trip, µs.
    unpack: Vec<f64>,
}

async fn rtt_run(server: &NatsServer, body: Bytes, payload: Payload, n: usize) -> RttRun {
    let raw_service = async_nats::connect(server.url()).await.unwrap();
    let mut raw_sub = raw_service.subscribe("bench.rr.raw").await.unwrap();
    let s2 = raw_service.clone();
    tokio::spawn(async move {
        while let Some(m) = raw_sub.next().await {
            if let Some(reply) = m.reply {
                s2.publish(reply, m.payload).await.unwrap();
            }
        }
    });
    let mut codec_sub = raw_service.subscribe("bench.rr.codec").await.unwrap();
    let s2 = raw_service.clone();
    tokio::spawn(async move {
        while let Some(m) = codec_sub.next().await {
            let Some(reply) = m.reply else { continue };
            let request = Envelope::from_json(&m.payload).unwrap();
            let options = request.reply_options().with_is_publish(false);
            let payloads = vec![Payload::text("answer", "ok")];
            let answer = Envelope::pack(
                &reply,
                payloads,
                options,
                &mut natsbridge::SystemIds,
                &natsbridge::SystemClock,
            );
            s2.publish(reply, answer.to_json().unwrap().into()).await.unwrap();
        }
    });
    sync(&raw_service).await;
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
    let raw_client = async_nats::connect(server.url()).await.unwrap();
    let client = Bridge::builder(&server.url()).connect().await.unwrap();
    let downloader = natsbridge::claimcheck::http::HttpDownloader::new().unwrap();
    let timeout = Duration::from_secs(5);
    let mut run = RttRun::default();
    for i in 0..n {
        for k in 0..5 {
            let t = Instant::now();
            match (i + k) % 5 {
                0 => {
                    raw_client.request("bench.rr.raw", body.clone()).await.unwrap();
                    run.raw.push(t.elapsed().as_secs_f64() * 1e6);
                }
                1 => {
                    let answer = client
                        .request(
                            "bench.rr.bridge",
                            vec![payload.clone()],
                            SendOptions::default(),
                            timeout,
                        )
                        .await
                        .unwrap();
                    std::hint::black_box(answer);
                    run.bridge.push(t.elapsed().as_secs_f64() * 1e6);
                }
                2 => {
                    // Bridge::request's steps, timed one by one.
                    let options = SendOptions::new().with_is_publish(false);
                    let max = client.connection().max_payload();
                    let (_, json) =
                        natsbridge::pack("bench.rr.raw", vec![payload.clone()], options, None, max)
                            .await
                            .unwrap();
                    let packed = t.elapsed();
                    let answer =
                        client.connection().request("bench.rr.raw", json, timeout).await.unwrap();
                    let t2 = Instant::now();
                    let envelope =
                        natsbridge::smartunpack(&answer.payload, &downloader).await.unwrap();
                    std::hint::black_box(envelope);
                    run.unpack.push(t2.elapsed().as_secs_f64() * 1e6);
                    run.pack.push(packed.as_secs_f64() * 1e6);
                    run.client_side.push(t.elapsed().as_secs_f64() * 1e6);
                }
                3 => {
                    raw_client.request("bench.rr.bridge", body.clone()).await.unwrap();
                    run.service_side.push(t.elapsed().as_secs_f64() * 1e6);
                }
                _ => {
                    raw_client.request("bench.rr.codec", body.clone()).await.unwrap();
                    run.codec_service.push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
    }
    run
}

fn envelope_bytes(payloads: &[Payload]) -> Bytes {
    let mut n = 0u64;
    let mut ids = || {
        n += 1;
        format!("00000000-0000-4000-8000-{n:012}")
    };
    let env = Envelope::pack(
        "bench",
        payloads.to_vec(),
        SendOptions::default(),
        &mut ids,
        &time::OffsetDateTime::now_utc,
    );
    env.to_json().unwrap().into()
}

/// The workspace root, where the peers and the venv live.
fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One run of a peer's bench script (tests/interop/python/bench.py,
/// tests/interop/node/bench.mjs): its own smartpack and smartunpack over the same
/// nats-server. Returns messages per second.
fn peer(lang: &str, server: &NatsServer, size: usize, n: usize) -> f64 {
    let root = workspace();
    let kind = if size <= 128 { "text" } else { "binary" };
    let mut cmd = match lang {
        "python" => {
            let mut c = Command::new(root.join(".venv/bin/python"));
            c.arg(root.join("tests/interop/python/bench.py"));
            c
        }
        _ => {
            let mut c = Command::new("node");
            c.arg("bench.mjs").current_dir(root.join("tests/interop/node"));
            c
        }
    };
    cmd.args(["--server", &server.url(), "--type", kind]).args([
        "--size",
        &size.to_string(),
        "--count",
        &n.to_string(),
    ]);
    let out = cmd.output().unwrap_or_else(|e| panic!("{lang} peer bench: {e} (cargo xtask setup)"));
    assert!(out.status.success(), "{lang} bench: {}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["received"].as_u64(), Some(n as u64), "{lang} subscriber lost messages");
    line["msgs_per_s"].as_f64().unwrap()
}

/// Nanoseconds per call of `f`: the median of three batches of at least
/// `budget` each.
fn time_ns(budget: Duration, mut f: impl FnMut()) -> f64 {
    let mut batches = Vec::new();
    for _ in 0..3 {
        let (started, mut calls) = (Instant::now(), 0u64);
        while started.elapsed() < budget {
            f();
            calls += 1;
        }
        batches.push(started.elapsed().as_nanos() as f64 / calls as f64);
    }
    median(&mut batches)
}

/// One point of a scaling curve: CPU time of each codec step and the
/// end-to-end rates over NATS.
struct Point {
    envelope: usize,
    pack: f64,
    to_json: f64,
    from_json: f64,
    raw: f64,
    bridge: f64,
}

impl Point {
    fn codec_us(&self) -> f64 {
        (self.pack + self.to_json + self.from_json) / 1e3
    }
}

async fn point(server: &NatsServer, payloads: Vec<Payload>, n: usize, budget: Duration) -> Point {
    let pack = || {
        Envelope::pack(
            "bench.bridge",
            payloads.clone(),
            SendOptions::default(),
            &mut natsbridge::SystemIds,
            &natsbridge::SystemClock,
        )
    };
    let env = pack();
    let json = env.to_json().unwrap();
    Point {
        envelope: json.len(),
        pack: time_ns(budget, || {
            std::hint::black_box(pack());
        }),
        to_json: time_ns(budget, || {
            std::hint::black_box(env.to_json().unwrap());
        }),
        from_json: time_ns(budget, || {
            std::hint::black_box(Envelope::from_json(&json).unwrap());
        }),
        raw: raw_throughput(server, json.clone().into(), n).await,
        bridge: bridge_throughput(server, payloads.clone(), n).await,
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

/// A ratio line for the plot `cargo xtask bench` draws:
/// `label, median, min, max, target, direction` (direction `>=` or `<=`).
fn ratio_line(label: &str, s: &Stats, target: f64, direction: &str) -> String {
    format!("{label}\t{}\t{}\t{}\t{target}\t{direction}\n", s.median, s.min, s.max)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `cargo test --benches` runs this with no `--bench`: do one tiny round,
    // without the peers or the scaling curves.
    let smoke = !std::env::args().any(|a| a == "--bench");
    // For profiling one path: `NATSBRIDGE_BENCH_ONLY=small` (128 B
    // throughput, no peers) or `=rr` (request-reply); nothing is written.
    let only = std::env::var("NATSBRIDGE_BENCH_ONLY").ok();
    let only = only.as_deref();
    let (rounds, small_n, big_n, rr_n) = match (smoke, quick) {
        (true, _) => (1, 200, 5, 20),
        (false, true) => (3, 20_000, 200, 1_000),
        (false, false) => (5, 100_000, 500, 3_000),
    };
    // The peers are slower: fewer messages keep a round short (and a
    // Python subscriber under the server's 64 MiB slow-consumer limit).
    let (py_small, node_small, peer_big) =
        if quick { (5_000, 10_000, 40) } else { (20_000, 50_000, 100) };
    let budget = Duration::from_millis(if quick { 30 } else { 150 });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let server = NatsServer::start();
    let small = vec![Payload::text("message", "x".repeat(128))];
    let big = vec![Payload::binary("blob", pattern(400_000))];
    let small_bytes = envelope_bytes(&small);
    let big_bytes = envelope_bytes(&big);

    let (mut raw_s, mut br_s, mut raw_b, mut br_b, mut ratio_s, mut ratio_b) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut py_s, mut node_s, mut py_b, mut node_b) = (vec![], vec![], vec![], vec![]);
    let (mut vs_py_s, mut vs_node_s, mut vs_py_b, mut vs_node_b) = (vec![], vec![], vec![], vec![]);
    let (mut raw_rr, mut br_rr, mut rr_p50, mut rr_p99) = (vec![], vec![], vec![], vec![]);
    // The 128 B ratio taken apart, each against the same round's raw rate.
    let (mut split_tx, mut split_rx, mut fresh) = (vec![], vec![], vec![]);
    let (mut prep_both, mut prep_tx) = (vec![], vec![]);
    // The codec work alone, with no bridge: the floor of any envelope peer.
    let (mut codec_tx, mut codec_rx, mut codec_both) = (vec![], vec![], vec![]);
    // The bridge both sides against that floor, round by round.
    let mut over_floor = vec![];
    let (mut rr_client, mut rr_service, mut rr_pack, mut rr_unpack) =
        (vec![], vec![], vec![], vec![]);
    let mut rr_codec = vec![];
    let (mut sizes, mut counts) = (vec![], vec![]);
    runtime.block_on(async {
        for _ in 0..rounds {
            if only == Some("rr") {
                break;
            }
            let r = raw_throughput(&server, small_bytes.clone(), small_n).await;
            let b = bridge_throughput(&server, small.clone(), small_n).await;
            raw_s.push(r);
            br_s.push(b);
            ratio_s.push(b / r);
            let (body, payloads) = (&small_bytes, &small[..]);
            let run =
                |sender, receiver| throughput(&server, payloads, body, small_n, sender, receiver);
            let tx = run(Sender::Bridge, Receiver::Count).await;
            let rx = run(Sender::Raw, Receiver::Bridge).await;
            let fr = run(Sender::RawFresh, Receiver::Count).await;
            let pb = run(Sender::Prepared, Receiver::Bridge).await;
            let pt = run(Sender::Prepared, Receiver::Count).await;
            let ct = run(Sender::CodecOnly, Receiver::Count).await;
            let cr = run(Sender::Raw, Receiver::CodecOnly).await;
            let cb = run(Sender::CodecOnly, Receiver::CodecOnly).await;
            codec_tx.push(ct / r);
            codec_rx.push(cr / r);
            codec_both.push(cb / r);
            over_floor.push(b / cb);
            prep_both.push(pb / r);
            prep_tx.push(pt / r);
            split_tx.push(tx / r);
            split_rx.push(rx / r);
            fresh.push(fr / r);
            if only == Some("small") {
                eprintln!(
                    "128 B: raw {r:.0} msgs/s, bridge {b:.0} ({:.2}x); smartsend to raw {:.2}x, \
                     raw to bridge {:.2}x, fresh copy {:.2}x, prepared {:.2}x, prepared to raw \
                     {:.2}x; codec only: send {:.2}x, receive {:.2}x, both {:.2}x",
                    b / r,
                    tx / r,
                    rx / r,
                    fr / r,
                    pb / r,
                    pt / r,
                    ct / r,
                    cr / r,
                    cb / r
                );
                continue;
            }
            if !smoke {
                let (py, node) = (
                    peer("python", &server, 128, py_small),
                    peer("node", &server, 128, node_small),
                );
                py_s.push(py);
                node_s.push(node);
                vs_py_s.push(b / py);
                vs_node_s.push(b / node);
            }
            let r = raw_throughput(&server, big_bytes.clone(), big_n).await * 0.4;
            let b = bridge_throughput(&server, big.clone(), big_n).await * 0.4;
            raw_b.push(r);
            br_b.push(b);
            ratio_b.push(b / r);
            if !smoke {
                let py = peer("python", &server, 400_000, peer_big) * 0.4;
                let node = peer("node", &server, 400_000, peer_big) * 0.4;
                py_b.push(py);
                node_b.push(node);
                vs_py_b.push(b / py);
                vs_node_b.push(b / node);
            }
        }
        for _ in 0..rounds {
            if only == Some("small") {
                break;
            }
            let RttRun {
                raw: mut r,
                bridge: mut b,
                mut client_side,
                mut service_side,
                mut codec_service,
                pack,
                unpack,
            } = rtt_run(&server, small_bytes.clone(), small[0].clone(), rr_n / rounds).await;
            let raw_p50 = percentile(&mut r, 0.5);
            rr_client.push(percentile(&mut client_side, 0.5) / raw_p50);
            rr_service.push(percentile(&mut service_side, 0.5) / raw_p50);
            rr_codec.push(percentile(&mut codec_service, 0.5) / raw_p50);
            rr_pack.extend(pack);
            rr_unpack.extend(unpack);
            rr_p50.push(percentile(&mut b, 0.5) / raw_p50);
            rr_p99.push(percentile(&mut b, 0.99) / percentile(&mut r, 0.99));
            if only == Some("rr") {
                eprintln!(
                    "request-reply p50: raw {:.0} µs, bridge {:.0} µs, {:.2}x; client only \
                     {:.2}x, service only {:.2}x, codec-only service {:.2}x",
                    percentile(&mut r, 0.5),
                    percentile(&mut b, 0.5),
                    rr_p50[rr_p50.len() - 1],
                    rr_client[rr_client.len() - 1],
                    rr_service[rr_service.len() - 1],
                    rr_codec[rr_codec.len() - 1],
                );
            }
            raw_rr.extend(r);
            br_rr.extend(b);
        }
        if smoke || only.is_some() {
            return;
        }
        // Cost against payload size (one binary payload) and against the
        // number of 1 KiB payloads in one envelope.
        for size in [128usize, 4_096, 65_536, 400_000, 750_000] {
            let n = (32_000_000 / size).clamp(100, small_n / 2);
            let payloads = vec![Payload::binary("blob", pattern(size))];
            sizes.push((size, n, point(&server, payloads, n, budget).await));
        }
        for count in [1usize, 4, 16, 64] {
            let n = (small_n / 2 / count).max(200);
            let payloads =
                (0..count).map(|i| Payload::binary(format!("blob{i}"), pattern(1024))).collect();
            counts.push((count, n, point(&server, payloads, n, budget).await));
        }
    });
    if only.is_some() {
        return;
    }
    let (rs, bs, rq) = (stats(raw_s), stats(br_s), stats(ratio_s));
    let (rb, bb, rbq) = (stats(raw_b), stats(br_b), stats(ratio_b));
    let (rp50, rp99) = (percentile(&mut raw_rr, 0.5), percentile(&mut raw_rr, 0.99));
    let (bp50, bp99) = (percentile(&mut br_rr, 0.5), percentile(&mut br_rr, 0.99));
    let (q50, q99) = (stats(rr_p50), stats(rr_p99));
    let mut md = format!(
        "## NATS: the bridge against raw async-nats (`natsbridge` facade)\n\n\
         `cargo bench -p natsbridge --bench nats` ({rounds} rounds, median (min-max); one nats-server\n\
         on loopback; the raw side publishes the identical pre-built envelope bytes, the bridge\n\
         builds and publishes a fresh envelope per message (`smartsend`) and receives it\n\
         through `subscribe_lazy`, reading it in place and decoding its payload).\n\n\
         | what | raw async-nats | natsbridge | ratio | target |\n|---|---|---|---|---|\n\
         | 128 B text envelopes, msgs/s ({small_n}/round) | {:.0} ({:.0}-{:.0}) | {:.0} ({:.0}-{:.0}) | {:.2}x ({:.2}-{:.2}) | >= 0.8x |\n\
         | 400 KB direct payloads, payload MB/s ({big_n}/round) | {:.0} ({:.0}-{:.0}) | {:.0} ({:.0}-{:.0}) | {:.2}x ({:.2}-{:.2}) | >= 0.6x |\n\
         | request-reply 128 B, p50 µs ({rr_n} requests each, alternating) | {rp50:.0} | {bp50:.0} | {:.2}x ({:.2}-{:.2}) | <= 1.1x |\n\
         | request-reply 128 B, p99 µs | {rp99:.0} | {bp99:.0} | {:.2}x ({:.2}-{:.2}) | <= 1.2x |\n",
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
        q50.median,
        q50.min,
        q50.max,
        q99.median,
        q99.min,
        q99.max,
    );
    // The same codec steps in a tight loop (caches warm), for comparison
    // with their time inside a round trip.
    let hot_pack = time_ns(budget, || {
        let env = Envelope::pack(
            "bench.rr.raw",
            small.clone(),
            SendOptions::default(),
            &mut natsbridge::SystemIds,
            &natsbridge::SystemClock,
        );
        std::hint::black_box(env.to_json().unwrap());
    }) / 1e3;
    let hot_unpack = time_ns(budget, || {
        std::hint::black_box(Envelope::from_json(&small_bytes).unwrap());
    }) / 1e3;
    let (tx, rx, fr) = (stats(split_tx), stats(split_rx), stats(fresh));
    let (pb, pt) = (stats(prep_both), stats(prep_tx));
    let (ct, cr, cb) = (stats(codec_tx), stats(codec_rx), stats(codec_both));
    let (qc, qs, qk) = (stats(rr_client), stats(rr_service), stats(rr_codec));
    let (cold_pack, cold_unpack) = (median(&mut rr_pack), median(&mut rr_unpack));
    md += &format!(
        "\n### The small-message gap taken apart\n\n\
         Same rounds as above, each against that round's raw rate or raw p50. Throughput:\n\
         the bridge on one side only, a raw publisher that copies the envelope into a\n\
         fresh buffer per message (one allocation and copy: the least any sender of a fresh\n\
         envelope pays), the prepared sender, which writes the same bytes as `smartsend`\n\
         from a template rendered once per subject, and no bridge at all: raw async-nats\n\
         with only envelope-core's cheapest codec calls added (`Envelope::write_packed` from\n\
         the same lent payloads and options, `EnvelopeView::parse`: the floor of any peer\n\
         that builds or reads envelopes with this codec). `smartsend` lends its payloads and\n\
         options too. Request-reply: the bridge on one side only, and the client's codec\n\
         steps timed inside the round trips against the same steps in a tight loop.\n\n\
         | 128 B throughput | ratio to raw |\n|---|---|\n\
         | natsbridge both sides (the row above) | {:.2}x ({:.2}-{:.2}) |\n\
         | `smartsend` publishing (payloads and options lent), raw subscriber counting | {:.2}x ({:.2}-{:.2}) |\n\
         | raw publisher, bridge subscriber reading (`subscribe_lazy`: the view, its payload decoded) | {:.2}x ({:.2}-{:.2}) |\n\
         | raw publisher, a fresh copy of the bytes per message | {:.2}x ({:.2}-{:.2}) |\n\
         | prepared sender (`Bridge::prepare`), bridge subscriber reading | {:.2}x ({:.2}-{:.2}) |\n\
         | prepared sender, raw subscriber counting | {:.2}x ({:.2}-{:.2}) |\n\
         | no bridge, codec only: raw publisher writing each envelope (`Envelope::write_packed`), raw subscriber counting | {:.2}x ({:.2}-{:.2}) |\n\
         | no bridge, codec only: raw publisher (pre-built bytes), raw subscriber reading each envelope (`EnvelopeView::parse`, its payload decoded) | {:.2}x ({:.2}-{:.2}) |\n\
         | no bridge, codec only: both of the above | {:.2}x ({:.2}-{:.2}) |\n\n\
         | request-reply 128 B | p50 to raw p50 |\n|---|---|\n\
         | natsbridge client and service (the row above) | {:.2}x ({:.2}-{:.2}) |\n\
         | natsbridge client, raw echo service | {:.2}x ({:.2}-{:.2}) |\n\
         | raw client, natsbridge service | {:.2}x ({:.2}-{:.2}) |\n\
         | raw client, raw service doing only the codec work (parse, build, serialize the answer) | {:.2}x ({:.2}-{:.2}) |\n\n\
         | client codec step (128 B) | median inside a round trip | in a tight loop |\n|---|---|---|\n\
         | build the request (`smartpack`: ids, timestamp, JSON) | {cold_pack:.2} µs | {hot_pack:.2} µs |\n\
         | read the answer (`smartunpack`) | {cold_unpack:.2} µs | {hot_unpack:.2} µs |\n",
        rq.median,
        rq.min,
        rq.max,
        tx.median,
        tx.min,
        tx.max,
        rx.median,
        rx.min,
        rx.max,
        fr.median,
        fr.min,
        fr.max,
        pb.median,
        pb.min,
        pb.max,
        pt.median,
        pt.min,
        pt.max,
        ct.median,
        ct.min,
        ct.max,
        cr.median,
        cr.min,
        cr.max,
        cb.median,
        cb.min,
        cb.max,
        q50.median,
        q50.min,
        q50.max,
        qc.median,
        qc.min,
        qc.max,
        qs.median,
        qs.min,
        qs.max,
        qk.median,
        qk.min,
        qk.max,
    );
    let mut ratios = ratio_line("128 B msgs/s vs raw async-nats", &rq, 0.8, ">=")
        + &ratio_line("400 KB MB/s vs raw async-nats", &rbq, 0.6, ">=")
        + &ratio_line("request-reply p50 vs raw", &q50, 1.1, "<=")
        + &ratio_line("request-reply p99 vs raw", &q99, 1.2, "<=")
        // Issue 18's targets for the same measurements: both sides at half
        // of raw, within 5% of the codec-only floor, and the p50.
        + &ratio_line("128 B msgs/s vs raw async-nats (issue 18)", &rq, 0.5, ">=")
        + &ratio_line("128 B msgs/s vs the codec-only floor", &stats(over_floor), 0.95, ">=")
        + &ratio_line("request-reply p50 vs raw (issue 18)", &q50, 1.15, "<=");
    if !smoke {
        let (ps, ns, pb, nb) = (stats(py_s), stats(node_s), stats(py_b), stats(node_b));
        let (qps, qns, qpb, qnb) =
            (stats(vs_py_s), stats(vs_node_s), stats(vs_py_b), stats(vs_node_b));
        let row = |what: &str, peer: &Stats, q: &Stats, target: &str| {
            format!(
                "| {what} | {:.0} ({:.0}-{:.0}) | {:.2}x ({:.2}-{:.2}) | {target} |\n",
                peer.median, peer.min, peer.max, q.median, q.min, q.max
            )
        };
        md += &format!(
            "\n### Against the Python and Node peers\n\n\
             The peers' own `smartpack` (building the envelope, then one publish per message:\n\
             their `smartsend` flushes after each publish, a round trip that would measure the\n\
             flush) and `smartunpack` on every message received, with nats-py and nats.js on the\n\
             same nats-server, in the same rounds as the rows above (`tests/interop/python/bench.py`,\n\
             `tests/interop/node/bench.mjs`; {py_small} / {node_small} small and {peer_big} large\n\
             messages per round). The ratio is natsbridge's rate over the peer's, round by round.\n\n\
             | what | peer | natsbridge vs peer | target |\n|---|---|---|---|\n"
        );
        md += &row("Python (nats-py), 128 B, msgs/s", &ps, &qps, ">= 10x");
        md += &row("Node (nats.js), 128 B, msgs/s", &ns, &qns, ">= 3x");
        md += &row("Python (nats-py), 400 KB, payload MB/s", &pb, &qpb, "-");
        md += &row("Node (nats.js), 400 KB, payload MB/s", &nb, &qnb, "-");
        ratios += &ratio_line("128 B msgs/s vs Python peer", &qps, 10.0, ">=");
        ratios += &ratio_line("128 B msgs/s vs Node peer", &qns, 3.0, ">=");

        let header = |first: &str| {
            format!(
                "| {first} | envelope bytes | pack µs | to_json µs | from_json µs | raw msgs/s | \
                 natsbridge msgs/s | ratio | µs per message | codec share |\n\
                 |---|---|---|---|---|---|---|---|---|---|\n"
            )
        };
        let line = |first: String, p: &Point| {
            let per_msg = 1e6 / p.bridge;
            format!(
                "| {first} | {} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {:.2}x | {:.1} | {:.0}% |\n",
                p.envelope,
                p.pack / 1e3,
                p.to_json / 1e3,
                p.from_json / 1e3,
                p.raw,
                p.bridge,
                p.bridge / p.raw,
                per_msg,
                100.0 * p.codec_us() / per_msg,
            )
        };
        md += "\n### How the cost grows with payload size and payload count\n\n\
               One round each (read the trend, not the digits). pack, to_json and from_json are\n\
               CPU time per envelope on one core (pack includes the ids and timestamp from the\n\
               system sources, as `smartsend` does); the message rates are over NATS as above.\n\
               Codec share is pack + to_json + from_json over the bridge's wall time per\n\
               message: the rest is NATS, the runtime and the sender and receiver sharing 2\n\
               cores with nats-server.\n\n";
        md += &header("one binary payload of");
        for (size, _, p) in &sizes {
            md += &line(format!("{size} B"), p);
        }
        md += "\n";
        md += &header("1 KiB binary payloads per envelope");
        for (count, _, p) in &counts {
            md += &line(count.to_string(), p);
        }
        let per = |i: usize| counts[i].2.codec_us() / counts[i].0 as f64;
        md += &format!(
            "\nCodec CPU per payload: {:.2} µs alone in an envelope, {:.2} µs each among 64.\n",
            per(0),
            per(counts.len() - 1)
        );
    }
    println!("{md}");
    if let (Some(path), false) = (std::env::var_os("NATSBRIDGE_BENCH_OUT"), smoke) {
        std::fs::write(path, md).unwrap();
    }
    if let (Some(path), false) = (std::env::var_os("NATSBRIDGE_BENCH_RATIOS"), smoke) {
        std::fs::write(path, ratios).unwrap();
    }
}
