//! The canonical form of a reply: keys `error`, `cmd`, then the command's own keys in the documented
//! order; floats in serde_json's shortest round-trip form; `null` for undefined values.

use alloc::string::String;
use core::fmt::Write as _;

use super::extension::{EVENTS_CLEARED, encode_pq, events_json, home_assistant_text, nominal_text};
use super::text::{format_offset, ssid_list};
use super::types::{InfoReply, LOG_MARK, Reply, SETUP_DONE, SampleStarted, TOKEN_REMOVED};
use crate::wire::command::json::{Obj, push_f32, push_f64};
use crate::wire::command::{DailyRestart, StreamType};
use crate::wire::log::format_unix_millis;

impl Reply {
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
            Reply::Pq(a) => return encode_pq(a),
            Reply::GetLogDump { rows } => {
                o.str("cmd", "log").str("msg", &log_dump_text(rows));
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
        let msg = self.message().unwrap_or_default();
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
            Reply::LogLevelSet { .. }
            | Reply::ResetEnergy { .. }
            | Reply::DailyRestart(_)
            | Reply::Restarting { .. }
            | Reply::Timezone { .. }
            | Reply::Auth
            | Reply::SetToken { .. }
            | Reply::Nominal(_)
            | Reply::ClearEvents
            | Reply::HomeAssistant { .. } => {
                o.str("msg", &msg);
            }
            Reply::Events { events, next } => {
                o.raw("events", &events_json(events)).int("next", next);
            }
            Reply::Mdns { name } => {
                o.str("msg", &msg).str("mdns_name", name);
            }
            Reply::AddWifi { ssid, ssids } => {
                o.str("ssid", ssid)
                    .str("msg", &msg)
                    .str("ssids", &ssid_list(ssids));
            }
            Reply::DelWifi { ssids, .. } => {
                o.str("msg", &msg).str("ssids", &ssid_list(ssids));
            }
            Reply::Calibration { factors } => {
                o.str("msg", &msg).f32s("calibration", factors);
            }
            Reply::Ntp { current_time } => {
                o.str("msg", &msg).str("current_time", current_time);
            }
            Reply::ServerSet { kind, server } => {
                o.str("msg", &msg).str(kind.key(), server);
            }
            Reply::SampleStarted(s) => encode_sample_started(&mut o, s),
            Reply::Stopped(s) => {
                o.str("msg", &msg)
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
            Reply::ClearLog | Reply::GetLogDone | Reply::ReqSamplesDone | Reply::Ack { .. } => {}
            Reply::Info(_)
            | Reply::GetLogDump { .. }
            | Reply::Error { .. }
            | Reply::SetupDone
            | Reply::Pq(_) => {}
        }
        o.finish()
    }

    /// The `msg` text of this reply as the device writes it (`Set MDNS name to: kitchen`, the error
    /// text, `Setup done`); `None` for replies without a `msg` (measurements, `info`, `sample`,
    /// `cts`, `clearLog`, …). Host tools print it for people; [`Reply::to_json`] writes the same text.
    pub fn message(&self) -> Option<String> {
        Some(match self {
            Reply::SetupDone => String::from(SETUP_DONE),
            Reply::Error { msg, .. } => msg.clone(),
            Reply::GetLogDump { rows } => log_dump_text(rows),
            Reply::LogLevelSet { level } => alloc::format!("Log Level set to: {level}"),
            Reply::Mdns { name } => alloc::format!("Set MDNS name to: {name}"),
            Reply::AddWifi { ssid, .. } => alloc::format!("New Ap, SSID: {ssid}"),
            Reply::DelWifi { ssid, .. } => alloc::format!("Removed SSID: {ssid}"),
            Reply::Calibration { factors } => {
                let mut msg = String::from("Calibration set: [");
                for (i, f) in factors.iter().enumerate() {
                    if i > 0 {
                        msg.push_str(", ");
                    }
                    push_f32(&mut msg, *f);
                }
                msg.push(']');
                msg
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
                msg
            }
            Reply::Ntp { .. } => String::from("Time synced"),
            Reply::ServerSet { kind, server } => {
                alloc::format!("Set {} address to: {server}", kind.label())
            }
            Reply::DailyRestart(DailyRestart::Disabled) => String::from("Disabled daily restart"),
            Reply::DailyRestart(DailyRestart::At { hour, minute }) => {
                alloc::format!("Set daily restart to: {hour:02}:{minute:02}:00")
            }
            Reply::Restarting { .. } => String::from("Restarting"),
            Reply::Stopped(_) => String::from("Received stop command"),
            Reply::Timezone { offset_min } => {
                alloc::format!("Set time zone offset to: {}", format_offset(*offset_min))
            }
            Reply::Auth => String::from("Authenticated"),
            Reply::SetToken { removed } => {
                String::from(if *removed { TOKEN_REMOVED } else { "Token set" })
            }
            Reply::Nominal(n) => nominal_text(n),
            Reply::ClearEvents => String::from(EVENTS_CLEARED),
            Reply::HomeAssistant { enabled, prefix } => home_assistant_text(*enabled, prefix),
            Reply::Info(_)
            | Reply::Power { .. }
            | Reply::Voltage { .. }
            | Reply::Current { .. }
            | Reply::Energy { .. }
            | Reply::Period { .. }
            | Reply::PhaseAngle { .. }
            | Reply::Quality(_)
            | Reply::ClearLog
            | Reply::GetLogDone
            | Reply::SampleStarted(_)
            | Reply::ReqSamplesDone
            | Reply::Cts { .. }
            | Reply::Pq(_)
            | Reply::Events { .. }
            | Reply::Ack { .. } => return None,
        })
    }
}

/// The getLog dump's `msg`: the marker, every row after `//n`, `//n` and the marker again.
fn log_dump_text(rows: &[String]) -> String {
    let mut msg = String::from(LOG_MARK);
    for row in rows {
        msg.push_str("//n");
        let _ = crate::wire::log::write_escaped_text(&mut msg, row);
    }
    msg.push_str("//n");
    msg.push_str(LOG_MARK);
    msg
}

impl core::fmt::Display for Reply {
    /// The canonical payload ([`Reply::to_json`]).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_json())
    }
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
        .int("measurements", s.channel_count())
        .bool("prefix", s.prefix)
        .bool("flowCtr", s.flow_control)
        .str("unit", s.measures.unit())
        .str("startTs", &format_unix_millis(s.start_ts_ms));
    if let Some(c) = s.ntp_confidence_ms {
        o.int("ntpConfidence", c);
    }
}
