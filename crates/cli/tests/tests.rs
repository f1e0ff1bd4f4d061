//! End-to-end tests of the `natsbridge` binary.

mod nats;
mod offline;
mod util;
