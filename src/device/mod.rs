//! The meter as a sans-IO state machine (quinn-proto's `handle_*` / `poll_*` shape).
//!
//! The engine owns no socket, clock, thread or ADC: a binding (the host simulator, the ESP32-C3
//! firmware, the tests) feeds it bytes, samples and the current time, and moves what it asks for.
//! Every binding drives this one tested state machine.
//!
//! **API contract** (bindings are written against exactly these names and signatures; the engine may
//! add items, never rename or remove them):
//!
//! ```text
//! Device::new(options: DeviceOptions, restored: Restored, now: Instant) -> Device
//! Device::handle_connected(&mut self, now: Instant, kind: ConnKind) -> ConnId
//! Device::handle_input(&mut self, conn: ConnId, now: Instant, bytes: &[u8]) -> usize  // bytes taken
//! Device::handle_closed(&mut self, conn: ConnId, now: Instant)
//! Device::handle_samples(&mut self, now: Instant, block: &PhysicalBlock<'_>)
//! Device::handle_codes(&mut self, now: Instant, block: &CodeBlock<'_>)
//! Device::handle_timeout(&mut self, now: Instant)
//! Device::handle_ntp(&mut self, now: Instant, result: NtpResult)
//! Device::handle_mqtt(&mut self, now: Instant, topic: &str, payload: &[u8])
//! Device::handle_mqtt_connected(&mut self, now: Instant, connected: bool)
//! Device::handle_shutdown(&mut self, now: Instant)          // persist everything (SIGTERM, power-fail)
//! Device::poll_output(&mut self, conn: ConnId, buf: &mut [u8]) -> usize   // bytes to write to `conn`, 0 = none
//! Device::poll_event(&mut self) -> Option<Action>
//! Device::poll_timeout(&self) -> Option<Instant>
//! Device::wall_time(&self, now: Instant) -> Instant     // `now` corrected by the last NTP sync
//! Device::config(&self) -> &Config                       // name, servers, ... (for mDNS, MQTT bridge)
//! ```
//!
//! - [`Device::handle_input`] applies back-pressure: it returns how many bytes it took; the binding
//!   keeps the rest, stops reading that socket meanwhile, and offers the rest again after its next
//!   `handle_*` / `poll_output` call. No complete line is ever dropped.
//! - [`Instant`] is the binding's clock in microseconds since the Unix epoch. The engine never reads a
//!   clock; it corrects `now` by the NTP offset it was given ([`Device::wall_time`]).
//! - [`Action`] carries what the binding must do: `Persist(Record)` (write [`Record::bytes`] to
//!   [`Record::slot`]), `NtpRequest { server }`, `Restart(RestartReason)` (only after the output of every
//!   connection has drained), `Publish { topic, payload, retain }`, `SendDatagram { addr, bytes }`,
//!   `Connect { host, port }` (stream server; the binding resolves the name and reports with
//!   `handle_connected(ConnKind::StreamServer ..)`), `Close(ConnId)`, `MqttConfigure(Option<MqttSettings>)`
//!   (connect/reconnect the broker or disconnect; the binding first delivers the publishes queued
//!   before it, then disconnects the old session cleanly), `Announce { name }` (mDNS name changed).
//! - [`ConnKind`]: `Command { peer }` (TCP 54321), `Serial`, `RawStream { peer }` (TCP 54322 reader: raw
//!   f32le, no commands), `StreamServer { peer }` (outgoing to port 54322 of the configured server,
//!   treated like a command connection).
//! - [`PhysicalBlock`]: interleaved six-channel samples in volts and amps (`v_l1,i_l1,v_l2,i_l2,v_l3,i_l3`),
//!   `rate_hz`, `samples`, taken at `start`; [`CodeBlock`]: the same as ADC codes with their scale
//!   (the estimator's integer path). Both are [`hal`](crate::hal) types.
//! - [`Restored`]: what the binding loaded from its store at boot (`Restored::default()` = nothing
//!   stored); [`Record`]: a versioned, checksummed record the binding hands to its store.
//! - [`DeviceOptions`]: build-time facts (version, compiled, ip, has_serial, psram/rtc flags, buffer
//!   size, max_clients, idle_timeout, intervals for status / persist / reconnect, an access token,
//!   capacities, the hardware identity for Home Assistant).
//!
//! Guarantees: no input panics the engine; every buffer is bounded by [`DeviceOptions`] capacities;
//! each command line gets at most one reply, in arrival order (docs/protocol.md §1).
//!
//! # Inside
//!
//! | module | what |
//! |---|---|
//! | `engine` | [`Device`]: the composition below and the binding-facing `handle_*` / `poll_*` calls |
//! | `request` | the request path, top-down: bytes → line → `Command` → handler → `Reply` → output queue |
//! | `commands` | one handler per command |
//! | `conns` | the connections machine: slots, admission, eviction, held lines, output, closes, auth |
//! | `session` | per connection: 600-byte line assembly, bounded output queue, deferred work |
//! | `access` | the device-wide throttle of token checks (`auth`, MQTT commands with `"token"`) |
//! | `timers` | one table of deadlines (`enum Timer`) behind [`Device::poll_timeout`] |
//! | `ntp` | the NTP offset, the one exchange in flight and its waiters; the wall-clock calendar |
//! | `sampling` | §5 sessions: the pipeline owning all sampling state (ntpConf wait, conversion, zero-crossing start, ring, frames) |
//! | `measure` | the measuring PQ pipeline (§11, owning the estimator) and the energy registers its windows update |
//! | `power_quality`, `pq_events` | §11 commands, event log lines and MQTT publications; the store of the last 64 events |
//! | `persist`, `outbox` | records (settings, energy, logbook pacing) and the bounded queue of [`Action`]s |
//! | `logbook` | warning/error ring for getLog: floods collapse into one row with a count |
//! | [`config`] | persistent settings with the §7 factory defaults, `factoryReset` / `basicReset` |
//! | [`store`] | versioned, sequence-numbered, CRC-32 records in two alternating slots per kind |
//! | [`driver`] | the generic loop that wires the engine to a binding's HAL |
//! | [`testing`] | internal sizes for footprint checks outside the crate |
//!
//! Measurements come from [`dsp::Estimator`](crate::dsp::Estimator) (calibration applied inside) over
//! every block; its windows feed the integer energy registers. Streams are resampled with
//! [`dsp::Resampler`](crate::dsp::Resampler) (any rate 1..=32000; linear phase, group delay at most
//! half an output period + ¼ s), derived sets come from a one-cycle estimator forked from the running
//! one (settled from the first sample). `startTs` names the instant the first sample describes.
//!
//! Time: `now` is the binding's clock; wall time (`now` + NTP offset) stamps log lines, `startTs`,
//! slots, energy start and the daily restart, shown in the configured zone (§10 `timezone`).
//!
//! Ordering: a `reqSamples`, `ntp`, `sample` with `ntpConf` or a throttled `auth` answers later;
//! lines that arrive on the same connection meanwhile are held (at most [`testing::MAX_DEFERRED`]
//! lines / [`testing::MAX_DEFERRED_BYTES`] bytes, then the engine stops taking input from it) and
//! answered after it. A `stop` or `?` behind a pending `reqSamples` first answers it with the
//! samples buffered so far.
//!
//! ```
//! use smartmeter::device::{ConnKind, Device, DeviceOptions, Instant, Restored};
//! let now = Instant::from_secs(1_614_681_575);
//! let mut dev = Device::new(DeviceOptions::default(), Restored::default(), now);
//! let conn = dev.handle_connected(now, ConnKind::Serial);
//! let mut buf = [0u8; 4096];
//! let n = dev.poll_output(conn, &mut buf); // the unprompted info reply
//! assert!(buf[..n].starts_with(b"Info:{\"cmd\":\"info\",\"type\":\"smartmeter\""));
//! let line = b"{\"cmd\":\"log\",\"level\":\"warning\"}\n";
//! assert_eq!(dev.handle_input(conn, now, line), line.len());
//! let n = dev.poll_output(conn, &mut buf);
//! assert_eq!(&buf[..n], b"Info:{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: warning\"}\r\n");
//! ```

mod access;
pub mod config;
pub mod driver;
mod logbook;
mod ntp;
mod outbox;
mod persist;
mod session;
pub mod store;
pub mod testing;
mod timers;

mod commands;
mod conns;
mod engine;
mod measure;
mod mqtt;
mod power_quality;
mod pq_events;
mod request;
mod sampling;

use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

pub use crate::hal::{CodeBlock, Instant, PhysicalBlock};
pub use config::Config;
pub use engine::{Device, LinkInfo};
pub use measure::Measurements;
pub use store::{Record, RecordError, RecordKind, Restored, SlotId};

pub use crate::wire::log::LogLevel;

/// Identifies one connection for the lifetime of the engine (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u32);

/// What kind of connection a binding reports with [`Device::handle_connected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnKind {
    /// A command client on TCP port 54321.
    Command {
        /// The client's address (UDP sampling answers to its IP).
        peer: SocketAddr,
    },
    /// The serial (USB) console.
    Serial,
    /// A reader on TCP port 54322: gets raw f32le samples, sends no commands.
    RawStream {
        /// The reader's address.
        peer: SocketAddr,
    },
    /// The outgoing connection to the configured stream server, treated like a command connection.
    StreamServer {
        /// The server's address.
        peer: SocketAddr,
    },
}

impl ConnKind {
    /// The peer address, if the connection has one.
    pub fn peer(&self) -> Option<SocketAddr> {
        match *self {
            ConnKind::Command { peer }
            | ConnKind::RawStream { peer }
            | ConnKind::StreamServer { peer } => Some(peer),
            ConnKind::Serial => None,
        }
    }
}

/// The outcome of an NTP exchange the engine asked for with [`Action::NtpRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NtpResult {
    /// The exchange succeeded.
    Synced {
        /// Server time minus the binding's clock, µs (wall = now + offset).
        offset_us: i64,
        /// Round-trip time of the exchange, µs (confidence = half of it).
        round_trip_us: u64,
    },
    /// No answer / unusable answer.
    Failed,
}

/// Why the engine asks for a restart (the reply to a restarting command names its command with
/// [`wire::reply::RestartKind`](crate::wire::reply::RestartKind)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartReason {
    /// `restart` command.
    Command,
    /// `factoryReset` (settings already reset and persisted).
    FactoryReset,
    /// `basicReset` (settings already reset and persisted).
    BasicReset,
    /// The daily restart time was reached.
    Daily,
}

/// How the binding should connect to the MQTT broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttSettings {
    /// Broker host name or IP literal.
    pub host: String,
    /// Broker port (default 1883).
    pub port: u16,
    /// User name, if any.
    pub user: Option<String>,
    /// Password, if any.
    pub password: Option<String>,
    /// MQTT client id (the device name).
    pub client_id: String,
    /// Topic filters to subscribe to.
    pub subscriptions: Vec<String>,
    /// Last-will topic (`powermeter/<name>/state/online`).
    pub will_topic: String,
    /// Last-will payload (`offline`, retained).
    pub will_payload: Vec<u8>,
}

/// What the binding must do for the engine.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Save the record's bytes into its slot.
    Persist(Record),
    /// Run one NTP exchange with this server (`host` or `host:port`) and report with `handle_ntp`.
    NtpRequest {
        /// Server address as configured.
        server: String,
    },
    /// Restart now (all output has drained).
    Restart(RestartReason),
    /// Publish an MQTT message, with the QoS [`wire::mqtt::publish_qos`](crate::wire::mqtt::publish_qos)
    /// gives for its topic and retain flag (QoS 1 for retained messages and power-quality events).
    Publish {
        /// Topic.
        topic: String,
        /// Payload.
        payload: Vec<u8>,
        /// Retain flag.
        retain: bool,
    },
    /// Send one UDP datagram.
    SendDatagram {
        /// Destination.
        addr: SocketAddr,
        /// Datagram content (one frame).
        bytes: Vec<u8>,
    },
    /// Open the outgoing stream-server connection, then call `handle_connected(StreamServer)`.
    Connect {
        /// Host name or literal.
        host: String,
        /// Port (default 54322).
        port: u16,
    },
    /// Close this connection (then call `handle_closed`).
    Close(ConnId),
    /// (Re)configure the MQTT client; `None` = disconnect.
    MqttConfigure(Option<MqttSettings>),
    /// The mDNS name changed.
    Announce {
        /// New name.
        name: String,
    },
}

/// Build-time facts and capacities the binding supplies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceOptions {
    /// Firmware version (`info.version`).
    pub version: String,
    /// Build time string (`info.compiled`).
    pub compiled: String,
    /// The device's IP (`info.ip`, `stop.ip`).
    pub ip: String,
    /// Whether a serial console exists (`Serial` sampling).
    pub has_serial: bool,
    /// `info.psram`.
    pub psram: bool,
    /// `info.rtc`.
    pub rtc: bool,
    /// `info.buffer_size`.
    pub buffer_size: u32,
    /// Most command clients at once (TCP 54321).
    pub max_clients: usize,
    /// A command client whose last complete line (or connect) is at least this old, and that owns
    /// no sampling session, is evicted when a new client needs its slot (docs/protocol.md §1: 60 s).
    pub idle_timeout: Duration,
    /// MQTT status period (default 5 s).
    pub status_interval: Duration,
    /// Energy persistence period (default 10 s).
    pub persist_interval: Duration,
    /// Stream-server reconnect period (default 30 s).
    pub reconnect_interval: Duration,
    /// Access token (simulator `--token`); overrides the stored one when set.
    pub token: Option<String>,
    /// Nominal source rate before the first block arrives (`info.sampling_rate`).
    pub source_rate_hz: u32,
    /// Frame bytes a connection's output queue holds (text gets `text_slack_bytes` more).
    pub out_queue_bytes: usize,
    /// Extra room for text lines in each output queue.
    pub text_slack_bytes: usize,
    /// Bytes of samples a sampling session may buffer (slots, flow control, cts pauses).
    pub sample_ring_bytes: usize,
    /// Rows in the persistent logbook.
    pub logbook_rows: usize,
    /// Most pending events (datagrams and publishes beyond it are dropped and counted).
    pub max_events: usize,
    /// A stable identity of the hardware (MAC address, chip id, serial number): the source of the
    /// Home Assistant node id and `unique_id`s (docs/protocol.md §12), so entities survive restarts,
    /// renames and resets. `None`: the engine makes one when it first needs it and keeps it in the
    /// settings ([`Config::device_id`]).
    pub device_id: Option<String>,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions {
            version: "2.2".into(),
            compiled: "unknown".into(),
            ip: "0.0.0.0".into(),
            has_serial: true,
            psram: false,
            rtc: false,
            buffer_size: 65_536,
            max_clients: 8,
            idle_timeout: Duration::from_secs(60),
            status_interval: Duration::from_secs(5),
            persist_interval: Duration::from_secs(10),
            reconnect_interval: Duration::from_secs(30),
            token: None,
            source_rate_hz: 8000,
            out_queue_bytes: 4096,
            text_slack_bytes: 1024,
            sample_ring_bytes: 65_536,
            logbook_rows: 24,
            max_events: 64,
            device_id: None,
        }
    }
}
