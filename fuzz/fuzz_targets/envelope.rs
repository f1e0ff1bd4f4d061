//! Any bytes as a received NATS message body: `Envelope::from_json` returns
//! an envelope or an error, never panics; what it accepts survives a
//! round trip through `to_json`, and every typed view of it is total.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natsbridge_envelope_core::Envelope;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::from_json(data) else { return };
    let _ = envelope.parsed_timestamp();
    for record in &envelope.payloads {
        let _ = record.value();
    }
    let json = envelope.to_json().expect("an accepted envelope serializes");
    let again = Envelope::from_json(&json).expect("what we write we read");
    assert_eq!(again, envelope);
});
