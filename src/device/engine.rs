//! The [`Device`] state machine: connections, logging, timers, persistence and sample routing.
//! Command semantics live in `commands.rs`.

use alloc::string::String;
use core::time::Duration;

use super::conns::{Connections, Sink};
use super::measure::Meter;
use super::mqtt::MqttLink;
use super::ntp::{self, Ntp};
use super::outbox::Outbox;
use super::persist::Persistence;
use super::pq_events::EventStore;
use super::sampling::{Destination, NtpGate, Outputs, Pipeline, Sampling, SamplingParams, unix_ms};
use super::session::Wait;
use super::timers::{Timer, TimerTable};
use super::{
    Action, CodeBlock, Config, ConnId, ConnKind, DeviceOptions, Instant, LogLevel, NtpResult,
    PhysicalBlock, RecordKind, RestartReason, Restored,
};
use crate::text::Fixed;
use crate::wire::mqtt;
use crate::wire::reply::{InfoReply, Reply, StopStats};

/// The sampling pipeline's view of where samples and frames go (disjoint fields of the device).
macro_rules! outputs {
    ($d:expr) => {
        Outputs {
            conns: &mut $d.conns,
            outbox: &mut $d.outbox,
            mqtt_name: $d.mqtt_connected.then_some($d.config.name.as_str()),
        }
    };
}

/// Wi-Fi link facts for `info` (the binding updates them with [`Device::set_link`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Connected SSID or `-`.
    pub ssid: String,
    /// Signal strength, dBm.
    pub rssi: i32,
    /// BSSID or `-`.
    pub bssid: String,
}

impl Default for LinkInfo {
    fn default() -> Self {
        LinkInfo {
            ssid: "-".into(),
            rssi: 0,
            bssid: "-".into(),
        }
    }
}

/// Time the engine waits for output to drain before restarting anyway.
const RESTART_DRAIN: Duration = Duration::from_secs(2);
/// The meter: one sans-IO state machine serving every connection (see the [module docs](super)).
#[derive(Debug)]
pub struct Device {
    pub(crate) opts: DeviceOptions,
    pub(crate) config: Config,
    /// Every open connection, and the token-check throttle.
    pub(crate) conns: Connections,
    /// Actions for the binding.
    pub(crate) outbox: Outbox,
    /// Record sequences and the logbook.
    pub(crate) persist: Persistence,
    /// Time synchronisation.
    pub(crate) ntp: Ntp,
    /// Sampling sessions: all their state.
    pub(crate) sampling: Pipeline,
    pub(crate) meter: Meter,
    /// The last 64 power-quality events (§11), persisted.
    pub(crate) pq_events: EventStore,
    boot: Instant,
    /// Every deadline the engine waits for.
    pub(crate) timers: TimerTable,
    stream_conn: Option<ConnId>,
    pub(crate) mqtt_connected: bool,
    pub(crate) mqtt: MqttLink,
    /// Pending restart: kind, drain deadline, and whether the deadline has passed.
    pub(crate) restart: Option<(RestartReason, Instant, bool)>,
    pub(crate) link: LinkInfo,
    pub(crate) source_rate_hz: u32,
    last_local_minute: Option<u64>,
    pub(crate) last_now: Instant,
}

impl Device {
    /// Builds the engine from its options and whatever the store held. Corrupt records fall back to
    /// the defaults with an `[E]` log line (kept in the logbook); nothing here can panic.
    pub fn new(options: DeviceOptions, restored: Restored, now: Instant) -> Device {
        let mut meter = Meter::new(&Config::default().calibration, now);
        let mut pq_events = EventStore::default();
        let (persist, boot) =
            Persistence::boot(&restored, options.logbook_rows, |kind, p| match kind {
                RecordKind::Events => pq_events.restore(p),
                _ => meter.restore(p),
            });
        let mut config = boot.config.unwrap_or_default();
        if options.token.is_some() {
            config.token.clone_from(&options.token);
        }
        meter.set_calibration(&config.calibration);
        meter.set_nominal(config.nominal());
        let mut dev = Device {
            source_rate_hz: options.source_rate_hz,
            outbox: Outbox::new(options.max_events),
            conns: Connections::new(&options),
            persist,
            ntp: Ntp::default(),
            sampling: Pipeline::new(options.sample_ring_bytes, now),
            meter,
            pq_events,
            boot: now,
            timers: TimerTable::default(),
            stream_conn: None,
            mqtt_connected: false,
            mqtt: MqttLink::default(),
            restart: None,
            link: LinkInfo::default(),
            last_local_minute: None,
            last_now: now,
            config,
            opts: options,
        };
        dev.timers.set(Timer::Tick, now + Duration::from_secs(1));
        dev.timers
            .set(Timer::Status, now + dev.opts.status_interval);
        dev.timers
            .set(Timer::PersistEnergy, now + dev.opts.persist_interval);
        dev.timers.set(Timer::NtpSync, now);
        for (kind, why) in boot.corrupt {
            let what = match kind {
                RecordKind::Settings => "settings",
                RecordKind::Energy => "energy",
                RecordKind::Logbook => "logbook",
                RecordKind::Events => "events",
            };
            dev.log(
                now,
                LogLevel::Error,
                &alloc::format!("Stored {what} corrupt ({why}), using defaults"),
            );
        }
        dev.configure_mqtt();
        dev.schedule_stream_server(now);
        dev
    }

    // ----- public surface -------------------------------------------------------------------

    /// The current configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The options the engine was built with.
    pub fn options(&self) -> &DeviceOptions {
        &self.opts
    }

    /// `now` corrected by the last NTP sync (the device's wall clock).
    pub fn wall_time(&self, now: Instant) -> Instant {
        self.ntp.wall_time(now)
    }

    /// Updates the Wi-Fi facts reported by `info` (`ssid`, `rssi`, `bssid`) and the device IP.
    pub fn set_link(&mut self, ip: Option<&str>, link: LinkInfo) {
        if let Some(ip) = ip {
            self.opts.ip = ip.into();
        }
        self.link = link;
    }

    /// Whether a sampling session runs (or waits for its start or NTP confidence).
    pub fn is_busy(&self) -> bool {
        self.sampling.is_busy()
    }

    /// The last complete measurement window, if at most 250 ms old.
    pub fn measurements(&self, now: Instant) -> Option<&super::Measurements> {
        self.meter.latest(now)
    }

    /// Net energy per phase in Wh since the last reset.
    pub fn energy_wh(&self) -> [f64; 3] {
        self.meter.energy_wh()
    }

    /// Open connections.
    pub fn connections(&self) -> impl Iterator<Item = (ConnId, ConnKind)> + '_ {
        self.conns.iter().map(|s| (s.id, s.kind))
    }

    /// A new connection. When every command slot is taken, the connection idle longest (no complete
    /// line for [`DeviceOptions::idle_timeout`], and no sampling session) is evicted with
    /// `Idle connection closed` to make room (docs/protocol.md §1); with none to evict, the newcomer gets
    /// `Too many clients` and is closed. A second port-54322 reader while busy is closed at once.
    pub fn handle_connected(&mut self, now: Instant, kind: ConnKind) -> ConnId {
        self.last_now = now;
        let command = matches!(kind, ConnKind::Command { .. });
        if command
            && self.conns.is_full()
            && let Some(victim) = self.conns.idle_victim(now, |c| self.sampling.owns(c))
        {
            let line = Reply::error(None, "Idle connection closed").to_line();
            self.conns
                .evict(victim, line.as_bytes(), now, &mut self.timers);
        }
        let full = command && self.conns.is_full();
        let id = self.conns.open(kind, now, self.config.token.is_none());
        match kind {
            _ if full => {
                let line = Reply::error(None, "Too many clients").to_line();
                self.send_line(id, &line);
                self.conns.close(id);
                return id;
            }
            ConnKind::RawStream { .. } => {
                if self.is_busy() {
                    self.conns.close(id);
                } else {
                    self.start_raw_stream(now, id);
                }
                return id;
            }
            ConnKind::StreamServer { .. } => {
                self.stream_conn = Some(id);
                self.timers.stop(Timer::Reconnect);
            }
            _ => {}
        }
        let info = self.info_reply(now).to_line();
        self.send_line(id, &info);
        id
    }

    /// Bytes from a connection; returns how many of them the engine took.
    ///
    /// Lines are processed in order and none is ever dropped. While an answer of this connection is
    /// pending (`reqSamples`, `ntp`, `sample` with `ntpConf`, a throttled `auth`), the lines behind
    /// it are held, at most [`MAX_DEFERRED`](super::testing::MAX_DEFERRED) lines /
    /// [`MAX_DEFERRED_BYTES`](super::testing::MAX_DEFERRED_BYTES) bytes; beyond that the engine takes
    /// no more bytes (back-pressure, docs/protocol.md §1).
    ///
    /// **Contract**: the binding keeps `bytes[n..]` (`n` = the return value), stops reading that
    /// connection's socket while it holds such bytes, and offers them again (followed by newer bytes)
    /// after its next call of any `handle_*` or `poll_output` (a pending answer is released by
    /// samples, timeouts, NTP results or drained output). Bytes of a connection that takes no
    /// commands (a raw reader, one being closed, an unknown id) are all taken and discarded.
    #[must_use = "bytes the engine did not take must be offered again (back-pressure)"]
    pub fn handle_input(&mut self, conn: ConnId, now: Instant, bytes: &[u8]) -> usize {
        self.last_now = now;
        self.run_held_checks(now);
        let taken = self.read_lines(conn, now, bytes);
        self.pump_sampling(now);
        taken
    }

    /// A connection went away (peer closed, error, or after [`Action::Close`]). A sampling session it
    /// owns stops; its queued output is discarded.
    pub fn handle_closed(&mut self, conn: ConnId, now: Instant) {
        self.last_now = now;
        if !self.conns.remove(conn, &mut self.timers) {
            return;
        }
        self.conns.arm_forced_close(now, &mut self.timers);
        if self.stream_conn == Some(conn) {
            self.stream_conn = None;
            self.schedule_stream_server(now);
        }
        self.ntp.forget(conn);
        if self.sampling.pending_of(Sink::Conn(conn)) {
            self.sampling.take_pending();
        }
        let owned = self
            .sampling
            .session()
            .is_some_and(|s| s.owner == Some(conn) || s.dest.conn() == Some(conn));
        if owned {
            self.stop_sampling(now, None);
        }
    }

    /// Samples from the front end: measurements, energy and the running sampling session.
    pub fn handle_samples(&mut self, now: Instant, block: &PhysicalBlock<'_>) {
        self.last_now = now;
        if block.rate_hz == 0 {
            return;
        }
        self.source_rate_hz = block.rate_hz;
        let wall_start = self.wall_time(block.start);
        self.meter.feed(now, wall_start, block);
        self.power_quality(now);
        self.sampling
            .feed(block, None, wall_start, &self.meter, &mut outputs!(self));
        self.pump_sampling(now);
    }

    /// ADC codes from the front end: the same as [`handle_samples`](Self::handle_samples), but the
    /// measurements run on the estimator's integer path, and the codes are scaled to volts and amps
    /// only while a sampling session needs them.
    pub fn handle_codes(&mut self, now: Instant, block: &CodeBlock<'_>) {
        self.last_now = now;
        if block.rate_hz == 0 {
            return;
        }
        self.source_rate_hz = block.rate_hz;
        let wall_start = self.wall_time(block.start);
        self.meter.feed_codes(now, wall_start, block);
        self.power_quality(now);
        self.sampling
            .feed_codes(block, wall_start, &self.meter, &mut outputs!(self));
        self.pump_sampling(now);
    }

    /// Runs due timers: liveness/rate lines, MQTT status, persistence, daily restart, reconnects.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        self.run_held_checks(now);
        if self.timers.take_expired(Timer::Tick, now) {
            self.timers.set(Timer::Tick, now + Duration::from_secs(1));
            self.tick(now);
        }
        if self.timers.take_expired(Timer::PersistEnergy, now) {
            self.timers
                .set(Timer::PersistEnergy, now + self.opts.persist_interval);
            self.persist_energy();
        }
        if self.timers.take_expired(Timer::Status, now) {
            self.timers
                .set(Timer::Status, now + self.opts.status_interval);
            if self.mqtt_connected {
                // The classic status pauses while sampling (§8); the per-phase one does not (§12).
                if !self.is_busy() {
                    self.publish_status(now);
                }
                self.publish_phase_status(now);
            }
        }
        if self.timers.take_expired(Timer::Discovery, now) {
            self.discovery_step(now);
        }
        if self.timers.take_expired(Timer::LogbookWrite, now) {
            self.persist
                .save_logbook(now, &mut self.outbox, &mut self.timers);
        }
        if self.timers.take_expired(Timer::EventsWrite, now) {
            self.persist_events(now);
        }
        if self.timers.take_expired(Timer::Reconnect, now)
            && let Some((host, port)) =
                super::config::split_server(&self.config.stream_server, super::config::STREAM_PORT)
        {
            self.timers
                .set(Timer::Reconnect, now + self.opts.reconnect_interval);
            self.push_event(Action::Connect { host, port });
        }
        if self.timers.take_expired(Timer::RestartDrain, now)
            && let Some((_, _, due)) = self.restart.as_mut()
        {
            *due = true;
        }
        if self.timers.take_expired(Timer::NtpTimeout, now) {
            self.handle_ntp(now, NtpResult::Failed);
        }
        if self.timers.take_expired(Timer::NtpSync, now) {
            self.ntp.schedule_next(now, &mut self.timers);
            self.request_ntp();
        }
        if self.timers.take_expired(Timer::ForcedClose, now) {
            self.conns.arm_forced_close(now, &mut self.timers);
        }
        self.pump_sampling(now);
    }

    /// The result of the NTP exchange asked for by [`Action::NtpRequest`].
    pub fn handle_ntp(&mut self, now: Instant, result: NtpResult) {
        self.last_now = now;
        let (conf_ms, waiters) = self.ntp.on_result(result, &mut self.timers);
        match conf_ms {
            Some(conf) => self.log(
                now,
                LogLevel::Info,
                &alloc::format!("NTP synced with conf: {conf}"),
            ),
            None => self.log(now, LogLevel::Warning, "NTP sync failed"),
        }
        for sink in waiters {
            let r = match conf_ms {
                Some(_) => Reply::Ntp {
                    current_time: self.long_time(self.wall_time(now)),
                },
                None => Reply::error(Some("ntp"), "Error syncing time"),
            };
            self.reply(sink, &r);
            if let Sink::Conn(c) = sink {
                self.release(c, Wait::Ntp, now);
            }
        }
        if let Some(mut p) = self.sampling.take_pending() {
            match p.on_sync(conf_ms) {
                NtpGate::Reached(conf) => {
                    self.begin_sampling(now, Some(p.sink), p.session, Some(conf));
                    if let Sink::Conn(c) = p.sink {
                        self.release(c, Wait::SampleNtp, now);
                    }
                }
                NtpGate::Retry => {
                    self.sampling.set_pending(p);
                    self.request_ntp();
                }
                NtpGate::GiveUp => {
                    self.error_reply(p.sink, "sample", &p.not_reached());
                    if let Sink::Conn(c) = p.sink {
                        self.release(c, Wait::SampleNtp, now);
                    }
                }
            }
        }
    }

    /// Clean shutdown (SIGTERM, power-fail interrupt): publishes `offline` (retained) on
    /// `powermeter/<name>/state/online` (a clean MQTT disconnect sends no last will, so the binding
    /// delivers this publish before it disconnects), and persists energy, the logbook and the PQ
    /// event store now.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.last_now = now;
        self.announce_offline();
        self.persist_energy();
        self.persist
            .save_logbook_if_changed(now, &mut self.outbox, &mut self.timers);
        self.persist_events_if_changed(now);
    }

    /// Moves up to `buf.len()` queued bytes for `conn` into `buf`; 0 = nothing to send.
    pub fn poll_output(&mut self, conn: ConnId, buf: &mut [u8]) -> usize {
        let backlogged = self.conns.backlogged(conn);
        let n = self.conns.poll_output(conn, buf);
        if n > 0 {
            // Space freed: frames waiting in the ring may fit now.
            let now = self.last_now;
            self.pump_sampling(now);
            if backlogged && !self.conns.backlogged(conn) {
                // the reader caught up: a line held while it was behind may run now
                let _ = self.read_lines(conn, now, &[]);
            }
        }
        n
    }

    /// The next thing the binding must do.
    pub fn poll_event(&mut self) -> Option<Action> {
        // Connections to close once drained.
        for c in self.conns.take_closes(self.last_now, &mut self.timers) {
            self.outbox.push(Action::Close(c));
        }
        if let Some(ev) = self.outbox.pop() {
            return Some(ev);
        }
        if let Some((kind, deadline, due)) = self.restart {
            let drained = self.conns.drained();
            if drained || due || self.last_now >= deadline {
                self.restart = None;
                return Some(Action::Restart(kind));
            }
        }
        None
    }

    /// The next instant `handle_timeout` must be called at (never `None` in practice: the liveness
    /// tick runs every second).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mqtt = self.mqtt_connected;
        self.timers.next_timeout(|t| t.reported(mqtt))
    }

    // ----- internals: output -----------------------------------------------------------------

    pub(crate) fn zone(&self) -> i32 {
        i32::from(self.config.zone_offset_min)
    }

    /// `MM/DD/YYYY HH:MM:SS.mmm` of the wall-clock instant `wall` in the configured zone.
    pub(crate) fn long_time(&self, wall: Instant) -> String {
        ntp::calendar(wall, self.zone()).to_long_string()
    }

    /// A log line to every command connection whose level admits it; warnings and errors also go to
    /// the logbook. Public so a binding's own diagnostics (the ESP32-C3 firmware's `log` records)
    /// travel as the protocol's `Info:[L]` lines instead of needing a second console.
    pub fn log(&mut self, now: Instant, level: LogLevel, text: &str) {
        let wall = self.wall_time(now);
        let at = ntp::calendar(wall, self.zone());
        let mut escaped = String::with_capacity(text.len());
        // Writing into a String cannot fail.
        let _ = crate::wire::log::write_escaped_text(&mut escaped, text);
        let mut line = String::with_capacity(escaped.len() + 32);
        let _ = crate::wire::log::write_log_line(&mut line, level, &at, &escaped);
        self.conns.broadcast_log(level, line.as_bytes());
        if level >= LogLevel::Warning {
            self.persist.log(
                level.letter(),
                wall,
                &escaped,
                self.config.zone_offset_min,
                now,
                &mut self.timers,
            );
        }
    }

    pub(crate) fn push_event(&mut self, ev: Action) {
        self.outbox.push(ev);
    }

    // ----- internals: persistence ------------------------------------------------------------

    pub(crate) fn persist_settings(&mut self) {
        self.persist.save_settings(&self.config, &mut self.outbox);
    }

    pub(crate) fn persist_energy(&mut self) {
        let p = self.meter.snapshot();
        self.persist.save(RecordKind::Energy, p, &mut self.outbox);
    }

    // ----- internals: timers -----------------------------------------------------------------

    fn tick(&mut self, now: Instant) {
        let wall = self.wall_time(now);
        let r = self.sampling.tick(wall, now);
        if let Some((rate, total)) = r.rate {
            self.log(
                now,
                LogLevel::Info,
                &alloc::format!("{}Hz, {total}s", Fixed(rate, 2)),
            );
        }
        if r.missed > 0 {
            // an error, kept in the logbook: the session's ring overflowed (§5.9)
            let k = r.missed;
            self.log(now, LogLevel::Error, &alloc::format!("MISSED {k} SAMPLES"));
        }
        if r.idle {
            self.log(now, LogLevel::Info, "");
        }
        if let Some(k) = r.slow_reader {
            self.log(
                now,
                LogLevel::Info,
                &alloc::format!("Reader too slow, {k} samples not sent"),
            );
        }
        self.check_daily_restart(now);
    }

    fn check_daily_restart(&mut self, now: Instant) {
        let local_min =
            (self.wall_time(now).as_secs() as i64 + i64::from(self.zone()) * 60).max(0) as u64 / 60;
        let prev = self.last_local_minute.replace(local_min);
        let Some((h, m)) = self.config.daily_restart else {
            return;
        };
        let Some(prev) = prev else { return };
        if prev == local_min || now.saturating_since(self.boot) < Duration::from_secs(60) {
            return;
        }
        let target = u64::from(h) * 60 + u64::from(m);
        if local_min % 1440 == target && self.restart.is_none() {
            self.log(now, LogLevel::Info, "Daily restart");
            self.announce_offline();
            self.begin_restart(now, RestartReason::Daily);
        }
    }

    /// Stops sampling, persists, and restarts once the output drained (the caller announced
    /// `offline` first, under the name the broker session uses).
    pub(crate) fn begin_restart(&mut self, now: Instant, kind: RestartReason) {
        self.stop_sampling(now, None);
        self.persist_energy();
        self.persist
            .save_logbook_if_changed(now, &mut self.outbox, &mut self.timers);
        self.persist_events_if_changed(now);
        self.restart = Some((kind, now + RESTART_DRAIN, false));
        self.timers.set(Timer::RestartDrain, now + RESTART_DRAIN);
    }

    /// Asks the binding for an NTP exchange, unless one is in flight (its outcome answers every
    /// waiter) or no server is configured.
    pub(crate) fn request_ntp(&mut self) {
        let now = self.last_now;
        if let Some(server) = self
            .ntp
            .request(&self.config.time_server, now, &mut self.timers)
        {
            self.push_event(Action::NtpRequest { server });
        }
    }

    /// Asks for the stream-server connection now (if configured and not connected) and every
    /// reconnect interval until it is reported connected.
    pub(crate) fn schedule_stream_server(&mut self, now: Instant) {
        self.timers.stop(Timer::Reconnect);
        if self.stream_conn.is_some() {
            return;
        }
        if let Some((host, port)) =
            super::config::split_server(&self.config.stream_server, super::config::STREAM_PORT)
        {
            self.push_event(Action::Connect { host, port });
            self.timers
                .set(Timer::Reconnect, now + self.opts.reconnect_interval);
        }
    }

    /// The stream-server connection (if any) is dropped because the address changed.
    pub(crate) fn drop_stream_server(&mut self, now: Instant) {
        if let Some(c) = self.stream_conn.take() {
            self.conns.close(c);
        }
        self.schedule_stream_server(now);
    }

    // ----- internals: sampling ---------------------------------------------------------------

    fn start_raw_stream(&mut self, now: Instant, conn: ConnId) {
        let params = SamplingParams {
            prefix: false,
            ..Default::default()
        };
        let s = Sampling::new(
            Some(conn),
            Destination::Raw(conn),
            params,
            self.sampling.ring_bytes(),
            self.wall_time(now),
        );
        self.begin_sampling(now, None, s, None);
    }

    /// Starts `session` and, if `reply_to` is given, sends the success reply (before any frame).
    pub(crate) fn begin_sampling(
        &mut self,
        now: Instant,
        reply_to: Option<Sink>,
        session: Sampling,
        ntp_conf: Option<u64>,
    ) {
        let wall = self.wall_time(now);
        let started =
            self.sampling
                .begin(session, wall, self.source_rate_hz, &self.meter, ntp_conf);
        if let Some(sink) = reply_to {
            self.reply(sink, &Reply::SampleStarted(started));
        }
        if self.mqtt_connected {
            let t = mqtt::sample_topic(&self.config.name);
            self.publish(t, b"on".to_vec(), false);
        }
    }

    /// Stops the session: answers a pending reqSamples, flushes, and (if `reply_to` is given) sends
    /// the statistics. Returns whether a session was running.
    pub(crate) fn stop_sampling(&mut self, now: Instant, reply_to: Option<Sink>) -> bool {
        let Some(mut s) = self.sampling.stop(&mut outputs!(self)) else {
            return false;
        };
        let wall = self.wall_time(now);
        if let Some(owner) = s.owner {
            self.release(owner, Wait::ReqSamples, now);
        }
        let k = s.take_missed();
        if k > 0 {
            self.log(now, LogLevel::Error, &alloc::format!("MISSED {k} SAMPLES"));
        }
        if let Some(sink) = reply_to {
            let st = s.stats(wall);
            let r = Reply::Stopped(StopStats {
                sample_duration_ms: st.duration_ms(),
                samples: st.samples,
                sent_samples: st.sent_samples,
                start_ts_ms: unix_ms(st.start),
                stop_ts_ms: unix_ms(st.stop),
                ip: self.opts.ip.clone(),
                avg_rate_hz: st.avg_rate(),
            });
            self.reply(sink, &r);
        }
        if let Destination::Raw(c) = s.dest {
            self.conns.close(c);
        }
        if self.mqtt_connected {
            let t = mqtt::sample_topic(&self.config.name);
            self.publish(t, b"off".to_vec(), false);
        }
        true
    }

    /// Answers the pending reqSamples with what is buffered now (before a `stop`/`?` of its owner).
    pub(crate) fn answer_pending_request(&mut self) {
        self.sampling.answer_request(&mut outputs!(self));
    }

    /// Forms and routes every frame the session's gates allow now; a `reqSamples` answered lets its
    /// owner's held lines go on.
    pub(crate) fn pump_sampling(&mut self, now: Instant) {
        let wall = self.wall_time(now);
        if let Some(owner) = self.sampling.pump(wall, &mut outputs!(self)) {
            self.release(owner, Wait::ReqSamples, now);
        }
    }

    /// The `info` reply (sent on every new connection and for `{"cmd":"info"}`).
    pub(crate) fn info_reply(&self, now: Instant) -> Reply {
        let wall = self.wall_time(now);
        Reply::Info(alloc::boxed::Box::new(InfoReply {
            version: self.opts.version.clone(),
            compiled: self.opts.compiled.clone(),
            sys_time: self.long_time(wall),
            name: self.config.name.clone(),
            ip: self.opts.ip.clone(),
            mqtt_server: self.config.mqtt_server.clone(),
            stream_server: self.config.stream_server.clone(),
            time_server: self.config.time_server.clone(),
            sampling_rate_hz: self.source_rate_hz,
            buffer_size_bytes: u64::from(self.opts.buffer_size),
            psram: self.opts.psram,
            rtc: self.opts.rtc,
            busy: self.is_busy(),
            energy_wh: self.meter.energy_wh(),
            daily_reset: self.config.daily_reset(),
            calibration: self.config.calibration,
            ssids: self.config.ssids(),
            ssid: self.link.ssid.clone(),
            rssi_dbm: self.link.rssi,
            bssid: self.link.bssid.clone(),
        }))
    }

    /// Approximate heap held by the engine's buffers right now (queues, rings, logbook, scratch).
    pub fn heap_bytes(&self) -> usize {
        self.conns.heap_bytes()
            + self.sampling.heap_bytes()
            + self.persist.logbook.heap_bytes()
            + self.pq_events.heap_bytes()
    }

    /// Bytes of the power-quality pipeline (its boxed state and what it allocated when built; 0
    /// before the first block). Not part of [`heap_bytes`](Self::heap_bytes): allocated once per
    /// (re)build, never growing.
    pub fn pq_bytes(&self) -> usize {
        self.meter.pq_bytes()
    }
}
