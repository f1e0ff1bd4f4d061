//! Integration tests of the facade against real servers.

mod claimcheck;
mod errors;
mod nats;
mod objectstore;
mod secrets;
mod streams;
mod util;
