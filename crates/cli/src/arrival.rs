//! The line `listen` and `reply` print above each message they show, as
//! `nats sub` numbers its messages: `[#N] Received on "SUBJECT"`, with the
//! NATS reply subject when there is one and the time it arrived.

use natsbridge::envelope::{format_rfc3339, time::OffsetDateTime};

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
}

impl Arrival {
    /// Message `number`, arrived now.
    pub(crate) fn now(number: usize, reply: Option<String>) -> Arrival {
        Arrival { number, at: format_rfc3339(OffsetDateTime::now_utc()), reply }
    }

    /// `[#N] Received on "SUBJECT" with reply "R" at TIME`.
    pub(crate) fn line(&self, subject: &str) -> String {
        let mut line = format!("[#{}] Received on {:?}", self.number, clean(subject));
        if let Some(reply) = &self.reply {
            line.push_str(&format!(" with reply {:?}", clean(reply)));
        }
        line.push_str(&format!(" at {}", self.at));
        line
    }
}
