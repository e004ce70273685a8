//! The host simulator: a virtual 3-phase SmartMeter on real sockets (feature `sim`).
//!
//! A thin std binding around the sans-IO [`Device`](crate::device::Device) engine. All protocol logic —
//! replies, `Data:` frames, sessions, MQTT payloads, persistence records — lives in the engine; this
//! module only moves bytes and events between it and the host:
//!
//! | engine side | host side |
//! |---|---|
//! | `ConnKind::Command` | TCP `--port` (54321) |
//! | `ConnKind::RawStream` | TCP `--stream-port` (54322) |
//! | `ConnKind::StreamServer` | outgoing TCP on `Action::Connect` |
//! | `ConnKind::Serial` | a pseudo-terminal (`--serial`) |
//! | `handle_samples` | `grid::GridSource`: the synthetic grid at 32 kHz on the host clock |
//! | `Action::Persist` / `Restored` | `store::FileStore`: one file per record slot under `--state` |
//! | `Action::Publish`, `handle_mqtt*` | `mqtt::Bridge` (rumqttc) |
//! | `Action::SendDatagram` | one UDP socket |
//! | `Action::NtpRequest`, `handle_ntp` | `ntp::query` (SNTP) |
//! | `Action::Announce` | `mdns::Announcer` (mdns-sd) |
//! | `Action::Restart` | the engine is rebuilt in place from the store; listeners stay |
//!
//! Run it with `cargo sim -- [OPTIONS]`; it prints `listening on ADDR:PORT (stream ADDR:PORT)` once its
//! sockets are bound (`--port 0` / `--stream-port 0` pick free ports and print them), and with `--serial`
//! a second line `serial on /dev/pts/N`. SIGINT/SIGTERM persist the state and exit with status 0.
//!
//! Embedding it (what the binary does):
//!
//! ```no_run
//! use clap::Parser;
//! let args = smartmeter::sim::Args::parse_from(["smartmeter-sim", "--port", "0", "--state", "/tmp/meter"]);
//! smartmeter::sim::run_blocking(args)?; // returns after SIGINT/SIGTERM
//! # Ok::<(), smartmeter::sim::SimError>(())
//! ```

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

// Everything but the options and the entry point is the binding's own plumbing.
mod cli;
mod grid;
mod hal;
mod mdns;
mod mqtt;
mod ntp;
mod options;
mod pty;
mod runtime;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use cli::{Args, CurrentHarmonic, HostPort, PerPhase};

/// Why the simulator could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A listening socket could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The state directory is unusable.
    #[error("state directory {0}: {1}")]
    State(PathBuf, std::io::Error),
    /// The pseudo-terminal could not be opened.
    #[error("serial pseudo-terminal: {0}")]
    Pty(std::io::Error),
    /// The mDNS daemon could not start.
    #[error("mdns: {0}")]
    Mdns(String),
    /// The grid options are inconsistent.
    #[error("grid: {0}")]
    Grid(String),
    /// Any other I/O failure (runtime, signals).
    #[error("i/o: {0}")]
    Io(std::io::Error),
}

/// Runs the simulator on a fresh single-threaded tokio runtime until SIGINT/SIGTERM.
pub fn run_blocking(args: Args) -> Result<(), SimError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SimError::Io)?;
    rt.block_on(runtime::run(args))
}
