//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs each cargo-fuzz target
//! in `fuzz/` for a bounded time, installing cargo-fuzz first if it is
//! missing.
//!
//! The fuzz crate is a workspace of its own with its own target directory
//! (`target-fuzz` beside the main one). cargo-fuzz needs nightly flags; on a
//! stable toolchain `RUSTC_BOOTSTRAP=1` unlocks them. New inputs go to a
//! working corpus in the target directory, so the committed seed corpus
//! (`fuzz/corpus/<target>`) only changes by hand; a crash leaves its input
//! in `fuzz/artifacts/<target>/` and fails the task.

use std::env;
use std::path::PathBuf;
use std::process::Command;

use crate::{Result, root};

/// Every target in `fuzz/fuzz_targets`, in the order they run.
pub(crate) const TARGETS: &[&str] =
    &["envelope", "base64_payload", "arrow_ipc", "jsontable", "plik_reply"];

/// Seconds per target when none are given: the CI budget on a 2-core machine.
pub(crate) const CI_SECONDS: u64 = 60;

pub(crate) fn fuzz(args: &[String]) -> Result {
    let mut seconds = CI_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            seconds = args
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("--seconds needs a whole number of seconds")?;
        } else if TARGETS.contains(&arg.as_str()) {
            targets.push(arg.as_str());
        } else {
            return Err(format!("unknown fuzz target {arg:?} (known: {TARGETS:?})"));
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    run_targets(seconds, &targets)
}

fn run_targets(seconds: u64, targets: &[&str]) -> Result {
    install_cargo_fuzz()?;
    let root = root();
    let target_dir = env::var_os("CARGO_FUZZ_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir_beside_main(&root));
    for target in targets {
        let work = target_dir.join("corpus").join(target);
        std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
        let seeds = root.join("fuzz/corpus").join(target);
        crate::run(
            cargo_fuzz()
                .args(["run", target, "--target-dir"])
                .arg(&target_dir)
                .arg(&work)
                .arg(&seeds)
                .arg("--")
                .arg(format!("-max_total_time={seconds}"))
                // Envelopes and tables of a few hundred KB reach every branch;
                // bigger inputs only slow the search.
                .arg("-max_len=262144")
                .arg("-print_final_stats=1"),
        )?;
    }
    Ok(())
}

/// The main workspace's target directory with `-fuzz` appended (a separate
/// directory: sanitizer flags would rebuild everything in the shared one).
fn target_dir_beside_main(root: &std::path::Path) -> PathBuf {
    let main =
        env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let mut name = main.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "target".into());
    name.push("-fuzz");
    main.with_file_name(name)
}

fn cargo_fuzz() -> Command {
    let mut cmd = crate::cargo();
    cmd.arg("fuzz").current_dir(root().join("fuzz")).env("RUSTC_BOOTSTRAP", "1");
    cmd
}

fn install_cargo_fuzz() -> Result {
    let installed =
        crate::cargo().args(["fuzz", "--version"]).output().is_ok_and(|out| out.status.success());
    if !installed {
        crate::run(crate::cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}
