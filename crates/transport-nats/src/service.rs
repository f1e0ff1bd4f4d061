//! The NATS Service API (ADR-32): a responder that can be discovered and
//! watched with `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS`.
//!
//! Written here rather than on async-nats's `service` module, which cannot
//! do what the bridge's responders need: its endpoints always join a queue
//! group (ADR-32 allows none since revision 5, and `natsbridge reply
//! --no-queue` needs none); its requests can only be answered on the NATS
//! reply subject and are counted only then (a seed-style requester names
//! its inbox in the envelope's `reply_to`); an error answer there has an
//! empty body (the bridge sends its answer envelope with the error
//! headers); its STATS answer lacks the `metadata` ADR-32 asks for; and its
//! endpoints unsubscribe rather than drain when stopped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::{Connection, Error, ErrorKind, HeaderMap, Result, Subscriber};

/// The header that marks an answer as an error, with its description.
pub const SERVICE_ERROR: &str = "Nats-Service-Error";
/// The header with an error answer's numeric code.
pub const SERVICE_ERROR_CODE: &str = "Nats-Service-Error-Code";
/// The queue group endpoints join unless told otherwise (ADR-32's).
pub const DEFAULT_QUEUE_GROUP: &str = "q";

const PREFIX: &str = "$SRV";

/// How a service presents itself to `$SRV` requests. Plain data;
/// [`Connection::add_service`] validates it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The kind of service, shared by its replicas: letters, digits, `-`
    /// and `_` only (see [`service_name`] to derive one from a subject).
    pub name: String,
    /// A SemVer version (`1.2.3`, `1.0.0-rc.1+build.5`).
    pub version: String,
    /// Free text for people (empty by default).
    pub description: String,
    /// Free-form key/value pairs reported by PING, INFO and STATS.
    pub metadata: BTreeMap<String, String>,
}

impl ServiceConfig {
    /// A configuration with this name and version, no description and no
    /// metadata.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        ServiceConfig { name: name.into(), version: version.into(), ..ServiceConfig::default() }
    }

    /// Checks what [`Connection::add_service`] checks before registering:
    /// the name (letters, digits, `-` and `_`) and the version (SemVer).
    /// [`ErrorKind::InvalidConfig`] saying which is wrong.
    pub fn validate(&self) -> Result<()> {
        if !is_name(&self.name) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "service name {:?}: only letters, digits, `-` and `_` are allowed",
                    self.name
                ),
            ));
        }
        if !is_semver(&self.version) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("service version {:?} is not a SemVer version", self.version),
            ));
        }
        Ok(())
    }
}

/// One endpoint of a service: the subject it answers on and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Its name in INFO and STATS (by default [`service_name`] of the
    /// subject).
    pub name: String,
    /// The subject requests come on (wildcards allowed).
    pub subject: String,
    /// The queue group to join, so that replicas share the requests
    /// (default [`DEFAULT_QUEUE_GROUP`]); `None` for a plain subscription,
    /// where every replica gets every request.
    pub queue_group: Option<String>,
    /// Free-form key/value pairs reported by INFO.
    pub metadata: BTreeMap<String, String>,
}

impl EndpointConfig {
    /// An endpoint on `subject`, named after it, in the default queue group.
    pub fn new(subject: impl Into<String>) -> Self {
        let subject = subject.into();
        EndpointConfig {
            name: service_name(&subject),
            subject,
            queue_group: Some(DEFAULT_QUEUE_GROUP.to_owned()),
            metadata: BTreeMap::new(),
        }
    }
}

/// A valid service (or endpoint) name made from `subject`: every character
/// other than a letter, a digit, `-` or `_` becomes `-`
/// (`svc.hello` gives `svc-hello`).
pub fn service_name(subject: &str) -> String {
    let name: String = subject
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect();
    if name.is_empty() { "service".to_owned() } else { name }
}

/// A service registered on a connection: it answers `$SRV.PING`,
/// `$SRV.INFO` and `$SRV.STATS` (each also `.NAME` and `.NAME.ID`) until it
/// is stopped or dropped. Its endpoints are added with
/// [`Service::add_endpoint`].
#[derive(Debug)]
pub struct Service {
    shared: Arc<Shared>,
    conn: Connection,
    discovery: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    config: ServiceConfig,
    id: String,
    started: SystemTime,
    endpoints: Mutex<Vec<EndpointState>>,
}

#[derive(Debug)]
struct EndpointState {
    config: EndpointConfig,
    requests: u64,
    errors: u64,
    last_error: String,
    processing_time: Duration,
}

/// An endpoint's subscription and the counters its requests are recorded
/// in.
#[derive(Debug)]
#[non_exhaustive]
pub struct Endpoint {
    /// The requests, as NATS messages.
    pub requests: Subscriber,
    /// Where each handled request is counted.
    pub stats: EndpointStats,
}

/// The counters of one endpoint, reported by `$SRV.STATS`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EndpointStats {
    shared: Arc<Shared>,
    index: usize,
}

impl EndpointStats {
    /// Counts one handled request that took `elapsed`; with `error`
    /// (code, description) also as an error, which becomes `last_error`
    /// (`"CODE:DESCRIPTION"`).
    pub fn record(&self, elapsed: Duration, error: Option<(u16, &str)>) {
        let mut endpoints = lock(&self.shared.endpoints);
        let endpoint = &mut endpoints[self.index];
        endpoint.requests += 1;
        endpoint.processing_time += elapsed;
        if let Some((code, description)) = error {
            endpoint.errors += 1;
            endpoint.last_error = format!("{code}:{description}");
        }
    }
}

/// The headers that mark an answer as an error ([`SERVICE_ERROR`],
/// [`SERVICE_ERROR_CODE`]). Line breaks and other control characters in
/// `description` become spaces: a header value cannot hold them.
pub fn error_headers(code: u16, description: &str) -> HeaderMap {
    let description: String =
        description.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let mut headers = HeaderMap::new();
    headers.insert(SERVICE_ERROR, description.as_str());
    headers.insert(SERVICE_ERROR_CODE, code.to_string().as_str());
    headers
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The counters stay consistent under a panic elsewhere: each update is
    // a few additions.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Connection {
    /// Registers a service: validates the name and version, subscribes to
    /// its `$SRV` subjects (plain subscriptions, so every replica answers)
    /// and answers them from a task of its own until the [`Service`] is
    /// stopped or dropped. [`ErrorKind::InvalidConfig`] for a bad name or
    /// version.
    pub async fn add_service(&self, config: ServiceConfig) -> Result<Service> {
        config.validate()?;
        // A NUID, as the inbox's last token: unique, and a valid subject token.
        let inbox = self.new_inbox();
        let id = inbox.rsplit('.').next().unwrap_or(&inbox).to_owned();
        let shared = Arc::new(Shared {
            id,
            config,
            started: SystemTime::now(),
            endpoints: Mutex::new(Vec::new()),
        });
        let mut subscribers = Vec::new();
        for verb in ["PING", "INFO", "STATS"] {
            for subject in [
                format!("{PREFIX}.{verb}"),
                format!("{PREFIX}.{verb}.{}", shared.config.name),
                format!("{PREFIX}.{verb}.{}.{}", shared.config.name, shared.id),
            ] {
                subscribers.push(self.subscribe(&subject).await?);
            }
        }
        let discovery = tokio::spawn(answer_discovery(
            self.clone(),
            shared.clone(),
            futures_util::stream::select_all(subscribers),
        ));
        Ok(Service { shared, conn: self.clone(), discovery })
    }
}

async fn answer_discovery(
    conn: Connection,
    shared: Arc<Shared>,
    mut requests: futures_util::stream::SelectAll<Subscriber>,
) {
    while let Some(message) = requests.next().await {
        let Some(reply) = message.reply else { continue };
        let verb = message.subject.as_str().split('.').nth(1).unwrap_or_default();
        let answer = match verb {
            "PING" => shared.ping(),
            "INFO" => shared.info(),
            "STATS" => shared.stats(),
            _ => continue,
        };
        if let Err(e) = conn.publish(reply.as_str(), answer.to_string().into()).await {
            tracing::warn!(error = %e, "answering a $SRV.{verb} request");
        }
    }
}

impl Shared {
    fn identity(&self, kind: &str) -> serde_json::Map<String, Value> {
        let mut fields = serde_json::Map::new();
        fields.insert("type".into(), format!("io.nats.micro.v1.{kind}").into());
        fields.insert("name".into(), self.config.name.clone().into());
        fields.insert("id".into(), self.id.clone().into());
        fields.insert("version".into(), self.config.version.clone().into());
        fields.insert("metadata".into(), json!(self.config.metadata));
        fields
    }

    fn ping(&self) -> Value {
        Value::Object(self.identity("ping_response"))
    }

    fn info(&self) -> Value {
        let mut fields = self.identity("info_response");
        fields.insert("description".into(), self.config.description.clone().into());
        let endpoints: Vec<Value> = lock(&self.endpoints)
            .iter()
            .map(|e| {
                json!({
                    "name": e.config.name,
                    "subject": e.config.subject,
                    "queue_group": e.config.queue_group.as_deref().unwrap_or(""),
                    "metadata": e.config.metadata,
                })
            })
            .collect();
        fields.insert("endpoints".into(), endpoints.into());
        Value::Object(fields)
    }

    fn stats(&self) -> Value {
        let mut fields = self.identity("stats_response");
        fields.insert("started".into(), rfc3339(self.started).into());
        let endpoints: Vec<Value> = lock(&self.endpoints)
            .iter()
            .map(|e| {
                let total = e.processing_time.as_nanos();
                let average = total.checked_div(u128::from(e.requests)).unwrap_or(0);
                json!({
                    "name": e.config.name,
                    "subject": e.config.subject,
                    "queue_group": e.config.queue_group.as_deref().unwrap_or(""),
                    "num_requests": e.requests,
                    "num_errors": e.errors,
                    "last_error": e.last_error,
                    "processing_time": u64::try_from(total).unwrap_or(u64::MAX),
                    "average_processing_time": u64::try_from(average).unwrap_or(u64::MAX),
                    // No stats handler: an empty object (nats.py's client
                    // requires the field).
                    "data": {},
                })
            })
            .collect();
        fields.insert("endpoints".into(), endpoints.into());
        Value::Object(fields)
    }
}

impl Service {
    /// This instance's unique id (the last token of `$SRV.VERB.NAME.ID`).
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The configuration it was registered with.
    pub fn config(&self) -> &ServiceConfig {
        &self.shared.config
    }

    /// What `$SRV.INFO` answers now, as JSON.
    pub fn info(&self) -> Value {
        self.shared.info()
    }

    /// What `$SRV.STATS` answers now, as JSON.
    pub fn stats(&self) -> Value {
        self.shared.stats()
    }

    /// Subscribes an endpoint (in its queue group, if it has one) and lists
    /// it in INFO and STATS. The caller answers the requests and records
    /// each in [`Endpoint::stats`].
    pub async fn add_endpoint(&self, config: EndpointConfig) -> Result<Endpoint> {
        let requests = match &config.queue_group {
            Some(group) => self.conn.queue_subscribe(&config.subject, group).await?,
            None => self.conn.subscribe(&config.subject).await?,
        };
        let mut endpoints = lock(&self.shared.endpoints);
        endpoints.push(EndpointState {
            config,
            requests: 0,
            errors: 0,
            last_error: String::new(),
            processing_time: Duration::ZERO,
        });
        let stats = EndpointStats { shared: self.shared.clone(), index: endpoints.len() - 1 };
        Ok(Endpoint { requests, stats })
    }

    /// Stops answering `$SRV` requests (its endpoints' subscriptions are
    /// their owners'; drain them first).
    pub fn stop(self) {}
}

impl Drop for Service {
    fn drop(&mut self) {
        // Dropping the task's subscribers unsubscribes them.
        self.discovery.abort();
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// SemVer 2.0.0: MAJOR.MINOR.PATCH without leading zeros, then optional
/// `-PRERELEASE` and `+BUILD`, each dot-separated non-empty identifiers of
/// `[0-9A-Za-z-]` (numeric pre-release identifiers without leading zeros).
fn is_semver(version: &str) -> bool {
    let identifier =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let number = |s: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    if build.is_some_and(|b| !b.split('.').all(identifier)) {
        return false;
    }
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let pre_ok = |p: &str| {
        p.split('.').all(|i| identifier(i) && (!i.chars().all(|c| c.is_ascii_digit()) || number(i)))
    };
    if pre.is_some_and(|p| !pre_ok(p)) {
        return false;
    }
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| number(p))
}

/// `time` in UTC as RFC 3339 with microseconds (`2026-12-06T21:30:22.123456Z`),
/// the form nats.py's client parses.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_micros()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01, by 400-year eras
/// of 146,097 days counted from March 1st (so that leap days end a year).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u32, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_subjects() {
        assert_eq!(service_name("svc.hello"), "svc-hello");
        assert_eq!(service_name("a.*.>"), "a----");
        assert_eq!(service_name("ok_name-1"), "ok_name-1");
        assert!(is_name(&service_name("x.y")));
        assert!(!is_name("a.b"));
        assert!(!is_name(""));
    }

    #[test]
    fn semver() {
        for good in
            ["0.0.0", "1.2.3", "10.20.30", "1.0.0-rc.1", "1.0.0-0.3.7", "1.0.0+b.5", "1.0.0-x-y+z"]
        {
            assert!(is_semver(good), "{good}");
        }
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3+",
            "v1.2.3",
            "1.2.3-a..b",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn timestamps() {
        let at = |secs: u64, micros: u64| {
            rfc3339(
                SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros),
            )
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(at(1_798_752_622, 123_456), "2026-12-31T21:30:22.123456Z");
    }

    #[test]
    fn error_headers_have_no_line_breaks() {
        let headers = error_headers(500, "failed:\nexit 3");
        assert_eq!(headers.get(SERVICE_ERROR).unwrap().as_str(), "failed: exit 3");
        assert_eq!(headers.get(SERVICE_ERROR_CODE).unwrap().as_str(), "500");
    }
}
