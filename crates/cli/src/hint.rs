//! The `hint: ...` line printed after an error: for the common failures,
//! the flag, variable or command that fixes it (docs/cli.md, "Errors and
//! hints").
//!
//! A hint is chosen by the error's kind and the command's setup, never by
//! the error's text.

use natsbridge::ErrorKind;
use natsbridge::claimcheck::ErrorKind as LinkKind;
use natsbridge::envelope::ErrorKind as EnvelopeKind;
use natsbridge::transport::ErrorKind as NatsKind;

/// What a hint may depend on besides the error: how the failed command
/// was set up.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Situation {
    /// A store for link payloads was configured (`--fileserver`,
    /// `--put-url`, `--s3-bucket`, `--object-store` or their variables).
    pub(crate) link_store: bool,
    /// The command publishes to or consumes from JetStream (`send
    /// --jetstream`, `listen --stream`).
    pub(crate) jetstream: bool,
}

const CONNECT: &str = "is a NATS server running there? `natsbridge dev` starts one and prints \
     the NATS_URL to export; or name yours with -s/--server URL or NATS_URL";
const AUTH: &str = "give the credentials the server expects: --user NAME --password PASS (or \
     --user TOKEN alone), --creds FILE, --nkey FILE, or a natscli context with --context NAME \
     (NATS_USER, NATS_PASSWORD, NATS_CREDS, NATS_NKEY, NATS_CONTEXT)";
const NO_LINK_STORE: &str = "a payload too large to ride inside the envelope goes by link through \
     a file server: give one with --fileserver URL or NATSBRIDGE_FILESERVER (`natsbridge dev` and \
     `natsbridge fileserver` run one), or use --put-url, --s3-bucket or --object-store";
const NO_STREAM: &str = "no JetStream stream captures that subject: create one first, e.g. \
     `nats stream add NAME --subjects 'SUBJECT'` (natscli), or from Rust with \
     `JetStream::ensure_stream`";
const JETSTREAM_TIMED_OUT: &str = "no stream acknowledged the message in time: check that a \
     stream captures the subject (`nats stream ls`; create one with `nats stream add NAME \
     --subjects 'SUBJECT'`). Under `natsbridge dev` (or while any `inspect` or `listen '>'` \
     runs) a subscriber to `>` takes the publish, so the server never answers that no stream \
     exists";
const TIMED_OUT: &str = "nothing answered in time: check that a responder runs on the subject \
     (`natsbridge reply SUBJECT --echo` is one). Under `natsbridge dev` (or while any `inspect` \
     or `listen '>'` runs) a subscriber to `>` takes every subject, so the server never answers \
     \"no responders\" and a request nobody serves waits for --timeout";
const NO_RESPONDERS: &str = "nothing subscribes to that subject: start a responder on it \
     (`natsbridge reply SUBJECT --echo`, or your service)";
const GONE: &str = "the link was one-shot and another receiver (a second listener on the \
     subject, an inspector's fetch, a redelivery) has used it: send with `send --ttl DURATION` \
     so that every receiver can fetch it until it expires";

/// The hint for an error of `kind`, if there is one.
pub(crate) fn for_kind(kind: &ErrorKind, situation: Situation) -> Option<&'static str> {
    match kind {
        ErrorKind::Nats(NatsKind::Connect) => Some(CONNECT),
        ErrorKind::Nats(NatsKind::Auth) => Some(AUTH),
        ErrorKind::Nats(NatsKind::TimedOut) if situation.jetstream => Some(JETSTREAM_TIMED_OUT),
        ErrorKind::Nats(NatsKind::TimedOut) => Some(TIMED_OUT),
        // A JetStream publish nothing captures is answered "no responders"
        // by the server; a lookup of a missing stream is `NotFound`.
        ErrorKind::Nats(NatsKind::NoResponders | NatsKind::NotFound) if situation.jetstream => {
            Some(NO_STREAM)
        }
        ErrorKind::Nats(NatsKind::NoResponders) => Some(NO_RESPONDERS),
        ErrorKind::Envelope(EnvelopeKind::PayloadTooLarge { .. }) if !situation.link_store => {
            Some(NO_LINK_STORE)
        }
        ErrorKind::ClaimCheck(LinkKind::Gone) => Some(GONE),
        _ => None,
    }
}

/// The hint for a received message that could not be decoded (`listen`,
/// `reply`): there is no command setup to consider.
pub(crate) fn for_received(error: &natsbridge::Error) -> Option<&'static str> {
    for_kind(error.kind(), Situation { link_store: true, jetstream: false })
}

/// The hint for what a command returned: the first facade (or transport)
/// error in the chain decides, as for the exit code.
pub(crate) fn for_error(error: &anyhow::Error, situation: Situation) -> Option<&'static str> {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<natsbridge::Error>() {
            return for_kind(e.kind(), situation);
        }
        if let Some(e) = cause.downcast_ref::<natsbridge::transport::Error>() {
            return for_kind(&ErrorKind::Nats(e.kind().clone()), situation);
        }
    }
    None
}
