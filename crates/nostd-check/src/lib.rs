//! A `#![no_std]` user of `natsbridge-envelope-core`, as an embedded device
//! would be: it packs, encodes, parses and plans with only `core` and
//! `alloc`. `cargo xtask nostd` builds it on its own (so no other workspace
//! member can switch `std` on through feature unification) and checks the
//! dependency tree.
#![no_std]
#![deny(missing_docs)]

extern crate alloc;

use alloc::vec::Vec;

use natsbridge_envelope_core::{
    Envelope, Error, Payload, PlanLimits, SendOptions, Transport, plan_transports,
    uuid_v4_from_random,
};

/// Packs one sensor reading the way a MicroPython-class device would
/// (100 KB threshold), given 16 random bytes per id from the device's RNG
/// and the current time. Returns the wire JSON.
pub fn encode_reading(
    subject: &str,
    reading: &[u8],
    mut random: impl FnMut() -> [u8; 16],
    now: time::OffsetDateTime,
) -> Result<Vec<u8>, Error> {
    let mut ids = || uuid_v4_from_random(random());
    let clock = move || now;
    let envelope = Envelope::pack(
        subject,
        alloc::vec![Payload::binary("reading", Vec::from(reading))],
        SendOptions::default(),
        &mut ids,
        &clock,
    );
    let limits = PlanLimits {
        size_threshold: natsbridge_envelope_core::MICROPYTHON_SIZE_THRESHOLD,
        link_available: false,
        ..PlanLimits::default()
    };
    let plan = plan_transports(&envelope, &limits)?;
    debug_assert!(plan.iter().all(|t| *t == Transport::Direct));
    envelope.to_json()
}

/// Reads an envelope back and returns the bytes of its first payload.
pub fn decode_first(json: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let envelope = Envelope::from_json(json)?;
    Ok(envelope.payloads.first().and_then(|p| p.bytes()).map(|b| b.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_without_std_in_the_library() {
        let json = encode_reading(
            "device.telemetry",
            b"21.5C",
            || [7; 16],
            time::OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(decode_first(&json).unwrap().as_deref(), Some(&b"21.5C"[..]));
    }
}
