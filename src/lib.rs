//! # smartmeter
//!
//! The protocol, metering and device core of a Wi-Fi 3-phase smart meter, as one `no_std` + `alloc`
//! crate that firmware depends on and host tools reuse.
//!
//! Layers, from the bytes up (each only depends on the ones above it):
//!
//! | module | what it is | state, time, I/O |
//! |---|---|---|
//! | [`wire`] | commands, replies, log lines, `Data:` frames, MQTT topics: parse and encode | none |
//! | [`dsp`] | cycle-synchronous RMS / P / Q / S / frequency / phase / energy, resampling, synthesis | pure numerics |
//! | [`calibration`] | front-end scaling and per-phase gains | pure |
//! | [`hal`] | traits a binding implements: sample source, clock, store, system | traits only |
//! | [`device`] | the meter's sans-IO state machine, driven by `handle_*` / `poll_*` | caller's `now` |
//!
//! Feature flags:
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `std` | yes | `std::error::Error` impls, host conveniences |
//! | `sim` | no | the host simulator binding (binary `smartmeter-sim`) |
//! | `client` | no | the async host client library |
//! | `cli` | no | the `smartmeter` command-line tool |
//!
//! The device side always emits the canonical form of `docs/protocol.md`; the host-side parsers also accept the
//! older shapes printed in the original device's README.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod calibration;
pub mod device;
pub mod dsp;
pub mod hal;
mod text;
pub mod wire;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "sim")]
pub mod sim;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// A xorshift64 generator for the unit tests' randomised comparisons: deterministic from `seed`
/// (non-zero), so a failure names its case, and without a dependency.
#[cfg(test)]
pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
