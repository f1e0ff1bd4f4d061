//! Golden envelopes: the seeds' example and what each peer platform emits.

use natsbridge_envelope_core::{Body, Envelope, ErrorKind, PayloadType, PayloadValue, Transport};
use serde_json::json;

use crate::util::{fixture, parse_err};

fn seed_image() -> Vec<u8> {
    (0..15433u32).map(|i| ((i * 31 + 7) % 256) as u8).collect()
}

#[test]
fn seed_example_is_read_field_for_field() {
    let env = Envelope::from_json(&fixture("seed_example_valid.json")).unwrap();
    assert_eq!(env.correlation_id, "uuid-v4-string");
    assert_eq!(env.msg_id, "uuid-v4-string");
    assert_eq!(env.timestamp, "2024-01-15T10:30:00Z");
    assert_eq!(env.send_to, "topic/subject");
    assert_eq!(env.msg_purpose, "ACK | NACK | updateStatus | shutdown | chat");
    assert_eq!(env.sender_name, "agent-wine-web-frontend");
    assert_eq!(env.sender_id, "uuid4");
    assert_eq!(env.receiver_name, "agent-backend");
    assert_eq!(env.receiver_id, "uuid4");
    assert_eq!(env.reply_to, "topic");
    assert_eq!(env.reply_to_msg_id, "uuid4");
    assert_eq!(env.broker_url, "nats://localhost:4222");
    assert!(env.metadata.is_empty());
    assert!(env.extra.is_empty());
    assert_eq!(env.parsed_timestamp().unwrap().unix_timestamp(), 1_705_314_600);

    let [image, table] = &env.payloads[..] else { panic!("two payloads expected") };
    assert_eq!(image.id, "uuid4");
    assert_eq!(image.dataname, "login_image");
    assert_eq!(image.payload_type, PayloadType::Image);
    assert_eq!(image.transport(), Transport::Direct);
    assert_eq!(image.size(), Some(15433));
    assert_eq!(image.bytes().unwrap().as_ref(), seed_image().as_slice());

    assert_eq!(table.dataname, "large_table");
    assert_eq!(table.payload_type, PayloadType::Table, "the older name is kept");
    assert!(table.payload_type.is_arrow());
    assert_eq!(
        table.body,
        Body::Link {
            url: "http://localhost:8080/file/UPLOAD_ID/FILE_ID/data.arrow".into(),
            size: Some(524_288)
        }
    );
}

#[test]
fn seed_example_placeholder_data_is_a_base64_error_naming_the_field() {
    // The seed's example carries the words "base64-encoded-string" where the
    // image should be: everything else is well formed, the data is not.
    let json = String::from_utf8(fixture("seed_example.json")).unwrap();
    let err = parse_err(&json);
    assert_eq!(err.kind(), &ErrorKind::Base64 { field: "payloads[0].data".into() });
    assert!(err.to_string().contains("'-'"), "names the bad character: {err}");
}

#[test]
fn julia_envelope_is_read() {
    let env = Envelope::from_json(&fixture("julia.json")).unwrap();
    assert_eq!(env.sender_name, "NATSBridge");
    // Dates.now() has no zone: read as UTC, kept verbatim.
    assert_eq!(env.timestamp, "2024-01-15T10:30:00.123");
    let ts = env.parsed_timestamp().unwrap();
    assert_eq!((ts.unix_timestamp(), ts.millisecond()), (1_705_314_600, 123));
    assert_eq!(env.payloads[0].value().unwrap(), PayloadValue::Text("Hello from Julia ✓".into()));
    assert_eq!(
        env.payloads[1].value().unwrap(),
        PayloadValue::Json(json!({"wifi_ssid": "MyNetwork", "update_interval": 60, "ratio": 42.5}))
    );
    assert_eq!(env.payloads[2].payload_type, PayloadType::Table);
    assert_eq!(env.payloads[2].size(), Some(1_048_576));
    assert!(env.payloads[2].url().unwrap().ends_with("/students.arrow"));
}

#[test]
fn python_envelope_with_spaces_escapes_and_extensions_is_read() {
    let env = Envelope::from_json(&fixture("python.json")).unwrap();
    assert_eq!(env.metadata["trace"], json!([1, 2, {"k": "é"}]));
    assert_eq!(env.extra["extension_key"], json!({"from": "a newer peer"}), "unknown keys kept");
    assert_eq!(env.payloads[0].value().unwrap(), PayloadValue::Text("héllo ✓".into()));
    let blob: Vec<u8> = (0..3).flat_map(|_| 0..=255u8).collect();
    assert_eq!(env.payloads[1].bytes().unwrap().as_ref(), blob.as_slice());
    assert_eq!(
        env.payloads[2].value().unwrap(),
        PayloadValue::Json(json!([{"id": 1, "name": "Alice"}, {"id": 2, "name": "Bob"}]))
    );
    // Written back out, the extension survives.
    let again = Envelope::from_json(&env.to_json().unwrap()).unwrap();
    assert_eq!(again, env);
}

#[test]
fn micropython_base64_with_trailing_newline_is_read() {
    let env = Envelope::from_json(&fixture("micropython.json")).unwrap();
    assert_eq!(
        env.payloads[0].value().unwrap(),
        PayloadValue::Json(json!({"temp": 21.5, "id": "sensor-001"}))
    );
    // A device clock far from now is not an error.
    assert_eq!(env.parsed_timestamp().unwrap().year(), 2000);
}

#[test]
fn every_fixture_reads_the_same_through_serde() {
    for name in ["seed_example_valid.json", "julia.json", "python.json", "micropython.json"] {
        let bytes = fixture(name);
        let fast = Envelope::from_json(&bytes).unwrap();
        let slow: Envelope = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(fast, slow, "{name}");
    }
}

#[test]
fn sent_envelope_has_exactly_the_spec_keys_in_order() {
    let env = crate::util::pack(vec![
        natsbridge_envelope_core::Payload::text("t", "hi"),
        natsbridge_envelope_core::Payload::binary("b", vec![0u8; 4]),
    ]);
    let mut env = env;
    env.payloads[1].set_link("http://127.0.0.1:1/file/a/b/c");
    let json = String::from_utf8(env.to_json().unwrap()).unwrap();
    let keys = [
        "correlation_id",
        "msg_id",
        "timestamp",
        "send_to",
        "msg_purpose",
        "sender_name",
        "sender_id",
        "receiver_name",
        "receiver_id",
        "reply_to",
        "reply_to_msg_id",
        "broker_url",
        "metadata",
        "payloads",
    ];
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let obj = value.as_object().unwrap();
    assert_eq!(obj.len(), keys.len());
    let mut last = 0;
    for k in keys {
        let at = json.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("{k} missing"));
        assert!(at >= last, "{k} out of order");
        last = at;
    }
    let record_keys = ["id", "dataname", "payload_type", "transport", "encoding", "size", "data"];
    for rec in obj["payloads"].as_array().unwrap() {
        let rec = rec.as_object().unwrap();
        assert_eq!(rec.len(), record_keys.len());
        for k in record_keys {
            assert!(rec.contains_key(k), "{k} missing");
        }
    }
    assert_eq!(obj["payloads"][0]["encoding"], "base64");
    assert_eq!(obj["payloads"][0]["data"], "aGk=");
    assert_eq!(obj["payloads"][1]["transport"], "link");
    assert_eq!(obj["payloads"][1]["encoding"], "none");
    assert_eq!(obj["payloads"][1]["size"], 4);
    assert_eq!(obj["msg_purpose"], "chat");
    assert_eq!(obj["sender_name"], "msghandler");
    assert_eq!(obj["metadata"], json!({}));
    assert_eq!(obj["timestamp"], "1970-01-01T00:00:00.000Z");
}

#[test]
fn fetched_payload_is_written_back_as_its_link() {
    let mut env =
        crate::util::pack(vec![natsbridge_envelope_core::Payload::binary("b", vec![9u8; 3])]);
    env.payloads[0].body =
        Body::Fetched { url: "http://127.0.0.1:9/f".into(), bytes: vec![1u8, 2, 3, 4].into() };
    assert_eq!(env.payloads[0].transport(), Transport::Link);
    assert_eq!(env.payloads[0].bytes().unwrap().as_ref(), &[1, 2, 3, 4]);
    let back = Envelope::from_json(&env.to_json().unwrap()).unwrap();
    assert_eq!(
        back.payloads[0].body,
        Body::Link { url: "http://127.0.0.1:9/f".into(), size: Some(4) }
    );
}

#[test]
fn numbers_in_metadata_and_unknown_keys_survive_a_round_trip_exactly() {
    // Found by the envelope fuzz target: without exact float parsing,
    // 5.888888888888002e65 came back as ...001e65 after to_json/from_json.
    let wire = br#"{"msg_id":"m","metadata":{"x":5.888888888888002e65,"y":0.1,"z":-1.7976931348623157e308},"payloads":[],"ext":{"size":5.888888888888002e65,"tiny":5e-324}}"#;
    let envelope = Envelope::from_json(wire).unwrap();
    assert_eq!(envelope.metadata["x"], json!(5.888888888888002e65));
    assert_eq!(envelope.metadata["z"], json!(-1.7976931348623157e308));
    assert_eq!(envelope.extra["ext"]["size"], json!(5.888888888888002e65));
    assert_eq!(envelope.extra["ext"]["tiny"], json!(5e-324));
    let again = Envelope::from_json(&envelope.to_json().unwrap()).unwrap();
    assert_eq!(again, envelope);
}
