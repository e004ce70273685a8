//! Host client for SmartMeter devices (feature `client`), in two layers:
//!
//! - [`Connection`]: the protocol of one command connection, sans I/O (quinn-proto style): requests
//!   in, bytes out; bytes in, typed [`Response`]s, [`FrameSamples`] and [`Notice`]s out; timeouts,
//!   keepalive and liveness from the caller's clock. Every rule of docs/protocol.md §1 (one reply per
//!   line, in order; `?`, `!`, getLog, restarts, `auth` first) and the sampling bookkeeping
//!   ([`SampleTracker`]: packet gaps, zero-fill, `reqSamples` credit) live here, so blocking code
//!   and other languages can drive it too.
//! - [`Client`]: the tokio binding. One task moves bytes and time between the socket (or serial
//!   port) and a `Connection`; [`SampleStream`] carries the blocks of a session; UDP sessions feed
//!   their datagrams to a `SampleTracker`.
//!
//! Around them: mDNS discovery, an MQTT fleet view, recording files and their analysis.
//!
//! ```no_run
//! # async fn demo() -> Result<(), smartmeter::client::ClientError> {
//! use smartmeter::client::{Client, Target};
//! use smartmeter::wire::command::{SampleRequest, StreamType};
//!
//! let meter = Client::connect(&Target::parse("192.168.4.1")?).await?;
//! let p = meter.power().await?;
//! println!("P L1 = {:?} W", p.active_w[0]);
//! let mut stream = meter.sample(SampleRequest::new(StreamType::Tcp)).await?;
//! while let Some(block) = stream.next().await {
//!     let block = block?;
//!     println!("packet {} ({} lost before it): {} samples", block.packet, block.lost_packets, block.frames());
//!     # break;
//! }
//! let summary = stream.stop().await?;
//! println!("{}", summary.json());
//! # Ok(()) }
//! ```
//!
//! With feature `cli` it also holds the `smartmeter` command-line tool (not library API: a hidden
//! module whose only public item is the binary's `main`).

pub mod analyze;
pub(crate) mod broker;
mod channel;
mod conn;
mod connection;
mod discover;
mod duration;
mod error;
mod fleet;
mod helpers;
mod host;
mod options;
pub mod recording;
mod sample;
mod tls;
mod udp;

#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
#[cfg(feature = "collect")]
pub mod collect;

pub use broker::{BrokerAddr, MQTT_PORT, MQTTS_PORT};
pub use conn::Client;
pub use connection::{
    Answer, Connection, ConnectionEvent, FrameSamples, Greeting, Notice, Request, RequestId,
    Response, SampleStats, SampleTracker, SamplingInfo,
};
pub use discover::{Discovered, SERVICE_TYPE, discover, resolve};
pub use duration::{DurationError, parse_duration};
pub use error::ClientError;
pub use fleet::{Fleet, MeterStatus, fleet_snapshot};
pub use helpers::{Energy, Power};
pub use host::{DEFAULT_PORT, DEFAULT_UDP_PORT, STREAM_PORT, Target};
pub use options::ClientOptions;
pub use sample::SampleStream;
pub use tls::TlsFiles;
