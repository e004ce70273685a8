//! Issue 5 item 4: MQTT against a real mosquitto broker on a free loopback port.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rumqttc::{Client as MqttClient, Event, MqttOptions, Packet, QoS};

use crate::common::*;

struct Watcher {
    client: MqttClient,
    rx: mpsc::Receiver<(String, Vec<u8>, bool)>,
}

impl Watcher {
    fn start(port: u16, id: &str) -> Watcher {
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

    /// The next message on `topic` whose payload satisfies `pred`.
    fn wait(&self, topic: &str, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
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

    fn json(&self, topic: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let p = self.wait(topic, |p| {
            serde_json::from_slice::<Value>(p).is_ok_and(|v| pred(&v))
        });
        serde_json::from_slice(&p).unwrap()
    }

    fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtMostOnce, false, payload.as_bytes().to_vec())
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
