//! Test harness for natsbridge (not published).
//!
//! This crate will start real `nats-server` processes on free loopback ports,
//! with a configuration written per test, and the local file server, and stop
//! them on `Drop`. There is no mock broker anywhere in the test suite.
#![deny(missing_docs)]
