//! The persistent log (getLog) holds real errors only (docs/protocol.md §4, §5, §8): normal disconnects,
//! intentional MQTT reconfigures and slow readers write nothing there; ring overflow and real
//! broker failures still do.

mod device_support;

use device_support::*;
use smartmeter::device::{Action, ConnKind};

fn errors(b: &mut Bench) -> Vec<String> {
    b.log_rows()
        .into_iter()
        .filter(|r| r.starts_with("[E]"))
        .collect()
}

#[test]
fn a_raw_reader_that_goes_away_is_no_error() {
    let mut b = Bench::new();
    for port in 9..12 {
        let raw = b
            .dev
            .handle_connected(b.now, ConnKind::RawStream { peer: peer(port) });
        for _ in 0..25 {
            b.run(10);
            b.take(raw);
        }
        // The reader closes its socket mid-stream (samples still buffered in the session).
        b.dev.handle_closed(raw, b.now);
        assert!(!b.dev.is_busy());
    }
    assert_eq!(errors(&mut b), Vec::<String>::new());
}

#[test]
fn a_reader_that_never_reads_sees_gaps_and_fills_no_log() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    let watcher = b.tcp(2);
    b.cmd(
        c,
        r#"{"cmd":"sample","payload":{"type":"TCP","rate":8000}}"#,
    );
    for _ in 0..500 {
        b.run(10); // 5 s of 8 kHz six-channel data, never read by `c`
    }
    let mut all = b.take(c);
    all.extend(b.cmd_bytes(c, r#"{"cmd":"stop"}"#));
    let (lines, frames) = split_stream(&all);
    // The reader sees its losses as gaps in the packet numbers (§3) ...
    let last = frames.last().unwrap().0 as usize;
    assert!(last + 1 > frames.len(), "gaps expected");
    assert!(!lines.iter().any(|l| l.contains("MISSED")), "{lines:?}");
    // ... and neither the other clients nor the persistent log get an error line per second.
    let seen = b.take_text(watcher);
    assert!(!seen.contains("[E]"), "{seen}");
    assert_eq!(errors(&mut b), Vec::<String>::new());
}

#[test]
fn ring_overflow_is_still_missed_samples() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    // Flow control without credit: the session's ring overflows (§5).
    b.cmd(
        c,
        r#"{"cmd":"sample","payload":{"type":"TCP","rate":8000,"flowCtr":true}}"#,
    );
    for _ in 0..300 {
        b.run(10);
    }
    b.cmd(c, r#"{"cmd":"stop"}"#);
    let e = errors(&mut b);
    assert!(
        e.iter()
            .any(|r| r.contains(": MISSED ") && r.contains(" SAMPLES")),
        "{e:?}"
    );
}

fn with_broker(b: &mut Bench) {
    let c = b.tcp(1);
    b.cmd(
        c,
        r#"{"cmd":"mqttServer","payload":{"server":"broker.lan"}}"#,
    );
    b.dev.handle_closed(c, b.now);
    b.dev.handle_mqtt_connected(b.now, true);
    b.drain_events();
}

#[test]
fn renaming_with_mqtt_is_no_connection_failure() {
    let mut b = Bench::new();
    with_broker(&mut b);
    let c = b.tcp(1);
    for (k, name) in ["m1", "m2", "m3"].into_iter().enumerate() {
        b.cmd(
            c,
            &format!(r#"{{"cmd":"mdns","payload":{{"name":"{name}"}}}}"#),
        );
        assert!(
            b.drain_events()
                .iter()
                .any(|e| matches!(e, Action::MqttConfigure(Some(s)) if s.client_id == name))
        );
        // A binding may report the end of the session it was asked to replace (the ESP32 one
        // does), or not (the simulator): either way no error.
        if k % 2 == 0 {
            b.dev.handle_mqtt_connected(b.now, false);
        }
        b.idle(500);
        b.dev.handle_mqtt_connected(b.now, true);
        b.drain_events();
    }
    assert_eq!(errors(&mut b), Vec::<String>::new());
    // A real failure to connect still is one, and a flood of them collapses into one row.
    b.cmd(c, r#"{"cmd":"mqttServer","payload":{"server":"gone.lan"}}"#);
    b.dev.handle_mqtt_connected(b.now, false); // the old session, as asked
    for _ in 0..5 {
        b.idle(30_000);
        b.dev.handle_mqtt_connected(b.now, false); // each retry fails
    }
    let e = errors(&mut b);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].ends_with(": Cannot connect to MQTT Server gone.lan (x5)"),
        "{e:?}"
    );
    // So is losing an established connection.
    b.dev.handle_mqtt_connected(b.now, true);
    b.dev.handle_mqtt_connected(b.now, false);
    let e = errors(&mut b);
    assert!(e[0].ends_with(" gone.lan (x6)"), "{e:?}");
}
