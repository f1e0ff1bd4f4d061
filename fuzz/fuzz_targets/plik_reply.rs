//! Any bytes as a Plik server's answer: the create-upload and file replies,
//! the link built from them (it must stay on the file server, four path
//! segments), the error-redirect `Location` and the 404 text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| natsbridge_claimcheck_http::fuzz_plik_replies(data));
