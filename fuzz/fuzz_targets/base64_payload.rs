//! Any bytes as the `data` of a direct payload: the base64 decoder (SIMD
//! fast path, then the forgiving one for line breaks) accepts or names the
//! bad byte, never panics, and the bytes it accepts re-encode to a message
//! that decodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natsbridge_envelope_core::{Body, Envelope};

const HEAD: &[u8] = br#"{"payloads":[{"dataname":"x","payload_type":"binary","transport":"direct","data":""#;
const TAIL: &[u8] = br#""}]}"#;

fuzz_target!(|data: &[u8]| {
    let mut message = Vec::with_capacity(HEAD.len() + data.len() + TAIL.len());
    message.extend_from_slice(HEAD);
    message.extend_from_slice(data);
    message.extend_from_slice(TAIL);
    let Ok(envelope) = Envelope::from_json(&message) else { return };
    let Some(Body::Direct(bytes)) = envelope.payloads.first().map(|p| &p.body) else {
        panic!("a direct record decoded to something else");
    };
    let json = envelope.to_json().expect("an accepted envelope serializes");
    let again = Envelope::from_json(&json).expect("what we write we read");
    assert_eq!(again.payloads[0].bytes(), Some(bytes));
});
