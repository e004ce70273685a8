//! Transcript tests: every command's reply bytes (docs/protocol.md §1, §2, §10), driven through
//! `handle_input` / `poll_output` with a manual clock.

mod device_support;

use device_support::*;
use smartmeter::device::{Action, ConnKind, DeviceOptions, Instant, NtpResult, RestartReason};

fn reply(b: &mut Bench, c: smartmeter::device::ConnId, line: &str) -> String {
    b.cmd(c, line)
}

const INFO_IDLE: &str = concat!(
    "Info:{\"cmd\":\"info\",\"type\":\"smartmeter\",\"version\":\"2.2\",\"compiled\":\"unknown\",",
    "\"sys_time\":\"03/02/2021 10:39:35.000\",\"name\":\"smartmeterX\",\"ip\":\"0.0.0.0\",",
    "\"mqtt_server\":\"-\",\"stream_server\":\"-\",\"time_server\":\"time.google.com\",",
    "\"sampling_rate\":8000,\"buffer_size\":65536,\"psram\":false,\"rtc\":false,\"state\":\"idle\",",
    "\"energy\":[0.0,0.0,0.0],\"dailyReset\":\"None\",\"calibration\":[1.0,1.0,1.0,1.0,1.0,1.0],",
    "\"ssids\":\"[energywifi]\",\"ssid\":\"-\",\"rssi\":0,\"bssid\":\"-\"}\r\n"
);

#[test]
fn info_on_connect_and_on_request() {
    let mut b = Bench::new();
    let c = b
        .dev
        .handle_connected(b.now, ConnKind::Command { peer: peer(1) });
    assert_eq!(b.take_text(c), INFO_IDLE);
    assert_eq!(reply(&mut b, c, r#"{"cmd":"info"}"#), INFO_IDLE);
}

#[test]
fn availability_keepalive_json_errors_unknown() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    assert_eq!(reply(&mut b, c, "?"), "Info:Setup done\r\n");
    assert_eq!(reply(&mut b, c, "  !  "), "");
    let json_err = "Info:{\"error\":true,\"msg\":\"JSON format error, syntax: {\\\"cmd\\\":<cmdName>, \\\"[payload\\\":{<data>}]}}\"}\r\n";
    assert_eq!(reply(&mut b, c, "hello"), json_err);
    assert_eq!(reply(&mut b, c, r#"{"cmd":5}"#), json_err);
    assert_eq!(reply(&mut b, c, r#"{"nocmd":"x"}"#), json_err);
    assert_eq!(
        reply(&mut b, c, r#"{"cmd":"fly"}"#),
        "Info:[W]03/02 10:39:35: Received unknown command\r\nInfo:{\"error\":true,\"cmd\":\"fly\",\"msg\":\"unknown command\"}\r\n"
    );
    // trailing \r and surrounding whitespace are ignored
    b.feed(c, b"  {\"cmd\":\"log\",\"level\":\"error\"}  \r\n");
    assert_eq!(
        b.take_text(c),
        "Info:{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: error\"}\r\n"
    );
}

#[test]
fn over_long_line_is_rejected_and_rest_discarded() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    let mut long = vec![b'x'; 700];
    long.extend_from_slice(b"\n{\"cmd\":\"log\",\"level\":\"info\"}\n");
    // fed in small pieces: the engine never holds more than one line
    for piece in long.chunks(7) {
        b.feed(c, piece);
    }
    assert_eq!(
        b.take_text(c),
        "Info:{\"error\":true,\"msg\":\"Line too long (max 600 bytes)\"}\r\nInfo:{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: info\"}\r\n"
    );
}

#[test]
fn log_levels_filter_per_connection() {
    let mut b = Bench::new();
    let a = b.tcp(1);
    let c = b.tcp(2);
    assert_eq!(
        reply(&mut b, a, r#"{"cmd":"log"}"#),
        "Info:{\"error\":true,\"cmd\":\"log\",\"msg\":\"Not a valid Log level cmd, level missing\"}\r\n"
    );
    assert_eq!(
        reply(&mut b, a, r#"{"cmd":"log","level":"loud"}"#),
        "Info:{\"error\":true,\"cmd\":\"log\",\"msg\":\"Unknown log level: loud\"}\r\n"
    );
    assert_eq!(
        reply(&mut b, a, r#"{"cmd":"log","level":"error"}"#),
        "Info:{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: error\"}\r\n"
    );
    b.run(1000); // one liveness tick
    assert_eq!(b.take_text(a), "");
    assert_eq!(b.take_text(c), "Info:[I]03/02 10:39:36: \r\n");
    // a warning reaches c, not a (error level)
    reply(&mut b, c, r#"{"cmd":"bogus"}"#);
    assert_eq!(b.take_text(a), "");
}

#[test]
fn measurement_replies_have_the_canonical_shape() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    // no signal yet: undefined values are null, never NaN
    assert_eq!(
        reply(&mut b, c, r#"{"cmd":"getVoltage"}"#),
        "Info:{\"error\":false,\"cmd\":\"getVoltage\",\"voltage\":[null,null,null],\"unit\":\"V\"}\r\n"
    );
    b.run(600);
    type Check<'a> = (&'a str, &'a [&'a str], &'a [(f64, f64)]);
    let checks: [Check<'_>; 5] = [
        ("getVoltage", &["voltage", "unit"], &[(230.0, 0.5)]),
        ("getCurrent", &["current", "unit"], &[(5000.0, 10.0)]),
        (
            "getPower",
            &["activePower", "reactivePower", "apparentPower", "unit"],
            &[(996.0, 3.0), (575.0, 3.0), (1150.0, 3.0)],
        ),
        ("getPhaseAngle", &["phase", "unit"], &[(30.0, 0.2)]),
        ("getPeriod", &["period", "unit"], &[]),
    ];
    for (cmd, keys, expect) in checks {
        let line = reply(&mut b, c, &format!("{{\"cmd\":\"{cmd}\"}}"));
        let json = line.strip_prefix("Info:").unwrap().trim_end();
        // key order: error, cmd, own keys
        let mut pos = 0;
        for k in ["error", "cmd"].iter().chain(keys) {
            let at = json[pos..]
                .find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} in {json}"));
            pos += at;
        }
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["error"], false);
        for (k, (want, tol)) in keys.iter().zip(expect) {
            for x in v[k].as_array().unwrap() {
                let x = x.as_f64().unwrap();
                assert!((x - want).abs() <= *tol, "{cmd}.{k} = {x}, want {want}");
            }
        }
    }
    let units = [
        ("getVoltage", "V"),
        ("getCurrent", "mA"),
        ("getPower", "W/var/VA"),
        ("getPhaseAngle", "Deg"),
        ("getPeriod", "Hz"),
    ];
    for (cmd, unit) in units {
        let line = reply(&mut b, c, &format!("{{\"cmd\":\"{cmd}\"}}"));
        assert!(
            line.ends_with(&format!("\"unit\":\"{unit}\"}}\r\n")),
            "{line}"
        );
    }
    // more than 250 ms without samples: values are stale and reported as null
    b.now = b.now + core::time::Duration::from_millis(400);
    assert!(reply(&mut b, c, r#"{"cmd":"getVoltage"}"#).contains("[null,null,null]"));
}

#[test]
fn energy_reset_and_get() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    assert_eq!(
        reply(
            &mut b,
            c,
            r#"{"cmd":"resetEnergy","energy":[1.5,2,-3],"ts":1614600000}"#
        ),
        "Info:{\"error\":false,\"cmd\":\"resetEnergy\",\"msg\":\"Energy reset to [1.5, 2.0, -3.0], @03/01/2021 12:00:00.000\"}\r\n"
    );
    assert_eq!(
        reply(&mut b, c, r#"{"cmd":"getEnergy"}"#),
        "Info:{\"error\":false,\"cmd\":\"getEnergy\",\"energy\":[1.5,2.0,-3.0],\"unit\":\"Wh\",\"startTs\":1614600000,\"start\":\"03/01/2021 12:00:00.000\",\"days\":0}\r\n"
    );
    // an hour of 996 W per phase adds ~996 Wh
    b.block_ms = 100;
    b.run(3_600_000);
    b.take(c); // an hour of liveness lines
    let line = reply(&mut b, c, r#"{"cmd":"getEnergy"}"#);
    let v: serde_json::Value =
        serde_json::from_str(line.strip_prefix("Info:").unwrap().trim_end()).unwrap();
    let e0 = v["energy"][0].as_f64().unwrap();
    assert!((e0 - 1.5 - 996.0).abs() < 5.0, "{e0}");
    assert_eq!(v["days"], 0);
}

#[test]
fn settings_commands() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    let cases: &[(&str, &str)] = &[
        (
            r#"{"cmd":"mdns","payload":{"name":"meter-7"}}"#,
            "Info:[I]03/02 10:39:35: MDNS Name: meter-7\r\nInfo:{\"error\":false,\"cmd\":\"mdns\",\"msg\":\"Set MDNS name to: meter-7\",\"mdns_name\":\"meter-7\"}\r\n",
        ),
        (
            r#"{"cmd":"mdns","payload":{"name":"bad name"}}"#,
            "Info:{\"error\":true,\"cmd\":\"mdns\",\"msg\":\"MDNS name must be 1-24 characters [A-Za-z0-9-]\"}\r\n",
        ),
        (
            r#"{"cmd":"addWifi","payload":{"ssid":"Test","pwd":"TestPwd"}}"#,
            "Info:{\"error\":false,\"cmd\":\"addWifi\",\"ssid\":\"Test\",\"msg\":\"New Ap, SSID: Test\",\"ssids\":\"[energywifi, Test]\"}\r\n",
        ),
        (
            r#"{"cmd":"addWifi","payload":{"ssid":"Test","pwd":"x"}}"#,
            "Info:{\"error\":true,\"cmd\":\"addWifi\",\"msg\":\"Wifi AP Test already in list\"}\r\n",
        ),
        (
            r#"{"cmd":"delWifi","payload":{"ssid":"Test"}}"#,
            "Info:{\"error\":false,\"cmd\":\"delWifi\",\"msg\":\"Removed SSID: Test\",\"ssids\":\"[energywifi]\"}\r\n",
        ),
        (
            r#"{"cmd":"delWifi","payload":{"ssid":"Nope"}}"#,
            "Info:{\"error\":true,\"cmd\":\"delWifi\",\"msg\":\"SSID Nope not found\"}\r\n",
        ),
        (
            r#"{"cmd":"calibration","cal":[1,1.02,0.99,1,1,1]}"#,
            "Info:{\"error\":false,\"cmd\":\"calibration\",\"msg\":\"Calibration set: [1.0, 1.02, 0.99, 1.0, 1.0, 1.0]\",\"calibration\":[1.0,1.02,0.99,1.0,1.0,1.0]}\r\n",
        ),
        (
            r#"{"cmd":"calibration","cal":[1,2.5,1,1,1,1]}"#,
            "Info:{\"error\":true,\"cmd\":\"calibration\",\"msg\":\"Calibration parameter cal[1]: 2.5 not allowed [0.5-2.0]\"}\r\n",
        ),
        (
            r#"{"cmd":"dailyRestart","hour":3,"minute":7}"#,
            "Info:{\"error\":false,\"cmd\":\"dailyRestart\",\"msg\":\"Set daily restart to: 03:07:00\"}\r\n",
        ),
        (
            r#"{"cmd":"dailyRestart","hour":-1,"minute":-1}"#,
            "Info:{\"error\":false,\"cmd\":\"dailyRestart\",\"msg\":\"Disabled daily restart\"}\r\n",
        ),
        (
            r#"{"cmd":"dailyRestart","hour":3}"#,
            "Info:{\"error\":true,\"cmd\":\"dailyRestart\",\"msg\":\"Missing hour/minute\"}\r\n",
        ),
        (
            r#"{"cmd":"dailyRestart","hour":24,"minute":0}"#,
            "Info:{\"error\":true,\"cmd\":\"dailyRestart\",\"msg\":\"Hour must be in 24h format, -1 to disable\"}\r\n",
        ),
        (
            r#"{"cmd":"dailyRestart","hour":1,"minute":60}"#,
            "Info:{\"error\":true,\"cmd\":\"dailyRestart\",\"msg\":\"Minute must be -1<min<60, -1 to disable\"}\r\n",
        ),
        (
            r#"{"cmd":"timeServer","payload":{"server":"pool.ntp.org"}}"#,
            "Info:{\"error\":false,\"cmd\":\"timeServer\",\"msg\":\"Set TimeServer address to: pool.ntp.org\",\"time_server\":\"pool.ntp.org\"}\r\n",
        ),
        (
            r#"{"cmd":"mqttServer","payload":{"server":"192.168.0.13"}}"#,
            "Info:{\"error\":false,\"cmd\":\"mqttServer\",\"msg\":\"Set MQTTServer address to: 192.168.0.13\",\"mqtt_server\":\"192.168.0.13\"}\r\n",
        ),
        (
            r#"{"cmd":"streamServer","payload":{"server":"[::1]:9000"}}"#,
            "Info:{\"error\":false,\"cmd\":\"streamServer\",\"msg\":\"Set StreamServer address to: [::1]:9000\",\"stream_server\":\"[::1]:9000\"}\r\n",
        ),
        (
            r#"{"cmd":"streamServer","payload":{}}"#,
            "Info:{\"error\":true,\"cmd\":\"streamServer\",\"msg\":\"StreamServer address required in payload with key server\"}\r\n",
        ),
        (
            r#"{"cmd":"timezone","offset":-90}"#,
            "Info:{\"error\":false,\"cmd\":\"timezone\",\"msg\":\"Set time zone offset to: -01:30\"}\r\n",
        ),
        (
            r#"{"cmd":"clearLog"}"#,
            "Info:{\"error\":false,\"cmd\":\"clearLog\"}\r\n",
        ),
        (
            r#"{"cmd":"getLog"}"#,
            "Info:{\"cmd\":\"log\",\"msg\":\"*** LOGFile *** //n*** LOGFile *** \"}\r\nInfo:{\"error\":false,\"cmd\":\"getLog\"}\r\n",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(&reply(&mut b, c, line), want, "{line}");
    }
    assert_eq!(b.dev.config().name, "meter-7");
    assert_eq!(b.dev.config().calibration, [1.0, 1.02, 0.99, 1.0, 1.0, 1.0]);
    // every accepted change was persisted (a burst coalesces into one pending write holding the
    // final state), and MQTT/mDNS were told
    let ev = b.drain_events();
    let settings: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Action::Persist(r) if r.kind() == smartmeter::device::RecordKind::Settings => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(settings.len(), 1);
    let stored: smartmeter::device::Config = serde_json::from_slice(settings[0].payload()).unwrap();
    assert_eq!(&stored, b.dev.config());
    assert!(ev.contains(&Action::Announce {
        name: "meter-7".into()
    }));
    assert!(ev.iter().any(
        |e| matches!(e, Action::MqttConfigure(Some(s)) if s.host == "192.168.0.13" && s.port == 1883)
    ));
    assert!(
        ev.iter()
            .any(|e| matches!(e, Action::Connect { host, port: 9000 } if host == "::1"))
    );
}

#[test]
fn wifi_list_is_bounded() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    for k in 0..4 {
        let r = reply(
            &mut b,
            c,
            &format!(r#"{{"cmd":"addWifi","payload":{{"ssid":"ap{k}","pwd":"p"}}}}"#),
        );
        assert!(r.contains("\"error\":false"), "{r}");
    }
    assert_eq!(
        reply(
            &mut b,
            c,
            r#"{"cmd":"addWifi","payload":{"ssid":"ap9","pwd":"p"}}"#
        ),
        "Info:{\"error\":true,\"cmd\":\"addWifi\",\"msg\":\"MAX # APs reached, need to delete first\"}\r\n"
    );
    let long = "s".repeat(33);
    assert_eq!(
        reply(
            &mut b,
            c,
            &format!(r#"{{"cmd":"addWifi","payload":{{"ssid":"{long}","pwd":"p"}}}}"#)
        ),
        "Info:{\"error\":true,\"cmd\":\"addWifi\",\"msg\":\"SSID or password too long (max 32, 64)\"}\r\n"
    );
}

#[test]
fn ntp_replies_in_order() {
    let mut b = Bench::new();
    b.drain_events();
    let c = b.tcp(1);
    // the reply waits for the NTP result; the next line's reply comes after it
    b.feed(
        c,
        b"{\"cmd\":\"ntp\"}\n{\"cmd\":\"log\",\"level\":\"warning\"}\n",
    );
    assert_eq!(b.take_text(c), "");
    b.dev.handle_ntp(
        b.now,
        NtpResult::Synced {
            offset_us: 2_500_000,
            round_trip_us: 22_000,
        },
    );
    assert_eq!(
        b.take_text(c),
        concat!(
            "Info:[I]03/02 10:39:37: NTP synced with conf: 11\r\n",
            "Info:{\"error\":false,\"cmd\":\"ntp\",\"msg\":\"Time synced\",\"current_time\":\"03/02/2021 10:39:37.500\"}\r\n",
            "Info:{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: warning\"}\r\n"
        )
    );
    assert_eq!(
        b.dev.wall_time(b.now),
        Instant::from_millis(super_t0_ms() + 2_500)
    );
    b.feed(c, b"{\"cmd\":\"ntp\"}\n");
    b.dev.handle_ntp(b.now, NtpResult::Failed);
    assert_eq!(
        b.take_text(c),
        concat!(
            "Info:[W]03/02 10:39:37: NTP sync failed\r\n",
            "Info:{\"error\":true,\"cmd\":\"ntp\",\"msg\":\"Error syncing time\"}\r\n"
        )
    );
}

fn super_t0_ms() -> u64 {
    T0_S * 1000
}

#[test]
fn restart_replies_then_restarts_after_drain() {
    for (cmd, kind) in [
        ("restart", RestartReason::Command),
        ("factoryReset", RestartReason::FactoryReset),
        ("basicReset", RestartReason::BasicReset),
    ] {
        let mut b = Bench::new();
        let c = b.tcp(1);
        reply(&mut b, c, r#"{"cmd":"mdns","payload":{"name":"keepme"}}"#);
        b.drain_events();
        b.feed(c, format!("{{\"cmd\":\"{cmd}\"}}\n").as_bytes());
        // not before the reply has left
        let ev = b.drain_events();
        assert!(
            !ev.iter().any(|e| matches!(e, Action::Restart(_))),
            "{ev:?}"
        );
        assert_eq!(
            b.take_text(c),
            format!("Info:{{\"error\":false,\"cmd\":\"{cmd}\",\"msg\":\"Restarting\"}}\r\n")
        );
        let ev = b.drain_events();
        assert!(ev.contains(&Action::Close(c)));
        assert!(ev.contains(&Action::Restart(kind)), "{ev:?}");
        let name = &b.dev.config().name;
        match kind {
            RestartReason::FactoryReset => assert_eq!(name, "smartmeterX"),
            _ => assert_eq!(name, "keepme"),
        }
    }
}

#[test]
fn too_many_clients() {
    let opts = DeviceOptions {
        max_clients: 2,
        ..DeviceOptions::default()
    };
    let mut b = Bench::with(opts, Default::default());
    b.tcp(1);
    b.tcp(2);
    let c = b
        .dev
        .handle_connected(b.now, ConnKind::Command { peer: peer(3) });
    assert_eq!(
        b.take_text(c),
        "Info:{\"error\":true,\"msg\":\"Too many clients\"}\r\n"
    );
    assert!(b.drain_events().contains(&Action::Close(c)));
    // commands on it are ignored
    assert_eq!(reply(&mut b, c, r#"{"cmd":"info"}"#), "");
}

#[test]
fn busy_guard() {
    let mut b = Bench::new();
    let a = b.tcp(1);
    let c = b.tcp(2);
    let r = reply(
        &mut b,
        a,
        r#"{"cmd":"sample","payload":{"type":"TCP","rate":10,"flowCtr":true}}"#,
    );
    assert!(
        r.starts_with("Info:{\"error\":false,\"cmd\":\"sample\""),
        "{r}"
    );
    let guarded = [
        r#"{"cmd":"sample","payload":{"type":"TCP"}}"#,
        r#"{"cmd":"getPower"}"#,
        r#"{"cmd":"getVoltage"}"#,
        r#"{"cmd":"getCurrent"}"#,
        r#"{"cmd":"getEnergy"}"#,
        r#"{"cmd":"getPeriod"}"#,
        r#"{"cmd":"getPhaseAngle"}"#,
        r#"{"cmd":"mdns","payload":{"name":"x"}}"#,
        r#"{"cmd":"mqttServer","payload":{"server":"-"}}"#,
        r#"{"cmd":"streamServer","payload":{"server":"-"}}"#,
        r#"{"cmd":"timeServer","payload":{"server":"-"}}"#,
        r#"{"cmd":"addWifi","payload":{"ssid":"a","pwd":"b"}}"#,
        r#"{"cmd":"delWifi","payload":{"ssid":"a"}}"#,
        r#"{"cmd":"calibration","cal":[1,1,1,1,1,1]}"#,
        r#"{"cmd":"resetEnergy"}"#,
        r#"{"cmd":"clearLog"}"#,
        r#"{"cmd":"getLog"}"#,
        r#"{"cmd":"dailyRestart","hour":1,"minute":1}"#,
    ];
    for line in guarded {
        let name = line.split('"').nth(3).unwrap();
        assert_eq!(
            reply(&mut b, c, line),
            format!(
                "Info:{{\"error\":true,\"cmd\":\"{name}\",\"msg\":\"Device currently sampling\",\"state\":\"busy\"}}\r\n"
            ),
            "{line}"
        );
    }
    // always allowed
    assert!(reply(&mut b, c, r#"{"cmd":"info"}"#).contains("\"state\":\"busy\""));
    assert_eq!(
        reply(&mut b, c, r#"{"cmd":"log","level":"warning"}"#),
        "Info:{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: warning\"}\r\n"
    );
    assert_eq!(
        reply(&mut b, c, r#"{"cmd":"cts","value":true}"#),
        "Info:{\"error\":true,\"cmd\":\"cts\",\"msg\":\"Not the sampling connection\"}\r\n"
    );
    assert_eq!(
        reply(&mut b, c, r#"{"cmd":"reqSamples","samples":10}"#),
        "Info:{\"error\":true,\"cmd\":\"reqSamples\",\"msg\":\"Not the sampling connection\"}\r\n"
    );
    // any connection may stop
    let r = reply(&mut b, c, r#"{"cmd":"stop"}"#);
    assert!(r.starts_with("Info:{\"error\":false,\"cmd\":\"stop\",\"msg\":\"Received stop command\",\"sample_duration\":"), "{r}");
    assert_eq!(
        reply(&mut b, c, r#"{"cmd":"stop"}"#),
        "Info:{\"error\":true,\"cmd\":\"stop\",\"msg\":\"Not sampling\"}\r\n"
    );
}

#[test]
fn access_token() {
    let opts = DeviceOptions {
        token: Some("s3cret".into()),
        ..DeviceOptions::default()
    };
    let mut b = Bench::with(opts, Default::default());
    let c = b.tcp(1);
    let auth_req = "Info:{\"error\":true,\"cmd\":\"mdns\",\"msg\":\"Authentication required\"}\r\n";
    assert_eq!(
        reply(&mut b, c, r#"{"cmd":"mdns","payload":{"name":"x"}}"#),
        auth_req
    );
    // reading is open
    assert!(reply(&mut b, c, r#"{"cmd":"getVoltage"}"#).contains("\"error\":false"));
    assert_eq!(
        reply(&mut b, c, r#"{"cmd":"auth","token":"s3cret"}"#),
        "Info:{\"error\":false,\"cmd\":\"auth\",\"msg\":\"Authenticated\"}\r\n"
    );
    assert!(
        reply(&mut b, c, r#"{"cmd":"mdns","payload":{"name":"x"}}"#).contains("\"error\":false")
    );
    // three wrong tokens close the connection (each one after the device-wide delay, §10)
    let d = b.tcp(2);
    for k in 0..3 {
        b.idle(100 << k);
        assert!(
            reply(&mut b, d, r#"{"cmd":"auth","token":"guess"}"#)
                .ends_with("Info:{\"error\":true,\"cmd\":\"auth\",\"msg\":\"Invalid token\"}\r\n")
        );
    }
    assert!(b.drain_events().contains(&Action::Close(d)));
    // setToken only over serial
    let s = b.dev.handle_connected(b.now, ConnKind::Serial);
    b.take(s);
    assert_eq!(
        reply(&mut b, s, r#"{"cmd":"setToken","token":"new"}"#),
        "Info:{\"error\":false,\"cmd\":\"setToken\",\"msg\":\"Token set\"}\r\n"
    );
    assert!(reply(&mut b, c, r#"{"cmd":"setToken","token":"x"}"#).contains("\"error\":true"));
}

#[test]
fn liveness_every_second_while_idle_only() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.run(3000);
    assert_eq!(
        b.take_text(c),
        "Info:[I]03/02 10:39:36: \r\nInfo:[I]03/02 10:39:37: \r\nInfo:[I]03/02 10:39:38: \r\n"
    );
    reply(&mut b, c, r#"{"cmd":"timezone","offset":60}"#);
    b.run(1000);
    assert_eq!(b.take_text(c), "Info:[I]03/02 11:39:39: \r\n");
}

/// `resetEnergy` only confirms what the integer registers hold: every accepted value reads back
/// through getEnergy within 1e-9 relative; anything else is refused with `Invalid energy: …`.
#[test]
fn reset_energy_accepts_only_what_reads_back() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    let get = |b: &mut Bench| -> [f64; 3] {
        let r = reply(b, c, r#"{"cmd":"getEnergy"}"#);
        let v: serde_json::Value = serde_json::from_str(r.trim_start_matches("Info:")).unwrap();
        let e = v["energy"].as_array().unwrap();
        [0, 1, 2].map(|i| e[i].as_f64().unwrap())
    };
    for bad in [
        "[1e13,1e14,5e14]",
        "[1.7e308,0,0]",
        "[0,-3e12,0]",
        "[0,0,1e300]",
    ] {
        let r = reply(
            &mut b,
            c,
            &format!(r#"{{"cmd":"resetEnergy","energy":{bad}}}"#),
        );
        assert!(
            r.starts_with(
                "Info:{\"error\":true,\"cmd\":\"resetEnergy\",\"msg\":\"Invalid energy: "
            ),
            "{bad}: {r}"
        );
        assert_eq!(get(&mut b), [0.0; 3], "{bad}: nothing changed");
    }
    let good: [[f64; 3]; 6] = [
        [1.5, 2.0, -3.0],
        [2.5e12, -2.5e12, 0.0],
        [123_456_789.123_456_7, -0.001, 1e-300],
        [9_999_999_999.999, 1e-6, -1e-9],
        [-0.0, 4.2e11, 7.77e-3],
        [1e12, 2e12, -1e12],
    ];
    for e in good {
        let line = format!(
            r#"{{"cmd":"resetEnergy","energy":[{},{},{}]}}"#,
            serde_json::to_string(&e[0]).unwrap(),
            serde_json::to_string(&e[1]).unwrap(),
            serde_json::to_string(&e[2]).unwrap()
        );
        let r = reply(&mut b, c, &line);
        assert!(r.starts_with("Info:{\"error\":false,"), "{line}: {r}");
        let back = get(&mut b);
        for (got, want) in back.iter().zip(e) {
            assert!(
                (got - want).abs() <= 1e-9 * want.abs(),
                "{line}: reads back {back:?}"
            );
        }
    }
}
