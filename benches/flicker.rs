//! Flickermeter throughput: three phases (three `Flickermeter`s feeding three `PstClassifier`s,
//! settled before timing) over one second of 230 V / 50 Hz signal flickering at 8.8 Hz, at the PQ
//! pipeline's typical 1600 Hz and its highest 6400 Hz input rate. `baseline_sum_of_squares_*`
//! is the yardstick: a plain loop that only sums v² per phase into f64 over the same samples.
//! Time per iteration = time per second of three-phase signal; the ratio of the two is the
//! flickermeter's cost in "sum-of-squares loops".
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use smartmeter::dsp::pq::flicker::{FlickerConfig, Flickermeter, Lamp, PstClassifier, WARM_UP_S};

/// One second of three phases (phase-major: `[L1 × rate, L2 × rate, L3 × rate]`), 0.25 % at 8.8 Hz.
fn one_second(rate: u32, start_s: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(3 * rate as usize);
    for phase in 0..3 {
        let shift = f64::from(phase) * 2.0 * std::f64::consts::PI / 3.0;
        out.extend((0..rate).map(|n| {
            let t = start_s + f64::from(n) / f64::from(rate);
            let m = 1.0 + 0.00125 * (2.0 * std::f64::consts::PI * 8.8 * t).sin();
            (325.27 * (2.0 * std::f64::consts::PI * 50.0 * t - shift).sin() * m) as f32
        }));
    }
    out
}

fn baseline(buf: &[f32], rate: usize) -> [f64; 3] {
    let mut acc = [0.0f64; 3];
    for (a, phase) in acc.iter_mut().zip(buf.chunks_exact(rate)) {
        for &v in phase {
            let v = f64::from(v);
            *a += v * v;
        }
    }
    acc
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("flicker");
    for rate in [1600u32, 6400] {
        let cfg = FlickerConfig {
            input_rate_hz: rate,
            nominal_hz: 50,
            lamp: Lamp::V230,
        };
        let meter = Flickermeter::new(cfg).expect("valid config");
        let mut meters = [meter.clone(), meter.clone(), meter];
        let mut classifiers = [
            PstClassifier::new(),
            PstClassifier::new(),
            PstClassifier::new(),
        ];
        // Settle the meters so every timed sample runs the whole chain and the classifier.
        let warm_s = WARM_UP_S.ceil() as u32 + 1;
        for s in 0..warm_s {
            let buf = one_second(rate, f64::from(s));
            for ((m, c), phase) in meters
                .iter_mut()
                .zip(classifiers.iter_mut())
                .zip(buf.chunks_exact(rate as usize))
            {
                m.feed(phase, c);
            }
        }
        assert!(meters.iter().all(Flickermeter::settled));
        let buf = one_second(rate, f64::from(warm_s));
        g.bench_function(format!("flickermeter_3phase_{rate}hz"), |b| {
            b.iter(|| {
                let mut n = 0;
                for ((m, c), phase) in meters
                    .iter_mut()
                    .zip(classifiers.iter_mut())
                    .zip(black_box(&buf).chunks_exact(rate as usize))
                {
                    n += m.feed(phase, c);
                }
                for c in &mut classifiers {
                    // Keep the counts from saturating over millions of iterations.
                    if c.samples() > 50_000 {
                        c.reset();
                    }
                }
                black_box(n)
            })
        });
        g.bench_function(format!("baseline_sum_of_squares_{rate}hz"), |b| {
            b.iter(|| black_box(baseline(black_box(&buf), rate as usize)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
