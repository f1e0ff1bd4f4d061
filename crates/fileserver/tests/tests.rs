//! Integration tests of natsbridge-fileserver, on 127.0.0.1: the Plik API
//! and the PUT area as clients use them (`api`), and a hostile peer or a
//! tampered storage directory (`hostile`).

mod util;

mod api;
mod hostile;
