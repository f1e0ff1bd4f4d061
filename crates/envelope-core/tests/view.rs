//! The borrowed view against the owned parse: the same envelope, field for
//! field, and the same error (kind and detail) for every input either
//! rejects: generated envelopes, their corruptions, arbitrary bytes and the
//! golden fixtures. (The malformed catalogue checks the view through
//! `util::parse_err`.)

use natsbridge_envelope_core::{Envelope, EnvelopeView, Transport};
use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::props::{envelope, normalized};
use crate::util::fixture;

/// Parses `json` both ways and checks they agree: an accepted envelope
/// reads the same through the view's accessors and its owned form, a
/// rejected one fails with the same error.
pub(crate) fn agree(json: &[u8]) -> Result<(), TestCaseError> {
    let owned = Envelope::from_json(json);
    let view = EnvelopeView::parse(json);
    match (&owned, &view) {
        (Err(o), Err(v)) => {
            prop_assert_eq!(o, v, "same error for {:?}", String::from_utf8_lossy(json))
        }
        (Ok(env), Ok(view)) => same_fields(view, env)?,
        _ => prop_assert!(
            false,
            "one accepted, one rejected: owned {:?}, view {:?} for {:?}",
            owned.as_ref().err(),
            view.as_ref().err(),
            String::from_utf8_lossy(json)
        ),
    }
    Ok(())
}

fn same_fields(view: &EnvelopeView<'_>, env: &Envelope) -> Result<(), TestCaseError> {
    prop_assert_eq!(view.correlation_id(), env.correlation_id.as_str());
    prop_assert_eq!(view.msg_id(), env.msg_id.as_str());
    prop_assert_eq!(view.timestamp(), env.timestamp.as_str());
    prop_assert_eq!(view.send_to(), env.send_to.as_str());
    prop_assert_eq!(view.msg_purpose(), env.msg_purpose.as_str());
    prop_assert_eq!(view.sender_name(), env.sender_name.as_str());
    prop_assert_eq!(view.sender_id(), env.sender_id.as_str());
    prop_assert_eq!(view.receiver_name(), env.receiver_name.as_str());
    prop_assert_eq!(view.receiver_id(), env.receiver_id.as_str());
    prop_assert_eq!(view.reply_to(), env.reply_to.as_str());
    prop_assert_eq!(view.reply_to_msg_id(), env.reply_to_msg_id.as_str());
    prop_assert_eq!(view.broker_url(), env.broker_url.as_str());
    prop_assert_eq!(view.header("reply_to"), Some(env.reply_to.as_str()));
    prop_assert_eq!(&view.metadata().unwrap(), &env.metadata);
    let metadata: Map<String, Value> = serde_json::from_str(view.metadata_json()).unwrap();
    prop_assert_eq!(&metadata, &env.metadata);
    let mut extra = Map::new();
    for (k, v) in view.extra() {
        extra.insert(k.to_string(), serde_json::from_str(v).unwrap());
    }
    prop_assert_eq!(&extra, &env.extra);
    prop_assert_eq!(view.payloads().len(), env.payloads.len());
    for (p, r) in view.payloads().iter().zip(&env.payloads) {
        prop_assert_eq!(p.id(), r.id.as_str());
        prop_assert_eq!(p.dataname(), r.dataname.as_str());
        prop_assert_eq!(p.payload_type(), r.payload_type.clone());
        prop_assert_eq!(p.payload_type_name(), r.payload_type.as_str());
        prop_assert_eq!(p.transport(), r.transport());
        prop_assert_eq!(p.size(), r.size());
        prop_assert_eq!(p.url(), r.url());
        match r.transport() {
            Transport::Direct => {
                let mut buf = b"kept".to_vec();
                p.decode_into(&mut buf).unwrap();
                prop_assert_eq!(&buf[..4], b"kept", "decode_into appends");
                prop_assert_eq!(&buf[4..], r.bytes().unwrap().as_ref());
                prop_assert_eq!(&p.bytes().unwrap(), r.bytes().unwrap());
            }
            Transport::Link => {
                prop_assert!(p.decode_into(&mut Vec::new()).is_err());
                prop_assert!(p.base64().is_none());
            }
            other => prop_assert!(false, "no record of transport {:?} is generated", other),
        }
        let mut record_extra = Map::new();
        for (k, v) in p.extra() {
            record_extra.insert(k.to_string(), serde_json::from_str(v).unwrap());
        }
        prop_assert_eq!(&record_extra, &r.extra);
        prop_assert_eq!(&p.to_record().unwrap(), r);
    }
    prop_assert_eq!(&view.to_envelope().unwrap(), env);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_view_reads_what_the_owned_parse_reads(env in envelope()) {
        let json = env.to_json().unwrap();
        let view = EnvelopeView::parse(&json).unwrap();
        same_fields(&view, &normalized(&env))?;
        agree(&json)?;
        // serde's writer (other key order, escapes) too.
        agree(&serde_json::to_vec(&env).unwrap())?;
    }

    #[test]
    fn corrupted_envelopes_fail_alike(
        env in envelope(),
        cuts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        truncate in any::<prop::sample::Index>(),
    ) {
        let json = env.to_json().unwrap();
        // Overwritten bytes: syntax errors, wrong types, bad base64, sizes.
        let mut bad = json.clone();
        for (at, byte) in &cuts {
            let i = at.index(bad.len());
            bad[i] = *byte;
        }
        agree(&bad)?;
        // A cut anywhere.
        agree(&json[..truncate.index(json.len())])?;
    }

    #[test]
    fn arbitrary_bytes_fail_alike(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        agree(&bytes)?;
    }
}

#[test]
fn every_fixture_reads_the_same_through_the_view() {
    for name in [
        "julia.json",
        "micropython.json",
        "python.json",
        "seed_example.json",
        "seed_example_valid.json",
    ] {
        agree(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn the_header_borrows_from_the_input_unless_escaped() {
    let json = br#"{"msg_id":"plain","sender_name":"caf\u00e9","payloads":[]}"#;
    let view = EnvelopeView::parse(json).unwrap();
    let input = json.as_ptr_range();
    assert!(input.contains(&view.msg_id().as_ptr()), "an unescaped string is borrowed");
    assert_eq!(view.sender_name(), "café");
    assert!(!input.contains(&view.sender_name().as_ptr()), "an escaped one is owned");
}

#[test]
fn a_bad_payload_after_a_good_one_is_named_by_its_index() {
    let json = br#"{"payloads":[
        {"dataname":"ok","payload_type":"text","transport":"direct","data":"aGk="},
        {"dataname":"bad","payload_type":"text","transport":"direct","size":9,"data":"aGk="}]}"#;
    let err = EnvelopeView::parse(json).unwrap_err();
    assert_eq!(err, Envelope::from_json(json).unwrap_err());
    assert!(err.to_string().contains("payloads[1].size"), "{err}");
}

#[test]
fn decode_into_appends_base64_with_line_breaks_and_leaves_the_buffer_alone_on_a_link() {
    let json = br#"{"payloads":[
        {"dataname":"mime","payload_type":"binary","transport":"direct","size":11,"data":"aGVsbG8g\nd29y\r\nbGQ="},
        {"dataname":"l","payload_type":"binary","transport":"link","data":"http://h/x"}]}"#;
    let view = EnvelopeView::parse(json).unwrap();
    let mut buf = b">".to_vec();
    view.payloads()[0].decode_into(&mut buf).unwrap();
    assert_eq!(buf, b">hello world");
    assert!(view.payloads()[1].decode_into(&mut buf).is_err());
    assert_eq!(buf, b">hello world", "a failed decode leaves the buffer as it was");
}
