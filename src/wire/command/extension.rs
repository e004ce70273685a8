//! Argument types of the power-quality and Home Assistant commands (docs/protocol.md §11, §12):
//! `setNominal`, `getPQ`'s interval selector and `homeAssistant`.

use alloc::string::String;

/// The aggregation interval of `getPQ` and of a [`PqAggregate`](crate::wire::pq::PqAggregate)
/// (`interval` key). Defined here, beside the command that selects it, and re-exported by
/// [`wire::pq`](crate::wire::pq).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum PqInterval {
    /// `200ms`: the last basic 10/12-cycle window.
    Basic,
    /// `3s`: 150/180 cycles (the default of `getPQ`).
    #[default]
    ThreeSeconds,
    /// `10min`: aligned to the UTC clock.
    TenMinutes,
    /// `2h`: 12 × 10 min.
    TwoHours,
}

impl PqInterval {
    /// Every interval, shortest first.
    pub const ALL: [PqInterval; 4] = [
        PqInterval::Basic,
        PqInterval::ThreeSeconds,
        PqInterval::TenMinutes,
        PqInterval::TwoHours,
    ];

    /// The wire name (`200ms`, `3s`, `10min`, `2h`).
    pub fn as_str(self) -> &'static str {
        match self {
            PqInterval::Basic => "200ms",
            PqInterval::ThreeSeconds => "3s",
            PqInterval::TenMinutes => "10min",
            PqInterval::TwoHours => "2h",
        }
    }

    /// Reads a wire name (surrounding whitespace ignored).
    pub fn parse(s: &str) -> Option<PqInterval> {
        PqInterval::ALL.into_iter().find(|i| i.as_str() == s.trim())
    }
}

/// A nominal frequency (docs/protocol.md §11): 50 or 60 Hz.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NominalFrequency {
    /// 50 Hz: 10-cycle basic windows, 150-cycle `3s` aggregates.
    Hz50,
    /// 60 Hz: 12-cycle basic windows, 180-cycle `3s` aggregates.
    Hz60,
}

impl NominalFrequency {
    /// The frequency in Hz (50 or 60).
    pub const fn hz(self) -> u8 {
        match self {
            NominalFrequency::Hz50 => 50,
            NominalFrequency::Hz60 => 60,
        }
    }

    /// 50 → `Hz50`, 60 → `Hz60`, anything else `None`.
    pub const fn from_hz(hz: i64) -> Option<NominalFrequency> {
        match hz {
            50 => Some(NominalFrequency::Hz50),
            60 => Some(NominalFrequency::Hz60),
            _ => None,
        }
    }
}

/// One value of `setNominal`: left as it is (key absent), automatic (`0` or `"auto"`), or fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NominalValue<T> {
    /// The key was absent (or `null`): the value in force stays.
    #[default]
    Keep,
    /// `0` (or `"auto"`): decided from the first second after each start (§11).
    Auto,
    /// A declared value.
    Fixed(T),
}

/// `setNominal` arguments (docs/protocol.md §11). A command without either key changes nothing and
/// answers the values in force.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NominalSettings {
    /// `voltage`: declared voltage Udin in V, [`NominalSettings::MIN_VOLTAGE_V`]..=
    /// [`NominalSettings::MAX_VOLTAGE_V`], or auto (`0`).
    pub voltage_v: NominalValue<f32>,
    /// `frequency`: 50 or 60 Hz, or auto (`0`).
    pub frequency: NominalValue<NominalFrequency>,
}

impl NominalSettings {
    /// Lowest declared voltage, V.
    pub const MIN_VOLTAGE_V: f32 = 50.0;
    /// Highest declared voltage, V.
    pub const MAX_VOLTAGE_V: f32 = 1000.0;
}

/// `homeAssistant` arguments (docs/protocol.md §12); `None` leaves the setting in force (a command
/// without either key changes nothing and answers the state in force).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct HomeAssistantSettings {
    /// `enable`: publish discovery configs on every MQTT connect (default on).
    pub enable: Option<bool>,
    /// `prefix`: the discovery prefix (default [`HomeAssistantSettings::DEFAULT_PREFIX`]), valid
    /// per [`is_valid_discovery_prefix`].
    pub prefix: Option<String>,
}

impl HomeAssistantSettings {
    /// Home Assistant's default discovery prefix.
    pub const DEFAULT_PREFIX: &'static str = "homeassistant";
    /// Longest discovery prefix in bytes.
    pub const MAX_PREFIX_BYTES: usize = 64;
}

/// True if `prefix` can lead an MQTT topic of configs: 1..=64 bytes, no wildcard (`+`, `#`), no
/// control character, no empty topic level (no leading, trailing or doubled `/`).
pub fn is_valid_discovery_prefix(prefix: &str) -> bool {
    (1..=HomeAssistantSettings::MAX_PREFIX_BYTES).contains(&prefix.len())
        && !prefix.contains(['+', '#'])
        && !prefix.contains(char::is_control)
        && prefix.split('/').all(|level| !level.is_empty())
}
