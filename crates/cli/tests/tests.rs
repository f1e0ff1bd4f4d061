//! End-to-end tests of the `natsbridge` binary.

mod offline;
mod util;
