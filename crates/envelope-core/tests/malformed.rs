//! The malformed-envelope catalogue: each variant gets the right kind and a
//! message that names the field. Nothing here panics.

use natsbridge_envelope_core::{Envelope, ErrorKind, PayloadType, PayloadValue};
use serde_json::{Value, json};

use crate::util::parse_err;

/// A valid one-payload envelope to mutate.
fn base() -> Value {
    json!({
        "correlation_id": "c", "msg_id": "m", "timestamp": "2024-01-15T10:30:00Z",
        "send_to": "s", "msg_purpose": "chat", "sender_name": "n", "sender_id": "i",
        "receiver_name": "", "receiver_id": "", "reply_to": "", "reply_to_msg_id": "",
        "broker_url": "nats://localhost:4222", "metadata": {},
        "payloads": [{"id": "p", "dataname": "greeting", "payload_type": "text",
                      "transport": "direct", "encoding": "base64", "size": 5, "data": "aGVsbG8="}]
    })
}

fn with(edit: impl FnOnce(&mut Value)) -> String {
    let mut v = base();
    edit(&mut v);
    v.to_string()
}

/// An edit of the base envelope.
type Edit = fn(&mut Value);

fn malformed(field: &str) -> ErrorKind {
    ErrorKind::Malformed { field: field.into() }
}

#[test]
fn the_base_is_valid() {
    let env = Envelope::from_json(base().to_string().as_bytes()).unwrap();
    assert_eq!(env.payloads[0].bytes().unwrap().as_ref(), b"hello");
}

#[test]
fn not_json_reports_the_offset() {
    for (input, offset) in [
        ("", 0),
        ("   ", 3),
        ("[]", 0),
        ("\"envelope\"", 0),
        ("{", 1),
        ("{\"payloads\": []} trailing", 17),
        ("{\"payloads\": [],}", 16),
        ("{\"msg_id\": \"unterminated", 11),
    ] {
        let err = parse_err(input);
        assert_eq!(err.kind(), &ErrorKind::NotJson { offset }, "{input:?}: {err}");
    }
    let err = Envelope::from_json(b"{\"msg_id\": \"\xff\xfe\", \"payloads\": []}").unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotJson { .. }), "invalid UTF-8: {err}");
}

#[test]
fn missing_payloads_is_named() {
    let err = parse_err(&with(|v| {
        v.as_object_mut().unwrap().remove("payloads");
    }));
    assert_eq!(err.kind(), &malformed("payloads"));
    assert!(err.to_string().contains("`payloads`: missing"), "{err}");
    let err = parse_err(&with(|v| v["payloads"] = json!({"not": "an array"})));
    assert_eq!(err.kind(), &malformed("payloads"));
    assert!(err.to_string().contains("expected an array, found an object"), "{err}");
}

#[test]
fn every_required_record_field_is_named_when_missing() {
    for field in ["dataname", "payload_type", "transport", "data"] {
        let err = parse_err(&with(|v| {
            v["payloads"][0].as_object_mut().unwrap().remove(field);
        }));
        assert_eq!(err.kind(), &malformed(&format!("payloads[0].{field}")), "{err}");
    }
}

#[test]
fn optional_fields_may_be_missing_or_null() {
    for field in ["correlation_id", "msg_id", "timestamp", "reply_to", "metadata", "broker_url"] {
        let env = Envelope::from_json(
            with(|v| {
                v.as_object_mut().unwrap().remove(field);
            })
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(env.payloads.len(), 1, "{field}");
        let env = Envelope::from_json(with(|v| v[field] = Value::Null).as_bytes()).unwrap();
        assert_eq!(env.payloads.len(), 1, "{field} null");
    }
    // A record without id, encoding or size still reads.
    let env = Envelope::from_json(
        with(|v| {
            let rec = v["payloads"][0].as_object_mut().unwrap();
            rec.remove("id");
            rec.remove("encoding");
            rec.remove("size");
        })
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(env.payloads[0].bytes().unwrap().as_ref(), b"hello");
}

#[test]
fn wrong_types_are_named() {
    let cases: [(Edit, &str); 7] = [
        (|v| v["msg_id"] = json!(5), "msg_id"),
        (|v| v["sender_name"] = json!(["a"]), "sender_name"),
        (|v| v["metadata"] = json!("meta"), "metadata"),
        (|v| v["payloads"][0] = json!("record"), "payloads[0]"),
        (|v| v["payloads"][0]["dataname"] = json!(true), "payloads[0].dataname"),
        (|v| v["payloads"][0]["size"] = json!("5"), "payloads[0].size"),
        (|v| v["payloads"][0]["data"] = json!(12), "payloads[0].data"),
    ];
    for (edit, field) in cases {
        let err = parse_err(&with(edit));
        assert_eq!(err.kind(), &malformed(field), "{err}");
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[test]
fn impossible_values_are_named() {
    for (edit, field) in [
        (
            (|v| v["payloads"][0]["transport"] = json!("carrier-pigeon")) as fn(&mut Value),
            "payloads[0].transport",
        ),
        (|v| v["payloads"][0]["encoding"] = json!("hex"), "payloads[0].encoding"),
        (|v| v["payloads"][0]["size"] = json!(-1), "payloads[0].size"),
        (|v| v["payloads"][0]["size"] = json!(2.5), "payloads[0].size"),
    ] {
        let err = parse_err(&with(edit));
        assert_eq!(err.kind(), &malformed(field), "{err}");
    }
}

#[test]
fn an_unknown_payload_type_is_kept_and_the_others_still_read() {
    // A newer peer's type: the record is kept by name with its bytes, and
    // the other payloads of the envelope are delivered as usual.
    let json = with(|v| {
        let mut unknown = v["payloads"][0].clone();
        unknown["payload_type"] = json!("hologram");
        unknown["dataname"] = json!("h");
        v["payloads"].as_array_mut().unwrap().insert(0, unknown);
    });
    let env = Envelope::from_json(json.as_bytes()).unwrap();
    assert_eq!(env.payloads.len(), 2);
    assert_eq!(env.payloads[0].payload_type, PayloadType::Other("hologram".into()));
    assert!(!env.payloads[0].payload_type.is_known());
    assert_eq!(env.payloads[0].bytes().unwrap(), env.payloads[1].bytes().unwrap());
    assert!(matches!(env.payloads[0].value().unwrap(), PayloadValue::Bytes(_)));
    assert!(env.payloads[1].payload_type.is_known());
    // Written back under its own name.
    let again: serde_json::Value = serde_json::from_slice(&env.to_json().unwrap()).unwrap();
    assert_eq!(again["payloads"][0]["payload_type"], "hologram");
}

#[test]
fn an_empty_payload_type_is_malformed() {
    let err = parse_err(&with(|v| v["payloads"][0]["payload_type"] = json!("")));
    assert_eq!(err.kind(), &malformed("payloads[0].payload_type"), "{err}");
}

#[test]
fn bad_base64_is_named() {
    for data in ["aGVs*G8=", "a", "aGVsbG8=\u{e9}"] {
        let err = parse_err(&with(|v| v["payloads"][0]["data"] = json!(data)));
        assert_eq!(
            err.kind(),
            &ErrorKind::Base64 { field: "payloads[0].data".into() },
            "{data:?}: {err}"
        );
    }
}

#[test]
fn size_mismatch_reports_both_lengths() {
    let err = parse_err(&with(|v| v["payloads"][0]["size"] = json!(6)));
    assert_eq!(
        err.kind(),
        &ErrorKind::SizeMismatch { field: "payloads[0].size".into(), declared: 6, actual: 5 }
    );
    // A huge declared size is a mismatch, not an allocation.
    let err = parse_err(&with(|v| v["payloads"][0]["size"] = json!(u64::MAX)));
    assert!(matches!(err.kind(), ErrorKind::SizeMismatch { declared: u64::MAX, .. }), "{err}");
}

#[test]
fn empty_link_url_is_named() {
    let err = parse_err(&with(|v| {
        v["payloads"][0]["transport"] = json!("link");
        v["payloads"][0]["encoding"] = json!("none");
        v["payloads"][0]["data"] = json!("");
    }));
    assert_eq!(err.kind(), &malformed("payloads[0].data"));
}

#[test]
fn escaped_base64_and_slashes_decode() {
    // Some encoders escape `/` as `\/` and break base64 into lines.
    let raw = r#"{"payloads":[{"dataname":"d","payload_type":"binary","transport":"direct","size":3,"data":"\/\/\/\/\n"}]}"#;
    let env = Envelope::from_json(raw.as_bytes()).unwrap();
    assert_eq!(env.payloads[0].bytes().unwrap().as_ref(), &[0xff, 0xff, 0xff]);
}

#[test]
fn second_error_in_a_later_record_names_its_index() {
    let err = parse_err(&with(|v| {
        let first = v["payloads"][0].clone();
        let mut second = first.clone();
        second["size"] = json!(1);
        v["payloads"] = json!([first, second]);
    }));
    assert!(
        matches!(err.kind(), ErrorKind::SizeMismatch { field, .. } if field == "payloads[1].size")
    );
}
