//! The line `listen` and `reply` print above each message they show, as
//! `nats sub` numbers its messages: `[#N] Received on "SUBJECT"`, with the
//! NATS reply subject when there is one and the time it arrived, then its
//! NATS headers, `KEY: VALUE`, one a line.

use natsbridge::envelope::{format_rfc3339, time::OffsetDateTime};
use natsbridge::transport::HeaderMap;

use crate::show::clean;

/// When and in which order a message arrived.
#[derive(Clone, Debug)]
pub(crate) struct Arrival {
    /// 1 for the first message taken, in the order they arrived (a slow
    /// link may have a message printed after the next one).
    pub(crate) number: usize,
    /// RFC 3339 UTC with milliseconds.
    pub(crate) at: String,
    /// The NATS reply subject, if it came with one.
    pub(crate) reply: Option<String>,
    /// Its NATS headers, by key (each value of a repeated key).
    pub(crate) headers: Vec<(String, String)>,
}

impl Arrival {
    /// Message `number`, arrived now.
    pub(crate) fn now(number: usize, reply: Option<String>) -> Arrival {
        let at = format_rfc3339(OffsetDateTime::now_utc());
        Arrival { number, at, reply, headers: Vec::new() }
    }

    /// With the headers of a core NATS message, sorted by key.
    pub(crate) fn with_headers(mut self, headers: Option<&HeaderMap>) -> Arrival {
        let mut lines: Vec<(String, String)> = headers
            .into_iter()
            .flat_map(|map| map.iter())
            .flat_map(|(key, values)| {
                values.iter().map(move |v| (key.to_string(), v.as_str().to_owned()))
            })
            .collect();
        // A stable sort: a key's values keep their order.
        lines.sort_by(|a, b| a.0.cmp(&b.0));
        self.headers = lines;
        self
    }

    /// `[#N] Received on "SUBJECT" with reply "R" at TIME`, then a
    /// `KEY: VALUE` line per header.
    pub(crate) fn line(&self, subject: &str) -> String {
        let mut line = format!("[#{}] Received on {:?}", self.number, clean(subject));
        if let Some(reply) = &self.reply {
            line.push_str(&format!(" with reply {:?}", clean(reply)));
        }
        line.push_str(&format!(" at {}", self.at));
        for (key, value) in &self.headers {
            line.push_str(&format!("\n{}: {}", clean(key), clean(value)));
        }
        line
    }
}
