//! Issue 5 item 4: MQTT against a real mosquitto broker on a free loopback port.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rumqttc::{Client as MqttClient, Event, MqttOptions, Packet, QoS};

use crate::peer_support::{Mosquitto, peer};
use crate::sim_support::*;

/// A subscriber to `powermeter/#` (and more with [`Watcher::subscribe`]) that collects
/// `(topic, payload, retain)`.
pub(crate) struct Watcher {
    client: MqttClient,
    pub(crate) rx: mpsc::Receiver<(String, Vec<u8>, bool)>,
}

impl Watcher {
    pub(crate) fn start(port: u16, id: &str) -> Watcher {
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, mut conn) = MqttClient::new(opts, 64);
        client.subscribe("powermeter/#", QoS::AtMostOnce).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx
                            .send((p.topic.clone(), p.payload.to_vec(), p.retain))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        Watcher { client, rx }
    }

    /// Subscribes to `filter` too, at QoS 0: the broker sends those messages in order, with no
    /// in-flight window (mosquitto holds QoS 1 deliveries beyond 20 unacknowledged ones back, so a
    /// later QoS 0 message could overtake them).
    pub(crate) fn subscribe(&self, filter: &str) {
        self.client.subscribe(filter, QoS::AtMostOnce).unwrap();
    }

    /// The next message on `topic` whose payload satisfies `pred`.
    pub(crate) fn wait(&self, topic: &str, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + SOON;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok((t, p, _)) if t == topic && pred(&p) => return p,
                Ok((t, p, _)) => seen.push(format!("{t}: {}", String::from_utf8_lossy(&p))),
                Err(_) => break,
            }
        }
        panic!("nothing on {topic}; seen {seen:?}");
    }

    pub(crate) fn json(&self, topic: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let p = self.wait(topic, |p| {
            serde_json::from_slice::<Value>(p).is_ok_and(|v| pred(&v))
        });
        serde_json::from_slice(&p).unwrap()
    }

    pub(crate) fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtMostOnce, false, payload.as_bytes().to_vec())
            .unwrap();
    }

    /// Removes the retained message of `topic` (an empty retained payload).
    pub(crate) fn clear_retained(&self, topic: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, true, Vec::new())
            .unwrap();
    }
}

#[test]
fn mqtt_status_commands_sampling_broadcast_and_last_will() {
    if !peer("mosquitto") {
        return;
    }
    let broker = Mosquitto::start();
    let w = Watcher::start(broker.port, "e2e-watcher");
    let server = format!("127.0.0.1:{}", broker.port);
    let sim = Sim::start(&[
        "--mqtt",
        &server,
        "--name",
        "mq1",
        "--status-interval",
        "1",
        "--reconnect-interval",
        "1",
    ]);

    assert_eq!(
        w.wait("powermeter/mq1/state/online", |p| p == b"online"),
        b"online"
    );
    let status = w.json("powermeter/mq1/state/sample", |v| v.get("power").is_some());
    assert_eq!(keys_in_order(&status.to_string()).len(), 5);
    for k in ["power", "energy", "current", "volt", "ts"] {
        assert!(status.get(k).is_some(), "status lacks {k}: {status}");
    }
    // volt is the mean of three phases; current the sum in amps (5 + 3 + 1).
    let volt = status["volt"].as_f64().unwrap();
    assert!(rel(volt, 230.0) < 0.005, "{status}");
    assert!(
        rel(status["current"].as_f64().unwrap(), 9.0) < 0.005,
        "{status}"
    );

    // A command on the meter's cmd topic: the reply JSON (no Info:) on state/info.
    w.publish("powermeter/mq1/cmd", r#"{"cmd":"getVoltage"}"#);
    let v = w.json("powermeter/mq1/state/info", |v| v["cmd"] == "getVoltage");
    assert_eq!(v["unit"], "V");
    // The broadcast topic reaches every meter.
    w.publish("powermeter/cmd", r#"{"cmd":"getCurrent"}"#);
    let v = w.json("powermeter/mq1/state/info", |v| v["cmd"] == "getCurrent");
    assert_eq!(v["unit"], "mA");
    // sample: one value triple.
    w.publish("powermeter/mq1/sample", "v");
    let v = w.json("powermeter/mq1/state/info", |v| v.get("value").is_some());
    assert_eq!(v["unit"], "V");
    let parts: Vec<f64> = v["value"]
        .as_str()
        .unwrap()
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|x| rel(*x, 230.0) < 0.005), "{v}");
    w.publish("powermeter/mq1/state", "");
    let v = w.json("powermeter/mq1/state/info", |v| {
        v.get("sampleState").is_some()
    });
    assert_eq!(v["sampleState"], "idle");

    // MQTT sampling: `on`, one JSON per sample on state/info, `off` after stop.
    let (mut c, _) = sim.connect();
    assert_ok(
        &c.cmd(json!({"cmd":"sample","payload":{"type":"MQTT","rate":5,"measures":"v,i_RMS"}})),
    );
    w.wait("powermeter/mq1/state/sample", |p| p == b"on");
    let s = w.json("powermeter/mq1/state/info", |v| v.get("values").is_some());
    assert_eq!(s["values"].as_array().unwrap().len(), 6, "{s}");
    assert!(s.get("unit").is_some() && s.get("ts").is_some(), "{s}");
    assert_ok(&c.cmd(json!({"cmd":"stop"})));
    w.wait("powermeter/mq1/state/sample", |p| p == b"off");

    // Restart in place: the new engine connects afresh and says `online` again.
    c.send_line(r#"{"cmd":"restart"}"#);
    assert_eq!(
        w.wait("powermeter/mq1/state/online", |p| p == b"online"),
        b"online"
    );
    let s = w.json("powermeter/mq1/state/sample", |v| v.get("power").is_some());
    assert!(s.get("volt").is_some());

    // kill -9: the broker publishes the last will.
    let _ = sim.crash();
    assert_eq!(
        w.wait("powermeter/mq1/state/online", |p| p == b"offline"),
        b"offline"
    );
}

/// Whether a fresh subscriber to `powermeter/#` gets a retained message on `topic`, and which.
/// Retained messages arrive right after the subscription, before a message the subscriber itself
/// publishes afterwards, so the sentinel marks "everything retained has been seen".
fn retained(port: u16, id: &str, topic: &str) -> Option<Vec<u8>> {
    let w = Watcher::start(port, id);
    let sentinel = format!("powermeter/{id}-sentinel");
    w.publish(&sentinel, "x");
    let deadline = Instant::now() + SOON;
    let mut found = None;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match w.rx.recv_timeout(left) {
            Ok((t, _, _)) if t == sentinel => return found,
            Ok((t, p, true)) if t == topic => found = Some(p),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("sentinel never came back");
}

/// docs/protocol.md §8: a meter stopped on purpose shows as offline, and a rename leaves no retained
/// topic of the old name behind (a clean disconnect sends no last will, so the simulator publishes
/// these itself and waits for the broker to have them before disconnecting).
#[test]
fn sigterm_publishes_offline_and_a_rename_clears_the_old_name() {
    if !peer("mosquitto") {
        return;
    }
    let broker = Mosquitto::start();
    let w = Watcher::start(broker.port, "e2e-watcher-6");
    let server = format!("127.0.0.1:{}", broker.port);
    let sim = Sim::start(&[
        "--mqtt",
        &server,
        "--name",
        "mq6",
        "--reconnect-interval",
        "1",
    ]);
    w.wait("powermeter/mq6/state/online", |p| p == b"online");
    assert_eq!(
        retained(broker.port, "fresh-a", "powermeter/mq6/state/online").as_deref(),
        Some(&b"online"[..])
    );
    // Rename: the new name comes online, the old one's retained message is gone.
    let (mut c, _) = sim.connect();
    assert_ok(&c.cmd(json!({"cmd":"mdns","payload":{"name":"mq7"}})));
    w.wait("powermeter/mq7/state/online", |p| p == b"online");
    assert_eq!(
        retained(broker.port, "fresh-b", "powermeter/mq6/state/online"),
        None
    );
    // No false error on the way (§4: errors in the log must be errors).
    let log = c.cmd(json!({"cmd":"getLog"}));
    let dump = c
        .seen_lines()
        .into_iter()
        .find(|l| l.contains("LOGFile"))
        .map(str::to_string)
        .unwrap_or_default();
    assert_ok(&log);
    assert!(!dump.contains("[E]"), "{dump}");
    // SIGTERM: clean exit, and a fresh subscriber reads `offline`.
    let (status, _) = sim.terminate();
    assert!(status.success());
    assert_eq!(
        retained(broker.port, "fresh-c", "powermeter/mq7/state/online").as_deref(),
        Some(&b"offline"[..])
    );
}

/// docs/protocol.md §10 over a real broker: `auth` unlocks nobody; each protected command carries its
/// token.
#[test]
fn mqtt_commands_carry_their_token() {
    if !peer("mosquitto") {
        return;
    }
    let broker = Mosquitto::start();
    let w = Watcher::start(broker.port, "e2e-watcher-1");
    let server = format!("127.0.0.1:{}", broker.port);
    let _sim = Sim::start(&["--mqtt", &server, "--name", "mq1t", "--token", "s3cret"]);
    w.wait("powermeter/mq1t/state/online", |p| p == b"online");
    let info = "powermeter/mq1t/state/info";
    w.publish("powermeter/mq1t/cmd", r#"{"cmd":"auth","token":"s3cret"}"#);
    let v = w.json(info, |v| v["cmd"] == "auth");
    assert_eq!(
        v["msg"],
        "Authentication over MQTT: put \"token\" in each command"
    );
    // Another publisher's command without the token is refused.
    let other = Watcher::start(broker.port, "e2e-other");
    other.publish(
        "powermeter/mq1t/cmd",
        r#"{"cmd":"addWifi","payload":{"ssid":"evil","pwd":"x"}}"#,
    );
    let v = w.json(info, |v| v["cmd"] == "addWifi");
    assert_eq!(v["msg"], "Authentication required");
    other.publish(
        "powermeter/mq1t/cmd",
        r#"{"cmd":"addWifi","payload":{"ssid":"lab","pwd":"x"},"token":"s3cret"}"#,
    );
    let v = w.json(info, |v| v["cmd"] == "addWifi");
    assert_eq!(v["error"], false, "{v}");
    assert_eq!(v["ssid"], "lab");
}
