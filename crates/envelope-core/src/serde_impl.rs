//! `serde` support, for envelopes embedded in other serialized structures.
//!
//! [`Envelope::to_json`] and [`Envelope::from_json`] are the fast paths and
//! what the bridge uses on the wire; these impls produce and accept the same
//! JSON and validate through the same code, so either path reads what the
//! other wrote.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::Result;
use crate::envelope::{Body, Envelope, PayloadRecord};
use crate::prelude::*;
use crate::read::{DataText, Field, HEADER_STRINGS, RawRecord, SizeValue, TOP_KEYS, header_field};

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn str_value(v: Value, field: Field) -> Result<String> {
    match v {
        Value::String(s) => Ok(s),
        Value::Null => Ok(String::new()),
        other => Err(field.malformed(format!("expected a string, found {}", describe(&other)))),
    }
}

fn size_value(v: &Value) -> SizeValue {
    match v {
        Value::Null => SizeValue::Null,
        Value::Number(n) => match n.as_u64() {
            Some(n) => SizeValue::Int(n),
            None => crate::read::size_from_number_text(&n.to_string())
                .unwrap_or(SizeValue::Bad("expected a non-negative integer, found another number")),
        },
        Value::String(_) => SizeValue::Bad("expected a non-negative integer, found a string"),
        Value::Array(_) => SizeValue::Bad("expected a non-negative integer, found an array"),
        Value::Object(_) => SizeValue::Bad("expected a non-negative integer, found an object"),
        Value::Bool(_) => SizeValue::Bad("expected a non-negative integer, found a boolean"),
    }
}

fn record_from_value(index: usize, v: Value) -> Result<PayloadRecord> {
    let Value::Object(map) = v else {
        return Err(Field::record(index, "")
            .malformed(format!("expected an object, found {}", describe(&v))));
    };
    let mut raw = RawRecord::default();
    let mut extra = Map::new();
    for (key, value) in map {
        let f = |name| Field::record(index, name);
        let text = |value, name| str_value(value, f(name)).map(|s| Some(Cow::Owned(s)));
        match key.as_str() {
            "id" => raw.id = text(value, "id")?,
            "dataname" => raw.dataname = text(value, "dataname")?,
            "payload_type" => raw.payload_type = text(value, "payload_type")?,
            "transport" => raw.transport = text(value, "transport")?,
            "encoding" => raw.encoding = text(value, "encoding")?,
            "size" => raw.size = Some(size_value(&value)),
            "data" => match value {
                Value::String(s) => raw.data = Some(DataText::Text(Cow::Owned(s))),
                other => {
                    return Err(f("data")
                        .malformed(format!("expected a string, found {}", describe(&other))));
                }
            },
            _ => {
                extra.insert(key, value);
            }
        }
    }
    let mut record = raw.finish(index, true, Vec::new())?.into_record()?;
    record.extra = extra;
    Ok(record)
}

impl Envelope {
    /// Builds an envelope from an already parsed JSON object, validating it
    /// exactly as [`Envelope::from_json`] does.
    pub fn from_json_object(map: Map<String, Value>) -> Result<Envelope> {
        let mut env = Envelope::default();
        let mut payloads = None;
        for (key, value) in map {
            if let Some(k) = TOP_KEYS[..HEADER_STRINGS].iter().position(|k| *k == key) {
                *header_field(&mut env, k) = str_value(value, Field::top(TOP_KEYS[k]))?;
                continue;
            }
            match key.as_str() {
                "metadata" => {
                    env.metadata = match value {
                        Value::Object(m) => m,
                        Value::Null => Map::new(),
                        other => {
                            return Err(Field::top("metadata").malformed(format!(
                                "expected an object, found {}",
                                describe(&other)
                            )));
                        }
                    }
                }
                "payloads" => match value {
                    Value::Array(items) => {
                        payloads = Some(
                            items
                                .into_iter()
                                .enumerate()
                                .map(|(i, v)| record_from_value(i, v))
                                .collect::<Result<Vec<_>>>()?,
                        )
                    }
                    other => {
                        return Err(Field::top("payloads")
                            .malformed(format!("expected an array, found {}", describe(&other))));
                    }
                },
                _ => {
                    env.extra.insert(key, value);
                }
            }
        }
        env.payloads = payloads
            .ok_or_else(|| Field::top("payloads").malformed("missing (a required field)"))?;
        Ok(env)
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        Envelope::from_json_object(map).map_err(serde::de::Error::custom)
    }
}

struct Records<'a>(&'a [PayloadRecord]);

impl Serialize for Records<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for rec in self.0 {
            seq.serialize_element(rec)?;
        }
        seq.end()
    }
}

impl Serialize for PayloadRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(7 + self.extra.len()))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("dataname", &self.dataname)?;
        map.serialize_entry("payload_type", self.payload_type.as_str())?;
        map.serialize_entry("transport", self.transport().as_str())?;
        map.serialize_entry("encoding", self.transport().encoding())?;
        map.serialize_entry("size", &self.size())?;
        match &self.body {
            Body::Direct(bytes) => {
                map.serialize_entry("data", &base64_simd::STANDARD.encode_to_string(bytes))?
            }
            Body::Link { url, .. } | Body::Fetched { url, .. } => {
                map.serialize_entry("data", url)?
            }
        }
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(14 + self.extra.len()))?;
        for (key, value) in self.header_fields() {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry("metadata", &self.metadata)?;
        map.serialize_entry("payloads", &Records(&self.payloads))?;
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}
