//! Integration tests of the facade against real servers.

mod claimcheck;
mod nats;
mod objectstore;
mod util;
