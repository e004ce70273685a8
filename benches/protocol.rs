//! Protocol benchmarks, each against a baseline on the same input in the same group.
//!
//! - `protocol/parse_command`: a realistic mix of command lines through [`Command::parse`], versus
//!   `protocol/baseline_value_dispatch`: the same lines into `serde_json::Value`, then a match on `cmd`.
//! - `frame/demux`: 1 MiB of 6-channel `Data:` frames with interleaved log lines, fed in 1460-byte
//!   pieces (one TCP segment) through [`Demux`], counting events, versus `frame/baseline_memcpy`: the
//!   same pieces copied into a buffer.
//!
//! Run briefly: `cargo bench --bench protocol -- --warm-up-time 1 --measurement-time 3`.
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smartmeter::wire::command::Command;
use smartmeter::wire::frame::{Demux, Event, Framing, Transport, chunk_size, encode_frame};

/// Command lines as host tools send them (canonical and hand-written forms).
const COMMANDS: &[&str] = &[
    r#"{"cmd":"info"}"#,
    r#"{"cmd":"getPower"}"#,
    r#"{"cmd":"getVoltage"}"#,
    r#"{"cmd":"getCurrent"}"#,
    r#"{"cmd":"getEnergy"}"#,
    r#"{"cmd":"sample","payload":{"type":"TCP","measures":"v,i","rate":8000,"prefix":true,"flowCtr":false}}"#,
    r#"{"cmd":"sample", "payload":{"type":"UDP","port":54323,"measures":"p,q","rate":50,"time":1614697443.5,"slot":[1,4],"ntpConf":20}}"#,
    r#"{"cmd":"reqSamples","samples":100}"#,
    r#"{"cmd":"cts","value":true}"#,
    r#"{"cmd":"log","level":"debug"}"#,
    r#"{"cmd":"mdns","payload":{"name":"smartmeter1"}}"#,
    r#"{"cmd":"calibration","cal":[1.0,1.0,0.98,1.02,1.0,1.0]}"#,
    r#"{"cmd":"resetEnergy","energy":[1.5,2.5,3.5],"ts":1614697441}"#,
    r#"{"cmd":"mqttServer","payload":{"server":"192.168.0.10:1883"}}"#,
    r#"{"cmd":"dailyRestart","hour":3,"minute":0}"#,
    r#"{"cmd":"stop"}"#,
    "{\"cmd\":\"getPhaseAngle\"}\r\n",
    "!",
];

fn protocol(c: &mut Criterion) {
    let lines: Vec<&[u8]> = COMMANDS.iter().map(|s| s.as_bytes()).collect();
    // The benchmark is only meaningful if every line is valid.
    for line in &lines {
        if let Err(e) = Command::parse(line) {
            panic!(
                "bench input {:?} does not parse: {e}",
                String::from_utf8_lossy(line)
            );
        }
    }
    let mut group = c.benchmark_group("protocol");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("parse_command", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for line in &lines {
                if let Ok(cmd) = Command::parse(black_box(line)) {
                    ok += cmd.name().len();
                    black_box(&cmd);
                }
            }
            ok
        })
    });
    group.bench_function("baseline_value_dispatch", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for line in &lines {
                let line = black_box(line).trim_ascii();
                let id = match line.first() {
                    Some(b'?') => 1,
                    Some(b'!') => 2,
                    _ => match serde_json::from_slice::<serde_json::Value>(line) {
                        Ok(v) => {
                            let id = match v.get("cmd").and_then(serde_json::Value::as_str) {
                                Some("info") => 3,
                                Some("getPower") => 4,
                                Some("getVoltage") => 5,
                                Some("getCurrent") => 6,
                                Some("getEnergy") => 7,
                                Some("getPhaseAngle") => 8,
                                Some("sample") => 9,
                                Some("reqSamples") => 10,
                                Some("cts") => 11,
                                Some("log") => 12,
                                Some("mdns") => 13,
                                Some("calibration") => 14,
                                Some("resetEnergy") => 15,
                                Some("mqttServer") => 16,
                                Some("dailyRestart") => 17,
                                Some("stop") => 18,
                                Some(_) => 19,
                                None => 0,
                            };
                            black_box(&v);
                            id
                        }
                        Err(_) => 0,
                    },
                };
                ok += id;
            }
            ok
        })
    });
    group.finish();
}

/// 1 MiB (at least) of default-session frames (6 channels, 8000 Hz over TCP: 1008-byte payloads) with
/// a sampling log line every 8 frames and a liveness line every 50.
fn frame_stream() -> (Vec<u8>, u64) {
    let cs = chunk_size(8000, 24, Transport::Tcp);
    let values: Vec<f32> = (0..cs / 4)
        .map(|i| (i as f32 * 0.1).sin() * 325.0)
        .collect();
    let mut frame = vec![0u8; Framing::PREFIXED.encoded_len(values.len())];
    let mut stream = Vec::with_capacity((1 << 20) + 4096);
    let mut events = 0u64;
    let mut packet = 0u32;
    while stream.len() < 1 << 20 {
        if let Ok(n) = encode_frame(&mut frame, packet, &values, Framing::PREFIXED) {
            stream.extend_from_slice(&frame[..n]);
            events += 1;
        }
        if packet % 8 == 7 {
            stream.extend_from_slice(b"Info:[I]11/27 07:40:00: 7999.87Hz, 16000s\r\n");
            events += 1;
        }
        if packet % 50 == 49 {
            stream.extend_from_slice(b"Info:{\"error\":false,\"cmd\":\"cts\"}\r\n");
            events += 1;
        }
        packet += 1;
    }
    (stream, events)
}

fn frame(c: &mut Criterion) {
    const SEGMENT: usize = 1460;
    let (stream, expected_events) = frame_stream();
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Bytes(stream.len() as u64));

    let mut demux = Demux::new();
    group.bench_function("demux", |b| {
        b.iter(|| {
            demux.clear();
            let mut events = 0u64;
            let mut samples = 0usize;
            for piece in black_box(&stream).chunks(SEGMENT) {
                demux.push(piece, |e| {
                    events += 1;
                    if let Ok(Event::Frame(f)) = e {
                        samples += f.payload.len();
                    }
                });
            }
            assert_eq!(events, expected_events);
            (events, samples)
        })
    });

    let mut sink = vec![0u8; 64 * 1024];
    group.bench_function("baseline_memcpy", |b| {
        b.iter(|| {
            let mut at = 0usize;
            for piece in black_box(&stream).chunks(SEGMENT) {
                if at + piece.len() > sink.len() {
                    at = 0;
                }
                sink[at..at + piece.len()].copy_from_slice(piece);
                at += piece.len();
            }
            black_box(&sink);
            at
        })
    });
    group.finish();
}

criterion_group!(benches, protocol, frame);
criterion_main!(benches);
