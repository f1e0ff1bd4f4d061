//! Integration tests of natsbridge-claimcheck-http, against real HTTP servers
//! on 127.0.0.1: the crate's own `FileServer`, and purpose-built fault
//! servers in `util.rs`.

mod util;

mod conformance;
mod download;
mod fileserver;
mod hostile;
mod plik_quirks;
mod secrets;
mod shared;
