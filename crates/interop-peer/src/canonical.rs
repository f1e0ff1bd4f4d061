//! Canonical JSON and value digests, as `tests/interop/README.md` ("Digests")
//! defines them, so that every peer's decoded values can be compared.
//!
//! This peer uses the "typed" number model: serde_json (with the
//! `float_roundtrip` feature the workspace turns on) keeps whether a number
//! was written as an integer or as a float, so `88` is digits and `88.0` the
//! float form `8.8e1`; Arrow cells follow their column type the same way.

use natsbridge::{PayloadRecord, PayloadType, sha256_hex};
use serde_json::Value;

const MAX_SAFE: f64 = 9_007_199_254_740_992.0; // 2^53

/// Appends the canonical form of `v`.
pub(crate) fn canon(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            // A float stays a float even when integral (88.0 -> 8.8e1).
            if !n.is_f64() {
                if let Some(i) = n.as_i64().filter(|i| (*i as f64).abs() <= MAX_SAFE) {
                    out.push_str(&i.to_string());
                    return;
                }
                if let Some(u) = n.as_u64().filter(|u| (*u as f64) <= MAX_SAFE) {
                    out.push_str(&u.to_string());
                    return;
                }
            }
            float(n.as_f64().unwrap_or(f64::NAN), out);
        }
        Value::String(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canon(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key).unwrap_or_default());
                out.push(':');
                canon(&map[key], out);
            }
            out.push('}');
        }
    }
}

/// The float form: shortest round-trip digits in scientific notation
/// (`format!("{:e}")` writes exactly that); both zeros are `0e0`.
fn float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("null");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
    } else if f == 0.0 {
        out.push_str("0e0");
    } else {
        out.push_str(&format!("{f:e}"));
    }
}

/// The `value_digest` of a received payload (`None` for a link payload that
/// was not downloaded).
pub(crate) fn value_digest(record: &PayloadRecord) -> anyhow::Result<Option<String>> {
    let Some(bytes) = record.bytes() else { return Ok(None) };
    Ok(match record.payload_type {
        PayloadType::Dictionary | PayloadType::JsonTable => {
            let value: Value = serde_json::from_slice(bytes)?;
            let mut s = String::new();
            canon(&value, &mut s);
            Some(sha256_hex(s.as_bytes()))
        }
        PayloadType::ArrowTable | PayloadType::Table => {
            let table = crate::tables::canonical_table(bytes)?;
            let mut s = String::new();
            canon(&table, &mut s);
            Some(sha256_hex(s.as_bytes()))
        }
        _ => Some(sha256_hex(bytes)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(v: Value) -> String {
        let mut s = String::new();
        canon(&v, &mut s);
        s
    }

    #[test]
    fn numbers_follow_the_readme_examples() {
        assert_eq!(c(json!(95.5)), "9.55e1");
        assert_eq!(c(json!(2.5)), "2.5e0");
        assert_eq!(c(json!(-0.001)), "-1e-3");
        assert_eq!(c(json!(1.5e-7)), "1.5e-7");
        assert_eq!(c(json!(1e20)), "1e20");
        assert_eq!(c(json!(-0.0)), "0e0");
        assert_eq!(c(json!(1u64 << 60)), "1.152921504606847e18");
        assert_eq!(c(json!(42)), "42");
        assert_eq!(c(json!(-7)), "-7");
    }

    #[test]
    fn an_integral_float_keeps_the_float_form() {
        assert_eq!(c(json!(88.0)), "8.8e1");
        assert_eq!(c(json!(1.0)), "1e0");
        assert_eq!(c(json!(100.0)), "1e2");
        let parsed: Value =
            serde_json::from_str(r#"{"a": 88, "b": 88.0, "c": 1e20, "d": 100000000000000000000}"#)
                .unwrap();
        assert_eq!(c(parsed), r#"{"a":88,"b":8.8e1,"c":1e20,"d":1e20}"#);
    }

    #[test]
    fn strings_and_objects() {
        assert_eq!(
            c(json!({"b": 1, "a": [true, null, "x\u{1}/\u{2028}"]})),
            "{\"a\":[true,null,\"x\\u0001/\u{2028}\"],\"b\":1}"
        );
    }
}
