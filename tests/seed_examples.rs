//! Every JSON example printed in the original device's README (copied here verbatim;
//! docs/protocol.md Appendix A says what host tools accept and why), accepted as written: commands
//! by `Command::parse`, replies by `Reply::parse`, log lines by `LogLine::parse`. Placeholders like
//! `<rate>` are filled with plausible values; everything else is byte for byte as printed (spaces
//! after commas, the missing `}` of the calibration example, replies without `cmd`,
//! `"type":"SmartMeter"`, `calV`/`calI`, integers where floats are meant).

use smartmeter::wire::command::{
    CalibrationArgs, Command, EnergyReset, Measures, MqttServerSettings, SampleRequest, ServerAddr,
    Slot, StreamType, WifiCredentials,
};
use smartmeter::wire::command::{DailyRestart, ServerKind};
use smartmeter::wire::log::{LogLevel, LogLine};
use smartmeter::wire::reply::{InfoReply, Reply, SampleStarted, StopStats};

fn host(h: &str) -> ServerAddr {
    ServerAddr::Host {
        host: h.to_string(),
        port: None,
    }
}

#[test]
fn seed_commands() {
    let cases: Vec<(&str, Command)> = vec![
        (r#"{"cmd":"info"}"#, Command::Info),
        (
            r#"{"cmd":"log","level":"warning"}"#,
            Command::Log {
                level: LogLevel::Warning,
            },
        ),
        (
            r#"{"cmd":"log","level":"all"}"#,
            Command::Log {
                level: LogLevel::All,
            },
        ),
        (
            r#"{"cmd":"log","level":"debug"}"#,
            Command::Log {
                level: LogLevel::Debug,
            },
        ),
        (
            r#"{"cmd":"log","level":"info"}"#,
            Command::Log {
                level: LogLevel::Info,
            },
        ),
        (
            r#"{"cmd":"log","level":"error"}"#,
            Command::Log {
                level: LogLevel::Error,
            },
        ),
        (
            r#"{"cmd":"mdns","payload":{"name":"smartmeterX"}}"#,
            Command::Mdns {
                name: "smartmeterX".into(),
            },
        ),
        (r#"{"cmd":"restart"}"#, Command::Restart),
        (r#"{"cmd":"factoryReset"}"#, Command::FactoryReset),
        (r#"{"cmd":"basicReset"}"#, Command::BasicReset),
        (r#"{"cmd":"getLog"}"#, Command::GetLog),
        (r#"{"cmd":"clearLog"}"#, Command::ClearLog),
        // As printed: the closing brace is missing.
        (
            r#"{"cmd":"calibration","cal":[1.0,1.0,1.02,0.98,1,1]"#,
            Command::Calibration(CalibrationArgs::Factors([1.0, 1.0, 1.02, 0.98, 1.0, 1.0])),
        ),
        (
            r#"{"cmd":"resetEnergy"}"#,
            Command::ResetEnergy(EnergyReset::default()),
        ),
        (r#"{"cmd":"ntp"}"#, Command::Ntp),
        (
            r#"{"cmd":"timeServer", "payload":{"server":"time.google.com"}}"#,
            Command::TimeServer {
                server: host("time.google.com"),
            },
        ),
        // The placeholders themselves are valid strings here.
        (
            r#"{"cmd":"addWifi", "payload":{"ssid":"<ssidName>","pwd":"<pwdName>"}}"#,
            Command::AddWifi(WifiCredentials {
                ssid: "<ssidName>".into(),
                pwd: "<pwdName>".into(),
            }),
        ),
        (
            r#"{"cmd":"delWifi", "payload":{"ssid":"<ssidName>"}}"#,
            Command::DelWifi {
                ssid: "<ssidName>".into(),
            },
        ),
        (
            r#"{"cmd":"mqttServer", "payload":{"server":"192.168.0.13"}}"#,
            Command::MqttServer(MqttServerSettings {
                server: host("192.168.0.13"),
                ..Default::default()
            }),
        ),
        (r#"{"cmd":"info"}"#, Command::Info),
        (r#"{"cmd":"getPower"}"#, Command::GetPower),
        (r#"{"cmd":"getVoltage"}"#, Command::GetVoltage),
        (r#"{"cmd":"getCurrent"}"#, Command::GetCurrent),
        (r#"{"cmd":"getEnergy"}"#, Command::GetEnergy),
        (r#"{"cmd":"getPeriod"}"#, Command::GetPeriod),
        (r#"{"cmd":"getPhaseAngle"}"#, Command::GetPhaseAngle),
        (
            r#"{"cmd":"streamServer", "payload":{"server":"192.168.0.138"}}"#,
            Command::StreamServer {
                server: host("192.168.0.138"),
            },
        ),
        (
            r#"{"cmd":"sample", "payload":{"type":"UDP", "measures":"v,i", "rate":4000, "prefix":"true", "port":5000,"time":1614697441,"flowCtr":"false","slot":[1,3],"ntpConf":10}}"#,
            Command::Sample(SampleRequest {
                stream: StreamType::Udp { port: 5000 },
                measures: Measures::VoltCurrent3,
                rate_hz: 4000,
                prefix: true,
                flow_control: false,
                start_time: Some(1614697441.0),
                slot: Some(Slot { slot: 1, slots: 3 }),
                ntp_conf_ms: Some(10),
            }),
        ),
        // The README's "Example" sends the sample payload with cmd "stop": it is a stop.
        (
            r#"{"cmd":"stop","payload":{"type":"TCP","rate":1}}"#,
            Command::Stop,
        ),
        (
            r#"{"cmd":"sample","payload":{"type":"TCP","rate":1}}"#,
            Command::Sample(SampleRequest {
                rate_hz: 1,
                ..SampleRequest::new(StreamType::Tcp)
            }),
        ),
        (
            r#"{"cmd":"sample","payload":{"type":"FFMPEG","prefix":"false"}}"#,
            Command::Sample(SampleRequest {
                prefix: false,
                ..SampleRequest::new(StreamType::Ffmpeg)
            }),
        ),
        (
            r#"{"cmd":"sample","payload":{"type":"MQTT","measures":"p,q","rate":1,"slot":false}}"#,
            Command::Sample(SampleRequest {
                measures: Measures::PowerPQ,
                rate_hz: 1,
                ..SampleRequest::new(StreamType::Mqtt)
            }),
        ),
        (
            r#"{"cmd":"reqSamples","samples":100}"#,
            Command::ReqSamples { samples: 100 },
        ),
        (
            r#"{"cmd":"cts","value":true}"#,
            Command::Cts { value: true },
        ),
        (
            r#"{"cmd":"cts","value":false}"#,
            Command::Cts { value: false },
        ),
        (r#"{"cmd":"stop"}"#, Command::Stop),
        ("?", Command::Availability),
        ("!", Command::Keepalive),
    ];
    for (text, cmd) in cases {
        assert_eq!(Command::parse(text.as_bytes()), Ok(cmd.clone()), "{text}");
        assert_eq!(
            Command::parse(format!("{text}\r\n").as_bytes()),
            Ok(cmd),
            "{text}"
        );
    }
    for m in [
        "v,i",
        "v,i,v,i,v,i",
        "v,i_L1",
        "v,i_L2",
        "v,i_L3",
        "p,q",
        "p,p,p,q,q,q",
        "v,i_RMS",
        "v,v,v,i,i,i_RMS",
    ] {
        let rate = if m.starts_with('p') || m.ends_with("RMS") {
            50
        } else {
            8000
        };
        let line = format!(
            r#"{{"cmd":"sample","payload":{{"type":"TCP","measures":"{m}","rate":{rate}}}}}"#
        );
        assert!(Command::parse(line.as_bytes()).is_ok(), "{line}");
    }
}

#[test]
fn seed_replies() {
    let info = r#"Info:{"cmd":"info","type":"SmartMeter","version":"2.2","compiled":"Mar_2_2021_09:57:58","sys_time":"03/02/2021 10:37:07.662","name":"smartmeterX","ip":"192.168.4.1","mqtt_server":"-","stream_server":"-","time_server":"time.google.com","sampling_rate":4000,"buffer_size":3670016,"psram":true,"rtc":false,"calV":1,"calI":1,"state":"idle","relay":1,"calibration":[1,1],"ssids":"[energywifi]","ssid":"-","rssi":-71,"bssid":"-"}"#;
    let expected_info = InfoReply {
        version: "2.2".into(),
        compiled: "Mar_2_2021_09:57:58".into(),
        sys_time: "03/02/2021 10:37:07.662".into(),
        name: "smartmeterX".into(),
        ip: "192.168.4.1".into(),
        mqtt_server: "-".into(),
        stream_server: "-".into(),
        time_server: "time.google.com".into(),
        sampling_rate_hz: 4000,
        buffer_size_bytes: 3670016,
        psram: true,
        rtc: false,
        busy: false,
        energy_wh: [0.0; 3],
        daily_reset: DailyRestart::Disabled,
        calibration: [1.0; 6],
        ssids: vec!["energywifi".into()],
        ssid: "-".into(),
        rssi_dbm: -71,
        bssid: "-".into(),
    };
    let cases: Vec<(&str, Reply)> = vec![
        (info, Reply::Info(Box::new(expected_info))),
        (
            r#"Info:{"error":false,"msg":"Log Level set to: warning"}"#,
            Reply::LogLevelSet {
                level: LogLevel::Warning,
            },
        ),
        (
            r#"Info:{"error":false,"msg":"Set MDNS name to: smartmeterX","mdns_name":"smartmeterX"}"#,
            Reply::Mdns {
                name: "smartmeterX".into(),
            },
        ),
        (
            r#"Info:{"cmd":"log","msg":"*** LOGFile *** [E]03/02 11:26:20: Cannot connect to MQTT Server -//n*** LOGFile *** "}"#,
            Reply::GetLogDump {
                rows: vec!["[E]03/02 11:26:20: Cannot connect to MQTT Server -".into()],
            },
        ),
        (r#"Info:{"error":false}"#, Reply::GetLogDone),
        (
            r#"Info:{"msg":"Time synced","error":false,"current_time":"03/02/2021 11:27:40.182"}"#,
            Reply::Ntp {
                current_time: "03/02/2021 11:27:40.182".into(),
            },
        ),
        (
            r#"Info:{"error":false,"msg":"Set TimeServer address to: time.google.com","time_server":"time.google.com"}"#,
            Reply::ServerSet {
                kind: ServerKind::Time,
                server: "time.google.com".into(),
            },
        ),
        (
            r#"Info:{"error":false,"ssid":"Test","pwd":"TestPwd","msg":"New Ap, SSID: Test, PW: TestPwd","ssids":"[energywifi, Test]"}"#,
            Reply::AddWifi {
                ssid: "Test".into(),
                ssids: vec!["energywifi".into(), "Test".into()],
            },
        ),
        (
            r#"Info:{"error":false,"msg":"Removed SSID: Test","ssids":"[energywifi]"}"#,
            Reply::DelWifi {
                ssid: "Test".into(),
                ssids: vec!["energywifi".into()],
            },
        ),
        (
            r#"Info:{"error":false,"msg":"Set MQTTServer address to: 192.168.0.13","mqtt_server":"192.168.0.13"}"#,
            Reply::ServerSet {
                kind: ServerKind::Mqtt,
                server: "192.168.0.13".into(),
            },
        ),
        (
            r#"Info:{"error":false,"cmd":"getEnergy","energy":[10149.5684,5101.23238,4509.21022],"unit":"Wh","startTs":1632219770,"start":"09/20/2021 12:22:50.068","days":1}"#,
            Reply::Energy {
                energy_wh: [10149.5684, 5101.23238, 4509.21022],
                start_ts_s: 1_632_219_770,
                start: "09/20/2021 12:22:50.068".into(),
                days: 1,
            },
        ),
        (
            r#"Info:{"error":false,"measures":"v,i","chunksize":8,"samplingrate":1,"conn_type":"TCP","measurements":2,"prefix":true,"flowCtr":false,"cmd":"sample","unit":"V,mA","startTs":"1614697441.119"}"#,
            Reply::SampleStarted(SampleStarted {
                stream: StreamType::Tcp,
                slot: None,
                measures: Measures::VoltCurrent3,
                // The original firmware sent one phase for `v,i` (docs/protocol.md §A).
                measurements: Some(2),
                chunk_size_bytes: 8,
                rate_hz: 1,
                prefix: true,
                flow_control: false,
                start_ts_ms: 1_614_697_441_119,
                ntp_confidence_ms: None,
            }),
        ),
        (
            r#"Info:{"msg":"Received stop command","sample_duration":16157,"samples":16,"sent_samples":16,"start_ts":"1614697441.119","stop_ts":"1614697457.276","ip":"192.168.0.138","avg_rate":0.955618,"cmd":"stop"}"#,
            Reply::Stopped(StopStats {
                sample_duration_ms: 16157,
                samples: 16,
                sent_samples: 16,
                start_ts_ms: 1_614_697_441_119,
                stop_ts_ms: 1_614_697_457_276,
                ip: "192.168.0.138".into(),
                avg_rate_hz: 0.955618,
            }),
        ),
        ("Info: Setup done", Reply::SetupDone),
    ];
    for (line, reply) in cases {
        assert_eq!(Reply::parse(line.as_bytes()), Ok(reply.clone()), "{line}");
        let payload = line.strip_prefix("Info:").unwrap_or(line);
        assert_eq!(Reply::parse(payload.as_bytes()), Ok(reply), "{payload}");
    }
}

#[test]
fn seed_log_lines() {
    let cases = [
        (
            "[I]03/02 10:42:24: MDNS Name: smartmeterX",
            LogLevel::Info,
            "MDNS Name: smartmeterX",
        ),
        (
            "[I]03/02 11:28:14: NTP synced with conf: 11",
            LogLevel::Info,
            "NTP synced with conf: 11",
        ),
        (
            "[I]03/02 11:38:42: MQTT connected to 192.168.0.13",
            LogLevel::Info,
            "MQTT connected to 192.168.0.13",
        ),
        (
            "[I]03/02 11:38:42: Subscribing to: SmartMeter/+",
            LogLevel::Info,
            "Subscribing to: SmartMeter/+",
        ),
        (
            "[I]03/02 11:38:42: Subscribing to: SmartMeter/smartmeterX/+",
            LogLevel::Info,
            "Subscribing to: SmartMeter/smartmeterX/+",
        ),
        (
            "[E]03/02 11:26:20: Cannot connect to MQTT Server -",
            LogLevel::Error,
            "Cannot connect to MQTT Server -",
        ),
    ];
    for (payload, level, text) in cases {
        let l = LogLine::parse(format!("{payload}\r\n").as_bytes()).expect(payload);
        assert_eq!((l.level, l.text.as_str()), (level, text));
        assert_eq!(l.to_line(), format!("Info:{payload}\r\n"));
    }
}
