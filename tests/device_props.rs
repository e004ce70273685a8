//! Property test: any interleaving of commands, partial lines, junk, samples, timeouts, NTP results
//! and reconnects from 3 connections never panics, every line gets at most one reply, and memory
//! stays bounded.

mod device_support;

use core::time::Duration;
use device_support::*;
use proptest::prelude::*;
use smartmeter::device::{ConnId, ConnKind, NtpResult, PhysicalBlock};

const LINES: &[&str] = &[
    r#"{"cmd":"info"}"#,
    r#"{"cmd":"getPower"}"#,
    r#"{"cmd":"getEnergy"}"#,
    r#"{"cmd":"getQuality"}"#,
    r#"{"cmd":"log","level":"all"}"#,
    r#"{"cmd":"log","level":"error"}"#,
    r#"{"cmd":"sample","payload":{"type":"TCP","rate":1000}}"#,
    r#"{"cmd":"sample","payload":{"type":"TCP","rate":500,"flowCtr":true}}"#,
    r#"{"cmd":"sample","payload":{"type":"UDP","rate":2000,"measures":"v,i_L3"}}"#,
    r#"{"cmd":"sample","payload":{"type":"TCP","rate":20,"measures":"p,q","slot":[0,2]}}"#,
    r#"{"cmd":"sample","payload":{"type":"TCP","time":1614681576.2}}"#,
    r#"{"cmd":"sample","payload":{"type":"TCP","ntpConf":50}}"#,
    r#"{"cmd":"reqSamples","samples":10}"#,
    r#"{"cmd":"reqSamples","samples":2000}"#,
    r#"{"cmd":"cts","value":false}"#,
    r#"{"cmd":"cts","value":true}"#,
    r#"{"cmd":"stop"}"#,
    r#"{"cmd":"ntp"}"#,
    r#"{"cmd":"mdns","payload":{"name":"m2"}}"#,
    r#"{"cmd":"addWifi","payload":{"ssid":"x","pwd":"y"}}"#,
    r#"{"cmd":"calibration","calV":1.1,"calI":0.9}"#,
    r#"{"cmd":"resetEnergy"}"#,
    r#"{"cmd":"getLog"}"#,
    r#"{"cmd":"clearLog"}"#,
    r#"{"cmd":"timezone","offset":120}"#,
    r#"{"cmd":"streamServer","payload":{"server":"10.0.0.1"}}"#,
    r#"{"cmd":"restart"}"#,
    r#"{"cmd":"auth","token":"x"}"#,
    r#"{"cmd":"nope"}"#,
    "?",
    "!",
    "{bad json",
    "",
];

#[derive(Debug, Clone)]
enum Op {
    Line(usize, usize),
    Bytes(usize, Vec<u8>),
    Long(usize, usize),
    Samples(u64),
    Read(usize, usize),
    Ntp(bool, u64),
    Reconnect(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, 0..LINES.len()).prop_map(|(c, l)| Op::Line(c, l)),
        1 => (0..3usize, proptest::collection::vec(any::<u8>(), 0..80)).prop_map(|(c, b)| Op::Bytes(c, b)),
        1 => (0..3usize, 590..700usize).prop_map(|(c, n)| Op::Long(c, n)),
        3 => (1..400u64).prop_map(Op::Samples),
        3 => (0..3usize, 1..5000usize).prop_map(|(c, n)| Op::Read(c, n)),
        1 => (any::<bool>(), 0..200_000u64).prop_map(|(ok, rt)| Op::Ntp(ok, rt)),
        1 => (0..3usize).prop_map(Op::Reconnect),
    ]
}

/// Counts replies in a connection's byte stream: JSON replies (`Info:{"error"`), `info` replies and
/// `Setup done`. The unprompted `info` on connect is counted as well (one per connection).
fn count_replies(bytes: &[u8]) -> usize {
    let mut n = 0;
    for pat in [
        &b"Info:{\"error\""[..],
        b"Info:{\"cmd\":\"info\"",
        b"Info:Setup done",
    ] {
        n += bytes.windows(pat.len()).filter(|w| *w == pat).count();
    }
    n
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_interleaving_is_safe(ops in proptest::collection::vec(op(), 1..60)) {
        let mut b = Bench::new();
        let mut conns: Vec<ConnId> = (0..3).map(|k| b.dev.handle_connected(b.now, ConnKind::Command { peer: peer(k) })).collect();
        let mut lines_sent = [0usize; 3];
        let mut connects = [1usize; 3];
        let mut got: [Vec<u8>; 3] = Default::default();
        let opts = b.dev.options().clone();
        let bound = opts.out_queue_bytes + opts.text_slack_bytes + 48_100;
        for op in ops {
            match op {
                Op::Line(c, l) => {
                    let line = format!("{}\n", LINES[l]);
                    b.feed(conns[c], line.as_bytes());
                    lines_sent[c] += 1;
                }
                Op::Bytes(c, bytes) => {
                    lines_sent[c] += bytes.iter().filter(|&&x| x == b'\n').count();
                    b.feed(conns[c], &bytes);
                }
                Op::Long(c, n) => {
                    let mut l = vec![b'a'; n];
                    l.push(b'\n');
                    b.feed(conns[c], &l);
                    lines_sent[c] += 1;
                }
                Op::Samples(ms) => b.run(ms),
                Op::Read(c, n) => {
                    let mut buf = vec![0u8; n];
                    let k = b.dev.poll_output(conns[c], &mut buf);
                    got[c].extend_from_slice(&buf[..k]);
                }
                Op::Ntp(ok, rt) => {
                    let r = if ok { NtpResult::Synced { offset_us: 1000, round_trip_us: rt } } else { NtpResult::Failed };
                    b.dev.handle_ntp(b.now, r);
                }
                Op::Reconnect(c) => {
                    let all = b.take(conns[c]);
                    got[c].extend_from_slice(&all);
                    prop_assert!(count_replies(&got[c]) <= lines_sent[c] + connects[c]);
                    b.dev.handle_closed(conns[c], b.now);
                    conns[c] = b.dev.handle_connected(b.now, ConnKind::Command { peer: peer(c as u16) });
                    got[c].clear();
                    lines_sent[c] = 0;
                    connects[c] = 1;
                }
            }
            // bounded memory: every connection's queue, whatever the reader does
            prop_assert!(b.dev.heap_bytes() <= 3 * bound + opts.sample_ring_bytes + 64 * 1024,
                "heap {}", b.dev.heap_bytes());
            // the binding serves events; restart requests are honoured like the simulator does
            for e in b.drain_events() {
                if let smartmeter::device::Action::Restart(_) = e {
                    let _ = e;
                }
            }
        }
        for c in 0..3 {
            let all = b.take(conns[c]);
            got[c].extend_from_slice(&all);
            prop_assert!(count_replies(&got[c]) <= lines_sent[c] + connects[c],
                "conn {c}: {} replies for {} lines", count_replies(&got[c]), lines_sent[c]);
        }
        // and the engine still answers
        b.now = b.now + Duration::from_secs(1);
        let fresh = b.dev.handle_connected(b.now, ConnKind::Serial);
        let _ = PhysicalBlock { rate_hz: 8000, samples: &[], start: b.now };
        prop_assert!(count_replies(&b.take(fresh)) == 1);
    }
}
