//! Responders as NATS services (ADR-32): discoverable with `$SRV.PING`,
//! `$SRV.INFO` and `$SRV.STATS`, their requests and errors counted.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use futures_util::{Stream, StreamExt};

use crate::envelope::{Payload, SendOptions};
use crate::sent::Sent;
use crate::subscription::{Received, Rejected, Subscription};
use crate::transport::{self, EndpointConfig, EndpointStats, ServiceConfig};
use crate::{Bridge, Result};

/// A service registered on a bridge's connection ([`Bridge::service`]).
/// It answers the Service API's `$SRV` requests until it is dropped;
/// [`Service::endpoint`] adds the subjects it answers requests on.
#[derive(Debug)]
pub struct Service {
    inner: transport::Service,
    bridge: Bridge,
}

impl Bridge {
    /// Registers a service named and versioned as `config` says (the name
    /// only letters, digits, `-` and `_`, see
    /// [`service_name`](crate::transport::service_name); the version SemVer;
    /// else an error of kind `Nats(InvalidConfig)`). It answers
    /// `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` (and their `.NAME` and
    /// `.NAME.ID` forms) with the JSON of ADR-32 until it is dropped; its
    /// endpoints' requests are answered by the caller, through
    /// [`ServiceRequest::respond`] and [`ServiceRequest::respond_error`],
    /// which count them.
    ///
    /// ```no_run
    /// # async fn run(bridge: natsbridge::Bridge) -> natsbridge::Result<()> {
    /// use natsbridge::{Payload, SendOptions, ServiceConfig};
    ///
    /// let mut config = ServiceConfig::new("greeter", "1.0.0");
    /// config.description = "says hello".into();
    /// config.metadata.insert("team".into(), "core".into());
    /// let service = bridge.service(config).await?;
    /// let mut requests = service.endpoint("svc.hello").await?;
    /// while let Some(request) = requests.next().await {
    ///     // A message that is not an envelope is counted as an error and
    ///     // not answered.
    ///     let Ok(request) = request else { continue };
    ///     let name = request.received.view().sender_name().to_owned();
    ///     if name.is_empty() {
    ///         // Answered with the error headers, and counted as an error.
    ///         let why = vec![Payload::text("error", "who are you?")];
    ///         request.respond_error(400, "no sender name", why, SendOptions::default()).await?;
    ///     } else {
    ///         let hello = vec![Payload::text("greeting", format!("hello {name}"))];
    ///         request.respond(hello, SendOptions::default()).await?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn service(&self, config: ServiceConfig) -> Result<Service> {
        let inner = self.conn.add_service(config).await?;
        Ok(Service { inner, bridge: self.clone() })
    }
}

impl Service {
    /// This instance's unique id.
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    /// The name, version, description and metadata it was registered with.
    pub fn config(&self) -> &ServiceConfig {
        self.inner.config()
    }

    /// An endpoint on `subject`, named after it, in the Service API's
    /// default queue group `q` ([`EndpointConfig::new`]).
    pub async fn endpoint(&self, subject: &str) -> Result<ServiceEndpoint> {
        self.endpoint_with(EndpointConfig::new(subject)).await
    }

    /// An endpoint as `config` says: its name, subject, queue group (or
    /// none: every replica then gets every request) and metadata.
    pub async fn endpoint_with(&self, config: EndpointConfig) -> Result<ServiceEndpoint> {
        let endpoint = self.inner.add_endpoint(config).await?;
        Ok(ServiceEndpoint {
            requests: Subscription::new(endpoint.requests, self.bridge.clone()),
            stats: endpoint.stats,
            bridge: self.bridge.clone(),
        })
    }

    /// What `$SRV.STATS` answers now (ADR-32's `stats_response` JSON).
    pub fn stats(&self) -> String {
        self.inner.stats().to_string()
    }

    /// What `$SRV.INFO` answers now (ADR-32's `info_response` JSON).
    pub fn info(&self) -> String {
        self.inner.info().to_string()
    }
}

/// The requests of one endpoint: a [`Stream`] of decoded requests to
/// answer, also readable with the inherent [`ServiceEndpoint::next`]. Cancel
/// safe, as a [`Subscription`] is.
///
/// A message that is not an envelope comes as a [`Rejected`], counted as a
/// request and an error (code 400); it cannot be answered.
#[derive(Debug)]
pub struct ServiceEndpoint {
    requests: Subscription,
    stats: EndpointStats,
    bridge: Bridge,
}

impl ServiceEndpoint {
    /// The next request, or `None` when the endpoint's subscription ends
    /// (after [`ServiceEndpoint::drain`], once every request the server
    /// had sent is yielded).
    pub async fn next(&mut self) -> Option<Result<ServiceRequest, Rejected>> {
        StreamExt::next(self).await
    }

    /// Stops taking requests without losing any: the server sends no more
    /// (the queue group's other members get them), and those it had sent
    /// are still yielded before the stream ends. For a graceful stop:
    /// drain, then answer until [`ServiceEndpoint::next`] gives `None`.
    pub async fn drain(&mut self) -> Result<()> {
        self.requests.drain().await
    }
}

impl Stream for ServiceEndpoint {
    type Item = Result<ServiceRequest, Rejected>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let taken = Instant::now();
        let item = match ready!(this.requests.poll_next_unpin(cx)) {
            None => return Poll::Ready(None),
            Some(Ok(received)) => Ok(ServiceRequest {
                received,
                taken,
                stats: this.stats.clone(),
                bridge: this.bridge.clone(),
            }),
            Some(Err(rejected)) => {
                this.stats.record(taken.elapsed(), Some((400, &rejected.error.to_string())));
                Err(rejected)
            }
        };
        Poll::Ready(Some(item))
    }
}

/// A request taken from a [`ServiceEndpoint`], to answer once with
/// [`respond`](Self::respond) or [`respond_error`](Self::respond_error).
/// Either counts it in the endpoint's stats, with the time since it was
/// taken; a request dropped unanswered is not counted.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServiceRequest {
    /// The request, decoded.
    pub received: Received,
    taken: Instant,
    stats: EndpointStats,
    bridge: Bridge,
}

impl ServiceRequest {
    /// Answers as [`Bridge::reply`] does: on the NATS reply subject, or on
    /// the envelope's `reply_to` for a seed-style requester (counted either
    /// way). `Ok(None)` when the request named neither (counted too).
    pub async fn respond(
        self,
        payloads: impl AsRef<[Payload]>,
        options: impl std::borrow::Borrow<SendOptions>,
    ) -> Result<Option<Sent>> {
        let sent = self.bridge.reply(&self.received, payloads, options).await;
        self.record(&sent, None);
        sent
    }

    /// Answers as [`ServiceRequest::respond`] does, the answer marked as an
    /// error with the headers `Nats-Service-Error: description` and
    /// `Nats-Service-Error-Code: code`, and counts it as an error
    /// (`last_error` `"code:description"`). The payloads still go: a
    /// requester that reads only envelopes gets one.
    pub async fn respond_error(
        self,
        code: u16,
        description: &str,
        payloads: impl AsRef<[Payload]>,
        options: impl std::borrow::Borrow<SendOptions>,
    ) -> Result<Option<Sent>> {
        let headers = transport::error_headers(code, description);
        let sent =
            self.bridge.reply_with_headers(&self.received, payloads, options, Some(headers)).await;
        self.record(&sent, Some((code, description)));
        sent
    }

    fn record(&self, sent: &Result<Option<Sent>>, error: Option<(u16, &str)>) {
        let elapsed = self.taken.elapsed();
        match sent {
            Ok(_) => self.stats.record(elapsed, error),
            // The answer could not be sent: that is the error to report.
            Err(e) => self.stats.record(elapsed, Some((500, &e.to_string()))),
        }
    }
}
