//! One reply shape each: the typed payload read from a loose reply object, with the host-side
//! leniency of docs/protocol.md §A.

use alloc::string::String;

use super::fields::{
    boolean, f64x3, factors, finite_f32, float, int, msg, msg_after, opt_int, opt_string, present,
    string,
};
use super::raw::RawReply;
use super::text::parse_ssid_list;
use super::types::{InfoReply, LOG_MARK, Reply, ReplyError, SampleStarted, StopStats};
use crate::wire::command::raw::Loose;
use crate::wire::command::{DailyRestart, Measures, ServerKind, Slot, StreamType};
use crate::wire::log::parse_unix_millis;

pub(super) fn info(raw: &RawReply<'_>) -> Result<InfoReply, ReplyError> {
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

pub(super) fn log_dump(raw: &RawReply<'_>) -> Reply {
    // Rows read back exactly as the encoder writes them: a carriage return is dropped (see
    // `write_escaped_text`) and a raw newline separates rows like `//n`, so parse ∘ encode is the
    // identity. The carriage returns go first: dropped after the split, `//\rn` inside a row would
    // become a separator only when the row is written again.
    let m = msg(raw).replace('\r', "");
    let mark = LOG_MARK.trim_end();
    let body = m.strip_prefix(mark).unwrap_or(&m);
    let body = body.trim_end();
    let body = body.strip_suffix(mark).unwrap_or(body);
    let rows = body
        .split("//n")
        .flat_map(|r| r.split('\n'))
        .filter_map(|r| {
            let t = r.trim();
            (!t.is_empty()).then(|| String::from(t))
        })
        .collect();
    Reply::GetLogDump { rows }
}

pub(super) fn calibration_factors(raw: &RawReply<'_>) -> Result<[f32; 6], ReplyError> {
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

pub(super) fn reset_energy(raw: &RawReply<'_>) -> Result<Reply, ReplyError> {
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

pub(super) fn server_set(raw: &RawReply<'_>, kind: ServerKind) -> Result<Reply, ReplyError> {
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

pub(super) fn daily_restart(raw: &RawReply<'_>) -> Result<Reply, ReplyError> {
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

pub(super) fn sample_started(raw: &RawReply<'_>) -> Result<SampleStarted, ReplyError> {
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
    let measurements = match present(&raw.measurements) {
        None => None,
        Some(_) => {
            let n: u8 = int(&raw.measurements, "measurements")?;
            if n == 0 {
                return Err(ReplyError::Invalid {
                    field: "measurements",
                    reason: "expected 1 or more values per sample",
                });
            }
            (usize::from(n) != measures.count()).then_some(n)
        }
    };
    let start = string(&raw.start_ts_camel, "startTs")?;
    Ok(SampleStarted {
        stream,
        slot,
        measures,
        measurements,
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

pub(super) fn bad_slot() -> ReplyError {
    ReplyError::Invalid {
        field: "slot",
        reason: "expected [slot,slots]",
    }
}

pub(super) fn stamp(v: &Option<Loose<'_>>, field: &'static str) -> Result<i64, ReplyError> {
    parse_unix_millis(&string(v, field)?).ok_or(ReplyError::Invalid {
        field,
        reason: "expected <unix>.<mmm>",
    })
}

pub(super) fn stopped(raw: &RawReply<'_>) -> Result<StopStats, ReplyError> {
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
