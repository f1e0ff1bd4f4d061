//! The measurements: the run's settings, its messages, and every round of
//! every comparison kept as samples for the report.

use std::time::Duration;

use bytes::Bytes;
use natsbridge::envelope::Envelope;
use natsbridge::{Payload, SendOptions};
use natsbridge_test_support::NatsServer;
use natsbridge_test_support::stats::percentile;

use crate::{
    Point, Receiver, RttRun, Sender, bridge_throughput, envelope_bytes, pattern, peer, point,
    raw_throughput, rtt_run, throughput, time_ns,
};

/// How much to measure, from the command line and the environment.
pub(crate) struct Settings {
    /// `cargo test --benches` runs the bench with no `--bench`: one tiny
    /// round, without the peers or the scaling curves.
    pub(crate) smoke: bool,
    /// For profiling one path: `NATSBRIDGE_BENCH_ONLY=small` (128 B
    /// throughput, no peers) or `=rr` (request-reply); nothing is written.
    pub(crate) only: Option<String>,
    pub(crate) rounds: usize,
    /// Messages per round: 128 B throughput, 400 KB throughput, requests.
    pub(crate) small_n: usize,
    pub(crate) big_n: usize,
    pub(crate) rr_n: usize,
    /// The peers are slower: fewer messages keep a round short (and a
    /// Python subscriber under the server's 64 MiB slow-consumer limit).
    pub(crate) py_small: usize,
    pub(crate) node_small: usize,
    pub(crate) peer_big: usize,
    /// The least time each codec timing runs for.
    pub(crate) budget: Duration,
}

impl Settings {
    pub(crate) fn from_args() -> Settings {
        let quick = std::env::args().any(|a| a == "--quick");
        let smoke = !std::env::args().any(|a| a == "--bench");
        let (rounds, small_n, big_n, rr_n) = match (smoke, quick) {
            (true, _) => (1, 200, 5, 20),
            (false, true) => (3, 20_000, 200, 1_000),
            (false, false) => (5, 100_000, 500, 3_000),
        };
        let (py_small, node_small, peer_big) =
            if quick { (5_000, 10_000, 40) } else { (20_000, 50_000, 100) };
        Settings {
            smoke,
            only: std::env::var("NATSBRIDGE_BENCH_ONLY").ok(),
            rounds,
            small_n,
            big_n,
            rr_n,
            py_small,
            node_small,
            peer_big,
            budget: Duration::from_millis(if quick { 30 } else { 150 }),
        }
    }

    fn only(&self, what: &str) -> bool {
        self.only.as_deref() == Some(what)
    }
}

/// The server and the two messages every comparison sends.
pub(crate) struct Workload<'a> {
    pub(crate) server: &'a NatsServer,
    /// One 128 B text payload, and its envelope's bytes.
    pub(crate) small: Vec<Payload>,
    pub(crate) small_bytes: Bytes,
    /// One 400 KB binary payload, and its envelope's bytes.
    pub(crate) big: Vec<Payload>,
    pub(crate) big_bytes: Bytes,
}

impl<'a> Workload<'a> {
    pub(crate) fn new(server: &'a NatsServer) -> Workload<'a> {
        let small = vec![Payload::text("message", "x".repeat(128))];
        let big = vec![Payload::binary("blob", pattern(400_000))];
        let (small_bytes, big_bytes) = (envelope_bytes(&small), envelope_bytes(&big));
        Workload { server, small, small_bytes, big, big_bytes }
    }
}

/// Every round's figures; ratios are against the same round's raw rate or
/// raw p50.
#[derive(Default)]
pub(crate) struct Samples {
    /// 128 B and 400 KB throughput: raw, bridge, bridge over raw.
    pub(crate) raw_s: Vec<f64>,
    pub(crate) br_s: Vec<f64>,
    pub(crate) ratio_s: Vec<f64>,
    pub(crate) raw_b: Vec<f64>,
    pub(crate) br_b: Vec<f64>,
    pub(crate) ratio_b: Vec<f64>,
    /// The peers' rates and the bridge's over theirs.
    pub(crate) py_s: Vec<f64>,
    pub(crate) node_s: Vec<f64>,
    pub(crate) py_b: Vec<f64>,
    pub(crate) node_b: Vec<f64>,
    pub(crate) vs_py_s: Vec<f64>,
    pub(crate) vs_node_s: Vec<f64>,
    pub(crate) vs_py_b: Vec<f64>,
    pub(crate) vs_node_b: Vec<f64>,
    /// Request-reply round trips (µs) and the bridge's p50 and p99 over raw.
    pub(crate) raw_rr: Vec<f64>,
    pub(crate) br_rr: Vec<f64>,
    pub(crate) rr_p50: Vec<f64>,
    pub(crate) rr_p99: Vec<f64>,
    /// The 128 B ratio taken apart: the bridge on one side only, a fresh
    /// copy per message, the prepared sender.
    pub(crate) split_tx: Vec<f64>,
    pub(crate) split_rx: Vec<f64>,
    pub(crate) fresh: Vec<f64>,
    pub(crate) prep_both: Vec<f64>,
    pub(crate) prep_tx: Vec<f64>,
    /// The codec work alone, with no bridge: the floor of any envelope peer.
    pub(crate) codec_tx: Vec<f64>,
    pub(crate) codec_rx: Vec<f64>,
    pub(crate) codec_both: Vec<f64>,
    /// The bridge both sides against that floor.
    pub(crate) over_floor: Vec<f64>,
    /// Request-reply taken apart, p50 over raw p50, and the client's codec
    /// steps inside the round trips (µs).
    pub(crate) rr_client: Vec<f64>,
    pub(crate) rr_service: Vec<f64>,
    pub(crate) rr_codec: Vec<f64>,
    pub(crate) rr_pack: Vec<f64>,
    pub(crate) rr_unpack: Vec<f64>,
    /// The same client codec steps in a tight loop (caches warm), µs.
    pub(crate) hot_pack: f64,
    pub(crate) hot_unpack: f64,
    /// Scaling curves: (payload size, messages, point) and (payload count,
    /// messages, point).
    pub(crate) sizes: Vec<(usize, usize, Point)>,
    pub(crate) counts: Vec<(usize, usize, Point)>,
}

impl Samples {
    /// Every round the settings ask for.
    pub(crate) async fn measure(&mut self, settings: &Settings, work: &Workload<'_>) {
        if !settings.only("rr") {
            for _ in 0..settings.rounds {
                self.throughput_round(settings, work).await;
            }
        }
        if !settings.only("small") {
            for _ in 0..settings.rounds {
                self.request_reply_round(settings, work).await;
            }
        }
        if settings.only.is_some() {
            return;
        }
        self.hot_codec(settings, work);
        if !settings.smoke {
            self.scaling(settings, work).await;
        }
    }

    /// One round of throughput: 128 B every way (bridge, one side only,
    /// prepared, codec only), the peers, and 400 KB.
    async fn throughput_round(&mut self, settings: &Settings, work: &Workload<'_>) {
        let (server, n) = (work.server, settings.small_n);
        let r = raw_throughput(server, work.small_bytes.clone(), n).await;
        let b = bridge_throughput(server, work.small.clone(), n).await;
        self.raw_s.push(r);
        self.br_s.push(b);
        self.ratio_s.push(b / r);
        let run = |sender, receiver| {
            throughput(server, &work.small, &work.small_bytes, n, sender, receiver)
        };
        let tx = run(Sender::Bridge, Receiver::Count).await;
        let rx = run(Sender::Raw, Receiver::Bridge).await;
        let fr = run(Sender::RawFresh, Receiver::Count).await;
        let pb = run(Sender::Prepared, Receiver::Bridge).await;
        let pt = run(Sender::Prepared, Receiver::Count).await;
        let ct = run(Sender::CodecOnly, Receiver::Count).await;
        let cr = run(Sender::Raw, Receiver::CodecOnly).await;
        let cb = run(Sender::CodecOnly, Receiver::CodecOnly).await;
        self.codec_tx.push(ct / r);
        self.codec_rx.push(cr / r);
        self.codec_both.push(cb / r);
        self.over_floor.push(b / cb);
        self.prep_both.push(pb / r);
        self.prep_tx.push(pt / r);
        self.split_tx.push(tx / r);
        self.split_rx.push(rx / r);
        self.fresh.push(fr / r);
        if settings.only("small") {
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
            return;
        }
        if !settings.smoke {
            let py = peer("python", server, 128, settings.py_small);
            let node = peer("node", server, 128, settings.node_small);
            self.py_s.push(py);
            self.node_s.push(node);
            self.vs_py_s.push(b / py);
            self.vs_node_s.push(b / node);
        }
        // Payload megabytes per second: 0.4 MB a message.
        let r = raw_throughput(server, work.big_bytes.clone(), settings.big_n).await * 0.4;
        let b = bridge_throughput(server, work.big.clone(), settings.big_n).await * 0.4;
        self.raw_b.push(r);
        self.br_b.push(b);
        self.ratio_b.push(b / r);
        if !settings.smoke {
            let py = peer("python", server, 400_000, settings.peer_big) * 0.4;
            let node = peer("node", server, 400_000, settings.peer_big) * 0.4;
            self.py_b.push(py);
            self.node_b.push(node);
            self.vs_py_b.push(b / py);
            self.vs_node_b.push(b / node);
        }
    }

    /// One round of request-reply, every pairing in rotation.
    async fn request_reply_round(&mut self, settings: &Settings, work: &Workload<'_>) {
        let n = settings.rr_n / settings.rounds;
        let RttRun {
            raw: mut r,
            bridge: mut b,
            mut client_side,
            mut service_side,
            mut codec_service,
            pack,
            unpack,
        } = rtt_run(work.server, work.small_bytes.clone(), work.small[0].clone(), n).await;
        let raw_p50 = percentile(&mut r, 0.5);
        self.rr_client.push(percentile(&mut client_side, 0.5) / raw_p50);
        self.rr_service.push(percentile(&mut service_side, 0.5) / raw_p50);
        self.rr_codec.push(percentile(&mut codec_service, 0.5) / raw_p50);
        self.rr_pack.extend(pack);
        self.rr_unpack.extend(unpack);
        self.rr_p50.push(percentile(&mut b, 0.5) / raw_p50);
        self.rr_p99.push(percentile(&mut b, 0.99) / percentile(&mut r, 0.99));
        if settings.only("rr") {
            eprintln!(
                "request-reply p50: raw {:.0} µs, bridge {:.0} µs, {:.2}x; client only \
                 {:.2}x, service only {:.2}x, codec-only service {:.2}x",
                percentile(&mut r, 0.5),
                percentile(&mut b, 0.5),
                self.rr_p50[self.rr_p50.len() - 1],
                self.rr_client[self.rr_client.len() - 1],
                self.rr_service[self.rr_service.len() - 1],
                self.rr_codec[self.rr_codec.len() - 1],
            );
        }
        self.raw_rr.extend(r);
        self.br_rr.extend(b);
    }

    /// Cost against payload size (one binary payload) and against the
    /// number of 1 KiB payloads in one envelope.
    async fn scaling(&mut self, settings: &Settings, work: &Workload<'_>) {
        let (small_n, budget) = (settings.small_n, settings.budget);
        for size in [128usize, 4_096, 65_536, 400_000, 750_000] {
            let n = (32_000_000 / size).clamp(100, small_n / 2);
            let payloads = vec![Payload::binary("blob", pattern(size))];
            self.sizes.push((size, n, point(work.server, payloads, n, budget).await));
        }
        for count in [1usize, 4, 16, 64] {
            let n = (small_n / 2 / count).max(200);
            let payloads =
                (0..count).map(|i| Payload::binary(format!("blob{i}"), pattern(1024))).collect();
            self.counts.push((count, n, point(work.server, payloads, n, budget).await));
        }
    }

    /// The client's codec steps in a tight loop (caches warm), for
    /// comparison with their time inside a round trip.
    fn hot_codec(&mut self, settings: &Settings, work: &Workload<'_>) {
        self.hot_pack = time_ns(settings.budget, || {
            let env = Envelope::pack(
                "bench.rr.raw",
                work.small.clone(),
                SendOptions::default(),
                &mut natsbridge::SystemIds,
                &natsbridge::SystemClock,
            );
            std::hint::black_box(env.to_json().unwrap());
        }) / 1e3;
        self.hot_unpack = time_ns(settings.budget, || {
            std::hint::black_box(Envelope::from_json(&work.small_bytes).unwrap());
        }) / 1e3;
    }
}
