//! The client against a small scripted fake meter that speaks the bytes of docs/protocol.md.
#![cfg(feature = "client")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smartmeter::client::{Client, ClientError, ClientOptions, Notice, Target};
use smartmeter::wire::command::{SampleRequest, ServerAddr, StreamType};
use smartmeter::wire::log::LogLevel;
use smartmeter::wire::reply::{Reply, StopStats};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const INFO: &[u8] = b"Info:{\"cmd\":\"info\",\"type\":\"smartmeter\",\"version\":\"2.2\",\"name\":\"fake\",\"state\":\"idle\"}\r\n";

fn frame(packet: u32, values: &[f32]) -> Vec<u8> {
    let mut f = b"Data:".to_vec();
    f.extend_from_slice(&((values.len() * 4) as u16).to_le_bytes());
    f.extend_from_slice(&packet.to_le_bytes());
    for v in values {
        f.extend_from_slice(&v.to_le_bytes());
    }
    f
}

async fn send(wr: &mut tokio::net::tcp::OwnedWriteHalf, bytes: Vec<u8>, trickle: bool) {
    if trickle {
        for b in bytes {
            if wr.write_all(&[b]).await.is_err() {
                return;
            }
        }
    } else {
        let _ = wr.write_all(&bytes).await;
    }
}

type Handler = Box<dyn FnMut(&str) -> Vec<u8> + Send>;

/// A fake meter: sends `greeting` on connect, then answers each line with `handler(line)`, written
/// one byte at a time when `trickle` (every split of the stream). Returns the target and the lines.
async fn fake(
    greeting: Vec<u8>,
    mut handler: Handler,
    trickle: bool,
) -> (Target, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (rd, mut wr) = sock.into_split();
        send(&mut wr, greeting, trickle).await;
        let mut rd = BufReader::new(rd).lines();
        while let Ok(Some(line)) = rd.next_line().await {
            seen.lock().unwrap().push(line.clone());
            let out = handler(&line);
            if out == b"CLOSE" {
                return;
            }
            send(&mut wr, out, trickle).await;
        }
    });
    (
        Target::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        lines,
    )
}

fn opts() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn replies_match_requests_while_logs_and_frames_flow() {
    let handler: Handler = Box::new(|line| {
        let mut out = b"Info:[I]03/02 10:42:24: \r\n".to_vec();
        if line.contains("getPower") {
            out.extend(frame(7, &[1.0, 2.0])); // a stray frame with no session: ignored
            out.extend_from_slice(b"Info:{\"error\":false,\"cmd\":\"getPower\",\"activePower\":[1116.89,null,3.5],\"reactivePower\":[1.0,2.0,3.0],\"apparentPower\":[4,5,6],\"unit\":\"W/var/VA\"}\r\n");
        } else if line.contains("getVoltage") {
            out.extend_from_slice(b"Info:[W]03/02 10:42:25: something odd\r\n");
            out.extend_from_slice(b"Info:{\"error\":false,\"cmd\":\"getVoltage\",\"voltage\":[230.5,231,229.25],\"unit\":\"V\"}\r\n");
        } else if line.contains("getCurrent") {
            out.extend_from_slice(b"Info:{\"error\":true,\"cmd\":\"getCurrent\",\"msg\":\"Device currently sampling\",\"state\":\"busy\"}\r\n");
        } else if line.contains("mdns") {
            out.extend_from_slice(
                b"Info:{\"error\":true,\"cmd\":\"mdns\",\"msg\":\"Invalid name: nope\"}\r\n",
            );
        }
        out
    });
    let (target, lines) = fake(INFO.to_vec(), handler, true).await;
    let c = Client::connect_with(&target, opts()).await.unwrap();
    assert_eq!(c.connect_info().name, "fake");
    let mut notices = c.notices();
    let p = c.power().await.unwrap();
    assert_eq!(p.active_w, [Some(1116.89), None, Some(3.5)]);
    assert_eq!(p.apparent_va, [Some(4.0), Some(5.0), Some(6.0)]);
    assert_eq!(
        c.voltage_v().await.unwrap(),
        [Some(230.5), Some(231.0), Some(229.25)]
    );
    let busy = c.current_ma().await.unwrap_err();
    assert!(
        matches!(&busy, ClientError::Busy { cmd } if cmd == "getCurrent"),
        "{busy}"
    );
    let refused = c
        .request_raw("{\"cmd\":\"mdns\",\"payload\":{\"name\":\"x\"}}")
        .await
        .unwrap();
    assert_eq!(
        refused.last().unwrap().reply().message().as_deref(),
        Some("Invalid name: nope")
    );
    assert_eq!(
        refused.last().unwrap().json(),
        "{\"error\":true,\"cmd\":\"mdns\",\"msg\":\"Invalid name: nope\"}"
    );
    let mut saw_warning = false;
    while let Ok(n) = notices.try_recv() {
        if let Notice::Log(l) = n {
            saw_warning |= l.text == "something odd";
        }
    }
    assert!(saw_warning);
    assert_eq!(
        lines.lock().unwrap().clone(),
        [
            "{\"cmd\":\"getPower\"}",
            "{\"cmd\":\"getVoltage\"}",
            "{\"cmd\":\"getCurrent\"}",
            "{\"cmd\":\"mdns\",\"payload\":{\"name\":\"x\"}}"
        ]
    );
}

#[tokio::test]
async fn get_log_takes_the_dump_line_first() {
    let handler: Handler = Box::new(|line| {
        if line.contains("getLog") {
            b"Info:{\"cmd\":\"log\",\"msg\":\"*** LOGFile *** [E]03/02 11:26:20: Cannot connect to MQTT Server -//n*** LOGFile *** \"}\r\nInfo:{\"error\":false,\"cmd\":\"getLog\"}\r\n".to_vec()
        } else {
            b"Info:{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: warning\"}\r\n"
                .to_vec()
        }
    });
    let (target, _) = fake(INFO.to_vec(), handler, false).await;
    let c = Client::connect_with(&target, opts()).await.unwrap();
    let rows = c.get_log().await.unwrap();
    assert_eq!(rows, ["[E]03/02 11:26:20: Cannot connect to MQTT Server -"]);
    let r = c
        .set_log_level(smartmeter::wire::log::LogLevel::Warning)
        .await
        .unwrap();
    assert_eq!(
        r.reply().message().as_deref(),
        Some("Log Level set to: warning")
    );
}

#[tokio::test]
async fn sampling_stream_counts_gaps_zero_fills_and_stops() {
    let handler: Handler = Box::new(|line| {
        if line.contains("\"sample\"") {
            let mut out = b"Info:{\"error\":false,\"cmd\":\"sample\",\"measures\":\"v,i_L1\",\"chunksize\":16,\"samplingrate\":100,\"conn_type\":\"TCP\",\"measurements\":2,\"prefix\":true,\"flowCtr\":false,\"unit\":\"V,mA\",\"startTs\":\"1614697441.119\"}\r\n".to_vec();
            out.extend(frame(0, &[1.0, 2.0, 3.0, 4.0]));
            out.extend_from_slice(b"Info:[I]03/02 10:42:24: 100.00Hz, 2s\r\n");
            out.extend(frame(1, &[5.0, 6.0, 7.0, 8.0]));
            out.extend(frame(4, &[9.0, 10.0])); // packets 2 and 3 lost
            out
        } else if line.contains("stop") {
            let mut out = frame(5, &[11.0, 12.0]);
            out.extend_from_slice(b"Info:{\"error\":false,\"cmd\":\"stop\",\"msg\":\"Received stop command\",\"sample_duration\":50,\"samples\":7,\"sent_samples\":5,\"start_ts\":\"1614697441.119\",\"stop_ts\":\"1614697441.169\",\"ip\":\"127.0.0.1\",\"avg_rate\":100.0}\r\n");
            out
        } else {
            Vec::new()
        }
    });
    let (target, lines) = fake(INFO.to_vec(), handler, true).await;
    let c = Client::connect_with(&target, opts()).await.unwrap();
    let mut req = SampleRequest::new(StreamType::Tcp);
    req.measures = smartmeter::wire::command::Measures::VoltCurrentL1;
    req.rate_hz = 100;
    let mut s = c.sample(req).await.unwrap();
    s.set_zero_fill(true);
    assert_eq!(s.info().channels, ["v_l1", "i_l1"]);
    assert_eq!(s.info().rate_hz, 100);
    assert_eq!(s.info().start_unix_us, Some(1_614_697_441_119_000));
    let b0 = s.next().await.unwrap().unwrap();
    assert_eq!(
        (b0.packet, b0.lost_packets, b0.samples.clone()),
        (0, 0, vec![1.0, 2.0, 3.0, 4.0])
    );
    let _b1 = s.next().await.unwrap().unwrap();
    let b4 = s.next().await.unwrap().unwrap();
    assert_eq!(b4.packet, 4);
    assert_eq!(b4.lost_packets, 2);
    assert_eq!(
        b4.zero_filled, 4,
        "2 lost packets of 16 bytes = 2 samples each"
    );
    assert_eq!(
        b4.samples,
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.0, 10.0]
    );
    let stats = s.stats();
    assert_eq!(
        (
            stats.packets,
            stats.lost_packets,
            stats.samples,
            stats.zero_filled
        ),
        (3, 2, 5, 4)
    );
    let summary = s.stop().await.unwrap();
    assert!(matches!(
        summary.reply(),
        Reply::Stopped(StopStats { samples: 7, .. })
    ));
    assert_eq!(
        lines.lock().unwrap().first().unwrap(),
        "{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"measures\":\"v,i_L1\",\"rate\":100,\"prefix\":true,\"flowCtr\":false}}"
    );
    // The connection still works after the session.
    assert!(lines.lock().unwrap().last().unwrap().contains("stop"));
}

/// The original firmware answers `"measures":"v,i"` with `"measurements":2` (one phase; the seed
/// README's example, docs/protocol.md §A): the client follows the reply's channel count.
#[tokio::test]
async fn samples_from_the_original_firmware() {
    let handler: Handler = Box::new(|line| {
        if line.contains("\"sample\"") {
            let mut out = b"Info:{\"error\":false,\"measures\":\"v,i\",\"chunksize\":8,\"samplingrate\":1,\"conn_type\":\"TCP\",\"measurements\":2,\"prefix\":true,\"flowCtr\":false,\"cmd\":\"sample\",\"unit\":\"V,mA\",\"startTs\":\"1614697441.119\"}\r\n".to_vec();
            out.extend(frame(0, &[230.5, 512.25]));
            out.extend(frame(1, &[229.5, 511.0]));
            out
        } else {
            b"Info:{\"msg\":\"Received stop command\",\"sample_duration\":2000,\"samples\":2,\"sent_samples\":2,\"start_ts\":\"1614697441.119\",\"stop_ts\":\"1614697443.119\",\"ip\":\"192.168.0.138\",\"avg_rate\":1.0,\"cmd\":\"stop\"}\r\n".to_vec()
        }
    });
    let (target, _) = fake(INFO.to_vec(), handler, true).await;
    let c = Client::connect_with(&target, opts()).await.unwrap();
    let mut req = SampleRequest::new(StreamType::Tcp);
    req.rate_hz = 1;
    let mut s = c.sample(req).await.unwrap();
    assert_eq!(s.info().channel_count(), 2);
    let b0 = s.next().await.unwrap().unwrap();
    let b1 = s.next().await.unwrap().unwrap();
    assert_eq!(
        (b0.samples, b1.samples),
        (vec![230.5, 512.25], vec![229.5, 511.0])
    );
    assert!(matches!(
        s.stop().await.unwrap().reply(),
        Reply::Stopped(StopStats { samples: 2, .. })
    ));
}

/// Every reply the seed README prints, as written (no `cmd`, `msg` first, a leading log line,
/// `"type":"SmartMeter"`, `calibration:[1,1]`), answers its request (docs/protocol.md §1, reading old
/// devices).
#[tokio::test]
async fn the_original_firmwares_replies_answer_their_requests() {
    let info = b"Info:{\"cmd\":\"info\",\"type\":\"SmartMeter\",\"version\":\"2.2\",\"compiled\":\"Mar_2_2021_09:57:58\",\"sys_time\":\"03/02/2021 10:37:07.662\",\"name\":\"smartmeterX\",\"ip\":\"192.168.4.1\",\"mqtt_server\":\"-\",\"stream_server\":\"-\",\"time_server\":\"time.google.com\",\"sampling_rate\":4000,\"buffer_size\":3670016,\"psram\":true,\"rtc\":false,\"calV\":1,\"calI\":1,\"state\":\"idle\",\"relay\":1,\"calibration\":[1,1],\"ssids\":\"[energywifi]\",\"ssid\":\"-\",\"rssi\":-71,\"bssid\":\"-\"}\r\n";
    let handler: Handler = Box::new(|line| {
        let reply: &[u8] = if line.contains("\"log\"") {
            b"Info:{\"error\":false,\"msg\":\"Log Level set to: warning\"}\r\n"
        } else if line.contains("mdns") {
            b"Info:[I]03/02 10:42:24: MDNS Name: smartmeterX\r\nInfo:{\"error\":false,\"msg\":\"Set MDNS name to: smartmeterX\",\"mdns_name\":\"smartmeterX\"}\r\n"
        } else if line.contains("getLog") {
            b"Info:{\"cmd\":\"log\",\"msg\":\"*** LOGFile *** [E]03/02 11:26:20: Cannot connect to MQTT Server -//n*** LOGFile *** \"}\r\nInfo:{\"error\":false}\r\n"
        } else if line.contains("\"ntp\"") {
            b"Info:[I]03/02 11:28:14: NTP synced with conf: 11\r\nInfo:{\"msg\":\"Time synced\",\"error\":false,\"current_time\":\"03/02/2021 11:27:40.182\"}\r\n"
        } else if line.contains("timeServer") {
            b"Info:[I]03/02 11:28:14: NTP synced with conf: 11\r\nInfo:{\"error\":false,\"msg\":\"Set TimeServer address to: time.google.com\",\"time_server\":\"time.google.com\"}\r\n"
        } else if line.contains("addWifi") {
            b"Info:{\"error\":false,\"ssid\":\"Test\",\"pwd\":\"TestPwd\",\"msg\":\"New Ap, SSID: Test, PW: TestPwd\",\"ssids\":\"[energywifi, Test]\"}\r\n"
        } else if line.contains("delWifi") {
            b"Info:{\"error\":false,\"msg\":\"Removed SSID: Test\",\"ssids\":\"[energywifi]\"}\r\n"
        } else if line.contains("getEnergy") {
            b"Info:{\"error\":false,\"cmd\":\"getEnergy\",\"energy\":[10149.5684,5101.23238,4509.21022],\"unit\":\"Wh\",\"startTs\":1632219770,\"start\":\"09/20/2021 12:22:50.068\",\"days\":1}\r\n"
        } else {
            b"Info: Setup done\r\n"
        };
        reply.to_vec()
    });
    let (target, _) = fake(info.to_vec(), handler, true).await;
    let c = Client::connect_with(&target, opts()).await.unwrap();
    assert_eq!(c.connect_info().name, "smartmeterX");
    let msg = |r: Result<smartmeter::client::Response, ClientError>| {
        r.unwrap().reply().message().unwrap_or_default()
    };
    assert_eq!(
        msg(c.set_log_level(LogLevel::Warning).await),
        "Log Level set to: warning"
    );
    assert_eq!(
        msg(c.set_name("smartmeterX").await),
        "Set MDNS name to: smartmeterX"
    );
    assert_eq!(
        c.get_log().await.unwrap(),
        ["[E]03/02 11:26:20: Cannot connect to MQTT Server -"]
    );
    assert_eq!(msg(c.ntp().await), "Time synced");
    let server = ServerAddr::parse("time.google.com").unwrap();
    assert_eq!(
        msg(c.set_time_server(server).await),
        "Set TimeServer address to: time.google.com"
    );
    assert!(matches!(
        c.add_wifi("Test", "TestPwd").await.unwrap().reply(),
        Reply::AddWifi { ssids, .. } if ssids.len() == 2
    ));
    assert_eq!(msg(c.del_wifi("Test").await), "Removed SSID: Test");
    assert_eq!(c.energy().await.unwrap().days, 1);
    c.ping().await.unwrap();
}

#[tokio::test]
async fn dropping_the_stream_sends_stop() {
    let handler: Handler = Box::new(|line| {
        if line.contains("\"sample\"") {
            let mut out = b"Info:{\"error\":false,\"cmd\":\"sample\",\"measures\":\"v,i,v,i,v,i\",\"chunksize\":24,\"samplingrate\":8000,\"conn_type\":\"TCP\",\"measurements\":6,\"prefix\":true,\"flowCtr\":false,\"unit\":\"V,mA,V,mA,V,mA\",\"startTs\":\"1.000\"}\r\n".to_vec();
            out.extend(frame(0, &[0.0; 6]));
            out
        } else if line.contains("stop") {
            b"Info:{\"error\":false,\"cmd\":\"stop\",\"msg\":\"Received stop command\"}\r\n"
                .to_vec()
        } else {
            b"Info:{\"error\":false,\"cmd\":\"getPower\",\"activePower\":[1,2,3],\"reactivePower\":[1,2,3],\"apparentPower\":[1,2,3]}\r\n".to_vec()
        }
    });
    let (target, lines) = fake(INFO.to_vec(), handler, false).await;
    let c = Client::connect_with(&target, opts()).await.unwrap();
    let mut s = c.sample(SampleRequest::new(StreamType::Tcp)).await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap().frames(), 1);
    drop(s);
    // The next request is answered after the stop reply: ordering holds.
    assert_eq!(c.power().await.unwrap().active_w[2], Some(3.0));
    let l = lines.lock().unwrap().clone();
    assert_eq!(l[1], "{\"cmd\":\"stop\"}");
    assert_eq!(l[2], "{\"cmd\":\"getPower\"}");
}

#[tokio::test]
async fn busy_meter_refuses_sampling() {
    let handler: Handler = Box::new(|_| {
        b"Info:{\"error\":true,\"cmd\":\"sample\",\"msg\":\"Device currently sampling\",\"state\":\"busy\"}\r\n".to_vec()
    });
    let (target, _) = fake(INFO.to_vec(), handler, false).await;
    let c = Client::connect_with(&target, opts()).await.unwrap();
    let err = c
        .sample(SampleRequest::new(StreamType::Tcp))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Busy { .. }), "{err}");
}

#[tokio::test]
async fn too_many_clients_is_a_refusal_and_silence_is_a_timeout() {
    let (target, _) = fake(
        b"Info:{\"error\":true,\"msg\":\"Too many clients\"}\r\n".to_vec(),
        Box::new(|_| b"CLOSE".to_vec()),
        false,
    )
    .await;
    let err = Client::connect_with(&target, opts()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the meter refused `connect`: Too many clients"
    );

    let (target, _) = fake(INFO.to_vec(), Box::new(|_| Vec::new()), false).await;
    let c = Client::connect_with(
        &target,
        ClientOptions {
            timeout: Duration::from_millis(300),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    let err = c.power().await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn closed_connection_fails_pending_requests() {
    let (target, _) = fake(INFO.to_vec(), Box::new(|_| b"CLOSE".to_vec()), false).await;
    let c = Client::connect_with(&target, opts()).await.unwrap();
    let err = c.power().await.unwrap_err();
    assert!(matches!(err, ClientError::Closed { .. }), "{err}");
}

#[tokio::test]
async fn unreachable_host_is_one_clear_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let err = Client::connect(&Target::Tcp {
        host: "127.0.0.1".into(),
        port,
    })
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot reach 127.0.0.1:{port}:")),
        "{err}"
    );
}

#[tokio::test]
async fn keepalive_is_sent_when_quiet() {
    let (target, lines) = fake(INFO.to_vec(), Box::new(|_| Vec::new()), false).await;
    let _c = Client::connect_with(
        &target,
        ClientOptions {
            keepalive: Duration::from_millis(50),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    for _ in 0..200 {
        if lines.lock().unwrap().iter().any(|l| l == "!") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no keepalive `!` was sent");
}

#[tokio::test]
async fn the_token_is_sent_first_and_an_invalid_one_is_the_meters_refusal() {
    let meter = || -> Handler {
        Box::new(|line| {
            if line.contains("\"auth\"") {
                if line.contains("\"good\"") {
                    b"Info:{\"error\":false,\"cmd\":\"auth\",\"msg\":\"Authenticated\"}\r\n"
                        .to_vec()
                } else {
                    b"Info:{\"error\":true,\"cmd\":\"auth\",\"msg\":\"Invalid token\"}\r\n".to_vec()
                }
            } else {
                b"Info:{\"error\":false,\"cmd\":\"mdns\",\"msg\":\"Set MDNS name to: x\",\"mdns_name\":\"x\"}\r\n".to_vec()
            }
        })
    };
    let with_token = |t: &str| ClientOptions {
        token: Some(t.into()),
        ..opts()
    };
    let (target, lines) = fake(INFO.to_vec(), meter(), false).await;
    let c = Client::connect_with(&target, with_token("good"))
        .await
        .unwrap();
    c.set_name("x").await.unwrap();
    assert_eq!(
        lines.lock().unwrap().clone(),
        [
            "{\"cmd\":\"auth\",\"token\":\"good\"}",
            "{\"cmd\":\"mdns\",\"payload\":{\"name\":\"x\"}}"
        ]
    );
    let (target, _) = fake(INFO.to_vec(), meter(), false).await;
    let err = Client::connect_with(&target, with_token("bad"))
        .await
        .unwrap_err();
    assert!(err.is_refusal());
    assert_eq!(err.to_string(), "the meter refused `auth`: Invalid token");
    // Firmware without access control does not know `auth`: nothing to unlock, not an error.
    let (target, _) = fake(
        INFO.to_vec(),
        Box::new(|_| {
            b"Info:{\"error\":true,\"cmd\":\"auth\",\"msg\":\"unknown command\"}\r\n".to_vec()
        }),
        false,
    )
    .await;
    assert!(Client::connect_with(&target, with_token("t")).await.is_ok());
}

#[tokio::test]
async fn a_reply_naming_another_command_is_not_taken_as_the_answer() {
    // A stale `info` (an earlier program's, left on a serial line) arrives before the real reply.
    let handler: Handler = Box::new(|line| {
        let mut out = INFO.to_vec();
        if line.contains("getVoltage") {
            out.extend_from_slice(b"Info:{\"error\":false,\"cmd\":\"getVoltage\",\"voltage\":[230.5,231,229.25],\"unit\":\"V\"}\r\n");
        }
        out
    });
    let (target, _) = fake(INFO.to_vec(), handler, true).await;
    let c = Client::connect_with(&target, opts()).await.unwrap();
    let mut notices = c.notices();
    assert_eq!(
        c.voltage_v().await.unwrap(),
        [Some(230.5), Some(231.0), Some(229.25)]
    );
    let stale = notices.recv().await.unwrap();
    assert!(
        matches!(&stale, Notice::Reply(r) if r.cmd() == Some("info")),
        "{stale:?}"
    );
}

#[tokio::test]
async fn a_meter_that_goes_silent_is_a_lost_connection() {
    // It answers nothing and never closes (a meter that lost power leaves a half-open socket).
    let (target, lines) = fake(INFO.to_vec(), Box::new(|_| Vec::new()), false).await;
    let c = Client::connect_with(
        &target,
        ClientOptions {
            timeout: Duration::from_millis(300),
            liveness: Some(Duration::from_millis(200)),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    let mut notices = c.notices();
    let err = tokio::time::timeout(Duration::from_secs(20), c.closed())
        .await
        .expect("the silence was never noticed");
    assert!(matches!(err, ClientError::ConnectionLost { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("connection lost: no data from the meter"),
        "{err}"
    );
    // It asked (`info` is answered in every state) before giving up.
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == "{\"cmd\":\"info\"}")
    );
    assert!(matches!(
        notices.recv().await,
        Err(tokio::sync::broadcast::error::RecvError::Closed)
    ));
    let err = c.power().await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Closed { .. } | ClientError::ConnectionLost { .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn notices_end_when_the_meter_closes() {
    let (target, _) = fake(INFO.to_vec(), Box::new(|_| b"CLOSE".to_vec()), false).await;
    let c = Client::connect_with(&target, opts()).await.unwrap();
    let mut notices = c.notices();
    let _ = c.power().await;
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(20), notices.recv()).await,
        Ok(Err(tokio::sync::broadcast::error::RecvError::Closed))
    ));
    assert!(matches!(c.closed().await, ClientError::Closed { .. }));
}
