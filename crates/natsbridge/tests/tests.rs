//! Integration tests of the facade against real servers.

mod claimcheck;
mod cluster;
mod errors;
mod jetstream_cluster;
mod nats;
mod objectstore;
mod secrets;
mod streams;
mod util;
