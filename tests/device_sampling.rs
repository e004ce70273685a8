//! Sampling sessions through the engine (PROTOCOL.md §3, §5, §6): packet numbers, flow control,
//! slots, scheduled start, bounded buffers, destinations.

mod device_support;

use core::time::Duration;
use device_support::*;
use smartmeter::device::{ConnKind, Event, Instant};

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line.trim_start_matches("Info:").trim_end()).expect("json")
}

/// Runs `ms` in blocks, reading the connection's output after every block.
fn run_reading(b: &mut Bench, c: smartmeter::device::ConnId, ms: u64, out: &mut Vec<u8>) {
    let end = b.now + Duration::from_millis(ms);
    while b.now < end {
        b.run(b.block_ms);
        out.extend(b.take(c));
    }
}

#[test]
fn packet_numbers_are_contiguous_from_zero_and_stop_flushes() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    let r = b.cmd(
        c,
        r#"{"cmd":"sample","payload":{"type":"TCP","measures":"v,i_L1","rate":1000}}"#,
    );
    assert_eq!(
        r,
        "Info:{\"error\":false,\"cmd\":\"sample\",\"measures\":\"v,i_L1\",\"chunksize\":1024,\"samplingrate\":1000,\"conn_type\":\"TCP\",\"measurements\":2,\"prefix\":true,\"flowCtr\":false,\"unit\":\"V,mA\",\"startTs\":\"1614681575.000\"}\r\n"
    );
    let mut out = Vec::new();
    run_reading(&mut b, c, 2050, &mut out);
    out.extend(b.cmd_bytes(c, r#"{"cmd":"stop"}"#));
    let (lines, frames) = split_stream(&out);
    assert!(frames.len() >= 16);
    for (k, (pkt, vals)) in frames.iter().enumerate() {
        assert_eq!(*pkt as usize, k, "contiguous packet numbers");
        if k + 1 < frames.len() {
            assert_eq!(
                vals.len(),
                256,
                "regular frames carry exactly chunksize bytes"
            );
        }
    }
    let total: usize = frames.iter().map(|(_, v)| v.len() / 2).sum();
    let stop = json(lines.last().unwrap());
    assert_eq!(stop["cmd"], "stop");
    assert_eq!(stop["msg"], "Received stop command");
    assert_eq!(stop["samples"].as_u64().unwrap() as usize, total);
    assert_eq!(stop["sent_samples"].as_u64().unwrap() as usize, total);
    assert_eq!(total, 2050, "1000 Hz for 2.05 s");
    assert_eq!(stop["start_ts"], "1614681575.000");
    assert_eq!(stop["stop_ts"], "1614681577.050");
    assert_eq!(stop["sample_duration"], 2050);
    assert!((stop["avg_rate"].as_f64().unwrap() - 1000.0).abs() < 1.0);
    // the once-per-second rate line
    assert!(
        lines
            .iter()
            .any(|l| l == "Info:[I]03/02 10:39:36: 1000.00Hz, 1000s\r\n"),
        "{lines:?}"
    );
    // values are volts and milliamps (after the resampler's 20 ms start-up transient)
    let vmax = frames
        .iter()
        .skip(1)
        .flat_map(|(_, v)| v.iter().step_by(2))
        .fold(0f32, |m, x| m.max(x.abs()));
    let imax = frames
        .iter()
        .skip(1)
        .flat_map(|(_, v)| v.iter().skip(1).step_by(2))
        .fold(0f32, |m, x| m.max(x.abs()));
    assert!((vmax - 325.3).abs() < 2.0, "{vmax}");
    assert!((imax - 7071.0).abs() < 50.0, "{imax}");
}

#[test]
fn flow_control_sends_exactly_n_samples_per_request() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    assert_eq!(
        b.cmd(c, r#"{"cmd":"reqSamples","samples":100}"#),
        "Info:{\"error\":true,\"cmd\":\"reqSamples\",\"msg\":\"Not sampling\"}\r\n"
    );
    let r = b.cmd(
        c,
        r#"{"cmd":"sample","payload":{"type":"TCP","rate":2000,"flowCtr":"true"}}"#,
    );
    assert!(r.contains("\"flowCtr\":true"), "{r}");
    let mut out = Vec::new();
    run_reading(&mut b, c, 500, &mut out);
    assert!(split_stream(&out).1.is_empty(), "nothing before credit");
    assert_eq!(
        b.cmd(c, r#"{"cmd":"reqSamples","samples":5}"#),
        "Info:{\"error\":true,\"cmd\":\"reqSamples\",\"msg\":\"Samples must be 10-2000\"}\r\n"
    );
    for (k, n) in [100usize, 10, 2000, 37].into_iter().enumerate() {
        b.feed(
            c,
            format!("{{\"cmd\":\"reqSamples\",\"samples\":{n}}}\n{{\"cmd\":\"info\"}}\n")
                .as_bytes(),
        );
        let mut out = b.take(c);
        run_reading(&mut b, c, 1100, &mut out);
        let (lines, frames) = split_stream(&out);
        assert_eq!(frames.len(), 1, "one frame per request: {lines:?}");
        assert_eq!(frames[0].0 as usize, k, "packet numbers continue");
        assert_eq!(frames[0].1.len(), n * 6, "exactly N samples");
        // the frame, then its reply, then the reply of the line after it (ordering promise)
        let replies: Vec<&String> = lines.iter().filter(|l| l.starts_with("Info:{")).collect();
        assert!(replies.len() >= 2, "{lines:?}");
        assert_eq!(
            replies[0],
            "Info:{\"error\":false,\"cmd\":\"reqSamples\"}\r\n"
        );
        assert!(replies[1].starts_with("Info:{\"cmd\":\"info\""));
        let frame_at = find(&out, b"Data:");
        let reply_at = find(&out, b"Info:{\"error\":false,\"cmd\":\"reqSamples\"}");
        assert!(frame_at < reply_at);
    }
    // cts resumes continuous sending
    // (buffered samples follow the reply at once)
    assert!(
        b.cmd_bytes(c, r#"{"cmd":"cts","value":true}"#)
            .starts_with(b"Info:{\"error\":false,\"cmd\":\"cts\",\"value\":true}\r\nData:")
    );
    let mut out = Vec::new();
    run_reading(&mut b, c, 300, &mut out);
    assert!(!split_stream(&out).1.is_empty());
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle")
}

#[test]
fn flow_control_errors() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.cmd(c, r#"{"cmd":"sample","payload":{"type":"TCP","rate":100}}"#);
    assert_eq!(
        b.cmd(c, r#"{"cmd":"reqSamples","samples":10}"#),
        "Info:{\"error\":true,\"cmd\":\"reqSamples\",\"msg\":\"Flow control not enabled\"}\r\n"
    );
}

#[test]
fn stop_answers_a_pending_request_first() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.cmd(
        c,
        r#"{"cmd":"sample","payload":{"type":"TCP","rate":1000,"flowCtr":true}}"#,
    );
    b.run(100); // ~80 samples buffered (the resampler has 20 ms latency at 1000 Hz)
    b.take(c);
    b.feed(
        c,
        b"{\"cmd\":\"reqSamples\",\"samples\":2000}\n{\"cmd\":\"stop\"}\n",
    );
    let out = b.take(c);
    let (lines, frames) = split_stream(&out);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].1.len() / 6 >= 10);
    assert_eq!(
        lines[0],
        "Info:{\"error\":false,\"cmd\":\"reqSamples\"}\r\n"
    );
    assert!(lines[1].starts_with("Info:{\"error\":false,\"cmd\":\"stop\""));
    assert!(!b.dev.is_busy());
}

#[test]
fn slots_send_only_in_the_slot_second() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    let r = b.cmd(
        c,
        r#"{"cmd":"sample","payload":{"type":"TCP","rate":100,"slot":[1,3]}}"#,
    );
    assert!(
        r.contains("\"cmd\":\"sample\",\"slot\":[1,3],\"measures\""),
        "{r}"
    );
    let mut frames_at = Vec::new();
    let mut total = 0;
    let end = b.now + Duration::from_secs(10);
    while b.now < end {
        b.run(b.block_ms);
        let (_, frames) = split_stream(&b.take(c));
        for (pkt, v) in frames {
            frames_at.push((pkt, b.now.as_secs()));
            total += v.len() / 6;
        }
    }
    assert!(!frames_at.is_empty());
    for (pkt, s) in &frames_at {
        assert_eq!(s % 3, 1, "frame {pkt} sent in second {s}");
    }
    // nothing is lost: everything before the last slot second went out
    assert!(total >= 700, "{total}");
    assert!(b.cmd(c, r#"{"cmd":"stop"}"#).contains("\"error\":false"));
    let d = b.tcp(2);
    assert_eq!(
        b.cmd(
            d,
            r#"{"cmd":"sample","payload":{"type":"TCP","slot":[3,3]}}"#
        ),
        "Info:{\"error\":true,\"cmd\":\"sample\",\"msg\":\"Invalid slot\"}\r\n"
    );
}

#[test]
fn scheduled_start_lands_on_a_positive_zero_crossing() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    let ahead = |s: f64| {
        format!(
            r#"{{"cmd":"sample","payload":{{"type":"TCP","measures":"v,i_L1","rate":8000,"time":{s}}}}}"#
        )
    };
    let err = "Info:{\"error\":true,\"cmd\":\"sample\",\"msg\":\"Start time must be 0.5-20 s ahead\"}\r\n";
    assert_eq!(b.cmd(c, &ahead(T0_S as f64 + 0.3)), err);
    assert_eq!(b.cmd(c, &ahead(T0_S as f64 + 20.5)), err);
    // start 1.0037 s ahead: not on a crossing of the 50 Hz source
    let r = b.cmd(c, &ahead(T0_S as f64 + 1.0037));
    assert!(r.contains("\"startTs\":\"1614681576.003\""), "{r}");
    assert!(b.dev.is_busy());
    let mut out = Vec::new();
    run_reading(&mut b, c, 1500, &mut out);
    let (_, frames) = split_stream(&out);
    let first = &frames[0].1;
    // first sample: just at/after the positive-going crossing of v_l1
    assert!(first[0] >= 0.0 && first[0] < 13.0, "v0 = {}", first[0]);
    assert!(first[2] > first[0], "rising");
    let (lines, _) = split_stream(&b.cmd_bytes(c, r#"{"cmd":"stop"}"#));
    let stop = json(lines.last().unwrap());
    // 1.0037 s → the next positive-going crossing of the 50 Hz cosine L1 is at 1.015 s
    assert_eq!(stop["start_ts"], "1614681576.015");
}

#[test]
fn slow_reader_gets_counted_drops_with_bounded_memory() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.cmd(
        c,
        r#"{"cmd":"sample","payload":{"type":"TCP","rate":8000}}"#,
    );
    let mut peak_heap = 0;
    for _ in 0..500 {
        b.run(10); // 5 s of 8 kHz six-channel data, never read
        peak_heap = peak_heap.max(b.dev.heap_bytes());
    }
    let opts = b.dev.options().clone();
    assert!(
        peak_heap
            <= opts.out_queue_bytes + opts.text_slack_bytes + opts.sample_ring_bytes + 32 * 1024,
        "heap {peak_heap}"
    );
    let out = b.take(c);
    assert!(out.len() <= opts.out_queue_bytes + opts.text_slack_bytes);
    let mut all = out.clone();
    all.extend(b.cmd_bytes(c, r#"{"cmd":"stop"}"#));
    let (lines, frames) = split_stream(&all);
    // gaps in packet numbers reveal the dropped frames
    let last = frames.last().unwrap().0;
    assert!(last as usize + 1 > frames.len(), "gaps expected");
    let stop = json(lines.last().unwrap());
    let taken = stop["samples"].as_u64().unwrap();
    let sent = stop["sent_samples"].as_u64().unwrap();
    assert_eq!(taken, 40_000);
    let received: u64 = frames.iter().map(|(_, v)| v.len() as u64 / 6).sum();
    assert_eq!(sent, received);
    // A slow reader's losses are its gaps, not device errors (no `MISSED` line: that is for the
    // session's own ring overflowing, §5).
    assert!(taken > sent);
    assert!(!lines.iter().any(|l| l.contains("MISSED")), "{lines:?}");
}

#[test]
fn closing_the_owner_stops_and_question_mark_stops() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.cmd(c, r#"{"cmd":"sample","payload":{"type":"TCP","rate":100}}"#);
    b.dev.handle_closed(c, b.now);
    assert!(!b.dev.is_busy());
    let d = b.tcp(2);
    b.cmd(d, r#"{"cmd":"sample","payload":{"type":"TCP","rate":100}}"#);
    b.run(50);
    let out = b.cmd_bytes(d, "?");
    assert!(out.ends_with(b"Info:Setup done\r\n"));
    assert!(!b.dev.is_busy());
}

#[test]
fn udp_frames_go_to_the_requester_port() {
    let mut b = Bench::new();
    let c = b.tcp(4000);
    let r = b.cmd(
        c,
        r#"{"cmd":"sample","payload":{"type":"UDP","port":5555,"rate":1000,"measures":"v,i_L2"}}"#,
    );
    assert!(r.starts_with("Info:{\"error\":false,\"cmd\":\"sample\",\"port\":5555,\"measures\":\"v,i_L2\",\"chunksize\":512,"), "{r}");
    b.drain_events();
    b.run(1000);
    let ev = b.drain_events();
    let grams: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::SendDatagram { addr, bytes } => Some((addr, bytes)),
            _ => None,
        })
        .collect();
    assert!(grams.len() >= 15);
    for (k, (addr, bytes)) in grams.iter().enumerate() {
        assert_eq!(**addr, peer(5555));
        let (_, frames) = split_stream(bytes);
        assert_eq!(frames[0].0 as usize, k);
        assert_eq!(frames[0].1.len(), 128);
    }
    assert!(b.cmd(c, r#"{"cmd":"stop"}"#).contains("\"sent_samples\":"));
    assert_eq!(
        b.cmd(c, r#"{"cmd":"sample","payload":{"type":"UDP","port":0}}"#),
        "Info:{\"error\":true,\"cmd\":\"sample\",\"msg\":\"Unsupported UDP port: 0\"}\r\n"
    );
}

#[test]
fn serial_frames_end_with_crlf() {
    let mut b = Bench::new();
    let s = b.dev.handle_connected(b.now, ConnKind::Serial);
    b.take(s);
    let r = b.cmd(
        s,
        r#"{"cmd":"sample","payload":{"type":"Serial","rate":8000,"measures":"v,i_L1"}}"#,
    );
    assert!(r.contains("\"chunksize\":128,"), "{r}");
    b.run(20);
    let out = b.take(s);
    let frame_len = 11 + 128 + 2;
    assert!(
        out.starts_with(b"Data:"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(&out[frame_len - 2..frame_len], b"\r\n");
    let c = b.tcp(1);
    b.cmd(s, r#"{"cmd":"stop"}"#);
    // no serial port: an error
    let opts = smartmeter::device::DeviceOptions {
        has_serial: false,
        ..Default::default()
    };
    let mut b2 = Bench::with(opts, Default::default());
    let c2 = b2.tcp(1);
    assert_eq!(
        b2.cmd(c2, r#"{"cmd":"sample","payload":{"type":"Serial"}}"#),
        "Info:{\"error\":true,\"cmd\":\"sample\",\"msg\":\"Unsupported sampling type: Serial\"}\r\n"
    );
    let _ = c;
}

#[test]
fn raw_stream_on_54322() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    assert_eq!(
        b.cmd(c, r#"{"cmd":"sample","payload":{"type":"FFMPEG"}}"#),
        "Info:{\"error\":true,\"cmd\":\"sample\",\"msg\":\"Could not connect to TCP stream\"}\r\n"
    );
    let raw = b
        .dev
        .handle_connected(b.now, ConnKind::RawStream { peer: peer(9) });
    assert!(b.dev.is_busy());
    b.run(100);
    let bytes = b.take(raw);
    assert_eq!(bytes.len() % 24, 0, "raw f32le, 6 channels, no prefix");
    assert!(!bytes.starts_with(b"Data:") && !bytes.starts_with(b"Info:"));
    // a second reader is closed at once
    let raw2 = b
        .dev
        .handle_connected(b.now, ConnKind::RawStream { peer: peer(10) });
    assert!(b.drain_events().contains(&Event::Close(raw2)));
    // FFMPEG re-configures the stream even though the device is busy
    let r = b.cmd(
        c,
        r#"{"cmd":"sample","payload":{"type":"FFMPEG","rate":1000,"measures":"v,i_L1"}}"#,
    );
    assert!(r.contains("\"conn_type\":\"FFMPEG\""), "{r}");
    assert!(r.contains("\"prefix\":false"), "{r}");
    b.take(raw);
    let mut bytes = Vec::new();
    run_reading(&mut b, raw, 1000, &mut bytes);
    assert_eq!(
        bytes.len(),
        1024 * 7,
        "1000 Hz, 2 channels, whole 1024-byte chunks"
    );
    // stop ends the stream and closes the reader
    assert!(b.cmd(c, r#"{"cmd":"stop"}"#).contains("\"error\":false"));
    b.take(raw); // the flushed tail, then the engine closes the reader
    assert!(b.drain_events().contains(&Event::Close(raw)));
    let _ = Instant::EPOCH;
}

#[test]
fn mqtt_sampling_publishes_each_sample() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.cmd(c, r#"{"cmd":"mqttServer","payload":{"server":"broker"}}"#);
    b.dev.handle_mqtt_connected(b.now, true);
    b.take(c);
    b.drain_events();
    let r = b.cmd(
        c,
        r#"{"cmd":"sample","payload":{"type":"MQTT","rate":10,"measures":"p,q"}}"#,
    );
    assert!(r.contains("\"conn_type\":\"MQTT\""), "{r}");
    b.run(1000);
    let ev = b.drain_events();
    let pubs: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Publish { topic, payload, .. }
                if topic == "powermeter/smartmeterX/state/info" =>
            {
                Some(payload.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(pubs.len(), 10);
    let v: serde_json::Value = serde_json::from_slice(&pubs[0]).unwrap();
    assert_eq!(v["unit"], "W,W,W,VAR,VAR,VAR");
    let vals = v["values"].as_array().unwrap();
    assert_eq!(vals.len(), 6);
    let last: serde_json::Value = serde_json::from_slice(pubs.last().unwrap()).unwrap();
    assert!(
        (last["values"][0].as_f64().unwrap() - 996.0).abs() < 5.0,
        "{last}"
    );
    assert!(
        (last["values"][3].as_f64().unwrap() - 575.0).abs() < 5.0,
        "{last}"
    );
    assert!(ev.iter().any(|e| matches!(e, Event::Publish { topic, payload, .. } if topic.ends_with("state/sample") && payload == b"on")));
}

#[test]
fn ntp_confidence_before_start() {
    use smartmeter::device::NtpResult;
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.drain_events();
    b.dev.handle_ntp(b.now, NtpResult::Failed); // settle the boot-time request
    b.take(c);
    b.feed(c, b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"rate\":100,\"ntpConf\":20}}\n{\"cmd\":\"log\",\"level\":\"error\"}\n",
    );
    assert!(b.dev.is_busy(), "busy while waiting for NTP confidence");
    assert_eq!(b.take_text(c), "");
    assert!(
        b.drain_events()
            .iter()
            .any(|e| matches!(e, Event::NtpRequest { .. }))
    );
    // 60 ms round trip: confidence 30 ms, not enough; asks again
    b.dev.handle_ntp(
        b.now,
        NtpResult::Synced {
            offset_us: 0,
            round_trip_us: 60_000,
        },
    );
    assert!(
        b.drain_events()
            .iter()
            .any(|e| matches!(e, Event::NtpRequest { .. }))
    );
    b.dev.handle_ntp(
        b.now,
        NtpResult::Synced {
            offset_us: 0,
            round_trip_us: 30_000,
        },
    );
    let out = b.take_text(c);
    let replies: Vec<&str> = out.lines().filter(|l| l.starts_with("Info:{")).collect();
    assert!(
        replies[0].starts_with("Info:{\"error\":false,\"cmd\":\"sample\""),
        "{out}"
    );
    assert!(replies[0].ends_with(",\"ntpConfidence\":15}"), "{out}");
    assert_eq!(
        replies[1],
        "Info:{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: error\"}"
    );
    b.cmd(c, r#"{"cmd":"stop"}"#);
    // never reached within 10 tries
    b.feed(
        c,
        b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"ntpConf\":1}}\n",
    );
    for _ in 0..10 {
        b.dev.handle_ntp(
            b.now,
            NtpResult::Synced {
                offset_us: 0,
                round_trip_us: 50_000,
            },
        );
    }
    assert_eq!(
        b.take_text(c),
        "Info:{\"error\":true,\"cmd\":\"sample\",\"msg\":\"Cannot reach NTP confidence of 1 ms\"}\r\n"
    );
    assert!(!b.dev.is_busy());
}

#[test]
fn resampled_scheduled_start_is_aligned_to_the_crossing() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    let r = b.cmd(
        c,
        &format!(
            r#"{{"cmd":"sample","payload":{{"type":"TCP","measures":"v,i_L1","rate":4000,"time":{}}}}}"#,
            T0_S as f64 + 0.6
        ),
    );
    assert!(r.contains("\"error\":false"), "{r}");
    let mut out = Vec::new();
    run_reading(&mut b, c, 1500, &mut out);
    let (_, frames) = split_stream(&out);
    let v: Vec<f32> = frames
        .iter()
        .flat_map(|(_, x)| x.iter().step_by(2).copied())
        .collect();
    // the filters were warmed up while waiting: the stream starts at the crossing, full amplitude
    // (within one output period: 325 V·sin(2π·50 Hz·250 µs) = 25.5 V)
    assert!(v[0] >= -1.0 && v[0] < 27.0 && v[1] > v[0], "{:?}", &v[..4]);
    let peak = v[..80].iter().fold(0f32, |m, x| m.max(*x));
    assert!((peak - 325.3).abs() < 3.0, "{peak}");
}
