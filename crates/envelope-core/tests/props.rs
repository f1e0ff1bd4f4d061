//! Property tests: every payload type and every envelope shape round-trips,
//! both codec paths agree, the transport plan always fits or says why, and a
//! template writes exactly what pack + to_json write.

use natsbridge_envelope_core::{
    Body, Envelope, EnvelopeTemplate, ErrorKind, Payload, PayloadRecord, PayloadType, PayloadValue,
    PlanLimits, SendOptions, Transport, plan_transports,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Every known type, and names this peer does not know (some needing JSON
/// escapes), which must be carried as `Other` and written back unchanged.
fn any_payload_type() -> impl Strategy<Value = PayloadType> {
    prop_oneof![
        4 => proptest::sample::select(PayloadType::ALL.to_vec()),
        1 => "[a-z\"\\\u{0}-\u{1f}é]{1,12}".prop_map(|name| PayloadType::from_wire(&name)),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_map() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(".{0,8}", json_value(), 0..3).prop_map(|m| m.into_iter().collect())
}

/// Names that are not keys the spec gives a meaning to.
fn extension_key() -> impl Strategy<Value = String> {
    "x_[a-z]{1,6}"
}

fn record() -> impl Strategy<Value = PayloadRecord> {
    (
        ".{0,40}",
        ".{0,20}",
        any_payload_type(),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::option::of("https?://[a-z0-9.]{1,12}(:[0-9]{1,5})?/[ -~]{0,30}"),
        prop::option::of(0u64..10_000_000),
        prop::collection::btree_map(extension_key(), json_value(), 0..2),
    )
        .prop_map(|(id, dataname, payload_type, bytes, link, size, extra)| PayloadRecord {
            id,
            dataname,
            payload_type,
            body: match link {
                Some(url) => Body::Link { url, size },
                None => Body::Direct(bytes.into()),
            },
            extra: extra.into_iter().collect(),
        })
}

prop_compose! {
    pub(crate) fn envelope()(
        strings in prop::collection::vec(".{0,30}", 12),
        metadata in json_map(),
        payloads in prop::collection::vec(record(), 0..5),
        extra in prop::collection::btree_map(extension_key(), json_value(), 0..2),
    ) -> Envelope {
        let s = |i: usize| strings[i].clone();
        Envelope {
            correlation_id: s(0), msg_id: s(1), timestamp: s(2), send_to: s(3),
            msg_purpose: s(4), sender_name: s(5), sender_id: s(6), receiver_name: s(7),
            receiver_id: s(8), reply_to: s(9), reply_to_msg_id: s(10), broker_url: s(11),
            metadata, payloads, extra: extra.into_iter().collect(),
        }
    }
}

/// JSON numbers go through f64 in both directions, so compare values as
/// serde_json reads them back.
pub(crate) fn normalized(env: &Envelope) -> Envelope {
    let mut env = env.clone();
    let norm = |m: &mut Map<String, Value>| {
        *m = serde_json::from_slice(&serde_json::to_vec(m).unwrap()).unwrap();
    };
    norm(&mut env.metadata);
    norm(&mut env.extra);
    for p in &mut env.payloads {
        norm(&mut p.extra);
    }
    env
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn envelope_round_trips_through_both_paths(env in envelope()) {
        let expected = normalized(&env);
        let json = env.to_json().unwrap();
        prop_assert_eq!(json.len(), env.json_len().unwrap(), "json_len is exact");
        // The output is JSON any peer can read.
        let value: Value = serde_json::from_slice(&json).unwrap();
        prop_assert!(value.is_object());
        let fast = Envelope::from_json(&json).unwrap();
        prop_assert_eq!(&fast, &expected);
        let slow: Envelope = serde_json::from_slice(&json).unwrap();
        prop_assert_eq!(&slow, &expected);
        // serde's writer and ours read back the same.
        let via_serde = serde_json::to_vec(&env).unwrap();
        prop_assert_eq!(&Envelope::from_json(&via_serde).unwrap(), &expected);
    }

    #[test]
    fn text_values_round_trip(s in "\\PC{0,200}", name in ".{0,10}") {
        let p = Payload::text(name, s.clone());
        let back = Envelope::from_json(&crate::util::pack(vec![p]).to_json().unwrap()).unwrap();
        prop_assert_eq!(back.payloads[0].value().unwrap(), PayloadValue::Text(s));
    }

    #[test]
    fn json_values_round_trip(v in json_value(), table in any::<bool>()) {
        let (ty, v) = if table {
            (PayloadType::JsonTable, Value::Array(vec![v]))
        } else {
            (PayloadType::Dictionary, v)
        };
        let v: Value = serde_json::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap();
        let p = Payload::from_value("d", ty.clone(), &PayloadValue::Json(v.clone())).unwrap();
        let back = Envelope::from_json(&crate::util::pack(vec![p]).to_json().unwrap()).unwrap();
        prop_assert_eq!(&back.payloads[0].payload_type, &ty);
        prop_assert_eq!(back.payloads[0].value().unwrap(), PayloadValue::Json(v));
    }

    #[test]
    fn byte_values_round_trip(ty in any_payload_type(), bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        prop_assume!(ty.is_raw() || ty.is_arrow() || !ty.is_known());
        let p = Payload::new("b", ty.clone(), bytes.clone());
        let back = Envelope::from_json(&crate::util::pack(vec![p]).to_json().unwrap()).unwrap();
        prop_assert_eq!(&back.payloads[0].payload_type, &ty);
        let expected = if ty.is_arrow() {
            PayloadValue::Table(bytes.into())
        } else {
            PayloadValue::Bytes(bytes.into())
        };
        prop_assert_eq!(back.payloads[0].value().unwrap(), expected);
    }

    #[test]
    fn base64_with_line_breaks_decodes(bytes in prop::collection::vec(any::<u8>(), 1..500), width in 1usize..80) {
        let b64 = base64_simd::STANDARD.encode_to_string(&bytes);
        let wrapped: Vec<String> = b64.as_bytes().chunks(width)
            .map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
        let data = wrapped.join("\n") + "\n";
        let json = serde_json::json!({"payloads": [{"dataname": "d", "payload_type": "binary",
            "transport": "direct", "size": bytes.len(), "data": data}]});
        let env = Envelope::from_json(json.to_string().as_bytes()).unwrap();
        prop_assert_eq!(env.payloads[0].bytes().unwrap().as_ref(), bytes.as_slice());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Envelope::from_json(&bytes);
    }

    #[test]
    fn plan_fits_or_says_why(
        sizes in prop::collection::vec(0usize..700_000, 1..6),
        threshold in 1usize..800_000,
        max_payload in 2_000usize..2_000_000,
        link_available in any::<bool>(),
    ) {
        let payloads = sizes.iter().enumerate()
            .map(|(i, &n)| Payload::binary(format!("p{i}"), vec![0u8; n])).collect();
        let env = crate::util::pack(payloads);
        let limits = PlanLimits { size_threshold: threshold, max_payload, link_available, ..PlanLimits::default() };
        match plan_transports(&env, &limits) {
            Ok(plan) => {
                let mut sent = env.clone();
                for (rec, t) in sent.payloads.iter_mut().zip(&plan) {
                    let n = rec.size().unwrap() as usize;
                    if *t == Transport::Link {
                        prop_assert!(link_available);
                        // A URL as long as the reserve.
                        rec.set_link("h".repeat(limits.link_url_reserve));
                    } else if link_available {
                        prop_assert!(n < threshold, "direct payload at or over the threshold");
                    }
                }
                prop_assert!(sent.json_len().unwrap() <= max_payload, "planned envelope does not fit");
            }
            Err(err) => {
                let ErrorKind::PayloadTooLarge { limit, envelope_size, .. } = err.kind().clone() else {
                    panic!("wrong kind: {err}");
                };
                prop_assert_eq!(limit, max_payload);
                prop_assert!(envelope_size > max_payload);
                // It really cannot fit: all direct (no handler) or all links.
                let mut best = env.clone();
                if link_available {
                    for rec in &mut best.payloads {
                        rec.set_link("h".repeat(limits.link_url_reserve));
                    }
                    // Links that grow a tiny payload may stay direct.
                    let all_direct = env.json_len().unwrap();
                    prop_assert!(best.json_len().unwrap() > max_payload || all_direct > max_payload);
                } else {
                    prop_assert!(best.json_len().unwrap() > max_payload);
                }
            }
        }
    }
}

fn send_options() -> impl Strategy<Value = SendOptions> {
    (
        prop::collection::vec(".{0,24}", 6),
        prop::collection::vec(prop::option::of("[ -~]{0,40}"), 3),
        json_map(),
    )
        .prop_map(|(s, ids, metadata)| {
            let mut options = SendOptions::new()
                .with_msg_purpose(s[0].clone())
                .with_sender_name(s[1].clone())
                .with_receiver_name(s[2].clone())
                .with_receiver_id(s[3].clone())
                .with_reply_to(s[4].clone())
                .with_reply_to_msg_id(s[5].clone())
                .with_metadata(metadata);
            options.correlation_id = ids[0].clone();
            options.msg_id = ids[1].clone();
            options.sender_id = ids[2].clone();
            options
        })
}

fn payload() -> impl Strategy<Value = Payload> {
    (".{0,20}", any_payload_type(), prop::collection::vec(any::<u8>(), 0..200))
        .prop_map(|(name, ty, bytes)| Payload::new(name, ty, bytes))
}

/// Ids a test can replay: any text, escapes included.
fn id_source(seed: u64) -> impl FnMut() -> String {
    let mut n = seed;
    move || {
        n += 1;
        match n % 3 {
            0 => format!("00000000-0000-4000-8000-{n:012}"),
            1 => format!("id \"{n}\"\\\n"),
            _ => format!("é{n}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_template_writes_what_pack_and_to_json_write(
        subject in ".{0,30}",
        options in send_options(),
        payloads in prop::collection::vec(payload(), 0..5),
        seed in any::<u64>(),
        micros in 0i64..4_000_000_000_000_000,
    ) {
        let now = move || {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap()
        };
        let expected =
            Envelope::pack(&subject, payloads.clone(), options.clone(), &mut id_source(seed), &now)
                .to_json()
                .unwrap();
        let template = EnvelopeTemplate::new(&subject, &options).unwrap();
        let json = template.to_json(&payloads, &mut id_source(seed), &now);
        prop_assert_eq!(String::from_utf8_lossy(&json), String::from_utf8_lossy(&expected));
        // Appending reuses the buffer and adds exactly one envelope.
        let mut out = b"prefix".to_vec();
        template.write(&mut out, &payloads, &mut id_source(seed), &now);
        prop_assert_eq!(&out[6..], &expected[..]);
        prop_assert!(template.capacity_hint(&payloads) > 0);
    }

    #[test]
    fn a_one_off_envelope_is_what_pack_and_to_json_write(
        subject in ".{0,30}",
        options in send_options(),
        broker_url in ".{0,30}",
        payloads in prop::collection::vec(payload(), 0..5),
        seed in any::<u64>(),
        micros in 0i64..4_000_000_000_000_000,
    ) {
        let now = move || {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap()
        };
        let options = options.with_broker_url(broker_url);
        let packed =
            Envelope::pack(&subject, payloads.clone(), options.clone(), &mut id_source(seed), &now);
        let expected = packed.to_json().unwrap();
        // Borrowed parts, ids and timestamp straight into the buffer, appended.
        let mut out = b"prefix".to_vec();
        Envelope::write_packed(&mut out, &subject, &payloads, &options, &mut id_source(seed), &now)
            .unwrap();
        prop_assert_eq!(String::from_utf8_lossy(&out[6..]), String::from_utf8_lossy(&expected));
        // The owned envelope and its JSON in one pass: both the same.
        let (envelope, json) =
            Envelope::pack_json(&subject, payloads, options, &mut id_source(seed), &now).unwrap();
        prop_assert_eq!(&json, &expected);
        prop_assert_eq!(envelope, packed);
    }
}
