//! The client library in-process against `smartmeter-sim` as a process.
#![cfg(all(feature = "client", feature = "sim"))]

mod sim_support;

use sim_support::Sim;
use smartmeter::client::{Client, ClientError, Notice, Target};
use smartmeter::wire::command::{Measures, SampleRequest, StreamType};
use smartmeter::wire::reply::Reply;

fn target(sim: &Sim) -> Target {
    Target::parse(&sim.host()).unwrap()
}

#[tokio::test]
async fn typed_helpers_read_the_grid() {
    let sim = Sim::start_for_clients(&[]);
    let c = Client::connect(&target(&sim)).await.unwrap();
    let info = c.connect_info();
    assert_eq!(info.name, "simtest");
    assert!(!info.busy, "state idle");
    // Right after boot the meter has no complete window yet (values are null): wait for one.
    let mut p = c.power().await.unwrap();
    for _ in 0..100 {
        if p.active_w.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        p = c.power().await.unwrap();
    }
    let v = c.voltage_v().await.unwrap();
    let i = c.current_ma().await.unwrap();
    for k in 0..3 {
        assert!(v[k].is_some() && i[k].is_some() && p.active_w[k].is_some());
    }
    let e = c.energy().await.unwrap();
    assert!(e.start_unix_s > 0);
    assert!(c.phase_angle_deg().await.is_ok());
    assert!(c.frequency_hz().await.is_ok());
    let r = c.set_name("renamed").await.unwrap();
    assert!(matches!(r.reply(), Reply::Mdns { name } if name == "renamed"));
    let err = c.set_name("bad name!").await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidCommand(_)));
    let err = c.del_wifi("nope").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the meter refused `delWifi`: SSID nope not found"
    );
    c.ping().await.unwrap();
}

#[tokio::test]
async fn sampling_stream_is_gapless_and_stop_reports_the_session() {
    let sim = Sim::start_for_clients(&[]);
    let c = Client::connect(&target(&sim)).await.unwrap();
    let mut notices = c.notices();
    let mut req = SampleRequest::new(StreamType::Tcp);
    req.rate_hz = 8000;
    let mut s = c.sample(req).await.unwrap();
    assert_eq!(s.info().channels.len(), 6);
    assert_eq!(s.info().rate_hz, 8000);
    let mut frames = 0usize;
    let mut expect_packet = 0u32;
    while frames < 16_000 {
        let b = s.next().await.unwrap().unwrap();
        assert_eq!(b.packet, expect_packet);
        assert_eq!(b.lost_packets, 0);
        expect_packet += 1;
        frames += b.frames();
    }
    // Other requests are answered while frames flow; the busy guard is the meter's.
    let busy = c.power().await.unwrap_err();
    assert!(matches!(busy, ClientError::Busy { .. }), "{busy}");
    let stats = s.stats();
    assert_eq!(stats.lost_packets, 0);
    let stop = s.stop().await.unwrap();
    assert_eq!(stop.cmd(), Some("stop"));
    assert!(matches!(stop.reply(), Reply::Stopped(s) if s.samples >= 16_000));
    assert!(matches!(c.info().await.unwrap().reply(), Reply::Info(i) if !i.busy));
    // The per-second sampling log line came through as a notice.
    let mut saw_rate_line = false;
    while let Ok(n) = notices.try_recv() {
        if let Notice::Log(l) = n {
            saw_rate_line |= l.text.contains("Hz, ");
        }
    }
    assert!(saw_rate_line, "no sampling log line");
}

#[tokio::test]
async fn flow_control_by_req_samples() {
    let sim = Sim::start_for_clients(&[]);
    let c = Client::connect(&target(&sim)).await.unwrap();
    let mut req = SampleRequest::new(StreamType::Tcp);
    req.rate_hz = 2000;
    req.measures = Measures::VoltCurrentL1;
    req.flow_control = true;
    let mut s = c.sample(req).await.unwrap();
    s.set_flow_credit(500);
    for _ in 0..3 {
        let b = s.next().await.unwrap().unwrap();
        assert_eq!(
            b.frames(),
            500,
            "each reqSamples answer is one frame of exactly N samples"
        );
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn udp_reception() {
    let sim = Sim::start_for_clients(&[]);
    let c = Client::connect(&target(&sim)).await.unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut req = SampleRequest::new(StreamType::Udp { port });
    req.rate_hz = 4000;
    let mut s = c.sample_udp(req).await.unwrap();
    assert_eq!(s.info().stream, StreamType::Udp { port });
    let mut frames = 0;
    while frames < 4000 {
        let b = s.next().await.unwrap().unwrap();
        frames += b.frames();
    }
    let stop = s.stop().await.unwrap();
    assert_eq!(stop.cmd(), Some("stop"));
}

#[tokio::test]
async fn get_log_and_drop_stops_the_session() {
    let sim = Sim::start_for_clients(&[]);
    let c = Client::connect(&target(&sim)).await.unwrap();
    let _ = c.request_raw("{\"cmd\":\"bogus\"}").await.unwrap();
    let rows = c.get_log().await.unwrap();
    assert!(
        rows.iter().any(|r| r.ends_with("Received unknown command")),
        "{rows:?}"
    );
    let mut s = c.sample(SampleRequest::new(StreamType::Tcp)).await.unwrap();
    s.next().await.unwrap().unwrap();
    drop(s);
    // A second client sees the meter idle once the stop went through.
    let other = Client::connect(&target(&sim)).await.unwrap();
    let mut idle = false;
    for _ in 0..50 {
        if matches!(other.info().await.unwrap().reply(), Reply::Info(i) if !i.busy) {
            idle = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(idle, "dropping the stream did not stop the session");
}
