//! Power quality in the engine (docs/protocol.md §11) on a manual clock: events from a dip in the
//! sample source (getEvents, the `[W]` line, `state/event`), getPQ before and after the first
//! complete interval, a 60 Hz grid, events across a restart, clearEvents behind the token, paging.

mod device_support;

use device_support::*;
use serde_json::Value;
use smartmeter::calibration::FrontEnd;
use smartmeter::device::{Action, ConnId, DeviceOptions, RecordKind, Restored};
use smartmeter::wire::mqtt::{self, Qos};

/// The reply of `cmd` to `line` (log lines the connection gets meanwhile are skipped).
fn reply(b: &mut Bench, c: ConnId, line: &str) -> Value {
    let name: Value = serde_json::from_str(line).unwrap();
    let name = name["cmd"].as_str().unwrap().to_string();
    let out = b.cmd(c, line);
    let l = out
        .split("\r\n")
        .find(|l| l.starts_with("Info:{") && l.contains(&format!("\"cmd\":\"{name}\"")))
        .unwrap_or_else(|| panic!("no {name} reply in {out:?}"));
    serde_json::from_str(l.trim_start_matches("Info:")).unwrap()
}

/// Sets the RMS voltage of the phases `phases` (1-based) to `v` volts from the next sample on.
fn set_voltage(b: &mut Bench, phases: &[usize], v: f64) {
    let mut cfg = b.src.grid.config().clone();
    for p in phases {
        cfg.phases[p - 1].voltage_rms_v = v;
    }
    b.src.grid.set_config(cfg);
}

/// A dip of the phases to `residual_v` for `ms`, then 400 ms of the normal voltage.
fn dip(b: &mut Bench, phases: &[usize], residual_v: f64, ms: u64) {
    set_voltage(b, phases, residual_v);
    b.run(ms);
    set_voltage(b, phases, 230.0);
    b.run(400);
}

fn event_publishes(ev: &[Action]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match e {
            Action::Publish { topic, payload, .. } if topic.ends_with("/state/event") => {
                assert_eq!(mqtt::publish_qos(topic, false), Qos::AtLeastOnce);
                Some(String::from_utf8(payload.clone()).unwrap())
            }
            _ => None,
        })
        .collect()
}

fn events_records(ev: &[Action]) -> usize {
    ev.iter()
        .filter(|e| matches!(e, Action::Persist(r) if r.kind() == RecordKind::Events))
        .count()
}

const FRONT_END: FrontEnd = FrontEnd {
    volts_per_code: 400.0 / 8_388_608.0,
    amps_per_code: 10.0 / 8_388_608.0,
};

#[test]
fn a_dip_gives_one_event_a_warning_line_and_a_state_event_publish() {
    for codes in [true, false] {
        let mut b = Bench::new();
        if codes {
            b.codes = Some(FRONT_END);
        }
        let c = b.tcp(1);
        b.dev.handle_mqtt_connected(b.now, true);
        b.run(4000);
        b.take(c);
        b.drain_events();
        let at = b.now;
        dip(&mut b, &[1], 138.0, 100);
        let out = b.take_text(c);
        let publishes = event_publishes(&b.drain_events());

        let r = reply(&mut b, c, r#"{"cmd":"getEvents"}"#);
        assert_eq!(r["error"], false);
        let events = r["events"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{r}");
        let e = &events[0];
        assert_eq!(
            (e["id"].as_u64(), e["type"].as_str()),
            (Some(1), Some("dip"))
        );
        assert_eq!(e["phases"], serde_json::json!([1]));
        let start = e["start"].as_f64().unwrap() - at.as_secs_f64();
        let duration = e["duration"].as_f64().unwrap();
        let extreme = e["extreme"].as_f64().unwrap();
        // within one cycle (20 ms) of the injected start and duration
        assert!(start.abs() < 0.02, "start {start} s after the dip began");
        assert!((duration - 0.1).abs() < 0.02, "duration {duration}");
        assert!((extreme - 138.0).abs() < 1.0, "extreme {extreme}");
        assert_eq!(e["reference"].as_f64(), Some(230.0));
        assert_eq!(r["next"].as_u64(), Some(1));

        // the warning line, live and in the logbook
        let line = out
            .split("\r\n")
            .find(|l| l.starts_with("Info:[W]") && l.contains("Dip L1 to 1"))
            .unwrap_or_else(|| panic!("no [W] dip line in {out:?}"));
        assert!(line.contains(" V (60.") && line.ends_with(" ms"), "{line}");
        assert!(b.log_rows().iter().any(|r| r.contains("Dip L1 to 1")));

        // exactly one publication, the getEvents object itself
        assert_eq!(publishes.len(), 1, "{publishes:?}");
        let published: Value = serde_json::from_str(&publishes[0]).unwrap();
        assert_eq!(&published, e);
    }
}

#[test]
fn get_pq_waits_for_the_first_complete_interval() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.run(2000);
    let r = reply(&mut b, c, r#"{"cmd":"getPQ"}"#);
    assert_eq!(r["error"], true);
    assert_eq!(r["msg"], "No complete 3s interval yet");
    b.run(4000);
    let r = reply(&mut b, c, r#"{"cmd":"getPQ"}"#);
    assert_eq!(r["error"], false, "{r}");
    assert_eq!(r["interval"], "3s");
    assert_eq!(
        r["nominal"],
        serde_json::json!({"voltage":230.0,"frequency":50.0})
    );
    let v = r["voltage"][0].as_f64().unwrap();
    assert!((v - 230.0).abs() < 0.1, "{v}");
    let span = r["end"].as_f64().unwrap() - r["start"].as_f64().unwrap();
    assert!((span - 3.0).abs() < 0.01, "150 cycles: {span} s");
    assert_eq!(r["flagged"], false);
    assert_eq!(r["harmonicsV"][0].as_array().unwrap().len(), 50);
    let r = reply(&mut b, c, r#"{"cmd":"getPQ","interval":"200ms"}"#);
    assert_eq!(r["interval"], "200ms");
    let r = reply(&mut b, c, r#"{"cmd":"getPQ","interval":"10min"}"#);
    assert_eq!(r["msg"], "No complete 10min interval yet");
}

#[test]
fn a_60_hz_grid_gets_12_cycle_classic_windows_and_nominal_60() {
    for codes in [false, true] {
        let mut b = Bench::new();
        if codes {
            b.codes = Some(FRONT_END);
        }
        let mut cfg = b.src.grid.config().clone();
        cfg.frequency_hz = 60.0;
        for p in &mut cfg.phases {
            p.voltage_rms_v = 120.0;
        }
        b.src.grid.set_config(cfg);
        let c = b.tcp(1);
        b.run(3000);
        let m = b.dev.measurements(b.now).expect("a reading").clone();
        assert_eq!(m.cycles, 12);
        assert!((m.frequency_hz[0] - 60.0).abs() < 0.01, "{m:?}");
        assert!((m.voltage_v[0] - 120.0).abs() < 0.1, "{m:?}");
        let r = reply(&mut b, c, r#"{"cmd":"getPQ","interval":"200ms"}"#);
        assert_eq!(
            r["nominal"],
            serde_json::json!({"voltage":120.0,"frequency":60.0})
        );
        let span = r["end"].as_f64().unwrap() - r["start"].as_f64().unwrap();
        assert!((span - 0.2).abs() < 0.001, "12 cycles: {span} s");
        let r = reply(&mut b, c, r#"{"cmd":"setNominal"}"#);
        assert_eq!(r["msg"], "Nominal set to auto (120 V), auto (60 Hz)");
    }
}

#[test]
fn set_nominal_is_persisted_and_rebuilds_the_pipeline() {
    let mut b = Bench::new();
    let mut cfg = b.src.grid.config().clone();
    cfg.frequency_hz = 60.0;
    b.src.grid.set_config(cfg);
    let c = b.tcp(1);
    b.run(500);
    b.drain_events();
    let r = reply(
        &mut b,
        c,
        r#"{"cmd":"setNominal","voltage":240,"frequency":60}"#,
    );
    assert_eq!(r["msg"], "Nominal set to 240 V, 60 Hz");
    let stored = b
        .drain_events()
        .into_iter()
        .find_map(|e| match e {
            Action::Persist(r) if r.kind() == RecordKind::Settings => Some(r),
            _ => None,
        })
        .expect("settings written");
    let text = String::from_utf8_lossy(stored.payload()).into_owned();
    assert!(text.contains("\"nominal_voltage_v\":240.0"), "{text}");
    // the windows follow the declared 60 Hz without waiting for a detection
    b.run(1000);
    assert_eq!(b.dev.measurements(b.now).expect("a reading").cycles, 12);
    let r = reply(&mut b, c, r#"{"cmd":"getPQ","interval":"200ms"}"#);
    assert_eq!(
        r["nominal"],
        serde_json::json!({"voltage":240.0,"frequency":60.0})
    );
    // a restart keeps the declared values
    let restored = Restored::default().with(stored.slot(), stored.bytes().to_vec());
    let mut b2 = Bench::with(DeviceOptions::default(), restored);
    let c2 = b2.tcp(1);
    let r = reply(&mut b2, c2, r#"{"cmd":"setNominal"}"#);
    assert_eq!(r["msg"], "Nominal set to 240 V, 60 Hz");
    let r = reply(
        &mut b2,
        c2,
        r#"{"cmd":"setNominal","voltage":0,"frequency":0}"#,
    );
    assert_eq!(r["msg"], "Nominal set to auto, auto");
}

#[test]
fn events_survive_a_restart_and_their_writes_are_batched() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.run(4000);
    let mut writes = events_records(&b.drain_events());
    assert_eq!(writes, 0);
    for _ in 0..3 {
        dip(&mut b, &[2, 3], 150.0, 60);
    }
    writes += events_records(&b.drain_events());
    assert_eq!(writes, 1, "three events within a minute: one write");
    let before = reply(&mut b, c, r#"{"cmd":"getEvents"}"#);
    assert_eq!(before["events"].as_array().unwrap().len(), 3, "{before}");
    assert_eq!(before["events"][0]["phases"], serde_json::json!([2, 3]));

    b.dev.handle_shutdown(b.now);
    b.drain_events();
    let mut restored = Restored::default();
    for e in &b.events {
        if let Action::Persist(r) = e {
            restored.insert(r.slot(), r.bytes().to_vec());
        }
    }
    let mut b2 = Bench::with(DeviceOptions::default(), restored);
    let c2 = b2.tcp(1);
    let after = reply(&mut b2, c2, r#"{"cmd":"getEvents"}"#);
    assert_eq!(after, before);
    // ids go on after the stored ones
    b2.run(4000);
    dip(&mut b2, &[1], 100.0, 60);
    let r = reply(&mut b2, c2, r#"{"cmd":"getEvents","since":3}"#);
    assert_eq!(r["events"][0]["id"].as_u64(), Some(4), "{r}");
}

#[test]
fn clear_events_needs_the_token_and_reading_does_not() {
    let opts = DeviceOptions {
        token: Some("s3cret".into()),
        ..DeviceOptions::default()
    };
    let mut b = Bench::with(opts, Restored::default());
    let c = b.tcp(1);
    b.run(4000);
    dip(&mut b, &[1], 100.0, 60);
    let r = reply(&mut b, c, r#"{"cmd":"getEvents"}"#);
    assert_eq!(r["events"].as_array().unwrap().len(), 1, "{r}");
    let r = reply(&mut b, c, r#"{"cmd":"getPQ","interval":"200ms"}"#);
    assert_eq!(r["error"], false, "{r}");
    for line in [
        r#"{"cmd":"clearEvents"}"#,
        r#"{"cmd":"setNominal","voltage":230}"#,
    ] {
        let r = reply(&mut b, c, line);
        assert_eq!(r["msg"], "Authentication required", "{line}");
    }
    reply(&mut b, c, r#"{"cmd":"auth","token":"s3cret"}"#);
    let r = reply(&mut b, c, r#"{"cmd":"clearEvents"}"#);
    assert_eq!(r["msg"], "Events cleared");
    let r = reply(&mut b, c, r#"{"cmd":"getEvents","since":1}"#);
    assert_eq!(r["events"], serde_json::json!([]));
    assert_eq!(r["next"].as_u64(), Some(1));
}

#[test]
fn get_events_pages_with_since_and_next() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.run(4000);
    for _ in 0..18 {
        dip(&mut b, &[1], 150.0, 40);
    }
    b.idle(0);
    let r = reply(&mut b, c, r#"{"cmd":"getEvents"}"#);
    let ids: Vec<u64> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (1..=16).collect::<Vec<_>>());
    assert_eq!(r["next"].as_u64(), Some(16));
    let r = reply(&mut b, c, r#"{"cmd":"getEvents","since":16}"#);
    let ids: Vec<u64> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!((ids, r["next"].as_u64()), (vec![17, 18], Some(18)));
    let r = reply(&mut b, c, r#"{"cmd":"getEvents","since":18}"#);
    assert_eq!(
        (r["events"].clone(), r["next"].as_u64()),
        (serde_json::json!([]), Some(18))
    );
}

#[test]
fn each_ten_minute_aggregate_is_published_on_state_pq() {
    let mut b = Bench::new();
    b.codes = Some(FRONT_END);
    b.dev.handle_mqtt_connected(b.now, true);
    let mut published = Vec::new();
    // T0 is 10:39:35: the first complete 10-min interval is 10:40:00–10:50:00
    for _ in 0..63 {
        b.run(10_000);
        for e in b.drain_events() {
            if let Action::Publish { topic, payload, .. } = e
                && topic == "powermeter/smartmeterX/state/pq"
            {
                assert_eq!(mqtt::publish_qos(&topic, false), Qos::AtMostOnce);
                published.push(String::from_utf8(payload).unwrap());
            }
        }
    }
    assert_eq!(published.len(), 1, "{published:?}");
    let agg: Value = serde_json::from_str(&published[0]).unwrap();
    assert!(agg.get("error").is_none() && agg.get("cmd").is_none());
    assert_eq!(agg["interval"], "10min");
    let tick = (T0_S / 600 + 1) * 600;
    assert!(
        (agg["start"].as_f64().unwrap() - tick as f64).abs() < 0.02,
        "{agg}"
    );
    assert!(
        (agg["end"].as_f64().unwrap() - (tick + 600) as f64).abs() < 0.02,
        "{agg}"
    );
    let pst = agg["pst"][0].as_f64().expect("a Pst for a steady grid");
    assert!(pst < 0.1, "{pst}");
    assert_eq!(agg["plt"], Value::Null);
    // the same object answers getPQ 10min
    let c = b.tcp(1);
    let mut r = reply(&mut b, c, r#"{"cmd":"getPQ","interval":"10min"}"#);
    let o = r.as_object_mut().unwrap();
    o.remove("error");
    o.remove("cmd");
    assert_eq!(r, agg);
}
