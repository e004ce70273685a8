//! Sampling sessions through the engine (docs/protocol.md §3, §5, §6): packet numbers, flow control,
//! slots, scheduled start, bounded buffers, destinations.

mod device_support;

use core::time::Duration;
use device_support::*;
use smartmeter::device::{Action, ConnKind, Instant};

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
    // 8000 -> 1000 Hz has a 20.125 ms group delay: the first sample whose filter input the session
    // gets describes T0 + 20.125 ms, and `startTs` names it
    assert_eq!(
        r,
        "Info:{\"error\":false,\"cmd\":\"sample\",\"measures\":\"v,i_L1\",\"chunksize\":1024,\"samplingrate\":1000,\"conn_type\":\"TCP\",\"measurements\":2,\"prefix\":true,\"flowCtr\":false,\"unit\":\"V,mA\",\"startTs\":\"1614681575.020\"}\r\n"
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
    // 1000 Hz from the first instant (20.125 ms) to the last one whose filter input arrived
    // (2050 - 20.125 ms)
    assert_eq!(total, 2010, "1000 Hz for 2.05 s less two group delays");
    assert_eq!(stop["start_ts"], "1614681575.020");
    assert_eq!(stop["stop_ts"], "1614681577.050");
    assert_eq!(stop["sample_duration"], 2029);
    let avg = stop["avg_rate"].as_f64().unwrap();
    assert!((avg - 2010.0 / 2.029875).abs() < 0.01, "{avg}");
    // the once-per-second rate line (the first second is short by the group delay)
    assert!(
        lines
            .iter()
            .any(|l| l == "Info:[I]03/02 10:39:37: 1000.00Hz, 1960s\r\n"),
        "{lines:?}"
    );
    // the first sample is the waveform at its instant (230 V / 5 A at 30°, 50 Hz cosine, t = 20.125 ms)
    let w = 2.0 * std::f64::consts::PI * 50.0 * 0.020125;
    let (v0, i0) = (325.27 * w.cos(), 7071.07 * (w - 30f64.to_radians()).cos());
    let first = &frames[0].1;
    assert!(
        (f64::from(first[0]) - v0).abs() < 0.5,
        "{} vs {v0}",
        first[0]
    );
    assert!(
        (f64::from(first[1]) - i0).abs() < 10.0,
        "{} vs {i0}",
        first[1]
    );
    // values are volts and milliamps (no start-up transient: every frame counts)
    let vmax = frames
        .iter()
        .flat_map(|(_, v)| v.iter().step_by(2))
        .fold(0f32, |m, x| m.max(x.abs()));
    let imax = frames
        .iter()
        .flat_map(|(_, v)| v.iter().skip(1).step_by(2))
        .fold(0f32, |m, x| m.max(x.abs()));
    assert!((vmax - 325.3).abs() < 2.0, "{vmax}");
    // (1 kHz samples a 50 Hz peak up to 9° off: up to 1.3 % low)
    assert!((7071.0 * 0.987..=7071.0 * 1.002).contains(&imax), "{imax}");
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
            Action::SendDatagram { addr, bytes } => Some((addr, bytes)),
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
    assert!(b.drain_events().contains(&Action::Close(raw2)));
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
    assert!(b.drain_events().contains(&Action::Close(raw)));
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
            Action::Publish { topic, payload, .. }
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
    assert!(ev.iter().any(|e| matches!(e, Action::Publish { topic, payload, .. } if topic.ends_with("state/sample") && payload == b"on")));
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
            .any(|e| matches!(e, Action::NtpRequest { .. }))
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
            .any(|e| matches!(e, Action::NtpRequest { .. }))
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

/// A `stop` from another connection cancels a `sample` waiting for NTP confidence: the waiting
/// `sample` is answered (it never started: `Cannot reach NTP confidence`), its held lines run, and the
/// stopper gets its own reply.
#[test]
fn stop_from_elsewhere_answers_a_sample_waiting_for_ntp_confidence() {
    use smartmeter::device::NtpResult;
    let mut b = Bench::new();
    let c = b.tcp(1);
    let other = b.tcp(2);
    b.drain_events();
    b.dev.handle_ntp(b.now, NtpResult::Failed); // settle the boot-time request
    b.take(c);
    b.take(other);
    b.feed(
        c,
        b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"ntpConf\":5}}\n{\"cmd\":\"log\",\"level\":\"error\"}\n",
    );
    assert!(b.dev.is_busy());
    assert_eq!(b.take_text(c), "");
    let stop = b.cmd(other, r#"{"cmd":"stop"}"#);
    assert!(stop.contains("\"cmd\":\"stop\""), "{stop}");
    let out = b.take_text(c);
    let replies: Vec<&str> = out.lines().filter(|l| l.starts_with("Info:{")).collect();
    assert_eq!(
        replies,
        [
            "Info:{\"error\":true,\"cmd\":\"sample\",\"msg\":\"Cannot reach NTP confidence of 5 ms\"}",
            "Info:{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: error\"}",
        ],
        "{out}"
    );
    assert!(!b.dev.is_busy());
    // A late NTP answer starts nothing.
    b.dev.handle_ntp(
        b.now,
        NtpResult::Synced {
            offset_us: 0,
            round_trip_us: 2_000,
        },
    );
    assert!(!b.dev.is_busy());
    assert_eq!(b.take_text(c), "");
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

/// Reads the connection block by block until `samples` samples of `ch` values arrived (at most
/// `max_ms`); returns them and the bench time at which the first frame was there.
fn collect_samples(
    b: &mut Bench,
    c: smartmeter::device::ConnId,
    samples: usize,
    ch: usize,
    max_ms: u64,
) -> (Vec<f32>, Instant) {
    let mut out = Vec::new();
    let mut values: Vec<f32> = Vec::new();
    let mut first_at = None;
    let end = b.now + Duration::from_millis(max_ms);
    while values.len() < samples * ch && b.now < end {
        b.run(b.block_ms);
        out.extend(b.take(c));
        let (_, frames) = split_stream(&out);
        if first_at.is_none() && !frames.is_empty() {
            first_at = Some(b.now);
        }
        values = frames.into_iter().flat_map(|(_, v)| v).collect();
    }
    (values, first_at.expect("no frame within max_ms"))
}

fn sample_cmd(measures: &str, rate: u32) -> String {
    format!(
        r#"{{"cmd":"sample","payload":{{"type":"TCP","measures":"{measures}","rate":{rate}}}}}"#
    )
}

/// Issue: below ~100 Hz a stream started ~127 output periods late and `startTs` named neither the
/// time of its first sample nor what `stop` reported. Now: the first sample is sent within one output
/// period plus 0.5 s (plus the chunk it waits for), and `startTs` = `start_ts` = the instant the first
/// sample describes. The source is a pure ramp on v_l1 (10 V/s from T0): a linear-phase filter passes
/// it unchanged, so every value names its instant (T0 + v/10 s).
#[test]
fn immediate_start_announces_the_instant_of_its_first_sample_at_every_rate() {
    const RAMP: f64 = 10.0;
    for source in [32_000u32, 8000] {
        for rate in [1u32, 5, 10, 20, 50, 100, 1000, 8000] {
            let mut b = Bench::at_rate(source);
            let mut cfg = b.src.grid.config().clone();
            for p in &mut cfg.phases {
                p.voltage_rms_v = 0.0;
                p.current_rms_a = 0.0;
            }
            b.src.grid.set_config(cfg);
            b.src.ramp_v_per_s = RAMP;
            let c = b.tcp(1);
            b.run(1000);
            b.take(c);
            let requested = b.now;
            let r = json(&b.cmd(c, &sample_cmd("v,i_L1", rate)));
            let start_ts = ts_us(r["startTs"].as_str().unwrap());
            let chunk = r["chunksize"].as_u64().unwrap() as usize / 8;
            let (v, first_frame) = collect_samples(&mut b, c, chunk.max(3), 2, 10_000);
            let (lines, _) = split_stream(&b.cmd_bytes(c, r#"{"cmd":"stop"}"#));
            let stop = json(lines.last().unwrap());
            let what = format!("{source} -> {rate} Hz");
            assert_eq!(stop["start_ts"], r["startTs"], "{what}");
            // the instant the first sample describes, from its value
            let t0 = (f64::from(v[0]) / RAMP) * 1e6 + T0_S as f64 * 1e6;
            assert!(
                start_ts as f64 - 20.0 <= t0 && t0 < start_ts as f64 + 1000.0 + 20.0,
                "{what}: first sample describes {t0} µs, startTs {start_ts}"
            );
            assert!(start_ts >= requested.as_micros() as i64, "{what}");
            // the following samples are one output period apart
            let period_us = 1e6 / f64::from(rate);
            for k in 1..3 {
                let tk = (f64::from(v[2 * k]) / RAMP) * 1e6 + T0_S as f64 * 1e6;
                assert!(
                    (tk - t0 - k as f64 * period_us).abs() < 20.0,
                    "{what}: sample {k} at {tk}"
                );
            }
            // the first frame: as soon as its chunk is complete, the first sample within one output
            // period plus the latency budget (0.5 s) of the request (+ one 10 ms block)
            let latency_us = first_frame.as_micros() - requested.as_micros();
            let bound_us = (chunk as f64 * period_us + 500_000.0 + 10_000.0) as u64;
            assert!(
                latency_us <= bound_us,
                "{what}: first frame after {latency_us} µs (bound {bound_us})"
            );
        }
    }
}

/// What a waveform stream below twice the line frequency carries (docs/protocol.md §5: "we resample
/// properly"): the anti-alias filter removes the 50 Hz fundamental and its harmonics, so the samples
/// are not instantaneous values of the waveform (which would alias to a slow beat) but its slow part:
/// here the front end's DC offsets of +1 % (2.3 V) and +2 % (100 mA).
#[test]
fn a_low_rate_waveform_stream_carries_the_slow_part_of_the_signal() {
    for rate in [1u32, 10, 50] {
        let mut b = Bench::at_rate(32_000);
        let mut cfg = b.src.grid.config().clone();
        cfg.voltage_dc_rel = 0.01;
        cfg.current_dc_rel = 0.02;
        cfg.frequency_hz = 49.9; // a fundamental just off 50 Hz would beat at 0.1 Hz if it aliased
        b.src.grid.set_config(cfg);
        let c = b.tcp(1);
        b.run(500);
        b.take(c);
        b.cmd(c, &sample_cmd("v,i_L1", rate));
        let n = (rate as usize * 2).max(4);
        let (v, _) = collect_samples(&mut b, c, n, 2, 10_000);
        assert!(v.len() >= 2 * n, "{rate} Hz: {} values", v.len());
        for (k, s) in v.chunks_exact(2).take(n).enumerate() {
            assert!(
                (s[0] - 2.3).abs() < 0.01,
                "{rate} Hz sample {k}: v {}",
                s[0]
            );
            assert!(
                (s[1] - 100.0).abs() < 0.5,
                "{rate} Hz sample {k}: i {}",
                s[1]
            );
        }
    }
}

fn assert_near(what: &str, got: f32, want: f64, tol: f64) {
    assert!(
        (f64::from(got) - want).abs() <= tol,
        "{what}: {got} vs {want} (± {tol})"
    );
}

/// Checks the first 10 samples of a derived stream against the grid's analytic values (0.1 %).
fn check_derived(b: &mut Bench, measures: &str, rate: u32, what: &str) {
    let exp = b.src.grid.expected(0); // every phase is the same 230 V / 5 A / 30°
    let c = b.tcp(7);
    let requested = b.now;
    let r = json(&b.cmd(c, &sample_cmd(measures, rate)));
    assert_eq!(r["error"], false, "{r}");
    let (v, _) = collect_samples(b, c, 10, 6, 12_000);
    assert!(v.len() >= 60, "{what}: {} values", v.len());
    let (lines, _) = split_stream(&b.cmd_bytes(c, r#"{"cmd":"stop"}"#));
    let stop = json(lines.last().unwrap());
    assert_eq!(stop["start_ts"], r["startTs"], "{what}");
    let start = ts_us(r["startTs"].as_str().unwrap());
    assert!(
        start >= requested.as_micros() as i64 / 1000 * 1000,
        "{what}"
    );
    let s = exp.apparent_power_va;
    for (k, x) in v.chunks_exact(6).take(10).enumerate() {
        for p in 0..3 {
            let w = format!("{what}: sample {k} L{}", p + 1);
            if measures == "p,q" {
                assert_near(&w, x[p], exp.active_power_w, 1e-3 * s);
                assert_near(&w, x[3 + p], exp.reactive_power_var, 1e-3 * s);
            } else {
                assert_near(&w, x[p], exp.vrms_v, 1e-3 * exp.vrms_v);
                assert_near(
                    &w,
                    x[3 + p],
                    exp.irms_a * 1000.0,
                    1e-3 * exp.irms_a * 1000.0,
                );
            }
        }
    }
    b.dev.handle_closed(c, b.now);
}

/// Issue: a derived stream started with the one-cycle estimator's unsettled windows (first P L1
/// 232.6 W for 1127 W, settling after ~4 samples; `v,i_RMS` sample 3 at 228.45 V). Now the one-cycle
/// estimator is forked from the running measuring estimator, so every sample is settled from the
/// first, and `startTs` is the request time (the first sample's instant).
#[test]
fn derived_streams_are_settled_from_their_first_sample() {
    for codes in [false, true] {
        for rate in [50u32, 10, 1] {
            for measures in ["p,q", "v,i_RMS"] {
                let mut b = Bench::new();
                if codes {
                    b.codes = Some(smartmeter::calibration::FrontEnd {
                        volts_per_code: 400.0 / 8_388_608.0,
                        amps_per_code: 10.0 / 8_388_608.0,
                    });
                }
                b.run(1000);
                let what = format!("{measures} at {rate} Hz (codes: {codes})");
                check_derived(&mut b, measures, rate, &what);
            }
        }
    }
}

/// Right after boot there is no settled estimator to fork: the session then starts a one-cycle
/// estimator cold (on the input kind the binding delivers: volts, or codes as the firmware does)
/// and announces a first sample 90 ms ahead, by which it has settled.
#[test]
fn derived_streams_right_after_boot_are_settled_too() {
    for codes in [false, true] {
        for rate in [50u32, 10] {
            for measures in ["p,q", "v,i_RMS"] {
                let mut b = Bench::new();
                if codes {
                    b.codes = Some(smartmeter::calibration::FrontEnd {
                        volts_per_code: 400.0 / 8_388_608.0,
                        amps_per_code: 10.0 / 8_388_608.0,
                    });
                }
                let what = format!("{measures} at {rate} Hz, cold (codes: {codes})");
                check_derived(&mut b, measures, rate, &what);
            }
        }
    }
}

/// Issue: a scheduled start at 8 kHz (32 kHz front end) began 1.5–1.7 samples after the zero crossing
/// (19–22 V), because the resampler's outputs were stamped with a wrong delay. Now the first sample of
/// a scheduled session is the first output whose instant is at or after L1's positive-going zero
/// crossing at or after `time` (found between two source samples by interpolation): within one output
/// period after it, so its value is in [0, V·sin(2π·f/rate)] on a rising edge, and `stop` reports its
/// instant as `start_ts`.
#[test]
fn scheduled_start_is_within_one_output_period_after_the_crossing() {
    use std::f64::consts::PI;
    let vp = 230.0 * std::f64::consts::SQRT_2;
    for (f, sim_blocks) in [(49.5, false), (50.0, false), (50.0, true), (50.5, true)] {
        let mut b = Bench::at_rate(32_000);
        if sim_blocks {
            b.block_frames = Some(1021); // µs-truncated, unevenly spaced block stamps
        }
        let mut cfg = b.src.grid.config().clone();
        cfg.frequency_hz = f;
        b.src.grid.set_config(cfg);
        // shift the grid's phase against the clock (L1 = Vp·cos(2π·f·(n + shift)/32000))
        let shift = (f * 37.0) as u64 % 640;
        for _ in 0..shift {
            b.src.grid.next_frame();
        }
        let c = b.tcp(1);
        b.run(500);
        for (k, rate) in [32_000u32, 8000, 4000, 1000].into_iter().enumerate() {
            let aheads: Vec<u64> = if sim_blocks {
                (0..8).map(|j| 600_000 + 2_300 * j).collect()
            } else {
                vec![600_000, 607_100, 613_300]
            };
            for ahead_us in aheads {
                b.take(c);
                let at_us = b.now.as_micros() + ahead_us + 1000 * k as u64;
                let cmd = format!(
                    r#"{{"cmd":"sample","payload":{{"type":"TCP","measures":"v,i_L1","rate":{rate},"time":{}}}}}"#,
                    at_us as f64 / 1e6
                );
                let r = json(&b.cmd(c, &cmd));
                assert_eq!(r["error"], false, "{r}");
                let (v, _) = collect_samples(&mut b, c, 2, 2, 3000);
                let (lines, _) = split_stream(&b.cmd_bytes(c, r#"{"cmd":"stop"}"#));
                let stop = json(lines.last().unwrap());
                let what = format!("{f} Hz grid, {rate} Hz, time +{ahead_us} µs, {sim_blocks}");
                // the analytic crossing: phase ≡ 3π/2 (mod 2π), first at or after `time`
                let t_of_phase = |cycles: f64| {
                    (cycles * 32_000.0 / f - shift as f64) / 32_000.0 * 1e6 + T0_S as f64 * 1e6
                };
                let at_rel = (at_us - T0_S * 1_000_000) as f64 / 1e6;
                let cycles_at = (at_rel * 32_000.0 + shift as f64) * f / 32_000.0;
                let mut m = (cycles_at - 0.75).ceil();
                if t_of_phase(m + 0.75) < at_us as f64 {
                    m += 1.0;
                }
                let crossing_us = t_of_phase(m + 0.75);
                // the first sample: within one output period after the crossing, rising
                let period_s = 1.0 / f64::from(rate);
                let max_v = vp * (2.0 * PI * f * period_s).sin();
                assert!(
                    v[0] >= -0.05 && f64::from(v[0]) <= max_v + 0.05,
                    "{what}: v0 = {} (max {max_v})",
                    v[0]
                );
                assert!(v[2] > v[0], "{what}: rising");
                // its instant, from its value, and start_ts (ms) name the same time
                let t_first = crossing_us + (f64::from(v[0]) / vp).asin() / (2.0 * PI * f) * 1e6;
                let start_ts = ts_us(stop["start_ts"].as_str().unwrap()) as f64;
                assert!(
                    t_first - start_ts > -20.0 && t_first - start_ts < 1000.0 + 20.0,
                    "{what}: first sample at {t_first} µs, start_ts {start_ts}"
                );
                // and the second sample follows one period later
                let t2 = crossing_us + (f64::from(v[2]) / vp).asin() / (2.0 * PI * f) * 1e6;
                assert!(
                    (t2 - t_first - period_s * 1e6).abs() < 20.0,
                    "{what}: second sample at {t2}"
                );
            }
        }
    }
}

/// Found by the `device` fuzz target: a session whose first samples came long after its start
/// instant (no blocks from the sample source for 10 s) aligned its resampler to the start and made
/// an output for every point since then at once: 480,000 values (3 MB) from one 10 ms block. It now
/// starts at the samples: memory stays bounded and the stream carries what the source delivered.
#[test]
fn a_session_whose_samples_come_late_starts_at_the_samples() {
    let mut b = Bench::at_rate(2000);
    let c = b.tcp(1);
    let r = json(&b.cmd(c, &sample_cmd("v,i,v,i,v,i", 8000)));
    assert_eq!(r["error"], false, "{r}");
    b.idle(10_000);
    let mut out = Vec::new();
    run_reading(&mut b, c, 100, &mut out);
    let heap = b.dev.heap_bytes();
    assert!(heap < 200_000, "heap {heap}");
    let (_, frames) = split_stream(&out);
    let samples: usize = frames.iter().map(|(_, v)| v.len() / 6).sum();
    // 100 ms at 8 kHz, less what the last chunk still holds
    assert!((600..=810).contains(&samples), "{samples} samples");
    // and they are the grid's voltage, not the zeros of the 10 s gap
    let peak = frames
        .iter()
        .flat_map(|(_, v)| v.iter().step_by(2))
        .fold(0f32, |m, x| m.max(x.abs()));
    assert!(peak > 300.0, "{peak}");
}
