//! Connections (docs/protocol.md §1): pipelined lines are never dropped (back-pressure instead), and idle
//! or byte-trickling clients cannot lock everyone else out.

mod device_support;

use device_support::*;
use smartmeter::device::{Action, ConnId, ConnKind};

const TOO_MANY: &str = "Info:{\"error\":true,\"msg\":\"Too many clients\"}\r\n";
const EVICTED: &str = "Info:{\"error\":true,\"msg\":\"Idle connection closed\"}\r\n";

/// A connection's byte stream in order: text lines and `Data:` frames `(packet, samples)`.
#[derive(Debug)]
enum Item {
    Line(String),
    Frame(u32, usize),
}

fn items(bytes: &[u8], channels: usize) -> Vec<Item> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"Data:") {
            let len = u16::from_le_bytes([rest[5], rest[6]]) as usize;
            let pkt = u32::from_le_bytes([rest[7], rest[8], rest[9], rest[10]]);
            out.push(Item::Frame(pkt, len / 4 / channels));
            i += 11 + len;
        } else {
            let end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("line end")
                + 2;
            out.push(Item::Line(
                String::from_utf8_lossy(&rest[..end]).into_owned(),
            ));
            i += end;
        }
    }
    out
}

fn pipelined_req_samples(n: usize) {
    let mut b = Bench::new();
    let c = b.tcp(1);
    let r = b.cmd(
        c,
        r#"{"cmd":"sample","payload":{"type":"TCP","rate":8000,"flowCtr":true}}"#,
    );
    assert!(
        r.starts_with("Info:{\"error\":false,\"cmd\":\"sample\""),
        "{r}"
    );
    let write = "{\"cmd\":\"reqSamples\",\"samples\":10}\n".repeat(n);
    b.feed(c, write.as_bytes());
    let opts = b.dev.options().clone();
    let mut out = Vec::new();
    let mut peak_heap = 0;
    let done = |out: &[u8]| {
        String::from_utf8_lossy(out)
            .matches("{\"error\":false,\"cmd\":\"reqSamples\"}")
            .count()
    };
    for _ in 0..10 * n {
        b.run(10);
        peak_heap = peak_heap.max(b.dev.heap_bytes());
        out.extend(b.take(c));
        if done(&out) == n {
            break;
        }
    }
    assert_eq!(b.unconsumed(c), 0);
    // Every line answered, in order: frame k, then its reply; nothing dropped.
    let mut next_packet = 0;
    let mut replies = 0;
    let mut expect_reply = false;
    for it in items(&out, 6) {
        match it {
            Item::Frame(p, samples) => {
                assert!(!expect_reply, "frame {p} before the reply of {}", p - 1);
                assert_eq!((p, samples), (next_packet, 10));
                next_packet += 1;
                expect_reply = true;
            }
            Item::Line(l) if l.contains("\"cmd\":\"reqSamples\"") => {
                assert_eq!(l, "Info:{\"error\":false,\"cmd\":\"reqSamples\"}\r\n");
                assert!(expect_reply, "reply without frame");
                expect_reply = false;
                replies += 1;
            }
            Item::Line(l) => assert!(!l.contains("dropped"), "{l}"),
        }
    }
    assert_eq!((next_packet as usize, replies), (n, n));
    b.cmd(c, r#"{"cmd":"stop"}"#);
    assert!(!b.log_rows().iter().any(|r| r.contains("dropped")));
    // The engine held at most a few lines; the rest waited in the binding (back-pressure).
    assert!(
        peak_heap
            <= opts.out_queue_bytes + opts.text_slack_bytes + opts.sample_ring_bytes + 32 * 1024,
        "heap {peak_heap}"
    );
}

#[test]
fn twenty_pipelined_req_samples_all_answered_in_order() {
    pipelined_req_samples(20);
}

#[test]
fn two_hundred_pipelined_req_samples_all_answered_in_order() {
    pipelined_req_samples(200);
}

#[test]
fn input_is_refused_not_dropped_while_the_queue_is_full() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.cmd(
        c,
        r#"{"cmd":"sample","payload":{"type":"TCP","rate":8000,"flowCtr":true}}"#,
    );
    // No samples arrive: the first reqSamples waits, lines behind it queue, then input stops.
    let write = "{\"cmd\":\"reqSamples\",\"samples\":10}\n".repeat(50);
    b.feed(c, write.as_bytes());
    let left = b.unconsumed(c);
    assert!(left > 0 && left < write.len(), "{left}");
    // Offering again changes nothing while the engine waits.
    b.offer();
    assert_eq!(b.unconsumed(c), left);
    // A `stop` behind the queue is read once there is room, and the queue drains in order.
    b.feed(c, b"{\"cmd\":\"stop\"}\n");
    let mut out = Vec::new();
    for _ in 0..100 {
        b.run(10);
        out.extend(b.take(c));
        if String::from_utf8_lossy(&out).contains("\"cmd\":\"stop\"") {
            break;
        }
    }
    assert_eq!(b.unconsumed(c), 0);
    let lines: Vec<String> = items(&out, 6)
        .into_iter()
        .filter_map(|i| match i {
            Item::Line(l) if l.contains("\"cmd\":") => Some(l),
            _ => None,
        })
        .collect();
    assert_eq!(lines.len(), 51, "{lines:?}");
    assert!(lines[..50].iter().all(|l| l.contains("reqSamples")));
    assert!(lines[50].contains("\"cmd\":\"stop\""), "{}", lines[50]);
}

fn connect(b: &mut Bench, port: u16) -> (ConnId, String) {
    let c = b
        .dev
        .handle_connected(b.now, ConnKind::Command { peer: peer(port) });
    (c, b.take_text(c))
}

#[test]
fn idle_and_trickling_clients_are_evicted_for_a_newcomer() {
    let mut b = Bench::new();
    // Slot 1: owns a sampling session (never evicted, although its last line is the oldest).
    let owner = b.tcp(1);
    b.cmd(
        owner,
        r#"{"cmd":"sample","payload":{"type":"TCP","rate":10,"flowCtr":true}}"#,
    );
    // Slot 2: sends whole lines now and then.
    let active = b.tcp(2);
    // Slots 3..=8: half-open or trickling: bytes, never a whole line.
    let tricklers: Vec<ConnId> = (3..=8).map(|p| b.tcp(p)).collect();
    for _ in 0..30 {
        for &t in &tricklers {
            b.feed(t, b"{");
        }
        b.idle(1000);
    }
    b.cmd(active, "!");
    b.idle(29_000);
    // 59 s after the tricklers connected: nobody has been idle for 60 s yet.
    let (late, text) = connect(&mut b, 9);
    assert_eq!(text, TOO_MANY);
    assert!(b.drain_events().contains(&Action::Close(late)));
    b.dev.handle_closed(late, b.now);
    b.idle(1_000);
    // 60 s: the oldest trickler makes room; the newcomer is served.
    let (newcomer, text) = connect(&mut b, 10);
    assert!(text.starts_with("Info:{\"cmd\":\"info\""), "{text}");
    let victim = tricklers[0];
    assert!(b.take_text(victim).ends_with(EVICTED));
    assert!(b.drain_events().contains(&Action::Close(victim)));
    b.dev.handle_closed(victim, b.now);
    assert!(
        b.cmd(newcomer, r#"{"cmd":"getPeriod"}"#)
            .contains("\"cmd\":\"getPeriod\"")
    );
    // The next newcomer takes the next trickler's slot; the owner and the active client stay.
    let (_, text) = connect(&mut b, 11);
    assert!(text.starts_with("Info:{\"cmd\":\"info\""), "{text}");
    assert!(b.take_text(tricklers[1]).ends_with(EVICTED));
    for c in [owner, active] {
        assert!(!b.take_text(c).contains("Idle connection closed"));
    }
    assert!(b.dev.is_busy());
}

#[test]
fn an_evicted_client_that_never_reads_is_closed_anyway() {
    let mut b = Bench::new();
    let conns: Vec<ConnId> = (1..=8).map(|p| b.tcp(p)).collect();
    // Nobody reads for 5 minutes: the output queues fill with liveness lines.
    b.idle(300_000);
    let (_, text) = connect(&mut b, 9);
    assert!(text.starts_with("Info:{\"cmd\":\"info\""), "{text}");
    // The victim still never reads: it is closed after a short grace period all the same.
    b.idle(5_000);
    assert!(b.drain_events().contains(&Action::Close(conns[0])));
}

/// A client that writes many commands and does not read its replies for a while loses none of
/// them: the engine stops taking its lines while its output is behind (the bytes wait in the
/// binding), instead of queueing replies past the bound and dropping them (§1: one reply per line).
#[test]
fn a_client_that_reads_late_gets_every_reply() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    let opts = b.dev.options().clone();
    let n = 2000;
    b.feed(c, "{\"cmd\":\"getVoltage\"}\n".repeat(n).as_bytes());
    // The client reads nothing yet: the engine took only what its bounded queue can answer.
    assert!(
        b.unconsumed(c) > 0,
        "the engine took every line although nobody reads"
    );
    let peak_heap = b.dev.heap_bytes();
    assert!(
        peak_heap
            <= opts.out_queue_bytes + opts.text_slack_bytes + opts.sample_ring_bytes + 32 * 1024,
        "heap {peak_heap}"
    );
    // Now it reads: every line gets its reply, in order, and nothing is logged as dropped.
    let mut out = b.take_text(c);
    for _ in 0..n {
        if b.unconsumed(c) == 0 {
            break;
        }
        b.offer();
        out.push_str(&b.take_text(c));
    }
    out.push_str(&b.take_text(c));
    assert_eq!(b.unconsumed(c), 0);
    let replies = out.matches("\"cmd\":\"getVoltage\"").count();
    assert_eq!(replies, n, "replies lost");
    assert!(!b.log_rows().iter().any(|r| r.contains("dropped")));
}
