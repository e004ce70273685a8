//! Persistence: crash safety of the record slots, fallback on corruption, energy across restarts,
//! the logbook's write rate, and the HAL driver with a mock store.

mod device_support;

use core::time::Duration;
use device_support::*;
use smartmeter::device::driver::{self, Driver};
use smartmeter::device::{Action, DeviceOptions, Instant, Record, RecordKind, Restored, SlotId};
use smartmeter::hal::{
    Clock, ErrorKind, ErrorType, RawBlock, SampleScale, SampleSource, SourceSample, Store, System,
};
use smartmeter::wire::frame::{Demux, Event as DemuxEvent};
use std::collections::HashMap;

/// Applies every Persist event to a slot map, like a binding's store.
fn persist_all(events: &[Action], slots: &mut HashMap<SlotId, Vec<u8>>) {
    for e in events {
        if let Action::Persist(r) = e {
            slots.insert(r.slot(), r.bytes().to_vec());
        }
    }
}

fn restored(slots: &HashMap<SlotId, Vec<u8>>) -> Restored {
    let mut r = Restored::default();
    for (k, v) in slots {
        r.insert(*k, v.clone());
    }
    r
}

fn boot(slots: &HashMap<SlotId, Vec<u8>>) -> Bench {
    Bench::with(DeviceOptions::default(), restored(slots))
}

#[test]
fn settings_survive_a_restart() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.cmd(c, r#"{"cmd":"mdns","payload":{"name":"garage"}}"#);
    b.cmd(c, r#"{"cmd":"calibration","cal":[1,1.5,1,1,1,1]}"#);
    let mut slots = HashMap::new();
    persist_all(&b.drain_events(), &mut slots);
    let b2 = boot(&slots);
    assert_eq!(b2.dev.config().name, "garage");
    assert_eq!(b2.dev.config().calibration[1], 1.5);
}

#[test]
fn torn_write_at_any_byte_keeps_the_previous_record() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.cmd(c, r#"{"cmd":"mdns","payload":{"name":"first"}}"#);
    let mut slots = HashMap::new();
    persist_all(&b.drain_events(), &mut slots);
    b.cmd(c, r#"{"cmd":"mdns","payload":{"name":"second"}}"#);
    let next = b
        .drain_events()
        .into_iter()
        .find_map(|e| match e {
            Action::Persist(r) if r.kind() == RecordKind::Settings => Some(r),
            _ => None,
        })
        .unwrap();
    let prev_slot = *slots
        .keys()
        .find(|s| s.kind == RecordKind::Settings)
        .unwrap();
    assert_ne!(next.slot(), prev_slot, "alternating slots");
    let full = next.bytes().to_vec();
    for cut in 0..full.len() {
        let mut s = slots.clone();
        // the slot being written holds the first `cut` bytes, then garbage from an old erase
        let mut torn = full[..cut].to_vec();
        torn.extend(std::iter::repeat_n(0xFF, full.len() - cut));
        s.insert(next.slot(), torn);
        let b2 = boot(&s);
        assert_eq!(b2.dev.config().name, "first", "cut at {cut}");
    }
    let mut s = slots.clone();
    s.insert(next.slot(), full);
    assert_eq!(boot(&s).dev.config().name, "second");
}

#[test]
fn corruption_at_every_byte_falls_back_to_defaults_with_an_error_line() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.cmd(c, r#"{"cmd":"mdns","payload":{"name":"only"}}"#);
    let mut slots = HashMap::new();
    persist_all(&b.drain_events(), &mut slots);
    let (slot, bytes) = slots
        .iter()
        .find(|(s, _)| s.kind == RecordKind::Settings)
        .map(|(s, b)| (*s, b.clone()))
        .unwrap();
    for at in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut s = slots.clone();
            let mut bad = bytes.clone();
            bad[at] ^= flip;
            s.insert(slot, bad);
            let mut b2 = boot(&s);
            assert_eq!(b2.dev.config().name, "smartmeterX", "byte {at} ^ {flip:#x}");
            let c2 = b2.tcp(1);
            let log = b2.cmd(c2, r#"{"cmd":"getLog"}"#);
            assert!(
                log.contains("[E]03/02 10:39:35: Stored settings corrupt"),
                "{log}"
            );
        }
        // truncated
        let mut s = slots.clone();
        s.insert(slot, bytes[..at].to_vec());
        assert_eq!(
            boot(&s).dev.config().name,
            "smartmeterX",
            "truncated to {at}"
        );
    }
    // arbitrary garbage never panics
    for n in [1usize, 11, 12, 16, 100, 4096] {
        let mut s = HashMap::new();
        for slot in SlotId::ALL {
            s.insert(slot, (0..n).map(|k| (k * 37 % 251) as u8).collect());
        }
        let _ = boot(&s);
    }
}

#[test]
fn energy_is_persisted_every_interval_and_survives_a_restart() {
    let mut b = Bench::new();
    b.block_ms = 100;
    b.drain_events();
    let mut persists = 0;
    for _ in 0..60 {
        b.run(1000); // the binding serves events as they come
        persists += b
            .drain_events()
            .iter()
            .filter(|e| matches!(e, Action::Persist(r) if r.kind() == RecordKind::Energy))
            .count();
    }
    assert_eq!(persists, 6, "every 10 s");
    b.run(3_540_000);
    b.dev.handle_shutdown(b.now);
    let e_before = b.dev.energy_wh();
    assert!((e_before[0] - 996.0).abs() < 5.0, "{e_before:?}");
    let mut slots = HashMap::new();
    persist_all(&b.events, &mut slots);
    persist_all(&b.drain_events(), &mut slots);
    let b2 = boot(&slots);
    for (a, b) in b2.dev.energy_wh().iter().zip(e_before) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn logbook_is_written_at_most_once_a_minute_and_floods_collapse() {
    let mut b = Bench::new();
    let c = b.tcp(1);
    b.drain_events();
    let mut log_writes = Vec::new();
    for _ in 0..300 {
        for _ in 0..20 {
            b.feed(c, b"{\"cmd\":\"junk\"}\n");
        }
        b.take(c);
        b.run(1000);
        for e in b.drain_events() {
            if matches!(&e, Action::Persist(r) if r.kind() == RecordKind::Logbook) {
                log_writes.push(b.now);
            }
        }
    }
    assert!(log_writes.len() <= 6, "{}", log_writes.len());
    for w in log_writes.windows(2) {
        assert!(w[1].saturating_since(w[0]) >= Duration::from_secs(60));
    }
    let log = b.cmd(c, r#"{"cmd":"getLog"}"#);
    let rows: Vec<&str> = log
        .split("//n")
        .filter(|r| r.contains("Received unknown command"))
        .collect();
    assert!(rows.len() <= 3, "{log}");
    let total: u64 = rows
        .iter()
        .map(|r| {
            r.split("(x")
                .nth(1)
                .map_or(1, |n| n.trim_end_matches(')').parse().unwrap())
        })
        .sum();
    assert_eq!(total, 6000, "{log}");
}

// ----- the HAL driver with mock implementations -----------------------------------------------

#[derive(Default)]
struct MemStore(HashMap<SlotId, Vec<u8>>);
impl ErrorType for MemStore {
    type Error = ErrorKind;
}
impl Store for MemStore {
    fn load(&mut self, slot: SlotId, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let v = self.0.get(&slot).map(|v| v.as_slice()).unwrap_or(&[]);
        let dst = buf.get_mut(..v.len()).ok_or(ErrorKind::BufferTooSmall)?;
        dst.copy_from_slice(v);
        Ok(v.len())
    }
    fn save(&mut self, slot: SlotId, bytes: &[u8]) -> Result<(), ErrorKind> {
        self.0.insert(slot, bytes.to_vec());
        Ok(())
    }
}

struct ManualClock(std::rc::Rc<std::cell::Cell<u64>>);
impl ErrorType for ManualClock {
    type Error = ErrorKind;
}
impl Clock for ManualClock {
    fn now(&mut self) -> Result<Instant, ErrorKind> {
        Ok(Instant::from_micros(self.0.get()))
    }
}

/// Raw ADC codes: 1 code = 0.1 V / 1 mA, written as `f32` or `i32` (the integer measurement path).
struct CodeSource<S> {
    src: Source,
    clock: std::rc::Rc<std::cell::Cell<u64>>,
    next_us: u64,
    kind: std::marker::PhantomData<S>,
}
impl<S> ErrorType for CodeSource<S> {
    type Error = ErrorKind;
}
trait Code: SourceSample {
    fn code(x: f32) -> Self;
}
impl Code for f32 {
    fn code(x: f32) -> f32 {
        x.round()
    }
}
impl Code for i32 {
    fn code(x: f32) -> i32 {
        x.round() as i32
    }
}
impl<S: Code> SampleSource for CodeSource<S> {
    type Sample = S;
    fn read(&mut self, buf: &mut [S]) -> Result<Option<RawBlock>, ErrorKind> {
        if self.next_us + 10_000 > self.clock.get() {
            return Ok(None);
        }
        let v = self.src.block(80);
        let len = v.len().min(buf.len());
        for (k, (d, s)) in buf.iter_mut().zip(&v).enumerate() {
            *d = S::code(if k % 2 == 0 { s * 10.0 } else { s * 1000.0 });
        }
        let start = Instant::from_micros(self.next_us);
        self.next_us += 10_000;
        Ok(Some(RawBlock {
            rate_hz: 8000,
            start,
            len,
            scale: SampleScale::Codes {
                volts_per_code: 0.1,
                amps_per_code: 0.001,
            },
        }))
    }
}

#[derive(Default)]
struct Sys(u32);
impl ErrorType for Sys {
    type Error = ErrorKind;
}
impl System for Sys {
    fn restart(&mut self) -> Result<(), ErrorKind> {
        self.0 += 1;
        Ok(())
    }
}

#[test]
fn driver_wires_events_to_the_hal() {
    let (mut d, _, network) = code_driver::<f32>(12);
    // 12 s: energy persisted into the store, measurements from codes scaled to volts
    assert!(d.store.0.keys().any(|s| s.kind == RecordKind::Energy));
    let now = d.now();
    let m = d.device.measurements(now).expect("fresh window");
    assert!((m.voltage_v[0] - 230.0).abs() < 1.0, "{:?}", m.voltage_v);
    assert!(
        network
            .iter()
            .any(|e| matches!(e, Action::NtpRequest { .. }))
    );
    // a restart command reaches System::restart once the output drained
    let c = d
        .device
        .handle_connected(now, smartmeter::device::ConnKind::Serial);
    let line = b"{\"cmd\":\"restart\"}\n";
    assert_eq!(d.handle_input(c, line), line.len());
    let mut buf = [0u8; 4096];
    while d.device.poll_output(c, &mut buf) > 0 {}
    let p = d.pump();
    assert!(p.restarted);
    assert_eq!(d.system.0, 1);
    // what the store holds boots a new engine
    let r = driver::restore(&mut d.store);
    let _ = smartmeter::device::Device::new(DeviceOptions::default(), r, now);
    let _ = Record::decode(&[]);
}

type CodeDriver<S> = Driver<CodeSource<S>, ManualClock, MemStore, Sys>;

/// A driver over a source of `f32` or `i32` codes, pumped for `seconds` in 10 ms steps; with its
/// clock and the network events it returned.
fn code_driver<S: Code>(
    seconds: u64,
) -> (
    CodeDriver<S>,
    std::rc::Rc<std::cell::Cell<u64>>,
    Vec<Action>,
) {
    let t = std::rc::Rc::new(std::cell::Cell::new(T0_S * 1_000_000));
    let source = CodeSource::<S> {
        src: Source::new(8000),
        clock: t.clone(),
        next_us: T0_S * 1_000_000,
        kind: std::marker::PhantomData,
    };
    let mut d = Driver::new(
        DeviceOptions::default(),
        source,
        ManualClock(t.clone()),
        MemStore::default(),
        Sys::default(),
    );
    let mut network = Vec::new();
    for _ in 0..seconds * 100 {
        t.set(t.get() + 10_000);
        network.extend(d.pump().network);
    }
    (d, t, network)
}

#[test]
fn integer_codes_measure_like_float_codes_and_stream_in_volts() {
    let (mut fl, _, _) = code_driver::<f32>(3);
    let (mut fx, t, _) = code_driver::<i32>(3);
    let (tf, tx) = (fl.now(), fx.now());
    let a = fl.device.measurements(tf).expect("float window").clone();
    let b = fx.device.measurements(tx).expect("integer window").clone();
    for (what, x, y) in [
        ("voltage", a.voltage_v, b.voltage_v),
        ("current", a.current_a, b.current_a),
        ("power", a.active_w, b.active_w),
    ] {
        for (x, y) in x.iter().zip(&y) {
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                "{what}: {a:?} vs {b:?}"
            );
        }
    }
    assert!((b.voltage_v[0] - 230.0).abs() < 1.0, "{:?}", b.voltage_v);
    assert!(b.frequency_hz[0].is_finite());

    // a session on the integer path streams volts and milliamps, not codes
    let now = fx.now();
    let c = fx
        .device
        .handle_connected(now, smartmeter::device::ConnKind::Serial);
    let line = b"{\"cmd\":\"sample\",\"payload\":{\"type\":\"Serial\",\"rate\":8000}}\n";
    assert_eq!(fx.handle_input(c, line), line.len());
    let mut demux = Demux::new();
    let mut values: Vec<f32> = Vec::new();
    let mut buf = [0u8; 8192];
    for _ in 0..100 {
        t.set(t.get() + 10_000);
        fx.pump();
        loop {
            let n = fx.device.poll_output(c, &mut buf);
            if n == 0 {
                break;
            }
            demux.push(&buf[..n], |ev| {
                if let Ok(DemuxEvent::Frame(f)) = ev {
                    values.extend(f.samples());
                }
            });
        }
    }
    assert!(values.len() >= 6 * 4000, "{} values", values.len());
    let peak = |ch: usize| {
        values
            .iter()
            .skip(ch)
            .step_by(6)
            .fold(0.0f32, |m, v| m.max(v.abs()))
    };
    // 230 V RMS, 5 A RMS on L1: peaks ≈ 325 V and ≈ 7071 mA (160 samples per cycle)
    assert!((peak(0) - 325.27).abs() < 3.0, "v peak {}", peak(0));
    assert!((peak(1) - 7071.1).abs() < 80.0, "i peak {}", peak(1));
}
