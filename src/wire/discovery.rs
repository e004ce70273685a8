//! Home Assistant MQTT discovery of docs/protocol.md §12, as data: the retained config messages a meter
//! publishes on every MQTT connect, and the empty retained messages that remove them.
//!
//! One sensor per entity ([`ENTITY_COUNT`] per meter): per phase voltage, current, active, reactive
//! and apparent power, power factor, energy import and energy export; plus frequency and total active
//! power. Every entity reads the §12 status payload ([`Status`](crate::wire::mqtt::Status)) on
//! `powermeter/<name>/state/status` through its `value_template`, and is available while
//! `powermeter/<name>/state/online` reads `online` (the last will writes `offline`).
//!
//! Topics and `unique_id`s derive from the device's identity ([`DiscoveryDevice::id`], e.g. its
//! MAC address), never from its name, so they survive restarts and renames: a renamed meter
//! republishes the same configs with the new state topics, and Home Assistant keeps its entities and
//! their history.
//!
//! ```
//! use smartmeter::wire::discovery::{self, DiscoveryDevice, ENTITY_COUNT};
//!
//! let dev = DiscoveryDevice {
//!     id: "A0:B7:65:01:02:03",
//!     name: "kitchen",
//!     manufacturer: "smartmeter",
//!     model: "SmartMeter 3-phase",
//!     sw_version: "0.1.0",
//! };
//! let configs = discovery::configs("homeassistant", &dev);
//! assert_eq!(configs.len(), ENTITY_COUNT);
//! assert_eq!(configs[0].topic, "homeassistant/sensor/smartmeter_a0b765010203/voltage_l1/config");
//! assert!(configs[0].payload.starts_with(r#"{"name":"Voltage L1","unique_id":"smartmeter_a0b765010203_voltage_l1","#));
//! let removals = discovery::removals("homeassistant", &dev);
//! assert!(removals.iter().zip(&configs).all(|(r, c)| r.topic == c.topic && r.payload.is_empty()));
//! ```

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::wire::command::json::Obj;
use crate::wire::mqtt::{online_topic, status_topic};

/// Entities per meter: 8 per phase × 3, frequency and total active power.
pub const ENTITY_COUNT: usize = 26;

/// Who the configs describe (the `device` block) and where its topics are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryDevice<'a> {
    /// A stable identity of the hardware (MAC address, chip id, serial number): the source of the
    /// node id and every `unique_id`. Characters other than ASCII letters and digits are dropped and
    /// letters lowercased (`A0:B7:65:01:02:03` → `a0b765010203`); empty after that reads `unknown`.
    pub id: &'a str,
    /// The meter's name (`powermeter/<name>/…`) and the device's display name.
    pub name: &'a str,
    /// `device.manufacturer`.
    pub manufacturer: &'a str,
    /// `device.model`.
    pub model: &'a str,
    /// `device.sw_version`: the firmware version.
    pub sw_version: &'a str,
}

impl DiscoveryDevice<'_> {
    /// The node id of the config topics: `smartmeter_<id>` (see [`DiscoveryDevice::id`]).
    pub fn node_id(&self) -> String {
        let id: String = self
            .id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        format!("smartmeter_{}", if id.is_empty() { "unknown" } else { &id })
    }
}

/// One retained MQTT message: a config, or an empty payload that removes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryMessage {
    /// `<prefix>/sensor/<node>/<object>/config`.
    pub topic: String,
    /// The config JSON, or empty for a removal. Always published retained.
    pub payload: String,
}

/// The Home Assistant description of one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entity {
    /// The status key it reads (`voltage`, `activePower`, …).
    pub key: &'static str,
    /// `None`: a scalar key (frequency); `Some(p)`: phase `p` (1..=3) of an array key; for
    /// [`Entity::TOTAL_ACTIVE_POWER`] the sum of the three.
    pub phase: Option<u8>,
    /// `device_class`.
    pub device_class: &'static str,
    /// `unit_of_measurement`; `None` for the power factor (Home Assistant's unit-less form).
    pub unit: Option<&'static str>,
    /// `state_class`: `measurement`, or `total_increasing` for energies.
    pub state_class: &'static str,
    /// The object id's stem and the display name's stem.
    stem: (&'static str, &'static str),
}

/// A per-phase quantity: status key, device class, unit, state class, object stem, name stem.
type PhaseQuantity = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
);

/// The per-phase quantities, in publication order.
const PER_PHASE: [PhaseQuantity; 8] = [
    (
        "voltage",
        "voltage",
        Some("V"),
        "measurement",
        "voltage",
        "Voltage",
    ),
    (
        "current",
        "current",
        Some("A"),
        "measurement",
        "current",
        "Current",
    ),
    (
        "activePower",
        "power",
        Some("W"),
        "measurement",
        "active_power",
        "Active power",
    ),
    (
        "reactivePower",
        "reactive_power",
        Some("var"),
        "measurement",
        "reactive_power",
        "Reactive power",
    ),
    (
        "apparentPower",
        "apparent_power",
        Some("VA"),
        "measurement",
        "apparent_power",
        "Apparent power",
    ),
    (
        "powerFactor",
        "power_factor",
        None,
        "measurement",
        "power_factor",
        "Power factor",
    ),
    (
        "energyImport",
        "energy",
        Some("kWh"),
        "total_increasing",
        "energy_import",
        "Energy import",
    ),
    (
        "energyExport",
        "energy",
        Some("kWh"),
        "total_increasing",
        "energy_export",
        "Energy export",
    ),
];

impl Entity {
    /// Frequency (a scalar of the status payload).
    pub const FREQUENCY: Entity = Entity {
        key: "frequency",
        phase: None,
        device_class: "frequency",
        unit: Some("Hz"),
        state_class: "measurement",
        stem: ("frequency", "Frequency"),
    };

    /// Total active power: the sum of the defined phases.
    pub const TOTAL_ACTIVE_POWER: Entity = Entity {
        key: "activePower",
        phase: None,
        device_class: "power",
        unit: Some("W"),
        state_class: "measurement",
        stem: ("active_power_total", "Active power total"),
    };

    /// Every entity of a meter, in publication order: voltage L1..L3, current L1..L3, active,
    /// reactive and apparent power, power factor, energy import and export (each L1..L3), then
    /// frequency and total active power.
    pub fn all() -> Vec<Entity> {
        (0..ENTITY_COUNT).filter_map(Entity::nth).collect()
    }

    /// The entity at `index` of [`Entity::all`]'s order (`None` from [`ENTITY_COUNT`] on), without
    /// building the list: a meter publishing its configs one at a time walks this index.
    pub fn nth(index: usize) -> Option<Entity> {
        let (quantity, phase) = (index / 3, index % 3);
        match PER_PHASE.get(quantity) {
            Some(&(key, device_class, unit, state_class, object, name)) => Some(Entity {
                key,
                phase: Some(phase as u8 + 1),
                device_class,
                unit,
                state_class,
                stem: (object, name),
            }),
            None => [Entity::FREQUENCY, Entity::TOTAL_ACTIVE_POWER]
                .get(index - PER_PHASE.len() * 3)
                .copied(),
        }
    }

    /// The object id of the config topic and the `unique_id` suffix: `voltage_l1`, `frequency`.
    pub fn object_id(&self) -> String {
        match self.phase {
            Some(p) => format!("{}_l{p}", self.stem.0),
            None => String::from(self.stem.0),
        }
    }

    /// The display name: `Voltage L1`, `Frequency`.
    pub fn name(&self) -> String {
        match self.phase {
            Some(p) => format!("{} L{p}", self.stem.1),
            None => String::from(self.stem.1),
        }
    }

    /// The Jinja `value_template` over the status payload: `{{ value_json.voltage[0] }}`; the total
    /// sums the phases that are not `null`.
    pub fn value_template(&self) -> String {
        match self.phase {
            Some(p) => format!("{{{{ value_json.{}[{}] }}}}", self.key, p - 1),
            None if *self == Entity::TOTAL_ACTIVE_POWER => {
                format!("{{{{ value_json.{} | reject('none') | sum }}}}", self.key)
            }
            None => format!("{{{{ value_json.{} }}}}", self.key),
        }
    }

    /// The retained config JSON, keys in docs/protocol.md §12 order: `name`, `unique_id`, `state_topic`,
    /// `value_template`, `device_class`, `unit_of_measurement` (absent for the power factor),
    /// `state_class`, `availability_topic`, `device`.
    pub fn config(&self, device: &DiscoveryDevice<'_>) -> String {
        let node = device.node_id();
        let mut o = Obj::new();
        o.str("name", &self.name())
            .str("unique_id", &format!("{node}_{}", self.object_id()))
            .str("state_topic", &status_topic(device.name))
            .str("value_template", &self.value_template())
            .str("device_class", self.device_class);
        if let Some(u) = self.unit {
            o.str("unit_of_measurement", u);
        }
        o.str("state_class", self.state_class)
            .str("availability_topic", &online_topic(device.name));
        let mut ids = String::from("[");
        crate::wire::command::json::push_str_lit(&mut ids, &node);
        ids.push(']');
        let mut d = Obj::new();
        d.raw("identifiers", &ids)
            .str("name", device.name)
            .str("manufacturer", device.manufacturer)
            .str("model", device.model)
            .str("sw_version", device.sw_version);
        o.raw("device", &d.finish());
        o.finish()
    }

    /// `<prefix>/sensor/<node>/<object>/config`.
    pub fn topic(&self, prefix: &str, device: &DiscoveryDevice<'_>) -> String {
        format!(
            "{prefix}/sensor/{}/{}/config",
            device.node_id(),
            self.object_id()
        )
    }
}

/// The retained configs of every entity ([`ENTITY_COUNT`]), published on every MQTT connect while
/// discovery is on. `prefix` is the discovery prefix (default `homeassistant`).
pub fn configs(prefix: &str, device: &DiscoveryDevice<'_>) -> Vec<DiscoveryMessage> {
    Entity::all()
        .iter()
        .map(|e| DiscoveryMessage {
            topic: e.topic(prefix, device),
            payload: e.config(device),
        })
        .collect()
}

/// The empty retained payloads on the same topics as [`configs`]: what disabling discovery (or
/// changing its prefix, for the old prefix) publishes to remove the entities.
pub fn removals(prefix: &str, device: &DiscoveryDevice<'_>) -> Vec<DiscoveryMessage> {
    Entity::all()
        .iter()
        .map(|e| DiscoveryMessage {
            topic: e.topic(prefix, device),
            payload: String::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const DEV: DiscoveryDevice<'static> = DiscoveryDevice {
        id: "A0:B7:65:01:02:03",
        name: "kitchen",
        manufacturer: "smartmeter",
        model: "SmartMeter 3-phase",
        sw_version: "0.1.0",
    };

    // Home Assistant's rules for each config (class, unit, state class) and the rendering of the
    // templates are checked in tests/wire_discovery.rs with tests/ha_support, which the engine's
    // and the end-to-end tests share.

    #[test]
    fn key_order_and_templates() {
        let e = Entity::all();
        assert_eq!(e.len(), ENTITY_COUNT);
        assert_eq!(
            e[0].config(&DEV),
            r#"{"name":"Voltage L1","unique_id":"smartmeter_a0b765010203_voltage_l1","state_topic":"powermeter/kitchen/state/status","value_template":"{{ value_json.voltage[0] }}","device_class":"voltage","unit_of_measurement":"V","state_class":"measurement","availability_topic":"powermeter/kitchen/state/online","device":{"identifiers":["smartmeter_a0b765010203"],"name":"kitchen","manufacturer":"smartmeter","model":"SmartMeter 3-phase","sw_version":"0.1.0"}}"#
        );
        let pf = e
            .iter()
            .find(|x| x.object_id() == "power_factor_l3")
            .unwrap();
        assert!(!pf.config(&DEV).contains("unit_of_measurement"));
        assert_eq!(pf.value_template(), "{{ value_json.powerFactor[2] }}");
        assert_eq!(
            Entity::FREQUENCY.value_template(),
            "{{ value_json.frequency }}"
        );
        assert_eq!(
            Entity::TOTAL_ACTIVE_POWER.value_template(),
            "{{ value_json.activePower | reject('none') | sum }}"
        );
        let imp = e
            .iter()
            .find(|x| x.object_id() == "energy_import_l2")
            .unwrap();
        assert_eq!(imp.name(), "Energy import L2");
        assert_eq!(imp.value_template(), "{{ value_json.energyImport[1] }}");
    }

    /// Topics and ids follow the identity, not the name: a rename keeps them (and only moves the
    /// state topics); another identity gets other ones.
    #[test]
    fn ids_stable_across_renames_unique_across_devices() {
        let renamed = DiscoveryDevice {
            name: "garage",
            ..DEV
        };
        let a = configs("homeassistant", &DEV);
        let b = configs("homeassistant", &renamed);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.topic, y.topic);
            let (vx, vy): (Value, Value) = (
                serde_json::from_str(&x.payload).unwrap(),
                serde_json::from_str(&y.payload).unwrap(),
            );
            assert_eq!(vx["unique_id"], vy["unique_id"]);
            assert_eq!(vy["state_topic"], "powermeter/garage/state/status");
        }
        let other = DiscoveryDevice {
            id: "a0-b7-65-01-02-04",
            ..DEV
        };
        let c = configs("homeassistant", &other);
        assert!(a.iter().zip(&c).all(|(x, y)| x.topic != y.topic));
        assert_eq!(
            DiscoveryDevice { id: "::", ..DEV }.node_id(),
            "smartmeter_unknown"
        );
    }

    #[test]
    fn removals_empty_the_same_topics() {
        let c = configs("ha/disc", &DEV);
        let r = removals("ha/disc", &DEV);
        assert_eq!(r.len(), ENTITY_COUNT);
        for (x, y) in c.iter().zip(&r) {
            assert_eq!(x.topic, y.topic);
            assert!(x.topic.starts_with("ha/disc/sensor/"));
            assert!(y.payload.is_empty());
        }
    }

    /// Names with JSON-special characters are escaped in the device block.
    #[test]
    fn device_texts_are_escaped() {
        let dev = DiscoveryDevice {
            model: "Meter \"3\\P\"",
            ..DEV
        };
        let v: Value = serde_json::from_str(&Entity::FREQUENCY.config(&dev)).unwrap();
        assert_eq!(v["device"]["model"], "Meter \"3\\P\"");
    }
}
