//! The typed command, its argument types, the command names and the limits.

use alloc::string::String;
use core::fmt;

use super::extension::{HomeAssistantSettings, NominalSettings, PqInterval};
use super::sample::SampleRequest;
use super::server::{MqttServerSettings, ServerAddr};
use crate::wire::log::LogLevel;

/// The longest accepted command line in bytes, without its `\n` / `\r\n` terminator.
pub const MAX_LINE_BYTES: usize = 600;

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
    Calibration(CalibrationArgs),
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
    /// `setNominal` (extension, §11): declared voltage and nominal frequency.
    SetNominal(NominalSettings),
    /// `getPQ` (extension, §11): the last complete aggregate of an interval length.
    GetPq {
        /// `interval`, default `3s`.
        interval: PqInterval,
    },
    /// `getEvents` (extension, §11): ended power-quality events with an id above `since`.
    GetEvents {
        /// `since`: the last id already seen, default 0.
        since: u32,
    },
    /// `clearEvents` (extension, §11): forget every stored event.
    ClearEvents,
    /// `homeAssistant` (extension, §12): switch Home Assistant discovery, set its prefix.
    HomeAssistant(HomeAssistantSettings),
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

/// The arguments of a `calibration` command: the factors as the command carries them, each in
/// [0.5, 2.0]. The device applies them to its validated model,
/// [`calibration::Calibration`](crate::calibration::Calibration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CalibrationArgs {
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

impl CalibrationArgs {
    /// Smallest allowed factor.
    pub const MIN: f32 = 0.5;
    /// Largest allowed factor.
    pub const MAX: f32 = 2.0;

    /// The six factors `[vL1,iL1,vL2,iL2,vL3,iL3]`.
    pub fn factors(&self) -> [f32; 6] {
        match *self {
            CalibrationArgs::Factors(f) => f,
            CalibrationArgs::Uniform { v, i } => [v, i, v, i, v, i],
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

impl Command {
    /// Whether this is a one-shot reading (`getPower`, `getVoltage`, `getCurrent`, `getEnergy`,
    /// `getPeriod`, `getPhaseAngle`, `getQuality`): it changes nothing (so needs no `auth`,
    /// docs/protocol.md §10) and is refused while sampling (§2).
    pub fn is_reading(&self) -> bool {
        matches!(
            self,
            Command::GetPower
                | Command::GetVoltage
                | Command::GetCurrent
                | Command::GetEnergy
                | Command::GetPeriod
                | Command::GetPhaseAngle
                | Command::GetQuality
        )
    }

    /// Every command name of the protocol (the `cmd` strings, then `?` and `!`).
    pub const NAMES: [&'static str; 38] = [
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
        "setNominal",
        "getPQ",
        "getEvents",
        "clearEvents",
        "homeAssistant",
        "?",
        "!",
    ];

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
            Command::SetNominal(_) => "setNominal",
            Command::GetPq { .. } => "getPQ",
            Command::GetEvents { .. } => "getEvents",
            Command::ClearEvents => "clearEvents",
            Command::HomeAssistant(_) => "homeAssistant",
        }
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
        5 => match bytes {
            b"getPQ" => "getPQ",
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
            b"getEvents" => "getEvents",
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
            b"setNominal" => "setNominal",
            _ => return None,
        },
        11 => match bytes {
            b"calibration" => "calibration",
            b"resetEnergy" => "resetEnergy",
            b"clearEvents" => "clearEvents",
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
            b"homeAssistant" => "homeAssistant",
            _ => return None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
