//! Integration tests of natsbridge-claimcheck-http, against real HTTP servers
//! on 127.0.0.1: natsbridge-fileserver's `FileServer`, and purpose-built fault
//! servers in `util.rs`.

mod util;

mod conformance;
mod download;
mod plik_quirks;
mod secrets;
mod shared;
