//! Board-independent glue between a binding's byte streams and the `smartmeter` engine, kept out of
//! the firmware crate so it runs (and is tested) on the host against a real [`Device`].
//!
//! - [`conn`]: one engine connection over any `embedded_io_async::{Read, Write}` pair: bytes in →
//!   [`Device::handle_input`], [`Device::poll_output`] → bytes out, until the peer or the engine
//!   closes it. The ESP32-C3 firmware serves its TCP sockets and its USB-Serial-JTAG port
//!   ([`ConnKind::Serial`](smartmeter::device::ConnKind::Serial), the original device's command
//!   channel) with it.
//! - [`pending`]: the input bytes a connection read but the engine has not taken yet (back-pressure:
//!   they are offered again later instead of being dropped or grown without bound).
//! - [`logs`]: a `log` crate logger that queues records in a bounded buffer; the binding drains it into
//!   [`Device::log`], so the firmware's own diagnostics travel as the protocol's `Info:[L]` lines on
//!   every connection (the serial port included) instead of needing a console of their own.
//!
//! [`Device`]: smartmeter::device::Device
//! [`Device::handle_input`]: smartmeter::device::Device::handle_input
//! [`Device::poll_output`]: smartmeter::device::Device::poll_output
//! [`Device::log`]: smartmeter::device::Device::log
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

pub mod conn;
pub mod logs;
pub mod pending;

pub use conn::{Ended, Host, Link};
pub use logs::Logger;
pub use pending::Pending;
