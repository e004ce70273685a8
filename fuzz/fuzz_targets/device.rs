//! The device engine driven by arbitrary bytes: a store of arbitrary (but checksummed, so the
//! engine has to decode their payloads) records, then a script of connection input, MQTT messages,
//! samples, timers, output reads, reconnects and NTP results. Never panics, and memory stays bounded.
#![no_main]

use core::net::SocketAddr;
use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use smartmeter::device::{
    CodeBlock, ConnKind, Device, DeviceOptions, Instant, NtpResult, PhysicalBlock, Record,
    RecordKind, Restored, SlotId,
};
use smartmeter::dsp::fixed::to_codes;
use smartmeter::dsp::{Grid, GridConfig};

const TOPICS: [&str; 6] = [
    "powermeter/cmd",
    "powermeter/smartmeterX/cmd",
    "powermeter/smartmeterX/sample",
    "powermeter/smartmeterX/state",
    "powermeter/other/cmd",
    "homeassistant/status",
];

/// Takes `n` bytes (fewer at the end).
fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (a, b) = data.split_at(n.min(data.len()));
    *data = b;
    a
}

fn byte(data: &mut &[u8]) -> u8 {
    take(data, 1).first().copied().unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    // the store: up to one record per kind, payload from the input
    let mut restored = Restored::default();
    for kind in RecordKind::ALL {
        let n = usize::from(byte(&mut data));
        if n == 0 {
            continue;
        }
        let payload = take(&mut data, n).to_vec();
        if let Ok(r) = Record::new(kind, u32::from(byte(&mut data)), payload) {
            restored.insert(SlotId::new(kind, 0), r.encode());
        }
    }
    let opts = DeviceOptions {
        source_rate_hz: 2000,
        ..DeviceOptions::default()
    };
    let bound = 3 * (opts.out_queue_bytes + opts.text_slack_bytes + 48_100)
        + opts.sample_ring_bytes
        + 64 * 1024;
    let mut now = Instant::from_secs(1_614_681_575);
    let mut dev = Device::new(opts, restored, now);
    let peer = |k: u16| SocketAddr::from(([192, 168, 0, 13], k));
    let mut conns: Vec<_> = (0..2)
        .map(|k| dev.handle_connected(now, ConnKind::Command { peer: peer(k) }))
        .collect();
    // the default grid (230 V, 50 Hz, 5 A) at the engine's source rate
    let mut grid = Grid::new(GridConfig {
        rate_hz: 2000,
        ..GridConfig::default()
    });
    let mut out = [0u8; 700];
    while !data.is_empty() {
        let op = byte(&mut data);
        let c = usize::from(op >> 7);
        match op & 7 {
            0 | 1 => {
                let n = usize::from(byte(&mut data));
                let bytes = take(&mut data, n);
                if let Some(&conn) = conns.get(c) {
                    let _ = dev.handle_input(conn, now, bytes);
                }
            }
            2 => {
                let t = TOPICS[usize::from(byte(&mut data)) % TOPICS.len()];
                let n = usize::from(byte(&mut data));
                dev.handle_mqtt(now, t, take(&mut data, n));
            }
            3 => {
                // 10 ms of the grid (a dip to 30 % when the next byte says so), as volts or,
                // with bit 6 of the op, as ADC codes; bit 5 stamps the block with a wrong rate
                let how = byte(&mut data);
                let mut s = [0.0f32; 6 * 20];
                grid.fill(&mut s);
                if how & 1 == 1 {
                    for v in s.iter_mut().step_by(2) {
                        *v *= 0.3;
                    }
                }
                let rate_hz = if op & 32 != 0 { 8000 } else { 2000 };
                if op & 64 != 0 {
                    let (vpc, apc) = (400.0 / 8_388_608.0, 10.0 / 8_388_608.0);
                    let mut codes = [0i32; 6 * 20];
                    to_codes(&s, vpc, apc, &mut codes);
                    dev.handle_codes(
                        now,
                        &CodeBlock {
                            rate_hz,
                            codes: &codes,
                            volts_per_code: vpc,
                            amps_per_code: apc,
                            start: now,
                        },
                    );
                } else {
                    dev.handle_samples(
                        now,
                        &PhysicalBlock {
                            rate_hz,
                            samples: &s,
                            start: now,
                        },
                    );
                }
                now = now + Duration::from_millis(10);
            }
            4 => {
                let ms = u64::from(byte(&mut data)) * 50;
                now = now + Duration::from_millis(ms);
                dev.handle_timeout(now);
            }
            5 => {
                if let Some(&conn) = conns.get(c) {
                    let _ = dev.poll_output(conn, &mut out);
                }
            }
            6 => {
                if let Some(conn) = conns.get_mut(c) {
                    dev.handle_closed(*conn, now);
                    *conn = dev.handle_connected(now, ConnKind::Command { peer: peer(9) });
                }
                dev.handle_mqtt_connected(now, op & 8 != 0);
            }
            _ => {
                let r = if op & 8 != 0 {
                    NtpResult::Synced {
                        offset_us: i64::from(byte(&mut data)) * 1000 - 128_000,
                        round_trip_us: 2000,
                    }
                } else {
                    NtpResult::Failed
                };
                dev.handle_ntp(now, r);
            }
        }
        while dev.poll_event().is_some() {}
        assert!(dev.heap_bytes() <= bound, "heap {}", dev.heap_bytes());
    }
});
