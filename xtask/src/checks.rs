//! The crate-level checks of `cargo xtask ci` that need no server: the
//! facade's features one by one, the docs with warnings denied, unused
//! dependencies, and packaging.

use std::process::Command;

use crate::{Result, cargo, output, run};

/// The facade's features, each checked alone (on top of
/// `--no-default-features`).
const FACADE_FEATURES: &[&str] = &["http", "s3", "objectstore", "tables", "csv"];

/// The cargo-machete release `cargo xtask setup` installs.
pub(crate) const MACHETE_VERSION: &str = "0.9.2";

/// `cargo check` of the facade without default features and with each
/// feature alone: every combination a user may pick compiles. A check, not
/// a build: it costs seconds once the workspace is built.
pub(crate) fn facade_features() -> Result {
    run(cargo().args(["check", "-p", "natsbridge", "--no-default-features"]))?;
    for feature in FACADE_FEATURES {
        run(cargo()
            .args(["check", "-p", "natsbridge", "--no-default-features", "--features"])
            .arg(feature))?;
    }
    Ok(())
}

/// `cargo doc` of every crate of ours with rustdoc's warnings denied
/// (broken intra-doc links, bad HTML, ...), with the features the tests use.
pub(crate) fn docs(features: &[&str]) -> Result {
    run(cargo()
        .args(["doc", "--workspace", "--no-deps", "--lib"])
        .args(features)
        .env("RUSTDOCFLAGS", "-D warnings"))
}

/// Fails when a crate declares a dependency it does not use
/// (cargo-machete, installed by `cargo xtask setup`).
pub(crate) fn unused_dependencies() -> Result {
    // cargo-machete reads a set CARGO_PKG_NAME (which `cargo run` gives
    // xtask, and so its children) as not being run through cargo, and
    // then takes the "machete" argument for a directory to scan.
    run(cargo().arg("machete").env_remove("CARGO_PKG_NAME"))
}

/// Installs cargo-machete at [`MACHETE_VERSION`] unless that version is
/// already there.
pub(crate) fn install_machete() -> Result {
    let installed = output(cargo().args(["machete", "--version"])).unwrap_or_default();
    if installed.trim() != MACHETE_VERSION {
        run(cargo().args(["install", "cargo-machete", "--locked", "--version", MACHETE_VERSION]))?;
    }
    Ok(())
}

/// Packages every publishable crate as crates.io would receive it
/// (metadata, included files, path dependencies with versions), without
/// building the packages again: the workspace's own build and tests cover
/// the code. `cargo package --workspace` would also package the crates with
/// `publish = false`, so they are left out by name.
pub(crate) fn package() -> Result {
    let mut cmd: Command = cargo();
    cmd.args(["package", "--workspace", "--no-verify", "--allow-dirty", "--quiet"]);
    for unpublished in UNPUBLISHED {
        cmd.args(["--exclude", unpublished]);
    }
    run(&mut cmd)
}

/// The workspace's crates with `publish = false`.
const UNPUBLISHED: &[&str] = &[
    "natsbridge-test-support",
    "natsbridge-bench-stats",
    "natsbridge-nostd-check",
    "natsbridge-interop-peer",
    "xtask",
];
