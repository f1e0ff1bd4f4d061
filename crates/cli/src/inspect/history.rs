//! The envelopes the inspector has seen: the last N, within a byte budget,
//! each with its previews, its place in a conversation, and the bytes of
//! the links the page asked to fetch.

use std::collections::VecDeque;

use natsbridge::envelope::bytes::Bytes;
use natsbridge::{Envelope, PayloadRecord, sha256_hex};
use serde_json::{Map, Value, json};

use super::preview;
use crate::{redact_url, report};

/// How much the history keeps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// The most messages kept; the oldest goes first.
    pub(crate) messages: usize,
    /// The most bytes kept: each message's body as it arrived, its decoded
    /// payloads and the links fetched for it.
    pub(crate) bytes: usize,
}

/// One message as the inspector keeps it.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Its number, counting every message since the start (never reused).
    pub(crate) seq: u64,
    /// When it arrived, in milliseconds since the Unix epoch.
    pub(crate) received_ms: u64,
    /// The subject it arrived on.
    pub(crate) subject: String,
    /// The body exactly as it arrived.
    pub(crate) raw: Bytes,
    pub(crate) content: Content,
    /// What it costs against [`Limits::bytes`].
    cost: usize,
}

/// A decoded envelope, or why the message is not one.
#[derive(Debug)]
pub(crate) enum Content {
    Envelope(Box<Decoded>),
    Failed {
        /// `envelope.malformed`, ... (as `listen --json` names kinds).
        kind: String,
        message: String,
    },
}

/// A decoded envelope with what the page shows of it.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) envelope: Envelope,
    /// One per payload, in order.
    pub(crate) payloads: Vec<PayloadView>,
    /// The request this message answers, and the round trip.
    pub(crate) answers: Option<Link>,
    /// The messages that answer this one.
    pub(crate) answered_by: Vec<Link>,
}

/// A message of a conversation and the time between request and answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) seq: u64,
    pub(crate) rtt_ms: u64,
}

/// What the page shows of one payload.
#[derive(Debug, Default)]
pub(crate) struct PayloadView {
    /// The preview, once the bytes are here.
    pub(crate) preview: Option<Value>,
    /// The hex SHA-256 of the bytes, once they are here.
    pub(crate) sha256: Option<String>,
    /// Why fetching the link failed, if it did.
    pub(crate) fetch_error: Option<Value>,
}

impl PayloadView {
    /// The view of `record` as it arrived: previewed if its bytes are here.
    pub(crate) fn of(record: &PayloadRecord) -> PayloadView {
        let Some(bytes) = record.bytes() else { return PayloadView::default() };
        let (preview, sha256) = (preview::preview(record, bytes), sha256_hex(bytes));
        PayloadView { preview: Some(preview), sha256: Some(sha256), fetch_error: None }
    }
}

/// What changed, for the pages watching: the summaries to send.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub(crate) added: Option<Value>,
    pub(crate) updated: Vec<Value>,
    pub(crate) evicted: Vec<u64>,
}

/// Why a payload cannot be fetched or served.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// No message with this number is kept (never was, or evicted).
    Message,
    /// The message has no payload with this index (or is not an envelope).
    Payload,
}

/// The kept messages, oldest first.
#[derive(Debug)]
pub(crate) struct History {
    limits: Limits,
    entries: VecDeque<Entry>,
    bytes: usize,
    next_seq: u64,
}

impl History {
    pub(crate) fn new(limits: Limits) -> History {
        History { limits, entries: VecDeque::new(), bytes: 0, next_seq: 1 }
    }

    /// How many messages and bytes are kept now.
    pub(crate) fn usage(&self) -> (usize, usize) {
        (self.entries.len(), self.bytes)
    }

    /// Adds a message that arrived on `subject` at `received_ms`, with its
    /// [`decode`]d content. A message larger than the whole byte budget is
    /// kept as a failure saying so, without its body.
    pub(crate) fn add(
        &mut self,
        subject: String,
        received_ms: u64,
        raw: Bytes,
        content: Content,
    ) -> Changes {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut entry = Entry { seq, received_ms, subject, raw, content, cost: 0 };
        entry.cost = cost(&entry);
        if entry.cost > self.limits.bytes {
            let message = format!(
                "not kept: {} bytes as received and decoded, over the inspector's byte \
                 limit of {} (--history-bytes)",
                entry.cost, self.limits.bytes
            );
            entry.raw = Bytes::new();
            entry.content = Content::Failed { kind: "inspector.too_large".into(), message };
            entry.cost = cost(&entry);
        }
        let mut changes = Changes::default();
        if let Some(request) = self.request_answered_by(&entry) {
            let link = Link { seq, rtt_ms: received_ms.saturating_sub(request.received_ms) };
            if let Content::Envelope(d) = &mut request.content {
                d.answered_by.push(link);
            }
            let back = Link { seq: request.seq, rtt_ms: link.rtt_ms };
            changes.updated.push(request.summary());
            if let Content::Envelope(d) = &mut entry.content {
                d.answers = Some(back);
            }
        }
        self.bytes += entry.cost;
        changes.added = Some(entry.summary());
        self.entries.push_back(entry);
        changes.evicted = self.evict(seq);
        changes
    }

    /// The earlier message `entry` answers, if one is kept: the request
    /// whose `msg_id` it names in `reply_to_msg_id`; else the newest
    /// request whose `reply_to` (or NATS reply inbox) is the subject it
    /// came on (a seed responder copies no ids); else the newest request
    /// (a message with a `reply_to`) with the same `correlation_id`.
    fn request_answered_by(&mut self, entry: &Entry) -> Option<&mut Entry> {
        let answer = entry.envelope()?;
        let find = |matches: &dyn Fn(&Envelope) -> bool| {
            self.entries.iter().rposition(|e| e.envelope().is_some_and(matches))
        };
        let by_id = !answer.reply_to_msg_id.is_empty();
        let by_correlation = !answer.correlation_id.is_empty();
        let position = by_id
            .then(|| find(&|r| r.msg_id == answer.reply_to_msg_id))
            .flatten()
            .or_else(|| find(&|r| !r.reply_to.is_empty() && r.reply_to == entry.subject))
            .or_else(|| {
                let same = |r: &Envelope| {
                    !r.reply_to.is_empty()
                        && r.correlation_id == answer.correlation_id
                        && r.msg_id != answer.msg_id
                };
                by_correlation.then(|| find(&same)).flatten()
            })?;
        self.entries.get_mut(position)
    }

    /// Drops the oldest messages until both limits hold again, never
    /// `keep` (the message just added or fetched for). Returns their
    /// numbers.
    fn evict(&mut self, keep: u64) -> Vec<u64> {
        let mut evicted = Vec::new();
        while self.entries.len() > self.limits.messages || self.bytes > self.limits.bytes {
            let Some(at) = self.entries.iter().position(|e| e.seq != keep) else { break };
            let Some(gone) = self.entries.remove(at) else { break };
            self.bytes -= gone.cost;
            evicted.push(gone.seq);
        }
        evicted
    }

    /// The message numbered `seq`.
    pub(crate) fn get(&self, seq: u64) -> Option<&Entry> {
        let at = self.entries.binary_search_by_key(&seq, |e| e.seq).ok()?;
        self.entries.get(at)
    }

    /// Payload `index` of message `seq`.
    pub(crate) fn record(&self, seq: u64, index: usize) -> Result<&PayloadRecord, Missing> {
        let envelope = self.get(seq).ok_or(Missing::Message)?.envelope();
        envelope.and_then(|e| e.payloads.get(index)).ok_or(Missing::Payload)
    }

    /// Records the result of fetching payload `index` of message `seq`: the
    /// record with its bytes (and their view), or the error. The bytes
    /// count against the byte budget: older messages are evicted for them,
    /// and if they do not fit even then they are not kept (an error).
    pub(crate) fn fetched(
        &mut self,
        seq: u64,
        index: usize,
        result: Result<(PayloadView, PayloadRecord), Value>,
    ) -> Result<Changes, Missing> {
        let limit = self.limits.bytes;
        let at =
            self.entries.binary_search_by_key(&seq, |e| e.seq).map_err(|_| Missing::Message)?;
        let entry = &mut self.entries[at];
        let Content::Envelope(d) = &mut entry.content else { return Err(Missing::Payload) };
        if index >= d.envelope.payloads.len() {
            return Err(Missing::Payload);
        }
        match result {
            Ok((view, record)) => {
                let added = record.bytes().map_or(0, |b| b.len()) + view_cost(&view);
                if entry.cost + added > limit {
                    d.payloads[index].fetch_error = Some(json!({
                        "kind": "inspector.too_large",
                        "message": format!(
                            "fetched, but {added} bytes do not fit the inspector's byte limit \
                             of {limit} (--history-bytes) with this message"
                        ),
                    }));
                } else {
                    d.envelope.payloads[index] = record;
                    d.payloads[index] = view;
                    entry.cost += added;
                    self.bytes += added;
                }
            }
            Err(error) => d.payloads[index].fetch_error = Some(error),
        }
        let summary = entry.summary();
        let evicted = self.evict(seq);
        Ok(Changes { added: None, updated: vec![summary], evicted })
    }

    /// Every kept message's summary, oldest first.
    pub(crate) fn summaries(&self) -> Vec<Value> {
        self.entries.iter().map(Entry::summary).collect()
    }
}

/// A message body decoded (with its payload views), or why it is not an
/// envelope. Done before the history is locked: previews take time.
pub(crate) fn decode(raw: &[u8]) -> Content {
    match Envelope::from_json(raw).map_err(natsbridge::Error::from) {
        Ok(envelope) => Content::Envelope(Box::new(Decoded {
            payloads: envelope.payloads.iter().map(PayloadView::of).collect(),
            envelope,
            answers: None,
            answered_by: Vec::new(),
        })),
        Err(e) => Content::Failed { kind: report::kind_name(e.kind()), message: e.to_string() },
    }
}

/// An entry's weight against the byte budget: its body as received, its
/// decoded payload bytes and its previews.
fn cost(entry: &Entry) -> usize {
    let base = entry.raw.len() + entry.subject.len() + 256;
    match &entry.content {
        Content::Envelope(d) => {
            let bytes = d.envelope.payloads.iter().map(|r| r.bytes().map_or(0, |b| b.len()));
            base + bytes.sum::<usize>() + d.payloads.iter().map(view_cost).sum::<usize>()
        }
        Content::Failed { kind, message } => base + kind.len() + message.len(),
    }
}

fn view_cost(view: &PayloadView) -> usize {
    view.preview.as_ref().map_or(0, |p| p.to_string().len()) + 64
}

impl Entry {
    /// The envelope, if the message is one.
    fn envelope(&self) -> Option<&Envelope> {
        if let Content::Envelope(d) = &self.content { Some(&d.envelope) } else { None }
    }

    /// What the page gets for this message (no payload bytes: those are
    /// served one by one).
    pub(crate) fn summary(&self) -> Value {
        let mut out = json!({
            "seq": self.seq,
            "received_ms": self.received_ms,
            "subject": self.subject,
            "size": self.raw.len(),
        });
        match &self.content {
            Content::Failed { kind, message } => {
                out["error"] = json!({"kind": kind, "message": message});
            }
            Content::Envelope(d) => {
                let e = &d.envelope;
                let mut fields = Map::new();
                for (key, value) in e.header_fields() {
                    let value = if key == "broker_url" { redact_url(value) } else { value.into() };
                    fields.insert(key.into(), value.into());
                }
                fields.insert("metadata".into(), Value::Object(e.metadata.clone()));
                out["envelope"] = Value::Object(fields);
                out["payloads"] = e
                    .payloads
                    .iter()
                    .zip(&d.payloads)
                    .enumerate()
                    .map(|(index, (record, view))| payload_summary(index, record, view))
                    .collect();
                let link = |l: &Link| json!({"seq": l.seq, "rtt_ms": l.rtt_ms});
                out["answers"] = d.answers.as_ref().map(link).unwrap_or(Value::Null);
                out["answered_by"] = d.answered_by.iter().map(link).collect();
            }
        }
        out
    }
}

fn payload_summary(index: usize, record: &PayloadRecord, view: &PayloadView) -> Value {
    json!({
        "index": index,
        "dataname": record.dataname,
        "payload_type": record.payload_type.as_str(),
        "transport": record.transport().as_str(),
        "size": record.size(),
        // A presigned link's signature is not shown.
        "url": record.url().map(redact_url),
        "here": record.bytes().is_some(),
        "sha256": view.sha256,
        "declared_sha256": record.extra.get(natsbridge::SHA256_KEY),
        "preview": view.preview,
        "fetch_error": view.fetch_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use natsbridge::{Payload, SendOptions};

    fn envelope(subject: &str, options: SendOptions, payloads: Vec<Payload>) -> Bytes {
        let mut ids = natsbridge::SystemIds;
        let e = Envelope::pack(subject, payloads, options, &mut ids, &natsbridge::SystemClock);
        Bytes::from(e.to_json().unwrap())
    }

    fn add(history: &mut History, subject: &str, at: u64, raw: Bytes) -> Changes {
        history.add(subject.into(), at, raw.clone(), decode(&raw))
    }

    fn text(subject: &str, body: &str) -> Bytes {
        envelope(subject, SendOptions::default(), vec![Payload::text("t", body)])
    }

    #[test]
    fn the_oldest_go_first_by_count() {
        let mut h = History::new(Limits { messages: 3, bytes: 1 << 20 });
        for i in 0..5 {
            let changes = add(&mut h, "a", i, text("a", "x"));
            assert_eq!(changes.evicted, if i < 3 { vec![] } else { vec![i - 2] });
        }
        let seqs: Vec<u64> = h.summaries().iter().map(|s| s["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert!(h.get(1).is_none());
    }

    #[test]
    fn the_oldest_go_first_by_bytes_and_the_total_stays_under() {
        let limit = 20_000;
        let mut h = History::new(Limits { messages: 1000, bytes: limit });
        for i in 0..50 {
            add(&mut h, "a", i, text("a", &"y".repeat(1000)));
            assert!(h.usage().1 <= limit, "{:?}", h.usage());
        }
        let (kept, _) = h.usage();
        assert!(kept > 3 && kept < 20, "{kept}");
        // The newest are the ones kept.
        assert_eq!(h.summaries().last().unwrap()["seq"], 50);
    }

    #[test]
    fn a_message_over_the_whole_budget_is_listed_without_its_body() {
        let mut h = History::new(Limits { messages: 10, bytes: 5_000 });
        add(&mut h, "a", 0, text("a", "small"));
        let changes = add(&mut h, "a", 1, text("a", &"z".repeat(10_000)));
        let added = changes.added.unwrap();
        assert_eq!(added["error"]["kind"], "inspector.too_large");
        assert!(h.usage().1 <= 5_000);
    }

    #[test]
    fn failures_are_listed_with_their_error() {
        let mut h = History::new(Limits { messages: 10, bytes: 1 << 20 });
        let changes = add(&mut h, "bad", 0, Bytes::from_static(b"{not json"));
        let added = changes.added.unwrap();
        assert_eq!(added["subject"], "bad");
        assert_eq!(added["error"]["kind"], "envelope.not_json");
        assert_eq!(&h.get(1).unwrap().raw[..], b"{not json");
    }

    #[test]
    fn answers_find_their_request_three_ways() {
        let mut h = History::new(Limits { messages: 100, bytes: 1 << 20 });
        // 1. reply_to_msg_id (this project's responders).
        let request = envelope(
            "svc",
            SendOptions::new().with_reply_to("_INBOX.1"),
            vec![Payload::text("q", "?")],
        );
        let parsed = Envelope::from_json(&request).unwrap();
        add(&mut h, "svc", 1000, request);
        let answer = envelope("_INBOX.1", parsed.reply_options(), vec![Payload::text("a", "!")]);
        let changes = add(&mut h, "_INBOX.1", 1012, answer);
        assert_eq!(changes.added.unwrap()["answers"], json!({"seq": 1, "rtt_ms": 12}));
        assert_eq!(changes.updated[0]["answered_by"], json!([{"seq": 2, "rtt_ms": 12}]));

        // 2. A seed responder: fresh ids, on the request's reply_to subject.
        let request = envelope(
            "svc",
            SendOptions::new().with_reply_to("replies.7"),
            vec![Payload::text("q", "?")],
        );
        add(&mut h, "svc", 2000, request);
        let changes = add(&mut h, "replies.7", 2030, text("replies.7", "!"));
        assert_eq!(changes.added.unwrap()["answers"], json!({"seq": 3, "rtt_ms": 30}));

        // 3. The same correlation_id.
        let request = envelope(
            "svc",
            SendOptions::new().with_reply_to("elsewhere").with_correlation_id("corr-9"),
            vec![Payload::text("q", "?")],
        );
        add(&mut h, "svc", 3000, request);
        let answer = envelope(
            "other",
            SendOptions::new().with_correlation_id("corr-9"),
            vec![Payload::text("a", "!")],
        );
        let changes = add(&mut h, "other", 3005, answer);
        assert_eq!(changes.added.unwrap()["answers"], json!({"seq": 5, "rtt_ms": 5}));

        // A plain message answers nothing.
        let changes = add(&mut h, "news", 4000, text("news", "hi"));
        assert!(changes.added.unwrap()["answers"].is_null());
        assert!(changes.updated.is_empty());
    }
}
