//! Any bytes as a received NATS message body: `Envelope::from_json` returns
//! an envelope or an error, never panics; the borrowed `EnvelopeView` accepts
//! exactly what it accepts, reads the same envelope and fails with the same
//! error; what it accepts survives a round trip through `to_json`, and every
//! typed view of it is total.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natsbridge_envelope_core::{Envelope, EnvelopeView};

fuzz_target!(|data: &[u8]| {
    let owned = Envelope::from_json(data);
    let view = EnvelopeView::parse(data);
    let envelope = match (owned, view) {
        (Err(o), Err(v)) => {
            assert_eq!(o, v, "the view fails as the owned parse does");
            return;
        }
        (Ok(envelope), Ok(view)) => {
            assert_eq!(view.to_envelope().as_ref(), Ok(&envelope), "the view reads the same");
            for (record, viewed) in envelope.payloads.iter().zip(view.payloads()) {
                if let Some(bytes) = record.bytes() {
                    let mut buf = Vec::new();
                    viewed.decode_into(&mut buf).expect("a checked payload decodes");
                    assert_eq!(&buf[..], &bytes[..]);
                }
            }
            envelope
        }
        (owned, view) => panic!("one accepted, one rejected: {:?} / {:?}", owned.err(), view.err()),
    };
    let _ = envelope.parsed_timestamp();
    for record in &envelope.payloads {
        let _ = record.value();
    }
    let json = envelope.to_json().expect("an accepted envelope serializes");
    let again = Envelope::from_json(&json).expect("what we write we read");
    assert_eq!(again, envelope);
});
