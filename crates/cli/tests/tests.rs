//! End-to-end tests of the `natsbridge` binary.

mod cluster;
mod connection;
mod habits;
mod inspect;
mod install;
mod nats;
mod offline;
mod reply;
mod security;
mod show;
mod stopping;
mod stores;
mod util;
