//! The device's MQTT side (docs/protocol.md §8, §12): the client settings it hands the binding, what
//! it publishes (`online`, the classic and the per-phase status, one-shot samples, Home Assistant
//! discovery) and the messages it takes from `…/cmd`, `…/sample` and `…/state`. The [`Device`] state
//! machine itself is in `engine.rs`.
//!
//! Home Assistant discovery (§12) is a small queue of jobs, not a burst: the empty retained payloads
//! that remove the configs under old prefixes, then the configs under the prefix in force. One
//! message goes out per [`DISCOVERY_PACE`] (each formatted when it is sent), so the 26 configs of a
//! connect never sit in memory together and never overflow a binding's bounded publish queue (the
//! ESP32-C3 firmware's holds 8). A job interrupted by a lost broker starts over on the next connect.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::conns::Sink;
use super::engine::Device;
use super::timers::Timer;
use super::{Action, Instant, LogLevel, MqttSettings};
use crate::wire::command::{HomeAssistantSettings, is_valid_discovery_prefix};
use crate::wire::discovery::{DiscoveryDevice, ENTITY_COUNT, Entity};
use crate::wire::mqtt;
use crate::wire::reply::{Phases, Reply};

/// Most old device names whose retained MQTT topics wait for the next broker connection to be
/// cleared.
const MAX_STALE_NAMES: usize = 4;

/// Time between two Home Assistant discovery messages: 26 configs take about half a second.
pub(crate) const DISCOVERY_PACE: Duration = Duration::from_millis(20);

/// Most old discovery prefixes whose configs wait to be removed.
const MAX_STALE_PREFIXES: usize = 4;

/// `device.manufacturer` of the discovery configs.
const MANUFACTURER: &str = "smartmeter";
/// `device.model` of the discovery configs.
const MODEL: &str = "SmartMeter 3-phase";

/// Wall times before 2020-01-01 are a clock that was never set (no RTC, no NTP yet): the per-phase
/// status reads `"ts":null` then.
const MIN_WALL_S: u64 = 1_577_836_800;

/// The Home Assistant discovery messages still to publish (docs/protocol.md §12).
#[derive(Debug, Clone, Default)]
struct DiscoveryJobs {
    /// Prefixes whose configs are to be emptied (removed), oldest first; served before `publish`.
    removals: Vec<String>,
    /// The configs under the prefix in force are to be published.
    publish: bool,
    /// The next entity ([`Entity::nth`]) of the first job.
    next: usize,
}

impl DiscoveryJobs {
    /// The first job: `(prefix to clear, true)` or `(_, false)` for the configs; `None`: nothing.
    fn head(&self) -> Option<Option<&str>> {
        match self.removals.first() {
            Some(p) => Some(Some(p.as_str())),
            None => self.publish.then_some(None),
        }
    }

    /// Queues the removal of the configs under `prefix` (once; the oldest goes beyond the bound).
    fn remove(&mut self, prefix: &str) {
        self.removals.retain(|p| p != prefix);
        if self.removals.len() >= MAX_STALE_PREFIXES {
            self.removals.remove(0);
        }
        self.removals.push(String::from(prefix));
        self.next = 0;
    }

    /// Queues the configs under `prefix` (and forgets a removal of it still waiting).
    fn publish(&mut self, prefix: &str) {
        self.removals.retain(|p| p != prefix);
        self.publish = true;
        self.next = 0;
    }
}

/// The engine's view of the MQTT client it configures with [`Action::MqttConfigure`].
#[derive(Debug, Clone, Default)]
pub(crate) struct MqttLink {
    /// The settings last sent (`None` inside: disabled); `None`: nothing sent yet.
    sent: Option<Option<MqttSettings>>,
    /// A broker session was up when the engine replaced or dropped it: the binding may still report
    /// its end, which is no failure (docs/protocol.md §4: errors in the log must be errors).
    expect_down: bool,
    /// Names this meter had whose retained topics are still to be cleared (renamed while the
    /// broker was away).
    stale_names: Vec<String>,
    /// Home Assistant discovery messages still to publish.
    discovery: DiscoveryJobs,
}

impl Device {
    /// An MQTT message on a subscribed topic.
    ///
    /// MQTT has no sessions (docs/protocol.md §10): the broker relays every publisher, so with an access
    /// token configured a state-changing command on `…/cmd` must carry `"token":T` in its own JSON
    /// object (checked through the device-wide throttle, like `auth`), and `auth` is refused there.
    pub fn handle_mqtt(&mut self, now: Instant, topic: &str, payload: &[u8]) {
        self.last_now = now;
        self.run_held_checks(now);
        let Some(action) = mqtt::parse_topic(topic, &self.config.name) else {
            return;
        };
        match action {
            mqtt::Inbound::Cmd => {
                let line = payload.to_vec();
                self.process_line(Sink::Mqtt, now, &line);
            }
            mqtt::Inbound::Sample => {
                let q = mqtt::Quantity::parse(payload);
                let wall = self.wall_time(now);
                let values = self.meter.quantity(now, q);
                let body = mqtt::sample_reply(&values, q, &self.long_time(wall));
                self.publish(mqtt::info_topic(&self.config.name), body, false);
            }
            mqtt::Inbound::State => {
                let wall = self.wall_time(now);
                let body = mqtt::state_reply(self.is_busy(), &self.long_time(wall));
                self.publish(mqtt::info_topic(&self.config.name), body, false);
            }
        }
        self.pump_sampling(now);
    }

    /// The MQTT client configured by the last [`Action::MqttConfigure`] connected (publishes
    /// `online`, retained, and clears the retained topics of names this meter had before) or failed
    /// to connect / lost the broker (an `[E]` log line; a flood of them collapses in the logbook).
    ///
    /// The end of a session the engine itself replaced or dropped (a rename, a new `mqttServer`) is
    /// no failure: a binding may report it with `connected = false` right after the
    /// `MqttConfigure`, or not at all.
    pub fn handle_mqtt_connected(&mut self, now: Instant, connected: bool) {
        self.last_now = now;
        self.mqtt_connected = connected;
        if connected {
            self.mqtt.expect_down = false;
            let server = self.config.mqtt_server.clone();
            self.log(
                now,
                LogLevel::Info,
                &alloc::format!("MQTT connected to {server}"),
            );
            self.publish(
                mqtt::online_topic(&self.config.name),
                b"online".to_vec(),
                true,
            );
            for old in core::mem::take(&mut self.mqtt.stale_names) {
                self.publish(mqtt::online_topic(&old), Vec::new(), true);
            }
            // Configs on every connect (§12): Home Assistant may have restarted, or the broker lost
            // its retained messages; removals still waiting go first.
            if self.config.ha_discovery {
                let prefix = self.discovery_prefix();
                self.mqtt.discovery.publish(&prefix);
            }
            self.mqtt.discovery.next = 0;
            self.discovery_step(now);
        } else if core::mem::take(&mut self.mqtt.expect_down) {
            // the end of the session we asked the binding to replace
        } else if self.config.mqtt_server != "-" {
            let server = self.config.mqtt_server.clone();
            self.log(
                now,
                LogLevel::Error,
                &alloc::format!("Cannot connect to MQTT Server {server}"),
            );
        }
    }

    /// Publishes `offline` (retained) before the meter goes away on purpose (shutdown, restart).
    pub(crate) fn announce_offline(&mut self) {
        let topic = mqtt::online_topic(&self.config.name);
        self.publish(topic, b"offline".to_vec(), true);
    }

    /// The meter was called `old`: its retained topics are cleared (an empty retained payload) now
    /// over the current broker session, or on the next one.
    pub(crate) fn forget_mqtt_name(&mut self, old: String) {
        let new = self.config.name.clone();
        self.mqtt.stale_names.retain(|n| *n != new && *n != old);
        if old == new {
            return;
        }
        if self.mqtt_connected {
            self.publish(mqtt::online_topic(&old), Vec::new(), true);
        } else if self.config.mqtt_server != "-" {
            if self.mqtt.stale_names.len() >= MAX_STALE_NAMES {
                self.mqtt.stale_names.remove(0);
            }
            self.mqtt.stale_names.push(old);
        }
    }

    /// Publishes on the broker session, if one is up (otherwise the message is dropped: MQTT
    /// state is re-published on the next connection).
    pub(crate) fn publish(&mut self, topic: String, payload: Vec<u8>, retain: bool) {
        if !self.mqtt_connected {
            return;
        }
        self.push_event(Action::Publish {
            topic,
            payload,
            retain,
        });
    }

    /// The periodic `…/state/sample` status: total power, energy, current, mean voltage.
    pub(super) fn publish_status(&mut self, now: Instant) {
        let e_kwh = self.meter.energy_wh().iter().sum::<f64>() / 1000.0;
        let (p, i, v) = match self.meter.latest(now) {
            Some(m) => (
                m.active_w.iter().map(|x| f64::from(*x)).sum::<f64>(),
                m.current_a.iter().map(|x| f64::from(*x)).sum::<f64>(),
                m.voltage_v.iter().map(|x| f64::from(*x)).sum::<f64>() / 3.0,
            ),
            None => (f64::NAN, f64::NAN, f64::NAN),
        };
        let wall = self.wall_time(now);
        let body = mqtt::status(p, e_kwh, i, v, wall.as_secs());
        self.publish(mqtt::sample_topic(&self.config.name), body, false);
    }

    /// The per-phase `…/state/status` of docs/protocol.md §12 from the last complete window (values
    /// `null` without one) and the energy registers; `ts` is the wall clock, `null` while it was
    /// never set.
    pub(super) fn publish_phase_status(&mut self, now: Instant) {
        let wall = self.wall_time(now);
        let kwh = |wh: [f64; 3]| wh.map(|x| x.is_finite().then_some(x / 1000.0));
        let ph = |v: [f32; 3]| -> Phases { v.map(|x| x.is_finite().then_some(x)) };
        let mut status = mqtt::Status {
            ts_s: (wall.as_secs() >= MIN_WALL_S).then(|| wall.as_secs_f64()),
            energy_import_kwh: kwh(self.meter.energy_import_wh()),
            energy_export_kwh: kwh(self.meter.energy_export_wh()),
            ..mqtt::Status::default()
        };
        if let Some(m) = self.meter.latest(now) {
            status.voltage_v = ph(m.voltage_v);
            status.current_a = ph(m.current_a);
            status.active_power_w = ph(m.active_w);
            status.reactive_power_var = ph(m.reactive_var);
            status.apparent_power_va = ph(m.apparent_va);
            status.power_factor = ph(m.power_factor);
            status.frequency_hz = m.frequency_hz[0].is_finite().then_some(m.frequency_hz[0]);
        }
        let body = status.to_json().into_bytes();
        self.publish(mqtt::status_topic(&self.config.name), body, false);
    }

    /// `homeAssistant` (docs/protocol.md §12): switches discovery and sets its prefix (persisted when
    /// changed) and answers the state in force. Turning it off, or moving it to another prefix,
    /// removes the configs under the old prefix (empty retained payloads); turning it on publishes
    /// them; an explicit `enable:false` while off removes them again (a clean-up). Over a broker
    /// that is away, the removals wait for the next connect.
    pub(crate) fn home_assistant(&mut self, sink: Sink, now: Instant, h: HomeAssistantSettings) {
        let (was_on, old_prefix) = (self.config.ha_discovery, self.discovery_prefix());
        let on = h.enable.unwrap_or(was_on);
        let new_prefix = h.prefix.is_some();
        let prefix = h.prefix.unwrap_or_else(|| old_prefix.clone());
        if on != was_on || prefix != old_prefix {
            self.config.ha_discovery = on;
            self.config.ha_prefix.clone_from(&prefix);
            self.persist_settings();
        }
        self.reply(
            sink,
            &Reply::HomeAssistant {
                enabled: on,
                prefix: prefix.clone(),
            },
        );
        let jobs = &mut self.mqtt.discovery;
        if was_on && (!on || prefix != old_prefix) {
            jobs.remove(&old_prefix);
        }
        if !on {
            jobs.publish = false;
            if h.enable == Some(false) && !was_on {
                jobs.remove(&prefix);
            }
        } else if h.enable.is_some() || new_prefix {
            jobs.publish(&prefix);
        }
        if self.mqtt_connected && self.timers.get(Timer::Discovery).is_none() {
            self.discovery_step(now);
        }
    }

    /// The discovery prefix in force: the stored one, or the default if a damaged or foreign store
    /// holds one Home Assistant could not subscribe to.
    fn discovery_prefix(&self) -> String {
        let p = &self.config.ha_prefix;
        String::from(if is_valid_discovery_prefix(p) {
            p.as_str()
        } else {
            HomeAssistantSettings::DEFAULT_PREFIX
        })
    }

    /// The identity behind the discovery node id and `unique_id`s: the binding's
    /// ([`DeviceOptions::device_id`](super::DeviceOptions::device_id)), else the one the meter made
    /// for itself, made now (and persisted) if there is none yet.
    fn discovery_id(&mut self, now: Instant) -> String {
        if let Some(id) = self.opts.device_id.as_ref().filter(|id| !id.is_empty()) {
            return id.clone();
        }
        if let Some(id) = &self.config.device_id {
            return id.clone();
        }
        let id = self.make_device_id(now);
        self.config.device_id = Some(id.clone());
        self.persist_settings();
        id
    }

    /// 48 bits (12 hex digits, like a MAC address) from what differs between meters and moments
    /// without a random source: the clock to the µs at the first broker connect (after Wi-Fi and
    /// the broker's round trips), the measured values' low bits (ADC noise) and the energy
    /// registers, the name.
    fn make_device_id(&self, now: Instant) -> String {
        let mut h: u64 = 0x6a09_e667_f3bc_c908;
        let mut mix = |x: u64| {
            // splitmix64's finaliser over the running state
            h = (h ^ x).wrapping_add(0x9e37_79b9_7f4a_7c15);
            h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            h ^= h >> 31;
        };
        mix(now.as_micros());
        mix(self.last_now.as_micros());
        mix(self.wall_time(now).as_micros());
        if let Some(m) = self.meter.latest(now) {
            for v in m.voltage_v.iter().chain(&m.current_a).chain(&m.active_w) {
                mix(u64::from(v.to_bits()));
            }
        }
        for wh in self.meter.energy_wh() {
            mix(wh.to_bits());
        }
        for b in self.config.name.bytes() {
            mix(u64::from(b));
        }
        alloc::format!("{:012x}", h & 0xffff_ffff_ffff)
    }

    /// Publishes the next Home Assistant discovery message and arms [`Timer::Discovery`] for the one
    /// after; waits (re-armed) while the event queue is full, so none is dropped; stops while no
    /// broker is connected.
    pub(crate) fn discovery_step(&mut self, now: Instant) {
        self.timers.stop(Timer::Discovery);
        if !self.mqtt_connected {
            return;
        }
        // The prefix of the first job, and whether it removes (else it publishes the configs).
        let (prefix, removal) = match self.mqtt.discovery.head() {
            None => return,
            Some(Some(old)) => (String::from(old), true),
            Some(None) => (self.discovery_prefix(), false),
        };
        if self.outbox.has_room() {
            let id = self.discovery_id(now);
            let dev = DiscoveryDevice {
                id: &id,
                name: &self.config.name,
                manufacturer: MANUFACTURER,
                model: MODEL,
                sw_version: &self.opts.version,
            };
            let jobs = &mut self.mqtt.discovery;
            let message = Entity::nth(jobs.next).map(|e| {
                let payload = if removal {
                    Vec::new()
                } else {
                    e.config(&dev).into_bytes()
                };
                (e.topic(&prefix, &dev), payload)
            });
            jobs.next += 1;
            if jobs.next >= ENTITY_COUNT {
                jobs.next = 0;
                if removal {
                    jobs.removals.remove(0);
                } else {
                    jobs.publish = false;
                }
            }
            if let Some((topic, payload)) = message {
                self.publish(topic, payload, true);
            }
        }
        if self.mqtt.discovery.head().is_some() {
            self.timers.set(Timer::Discovery, now + DISCOVERY_PACE);
        }
    }

    /// Sends the binding the MQTT client settings derived from the configuration, when they changed.
    pub(crate) fn configure_mqtt(&mut self) {
        let settings = super::config::split_server(
            &self.config.mqtt_server,
            self.config.mqtt_port.unwrap_or(super::config::MQTT_PORT),
        )
        .map(|(host, port)| MqttSettings {
            host,
            port,
            user: self.config.mqtt_user.clone(),
            password: self.config.mqtt_pwd.clone(),
            client_id: self.config.name.clone(),
            subscriptions: mqtt::subscriptions(&self.config.name).to_vec(),
            will_topic: mqtt::online_topic(&self.config.name),
            will_payload: b"offline".to_vec(),
        });
        if self.mqtt.sent.as_ref() == Some(&settings) {
            // Nothing changed: the running client stays (the binding would keep it anyway).
            return;
        }
        // The engine replaces (or drops) the broker session: its end is no failure.
        self.mqtt.expect_down = self.mqtt_connected;
        self.mqtt_connected = false;
        self.mqtt.sent = Some(settings.clone());
        self.push_event(Action::MqttConfigure(settings));
    }
}
