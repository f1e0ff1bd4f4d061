//! Helpers shared by the test modules.

use natsbridge_envelope_core::{Envelope, EnvelopeView, Error, ErrorKind, Payload, SendOptions};

/// Reads a committed fixture.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Sequential ids, so envelopes are reproducible.
pub(crate) fn seq_ids() -> impl FnMut() -> String {
    let mut n = 0u64;
    move || {
        n += 1;
        format!("00000000-0000-4000-8000-{n:012}")
    }
}

/// A fixed clock.
pub(crate) fn epoch() -> time::OffsetDateTime {
    time::OffsetDateTime::UNIX_EPOCH
}

/// An envelope with the given payloads and default options.
pub(crate) fn pack(payloads: Vec<Payload>) -> Envelope {
    Envelope::pack("test.subject", payloads, SendOptions::default(), &mut seq_ids(), &epoch)
}

/// Parses through every path (the fast reader, the borrowed view and
/// serde) and checks they agree: the view on the whole error, serde on its
/// kind; returns the fast path's error.
pub(crate) fn parse_err(json: &str) -> Error {
    let fast = Envelope::from_json(json.as_bytes()).expect_err("fast path accepted bad input");
    let view = EnvelopeView::parse(json.as_bytes()).expect_err("the view accepted bad input");
    assert_eq!(view, fast, "the view and the owned parse disagree on {json}");
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(json) {
        let slow = Envelope::from_json_object(map).expect_err("serde path accepted bad input");
        assert_eq!(slow.kind(), fast.kind(), "paths disagree on {json}");
    } else {
        assert!(
            matches!(fast.kind(), ErrorKind::NotJson { .. }),
            "input that is not a JSON object must be NotJson, got {fast}"
        );
    }
    fast
}
