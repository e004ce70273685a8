//! Command semantics (PROTOCOL.md §2, §5, §10): one typed [`Command`] in, exactly one reply out
//! (or a deferred one for `reqSamples`, `ntp` and `sample` with `ntpConf`).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};

use super::access::{HeldCheck, ct_eq};
use super::engine::{Device, PendingSample, Sink};
use super::sampling::{self, Destination, Measures, Sampling, SamplingParams};
use super::session::Wait;
use super::time::LongTime;
use super::{ConnKind, Instant, LogLevel, Measurements, RestartKind};
use crate::wire::command::{
    Command, CommandError, DailyRestart, Envelope, SampleRequest, ServerAddr, ServerKind,
    StreamType,
};
use crate::wire::reply::{self, Phases, QualityReply, Reply};

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

/// The reply to `auth` over MQTT (PROTOCOL.md §10: MQTT has no sessions).
const MQTT_AUTH: &str = "Authentication over MQTT: put \"token\" in each command";

/// Whether a command changes state and so needs `auth` when a token is configured (§10: all but
/// info, get*, getQuality, log, `?`, `!`, sample, reqSamples, cts, stop).
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
            | Command::GetLog
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

/// A measurement as the wire reports it: NaN / ∞ (undefined, PROTOCOL.md §2) become `None` (`null`).
fn phases(v: [f32; 3]) -> Phases {
    v.map(|x| x.is_finite().then_some(x))
}

impl Device {
    pub(crate) fn error_reply(&mut self, sink: Sink, cmd: &str, msg: &str) {
        self.reply(sink, &Reply::error(Some(cmd), msg));
    }

    /// One command line (not `?`/`!`, already trimmed).
    pub(crate) fn command(&mut self, sink: Sink, now: Instant, line: &[u8]) {
        let (cmd, token) = match sink {
            // Over MQTT the token travels in each command (PROTOCOL.md §10).
            Sink::Mqtt => match Envelope::parse(line) {
                Ok(e) => (e.command, e.token),
                Err(e) => return self.command_error(sink, now, &e),
            },
            Sink::Conn(_) => match Command::parse(line) {
                Ok(c) => (c, None),
                Err(e) => return self.command_error(sink, now, &e),
            },
        };
        let name = cmd.name();
        if self.config.token.is_some() && needs_auth(&cmd) {
            match sink {
                Sink::Conn(c) => {
                    if !self.session(c).is_some_and(|s| s.authenticated) {
                        return self.error_reply(sink, name, "Authentication required");
                    }
                }
                Sink::Mqtt => {
                    let Some(token) = token else {
                        return self.error_reply(sink, name, "Authentication required");
                    };
                    if self.throttle.ready(now) && !self.throttle.has_held() {
                        return self.check_mqtt_command(now, cmd, &token);
                    }
                    let held = HeldCheck::Mqtt {
                        command: cmd,
                        token,
                    };
                    if self.throttle.hold(held).is_err() {
                        self.error_reply(
                            sink,
                            name,
                            "Invalid token: too many attempts, retry later",
                        );
                    }
                    return;
                }
            }
        }
        self.guarded_execute(sink, now, cmd);
    }

    /// The busy guard, then the command.
    fn guarded_execute(&mut self, sink: Sink, now: Instant, cmd: Command) {
        let name = cmd.name();
        let ffmpeg_reconfigure = matches!(
            &cmd,
            Command::Sample(r) if r.stream == StreamType::Ffmpeg
        ) && self.raw_stream_conn().is_some();
        if self.is_busy() && busy_guarded(&cmd) && !ffmpeg_reconfigure {
            return self.reply(sink, &Reply::busy(name));
        }
        self.execute(sink, now, cmd);
    }

    /// Whether `token` is the configured one; a wrong token is logged and counts in the throttle.
    fn token_ok(&mut self, now: Instant, token: &str) -> bool {
        let ok = self
            .config
            .token
            .as_ref()
            .is_none_or(|t| ct_eq(t.as_bytes(), token.as_bytes()));
        if ok {
            self.throttle.succeeded(now);
        } else {
            self.throttle.failed(now);
            self.log(now, LogLevel::Warning, "Authentication failed");
        }
        ok
    }

    /// A protected command from MQTT, its token checked now (the throttle allows it).
    pub(crate) fn check_mqtt_command(&mut self, now: Instant, cmd: Command, token: &str) {
        if self.token_ok(now, token) {
            self.guarded_execute(Sink::Mqtt, now, cmd);
        } else {
            self.error_reply(Sink::Mqtt, cmd.name(), "Invalid token");
        }
    }

    /// An `auth` of `conn`, checked now (the throttle allows it): authenticated, or one more
    /// failure (closed after the third).
    pub(crate) fn check_auth(&mut self, conn: super::ConnId, now: Instant, token: &str) {
        let sink = Sink::Conn(conn);
        if self.token_ok(now, token) {
            if let Some(s) = self.session_mut(conn) {
                s.authenticated = true;
                s.auth_failures = 0;
            }
            self.reply(sink, &Reply::Auth);
            return;
        }
        let failures = self.session_mut(conn).map_or(0, |s| {
            s.auth_failures = s.auth_failures.saturating_add(1);
            s.auth_failures
        });
        self.error_reply(sink, "auth", "Invalid token");
        if failures >= 3 {
            self.close(conn);
        }
    }

    fn command_error(&mut self, sink: Sink, now: Instant, e: &CommandError) {
        match e {
            CommandError::Empty => {}
            _ => {
                if let CommandError::UnknownCommand { .. } = e {
                    self.log(now, LogLevel::Warning, "Received unknown command");
                }
                self.reply(sink, &Reply::from_command_error(e));
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
                    start: LongTime(start, self.zone()).to_string(),
                    days: u32::try_from(days).unwrap_or(u32::MAX),
                };
                self.reply(sink, &r);
            }
            Command::Mdns { name: n } => {
                self.log(now, LogLevel::Info, &format!("MDNS Name: {n}"));
                let old = core::mem::replace(&mut self.config.name, n.clone());
                self.persist_settings();
                self.reply(sink, &Reply::Mdns { name: n.clone() });
                self.push_event(super::Event::Announce { name: n });
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
                        (RestartKind::FactoryReset, reply::RestartKind::FactoryReset)
                    }
                    Command::BasicReset => {
                        self.config.basic_reset();
                        self.config.token.clone_from(&self.opts.token);
                        self.meter.clear_energy(wall);
                        self.persist_settings();
                        (RestartKind::BasicReset, reply::RestartKind::BasicReset)
                    }
                    _ => (RestartKind::Command, reply::RestartKind::Restart),
                };
                self.reply(sink, &Reply::Restarting { kind: wire_kind });
                if let Sink::Conn(c) = sink {
                    self.close(c);
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
                let at = LongTime(start, self.zone()).to_string();
                self.reply(sink, &Reply::ResetEnergy { energy_wh: e, at });
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
                self.reply(sink, &Reply::Cts { value });
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
                self.reply(sink, &Reply::LogLevelSet { level });
            }
            Command::ClearLog => {
                self.logbook.clear();
                self.reply(sink, &Reply::ClearLog);
            }
            Command::GetLog => {
                let rows = self.logbook.rows().collect();
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
                self.ntp_waiters.push(sink);
                if let Sink::Conn(c) = sink {
                    self.set_wait(c, Wait::Ntp);
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
                Sink::Conn(c) => {
                    // Device-wide throttle: checked now if due and nobody is queued, else held
                    // (this connection's later lines wait behind it, others carry on).
                    if self.throttle.ready(now) && !self.throttle.has_held() {
                        self.check_auth(c, now, &token);
                    } else if self
                        .throttle
                        .hold(HeldCheck::Auth { conn: c, token })
                        .is_ok()
                    {
                        self.set_wait(c, Wait::Auth);
                    }
                }
            },
            Command::SetToken { token } => {
                let serial = matches!(sink, Sink::Conn(c) if self.session(c).is_some_and(|s| s.kind == ConnKind::Serial));
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
                for s in &mut self.sessions {
                    s.authenticated = Sink::Conn(s.id) == sink;
                }
                self.reply(sink, &Reply::SetToken { removed });
            }
            // TODO(pq-engine): the §11/§12 commands are parsed by `wire` but not executed yet;
            // until the engine has them they answer like an unknown command.
            Command::SetNominal(_)
            | Command::GetPq { .. }
            | Command::GetEvents { .. }
            | Command::ClearEvents
            | Command::HomeAssistant(_) => self.error_reply(sink, name, "unknown command"),
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
            Sink::Conn(c) => self.session(c).map(|s| s.kind),
            Sink::Mqtt => None,
        };
        let dest = match req.stream {
            StreamType::Serial => match self.serial_conn() {
                Some(c) if self.opts.has_serial => Destination::Serial(c),
                _ => return self.error_reply(sink, "sample", &unsupported("Serial")),
            },
            StreamType::Tcp => match (sink, conn_kind) {
                (Sink::Conn(c), Some(ConnKind::Command { .. } | ConnKind::StreamServer { .. })) => {
                    Destination::Tcp(c)
                }
                _ => return self.error_reply(sink, "sample", &unsupported("TCP")),
            },
            StreamType::Udp { port } => match self.peer_of(sink) {
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
        let m = Measures::from(req.measures);
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
            self.begin_sampling(now, Some(sink), session, None);
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
            });
            if let Sink::Conn(c) = sink {
                self.set_wait(c, Wait::SampleNtp);
            }
            self.request_ntp();
            return;
        }
        self.begin_sampling(now, Some(sink), session, None);
    }
}
