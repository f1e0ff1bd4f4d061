//! Integration tests of the envelope codec: golden envelopes from every
//! peer, the malformed catalogue, and property tests.

mod golden;
mod malformed;
mod props;
mod util;
mod view;
