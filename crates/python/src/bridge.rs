//! `natsbridge._native.NativeBridge` and its subscriptions: the Rust
//! facade's [`Bridge`] for the Python `natsbridge.Bridge` class.
//!
//! The same rule as the module's functions (see `native.rs`): every method
//! blocks its calling thread with the GIL released while the work runs on
//! the module's runtime, and the Python layer calls it from asyncio's
//! default executor. A subscription is read the same way: each
//! [`NativeSubscription::next`] waits on the runtime for at most a short
//! while and returns, so no runtime thread ever calls into Python and an
//! abandoned iteration leaves no executor thread blocked for long.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use natsbridge::claimcheck::DownloadHandler;
use natsbridge::claimcheck::http::{HttpDownloader, HttpPutUploader, S3Uploader};
use natsbridge::transport::{ConnectOptions, NatsContext};
use natsbridge::{
    Bridge, EnvelopeConsumer, Payload, Received, Rejected, SendOptions, Service, ServiceConfig,
    ServiceEndpoint, ServiceRequest, Subscription,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::error::Failure;
use crate::native::{Outcome, PyOptions, PyPayload, block_on, json_str, records_py, split};

/// How to connect, as `natsbridge.Bridge.connect` takes it.
#[derive(Debug, FromPyObject)]
#[pyo3(from_item_all)]
struct PyConnect {
    url: Option<String>,
    context: Option<String>,
    fileserver: Option<String>,
    put_url: Option<String>,
    s3_bucket: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    object_store: Option<String>,
    allow_origins: Option<Vec<String>>,
    name: Option<String>,
    inbox_prefix: Option<String>,
    user: Option<String>,
    password: Option<String>,
    token: Option<String>,
    nkey: Option<String>,
    creds: Option<String>,
    tls_ca: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

fn input(message: String) -> Failure {
    Failure { class: "InvalidInputError", layer: "input", kind: "invalid_input".into(), message }
}

impl PyConnect {
    /// The URL written as the envelopes' `broker_url`, and the connection
    /// options: natscli's context when one is named (its servers, its
    /// credentials), the URL's defaults otherwise, then each option given.
    fn options(self) -> Outcome<(String, ConnectOptions, Self)> {
        let (url, mut options) = match (&self.url, &self.context) {
            (Some(_), Some(context)) => {
                return Err(input(format!(
                    "give url or context, not both (the context {context:?} names its servers)"
                )));
            }
            (_, Some(context)) => {
                let loaded = NatsContext::load(Some(context))
                    .map_err(natsbridge::Error::from)?
                    .ok_or_else(|| input(format!("no NATS context named {context:?}")))?;
                let url = loaded
                    .servers()
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| natsbridge::transport::DEFAULT_URL.to_owned());
                (url, loaded.connect_options().map_err(natsbridge::Error::from)?)
            }
            (Some(url), None) => {
                // natscli's comma-separated list: the client fails over
                // between them; the first is the envelopes' broker_url.
                let mut servers = url.split(',').map(str::trim).filter(|s| !s.is_empty());
                let first = servers.next().ok_or_else(|| input("url is empty".into()))?;
                let options = servers.fold(ConnectOptions::new(first), |o, s| o.server(s));
                (first.to_owned(), options)
            }
            (None, None) => {
                let url = natsbridge::transport::DEFAULT_URL.to_owned();
                (url.clone(), ConnectOptions::new(url))
            }
        };
        if let Some(name) = &self.name {
            options = options.name(name.as_str());
        }
        if let Some(prefix) = &self.inbox_prefix {
            options = options.inbox_prefix(prefix.as_str());
        }
        match (&self.user, &self.password) {
            (Some(user), password) => {
                options = options.user_password(user.as_str(), password.as_deref().unwrap_or(""));
            }
            (None, Some(_)) => return Err(input("password needs user".into())),
            (None, None) => {}
        }
        if let Some(token) = &self.token {
            options = options.token(token.as_str());
        }
        if let Some(seed) = &self.nkey {
            options = options.nkey(seed.as_str());
        }
        if let Some(creds) = &self.creds {
            options = options.creds_file(creds.as_str());
        }
        if let Some(ca) = &self.tls_ca {
            options = options.root_certificates(ca.as_str());
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                options = options.client_certificate(cert.as_str(), key.as_str());
            }
            (None, None) => {}
            _ => return Err(input("tls_cert and tls_key go together".into())),
        }
        Ok((url, options, self))
    }
}

/// The link downloader when a PUT store, an S3 endpoint or origins are given: links are
/// fetched from the stores' origins and the origins given, and from no
/// other (the facade's own choice for a Plik file server alone).
fn downloader(given: &PyConnect) -> Outcome<Arc<dyn DownloadHandler>> {
    let stores = [&given.fileserver, &given.put_url, &given.s3_endpoint].into_iter().flatten();
    let mut builder = HttpDownloader::builder();
    for origin in stores.chain(given.allow_origins.iter().flatten()) {
        builder = builder.allow_origin(origin.as_str());
    }
    Ok(Arc::new(builder.deny_unlisted(true).build()?))
}

/// A connected [`Bridge`].
#[pyclass(module = "natsbridge._native", frozen)]
pub(crate) struct NativeBridge {
    bridge: Bridge,
}

/// A payload list and the seeds' options as the facade takes them (the
/// bridge writes its own `broker_url`).
fn parts(payloads: Vec<PyPayload>, options: &PyOptions) -> (Vec<Payload>, SendOptions) {
    let payloads = payloads.into_iter().map(crate::native::payload).collect();
    let send = options.send_options(true).with_broker_url(natsbridge::envelope::DEFAULT_BROKER_URL);
    (payloads, send)
}

#[pymethods]
impl NativeBridge {
    /// `connect(options)`: connects with the options of
    /// `natsbridge.Bridge.connect` (a dict).
    #[staticmethod]
    fn connect(py: Python<'_>, options: PyConnect) -> PyResult<Py<PyAny>> {
        block_on(py, async move {
            let (url, connect, given) = options.options()?;
            let mut builder = Bridge::builder(&url).connect_options(connect);
            if given.put_url.is_some()
                || given.s3_endpoint.is_some()
                || given.allow_origins.is_some()
            {
                builder = builder.download_handler(downloader(&given)?);
            }
            match (&given.put_url, &given.s3_bucket) {
                (Some(_), Some(_)) => {
                    return Err(input("give put_url or s3_bucket, not both".into()));
                }
                (Some(template), None) => {
                    let put = HttpPutUploader::builder(template.as_str()).build()?;
                    builder = builder.upload_handler(Arc::new(put));
                }
                (None, Some(bucket)) => {
                    let mut s3 = S3Uploader::builder(bucket.as_str());
                    if let Some(endpoint) = &given.s3_endpoint {
                        s3 = s3.endpoint(endpoint.as_str());
                    }
                    if let Some(region) = &given.s3_region {
                        s3 = s3.region(region.as_str());
                    }
                    builder = builder.upload_handler(Arc::new(s3.build()?));
                }
                (None, None) => {}
            }
            if let Some(fileserver) = given.fileserver {
                builder = builder.fileserver(fileserver);
            }
            if let Some(bucket) = given.object_store {
                builder = builder.object_store(bucket);
            }
            let bridge = builder.connect().await?;
            Ok(move |py: Python<'_>| Ok(Py::new(py, NativeBridge { bridge })?.into_any()))
        })
    }

    /// `send(subject, payloads, options, *, jetstream)`: publishes the
    /// envelope (to JetStream, waiting for the stream's ack, with
    /// `jetstream`) and returns `(json, ack)`, `ack` being `(stream,
    /// sequence, duplicate)` or `None`.
    #[pyo3(signature = (subject, payloads, options, *, jetstream))]
    fn send(
        &self,
        py: Python<'_>,
        subject: String,
        payloads: Vec<PyPayload>,
        options: PyOptions,
        jetstream: bool,
    ) -> PyResult<Py<PyAny>> {
        let bridge = self.bridge.clone();
        block_on(py, async move {
            let (payloads, send) = parts(payloads, &options);
            let (sent, ack) = if jetstream {
                let (sent, ack) = bridge.jetstream_send(&subject, payloads, send).await?;
                (sent, Some((ack.stream, ack.sequence, ack.duplicate)))
            } else {
                (bridge.smartsend(&subject, payloads, send).await?, None)
            };
            Ok(move |py: Python<'_>| {
                let json = json_str(py, sent.json())?;
                Ok((json, ack).into_pyobject(py)?.into_any().unbind())
            })
        })
    }

    /// `request(subject, payloads, options, timeout_ms)`: sends a request
    /// and returns the answer as `unpack` does (links fetched and checked).
    fn request(
        &self,
        py: Python<'_>,
        subject: String,
        payloads: Vec<PyPayload>,
        options: PyOptions,
        timeout_ms: u64,
    ) -> PyResult<Py<PyAny>> {
        let bridge = self.bridge.clone();
        block_on(py, async move {
            let (payloads, send) = parts(payloads, &options);
            let timeout = Duration::from_millis(timeout_ms);
            let answer = bridge.request(&subject, payloads, send, timeout).await?;
            let (header, records) = split(answer)?;
            Ok(move |py: Python<'_>| records_py(py, &header, records))
        })
    }

    /// `subscribe(subject, queue)`: a core NATS subscription (in the queue
    /// group `queue` when given), in place on the server when this
    /// returns.
    #[pyo3(signature = (subject, queue=None))]
    fn subscribe(
        &self,
        py: Python<'_>,
        subject: String,
        queue: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let bridge = self.bridge.clone();
        block_on(py, async move {
            let subscription = match &queue {
                Some(group) => bridge.queue_subscribe(&subject, group).await?,
                None => bridge.subscribe(&subject).await?,
            };
            // Returns once the server has the subscription: what another
            // connection publishes after this call reaches it.
            bridge.connection().sync().await.map_err(natsbridge::Error::from)?;
            let source = Source::Core(Box::new(subscription));
            Ok(move |py: Python<'_>| NativeSubscription::create(py, bridge, source))
        })
    }

    /// `consume(stream, durable)`: a JetStream durable pull consumer
    /// (created if missing); each message is acked once decoded, naked for
    /// redelivery when it fails.
    fn consume(&self, py: Python<'_>, stream: String, durable: String) -> PyResult<Py<PyAny>> {
        let bridge = self.bridge.clone();
        block_on(py, async move {
            let consumer = bridge.jetstream_consumer(&stream, &durable).await?;
            let source = Source::JetStream(Box::new(consumer));
            Ok(move |py: Python<'_>| NativeSubscription::create(py, bridge, source))
        })
    }

    /// `service(name, version, description, metadata)`: registers a NATS
    /// service.
    fn service(
        &self,
        py: Python<'_>,
        name: String,
        version: String,
        description: String,
        metadata: std::collections::BTreeMap<String, String>,
    ) -> PyResult<Py<PyAny>> {
        let bridge = self.bridge.clone();
        block_on(py, async move {
            let mut config = ServiceConfig::new(name, version);
            config.description = description;
            config.metadata = metadata;
            let service = bridge.service(config).await?;
            Ok(move |py: Python<'_>| {
                let service = Arc::new(service);
                Ok(Py::new(py, NativeService { service, bridge })?.into_any())
            })
        })
    }

    /// `close()`: flushes what was published. The connection itself
    /// closes when the last handle on it (subscriptions included) is
    /// dropped.
    fn close(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let bridge = self.bridge.clone();
        block_on(py, async move {
            bridge.flush().await?;
            Ok(|py: Python<'_>| Ok(py.None()))
        })
    }
}

/// Where a subscription's messages come from. Both are cancel safe: a
/// wait that times out loses no message, and a message whose links are
/// being fetched stays in the source until the fetch ends.
enum Source {
    Core(Box<Subscription>),
    JetStream(Box<EnvelopeConsumer>),
    /// An endpoint, with its service kept registered while it is read.
    Service {
        endpoint: Box<ServiceEndpoint>,
        _service: Arc<Service>,
    },
}

impl Source {
    /// The next message decoded, or `None` when the source ended.
    async fn next(&mut self, bridge: &Bridge) -> Option<Result<Answer, Box<Rejected>>> {
        let plain = |item: Result<Received, Rejected>| match item {
            Ok(received) => Ok(Answer::Plain { received, bridge: bridge.clone() }),
            Err(rejected) => Err(Box::new(rejected)),
        };
        match self {
            Source::Core(subscription) => subscription.next().await.map(plain),
            Source::JetStream(consumer) => consumer.next().await.map(plain),
            Source::Service { endpoint, .. } => {
                let item = endpoint.next().await?;
                Some(match item {
                    Ok(request) => Ok(Answer::Service(std::sync::Mutex::new(Some(request)))),
                    Err(rejected) => Err(Box::new(rejected)),
                })
            }
        }
    }
}

/// A received envelope and how to answer it.
enum Answer {
    /// With [`Bridge::reply`].
    Plain { received: Received, bridge: Bridge },
    /// With [`ServiceRequest::respond`] (counted in the service's stats),
    /// once: `None` after.
    Service(std::sync::Mutex<Option<ServiceRequest>>),
}

impl Answer {
    /// The envelope as [`records_py`] takes it, and its subject.
    fn split(&self) -> Outcome<(String, Vec<u8>, Vec<natsbridge::envelope::PayloadRecord>)> {
        let read = |received: &Received| -> Outcome<_> {
            let (header, records) = split(received.to_envelope()?)?;
            Ok((received.subject().to_string(), header, records))
        };
        match self {
            Answer::Plain { received, .. } => read(received),
            Answer::Service(request) => {
                let request = request.lock().unwrap_or_else(|e| e.into_inner());
                match request.as_ref() {
                    Some(request) => read(&request.received),
                    None => Err(input("the request was answered already".into())),
                }
            }
        }
    }
}

/// A subscription or consumer, read one message per `next`.
#[pyclass(module = "natsbridge._native", frozen)]
pub(crate) struct NativeSubscription {
    bridge: Bridge,
    source: Arc<tokio::sync::Mutex<Option<Source>>>,
    closed: Arc<AtomicBool>,
}

impl NativeSubscription {
    fn create(py: Python<'_>, bridge: Bridge, source: Source) -> PyResult<Py<PyAny>> {
        let subscription = NativeSubscription {
            bridge,
            source: Arc::new(tokio::sync::Mutex::new(Some(source))),
            closed: Arc::new(AtomicBool::new(false)),
        };
        Ok(Py::new(py, subscription)?.into_any())
    }
}

#[pymethods]
impl NativeSubscription {
    /// `next(wait_ms)`: the next message, waiting at most `wait_ms`.
    /// `None`: nothing came in that time; `False`: the subscription ended
    /// or was closed; else `(subject, request, header_json, records, error,
    /// data)`: a decoded envelope (`request` a `NativeRequest` to answer it
    /// with, `header_json` and `records` as `unpack` returns them, `error`
    /// and `data` `None`), or a rejected message (`error` the exception,
    /// `data` its bytes as they arrived, the others `None`).
    fn next(&self, py: Python<'_>, wait_ms: u64) -> PyResult<Py<PyAny>> {
        let (bridge, source, closed) =
            (self.bridge.clone(), self.source.clone(), self.closed.clone());
        block_on(py, async move {
            let step = next_step(&bridge, &source, &closed, wait_ms).await?;
            Ok(move |py: Python<'_>| step.into_py(py))
        })
    }

    /// `close()`: ends the subscription: unsubscribed now when no `next`
    /// is under way, else when that one returns (within its wait).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.closed.store(true, Ordering::Release);
        let source = self.source.clone();
        // Dropped on the runtime: the subscription's drop may need it.
        let runtime = crate::native::runtime().map_err(|f| f.into_py(py))?;
        py.detach(|| {
            runtime.block_on(async move {
                if let Ok(mut guard) = source.try_lock() {
                    *guard = None;
                }
            });
        });
        Ok(())
    }
}

/// What one [`NativeSubscription::next`] found; turned into Python's shape
/// with the GIL.
enum Step {
    Waiting,
    Ended,
    Message(Box<Decoded>),
    Rejected(Box<Rejected>),
}

/// A message read: the message itself (to answer it) and its envelope as
/// [`records_py`] takes it.
struct Decoded {
    subject: String,
    answer: Answer,
    header: Vec<u8>,
    records: Vec<natsbridge::envelope::PayloadRecord>,
}

/// Waits up to `wait_ms` for the next message of `source`.
async fn next_step(
    bridge: &Bridge,
    source: &tokio::sync::Mutex<Option<Source>>,
    closed: &AtomicBool,
    wait_ms: u64,
) -> Outcome<Step> {
    let mut guard = source.lock().await;
    let item = match guard.as_mut() {
        Some(_) if closed.load(Ordering::Acquire) => None,
        Some(source) => {
            let wait = Duration::from_millis(wait_ms);
            match tokio::time::timeout(wait, source.next(bridge)).await {
                Err(_) => return Ok(Step::Waiting),
                Ok(item) => item,
            }
        }
        None => None,
    };
    let Some(item) = item else {
        *guard = None;
        return Ok(Step::Ended);
    };
    Ok(match item {
        Ok(answer) => {
            let (subject, header, records) = answer.split()?;
            Step::Message(Box::new(Decoded { subject, answer, header, records }))
        }
        Err(rejected) => Step::Rejected(rejected),
    })
}

impl Step {
    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self {
            Step::Waiting => Ok(py.None()),
            Step::Ended => Ok(false.into_pyobject(py)?.to_owned().into_any().unbind()),
            Step::Message(decoded) => {
                let Decoded { subject, answer, header, records } = *decoded;
                let subject = PyString::new(py, &subject);
                let request = Py::new(py, NativeRequest { answer: Arc::new(answer) })?;
                let unpacked = records_py(py, &header, records)?;
                let (header, records): (Py<PyAny>, Py<PyAny>) = unpacked.extract(py)?;
                let none = py.None();
                Ok((subject, request, header, records, none.clone_ref(py), none)
                    .into_pyobject(py)?
                    .into_any()
                    .unbind())
            }
            Step::Rejected(rejected) => {
                let rejected = *rejected;
                let error = Failure::from(rejected.error).into_py(py);
                let value = error.value(py);
                value.setattr("subject", rejected.subject.as_str())?;
                value.setattr("data", PyBytes::new(py, &rejected.payload))?;
                let subject = PyString::new(py, &rejected.subject);
                let none = py.None();
                let data = PyBytes::new(py, &rejected.payload);
                Ok((subject, none.clone_ref(py), none.clone_ref(py), none, value.clone(), data)
                    .into_pyobject(py)?
                    .into_any()
                    .unbind())
            }
        }
    }
}

/// A received envelope that can be answered.
#[pyclass(module = "natsbridge._native", frozen)]
pub(crate) struct NativeRequest {
    answer: Arc<Answer>,
}

#[pymethods]
impl NativeRequest {
    /// `respond(payloads, options, error)`: answers on NATS's reply inbox,
    /// else on the envelope's `reply_to`, with the request's
    /// `correlation_id` and `reply_to_msg_id` set; returns the answer's
    /// JSON, or `None` when the request asked for no answer. `error`
    /// (`(code, description)`, a service endpoint's request only) marks the
    /// answer as an error with the `Nats-Service-Error` headers. A service
    /// request is answered once.
    #[pyo3(signature = (payloads, options, error=None))]
    fn respond(
        &self,
        py: Python<'_>,
        payloads: Vec<PyPayload>,
        options: PyOptions,
        error: Option<(u16, String)>,
    ) -> PyResult<Py<PyAny>> {
        let answer = self.answer.clone();
        block_on(py, async move {
            let (payloads, send) = parts(payloads, &options);
            let sent = match (answer.as_ref(), error) {
                (Answer::Plain { received, bridge }, None) => {
                    bridge.reply(received, payloads, send).await?
                }
                (Answer::Plain { .. }, Some(_)) => {
                    return Err(input(
                        "an error answer is for a service endpoint's request (Bridge.service)"
                            .into(),
                    ));
                }
                (Answer::Service(request), error) => {
                    let taken = request.lock().unwrap_or_else(|e| e.into_inner()).take();
                    let request =
                        taken.ok_or_else(|| input("the request was answered already".into()))?;
                    match error {
                        Some((code, why)) => {
                            request.respond_error(code, &why, payloads, send).await?
                        }
                        None => request.respond(payloads, send).await?,
                    }
                }
            };
            Ok(move |py: Python<'_>| match sent {
                Some(sent) => json_str(py, sent.json()),
                None => Ok(py.None()),
            })
        })
    }
}

/// A registered NATS service (ADR-32: it answers `$SRV.PING`, `INFO`
/// and `STATS` while it lives).
#[pyclass(module = "natsbridge._native", frozen)]
pub(crate) struct NativeService {
    service: Arc<Service>,
    bridge: Bridge,
}

#[pymethods]
impl NativeService {
    /// `endpoint(subject)`: the requests of one endpoint (in the services'
    /// queue group `q`), as a subscription.
    fn endpoint(&self, py: Python<'_>, subject: String) -> PyResult<Py<PyAny>> {
        let (service, bridge) = (self.service.clone(), self.bridge.clone());
        block_on(py, async move {
            let endpoint = service.endpoint(&subject).await?;
            bridge.connection().sync().await.map_err(natsbridge::Error::from)?;
            let source = Source::Service { endpoint: Box::new(endpoint), _service: service };
            Ok(move |py: Python<'_>| NativeSubscription::create(py, bridge, source))
        })
    }

    /// `id()`: the service instance's id.
    fn id(&self) -> String {
        self.service.id().to_owned()
    }
}

/// Adds the classes to `natsbridge._native`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeBridge>()?;
    m.add_class::<NativeSubscription>()?;
    m.add_class::<NativeRequest>()?;
    m.add_class::<NativeService>()?;
    Ok(())
}
