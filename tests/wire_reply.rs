//! Replies: golden payloads both ways, tolerant parsing, proptest round trips, no panic on any input.

mod wire_support;

use proptest::prelude::*;
use smartmeter::wire::command::{
    CommandError, DailyRestart, Measures, NominalFrequency, PqInterval, ServerKind, Slot,
    StreamType,
};
use smartmeter::wire::log::LogLevel;
use smartmeter::wire::pq::{PqAggregate, PqEvent};
use smartmeter::wire::reply::{
    BUSY, InfoReply, NominalInForce, NominalSet, QualityReply, Reply, ReplyError, RestartKind,
    SampleStarted, StopStats,
};
use wire_support::{aggregate, event, finite_f32, finite_f64, phases};

const GOLDEN: &str = include_str!("golden/replies.txt");
/// The PQ objects, whose typed values `tests/wire_pq.rs` pins: a `getPQ` reply carries an aggregate
/// and a `getEvents` reply events of this file.
const GOLDEN_PQ: &str = include_str!("golden/pq.txt");

fn golden_pq(name: &str) -> &'static str {
    GOLDEN_PQ
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .expect("pq golden case")
}

fn golden() -> Vec<(&'static str, &'static str)> {
    GOLDEN
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split_once(' ').expect("golden line is `name text`"))
        .collect()
}

fn s(v: &str) -> String {
    v.to_string()
}

fn default_info() -> InfoReply {
    InfoReply {
        version: s("2.2"),
        compiled: s("Mar_2_2021_09:57:58"),
        sys_time: s("03/02/2021 10:37:07.662"),
        name: s("smartmeterX"),
        ip: s("192.168.4.1"),
        mqtt_server: s("-"),
        stream_server: s("-"),
        time_server: s("time.google.com"),
        sampling_rate_hz: 8000,
        buffer_size_bytes: 3670016,
        psram: true,
        rtc: false,
        busy: false,
        energy_wh: [0.0; 3],
        daily_reset: DailyRestart::Disabled,
        calibration: [1.0; 6],
        ssids: vec![s("energywifi")],
        ssid: s("-"),
        rssi_dbm: -71,
        bssid: s("-"),
    }
}

fn sample_tcp() -> SampleStarted {
    SampleStarted {
        stream: StreamType::Tcp,
        slot: None,
        measures: Measures::VoltCurrent3,
        measurements: None,
        chunk_size_bytes: 1024,
        rate_hz: 8000,
        prefix: true,
        flow_control: false,
        start_ts_ms: 1_614_697_441_119,
        ntp_confidence_ms: None,
    }
}

fn typed(name: &str) -> Reply {
    match name {
        "info" => Reply::Info(Box::new(default_info())),
        "info_busy" => Reply::Info(Box::new(InfoReply {
            version: s("0.1.0"),
            compiled: s("2026-11-27"),
            sys_time: s("11/27/2026 07:00:00.000"),
            name: s("meter-7"),
            ip: s("10.0.0.7"),
            mqtt_server: s("broker.local"),
            stream_server: s("[fe80::1]:54322"),
            time_server: s("time.google.com"),
            sampling_rate_hz: 32000,
            buffer_size_bytes: 0,
            psram: false,
            rtc: true,
            busy: true,
            energy_wh: [10149.5684, 5101.23238, -4.5],
            daily_reset: DailyRestart::At {
                hour: 3,
                minute: 30,
            },
            calibration: [1.01, 0.99, 1.0, 1.0, 2.0, 0.5],
            ssids: vec![s("energywifi"), s("Test")],
            ssid: s("energywifi"),
            rssi_dbm: -55,
            bssid: s("AA:BB:CC:DD:EE:FF"),
        })),
        "getPower" => Reply::Power {
            active_w: [Some(230.5), Some(0.0), None],
            reactive_var: [Some(-12.25), Some(0.0), None],
            apparent_va: [Some(231.0), Some(0.0), None],
        },
        "getVoltage" => Reply::Voltage {
            voltage_v: [Some(230.1), Some(229.5), Some(231.0)],
        },
        "getCurrent" => Reply::Current {
            current_ma: [Some(1002.5), Some(0.0), Some(12.75)],
        },
        "getEnergy" => Reply::Energy {
            energy_wh: [10149.5684, 5101.23238, 4509.21022],
            start_ts_s: 1_632_140_570,
            start: s("09/20/2021 12:22:50.068"),
            days: 1,
        },
        "getPeriod" => Reply::Period {
            frequency_hz: [Some(50.0), Some(49.99), Some(50.01)],
        },
        "getPhaseAngle" => Reply::PhaseAngle {
            phase_deg: [Some(30.0), Some(-15.5), Some(180.0)],
        },
        "getQuality" => Reply::Quality(Box::new(QualityReply {
            thd_v_pct: [Some(1.5), Some(1.25), Some(2.0)],
            thd_i_pct: [Some(10.0), Some(8.5), None],
            nonactive_power_va: [Some(12.0), Some(5.0), Some(0.0)],
            fundamental_reactive_power_var: [Some(10.0), Some(-4.0), Some(0.0)],
            power_factor: [Some(0.95), Some(-0.5), None],
            line_voltage_v: [Some(400.0), Some(399.5), Some(401.0)],
            vrms_half_cycle_min_v: [Some(228.0), Some(227.5), Some(229.0)],
            vrms_half_cycle_max_v: [Some(232.0), Some(231.5), Some(233.0)],
            energy_import_wh: [100.5, 20.0, 0.0],
            energy_export_wh: [0.0, 1.25, 0.0],
            frequency_10s_hz: Some(49.998),
        })),
        "log" => Reply::LogLevelSet {
            level: LogLevel::Warning,
        },
        "mdns" => Reply::Mdns {
            name: s("smartmeterX"),
        },
        "addWifi" => Reply::AddWifi {
            ssid: s("Test"),
            ssids: vec![s("energywifi"), s("Test")],
        },
        "delWifi" => Reply::DelWifi {
            ssid: s("Test"),
            ssids: vec![s("energywifi")],
        },
        "calibration" => Reply::Calibration {
            factors: [1.0, 1.0, 1.01, 0.99, 2.0, 0.5],
        },
        "resetEnergy" => Reply::ResetEnergy {
            energy_wh: [0.0; 3],
            at: s("03/02/2021 11:27:40.182"),
        },
        "resetEnergy_values" => Reply::ResetEnergy {
            energy_wh: [10149.5684, 5101.23238, -4.5],
            at: s("09/20/2021 12:22:50.068"),
        },
        "ntp" => Reply::Ntp {
            current_time: s("03/02/2021 11:27:40.182"),
        },
        "timeServer" => Reply::ServerSet {
            kind: ServerKind::Time,
            server: s("time.google.com"),
        },
        "mqttServer" => Reply::ServerSet {
            kind: ServerKind::Mqtt,
            server: s("192.168.0.13"),
        },
        "streamServer" => Reply::ServerSet {
            kind: ServerKind::Stream,
            server: s("-"),
        },
        "dailyRestart" => Reply::DailyRestart(DailyRestart::At {
            hour: 3,
            minute: 30,
        }),
        "dailyRestart_disabled" => Reply::DailyRestart(DailyRestart::Disabled),
        "restart" => Reply::Restarting {
            kind: RestartKind::Restart,
        },
        "factoryReset" => Reply::Restarting {
            kind: RestartKind::FactoryReset,
        },
        "basicReset" => Reply::Restarting {
            kind: RestartKind::BasicReset,
        },
        "clearLog" => Reply::ClearLog,
        "getLog_dump" => Reply::GetLogDump {
            rows: vec![
                s("[E]03/02 11:26:20: Cannot connect to MQTT Server -"),
                s("[W]03/02 11:27:00: Received unknown command"),
            ],
        },
        "getLog_dump_empty" => Reply::GetLogDump { rows: vec![] },
        "getLog_done" => Reply::GetLogDone,
        "sample_tcp" => Reply::SampleStarted(sample_tcp()),
        "sample_udp" => Reply::SampleStarted(SampleStarted {
            stream: StreamType::Udp { port: 54323 },
            slot: Some(Slot { slot: 0, slots: 3 }),
            measures: Measures::PowerPQ,
            measurements: None,
            chunk_size_bytes: 120,
            rate_hz: 50,
            flow_control: true,
            ntp_confidence_ms: Some(5),
            ..sample_tcp()
        }),
        "sample_l1" => Reply::SampleStarted(SampleStarted {
            stream: StreamType::Serial,
            measures: Measures::VoltCurrentL1,
            measurements: None,
            chunk_size_bytes: 8,
            rate_hz: 1,
            start_ts_ms: 1_614_697_441_000,
            ..sample_tcp()
        }),
        "sample_rms" => Reply::SampleStarted(SampleStarted {
            stream: StreamType::Mqtt,
            measures: Measures::Rms,
            measurements: None,
            chunk_size_bytes: 24,
            rate_hz: 10,
            prefix: false,
            ..sample_tcp()
        }),
        "stop" => Reply::Stopped(StopStats {
            sample_duration_ms: 16157,
            samples: 16,
            sent_samples: 16,
            start_ts_ms: 1_614_697_441_119,
            stop_ts_ms: 1_614_697_457_276,
            ip: s("192.168.0.138"),
            avg_rate_hz: 0.955618,
        }),
        "reqSamples" => Reply::ReqSamplesDone,
        "cts" => Reply::Cts { value: true },
        "timezone" => Reply::Timezone { offset_min: 330 },
        "timezone_west" => Reply::Timezone { offset_min: -720 },
        "auth" => Reply::Auth,
        "setToken" => Reply::SetToken { removed: false },
        "setToken_removed" => Reply::SetToken { removed: true },
        "error_json" => Reply::from_command_error(&CommandError::Json),
        "error_unknown" => {
            Reply::from_command_error(&CommandError::UnknownCommand { cmd: s("foo") })
        }
        "error_busy" => Reply::busy("getPower"),
        "error_not_sampling" => Reply::error(Some("stop"), "Not sampling"),
        "error_too_many" => Reply::error(None, "Too many clients"),
        "error_ntp" => Reply::error(Some("ntp"), "Error syncing time"),
        "error_wifi_dup" => Reply::error(Some("addWifi"), "Wifi AP Test already in list"),
        "setup_done" => Reply::SetupDone,
        "setNominal" => Reply::Nominal(NominalSet {
            voltage_v: NominalInForce::Fixed(230.0),
            frequency: NominalInForce::Fixed(NominalFrequency::Hz50),
        }),
        "setNominal_auto" => Reply::Nominal(NominalSet {
            voltage_v: NominalInForce::Auto(Some(120.0)),
            frequency: NominalInForce::Auto(Some(NominalFrequency::Hz60)),
        }),
        "setNominal_undecided" => Reply::Nominal(NominalSet {
            voltage_v: NominalInForce::Fixed(120.5),
            frequency: NominalInForce::Auto(None),
        }),
        "getPQ" => Reply::Pq(Box::new(
            PqAggregate::parse(golden_pq("pq_3s").as_bytes()).unwrap(),
        )),
        "getPQ_10min_undefined" => Reply::Pq(Box::new(
            PqAggregate::parse(golden_pq("pq_10min_undefined").as_bytes()).unwrap(),
        )),
        "getEvents" => Reply::Events {
            events: ["event_dip", "event_swell"]
                .map(|n| PqEvent::parse(golden_pq(n).as_bytes()).unwrap())
                .to_vec(),
            next: 8,
        },
        "getEvents_empty" => Reply::Events {
            events: vec![],
            next: 0,
        },
        "clearEvents" => Reply::ClearEvents,
        "homeAssistant" => Reply::HomeAssistant {
            enabled: true,
            prefix: s("homeassistant"),
        },
        "homeAssistant_off" => Reply::HomeAssistant {
            enabled: false,
            prefix: s("ha/discovery"),
        },
        "error_pq_not_ready" => Reply::pq_not_ready(PqInterval::TenMinutes),
        other => panic!("golden case {other} has no typed value"),
    }
}

#[test]
fn golden_replies_both_ways() {
    let cases = golden();
    assert_eq!(cases.len(), 60);
    for (name, text) in &cases {
        let reply = typed(name);
        assert_eq!(reply.to_json(), *text, "to_json {name}");
        assert_eq!(
            reply.to_line(),
            format!("Info:{text}\r\n"),
            "to_line {name}"
        );
        assert_eq!(
            Reply::parse(text.as_bytes()),
            Ok(reply.clone()),
            "parse {name}"
        );
        assert_eq!(
            Reply::parse(reply.to_line().as_bytes()),
            Ok(reply),
            "parse line {name}"
        );
    }
}

/// `Reply::message` is the `msg` the canonical form carries (what host tools print for people), and
/// `None` exactly for the replies without one.
#[test]
fn message_is_the_msg_of_the_canonical_form() {
    for (name, text) in golden() {
        let reply = typed(name);
        let want = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => v.get("msg").and_then(|m| m.as_str()).map(String::from),
            Err(_) => Some(text.to_string()), // `Setup done`
        };
        assert_eq!(reply.message(), want, "{name}");
    }
}

/// The original firmware's sample reply names `v,i` but carries one phase: the channel count is the
/// reply's `measurements`, and the canonical encoder writes that count back.
#[test]
fn sample_reply_channel_count_follows_measurements() {
    let seed = br#"{"error":false,"measures":"v,i","chunksize":8,"samplingrate":1,"conn_type":"TCP","measurements":2,"prefix":true,"flowCtr":false,"cmd":"sample","unit":"V,mA","startTs":"1614697441.119"}"#;
    let Ok(Reply::SampleStarted(s)) = Reply::parse(seed) else {
        panic!("the seed's sample reply parses")
    };
    assert_eq!(
        (s.measures, s.measurements, s.channel_count()),
        (Measures::VoltCurrent3, Some(2), 2)
    );
    assert!(
        Reply::SampleStarted(s)
            .to_json()
            .contains(r#""measurements":2,"#)
    );
    let agree = sample_tcp();
    assert_eq!((agree.measurements, agree.channel_count()), (None, 6));
    let zero = br#"{"error":false,"cmd":"sample","measures":"v,i","chunksize":8,"samplingrate":1,"conn_type":"TCP","measurements":0,"startTs":"1.000"}"#;
    assert!(Reply::parse(zero).is_err());
}

#[test]
fn cmd_and_error_accessors() {
    assert_eq!(typed("getLog_dump").cmd(), Some("log"));
    assert_eq!(typed("getLog_done").cmd(), Some("getLog"));
    assert_eq!(typed("streamServer").cmd(), Some("streamServer"));
    assert_eq!(typed("error_too_many").cmd(), None);
    assert_eq!(typed("error_busy").cmd(), Some("getPower"));
    assert_eq!(typed("setup_done").cmd(), None);
    assert!(typed("error_busy").is_error());
    assert!(!typed("info").is_error());
    let Reply::Error { state, .. } = typed("error_busy") else {
        panic!("busy is an error")
    };
    assert_eq!(state, Some(BUSY));
}

#[test]
fn undefined_measurements_are_null_never_nan() {
    let r = Reply::Voltage {
        voltage_v: [Some(f32::NAN), None, Some(f32::INFINITY)],
    };
    assert_eq!(
        r.to_json(),
        r#"{"error":false,"cmd":"getVoltage","voltage":[null,null,null],"unit":"V"}"#
    );
}

#[test]
fn tolerant_parsing() {
    // Key order, 1 vs 1.0, numbers as strings, unknown keys, whitespace.
    let r = Reply::parse(
        br#" { "unit":"Hz", "extra":{"a":[1]}, "period":[50, "49.5", null], "cmd":"getPeriod" } "#,
    );
    assert_eq!(
        r,
        Ok(Reply::Period {
            frequency_hz: [Some(50.0), Some(49.5), None]
        })
    );
    let r = Reply::parse(
        br#"{"cmd":"sample","startTs":"1.5","flowCtr":"false","prefix":"true","conn_type":"udp","port":"5000","samplingrate":8000.0,"chunksize":1024,"measures":"v,i"}"#,
    );
    assert_eq!(
        r,
        Ok(Reply::SampleStarted(SampleStarted {
            stream: StreamType::Udp { port: 5000 },
            start_ts_ms: 1500,
            ..sample_tcp()
        }))
    );
    // An error reply is an error whatever else it carries.
    let r = Reply::parse(
        br#"{"cmd":"ntp","error":true,"msg":"Error syncing time","current_time":"x"}"#,
    );
    assert_eq!(r, Ok(Reply::error(Some("ntp"), "Error syncing time")));
    // Unknown state strings are dropped, not kept.
    let r = Reply::parse(br#"{"error":true,"cmd":"x","msg":"m","state":"weird"}"#);
    assert_eq!(r, Ok(Reply::error(Some("x"), "m")));
    // A cts answer without value is a plain ack.
    assert_eq!(
        Reply::parse(br#"{"error":false,"cmd":"cts"}"#),
        Ok(Reply::Ack { cmd: s("cts") })
    );
    // A fractional startTs (older encoders) reads back as whole seconds, floored.
    assert_eq!(
        Reply::parse(
            br#"{"error":false,"cmd":"getEnergy","energy":[1,2,3],"startTs":1632140570.968}"#
        ),
        Ok(Reply::Energy {
            energy_wh: [1.0, 2.0, 3.0],
            start_ts_s: 1_632_140_570,
            start: String::new(),
            days: 0,
        })
    );
    // A setToken answer without msg (older encoders) is "Token set".
    assert_eq!(
        Reply::parse(br#"{"error":false,"cmd":"setToken"}"#),
        Ok(Reply::SetToken { removed: false })
    );
    // The seed's availability answer has a space after `Info:`.
    assert_eq!(Reply::parse(b"Info: Setup done\r\n"), Ok(Reply::SetupDone));
}

#[test]
fn parse_errors_name_the_field() {
    assert_eq!(Reply::parse(b"not json"), Err(ReplyError::Json));
    assert_eq!(Reply::parse(b"[1,2]"), Err(ReplyError::Json));
    assert_eq!(Reply::parse(br#"{"foo":1}"#), Err(ReplyError::Unrecognized));
    assert_eq!(
        Reply::parse(br#"{"error":false,"cmd":"getVoltage","unit":"V"}"#),
        Err(ReplyError::Missing { field: "voltage" })
    );
    assert_eq!(
        Reply::parse(br#"{"error":false,"cmd":"getVoltage","voltage":[1,2]}"#),
        Err(ReplyError::Invalid {
            field: "voltage",
            reason: "expected 3 numbers or nulls"
        })
    );
    assert_eq!(
        Reply::parse(br#"{"error":false,"cmd":"stop","msg":"Received stop command"}"#),
        Err(ReplyError::Missing {
            field: "sample_duration"
        })
    );
    assert_eq!(
        Reply::parse(br#"{"error":false,"cmd":"log","msg":"Log Level set to: loud"}"#)
            .map_err(|e| e.to_string()),
        Err(s("Invalid msg: unknown log level"))
    );
}

// ---- proptest ------------------------------------------------------------------------------------

fn f64x3() -> impl Strategy<Value = [f64; 3]> {
    proptest::array::uniform3(finite_f64())
}

fn ssids() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("[A-Za-z0-9_-][A-Za-z0-9 _-]{0,10}[A-Za-z0-9_-]", 0..5)
}

fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

fn stream_type() -> impl Strategy<Value = StreamType> {
    prop_oneof![
        Just(StreamType::Serial),
        Just(StreamType::Tcp),
        any::<u16>().prop_map(|port| StreamType::Udp { port }),
        Just(StreamType::Mqtt),
        Just(StreamType::Ffmpeg),
    ]
}

fn daily() -> impl Strategy<Value = DailyRestart> {
    prop_oneof![
        Just(DailyRestart::Disabled),
        (0u8..24, 0u8..60).prop_map(|(hour, minute)| DailyRestart::At { hour, minute }),
    ]
}

const MS_RANGE: std::ops::Range<i64> = -1_000_000_000_000_000..1_000_000_000_000_000;

fn info() -> impl Strategy<Value = InfoReply> {
    (
        (
            text(),
            text(),
            text(),
            text(),
            text(),
            text(),
            text(),
            text(),
        ),
        (
            any::<u32>(),
            any::<u64>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        (
            f64x3(),
            daily(),
            proptest::array::uniform6(finite_f32()),
            ssids(),
            text(),
            any::<i32>(),
            text(),
        ),
    )
        .prop_map(
            |(
                (version, compiled, sys_time, name, ip, mqtt_server, stream_server, time_server),
                (sampling_rate_hz, buffer_size_bytes, psram, rtc, busy),
                (energy_wh, daily_reset, calibration, ssids, ssid, rssi_dbm, bssid),
            )| InfoReply {
                version,
                compiled,
                sys_time,
                name,
                ip,
                mqtt_server,
                stream_server,
                time_server,
                sampling_rate_hz,
                buffer_size_bytes: buffer_size_bytes >> 1, // i64 range
                psram,
                rtc,
                busy,
                energy_wh,
                daily_reset,
                calibration,
                ssids,
                ssid,
                rssi_dbm,
                bssid,
            },
        )
}

fn quality() -> impl Strategy<Value = QualityReply> {
    (
        (phases(), phases(), phases(), phases()),
        (phases(), phases(), phases(), phases()),
        (f64x3(), f64x3(), proptest::option::of(finite_f32())),
    )
        .prop_map(|((a, b, c, d), (e, f, g, h), (i, j, k))| QualityReply {
            thd_v_pct: a,
            thd_i_pct: b,
            nonactive_power_va: c,
            fundamental_reactive_power_var: d,
            power_factor: e,
            line_voltage_v: f,
            vrms_half_cycle_min_v: g,
            vrms_half_cycle_max_v: h,
            energy_import_wh: i,
            energy_export_wh: j,
            frequency_10s_hz: k,
        })
}

fn sample_started() -> impl Strategy<Value = SampleStarted> {
    (
        stream_type(),
        proptest::option::of(
            (any::<u32>(), any::<u32>()).prop_map(|(slot, slots)| Slot { slot, slots }),
        ),
        proptest::sample::select(Measures::ALL.to_vec()),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        any::<bool>(),
        MS_RANGE,
        proptest::option::of(any::<u32>()),
    )
        .prop_map(
            |(stream, slot, measures, cs, rate, prefix, flow, ts, conf)| SampleStarted {
                stream,
                slot,
                measures,
                measurements: None,
                chunk_size_bytes: cs,
                rate_hz: rate,
                prefix,
                flow_control: flow,
                start_ts_ms: ts,
                ntp_confidence_ms: conf,
            },
        )
}

fn stop_stats() -> impl Strategy<Value = StopStats> {
    (
        0u64..(1 << 62),
        0u64..(1 << 62),
        0u64..(1 << 62),
        MS_RANGE,
        MS_RANGE,
        text(),
        finite_f64(),
    )
        .prop_map(|(d, n, sent, a, b, ip, rate)| StopStats {
            sample_duration_ms: d,
            samples: n,
            sent_samples: sent,
            start_ts_ms: a,
            stop_ts_ms: b,
            ip,
            avg_rate_hz: rate,
        })
}

const DEDICATED: [&str; 37] = [
    "info",
    "getPower",
    "getVoltage",
    "getCurrent",
    "getEnergy",
    "getPeriod",
    "getPhaseAngle",
    "getQuality",
    "log",
    "mdns",
    "addWifi",
    "delWifi",
    "calibration",
    "resetEnergy",
    "ntp",
    "timeServer",
    "mqttServer",
    "streamServer",
    "dailyRestart",
    "restart",
    "factoryReset",
    "basicReset",
    "clearLog",
    "getLog",
    "sample",
    "stop",
    "reqSamples",
    "cts",
    "timezone",
    "auth",
    "setToken",
    "setNominal",
    "getPQ",
    "getEvents",
    "clearEvents",
    "homeAssistant",
    "",
];

fn nominal_set() -> impl Strategy<Value = NominalSet> {
    let volts = prop_oneof![
        (50u16..=1000).prop_map(f32::from),
        50f32..=1000.0,
        finite_f32(),
    ];
    let hz = prop_oneof![Just(NominalFrequency::Hz50), Just(NominalFrequency::Hz60)];
    fn in_force<T: Clone + std::fmt::Debug + 'static>(
        v: impl Strategy<Value = T> + Clone + 'static,
    ) -> impl Strategy<Value = NominalInForce<T>> {
        prop_oneof![
            v.clone().prop_map(NominalInForce::Fixed),
            proptest::option::of(v).prop_map(NominalInForce::Auto),
        ]
    }
    (in_force(volts), in_force(hz)).prop_map(|(voltage_v, frequency)| NominalSet {
        voltage_v,
        frequency,
    })
}

/// Valid discovery prefixes as the meter echoes them.
fn prefix() -> impl Strategy<Value = String> {
    proptest::collection::vec("[ -\"$-*,-.0-~]{1,12}", 1..=3).prop_map(|l| l.join("/"))
}

fn reply() -> impl Strategy<Value = Reply> {
    let log_row = "\\[[ADIWE]\\][0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}: [A-Za-z0-9 .,:-]{0,30}[A-Za-z0-9]";
    prop_oneof![
        info().prop_map(|i| Reply::Info(Box::new(i))),
        (phases(), phases(), phases()).prop_map(|(a, r, s)| Reply::Power {
            active_w: a,
            reactive_var: r,
            apparent_va: s
        }),
        phases().prop_map(|voltage_v| Reply::Voltage { voltage_v }),
        phases().prop_map(|current_ma| Reply::Current { current_ma }),
        (f64x3(), any::<i64>(), text(), any::<u32>()).prop_map(|(e, ts, start, days)| {
            Reply::Energy {
                energy_wh: e,
                start_ts_s: ts,
                start,
                days,
            }
        }),
        phases().prop_map(|frequency_hz| Reply::Period { frequency_hz }),
        phases().prop_map(|phase_deg| Reply::PhaseAngle { phase_deg }),
        quality().prop_map(|q| Reply::Quality(Box::new(q))),
        proptest::sample::select(LogLevel::ALL.to_vec())
            .prop_map(|level| Reply::LogLevelSet { level }),
        text().prop_map(|name| Reply::Mdns { name }),
        (text(), ssids()).prop_map(|(ssid, ssids)| Reply::AddWifi { ssid, ssids }),
        (text(), ssids()).prop_map(|(ssid, ssids)| Reply::DelWifi { ssid, ssids }),
        proptest::array::uniform6(finite_f32()).prop_map(|factors| Reply::Calibration { factors }),
        (f64x3(), text()).prop_map(|(energy_wh, at)| Reply::ResetEnergy { energy_wh, at }),
        text().prop_map(|current_time| Reply::Ntp { current_time }),
        (
            proptest::sample::select(vec![ServerKind::Time, ServerKind::Mqtt, ServerKind::Stream]),
            text()
        )
            .prop_map(|(kind, server)| Reply::ServerSet { kind, server }),
        daily().prop_map(Reply::DailyRestart),
        proptest::sample::select(vec![
            RestartKind::Restart,
            RestartKind::FactoryReset,
            RestartKind::BasicReset
        ])
        .prop_map(|kind| Reply::Restarting { kind }),
        Just(Reply::ClearLog),
        proptest::collection::vec(log_row, 0..8).prop_map(|rows| Reply::GetLogDump { rows }),
        Just(Reply::GetLogDone),
        sample_started().prop_map(Reply::SampleStarted),
        stop_stats().prop_map(Reply::Stopped),
        Just(Reply::ReqSamplesDone),
        any::<bool>().prop_map(|value| Reply::Cts { value }),
        (-720i16..=840).prop_map(|offset_min| Reply::Timezone { offset_min }),
        Just(Reply::Auth),
        any::<bool>().prop_map(|removed| Reply::SetToken { removed }),
        nominal_set().prop_map(Reply::Nominal),
        aggregate().prop_map(|a| Reply::Pq(Box::new(a))),
        (proptest::collection::vec(event(), 0..=16), any::<u32>())
            .prop_map(|(events, next)| Reply::Events { events, next }),
        Just(Reply::ClearEvents),
        (any::<bool>(), prefix())
            .prop_map(|(enabled, prefix)| Reply::HomeAssistant { enabled, prefix }),
        text()
            .prop_filter("no dedicated variant", |c| !DEDICATED.contains(&c.as_str()))
            .prop_map(|cmd| Reply::Ack { cmd }),
        (
            proptest::option::of(text()),
            text(),
            proptest::option::of(Just(BUSY))
        )
            .prop_map(|(cmd, msg, state)| Reply::Error { cmd, msg, state }),
        Just(Reply::SetupDone),
    ]
}

fn same(a: &Reply, b: &Reply) -> bool {
    // f32/f64 compare bitwise through the canonical text, so -0.0 == -0.0 and values must match
    // exactly; the typed compare is the real check.
    a == b && a.to_json() == b.to_json()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn to_json_parse_round_trip(r in reply()) {
        let parsed = Reply::parse(r.to_json().as_bytes());
        prop_assert!(parsed.as_ref().is_ok_and(|p| same(p, &r)), "{:?}\n{}\n{:?}", r, r.to_json(), parsed);
        let line = r.to_line();
        prop_assert!(line.starts_with("Info:") && line.ends_with("\r\n"));
        prop_assert_eq!(Reply::parse(line.as_bytes()), Ok(r));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = Reply::parse(&bytes);
    }

    #[test]
    fn mangled_replies_never_panic(r in reply(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = r.to_json().into_bytes();
        if !bytes.is_empty() {
            let i = cut.index(bytes.len());
            bytes[i] = byte;
            let _ = Reply::parse(&bytes);
            bytes.truncate(i);
            let _ = Reply::parse(&bytes);
        }
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = format!(
        r#"{{"cmd":"getVoltage","voltage":{}1{}}}"#,
        "[".repeat(10),
        "]".repeat(10)
    );
    assert_eq!(Reply::parse(deep.as_bytes()), Err(ReplyError::Json));
    let huge = "[".repeat(100_000);
    assert_eq!(Reply::parse(huge.as_bytes()), Err(ReplyError::Json));
}

/// Found by the `reply` fuzz target: a getLog row with a carriage return or a raw newline inside must
/// read back as the encoder writes it (`\r` dropped, a newline separates rows), so the round trip holds.
#[test]
fn log_dump_rows_with_cr_and_newline_round_trip() {
    let json = br#"{"cmd":"log","msg":"*** LOGFile *** //n[E]03/02 11:26:20: Cannot connect to MQTT Serv\r -//nA\nB//n*** LOGFile *** "}"#;
    let reply = Reply::parse(json).unwrap();
    assert_eq!(
        reply,
        Reply::GetLogDump {
            rows: vec![
                "[E]03/02 11:26:20: Cannot connect to MQTT Serv -".to_string(),
                "A".to_string(),
                "B".to_string(),
            ]
        }
    );
    let line = reply.to_line();
    let json = line.strip_prefix("Info:").unwrap().trim_end();
    assert_eq!(Reply::parse(json.as_bytes()).unwrap(), reply);
}

/// Found by the `reply` fuzz target in CI: a carriage return inside `//n` (`//\rn`) is dropped before
/// the rows are split, so it separates rows already on the first read; dropped after the split, the
/// row kept a `//n` that became a separator only when it was written and read again.
#[test]
fn log_dump_separator_with_cr_inside_splits_on_first_read() {
    let json = br#"{"cmd":"log","msg":"*** LOGFile *** //nA //\rnB//nC\r*:* LOGFile *** "}"#;
    let reply = Reply::parse(json).unwrap();
    assert_eq!(
        reply,
        Reply::GetLogDump {
            rows: vec![
                "A".to_string(),
                "B".to_string(),
                "C*:* LOGFile ***".to_string()
            ]
        }
    );
    let line = reply.to_line();
    let json = line.strip_prefix("Info:").unwrap().trim_end();
    assert_eq!(Reply::parse(json.as_bytes()).unwrap(), reply);
}

/// §11/§12 replies: read in any key order, without `cmd` by their texts, `next` defaulting to the
/// last listed id; shape errors name the field.
#[test]
fn extension_replies_tolerant_and_strict() {
    let dip = golden_pq("event_dip");
    let swell = golden_pq("event_swell");
    let events = |json: &str| match Reply::parse(json.as_bytes()) {
        Ok(Reply::Events { events, next }) => {
            (events.iter().map(|e| e.id).collect::<Vec<_>>(), next)
        }
        other => panic!("{json}: {other:?}"),
    };
    assert_eq!(
        events(&format!(
            r#"{{"next":"9","cmd":"getEvents","events":[{swell},{dip}],"error":false}}"#
        )),
        (vec![8, 7], 9)
    );
    assert_eq!(
        events(&format!(
            r#"{{"cmd":"getEvents","events":[{dip},{swell}]}}"#
        )),
        (vec![7, 8], 8)
    );
    assert_eq!(events(r#"{"cmd":"getEvents","events":null}"#), (vec![], 0));
    assert_eq!(
        Reply::parse(br#"{"cmd":"getEvents","events":[{"id":1,"type":"dip"}]}"#),
        Err(ReplyError::Missing { field: "phases" })
    );
    assert_eq!(
        Reply::parse(br#"{"cmd":"getEvents","events":[1]}"#),
        Err(ReplyError::Invalid {
            field: "events",
            reason: "expected an array of event objects"
        })
    );
    assert_eq!(
        Reply::parse(br#"{"cmd":"getEvents","events":[],"next":-1}"#),
        Err(ReplyError::Invalid {
            field: "next",
            reason: "expected an event id 0-4294967295"
        })
    );
    // getPQ: the aggregate's keys in any order around error/cmd; a missing key is named.
    let pq = golden_pq("pq_3s");
    let shuffled = format!(
        r#"{{"cmd":"getPQ",{},"error":false}}"#,
        &pq[1..pq.len() - 1]
    );
    assert_eq!(
        Reply::parse(shuffled.as_bytes()),
        Ok(Reply::Pq(Box::new(
            PqAggregate::parse(pq.as_bytes()).unwrap()
        )))
    );
    assert_eq!(
        Reply::parse(br#"{"error":false,"cmd":"getPQ","interval":"3s"}"#),
        Err(ReplyError::Missing { field: "nominal" })
    );
    // Texts without cmd (old-style replies), and their strict forms.
    assert_eq!(
        Reply::parse(br#"{"error":false,"msg":"Nominal set to auto (230 V), 50 Hz"}"#),
        Ok(Reply::Nominal(NominalSet {
            voltage_v: NominalInForce::Auto(Some(230.0)),
            frequency: NominalInForce::Fixed(NominalFrequency::Hz50),
        }))
    );
    assert_eq!(
        Reply::parse(br#"{"error":false,"msg":"Events cleared"}"#),
        Ok(Reply::ClearEvents)
    );
    assert_eq!(
        Reply::parse(br#"{"msg":"Home Assistant discovery off (homeassistant)"}"#),
        Ok(Reply::HomeAssistant {
            enabled: false,
            prefix: s("homeassistant")
        })
    );
    for bad in [
        r#"{"cmd":"setNominal","msg":"Nominal set to 230 V, 55 Hz"}"#,
        r#"{"cmd":"setNominal","msg":"Nominal set to 230 V"}"#,
        r#"{"cmd":"setNominal","msg":"Nominal set to auto [230 V], 50 Hz"}"#,
        r#"{"cmd":"homeAssistant","msg":"Home Assistant discovery maybe (x)"}"#,
        r#"{"cmd":"homeAssistant","msg":"Home Assistant discovery on"}"#,
    ] {
        assert!(
            matches!(
                Reply::parse(bad.as_bytes()),
                Err(ReplyError::Invalid { field: "msg", .. })
            ),
            "{bad}"
        );
    }
    assert_eq!(
        Reply::pq_not_ready(PqInterval::Basic).message().as_deref(),
        Some("No complete 200ms interval yet")
    );
}
