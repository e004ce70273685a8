//! Persistent configuration with the factory defaults of docs/protocol.md §7.
//!
//! ```
//! use smartmeter::device::Config;
//! let mut c = Config::default();
//! assert_eq!(c.name, "smartmeterX");
//! assert_eq!(c.ssids(), ["energywifi"]);
//! c.name = "kitchen".into();
//! c.basic_reset();
//! assert_eq!(c.name, "kitchen"); // basicReset keeps the name
//! c.factory_reset();
//! assert_eq!(c.name, "smartmeterX");
//! ```

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::wire::command::DailyRestart;

/// Most Wi-Fi access points the list holds.
pub const MAX_WIFI: usize = 5;
/// Longest SSID in bytes.
pub const MAX_SSID: usize = 32;
/// Longest Wi-Fi password in bytes.
pub const MAX_WIFI_PWD: usize = 64;
/// Default MQTT broker port.
pub const MQTT_PORT: u16 = 1883;
/// Default stream-server port.
pub const STREAM_PORT: u16 = 54322;
/// Default NTP port.
pub const NTP_PORT: u16 = 123;

/// A known Wi-Fi access point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WifiAp {
    /// SSID (≤ 32 bytes).
    pub ssid: String,
    /// Password (≤ 64 bytes); never echoed in replies.
    pub pwd: String,
}

/// Everything the meter keeps across restarts except energy and the logbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Device / mDNS name, a DNS label of 1..=24 `[A-Za-z0-9-]`.
    pub name: String,
    /// Known Wi-Fi access points, at most [`MAX_WIFI`].
    pub wifi: Vec<WifiAp>,
    /// NTP server (`host`, `host:port`, `[v6]:port`), `-` disables.
    pub time_server: String,
    /// MQTT broker address, `-` disables.
    pub mqtt_server: String,
    /// MQTT user name.
    pub mqtt_user: Option<String>,
    /// MQTT password.
    pub mqtt_pwd: Option<String>,
    /// MQTT port override (from the `mqttServer` payload's `port`).
    pub mqtt_port: Option<u16>,
    /// Stream server address (device connects out to its port 54322), `-` disables.
    pub stream_server: String,
    /// Calibration factors `[vL1, iL1, vL2, iL2, vL3, iL3]`, each in 0.5..=2.0.
    pub calibration: [f32; 6],
    /// Daily restart at `(hour, minute)` wall time; `None` = disabled.
    pub daily_restart: Option<(u8, u8)>,
    /// Display time zone, minutes east of UTC (§10).
    pub zone_offset_min: i16,
    /// Access token (§10); `None` = open.
    pub token: Option<String>,
    /// Declared voltage Udin in V, 50..=1000 (§11 `setNominal`); 0 = detected after each start.
    pub nominal_voltage_v: f32,
    /// Nominal frequency, 50 or 60 Hz (§11 `setNominal`); 0 = detected after each start.
    pub nominal_frequency_hz: u32,
    /// Home Assistant discovery configs are published on every MQTT connect (§12 `homeAssistant`,
    /// default on).
    pub ha_discovery: bool,
    /// The Home Assistant discovery prefix (§12, default `homeassistant`).
    pub ha_prefix: String,
    /// The identity the meter made for itself when its binding gave none
    /// ([`DeviceOptions::device_id`](super::DeviceOptions::device_id)): the source of the Home
    /// Assistant node id and `unique_id`s (§12). Made once and kept, also by `factoryReset` and
    /// `basicReset` (it names the hardware, it is no setting), so the entities outlive restarts,
    /// renames and resets.
    pub device_id: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "smartmeterX".into(),
            wifi: alloc::vec![WifiAp {
                ssid: "energywifi".into(),
                pwd: "silkykayak943".into()
            }],
            time_server: "time.google.com".into(),
            mqtt_server: "-".into(),
            mqtt_user: None,
            mqtt_pwd: None,
            mqtt_port: None,
            stream_server: "-".into(),
            calibration: [1.0; 6],
            daily_restart: None,
            zone_offset_min: 0,
            token: None,
            nominal_voltage_v: 0.0,
            nominal_frequency_hz: 0,
            ha_discovery: true,
            ha_prefix: crate::wire::command::HomeAssistantSettings::DEFAULT_PREFIX.into(),
            device_id: None,
        }
    }
}

impl Config {
    /// Restores every §7 default (`factoryReset`); the meter's own [`Config::device_id`] stays.
    pub fn factory_reset(&mut self) {
        let device_id = self.device_id.take();
        *self = Config {
            device_id,
            ..Config::default()
        };
    }

    /// Restores every default but the name (`basicReset`); the [`Config::device_id`] stays.
    pub fn basic_reset(&mut self) {
        let name = core::mem::take(&mut self.name);
        let device_id = self.device_id.take();
        *self = Config {
            name,
            device_id,
            ..Config::default()
        };
    }

    /// The nominal values as the measurements take them: a value out of range (a damaged or foreign
    /// store) counts as auto.
    pub(crate) fn nominal(&self) -> super::measure::NominalConfig {
        let v = self.nominal_voltage_v;
        super::measure::NominalConfig {
            voltage_v: (v.is_finite() && (50.0..=1000.0).contains(&v)).then_some(v),
            frequency_hz: matches!(self.nominal_frequency_hz, 50 | 60)
                .then_some(self.nominal_frequency_hz),
        }
    }

    /// The known SSIDs in order (the `ssids` of `info`, `addWifi`, `delWifi`).
    pub fn ssids(&self) -> Vec<String> {
        self.wifi.iter().map(|ap| ap.ssid.clone()).collect()
    }

    /// The daily restart as the wire reports it (`dailyReset` of `info`).
    pub fn daily_reset(&self) -> DailyRestart {
        match self.daily_restart {
            None => DailyRestart::Disabled,
            Some((hour, minute)) => DailyRestart::At { hour, minute },
        }
    }
}

/// Splits a server address (`host`, `host:port`, `[v6]:port`, bare IPv6) into host and port.
/// Returns `None` for `-` (disabled) or an empty host.
///
/// ```
/// use smartmeter::device::config::split_server;
/// assert_eq!(split_server("broker", 1883), Some(("broker".into(), 1883)));
/// assert_eq!(split_server("10.0.0.1:1884", 1883), Some(("10.0.0.1".into(), 1884)));
/// assert_eq!(split_server("[::1]:99", 1883), Some(("::1".into(), 99)));
/// assert_eq!(split_server("fe80::1", 123), Some(("fe80::1".into(), 123)));
/// assert_eq!(split_server("-", 123), None);
/// ```
pub fn split_server(addr: &str, default_port: u16) -> Option<(String, u16)> {
    let addr = addr.trim();
    if addr.is_empty() || addr == "-" {
        return None;
    }
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if tail.is_empty() => default_port,
            None => return None,
        };
        return (!host.is_empty()).then(|| (host.to_string(), port));
    }
    match addr.split_once(':') {
        Some((host, port)) if !port.contains(':') => {
            let port = port.parse().ok()?;
            (!host.is_empty()).then(|| (host.to_string(), port))
        }
        Some(_) => Some((addr.to_string(), default_port)), // bare IPv6 literal
        None => Some((addr.to_string(), default_port)),
    }
}
