//! docs/protocol.md §12 end to end: the simulator's engine against a real mosquitto, read as Home
//! Assistant reads it — the retained discovery configs under `homeassistant/#` (checked against
//! Home Assistant's rules for each device class and unit, tests/ha_support) and their
//! `value_template`s rendered against a real `state/status` payload; the configs come back after a
//! restart and a broker restart with the same ids, follow a rename, and go away when disabled.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::ha_support::{self, check_config, expected, render};
use crate::mqtt::Watcher;
use crate::peer_support::{Mosquitto, peer};
use crate::sim_support::*;

/// Entities per meter (docs/protocol.md §12).
const ENTITIES: usize = 26;

/// The retained messages under `homeassistant/#` a fresh subscriber gets, by topic (empty payloads,
/// which remove a config, are not retained by the broker and so never show up). Retained messages
/// arrive right after the subscription, before the subscriber's own later publish, so that
/// sentinel marks "everything retained has been seen".
fn retained_configs(port: u16, id: &str) -> BTreeMap<String, Vec<u8>> {
    let w = Watcher::start(port, id);
    w.subscribe("homeassistant/#");
    // The broker serves a connection's packets in order: the sentinel published after the
    // subscription comes back after the retained messages the subscription delivers.
    let sentinel = format!("homeassistant/{id}-sentinel");
    w.publish(&sentinel, "x");
    let deadline = Instant::now() + SOON;
    let mut found = BTreeMap::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match w.rx.recv_timeout(left) {
            Ok((t, _, _)) if t == sentinel => return found,
            Ok((t, p, true)) if t.starts_with("homeassistant/") => {
                found.insert(t, p);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("sentinel never came back");
}

/// Waits until a fresh subscriber sees exactly `n` retained configs; returns them, checked against
/// Home Assistant's rules, by topic.
fn wait_configs(port: u16, tag: &str, n: usize) -> BTreeMap<String, ha_support::Config> {
    let mut round = 0;
    let raw = eventually(&format!("{n} retained configs ({tag})"), || {
        round += 1;
        let r = retained_configs(port, &format!("{tag}-{round}"));
        (r.len() == n).then_some(r)
    });
    raw.iter()
        .map(|(t, p)| {
            let c = check_config("homeassistant", t, p).unwrap_or_else(|e| panic!("{e}"));
            (t.clone(), c)
        })
        .collect()
}

fn ids(c: &BTreeMap<String, ha_support::Config>) -> Vec<(String, String)> {
    c.iter()
        .map(|(t, c)| (t.clone(), c.unique_id.clone()))
        .collect()
}

#[test]
fn home_assistant_discovery_through_mosquitto() {
    if !peer("mosquitto") {
        return;
    }
    let mut broker = Mosquitto::start();
    let w = Watcher::start(broker.port, "ha-watcher");
    let args = [
        "--mqtt",
        &broker.addr(),
        "--name",
        "ha1",
        "--status-interval",
        "1",
        "--reconnect-interval",
        "1",
    ];
    let sim = Sim::start(&args);
    w.wait("powermeter/ha1/state/online", |p| p == b"online");

    // ≥ 26 retained configs, each valid for Home Assistant, one device, unique ids.
    let configs = wait_configs(broker.port, "ha-a", ENTITIES);
    let node = configs.keys().next().unwrap().split('/').nth(2).unwrap();
    assert!(node.starts_with("smartmeter_"), "{node}");
    let unique: BTreeSet<&str> = configs.values().map(|c| c.unique_id.as_str()).collect();
    assert_eq!(unique.len(), ENTITIES);
    for c in configs.values() {
        assert_eq!(c.state_topic, "powermeter/ha1/state/status");
        assert_eq!(c.availability_topic, "powermeter/ha1/state/online");
        assert_eq!(c.json["device"]["identifiers"][0], node);
        assert_eq!(c.json["device"]["name"], "ha1");
    }
    assert_eq!(
        configs
            .values()
            .filter(|c| c.device_class == "energy"
                && c.json["state_class"] == "total_increasing"
                && c.json["unit_of_measurement"] == "kWh")
            .count(),
        6
    );

    // Every template renders against a real status payload to the simulator's values (230 V;
    // 5, 3 and 1 A; 50 Hz).
    let status = w.json("powermeter/ha1/state/status", |v| {
        v["voltage"][0].is_number() && v["frequency"].is_number()
    });
    for (topic, c) in &configs {
        let object = topic.split('/').nth(3).unwrap();
        let got = render(&c.value_template, &status).unwrap_or_else(|e| panic!("{topic}: {e}"));
        assert_eq!(got, expected(object, &status), "{topic}: {status}");
        assert!(got.is_some(), "{topic}: {status}");
    }
    let value = |object: &str| {
        let c = &configs[&format!("homeassistant/sensor/{node}/{object}/config")];
        render(&c.value_template, &status).unwrap().unwrap()
    };
    for (ph, amps) in [(1, 5.0), (2, 3.0), (3, 1.0)] {
        assert!(
            rel(value(&format!("voltage_l{ph}")), 230.0) < 0.005,
            "{status}"
        );
        assert!(
            rel(value(&format!("current_l{ph}")), amps) < 0.005,
            "{status}"
        );
    }
    assert!(rel(value("frequency"), 50.0) < 0.001, "{status}");
    let total: f64 = (1..=3)
        .map(|ph| value(&format!("active_power_l{ph}")))
        .sum();
    assert!(rel(value("active_power_total"), total) < 1e-9, "{status}");

    // A restart republishes them (cleared first, so what a fresh subscriber reads is new), with
    // the same topics and ids.
    for t in configs.keys() {
        w.clear_retained(t);
    }
    wait_configs(broker.port, "ha-b", 0);
    let (st, state) = sim.terminate();
    assert!(st.success());
    let sim = Sim::start_in(state, &args);
    let again = wait_configs(broker.port, "ha-c", ENTITIES);
    assert_eq!(ids(&configs), ids(&again));

    // The broker restarts (it keeps nothing): the meter reconnects and publishes them again.
    broker.restart();
    let after_broker = wait_configs(broker.port, "ha-d", ENTITIES);
    assert_eq!(ids(&configs), ids(&after_broker));

    // A rename: the same topics and ids, the new state topic.
    let (mut c, _) = sim.connect();
    assert_ok(&c.cmd(json!({"cmd":"mdns","payload":{"name":"ha2"}})));
    let renamed = eventually("configs of the new name", || {
        let r = wait_configs(broker.port, "ha-e", ENTITIES);
        r.values()
            .all(|c| c.state_topic == "powermeter/ha2/state/status")
            .then_some(r)
    });
    assert_eq!(ids(&configs), ids(&renamed));

    // Disabled: the exact reply, and no config is left.
    let r = c.cmd(json!({"cmd":"homeAssistant","enable":false}));
    assert_eq!(
        r["msg"], "Home Assistant discovery off (homeassistant)",
        "{r}"
    );
    wait_configs(broker.port, "ha-f", 0);
    // ... and none comes back after a restart (persisted; `--name` names it ha1 again).
    drop(c);
    let (st, state) = sim.terminate();
    assert!(st.success());
    let w2 = Watcher::start(broker.port, "ha-watcher-2");
    let sim = Sim::start_in(state, &args);
    w2.wait("powermeter/ha1/state/online", |p| p == b"online");
    w2.wait("powermeter/ha1/state/status", |p| !p.is_empty());
    assert!(retained_configs(broker.port, "ha-g").is_empty());
    let (mut c, _) = sim.connect();
    let r = c.cmd(json!({"cmd":"homeAssistant"}));
    assert_eq!(
        r["msg"], "Home Assistant discovery off (homeassistant)",
        "{r}"
    );
}
