//! [`Command::encode`]: the canonical line host tools send.

use alloc::string::{String, ToString};
use core::fmt;

use super::extension::NominalValue;
use super::json::Obj;
use super::sample::{SampleRequest, StreamType};
use super::types::{CalibrationArgs, Command, DailyRestart};

impl Command {
    /// The canonical line as host tools send it, without line end: compact JSON with `cmd` first and
    /// the keys in the order of docs/protocol.md (`?` and `!` for the bare commands). Parses back to `self`.
    pub fn encode(&self) -> String {
        if matches!(self, Command::Availability | Command::Keepalive) {
            return self.name().to_string();
        }
        let mut o = Obj::new();
        o.str("cmd", self.name());
        match self {
            Command::Availability | Command::Keepalive => {}
            Command::Mdns { name } => {
                let mut p = Obj::new();
                o.raw("payload", &p.str("name", name).finish());
            }
            Command::AddWifi(w) => {
                let mut p = Obj::new();
                o.raw(
                    "payload",
                    &p.str("ssid", &w.ssid).str("pwd", &w.pwd).finish(),
                );
            }
            Command::DelWifi { ssid } => {
                let mut p = Obj::new();
                o.raw("payload", &p.str("ssid", ssid).finish());
            }
            Command::Calibration(CalibrationArgs::Factors(f)) => {
                o.f32s("cal", f);
            }
            Command::Calibration(CalibrationArgs::Uniform { v, i }) => {
                o.f32("calV", *v).f32("calI", *i);
            }
            Command::DailyRestart(d) => {
                let (h, m) = match d {
                    DailyRestart::Disabled => (-1, -1),
                    DailyRestart::At { hour, minute } => (i16::from(*hour), i16::from(*minute)),
                };
                o.int("hour", h).int("minute", m);
            }
            Command::ResetEnergy(r) => {
                if let Some(e) = &r.energy_wh {
                    o.f64s("energy", e);
                }
                if let Some(ts) = r.start_ts_s {
                    o.f64("ts", ts);
                }
            }
            Command::Sample(s) => {
                o.raw("payload", &encode_sample(s));
            }
            Command::ReqSamples { samples } => {
                o.int("samples", samples);
            }
            Command::Cts { value } => {
                o.bool("value", *value);
            }
            Command::Log { level } => {
                o.str("level", level.as_str());
            }
            Command::MqttServer(m) => {
                let mut p = Obj::new();
                p.str("server", &m.server.to_string());
                if let Some(u) = &m.user {
                    p.str("user", u);
                }
                if let Some(pw) = &m.pwd {
                    p.str("pwd", pw);
                }
                if let Some(port) = m.port {
                    p.int("port", port);
                }
                o.raw("payload", &p.finish());
            }
            Command::StreamServer { server } | Command::TimeServer { server } => {
                let mut p = Obj::new();
                o.raw("payload", &p.str("server", &server.to_string()).finish());
            }
            Command::Timezone { offset_min } => {
                o.int("offset", offset_min);
            }
            Command::Auth { token } | Command::SetToken { token } => {
                o.str("token", token);
            }
            Command::SetNominal(n) => {
                match n.voltage_v {
                    NominalValue::Keep => {}
                    NominalValue::Auto => {
                        o.int("voltage", 0);
                    }
                    // Whole volts as an integer (`230`, as docs/protocol.md writes it).
                    NominalValue::Fixed(v) if (v as i32) as f32 == v => {
                        o.int("voltage", v as i32);
                    }
                    NominalValue::Fixed(v) => {
                        o.f32("voltage", v);
                    }
                }
                match n.frequency {
                    NominalValue::Keep => {}
                    NominalValue::Auto => {
                        o.int("frequency", 0);
                    }
                    NominalValue::Fixed(f) => {
                        o.int("frequency", f.hz());
                    }
                }
            }
            Command::GetPq { interval } => {
                o.str("interval", interval.as_str());
            }
            Command::GetEvents { since } => {
                o.int("since", since);
            }
            Command::HomeAssistant(h) => {
                if let Some(e) = h.enable {
                    o.bool("enable", e);
                }
                if let Some(p) = &h.prefix {
                    o.str("prefix", p);
                }
            }
            Command::Info
            | Command::GetPower
            | Command::GetVoltage
            | Command::GetCurrent
            | Command::GetEnergy
            | Command::GetPeriod
            | Command::GetPhaseAngle
            | Command::Restart
            | Command::FactoryReset
            | Command::BasicReset
            | Command::Stop
            | Command::ClearLog
            | Command::GetLog
            | Command::Ntp
            | Command::GetQuality
            | Command::ClearEvents => {}
        }
        o.finish()
    }
}

fn encode_sample(s: &SampleRequest) -> String {
    let mut p = Obj::new();
    p.str("type", s.stream.as_str())
        .str("measures", s.measures.reported())
        .int("rate", s.rate_hz)
        .bool("prefix", s.prefix);
    if let StreamType::Udp { port } = s.stream {
        p.int("port", port);
    }
    if let Some(t) = s.start_time {
        p.f64("time", t);
    }
    p.bool("flowCtr", s.flow_control);
    if let Some(slot) = s.slot {
        p.raw("slot", &alloc::format!("[{},{}]", slot.slot, slot.slots));
    }
    if let Some(ms) = s.ntp_conf_ms {
        p.int("ntpConf", ms);
    }
    p.finish()
}

impl fmt::Display for Command {
    /// The canonical line ([`Command::encode`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}
