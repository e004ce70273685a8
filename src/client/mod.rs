//! Host client for SmartMeter devices (feature `client`): a tokio connection that matches replies to
//! requests while log lines and `Data:` frames flow on the same socket, a sampling stream with
//! packet-gap accounting, UDP reception, mDNS discovery, an MQTT fleet view, and recording files.
//!
//! With feature `cli` it also holds the `smartmeter` command-line tool ([`cli`]).

mod duration;
mod error;
mod host;
pub mod recording;

#[cfg(feature = "cli")]
pub mod cli;

pub use duration::{DurationError, parse_duration};
pub use error::ClientError;
pub use host::{DEFAULT_PORT, DEFAULT_UDP_PORT, STREAM_PORT, Target};
