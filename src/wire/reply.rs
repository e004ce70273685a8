//! Replies: the JSON the meter answers with (PROTOCOL.md §2, §5, §10), typed, encoded canonically and
//! parsed back tolerantly.
//!
//! Encoding ([`Reply::to_json`], [`Reply::to_line`]) always writes the canonical form: keys `error`,
//! `cmd`, then the command's own keys in the documented order (`info` and the getLog dump line have no
//! `error` key); floats in serde_json's shortest round-trip form (`1.0`), an undefined measurement as
//! `null`, never NaN.
//!
//! Parsing ([`Reply::parse`]) is for host tools reading real devices: keys in any order, `1` or `1.0`,
//! numbers as strings, unknown keys ignored, and every example of the original README
//! (`"type":"SmartMeter"`, `calV`/`calI`, `"calibration":[1,1]`, replies without `cmd`).
//!
//! # Which variant a reply maps to
//! 1. `"error":true` → [`Reply::Error`] (whatever the other keys).
//! 2. A known `cmd` → that command's variant (`"cmd":"log"` is the getLog dump when its `msg` starts with
//!    `*** LOGFile`, else [`Reply::LogLevelSet`]; `cts` without `value` and any cmd without a dedicated
//!    variant → [`Reply::Ack`]).
//! 3. No `cmd` (old firmware), decided by keys, first match wins: `type` or `version` → Info;
//!    `activePower` → Power; `voltage` → Voltage; `current` → Current; `period` → Period; `phase` →
//!    PhaseAngle; `thd_v` → Quality; `energy` with `startTs` → Energy; `chunksize` or `conn_type` →
//!    SampleStarted; `sample_duration` → Stopped; `mdns_name` → Mdns; `current_time` → Ntp;
//!    `time_server` / `mqtt_server` / `stream_server` → ServerSet; `ssids` → AddWifi if there is an `ssid`
//!    key or the msg starts with `New Ap`, else DelWifi; `calibration` → Calibration; then by `msg`
//!    prefix (`*** LOGFile`, `Log Level set to: `, `Energy reset to `, `Set daily restart to: ` /
//!    `Disabled daily restart`, `Restarting`, `Set time zone offset to: `, `Authenticated`); finally a
//!    bare `{"error":false}` → [`Reply::GetLogDone`] (the seed prints it after the log dump). Anything
//!    else is [`ReplyError::Unrecognized`].
//!
//! ```
//! use smartmeter::wire::reply::Reply;
//!
//! let r = Reply::Voltage { voltage_v: [Some(230.1), Some(229.5), None] };
//! assert_eq!(r.to_line(), "Info:{\"error\":false,\"cmd\":\"getVoltage\",\"voltage\":[230.1,229.5,null],\"unit\":\"V\"}\r\n");
//! assert_eq!(Reply::parse(br#"{"unit":"V","voltage":[230.1,229.5,null],"cmd":"getVoltage","error":false}"#), Ok(r));
//! ```

mod raw;

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::wire::command::json::{Obj, push_f32, push_f64};
use crate::wire::command::raw::Loose;
use crate::wire::command::{CommandError, DailyRestart, Measures, ServerKind, Slot, StreamType};
use crate::wire::log::{LogLevel, format_unix_millis, parse_unix_millis};
use raw::RawReply;

/// A 3-phase measurement `[L1, L2, L3]`; `None` is an undefined value (written `null`).
pub type Phases = [Option<f32>; 3];

/// The only `state` an error reply carries: the busy guard.
pub const BUSY: &str = "busy";

/// Which of the three restarting commands a [`Reply::Restarting`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestartKind {
    /// `restart`.
    Restart,
    /// `factoryReset`.
    FactoryReset,
    /// `basicReset`.
    BasicReset,
}

impl RestartKind {
    /// The command name.
    pub const fn cmd(self) -> &'static str {
        match self {
            RestartKind::Restart => "restart",
            RestartKind::FactoryReset => "factoryReset",
            RestartKind::BasicReset => "basicReset",
        }
    }
}

/// The `info` reply (PROTOCOL.md §2), in key order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InfoReply {
    /// Firmware version.
    pub version: String,
    /// Build date text.
    pub compiled: String,
    /// Wall clock, `MM/DD/YYYY HH:MM:SS.mmm`.
    pub sys_time: String,
    /// Device name.
    pub name: String,
    /// Device IP address.
    pub ip: String,
    /// MQTT broker (`-` if none).
    pub mqtt_server: String,
    /// Stream server (`-` if none).
    pub stream_server: String,
    /// NTP server.
    pub time_server: String,
    /// ADC sampling rate.
    pub sampling_rate_hz: u32,
    /// Sample buffer size.
    pub buffer_size_bytes: u64,
    /// External RAM present.
    pub psram: bool,
    /// Battery-backed clock present.
    pub rtc: bool,
    /// `state`: `"busy"` while sampling, else `"idle"`.
    pub busy: bool,
    /// Net energy per phase since the reset.
    pub energy_wh: [f64; 3],
    /// `dailyReset`: `"None"` or `"@HH:MM:00"`.
    pub daily_reset: DailyRestart,
    /// Calibration factors `[vL1,iL1,vL2,iL2,vL3,iL3]`.
    pub calibration: [f32; 6],
    /// Known access points, written `"[a, b]"`.
    pub ssids: Vec<String>,
    /// Connected SSID (`-` if none).
    pub ssid: String,
    /// Signal strength.
    pub rssi_dbm: i32,
    /// Connected BSSID (`-` if none).
    pub bssid: String,
}

/// The `getQuality` reply (extension, PROTOCOL.md §10), in key order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QualityReply {
    /// `thd_v`, %.
    pub thd_v_pct: Phases,
    /// `thd_i`, %.
    pub thd_i_pct: Phases,
    /// `nonactivePower` (IEEE 1459 N), VA.
    pub nonactive_power_va: Phases,
    /// `fundamentalReactivePower` Q₁, var.
    pub fundamental_reactive_power_var: Phases,
    /// `powerFactor` P/S.
    pub power_factor: Phases,
    /// `lineVoltage` L1-L2, L2-L3, L3-L1, V.
    pub line_voltage_v: Phases,
    /// `vrmsHalfCycleMin`, V.
    pub vrms_half_cycle_min_v: Phases,
    /// `vrmsHalfCycleMax`, V.
    pub vrms_half_cycle_max_v: Phases,
    /// `energyImport`, Wh.
    pub energy_import_wh: [f64; 3],
    /// `energyExport`, Wh.
    pub energy_export_wh: [f64; 3],
    /// `frequency10s`, Hz.
    pub frequency_10s_hz: Option<f32>,
}

/// The success reply of `sample` (PROTOCOL.md §5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleStarted {
    /// `conn_type`, and for UDP the `port` key.
    pub stream: StreamType,
    /// `slot`, if time-slotted.
    pub slot: Option<Slot>,
    /// `measures` (the `measurements` count and `unit` follow from it).
    pub measures: Measures,
    /// `chunksize`: payload bytes per frame.
    pub chunk_size_bytes: u32,
    /// `samplingrate`.
    pub rate_hz: u32,
    /// `prefix`.
    pub prefix: bool,
    /// `flowCtr`.
    pub flow_control: bool,
    /// `startTs` (`"<unix>.<mmm>"`) in Unix milliseconds.
    pub start_ts_ms: i64,
    /// `ntpConfidence`, present when the request had `ntpConf`.
    pub ntp_confidence_ms: Option<u32>,
}

/// The success reply of `stop` (PROTOCOL.md §5).
#[derive(Debug, Clone, PartialEq)]
pub struct StopStats {
    /// `sample_duration`.
    pub sample_duration_ms: u64,
    /// `samples` taken.
    pub samples: u64,
    /// `sent_samples`.
    pub sent_samples: u64,
    /// `start_ts` in Unix milliseconds.
    pub start_ts_ms: i64,
    /// `stop_ts` in Unix milliseconds.
    pub stop_ts_ms: i64,
    /// Device IP.
    pub ip: String,
    /// `avg_rate`, samples per second.
    pub avg_rate_hz: f64,
}

/// One reply of the meter (or the `Setup done` answer to `?`).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `info`.
    Info(Box<InfoReply>),
    /// `getPower`: `activePower` W, `reactivePower` var, `apparentPower` VA, `unit:"W/var/VA"`.
    Power {
        /// Active power P.
        active_w: Phases,
        /// Fundamental reactive power Q₁.
        reactive_var: Phases,
        /// Apparent power S = Vrms·Irms.
        apparent_va: Phases,
    },
    /// `getVoltage`: `voltage`, `unit:"V"`.
    Voltage {
        /// RMS voltage.
        voltage_v: Phases,
    },
    /// `getCurrent`: `current`, `unit:"mA"`.
    Current {
        /// RMS current.
        current_ma: Phases,
    },
    /// `getEnergy`: `energy`, `unit:"Wh"`, `startTs`, `start`, `days`.
    Energy {
        /// Net active energy since the reset.
        energy_wh: [f64; 3],
        /// `startTs`: reset time, whole Unix seconds (written as an integer, as the seed and the
        /// device do; a fractional value is read back floored).
        start_ts_s: i64,
        /// `start`: reset time as `MM/DD/YYYY HH:MM:SS.mmm`.
        start: String,
        /// Whole days since the reset.
        days: u32,
    },
    /// `getPeriod`: `period` (line frequency despite the key), `unit:"Hz"`.
    Period {
        /// Line frequency.
        frequency_hz: Phases,
    },
    /// `getPhaseAngle`: `phase`, `unit:"Deg"`.
    PhaseAngle {
        /// atan2(Q₁, P₁) in degrees, (-180, 180].
        phase_deg: Phases,
    },
    /// `getQuality` (extension).
    Quality(Box<QualityReply>),
    /// `log`: `msg:"Log Level set to: <level>"`.
    LogLevelSet {
        /// The new level.
        level: LogLevel,
    },
    /// `mdns`: `msg:"Set MDNS name to: N"`, `mdns_name`.
    Mdns {
        /// The new name.
        name: String,
    },
    /// `addWifi`: `ssid`, `msg:"New Ap, SSID: S"`, `ssids`.
    AddWifi {
        /// The added SSID.
        ssid: String,
        /// The list after adding.
        ssids: Vec<String>,
    },
    /// `delWifi`: `msg:"Removed SSID: S"`, `ssids`.
    DelWifi {
        /// The removed SSID.
        ssid: String,
        /// The list after removing.
        ssids: Vec<String>,
    },
    /// `calibration`: `msg:"Calibration set: [a, b, c, d, e, f]"`, `calibration`.
    Calibration {
        /// The six factors now in effect.
        factors: [f32; 6],
    },
    /// `resetEnergy`: `msg:"Energy reset to [e1, e2, e3], @MM/DD/YYYY HH:MM:SS.mmm"`.
    ResetEnergy {
        /// The new totals.
        energy_wh: [f64; 3],
        /// The new start time, `MM/DD/YYYY HH:MM:SS.mmm`.
        at: String,
    },
    /// `ntp` success: `msg:"Time synced"`, `current_time`.
    Ntp {
        /// `MM/DD/YYYY HH:MM:SS.mmm` after the sync.
        current_time: String,
    },
    /// `timeServer` / `mqttServer` / `streamServer`: `msg:"Set <Kind> address to: A"`, `<kind>_server`.
    ServerSet {
        /// Which server.
        kind: ServerKind,
        /// The address text (`-` when disabled).
        server: String,
    },
    /// `dailyRestart`: `msg:"Set daily restart to: HH:MM:00"` or `"Disabled daily restart"`.
    DailyRestart(DailyRestart),
    /// `restart` / `factoryReset` / `basicReset`: `msg:"Restarting"`.
    Restarting {
        /// Which command.
        kind: RestartKind,
    },
    /// `clearLog`: no extra keys.
    ClearLog,
    /// The first line of `getLog`: `{"cmd":"log","msg":"*** LOGFile *** //n<row>//n…*** LOGFile *** "}`.
    /// Rows are log lines without `Info:` (newlines inside a row are written `//n`, so a row with
    /// a newline reads back as two rows).
    GetLogDump {
        /// The rows, oldest first.
        rows: Vec<String>,
    },
    /// The second line of `getLog`: `{"error":false,"cmd":"getLog"}`.
    GetLogDone,
    /// `sample` success.
    SampleStarted(SampleStarted),
    /// `stop` success with the session statistics.
    Stopped(StopStats),
    /// `reqSamples` done: `{"error":false,"cmd":"reqSamples"}` after the frame.
    ReqSamplesDone,
    /// `cts`: echoes the new `value`.
    Cts {
        /// Clear to send.
        value: bool,
    },
    /// `timezone` (extension): `msg:"Set time zone offset to: +HH:MM"`.
    Timezone {
        /// Minutes east of UTC.
        offset_min: i16,
    },
    /// `auth` (extension): `msg:"Authenticated"`.
    Auth,
    /// `setToken` (extension, serial only): `msg:"Token set"`, or `"Token removed"` for an empty token.
    SetToken {
        /// The token was removed (access control is off again).
        removed: bool,
    },
    /// Success without extra keys for a command that has no dedicated variant (e.g. a `cts` answer
    /// without `value` from older firmware).
    Ack {
        /// The command.
        cmd: String,
    },
    /// Any error: `{"error":true[,"cmd":..],"msg":..[,"state":"busy"]}`.
    Error {
        /// The command, `None` for line-level errors (JSON format, too long, too many clients).
        cmd: Option<String>,
        /// The exact message text.
        msg: String,
        /// `Some(BUSY)` for the busy guard.
        state: Option<&'static str>,
    },
    /// `Info:Setup done`, the answer to `?` (not JSON).
    SetupDone,
}

/// Why a reply could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// Not one JSON object (and not `Setup done`).
    #[error("Invalid JSON: expected one JSON object")]
    Json,
    /// A key the reply shape needs is absent.
    #[error("Missing {field}")]
    Missing {
        /// The wire key.
        field: &'static str,
    },
    /// A key has the wrong type or an unreadable value.
    #[error("Invalid {field}: {reason}")]
    Invalid {
        /// The wire key.
        field: &'static str,
        /// What was expected.
        reason: &'static str,
    },
    /// No `cmd` and no key that identifies a reply shape.
    #[error("Unrecognized reply: no cmd and no known keys")]
    Unrecognized,
}

const LOG_MARK: &str = "*** LOGFile *** ";
const SETUP_DONE: &str = "Setup done";
const TOKEN_REMOVED: &str = "Token removed";

impl Reply {
    /// The error reply for a refused command line (`msg` = the error's text, `cmd` = its command).
    pub fn from_command_error(e: &CommandError) -> Reply {
        Reply::Error {
            cmd: e.cmd().map(String::from),
            msg: e.to_string(),
            state: None,
        }
    }

    /// An error reply with `cmd` and `msg`.
    pub fn error(cmd: Option<&str>, msg: impl Into<String>) -> Reply {
        Reply::Error {
            cmd: cmd.map(String::from),
            msg: msg.into(),
            state: None,
        }
    }

    /// The busy-guard refusal: `Device currently sampling`, `state:"busy"`.
    pub fn busy(cmd: &str) -> Reply {
        Reply::Error {
            cmd: Some(String::from(cmd)),
            msg: String::from("Device currently sampling"),
            state: Some(BUSY),
        }
    }

    /// The `cmd` this reply carries (`"log"` for the getLog dump); `None` for `SetupDone` and
    /// command-less errors.
    pub fn cmd(&self) -> Option<&str> {
        Some(match self {
            Reply::Info(_) => "info",
            Reply::Power { .. } => "getPower",
            Reply::Voltage { .. } => "getVoltage",
            Reply::Current { .. } => "getCurrent",
            Reply::Energy { .. } => "getEnergy",
            Reply::Period { .. } => "getPeriod",
            Reply::PhaseAngle { .. } => "getPhaseAngle",
            Reply::Quality(_) => "getQuality",
            Reply::LogLevelSet { .. } | Reply::GetLogDump { .. } => "log",
            Reply::Mdns { .. } => "mdns",
            Reply::AddWifi { .. } => "addWifi",
            Reply::DelWifi { .. } => "delWifi",
            Reply::Calibration { .. } => "calibration",
            Reply::ResetEnergy { .. } => "resetEnergy",
            Reply::Ntp { .. } => "ntp",
            Reply::ServerSet { kind, .. } => kind.cmd(),
            Reply::DailyRestart(_) => "dailyRestart",
            Reply::Restarting { kind } => kind.cmd(),
            Reply::ClearLog => "clearLog",
            Reply::GetLogDone => "getLog",
            Reply::SampleStarted(_) => "sample",
            Reply::Stopped(_) => "stop",
            Reply::ReqSamplesDone => "reqSamples",
            Reply::Cts { .. } => "cts",
            Reply::Timezone { .. } => "timezone",
            Reply::Auth => "auth",
            Reply::SetToken { .. } => "setToken",
            Reply::Ack { cmd } => cmd,
            Reply::Error { cmd, .. } => return cmd.as_deref(),
            Reply::SetupDone => return None,
        })
    }

    /// True for [`Reply::Error`].
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error { .. })
    }

    /// The full wire line: `Info:` + [`Reply::to_json`] + `\r\n`.
    pub fn to_line(&self) -> String {
        let mut s = String::from("Info:");
        s.push_str(&self.to_json());
        s.push_str("\r\n");
        s
    }

    /// The canonical payload (JSON; the bare text `Setup done` for [`Reply::SetupDone`]).
    pub fn to_json(&self) -> String {
        let mut o = Obj::new();
        match self {
            Reply::SetupDone => return String::from(SETUP_DONE),
            Reply::Info(i) => {
                encode_info(&mut o, i);
                return o.finish();
            }
            Reply::GetLogDump { rows } => {
                let mut msg = String::from(LOG_MARK);
                for row in rows {
                    msg.push_str("//n");
                    let _ = crate::wire::log::write_escaped_text(&mut msg, row);
                }
                msg.push_str("//n");
                msg.push_str(LOG_MARK);
                o.str("cmd", "log").str("msg", &msg);
                return o.finish();
            }
            Reply::Error { cmd, msg, state } => {
                o.bool("error", true);
                if let Some(c) = cmd {
                    o.str("cmd", c);
                }
                o.str("msg", msg);
                if let Some(s) = state {
                    o.str("state", s);
                }
                return o.finish();
            }
            _ => {}
        }
        o.bool("error", false);
        if let Some(c) = self.cmd() {
            o.str("cmd", c);
        }
        match self {
            Reply::Power {
                active_w,
                reactive_var,
                apparent_va,
            } => {
                o.opt_f32s("activePower", active_w)
                    .opt_f32s("reactivePower", reactive_var)
                    .opt_f32s("apparentPower", apparent_va)
                    .str("unit", "W/var/VA");
            }
            Reply::Voltage { voltage_v } => {
                o.opt_f32s("voltage", voltage_v).str("unit", "V");
            }
            Reply::Current { current_ma } => {
                o.opt_f32s("current", current_ma).str("unit", "mA");
            }
            Reply::Energy {
                energy_wh,
                start_ts_s,
                start,
                days,
            } => {
                o.f64s("energy", energy_wh)
                    .str("unit", "Wh")
                    .int("startTs", start_ts_s)
                    .str("start", start)
                    .int("days", days);
            }
            Reply::Period { frequency_hz } => {
                o.opt_f32s("period", frequency_hz).str("unit", "Hz");
            }
            Reply::PhaseAngle { phase_deg } => {
                o.opt_f32s("phase", phase_deg).str("unit", "Deg");
            }
            Reply::Quality(q) => {
                o.opt_f32s("thd_v", &q.thd_v_pct)
                    .opt_f32s("thd_i", &q.thd_i_pct)
                    .opt_f32s("nonactivePower", &q.nonactive_power_va)
                    .opt_f32s(
                        "fundamentalReactivePower",
                        &q.fundamental_reactive_power_var,
                    )
                    .opt_f32s("powerFactor", &q.power_factor)
                    .opt_f32s("lineVoltage", &q.line_voltage_v)
                    .opt_f32s("vrmsHalfCycleMin", &q.vrms_half_cycle_min_v)
                    .opt_f32s("vrmsHalfCycleMax", &q.vrms_half_cycle_max_v)
                    .f64s("energyImport", &q.energy_import_wh)
                    .f64s("energyExport", &q.energy_export_wh);
                match q.frequency_10s_hz {
                    Some(f) => o.f32("frequency10s", f),
                    None => o.raw("frequency10s", "null"),
                };
            }
            Reply::LogLevelSet { level } => {
                o.str("msg", &alloc::format!("Log Level set to: {level}"));
            }
            Reply::Mdns { name } => {
                o.str("msg", &alloc::format!("Set MDNS name to: {name}"))
                    .str("mdns_name", name);
            }
            Reply::AddWifi { ssid, ssids } => {
                o.str("ssid", ssid)
                    .str("msg", &alloc::format!("New Ap, SSID: {ssid}"))
                    .str("ssids", &ssid_list(ssids));
            }
            Reply::DelWifi { ssid, ssids } => {
                o.str("msg", &alloc::format!("Removed SSID: {ssid}"))
                    .str("ssids", &ssid_list(ssids));
            }
            Reply::Calibration { factors } => {
                let mut msg = String::from("Calibration set: [");
                for (i, f) in factors.iter().enumerate() {
                    if i > 0 {
                        msg.push_str(", ");
                    }
                    push_f32(&mut msg, *f);
                }
                msg.push(']');
                o.str("msg", &msg).f32s("calibration", factors);
            }
            Reply::ResetEnergy { energy_wh, at } => {
                let mut msg = String::from("Energy reset to [");
                for (i, e) in energy_wh.iter().enumerate() {
                    if i > 0 {
                        msg.push_str(", ");
                    }
                    push_f64(&mut msg, *e);
                }
                let _ = write!(msg, "], @{at}");
                o.str("msg", &msg);
            }
            Reply::Ntp { current_time } => {
                o.str("msg", "Time synced")
                    .str("current_time", current_time);
            }
            Reply::ServerSet { kind, server } => {
                o.str(
                    "msg",
                    &alloc::format!("Set {} address to: {server}", kind.label()),
                )
                .str(kind.key(), server);
            }
            Reply::DailyRestart(DailyRestart::Disabled) => {
                o.str("msg", "Disabled daily restart");
            }
            Reply::DailyRestart(DailyRestart::At { hour, minute }) => {
                o.str(
                    "msg",
                    &alloc::format!("Set daily restart to: {hour:02}:{minute:02}:00"),
                );
            }
            Reply::Restarting { .. } => {
                o.str("msg", "Restarting");
            }
            Reply::SampleStarted(s) => encode_sample_started(&mut o, s),
            Reply::Stopped(s) => {
                o.str("msg", "Received stop command")
                    .int("sample_duration", s.sample_duration_ms)
                    .int("samples", s.samples)
                    .int("sent_samples", s.sent_samples)
                    .str("start_ts", &format_unix_millis(s.start_ts_ms))
                    .str("stop_ts", &format_unix_millis(s.stop_ts_ms))
                    .str("ip", &s.ip)
                    .f64("avg_rate", s.avg_rate_hz);
            }
            Reply::Cts { value } => {
                o.bool("value", *value);
            }
            Reply::Timezone { offset_min } => {
                o.str(
                    "msg",
                    &alloc::format!("Set time zone offset to: {}", format_offset(*offset_min)),
                );
            }
            Reply::Auth => {
                o.str("msg", "Authenticated");
            }
            Reply::SetToken { removed } => {
                o.str("msg", if *removed { TOKEN_REMOVED } else { "Token set" });
            }
            Reply::ClearLog | Reply::GetLogDone | Reply::ReqSamplesDone | Reply::Ack { .. } => {}
            Reply::Info(_) | Reply::GetLogDump { .. } | Reply::Error { .. } | Reply::SetupDone => {}
        }
        o.finish()
    }

    /// Parses a reply payload (the text after `Info:`; an `Info:` prefix and a trailing `\r\n` are
    /// tolerated). See the module docs for how a reply without `cmd` is classified.
    ///
    /// Never panics; memory is bounded by a small multiple of the input length.
    pub fn parse(json: &[u8]) -> Result<Reply, ReplyError> {
        let json = json.trim_ascii();
        let json = json.strip_prefix(b"Info:").unwrap_or(json).trim_ascii();
        if json == SETUP_DONE.as_bytes() {
            return Ok(Reply::SetupDone);
        }
        let raw: RawReply<'_> = serde_json::from_slice(json).map_err(|_| ReplyError::Json)?;
        from_raw(&raw)
    }
}

impl core::fmt::Display for Reply {
    /// The canonical payload ([`Reply::to_json`]).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_json())
    }
}

fn ssid_list(ssids: &[String]) -> String {
    let mut s = String::from("[");
    for (i, x) in ssids.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(x);
    }
    s.push(']');
    s
}

fn parse_ssid_list(text: &str) -> Vec<String> {
    let t = text.trim();
    let t = t.strip_prefix('[').unwrap_or(t);
    let t = t.strip_suffix(']').unwrap_or(t);
    t.split(", ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `+HH:MM` / `-HH:MM`.
fn format_offset(offset_min: i16) -> String {
    let sign = if offset_min < 0 { '-' } else { '+' };
    let a = offset_min.unsigned_abs();
    alloc::format!("{sign}{:02}:{:02}", a / 60, a % 60)
}

fn parse_offset(text: &str) -> Option<i16> {
    let (neg, rest) = match text.trim().split_at_checked(1)? {
        ("+", r) => (false, r),
        ("-", r) => (true, r),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let h: i16 = h.parse().ok()?;
    let m: i16 = m.parse().ok()?;
    if !(0..60).contains(&m) || !(0..=14).contains(&h) {
        return None;
    }
    let v = h * 60 + m;
    Some(if neg { -v } else { v })
}

fn encode_info(o: &mut Obj, i: &InfoReply) {
    o.str("cmd", "info")
        .str("type", "smartmeter")
        .str("version", &i.version)
        .str("compiled", &i.compiled)
        .str("sys_time", &i.sys_time)
        .str("name", &i.name)
        .str("ip", &i.ip)
        .str("mqtt_server", &i.mqtt_server)
        .str("stream_server", &i.stream_server)
        .str("time_server", &i.time_server)
        .int("sampling_rate", i.sampling_rate_hz)
        .int("buffer_size", i.buffer_size_bytes)
        .bool("psram", i.psram)
        .bool("rtc", i.rtc)
        .str("state", if i.busy { "busy" } else { "idle" })
        .f64s("energy", &i.energy_wh)
        .str("dailyReset", &i.daily_reset.info_text())
        .f32s("calibration", &i.calibration)
        .str("ssids", &ssid_list(&i.ssids))
        .str("ssid", &i.ssid)
        .int("rssi", i.rssi_dbm)
        .str("bssid", &i.bssid);
}

fn encode_sample_started(o: &mut Obj, s: &SampleStarted) {
    if let StreamType::Udp { port } = s.stream {
        o.int("port", port);
    }
    if let Some(slot) = s.slot {
        o.raw("slot", &alloc::format!("[{},{}]", slot.slot, slot.slots));
    }
    o.str("measures", s.measures.reported())
        .int("chunksize", s.chunk_size_bytes)
        .int("samplingrate", s.rate_hz)
        .str("conn_type", s.stream.as_str())
        .int("measurements", s.measures.count())
        .bool("prefix", s.prefix)
        .bool("flowCtr", s.flow_control)
        .str("unit", s.measures.unit())
        .str("startTs", &format_unix_millis(s.start_ts_ms));
    if let Some(c) = s.ntp_confidence_ms {
        o.int("ntpConfidence", c);
    }
}

// ---- parsing -------------------------------------------------------------------------------------

type Field<'r, 'a> = Option<&'r Loose<'a>>;

fn present<'r, 'a>(v: &'r Option<Loose<'a>>) -> Field<'r, 'a> {
    v.as_ref().filter(|v| !matches!(v, Loose::Null))
}

fn req<'r, 'a>(v: &'r Option<Loose<'a>>, field: &'static str) -> Result<&'r Loose<'a>, ReplyError> {
    present(v).ok_or(ReplyError::Missing { field })
}

fn string(v: &Option<Loose<'_>>, field: &'static str) -> Result<String, ReplyError> {
    match present(v) {
        None => Err(ReplyError::Missing { field }),
        Some(Loose::Str(s)) => Ok(s.to_string()),
        Some(other @ (Loose::Int(_) | Loose::Float(_) | Loose::Bool(_))) => Ok(other.to_string()),
        Some(_) => Err(ReplyError::Invalid {
            field,
            reason: "expected a string",
        }),
    }
}

fn opt_string(v: &Option<Loose<'_>>, field: &'static str) -> Result<String, ReplyError> {
    match present(v) {
        None => Ok(String::new()),
        Some(_) => string(v, field),
    }
}

fn int<T: TryFrom<i64>>(v: &Option<Loose<'_>>, field: &'static str) -> Result<T, ReplyError> {
    req(v, field)?
        .as_i64()
        .and_then(|i| T::try_from(i).ok())
        .ok_or(ReplyError::Invalid {
            field,
            reason: "expected an integer in range",
        })
}

fn opt_int<T: TryFrom<i64> + Default>(
    v: &Option<Loose<'_>>,
    field: &'static str,
) -> Result<T, ReplyError> {
    match present(v) {
        None => Ok(T::default()),
        Some(_) => int(v, field),
    }
}

fn float(v: &Option<Loose<'_>>, field: &'static str) -> Result<f64, ReplyError> {
    req(v, field)?.as_f64().ok_or(ReplyError::Invalid {
        field,
        reason: "expected a number",
    })
}

/// Unix seconds as an integer; a fractional value (older encoders) is floored.
fn whole_seconds(v: &Option<Loose<'_>>, field: &'static str) -> Result<i64, ReplyError> {
    let bad = ReplyError::Invalid {
        field,
        reason: "expected Unix seconds",
    };
    let x = req(v, field)?;
    if let Some(i) = x.as_i64() {
        return Ok(i);
    }
    // 2^63 is exact in f64; a floored value in [-2^63, 2^63) converts exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let floor = x
        .as_f64()
        .map(num_traits::Float::floor)
        .filter(|f| (-LIMIT..LIMIT).contains(f))
        .ok_or(bad)?;
    #[allow(clippy::cast_possible_truncation)]
    Ok(floor as i64)
}

fn boolean(v: &Option<Loose<'_>>, field: &'static str) -> Result<bool, ReplyError> {
    match present(v) {
        None => Ok(false),
        Some(Loose::Int(i)) => Ok(*i != 0),
        Some(b) => b.as_bool().ok_or(ReplyError::Invalid {
            field,
            reason: "expected true or false",
        }),
    }
}

fn list<'r, 'a>(
    v: &'r Option<Loose<'a>>,
    field: &'static str,
) -> Result<&'r [Loose<'a>], ReplyError> {
    req(v, field)?.as_list().ok_or(ReplyError::Invalid {
        field,
        reason: "expected an array",
    })
}

fn phases(v: &Option<Loose<'_>>, field: &'static str) -> Result<Phases, ReplyError> {
    let bad = ReplyError::Invalid {
        field,
        reason: "expected 3 numbers or nulls",
    };
    let l = list(v, field)?;
    if l.len() != 3 {
        return Err(bad);
    }
    let mut out = [None; 3];
    for (slot, x) in out.iter_mut().zip(l) {
        *slot = match x {
            Loose::Null => None,
            // A number beyond f32 is undefined, as the encoder writes it: `null`.
            x => finite_f32(x.as_f64().ok_or_else(|| bad.clone())?),
        };
    }
    Ok(out)
}

/// `x` as an f32 when it is one (finite after narrowing), else `None`.
fn finite_f32(x: f64) -> Option<f32> {
    let f = x as f32;
    f.is_finite().then_some(f)
}

fn f64x3(v: &Option<Loose<'_>>, field: &'static str) -> Result<[f64; 3], ReplyError> {
    let bad = ReplyError::Invalid {
        field,
        reason: "expected 3 numbers",
    };
    let l = list(v, field)?;
    if l.len() != 3 {
        return Err(bad);
    }
    let mut out = [0.0; 3];
    for (slot, x) in out.iter_mut().zip(l) {
        *slot = x.as_f64().ok_or_else(|| bad.clone())?;
    }
    Ok(out)
}

/// `[6]` as is, `[v,i]` (old single-phase) repeated per phase.
fn factors(v: &Option<Loose<'_>>, field: &'static str) -> Result<[f32; 6], ReplyError> {
    let bad = ReplyError::Invalid {
        field,
        reason: "expected 6 (or 2) numbers",
    };
    let nums = list(v, field)?
        .iter()
        .map(|x| x.as_f64().and_then(finite_f32).ok_or_else(|| bad.clone()))
        .collect::<Result<Vec<f32>, ReplyError>>()?;
    match *nums.as_slice() {
        [v, i] => Ok([v, i, v, i, v, i]),
        [a, b, c, d, e, f] => Ok([a, b, c, d, e, f]),
        _ => Err(bad),
    }
}

fn msg<'r>(raw: &'r RawReply<'_>) -> &'r str {
    present(&raw.msg).and_then(Loose::as_str).unwrap_or("")
}

fn msg_after<'r>(raw: &'r RawReply<'_>, prefix: &'static str) -> Result<&'r str, ReplyError> {
    msg(raw).strip_prefix(prefix).ok_or(ReplyError::Invalid {
        field: "msg",
        reason: "unexpected text",
    })
}

fn from_raw(raw: &RawReply<'_>) -> Result<Reply, ReplyError> {
    let cmd = match present(&raw.cmd) {
        None => None,
        Some(c) => Some(c.as_str().ok_or(ReplyError::Invalid {
            field: "cmd",
            reason: "expected a string",
        })?),
    };
    if present(&raw.error).is_some_and(|e| e.as_bool() == Some(true)) {
        let state = present(&raw.state)
            .and_then(Loose::as_str)
            .filter(|s| *s == BUSY)
            .map(|_| BUSY);
        return Ok(Reply::Error {
            cmd: cmd.map(String::from),
            msg: opt_string(&raw.msg, "msg")?,
            state,
        });
    }
    let Some(cmd) = cmd else {
        return infer(raw);
    };
    by_cmd(raw, cmd)
}

fn by_cmd(raw: &RawReply<'_>, cmd: &str) -> Result<Reply, ReplyError> {
    Ok(match cmd {
        "info" => Reply::Info(Box::new(info(raw)?)),
        "getPower" => Reply::Power {
            active_w: phases(&raw.active_power, "activePower")?,
            reactive_var: phases(&raw.reactive_power, "reactivePower")?,
            apparent_va: phases(&raw.apparent_power, "apparentPower")?,
        },
        "getVoltage" => Reply::Voltage {
            voltage_v: phases(&raw.voltage, "voltage")?,
        },
        "getCurrent" => Reply::Current {
            current_ma: phases(&raw.current, "current")?,
        },
        "getEnergy" => Reply::Energy {
            energy_wh: f64x3(&raw.energy, "energy")?,
            start_ts_s: whole_seconds(&raw.start_ts_camel, "startTs")?,
            start: opt_string(&raw.start, "start")?,
            days: opt_int(&raw.days, "days")?,
        },
        "getPeriod" => Reply::Period {
            frequency_hz: phases(&raw.period, "period")?,
        },
        "getPhaseAngle" => Reply::PhaseAngle {
            phase_deg: phases(&raw.phase, "phase")?,
        },
        "getQuality" => Reply::Quality(Box::new(QualityReply {
            thd_v_pct: phases(&raw.thd_v, "thd_v")?,
            thd_i_pct: phases(&raw.thd_i, "thd_i")?,
            nonactive_power_va: phases(&raw.nonactive_power, "nonactivePower")?,
            fundamental_reactive_power_var: phases(
                &raw.fundamental_reactive_power,
                "fundamentalReactivePower",
            )?,
            power_factor: phases(&raw.power_factor, "powerFactor")?,
            line_voltage_v: phases(&raw.line_voltage, "lineVoltage")?,
            vrms_half_cycle_min_v: phases(&raw.vrms_half_cycle_min, "vrmsHalfCycleMin")?,
            vrms_half_cycle_max_v: phases(&raw.vrms_half_cycle_max, "vrmsHalfCycleMax")?,
            energy_import_wh: f64x3(&raw.energy_import, "energyImport")?,
            energy_export_wh: f64x3(&raw.energy_export, "energyExport")?,
            frequency_10s_hz: match present(&raw.frequency_10s) {
                None => None,
                Some(_) => finite_f32(float(&raw.frequency_10s, "frequency10s")?),
            },
        })),
        "log" if msg(raw).starts_with(LOG_MARK.trim_end()) => log_dump(raw),
        "log" => {
            let level = msg_after(raw, "Log Level set to: ")?;
            Reply::LogLevelSet {
                level: LogLevel::from_name(level.trim()).ok_or(ReplyError::Invalid {
                    field: "msg",
                    reason: "unknown log level",
                })?,
            }
        }
        "mdns" => Reply::Mdns {
            name: match present(&raw.mdns_name) {
                Some(_) => string(&raw.mdns_name, "mdns_name")?,
                None => String::from(msg_after(raw, "Set MDNS name to: ")?),
            },
        },
        "addWifi" => Reply::AddWifi {
            ssid: match present(&raw.ssid) {
                Some(_) => string(&raw.ssid, "ssid")?,
                None => {
                    let rest = msg_after(raw, "New Ap, SSID: ")?;
                    String::from(rest.split_once(", PW: ").map_or(rest, |(s, _)| s))
                }
            },
            ssids: parse_ssid_list(&opt_string(&raw.ssids, "ssids")?),
        },
        "delWifi" => Reply::DelWifi {
            ssid: String::from(msg_after(raw, "Removed SSID: ")?),
            ssids: parse_ssid_list(&opt_string(&raw.ssids, "ssids")?),
        },
        "calibration" => Reply::Calibration {
            factors: calibration_factors(raw)?,
        },
        "resetEnergy" => reset_energy(raw)?,
        "ntp" => Reply::Ntp {
            current_time: opt_string(&raw.current_time, "current_time")?,
        },
        "timeServer" => server_set(raw, ServerKind::Time)?,
        "mqttServer" => server_set(raw, ServerKind::Mqtt)?,
        "streamServer" => server_set(raw, ServerKind::Stream)?,
        "dailyRestart" => daily_restart(raw)?,
        "restart" => Reply::Restarting {
            kind: RestartKind::Restart,
        },
        "factoryReset" => Reply::Restarting {
            kind: RestartKind::FactoryReset,
        },
        "basicReset" => Reply::Restarting {
            kind: RestartKind::BasicReset,
        },
        "clearLog" => Reply::ClearLog,
        "getLog" => Reply::GetLogDone,
        "sample" => Reply::SampleStarted(sample_started(raw)?),
        "stop" => Reply::Stopped(stopped(raw)?),
        "reqSamples" => Reply::ReqSamplesDone,
        "cts" => match present(&raw.value) {
            Some(_) => Reply::Cts {
                value: boolean(&raw.value, "value")?,
            },
            None => Reply::Ack {
                cmd: String::from("cts"),
            },
        },
        "timezone" => Reply::Timezone {
            offset_min: parse_offset(msg_after(raw, "Set time zone offset to: ")?).ok_or(
                ReplyError::Invalid {
                    field: "msg",
                    reason: "expected +HH:MM",
                },
            )?,
        },
        "auth" => Reply::Auth,
        "setToken" => Reply::SetToken {
            removed: msg(raw) == TOKEN_REMOVED,
        },
        other => Reply::Ack {
            cmd: String::from(other),
        },
    })
}

fn infer(raw: &RawReply<'_>) -> Result<Reply, ReplyError> {
    let has = |v: &Option<Loose<'_>>| present(v).is_some();
    let m = msg(raw);
    let cmd = if has(&raw.kind) || has(&raw.version) {
        "info"
    } else if has(&raw.active_power) {
        "getPower"
    } else if has(&raw.voltage) {
        "getVoltage"
    } else if has(&raw.current) {
        "getCurrent"
    } else if has(&raw.period) {
        "getPeriod"
    } else if has(&raw.phase) {
        "getPhaseAngle"
    } else if has(&raw.thd_v) {
        "getQuality"
    } else if has(&raw.energy) && has(&raw.start_ts_camel) {
        "getEnergy"
    } else if has(&raw.chunksize) || has(&raw.conn_type) {
        "sample"
    } else if has(&raw.sample_duration) {
        "stop"
    } else if has(&raw.mdns_name) {
        "mdns"
    } else if has(&raw.current_time) {
        "ntp"
    } else if has(&raw.time_server) {
        "timeServer"
    } else if has(&raw.mqtt_server) {
        "mqttServer"
    } else if has(&raw.stream_server) {
        "streamServer"
    } else if has(&raw.ssids) {
        if has(&raw.ssid) || m.starts_with("New Ap") {
            "addWifi"
        } else {
            "delWifi"
        }
    } else if has(&raw.calibration) {
        "calibration"
    } else if m.starts_with(LOG_MARK.trim_end()) || m.starts_with("Log Level set to: ") {
        "log"
    } else if m.starts_with("Energy reset to ") {
        "resetEnergy"
    } else if m.starts_with("Set daily restart to: ") || m == "Disabled daily restart" {
        "dailyRestart"
    } else if m == "Restarting" {
        "restart"
    } else if m.starts_with("Set time zone offset to: ") {
        "timezone"
    } else if m == "Authenticated" {
        "auth"
    } else if present(&raw.error).is_some() && present(&raw.msg).is_none() {
        "getLog"
    } else {
        return Err(ReplyError::Unrecognized);
    };
    by_cmd(raw, cmd)
}

fn info(raw: &RawReply<'_>) -> Result<InfoReply, ReplyError> {
    let calibration = if present(&raw.calibration).is_some() {
        factors(&raw.calibration, "calibration")?
    } else if present(&raw.cal_v).is_some() || present(&raw.cal_i).is_some() {
        let v = present(&raw.cal_v)
            .and_then(Loose::as_f64)
            .and_then(finite_f32)
            .unwrap_or(1.0);
        let i = present(&raw.cal_i)
            .and_then(Loose::as_f64)
            .and_then(finite_f32)
            .unwrap_or(1.0);
        [v, i, v, i, v, i]
    } else {
        [1.0; 6]
    };
    Ok(InfoReply {
        version: opt_string(&raw.version, "version")?,
        compiled: opt_string(&raw.compiled, "compiled")?,
        sys_time: opt_string(&raw.sys_time, "sys_time")?,
        name: opt_string(&raw.name, "name")?,
        ip: opt_string(&raw.ip, "ip")?,
        mqtt_server: opt_string(&raw.mqtt_server, "mqtt_server")?,
        stream_server: opt_string(&raw.stream_server, "stream_server")?,
        time_server: opt_string(&raw.time_server, "time_server")?,
        sampling_rate_hz: opt_int(&raw.sampling_rate, "sampling_rate")?,
        buffer_size_bytes: opt_int(&raw.buffer_size, "buffer_size")?,
        psram: boolean(&raw.psram, "psram")?,
        rtc: boolean(&raw.rtc, "rtc")?,
        busy: present(&raw.state)
            .and_then(Loose::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("busy")),
        energy_wh: match present(&raw.energy) {
            None => [0.0; 3],
            Some(Loose::List(_)) => f64x3(&raw.energy, "energy")?,
            // Old firmware: one total.
            Some(_) => [float(&raw.energy, "energy")?, 0.0, 0.0],
        },
        daily_reset: match present(&raw.daily_reset) {
            None => DailyRestart::Disabled,
            Some(d) => {
                d.as_str()
                    .and_then(DailyRestart::parse_info_text)
                    .ok_or(ReplyError::Invalid {
                        field: "dailyReset",
                        reason: "expected None or @HH:MM:00",
                    })?
            }
        },
        calibration,
        ssids: parse_ssid_list(&opt_string(&raw.ssids, "ssids")?),
        ssid: opt_string(&raw.ssid, "ssid")?,
        rssi_dbm: opt_int(&raw.rssi, "rssi")?,
        bssid: opt_string(&raw.bssid, "bssid")?,
    })
}

fn log_dump(raw: &RawReply<'_>) -> Reply {
    let m = msg(raw);
    let mark = LOG_MARK.trim_end();
    let body = m.strip_prefix(mark).unwrap_or(m);
    let body = body.trim_end();
    let body = body.strip_suffix(mark).unwrap_or(body);
    // Rows read back exactly as the encoder writes them: a raw newline separates rows like `//n`,
    // and a carriage return is dropped (see `write_escaped_text`), so parse ∘ encode is the identity.
    let rows = body
        .split("//n")
        .flat_map(|r| r.split('\n'))
        .map(|r| r.replace('\r', ""))
        .filter_map(|r| {
            let t = r.trim();
            (!t.is_empty()).then(|| String::from(t))
        })
        .collect();
    Reply::GetLogDump { rows }
}

fn calibration_factors(raw: &RawReply<'_>) -> Result<[f32; 6], ReplyError> {
    if present(&raw.calibration).is_some() {
        return factors(&raw.calibration, "calibration");
    }
    let inner = msg_after(raw, "Calibration set: [")?;
    let inner = inner.strip_suffix(']').unwrap_or(inner);
    let mut out = [0.0f32; 6];
    let mut n = 0;
    for part in inner.split(',') {
        let slot = out.get_mut(n).ok_or(ReplyError::Invalid {
            field: "msg",
            reason: "expected 6 factors",
        })?;
        *slot = part.trim().parse().map_err(|_| ReplyError::Invalid {
            field: "msg",
            reason: "expected 6 factors",
        })?;
        n += 1;
    }
    if n != 6 {
        return Err(ReplyError::Invalid {
            field: "msg",
            reason: "expected 6 factors",
        });
    }
    Ok(out)
}

fn reset_energy(raw: &RawReply<'_>) -> Result<Reply, ReplyError> {
    let bad = ReplyError::Invalid {
        field: "msg",
        reason: "expected Energy reset to [e1, e2, e3], @time",
    };
    let rest = msg_after(raw, "Energy reset to [")?;
    let (nums, at) = rest.split_once("], @").ok_or_else(|| bad.clone())?;
    let mut energy_wh = [0.0f64; 3];
    let mut n = 0;
    for part in nums.split(',') {
        let slot = energy_wh.get_mut(n).ok_or_else(|| bad.clone())?;
        *slot = part
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| bad.clone())?;
        n += 1;
    }
    if n != 3 {
        return Err(bad);
    }
    Ok(Reply::ResetEnergy {
        energy_wh,
        at: String::from(at),
    })
}

fn server_set(raw: &RawReply<'_>, kind: ServerKind) -> Result<Reply, ReplyError> {
    let field = match kind {
        ServerKind::Time => &raw.time_server,
        ServerKind::Mqtt => &raw.mqtt_server,
        ServerKind::Stream => &raw.stream_server,
    };
    let server = match present(field) {
        Some(_) => string(field, kind.key())?,
        None => {
            let m = msg(raw);
            let rest = m
                .split_once(" address to: ")
                .map(|(_, r)| r)
                .ok_or(ReplyError::Missing { field: kind.key() })?;
            String::from(rest)
        }
    };
    Ok(Reply::ServerSet { kind, server })
}

fn daily_restart(raw: &RawReply<'_>) -> Result<Reply, ReplyError> {
    let m = msg(raw);
    if m == "Disabled daily restart" {
        return Ok(Reply::DailyRestart(DailyRestart::Disabled));
    }
    let t = msg_after(raw, "Set daily restart to: ")?;
    let at = DailyRestart::parse_info_text(&alloc::format!("@{t}"))
        .filter(|d| *d != DailyRestart::Disabled)
        .ok_or(ReplyError::Invalid {
            field: "msg",
            reason: "expected HH:MM:00",
        })?;
    Ok(Reply::DailyRestart(at))
}

fn sample_started(raw: &RawReply<'_>) -> Result<SampleStarted, ReplyError> {
    let measures = match present(&raw.measures) {
        None => Measures::default(),
        Some(m) => m
            .as_str()
            .and_then(Measures::parse)
            .ok_or(ReplyError::Invalid {
                field: "measures",
                reason: "unknown measure set",
            })?,
    };
    let port = match present(&raw.port) {
        None => StreamType::DEFAULT_UDP_PORT,
        Some(_) => int(&raw.port, "port")?,
    };
    let conn = string(&raw.conn_type, "conn_type")?;
    let stream = StreamType::from_name(&conn, port).ok_or(ReplyError::Invalid {
        field: "conn_type",
        reason: "unknown stream type",
    })?;
    let slot = match present(&raw.slot) {
        None | Some(Loose::Bool(false)) => None,
        Some(s) => match s.as_list() {
            Some([a, b]) => match (a.as_i64(), b.as_i64()) {
                (Some(a), Some(b)) => Some(Slot {
                    slot: u32::try_from(a).map_err(|_| bad_slot())?,
                    slots: u32::try_from(b).map_err(|_| bad_slot())?,
                }),
                _ => return Err(bad_slot()),
            },
            _ => return Err(bad_slot()),
        },
    };
    let start = string(&raw.start_ts_camel, "startTs")?;
    Ok(SampleStarted {
        stream,
        slot,
        measures,
        chunk_size_bytes: int(&raw.chunksize, "chunksize")?,
        rate_hz: int(&raw.samplingrate, "samplingrate")?,
        prefix: match present(&raw.prefix) {
            None => true,
            Some(_) => boolean(&raw.prefix, "prefix")?,
        },
        flow_control: boolean(&raw.flow_ctr, "flowCtr")?,
        start_ts_ms: parse_unix_millis(&start).ok_or(ReplyError::Invalid {
            field: "startTs",
            reason: "expected <unix>.<mmm>",
        })?,
        ntp_confidence_ms: match present(&raw.ntp_confidence) {
            None => None,
            Some(_) => Some(int(&raw.ntp_confidence, "ntpConfidence")?),
        },
    })
}

fn bad_slot() -> ReplyError {
    ReplyError::Invalid {
        field: "slot",
        reason: "expected [slot,slots]",
    }
}

fn stamp(v: &Option<Loose<'_>>, field: &'static str) -> Result<i64, ReplyError> {
    parse_unix_millis(&string(v, field)?).ok_or(ReplyError::Invalid {
        field,
        reason: "expected <unix>.<mmm>",
    })
}

fn stopped(raw: &RawReply<'_>) -> Result<StopStats, ReplyError> {
    Ok(StopStats {
        sample_duration_ms: int(&raw.sample_duration, "sample_duration")?,
        samples: int(&raw.samples, "samples")?,
        sent_samples: int(&raw.sent_samples, "sent_samples")?,
        start_ts_ms: stamp(&raw.start_ts, "start_ts")?,
        stop_ts_ms: stamp(&raw.stop_ts, "stop_ts")?,
        ip: opt_string(&raw.ip, "ip")?,
        avg_rate_hz: float(&raw.avg_rate, "avg_rate")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(format_offset(-330), "-05:30");
        assert_eq!(format_offset(60), "+01:00");
        assert_eq!(parse_offset("-05:30"), Some(-330));
        assert_eq!(parse_offset("+14:00"), Some(840));
        assert_eq!(parse_offset("05:30"), None);
    }

    #[test]
    fn ssid_lists() {
        let l = alloc::vec![String::from("energywifi"), String::from("Test")];
        assert_eq!(ssid_list(&l), "[energywifi, Test]");
        assert_eq!(parse_ssid_list("[energywifi, Test]"), l);
        assert!(parse_ssid_list("[]").is_empty());
    }
}
