//! End-to-end tests of the `natsbridge` binary.

mod connection;
mod nats;
mod offline;
mod util;
