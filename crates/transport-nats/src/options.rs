//! How to connect: the options (servers, credentials, TLS, timeouts) and
//! the reconnect policy, turned into an async-nats client.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::ConnectErrorKind;
use natsbridge_common::{Backoff, redact_url};
use tokio::sync::broadcast;

use crate::connection::{Connection, Event, PUBLISHER};
use crate::{Error, ErrorKind, Result};

/// How to wait between reconnect attempts: capped exponential backoff with
/// jitter, the formula of [`Backoff`] (shared with the claim-check
/// transfers). Plain data; tune the fields, or build it with
/// [`ReconnectPolicy::new`] and the `with_*` setters (it is
/// non-exhaustive: fields may be added).
///
/// ```
/// use std::time::Duration;
/// use natsbridge_transport_nats::ReconnectPolicy;
///
/// let policy = ReconnectPolicy::new().with_max_reconnects(Some(10)).with_jitter(false);
/// assert_eq!(policy.delay(2), Duration::from_millis(50));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Give up after this many consecutive failed attempts; `None` never
    /// gives up. Default `None`.
    pub max_reconnects: Option<usize>,
    /// Delay before the first retry. Default 50 ms.
    pub base_delay: Duration,
    /// Upper bound of the delay. Default 4 s.
    pub max_delay: Duration,
    /// Spread each delay uniformly over `[delay/2, delay]` so that many
    /// clients do not reconnect in step. Default `true`.
    pub jitter: bool,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            max_reconnects: None,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(4),
            jitter: true,
        }
    }
}

impl ReconnectPolicy {
    /// The defaults (the same as [`Default`]); change them with the
    /// `with_*` setters below or by assigning the public fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`max_reconnects`](Self::max_reconnects).
    #[must_use]
    pub fn with_max_reconnects(mut self, max_reconnects: Option<usize>) -> Self {
        self.max_reconnects = max_reconnects;
        self
    }

    /// Sets [`base_delay`](Self::base_delay).
    #[must_use]
    pub fn with_base_delay(mut self, base_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self
    }

    /// Sets [`max_delay`](Self::max_delay).
    #[must_use]
    pub fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Sets [`jitter`](Self::jitter).
    #[must_use]
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }
}

impl ReconnectPolicy {
    /// The backoff these settings describe.
    pub fn backoff(&self) -> Backoff {
        Backoff { base_delay: self.base_delay, max_delay: self.max_delay, jitter: self.jitter }
    }

    /// The delay before reconnect attempt `attempt` (1-based): none before
    /// the first, then the [`Backoff`]'s delay before retry `attempt - 2`
    /// (`base_delay` before the second), with a fresh random jitter.
    pub fn delay(&self, attempt: usize) -> Duration {
        match attempt.checked_sub(2) {
            None => Duration::ZERO,
            Some(retry) => self.backoff().delay_jittered(u32::try_from(retry).unwrap_or(u32::MAX)),
        }
    }
}

/// Options for [`ConnectOptions::connect`]: a builder by value.
///
/// Secrets given here (token, password, nkey seed) go to async-nats and are
/// never formatted: `Debug` shows only whether each is set.
#[must_use]
#[derive(Clone, Default)]
pub struct ConnectOptions {
    servers: Vec<String>,
    name: Option<String>,
    inbox_prefix: Option<String>,
    token: Option<String>,
    user_password: Option<(String, String)>,
    nkey_seed: Option<String>,
    creds_file: Option<PathBuf>,
    root_certificates: Option<PathBuf>,
    client_certificate: Option<(PathBuf, PathBuf)>,
    require_tls: bool,
    tls_first: bool,
    reconnect: ReconnectPolicy,
    request_timeout: Option<Duration>,
    connection_timeout: Option<Duration>,
    subscription_capacity: Option<usize>,
    /// Set by `lame_duck_reconnect(false)`: stay on a server in lame duck
    /// mode until it evicts the connection.
    pub(crate) stay_on_lame_duck: bool,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("servers", &self.servers.iter().map(|s| shown_server(s)).collect::<Vec<_>>())
            .field("name", &self.name)
            .field("inbox_prefix", &self.inbox_prefix)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("user", &self.user_password.as_ref().map(|(u, _)| u))
            .field("password", &self.user_password.as_ref().map(|_| "<set>"))
            .field("nkey_seed", &self.nkey_seed.as_ref().map(|_| "<set>"))
            .field("creds_file", &self.creds_file)
            .field("root_certificates", &self.root_certificates)
            .field("client_certificate", &self.client_certificate)
            .field("require_tls", &self.require_tls)
            .field("tls_first", &self.tls_first)
            .field("reconnect", &self.reconnect)
            .field("lame_duck_reconnect", &!self.stay_on_lame_duck)
            .finish()
    }
}

impl ConnectOptions {
    /// Options for one server URL (`nats://`, `tls://`, `ws://`, `wss://`).
    pub fn new(url: impl Into<String>) -> Self {
        ConnectOptions { servers: vec![url.into()], ..Default::default() }
    }

    /// Adds another server URL; the client fails over between them.
    pub fn server(mut self, url: impl Into<String>) -> Self {
        self.servers.push(url.into());
        self
    }

    /// The connection name the server shows in its monitoring.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The prefix of the inboxes this connection makes (request replies,
    /// the readiness round trip, service ids) instead of `_INBOX`, for an
    /// account whose users may subscribe only below their own prefix
    /// (natscli's `--inbox-prefix`): `_INBOX_alice` makes inboxes
    /// `_INBOX_alice.<id>`; a trailing `.` is dropped. [`connect`](Self::connect)
    /// fails with [`ErrorKind::InvalidConfig`] for an empty prefix or one
    /// holding a wildcard (`*`, `>`) or whitespace.
    pub fn inbox_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix: String = prefix.into();
        self.inbox_prefix = Some(prefix.trim_end_matches('.').to_owned());
        self
    }

    /// Authenticate with a token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Authenticate with a user name and password.
    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user_password = Some((user.into(), password.into()));
        self
    }

    /// Authenticate with an nkey seed (`SU...`).
    pub fn nkey(mut self, seed: impl Into<String>) -> Self {
        self.nkey_seed = Some(seed.into());
        self
    }

    /// Authenticate with a `.creds` file (JWT and nkey seed).
    pub fn creds_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.creds_file = Some(path.into());
        self
    }

    /// Trust the CA certificates in this PEM file for the server's TLS.
    pub fn root_certificates(mut self, pem: impl Into<PathBuf>) -> Self {
        self.root_certificates = Some(pem.into());
        self
    }

    /// Present this client certificate and key (PEM files) for mutual TLS.
    pub fn client_certificate(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_certificate = Some((cert.into(), key.into()));
        self
    }

    /// Refuse to talk to the server without TLS.
    pub fn require_tls(mut self, required: bool) -> Self {
        self.require_tls = required;
        self
    }

    /// Start TLS before the server's INFO (natscli's `--tlsfirst`; the server
    /// must be configured with `handshake_first`). Implies TLS is required.
    pub fn tls_first(mut self, tls_first: bool) -> Self {
        self.tls_first = tls_first;
        self
    }

    /// How to reconnect after losing the server.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Whether to move to another server as soon as the current one
    /// announces lame duck mode (a rolling restart: it stops accepting
    /// connections and evicts its clients over the following seconds).
    /// Default `true`: make before break. A second client connects to
    /// another server of the pool (the URLs given and those the cluster
    /// announces), every subscription is made again there, and only then
    /// are the old ones drained (what the old server sent is still
    /// delivered) and the publishing client reconnected away; so a single
    /// responder misses no request. A plain subscription may see a message
    /// published during the switch twice; a queue subscription sees each
    /// once. async-nats alone only reports the event
    /// ([`Event::LameDuckMode`], reported here too); `false` keeps that:
    /// the connection waits to be evicted.
    pub fn lame_duck_reconnect(mut self, reconnect: bool) -> Self {
        self.stay_on_lame_duck = !reconnect;
        self
    }

    /// Timeout of [`Connection::request`] calls that give none. Default 10 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Timeout of the initial connection. Default async-nats's (5 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = Some(timeout);
        self
    }

    /// How many messages each subscription buffers before the client drops
    /// new ones for it (default async-nats's, 65,536). This bounds a slow
    /// consumer's memory; every drop is reported as
    /// [`Event::SlowConsumer`] on [`Connection::events`].
    pub fn subscription_capacity(mut self, messages: usize) -> Self {
        self.subscription_capacity = Some(messages);
        self
    }

    /// Connects.
    ///
    /// Fails with [`ErrorKind::Auth`] on refused credentials,
    /// [`ErrorKind::Tls`] on a TLS failure, [`ErrorKind::Connect`] when no
    /// server could be reached and [`ErrorKind::InvalidConfig`] for an
    /// unreadable `.creds` file.
    pub async fn connect(self) -> Result<Connection> {
        Connection::open(self).await
    }

    /// A client connected as these options say (to their servers and
    /// `more_servers`, `host:port` as a cluster announces them), its events
    /// sent to `events` and its lame duck notices (as `id`) to `notices`.
    pub(crate) async fn client(
        &self,
        id: u64,
        events_tx: &broadcast::Sender<Event>,
        notices: &tokio::sync::mpsc::UnboundedSender<u64>,
        more_servers: &[String],
    ) -> Result<async_nats::Client> {
        let explicit_auth = self.token.is_some()
            || self.user_password.is_some()
            || self.nkey_seed.is_some()
            || self.creds_file.is_some();
        let mut options = async_nats::ConnectOptions::new();
        if let Some(path) = &self.creds_file {
            options = options.credentials_file(path).await.map_err(|e| {
                Error::with_source(
                    ErrorKind::InvalidConfig,
                    format!("reading .creds file {}", path.display()),
                    e,
                )
            })?;
        }
        if let Some(name) = self.name.clone() {
            options = options.name(name);
        }
        if let Some(prefix) = &self.inbox_prefix {
            check_inbox_prefix(prefix)?;
            options = options.custom_inbox_prefix(prefix);
        }
        if let Some(token) = self.token.clone() {
            options = options.token(token);
        }
        if let Some((user, password)) = self.user_password.clone() {
            options = options.user_and_password(user, password);
        }
        if let Some(seed) = self.nkey_seed.clone() {
            options = options.nkey(seed);
        }
        if let Some(ca) = self.root_certificates.clone() {
            options = options.add_root_certificates(ca);
        }
        if let Some((cert, key)) = self.client_certificate.clone() {
            options = options.add_client_certificate(cert, key);
        }
        if let Some(timeout) = self.connection_timeout {
            options = options.connection_timeout(timeout);
        }
        if let Some(capacity) = self.subscription_capacity {
            options = options.subscription_capacity(capacity);
        }
        if self.tls_first {
            options = options.tls_first();
        }
        let policy = self.reconnect;
        let tx = events_tx.clone();
        let on_lame_duck = (!self.stay_on_lame_duck).then(|| notices.clone());
        options = options
            .require_tls(self.require_tls || self.tls_first)
            .max_reconnects(policy.max_reconnects)
            .reconnect_delay_callback(move |attempt| policy.delay(attempt))
            .request_timeout(Some(self.request_timeout.unwrap_or(Duration::from_secs(10))))
            .event_callback(move |event| {
                let tx = tx.clone();
                let on_lame_duck = on_lame_duck.clone();
                async move {
                    let event = Event::from(event);
                    if let (Event::LameDuckMode, Some(notify)) = (&event, on_lame_duck) {
                        let _ = notify.send(id);
                    }
                    match &event {
                        Event::SlowConsumer(sid) => {
                            tracing::warn!(subscription = sid, "slow consumer: messages dropped")
                        }
                        Event::ServerError(e) => tracing::warn!(error = %e, "NATS server error"),
                        other => tracing::debug!(event = ?other, "NATS connection event"),
                    }
                    // A client the mover made to carry subscriptions reports
                    // what concerns them; its connects and lame duck notices
                    // are its own business (the publishing client's are the
                    // connection's).
                    let concerns_caller = id == PUBLISHER
                        || matches!(
                            event,
                            Event::SlowConsumer(_) | Event::ServerError(_) | Event::ClientError(_)
                        );
                    if concerns_caller {
                        let _ = tx.send(event);
                    }
                }
            });
        // Credentials written in a URL go to async-nats as options, never
        // inside the URL: it logs server addresses with their password.
        let mut url_credentials = None;
        let stripped: Vec<String> = self
            .servers
            .iter()
            .map(|s| {
                let (url, credentials) = split_user_info(s);
                url_credentials = url_credentials.take().or(credentials);
                url
            })
            .collect();
        if !explicit_auth {
            match url_credentials {
                Some((user, Some(password))) => options = options.user_and_password(user, password),
                Some((token, None)) => options = options.token(token),
                None => {}
            }
        }
        let mut addrs: Vec<async_nats::ServerAddr> = stripped
            .iter()
            .map(|s| {
                s.parse().map_err(|e| {
                    Error::with_source(
                        ErrorKind::InvalidConfig,
                        format!("server URL {:?}", shown_server(s)),
                        e,
                    )
                })
            })
            .collect::<Result<_>>()?;
        addrs.extend(more_servers.iter().filter_map(|s| s.parse().ok()));
        let servers = self.servers.iter().map(|s| shown_server(s)).collect::<Vec<_>>().join(", ");
        let client = options.connect(addrs).await.map_err(|e| {
            let kind = match e.kind() {
                ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
                    ErrorKind::Auth
                }
                ConnectErrorKind::Tls => ErrorKind::Tls,
                // async-nats reports a rejected server certificate as an
                // I/O error from rustls; it is a TLS failure to the caller.
                ConnectErrorKind::Io if is_certificate_error(&e) => ErrorKind::Tls,
                ConnectErrorKind::ServerParse => ErrorKind::InvalidConfig,
                _ => ErrorKind::Connect,
            };
            Error::with_source(kind, format!("server {servers}"), e)
        })?;
        Ok(client)
    }
}
/// An inbox prefix a subscription can use: subject tokens without
/// wildcards or whitespace.
fn check_inbox_prefix(prefix: &str) -> Result<()> {
    let bad = prefix.is_empty()
        || prefix.split('.').any(|token| token.is_empty())
        || prefix.contains(['*', '>'])
        || prefix.contains(char::is_whitespace);
    if bad {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "inbox prefix {prefix:?} is not a subject prefix (dot-separated tokens \
                 without wildcards or whitespace)"
            ),
        ));
    }
    Ok(())
}

/// A server URL as errors and `Debug` show it: without the user info (where
/// a user, password or token may be written) and without a query string.
fn shown_server(url: &str) -> String {
    redact_url(url)
}

/// `nats://user:pass@host` as `nats://host` and `(user, Some(pass))`;
/// `nats://token@host` as `nats://host` and `(token, None)`.
#[allow(clippy::type_complexity)]
fn split_user_info(url: &str) -> (String, Option<(String, Option<String>)>) {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((user_info, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    let credentials = match user_info.split_once(':') {
        Some((user, password)) => (user.to_owned(), Some(password.to_owned())),
        None => (user_info.to_owned(), None),
    };
    let url = match scheme {
        Some(scheme) => format!("{scheme}://{host}{tail}"),
        None => format!("{host}{tail}"),
    };
    (url, Some(credentials))
}

/// Whether an I/O error of the connect is rustls's: tokio-rustls hands a
/// rejected server certificate, a failed handshake or the server's alert
/// refusing ours as an `io::Error` wrapping a `rustls::Error`, found here by
/// its type, not its text.
fn is_certificate_error(e: &async_nats::ConnectError) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(error) = cause {
        if error.is::<async_nats::rustls::Error>() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<async_nats::rustls::Error>())
        {
            return true;
        }
        cause = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use natsbridge_common::Backoff;

    use super::{ConnectOptions, ReconnectPolicy, check_inbox_prefix};

    #[test]
    fn inbox_prefixes_are_subject_prefixes() {
        for good in ["_INBOX_alice", "acct.alice._INBOX"] {
            assert!(check_inbox_prefix(good).is_ok(), "{good}");
        }
        for bad in ["", "_INBOX.*", "a.>", "a b", "a..b", ".a"] {
            let err = check_inbox_prefix(bad).unwrap_err();
            assert_eq!(err.kind(), &crate::ErrorKind::InvalidConfig, "{bad}");
        }
        // One trailing dot or more is dropped: async-nats adds its own.
        let options = ConnectOptions::new("nats://h").inbox_prefix("_INBOX_alice.");
        assert_eq!(options.inbox_prefix.as_deref(), Some("_INBOX_alice"));
    }

    #[test]
    fn reconnect_delays_are_the_common_backoffs() {
        let policy = ReconnectPolicy { jitter: false, ..ReconnectPolicy::default() };
        let backoff = policy.backoff();
        assert_eq!(
            backoff,
            Backoff {
                base_delay: Duration::from_millis(50),
                max_delay: Duration::from_secs(4),
                jitter: false,
            }
        );
        assert_eq!(policy.delay(0), Duration::ZERO);
        assert_eq!(policy.delay(1), Duration::ZERO);
        for attempt in 2..50 {
            assert_eq!(policy.delay(attempt), backoff.delay(attempt as u32 - 2, 0));
        }
        assert_eq!(policy.delay(usize::MAX), backoff.delay(u32::MAX, 0));
        let ms: Vec<u128> = (1..10).map(|a| policy.delay(a).as_millis()).collect();
        assert_eq!(ms, [0, 50, 100, 200, 400, 800, 1600, 3200, 4000]);
    }

    #[test]
    fn reconnect_jitter_stays_within_the_common_range() {
        let policy = ReconnectPolicy::default();
        for attempt in 2..12 {
            let n = attempt as u32 - 2;
            let low = policy.backoff().delay(n, 0);
            let full = ReconnectPolicy { jitter: false, ..policy }.delay(attempt);
            assert_eq!(low, full / 2);
            for _ in 0..20 {
                let d = policy.delay(attempt);
                assert!(d >= low && d <= full, "{d:?} vs {full:?}");
            }
        }
    }

    use super::shown_server;

    #[test]
    fn server_urls_are_shown_without_credentials() {
        assert_eq!(shown_server("nats://alice:pw@127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(shown_server("tls://s3cr3t@host"), "tls://host");
        assert_eq!(shown_server("ws://u:p@h:8080/nats?token=t"), "ws://h:8080/nats?<redacted>");
        assert_eq!(shown_server("u:p@h:4222"), "h:4222");
        assert_eq!(shown_server("nats://localhost:4222"), "nats://localhost:4222");
    }

    #[test]
    fn credentials_in_urls_are_split_off() {
        let (url, creds) = super::split_user_info("nats://alice:pw@h:4222");
        assert_eq!(
            (url.as_str(), creds),
            ("nats://h:4222", Some(("alice".into(), Some("pw".into()))))
        );
        let (url, creds) = super::split_user_info("tls://tok@h");
        assert_eq!((url.as_str(), creds), ("tls://h", Some(("tok".into(), None))));
        let (url, creds) = super::split_user_info("nats://h:4222");
        assert_eq!((url.as_str(), creds), ("nats://h:4222", None));
    }
}
