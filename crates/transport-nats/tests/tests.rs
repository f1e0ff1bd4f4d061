//! Integration tests against real nats-server processes.

mod auth;
mod cluster;
mod core;
mod jetstream;
mod objectstore;
