//! The Python package (`crates/python`, `import natsbridge`) against the
//! seed-transcribed Python peer, and against the Rust facade it binds, in
//! one run (issue 25, item 5).
//!
//! `cargo bench -p natsbridge --bench python [-- --bench [--quick]]`. Each
//! Python side is a process of its own running
//! `crates/python/bench/roundtrip.py` (`smartpack(..., is_publish=False)`
//! then `smartunpack` of its JSON, N times) with `$NATSBRIDGE_PYTHON`, by
//! default the project's `.venv/bin/python`; the package is whichever that
//! interpreter imports (`PYTHONPATH` passes through, as `cargo xtask bench`
//! sets it to a release build of the package). Three cases: 128 B text,
//! 400 KB binary (direct) and 64 MiB binary by link through the crate's
//! Plik-compatible `FileServer` on 127.0.0.1, each process's peak RSS
//! beside it. The Rust side of the 128 B case runs here, in rounds
//! alternating with the package's. Several rounds, the sides' order
//! alternating from round to round; the ratios are taken round by round.
//! Writes a markdown section to `$NATSBRIDGE_BENCH_OUT` and ratio lines to
//! `$NATSBRIDGE_BENCH_RATIOS` when set (as `cargo xtask bench` does).
//!
//! Without `--bench` (`cargo test --benches`) only the Rust side runs, a few
//! messages: no Python is needed.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use natsbridge::claimcheck::http::HttpDownloader;
use natsbridge::envelope::DEFAULT_MAX_PAYLOAD;
use natsbridge::{Payload, SendOptions};
use natsbridge_fileserver::FileServer;
use natsbridge_test_support::stats::{Stats, stats};

/// The three payloads, as `roundtrip.py --case` names them.
#[derive(Clone, Copy)]
enum Case {
    Small,
    Big,
    Link,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Small => "small",
            Case::Big => "big",
            Case::Link => "link",
        }
    }
}

/// One Python process's figures.
struct Side {
    msgs_per_s: f64,
    peak_rss_mb: f64,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One run of `roundtrip.py` with `implementation` (`package` or `seed`).
fn python(implementation: &str, case: Case, count: usize, fileserver: &str) -> Side {
    let root = workspace();
    let interpreter = std::env::var_os("NATSBRIDGE_PYTHON")
        .map_or_else(|| root.join(".venv/bin/python"), PathBuf::from);
    let out = Command::new(&interpreter)
        .arg(root.join("crates/python/bench/roundtrip.py"))
        .args(["--impl", implementation, "--case", case.name(), "--count", &count.to_string()])
        .args(["--fileserver", fileserver])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo xtask setup)", interpreter.display()));
    assert!(
        out.status.success(),
        "roundtrip.py --impl {implementation} --case {}: {}",
        case.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Side {
        msgs_per_s: line["msgs_per_s"].as_f64().unwrap(),
        peak_rss_mb: line["peak_rss_mb"].as_f64().unwrap(),
    }
}

/// The facade's equivalent of the package's 128 B round, messages per
/// second: `natsbridge::pack` (no uploader, not published) of a fresh
/// payload and options, then `natsbridge::smartunpack` of its JSON and the
/// payload read as text, as `smartpack(is_publish=False)` and
/// `smartunpack` do for a Python caller.
async fn rust_round(count: usize, downloader: &HttpDownloader) -> f64 {
    let text = "x".repeat(128);
    let once = || async {
        let payloads = vec![Payload::text("message", text.as_str())];
        let options = SendOptions::new().with_is_publish(false);
        let (_, json) =
            natsbridge::pack("bench.python", payloads, options, None, DEFAULT_MAX_PAYLOAD)
                .await
                .unwrap();
        let envelope = natsbridge::smartunpack(&json, downloader).await.unwrap();
        let value = envelope.payloads[0].bytes().unwrap();
        assert_eq!(std::str::from_utf8(value).unwrap().len(), 128);
        std::hint::black_box(envelope);
    };
    for _ in 0..count / 20 {
        once().await;
    }
    let started = Instant::now();
    for _ in 0..count {
        once().await;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// Every round of one case: the seed peer's and the package's rates and
/// peak RSS, and the package's rate over the seed's.
#[derive(Default)]
struct Rounds {
    seed: Vec<f64>,
    package: Vec<f64>,
    ratio: Vec<f64>,
    seed_rss: Vec<f64>,
    package_rss: Vec<f64>,
}

impl Rounds {
    fn push(&mut self, seed: Side, package: Side) {
        self.ratio.push(package.msgs_per_s / seed.msgs_per_s);
        self.seed.push(seed.msgs_per_s);
        self.package.push(package.msgs_per_s);
        self.seed_rss.push(seed.peak_rss_mb);
        self.package_rss.push(package.peak_rss_mb);
    }
}

fn cell(s: Stats) -> String {
    let f = |v: f64| if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") };
    format!("{} ({}-{})", f(s.median), f(s.min), f(s.max))
}

fn ratio_line(label: &str, s: Stats, target: f64, direction: &str) -> String {
    format!("{label}\t{}\t{}\t{}\t{target}\t{direction}\n", s.median, s.min, s.max)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let quick = std::env::args().any(|a| a == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let downloader = HttpDownloader::new().unwrap();
    if !bench {
        let rate = runtime.block_on(rust_round(200, &downloader));
        println!(
            "python bench smoke: the Rust side ran at {rate:.0} msgs/s (no Python without --bench)"
        );
        return;
    }
    let (rounds, small_n, big_n, link_n) =
        if quick { (3, 5_000, 100, 1) } else { (5, 20_000, 300, 2) };
    let dir = tempfile::tempdir().unwrap();
    let files =
        runtime.block_on(FileServer::builder().dir(dir.path()).bind("127.0.0.1:0")).unwrap();
    let url = files.url().to_owned();
    let (mut small, mut big, mut link) = (Rounds::default(), Rounds::default(), Rounds::default());
    let (mut rust, mut rust_ratio) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which side goes first, so that neither always meets the
        // machine warmer or busier.
        let pair = |case: Case, n: usize| {
            if round % 2 == 0 {
                let seed = python("seed", case, n, &url);
                (seed, python("package", case, n, &url))
            } else {
                let package = python("package", case, n, &url);
                (python("seed", case, n, &url), package)
            }
        };
        let (seed, package) = pair(Case::Small, small_n);
        // The Rust side beside the package's, in turn first and second.
        let package_rate = package.msgs_per_s;
        let rust_rate = runtime.block_on(rust_round(small_n * 10, &downloader));
        rust_ratio.push(rust_rate / package_rate);
        rust.push(rust_rate);
        small.push(seed, package);
        let (seed, package) = pair(Case::Big, big_n);
        big.push(seed, package);
        let (seed, package) = pair(Case::Link, link_n);
        link.push(seed, package);
        eprintln!("python bench: round {} of {rounds} done", round + 1);
    }
    runtime.block_on(files.shutdown());

    let mut md = String::from(HEADER);
    md += &format!(
        "\n{rounds} rounds; per round and side, {small_n} round trips of 128 B, {big_n} of \
         400 KB, {link_n} of 64 MiB (after a few untimed ones).\n\n\
         | case | seed peer msgs/s | package msgs/s | package / seed | target |\n\
         |---|---|---|---|---|\n"
    );
    let mut ratios = String::new();
    for (name, label, r, target) in [
        (
            "128 B text, direct",
            "Python package 128 B smartpack + smartunpack vs seed peer",
            &mut small,
            5.0,
        ),
        ("400 KB binary, direct", "Python package 400 KB direct vs seed peer", &mut big, 2.0),
        ("64 MiB binary, by link", "Python package 64 MB by link vs seed peer", &mut link, 1.0),
    ] {
        let ratio = stats(std::mem::take(&mut r.ratio));
        md += &format!(
            "| {name} | {} | {} | {} | >= {target} |\n",
            cell(stats(std::mem::take(&mut r.seed))),
            cell(stats(r.package.clone())),
            cell(ratio),
        );
        ratios += &ratio_line(label, ratio, target, ">=");
    }
    md += &format!(
        "\nPeak RSS of each process over its whole 64 MiB run (`ru_maxrss`; the \
         interpreter and its imports included), MB: seed peer {}, package {}.\n",
        cell(stats(std::mem::take(&mut link.seed_rss))),
        cell(stats(std::mem::take(&mut link.package_rss))),
    );
    let rust_ratio = stats(rust_ratio);
    md += &format!(
        "\nThe binding's cost: the facade's own 128 B round in Rust (`natsbridge::pack` of a \
         fresh `Payload::text` with `is_publish` false and no uploader, then \
         `natsbridge::smartunpack` of its JSON and the payload read: the calls the \
         package's `smartpack` / `smartunpack` stand for) in this process, against the \
         package's round of the same round.\n\n\
         | Rust msgs/s | package msgs/s | Rust / package | target |\n|---|---|---|---|\n\
         | {} | {} | {} | <= 2.0 |\n",
        cell(stats(rust)),
        cell(stats(small.package)),
        cell(rust_ratio),
    );
    ratios +=
        &ratio_line("Rust facade over the Python package, 128 B round", rust_ratio, 2.0, "<=");
    println!("{md}");
    if let Some(path) = std::env::var_os("NATSBRIDGE_BENCH_OUT") {
        std::fs::write(path, &md).unwrap();
    }
    if let Some(path) = std::env::var_os("NATSBRIDGE_BENCH_RATIOS") {
        std::fs::write(path, ratios).unwrap();
    }
}

const HEADER: &str = "## The Python package against the seed peer and Rust (issue 25)

`cargo bench -p natsbridge --bench python -- --bench`. One round trip is
`env, env_json_str = await smartpack(subject, data, is_publish=False)` then
`await smartunpack(msg)` of that JSON as a message with `.data`, the payload
checked; the package (`import natsbridge`, a release build) and the
seed-transcribed peer (`tests/interop/seed/python/msghandler_seed.py`) each
run `crates/python/bench/roundtrip.py` in a process of their own, in turn,
the order alternating from round to round. The 64 MiB payload goes by link:
uploaded to the crate's Plik-compatible file server on 127.0.0.1 and
downloaded back (the package's Rust uploader and downloader, with size and
SHA-256 checks; the seed's aiohttp handlers). Ratios are taken round by
round.
";
