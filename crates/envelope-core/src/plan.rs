//! The transport plan: which payloads ride inside the envelope and which go
//! by link, so that the finished envelope fits the server.

use crate::envelope::{Body, Envelope};
use crate::payload::Transport;
use crate::prelude::*;
use crate::write::{Counter, write_record_with};
use crate::{Error, ErrorKind, Result};

/// The default `size_threshold` (the newer seed's 500 KB).
pub const DEFAULT_SIZE_THRESHOLD: usize = 500_000;
/// The size threshold MicroPython peers use.
pub const MICROPYTHON_SIZE_THRESHOLD: usize = 100_000;
/// NATS's default `max_payload` (1 MiB).
pub const DEFAULT_MAX_PAYLOAD: usize = 1_048_576;
/// Room reserved for a link URL that is not known yet.
pub const DEFAULT_LINK_URL_RESERVE: usize = 512;

/// What the plan must respect. Plain data with the spec's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanLimits {
    /// Payloads of this many serialized bytes or more go by link (when a
    /// link handler exists). Default 500,000.
    pub size_threshold: usize,
    /// The server's `max_payload`: the finished envelope must not be
    /// larger. Default 1,048,576; use the value from the server's INFO.
    pub max_payload: usize,
    /// Whether a link (upload) handler is configured. Without one every
    /// payload must go direct, whatever its size, or the plan fails.
    pub link_available: bool,
    /// Bytes assumed for each link URL before it is known. The sender must
    /// check the finished envelope again once the real URLs are in.
    /// Default 512.
    pub link_url_reserve: usize,
}

impl Default for PlanLimits {
    fn default() -> Self {
        PlanLimits {
            size_threshold: DEFAULT_SIZE_THRESHOLD,
            max_payload: DEFAULT_MAX_PAYLOAD,
            link_available: true,
            link_url_reserve: DEFAULT_LINK_URL_RESERVE,
        }
    }
}

/// Decides the transport of each payload of `envelope`, in order.
///
/// Records that are links already stay links. A direct payload goes by
/// link when its size reaches `size_threshold` (and a link handler
/// exists). If the envelope would still exceed `max_payload`, the largest
/// remaining direct payloads move to link, one at a time, until it fits.
/// When it cannot fit (no link handler, or even all links are too big) the
/// error is [`ErrorKind::PayloadTooLarge`], naming the largest direct
/// payload and the overage. Nothing is ever dropped or truncated.
///
/// This is a pure function of the sizes: it encodes nothing.
pub fn plan_transports(envelope: &Envelope, limits: &PlanLimits) -> Result<Vec<Transport>> {
    let mut plan: Vec<Transport> = envelope.payloads.iter().map(|p| p.transport()).collect();
    let mut size = envelope.json_len()?;
    // Fast path: nothing reaches the threshold and the envelope fits.
    let over_threshold = |n: usize| limits.link_available && n >= limits.size_threshold;
    if size <= limits.max_payload
        && envelope.payloads.iter().all(|p| !p.bytes().is_some_and(|b| over_threshold(b.len())))
    {
        return Ok(plan);
    }
    // How the envelope's length changes when record `i` goes by link
    // instead of direct (negative: it shrinks; a tiny payload can grow, as
    // the URL is longer than its base64).
    let link_delta = |i: usize| -> Result<isize> {
        let rec = &envelope.payloads[i];
        let mut direct = Counter(0);
        write_record_with(&mut direct, rec, &rec.body)?;
        let mut link = Counter(limits.link_url_reserve);
        write_record_with(&mut link, rec, &Body::Link { url: String::new(), size: rec.size() })?;
        Ok(link.0 as isize - direct.0 as isize)
    };
    if limits.link_available {
        for (i, rec) in envelope.payloads.iter().enumerate() {
            if rec.bytes().is_some_and(|b| over_threshold(b.len())) {
                plan[i] = Transport::Link;
                size = size.saturating_add_signed(link_delta(i)?);
            }
        }
    }
    while size > limits.max_payload {
        let largest = (0..plan.len())
            .filter(|&i| plan[i] == Transport::Direct)
            .max_by_key(|&i| envelope.payloads[i].bytes().map_or(0, |b| b.len()));
        let too_large = |detail: &str| {
            Error::new(
                ErrorKind::PayloadTooLarge {
                    dataname: largest
                        .map(|i| envelope.payloads[i].dataname.clone())
                        .unwrap_or_default(),
                    envelope_size: size,
                    limit: limits.max_payload,
                },
                detail,
            )
        };
        if !limits.link_available {
            return Err(too_large("no link handler is configured to carry payloads by link"));
        }
        let delta = match largest {
            Some(i) => link_delta(i)?,
            None => 0,
        };
        match largest {
            Some(i) if delta < 0 => {
                plan[i] = Transport::Link;
                size = size.saturating_add_signed(delta);
            }
            _ => return Err(too_large("it does not fit even with every payload sent by link")),
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::SendOptions;
    use crate::payload::Payload;

    fn envelope(sizes: &[usize]) -> Envelope {
        let payloads =
            sizes.iter().enumerate().map(|(i, &n)| Payload::binary(format!("p{i}"), vec![1u8; n]));
        let mut n = 0u32;
        let mut ids = || {
            n += 1;
            format!("00000000-0000-4000-8000-{n:012}")
        };
        Envelope::pack("t", payloads.collect(), SendOptions::default(), &mut ids, &|| {
            time::OffsetDateTime::UNIX_EPOCH
        })
    }

    #[test]
    fn threshold_is_exclusive_for_direct() {
        let limits = PlanLimits { size_threshold: 100, ..PlanLimits::default() };
        let plan = plan_transports(&envelope(&[99, 100, 101]), &limits).unwrap();
        assert_eq!(plan, [Transport::Direct, Transport::Link, Transport::Link]);
    }

    #[test]
    fn base64_growth_moves_the_largest_to_link() {
        // Three payloads each under the threshold but together over 1 MiB
        // once base64 adds a third.
        let env = envelope(&[450_000, 400_000, 10]);
        let plan = plan_transports(&env, &PlanLimits::default()).unwrap();
        assert_eq!(plan, [Transport::Link, Transport::Direct, Transport::Direct]);
    }

    #[test]
    fn without_link_handler_too_big_is_an_error_naming_the_payload() {
        let env = envelope(&[10, 900_000]);
        let limits = PlanLimits { link_available: false, ..PlanLimits::default() };
        let err = plan_transports(&env, &limits).unwrap_err();
        match err.kind() {
            ErrorKind::PayloadTooLarge { dataname, envelope_size, limit } => {
                assert_eq!(dataname, "p1");
                assert_eq!(*envelope_size, env.json_len().unwrap());
                assert_eq!(*limit, DEFAULT_MAX_PAYLOAD);
            }
            other => panic!("wrong kind {other:?}"),
        }
        assert!(err.to_string().contains("exceeds max_payload"), "{err}");
    }

    #[test]
    fn without_link_handler_threshold_is_ignored_when_it_fits() {
        let env = envelope(&[600_000]);
        let limits = PlanLimits { link_available: false, ..PlanLimits::default() };
        assert_eq!(plan_transports(&env, &limits).unwrap(), [Transport::Direct]);
    }

    #[test]
    fn too_many_links_for_a_tiny_server_is_an_error() {
        let env = envelope(&[10; 20]);
        let limits = PlanLimits { max_payload: 300, ..PlanLimits::default() };
        let err = plan_transports(&env, &limits).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::PayloadTooLarge { .. }), "{err}");
    }
}
