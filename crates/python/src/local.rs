//! The calls that need no I/O, done on the calling thread: `pack_local`
//! (an envelope of direct payloads only, not published here) and
//! `unpack_local` (an envelope with no links). They return the seeds'
//! dicts built straight from the envelope, with no JSON text in between
//! for Python to parse again, or `None` when the call is not theirs to
//! make (a payload that could go by link, a link to fetch, a type Python
//! encodes, bad input): the Python layer then takes its general path, which
//! raises the named errors. So these never raise for a caller's mistake.
//!
//! Small envelopes are the reason: the executor's hop and a `json.loads`
//! of the envelope cost a Python caller more than the whole Rust codec.
//! Large payloads are encoded and decoded with the GIL released, and
//! `bytes` are read and written in place (the buffer of the caller's
//! `bytes` object, a new `bytes` object's buffer decoded into).

use std::sync::LazyLock;

use natsbridge::envelope::bytes::Bytes;
use natsbridge::envelope::{EnvelopeView, PayloadView, RECORD_KEYS, TOP_KEYS, Transport};
use natsbridge::{Envelope, Payload, PayloadType, SendOptions, SystemClock, SystemIds};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyString, PyTuple};
use pyo3::{IntoPyObjectExt, intern};

/// From this many payload bytes on, the work runs with the GIL released
/// (below it, releasing and taking the GIL back costs more than it frees).
const DETACH_BYTES: usize = 64 * 1024;

/// The payload types whose values Rust turns into bytes and back itself.
const BINARY_TYPES: [&str; 4] = ["image", "audio", "video", "binary"];

/// `pack_local(subject, data, size_threshold, fields, max_payload)`, with
/// `fields` the tuple `(broker_url, msg_purpose, sender_name,
/// receiver_name, receiver_id, reply_to, reply_to_msg_id, correlation_id,
/// msg_id, sender_id)`: `(env, env_json_str)` as `smartpack` returns it,
/// when every payload is `text` (a `str`) or binary (a `bytes`) under
/// `size_threshold` and the envelope fits `max_payload`; otherwise `None`.
#[pyfunction]
fn pack_local<'py>(
    py: Python<'py>,
    subject: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
    size_threshold: &Bound<'py, PyAny>,
    fields: &Bound<'py, PyTuple>,
    max_payload: usize,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let text = |v: &Bound<'py, PyAny>| {
        let s = v.cast::<PyString>().ok()?;
        // Most options are empty: no UTF-8 copy to make.
        if s.len().ok()? == 0 {
            return Some(String::new());
        }
        s.to_cow().ok().map(|c| c.into_owned())
    };
    let field = |i: usize| fields.get_item(i).ok();
    let string = |i: usize| text(&field(i)?);
    let optional = |i: usize| {
        let v = field(i)?;
        if v.is_none() { Some(None) } else { text(&v).map(Some) }
    };
    let threshold = if size_threshold.is_instance_of::<PyBool>() {
        None
    } else {
        size_threshold.extract::<usize>().ok()
    };
    let fields = (|| {
        let mut options = SendOptions::new()
            .with_broker_url(string(0)?)
            .with_msg_purpose(string(1)?)
            .with_sender_name(string(2)?)
            .with_receiver_name(string(3)?)
            .with_receiver_id(string(4)?)
            .with_reply_to(string(5)?)
            .with_reply_to_msg_id(string(6)?)
            .with_size_threshold(threshold?)
            .with_is_publish(false);
        options.correlation_id = optional(7)?;
        options.msg_id = optional(8)?;
        options.sender_id = optional(9)?;
        Some((text(subject)?, options))
    })();
    let Some((subject_text, options)) = fields else { return Ok(None) };
    let threshold = options.size_threshold;
    let Some((payloads, names)) = payloads(data, threshold) else { return Ok(None) };
    let total: usize = payloads.iter().map(|p| p.bytes.len()).sum();
    let sizes: Vec<usize> = payloads.iter().map(|p| p.bytes.len()).collect();
    let build =
        move || Envelope::pack_json(&subject_text, payloads, options, &mut SystemIds, &SystemClock);
    let packed = if total >= DETACH_BYTES { py.detach(build) } else { build() };
    // Fails only on metadata that does not serialize; there is none here.
    let Ok((envelope, json)) = packed else { return Ok(None) };
    if json.len() > max_payload {
        return Ok(None);
    }
    let Some(data_strings) = base64_fields(&json, &sizes) else { return Ok(None) };
    let Ok(json_text) = std::str::from_utf8(&json) else { return Ok(None) };
    // The caller's own str objects where the envelope holds their text.
    let given = |i: usize, made: &str| match field(i).filter(|v| !v.is_none()) {
        Some(v) => v,
        None => PyString::new(py, made).into_any(),
    };
    let s = |text: &str| PyString::new(py, text).into_any();
    let env = header_dict(
        py,
        [
            given(7, &envelope.correlation_id),
            given(8, &envelope.msg_id),
            s(&envelope.timestamp),
            subject.clone(),
            given(1, ""),
            given(2, ""),
            given(9, &envelope.sender_id),
            given(3, ""),
            given(4, ""),
            given(5, ""),
            given(6, ""),
            given(0, ""),
        ],
    )?;
    let records = PyList::empty(py);
    let template = RECORD.get_or_try_init(py, || template(py, &RECORD_KEYS))?.bind(py);
    for ((record, data), (dataname, payload_type)) in
        envelope.payloads.iter().zip(data_strings).zip(names)
    {
        let d = template.copy()?;
        d.set_item(intern!(py, "id"), &record.id)?;
        d.set_item(intern!(py, "dataname"), dataname)?;
        d.set_item(intern!(py, "payload_type"), payload_type)?;
        d.set_item(intern!(py, "transport"), intern!(py, "direct"))?;
        d.set_item(intern!(py, "encoding"), intern!(py, "base64"))?;
        d.set_item(intern!(py, "size"), record.size())?;
        d.set_item(intern!(py, "data"), &json_text[data])?;
        records.append(d)?;
    }
    env.set_item(intern!(py, "payloads"), records)?;
    let json_str = PyString::new(py, json_text);
    Ok(Some(PyTuple::new(py, [env.into_any(), json_str.into_any()])?))
}

/// A payload's `dataname` and type, the caller's own `str` objects.
type Names<'py> = (Bound<'py, PyString>, Bound<'py, PyString>);

/// The payloads of `data` when each is one this module packs, all under
/// `threshold`, and each one's `dataname` and type as the caller's objects.
fn payloads<'py>(
    data: &Bound<'py, PyAny>,
    threshold: usize,
) -> Option<(Vec<Payload>, Vec<Names<'py>>)> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = data.cast::<PyList>() {
        list.iter().collect()
    } else {
        data.cast::<PyTuple>().ok()?.iter().collect()
    };
    let mut out = Vec::with_capacity(items.len());
    let mut names = Vec::with_capacity(items.len());
    for item in items {
        let item = item.cast_into::<PyTuple>().ok()?;
        if item.len() != 3 {
            return None;
        }
        let dataname_object = item.get_item(0).ok()?.cast_into::<PyString>().ok()?;
        let type_object = item.get_item(2).ok()?.cast_into::<PyString>().ok()?;
        let payload_type = type_object.to_cow().ok()?;
        let payload_type = &*payload_type;
        let value = item.get_item(1).ok()?;
        let bytes = if payload_type == "text" {
            // A str with lone surrogates does not encode: Python's path says so.
            Bytes::from(value.cast::<PyString>().ok()?.to_cow().ok()?.into_owned().into_bytes())
        } else if BINARY_TYPES.contains(&payload_type) && value.is_instance_of::<PyBytes>() {
            // The caller's bytes object itself, kept alive by the payload.
            Bytes::from_owner(value.extract::<PyBackedBytes>().ok()?)
        } else {
            return None;
        };
        if bytes.len() >= threshold {
            return None;
        }
        out.push(Payload::new(
            dataname_object.to_cow().ok()?.into_owned(),
            PayloadType::from_wire(payload_type),
            bytes,
        ));
        names.push((dataname_object, type_object));
    }
    Some((out, names))
}

/// Where each record's `data` string is in `json`, an envelope this module
/// wrote with direct records of `sizes` bytes, in order. The key's quotes
/// can only be structural (a quote inside a string is escaped), the
/// records come in order, and padded base64 of `n` bytes is `4 * ceil(n /
/// 3)` characters long, so each is found without scanning the payload.
fn base64_fields(json: &[u8], sizes: &[usize]) -> Option<Vec<std::ops::Range<usize>>> {
    const KEY: &[u8] = b"\"data\":\"";
    static FINDER: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(KEY));
    let finder = &*FINDER;
    let mut at = 0;
    let mut out = Vec::with_capacity(sizes.len());
    for &size in sizes {
        let start = at + finder.find(&json[at..])? + KEY.len();
        let end = start + size.div_ceil(3) * 4;
        if json.get(end) != Some(&b'"') {
            return None;
        }
        out.push(start..end);
        at = end;
    }
    Some(out)
}

/// Dicts with the keys above, copied for each new one: a copy is sized
/// once, where filling an empty dict grows it twice.
static ENVELOPE: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static RECORD: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

fn template(py: Python<'_>, keys: &[&str]) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    for key in keys {
        d.set_item(PyString::intern(py, key), py.None())?;
    }
    Ok(d.unbind())
}

/// The envelope dict with the fields before `metadata`, in order, and
/// `metadata` empty (`payloads` is left for the caller to set).
fn header_dict<'py>(
    py: Python<'py>,
    values: [Bound<'py, PyAny>; 12],
) -> PyResult<Bound<'py, PyDict>> {
    let d = ENVELOPE.get_or_try_init(py, || template(py, &TOP_KEYS))?.bind(py).copy()?;
    let keys = [
        intern!(py, "correlation_id"),
        intern!(py, "msg_id"),
        intern!(py, "timestamp"),
        intern!(py, "send_to"),
        intern!(py, "msg_purpose"),
        intern!(py, "sender_name"),
        intern!(py, "sender_id"),
        intern!(py, "receiver_name"),
        intern!(py, "receiver_id"),
        intern!(py, "reply_to"),
        intern!(py, "reply_to_msg_id"),
        intern!(py, "broker_url"),
    ];
    for (key, value) in keys.into_iter().zip(values) {
        d.set_item(key, value)?;
    }
    d.set_item(intern!(py, "metadata"), PyDict::new(py))?;
    Ok(d)
}

/// `unpack_local(msg)`: the envelope dict `smartunpack` returns, when `msg`
/// (a `bytes`, or anything whose `.data` is one) is an envelope with no
/// metadata, no keys beyond the schema's and no links, whose payloads are
/// `text`, `dictionary`, `jsontable`, binary or of a type the package does
/// not know (kept as `bytes`) and decode as such; otherwise `None`.
#[pyfunction]
fn unpack_local<'py>(
    py: Python<'py>,
    msg: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let data;
    let body = if msg.is_instance_of::<PyBytes>() {
        msg
    } else {
        match msg.getattr(intern!(py, "data")) {
            Ok(d) if d.is_instance_of::<PyBytes>() => {
                data = d;
                &data
            }
            _ => return Ok(None),
        }
    };
    let body = body.cast::<PyBytes>()?.as_bytes();
    let Ok(view) = EnvelopeView::parse(body) else { return Ok(None) };
    if view.metadata_json().trim() != "{}" || view.extra().next().is_some() {
        return Ok(None);
    }
    let records = PyList::empty(py);
    let mut scratch = Vec::new();
    for payload in view.payloads() {
        if payload.transport() != Transport::Direct {
            return Ok(None);
        }
        let payload_type = payload.payload_type_name();
        let value = match payload_type {
            "text" => {
                scratch.clear();
                if payload.decode_into(&mut scratch).is_err() {
                    return Ok(None);
                }
                let Ok(text) = std::str::from_utf8(&scratch) else { return Ok(None) };
                PyString::new(py, text).into_any()
            }
            "dictionary" | "jsontable" => {
                scratch.clear();
                if payload.decode_into(&mut scratch).is_err() {
                    return Ok(None);
                }
                match json_loads(py)?.call1((PyBytes::new(py, &scratch),)) {
                    Ok(value) => value,
                    Err(_) => return Ok(None),
                }
            }
            "arrowtable" | "table" => return Ok(None),
            _ => match bytes_of(py, payload) {
                Some(bytes) => bytes.into_any(),
                None => return Ok(None),
            },
        };
        let item = (payload.dataname(), value, payload_type).into_bound_py_any(py)?;
        records.append(item)?;
    }
    let s = |text: &str| PyString::new(py, text).into_any();
    let v = &view;
    let env = header_dict(
        py,
        [
            s(v.correlation_id()),
            s(v.msg_id()),
            s(v.timestamp()),
            s(v.send_to()),
            s(v.msg_purpose()),
            s(v.sender_name()),
            s(v.sender_id()),
            s(v.receiver_name()),
            s(v.receiver_id()),
            s(v.reply_to()),
            s(v.reply_to_msg_id()),
            s(v.broker_url()),
        ],
    )?;
    env.set_item(intern!(py, "payloads"), records)?;
    Ok(Some(env))
}

/// A direct payload's bytes as a new `bytes` object, decoded straight into
/// its buffer (with the GIL released when large); `None` when its base64
/// does not decode in one strict pass (the general path reads it).
fn bytes_of<'py>(py: Python<'py>, payload: &PayloadView<'_>) -> Option<Bound<'py, PyBytes>> {
    let text = payload.base64()?;
    let len = base64_simd::STANDARD.decoded_length(text).ok()?;
    let decode = |out: &mut [u8]| {
        base64_simd::STANDARD.decode(text, base64_simd::Out::from_slice(out)).map(|d| d.len())
    };
    let made = PyBytes::new_with(py, len, |out| {
        // The new object is ours alone until returned: no other thread can
        // see its buffer while we write it without the GIL.
        let written = if len >= DETACH_BYTES { py.detach(|| decode(out)) } else { decode(out) };
        match written {
            Ok(n) if n == len => Ok(()),
            _ => Err(pyo3::exceptions::PyValueError::new_err("base64")),
        }
    });
    made.ok()
}

/// Python's `json.loads`, looked up once.
fn json_loads(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOADS.import(py, "json", "loads")
}

/// Adds this module's functions to `natsbridge._native`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pack_local, m)?)?;
    m.add_function(wrap_pyfunction!(unpack_local, m)?)?;
    Ok(())
}
