//! [`Reply::parse`]: which shape a reply object is — by its `cmd`, else (old firmware) by its keys —
//! and the typed value of that shape.

use alloc::boxed::Box;
use alloc::string::String;

use super::extension::{self, EVENTS_CLEARED, HOME_ASSISTANT, NOMINAL_SET};
use super::fields::{
    boolean, f64x3, finite_f32, float, msg, msg_after, opt_int, opt_string, phases, present,
    string, whole_seconds,
};
use super::raw::RawReply;
use super::shapes::{
    calibration_factors, daily_restart, info, log_dump, reset_energy, sample_started, server_set,
    stopped,
};
use super::text::{parse_offset, parse_ssid_list};
use super::types::{
    BUSY, LOG_MARK, QualityReply, Reply, ReplyError, RestartKind, SETUP_DONE, TOKEN_REMOVED,
};
use crate::wire::command::ServerKind;
use crate::wire::command::raw::Loose;
use crate::wire::log::LogLevel;

impl Reply {
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
        from_raw(&raw, json)
    }
}

/// `json` is the object `raw` was read from: the `getPQ` and `getEvents` payloads are read from it
/// again by their own loose forms.
fn from_raw(raw: &RawReply<'_>, json: &[u8]) -> Result<Reply, ReplyError> {
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
        return infer(raw, json);
    };
    by_cmd(raw, cmd, json)
}

fn by_cmd(raw: &RawReply<'_>, cmd: &str, json: &[u8]) -> Result<Reply, ReplyError> {
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
        "setNominal" => extension::nominal(raw)?,
        "getPQ" => extension::pq(json)?,
        "getEvents" => extension::events(json)?,
        "clearEvents" => Reply::ClearEvents,
        "homeAssistant" => extension::home_assistant(raw)?,
        other => Reply::Ack {
            cmd: String::from(other),
        },
    })
}

fn infer(raw: &RawReply<'_>, json: &[u8]) -> Result<Reply, ReplyError> {
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
    } else if m.starts_with(NOMINAL_SET) {
        "setNominal"
    } else if m == EVENTS_CLEARED {
        "clearEvents"
    } else if m.starts_with(HOME_ASSISTANT) {
        "homeAssistant"
    } else if present(&raw.error).is_some() && present(&raw.msg).is_none() {
        "getLog"
    } else {
        return Err(ReplyError::Unrecognized);
    };
    by_cmd(raw, cmd, json)
}
