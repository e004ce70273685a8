//! MQTT fleet view: the status of every meter publishing on a broker (`powermeter/<name>/state/...`).

use std::collections::BTreeMap;
use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;

use rumqttc::{AsyncClient, Event, Packet, QoS};

use super::broker::BrokerAddr;
use super::error::ClientError;
use crate::wire::mqtt::{self, StateLeaf, StateTopic};

/// What the broker told about one meter.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MeterStatus {
    /// The meter's name (topic segment).
    pub name: String,
    /// `state/online`: `online` / `offline` (the last will), if seen.
    pub online: Option<bool>,
    /// Sampling (`on`/`off` on `state/sample`, or `sampleState` on `state/info`), if seen.
    pub sampling: Option<bool>,
    /// ΣP in W from the 5-s status.
    pub power_w: Option<f64>,
    /// ΣE in kWh.
    pub energy_kwh: Option<f64>,
    /// ΣI in A.
    pub current_a: Option<f64>,
    /// Mean V.
    pub voltage_v: Option<f64>,
    /// The status `ts` (Unix seconds as text).
    pub ts: Option<String>,
    /// Messages received from this meter.
    pub messages: u64,
}

/// The set of meters seen so far; feed it every message of `powermeter/#`.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    meters: BTreeMap<String, MeterStatus>,
}

impl Fleet {
    /// An empty view.
    pub fn new() -> Fleet {
        Fleet::default()
    }

    /// Applies one MQTT message; topics outside `powermeter/<name>/state/<x>` are ignored.
    pub fn apply(&mut self, topic: &str, payload: &[u8]) {
        let Some(StateTopic { meter: name, leaf }) = mqtt::parse_state_topic(topic) else {
            return;
        };
        let m = self
            .meters
            .entry(name.to_string())
            .or_insert_with(|| MeterStatus {
                name: name.to_string(),
                ..MeterStatus::default()
            });
        m.messages += 1;
        let text = String::from_utf8_lossy(payload);
        let text = text.trim();
        match leaf {
            StateLeaf::Online => m.online = Some(text == "online"),
            StateLeaf::Sample => match text {
                "on" => m.sampling = Some(true),
                "off" => m.sampling = Some(false),
                _ => {
                    if let Ok(st) = serde_json::from_str::<LegacyStatus>(text) {
                        m.power_w = st.power.and_then(Loose::number).or(m.power_w);
                        m.energy_kwh = st.energy.and_then(Loose::number).or(m.energy_kwh);
                        m.current_a = st.current.and_then(Loose::number).or(m.current_a);
                        m.voltage_v = st.volt.and_then(Loose::number).or(m.voltage_v);
                        if let Some(ts) = st.ts {
                            m.ts = Some(ts.text());
                        }
                        m.online.get_or_insert(true);
                        if m.sampling.is_none() {
                            m.sampling = Some(false);
                        }
                    }
                }
            },
            StateLeaf::Info => {
                if let Ok(st) = serde_json::from_str::<SampleState>(text) {
                    match st.sample_state.as_ref().and_then(Loose::text_ref) {
                        Some("sampling") => m.sampling = Some(true),
                        Some("idle") => m.sampling = Some(false),
                        _ => {}
                    }
                    m.online.get_or_insert(true);
                }
            }
            _ => {}
        }
    }

    /// Every meter seen, sorted by name.
    pub fn meters(&self) -> Vec<MeterStatus> {
        self.meters.values().cloned().collect()
    }
}

/// The 5-s status on `state/sample` (`wire::mqtt::status`), read tolerantly: numbers or numeric
/// strings, unknown keys ignored.
#[derive(serde::Deserialize)]
struct LegacyStatus {
    power: Option<Loose>,
    energy: Option<Loose>,
    current: Option<Loose>,
    volt: Option<Loose>,
    ts: Option<Loose>,
}

/// The `state/info` answer to `powermeter/state` (`wire::mqtt::state_reply`).
#[derive(serde::Deserialize)]
struct SampleState {
    #[serde(rename = "sampleState")]
    sample_state: Option<Loose>,
}

/// A value of any JSON type (only numbers and strings mean something here).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Loose {
    Number(serde_json::Number),
    Text(String),
    Other(serde::de::IgnoredAny),
}

impl Loose {
    fn number(self) -> Option<f64> {
        match self {
            Loose::Number(n) => n.as_f64(),
            Loose::Text(s) => s.parse().ok(),
            Loose::Other(_) => None,
        }
    }

    fn text_ref(&self) -> Option<&str> {
        match self {
            Loose::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The value as text: a string as is, a number as JSON writes it.
    fn text(self) -> String {
        match self {
            Loose::Number(n) => n.to_string(),
            Loose::Text(s) => s,
            Loose::Other(_) => String::new(),
        }
    }
}

/// Connects to `broker` (plain, or TLS trusting `tls.ca`'s certificates or the platform's, with
/// `tls`'s client certificate if given), asks every meter for its state (`powermeter/state`),
/// listens for `wait` (status messages come every 5 s) and returns what it saw.
pub async fn fleet_snapshot(
    broker: &BrokerAddr,
    tls: &super::TlsFiles,
    wait: Duration,
) -> Result<Vec<MeterStatus>, ClientError> {
    let id = std::format!("smartmeter-fleet-{}", std::process::id());
    let mut opts = broker.mqtt_options(id, broker.tls_config(tls)?.as_ref());
    opts.set_keep_alive(Duration::from_secs(10));
    let (client, mut events) = AsyncClient::new(opts, 64);
    let err = |reason: String| ClientError::Mqtt {
        broker: broker.to_string(),
        reason,
    };
    client
        .subscribe(mqtt::STATE_FILTER, QoS::AtMostOnce)
        .await
        .map_err(|e| err(e.to_string()))?;
    let mut fleet = Fleet::new();
    let mut asked = false;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let ev = match tokio::time::timeout_at(deadline, events.poll()).await {
            Err(_) => break,
            Ok(Err(e)) => return Err(err(super::broker::describe(&e))),
            Ok(Ok(ev)) => ev,
        };
        match ev {
            Event::Incoming(Packet::SubAck(_)) if !asked => {
                asked = true;
                client
                    .publish("powermeter/state", QoS::AtMostOnce, false, "")
                    .await
                    .map_err(|e| err(e.to_string()))?;
            }
            Event::Incoming(Packet::Publish(p)) => fleet.apply(&p.topic, &p.payload),
            _ => {}
        }
    }
    let _ = client.disconnect().await;
    Ok(fleet.meters())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_protocol_topics() {
        let mut f = Fleet::new();
        f.apply(
            "powermeter/smartmeter001/state/sample",
            br#"{"power":1116.89,"current":4.82,"volt":236.56,"ts":"1614681575"}"#,
        );
        f.apply("powermeter/b/state/online", b"offline");
        f.apply(
            "powermeter/b/state/info",
            br#"{"sampleState":"sampling","ts":"x"}"#,
        );
        f.apply("powermeter/smartmeter001/state/sample", b"on");
        f.apply("powermeter/x/cmd", b"{}");
        f.apply("other/a/state/online", b"online");
        let m = f.meters();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].name, "b");
        assert_eq!(m[0].online, Some(false));
        assert_eq!(m[0].sampling, Some(true));
        assert_eq!(m[1].power_w, Some(1116.89));
        assert_eq!(m[1].current_a, Some(4.82));
        assert_eq!(m[1].voltage_v, Some(236.56));
        assert_eq!(m[1].ts.as_deref(), Some("1614681575"));
        assert_eq!(m[1].sampling, Some(true));
        assert_eq!(m[1].online, Some(true));
    }
}
