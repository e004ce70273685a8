//! Commands: golden texts both ways, exact error texts, leniency, proptest round trips and
//! no-panic on arbitrary bytes.

use proptest::prelude::*;
use smartmeter::wire::command::{
    CalibrationArgs, Command, CommandError, DailyRestart, EnergyReset, Envelope,
    HomeAssistantSettings, Measures, MqttServerSettings, NominalFrequency, NominalSettings,
    NominalValue, PqInterval, SampleRequest, ServerAddr, ServerKind, Slot, StreamType,
    WifiCredentials,
};
use smartmeter::wire::log::LogLevel;

const GOLDEN: &str = include_str!("golden/commands.txt");

fn golden() -> Vec<(&'static str, &'static str)> {
    GOLDEN
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split_once(' ').expect("golden line is `name text`"))
        .collect()
}

fn host(h: &str, port: Option<u16>) -> ServerAddr {
    ServerAddr::Host {
        host: h.to_string(),
        port,
    }
}

fn nominal(voltage_v: NominalValue<f32>, frequency: NominalValue<NominalFrequency>) -> Command {
    Command::SetNominal(NominalSettings {
        voltage_v,
        frequency,
    })
}

/// The typed value of every golden case.
fn typed(name: &str) -> Command {
    match name {
        "info" => Command::Info,
        "getPower" => Command::GetPower,
        "getVoltage" => Command::GetVoltage,
        "getCurrent" => Command::GetCurrent,
        "getEnergy" => Command::GetEnergy,
        "getPeriod" => Command::GetPeriod,
        "getPhaseAngle" => Command::GetPhaseAngle,
        "mdns" => Command::Mdns {
            name: "smartmeterX".into(),
        },
        "addWifi" => Command::AddWifi(WifiCredentials {
            ssid: "Test".into(),
            pwd: "TestPwd".into(),
        }),
        "addWifi_open" => Command::AddWifi(WifiCredentials {
            ssid: "Cafe \"Zur Post\"".into(),
            pwd: String::new(),
        }),
        "delWifi" => Command::DelWifi {
            ssid: "Test".into(),
        },
        "calibration" => Command::Calibration(CalibrationArgs::Factors([1.0; 6])),
        "calibration_factors" => {
            Command::Calibration(CalibrationArgs::Factors([1.01, 0.99, 1.5, 0.5, 2.0, 1.25]))
        }
        "calibration_uniform" => {
            Command::Calibration(CalibrationArgs::Uniform { v: 1.02, i: 0.98 })
        }
        "restart" => Command::Restart,
        "dailyRestart" => Command::DailyRestart(DailyRestart::At {
            hour: 3,
            minute: 30,
        }),
        "dailyRestart_disabled" => Command::DailyRestart(DailyRestart::Disabled),
        "factoryReset" => Command::FactoryReset,
        "basicReset" => Command::BasicReset,
        "resetEnergy" => Command::ResetEnergy(EnergyReset::default()),
        "resetEnergy_values" => Command::ResetEnergy(EnergyReset {
            energy_wh: Some([10149.5684, 5101.23238, -4509.21022]),
            start_ts_s: Some(1632140570.068),
        }),
        "sample_tcp" => Command::Sample(SampleRequest::new(StreamType::Tcp)),
        "sample_udp_full" => Command::Sample(SampleRequest {
            stream: StreamType::Udp { port: 54323 },
            measures: Measures::PowerPQ,
            rate_hz: 50,
            prefix: false,
            flow_control: true,
            start_time: Some(1614697441.5),
            slot: Some(Slot { slot: 1, slots: 3 }),
            ntp_conf_ms: Some(20),
        }),
        "sample_mqtt_l2" => Command::Sample(SampleRequest {
            measures: Measures::VoltCurrentL2,
            rate_hz: 1,
            ..SampleRequest::new(StreamType::Mqtt)
        }),
        "sample_ffmpeg_l1" => Command::Sample(SampleRequest {
            measures: Measures::VoltCurrentL1,
            rate_hz: 32000,
            prefix: false,
            ..SampleRequest::new(StreamType::Ffmpeg)
        }),
        "sample_serial_l3" => Command::Sample(SampleRequest {
            measures: Measures::VoltCurrentL3,
            rate_hz: 4000,
            ..SampleRequest::new(StreamType::Serial)
        }),
        "sample_rms" => Command::Sample(SampleRequest {
            measures: Measures::Rms,
            rate_hz: 10,
            ..SampleRequest::new(StreamType::Tcp)
        }),
        "reqSamples" => Command::ReqSamples { samples: 2000 },
        "cts" => Command::Cts { value: false },
        "stop" => Command::Stop,
        "log" => Command::Log {
            level: LogLevel::Warning,
        },
        "log_all" => Command::Log {
            level: LogLevel::All,
        },
        "clearLog" => Command::ClearLog,
        "getLog" => Command::GetLog,
        "mqttServer" => Command::MqttServer(MqttServerSettings {
            server: host("192.168.0.13", None),
            ..Default::default()
        }),
        "mqttServer_full" => Command::MqttServer(MqttServerSettings {
            server: host("broker.local", Some(8883)),
            user: Some("meter".into()),
            pwd: Some("s3cret".into()),
            port: Some(8883),
        }),
        "streamServer" => Command::StreamServer {
            server: host("fe80::1", Some(54322)),
        },
        "streamServer_disabled" => Command::StreamServer {
            server: ServerAddr::Disabled,
        },
        "ntp" => Command::Ntp,
        "timeServer" => Command::TimeServer {
            server: host("time.google.com", None),
        },
        "timeServer_v6" => Command::TimeServer {
            server: host("2001:db8::123", None),
        },
        "availability" => Command::Availability,
        "keepalive" => Command::Keepalive,
        "getQuality" => Command::GetQuality,
        "timezone" => Command::Timezone { offset_min: -330 },
        "auth" => Command::Auth {
            token: "s3cret".into(),
        },
        "setToken" => Command::SetToken {
            token: "s3cret".into(),
        },
        "setNominal" => nominal(
            NominalValue::Fixed(230.0),
            NominalValue::Fixed(NominalFrequency::Hz50),
        ),
        "setNominal_auto" => nominal(NominalValue::Auto, NominalValue::Auto),
        "setNominal_fraction" => nominal(
            NominalValue::Fixed(120.5),
            NominalValue::Fixed(NominalFrequency::Hz60),
        ),
        "setNominal_frequency" => nominal(
            NominalValue::Keep,
            NominalValue::Fixed(NominalFrequency::Hz60),
        ),
        "getPQ" => Command::GetPq {
            interval: PqInterval::ThreeSeconds,
        },
        "getPQ_10min" => Command::GetPq {
            interval: PqInterval::TenMinutes,
        },
        "getEvents" => Command::GetEvents { since: 0 },
        "getEvents_since" => Command::GetEvents { since: 17 },
        "clearEvents" => Command::ClearEvents,
        "homeAssistant" => Command::HomeAssistant(HomeAssistantSettings {
            enable: Some(true),
            prefix: Some("homeassistant".into()),
        }),
        "homeAssistant_off" => Command::HomeAssistant(HomeAssistantSettings {
            enable: Some(false),
            prefix: None,
        }),
        other => panic!("golden case {other} has no typed value"),
    }
}

#[test]
fn golden_commands_both_ways() {
    let cases = golden();
    assert_eq!(cases.len(), 58);
    for (name, text) in &cases {
        let cmd = typed(name);
        assert_eq!(cmd.encode(), *text, "encode {name}");
        assert_eq!(
            Command::parse(text.as_bytes()),
            Ok(cmd.clone()),
            "parse {name}"
        );
        let line = format!("{text}\r\n");
        assert_eq!(
            Command::parse(line.as_bytes()),
            Ok(cmd),
            "parse line {name}"
        );
    }
}

#[test]
fn golden_covers_every_command_name() {
    let names: Vec<&str> = golden().iter().map(|(n, _)| typed(n).name()).collect();
    for n in Command::NAMES {
        assert!(names.contains(&n), "no golden case for {n}");
    }
}

#[test]
fn measures_table_of_protocol() {
    let table = [
        (
            Measures::VoltCurrent3,
            "v_l1,i_l1,v_l2,i_l2,v_l3,i_l3",
            "v,i,v,i,v,i",
            "V,mA,V,mA,V,mA",
            6,
        ),
        (Measures::VoltCurrentL1, "v_l1,i_l1", "v,i_L1", "V,mA", 2),
        (Measures::VoltCurrentL2, "v_l2,i_l2", "v,i_L2", "V,mA", 2),
        (Measures::VoltCurrentL3, "v_l3,i_l3", "v,i_L3", "V,mA", 2),
        (
            Measures::PowerPQ,
            "p_l1,p_l2,p_l3,q_l1,q_l2,q_l3",
            "p,p,p,q,q,q",
            "W,W,W,VAR,VAR,VAR",
            6,
        ),
        (
            Measures::Rms,
            "vrms_l1,vrms_l2,vrms_l3,irms_l1,irms_l2,irms_l3",
            "v,v,v,i,i,i_RMS",
            "V,V,V,mA,mA,mA",
            6,
        ),
    ];
    for (m, channels, reported, unit, count) in table {
        assert_eq!(m.channels(), channels);
        assert_eq!(m.reported(), reported);
        assert_eq!(m.unit(), unit);
        assert_eq!(m.count(), count);
        assert_eq!(m.channels().split(',').count(), count);
        assert_eq!(Measures::parse(reported), Some(m));
    }
    for (spelling, m) in [
        ("", Measures::VoltCurrent3),
        ("v,i", Measures::VoltCurrent3),
        ("p,q", Measures::PowerPQ),
        ("v,i_RMS", Measures::Rms),
        (" v, i ", Measures::VoltCurrent3),
    ] {
        assert_eq!(Measures::parse(spelling), Some(m), "{spelling:?}");
    }
    assert!(Measures::PowerPQ.is_derived() && Measures::Rms.is_derived());
    assert!(!Measures::VoltCurrentL1.is_derived());
    for bad in ["v", "v,i_L4", "p,q,v", "i,v", "v,i,v,i,v,i,v,i,v,i,v,i,v,i"] {
        assert_eq!(Measures::parse(bad), None, "{bad}");
    }
}

/// Every error text of docs/protocol.md that the parser produces, with the `cmd` the reply echoes.
#[test]
fn exact_error_texts() {
    let long = format!(
        "{{\"cmd\":\"mdns\",\"payload\":{{\"name\":\"{}\"}}}}",
        "a".repeat(600)
    );
    let json_msg = r#"JSON format error, syntax: {"cmd":<cmdName>, "[payload":{<data>}]}}"#;
    let cases: Vec<(&[u8], &str, Option<&str>)> = vec![
        (long.as_bytes(), "Line too long (max 600 bytes)", None),
        (b"hello", json_msg, None),
        (b"{\"cmd\":5}", json_msg, None),
        (b"{\"level\":\"info\"}", json_msg, None),
        (b"[\"cmd\",\"info\"]", json_msg, None),
        (b"{\"cmd\":\"info\",\"cmd\":\"info\"}", json_msg, None),
        (b"{\"cmd\":\"info\"} x", json_msg, None),
        (b"{\"cmd\":\"foo\"}", "unknown command", Some("foo")),
        (
            b"{\"cmd\":\"sample\"}",
            "Not a valid \"sample\" command, \"type\" missing",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"rate\":10}}",
            "Not a valid \"sample\" command, \"type\" missing",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"SPI\"}}",
            "Unsupported sampling type: SPI",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"measures\":\"x,y\"}}",
            "Unsupported measures: x,y",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"rate\":32001}}",
            "SamplingRate could not be set to 32001",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"rate\":0}}",
            "SamplingRate could not be set to 0",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"rate\":100.5}}",
            "SamplingRate could not be set to 100.5",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"measures\":\"p,q\",\"rate\":51}}",
            "SamplingRate could not be set to 51",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"measures\":\"v,i_RMS\"}}",
            "SamplingRate could not be set to 8000",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"UDP\",\"port\":70000}}",
            "Unsupported UDP port: 70000",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"UDP\",\"port\":0}}",
            "Unsupported UDP port: 0",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"slot\":[3,3]}}",
            "Invalid slot",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"slot\":[1]}}",
            "Invalid slot",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"flowCtr\":\"yes\"}}",
            "Invalid flowCtr: expected true or false",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"prefix\":1}}",
            "Invalid prefix: expected true or false",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"time\":\"soon\"}}",
            "Invalid time: expected Unix seconds",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"ntpConf\":-5}}",
            "Invalid ntpConf: expected milliseconds > 0",
            Some("sample"),
        ),
        (
            b"{\"cmd\":\"reqSamples\",\"samples\":9}",
            "Samples must be 10-2000",
            Some("reqSamples"),
        ),
        (
            b"{\"cmd\":\"reqSamples\",\"samples\":2001}",
            "Samples must be 10-2000",
            Some("reqSamples"),
        ),
        (
            b"{\"cmd\":\"reqSamples\"}",
            "Samples must be 10-2000",
            Some("reqSamples"),
        ),
        (
            b"{\"cmd\":\"mdns\",\"payload\":{\"name\":\"bad_name\"}}",
            "MDNS name must be 1-24 characters [A-Za-z0-9-]",
            Some("mdns"),
        ),
        (
            b"{\"cmd\":\"mdns\",\"payload\":{\"name\":\"\"}}",
            "MDNS name must be 1-24 characters [A-Za-z0-9-]",
            Some("mdns"),
        ),
        (
            b"{\"cmd\":\"mdns\",\"payload\":{\"name\":\"abcdefghijklmnopqrstuvwxy\"}}",
            "MDNS name must be 1-24 characters [A-Za-z0-9-]",
            Some("mdns"),
        ),
        (
            b"{\"cmd\":\"mdns\"}",
            "MDNS name must be 1-24 characters [A-Za-z0-9-]",
            Some("mdns"),
        ),
        (
            b"{\"cmd\":\"addWifi\",\"payload\":{\"ssid\":\"123456789012345678901234567890123\",\"pwd\":\"x\"}}",
            "SSID or password too long (max 32, 64)",
            Some("addWifi"),
        ),
        (
            b"{\"cmd\":\"addWifi\",\"payload\":{\"ssid\":\"a\",\"pwd\":\"12345678901234567890123456789012345678901234567890123456789012345\"}}",
            "SSID or password too long (max 32, 64)",
            Some("addWifi"),
        ),
        (
            b"{\"cmd\":\"addWifi\",\"payload\":{\"pwd\":\"x\"}}",
            "Invalid ssid: missing",
            Some("addWifi"),
        ),
        (
            b"{\"cmd\":\"delWifi\",\"payload\":{}}",
            "Invalid ssid: missing",
            Some("delWifi"),
        ),
        (
            b"{\"cmd\":\"calibration\",\"cal\":[1,1,3,1,1,1]}",
            "Calibration parameter cal[2]: 3 not allowed [0.5-2.0]",
            Some("calibration"),
        ),
        (
            b"{\"cmd\":\"calibration\",\"cal\":[1,1,1,1,1,0.25]}",
            "Calibration parameter cal[5]: 0.25 not allowed [0.5-2.0]",
            Some("calibration"),
        ),
        (
            b"{\"cmd\":\"calibration\",\"calV\":1.0,\"calI\":2.5}",
            "Calibration parameter cal[1]: 2.5 not allowed [0.5-2.0]",
            Some("calibration"),
        ),
        (
            b"{\"cmd\":\"calibration\",\"cal\":[1,1,1]}",
            "Invalid cal: expected an array of 6 factors",
            Some("calibration"),
        ),
        (
            b"{\"cmd\":\"calibration\"}",
            "Invalid cal: missing",
            Some("calibration"),
        ),
        (
            b"{\"cmd\":\"log\"}",
            "Not a valid Log level cmd, level missing",
            Some("log"),
        ),
        (
            b"{\"cmd\":\"log\",\"level\":\"verbose\"}",
            "Unknown log level: verbose",
            Some("log"),
        ),
        (
            b"{\"cmd\":\"dailyRestart\",\"hour\":3}",
            "Missing hour/minute",
            Some("dailyRestart"),
        ),
        (
            b"{\"cmd\":\"dailyRestart\",\"hour\":24,\"minute\":0}",
            "Hour must be in 24h format, -1 to disable",
            Some("dailyRestart"),
        ),
        (
            b"{\"cmd\":\"dailyRestart\",\"hour\":-2,\"minute\":0}",
            "Hour must be in 24h format, -1 to disable",
            Some("dailyRestart"),
        ),
        (
            b"{\"cmd\":\"dailyRestart\",\"hour\":1,\"minute\":60}",
            "Minute must be -1<min<60, -1 to disable",
            Some("dailyRestart"),
        ),
        (
            b"{\"cmd\":\"timeServer\"}",
            "TimeServer address required in payload with key server",
            Some("timeServer"),
        ),
        (
            b"{\"cmd\":\"mqttServer\",\"payload\":{}}",
            "MQTTServer address required in payload with key server",
            Some("mqttServer"),
        ),
        (
            b"{\"cmd\":\"streamServer\",\"payload\":{\"srv\":\"x\"}}",
            "StreamServer address required in payload with key server",
            Some("streamServer"),
        ),
        (
            b"{\"cmd\":\"streamServer\",\"payload\":{\"server\":\"a b\"}}",
            "Invalid server: not a host name or IP literal",
            Some("streamServer"),
        ),
        (
            b"{\"cmd\":\"timeServer\",\"payload\":{\"server\":\"ntp:0\"}}",
            "Invalid server: port must be 1-65535",
            Some("timeServer"),
        ),
        (
            b"{\"cmd\":\"mqttServer\",\"payload\":{\"server\":\"x\",\"port\":0}}",
            "Invalid port: must be 1-65535",
            Some("mqttServer"),
        ),
        (
            b"{\"cmd\":\"cts\"}",
            "Invalid value: missing",
            Some("cts"),
        ),
        (
            b"{\"cmd\":\"resetEnergy\",\"energy\":[1,2]}",
            "Invalid energy: expected [L1,L2,L3] in Wh",
            Some("resetEnergy"),
        ),
        (
            b"{\"cmd\":\"timezone\",\"offset\":900}",
            "Invalid offset: minutes east of UTC, -720 to 840",
            Some("timezone"),
        ),
        (
            b"{\"cmd\":\"auth\"}",
            "Invalid token: missing",
            Some("auth"),
        ),
        // §11 (docs/protocol.md §11.1: `Invalid voltage: <reason>`, `Invalid frequency: <reason>`).
        (
            b"{\"cmd\":\"setNominal\",\"voltage\":49.9,\"frequency\":50}",
            "Invalid voltage: expected 50 to 1000 V, or 0 for auto",
            Some("setNominal"),
        ),
        (
            b"{\"cmd\":\"setNominal\",\"voltage\":1000.5}",
            "Invalid voltage: expected 50 to 1000 V, or 0 for auto",
            Some("setNominal"),
        ),
        (
            b"{\"cmd\":\"setNominal\",\"voltage\":\"high\"}",
            "Invalid voltage: expected 50 to 1000 V, or 0 for auto",
            Some("setNominal"),
        ),
        (
            b"{\"cmd\":\"setNominal\",\"voltage\":-230}",
            "Invalid voltage: expected 50 to 1000 V, or 0 for auto",
            Some("setNominal"),
        ),
        (
            b"{\"cmd\":\"setNominal\",\"voltage\":230,\"frequency\":55}",
            "Invalid frequency: expected 50 or 60 Hz, or 0 for auto",
            Some("setNominal"),
        ),
        (
            b"{\"cmd\":\"setNominal\",\"frequency\":50.5}",
            "Invalid frequency: expected 50 or 60 Hz, or 0 for auto",
            Some("setNominal"),
        ),
        (
            b"{\"cmd\":\"getPQ\",\"interval\":\"1h\"}",
            "Invalid interval: expected 200ms, 3s, 10min or 2h",
            Some("getPQ"),
        ),
        (
            b"{\"cmd\":\"getPQ\",\"interval\":3}",
            "Invalid interval: expected 200ms, 3s, 10min or 2h",
            Some("getPQ"),
        ),
        (
            b"{\"cmd\":\"getEvents\",\"since\":-1}",
            "Invalid since: expected an event id 0-4294967295",
            Some("getEvents"),
        ),
        (
            b"{\"cmd\":\"getEvents\",\"since\":4294967296}",
            "Invalid since: expected an event id 0-4294967295",
            Some("getEvents"),
        ),
        (
            b"{\"cmd\":\"getEvents\",\"since\":1.5}",
            "Invalid since: expected an event id 0-4294967295",
            Some("getEvents"),
        ),
        (
            b"{\"cmd\":\"homeAssistant\",\"enable\":\"yes\"}",
            "Invalid enable: expected true or false",
            Some("homeAssistant"),
        ),
        (
            b"{\"cmd\":\"homeAssistant\",\"prefix\":\"ha/#\"}",
            "Invalid prefix: expected 1-64 bytes of MQTT topic levels without + or #",
            Some("homeAssistant"),
        ),
        (
            b"{\"cmd\":\"homeAssistant\",\"prefix\":\"ha/\"}",
            "Invalid prefix: expected 1-64 bytes of MQTT topic levels without + or #",
            Some("homeAssistant"),
        ),
        (
            b"{\"cmd\":\"homeAssistant\",\"prefix\":\"\"}",
            "Invalid prefix: expected 1-64 bytes of MQTT topic levels without + or #",
            Some("homeAssistant"),
        ),
        (
            b"{\"cmd\":\"homeAssistant\",\"prefix\":true}",
            "Invalid prefix: expected 1-64 bytes of MQTT topic levels without + or #",
            Some("homeAssistant"),
        ),
    ];
    for (line, msg, cmd) in cases {
        let err = Command::parse(line).expect_err(&String::from_utf8_lossy(line));
        assert_eq!(err.to_string(), msg, "{}", String::from_utf8_lossy(line));
        assert_eq!(err.cmd(), cmd, "{}", String::from_utf8_lossy(line));
    }
    let host = "h".repeat(64);
    let err = Command::parse(
        format!("{{\"cmd\":\"timeServer\",\"payload\":{{\"server\":\"{host}\"}}}}").as_bytes(),
    );
    assert_eq!(
        err.map_err(|e| e.to_string()),
        Err("Invalid server: host longer than 63 bytes".to_string())
    );
}

#[test]
fn line_limit_is_600_bytes_without_terminator() {
    // Exactly 600 bytes of JSON (padding inside a string of an unknown key) is accepted.
    let base = r#"{"cmd":"info","x":""}"#;
    let pad = "p".repeat(600 - base.len());
    let line = format!(r#"{{"cmd":"info","x":"{pad}"}}"#);
    assert_eq!(line.len(), 600);
    assert_eq!(Command::parse(line.as_bytes()), Ok(Command::Info));
    assert_eq!(
        Command::parse(format!("{line}\r\n").as_bytes()),
        Ok(Command::Info)
    );
    let longer = format!(r#"{{"cmd":"info","x":"{pad}p"}}"#);
    assert_eq!(
        Command::parse(longer.as_bytes()),
        Err(CommandError::LineTooLong)
    );
}

#[test]
fn lenient_forms() {
    let ok: Vec<(&[u8], Command)> = vec![
        (b"  {\"cmd\":\"info\"}  \r\n", Command::Info),
        (b"{ \"cmd\" : \"info\" , \"extra\" : [1,{\"a\":null}] }", Command::Info),
        (b"?", Command::Availability),
        (b"?\r\n", Command::Availability),
        (b"!\n", Command::Keepalive),
        (
            b"{\"payload\":{\"flowCtr\":\"true\",\"prefix\":\"false\",\"rate\":\"8000\",\"type\":\"tcp\"},\"cmd\":\"sample\"}",
            Command::Sample(SampleRequest {
                prefix: false,
                flow_control: true,
                ..SampleRequest::new(StreamType::Tcp)
            }),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"UDP\",\"rate\":1000.0,\"port\":\"5000\",\"slot\":false,\"time\":\"1614697441.25\"}}",
            Command::Sample(SampleRequest {
                rate_hz: 1000,
                start_time: Some(1614697441.25),
                ..SampleRequest::new(StreamType::Udp { port: 5000 })
            }),
        ),
        (
            b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"UDP\"}}",
            Command::Sample(SampleRequest::new(StreamType::Udp { port: 54323 })),
        ),
        (
            b"{\"cmd\":\"calibration\",\"cal\":[1,1,1,1,1,1]}",
            Command::Calibration(CalibrationArgs::Factors([1.0; 6])),
        ),
        (
            b"{\"cmd\":\"calibration\",\"cal\":[1.5,0.5]}",
            Command::Calibration(CalibrationArgs::Uniform { v: 1.5, i: 0.5 }),
        ),
        (
            b"{\"cmd\":\"calibration\",\"calI\":\"0.75\",\"calV\":1}",
            Command::Calibration(CalibrationArgs::Uniform { v: 1.0, i: 0.75 }),
        ),
        (
            b"{\"cmd\":\"dailyRestart\",\"hour\":\"5\",\"minute\":-1}",
            Command::DailyRestart(DailyRestart::Disabled),
        ),
        (
            b"{\"cmd\":\"dailyRestart\",\"payload\":{\"hour\":5,\"minute\":7.0}}",
            Command::DailyRestart(DailyRestart::At { hour: 5, minute: 7 }),
        ),
        (
            b"{\"cmd\":\"log\",\"level\":\"ERROR\"}",
            Command::Log {
                level: LogLevel::Error,
            },
        ),
        (
            b"{\"cmd\":\"mdns\",\"name\":\"top-level\"}",
            Command::Mdns {
                name: "top-level".into(),
            },
        ),
        (b"{\"cmd\":\"cts\",\"value\":\"TRUE\"}", Command::Cts { value: true }),
        (
            b"{\"cmd\":\"reqSamples\",\"samples\":\"10\"}",
            Command::ReqSamples { samples: 10 },
        ),
        (
            b"{\"cmd\":\"streamServer\",\"payload\":{\"server\":\" [::1] \"}}",
            Command::StreamServer {
                server: ServerAddr::Host {
                    host: "::1".into(),
                    port: None,
                },
            },
        ),
        (
            b"{\"cmd\":\"addWifi\",\"payload\":{\"ssid\":\"caf\\u00e9\"}}",
            Command::AddWifi(WifiCredentials {
                ssid: "caf\u{e9}".into(),
                pwd: String::new(),
            }),
        ),
        // §11/§12 extensions: keys in any order, numbers as strings, `"auto"` for 0, defaults.
        (
            b"{\"frequency\":\"60\",\"cmd\":\"setNominal\",\"voltage\":\"auto\"}",
            nominal(NominalValue::Auto, NominalValue::Fixed(NominalFrequency::Hz60)),
        ),
        (
            b"{\"cmd\":\"setNominal\",\"voltage\":230.0,\"frequency\":\"AUTO\"}",
            nominal(NominalValue::Fixed(230.0), NominalValue::Auto),
        ),
        (
            b"{\"cmd\":\"setNominal\",\"payload\":{\"voltage\":50,\"frequency\":60.0}}",
            nominal(NominalValue::Fixed(50.0), NominalValue::Fixed(NominalFrequency::Hz60)),
        ),
        (
            b"{\"cmd\":\"setNominal\",\"voltage\":null}",
            nominal(NominalValue::Keep, NominalValue::Keep),
        ),
        (
            b"{\"cmd\":\"getPQ\"}",
            Command::GetPq {
                interval: PqInterval::ThreeSeconds,
            },
        ),
        (
            b"{\"cmd\":\"getPQ\",\"interval\":\" 2h \"}",
            Command::GetPq {
                interval: PqInterval::TwoHours,
            },
        ),
        (
            b"{\"cmd\":\"getPQ\",\"payload\":{\"interval\":\"200ms\"}}",
            Command::GetPq {
                interval: PqInterval::Basic,
            },
        ),
        (b"{\"cmd\":\"getEvents\"}", Command::GetEvents { since: 0 }),
        (
            b"{\"cmd\":\"getEvents\",\"since\":\"4294967295\"}",
            Command::GetEvents { since: u32::MAX },
        ),
        (b"{\"cmd\":\"getEvents\",\"since\":12.0}", Command::GetEvents { since: 12 }),
        (b" {\"cmd\": \"clearEvents\"} ", Command::ClearEvents),
        (
            b"{\"cmd\":\"homeAssistant\",\"enable\":\"false\"}",
            Command::HomeAssistant(HomeAssistantSettings {
                enable: Some(false),
                prefix: None,
            }),
        ),
        (
            b"{\"cmd\":\"homeAssistant\",\"prefix\":\"ha/discovery\"}",
            Command::HomeAssistant(HomeAssistantSettings {
                enable: None,
                prefix: Some("ha/discovery".into()),
            }),
        ),
        (
            b"{\"cmd\":\"homeAssistant\"}",
            Command::HomeAssistant(HomeAssistantSettings::default()),
        ),
        // The seed's calibration example lacks the final brace.
        (
            b"{\"cmd\":\"calibration\",\"cal\":[1.0,1.0,1.0,1.0,1.0,1.0]",
            Command::Calibration(CalibrationArgs::Factors([1.0; 6])),
        ),
    ];
    for (line, cmd) in ok {
        assert_eq!(
            Command::parse(line),
            Ok(cmd),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn server_addresses() {
    assert_eq!(ServerAddr::parse("-"), Ok(ServerAddr::Disabled));
    let a = ServerAddr::parse("[2001:db8::1]:1884").expect("v6 with port");
    assert_eq!(a.host(), Some("2001:db8::1"));
    assert_eq!(a.port_or(1883), 1884);
    assert_eq!(a.to_string(), "[2001:db8::1]:1884");
    let b = ServerAddr::parse("broker").expect("name");
    assert_eq!(b.port_or(ServerKind::Mqtt.default_port()), 1883);
    assert_eq!(ServerKind::Stream.default_port(), 54322);
    assert_eq!(ServerKind::Time.default_port(), 123);
    assert!(ServerAddr::parse("").is_err());
    assert!(ServerAddr::parse("host:").is_err());
    assert!(ServerAddr::parse("host:65536").is_err());
    assert!(ServerAddr::parse("[::1").is_err());
    assert!(ServerAddr::parse("[zz::1]:5").is_err());
    let settings = MqttServerSettings {
        server: ServerAddr::parse("b:1900").expect("host:port"),
        ..Default::default()
    };
    assert_eq!(settings.effective_port(), 1900);
    assert!(!format!("{settings:?}").contains("1900x"));
}

#[test]
fn secrets_are_not_debug_printed() {
    let w = WifiCredentials {
        ssid: "net".into(),
        pwd: "hunter2".into(),
    };
    assert!(!format!("{w:?}").contains("hunter2"));
    let m = MqttServerSettings {
        pwd: Some("hunter2".into()),
        ..Default::default()
    };
    assert!(!format!("{m:?}").contains("hunter2"));
}

// ---- proptest ------------------------------------------------------------------------------------

fn ascii(max: usize, min: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[ -~]{{{min},{max}}}")).expect("regex")
}

fn finite_f64() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |f| f.is_finite())
}

fn server_addr() -> impl Strategy<Value = ServerAddr> {
    prop_oneof![
        Just(ServerAddr::Disabled),
        ("[a-z0-9][a-z0-9._-]{0,40}", proptest::option::of(1u16..))
            .prop_map(|(host, port)| { ServerAddr::Host { host, port } }),
        (
            "[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,6}",
            proptest::option::of(1u16..)
        )
            .prop_map(|(host, port)| ServerAddr::Host { host, port }),
    ]
}

fn stream_type() -> impl Strategy<Value = StreamType> {
    prop_oneof![
        Just(StreamType::Serial),
        Just(StreamType::Tcp),
        (1u16..).prop_map(|port| StreamType::Udp { port }),
        Just(StreamType::Mqtt),
        Just(StreamType::Ffmpeg),
    ]
}

fn sample_request() -> impl Strategy<Value = SampleRequest> {
    (
        stream_type(),
        proptest::sample::select(Measures::ALL.to_vec()),
        1u32..=32000,
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(1e-3f64..1e10),
        proptest::option::of((1u32.., any::<u32>()).prop_map(|(n, s)| Slot {
            slot: s % n,
            slots: n,
        })),
        proptest::option::of(1u32..),
    )
        .prop_map(
            |(stream, measures, rate, prefix, flow_control, start_time, slot, ntp)| SampleRequest {
                stream,
                measures,
                rate_hz: if measures.is_derived() {
                    rate % 50 + 1
                } else {
                    rate
                },
                prefix,
                flow_control,
                start_time,
                slot,
                ntp_conf_ms: ntp,
            },
        )
}

fn command() -> impl Strategy<Value = Command> {
    let simple = proptest::sample::select(vec![
        Command::Info,
        Command::GetPower,
        Command::GetVoltage,
        Command::GetCurrent,
        Command::GetEnergy,
        Command::GetPeriod,
        Command::GetPhaseAngle,
        Command::Restart,
        Command::FactoryReset,
        Command::BasicReset,
        Command::Stop,
        Command::ClearLog,
        Command::GetLog,
        Command::Ntp,
        Command::Availability,
        Command::Keepalive,
        Command::GetQuality,
        Command::ClearEvents,
    ]);
    prop_oneof![
        simple,
        "[A-Za-z0-9-]{1,24}".prop_map(|name| Command::Mdns { name }),
        (ascii(32, 1), ascii(64, 0))
            .prop_map(|(ssid, pwd)| Command::AddWifi(WifiCredentials { ssid, pwd })),
        ascii(32, 1).prop_map(|ssid| Command::DelWifi { ssid }),
        proptest::array::uniform6(0.5f32..=2.0)
            .prop_map(|f| Command::Calibration(CalibrationArgs::Factors(f))),
        (0.5f32..=2.0, 0.5f32..=2.0)
            .prop_map(|(v, i)| Command::Calibration(CalibrationArgs::Uniform { v, i })),
        prop_oneof![
            Just(DailyRestart::Disabled),
            (0u8..24, 0u8..60).prop_map(|(hour, minute)| DailyRestart::At { hour, minute }),
        ]
        .prop_map(Command::DailyRestart),
        (
            proptest::option::of(proptest::array::uniform3(finite_f64())),
            proptest::option::of(0f64..1e13)
        )
            .prop_map(|(energy_wh, start_ts_s)| Command::ResetEnergy(EnergyReset {
                energy_wh,
                start_ts_s
            })),
        sample_request().prop_map(Command::Sample),
        (10u16..=2000).prop_map(|samples| Command::ReqSamples { samples }),
        any::<bool>().prop_map(|value| Command::Cts { value }),
        proptest::sample::select(LogLevel::ALL.to_vec()).prop_map(|level| Command::Log { level }),
        (
            server_addr(),
            proptest::option::of(ascii(64, 0)),
            proptest::option::of(ascii(64, 0)),
            proptest::option::of(1u16..)
        )
            .prop_map(|(server, user, pwd, port)| Command::MqttServer(
                MqttServerSettings {
                    server,
                    user,
                    pwd,
                    port
                }
            )),
        server_addr().prop_map(|server| Command::StreamServer { server }),
        server_addr().prop_map(|server| Command::TimeServer { server }),
        (-720i16..=840).prop_map(|offset_min| Command::Timezone { offset_min }),
        ascii(64, 1).prop_map(|token| Command::Auth { token }),
        ascii(64, 0).prop_map(|token| Command::SetToken { token }),
        (
            nominal_value(50f32..=1000.0),
            nominal_value(prop_oneof![
                Just(NominalFrequency::Hz50),
                Just(NominalFrequency::Hz60)
            ])
        )
            .prop_map(|(voltage_v, frequency)| nominal(voltage_v, frequency)),
        proptest::sample::select(PqInterval::ALL.to_vec())
            .prop_map(|interval| Command::GetPq { interval }),
        any::<u32>().prop_map(|since| Command::GetEvents { since }),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(discovery_prefix()),
        )
            .prop_map(
                |(enable, prefix)| Command::HomeAssistant(HomeAssistantSettings { enable, prefix })
            ),
    ]
}

fn nominal_value<T: std::fmt::Debug + Clone + 'static>(
    fixed: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = NominalValue<T>> {
    prop_oneof![
        Just(NominalValue::Keep),
        Just(NominalValue::Auto),
        fixed.prop_map(NominalValue::Fixed),
    ]
}

/// Valid discovery prefixes: 1..=4 non-empty levels of printable characters other than `/+#`,
/// at most 64 bytes.
fn discovery_prefix() -> impl Strategy<Value = String> {
    proptest::collection::vec("[ -\"$-*,-.0-~]{1,15}", 1..=4)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("at most 64 bytes", |p| p.len() <= 64)
}

/// Loosely JSON-shaped lines: a known or unknown cmd plus random known keys with random values, to
/// reach deep into validation.
fn jsonish() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("\"false\"".to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        "\"[ -~]{0,12}\"".prop_map(|s| s.replace('\\', "")),
        Just("[1,2]".to_string()),
        Just("[0.5,1,1,1,1,2.5]".to_string()),
        Just("{}".to_string()),
        Just("\"v,i_L1\"".to_string()),
        Just("\"UDP\"".to_string()),
        Just("[-1,\"x\"]".to_string()),
        Just("230".to_string()),
        Just("60".to_string()),
        Just("\"auto\"".to_string()),
        Just("\"10min\"".to_string()),
        Just("\"home/assistant\"".to_string()),
    ];
    let key = proptest::sample::select(vec![
        "payload",
        "level",
        "cal",
        "calV",
        "calI",
        "energy",
        "ts",
        "hour",
        "minute",
        "samples",
        "value",
        "offset",
        "token",
        "name",
        "ssid",
        "pwd",
        "server",
        "user",
        "port",
        "type",
        "measures",
        "rate",
        "prefix",
        "time",
        "flowCtr",
        "slot",
        "ntpConf",
        "voltage",
        "frequency",
        "interval",
        "since",
        "enable",
    ]);
    let cmd = proptest::sample::select(Command::NAMES.to_vec());
    (
        cmd,
        proptest::collection::vec((key, value.clone()), 0..6),
        proptest::collection::vec((key_payload(), value), 0..6),
    )
        .prop_map(|(cmd, top, payload)| {
            let mut s = format!("{{\"cmd\":\"{cmd}\"");
            for (k, v) in top {
                s.push_str(&format!(",\"{k}\":{v}"));
            }
            s.push_str(",\"payload\":{");
            for (i, (k, v)) in payload.into_iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&format!("\"{k}\":{v}"));
            }
            s.push_str("}}");
            s
        })
}

fn key_payload() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "name", "ssid", "pwd", "server", "user", "port", "type", "measures", "rate", "prefix",
        "time", "flowCtr", "slot", "ntpConf",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encode_parse_round_trip(cmd in command()) {
        let line = cmd.encode();
        prop_assert!(line.len() <= 600, "{line}");
        prop_assert_eq!(Command::parse(line.as_bytes()), Ok(cmd.clone()));
        prop_assert_eq!(Command::parse(format!("{line}\r\n").as_bytes()), Ok(cmd));
    }

    /// docs/protocol.md §10: over MQTT a protected command carries `"token":T`; the envelope reads it,
    /// and writes it back only when one is given (the command's own encoding never has one).
    #[test]
    fn envelope_round_trip(cmd in command(), token in proptest::option::of("[ -~]{0,64}")) {
        let plain = Envelope { command: cmd.clone(), token: None };
        prop_assert_eq!(plain.encode(), cmd.encode());
        prop_assert_eq!(Envelope::parse(cmd.encode().as_bytes()), Ok(plain));
        let own = matches!(
            cmd,
            Command::Auth { .. } | Command::SetToken { .. } | Command::Availability | Command::Keepalive
        );
        let e = Envelope { command: cmd.clone(), token: token.clone() };
        let line = e.encode();
        let want = Envelope { command: cmd, token: if own { None } else { token } };
        prop_assert_eq!(Envelope::parse(line.as_bytes()), Ok(want));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        if let Err(e) = Command::parse(&bytes) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn jsonish_lines_never_panic(line in jsonish()) {
        match Command::parse(line.as_bytes()) {
            Ok(cmd) => {
                // Whatever was accepted encodes canonically and reads back the same.
                prop_assert_eq!(Command::parse(cmd.encode().as_bytes()), Ok(cmd));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

#[test]
fn nesting_is_bounded() {
    // Unknown keys are skipped whatever their depth (serde_json skips them iteratively).
    let deep_unknown = format!(
        r#"{{"cmd":"info","x":{}1{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    assert_eq!(Command::parse(deep_unknown.as_bytes()), Ok(Command::Info));
    // Known keys recurse in our visitors: more than a few levels is a JSON format error.
    let deep_known = format!(
        r#"{{"cmd":"sample","payload":{{"type":"TCP","slot":{}1{}}}}}"#,
        "[".repeat(10),
        "]".repeat(10)
    );
    assert_eq!(
        Command::parse(deep_known.as_bytes()),
        Err(CommandError::Json)
    );
    let nested = |n: usize| {
        format!(
            r#"{{"cmd":"info","payload":{}1{}}}"#,
            r#"{"payload":"#.repeat(n),
            "}".repeat(n)
        )
    };
    assert_eq!(Command::parse(nested(2).as_bytes()), Ok(Command::Info));
    assert_eq!(
        Command::parse(nested(10).as_bytes()),
        Err(CommandError::Json)
    );
    let brackets = "[".repeat(590);
    assert_eq!(Command::parse(brackets.as_bytes()), Err(CommandError::Json));
}

#[test]
fn envelope_token_key() {
    let e =
        Envelope::parse(br#"{"cmd":"addWifi","token":"s3cret","payload":{"ssid":"x","pwd":"y"}}"#)
            .unwrap();
    assert_eq!(e.token.as_deref(), Some("s3cret"));
    assert!(matches!(e.command, Command::AddWifi(_)));
    // in the payload too (keys are accepted at either level), the top level wins
    let e = Envelope::parse(br#"{"cmd":"delWifi","payload":{"ssid":"x","token":"p"}}"#).unwrap();
    assert_eq!(e.token.as_deref(), Some("p"));
    // the bare fast path and the seed's missing `}` both work
    assert_eq!(
        Envelope::parse(b"{\"cmd\":\"getLog\"}\r\n").unwrap().token,
        None
    );
    let e = Envelope::parse(br#"{"cmd":"clearLog","token":"t""#).unwrap();
    assert_eq!(
        (e.command, e.token.as_deref()),
        (Command::ClearLog, Some("t"))
    );
    // auth keeps its token as its argument
    let e = Envelope::parse(br#"{"cmd":"auth","token":"t"}"#).unwrap();
    assert_eq!(
        (e.command, e.token),
        (Command::Auth { token: "t".into() }, None)
    );
    // a token that is not a short string is a field error
    let err = Envelope::parse(br#"{"cmd":"restart","token":5}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid token: expected a string of at most 64 bytes"
    );
    assert_eq!(err.cmd(), Some("restart"));
    // Command::parse ignores the key, as before
    assert_eq!(
        Command::parse(br#"{"cmd":"restart","token":5}"#),
        Ok(Command::Restart)
    );
}
