//! docs/protocol.md §12 served by the engine: the per-phase `state/status` every status interval,
//! Home Assistant discovery configs (retained) on every MQTT connect, `unique_id`s that survive
//! restarts, renames and resets, the `homeAssistant` command (exact replies, persisted, protected by
//! the access token) and the empty retained payloads that remove the configs.

mod device_support;
mod ha_support;

use std::collections::{BTreeMap, HashMap};

use device_support::*;
use ha_support::{check_config, expected, render};
use serde_json::Value;
use smartmeter::device::{Action, DeviceOptions, Restored, SlotId};
use smartmeter::wire::discovery::ENTITY_COUNT;
use smartmeter::wire::mqtt::Status;

/// A publication: topic, payload, retained.
type Pub = (String, Vec<u8>, bool);

fn publishes(ev: &[Action]) -> Vec<Pub> {
    ev.iter()
        .filter_map(|e| match e {
            Action::Publish {
                topic,
                payload,
                retain,
            } => Some((topic.clone(), payload.clone(), *retain)),
            _ => None,
        })
        .collect()
}

/// The discovery messages among `p` (topics under `prefix/`).
fn discovery<'a>(p: &'a [Pub], prefix: &str) -> Vec<&'a Pub> {
    let under = format!("{prefix}/");
    p.iter().filter(|(t, _, _)| t.starts_with(&under)).collect()
}

/// Applies every Persist event to a slot map, like a binding's store.
fn persist_all(events: &[Action], slots: &mut HashMap<SlotId, Vec<u8>>) {
    for e in events {
        if let Action::Persist(r) = e {
            slots.insert(r.slot(), r.bytes().to_vec());
        }
    }
}

fn restored(slots: &HashMap<SlotId, Vec<u8>>) -> Restored {
    let mut r = Restored::default();
    for (k, v) in slots {
        r.insert(*k, v.clone());
    }
    r
}

/// A meter with a broker configured (not yet connected) and its events so far.
fn configured(opts: DeviceOptions, restored: Restored) -> Bench {
    let mut b = Bench::with(opts, restored);
    let c = b.tcp(1);
    let r = b.cmd(
        c,
        r#"{"cmd":"mqttServer","payload":{"server":"broker.lan"}}"#,
    );
    assert!(r.contains(r#""error":false"#), "{r}");
    b.dev.handle_closed(c, b.now);
    b.drain_events();
    b
}

/// Connects the broker and runs 1 s (every paced discovery message goes out); returns the
/// publications.
fn connect(b: &mut Bench) -> Vec<Pub> {
    b.dev.handle_mqtt_connected(b.now, true);
    b.idle(1_000);
    let ev = b.drain_events();
    publishes(&ev)
}

/// The configs among `p` under `prefix`, checked against Home Assistant's rules, by topic.
fn configs(p: &[Pub], prefix: &str) -> BTreeMap<String, ha_support::Config> {
    let mut out = BTreeMap::new();
    for (topic, payload, retain) in discovery(p, prefix) {
        assert!(retain, "{topic} not retained");
        let c = check_config(prefix, topic, payload).unwrap_or_else(|e| panic!("{e}"));
        assert!(out.insert(topic.clone(), c).is_none(), "{topic} twice");
    }
    out
}

fn ids(c: &BTreeMap<String, ha_support::Config>) -> Vec<(String, String)> {
    c.iter()
        .map(|(t, c)| (t.clone(), c.unique_id.clone()))
        .collect()
}

#[test]
fn configs_on_connect_and_on_every_reconnect_paced() {
    let mut b = configured(DeviceOptions::default(), Restored::default());
    // Paced: the connect sends `online` and the first config at once, the rest one per 20 ms
    // (engine time), so a binding's bounded publish queue never overflows.
    b.dev.handle_mqtt_connected(b.now, true);
    let first = publishes(&b.drain_events());
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first[0].0, "powermeter/smartmeterX/state/online");
    assert_eq!(discovery(&first, "homeassistant").len(), 1);
    b.idle(19);
    assert!(discovery(&publishes(&b.drain_events()), "homeassistant").is_empty());
    b.idle(1);
    let second = publishes(&b.drain_events());
    assert_eq!(discovery(&second, "homeassistant").len(), 1, "{second:?}");
    b.idle(1_000);
    let mut p = first;
    p.extend(second);
    p.extend(publishes(&b.drain_events()));
    let c = configs(&p, "homeassistant");
    assert_eq!(c.len(), ENTITY_COUNT);
    assert!(c.len() >= 26);
    for cfg in c.values() {
        assert_eq!(cfg.state_topic, "powermeter/smartmeterX/state/status");
        assert_eq!(
            cfg.availability_topic,
            "powermeter/smartmeterX/state/online"
        );
        assert_eq!(cfg.json["device"]["name"], "smartmeterX");
        assert_eq!(cfg.json["device"]["sw_version"], "2.2");
    }
    // Nothing more until the next connect.
    b.idle(10_000);
    assert!(discovery(&publishes(&b.drain_events()), "homeassistant").is_empty());
    // A reconnect publishes them all again, the same.
    b.dev.handle_mqtt_connected(b.now, false);
    let again = connect(&mut b);
    let c2 = configs(&again, "homeassistant");
    assert_eq!(ids(&c), ids(&c2));
    for (t, cfg) in &c {
        assert_eq!(cfg.json, c2[t].json);
    }
    // A broker lost half-way through: the next connect starts over and completes.
    b.dev.handle_mqtt_connected(b.now, false);
    b.dev.handle_mqtt_connected(b.now, true);
    b.idle(100);
    let part = discovery(&publishes(&b.drain_events()), "homeassistant").len();
    assert!(0 < part && part < ENTITY_COUNT, "{part}");
    b.dev.handle_mqtt_connected(b.now, false);
    b.idle(1_000);
    assert!(publishes(&b.drain_events()).is_empty());
    assert_eq!(
        configs(&connect(&mut b), "homeassistant").len(),
        ENTITY_COUNT
    );
}

#[test]
fn unique_ids_survive_restarts_renames_and_resets() {
    let mut slots = HashMap::new();
    let mut b = configured(DeviceOptions::default(), Restored::default());
    let p = connect(&mut b);
    let first = configs(&p, "homeassistant");
    persist_all(&b.events, &mut slots);
    let node = first
        .keys()
        .next()
        .unwrap()
        .split('/')
        .nth(2)
        .unwrap()
        .to_string();
    assert!(node.starts_with("smartmeter_"), "{node}");

    // Restart from the store, an hour later: the same topics and ids.
    let mut b = Bench::with(DeviceOptions::default(), restored(&slots));
    b.now = b.now + core::time::Duration::from_secs(3600);
    b.drain_events();
    let again = configs(&connect(&mut b), "homeassistant");
    assert_eq!(ids(&first), ids(&again));

    // Rename: the same topics and ids, the new state and availability topics and device name.
    let c = b.tcp(2);
    b.cmd(c, r#"{"cmd":"mdns","payload":{"name":"garage"}}"#);
    let renamed = configs(&connect(&mut b), "homeassistant");
    assert_eq!(ids(&first), ids(&renamed));
    for cfg in renamed.values() {
        assert_eq!(cfg.state_topic, "powermeter/garage/state/status");
        assert_eq!(cfg.availability_topic, "powermeter/garage/state/online");
        assert_eq!(cfg.json["device"]["name"], "garage");
    }
    // factoryReset keeps the identity (it names the hardware, it is no setting).
    b.cmd(c, r#"{"cmd":"factoryReset"}"#);
    b.idle(2_100);
    persist_all(&b.drain_events(), &mut slots);
    persist_all(&b.events, &mut slots);
    let mut b = configured(DeviceOptions::default(), restored(&slots));
    assert_eq!(b.dev.config().name, "smartmeterX");
    let reset = configs(&connect(&mut b), "homeassistant");
    assert_eq!(ids(&first), ids(&reset));

    // Another meter (connecting at another instant) gets other ids.
    let mut other = configured(DeviceOptions::default(), Restored::default());
    other.now = other.now + core::time::Duration::from_micros(1);
    let o = configs(&connect(&mut other), "homeassistant");
    assert_eq!(o.len(), ENTITY_COUNT);
    assert!(o.keys().all(|t| !first.contains_key(t)));

    // The binding's hardware identity wins and makes the node id.
    let opts = DeviceOptions {
        device_id: Some("A0:B7:65:01:02:03".into()),
        ..DeviceOptions::default()
    };
    let mut hw = configured(opts, Restored::default());
    let h = configs(&connect(&mut hw), "homeassistant");
    assert!(
        h.keys()
            .all(|t| t.starts_with("homeassistant/sensor/smartmeter_a0b765010203/")),
        "{:?}",
        h.keys()
    );
    assert!(
        h.values()
            .any(|c| c.unique_id == "smartmeter_a0b765010203_voltage_l1")
    );
}

#[test]
fn disabling_empties_every_config_topic_and_the_setting_persists() {
    let mut b = configured(DeviceOptions::default(), Restored::default());
    let on = configs(&connect(&mut b), "homeassistant");
    let c = b.tcp(2);
    assert_eq!(
        b.cmd(c, r#"{"cmd":"homeAssistant"}"#),
        "Info:{\"error\":false,\"cmd\":\"homeAssistant\",\"msg\":\"Home Assistant discovery on (homeassistant)\"}\r\n"
    );
    assert_eq!(
        b.cmd(c, r#"{"cmd":"homeAssistant","enable":false}"#),
        "Info:{\"error\":false,\"cmd\":\"homeAssistant\",\"msg\":\"Home Assistant discovery off (homeassistant)\"}\r\n"
    );
    b.idle(1_000);
    let ev = b.drain_events();
    let off = publishes(&ev);
    let removed = discovery(&off, "homeassistant");
    assert_eq!(removed.len(), ENTITY_COUNT);
    for (t, payload, retain) in &removed {
        assert!(payload.is_empty() && *retain, "{t}");
    }
    let mut topics: Vec<&String> = removed.iter().map(|(t, _, _)| t).collect();
    topics.sort();
    assert_eq!(topics, on.keys().collect::<Vec<_>>());
    // Persisted; a reconnect publishes no config.
    let mut slots = HashMap::new();
    persist_all(&b.events, &mut slots);
    persist_all(&ev, &mut slots);
    b.dev.handle_mqtt_connected(b.now, false);
    assert!(discovery(&connect(&mut b), "homeassistant").is_empty());
    // ... nor after a restart.
    let mut r = configured(DeviceOptions::default(), restored(&slots));
    assert!(!r.dev.config().ha_discovery);
    let p = connect(&mut r);
    assert!(discovery(&p, "homeassistant").is_empty(), "{p:?}");
    // The per-phase status goes on without discovery.
    r.idle(5_000);
    assert!(
        publishes(&r.drain_events())
            .iter()
            .any(|(t, _, _)| t == "powermeter/smartmeterX/state/status")
    );
    // An explicit disable while off removes them again (a clean-up); on again: configs again.
    let c = r.tcp(2);
    r.cmd(c, r#"{"cmd":"homeAssistant","enable":false}"#);
    r.idle(1_000);
    let again = publishes(&r.drain_events());
    assert_eq!(discovery(&again, "homeassistant").len(), ENTITY_COUNT);
    r.take(c); // the liveness lines of the second that passed
    assert_eq!(
        r.cmd(c, r#"{"cmd":"homeAssistant","enable":true}"#),
        "Info:{\"error\":false,\"cmd\":\"homeAssistant\",\"msg\":\"Home Assistant discovery on (homeassistant)\"}\r\n"
    );
    r.idle(1_000);
    assert_eq!(
        configs(&publishes(&r.drain_events()), "homeassistant").len(),
        ENTITY_COUNT
    );
    // factoryReset restores the default: on.
    r.cmd(c, r#"{"cmd":"homeAssistant","enable":false}"#);
    r.cmd(c, r#"{"cmd":"factoryReset"}"#);
    assert!(r.dev.config().ha_discovery);
}

#[test]
fn a_new_prefix_moves_the_configs_and_removals_wait_for_the_broker() {
    let mut b = configured(DeviceOptions::default(), Restored::default());
    let old = configs(&connect(&mut b), "homeassistant");
    let c = b.tcp(2);
    assert_eq!(
        b.cmd(c, r#"{"cmd":"homeAssistant","prefix":"ha/test"}"#),
        "Info:{\"error\":false,\"cmd\":\"homeAssistant\",\"msg\":\"Home Assistant discovery on (ha/test)\"}\r\n"
    );
    b.idle(2_000);
    let p = publishes(&b.drain_events());
    let removed = discovery(&p, "homeassistant");
    assert_eq!(removed.len(), ENTITY_COUNT);
    assert!(removed.iter().all(|(_, x, r)| x.is_empty() && *r));
    let new = configs(&p, "ha/test");
    assert_eq!(new.len(), ENTITY_COUNT);
    // The removals go first; the ids stay.
    let last_removal = p
        .iter()
        .rposition(|(t, _, _)| t.starts_with("homeassistant/"))
        .unwrap();
    let first_config = p
        .iter()
        .position(|(t, _, _)| t.starts_with("ha/test/"))
        .unwrap();
    assert!(last_removal < first_config);
    let strip = |m: &BTreeMap<String, ha_support::Config>| {
        m.values().map(|c| c.unique_id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(strip(&old), strip(&new));

    // Switched off while the broker is away: nothing is lost, the removals go out on the connect.
    b.dev.handle_mqtt_connected(b.now, false);
    b.take(c);
    assert_eq!(
        b.cmd(
            c,
            r#"{"cmd":"homeAssistant","enable":false,"prefix":"other"}"#
        ),
        "Info:{\"error\":false,\"cmd\":\"homeAssistant\",\"msg\":\"Home Assistant discovery off (other)\"}\r\n"
    );
    b.idle(1_000);
    assert!(publishes(&b.drain_events()).is_empty());
    let p = connect(&mut b);
    let removed = discovery(&p, "ha/test");
    assert_eq!(removed.len(), ENTITY_COUNT);
    assert!(removed.iter().all(|(_, x, r)| x.is_empty() && *r));
    assert!(discovery(&p, "other").is_empty());
    assert!(discovery(&p, "homeassistant").is_empty());
    // A prefix Home Assistant cannot subscribe to is refused by the wire.
    let r = b.cmd(c, r#"{"cmd":"homeAssistant","prefix":"a/+/b"}"#);
    assert!(
        r.contains(r#""error":true"#) && r.contains("Invalid prefix"),
        "{r}"
    );
    assert_eq!(b.dev.config().ha_prefix, "other");
}

/// docs/protocol.md §12.2: a reset removes nothing (the configs stay under the prefix they were
/// published with, and the reset meter uses the default prefix); `enable:false` before the reset is
/// the way to remove them.
#[test]
fn resets_remove_nothing_and_disabling_first_does() {
    let mut b = configured(DeviceOptions::default(), Restored::default());
    connect(&mut b);
    let c = b.tcp(2);
    b.cmd(c, r#"{"cmd":"homeAssistant","prefix":"ha/custom"}"#);
    b.idle(2_000);
    let p = publishes(&b.drain_events());
    assert_eq!(configs(&p, "ha/custom").len(), ENTITY_COUNT);
    let r = b.cmd(c, r#"{"cmd":"factoryReset"}"#);
    assert!(r.contains("factoryReset"), "{r}");
    b.idle(2_100);
    let p = publishes(&b.drain_events());
    assert!(discovery(&p, "ha/custom").is_empty(), "{p:?}");
    assert_eq!(b.dev.config().ha_prefix, "homeassistant");

    // Disabled first: the removals go out before the reset.
    let mut b = configured(DeviceOptions::default(), Restored::default());
    connect(&mut b);
    let c = b.tcp(2);
    b.cmd(c, r#"{"cmd":"homeAssistant","prefix":"ha/custom"}"#);
    b.idle(2_000);
    b.drain_events();
    b.cmd(c, r#"{"cmd":"homeAssistant","enable":false}"#);
    b.idle(1_000);
    let p = publishes(&b.drain_events());
    let removed = discovery(&p, "ha/custom");
    assert_eq!(removed.len(), ENTITY_COUNT);
    assert!(removed.iter().all(|(_, x, r)| x.is_empty() && *r));
}

#[test]
fn home_assistant_is_a_protected_command() {
    let opts = DeviceOptions {
        token: Some("s3cret".into()),
        ..DeviceOptions::default()
    };
    let mut b = Bench::with(opts, Restored::default());
    let c = b.tcp(1);
    let required =
        "Info:{\"error\":true,\"cmd\":\"homeAssistant\",\"msg\":\"Authentication required\"}\r\n";
    assert_eq!(
        b.cmd(c, r#"{"cmd":"homeAssistant","enable":false}"#),
        required
    );
    assert_eq!(b.cmd(c, r#"{"cmd":"homeAssistant"}"#), required);
    assert!(b.dev.config().ha_discovery);
    b.cmd(c, r#"{"cmd":"auth","token":"s3cret"}"#);
    b.cmd(
        c,
        r#"{"cmd":"mqttServer","payload":{"server":"broker.lan"}}"#,
    );
    b.dev.handle_mqtt_connected(b.now, true);
    b.idle(1_000);
    b.drain_events();
    // Over MQTT: the token in the command's own JSON.
    // The replies on state/info, and every publication (the command's and 1 s after it).
    let mqtt = |b: &mut Bench, line: &str| -> (Vec<String>, Vec<Pub>) {
        b.dev
            .handle_mqtt(b.now, "powermeter/smartmeterX/cmd", line.as_bytes());
        b.idle(1_000);
        let p = publishes(&b.drain_events());
        let replies = p
            .iter()
            .filter(|(t, _, _)| t.ends_with("/state/info"))
            .map(|(_, x, _)| String::from_utf8(x.clone()).unwrap())
            .collect();
        (replies, p)
    };
    let (replies, p) = mqtt(&mut b, r#"{"cmd":"homeAssistant","enable":false}"#);
    assert_eq!(
        replies,
        [r#"{"error":true,"cmd":"homeAssistant","msg":"Authentication required"}"#]
    );
    assert!(b.dev.config().ha_discovery);
    assert!(discovery(&p, "homeassistant").is_empty());
    let (replies, p) = mqtt(
        &mut b,
        r#"{"cmd":"homeAssistant","enable":false,"token":"s3cret"}"#,
    );
    assert_eq!(
        replies,
        [
            r#"{"error":false,"cmd":"homeAssistant","msg":"Home Assistant discovery off (homeassistant)"}"#
        ]
    );
    assert!(!b.dev.config().ha_discovery);
    assert_eq!(discovery(&p, "homeassistant").len(), ENTITY_COUNT);
    // The authenticated connection may.
    assert!(
        b.cmd(c, r#"{"cmd":"homeAssistant","enable":true}"#)
            .contains("discovery on (homeassistant)")
    );
}

/// The status payloads among `p`, in order, with the index of their publication.
fn statuses(p: &[Pub]) -> Vec<(usize, Value)> {
    p.iter()
        .enumerate()
        .filter(|(_, (t, _, _))| t == "powermeter/smartmeterX/state/status")
        .map(|(i, (_, x, retain))| {
            assert!(!retain);
            (i, serde_json::from_slice(x).unwrap())
        })
        .collect()
}

#[test]
fn state_status_every_interval_with_the_measurements_and_templates_render_it() {
    let mut b = configured(DeviceOptions::default(), Restored::default());
    // No window yet: measurements null, energies 0, ts the wall clock.
    let p = connect(&mut b);
    let cfgs = configs(&p, "homeassistant");
    b.idle(4_000);
    let p = publishes(&b.drain_events());
    let s = statuses(&p);
    assert_eq!(s.len(), 1, "{p:?}");
    let v = &s[0].1;
    assert_eq!(v["voltage"], serde_json::json!([null, null, null]));
    assert_eq!(v["frequency"], Value::Null);
    assert_eq!(v["energyImport"], serde_json::json!([0.0, 0.0, 0.0]));
    assert_eq!(v["ts"].as_f64(), Some((T0_S + 5) as f64));

    // 10 s of signal: two statuses, each right after the classic state/sample.
    b.run(10_000);
    let p = publishes(&b.drain_events());
    let s = statuses(&p);
    assert_eq!(s.len(), 2, "{p:?}");
    for (i, _) in &s {
        assert_eq!(p[i - 1].0, "powermeter/smartmeterX/state/sample");
    }
    let (_, v) = &s[1];
    let text = String::from_utf8(
        p.iter()
            .rfind(|(t, _, _)| t.ends_with("/state/status"))
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    let status = Status::parse(text.as_bytes()).unwrap();
    // The canonical payload (keys in §12 order).
    assert_eq!(status.to_json(), text);
    assert_eq!(status.ts_s, Some((T0_S + 15) as f64));
    let near = |x: Option<f32>, want: f32, tol: f32| x.is_some_and(|x| (x - want).abs() <= tol);
    for ph in 0..3 {
        assert!(near(status.voltage_v[ph], 230.0, 0.5), "{text}");
        assert!(near(status.current_a[ph], 5.0, 0.02), "{text}");
        assert!(near(status.active_power_w[ph], 996.0, 5.0), "{text}");
        assert!(near(status.reactive_power_var[ph], 575.0, 5.0), "{text}");
        assert!(near(status.apparent_power_va[ph], 1150.0, 5.0), "{text}");
        assert!(near(status.power_factor[ph], 0.866, 0.005), "{text}");
        let imp = status.energy_import_kwh[ph].unwrap();
        // ~996 W for 10 s: 2.77 Wh
        assert!((imp - 996.0 * 10.0 / 3_600_000.0).abs() < 2e-4, "{text}");
        assert_eq!(status.energy_export_kwh[ph], Some(0.0));
    }
    assert!(near(status.frequency_hz, 50.0, 0.01), "{text}");
    // Every config's template renders its entity's value from this payload.
    for (topic, cfg) in &cfgs {
        let object = topic.split('/').nth(3).unwrap();
        let got = render(&cfg.value_template, v).unwrap_or_else(|e| panic!("{topic}: {e}"));
        assert_eq!(got, expected(object, v), "{topic}");
        assert!(got.is_some(), "{topic}");
    }

    // While sampling the classic status pauses (§8), the per-phase one goes on (§12).
    let c = b.tcp(3);
    b.cmd(c, r#"{"cmd":"sample","payload":{"type":"TCP","rate":100}}"#);
    b.run(5_000);
    b.take(c);
    let p = publishes(&b.drain_events());
    assert_eq!(statuses(&p).len(), 1);
    assert!(
        !p.iter()
            .any(|(t, x, _)| t.ends_with("/state/sample") && x.starts_with(b"{"))
    );
    // No broker: nothing.
    b.dev.handle_mqtt_connected(b.now, false);
    b.run(5_000);
    b.take(c);
    assert!(publishes(&b.drain_events()).is_empty());
}

/// Discovery messages are never dropped: while the event queue is full they wait (status and
/// samples, which the next one replaces, are the ones dropped).
#[test]
fn a_full_event_queue_delays_discovery_and_loses_none() {
    let opts = DeviceOptions {
        max_events: 3,
        ..DeviceOptions::default()
    };
    let mut b = configured(opts, Restored::default());
    b.dev.handle_mqtt_connected(b.now, true);
    let mut p = Vec::new();
    // A binding that drains the engine only every 10 s.
    for _ in 0..12 {
        b.idle(10_000);
        p.extend(publishes(&b.drain_events()));
    }
    assert_eq!(configs(&p, "homeassistant").len(), ENTITY_COUNT);
}

/// A stored prefix Home Assistant could not subscribe to (a damaged or foreign store) reads as the
/// default: the configs never go to an invalid topic.
#[test]
fn a_stored_invalid_prefix_reads_as_the_default() {
    use smartmeter::device::{Record, RecordKind};
    let settings = br#"{"ha_prefix":"a/+/b","mqtt_server":"broker.lan","time_server":"-"}"#;
    let rec = Record::new(RecordKind::Settings, 0, settings.to_vec()).unwrap();
    let restored = Restored::default().with(rec.slot(), rec.bytes().to_vec());
    let mut b = Bench::with(DeviceOptions::default(), restored);
    let p = connect(&mut b);
    assert_eq!(configs(&p, "homeassistant").len(), ENTITY_COUNT);
    assert!(p.iter().all(|(t, _, _)| !t.starts_with("a/")));
    let c = b.tcp(2);
    assert!(
        b.cmd(c, r#"{"cmd":"homeAssistant"}"#)
            .contains("discovery on (homeassistant)")
    );
}
