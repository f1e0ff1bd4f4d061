//! Instructions per 128-byte message, counted by callgrind: the budgets of
//! issue 18, exact where the shared machine's timings are noisy.
//!
//! `cargo bench -p natsbridge --bench instructions [-- --quick]` (`cargo
//! xtask bench --only instructions` runs it and updates
//! `docs/BENCHMARKS.md`). With `--bench`, this binary runs itself once per
//! scenario and round under `valgrind --tool=callgrind
//! --toggle-collect=instructions::measure_<scenario>`, so callgrind counts
//! only what `measure_<scenario>` does: `N` messages, after `WARM_UP`
//! messages sent or read outside it. The figure is the collected total over
//! `N`. It prints a markdown section (also written to
//! `$NATSBRIDGE_BENCH_OUT`) with the figures recorded before issue 18's
//! work (`docs/instructions-before.tsv`) beside this run's, and one ratio
//! line per scenario (`$NATSBRIDGE_BENCH_RATIOS`).
//!
//! Without `--bench` (as `cargo test --benches` runs it) each scenario runs
//! once, natively, on a few messages: a check that they work, no counts.
//!
//! A scenario is one entry of [`SCENARIOS`]: its name `x`, a function that
//! sets up, warms up and calls `#[inline(never)] fn measure_x`, and its
//! budget. Inputs a caller hands in (the payload vector, the options) are
//! built outside the measured function, so the counts are the library's
//! work; dropping what the call returns is counted, as every caller pays it.

use std::hint::black_box;

use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use natsbridge::envelope::EnvelopeTemplate;
use natsbridge::{
    Bridge, Envelope, EnvelopeView, LazySubscription, Payload, SendOptions, Subscription,
    SystemClock, SystemIds,
};
use natsbridge_test_support::NatsServer;
use natsbridge_test_support::stats::{Stats, stats};
use tokio::runtime::Runtime;

/// Messages counted per scenario.
const N: usize = 2_000;

/// Messages run before the counted ones, so that buffers, the allocator's
/// pools and the id generator are in their steady state.
const WARM_UP: usize = 500;

/// The subject of every message (the 128 B rows of the `nats` bench).
const SUBJECT: &str = "bench.throughput";

/// One measured path.
struct Scenario {
    /// `measure_<name>` is the function callgrind counts.
    name: &'static str,
    /// What one message does, for the markdown table.
    what: &'static str,
    /// The ceiling, instructions per message; `None` for a row reported
    /// beside a budgeted one for comparison.
    budget: Option<u64>,
    /// A scenario counted before this one whose figure in the same run is
    /// this one's ceiling (the owned receive against the view's).
    within: Option<&'static str>,
    /// Sets up, warms up, then calls `measure_<name>` once for `n`
    /// messages.
    run: fn(usize),
    /// A row that talks to nats-server: counted twice, for the caller's
    /// task alone and with async-nats's connection task (see [`Count`]).
    network: bool,
}

/// What a network row's count includes. The measured function runs on a
/// current-thread runtime, so async-nats's connection task (the one that
/// writes `PUB`s to the socket and parses `MSG`s from it, spawned by
/// `async_nats::connect`) runs inside it too, polled by tokio through
/// `tokio::runtime::task::raw::poll`; the caller's future is polled by
/// `block_on` directly.
#[derive(Clone, Copy, PartialEq)]
enum Count {
    /// Everything the measured function does: the caller's task and the
    /// connection task.
    Whole,
    /// The caller's task alone: collection is toggled off while tokio polls
    /// a spawned task (a second `--toggle-collect` on
    /// `tokio::runtime::task::raw::poll`, nested in the first). What a
    /// `smartsend` or `next().await` costs its caller; the scheduler's own
    /// loop and the I/O driver stay counted.
    CallerTask,
}

/// Every scenario, in the order of the table. Adding one is one entry here
/// and its function.
const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "parse_drop_view",
        what: "parse and drop: `EnvelopeView::parse` (validated, nothing copied), dropped",
        budget: Some(3_000),
        within: None,
        run: parse_drop_view,
        network: false,
    },
    Scenario {
        name: "parse_drop",
        what: "parse and drop, owned: `Envelope::from_json` (every string a `String`, payload decoded), dropped",
        budget: None,
        within: None,
        run: parse_drop,
        network: false,
    },
    Scenario {
        name: "build_serialize",
        what: "build and serialize: `Envelope::write_packed` from borrowed payloads and options (uuid v4 ids, system clock; the JSON in a fresh buffer, dropped)",
        budget: Some(3_500),
        within: None,
        run: build_serialize,
        network: false,
    },
    Scenario {
        name: "pack_to_json",
        what: "build and serialize, owned: `Envelope::pack` + `to_json` (every field a `String`), both dropped",
        budget: None,
        within: None,
        run: pack_to_json,
        network: false,
    },
    Scenario {
        name: "template_serialize",
        what: "build and serialize, prepared: `EnvelopeTemplate::to_json` (as `Bridge::prepare`)",
        budget: Some(3_500),
        within: None,
        run: template_serialize,
        network: false,
    },
    Scenario {
        name: "smartsend",
        what: "`Bridge::smartsend` to nats-server, payloads and options lent (`&[Payload]`, `&SendOptions`, as a sender of many messages keeps them), the returned `Sent` dropped",
        budget: Some(5_000),
        within: None,
        run: smartsend,
        network: true,
    },
    Scenario {
        name: "smartsend_owned",
        what: "`Bridge::smartsend` to nats-server, a fresh `Vec<Payload>` and `SendOptions` handed in per message (their drop counted), the returned `Sent` dropped",
        budget: None,
        within: None,
        run: smartsend_owned,
        network: true,
    },
    Scenario {
        name: "codec_only_send",
        what: "no bridge: `Envelope::write_packed` from the same lent inputs and a raw async-nats publish (the codec-only floor's sender in the `nats` bench)",
        budget: None,
        within: None,
        run: codec_only_send,
        network: true,
    },
    Scenario {
        name: "receive_lazy",
        what: "receive through `Bridge::subscribe_lazy` and read the text (`Incoming::view`, `decode_into` a buffer)",
        budget: Some(5_000),
        within: None,
        run: receive_lazy,
        network: true,
    },
    Scenario {
        name: "codec_only_receive",
        what: "no bridge: a raw async-nats subscription, `EnvelopeView::parse` and the text decoded into a buffer (the codec-only floor's receiver in the `nats` bench)",
        budget: None,
        within: None,
        run: codec_only_receive,
        network: true,
    },
    Scenario {
        name: "receive",
        what: "receive through `Bridge::subscribe` and read the text (`Received`: the message kept, read as `receive_lazy` reads it: `Received::view`, `decode_into` a buffer)",
        budget: None,
        within: Some("receive_lazy"),
        run: receive,
        network: true,
    },
];

/// The message: one 128-byte text payload, as in the `nats` bench.
fn payloads() -> Vec<Payload> {
    vec![Payload::text("message", "x".repeat(128))]
}

/// One message's inputs as a caller of `pack` or `smartsend` hands them in.
fn inputs(n: usize) -> Vec<(Vec<Payload>, SendOptions)> {
    let payloads = payloads();
    (0..n).map(|_| (payloads.clone(), SendOptions::default())).collect()
}

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

// --- parse_drop ----------------------------------------------------------

fn parse_drop(n: usize) {
    let envelope =
        Envelope::pack(SUBJECT, payloads(), SendOptions::default(), &mut SystemIds, &SystemClock);
    let json = envelope.to_json().unwrap();
    parse_all(&json, WARM_UP);
    measure_parse_drop(&json, n);
}

fn parse_all(json: &[u8], n: usize) {
    for _ in 0..n {
        drop(black_box(Envelope::from_json(black_box(json)).unwrap()));
    }
}

#[inline(never)]
fn measure_parse_drop(json: &[u8], n: usize) {
    parse_all(json, n);
}

// --- parse_drop_view -----------------------------------------------------

fn parse_drop_view(n: usize) {
    let envelope =
        Envelope::pack(SUBJECT, payloads(), SendOptions::default(), &mut SystemIds, &SystemClock);
    let json = envelope.to_json().unwrap();
    view_all(&json, WARM_UP);
    measure_parse_drop_view(&json, n);
}

fn view_all(json: &[u8], n: usize) {
    for _ in 0..n {
        drop(black_box(EnvelopeView::parse(black_box(json)).unwrap()));
    }
}

#[inline(never)]
fn measure_parse_drop_view(json: &[u8], n: usize) {
    view_all(json, n);
}

// --- build_serialize -----------------------------------------------------

fn build_serialize(n: usize) {
    // Borrowed inputs: built once, as a caller sending the same shape
    // keeps them (the owned path below consumes a set per message).
    let (payloads, options) = (payloads(), SendOptions::default());
    write_all_packed(&payloads, &options, WARM_UP);
    measure_build_serialize(&payloads, &options, n);
}

fn write_all_packed(payloads: &[Payload], options: &SendOptions, n: usize) {
    for _ in 0..n {
        let mut out = Vec::new();
        Envelope::write_packed(&mut out, SUBJECT, payloads, options, &mut SystemIds, &SystemClock)
            .unwrap();
        black_box(out);
    }
}

#[inline(never)]
fn measure_build_serialize(payloads: &[Payload], options: &SendOptions, n: usize) {
    write_all_packed(payloads, options, n);
}

// --- pack_to_json --------------------------------------------------------

fn pack_to_json(n: usize) {
    pack_all(inputs(WARM_UP));
    measure_pack_to_json(inputs(n));
}

fn pack_all(inputs: Vec<(Vec<Payload>, SendOptions)>) {
    for (payloads, options) in inputs {
        let envelope = Envelope::pack(SUBJECT, payloads, options, &mut SystemIds, &SystemClock);
        black_box(envelope.to_json().unwrap());
    }
}

#[inline(never)]
fn measure_pack_to_json(inputs: Vec<(Vec<Payload>, SendOptions)>) {
    pack_all(inputs);
}

// --- template_serialize --------------------------------------------------

fn template_serialize(n: usize) {
    let template = EnvelopeTemplate::new(SUBJECT, &SendOptions::default()).unwrap();
    let payloads = payloads();
    write_all(&template, &payloads, WARM_UP);
    measure_template_serialize(&template, &payloads, n);
}

fn write_all(template: &EnvelopeTemplate, payloads: &[Payload], n: usize) {
    for _ in 0..n {
        black_box(template.to_json(black_box(payloads), &mut SystemIds, &SystemClock));
    }
}

#[inline(never)]
fn measure_template_serialize(template: &EnvelopeTemplate, payloads: &[Payload], n: usize) {
    write_all(template, payloads, n);
}

// --- smartsend -----------------------------------------------------------

fn smartsend(n: usize) {
    let server = NatsServer::start();
    // One thread: the connection task that writes to the socket runs inside
    // `block_on`, so inside the measured function.
    let runtime = current_thread();
    let bridge = runtime.block_on(Bridge::builder(&server.url()).connect()).unwrap();
    // Lent: built once, as a caller sending the same shape keeps them.
    let (payloads, options) = (payloads(), SendOptions::default());
    runtime.block_on(send_lent(&bridge, &payloads, &options, WARM_UP));
    measure_smartsend(&runtime, &bridge, &payloads, &options, n);
}

async fn send_lent(bridge: &Bridge, payloads: &[Payload], options: &SendOptions, n: usize) {
    for _ in 0..n {
        black_box(bridge.smartsend(SUBJECT, payloads, options).await.unwrap());
    }
    // Written to the socket: nothing of the batch is left for later.
    bridge.flush().await.unwrap();
}

#[inline(never)]
fn measure_smartsend(
    runtime: &Runtime,
    bridge: &Bridge,
    payloads: &[Payload],
    options: &SendOptions,
    n: usize,
) {
    runtime.block_on(send_lent(bridge, payloads, options, n));
}

// --- smartsend_owned -----------------------------------------------------

fn smartsend_owned(n: usize) {
    let server = NatsServer::start();
    let runtime = current_thread();
    let bridge = runtime.block_on(Bridge::builder(&server.url()).connect()).unwrap();
    runtime.block_on(send_all(&bridge, inputs(WARM_UP)));
    measure_smartsend_owned(&runtime, &bridge, inputs(n));
}

async fn send_all(bridge: &Bridge, inputs: Vec<(Vec<Payload>, SendOptions)>) {
    for (payloads, options) in inputs {
        black_box(bridge.smartsend(SUBJECT, payloads, options).await.unwrap());
    }
    bridge.flush().await.unwrap();
}

#[inline(never)]
fn measure_smartsend_owned(
    runtime: &Runtime,
    bridge: &Bridge,
    inputs: Vec<(Vec<Payload>, SendOptions)>,
) {
    runtime.block_on(send_all(bridge, inputs));
}

// --- codec_only_send -----------------------------------------------------

fn codec_only_send(n: usize) {
    let server = NatsServer::start();
    let runtime = current_thread();
    let client = runtime.block_on(async_nats::connect(server.url())).unwrap();
    let (payloads, options) = (payloads(), SendOptions::default());
    runtime.block_on(write_and_publish(&client, &payloads, &options, WARM_UP));
    measure_codec_only_send(&runtime, &client, &payloads, &options, n);
}

async fn write_and_publish(
    client: &async_nats::Client,
    payloads: &[Payload],
    options: &SendOptions,
    n: usize,
) {
    for _ in 0..n {
        let mut json = Vec::new();
        let (ids, clock) = (&mut SystemIds, &SystemClock);
        Envelope::write_packed(&mut json, SUBJECT, payloads, options, ids, clock).unwrap();
        client.publish(SUBJECT, json.into()).await.unwrap();
    }
    client.flush().await.unwrap();
}

#[inline(never)]
fn measure_codec_only_send(
    runtime: &Runtime,
    client: &async_nats::Client,
    payloads: &[Payload],
    options: &SendOptions,
    n: usize,
) {
    runtime.block_on(write_and_publish(client, payloads, options, n));
}

// --- codec_only_receive --------------------------------------------------

fn codec_only_receive(n: usize) {
    let server = NatsServer::start();
    let runtime = current_thread();
    let client = runtime.block_on(async_nats::connect(server.url())).unwrap();
    let mut subscriber = runtime.block_on(client.subscribe(SUBJECT)).unwrap();
    runtime.block_on(client.flush()).unwrap();
    // A round trip: the server has the subscription before anyone publishes.
    runtime.block_on(async { client.request(client.new_inbox(), "".into()).await.ok() });
    let mut text = Vec::with_capacity(256);
    publish_from_child(&server.url(), WARM_UP);
    runtime.block_on(parse_raw(&mut subscriber, &mut text, WARM_UP));
    publish_from_child(&server.url(), n);
    measure_codec_only_receive(&runtime, &mut subscriber, &mut text, n);
}

async fn parse_raw(subscriber: &mut async_nats::Subscriber, text: &mut Vec<u8>, n: usize) {
    for _ in 0..n {
        let message = subscriber.next().await.unwrap();
        let view = EnvelopeView::parse(&message.payload).unwrap();
        text.clear();
        view.payloads()[0].decode_into(text).unwrap();
        assert_eq!(text.len(), 128);
        black_box(&text);
    }
}

#[inline(never)]
fn measure_codec_only_receive(
    runtime: &Runtime,
    subscriber: &mut async_nats::Subscriber,
    text: &mut Vec<u8>,
    n: usize,
) {
    runtime.block_on(parse_raw(subscriber, text, n));
}

// --- receive -------------------------------------------------------------

fn receive(n: usize) {
    let server = NatsServer::start();
    let runtime = current_thread();
    let bridge = runtime.block_on(Bridge::builder(&server.url()).connect()).unwrap();
    let mut subscription = runtime.block_on(bridge.subscribe(SUBJECT)).unwrap();
    runtime.block_on(bridge.connection().sync()).unwrap();
    // The messages come from another process, not counted: this one only
    // reads them, in the measured function.
    let mut text = Vec::with_capacity(256);
    publish_from_child(&server.url(), WARM_UP);
    runtime.block_on(read_all(&mut subscription, &mut text, WARM_UP));
    publish_from_child(&server.url(), n);
    measure_receive(&runtime, &mut subscription, &mut text, n);
}

/// Runs this binary as `--publish URL N`: a separate process (not under
/// callgrind) that sends `n` envelopes with `smartsend` and exits once
/// nats-server has processed them.
fn publish_from_child(url: &str, n: usize) {
    let exe = std::env::current_exe().unwrap();
    let status = Command::new(exe).args(["--publish", url, &n.to_string()]).status().unwrap();
    assert!(status.success(), "the publishing child failed: {status}");
}

fn publish(url: &str, n: usize) {
    current_thread().block_on(async {
        let bridge = Bridge::builder(url).connect().await.unwrap();
        for _ in 0..n {
            bridge.smartsend(SUBJECT, payloads(), SendOptions::default()).await.unwrap();
        }
        // A round trip: the server has routed every message on return.
        bridge.connection().sync().await.unwrap();
    });
}

async fn read_all(subscription: &mut Subscription, text: &mut Vec<u8>, n: usize) {
    for _ in 0..n {
        let received = subscription.next().await.unwrap().unwrap();
        text.clear();
        received.view().payloads()[0].decode_into(text).unwrap();
        assert_eq!(text.len(), 128);
        black_box(&text);
    }
}

#[inline(never)]
fn measure_receive(
    runtime: &Runtime,
    subscription: &mut Subscription,
    text: &mut Vec<u8>,
    n: usize,
) {
    runtime.block_on(read_all(subscription, text, n));
}

// --- receive_lazy --------------------------------------------------------

fn receive_lazy(n: usize) {
    let server = NatsServer::start();
    let runtime = current_thread();
    let bridge = runtime.block_on(Bridge::builder(&server.url()).connect()).unwrap();
    let mut subscription = runtime.block_on(bridge.subscribe_lazy(SUBJECT)).unwrap();
    runtime.block_on(bridge.connection().sync()).unwrap();
    let mut text = Vec::with_capacity(256);
    publish_from_child(&server.url(), WARM_UP);
    runtime.block_on(read_lazily(&mut subscription, &mut text, WARM_UP));
    publish_from_child(&server.url(), n);
    measure_receive_lazy(&runtime, &mut subscription, &mut text, n);
}

async fn read_lazily(subscription: &mut LazySubscription, text: &mut Vec<u8>, n: usize) {
    for _ in 0..n {
        let incoming = subscription.next().await.unwrap();
        let view = incoming.view().unwrap();
        text.clear();
        view.payloads()[0].decode_into(text).unwrap();
        assert_eq!(text.len(), 128);
        black_box(&text);
    }
}

#[inline(never)]
fn measure_receive_lazy(
    runtime: &Runtime,
    subscription: &mut LazySubscription,
    text: &mut Vec<u8>,
    n: usize,
) {
    runtime.block_on(read_lazily(subscription, text, n));
}

// --- the driver ----------------------------------------------------------

/// valgrind: `$VALGRIND`, else on the `PATH`. Missing, the bench fails
/// saying so (the budgets cannot be checked without it).
fn valgrind() -> PathBuf {
    if let Some(path) = std::env::var_os("VALGRIND").filter(|p| !p.is_empty()) {
        return path.into();
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("valgrind"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            eprintln!(
                "instructions: valgrind not found (VALGRIND, PATH): the instruction budgets are \
                 counted by callgrind; install it (`apt-get install valgrind`, or `cargo xtask setup`)"
            );
            std::process::exit(1)
        })
}

/// Where the callgrind files go: `target/callgrind/` (this binary is
/// `target/release/deps/instructions-*`), kept for `callgrind_annotate`.
fn out_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
    let dir = target.join("callgrind");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The instructions callgrind collected, from its `totals:` (or
/// `summary:`) line.
fn collected(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("totals:").or_else(|| l.strip_prefix("summary:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{}: no totals line", file.display()))
}

/// Instructions per message of one callgrind run of `scenario`.
fn count(valgrind: &Path, scenario: &Scenario, what: Count, file: &Path) -> f64 {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(valgrind);
    command
        .arg("--tool=callgrind")
        .arg(format!("--toggle-collect=instructions::measure_{}", scenario.name));
    if what == Count::CallerTask {
        // The toggle also turns collection on for the polls of spawned
        // tasks outside `measure_<name>` (setup, warm-up): the counts are
        // zeroed when it is entered, so only what runs from there on is
        // kept (nothing polls a task after it returns).
        command
            .arg("--toggle-collect=tokio::runtime::task::raw::poll")
            .arg(format!("--zero-before=instructions::measure_{}", scenario.name));
    }
    let out = command
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg(&exe)
        .args(["--scenario", scenario.name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} under callgrind failed: {}\n{}",
        scenario.name,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let total = collected(file);
    assert!(
        total > N as u64,
        "{}: callgrind collected {total} instructions: is `measure_{}` there and #[inline(never)]?",
        scenario.name,
        scenario.name
    );
    total as f64 / N as f64
}

/// The figures recorded before issue 18's work: `scenario, instructions
/// per message, commit` per line, `#` comments.
fn before() -> Vec<(String, f64, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/instructions-before.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((f.first()?.to_string(), f.get(1)?.parse().ok()?, f.get(2)?.to_string()))
        })
        .collect()
}

/// `12,345`.
fn grouped(v: f64) -> String {
    let digits = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One scenario counted `rounds` times one way: per-message figures.
fn counts(valgrind: &Path, dir: &Path, scenario: &Scenario, what: Count, rounds: usize) -> Stats {
    let tag = if what == Count::CallerTask { ".caller" } else { "" };
    let per_message: Vec<f64> = (0..rounds)
        .map(|round| {
            let file = dir.join(format!("instructions-{}{tag}.{round}.out", scenario.name));
            count(valgrind, scenario, what, &file)
        })
        .collect();
    stats(per_message)
}

/// `12,345`, or `12,345 (12,300-12,400)` when the rounds differ.
fn figure(s: &Stats) -> String {
    let (min, max) = (grouped(s.min), grouped(s.max));
    let range = if min == max { String::new() } else { format!(" ({min}-{max})") };
    format!("{}{range}", grouped(s.median))
}

fn drive(quick: bool) {
    let valgrind = valgrind();
    let dir = out_dir();
    let rounds = if quick { 1 } else { 3 };
    let before = before();
    let was = |key: &str| {
        before.iter().find(|(name, ..)| name == key).map_or_else(
            || "-".to_string(),
            |(_, v, commit)| format!("{} (`{commit}`)", grouped(*v)),
        )
    };
    let mut md = format!(
        "## Instruction counts (callgrind)\n\n\
         `cargo bench -p natsbridge --bench instructions` (`cargo xtask bench --only\n\
         instructions` runs only this). Instructions per 128-byte text message, counted by\n\
         valgrind's callgrind: exact and repeatable whatever the machine's load, where the\n\
         timings above and below move with it. Each scenario counts {n} messages inside one\n\
         function (`--toggle-collect=instructions::measure_<scenario>`), after {w} outside it,\n\
         and divides by {n}. The message is the `nats` bench's: one 128-byte text payload,\n\
         default options. Inputs the caller hands in (payload vector, options) are built\n\
         outside the count; dropping what a call returns is counted.\n\n\
         The network rows run on a current-thread tokio runtime and are counted twice.\n\
         **Caller's task** is what the call costs the task that makes it (`smartsend`, or\n\
         `next().await` and the decode): collection is off while tokio polls a spawned task\n\
         (a second, nested `--toggle-collect=tokio::runtime::task::raw::poll`), which here is\n\
         only async-nats's connection task; tokio's scheduler loop and I/O driver stay in.\n\
         The issue's own starting figure (\"`smartsend` about 9,000\") was counted this\n\
         way (at e731ba7 the polls of the `smartsend` future alone count 8,610, the whole\n\
         process 12,524), and the budgets apply to it. **With the connection task** adds what\n\
         async-nats's connection task spends on the message (formatting the `PUB` line and\n\
         copying into its write buffer; parsing the `MSG` line and handing it to the\n\
         subscription): the whole process's cost. The receive rows' messages come from\n\
         another process. Median of {rounds} run(s) (min-max): the network rows move by a\n\
         few instructions with how the socket batches. The files are kept in\n\
         `target/callgrind/` for `callgrind_annotate --inclusive=yes`. Before: the figure\n\
         recorded in `docs/instructions-before.tsv` at the commit given.\n\n\
         | scenario | one message | budget | before | this run | with the connection task | |\n\
         |---|---|---|---|---|---|---|\n",
        n = grouped(N as f64),
        w = grouped(WARM_UP as f64),
    );
    let mut ratios = String::new();
    let mut medians: Vec<(&str, f64)> = Vec::new();
    for scenario in SCENARIOS {
        let budgeted = if scenario.network { Count::CallerTask } else { Count::Whole };
        let s = counts(&valgrind, &dir, scenario, budgeted, rounds);
        let whole =
            scenario.network.then(|| counts(&valgrind, &dir, scenario, Count::Whole, rounds));
        let within = scenario
            .within
            .and_then(|name| medians.iter().find(|(n, _)| *n == name).map(|&(n, v)| (n, v)));
        medians.push((scenario.name, s.median));
        let budget = scenario.budget.map(|b| b as f64).or(within.map(|(_, v)| v));
        println!(
            "{}: {} instructions per message{}, budget {}",
            scenario.name,
            figure(&s),
            whole.as_ref().map_or_else(String::new, |w| format!(
                " (caller's task; {} with the connection task)",
                figure(w)
            )),
            budget.map_or_else(|| "none (for comparison)".into(), grouped)
        );
        let (limit, verdict) = match budget {
            Some(b) => {
                let limit = match within {
                    Some((name, _)) => format!("<= `{name}` ({})", grouped(b)),
                    None => format!("<= {}", grouped(b)),
                };
                (limit, if s.median <= b { "met" } else { "**missed**" })
            }
            None => ("-".to_string(), "for comparison"),
        };
        let (before_key, whole_cell) = match &whole {
            Some(w) => (
                format!("{}:caller", scenario.name),
                format!("{} (before: {})", figure(w), was(scenario.name)),
            ),
            None => (scenario.name.to_string(), "-".to_string()),
        };
        md += &format!(
            "| `{}` | {} | {limit} | {} | {} | {whole_cell} | {verdict} |\n",
            scenario.name,
            scenario.what,
            was(&before_key),
            figure(&s),
        );
        match (within, budget) {
            (Some((name, b)), _) => {
                ratios += &format!(
                    "instructions per message: {} / {name}\t{}\t{}\t{}\t1\t<=\n",
                    scenario.name,
                    s.median / b,
                    s.min / b,
                    s.max / b
                );
            }
            (None, Some(budget)) => {
                ratios += &format!(
                    "instructions per message: {}\t{}\t{}\t{}\t{budget}\t<=\n",
                    scenario.name, s.median, s.min, s.max
                );
            }
            (None, None) => {}
        }
    }
    println!("{md}");
    if let Some(path) = std::env::var_os("NATSBRIDGE_BENCH_OUT") {
        std::fs::write(path, md).unwrap();
    }
    if let Some(path) = std::env::var_os("NATSBRIDGE_BENCH_RATIOS") {
        std::fs::write(path, ratios).unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(0), arg(1), arg(2)) {
        (Some("--publish"), Some(url), Some(n)) => publish(url, n.parse().unwrap()),
        (Some("--scenario"), Some(name), _) => {
            let scenario = SCENARIOS.iter().find(|s| s.name == name).expect("no such scenario");
            (scenario.run)(N);
        }
        _ if args.iter().any(|a| a == "--bench") => drive(args.iter().any(|a| a == "--quick")),
        // `cargo test --benches`: every scenario once, natively, on a few
        // messages.
        _ => {
            for scenario in SCENARIOS {
                (scenario.run)(20);
                eprintln!("instructions: {} ran", scenario.name);
            }
        }
    }
}
