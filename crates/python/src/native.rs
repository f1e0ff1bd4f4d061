//! The functions of `natsbridge._native`. Each blocks its calling thread
//! with the GIL released while its work runs on the module's tokio runtime,
//! then takes the GIL back to hand over the result or raise. The Python
//! layer calls them from asyncio's default executor, so a coroutine awaits
//! them without blocking its event loop.
//!
//! No thread of the runtime ever touches Python: only the thread that
//! called in does, and only holding the GIL. (Resolving asyncio futures from
//! runtime threads, as pyo3-async-runtimes does, lets such a thread call
//! into an interpreter that is shutting down: the interpreter crashed at
//! exit about one time in three that way.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use natsbridge::claimcheck::http::{HttpDownloader, PlikUploader};
use natsbridge::claimcheck::{
    DownloadHandlerExt, DownloadRequest, RetryConfig, UploadHandler, UploadSource, safe_file_name,
};
use natsbridge::envelope::bytes::Bytes;
use natsbridge::{
    Body, Bridge, Envelope, Payload, PayloadType, ReceiveLimits, SHA256_KEY, SendOptions,
    SystemClock, SystemIds, sha256_hex,
};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::error::Failure;

pub(crate) type Outcome<T> = Result<T, Failure>;

/// One payload from Python: its name, serialized bytes (Python's own
/// `bytes` object, not copied), type, and the URL a Python upload handler
/// already put it at (`None`: Rust decides direct or link).
pub(crate) type PyPayload = (String, PyBackedBytes, String, Option<String>);

/// The package's own connections, one per broker URL, kept for the life of
/// the process (the seeds open one per call; reusing it is the point).
static BRIDGES: tokio::sync::Mutex<Option<HashMap<String, Bridge>>> =
    tokio::sync::Mutex::const_new(None);
/// Plik uploaders per file server URL (each holds an HTTP client and its
/// connection pool).
static UPLOADERS: Mutex<Option<HashMap<String, Arc<PlikUploader>>>> = Mutex::new(None);
/// A retry setting: tries after the first, base and maximum delay (ms).
type RetryKey = (u32, u64, u64);
/// Downloaders per retry setting.
static DOWNLOADERS: Mutex<Option<HashMap<RetryKey, Arc<HttpDownloader>>>> = Mutex::new(None);

/// The runtime every call's work runs on (connections and HTTP clients
/// live on it between calls).
pub(crate) fn runtime() -> Outcome<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    let built = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("natsbridge-python")
            .build()
    });
    built.as_ref().map_err(|e| Failure {
        class: "Error",
        layer: "io",
        kind: "io".into(),
        message: format!("cannot start the tokio runtime: {e}"),
    })
}

/// Runs `work` on the runtime with the GIL released, then converts its
/// outcome with the GIL.
pub(crate) fn block_on<F, T>(py: Python<'_>, work: F) -> PyResult<Py<PyAny>>
where
    F: Future<Output = Outcome<T>> + Send,
    T: for<'a> FnOnce(Python<'a>) -> PyResult<Py<PyAny>> + Send,
{
    let outcome = py.detach(|| runtime()?.block_on(work));
    match outcome {
        Ok(make) => make(py),
        Err(failure) => Err(failure.into_py(py)),
    }
}

fn uploader(fileserver_url: &str) -> Outcome<Arc<PlikUploader>> {
    let mut cache = UPLOADERS.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(u) = cache.get(fileserver_url) {
        return Ok(u.clone());
    }
    let u = Arc::new(PlikUploader::new(fileserver_url)?);
    cache.insert(fileserver_url.to_owned(), u.clone());
    Ok(u)
}

fn downloader(max_retries: u32, base_delay: u64, max_delay: u64) -> Outcome<Arc<HttpDownloader>> {
    let mut cache = DOWNLOADERS.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    let key = (max_retries, base_delay, max_delay);
    if let Some(d) = cache.get(&key) {
        return Ok(d.clone());
    }
    let retry = RetryConfig::new()
        .with_max_retries(max_retries)
        .with_base_delay(Duration::from_millis(base_delay))
        .with_max_delay(Duration::from_millis(max_delay))
        .with_jitter(true);
    let d = Arc::new(HttpDownloader::builder().retry(retry).build()?);
    cache.insert(key, d.clone());
    Ok(d)
}

async fn bridge(broker_url: &str) -> Outcome<Bridge> {
    let mut cache = BRIDGES.lock().await;
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(b) = cache.get(broker_url) {
        return Ok(b.clone());
    }
    let b = natsbridge::connect(broker_url).await?;
    cache.insert(broker_url.to_owned(), b.clone());
    Ok(b)
}

/// The envelope fields a Python caller sets, as the seeds name them.
#[derive(Debug, FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct PyOptions {
    broker_url: String,
    fileserver_url: String,
    size_threshold: usize,
    correlation_id: Option<String>,
    msg_purpose: String,
    sender_name: String,
    receiver_name: String,
    receiver_id: String,
    reply_to: String,
    reply_to_msg_id: String,
    msg_id: Option<String>,
    sender_id: Option<String>,
}

impl PyOptions {
    pub(crate) fn send_options(&self, is_publish: bool) -> SendOptions {
        let mut options = SendOptions::new()
            .with_msg_purpose(self.msg_purpose.clone())
            .with_sender_name(self.sender_name.clone())
            .with_receiver_name(self.receiver_name.clone())
            .with_receiver_id(self.receiver_id.clone())
            .with_reply_to(self.reply_to.clone())
            .with_reply_to_msg_id(self.reply_to_msg_id.clone())
            .with_broker_url(self.broker_url.clone())
            .with_size_threshold(self.size_threshold)
            .with_is_publish(is_publish);
        options.correlation_id = self.correlation_id.clone();
        options.msg_id = self.msg_id.clone();
        options.sender_id = self.sender_id.clone();
        options
    }
}

/// `pack(subject, payloads, options, *, upload, publish, max_payload)`:
/// builds the envelope and returns its JSON as `str`.
///
/// `upload`: link payloads go to `options["fileserver_url"]` through the
/// Rust Plik uploader (false: none are uploaded here; payloads carrying a
/// URL are links already). `publish`: published on the package's own
/// connection to `options["broker_url"]` (and flushed), whose
/// `max_payload` then bounds the envelope; otherwise `max_payload` does.
#[pyfunction]
#[pyo3(signature = (subject, payloads, options, *, upload, publish, max_payload))]
fn pack<'py>(
    py: Python<'py>,
    subject: String,
    payloads: Vec<PyPayload>,
    options: PyOptions,
    upload: bool,
    publish: bool,
    max_payload: usize,
) -> PyResult<Py<PyAny>> {
    let uploader = if upload {
        Some(uploader(&options.fileserver_url).map_err(|f| f.into_py(py))?)
    } else {
        None
    };
    block_on(py, async move {
        let send = options.send_options(publish);
        let bridge = if publish { Some(bridge(&options.broker_url).await?) } else { None };
        let max_payload = bridge.as_ref().map_or(max_payload, |b| b.connection().max_payload());
        let json = if payloads.iter().any(|p| p.3.is_some()) {
            pack_prelinked(&subject, payloads, send, max_payload)?
        } else {
            let payloads = payloads.into_iter().map(payload).collect();
            let uploader = uploader.as_deref().map(|u| u as &dyn UploadHandler);
            natsbridge::pack(&subject, payloads, send, uploader, max_payload).await?.1
        };
        if let Some(bridge) = bridge {
            bridge
                .connection()
                .publish(&subject, json.clone())
                .await
                .map_err(natsbridge::Error::from)?;
            bridge.flush().await?;
        }
        Ok(move |py: Python<'_>| json_str(py, &json))
    })
}

pub(crate) fn payload((dataname, bytes, payload_type, _): PyPayload) -> Payload {
    Payload::new(dataname, PayloadType::from_wire(&payload_type), Bytes::from_owner(bytes))
}

/// The envelope when a Python upload handler has already put some
/// payloads at URLs: those become links with their size and SHA-256, the
/// rest go direct, and the whole must fit `max_payload`.
fn pack_prelinked(
    subject: &str,
    payloads: Vec<PyPayload>,
    options: SendOptions,
    max_payload: usize,
) -> Outcome<Bytes> {
    let mut links = Vec::new();
    let mut direct = Vec::with_capacity(payloads.len());
    for (index, (dataname, bytes, payload_type, url)) in payloads.into_iter().enumerate() {
        match url {
            Some(url) => {
                links.push((index, url, bytes.len() as u64, sha256_hex(&bytes)));
                direct.push(Payload::new(
                    dataname,
                    PayloadType::from_wire(&payload_type),
                    Bytes::new(),
                ));
            }
            None => direct.push(payload((dataname, bytes, payload_type, None))),
        }
    }
    let mut envelope = Envelope::pack(subject, direct, options, &mut SystemIds, &SystemClock);
    for (index, url, size, hash) in links {
        let record = &mut envelope.payloads[index];
        record.body = Body::Link { url, size: Some(size) };
        record.extra.insert(SHA256_KEY.into(), hash.into());
    }
    let json = envelope.to_json().map_err(natsbridge::Error::from)?;
    if json.len() > max_payload {
        return Err(Failure {
            class: "PayloadTooLargeError",
            layer: "envelope",
            kind: "payload_too_large".into(),
            message: format!(
                "the envelope is {} bytes, over the limit of {max_payload} (the payloads under \
                 size_threshold go direct)",
                json.len()
            ),
        });
    }
    Ok(Bytes::from(json))
}

pub(crate) fn json_str(py: Python<'_>, json: &[u8]) -> PyResult<Py<PyAny>> {
    // The envelope's JSON is UTF-8 by construction.
    let text = std::str::from_utf8(json)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    Ok(PyString::new(py, text).into_any().unbind())
}

/// `unpack(message, *, download, max_retries, base_delay, max_delay)`:
/// parses an envelope and returns `(header_json, payloads)`: the envelope
/// without its payloads as JSON text, and per payload `(dataname, type,
/// transport, bytes or None, url or None, size or None, sha256 or None)`.
///
/// With `download`, link payloads are fetched here (retried, size and
/// SHA-256 checked) and come with their bytes; without it they come with
/// their URL only, for a Python download handler and [`verify`].
#[pyfunction]
#[pyo3(signature = (message, *, download, max_retries, base_delay, max_delay))]
fn unpack<'py>(
    py: Python<'py>,
    message: PyBackedBytes,
    download: bool,
    max_retries: u32,
    base_delay: u64,
    max_delay: u64,
) -> PyResult<Py<PyAny>> {
    let downloader = downloader(max_retries, base_delay, max_delay).map_err(|f| f.into_py(py))?;
    block_on(py, async move {
        let envelope = if download {
            natsbridge::smartunpack_with(&message, downloader.as_ref(), &ReceiveLimits::default())
                .await?
        } else {
            Envelope::from_json(&message).map_err(natsbridge::Error::from)?
        };
        let (header, records) = split(envelope)?;
        Ok(move |py: Python<'_>| records_py(py, &header, records))
    })
}

/// An envelope as its header's JSON (the envelope without payloads) and
/// its payload records, for [`records_py`].
pub(crate) fn split(
    mut envelope: Envelope,
) -> Outcome<(Vec<u8>, Vec<natsbridge::envelope::PayloadRecord>)> {
    let records = std::mem::take(&mut envelope.payloads);
    let header = envelope.to_json().map_err(natsbridge::Error::from)?;
    Ok((header, records))
}

/// `(header_json, payloads)` as [`unpack`] returns them.
pub(crate) fn records_py(
    py: Python<'_>,
    header: &[u8],
    records: Vec<natsbridge::envelope::PayloadRecord>,
) -> PyResult<Py<PyAny>> {
    let items = PyList::empty(py);
    for r in records {
        let bytes = r.bytes().map(|b| PyBytes::new(py, b));
        let sha = r.extra.get(SHA256_KEY).and_then(|v| v.as_str()).map(str::to_owned);
        let item = (
            r.dataname.as_str(),
            r.payload_type.as_str(),
            r.transport().as_str(),
            bytes,
            r.url(),
            r.size(),
            sha,
        );
        items.append(item.into_pyobject(py)?)?;
    }
    let header = json_str(py, header)?;
    Ok(PyTuple::new(py, [header, items.into_any().unbind()])?.into_any().unbind())
}

/// `upload(fileserver_url, dataname, data)`: a Plik one-shot upload with
/// the Rust uploader's retries; returns the download URL.
#[pyfunction]
fn upload<'py>(
    py: Python<'py>,
    fileserver_url: String,
    dataname: String,
    data: PyBackedBytes,
) -> PyResult<Py<PyAny>> {
    let uploader = uploader(&fileserver_url).map_err(|f| f.into_py(py))?;
    block_on(py, async move {
        let name = safe_file_name(&dataname);
        let url = uploader.upload(&name, UploadSource::Bytes(Bytes::from_owner(data))).await?;
        Ok(move |py: Python<'_>| Ok(PyString::new(py, &url).into_any().unbind()))
    })
}

/// `download(url, max_retries, base_delay, max_delay)`: a GET with the Rust
/// downloader's checks (scheme, redirects, size cap) and retries.
#[pyfunction]
fn download<'py>(
    py: Python<'py>,
    url: String,
    max_retries: u32,
    base_delay: u64,
    max_delay: u64,
) -> PyResult<Py<PyAny>> {
    let downloader = downloader(max_retries, base_delay, max_delay).map_err(|f| f.into_py(py))?;
    block_on(py, async move {
        let request = DownloadRequest::with_unknown_size(url);
        let bytes = downloader.download_bytes(&request).await?;
        Ok(move |py: Python<'_>| Ok(PyBytes::new(py, &bytes).into_any().unbind()))
    })
}

/// `verify(dataname, data, size, sha256)`: what a Python download handler
/// brought back against the record's `size` and `sha256` (either may be
/// `None`); raises `IntegrityError`. Hashes without the GIL.
#[pyfunction]
#[pyo3(signature = (dataname, data, size, sha256))]
fn verify(
    py: Python<'_>,
    dataname: &str,
    data: PyBackedBytes,
    size: Option<u64>,
    sha256: Option<String>,
) -> PyResult<()> {
    let integrity = |kind: &str, message: String| Failure {
        class: "IntegrityError",
        layer: "claimcheck",
        kind: kind.into(),
        message: format!("payload {dataname:?}: {message}"),
    };
    if let Some(size) = size.filter(|&s| s != data.len() as u64) {
        let message =
            format!("the download handler brought {} bytes, the record says {size}", data.len());
        return Err(integrity("size_mismatch", message).into_py(py));
    }
    if let Some(expected) = sha256 {
        let actual = py.detach(|| sha256_hex(&data));
        if !actual.eq_ignore_ascii_case(&expected) {
            let message = format!("SHA-256 {actual} of the download, the record says {expected}");
            return Err(integrity("integrity", message).into_py(py));
        }
    }
    Ok(())
}

/// `close()`: drops the package's own NATS connections after flushing
/// them (a later call connects again).
#[pyfunction]
fn close(py: Python<'_>) -> PyResult<Py<PyAny>> {
    block_on(py, async move {
        let bridges = BRIDGES.lock().await.take().unwrap_or_default();
        for bridge in bridges.into_values() {
            bridge.flush().await?;
        }
        Ok(|py: Python<'_>| Ok(py.None()))
    })
}

/// The module `natsbridge._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pack, m)?)?;
    m.add_function(wrap_pyfunction!(unpack, m)?)?;
    m.add_function(wrap_pyfunction!(upload, m)?)?;
    m.add_function(wrap_pyfunction!(download, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(close, m)?)?;
    crate::bridge::register(m)?;
    crate::local::register(m)?;
    m.add("DEFAULT_MAX_PAYLOAD", natsbridge::envelope::DEFAULT_MAX_PAYLOAD)?;
    Ok(())
}
