//! The device's MQTT side (docs/protocol.md §8): the client settings it hands the binding, what it
//! publishes (`online`, status, one-shot samples) and the messages it takes from `…/cmd`, `…/sample`
//! and `…/state`. The [`Device`] state machine itself is in `engine.rs`.

use alloc::string::String;
use alloc::vec::Vec;

use super::conns::Sink;
use super::engine::Device;
use super::{Action, Instant, LogLevel, MqttSettings};
use crate::wire::mqtt;

/// Most old device names whose retained MQTT topics wait for the next broker connection to be
/// cleared.
const MAX_STALE_NAMES: usize = 4;

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
