//! The Python package (`crates/python`, import name `natsbridge`): built
//! with maturin into the project's `.venv` by `setup`, its pytest suite run
//! by `ci`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Result, root, run};

/// The Python packages the build and the tests of the package need (added
/// to `setup`'s list).
pub(crate) const PACKAGES: &[&str] = &["maturin>=1.16,<2", "pytest"];

/// Set once the package is installed by this process: `setup` runs before
/// many commands, the build need not be checked again each time.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Builds the extension module and installs the package into `.venv`
/// (`maturin develop`: an editable install whose Rust part is built in the
/// workspace's target directory, so a rebuild only compiles what changed).
/// The dev profile: the package's tests need no optimised build, and a cold
/// one takes a fraction of a release build's time.
pub(crate) fn install(venv: &Path) -> Result {
    if INSTALLED.swap(true, Ordering::Relaxed) {
        return Ok(());
    }
    let started = std::time::Instant::now();
    run(Command::new(venv.join("bin/maturin"))
        .current_dir(root())
        .env("VIRTUAL_ENV", venv)
        .args(["develop", "--quiet", "--manifest-path", "crates/python/Cargo.toml"]))?;
    eprintln!(
        "setup: the natsbridge Python package built and installed in {:.0?}",
        started.elapsed()
    );
    Ok(())
}

/// The package's pytest suite against a real nats-server (the venv's) and
/// the project's `natsbridge fileserver` (the CLI's debug build).
pub(crate) fn test() -> Result {
    let venv = root().join(".venv");
    let target =
        std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or(root().join("target"));
    let target = if target.is_absolute() { target } else { root().join(target) };
    install(&venv)?;
    run(crate::cargo().args(["build", "-p", "natsbridge-cli"]))?;
    let cli: PathBuf = target.join("debug/natsbridge");
    run(Command::new(venv.join("bin/python"))
        .current_dir(root())
        .env("NATSBRIDGE_CLI", cli)
        .env("NATSBRIDGE_NATS_SERVER", venv.join("bin/nats-server"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "crates/python/tests"]))
}

/// The package's `--peer` for the interop matrix (`run_peers.py`): the
/// project's Python driver on the package (`tests/interop/package/peer.py`).
pub(crate) fn interop_peer() -> String {
    let python = root().join(".venv/bin/python");
    format!("python-package={} tests/interop/package/peer.py", python.display())
}
