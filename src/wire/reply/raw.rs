//! The loose, borrowed form of a reply: every key any reply shape uses, each optional and untyped.

use crate::wire::command::raw::Loose;

/// A reply object as loosely read JSON. Unknown keys are ignored; a key given twice is an error.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawReply<'a> {
    #[serde(borrow)]
    pub(crate) error: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) cmd: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) msg: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) state: Option<Loose<'a>>,
    #[serde(borrow, rename = "type")]
    pub(crate) kind: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) version: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) compiled: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) sys_time: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) name: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) ip: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) mqtt_server: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) stream_server: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) time_server: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) sampling_rate: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) buffer_size: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) psram: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) rtc: Option<Loose<'a>>,
    #[serde(borrow, rename = "calV")]
    pub(crate) cal_v: Option<Loose<'a>>,
    #[serde(borrow, rename = "calI")]
    pub(crate) cal_i: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) energy: Option<Loose<'a>>,
    #[serde(borrow, rename = "dailyReset")]
    pub(crate) daily_reset: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) calibration: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) ssids: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) ssid: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) rssi: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) bssid: Option<Loose<'a>>,
    #[serde(borrow, rename = "activePower")]
    pub(crate) active_power: Option<Loose<'a>>,
    #[serde(borrow, rename = "reactivePower")]
    pub(crate) reactive_power: Option<Loose<'a>>,
    #[serde(borrow, rename = "apparentPower")]
    pub(crate) apparent_power: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) voltage: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) current: Option<Loose<'a>>,
    #[serde(borrow, rename = "startTs")]
    pub(crate) start_ts_camel: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) start: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) days: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) period: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) phase: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) thd_v: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) thd_i: Option<Loose<'a>>,
    #[serde(borrow, rename = "nonactivePower")]
    pub(crate) nonactive_power: Option<Loose<'a>>,
    #[serde(borrow, rename = "fundamentalReactivePower")]
    pub(crate) fundamental_reactive_power: Option<Loose<'a>>,
    #[serde(borrow, rename = "powerFactor")]
    pub(crate) power_factor: Option<Loose<'a>>,
    #[serde(borrow, rename = "lineVoltage")]
    pub(crate) line_voltage: Option<Loose<'a>>,
    #[serde(borrow, rename = "vrmsHalfCycleMin")]
    pub(crate) vrms_half_cycle_min: Option<Loose<'a>>,
    #[serde(borrow, rename = "vrmsHalfCycleMax")]
    pub(crate) vrms_half_cycle_max: Option<Loose<'a>>,
    #[serde(borrow, rename = "energyImport")]
    pub(crate) energy_import: Option<Loose<'a>>,
    #[serde(borrow, rename = "energyExport")]
    pub(crate) energy_export: Option<Loose<'a>>,
    #[serde(borrow, rename = "frequency10s")]
    pub(crate) frequency_10s: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) mdns_name: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) current_time: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) port: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) slot: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) measures: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) chunksize: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) samplingrate: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) conn_type: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) measurements: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) prefix: Option<Loose<'a>>,
    #[serde(borrow, rename = "flowCtr")]
    pub(crate) flow_ctr: Option<Loose<'a>>,
    #[serde(borrow, rename = "ntpConfidence")]
    pub(crate) ntp_confidence: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) sample_duration: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) samples: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) sent_samples: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) start_ts: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) stop_ts: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) avg_rate: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) value: Option<Loose<'a>>,
}
