//! What `send` prints: on a terminal a short summary of each message (its
//! msg_id, each payload's name, type, size and where it went), else (or
//! with `--json`) the envelope exactly as published, one JSON line each, so
//! a 400 KB file does not flood a terminal with its base64.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};

use clap::Args;

use natsbridge::Envelope;
use natsbridge::transport::Ack;

use crate::redact_url;
use crate::show::clean;

/// `send`'s choice of output.
#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// Print each envelope as published, one JSON line (then, with
    /// --jetstream, the stream's ack). The default when stdout is not a
    /// terminal.
    #[arg(long, conflicts_with = "summary")]
    pub(crate) json: bool,
    /// Print a short summary of each message (msg_id; each payload's name,
    /// type, size, and `direct` or its link). The default on a terminal.
    #[arg(long)]
    summary: bool,
}

/// How sent messages are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    Json,
    Summary,
}

impl OutputArgs {
    /// `--json`, `--summary`, else a summary on a terminal and JSON
    /// otherwise (a pipe, a file: what scripts read).
    pub(crate) fn output(&self) -> Output {
        match (self.json, self.summary) {
            (true, _) => Output::Json,
            (_, true) => Output::Summary,
            _ if std::io::stdout().is_terminal() => Output::Summary,
            _ => Output::Json,
        }
    }
}

/// One message `send` built, and what became of it.
pub(crate) struct Sent<'a> {
    pub(crate) subject: &'a str,
    pub(crate) envelope: &'a Envelope,
    pub(crate) json: &'a [u8],
    /// The stream's ack (`--jetstream`).
    pub(crate) ack: Option<&'a Ack>,
    /// Whether it was published (not with `--no-publish`).
    pub(crate) published: bool,
    /// Its number, when `--count` sends more than one.
    pub(crate) number: Option<u64>,
}

impl Output {
    /// Prints `sent` on stdout, flushed.
    pub(crate) fn print(self, sent: &Sent<'_>) -> anyhow::Result<()> {
        crate::to_stdout(|stdout| match self {
            Output::Json => {
                stdout.write_all(sent.json)?;
                stdout.write_all(b"\n")?;
                if let Some(ack) = sent.ack {
                    let ack = serde_json::json!({
                        "stream": ack.stream, "sequence": ack.sequence, "duplicate": ack.duplicate,
                    });
                    writeln!(stdout, "{ack}")?;
                }
                Ok(())
            }
            Output::Summary => writeln!(stdout, "{}", summary(sent)),
        })
    }
}

/// The summary of one message:
///
/// ```text
/// [#2] Published to "chat.room1"  msg_id 9b1e...
/// [0] message (text, 5 bytes, direct)
/// [1] photo (image, 2000000 bytes, link http://127.0.0.1:8080/file/...)
/// ```
fn summary(sent: &Sent<'_>) -> String {
    let envelope = sent.envelope;
    let mut out = String::new();
    if let Some(number) = sent.number {
        let _ = write!(out, "[#{number}] ");
    }
    let verb = if sent.published { "Published to" } else { "Built (not published) for" };
    let _ = write!(out, "{verb} {:?}  msg_id {}", clean(sent.subject), clean(&envelope.msg_id));
    if let Some(ack) = sent.ack {
        let _ = write!(out, "  stream {} sequence {}", clean(&ack.stream), ack.sequence);
        if ack.duplicate {
            out.push_str(" (duplicate: stored before)");
        }
    }
    for (index, record) in envelope.payloads.iter().enumerate() {
        let size = record.size().map_or_else(|| "size unknown".into(), |s| format!("{s} bytes"));
        let went = match record.url() {
            Some(url) => format!("link {}", clean(&redact_url(url))),
            None => record.transport().as_str().to_owned(),
        };
        let _ = write!(
            out,
            "\n[{index}] {} ({}, {size}, {went})",
            clean(&record.dataname),
            clean(record.payload_type.as_str()),
        );
    }
    out
}
