//! MQTT mapping (docs/protocol.md §8) and periodic duties: status every 5 s, one-shot samples, command
//! bridge, last will / online, stream-server reconnects, daily restart.

mod device_support;

use core::time::Duration;
use device_support::*;
use smartmeter::device::{Action, ConnKind, RestartReason};

/// The §8 publications: Home Assistant discovery (`homeassistant/…`) and the per-phase
/// `state/status` (§12) are left out here; tests/device_homeassistant.rs covers them.
fn publishes(ev: &[Action]) -> Vec<(String, String, bool)> {
    ev.iter()
        .filter_map(|e| match e {
            Action::Publish { topic, .. }
                if topic.starts_with("homeassistant/") || topic.ends_with("/state/status") =>
            {
                None
            }
            Action::Publish {
                topic,
                payload,
                retain,
            } => Some((
                topic.clone(),
                String::from_utf8_lossy(payload).into_owned(),
                *retain,
            )),
            _ => None,
        })
        .collect()
}

fn with_broker() -> Bench {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.cmd(c, r#"{"cmd":"mqttServer","payload":{"server":"broker.lan","user":"u","pwd":"p","port":1884}}"#);
    let ev = b.drain_events();
    let cfg = ev
        .iter()
        .find_map(|e| match e {
            Action::MqttConfigure(Some(s)) => Some(s.clone()),
            _ => None,
        })
        .expect("configure");
    assert_eq!((cfg.host.as_str(), cfg.port), ("broker.lan", 1884));
    assert_eq!(cfg.user.as_deref(), Some("u"));
    assert_eq!(cfg.password.as_deref(), Some("p"));
    assert_eq!(
        cfg.subscriptions,
        ["powermeter/+", "powermeter/smartmeterX/+"]
    );
    assert_eq!(cfg.will_topic, "powermeter/smartmeterX/state/online");
    assert_eq!(cfg.will_payload, b"offline");
    b.dev.handle_mqtt_connected(b.now, true);
    let p = publishes(&b.drain_events());
    assert_eq!(
        p,
        [(
            "powermeter/smartmeterX/state/online".into(),
            "online".into(),
            true
        )]
    );
    b
}

#[test]
fn status_every_five_seconds_while_idle() {
    let mut b = with_broker();
    b.run(10_000);
    let p = publishes(&b.drain_events());
    let status: Vec<_> = p
        .iter()
        .filter(|(t, _, _)| t == "powermeter/smartmeterX/state/sample")
        .collect();
    assert_eq!(status.len(), 2);
    let v: serde_json::Value = serde_json::from_str(&status[1].1).unwrap();
    assert!(
        (v["power"].as_f64().unwrap() - 3.0 * 996.0).abs() < 10.0,
        "{v}"
    );
    assert!((v["current"].as_f64().unwrap() - 15.0).abs() < 0.1, "{v}");
    assert!((v["volt"].as_f64().unwrap() - 230.0).abs() < 0.5, "{v}");
    assert!(v["energy"].as_f64().unwrap() > 0.0);
    assert_eq!(v["ts"], "1614681585");
    let keys: Vec<&str> = status[1].1.split('"').skip(1).step_by(2).take(5).collect();
    assert_eq!(keys, ["power", "energy", "current", "volt", "ts"]);
}

/// The numbers of a JSON array `"key":[a,b,c]` in `reply`, as printed.
fn array_texts(reply: &str, key: &str) -> Vec<String> {
    let start = reply.find(&format!("\"{key}\":[")).expect(key) + key.len() + 4;
    let len = reply[start..].find(']').expect("]");
    reply[start..start + len]
        .split(',')
        .map(str::to_string)
        .collect()
}

/// A one-shot reading over MQTT (`powermeter/<name>/sample`) prints the very texts the TCP reply
/// prints for the same window: the f32's shortest form (`228.43`), never the f64 it was widened
/// to (`228.42999267578125`), docs/protocol.md §2.
#[test]
fn one_shot_readings_print_as_the_tcp_replies_do() {
    let mut b = with_broker();
    b.run(500);
    let c = b.tcp(2);
    b.drain_events();
    let power = b.cmd(c, r#"{"cmd":"getPower"}"#);
    let cases = [
        (
            "v",
            array_texts(&b.cmd(c, r#"{"cmd":"getVoltage"}"#), "voltage"),
        ),
        (
            "i",
            array_texts(&b.cmd(c, r#"{"cmd":"getCurrent"}"#), "current"),
        ),
        ("p", array_texts(&power, "activePower")),
        ("q", array_texts(&power, "reactivePower")),
        ("s", array_texts(&power, "apparentPower")),
    ];
    // Not vacuous: the widened f64 of some reading prints differently from its f32.
    assert!(
        cases.iter().flat_map(|(_, t)| t).any(|t| {
            let x: f32 = t.parse().unwrap();
            serde_json::to_string(&f64::from(x)).unwrap() != *t
        }),
        "{cases:?}"
    );
    for (q, tcp) in cases {
        b.dev
            .handle_mqtt(b.now, "powermeter/smartmeterX/sample", q.as_bytes());
        let p = publishes(&b.drain_events());
        assert_eq!(p.len(), 1, "{p:?}");
        let v: serde_json::Value = serde_json::from_str(&p[0].1).unwrap();
        assert_eq!(v["value"], tcp.join(","), "{q}: {}", p[0].1);
    }
}

#[test]
fn one_shot_samples_state_and_command_bridge() {
    let mut b = with_broker();
    b.run(500);
    b.drain_events();
    b.dev
        .handle_mqtt(b.now, "powermeter/smartmeterX/sample", b"v");
    b.dev.handle_mqtt(b.now, "powermeter/sample", b"");
    b.dev
        .handle_mqtt(b.now, "powermeter/smartmeterX/state", b"");
    b.dev.handle_mqtt(
        b.now,
        "powermeter/smartmeterX/cmd",
        br#"{"cmd":"log","level":"warning"}"#,
    );
    b.dev
        .handle_mqtt(b.now, "powermeter/cmd", br#"{"cmd":"frobnicate"}"#);
    b.dev
        .handle_mqtt(b.now, "powermeter/other/cmd", br#"{"cmd":"info"}"#);
    let p = publishes(&b.drain_events());
    assert!(
        p.iter()
            .all(|(t, _, r)| t == "powermeter/smartmeterX/state/info" && !r),
        "{p:?}"
    );
    assert_eq!(p.len(), 5, "{p:?}");
    let v: serde_json::Value = serde_json::from_str(&p[0].1).unwrap();
    assert_eq!(v["unit"], "V");
    let vals: Vec<f64> = v["value"]
        .as_str()
        .unwrap()
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(vals.iter().all(|x| (x - 230.0).abs() < 0.5), "{vals:?}");
    assert_eq!(v["ts"], "03/02/2021 10:39:35.500");
    let w: serde_json::Value = serde_json::from_str(&p[1].1).unwrap();
    assert_eq!(w["unit"], "W");
    assert_eq!(
        p[2].1,
        r#"{"sampleState":"idle","ts":"03/02/2021 10:39:35.500"}"#
    );
    assert_eq!(
        p[3].1,
        r#"{"error":false,"cmd":"log","msg":"Log Level set to: warning"}"#
    );
    assert_eq!(
        p[4].1,
        r#"{"error":true,"cmd":"frobnicate","msg":"unknown command"}"#
    );
}

#[test]
fn sampling_announces_on_and_off_and_pauses_status() {
    let mut b = with_broker();
    let c = b.tcp(2);
    b.cmd(c, r#"{"cmd":"sample","payload":{"type":"TCP","rate":100}}"#);
    b.run(6000);
    b.take(c);
    b.cmd(c, r#"{"cmd":"stop"}"#);
    let p = publishes(&b.drain_events());
    let sample_topic: Vec<&str> = p
        .iter()
        .filter(|(t, _, _)| t.ends_with("state/sample"))
        .map(|(_, x, _)| x.as_str())
        .collect();
    assert_eq!(sample_topic, ["on", "off"]);
}

#[test]
fn stream_server_connects_and_retries_every_30_s() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.drain_events();
    b.cmd(
        c,
        r#"{"cmd":"streamServer","payload":{"server":"sink.lan"}}"#,
    );
    let want = Action::Connect {
        host: "sink.lan".into(),
        port: 54322,
    };
    assert_eq!(b.drain_events().iter().filter(|e| **e == want).count(), 1);
    b.run(29_000);
    b.take(c);
    assert!(!b.drain_events().contains(&want));
    b.run(1_000);
    b.take(c);
    assert!(b.drain_events().contains(&want), "retry after 30 s");
    // connected: treated like a command connection, no more retries
    let s = b
        .dev
        .handle_connected(b.now, ConnKind::StreamServer { peer: peer(54322) });
    assert!(b.take_text(s).starts_with("Info:{\"cmd\":\"info\""));
    assert_eq!(
        b.cmd(s, r#"{"cmd":"log","level":"error"}"#),
        "Info:{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: error\"}\r\n"
    );
    b.run(61_000);
    b.take(c);
    assert!(!b.drain_events().contains(&want));
    // lost: retried again
    b.dev.handle_closed(s, b.now);
    assert!(b.drain_events().contains(&want));
}

#[test]
fn daily_restart_at_the_configured_minute() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    // 10:39:35 now; restart at 10:41
    b.cmd(c, r#"{"cmd":"dailyRestart","hour":10,"minute":41}"#);
    b.block_ms = 100;
    b.run(60_000);
    b.take(c);
    assert!(
        !b.drain_events()
            .iter()
            .any(|e| matches!(e, Action::Restart(_)))
    );
    b.run(30_000);
    b.take(c);
    let ev = b.drain_events();
    assert!(
        ev.contains(&Action::Restart(RestartReason::Daily)),
        "{ev:?}"
    );
    assert!(
        ev.iter().any(|e| matches!(e, Action::Persist(_))),
        "energy saved first"
    );
    let _ = Duration::ZERO;
}

#[test]
fn access_token_over_mqtt() {
    let opts = smartmeter::device::DeviceOptions {
        token: Some("s3cret".into()),
        ..Default::default()
    };
    let mut b = Bench::with(opts, Default::default());
    let c = b.tcp(1);
    b.cmd(c, r#"{"cmd":"auth","token":"s3cret"}"#);
    b.cmd(
        c,
        r#"{"cmd":"mqttServer","payload":{"server":"broker.lan"}}"#,
    );
    b.dev.handle_mqtt_connected(b.now, true);
    b.drain_events();
    let cmd = |b: &mut Bench, line: &str| {
        b.dev
            .handle_mqtt(b.now, "powermeter/smartmeterX/cmd", line.as_bytes());
        publishes(&b.drain_events())
            .into_iter()
            .map(|(_, p, _)| p)
            .collect::<Vec<_>>()
    };
    let required = r#"{"error":true,"cmd":"dailyRestart","msg":"Authentication required"}"#;
    let restart = r#"{"cmd":"dailyRestart","hour":3,"minute":0}"#;
    let restart_with =
        |t: &str| format!(r#"{{"cmd":"dailyRestart","hour":3,"minute":0,"token":"{t}"}}"#);
    assert_eq!(cmd(&mut b, restart), [required]);
    // reading stays open
    assert!(cmd(&mut b, r#"{"cmd":"getVoltage"}"#)[0].contains(r#""error":false"#));
    // MQTT has no sessions (§10): `auth` is refused, the token goes into each command
    assert_eq!(
        cmd(&mut b, r#"{"cmd":"auth","token":"s3cret"}"#),
        [
            r#"{"error":true,"cmd":"auth","msg":"Authentication over MQTT: put \"token\" in each command"}"#
        ]
    );
    assert_eq!(cmd(&mut b, restart), [required]);
    assert_eq!(
        cmd(&mut b, &restart_with("guess")),
        [r#"{"error":true,"cmd":"dailyRestart","msg":"Invalid token"}"#]
    );
    b.idle(100);
    assert!(cmd(&mut b, &restart_with("s3cret"))[0].contains(r#""error":false"#));
    // a broker reconnect changes nothing
    b.dev.handle_mqtt_connected(b.now, false);
    b.dev.handle_mqtt_connected(b.now, true);
    b.drain_events();
    assert_eq!(cmd(&mut b, restart), [required]);
    assert!(cmd(&mut b, &restart_with("s3cret"))[0].contains(r#""error":false"#));
    // a new token (serial only) ends every other authentication, and the old token is wrong
    let s = b.dev.handle_connected(b.now, ConnKind::Serial);
    b.take(s);
    b.cmd(s, r#"{"cmd":"setToken","token":"n3w"}"#);
    assert_eq!(
        cmd(&mut b, &restart_with("s3cret")),
        [r#"{"error":true,"cmd":"dailyRestart","msg":"Invalid token"}"#]
    );
    let r = b.cmd(c, r#"{"cmd":"mdns","payload":{"name":"x"}}"#);
    assert!(r.contains("Authentication required"), "{r}");
    let r = b.cmd(s, r#"{"cmd":"mdns","payload":{"name":"x"}}"#);
    assert!(r.contains(r#""error":false"#), "{r}");
}

#[test]
fn offline_is_published_before_a_clean_shutdown_or_restart() {
    let online = |p: &str| {
        (
            "powermeter/smartmeterX/state/online".to_string(),
            p.to_string(),
            true,
        )
    };
    let mut b = with_broker();
    b.dev.handle_shutdown(b.now);
    let ev = b.drain_events();
    assert!(publishes(&ev).contains(&online("offline")), "{ev:?}");
    for cmd in ["restart", "factoryReset", "basicReset"] {
        let mut b = with_broker();
        let c = b.tcp(2);
        b.cmd(c, &format!(r#"{{"cmd":"{cmd}"}}"#));
        let mut ev = b.drain_events();
        b.idle(2_100); // the restart waits for every output to drain (at most 2 s)
        ev.extend(b.drain_events());
        let offline = ev
            .iter()
            .position(|e| matches!(e, Action::Publish { payload, retain: true, .. } if payload == b"offline"))
            .unwrap_or_else(|| panic!("{cmd}: no offline in {ev:?}"));
        let restart = ev
            .iter()
            .position(|e| matches!(e, Action::Restart(_)))
            .expect("restart");
        assert!(offline < restart, "{cmd}: {ev:?}");
        assert_eq!(publishes(&ev[offline..=offline]), [online("offline")]);
    }
}

#[test]
fn a_rename_clears_the_old_names_retained_topics() {
    let mut b = with_broker();
    let c = b.tcp(2);
    b.cmd(c, r#"{"cmd":"mdns","payload":{"name":"m2"}}"#);
    let ev = b.drain_events();
    let clear = ev
        .iter()
        .position(|e| matches!(e, Action::Publish { topic, .. } if topic == "powermeter/smartmeterX/state/online"))
        .unwrap_or_else(|| panic!("old topic not cleared: {ev:?}"));
    assert_eq!(
        publishes(&ev[clear..=clear]),
        [(
            "powermeter/smartmeterX/state/online".into(),
            String::new(),
            true
        )]
    );
    // Cleared over the old session, before the client is reconfigured for the new name.
    let configure = ev
        .iter()
        .position(|e| matches!(e, Action::MqttConfigure(Some(s)) if s.client_id == "m2"))
        .expect("reconfigure");
    assert!(clear < configure, "{ev:?}");
    b.dev.handle_mqtt_connected(b.now, true);
    assert_eq!(
        publishes(&b.drain_events()),
        [("powermeter/m2/state/online".into(), "online".into(), true)]
    );
    // Renamed while the broker is away: the old name is cleared on the next connection.
    b.dev.handle_mqtt_connected(b.now, false);
    b.cmd(c, r#"{"cmd":"mdns","payload":{"name":"m3"}}"#);
    assert!(publishes(&b.drain_events()).is_empty());
    b.dev.handle_mqtt_connected(b.now, true);
    let p = publishes(&b.drain_events());
    assert!(
        p.contains(&("powermeter/m2/state/online".into(), String::new(), true)),
        "{p:?}"
    );
    assert!(
        p.contains(&("powermeter/m3/state/online".into(), "online".into(), true)),
        "{p:?}"
    );
}

#[test]
fn a_port_key_shows_in_the_reply_and_info_and_is_the_one_connected_to() {
    for (payload, shown, port) in [
        (
            r#"{"server":"broker.lan","port":1884}"#,
            "broker.lan:1884",
            1884,
        ),
        // The `port` key wins over the address's port (and is what `info` then says).
        (
            r#"{"server":"broker.lan:1885","port":1886}"#,
            "broker.lan:1886",
            1886,
        ),
        (r#"{"server":"broker.lan:1885"}"#, "broker.lan:1885", 1885),
        (
            r#"{"server":"[fd00::1]","port":1887}"#,
            "[fd00::1]:1887",
            1887,
        ),
    ] {
        let mut b = Bench::new();
        let c = b.tcp(1);
        let reply = b.cmd(c, &format!(r#"{{"cmd":"mqttServer","payload":{payload}}}"#));
        assert!(
            reply.contains(&format!(r#""mqtt_server":"{shown}""#)),
            "{payload}: {reply}"
        );
        let cfg = b
            .drain_events()
            .iter()
            .find_map(|e| match e {
                Action::MqttConfigure(Some(s)) => Some(s.clone()),
                _ => None,
            })
            .expect("configure");
        assert_eq!(cfg.port, port, "{payload}");
        let info = b.cmd(c, r#"{"cmd":"info"}"#);
        assert!(
            info.contains(&format!(r#""mqtt_server":"{shown}""#)),
            "{payload}: {info}"
        );
    }
}
