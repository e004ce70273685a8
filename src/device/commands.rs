//! Command semantics (docs/protocol.md §2, §5, §10): one typed [`Command`] in, exactly one reply out
//! (or a deferred one for `reqSamples`, `ntp` and `sample` with `ntpConf`).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};

use super::conns::Sink;
use super::engine::Device;
use super::request::MQTT_AUTH;
use super::sampling::{self, Destination, PendingSample, Sampling, SamplingParams};
use super::session::Wait;
use super::{ConnKind, Instant, LogLevel, Measurements, RestartReason};
use crate::wire::command::{
    Command, DailyRestart, SampleRequest, ServerAddr, ServerKind, StreamType,
};
use crate::wire::reply::{self, Phases, QualityReply, Reply};

/// A measurement as the wire reports it: NaN / ∞ (undefined, docs/protocol.md §2) become `None` (`null`).
fn phases(v: [f32; 3]) -> Phases {
    v.map(|x| x.is_finite().then_some(x))
}

impl Device {
    /// `?` from `conn` (§1.4): its own sampling session stops (no `stop` reply), and a `sample` of
    /// its own waiting for NTP confidence is dropped.
    pub(crate) fn availability(&mut self, conn: super::ConnId, now: Instant) {
        if self
            .sampling
            .session()
            .is_some_and(|s| s.owner == Some(conn))
        {
            self.stop_sampling(now, None);
        }
        if self.sampling.pending_of(Sink::Conn(conn)) {
            self.sampling.take_pending();
        }
    }

    pub(crate) fn raw_stream_conn(&self) -> Option<super::ConnId> {
        self.sampling.raw_conn()
    }

    #[allow(clippy::too_many_lines)]
    pub(crate) fn execute(&mut self, sink: Sink, now: Instant, cmd: Command) {
        let name = cmd.name();
        let wall = self.wall_time(now);
        match cmd {
            Command::Availability | Command::Keepalive => {}
            Command::Info => {
                let r = self.info_reply(now);
                self.reply(sink, &r);
            }
            Command::GetPower
            | Command::GetVoltage
            | Command::GetCurrent
            | Command::GetPeriod
            | Command::GetPhaseAngle
            | Command::GetQuality => {
                let r = self.measurement_reply(now, &cmd);
                self.reply(sink, &r);
            }
            Command::GetEnergy => {
                let start = self.meter.energy_start();
                let days = wall.saturating_since(start).as_secs() / 86_400;
                let r = Reply::Energy {
                    energy_wh: self.meter.energy_wh(),
                    start_ts_s: i64::try_from(start.as_secs()).unwrap_or(i64::MAX),
                    start: self.long_time(start),
                    days: u32::try_from(days).unwrap_or(u32::MAX),
                };
                self.reply(sink, &r);
            }
            Command::Mdns { name: n } => {
                self.log(now, LogLevel::Info, &format!("MDNS Name: {n}"));
                let old = core::mem::replace(&mut self.config.name, n.clone());
                self.persist_settings();
                self.reply(sink, &Reply::Mdns { name: n.clone() });
                self.push_event(super::Action::Announce { name: n });
                // The old name's retained topics go (over the old session) before the client is
                // reconfigured for the new name.
                self.forget_mqtt_name(old);
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
                    ssid: c.ssid,
                    pwd: c.pwd,
                });
                self.persist_settings();
                let ssids = self.config.ssids();
                self.reply(sink, &Reply::AddWifi { ssid, ssids });
            }
            Command::DelWifi { ssid } => {
                let Some(pos) = self.config.wifi.iter().position(|ap| ap.ssid == ssid) else {
                    return self.error_reply(sink, name, &format!("SSID {ssid} not found"));
                };
                self.config.wifi.remove(pos);
                self.persist_settings();
                let ssids = self.config.ssids();
                self.reply(sink, &Reply::DelWifi { ssid, ssids });
            }
            Command::Calibration(c) => {
                let f = c.factors();
                self.config.calibration = f;
                self.meter.set_calibration(&f);
                self.sampling.set_calibration(self.meter.calibration());
                self.persist_settings();
                self.reply(sink, &Reply::Calibration { factors: f });
            }
            Command::Restart | Command::FactoryReset | Command::BasicReset => {
                // Under the name the broker session uses, before a reset may change it.
                self.announce_offline();
                let (kind, wire_kind) = match cmd {
                    Command::FactoryReset => {
                        self.config.factory_reset();
                        self.config.token.clone_from(&self.opts.token);
                        self.meter.clear_energy(wall);
                        self.persist_settings();
                        (
                            RestartReason::FactoryReset,
                            reply::RestartKind::FactoryReset,
                        )
                    }
                    Command::BasicReset => {
                        self.config.basic_reset();
                        self.config.token.clone_from(&self.opts.token);
                        self.meter.clear_energy(wall);
                        self.persist_settings();
                        (RestartReason::BasicReset, reply::RestartKind::BasicReset)
                    }
                    _ => (RestartReason::Command, reply::RestartKind::Restart),
                };
                self.reply(sink, &Reply::Restarting { kind: wire_kind });
                if let Sink::Conn(c) = sink {
                    self.conns.close(c);
                }
                self.begin_restart(now, kind);
            }
            Command::DailyRestart(d) => {
                self.config.daily_restart = match d {
                    DailyRestart::Disabled => None,
                    DailyRestart::At { hour, minute } => Some((hour, minute)),
                };
                self.persist_settings();
                self.reply(sink, &Reply::DailyRestart(d));
            }
            Command::ResetEnergy(r) => {
                let e = r.energy_wh.unwrap_or([0.0; 3]);
                let start = r.start_ts_s.map_or(wall, Instant::from_secs_f64);
                if let Err(why) = self.meter.reset_energy(e, start) {
                    return self.error_reply(sink, name, &format!("Invalid energy: {why}"));
                }
                self.persist_energy();
                let at = self.long_time(start);
                self.reply(sink, &Reply::ResetEnergy { energy_wh: e, at });
            }
            Command::Sample(req) => self.sample(sink, now, &req),
            Command::ReqSamples { samples } => {
                let Some(owner) = self.sampling.session().map(|s| s.owner) else {
                    return self.error_reply(sink, name, "Not sampling");
                };
                let Sink::Conn(c) = sink else {
                    return self.error_reply(sink, name, "Not the sampling connection");
                };
                if owner != Some(c) {
                    return self.error_reply(sink, name, "Not the sampling connection");
                }
                let flow = self.sampling.session().is_some_and(|s| s.params.flow_ctr);
                if !flow {
                    return self.error_reply(sink, name, "Flow control not enabled");
                }
                if let Some(s) = self.sampling.session_mut() {
                    s.request(usize::from(samples));
                }
                self.conns.set_wait(c, Wait::ReqSamples);
                self.pump_sampling(now);
            }
            Command::Cts { value } => {
                let Some(owner) = self.sampling.session().map(|s| s.owner) else {
                    return self.error_reply(sink, name, "Not sampling");
                };
                if !matches!(sink, Sink::Conn(c) if owner == Some(c)) {
                    return self.error_reply(sink, name, "Not the sampling connection");
                }
                if let Some(s) = self.sampling.session_mut() {
                    s.cts = value;
                }
                self.reply(sink, &Reply::Cts { value });
                self.pump_sampling(now);
            }
            Command::Stop => {
                // A `sample` still waiting for NTP confidence never started: it is answered as one
                // whose confidence was not reached (§5.7), before its held lines run.
                if let Some(p) = self.sampling.take_pending() {
                    self.error_reply(p.sink, "sample", &p.not_reached());
                    if let Sink::Conn(c) = p.sink {
                        self.release(c, Wait::SampleNtp, now);
                    }
                    self.sampling.adopt(p.session);
                }
                if !self.stop_sampling(now, Some(sink)) {
                    self.error_reply(sink, name, "Not sampling");
                }
            }
            Command::Log { level } => {
                if let Sink::Conn(c) = sink
                    && let Some(s) = self.conns.get_mut(c)
                {
                    s.level = level;
                }
                self.reply(sink, &Reply::LogLevelSet { level });
            }
            Command::ClearLog => {
                self.persist.clear_log(now, &mut self.timers);
                self.reply(sink, &Reply::ClearLog);
            }
            Command::GetLog => {
                let rows = self.persist.logbook.rows().collect();
                self.reply(sink, &Reply::GetLogDump { rows });
                self.reply(sink, &Reply::GetLogDone);
            }
            Command::MqttServer(m) => {
                // A `port` key wins over the address's port: keep it in the stored address, so the
                // reply, `info` and the broker connection all show and use the same port.
                let server = match (&m.server, m.port) {
                    (crate::wire::command::ServerAddr::Host { host, .. }, Some(port)) => {
                        crate::wire::command::ServerAddr::Host {
                            host: host.clone(),
                            port: Some(port),
                        }
                    }
                    (other, _) => other.clone(),
                };
                let text = server.to_string();
                self.config.mqtt_server.clone_from(&text);
                self.config.mqtt_user = m.user.clone();
                self.config.mqtt_pwd = m.pwd.clone();
                self.config.mqtt_port = Some(m.effective_port());
                self.persist_settings();
                self.configure_mqtt();
                self.server_reply(sink, ServerKind::Mqtt, text);
            }
            Command::StreamServer { server } => {
                let text = server.to_string();
                self.config.stream_server.clone_from(&text);
                self.persist_settings();
                self.drop_stream_server(now);
                self.server_reply(sink, ServerKind::Stream, text);
            }
            Command::TimeServer { server } => {
                let text = server.to_string();
                self.config.time_server.clone_from(&text);
                self.persist_settings();
                self.server_reply(sink, ServerKind::Time, text);
                if !matches!(server, ServerAddr::Disabled) {
                    self.request_ntp();
                }
            }
            Command::Ntp => {
                if self.config.time_server == "-" {
                    return self.error_reply(sink, name, "Error syncing time");
                }
                self.ntp.wait(sink);
                if let Sink::Conn(c) = sink {
                    self.conns.set_wait(c, Wait::Ntp);
                }
                self.request_ntp();
            }
            Command::Timezone { offset_min } => {
                self.config.zone_offset_min = offset_min;
                self.persist_settings();
                self.reply(sink, &Reply::Timezone { offset_min });
            }
            Command::Auth { token } => match sink {
                Sink::Mqtt => self.error_reply(sink, name, MQTT_AUTH),
                Sink::Conn(_) if self.config.token.is_none() => self.reply(sink, &Reply::Auth),
                Sink::Conn(c) => self.auth(c, now, token),
            },
            Command::SetToken { token } => {
                let serial =
                    matches!(sink, Sink::Conn(c) if self.conns.kind(c) == Some(ConnKind::Serial));
                if !serial {
                    return self.error_reply(
                        sink,
                        name,
                        "Invalid token: setToken is only accepted over the serial port",
                    );
                }
                let removed = token.is_empty();
                self.config.token = (!removed).then_some(token);
                self.persist_settings();
                // a new token ends every other authentication (old token holders must log in again)
                self.conns.authenticate_only(match sink {
                    Sink::Conn(c) => Some(c),
                    Sink::Mqtt => None,
                });
                self.reply(sink, &Reply::SetToken { removed });
            }
            Command::SetNominal(n) => self.set_nominal(sink, n),
            Command::GetPq { interval } => self.get_pq(sink, interval),
            Command::GetEvents { since } => self.get_events(sink, since),
            Command::ClearEvents => self.clear_events(sink, now),
            Command::HomeAssistant(h) => self.home_assistant(sink, now, h),
        }
    }

    fn server_reply(&mut self, sink: Sink, kind: ServerKind, server: String) {
        self.reply(sink, &Reply::ServerSet { kind, server });
    }

    /// The reply of a get* command from the last complete window (all `null` before the first).
    fn measurement_reply(&mut self, now: Instant, cmd: &Command) -> Reply {
        let extremes = matches!(cmd, Command::GetQuality).then(|| self.meter.half_cycle_extremes());
        let undefined;
        let m = match self.meter.latest(now) {
            Some(m) => m,
            None => {
                undefined = Measurements::undefined();
                &undefined
            }
        };
        match (cmd, extremes) {
            (Command::GetPower, _) => Reply::Power {
                active_w: phases(m.active_w),
                reactive_var: phases(m.reactive_var),
                apparent_va: phases(m.apparent_va),
            },
            (Command::GetVoltage, _) => Reply::Voltage {
                voltage_v: phases(m.voltage_v),
            },
            (Command::GetCurrent, _) => Reply::Current {
                current_ma: phases(m.current_a.map(|a| a * 1000.0)),
            },
            (Command::GetPeriod, _) => Reply::Period {
                frequency_hz: phases(m.frequency_hz),
            },
            (Command::GetPhaseAngle, _) => Reply::PhaseAngle {
                phase_deg: phases(m.phase_deg),
            },
            // getQuality (the only caller left)
            (_, extremes) => {
                let (hmin, hmax) = extremes.unwrap_or(([f32::NAN; 3], [f32::NAN; 3]));
                let f10 = self.meter.frequency_10s();
                Reply::Quality(Box::new(QualityReply {
                    thd_v_pct: phases(m.thd_v_pct),
                    thd_i_pct: phases(m.thd_i_pct),
                    nonactive_power_va: phases(m.nonactive_va),
                    fundamental_reactive_power_var: phases(m.reactive_var),
                    power_factor: phases(m.power_factor),
                    line_voltage_v: phases(m.line_voltage_v),
                    vrms_half_cycle_min_v: phases(hmin),
                    vrms_half_cycle_max_v: phases(hmax),
                    energy_import_wh: self.meter.energy_import_wh(),
                    energy_export_wh: self.meter.energy_export_wh(),
                    frequency_10s_hz: f10.is_finite().then_some(f10),
                }))
            }
        }
    }

    fn sample(&mut self, sink: Sink, now: Instant, req: &SampleRequest) {
        let wall = self.wall_time(now);
        let unsupported = |t: &str| format!("Unsupported sampling type: {t}");
        let conn_kind = match sink {
            Sink::Conn(c) => self.conns.kind(c),
            Sink::Mqtt => None,
        };
        let dest = match req.stream {
            StreamType::Serial => match self.conns.serial() {
                Some(c) if self.opts.has_serial => Destination::Serial(c),
                _ => return self.error_reply(sink, "sample", &unsupported("Serial")),
            },
            StreamType::Tcp => match (sink, conn_kind) {
                (Sink::Conn(c), Some(ConnKind::Command { .. } | ConnKind::StreamServer { .. })) => {
                    Destination::Tcp(c)
                }
                _ => return self.error_reply(sink, "sample", &unsupported("TCP")),
            },
            StreamType::Udp { port } => match self.conns.peer_of(sink) {
                Some(peer) => Destination::Udp(core::net::SocketAddr::new(peer.ip(), port)),
                None => return self.error_reply(sink, "sample", &unsupported("UDP")),
            },
            StreamType::Mqtt => {
                if self.config.mqtt_server == "-" {
                    return self.error_reply(sink, "sample", &unsupported("MQTT"));
                }
                Destination::Mqtt
            }
            StreamType::Ffmpeg => match self.raw_stream_conn() {
                Some(c) => Destination::Raw(c),
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
        let m = req.measures;
        let ch = m.count();
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
        let session = Sampling::new(owner, dest, params, self.sampling.ring_bytes(), wall);
        if let Destination::Raw(_) = dest {
            // Re-configure the running raw stream in place.
            self.begin_sampling(now, Some(sink), session, None);
            return;
        }
        if let Some(conf_ms) = req.ntp_conf_ms {
            if self.config.time_server == "-" {
                let msg = format!("Cannot reach NTP confidence of {conf_ms} ms");
                return self.error_reply(sink, "sample", &msg);
            }
            self.sampling
                .set_pending(PendingSample::new(sink, session, conf_ms));
            if let Sink::Conn(c) = sink {
                self.conns.set_wait(c, Wait::SampleNtp);
            }
            self.request_ntp();
            return;
        }
        self.begin_sampling(now, Some(sink), session, None);
    }
}
