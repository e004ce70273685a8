//! The typed replies and the parse error.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::wire::command::{
    CommandError, DailyRestart, Measures, NominalFrequency, PqInterval, ServerKind, Slot,
    StreamType,
};
use crate::wire::log::LogLevel;
use crate::wire::pq::{PqAggregate, PqEvent};

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

/// The `info` reply (docs/protocol.md §2), in key order.
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

impl InfoReply {
    /// `ssids` as the reply writes it: `"[a, b]"`.
    pub fn ssids_text(&self) -> String {
        super::text::ssid_list(&self.ssids)
    }
}

/// The `getQuality` reply (extension, docs/protocol.md §10), in key order.
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

/// The success reply of `sample` (docs/protocol.md §5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleStarted {
    /// `conn_type`, and for UDP the `port` key.
    pub stream: StreamType,
    /// `slot`, if time-slotted.
    pub slot: Option<Slot>,
    /// `measures` (the `unit`, and unless [`measurements`](Self::measurements) says otherwise the
    /// `measurements` count, follow from it).
    pub measures: Measures,
    /// `measurements` when it disagrees with `measures`: the original firmware answered `v,i` with
    /// `"measurements":2` (one phase; docs/protocol.md §A). `None` when the count is the one `measures`
    /// implies, as this crate's device always sends it, or absent. The count in force is
    /// [`SampleStarted::channel_count`].
    pub measurements: Option<u8>,
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

impl SampleStarted {
    /// Values per sample in the session's frames: [`measurements`](Self::measurements) when the reply
    /// stated its own count, else the count of `measures`. A host splits frames by this number and
    /// takes channel names from `measures` only when `measurements` is `None` (docs/protocol.md §A).
    pub fn channel_count(&self) -> usize {
        self.measurements.map_or(self.measures.count(), usize::from)
    }
}

/// The success reply of `stop` (docs/protocol.md §5).
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

/// A nominal value in force as the `setNominal` reply states it (docs/protocol.md §11).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NominalInForce<T> {
    /// Declared: `230 V`, `50 Hz`.
    Fixed(T),
    /// Automatic: `auto (230 V)` once decided from the first second after a start, `auto` before.
    Auto(Option<T>),
}

impl<T: Copy> NominalInForce<T> {
    /// The value in force, `None` while an automatic value is not decided yet.
    pub fn value(&self) -> Option<T> {
        match *self {
            NominalInForce::Fixed(v) => Some(v),
            NominalInForce::Auto(v) => v,
        }
    }
}

/// The `setNominal` reply (extension, docs/protocol.md §11): `msg:"Nominal set to 230 V, 50 Hz"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NominalSet {
    /// Declared voltage Udin, V.
    pub voltage_v: NominalInForce<f32>,
    /// Nominal frequency.
    pub frequency: NominalInForce<NominalFrequency>,
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
    /// `setNominal` (extension, §11): `msg:"Nominal set to 230 V, 50 Hz"`.
    Nominal(NominalSet),
    /// `getPQ` (extension, §11): the aggregate's keys after `error` and `cmd`.
    Pq(Box<PqAggregate>),
    /// `getEvents` (extension, §11): `events` (oldest first, at most 16), `next`.
    Events {
        /// Ended events with an id above the request's `since`.
        events: Vec<PqEvent>,
        /// The `since` to ask with next.
        next: u32,
    },
    /// `clearEvents` (extension, §11): `msg:"Events cleared"`.
    ClearEvents,
    /// `homeAssistant` (extension, §12): `msg:"Home Assistant discovery on (homeassistant)"`.
    HomeAssistant {
        /// Discovery configs are published on every MQTT connect.
        enabled: bool,
        /// The discovery prefix in force.
        prefix: String,
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

object_error! {
    /// Why a reply could not be parsed (`Json` also when the line is not `Setup done`).
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[non_exhaustive]
    pub enum ReplyError {
        /// No `cmd` and no key that identifies a reply shape.
        #[error("Unrecognized reply: no cmd and no known keys")]
        Unrecognized,
    }
}
object_error!(@from_pq ReplyError);

/// The getLog dump's start and end marker.
pub(super) const LOG_MARK: &str = "*** LOGFile *** ";
/// The answer to `?`.
pub(super) const SETUP_DONE: &str = "Setup done";
/// `setToken`'s text when the token was removed.
pub(super) const TOKEN_REMOVED: &str = "Token removed";

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

    /// The `getPQ` refusal before the first complete interval of that length (docs/protocol.md §11):
    /// `No complete <interval> interval yet`.
    pub fn pq_not_ready(interval: PqInterval) -> Reply {
        Reply::error(
            Some("getPQ"),
            alloc::format!("No complete {} interval yet", interval.as_str()),
        )
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
            Reply::Nominal(_) => "setNominal",
            Reply::Pq(_) => "getPQ",
            Reply::Events { .. } => "getEvents",
            Reply::ClearEvents => "clearEvents",
            Reply::HomeAssistant { .. } => "homeAssistant",
            Reply::Ack { cmd } => cmd,
            Reply::Error { cmd, .. } => return cmd.as_deref(),
            Reply::SetupDone => return None,
        })
    }

    /// True for [`Reply::Error`].
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error { .. })
    }
}
