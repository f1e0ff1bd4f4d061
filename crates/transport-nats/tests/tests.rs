//! Integration tests against real nats-server processes.

mod auth;
mod core;
mod jetstream;
