//! The sans-IO engine itself on the target: connect, the unprompted `info`, commands answered with
//! the exact bytes of the host transcript tests, and measurements from synthetic samples.

use alloc::string::String;
use alloc::vec;

use smartmeter::calibration::FrontEnd;
use smartmeter::device::{
    CodeBlock, ConnKind, Device, DeviceOptions, Instant, PhysicalBlock, Restored,
};
use smartmeter::dsp::fixed::to_codes;
use smartmeter::dsp::{Grid, GridConfig};

use crate::{Platform, Runner};

/// 03/02/2021 10:39:35 UTC, the seed README's session.
const T0_S: u64 = 1_614_681_575;

fn take(dev: &mut Device, conn: smartmeter::device::ConnId) -> String {
    let mut out = vec![0u8; 8192];
    let mut text = String::new();
    loop {
        let n = dev.poll_output(conn, &mut out);
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(out.get(..n).unwrap_or_default()));
    }
    text
}

/// A getVoltage reply whose L1 reads 230 V (to the two decimals of the wire format).
fn reads_230_v(reply: &str) -> bool {
    const HEAD: &str = "Info:{\"error\":false,\"cmd\":\"getVoltage\",\"voltage\":[";
    reply
        .strip_prefix(HEAD)
        .is_some_and(|rest| rest.starts_with("230.0") || rest.starts_with("229.99"))
}

pub fn run<P: Platform>(r: &mut Runner<'_, P>) {
    r.group("device");
    let mut now = Instant::from_secs(T0_S);
    let mut dev = Device::new(DeviceOptions::default(), Restored::default(), now);
    let conn = dev.handle_connected(now, ConnKind::Serial);
    let info = take(&mut dev, conn);
    r.check(
        "info_on_connect",
        info.starts_with("Info:{\"cmd\":\"info\",\"type\":\"smartmeter\",\"version\":\"2.2\"")
            && info.ends_with(
                "\"ssids\":\"[energywifi]\",\"ssid\":\"-\",\"rssi\":0,\"bssid\":\"-\"}\r\n",
            ),
        format_args!("{info:?}"),
    );
    // Exact reply bytes, as in the host transcript tests.
    let transcript: [(&str, &[u8], &str); 4] = [
        (
            "log_level_reply",
            b"  {\"cmd\":\"log\",\"level\":\"error\"}  \r\n",
            "Info:{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: error\"}\r\n",
        ),
        ("setup_done", b"?\n", "Info:Setup done\r\n"),
        (
            "unknown_command",
            b"{\"cmd\":\"fly\"}\n",
            "Info:{\"error\":true,\"cmd\":\"fly\",\"msg\":\"unknown command\"}\r\n",
        ),
        (
            "no_signal_is_null",
            b"{\"cmd\":\"getVoltage\"}\n",
            "Info:{\"error\":false,\"cmd\":\"getVoltage\",\"voltage\":[null,null,null],\"unit\":\"V\"}\r\n",
        ),
    ];
    for (name, line, reply) in transcript {
        // Every byte is taken at once (nothing pending: no back-pressure).
        let taken = dev.handle_input(conn, now, line);
        let got = take(&mut dev, conn);
        r.eq(name, (taken, got.as_str()), (line.len(), reply));
    }
    // One second of a 230 V grid through the engine, 100 ms blocks.
    let mut grid = Grid::new(GridConfig::default());
    let mut block = vec![0.0f32; 6 * 800];
    for _ in 0..10 {
        grid.fill(&mut block);
        dev.handle_samples(
            now,
            &PhysicalBlock {
                rate_hz: 8000,
                samples: &block,
                start: now,
            },
        );
        now = Instant::from_micros(now.as_micros() + 100_000);
        dev.handle_timeout(now);
    }
    let _ = take(&mut dev, conn);
    let line = b"{\"cmd\":\"getVoltage\"}\n";
    let taken = dev.handle_input(conn, now, line);
    let reply = take(&mut dev, conn);
    r.check(
        "voltage_from_samples",
        taken == line.len() && reads_230_v(&reply),
        format_args!("{reply:?}"),
    );
    while dev.poll_event().is_some() {}
    r.check(
        "events_drain",
        dev.poll_event().is_none(),
        format_args!("endless events"),
    );
    engine_cost(r);
}

/// The whole engine (measurements, energy, timers) at 32 kHz, fed 50 ms blocks of 24-bit codes as
/// the ESP32-C3 firmware does (`handle_codes`, the integer path), against the same blocks in volts
/// and amps (`handle_samples`, soft-float `f32`): 1 s of warm-up, then 1 s counted.
fn engine_cost<P: Platform>(r: &mut Runner<'_, P>) {
    r.group("device::cost");
    let rate = 32_000u32;
    let frames = 1_600usize;
    let fe = FrontEnd {
        volts_per_code: 400.0 / 8_388_608.0,
        amps_per_code: 10.0 / 8_388_608.0,
    };
    let mut grid = Grid::new(GridConfig {
        rate_hz: rate,
        ..GridConfig::default()
    });
    let mut now = Instant::from_secs(T0_S);
    let mut by_codes = Device::new(DeviceOptions::default(), Restored::default(), now);
    let mut by_volts = Device::new(DeviceOptions::default(), Restored::default(), now);
    let mut samples = vec![0.0f32; 6 * frames];
    let mut codes = vec![0i32; 6 * frames];
    let (mut cost_codes, mut cost_volts) = (0u64, 0u64);
    for block in 0..40 {
        grid.fill(&mut samples);
        to_codes(&samples, fe.volts_per_code, fe.amps_per_code, &mut codes);
        let next = Instant::from_micros(now.as_micros() + 50_000);
        let t0 = r.instret();
        by_codes.handle_codes(
            now,
            &CodeBlock {
                rate_hz: rate,
                codes: &codes,
                volts_per_code: fe.volts_per_code,
                amps_per_code: fe.amps_per_code,
                start: now,
            },
        );
        by_codes.handle_timeout(next);
        let t1 = r.instret();
        by_volts.handle_samples(
            now,
            &PhysicalBlock {
                rate_hz: rate,
                samples: &samples,
                start: now,
            },
        );
        by_volts.handle_timeout(next);
        let t2 = r.instret();
        while by_codes.poll_event().is_some() {}
        while by_volts.poll_event().is_some() {}
        now = next;
        if let (true, Some(t0), Some(t1), Some(t2)) = (block >= 20, t0, t1, t2) {
            cost_codes += t1 - t0;
            cost_volts += t2 - t1;
        }
    }
    let pairs = 3 * 20 * frames as u64;
    if cost_codes > 0 {
        r.line(format_args!(
            "engine at 32000 Hz, instructions per (v,i) pair: codes (integer path) {}, volts (f32) {}",
            cost_codes / pairs,
            cost_volts / pairs
        ));
    }
    let conn = by_codes.handle_connected(now, ConnKind::Serial);
    let _ = take(&mut by_codes, conn);
    let line = b"{\"cmd\":\"getVoltage\"}\n";
    let taken = by_codes.handle_input(conn, now, line);
    let reply = take(&mut by_codes, conn);
    r.check(
        "voltage_from_codes",
        taken == line.len() && reads_230_v(&reply),
        format_args!("{reply:?}"),
    );
}
