//! Validation: the loose [`RawCommand`] into the typed [`Command`], with the protocol's error text
//! for every refusal.

use alloc::string::{String, ToString};

use super::error::CommandError;
use super::extension::{
    HomeAssistantSettings, NominalFrequency, NominalSettings, NominalValue, PqInterval,
    is_valid_discovery_prefix,
};
use super::raw::{Item, Loose, RawCommand};
use super::sample::{Measures, SampleRequest, Slot, StreamType};
use super::server::{MqttServerSettings, ServerAddr, ServerKind};
use super::types::{
    CalibrationArgs, Command, DailyRestart, EnergyReset, MAX_SSID_BYTES, MAX_TOKEN_BYTES,
    MAX_WIFI_PWD_BYTES, WifiCredentials, is_valid_mdns_name,
};
use crate::wire::log::LogLevel;

/// Field lookup: the documented place first (`payload` or top level), then the other one.
pub(super) struct Fields<'r, 'a> {
    pub(super) top: &'r RawCommand<'a>,
    pub(super) payload: Option<&'r RawCommand<'a>>,
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

pub(super) fn invalid(
    cmd: &'static str,
    field: &'static str,
    reason: &'static str,
) -> CommandError {
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
    pub(super) fn from_fields(f: &Fields<'_, '_>) -> Result<Command, CommandError> {
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
            "clearEvents" => Command::ClearEvents,
            "setNominal" => Command::SetNominal(nominal(f)?),
            "getPQ" => Command::GetPq {
                interval: match f.at_top(|r| &r.interval) {
                    None => PqInterval::default(),
                    Some(v) => v.as_str().and_then(PqInterval::parse).ok_or_else(|| {
                        invalid("getPQ", "interval", "expected 200ms, 3s, 10min or 2h")
                    })?,
                },
            },
            "getEvents" => Command::GetEvents {
                since: match f.at_top(|r| &r.since) {
                    None => 0,
                    Some(v) => v
                        .as_i64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| {
                            invalid("getEvents", "since", "expected an event id 0-4294967295")
                        })?,
                },
            },
            "homeAssistant" => Command::HomeAssistant(home_assistant(f)?),
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

/// `"auto"` (any case, surrounding whitespace ignored), the liberal spelling of `0`.
fn is_auto(v: &Loose<'_>) -> bool {
    v.as_str()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("auto"))
}

fn nominal(f: &Fields<'_, '_>) -> Result<NominalSettings, CommandError> {
    let voltage_v = match f.at_top(|r| &r.voltage) {
        None => NominalValue::Keep,
        Some(v) if is_auto(v) => NominalValue::Auto,
        Some(v) => match v.as_f64() {
            Some(0.0) => NominalValue::Auto,
            Some(x)
                if (f64::from(NominalSettings::MIN_VOLTAGE_V)
                    ..=f64::from(NominalSettings::MAX_VOLTAGE_V))
                    .contains(&x) =>
            {
                NominalValue::Fixed(x as f32)
            }
            _ => {
                return Err(invalid(
                    "setNominal",
                    "voltage",
                    "expected 50 to 1000 V, or 0 for auto",
                ));
            }
        },
    };
    let frequency = match f.at_top(|r| &r.frequency) {
        None => NominalValue::Keep,
        Some(v) if is_auto(v) => NominalValue::Auto,
        Some(v) => v
            .as_i64()
            .and_then(|hz| match hz {
                0 => Some(NominalValue::Auto),
                hz => NominalFrequency::from_hz(hz).map(NominalValue::Fixed),
            })
            .ok_or_else(|| {
                invalid(
                    "setNominal",
                    "frequency",
                    "expected 50 or 60 Hz, or 0 for auto",
                )
            })?,
    };
    Ok(NominalSettings {
        voltage_v,
        frequency,
    })
}

fn home_assistant(f: &Fields<'_, '_>) -> Result<HomeAssistantSettings, CommandError> {
    let enable = match f.at_top(|r| &r.enable) {
        None => None,
        Some(v) => Some(
            v.as_bool()
                .ok_or_else(|| invalid("homeAssistant", "enable", "expected true or false"))?,
        ),
    };
    let prefix = match f.at_top(|r| &r.prefix) {
        None => None,
        Some(v) => Some(
            v.as_str()
                .filter(|p| is_valid_discovery_prefix(p))
                .map(String::from)
                .ok_or_else(|| {
                    invalid(
                        "homeAssistant",
                        "prefix",
                        "expected 1-64 bytes of MQTT topic levels without + or #",
                    )
                })?,
        ),
    };
    Ok(HomeAssistantSettings { enable, prefix })
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
        .filter(|x| (CalibrationArgs::MIN..=CalibrationArgs::MAX).contains(x))
        .ok_or_else(|| CommandError::CalibrationFactor {
            index,
            value: v.to_string(),
        })
}

fn calibration(f: &Fields<'_, '_>) -> Result<CalibrationArgs, CommandError> {
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
            [v, i, ..] if list.len() == 2 => CalibrationArgs::Uniform { v, i },
            factors => CalibrationArgs::Factors(factors),
        });
    }
    match (f.at_top(|r| &r.cal_v), f.at_top(|r| &r.cal_i)) {
        (Some(v), Some(i)) => Ok(CalibrationArgs::Uniform {
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

/// The access token of a command (the `token` key, top level first), for [`Envelope`].
pub(super) fn access_token(
    f: &Fields<'_, '_>,
    command: &Command,
) -> Result<Option<String>, CommandError> {
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
