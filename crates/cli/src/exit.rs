//! Exit codes that scripts can tell apart (docs/cli.md lists them).

use std::process::ExitCode;

use natsbridge::ErrorKind;
use natsbridge::claimcheck::ErrorKind as LinkKind;
use natsbridge::transport::ErrorKind as NatsKind;

/// Something else went wrong (the server cannot be reached, a file server
/// failed, ...).
pub(crate) const OTHER: u8 = 1;
// 2 is clap's: a usage error (unknown flag, missing argument, bad value).
/// A request got no answer in time, or `listen --timeout` passed first.
pub(crate) const TIMEOUT: u8 = 3;
/// Nobody listens on the request's subject.
pub(crate) const NO_RESPONDERS: u8 = 4;
/// The server refused the credentials.
pub(crate) const AUTHORIZATION: u8 = 5;
/// The input was refused: a payload argument, an envelope, a link's bytes,
/// a file to read, the connection settings (context, nkey file, URL).
pub(crate) const BAD_INPUT: u8 = 6;
/// `request`'s answer is marked as a failure (`msg_purpose` `NACK`: a
/// failed `reply --command`).
pub(crate) const ANSWERED_ERROR: u8 = 7;
/// A second SIGINT stopped a draining command at once (128 + 2, as a
/// shell reports a process killed by SIGINT).
pub(crate) const INTERRUPTED: u8 = 130;
/// A second SIGTERM stopped a draining command at once (128 + 15).
pub(crate) const TERMINATED: u8 = 143;

/// Marks an error of the command line's own as bad input, for
/// [`code`]: `.context(BadInput)`. It prints as nothing, so the message
/// stays the error's own.
#[derive(Debug)]
pub(crate) struct BadInput;

impl std::fmt::Display for BadInput {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

/// The exit code for a facade error kind: the one mapping of kinds to
/// codes.
pub(crate) fn for_kind(kind: &ErrorKind) -> u8 {
    match kind {
        ErrorKind::Nats(NatsKind::TimedOut) | ErrorKind::ClaimCheck(LinkKind::TimedOut) => TIMEOUT,
        ErrorKind::Nats(NatsKind::NoResponders) => NO_RESPONDERS,
        ErrorKind::Nats(NatsKind::Auth) => AUTHORIZATION,
        ErrorKind::Envelope(_)
        | ErrorKind::Io
        | ErrorKind::Config
        | ErrorKind::Nats(
            NatsKind::InvalidConfig | NatsKind::InvalidSubject | NatsKind::PayloadTooLarge { .. },
        )
        | ErrorKind::ClaimCheck(
            LinkKind::Integrity
            | LinkKind::SizeMismatch { .. }
            | LinkKind::UrlRefused
            | LinkKind::InvalidInput,
        ) => BAD_INPUT,
        _ => OTHER,
    }
}

/// The exit code for what a command returned: the first facade (or
/// transport) error in the chain decides; else [`BadInput`] if marked;
/// else [`OTHER`].
pub(crate) fn code(error: &anyhow::Error) -> ExitCode {
    ExitCode::from(number(error))
}

/// [`code`] as a number (for `--json`'s error line).
pub(crate) fn number(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<natsbridge::Error>() {
            return for_kind(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<natsbridge::transport::Error>() {
            return for_kind(&ErrorKind::Nats(e.kind().clone()));
        }
    }
    if error.downcast_ref::<BadInput>().is_some() {
        return BAD_INPUT;
    }
    OTHER
}
