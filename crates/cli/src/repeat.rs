//! natscli's `--count`: how many messages a command sends or takes, 0
//! meaning no limit (as `nats pub --count` and `nats sub --count` read it).

use std::time::Duration;

use clap::Args;

use crate::connect::parse_timeout;

/// `send --count N --sleep DURATION`.
#[derive(Debug, Args)]
pub(crate) struct RepeatArgs {
    /// Send N messages, each a fresh envelope (its own msg_id and
    /// timestamp; link payloads uploaded again); 0 sends until stopped.
    #[arg(long, value_name = "N", default_value_t = 1)]
    count: u64,
    /// Wait this long between messages: 5s, 500ms, 1m or seconds.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    sleep: Option<Duration>,
}

impl RepeatArgs {
    pub(crate) fn start(&self) -> Repeat {
        Repeat { count: self.count, sleep: self.sleep, sent: 0 }
    }
}

/// The messages still to send.
#[derive(Debug)]
pub(crate) struct Repeat {
    count: u64,
    sleep: Option<Duration>,
    sent: u64,
}

impl Repeat {
    /// Waits `--sleep` after the first message, then returns the next
    /// message's number (`Some(None)` when only one is sent, so it is not
    /// numbered), or `None` when `--count` are sent.
    pub(crate) async fn next(&mut self) -> Option<Option<u64>> {
        if self.count != 0 && self.sent >= self.count {
            return None;
        }
        if self.sent > 0
            && let Some(pause) = self.sleep
        {
            tokio::time::sleep(pause).await;
        }
        self.sent += 1;
        Some((self.count != 1).then_some(self.sent))
    }
}

/// A `--count` of `listen` or `reply`: 0 (or none) is no limit.
pub(crate) fn limit(count: Option<usize>) -> Option<usize> {
    count.filter(|&n| n != 0)
}
