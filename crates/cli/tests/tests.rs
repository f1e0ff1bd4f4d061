//! End-to-end tests of the `natsbridge` binary.

mod cluster;
mod connection;
mod habits;
mod help;
mod hints;
mod inspect;
mod install;
mod nats;
mod offline;
mod readme;
mod reply;
mod security;
mod show;
mod stopping;
mod stores;
mod traps;
mod util;
