//! Integration tests of natsbridge-table-arrow (one binary, as the house
//! style asks).

mod util;

mod interop;
mod ipc;
mod json;
mod julia;
