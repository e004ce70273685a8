//! Issue 5 item 1: the TCP command channel, byte for byte as docs/protocol.md §1–§4 prints it.

use crate::sim_support::*;

const INFO_KEYS: [&str; 22] = [
    "cmd",
    "type",
    "version",
    "compiled",
    "sys_time",
    "name",
    "ip",
    "mqtt_server",
    "stream_server",
    "time_server",
    "sampling_rate",
    "buffer_size",
    "psram",
    "rtc",
    "state",
    "energy",
    "dailyReset",
    "calibration",
    "ssids",
    "ssid",
    "rssi",
    "bssid",
];

#[test]
fn info_is_sent_on_connect_with_the_documented_keys_in_order() {
    let sim = Sim::start_pristine(&[]);
    let mut c = Client::connect(sim.addr);
    // The very first item on a fresh connection is the info reply.
    let first = c.next_item().expect("nothing on connect");
    let Item::Line(line) = first else {
        panic!("first item is a frame")
    };
    assert!(
        line.starts_with(r#"{"cmd":"info","type":"smartmeter","#),
        "{line}"
    );
    assert_eq!(keys_in_order(&line), INFO_KEYS);
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["name"], "smartmeterX");
    assert_eq!(v["state"], "idle");
    assert_eq!(v["ssids"], "[energywifi]");
    assert_eq!(v["time_server"], "time.google.com");
    assert_eq!(v["mqtt_server"], "-");
    assert_eq!(v["stream_server"], "-");
    assert_eq!(v["dailyReset"], "None");
    assert_eq!(triple(&v, "energy").len(), 3);
    assert_eq!(v["calibration"], json!([1.0, 1.0, 1.0, 1.0, 1.0, 1.0]));
    // Asking again gives the same shape.
    let (raw, _) = c.cmd_raw(json!({"cmd":"info"}));
    assert_eq!(keys_in_order(&raw), INFO_KEYS);
}

#[test]
fn lines_are_info_prefixed_and_crlf_terminated() {
    let sim = Sim::start(&[]);
    let mut s = std::net::TcpStream::connect(sim.addr).unwrap();
    s.set_read_timeout(Some(SOON)).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"?\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(17).any(|w| w == b"Info:Setup done\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    for line in got.split_inclusive(|b| *b == b'\n') {
        assert!(
            line.starts_with(b"Info:"),
            "{:?}",
            String::from_utf8_lossy(line)
        );
        assert!(
            line.ends_with(b"\r\n"),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn get_commands_reply_with_their_keys_in_order() {
    let sim = Sim::start(&[]);
    let (mut c, _) = sim.connect();
    for (cmd, keys, unit) in [
        (
            "getPower",
            &[
                "error",
                "cmd",
                "activePower",
                "reactivePower",
                "apparentPower",
                "unit",
            ][..],
            "W/var/VA",
        ),
        ("getVoltage", &["error", "cmd", "voltage", "unit"][..], "V"),
        ("getCurrent", &["error", "cmd", "current", "unit"][..], "mA"),
        (
            "getEnergy",
            &["error", "cmd", "energy", "unit", "startTs", "start", "days"][..],
            "Wh",
        ),
        ("getPeriod", &["error", "cmd", "period", "unit"][..], "Hz"),
        (
            "getPhaseAngle",
            &["error", "cmd", "phase", "unit"][..],
            "Deg",
        ),
    ] {
        // Measurements need one complete DSP window: retry until it is there.
        let (raw, v) = eventually(cmd, || {
            let (raw, v) = c.cmd_raw(json!({ "cmd": cmd }));
            (v["error"] == false).then_some((raw, v))
        });
        assert_eq!(keys_in_order(&raw), keys, "{raw}");
        assert_eq!(v["unit"], unit, "{raw}");
    }
}

#[test]
fn configuration_commands_answer_with_the_exact_texts() {
    let sim = Sim::start(&[]);
    let (mut c, _) = sim.connect();

    let v = c.cmd(json!({"cmd":"log","level":"warning"}));
    assert_eq!(v["msg"], "Log Level set to: warning");
    assert_err(
        &c.cmd(json!({"cmd":"log","level":"loud"})),
        "Unknown log level: loud",
    );
    assert_err(
        &c.cmd(json!({"cmd":"log"})),
        "Not a valid Log level cmd, level missing",
    );
    c.cmd(json!({"cmd":"log","level":"info"}));

    c.send_line(r#"{"cmd":"mdns","payload":{"name":"meter-1"}}"#);
    let log = c.wait_line("MDNS log", |l| l.starts_with("[I]"));
    assert!(log.ends_with(": MDNS Name: meter-1"), "{log}");
    let (raw, v) = c.raw_reply_for("mdns");
    assert_eq!(keys_in_order(&raw), ["error", "cmd", "msg", "mdns_name"]);
    assert_eq!(v["msg"], "Set MDNS name to: meter-1");
    assert_eq!(v["mdns_name"], "meter-1");
    assert_err(
        &c.cmd(json!({"cmd":"mdns","payload":{"name":"no spaces!"}})),
        "MDNS name must be 1-24 characters [A-Za-z0-9-]",
    );

    let (raw, v) = c.cmd_raw(json!({"cmd":"addWifi","payload":{"ssid":"Test","pwd":"TestPwd"}}));
    assert!(!raw.contains("TestPwd"), "password echoed: {raw}");
    assert_ok(&v);
    assert_eq!(v["msg"], "New Ap, SSID: Test");
    assert_eq!(v["ssids"], "[energywifi, Test]");
    assert_err(
        &c.cmd(json!({"cmd":"addWifi","payload":{"ssid":"Test","pwd":"x"}})),
        "Wifi AP Test already in list",
    );
    let v = c.cmd(json!({"cmd":"delWifi","payload":{"ssid":"Test"}}));
    assert_eq!(v["msg"], "Removed SSID: Test");
    assert_eq!(v["ssids"], "[energywifi]");
    assert_err(
        &c.cmd(json!({"cmd":"delWifi","payload":{"ssid":"nope"}})),
        "SSID nope not found",
    );

    let v = c.cmd(json!({"cmd":"calibration","cal":[1.0,1.0,1.0,1.0,1.0,1.5]}));
    assert_ok(&v);
    assert!(
        v["msg"].as_str().unwrap().starts_with("Calibration set: ["),
        "{v}"
    );
    assert_eq!(v["calibration"], json!([1.0, 1.0, 1.0, 1.0, 1.0, 1.5]));
    let v = c.cmd(json!({"cmd":"calibration","cal":[1.0,1.0,3.0,1.0,1.0,1.0]}));
    assert_eq!(v["error"], true);
    let msg = v["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("Calibration parameter cal[2]: 3")
            && msg.ends_with(" not allowed [0.5-2.0]"),
        "{msg}"
    );

    let v = c.cmd(json!({"cmd":"resetEnergy"}));
    assert!(
        v["msg"].as_str().unwrap().starts_with("Energy reset to ["),
        "{v}"
    );

    for (cmd, kind, key) in [
        ("timeServer", "TimeServer", "time_server"),
        ("mqttServer", "MQTTServer", "mqtt_server"),
        ("streamServer", "StreamServer", "stream_server"),
    ] {
        let v = c.cmd(json!({"cmd":cmd,"payload":{"server":"-"}}));
        assert_eq!(v["msg"], format!("Set {kind} address to: -"));
        assert_eq!(v[key], "-");
        assert_err(
            &c.cmd(json!({ "cmd": cmd })),
            &format!("{kind} address required in payload with key server"),
        );
    }

    assert_eq!(
        c.cmd(json!({"cmd":"dailyRestart","hour":3,"minute":5}))["msg"],
        "Set daily restart to: 03:05:00"
    );
    assert_eq!(
        c.cmd(json!({"cmd":"dailyRestart","hour":-1,"minute":-1}))["msg"],
        "Disabled daily restart"
    );
    assert_err(
        &c.cmd(json!({"cmd":"dailyRestart","hour":25,"minute":0})),
        "Hour must be in 24h format, -1 to disable",
    );
    assert_err(
        &c.cmd(json!({"cmd":"dailyRestart","hour":1,"minute":60})),
        "Minute must be -1<min<60, -1 to disable",
    );
    assert_err(&c.cmd(json!({"cmd":"dailyRestart"})), "Missing hour/minute");

    assert_err(&c.cmd(json!({"cmd":"stop"})), "Not sampling");
}

#[test]
fn log_commands_unknown_commands_and_bad_json() {
    let sim = Sim::start(&[]);
    let (mut c, _) = sim.connect();
    let (raw, _) = c.cmd_raw(json!({"cmd":"clearLog"}));
    assert_eq!(raw, r#"{"error":false,"cmd":"clearLog"}"#);

    c.send_line(r#"{"cmd":"frobnicate"}"#);
    let warn = c.wait_line("unknown-command warning", |l| l.starts_with("[W]"));
    assert!(warn.ends_with(": Received unknown command"), "{warn}");
    let (raw, _) = c.raw_reply_for("frobnicate");
    assert_eq!(
        raw,
        r#"{"error":true,"cmd":"frobnicate","msg":"unknown command"}"#
    );

    c.send_line("{not json");
    let (raw, _) = c.next_json().unwrap();
    assert_eq!(
        raw,
        r#"{"error":true,"msg":"JSON format error, syntax: {\"cmd\":<cmdName>, \"[payload\":{<data>}]}}"}"#
    );
    c.send_line(r#"{"cmd":5}"#);
    let (raw2, _) = c.next_json().unwrap();
    assert_eq!(raw2, raw);

    // getLog: the "log" line first, then the getLog reply; the warning above is in it.
    c.send_line(r#"{"cmd":"getLog"}"#);
    let (first, v) = c.next_json().unwrap();
    assert_eq!(v["cmd"], "log", "{first}");
    let msg = v["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("*** LOGFile *** ") && msg.ends_with("*** LOGFile *** "),
        "{msg}"
    );
    assert!(msg.contains("Received unknown command"), "{msg}");
    let (second, _) = c.next_json().unwrap();
    assert_eq!(second, r#"{"error":false,"cmd":"getLog"}"#);
}

#[test]
fn keepalive_and_setup_done() {
    let sim = Sim::start(&[]);
    let (mut c, _) = sim.connect();
    // `!` has no reply: the next JSON is the info we ask for right after it.
    c.send(b"!\n{\"cmd\":\"info\"}\n");
    let (_, v) = c.next_json().unwrap();
    assert_eq!(v["cmd"], "info");
    c.send(b"?\r\n");
    c.wait_line("Setup done", |l| l == "Setup done");
}

#[test]
fn several_clients_each_get_replies_and_liveness_lines() {
    let sim = Sim::start(&[]);
    let mut clients: Vec<Client> = (0..4).map(|_| sim.connect().0).collect();
    for (k, c) in clients.iter_mut().enumerate() {
        let v = c.cmd(json!({"cmd":"dailyRestart","hour":k,"minute":0}));
        assert_eq!(v["msg"], format!("Set daily restart to: {k:02}:00:00"));
    }
    let live = regex_lite_liveness();
    for c in &mut clients {
        let l = c.wait_line("liveness", |l| live(l));
        assert!(l.ends_with(": "), "{l:?}");
    }
}

/// `[I]MM/DD HH:MM:SS: ` with nothing after it.
fn regex_lite_liveness() -> impl Fn(&str) -> bool {
    |l: &str| {
        let b = l.as_bytes();
        b.len() == 19
            && l.starts_with("[I]")
            && b[5] == b'/'
            && b[8] == b' '
            && b[11] == b':'
            && b[14] == b':'
            && l.ends_with(": ")
            && [3, 4, 6, 7, 9, 10, 12, 13, 15, 16]
                .iter()
                .all(|&i| b[i].is_ascii_digit())
    }
}

#[test]
fn token_guards_state_changes_until_auth() {
    let sim = Sim::start(&["--token", "s3cret"]);
    let (mut c, _) = sim.connect();
    assert_err(
        &c.cmd(json!({"cmd":"mdns","payload":{"name":"x1"}})),
        "Authentication required",
    );
    // Reads stay open.
    assert_ok(&c.cmd(json!({"cmd":"info"})));
    assert_err(
        &c.cmd(json!({"cmd":"auth","token":"wrong"})),
        "Invalid token",
    );
    assert_eq!(
        c.cmd(json!({"cmd":"auth","token":"s3cret"}))["msg"],
        "Authenticated"
    );
    assert_eq!(
        c.cmd(json!({"cmd":"mdns","payload":{"name":"x1"}}))["mdns_name"],
        "x1"
    );
}

#[test]
fn restart_replies_closes_and_keeps_serving_with_the_stored_state() {
    let sim = Sim::start(&[]);
    let (mut c, _) = sim.connect();
    c.cmd(json!({"cmd":"mdns","payload":{"name":"kept-name"}}));
    c.cmd(json!({"cmd":"addWifi","payload":{"ssid":"Keep","pwd":"pw"}}));
    let (other, _) = sim.connect();
    for (cmd, name_after, ssids_after) in [
        ("restart", "kept-name", "[energywifi, Keep]"),
        ("basicReset", "kept-name", "[energywifi]"),
        ("factoryReset", "smartmeterX", "[energywifi]"),
    ] {
        let v = c.cmd(json!({ "cmd": cmd }));
        assert_eq!(v["msg"], "Restarting", "{cmd}");
        // The connection closes after the reply.
        assert!(
            c.next_until(std::time::Instant::now() + SOON)
                .is_none_or(|_| {
                    // Log lines may still be in flight; drain until EOF.
                    while c.next_until(std::time::Instant::now() + SOON).is_some() {}
                    true
                })
        );
        // The process keeps serving: a new connection gets info with the reloaded state.
        let (c2, info) = eventually("reconnect", || {
            std::net::TcpStream::connect(sim.addr).ok()?;
            Some(sim.connect())
        });
        assert_eq!(info["name"], name_after, "after {cmd}");
        assert_eq!(info["ssids"], ssids_after, "after {cmd}");
        c = c2;
    }
    drop(other);
}

#[test]
fn extensions_get_quality_and_timezone() {
    let sim = Sim::start(&[]);
    let (mut c, _) = sim.connect();
    // Steady state (the first window after boot is checked in measure.rs).
    eventually("first getQuality", || {
        (c.cmd(json!({"cmd":"getQuality"}))["lineVoltage"][2].is_number()).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (raw, v) = eventually("getQuality", || {
        let (raw, v) = c.cmd_raw(json!({"cmd":"getQuality"}));
        (v["error"] == false && v["lineVoltage"][2].is_number()).then_some((raw, v))
    });
    assert_eq!(
        keys_in_order(&raw),
        [
            "error",
            "cmd",
            "thd_v",
            "thd_i",
            "nonactivePower",
            "fundamentalReactivePower",
            "powerFactor",
            "lineVoltage",
            "vrmsHalfCycleMin",
            "vrmsHalfCycleMax",
            "energyImport",
            "energyExport",
            "frequency10s"
        ]
    );
    // Line-to-line voltage of a balanced 230 V system: √3 · 230 V.
    let ll = triple(&v, "lineVoltage");
    assert!(ll.iter().all(|x| rel(*x, 398.37) < 0.002), "{v}");
    assert_eq!(
        c.cmd(json!({"cmd":"timezone","offset":90}))["msg"],
        "Set time zone offset to: +01:30"
    );
}

#[test]
fn sigint_also_persists_and_exits_zero() {
    let mut sim = Sim::start(&[]);
    let (mut c, _) = sim.connect();
    c.cmd(json!({"cmd":"mdns","payload":{"name":"inty"}}));
    let st = sim.signal_and_wait("INT");
    assert!(st.success(), "{st:?}");
}

/// docs/protocol.md §1: pipelined lines are never dropped. With flow control, 20 and then 200
/// `reqSamples` in one write each get their frame and their reply, in order, with consecutive
/// packet numbers (the simulator stops reading the socket while the engine's queue is full).
#[test]
fn pipelined_req_samples_are_all_answered_in_order() {
    let sim = Sim::start(&[]);
    let (mut c, _) = sim.connect();
    assert_ok(&c.cmd(json!({"cmd":"sample","payload":{"type":"TCP","rate":8000,"flowCtr":true}})));
    let mut next_packet = 0;
    for n in [20usize, 200] {
        c.send(
            "{\"cmd\":\"reqSamples\",\"samples\":10}\n"
                .repeat(n)
                .as_bytes(),
        );
        let mut replies = 0;
        let mut expect_reply = false;
        while replies < n {
            match c.next_item() {
                Some(Item::Frame { number, payload }) => {
                    assert!(!expect_reply, "frame {number} before the previous reply");
                    assert_eq!((number, payload.len()), (next_packet, 10 * 24));
                    next_packet += 1;
                    expect_reply = true;
                }
                Some(Item::Line(l)) if l.contains("\"cmd\":\"reqSamples\"") => {
                    assert_eq!(l, r#"{"error":false,"cmd":"reqSamples"}"#);
                    assert!(expect_reply, "reply without frame");
                    expect_reply = false;
                    replies += 1;
                }
                Some(Item::Line(l)) => assert!(!l.contains("dropped"), "{l}"),
                None => panic!("stream ended after {replies} of {n} replies"),
            }
        }
    }
    assert_eq!(next_packet, 220);
    assert_ok(&c.cmd(json!({"cmd":"stop"})));
    let log = c.cmd(json!({"cmd":"getLog"}));
    assert_ok(&log);
    assert!(
        !c.seen_lines().iter().any(|l| l.contains("dropped")),
        "{:?}",
        c.seen_lines()
    );
}
