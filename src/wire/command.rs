//! Commands: the lines a host sends to the meter (PROTOCOL.md §1, §2, §5, §10).
//!
//! [`Command::parse`] takes one line of untrusted bytes and answers a typed [`Command`] or a
//! [`CommandError`] whose `Display` is the exact `msg` text of the protocol's error reply and whose
//! [`CommandError::cmd`] is the `cmd` to echo. [`Command::encode`] writes the canonical JSON that host
//! tools send. Parsing is two steps (see STYLE.md): a zero-copy scanner (`scan`) reads the line into the borrowed, loosely
//! typed [`RawCommand`], then `TryFrom` validates it into the typed [`Command`].
//!
//! Leniency (the protocol's "be liberal in what you accept"): keys in any order, any whitespace, a
//! trailing `\r\n`, unknown keys ignored, booleans as JSON booleans or the strings `"true"`/`"false"`,
//! numbers as integers, integral floats (`8000.0`) or strings (`"8000"`), keys documented inside
//! `payload` also accepted at the top level and vice versa (the documented place wins).
//!
//! Checks that need state or a clock are left to the engine: the start `time` of a sample request is
//! only checked to be a finite positive number here (the 0.5–20 s window needs `now`), `Serial` is
//! accepted (the engine answers `Unsupported sampling type: Serial` where there is no serial port),
//! and the busy guard, Wi-Fi list and token checks belong to the engine too.
//!
//! ```
//! use smartmeter::wire::command::{Command, Measures, SampleRequest, StreamType};
//!
//! let cmd = Command::parse(b" {\"payload\":{\"rate\":\"1000\",\"type\":\"UDP\",\"port\":5000},\"cmd\":\"sample\"}\r\n")?;
//! let Command::Sample(req) = &cmd else { unreachable!() };
//! assert_eq!(req.stream, StreamType::Udp { port: 5000 });
//! assert_eq!(req.measures, Measures::VoltCurrent3);
//! assert_eq!(req.rate_hz, 1000);
//! assert_eq!(
//!     cmd.encode(),
//!     r#"{"cmd":"sample","payload":{"type":"UDP","measures":"v,i,v,i,v,i","rate":1000,"prefix":true,"port":5000,"flowCtr":false}}"#
//! );
//!
//! let err = Command::parse(br#"{"cmd":"reqSamples","samples":5}"#).unwrap_err();
//! assert_eq!(err.to_string(), "Samples must be 10-2000");
//! assert_eq!(err.cmd(), Some("reqSamples"));
//! # Ok::<(), smartmeter::wire::command::CommandError>(())
//! ```

pub(crate) mod json;
mod peek;
pub(crate) mod raw;
pub(crate) mod scan;

use alloc::string::{String, ToString};
use core::fmt;

pub use peek::peek_name;
pub use raw::RawCommand;
use raw::{Item, Loose};

use crate::wire::log::LogLevel;
use json::Obj;

/// The longest accepted command line in bytes, without its `\n` / `\r\n` terminator.
pub const MAX_LINE_BYTES: usize = 600;

/// One command, typed and validated. `Availability` is the bare `?` line and `Keepalive` the bare `!`.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `info`: device information (also sent unprompted on connect).
    Info,
    /// `getPower`: active, reactive and apparent power per phase.
    GetPower,
    /// `getVoltage`: RMS voltage per phase.
    GetVoltage,
    /// `getCurrent`: RMS current per phase (mA).
    GetCurrent,
    /// `getEnergy`: net active energy since the last reset.
    GetEnergy,
    /// `getPeriod`: line frequency per phase.
    GetPeriod,
    /// `getPhaseAngle`: voltage-current phase angle per phase.
    GetPhaseAngle,
    /// `mdns`: set the device name (a DNS label, 1..=24 of `[A-Za-z0-9-]`).
    Mdns {
        /// The new name, already validated.
        name: String,
    },
    /// `addWifi`: add an access point.
    AddWifi(WifiCredentials),
    /// `delWifi`: remove an access point.
    DelWifi {
        /// SSID to remove (≤ 32 bytes).
        ssid: String,
    },
    /// `calibration`: set the calibration factors.
    Calibration(Calibration),
    /// `restart`.
    Restart,
    /// `dailyRestart`: schedule (or disable) a restart every day.
    DailyRestart(DailyRestart),
    /// `factoryReset`: restore every default.
    FactoryReset,
    /// `basicReset`: restore every default but the name.
    BasicReset,
    /// `resetEnergy`: set the energy totals and their start time.
    ResetEnergy(EnergyReset),
    /// `sample`: start a sampling session.
    Sample(SampleRequest),
    /// `reqSamples`: flow-control credit of `samples` samples (10..=2000).
    ReqSamples {
        /// Number of samples to send as one frame.
        samples: u16,
    },
    /// `cts`: resume (`true`) or pause (`false`) sending.
    Cts {
        /// Clear to send.
        value: bool,
    },
    /// `stop`: stop the sampling session.
    Stop,
    /// `log`: set this connection's log level.
    Log {
        /// The new level.
        level: LogLevel,
    },
    /// `clearLog`: clear the persistent log.
    ClearLog,
    /// `getLog`: dump the persistent log.
    GetLog,
    /// `mqttServer`: set the MQTT broker.
    MqttServer(MqttServerSettings),
    /// `streamServer`: set the server the device connects out to (port 54322 by default).
    StreamServer {
        /// The address; [`ServerAddr::Disabled`] for `"-"`.
        server: ServerAddr,
    },
    /// `ntp`: synchronise the clock now.
    Ntp,
    /// `timeServer`: set the NTP server (port 123 by default).
    TimeServer {
        /// The address; [`ServerAddr::Disabled`] for `"-"`.
        server: ServerAddr,
    },
    /// `?`: answer `Setup done` and stop this connection's sampling session.
    Availability,
    /// `!`: keepalive, no reply.
    Keepalive,
    /// `getQuality` (extension, §10): power-quality values.
    GetQuality,
    /// `timezone` (extension): the wall-clock offset.
    Timezone {
        /// Minutes east of UTC, -720..=840.
        offset_min: i16,
    },
    /// `auth` (extension): authenticate this connection.
    Auth {
        /// The token, 1..=64 bytes.
        token: String,
    },
    /// `setToken` (extension, serial only): configure the access token.
    SetToken {
        /// The token, 0..=64 bytes; empty removes the token (open behaviour).
        token: String,
    },
}

/// Credentials of one Wi-Fi access point.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WifiCredentials {
    /// SSID, 1..=32 bytes.
    pub ssid: String,
    /// Password, 0..=64 bytes (empty for an open network).
    pub pwd: String,
}

impl fmt::Debug for WifiCredentials {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WifiCredentials")
            .field("ssid", &self.ssid)
            .field("pwd", &"***")
            .finish()
    }
}

/// Calibration factors as a command carries them; each factor is in [0.5, 2.0].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Calibration {
    /// `"cal":[vL1,iL1,vL2,iL2,vL3,iL3]` — per phase.
    Factors([f32; 6]),
    /// `"calV":v,"calI":i` — the same factors on every phase (single-phase form).
    Uniform {
        /// Voltage factor.
        v: f32,
        /// Current factor.
        i: f32,
    },
}

impl Calibration {
    /// Smallest allowed factor.
    pub const MIN: f32 = 0.5;
    /// Largest allowed factor.
    pub const MAX: f32 = 2.0;

    /// The six factors `[vL1,iL1,vL2,iL2,vL3,iL3]`.
    pub fn factors(&self) -> [f32; 6] {
        match *self {
            Calibration::Factors(f) => f,
            Calibration::Uniform { v, i } => [v, i, v, i, v, i],
        }
    }
}

/// The daily restart time; `Disabled` is written as hour and minute `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DailyRestart {
    /// No daily restart.
    #[default]
    Disabled,
    /// Restart every day at `hour:minute:00` (device wall clock).
    At {
        /// 0..=23.
        hour: u8,
        /// 0..=59.
        minute: u8,
    },
}

impl DailyRestart {
    /// The info reply's `dailyReset` text: `"None"` or `"@HH:MM:00"`.
    pub fn info_text(&self) -> String {
        match self {
            DailyRestart::Disabled => String::from("None"),
            DailyRestart::At { hour, minute } => alloc::format!("@{hour:02}:{minute:02}:00"),
        }
    }

    /// Parses the info reply's `dailyReset` text (inverse of [`DailyRestart::info_text`]).
    pub fn parse_info_text(text: &str) -> Option<DailyRestart> {
        if text == "None" || text == "-" {
            return Some(DailyRestart::Disabled);
        }
        let t = text.strip_prefix('@')?;
        let mut parts = t.split(':');
        let hour: u8 = parts.next()?.parse().ok()?;
        let minute: u8 = parts.next()?.parse().ok()?;
        (hour < 24 && minute < 60).then_some(DailyRestart::At { hour, minute })
    }
}

/// `resetEnergy` arguments.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EnergyReset {
    /// New totals `[L1,L2,L3]` in Wh (finite, may be negative: net energy); `None` = zeros.
    pub energy_wh: Option<[f64; 3]>,
    /// New start time in Unix seconds (finite, ≥ 0); `None` = now.
    pub start_ts_s: Option<f64>,
}

/// Where a sampling session sends its data (`type` of the sample request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// `Serial`: the serial port.
    Serial,
    /// `TCP`: the requesting connection.
    Tcp,
    /// `UDP`: datagrams to the requester's address at `port`.
    Udp {
        /// Destination port, 1..=65535 (default 54323).
        port: u16,
    },
    /// `MQTT`: one JSON per sample on `powermeter/<name>/state/info`.
    Mqtt,
    /// `FFMPEG`: re-configures the raw stream on port 54322.
    Ffmpeg,
}

impl StreamType {
    /// Default UDP destination port.
    pub const DEFAULT_UDP_PORT: u16 = 54323;

    /// The wire name (`type` of the request, `conn_type` of the reply).
    pub const fn as_str(&self) -> &'static str {
        match self {
            StreamType::Serial => "Serial",
            StreamType::Tcp => "TCP",
            StreamType::Udp { .. } => "UDP",
            StreamType::Mqtt => "MQTT",
            StreamType::Ffmpeg => "FFMPEG",
        }
    }

    /// The type for a wire name (ASCII case-insensitive), with `port` for UDP.
    pub fn from_name(name: &str, port: u16) -> Option<StreamType> {
        // The canonical spellings first, by bytes; then trimmed and case-insensitive.
        match name {
            "TCP" => return Some(StreamType::Tcp),
            "UDP" => return Some(StreamType::Udp { port }),
            "MQTT" => return Some(StreamType::Mqtt),
            _ => {}
        }
        let t = name.trim();
        Some(if t.eq_ignore_ascii_case("Serial") {
            StreamType::Serial
        } else if t.eq_ignore_ascii_case("TCP") {
            StreamType::Tcp
        } else if t.eq_ignore_ascii_case("UDP") {
            StreamType::Udp { port }
        } else if t.eq_ignore_ascii_case("MQTT") {
            StreamType::Mqtt
        } else if t.eq_ignore_ascii_case("FFMPEG") {
            StreamType::Ffmpeg
        } else {
            return None;
        })
    }
}

/// The six measure sets of a sampling session (PROTOCOL.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Measures {
    /// Waveforms of all phases: `v_l1,i_l1,v_l2,i_l2,v_l3,i_l3` (the default).
    #[default]
    VoltCurrent3,
    /// Waveforms of L1: `v_l1,i_l1`.
    VoltCurrentL1,
    /// Waveforms of L2: `v_l2,i_l2`.
    VoltCurrentL2,
    /// Waveforms of L3: `v_l3,i_l3`.
    VoltCurrentL3,
    /// Active and reactive power per phase: `p_l1,p_l2,p_l3,q_l1,q_l2,q_l3` (derived).
    PowerPQ,
    /// RMS voltage and current per phase: `vrms_l1..3,irms_l1..3` (derived).
    Rms,
}

impl Measures {
    /// Every set.
    pub const ALL: [Measures; 6] = [
        Measures::VoltCurrent3,
        Measures::VoltCurrentL1,
        Measures::VoltCurrentL2,
        Measures::VoltCurrentL3,
        Measures::PowerPQ,
        Measures::Rms,
    ];

    /// Channel names, in the order samples are interleaved in a frame.
    pub const fn channels(self) -> &'static str {
        match self {
            Measures::VoltCurrent3 => "v_l1,i_l1,v_l2,i_l2,v_l3,i_l3",
            Measures::VoltCurrentL1 => "v_l1,i_l1",
            Measures::VoltCurrentL2 => "v_l2,i_l2",
            Measures::VoltCurrentL3 => "v_l3,i_l3",
            Measures::PowerPQ => "p_l1,p_l2,p_l3,q_l1,q_l2,q_l3",
            Measures::Rms => "vrms_l1,vrms_l2,vrms_l3,irms_l1,irms_l2,irms_l3",
        }
    }

    /// The `measures` value of the sample reply (also the canonical request spelling).
    pub const fn reported(self) -> &'static str {
        match self {
            Measures::VoltCurrent3 => "v,i,v,i,v,i",
            Measures::VoltCurrentL1 => "v,i_L1",
            Measures::VoltCurrentL2 => "v,i_L2",
            Measures::VoltCurrentL3 => "v,i_L3",
            Measures::PowerPQ => "p,p,p,q,q,q",
            Measures::Rms => "v,v,v,i,i,i_RMS",
        }
    }

    /// The `unit` value of the sample reply.
    pub const fn unit(self) -> &'static str {
        match self {
            Measures::VoltCurrent3 => "V,mA,V,mA,V,mA",
            Measures::VoltCurrentL1 | Measures::VoltCurrentL2 | Measures::VoltCurrentL3 => "V,mA",
            Measures::PowerPQ => "W,W,W,VAR,VAR,VAR",
            Measures::Rms => "V,V,V,mA,mA,mA",
        }
    }

    /// Values per sample (`measurements` of the reply).
    pub const fn count(self) -> usize {
        match self {
            Measures::VoltCurrentL1 | Measures::VoltCurrentL2 | Measures::VoltCurrentL3 => 2,
            _ => 6,
        }
    }

    /// Derived sets are computed per line cycle; their rate is limited to
    /// [`SampleRequest::MAX_DERIVED_RATE_HZ`].
    pub const fn is_derived(self) -> bool {
        matches!(self, Measures::PowerPQ | Measures::Rms)
    }

    /// Any accepted spelling (`v,i`, `v,i,v,i,v,i`, `v,i_L1`, `p,q`, `p,p,p,q,q,q`, `v,i_RMS`,
    /// `v,v,v,i,i,i_RMS`); spaces are ignored and an empty string is the default set.
    pub fn parse(text: &str) -> Option<Measures> {
        let mut buf = [0u8; 24];
        let mut n = 0;
        for b in text.bytes().filter(|b| !b.is_ascii_whitespace()) {
            *buf.get_mut(n)? = b;
            n += 1;
        }
        Some(match buf.get(..n)? {
            b"" | b"v,i" | b"v,i,v,i,v,i" => Measures::VoltCurrent3,
            b"v,i_L1" => Measures::VoltCurrentL1,
            b"v,i_L2" => Measures::VoltCurrentL2,
            b"v,i_L3" => Measures::VoltCurrentL3,
            b"p,q" | b"p,p,p,q,q,q" => Measures::PowerPQ,
            b"v,i_RMS" | b"v,v,v,i,i,i_RMS" => Measures::Rms,
            _ => return None,
        })
    }
}

/// `slot [s,n]`: send only while `unix_seconds % slots == slot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    /// This device's slot, `< slots`.
    pub slot: u32,
    /// Number of slots, ≥ 1.
    pub slots: u32,
}

/// A validated `sample` request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRequest {
    /// Where the data goes.
    pub stream: StreamType,
    /// What is sampled.
    pub measures: Measures,
    /// Output rate, 1..=32000 Hz (≤ 50 for derived measures).
    pub rate_hz: u32,
    /// `Data:` prefix on frames (default true).
    pub prefix: bool,
    /// `flowCtr`: send only on `reqSamples` credit (default false).
    pub flow_control: bool,
    /// `time`: start at this Unix time in seconds. Only checked to be finite and > 0 here; the
    /// engine checks the 0.5–20 s window against its clock (`Start time must be 0.5-20 s ahead`).
    pub start_time: Option<f64>,
    /// `slot`: time-slotted sending.
    pub slot: Option<Slot>,
    /// `ntpConf`: required NTP confidence in ms before starting.
    pub ntp_conf_ms: Option<u32>,
}

impl SampleRequest {
    /// Rate when none is given.
    pub const DEFAULT_RATE_HZ: u32 = 8000;
    /// Highest rate.
    pub const MAX_RATE_HZ: u32 = 32_000;
    /// Highest rate of derived measures (`p,q`, `v,i_RMS`).
    pub const MAX_DERIVED_RATE_HZ: u32 = 50;

    /// A request with every default: all six waveforms at 8000 Hz, prefix on, no flow control.
    pub fn new(stream: StreamType) -> SampleRequest {
        SampleRequest {
            stream,
            measures: Measures::VoltCurrent3,
            rate_hz: SampleRequest::DEFAULT_RATE_HZ,
            prefix: true,
            flow_control: false,
            start_time: None,
            slot: None,
            ntp_conf_ms: None,
        }
    }
}

/// Which server a `…Server` command sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// `timeServer` / `time_server`, NTP, port 123.
    Time,
    /// `mqttServer` / `mqtt_server`, port 1883.
    Mqtt,
    /// `streamServer` / `stream_server`, port 54322.
    Stream,
}

impl ServerKind {
    /// The command name.
    pub const fn cmd(self) -> &'static str {
        match self {
            ServerKind::Time => "timeServer",
            ServerKind::Mqtt => "mqttServer",
            ServerKind::Stream => "streamServer",
        }
    }

    /// The word in the reply texts: `TimeServer`, `MQTTServer`, `StreamServer`.
    pub const fn label(self) -> &'static str {
        match self {
            ServerKind::Time => "TimeServer",
            ServerKind::Mqtt => "MQTTServer",
            ServerKind::Stream => "StreamServer",
        }
    }

    /// The reply / info key: `time_server`, `mqtt_server`, `stream_server`.
    pub const fn key(self) -> &'static str {
        match self {
            ServerKind::Time => "time_server",
            ServerKind::Mqtt => "mqtt_server",
            ServerKind::Stream => "stream_server",
        }
    }

    /// The port used when the address has none.
    pub const fn default_port(self) -> u16 {
        match self {
            ServerKind::Time => 123,
            ServerKind::Mqtt => 1883,
            ServerKind::Stream => 54322,
        }
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A server address: `host`, `host:port`, `[v6]:port` or a bare IPv6 literal; `"-"` disables.
///
/// The host is an IPv4/IPv6 literal or a host name of at most 63 bytes (`[A-Za-z0-9._-]`); the port,
/// when given, is 1..=65535. The default port depends on the server, so it is the caller's choice
/// ([`ServerAddr::port_or`]). `Display` writes the canonical text, which parses back to the same value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum ServerAddr {
    /// `"-"`: no server.
    #[default]
    Disabled,
    /// A host with an optional port.
    Host {
        /// Name or literal, without brackets.
        host: String,
        /// Explicit port.
        port: Option<u16>,
    },
}

impl ServerAddr {
    /// Longest host part in bytes.
    pub const MAX_HOST_BYTES: usize = 63;

    /// Parses the address text; the error is the reason for `Invalid server: <reason>`.
    pub fn parse(text: &str) -> Result<ServerAddr, &'static str> {
        // `trim` decodes characters from both ends; a text that starts and ends with a visible
        // ASCII byte (what is always sent) has nothing to trim.
        let plain_end = |b: Option<&u8>| b.is_some_and(|b| (0x21..0x7f).contains(b));
        let text = if plain_end(text.as_bytes().first()) && plain_end(text.as_bytes().last()) {
            text
        } else {
            text.trim()
        };
        if text == "-" {
            return Ok(ServerAddr::Disabled);
        }
        if text.is_empty() {
            return Err("empty");
        }
        let (host, port, v6) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or("missing ]")?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or("expected :port after ]")?),
            };
            (host, port, true)
        } else {
            // One colon separates the port; more than one is a bare IPv6 literal.
            let bytes = text.as_bytes();
            match bytes.iter().position(|&b| b == b':') {
                None => (text, None, false),
                Some(i) if bytes.get(i + 1..).is_some_and(|r| r.contains(&b':')) => {
                    (text, None, true)
                }
                Some(i) => (text.get(..i).unwrap_or_default(), text.get(i + 1..), false),
            }
        };
        if host.is_empty() {
            return Err("empty host");
        }
        if host.len() > ServerAddr::MAX_HOST_BYTES {
            return Err("host longer than 63 bytes");
        }
        let ok = if v6 {
            // an IPv6 literal has at least two colons (`::`); `[:D]` is not one, and written
            // without brackets it would read back as host `` port `D`
            host.bytes().filter(|&b| b == b':').count() >= 2
                && host
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        } else {
            host.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        if !ok {
            return Err("not a host name or IP literal");
        }
        let port = match port {
            None => None,
            Some(p) => Some(parse_port(p).ok_or("port must be 1-65535")?),
        };
        Ok(ServerAddr::Host {
            host: String::from(host),
            port,
        })
    }

    /// The host, `None` when disabled.
    pub fn host(&self) -> Option<&str> {
        match self {
            ServerAddr::Disabled => None,
            ServerAddr::Host { host, .. } => Some(host),
        }
    }

    /// The explicit port or `default`.
    pub fn port_or(&self, default: u16) -> u16 {
        match self {
            ServerAddr::Host {
                port: Some(port), ..
            } => *port,
            _ => default,
        }
    }

    /// True for `"-"`.
    pub fn is_disabled(&self) -> bool {
        matches!(self, ServerAddr::Disabled)
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 {
        return None;
    }
    let mut n = 0u32;
    for b in p.bytes() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u32::from(d);
    }
    u16::try_from(n).ok().filter(|&p| p != 0)
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddr::Disabled => f.write_str("-"),
            ServerAddr::Host { host, port: None } => f.write_str(host),
            ServerAddr::Host {
                host,
                port: Some(p),
            } if host.contains(':') => write!(f, "[{host}]:{p}"),
            ServerAddr::Host {
                host,
                port: Some(p),
            } => write!(f, "{host}:{p}"),
        }
    }
}

/// `mqttServer` arguments: the broker and optional credentials / port.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct MqttServerSettings {
    /// Broker address.
    pub server: ServerAddr,
    /// `user`, ≤ 64 bytes.
    pub user: Option<String>,
    /// `pwd`, ≤ 64 bytes.
    pub pwd: Option<String>,
    /// `port` key; when absent the address's port, else 1883.
    pub port: Option<u16>,
}

impl MqttServerSettings {
    /// The port to connect to: the `port` key, else the address's port, else 1883.
    pub fn effective_port(&self) -> u16 {
        self.port
            .unwrap_or_else(|| self.server.port_or(ServerKind::Mqtt.default_port()))
    }
}

impl fmt::Debug for MqttServerSettings {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttServerSettings")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("pwd", &self.pwd.as_ref().map(|_| "***"))
            .field("port", &self.port)
            .finish()
    }
}

/// Why a command line was refused. `Display` is the exact `msg` of the error reply (PROTOCOL.md §1,
/// §2, §5) and [`CommandError::cmd`] the `cmd` it echoes, so the engine builds the reply as
/// `{"error":true[,"cmd":cmd],"msg":<Display>}` in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The line exceeds [`MAX_LINE_BYTES`].
    #[error("Line too long (max 600 bytes)")]
    LineTooLong,
    /// The line is empty or only whitespace (the engine may ignore it instead of replying).
    #[error("JSON format error, syntax: {{\"cmd\":<cmdName>, \"[payload\":{{<data>}}]}}}}")]
    Empty,
    /// Not JSON, not an object, a duplicate key, or no string `cmd`.
    #[error("JSON format error, syntax: {{\"cmd\":<cmdName>, \"[payload\":{{<data>}}]}}}}")]
    Json,
    /// `cmd` names no known command.
    #[error("unknown command")]
    UnknownCommand {
        /// The name as sent.
        cmd: String,
    },
    /// `sample` without `type`.
    #[error("Not a valid \"sample\" command, \"type\" missing")]
    SampleTypeMissing,
    /// `sample` with an unknown `type`.
    #[error("Unsupported sampling type: {value}")]
    UnsupportedType {
        /// The type as sent.
        value: String,
    },
    /// `sample` with unknown `measures`.
    #[error("Unsupported measures: {value}")]
    UnsupportedMeasures {
        /// The measures as sent.
        value: String,
    },
    /// `sample` with a `rate` that is not an integer in range (1..=32000, ≤ 50 for derived measures).
    #[error("SamplingRate could not be set to {value}")]
    SamplingRate {
        /// The rate as sent.
        value: String,
    },
    /// `sample` of type UDP with a `port` outside 1..=65535.
    #[error("Unsupported UDP port: {value}")]
    UdpPort {
        /// The port as sent.
        value: String,
    },
    /// `sample` with a `slot` that is not `[s,n]`, `0 <= s < n`.
    #[error("Invalid slot")]
    Slot,
    /// `reqSamples` with `samples` missing or outside 10..=2000.
    #[error("Samples must be 10-2000")]
    Samples,
    /// `mdns` with a missing or invalid name.
    #[error("MDNS name must be 1-24 characters [A-Za-z0-9-]")]
    MdnsName,
    /// `addWifi`/`delWifi` with an SSID over 32 or a password over 64 bytes.
    #[error("SSID or password too long (max 32, 64)")]
    WifiTooLong {
        /// `addWifi` or `delWifi`.
        cmd: &'static str,
    },
    /// `calibration` with a factor outside [0.5, 2.0] (`calV` is index 0, `calI` index 1).
    #[error("Calibration parameter cal[{index}]: {value} not allowed [0.5-2.0]")]
    CalibrationFactor {
        /// Position in `cal`.
        index: usize,
        /// The factor as sent.
        value: String,
    },
    /// `log` without `level`.
    #[error("Not a valid Log level cmd, level missing")]
    LogLevelMissing,
    /// `log` with an unknown level.
    #[error("Unknown log level: {value}")]
    UnknownLogLevel {
        /// The level as sent.
        value: String,
    },
    /// `dailyRestart` without `hour` or `minute`.
    #[error("Missing hour/minute")]
    MissingHourMinute,
    /// `dailyRestart` with an hour outside -1..=23.
    #[error("Hour must be in 24h format, -1 to disable")]
    Hour,
    /// `dailyRestart` with a minute outside -1..=59.
    #[error("Minute must be -1<min<60, -1 to disable")]
    Minute,
    /// `…Server` without `payload.server`.
    #[error("{kind} address required in payload with key server")]
    ServerMissing {
        /// Which server.
        kind: ServerKind,
    },
    /// Any other invalid field: `Invalid <field>: <reason>`.
    #[error("Invalid {field}: {reason}")]
    Invalid {
        /// The command.
        cmd: &'static str,
        /// The wire key, e.g. `flowCtr`.
        field: &'static str,
        /// What was expected, e.g. `expected true or false`.
        reason: &'static str,
    },
}

impl CommandError {
    /// The `cmd` the error reply echoes; `None` when the line had no usable command name.
    pub fn cmd(&self) -> Option<&str> {
        Some(match self {
            CommandError::LineTooLong | CommandError::Empty | CommandError::Json => return None,
            CommandError::UnknownCommand { cmd } => cmd,
            CommandError::SampleTypeMissing
            | CommandError::UnsupportedType { .. }
            | CommandError::UnsupportedMeasures { .. }
            | CommandError::SamplingRate { .. }
            | CommandError::UdpPort { .. }
            | CommandError::Slot => "sample",
            CommandError::Samples => "reqSamples",
            CommandError::MdnsName => "mdns",
            CommandError::WifiTooLong { cmd } | CommandError::Invalid { cmd, .. } => cmd,
            CommandError::CalibrationFactor { .. } => "calibration",
            CommandError::LogLevelMissing | CommandError::UnknownLogLevel { .. } => "log",
            CommandError::MissingHourMinute | CommandError::Hour | CommandError::Minute => {
                "dailyRestart"
            }
            CommandError::ServerMissing { kind } => kind.cmd(),
        })
    }
}

/// Longest SSID in bytes.
pub const MAX_SSID_BYTES: usize = 32;
/// Longest Wi-Fi password in bytes.
pub const MAX_WIFI_PWD_BYTES: usize = 64;
/// Longest mDNS name in bytes.
pub const MAX_MDNS_NAME_BYTES: usize = 24;
/// Longest access token / MQTT user / MQTT password in bytes.
pub const MAX_TOKEN_BYTES: usize = 64;

/// True if `name` is a valid device name: 1..=24 bytes of `[A-Za-z0-9-]`.
pub fn is_valid_mdns_name(name: &str) -> bool {
    (1..=MAX_MDNS_NAME_BYTES).contains(&name.len())
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-'))
}

impl Command {
    /// Every command name of the protocol (the `cmd` strings, then `?` and `!`).
    pub const NAMES: [&'static str; 33] = [
        "info",
        "getPower",
        "getVoltage",
        "getCurrent",
        "getEnergy",
        "getPeriod",
        "getPhaseAngle",
        "mdns",
        "addWifi",
        "delWifi",
        "calibration",
        "restart",
        "dailyRestart",
        "factoryReset",
        "basicReset",
        "resetEnergy",
        "sample",
        "reqSamples",
        "cts",
        "stop",
        "log",
        "clearLog",
        "getLog",
        "mqttServer",
        "streamServer",
        "ntp",
        "timeServer",
        "getQuality",
        "timezone",
        "auth",
        "setToken",
        "?",
        "!",
    ];

    /// Parses one line of untrusted bytes (with or without its `\n` / `\r\n`). A JSON object that
    /// only lacks its final `}` is accepted (the seed README's calibration example is written so).
    ///
    /// Never panics; memory is bounded by the 600-byte line limit, checked before any parsing, and
    /// by a nesting limit on known keys (unknown keys are skipped iteratively). The raw form lives on
    /// the stack (about 1.8 KB, 3.6 KB with a `payload`: arrays of up to 6 numbers are kept
    /// inline); the heap is only used for escaped strings, other arrays and the typed result's
    /// strings.
    pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
        let line = Command::strip_line(line)?;
        match line.first() {
            None => Err(CommandError::Empty),
            Some(b'?') => Ok(Command::Availability),
            Some(b'!') => Ok(Command::Keepalive),
            Some(_) => match Command::bare(line) {
                Some(command) => Ok(command),
                None => Command::parse_json(line),
            },
        }
    }

    /// The line without its `\n` / `\r\n` and surrounding whitespace, once its length is checked.
    #[inline(always)]
    fn strip_line(line: &[u8]) -> Result<&[u8], CommandError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE_BYTES {
            return Err(CommandError::LineTooLong);
        }
        Ok(line.trim_ascii())
    }

    /// The canonical line of a command without arguments (`{"cmd":"getPower"}`, what host tools poll
    /// with), recognised by comparing bytes. Any other spelling (spaces, more keys, escapes) is left
    /// to [`parse_json`](Self::parse_json), which gives the same command for these lines (a unit test
    /// holds the two together). Always inlined: it is the whole cost of those lines.
    #[inline(always)]
    fn bare(line: &[u8]) -> Option<Command> {
        let name = line.strip_prefix(b"{\"cmd\":\"")?.strip_suffix(b"\"}")?;
        Some(match name {
            b"info" => Command::Info,
            b"getPower" => Command::GetPower,
            b"getVoltage" => Command::GetVoltage,
            b"getCurrent" => Command::GetCurrent,
            b"getEnergy" => Command::GetEnergy,
            b"getPeriod" => Command::GetPeriod,
            b"getPhaseAngle" => Command::GetPhaseAngle,
            b"getQuality" => Command::GetQuality,
            b"stop" => Command::Stop,
            b"restart" => Command::Restart,
            b"factoryReset" => Command::FactoryReset,
            b"basicReset" => Command::BasicReset,
            b"clearLog" => Command::ClearLog,
            b"getLog" => Command::GetLog,
            b"ntp" => Command::Ntp,
            _ => return None,
        })
    }

    /// The general path: a trimmed, non-empty line that is neither `?` nor `!`, through the JSON
    /// scanner. Not inlined: its large stack frame would otherwise be set up for the bare lines too.
    #[inline(never)]
    fn parse_json(line: &[u8]) -> Result<Command, CommandError> {
        Command::scan_json(line, Command::from_fields)
    }

    /// [`Command::parse_json`], also reading the command's `token` key (see [`Envelope`]).
    #[inline(never)]
    fn parse_json_token(line: &[u8]) -> Result<(Command, Option<String>), CommandError> {
        Command::scan_json(line, |f| {
            let command = Command::from_fields(f)?;
            let token = access_token(f, &command)?;
            Ok((command, token))
        })
    }

    /// Scans a JSON line and hands its fields to `typed`.
    #[inline(always)]
    fn scan_json<T>(
        line: &[u8],
        typed: impl Fn(&Fields<'_, '_>) -> Result<T, CommandError>,
    ) -> Result<T, CommandError> {
        // At most two ~1.8 KB structs on the stack; no heap use for a well-formed command.
        let mut raw = RawCommand::default();
        let mut payload = None;
        match raw.fill_split_from_json(&mut payload, line) {
            Ok(owns_heap) => {
                let result = typed(&Fields {
                    top: &raw,
                    payload: payload.as_ref(),
                });
                if !owns_heap {
                    // Only borrowed strings and scalars: nothing to free, so skip the drop
                    // glue of the ~60 optional fields (no leak: there is no heap memory).
                    core::mem::forget(raw);
                    core::mem::forget(payload);
                }
                result
            }
            // The seed's own calibration example lacks its final `}`: retry once with it.
            Err(scan::ScanError::Eof) => {
                let mut fixed = alloc::vec::Vec::with_capacity(line.len() + 1);
                fixed.extend_from_slice(line);
                fixed.push(b'}');
                let raw = RawCommand::from_json(&fixed)?;
                typed(&Fields {
                    top: &raw,
                    payload: raw.payload(),
                })
            }
            Err(_) => Err(CommandError::Json),
        }
    }

    /// The command name as sent in `cmd` (`"?"` and `"!"` for the two bare commands).
    pub const fn name(&self) -> &'static str {
        match self {
            Command::Info => "info",
            Command::GetPower => "getPower",
            Command::GetVoltage => "getVoltage",
            Command::GetCurrent => "getCurrent",
            Command::GetEnergy => "getEnergy",
            Command::GetPeriod => "getPeriod",
            Command::GetPhaseAngle => "getPhaseAngle",
            Command::Mdns { .. } => "mdns",
            Command::AddWifi(_) => "addWifi",
            Command::DelWifi { .. } => "delWifi",
            Command::Calibration(_) => "calibration",
            Command::Restart => "restart",
            Command::DailyRestart(_) => "dailyRestart",
            Command::FactoryReset => "factoryReset",
            Command::BasicReset => "basicReset",
            Command::ResetEnergy(_) => "resetEnergy",
            Command::Sample(_) => "sample",
            Command::ReqSamples { .. } => "reqSamples",
            Command::Cts { .. } => "cts",
            Command::Stop => "stop",
            Command::Log { .. } => "log",
            Command::ClearLog => "clearLog",
            Command::GetLog => "getLog",
            Command::MqttServer(_) => "mqttServer",
            Command::StreamServer { .. } => "streamServer",
            Command::Ntp => "ntp",
            Command::TimeServer { .. } => "timeServer",
            Command::Availability => "?",
            Command::Keepalive => "!",
            Command::GetQuality => "getQuality",
            Command::Timezone { .. } => "timezone",
            Command::Auth { .. } => "auth",
            Command::SetToken { .. } => "setToken",
        }
    }

    /// The canonical line as host tools send it, without line end: compact JSON with `cmd` first and
    /// the keys in the order of PROTOCOL.md (`?` and `!` for the bare commands). Parses back to `self`.
    pub fn encode(&self) -> String {
        if matches!(self, Command::Availability | Command::Keepalive) {
            return self.name().to_string();
        }
        let mut o = Obj::new();
        o.str("cmd", self.name());
        match self {
            Command::Availability | Command::Keepalive => {}
            Command::Mdns { name } => {
                let mut p = Obj::new();
                o.raw("payload", &p.str("name", name).finish());
            }
            Command::AddWifi(w) => {
                let mut p = Obj::new();
                o.raw(
                    "payload",
                    &p.str("ssid", &w.ssid).str("pwd", &w.pwd).finish(),
                );
            }
            Command::DelWifi { ssid } => {
                let mut p = Obj::new();
                o.raw("payload", &p.str("ssid", ssid).finish());
            }
            Command::Calibration(Calibration::Factors(f)) => {
                o.f32s("cal", f);
            }
            Command::Calibration(Calibration::Uniform { v, i }) => {
                o.f32("calV", *v).f32("calI", *i);
            }
            Command::DailyRestart(d) => {
                let (h, m) = match d {
                    DailyRestart::Disabled => (-1, -1),
                    DailyRestart::At { hour, minute } => (i16::from(*hour), i16::from(*minute)),
                };
                o.int("hour", h).int("minute", m);
            }
            Command::ResetEnergy(r) => {
                if let Some(e) = &r.energy_wh {
                    o.f64s("energy", e);
                }
                if let Some(ts) = r.start_ts_s {
                    o.f64("ts", ts);
                }
            }
            Command::Sample(s) => {
                o.raw("payload", &encode_sample(s));
            }
            Command::ReqSamples { samples } => {
                o.int("samples", samples);
            }
            Command::Cts { value } => {
                o.bool("value", *value);
            }
            Command::Log { level } => {
                o.str("level", level.as_str());
            }
            Command::MqttServer(m) => {
                let mut p = Obj::new();
                p.str("server", &m.server.to_string());
                if let Some(u) = &m.user {
                    p.str("user", u);
                }
                if let Some(pw) = &m.pwd {
                    p.str("pwd", pw);
                }
                if let Some(port) = m.port {
                    p.int("port", port);
                }
                o.raw("payload", &p.finish());
            }
            Command::StreamServer { server } | Command::TimeServer { server } => {
                let mut p = Obj::new();
                o.raw("payload", &p.str("server", &server.to_string()).finish());
            }
            Command::Timezone { offset_min } => {
                o.int("offset", offset_min);
            }
            Command::Auth { token } | Command::SetToken { token } => {
                o.str("token", token);
            }
            Command::Info
            | Command::GetPower
            | Command::GetVoltage
            | Command::GetCurrent
            | Command::GetEnergy
            | Command::GetPeriod
            | Command::GetPhaseAngle
            | Command::Restart
            | Command::FactoryReset
            | Command::BasicReset
            | Command::Stop
            | Command::ClearLog
            | Command::GetLog
            | Command::Ntp
            | Command::GetQuality => {}
        }
        o.finish()
    }
}

fn encode_sample(s: &SampleRequest) -> String {
    let mut p = Obj::new();
    p.str("type", s.stream.as_str())
        .str("measures", s.measures.reported())
        .int("rate", s.rate_hz)
        .bool("prefix", s.prefix);
    if let StreamType::Udp { port } = s.stream {
        p.int("port", port);
    }
    if let Some(t) = s.start_time {
        p.f64("time", t);
    }
    p.bool("flowCtr", s.flow_control);
    if let Some(slot) = s.slot {
        p.raw("slot", &alloc::format!("[{},{}]", slot.slot, slot.slots));
    }
    if let Some(ms) = s.ntp_conf_ms {
        p.int("ntpConf", ms);
    }
    p.finish()
}

impl fmt::Display for Command {
    /// The canonical line ([`Command::encode`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// A command together with the access token carried in its own JSON object (`"token":T`,
/// PROTOCOL.md §10).
///
/// MQTT has no sessions (the broker relays every publisher), so a protected command sent there must
/// carry the token itself; [`Envelope::parse`] reads it next to the command at the cost of one field
/// lookup (the canonical argument-less lines keep [`Command::parse`]'s byte-compare fast path and
/// carry no token). For `auth` and `setToken` the token is the command's own argument, never the
/// envelope's. [`Envelope::encode`] writes the token only when one is given, so
/// [`Command::encode`] stays token-free.
///
/// ```
/// use smartmeter::wire::command::{Command, Envelope};
/// let e = Envelope::parse(br#"{"cmd":"delWifi","payload":{"ssid":"lab"},"token":"s3cret"}"#)?;
/// assert_eq!(e.token.as_deref(), Some("s3cret"));
/// assert_eq!(e.command, Command::DelWifi { ssid: "lab".into() });
/// assert_eq!(e.encode(), r#"{"cmd":"delWifi","payload":{"ssid":"lab"},"token":"s3cret"}"#);
/// assert_eq!(Envelope::parse(br#"{"cmd":"getPower"}"#)?.token, None);
/// # Ok::<(), smartmeter::wire::command::CommandError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The command.
    pub command: Command,
    /// The `token` key of the command's object (a string of at most [`MAX_TOKEN_BYTES`]); `None`
    /// when absent, and always for `auth` / `setToken`.
    pub token: Option<String>,
}

impl Envelope {
    /// Parses one line like [`Command::parse`] and also reads its `token` key. A `token` that is not
    /// a string of at most 64 bytes is `Invalid token: …` (for `auth` / `setToken` as before).
    pub fn parse(line: &[u8]) -> Result<Envelope, CommandError> {
        // The steps of `Command::parse`, with the token-reading scan (a proptest holds the two
        // together; written out so the plain parse stays exactly as fast).
        let line = Command::strip_line(line)?;
        let plain = |command| Envelope {
            command,
            token: None,
        };
        match line.first() {
            None => Err(CommandError::Empty),
            Some(b'?') => Ok(plain(Command::Availability)),
            Some(b'!') => Ok(plain(Command::Keepalive)),
            Some(_) => match Command::bare(line) {
                Some(command) => Ok(plain(command)),
                None => {
                    let (command, token) = Command::parse_json_token(line)?;
                    Ok(Envelope { command, token })
                }
            },
        }
    }

    /// The canonical line: [`Command::encode`] with `"token":T` appended when a token is given (not
    /// for `?` / `!`, which are not JSON, nor for `auth` / `setToken`, which carry their own).
    pub fn encode(&self) -> String {
        let mut line = self.command.encode();
        let own = matches!(
            self.command,
            Command::Availability
                | Command::Keepalive
                | Command::Auth { .. }
                | Command::SetToken { .. }
        );
        if let (Some(t), false) = (&self.token, own)
            && line.ends_with('}')
        {
            line.pop();
            let mut o = Obj::new();
            o.str("token", t);
            let tail = o.finish();
            // `tail` is `{"token":…}`: append its members to the command's object.
            line.push(',');
            line.push_str(tail.get(1..).unwrap_or("}"));
        }
        line
    }
}

/// The access token of a command (the `token` key, top level first), for [`Envelope`].
fn access_token(f: &Fields<'_, '_>, command: &Command) -> Result<Option<String>, CommandError> {
    if matches!(command, Command::Auth { .. } | Command::SetToken { .. }) {
        return Ok(None);
    }
    match f.at_top(|r| &r.token) {
        None => Ok(None),
        Some(v) => match v.as_str() {
            Some(t) if t.len() <= MAX_TOKEN_BYTES => Ok(Some(String::from(t))),
            _ => Err(invalid(
                command.name(),
                "token",
                "expected a string of at most 64 bytes",
            )),
        },
    }
}

/// The command name spelled by `bytes`, as a static string (the scanner stores it without
/// checking UTF-8 again). Dispatches on the length first: one or two comparisons per name.
pub(crate) fn known_name(bytes: &[u8]) -> Option<&'static str> {
    Some(match bytes.len() {
        3 => match bytes {
            b"cts" => "cts",
            b"log" => "log",
            b"ntp" => "ntp",
            _ => return None,
        },
        4 => match bytes {
            b"info" => "info",
            b"mdns" => "mdns",
            b"stop" => "stop",
            b"auth" => "auth",
            _ => return None,
        },
        6 => match bytes {
            b"sample" => "sample",
            b"getLog" => "getLog",
            _ => return None,
        },
        7 => match bytes {
            b"addWifi" => "addWifi",
            b"delWifi" => "delWifi",
            b"restart" => "restart",
            _ => return None,
        },
        8 => match bytes {
            b"getPower" => "getPower",
            b"clearLog" => "clearLog",
            b"timezone" => "timezone",
            b"setToken" => "setToken",
            _ => return None,
        },
        9 => match bytes {
            b"getEnergy" => "getEnergy",
            b"getPeriod" => "getPeriod",
            _ => return None,
        },
        10 => match bytes {
            b"getVoltage" => "getVoltage",
            b"getCurrent" => "getCurrent",
            b"basicReset" => "basicReset",
            b"reqSamples" => "reqSamples",
            b"mqttServer" => "mqttServer",
            b"timeServer" => "timeServer",
            b"getQuality" => "getQuality",
            _ => return None,
        },
        11 => match bytes {
            b"calibration" => "calibration",
            b"resetEnergy" => "resetEnergy",
            _ => return None,
        },
        12 => match bytes {
            b"dailyRestart" => "dailyRestart",
            b"factoryReset" => "factoryReset",
            b"streamServer" => "streamServer",
            _ => return None,
        },
        13 => match bytes {
            b"getPhaseAngle" => "getPhaseAngle",
            _ => return None,
        },
        _ => return None,
    })
}

/// Field lookup: the documented place first (`payload` or top level), then the other one.
struct Fields<'r, 'a> {
    top: &'r RawCommand<'a>,
    payload: Option<&'r RawCommand<'a>>,
}

impl<'r, 'a> Fields<'r, 'a> {
    fn in_payload(
        &self,
        get: impl Fn(&'r RawCommand<'a>) -> &'r Option<Loose<'a>>,
    ) -> Option<&'r Loose<'a>> {
        self.payload
            .and_then(|p| get(p).as_ref())
            .or_else(|| get(self.top).as_ref())
            .filter(|v| !matches!(v, Loose::Null))
    }

    fn at_top(
        &self,
        get: impl Fn(&'r RawCommand<'a>) -> &'r Option<Loose<'a>>,
    ) -> Option<&'r Loose<'a>> {
        get(self.top)
            .as_ref()
            .or_else(|| self.payload.and_then(|p| get(p).as_ref()))
            .filter(|v| !matches!(v, Loose::Null))
    }
}

fn invalid(cmd: &'static str, field: &'static str, reason: &'static str) -> CommandError {
    CommandError::Invalid { cmd, field, reason }
}

fn bounded_string(
    v: Option<&Loose<'_>>,
    cmd: &'static str,
    field: &'static str,
    max: usize,
) -> Result<Option<String>, CommandError> {
    match v {
        None => Ok(None),
        Some(v) => {
            let s = v
                .as_str()
                .ok_or_else(|| invalid(cmd, field, "expected a string"))?;
            if s.len() > max {
                return Err(invalid(cmd, field, "too long"));
            }
            Ok(Some(String::from(s)))
        }
    }
}

impl<'a> TryFrom<RawCommand<'a>> for Command {
    type Error = CommandError;

    fn try_from(raw: RawCommand<'a>) -> Result<Command, CommandError> {
        Command::try_from(&raw)
    }
}

impl<'r, 'a> TryFrom<&'r RawCommand<'a>> for Command {
    type Error = CommandError;

    fn try_from(raw: &'r RawCommand<'a>) -> Result<Command, CommandError> {
        Command::from_fields(&Fields {
            top: raw,
            payload: raw.payload(),
        })
    }
}

impl Command {
    fn from_fields(f: &Fields<'_, '_>) -> Result<Command, CommandError> {
        let name = f.top.cmd().ok_or(CommandError::Json)?;
        Ok(match name {
            "info" => Command::Info,
            "getPower" => Command::GetPower,
            "getVoltage" => Command::GetVoltage,
            "getCurrent" => Command::GetCurrent,
            "getEnergy" => Command::GetEnergy,
            "getPeriod" => Command::GetPeriod,
            "getPhaseAngle" => Command::GetPhaseAngle,
            "restart" => Command::Restart,
            "factoryReset" => Command::FactoryReset,
            "basicReset" => Command::BasicReset,
            "stop" => Command::Stop,
            "clearLog" => Command::ClearLog,
            "getLog" => Command::GetLog,
            "ntp" => Command::Ntp,
            "getQuality" => Command::GetQuality,
            "mdns" => {
                let name = f
                    .in_payload(|r| &r.name)
                    .and_then(Loose::as_str)
                    .filter(|n| is_valid_mdns_name(n))
                    .ok_or(CommandError::MdnsName)?;
                Command::Mdns {
                    name: String::from(name),
                }
            }
            "addWifi" => {
                let ssid = wifi_ssid(f, "addWifi")?;
                let pwd = match f.in_payload(|r| &r.pwd) {
                    None => String::new(),
                    Some(p) => {
                        let p = p
                            .as_str()
                            .ok_or_else(|| invalid("addWifi", "pwd", "expected a string"))?;
                        if p.len() > MAX_WIFI_PWD_BYTES {
                            return Err(CommandError::WifiTooLong { cmd: "addWifi" });
                        }
                        String::from(p)
                    }
                };
                Command::AddWifi(WifiCredentials { ssid, pwd })
            }
            "delWifi" => Command::DelWifi {
                ssid: wifi_ssid(f, "delWifi")?,
            },
            "calibration" => Command::Calibration(calibration(f)?),
            "dailyRestart" => Command::DailyRestart(daily_restart(f)?),
            "resetEnergy" => Command::ResetEnergy(energy_reset(f)?),
            "sample" => Command::Sample(sample(f)?),
            "reqSamples" => {
                let n = f
                    .at_top(|r| &r.samples)
                    .and_then(Loose::as_i64)
                    .filter(|n| (10..=2000).contains(n))
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or(CommandError::Samples)?;
                Command::ReqSamples { samples: n }
            }
            "cts" => {
                let v = f
                    .at_top(|r| &r.value)
                    .ok_or_else(|| invalid("cts", "value", "missing"))?;
                Command::Cts {
                    value: v
                        .as_bool()
                        .ok_or_else(|| invalid("cts", "value", "expected true or false"))?,
                }
            }
            "log" => {
                let v = f
                    .at_top(|r| &r.level)
                    .ok_or(CommandError::LogLevelMissing)?;
                let level = v.as_str().and_then(LogLevel::from_name).ok_or_else(|| {
                    CommandError::UnknownLogLevel {
                        value: v.to_string(),
                    }
                })?;
                Command::Log { level }
            }
            "mqttServer" => {
                let server = server_addr(f, ServerKind::Mqtt)?;
                let user = bounded_string(
                    f.in_payload(|r| &r.user),
                    "mqttServer",
                    "user",
                    MAX_TOKEN_BYTES,
                )?;
                let pwd = bounded_string(
                    f.in_payload(|r| &r.pwd),
                    "mqttServer",
                    "pwd",
                    MAX_TOKEN_BYTES,
                )?;
                let port = match f.in_payload(|r| &r.port) {
                    None => None,
                    Some(p) => Some(
                        p.as_i64()
                            .and_then(|p| u16::try_from(p).ok())
                            .filter(|&p| p != 0)
                            .ok_or_else(|| invalid("mqttServer", "port", "must be 1-65535"))?,
                    ),
                };
                Command::MqttServer(MqttServerSettings {
                    server,
                    user,
                    pwd,
                    port,
                })
            }
            "streamServer" => Command::StreamServer {
                server: server_addr(f, ServerKind::Stream)?,
            },
            "timeServer" => Command::TimeServer {
                server: server_addr(f, ServerKind::Time)?,
            },
            "timezone" => {
                let v = f
                    .at_top(|r| &r.offset)
                    .ok_or_else(|| invalid("timezone", "offset", "missing"))?;
                let m = v
                    .as_i64()
                    .filter(|m| (-720..=840).contains(m))
                    .and_then(|m| i16::try_from(m).ok())
                    .ok_or_else(|| {
                        invalid("timezone", "offset", "minutes east of UTC, -720 to 840")
                    })?;
                Command::Timezone { offset_min: m }
            }
            "auth" => {
                let t = bounded_string(f.at_top(|r| &r.token), "auth", "token", MAX_TOKEN_BYTES)?
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| invalid("auth", "token", "missing"))?;
                Command::Auth { token: t }
            }
            "setToken" => {
                let t =
                    bounded_string(f.at_top(|r| &r.token), "setToken", "token", MAX_TOKEN_BYTES)?
                        .ok_or_else(|| invalid("setToken", "token", "missing"))?;
                Command::SetToken { token: t }
            }
            other => {
                return Err(CommandError::UnknownCommand {
                    cmd: String::from(other),
                });
            }
        })
    }
}

fn wifi_ssid(f: &Fields<'_, '_>, cmd: &'static str) -> Result<String, CommandError> {
    let s = f
        .in_payload(|r| &r.ssid)
        .ok_or_else(|| invalid(cmd, "ssid", "missing"))?
        .as_str()
        .ok_or_else(|| invalid(cmd, "ssid", "expected a string"))?;
    if s.is_empty() {
        return Err(invalid(cmd, "ssid", "empty"));
    }
    if s.len() > MAX_SSID_BYTES {
        return Err(CommandError::WifiTooLong { cmd });
    }
    Ok(String::from(s))
}

fn cal_factor(v: Item<'_, '_>, index: usize) -> Result<f32, CommandError> {
    v.as_f64()
        .map(|x| x as f32)
        .filter(|x| (Calibration::MIN..=Calibration::MAX).contains(x))
        .ok_or_else(|| CommandError::CalibrationFactor {
            index,
            value: v.to_string(),
        })
}

fn calibration(f: &Fields<'_, '_>) -> Result<Calibration, CommandError> {
    if let Some(cal) = f.at_top(|r| &r.cal) {
        let list = cal
            .list()
            .filter(|l| matches!(l.len(), 2 | 6))
            .ok_or_else(|| invalid("calibration", "cal", "expected an array of 6 factors"))?;
        let mut out = [1.0f32; 6];
        for (index, (slot, v)) in out.iter_mut().zip(list.iter()).enumerate() {
            *slot = cal_factor(v, index)?;
        }
        return Ok(match out {
            [v, i, ..] if list.len() == 2 => Calibration::Uniform { v, i },
            factors => Calibration::Factors(factors),
        });
    }
    match (f.at_top(|r| &r.cal_v), f.at_top(|r| &r.cal_i)) {
        (Some(v), Some(i)) => Ok(Calibration::Uniform {
            v: cal_factor(Item::Ref(v), 0)?,
            i: cal_factor(Item::Ref(i), 1)?,
        }),
        (None, Some(_)) => Err(invalid("calibration", "calV", "missing")),
        (Some(_), None) => Err(invalid("calibration", "calI", "missing")),
        (None, None) => Err(invalid("calibration", "cal", "missing")),
    }
}

fn daily_restart(f: &Fields<'_, '_>) -> Result<DailyRestart, CommandError> {
    let (Some(h), Some(m)) = (f.at_top(|r| &r.hour), f.at_top(|r| &r.minute)) else {
        return Err(CommandError::MissingHourMinute);
    };
    let h = h
        .as_i64()
        .filter(|h| (-1..=23).contains(h))
        .ok_or(CommandError::Hour)?;
    let m = m
        .as_i64()
        .filter(|m| (-1..=59).contains(m))
        .ok_or(CommandError::Minute)?;
    Ok(match (u8::try_from(h), u8::try_from(m)) {
        (Ok(hour), Ok(minute)) => DailyRestart::At { hour, minute },
        _ => DailyRestart::Disabled,
    })
}

fn energy_reset(f: &Fields<'_, '_>) -> Result<EnergyReset, CommandError> {
    let energy_wh = match f.at_top(|r| &r.energy) {
        None => None,
        Some(e) => {
            let list = e
                .list()
                .filter(|l| l.len() == 3)
                .ok_or_else(|| invalid("resetEnergy", "energy", "expected [L1,L2,L3] in Wh"))?;
            let mut out = [0.0f64; 3];
            for (slot, v) in out.iter_mut().zip(list.iter()) {
                *slot = v
                    .as_f64()
                    .ok_or_else(|| invalid("resetEnergy", "energy", "expected finite numbers"))?;
            }
            Some(out)
        }
    };
    let start_ts_s = match f.at_top(|r| &r.ts) {
        None => None,
        Some(t) => Some(
            t.as_f64()
                .filter(|t| *t >= 0.0)
                .ok_or_else(|| invalid("resetEnergy", "ts", "expected Unix seconds"))?,
        ),
    };
    Ok(EnergyReset {
        energy_wh,
        start_ts_s,
    })
}

fn server_addr(f: &Fields<'_, '_>, kind: ServerKind) -> Result<ServerAddr, CommandError> {
    let v = f
        .in_payload(|r| &r.server)
        .ok_or(CommandError::ServerMissing { kind })?;
    let s = v
        .as_str()
        .ok_or_else(|| invalid(kind.cmd(), "server", "expected a string"))?;
    ServerAddr::parse(s).map_err(|reason| invalid(kind.cmd(), "server", reason))
}

fn sample(f: &Fields<'_, '_>) -> Result<SampleRequest, CommandError> {
    let kind = f
        .in_payload(|r| &r.kind)
        .ok_or(CommandError::SampleTypeMissing)?;
    let kind_name = kind.as_str().ok_or_else(|| CommandError::UnsupportedType {
        value: kind.to_string(),
    })?;
    let mut stream =
        StreamType::from_name(kind_name, StreamType::DEFAULT_UDP_PORT).ok_or_else(|| {
            CommandError::UnsupportedType {
                value: kind.to_string(),
            }
        })?;
    let measures = match f.in_payload(|r| &r.measures) {
        None => Measures::default(),
        Some(m) => m.as_str().and_then(Measures::parse).ok_or_else(|| {
            CommandError::UnsupportedMeasures {
                value: m.to_string(),
            }
        })?,
    };
    let rate_hz = match f.in_payload(|r| &r.rate) {
        None => SampleRequest::DEFAULT_RATE_HZ,
        Some(r) => {
            let max = if measures.is_derived() {
                SampleRequest::MAX_DERIVED_RATE_HZ
            } else {
                SampleRequest::MAX_RATE_HZ
            };
            r.as_i64()
                .and_then(|r| u32::try_from(r).ok())
                .filter(|r| (1..=max).contains(r))
                .ok_or_else(|| CommandError::SamplingRate {
                    value: r.to_string(),
                })?
        }
    };
    if measures.is_derived() && rate_hz > SampleRequest::MAX_DERIVED_RATE_HZ {
        return Err(CommandError::SamplingRate {
            value: rate_hz.to_string(),
        });
    }
    if let StreamType::Udp { port } = &mut stream
        && let Some(p) = f.in_payload(|r| &r.port)
    {
        *port = p
            .as_i64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
            .ok_or_else(|| CommandError::UdpPort {
                value: p.to_string(),
            })?;
    }
    let flag = |v: Option<&Loose<'_>>, field: &'static str, default: bool| match v {
        None => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| invalid("sample", field, "expected true or false")),
    };
    let prefix = flag(f.in_payload(|r| &r.prefix), "prefix", true)?;
    let flow_control = flag(f.in_payload(|r| &r.flow_ctr), "flowCtr", false)?;
    let start_time = match f.in_payload(|r| &r.time) {
        None => None,
        Some(t) => Some(
            t.as_f64()
                .filter(|t| *t > 0.0)
                .ok_or_else(|| invalid("sample", "time", "expected Unix seconds"))?,
        ),
    };
    let slot = match f.in_payload(|r| &r.slot) {
        None | Some(Loose::Bool(false)) => None,
        Some(s) => match s.list().filter(|l| l.len() == 2).map(|l| {
            let mut items = l.iter();
            (items.next(), items.next())
        }) {
            Some((Some(a), Some(b))) => {
                let slot = a.as_i64().and_then(|a| u32::try_from(a).ok());
                let slots = b.as_i64().and_then(|b| u32::try_from(b).ok());
                match (slot, slots) {
                    (Some(slot), Some(slots)) if slot < slots => Some(Slot { slot, slots }),
                    _ => return Err(CommandError::Slot),
                }
            }
            _ => return Err(CommandError::Slot),
        },
    };
    let ntp_conf_ms = match f.in_payload(|r| &r.ntp_conf) {
        None | Some(Loose::Bool(false)) => None,
        Some(n) => Some(
            n.as_i64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| invalid("sample", "ntpConf", "expected milliseconds > 0"))?,
        ),
    };
    Ok(SampleRequest {
        stream,
        measures,
        rate_hz,
        prefix,
        flow_control,
        start_time,
        slot,
        ntp_conf_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command without arguments: its canonical line takes the byte-compare fast path, which
    /// gives what the JSON scanner gives for that line; other spellings and near misses go to the
    /// scanner.
    #[test]
    fn bare_fast_path_agrees_with_the_scanner() {
        let unit = [
            Command::Info,
            Command::GetPower,
            Command::GetVoltage,
            Command::GetCurrent,
            Command::GetEnergy,
            Command::GetPeriod,
            Command::GetPhaseAngle,
            Command::GetQuality,
            Command::Stop,
            Command::Restart,
            Command::FactoryReset,
            Command::BasicReset,
            Command::ClearLog,
            Command::GetLog,
            Command::Ntp,
        ];
        for c in unit {
            let line = c.encode();
            assert_eq!(Command::bare(line.as_bytes()), Some(c.clone()), "{line}");
            assert_eq!(
                Command::parse_json(line.as_bytes()),
                Ok(c.clone()),
                "{line}"
            );
            assert_eq!(
                Command::parse(alloc::format!("{line}\r\n").as_bytes()),
                Ok(c.clone())
            );
            let spaced = line.replace(':', ": ");
            assert_eq!(Command::bare(spaced.as_bytes()), None);
            assert_eq!(Command::parse(spaced.as_bytes()), Ok(c.clone()), "{spaced}");
        }
        for near in [
            r#"{"cmd":"getpower"}"#,
            r#"{"cmd":"sample"}"#,
            r#"{"cmd":"info"}}"#,
            r#"{"cmd":"info\"}"#,
            r#"{"cmd":""}"#,
        ] {
            assert_eq!(Command::bare(near.as_bytes()), None, "{near}");
            assert_eq!(
                Command::parse(near.as_bytes()),
                Command::parse_json(near.as_bytes()),
                "{near}"
            );
        }
    }

    /// The scanner's static command names are exactly the protocol's `cmd` names.
    #[test]
    fn known_name_covers_every_command() {
        let names: alloc::vec::Vec<&str> = Command::NAMES
            .into_iter()
            .filter(|n| *n != "?" && *n != "!")
            .collect();
        for n in &names {
            assert_eq!(known_name(n.as_bytes()), Some(*n));
            let mut longer = alloc::string::String::from(*n);
            longer.push('x');
            assert_eq!(known_name(longer.as_bytes()), None);
            assert_eq!(known_name(&n.as_bytes()[1..]), None);
        }
        for unknown in ["", "x", "Info", "getpower", "timeserver", "getPhaseAngleX"] {
            assert_eq!(known_name(unknown.as_bytes()), None, "{unknown}");
        }
    }

    /// Arrays of numbers are kept inline; every other array takes the heap form. Both give the
    /// same commands and the same error texts.
    #[test]
    fn inline_and_heap_arrays_agree() {
        for (inline, heap) in [
            (
                r#"{"cmd":"calibration","cal":[1.0,1,0.98,1.02,1.0,1.0]}"#,
                r#"{"cmd":"calibration","cal":["1.0",1,0.98,1.02,1.0,1.0]}"#,
            ),
            (
                r#"{"cmd":"calibration","cal":[1.0,1.5]}"#,
                r#"{"cmd":"calibration","cal":[1.0,"1.5"]}"#,
            ),
            (
                r#"{"cmd":"calibration","cal":[1.0,1.0,0.98,1.02,1.0,3.0]}"#,
                r#"{"cmd":"calibration","cal":[1.0,1.0,0.98,1.02,1.0,3e0]}"#,
            ),
            (
                r#"{"cmd":"resetEnergy","energy":[1.5,-2.5,3]}"#,
                r#"{"cmd":"resetEnergy","energy":[1.5,-2.5,3E0]}"#,
            ),
            (
                r#"{"cmd":"resetEnergy","energy":[1.5,-2.5]}"#,
                r#"{"cmd":"resetEnergy","energy":[1.5,[-2.5]]}"#,
            ),
            (
                r#"{"cmd":"sample","payload":{"type":"TCP","slot":[1,4]}}"#,
                r#"{"cmd":"sample","payload":{"type":"TCP","slot":["1",4]}}"#,
            ),
            (
                r#"{"cmd":"sample","payload":{"type":"TCP","slot":[4,4]}}"#,
                r#"{"cmd":"sample","payload":{"type":"TCP","slot":[4,4e0]}}"#,
            ),
            (
                r#"{"cmd":"sample","payload":{"type":[1,2.5]}}"#,
                r#"{"cmd":"sample","payload":{"type":[1,2.5e0]}}"#,
            ),
        ] {
            assert_eq!(
                Command::parse(inline.as_bytes()),
                Command::parse(heap.as_bytes()),
                "{inline} vs {heap}"
            );
        }
        assert_eq!(
            Command::parse(br#"{"cmd":"sample","payload":{"type":[1,2.5,-0]}}"#)
                .unwrap_err()
                .to_string(),
            "Unsupported sampling type: [1,2.5,-0.0]"
        );
        assert_eq!(
            Command::parse(br#"{"cmd":"calibration","cal":[1,1,1,1,1,1,1]}"#),
            Err(invalid(
                "calibration",
                "cal",
                "expected an array of 6 factors"
            ))
        );
    }

    /// Whatever `ServerAddr::parse` accepts, its text (`Display`, what `encode()` writes) parses back to
    /// the same address — for every text built from the characters that matter (colons, brackets,
    /// digits, ASCII and Unicode whitespace, non-ASCII). The `command` fuzz target found `[:D]`,
    /// accepted as an IPv6 host that read back as an empty host.
    #[test]
    fn server_addr_text_round_trips() {
        const PIECES: &[&str] = &[
            "a", "1", "0", "9", ":", "[", "]", ".", "-", "_", " ", "\t", "\u{a0}", "\u{2003}", "é",
            "f", "65535", "65536", "00080", "::1", "host",
        ];
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..40_000 {
            let mut t = String::new();
            for _ in 0..(next() % 7) {
                let piece = PIECES[(next() as usize) % PIECES.len()];
                t.push_str(piece);
            }
            if let Ok(a) = ServerAddr::parse(&t) {
                accepted += 1;
                let text = a.to_string();
                assert_eq!(ServerAddr::parse(&text), Ok(a), "{t:?} -> {text:?}");
            }
        }
        assert!(accepted > 1_000, "{accepted}");
        for (t, ok) in [
            ("192.168.0.10:1883", true),
            (" host ", true),
            ("\u{a0}host\u{2003}", true),
            ("[::1]:80", true),
            ("fe80::1", true),
            ("-", true),
            ("[:D]", false),
            ("[:1]:80", false),
            (":80", false),
        ] {
            assert_eq!(ServerAddr::parse(t).is_ok(), ok, "{t:?}");
        }
    }

    #[test]
    fn json_error_text() {
        assert_eq!(
            CommandError::Json.to_string(),
            r#"JSON format error, syntax: {"cmd":<cmdName>, "[payload":{<data>}]}}"#
        );
    }

    #[test]
    fn names_cover_every_variant() {
        for n in Command::NAMES
            .into_iter()
            .filter(|n| *n != "?" && *n != "!")
        {
            let line = alloc::format!("{{\"cmd\":\"{n}\"}}");
            match Command::parse(line.as_bytes()) {
                Ok(c) => assert_eq!(c.name(), n),
                Err(e) => assert_eq!(e.cmd(), Some(n)),
            }
        }
    }
}
