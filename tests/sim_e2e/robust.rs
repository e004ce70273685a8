//! Issue 5 item 11: junk, floods, half-open and many connections leave the simulator serving others
//! with bounded memory, and every bad line gets an error reply.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::sim_support::*;

const JSON_ERROR: &str = r#"{"error":true,"msg":"JSON format error, syntax: {\"cmd\":<cmdName>, \"[payload\":{<data>}]}}"}"#;

/// Deterministic pseudo-random bytes (xorshift), no dependency.
fn junk(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// Reads and discards whatever arrives until `stop` says so or the deadline passes.
fn drain_until(
    s: &mut TcpStream,
    deadline: Instant,
    mut stop: impl FnMut(&[u8]) -> bool,
) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 65536];
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                all.extend_from_slice(&buf[..n]);
                if stop(&all) {
                    break;
                }
            }
            Err(_) => {}
        }
    }
    all
}

#[test]
fn every_bad_line_gets_an_error_reply_and_the_connection_stays_usable() {
    let sim = Sim::start(&[]);
    let (mut c, _) = sim.connect();
    let long = "x".repeat(5000);
    let mut text = String::new();
    for k in 0..20 {
        text.push_str(&format!("{{\"cmd\": broken {k}\n"));
    }
    text.push_str(&long);
    text.push('\n');
    text.push_str("[1,2,3]\n");
    text.push_str(&long);
    text.push_str(&long);
    text.push('\n');
    c.send(text.as_bytes());
    let mut json_errors = 0;
    let mut too_long = 0;
    while json_errors < 21 || too_long < 2 {
        let (raw, v) = c.next_json().expect("replies stopped");
        if raw == JSON_ERROR {
            json_errors += 1;
        } else if v["msg"] == "Line too long (max 600 bytes)" {
            assert_eq!(v["error"], true);
            too_long += 1;
        } else {
            panic!("unexpected reply {raw}");
        }
    }
    assert_eq!((json_errors, too_long), (21, 2));
    // Usable afterwards: the rest of the long lines was discarded, not parsed.
    assert_eq!(c.cmd(json!({"cmd":"info"}))["name"], "smartmeterX");
}

#[test]
fn a_megabyte_of_random_bytes_leaves_others_served_and_memory_bounded() {
    let sim = Sim::start(&[]);
    let (mut other, _) = sim.connect();
    let rss0 = sim.rss_kb();
    let mut s = TcpStream::connect(sim.addr).unwrap();
    let mut r = s.try_clone().unwrap();
    // Read replies concurrently so the flood is not throttled by our own receive window.
    let reader = std::thread::spawn(move || {
        let mut n = 0usize;
        let mut buf = [0u8; 65536];
        r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        while let Ok(k) = r.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    });
    let data = junk(1 << 20, 0x5eed);
    for chunk in data.chunks(8192) {
        if s.write_all(chunk).is_err() {
            break;
        }
    }
    // The simulator keeps serving another client during and after the flood.
    assert_eq!(other.cmd(json!({"cmd":"getVoltage"}))["cmd"], "getVoltage");
    s.write_all(b"\n{\"cmd\":\"info\"}\n").ok();
    let rss1 = sim.rss_kb();
    // EOF ends the connection; the reader thread then sees the close.
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let replied = reader.join().unwrap();
    assert!(replied > 0, "the junk got no error replies at all");
    assert_eq!(other.cmd(json!({"cmd":"info"}))["cmd"], "info");
    assert!(
        rss1 < rss0 + 32 * 1024,
        "RSS grew from {rss0} kB to {rss1} kB"
    );
    eprintln!("RSS: {rss0} kB idle, {rss1} kB after 1 MB of junk");
}

#[test]
fn half_open_and_non_reading_clients_do_not_block_others() {
    let sim = Sim::start(&["--max-clients", "20"]);
    // Half-open: a partial line and silence; never reads.
    let mut idle: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(sim.addr).unwrap();
            s.write_all(b"{\"cmd\":\"inf").unwrap();
            s
        })
        .collect();
    // A raw-stream reader that never reads, at the full rate.
    let _stuck_raw = TcpStream::connect(sim.stream_addr).unwrap();
    let (mut c, _) = sim.connect();
    let (mut stuck, _) = sim.connect();
    // A command client that samples at 32 kHz and never reads again.
    stuck.send_line(r#"{"cmd":"stop"}"#);
    let rss0 = sim.rss_kb();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(c.cmd(json!({"cmd":"info"}))["cmd"], "info");
    let rss1 = sim.rss_kb();
    assert!(
        rss1 < rss0 + 32 * 1024,
        "RSS grew from {rss0} kB to {rss1} kB"
    );
    // One of them finishes its line late: it is answered.
    idle[0].write_all(b"o\"}\n").unwrap();
    let got = drain_until(&mut idle[0], Instant::now() + SOON, |b| {
        b.windows(13).any(|w| w == b"\"cmd\":\"info\"")
    });
    assert!(String::from_utf8_lossy(&got).contains("\"cmd\":\"info\""));
    idle.clear();
}

#[test]
fn fifty_concurrent_clients_with_the_limit_raised() {
    let sim = Sim::start(&["--max-clients", "60"]);
    let addr = sim.addr;
    let handles: Vec<_> = (0..50)
        .map(|k| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let info = c.reply_for("info");
                assert_eq!(info["type"], "smartmeter");
                let v = c.cmd(json!({"cmd":"dailyRestart","hour": k % 24,"minute":k % 60}));
                assert_eq!(v["cmd"], "dailyRestart");
                assert_eq!(c.cmd(json!({"cmd":"getPeriod"}))["cmd"], "getPeriod");
                c
            })
        })
        .collect();
    let clients: Vec<Client> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(clients.len(), 50);
    eprintln!("RSS with 50 clients: {} kB", sim.rss_kb());
}

#[test]
fn a_client_over_the_limit_gets_too_many_clients_and_is_closed() {
    let sim = Sim::start(&["--max-clients", "2"]);
    let (_a, _) = sim.connect();
    let (_b, _) = sim.connect();
    let mut s = TcpStream::connect(sim.addr).unwrap();
    let got = drain_until(&mut s, Instant::now() + SOON, |_| false);
    assert_eq!(
        String::from_utf8_lossy(&got),
        "Info:{\"error\":true,\"msg\":\"Too many clients\"}\r\n"
    );
}

/// docs/protocol.md §1: half-open or byte-trickling clients cannot lock the others out. Every slot is
/// taken by a client that sends bytes but never a whole line and reads nothing; once the idle
/// threshold (here 1 s via the hidden `--idle-timeout`, 60 s by default) has passed, a newcomer is
/// served and the oldest trickler gets `Idle connection closed` and is closed.
#[test]
fn trickling_clients_are_evicted_for_a_newcomer() {
    let sim = Sim::start(&["--idle-timeout", "1"]);
    let mut tricklers: Vec<TcpStream> = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(sim.addr).unwrap();
        s.write_all(b"{").unwrap();
        tricklers.push(s);
        // accepted in this order (ids, hence ages, follow it)
        std::thread::sleep(Duration::from_millis(20));
    }
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        for s in &mut tricklers {
            s.write_all(b"\"").unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (mut c, info) = sim.connect();
    assert_eq!(info["type"], "smartmeter");
    assert_eq!(c.cmd(json!({"cmd":"getVoltage"}))["cmd"], "getVoltage");
    // The oldest trickler: its last line is the eviction notice, then the connection closes.
    let got = drain_until(&mut tricklers[0], Instant::now() + SOON, |_| false);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.ends_with("Info:{\"error\":true,\"msg\":\"Idle connection closed\"}\r\n"),
        "{text:?}"
    );
    // The others keep their slots.
    for s in &mut tricklers[1..] {
        let got = drain_until(s, Instant::now() + Duration::from_millis(300), |_| false);
        assert!(!String::from_utf8_lossy(&got).contains("Idle connection closed"));
    }
}
