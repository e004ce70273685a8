//! DSP throughput: every function processes the same one second of 3-phase signal (50 Hz, PF 0.8,
//! 20 % 3rd harmonic current). `baseline_sum_of_squares` is the ceiling (a plain scalar loop that
//! only sums v², i², v·i per phase into f64); `peer_metrology_insight` runs the peer crate's
//! documented per-window processing on the same second at 8 kHz (every 4th sample, 160-sample
//! windows, its highest rate). Time per iteration = time per second of signal.
//!
//! Group `pq` runs the power-quality pipeline with its flickermeter (the device's whole PQ) on the
//! same second, and `pq_1h` one hour of the 8 kHz recording (`analyze --pq`).
//!
//! Callgrind mode (load-independent instruction counts, no criterion):
//! `SMARTMETER_PQ_PROFILE=i32_32k|f32_32k|f32_8k[,noflicker] valgrind --tool=callgrind
//! --collect-atstart=no --toggle-collect='*pq_profile_run*' target/release/deps/dsp-<hash>`
//! feeds 2 s of warm-up outside the collection, then `SMARTMETER_PQ_SECONDS` (10) inside it, and
//! prints the count's denominator (and the wall time, for `perf record`); `SMARTMETER_PQ_MASK`
//! (1 no spectrum, 2 no half cycles, 4 no lattice) splits the cost by stage.
use criterion::{Criterion, criterion_group};
use std::hint::black_box;

#[path = "../tests/dsp_support/peer.rs"]
mod peer;

use smartmeter::calibration::{Calibration, FrontEnd};
use smartmeter::dsp::fixed::{FixedEstimator, to_codes};
use smartmeter::dsp::synth::{Grid, GridConfig, Harmonic, PhaseSignal};
use smartmeter::dsp::{Estimator, EstimatorConfig};

const RATE: u32 = 32000;

fn one_second() -> Vec<f32> {
    let mut cfg = GridConfig {
        rate_hz: RATE,
        frequency_hz: 50.0,
        phases: [PhaseSignal {
            voltage_rms_v: 230.0,
            current_rms_a: 5.0,
            angle_deg: 36.87,
        }; 3],
        ..GridConfig::default()
    };
    cfg.current_harmonics
        .push(Harmonic {
            order: 3,
            relative: 0.2,
            phase_deg: 0.0,
        })
        .unwrap();
    let mut g = Grid::new(cfg);
    let mut buf = vec![0.0f32; 6 * RATE as usize];
    g.fill(&mut buf);
    buf
}

fn baseline(buf: &[f32]) -> [f64; 9] {
    let mut acc = [0.0f64; 9];
    for f in buf.chunks_exact(6) {
        for p in 0..3 {
            let v = f64::from(f[2 * p]);
            let i = f64::from(f[2 * p + 1]);
            acc[3 * p] += v * v;
            acc[3 * p + 1] += i * i;
            acc[3 * p + 2] += v * i;
        }
    }
    acc
}

fn bench(c: &mut Criterion) {
    let buf = one_second();
    let vpc = 400.0 / 8_388_608.0;
    let apc = 10.0 / 8_388_608.0;
    let mut codes = vec![0i32; buf.len()];
    to_codes(&buf, vpc, apc, &mut codes);
    let decimated: Vec<f32> = buf
        .chunks_exact(6 * 4)
        .flat_map(|f| f[..6].to_vec())
        .collect();

    let mut g = c.benchmark_group("dsp");
    let mut est = Estimator::<f32>::new(EstimatorConfig::new(RATE, 50)).unwrap();
    g.bench_function("pipeline_3phase", |b| {
        b.iter(|| {
            let mut n = 0;
            est.feed(black_box(&buf), |w| n += w.samples);
            black_box(n)
        })
    });
    g.bench_function("baseline_sum_of_squares", |b| {
        b.iter(|| black_box(baseline(black_box(&buf))))
    });
    let mut fx = FixedEstimator::new(EstimatorConfig::new(RATE, 50)).unwrap();
    fx.set_calibration(
        Calibration::default()
            .with_front_end(FrontEnd {
                volts_per_code: vpc,
                amps_per_code: apc,
            })
            .unwrap(),
    );
    g.bench_function("fixed_point_3phase", |b| {
        b.iter(|| {
            let mut n = 0;
            fx.feed(black_box(&codes), |w| n += w.samples);
            black_box(n)
        })
    });
    let mut pe = peer::Peer::new();
    g.bench_function("peer_metrology_insight", |b| {
        b.iter(|| {
            for w in black_box(&decimated).chunks(6 * peer::PEER_WINDOW) {
                pe.window(w);
            }
            black_box(pe.read(0).p_w)
        })
    });
    g.finish();
    bench_pq(c, &buf, &codes, &decimated, vpc, apc);
}

/// The power-quality pipeline with its flickermeter (basic intervals, harmonics, unbalance, events,
/// aggregation, Pst) on the same second, against the same ceiling and the peer's per-window
/// processing (which includes its harmonics, interharmonics, flicker, events, RVC and unbalance);
/// the pipeline without flicker for comparison. `pipeline_3phase_f32` is what hosts run (`f32`
/// input: `analyze --pq`, the simulator, Python); the `i32` rows are the device's integer path
/// (bit-identical to the RV32 build), run here for reference.
fn bench_pq(c: &mut Criterion, buf: &[f32], codes: &[i32], decimated: &[f32], vpc: f64, apc: f64) {
    use smartmeter::dsp::pq::Interval;
    let mut g = c.benchmark_group("pq");
    g.bench_function("baseline_sum_of_squares", |b| {
        b.iter(|| black_box(baseline(black_box(buf))))
    });
    let cal = Calibration::default()
        .with_front_end(FrontEnd {
            volts_per_code: vpc,
            amps_per_code: apc,
        })
        .unwrap();
    let mut t_us = T0_US;
    let mut pqi = Pq::<i32>::new(pq_config(RATE)).unwrap();
    pqi.set_calibration(cal);
    g.bench_function("pipeline_3phase_i32_noflicker", |b| {
        b.iter(|| {
            pqi.feed(black_box(codes), t_us, &mut ());
            t_us += 1_000_000;
            black_box(pqi.last(Interval::Basic).map(|r| r.voltage_v[0]))
        })
    });
    let mut pqi = with_flicker::<i32>(RATE);
    pqi.set_calibration(cal);
    g.bench_function("pipeline_3phase_i32", |b| {
        b.iter(|| {
            pqi.feed(black_box(codes), t_us, &mut ());
            t_us += 1_000_000;
            black_box(pqi.last(Interval::Basic).map(|r| r.voltage_v[0]))
        })
    });
    let mut pqf = with_flicker::<f32>(RATE);
    g.bench_function("pipeline_3phase_f32", |b| {
        b.iter(|| {
            pqf.feed(black_box(buf), t_us, &mut ());
            t_us += 1_000_000;
            black_box(pqf.last(Interval::Basic).map(|r| r.voltage_v[0]))
        })
    });
    // a recording at 8 kHz (the `analyze --pq` case): 1 s of the same grid
    let mut pq8 = with_flicker::<f32>(8000);
    g.bench_function("pipeline_3phase_f32_8khz", |b| {
        b.iter(|| {
            pq8.feed(black_box(decimated), t_us, &mut ());
            t_us += 1_000_000;
            black_box(pq8.last(Interval::Basic).map(|r| r.voltage_v[0]))
        })
    });
    let mut pe = peer::Peer::new();
    g.bench_function("peer_metrology_insight_pq", |b| {
        b.iter(|| {
            for w in black_box(decimated).chunks(6 * peer::PEER_WINDOW) {
                pe.window(w);
            }
            black_box(pe.read(0).p_w)
        })
    });
    g.finish();
    // one hour of a 6-channel 8 kHz recording through `analyze --pq`'s pipeline (f32, flicker)
    let mut g = c.benchmark_group("pq_1h");
    g.sample_size(10);
    g.bench_function("pipeline_3phase_f32_8khz_1h", |b| {
        b.iter(|| {
            let mut pq = with_flicker::<f32>(8000);
            let mut t_us = T0_US;
            for _ in 0..3600 {
                pq.feed(black_box(decimated), t_us, &mut ());
                t_us += 1_000_000;
            }
            black_box(pq.last(Interval::TenMinute).map(|r| r.pst[0]))
        })
    });
    g.finish();
}

use smartmeter::dsp::pq::{Pq, PqConfig, PqFlicker, PqSample};

const T0_US: i64 = 1_700_000_000_000_000;

fn pq_config(rate_hz: u32) -> PqConfig {
    PqConfig {
        nominal_voltage_v: Some(230.0),
        nominal_frequency_hz: Some(50),
        ..PqConfig::new(rate_hz)
    }
}

fn with_flicker<S: PqSample>(rate_hz: u32) -> Pq<S, PqFlicker> {
    Pq::with_flicker(pq_config(rate_hz), PqFlicker::new(rate_hz).unwrap()).unwrap()
}

/// Feeds `seconds` of the bench signal; the callgrind mode collects only inside this function.
#[inline(never)]
fn pq_profile_run<S: PqSample, F: smartmeter::dsp::pq::FlickerSink>(
    pq: &mut Pq<S, F>,
    second: &[S],
    t_us: &mut i64,
    seconds: u32,
) {
    for _ in 0..seconds {
        pq.feed(black_box(second), *t_us, &mut ());
        *t_us += 1_000_000;
    }
}

fn pq_profile<S: PqSample, F: smartmeter::dsp::pq::FlickerSink>(mut pq: Pq<S, F>, second: &[S]) {
    // `SMARTMETER_PQ_MASK` skips stages (see `Pq::set_profile_mask`) to split the cost by stage
    if let Some(m) = std::env::var("SMARTMETER_PQ_MASK")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        pq.set_profile_mask(m);
    }
    let mut t_us = T0_US;
    // warm-up outside the collection: nominal values, detector, flickermeter priming
    for _ in 0..2 {
        pq.feed(second, t_us, &mut ());
        t_us += 1_000_000;
    }
    let seconds = std::env::var("SMARTMETER_PQ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let t = std::time::Instant::now();
    pq_profile_run(&mut pq, second, &mut t_us, seconds);
    println!(
        "collected: {seconds} s of signal (divide the instruction count by {seconds}); {:.1} µs per second of signal",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(seconds)
    );
}

fn profile(spec: &str) {
    let buf = one_second();
    let vpc = 400.0 / 8_388_608.0;
    let apc = 10.0 / 8_388_608.0;
    let mut codes = vec![0i32; buf.len()];
    to_codes(&buf, vpc, apc, &mut codes);
    let decimated: Vec<f32> = buf
        .chunks_exact(6 * 4)
        .flat_map(|f| f[..6].to_vec())
        .collect();
    let cal = Calibration::default()
        .with_front_end(FrontEnd {
            volts_per_code: vpc,
            amps_per_code: apc,
        })
        .unwrap();
    let flicker = !spec.contains("noflicker");
    match (spec.split(',').next().unwrap_or(""), flicker) {
        ("i32_32k", true) => {
            let mut pq = with_flicker::<i32>(RATE);
            pq.set_calibration(cal);
            pq_profile(pq, &codes);
        }
        ("i32_32k", false) => {
            let mut pq = Pq::<i32>::new(pq_config(RATE)).unwrap();
            pq.set_calibration(cal);
            pq_profile(pq, &codes);
        }
        ("f32_32k", true) => pq_profile(with_flicker::<f32>(RATE), &buf),
        ("f32_32k", false) => pq_profile(Pq::<f32>::new(pq_config(RATE)).unwrap(), &buf),
        ("f32_8k", true) => pq_profile(with_flicker::<f32>(8000), &decimated),
        ("f32_8k", false) => pq_profile(Pq::<f32>::new(pq_config(8000)).unwrap(), &decimated),
        ("peer_8k", _) => {
            let mut pe = peer::Peer::new();
            pe_profile_run(&mut pe, &decimated);
            println!("collected: 10 s of signal (divide the instruction count by 10)");
        }
        (other, _) => eprintln!("unknown SMARTMETER_PQ_PROFILE {other}"),
    }
}

#[inline(never)]
fn pe_profile_run(pe: &mut peer::Peer, decimated: &[f32]) {
    for _ in 0..10 {
        for w in black_box(decimated).chunks(6 * peer::PEER_WINDOW) {
            pe.window(w);
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(spec) = std::env::var("SMARTMETER_PQ_PROFILE") {
        profile(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
