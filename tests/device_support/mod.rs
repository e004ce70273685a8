//! Shared test bench for the device engine: a manual clock, a synthetic 3-phase source and helpers
//! that drive `Device` like a binding does.
#![allow(dead_code)]

use core::net::SocketAddr;
use core::time::Duration;
use smartmeter::calibration::FrontEnd;
use smartmeter::device::{
    Action, CodeBlock, ConnId, ConnKind, Device, DeviceOptions, Instant, PhysicalBlock, Restored,
};
use smartmeter::dsp::synth::{Grid, GridConfig, PhaseSignal};
use std::collections::BTreeMap;

/// 03/02/2021 10:39:35 UTC (the seed README's day).
pub const T0_S: u64 = 1_614_681_575;

pub fn t0() -> Instant {
    Instant::from_secs(T0_S)
}

pub fn peer(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 168, 0, 13], port))
}

/// The sample source: `dsp::synth::Grid`, 230 V / 50 Hz, currents 5 A lagging 30° on every phase.
pub struct Source {
    pub rate_hz: u32,
    pub grid: Grid,
    /// Added to `v_l1`: a ramp of this many volts per second, zero at the source's first sample (a
    /// timing probe: a linear-phase filter passes a ramp unchanged, so a resampled value names the
    /// instant it describes).
    pub ramp_v_per_s: f64,
    /// Frames generated so far.
    pub sent: u64,
}

impl Source {
    pub fn new(rate_hz: u32) -> Self {
        let mut cfg = GridConfig {
            rate_hz,
            ..GridConfig::default()
        };
        for p in &mut cfg.phases {
            *p = PhaseSignal {
                voltage_rms_v: 230.0,
                current_rms_a: 5.0,
                angle_deg: 30.0,
            };
        }
        Source {
            rate_hz,
            grid: Grid::new(cfg),
            ramp_v_per_s: 0.0,
            sent: 0,
        }
    }

    pub fn block(&mut self, n: usize) -> Vec<f32> {
        let mut v = vec![0.0; n * 6];
        self.grid.fill(&mut v);
        if self.ramp_v_per_s != 0.0 {
            for (k, frame) in v.chunks_exact_mut(6).enumerate() {
                let t = (self.sent + k as u64) as f64 / f64::from(self.rate_hz);
                frame[0] += (self.ramp_v_per_s * t) as f32;
            }
        }
        self.sent += n as u64;
        v
    }
}

pub struct Bench {
    pub dev: Device,
    pub now: Instant,
    pub src: Source,
    pub events: Vec<Action>,
    /// Sample blocks are this long (ms).
    pub block_ms: u64,
    /// Deliver the samples as ADC codes of this front end (`handle_codes`, as the firmware does)
    /// instead of volts and amps.
    pub codes: Option<FrontEnd>,
    /// Deliver blocks of this many frames instead of `block_ms`, stamped as the simulator does: the
    /// instant of frame `n` truncated to the µs (so block stamps are not evenly spaced).
    pub block_frames: Option<u64>,
    /// Bytes offered with [`Bench::feed`] the engine has not taken yet, per connection.
    pub pending: BTreeMap<ConnId, Vec<u8>>,
}

impl Bench {
    pub fn new() -> Self {
        Self::with(DeviceOptions::default(), Restored::default())
    }

    pub fn with(opts: DeviceOptions, restored: Restored) -> Self {
        let rate = opts.source_rate_hz;
        let now = t0();
        let mut dev = Device::new(opts, restored, now);
        let mut events = Vec::new();
        while let Some(e) = dev.poll_event() {
            events.push(e);
        }
        Bench {
            dev,
            now,
            src: Source::new(rate),
            events,
            block_ms: 10,
            codes: None,
            block_frames: None,
            pending: BTreeMap::new(),
        }
    }

    /// A bench whose front end samples at `rate_hz`.
    pub fn at_rate(rate_hz: u32) -> Self {
        let opts = DeviceOptions {
            source_rate_hz: rate_hz,
            ..DeviceOptions::default()
        };
        Self::with(opts, Restored::default())
    }

    /// Connects a TCP command client and drains its unprompted `info` line.
    pub fn tcp(&mut self, port: u16) -> ConnId {
        let c = self
            .dev
            .handle_connected(self.now, ConnKind::Command { peer: peer(port) });
        let info = self.take(c);
        assert!(
            info.starts_with(b"Info:{\"cmd\":\"info\""),
            "{}",
            String::from_utf8_lossy(&info)
        );
        c
    }

    /// Everything queued for `conn`.
    pub fn take(&mut self, conn: ConnId) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = self.dev.poll_output(conn, &mut buf);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            self.offer();
        }
        out
    }

    pub fn take_text(&mut self, conn: ConnId) -> String {
        String::from_utf8_lossy(&self.take(conn)).into_owned()
    }

    /// Offers bytes from `conn` like a binding: whatever the engine does not take now (back-pressure)
    /// is kept and offered again after every later engine call of this bench.
    pub fn feed(&mut self, conn: ConnId, bytes: &[u8]) {
        self.pending
            .entry(conn)
            .or_default()
            .extend_from_slice(bytes);
        self.offer();
    }

    /// Offers every connection's kept bytes again.
    pub fn offer(&mut self) {
        for (conn, bytes) in self.pending.iter_mut() {
            if bytes.is_empty() {
                continue;
            }
            let n = self.dev.handle_input(*conn, self.now, bytes);
            bytes.drain(..n);
        }
    }

    /// Bytes of `conn` the engine has not taken yet.
    pub fn unconsumed(&self, conn: ConnId) -> usize {
        self.pending.get(&conn).map_or(0, Vec::len)
    }

    /// Sends one line and returns everything the connection got.
    pub fn cmd(&mut self, conn: ConnId, line: &str) -> String {
        self.feed(conn, format!("{line}\n").as_bytes());
        self.take_text(conn)
    }

    /// Sends one line and returns the raw bytes the connection got (frames included).
    pub fn cmd_bytes(&mut self, conn: ConnId, line: &str) -> Vec<u8> {
        self.feed(conn, format!("{line}\n").as_bytes());
        self.take(conn)
    }

    /// Advances the clock by `ms` without samples, running every timer when it is due (cheap: it
    /// jumps from deadline to deadline).
    pub fn idle(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        loop {
            let next = self.dev.poll_timeout().unwrap_or(end).min(end);
            if next > self.now {
                self.now = next;
            }
            let mut spins = 0;
            while self.dev.poll_timeout().is_some_and(|t| t <= self.now) {
                self.dev.handle_timeout(self.now);
                spins += 1;
                assert!(spins < 100, "poll_timeout does not advance");
            }
            self.offer();
            if self.now >= end {
                break;
            }
        }
    }

    /// The getLog rows, read over a fresh connection that is closed again.
    pub fn log_rows(&mut self) -> Vec<String> {
        let c = self
            .dev
            .handle_connected(self.now, ConnKind::Command { peer: peer(65_000) });
        self.take(c);
        let out = self.cmd(c, r#"{"cmd":"getLog"}"#);
        self.dev.handle_closed(c, self.now);
        let dump = out
            .split("\r\n")
            .find(|l| l.starts_with("Info:{\"cmd\":\"log\""))
            .unwrap_or_else(|| panic!("no getLog dump in {out:?}"))
            .to_string();
        let v: serde_json::Value = serde_json::from_str(dump.trim_start_matches("Info:")).unwrap();
        v["msg"]
            .as_str()
            .unwrap()
            .split("//n")
            .filter(|r| !r.contains("*** LOGFile ***") && !r.is_empty())
            .map(String::from)
            .collect()
    }

    pub fn drain_events(&mut self) -> Vec<Action> {
        let mut v = Vec::new();
        while let Some(e) = self.dev.poll_event() {
            v.push(e);
        }
        self.events.extend(v.iter().cloned());
        v
    }

    /// Feeds `ms` of signal in blocks and runs due timers, without reading any output.
    pub fn run(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while self.now < end {
            let rate = u64::from(self.src.rate_hz);
            let start = self.now;
            let n = match self.block_frames {
                Some(n) => {
                    let us = |k: u64| k * 1_000_000 / rate;
                    let sent = self.src.sent;
                    self.now = self.now + Duration::from_micros(us(sent + n) - us(sent));
                    n as usize
                }
                None => {
                    self.now = self.now + Duration::from_millis(self.block_ms);
                    (rate * self.block_ms / 1000) as usize
                }
            };
            let samples = self.src.block(n);
            if let Some(fe) = self.codes {
                let codes: Vec<i32> = samples
                    .iter()
                    .enumerate()
                    .map(|(k, x)| {
                        let per = if k % 2 == 0 {
                            fe.volts_per_code
                        } else {
                            fe.amps_per_code
                        };
                        (f64::from(*x) / per).round() as i32
                    })
                    .collect();
                self.dev.handle_codes(
                    self.now,
                    &CodeBlock {
                        rate_hz: self.src.rate_hz,
                        codes: &codes,
                        volts_per_code: fe.volts_per_code,
                        amps_per_code: fe.amps_per_code,
                        start,
                    },
                );
            } else {
                self.dev.handle_samples(
                    self.now,
                    &PhysicalBlock {
                        rate_hz: self.src.rate_hz,
                        samples: &samples,
                        start,
                    },
                );
            }
            let mut spins = 0;
            while self.dev.poll_timeout().is_some_and(|t| t <= self.now) {
                self.dev.handle_timeout(self.now);
                spins += 1;
                assert!(
                    spins < 100,
                    "poll_timeout does not advance past {:?}",
                    self.dev.poll_timeout()
                );
            }
            self.offer();
        }
    }
}

/// A `"<unix>.<mmm>"` timestamp (startTs, start_ts) in µs.
pub fn ts_us(ts: &str) -> i64 {
    let (s, ms) = ts.split_once('.').expect("<unix>.<mmm>");
    s.parse::<i64>().expect("seconds") * 1_000_000 + ms.parse::<i64>().expect("ms") * 1000
}

/// Splits a connection's byte stream into text lines and `Data:` frames `(packet, values)`.
pub fn split_stream(bytes: &[u8]) -> (Vec<String>, Vec<(u32, Vec<f32>)>) {
    let mut lines = Vec::new();
    let mut frames = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"Data:") {
            let len = u16::from_le_bytes([rest[5], rest[6]]) as usize;
            let pkt = u32::from_le_bytes([rest[7], rest[8], rest[9], rest[10]]);
            let vals = rest[11..11 + len]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            frames.push((pkt, vals));
            i += 11 + len;
        } else if rest.starts_with(b"Info:") {
            let end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("line end")
                + 2;
            lines.push(String::from_utf8_lossy(&rest[..end]).into_owned());
            i += end;
        } else {
            panic!(
                "garbage in stream at {i}: {:?}",
                &rest[..rest.len().min(20)]
            );
        }
    }
    (lines, frames)
}
