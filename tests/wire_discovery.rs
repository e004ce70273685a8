//! `wire::discovery` (docs/protocol.md §12) against Home Assistant's rules (tests/ha_support): every
//! config is one the MQTT sensor platform accepts, and every `value_template` renders the value of
//! its entity from a status payload.

mod ha_support;

use std::collections::BTreeSet;

use ha_support::{check_config, expected, render};
use serde_json::Value;
use smartmeter::wire::discovery::{self, DiscoveryDevice, ENTITY_COUNT, Entity};
use smartmeter::wire::mqtt::Status;

const DEV: DiscoveryDevice<'static> = DiscoveryDevice {
    id: "A0:B7:65:01:02:03",
    name: "kitchen",
    manufacturer: "smartmeter",
    model: "SmartMeter 3-phase",
    sw_version: "0.1.0",
};

#[test]
fn configs_are_valid_for_home_assistant() {
    let configs = discovery::configs("homeassistant", &DEV);
    assert_eq!(configs.len(), ENTITY_COUNT);
    let mut ids = BTreeSet::new();
    let mut topics = BTreeSet::new();
    for m in &configs {
        let c = check_config("homeassistant", &m.topic, m.payload.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(ids.insert(c.unique_id.clone()), "{}", m.topic);
        assert!(topics.insert(m.topic.clone()));
        assert!(
            m.topic
                .starts_with("homeassistant/sensor/smartmeter_a0b765010203/")
        );
        assert_eq!(c.state_topic, "powermeter/kitchen/state/status");
        assert_eq!(c.availability_topic, "powermeter/kitchen/state/online");
        assert_eq!(
            c.json["device"]["identifiers"][0],
            "smartmeter_a0b765010203"
        );
        assert_eq!(c.json["device"]["name"], "kitchen");
        assert_eq!(c.json["device"]["sw_version"], "0.1.0");
        assert!(c.value_template.starts_with("{{ value_json."));
    }
    // The energy dashboard's entities: six per-phase energies, total_increasing in kWh.
    let energies = configs
        .iter()
        .filter(|m| m.payload.contains("\"device_class\":\"energy\""))
        .count();
    assert_eq!(energies, 6);
}

/// The checker refuses what Home Assistant refuses (so the tests that use it can fail).
#[test]
fn the_checker_refuses_invalid_pairs() {
    let good = discovery::configs("homeassistant", &DEV).remove(0);
    let mut v: Value = serde_json::from_str(&good.payload).unwrap();
    for (key, bad) in [
        ("unit_of_measurement", Value::from("kV")),
        ("state_class", Value::from("total_increasing")),
        ("device_class", Value::from("voltage_rms")),
    ] {
        let mut w = v.clone();
        w[key] = bad;
        let e = check_config("homeassistant", &good.topic, w.to_string().as_bytes());
        assert!(e.is_err(), "{key}: {w}");
    }
    v["unique_id"] = Value::from("kitchen_voltage_l1");
    assert!(check_config("homeassistant", &good.topic, v.to_string().as_bytes()).is_err());
    assert!(check_config("ha", &good.topic, good.payload.as_bytes()).is_err());
}

/// Every template renders its entity's value from a status payload (nulls as unknown, the total
/// over the defined phases).
#[test]
fn templates_render_the_status_values() {
    let status = Status {
        ts_s: Some(1_700_000_000.25),
        voltage_v: [Some(230.5), Some(229.0), Some(231.25)],
        current_a: [Some(5.0), Some(3.0), None],
        active_power_w: [Some(996.0), Some(-120.5), None],
        reactive_power_var: [Some(575.0), Some(0.0), Some(1.5)],
        apparent_power_va: [Some(1150.0), Some(687.0), Some(2.0)],
        power_factor: [Some(0.866), Some(-0.175), None],
        frequency_hz: Some(49.98),
        energy_import_kwh: [Some(12.345), Some(0.0), Some(1.0)],
        energy_export_kwh: [Some(0.5), Some(7.25), None],
    };
    let json: Value = serde_json::from_str(&status.to_json()).unwrap();
    for i in 0..ENTITY_COUNT {
        let e = Entity::nth(i).unwrap();
        let got = render(&e.value_template(), &json).unwrap();
        let want = expected(&e.object_id(), &json);
        assert_eq!(got, want, "{}", e.object_id());
    }
    assert_eq!(
        render(&Entity::TOTAL_ACTIVE_POWER.value_template(), &json).unwrap(),
        Some(996.0 - 120.5)
    );
    assert_eq!(Entity::nth(ENTITY_COUNT), None);
    assert_eq!(Entity::all().len(), ENTITY_COUNT);
    // Outside the subset: an error, never a silent pass.
    assert!(render("{{ value_json.voltage | first }}", &json).is_err());
    assert!(render("{{ states('sensor.x') }}", &json).is_err());
}
