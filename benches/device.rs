//! Engine throughput: one second of 8 kHz six-channel input through `Device::handle_samples`, idle
//! and while streaming, against the bare DSP estimator over the same samples (the baseline).
use core::time::Duration;
use criterion::{Criterion, criterion_group, criterion_main};
use smartmeter::device::{ConnKind, Device, DeviceOptions, Instant, PhysicalBlock, Restored};
use smartmeter::dsp::synth::{Grid, GridConfig};
use smartmeter::dsp::{Estimator, EstimatorConfig};
use std::hint::black_box;

const BLOCK: usize = 80; // 10 ms at 8 kHz

fn input() -> Vec<f32> {
    let mut g = Grid::new(GridConfig::default());
    let mut v = vec![0.0; 8000 * 6];
    g.fill(&mut v);
    v
}

fn one_second(
    dev: &mut Device,
    conn: smartmeter::device::ConnId,
    t: &mut Instant,
    input: &[f32],
) -> usize {
    let mut buf = [0u8; 4096];
    let mut bytes = 0;
    for block in input.chunks_exact(BLOCK * 6) {
        let start = *t;
        *t = *t + Duration::from_millis(10);
        dev.handle_samples(
            *t,
            &PhysicalBlock {
                rate_hz: 8000,
                samples: block,
                start,
            },
        );
        if dev.poll_timeout().is_some_and(|d| d <= *t) {
            dev.handle_timeout(*t);
        }
        loop {
            let n = dev.poll_output(conn, &mut buf);
            if n == 0 {
                break;
            }
            bytes += n;
        }
        while dev.poll_event().is_some() {}
    }
    bytes
}

fn engine(c: &mut Criterion) {
    let input = input();
    let mut g = c.benchmark_group("device/1s-of-8kHz");
    g.bench_function("baseline: dsp::Estimator only", |b| {
        let mut est: Estimator = Estimator::new(EstimatorConfig::new(8000, 50)).unwrap();
        b.iter(|| {
            let mut n = 0;
            for block in input.chunks_exact(BLOCK * 6) {
                est.feed(black_box(block), |_| n += 1);
            }
            n
        })
    });
    for (name, cmd) in [
        ("engine idle", None),
        (
            "engine streaming TCP 8 kHz x6",
            Some(r#"{"cmd":"sample","payload":{"type":"TCP","rate":8000}}"#),
        ),
        (
            "engine streaming TCP 1 kHz x6 (resampled)",
            Some(r#"{"cmd":"sample","payload":{"type":"TCP","rate":1000}}"#),
        ),
    ] {
        let mut t = Instant::from_secs(1_614_681_575);
        let opts = DeviceOptions {
            out_queue_bytes: 64 * 1024,
            ..DeviceOptions::default()
        };
        let mut dev = Device::new(opts, Restored::default(), t);
        let conn = dev.handle_connected(
            t,
            ConnKind::Command {
                peer: ([127, 0, 0, 1], 1).into(),
            },
        );
        if let Some(cmd) = cmd {
            let line = format!("{cmd}\n");
            assert_eq!(dev.handle_input(conn, t, line.as_bytes()), line.len());
        }
        g.bench_function(name, |b| {
            b.iter(|| one_second(&mut dev, conn, &mut t, black_box(&input)))
        });
    }
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
