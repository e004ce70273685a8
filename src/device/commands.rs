//! Command semantics (PROTOCOL.md §2, §5, §10): one typed [`Command`] in, exactly one reply out
//! (or a deferred one for `reqSamples`, `ntp` and `sample` with `ntpConf`).

use alloc::format;
use alloc::string::{String, ToString};

use super::engine::{Device, MqttAuth, PendingSample, Sink};
use super::json::Obj;
use super::sampling::{self, Destination, Measures, Sampling, SamplingParams};
use super::session::Wait;
use super::time::LongTime;
use super::{ConnKind, Instant, LogLevel, RestartKind};
use crate::wire::command::{
    Command, CommandError, DailyRestart, Measures as WireMeasures, SampleRequest, ServerAddr,
    ServerKind, StreamType,
};

/// Whether a command is refused while sampling (PROTOCOL.md §2 busy guard).
fn busy_guarded(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Sample(_)
            | Command::GetPower
            | Command::GetVoltage
            | Command::GetCurrent
            | Command::GetEnergy
            | Command::GetPeriod
            | Command::GetPhaseAngle
            | Command::GetQuality
            | Command::Mdns { .. }
            | Command::MqttServer(_)
            | Command::StreamServer { .. }
            | Command::TimeServer { .. }
            | Command::AddWifi(_)
            | Command::DelWifi { .. }
            | Command::Calibration(_)
            | Command::ResetEnergy(_)
            | Command::ClearLog
            | Command::GetLog
            | Command::DailyRestart(_)
    )
}

/// Whether a command changes state and so needs `auth` when a token is configured (§10).
fn needs_auth(cmd: &Command) -> bool {
    !matches!(
        cmd,
        Command::Info
            | Command::GetPower
            | Command::GetVoltage
            | Command::GetCurrent
            | Command::GetEnergy
            | Command::GetPeriod
            | Command::GetPhaseAngle
            | Command::GetQuality
            | Command::Log { .. }
            | Command::Availability
            | Command::Keepalive
            | Command::Sample(_)
            | Command::ReqSamples { .. }
            | Command::Cts { .. }
            | Command::Stop
            | Command::Auth { .. }
            | Command::SetToken { .. }
    )
}

fn measures(m: WireMeasures) -> Measures {
    match m {
        WireMeasures::VoltCurrent3 => Measures::AllWaveforms,
        WireMeasures::VoltCurrentL1 => Measures::PhaseWaveform(0),
        WireMeasures::VoltCurrentL2 => Measures::PhaseWaveform(1),
        WireMeasures::VoltCurrentL3 => Measures::PhaseWaveform(2),
        WireMeasures::PowerPQ => Measures::Power,
        WireMeasures::Rms => Measures::Rms,
    }
}

fn list_f32(v: &[f32]) -> String {
    let parts: alloc::vec::Vec<String> = v
        .iter()
        .map(|x| serde_json::to_string(x).unwrap_or_else(|_| "null".into()))
        .collect();
    format!("[{}]", parts.join(", "))
}

fn list_f64(v: &[f64]) -> String {
    let parts: alloc::vec::Vec<String> = v
        .iter()
        .map(|x| {
            if x.is_finite() {
                serde_json::to_string(x).unwrap_or_else(|_| "null".into())
            } else {
                "null".into()
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

impl Device {
    fn error_reply(&mut self, sink: Sink, cmd: &str, msg: &str) {
        let json = Obj::reply(true, cmd).str("msg", msg).finish();
        self.reply(sink, &json);
    }

    fn ok_msg(&mut self, sink: Sink, cmd: &str, msg: &str) {
        let json = Obj::reply(false, cmd).str("msg", msg).finish();
        self.reply(sink, &json);
    }

    fn authenticated(&self, sink: Sink) -> bool {
        if self.config.token.is_none() {
            return true;
        }
        match sink {
            Sink::Conn(c) => self.session(c).is_some_and(|s| s.authenticated),
            Sink::Mqtt => self.mqtt_auth.authenticated,
        }
    }

    /// One command line (not `?`/`!`, already trimmed).
    pub(crate) fn command(&mut self, sink: Sink, now: Instant, line: &[u8]) {
        let cmd = match Command::parse(line) {
            Ok(c) => c,
            Err(e) => return self.command_error(sink, now, &e),
        };
        let name = cmd.name();
        if needs_auth(&cmd) && !self.authenticated(sink) {
            return self.error_reply(sink, name, "Authentication required");
        }
        let ffmpeg_reconfigure = matches!(
            &cmd,
            Command::Sample(r) if r.stream == StreamType::Ffmpeg
        ) && self.raw_stream_conn().is_some();
        if self.is_busy() && busy_guarded(&cmd) && !ffmpeg_reconfigure {
            let json = Obj::reply(true, name)
                .str("msg", "Device currently sampling")
                .str("state", "busy")
                .finish();
            return self.reply(sink, &json);
        }
        self.execute(sink, now, cmd);
    }

    fn command_error(&mut self, sink: Sink, now: Instant, e: &CommandError) {
        match e {
            CommandError::Empty => {}
            CommandError::UnknownCommand { cmd } => {
                self.log(now, LogLevel::Warning, "Received unknown command");
                let cmd = cmd.clone();
                self.error_reply(sink, &cmd, "unknown command");
            }
            _ => {
                let msg = e.to_string();
                let json = match e.cmd() {
                    Some(c) => Obj::reply(true, c).str("msg", &msg).finish(),
                    None => Obj::new().bool("error", true).str("msg", &msg).finish(),
                };
                self.reply(sink, &json);
            }
        }
    }

    fn raw_stream_conn(&self) -> Option<super::ConnId> {
        match self.sampling.as_ref().map(|s| s.dest) {
            Some(Destination::Raw(c)) => Some(c),
            _ => None,
        }
    }

    fn serial_conn(&self) -> Option<super::ConnId> {
        self.sessions
            .iter()
            .find(|s| s.kind == ConnKind::Serial && s.takes_commands())
            .map(|s| s.id)
    }

    #[allow(clippy::too_many_lines)]
    fn execute(&mut self, sink: Sink, now: Instant, cmd: Command) {
        let name = cmd.name();
        let wall = self.wall_time(now);
        match cmd {
            Command::Availability | Command::Keepalive => {}
            Command::Info => {
                let json = self.info_json(now);
                self.reply(sink, &json);
            }
            Command::GetPower => {
                let m = self
                    .meter
                    .latest(now)
                    .cloned()
                    .unwrap_or_else(super::Measurements::undefined);
                let json = Obj::reply(false, name)
                    .f32s("activePower", &m.active_w)
                    .f32s("reactivePower", &m.reactive_var)
                    .f32s("apparentPower", &m.apparent_va)
                    .str("unit", "W/var/VA")
                    .finish();
                self.reply(sink, &json);
            }
            Command::GetVoltage => {
                let m = self
                    .meter
                    .latest(now)
                    .cloned()
                    .unwrap_or_else(super::Measurements::undefined);
                let json = Obj::reply(false, name)
                    .f32s("voltage", &m.voltage_v)
                    .str("unit", "V")
                    .finish();
                self.reply(sink, &json);
            }
            Command::GetCurrent => {
                let m = self
                    .meter
                    .latest(now)
                    .cloned()
                    .unwrap_or_else(super::Measurements::undefined);
                let json = Obj::reply(false, name)
                    .f32s("current", &m.current_a.map(|a| a * 1000.0))
                    .str("unit", "mA")
                    .finish();
                self.reply(sink, &json);
            }
            Command::GetEnergy => {
                let start = self.meter.energy_start();
                let days = wall.saturating_since(start).as_secs() / 86_400;
                let json = Obj::reply(false, name)
                    .f64s("energy", &self.meter.energy_wh())
                    .str("unit", "Wh")
                    .uint("startTs", start.as_secs())
                    .str("start", &LongTime(start, self.zone()).to_string())
                    .uint("days", days)
                    .finish();
                self.reply(sink, &json);
            }
            Command::GetPeriod => {
                let m = self
                    .meter
                    .latest(now)
                    .cloned()
                    .unwrap_or_else(super::Measurements::undefined);
                let json = Obj::reply(false, name)
                    .f32s("period", &m.frequency_hz)
                    .str("unit", "Hz")
                    .finish();
                self.reply(sink, &json);
            }
            Command::GetPhaseAngle => {
                let m = self
                    .meter
                    .latest(now)
                    .cloned()
                    .unwrap_or_else(super::Measurements::undefined);
                let json = Obj::reply(false, name)
                    .f32s("phase", &m.phase_deg)
                    .str("unit", "Deg")
                    .finish();
                self.reply(sink, &json);
            }
            Command::GetQuality => {
                let m = self
                    .meter
                    .latest(now)
                    .cloned()
                    .unwrap_or_else(super::Measurements::undefined);
                let (hmin, hmax) = self.meter.half_cycle_extremes();
                let json = Obj::reply(false, name)
                    .f32s("thd_v", &m.thd_v_pct)
                    .f32s("thd_i", &m.thd_i_pct)
                    .f32s("nonactivePower", &m.nonactive_va)
                    .f32s("fundamentalReactivePower", &m.reactive_var)
                    .f32s("powerFactor", &m.power_factor)
                    .f32s("lineVoltage", &m.line_voltage_v)
                    .f32s("vrmsHalfCycleMin", &hmin)
                    .f32s("vrmsHalfCycleMax", &hmax)
                    .f64s("energyImport", &self.meter.energy_import_wh())
                    .f64s("energyExport", &self.meter.energy_export_wh())
                    .opt_f32("frequency10s", Some(self.meter.frequency_10s()))
                    .finish();
                self.reply(sink, &json);
            }
            Command::Mdns { name: n } => {
                self.log(now, LogLevel::Info, &format!("MDNS Name: {n}"));
                self.config.name.clone_from(&n);
                self.persist_settings();
                let json = Obj::reply(false, name)
                    .str("msg", &format!("Set MDNS name to: {n}"))
                    .str("mdns_name", &n)
                    .finish();
                self.reply(sink, &json);
                self.push_event(super::Event::Announce { name: n });
                self.configure_mqtt();
            }
            Command::AddWifi(c) => {
                if self.config.wifi.iter().any(|ap| ap.ssid == c.ssid) {
                    let msg = format!("Wifi AP {} already in list", c.ssid);
                    return self.error_reply(sink, name, &msg);
                }
                if self.config.wifi.len() >= super::config::MAX_WIFI {
                    return self.error_reply(sink, name, "MAX # APs reached, need to delete first");
                }
                let ssid = c.ssid.clone();
                self.config.wifi.push(super::config::WifiAp {
                    ssid: c.ssid.clone(),
                    pwd: c.pwd.clone(),
                });
                self.persist_settings();
                let json = Obj::reply(false, name)
                    .str("ssid", &ssid)
                    .str("msg", &format!("New Ap, SSID: {ssid}"))
                    .str("ssids", &self.config.ssids_text())
                    .finish();
                self.reply(sink, &json);
            }
            Command::DelWifi { ssid } => {
                let Some(pos) = self.config.wifi.iter().position(|ap| ap.ssid == ssid) else {
                    return self.error_reply(sink, name, &format!("SSID {ssid} not found"));
                };
                self.config.wifi.remove(pos);
                self.persist_settings();
                let json = Obj::reply(false, name)
                    .str("msg", &format!("Removed SSID: {ssid}"))
                    .str("ssids", &self.config.ssids_text())
                    .finish();
                self.reply(sink, &json);
            }
            Command::Calibration(c) => {
                let f = c.factors();
                self.config.calibration = f;
                self.meter.set_calibration(&f);
                self.persist_settings();
                let json = Obj::reply(false, name)
                    .str("msg", &format!("Calibration set: {}", list_f32(&f)))
                    .f32s("calibration", &f)
                    .finish();
                self.reply(sink, &json);
            }
            Command::Restart | Command::FactoryReset | Command::BasicReset => {
                let kind = match cmd {
                    Command::FactoryReset => {
                        self.config.factory_reset();
                        self.config.token.clone_from(&self.opts.token);
                        self.meter.reset_energy([0.0; 3], wall);
                        self.persist_settings();
                        RestartKind::FactoryReset
                    }
                    Command::BasicReset => {
                        self.config.basic_reset();
                        self.config.token.clone_from(&self.opts.token);
                        self.meter.reset_energy([0.0; 3], wall);
                        self.persist_settings();
                        RestartKind::BasicReset
                    }
                    _ => RestartKind::Command,
                };
                self.ok_msg(sink, name, "Restarting");
                if let Sink::Conn(c) = sink {
                    self.close(c);
                }
                self.begin_restart(now, kind);
            }
            Command::DailyRestart(d) => {
                let msg = match d {
                    DailyRestart::Disabled => {
                        self.config.daily_restart = None;
                        "Disabled daily restart".to_string()
                    }
                    DailyRestart::At { hour, minute } => {
                        self.config.daily_restart = Some((hour, minute));
                        format!("Set daily restart to: {hour:02}:{minute:02}:00")
                    }
                };
                self.persist_settings();
                self.ok_msg(sink, name, &msg);
            }
            Command::ResetEnergy(r) => {
                let e = r.energy_wh.unwrap_or([0.0; 3]);
                let start = r.start_ts_s.map_or(wall, Instant::from_secs_f64);
                self.meter.reset_energy(e, start);
                self.persist_energy();
                let msg = format!(
                    "Energy reset to {}, @{}",
                    list_f64(&e),
                    LongTime(start, self.zone())
                );
                self.ok_msg(sink, name, &msg);
            }
            Command::Sample(req) => self.sample(sink, now, &req),
            Command::ReqSamples { samples } => {
                let Some(owner) = self.sampling.as_ref().map(|s| s.owner) else {
                    return self.error_reply(sink, name, "Not sampling");
                };
                let Sink::Conn(c) = sink else {
                    return self.error_reply(sink, name, "Not the sampling connection");
                };
                if owner != Some(c) {
                    return self.error_reply(sink, name, "Not the sampling connection");
                }
                let flow = self.sampling.as_ref().is_some_and(|s| s.params.flow_ctr);
                if !flow {
                    return self.error_reply(sink, name, "Flow control not enabled");
                }
                if let Some(s) = self.sampling.as_mut() {
                    s.request(usize::from(samples));
                }
                self.set_wait(c, Wait::ReqSamples);
                self.pump_sampling(now);
            }
            Command::Cts { value } => {
                let Some(owner) = self.sampling.as_ref().map(|s| s.owner) else {
                    return self.error_reply(sink, name, "Not sampling");
                };
                if !matches!(sink, Sink::Conn(c) if owner == Some(c)) {
                    return self.error_reply(sink, name, "Not the sampling connection");
                }
                if let Some(s) = self.sampling.as_mut() {
                    s.cts = value;
                }
                let json = Obj::reply(false, name).bool("value", value).finish();
                self.reply(sink, &json);
                self.pump_sampling(now);
            }
            Command::Stop => {
                if let Some(p) = self.pending_sample.take() {
                    if let Sink::Conn(c) = p.sink {
                        self.release(c, Wait::SampleNtp, now);
                    }
                    self.sampling = Some(p.session);
                }
                if !self.stop_sampling(now, Some(sink)) {
                    self.error_reply(sink, name, "Not sampling");
                }
            }
            Command::Log { level } => {
                if let Sink::Conn(c) = sink
                    && let Some(s) = self.session_mut(c)
                {
                    s.level = level;
                }
                self.ok_msg(sink, name, &format!("Log Level set to: {}", level.as_str()));
            }
            Command::ClearLog => {
                self.logbook.clear();
                let json = Obj::reply(false, name).finish();
                self.reply(sink, &json);
            }
            Command::GetLog => {
                let dump = Obj::new()
                    .str("cmd", "log")
                    .str("msg", &self.logbook.dump())
                    .finish();
                self.reply(sink, &dump);
                let json = Obj::reply(false, name).finish();
                self.reply(sink, &json);
            }
            Command::MqttServer(m) => {
                let text = m.server.to_string();
                self.config.mqtt_server.clone_from(&text);
                self.config.mqtt_user = m.user.clone();
                self.config.mqtt_pwd = m.pwd.clone();
                self.config.mqtt_port = Some(m.effective_port());
                self.persist_settings();
                self.configure_mqtt();
                self.server_reply(sink, ServerKind::Mqtt, &text);
            }
            Command::StreamServer { server } => {
                let text = server.to_string();
                self.config.stream_server.clone_from(&text);
                self.persist_settings();
                self.drop_stream_server(now);
                self.server_reply(sink, ServerKind::Stream, &text);
            }
            Command::TimeServer { server } => {
                let text = server.to_string();
                self.config.time_server.clone_from(&text);
                self.persist_settings();
                self.server_reply(sink, ServerKind::Time, &text);
                if !matches!(server, ServerAddr::Disabled) {
                    self.request_ntp();
                }
            }
            Command::Ntp => {
                if self.config.time_server == "-" {
                    return self.error_reply(sink, name, "Error syncing time");
                }
                self.ntp_waiters.push(sink);
                if let Sink::Conn(c) = sink {
                    self.set_wait(c, Wait::Ntp);
                }
                self.request_ntp();
            }
            Command::Timezone { offset_min } => {
                self.config.zone_offset_min = offset_min;
                self.persist_settings();
                let sign = if offset_min < 0 { '-' } else { '+' };
                let a = offset_min.unsigned_abs();
                let msg = format!("Set time zone offset to: {sign}{:02}:{:02}", a / 60, a % 60);
                self.ok_msg(sink, name, &msg);
            }
            Command::Auth { token } => {
                let locked = sink == Sink::Mqtt && self.mqtt_auth.failures >= 3;
                let ok = !locked
                    && self
                        .config
                        .token
                        .as_ref()
                        .is_none_or(|t| ct_eq(t.as_bytes(), token.as_bytes()));
                if ok {
                    match sink {
                        Sink::Conn(c) => {
                            if let Some(s) = self.session_mut(c) {
                                s.authenticated = true;
                                s.auth_failures = 0;
                            }
                        }
                        Sink::Mqtt => {
                            self.mqtt_auth = MqttAuth {
                                authenticated: true,
                                failures: 0,
                            };
                        }
                    }
                    self.ok_msg(sink, name, "Authenticated");
                } else {
                    let failures = match sink {
                        Sink::Conn(c) => self.session_mut(c).map_or(0, |s| {
                            s.auth_failures = s.auth_failures.saturating_add(1);
                            s.auth_failures
                        }),
                        Sink::Mqtt => {
                            let a = &mut self.mqtt_auth;
                            a.failures = a.failures.saturating_add(1);
                            a.failures
                        }
                    };
                    self.log(now, LogLevel::Warning, "Authentication failed");
                    self.error_reply(sink, name, "Invalid token");
                    if let (Sink::Conn(c), 3..) = (sink, failures) {
                        self.close(c);
                    }
                }
            }
            Command::SetToken { token } => {
                let serial = matches!(sink, Sink::Conn(c) if self.session(c).is_some_and(|s| s.kind == ConnKind::Serial));
                if !serial {
                    return self.error_reply(
                        sink,
                        name,
                        "Invalid token: setToken is only accepted over the serial port",
                    );
                }
                let msg = if token.is_empty() {
                    self.config.token = None;
                    "Token removed"
                } else {
                    self.config.token = Some(token);
                    "Token set"
                };
                self.persist_settings();
                // a new token ends every other authentication (old token holders must log in again)
                for s in &mut self.sessions {
                    s.authenticated = Sink::Conn(s.id) == sink;
                }
                self.mqtt_auth = MqttAuth::default();
                self.ok_msg(sink, name, msg);
            }
        }
    }

    fn server_reply(&mut self, sink: Sink, kind: ServerKind, text: &str) {
        let json = Obj::reply(false, kind.cmd())
            .str("msg", &format!("Set {} address to: {text}", kind.label()))
            .str(kind.key(), text)
            .finish();
        self.reply(sink, &json);
    }

    fn sample(&mut self, sink: Sink, now: Instant, req: &SampleRequest) {
        let wall = self.wall_time(now);
        let unsupported = |t: &str| format!("Unsupported sampling type: {t}");
        let conn_kind = match sink {
            Sink::Conn(c) => self.session(c).map(|s| s.kind),
            Sink::Mqtt => None,
        };
        let (dest, port) = match req.stream {
            StreamType::Serial => match self.serial_conn() {
                Some(c) if self.opts.has_serial => (Destination::Serial(c), None),
                _ => return self.error_reply(sink, "sample", &unsupported("Serial")),
            },
            StreamType::Tcp => match (sink, conn_kind) {
                (Sink::Conn(c), Some(ConnKind::Command { .. } | ConnKind::StreamServer { .. })) => {
                    (Destination::Tcp(c), None)
                }
                _ => return self.error_reply(sink, "sample", &unsupported("TCP")),
            },
            StreamType::Udp { port } => match self.peer_of(sink) {
                Some(peer) => (
                    Destination::Udp(core::net::SocketAddr::new(peer.ip(), port)),
                    Some(port),
                ),
                None => return self.error_reply(sink, "sample", &unsupported("UDP")),
            },
            StreamType::Mqtt => {
                if self.config.mqtt_server == "-" {
                    return self.error_reply(sink, "sample", &unsupported("MQTT"));
                }
                (Destination::Mqtt, None)
            }
            StreamType::Ffmpeg => match self.raw_stream_conn() {
                Some(c) => (Destination::Raw(c), None),
                None => return self.error_reply(sink, "sample", "Could not connect to TCP stream"),
            },
        };
        let start_at = match req.start_time {
            Some(t) => {
                let at = Instant::from_secs_f64(t);
                let ahead = at.as_micros() as i64 - wall.as_micros() as i64;
                if !(500_000 < ahead && ahead <= 20_000_000) {
                    return self.error_reply(sink, "sample", "Start time must be 0.5-20 s ahead");
                }
                Some(at)
            }
            None => None,
        };
        let m = measures(req.measures);
        let ch = m.channels();
        let params = SamplingParams {
            measures: m,
            rate_hz: req.rate_hz,
            prefix: req.prefix && !matches!(dest, Destination::Raw(_)),
            flow_ctr: req.flow_control,
            slot: req.slot.map(|s| (s.slot, s.slots)),
            start_at,
            chunk_bytes: sampling::default_chunk_bytes(req.rate_hz, ch * 4, dest),
        };
        let owner = match (dest, sink) {
            (Destination::Raw(c), _) => Some(c),
            (_, Sink::Conn(c)) => Some(c),
            (_, Sink::Mqtt) => None,
        };
        let session = Sampling::new(owner, dest, params, self.opts.sample_ring_bytes, wall);
        if let Destination::Raw(_) = dest {
            // Re-configure the running raw stream in place.
            self.sampling = None;
            self.begin_sampling(now, Some(sink), session, port, None);
            return;
        }
        if let Some(conf_ms) = req.ntp_conf_ms {
            if self.config.time_server == "-" {
                let msg = format!("Cannot reach NTP confidence of {conf_ms} ms");
                return self.error_reply(sink, "sample", &msg);
            }
            self.pending_sample = Some(PendingSample {
                sink,
                session,
                conf_ms,
                tries: 1,
                port,
            });
            if let Sink::Conn(c) = sink {
                self.set_wait(c, Wait::SampleNtp);
            }
            self.request_ntp();
            return;
        }
        self.begin_sampling(now, Some(sink), session, port, None);
    }
}

/// Constant-time comparison of tokens (no early exit on the first differing byte).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
