//! `smartmeter analyze --pq` over a 1-hour 8 kHz 6-channel recording (generated here into a
//! temporary WAV file; `SMARTMETER_BENCH_SECONDS` shortens it), against the power-quality core fed
//! from memory with the same samples (the baseline: ten minutes held in memory, fed six times with
//! a continuing clock). Both run the flickermeter, as the default `10min` interval does.
//!
//! Throughput is in frames (six samples) per second; the goal is the whole file in under 10 s
//! (issue 13), and a ratio file/memory near 1 (reading and reordering add little).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smartmeter::client::analyze::pq::{PqAnalyzeOptions, analyze_pq_file};
use smartmeter::client::recording::{PendingRecording, RecordingMeta, RecordingStatus};
use smartmeter::dsp::pq::{Pq, PqConfig, PqFlicker};
use smartmeter::dsp::synth::{Grid, GridConfig, PhaseSignal};

const RATE_HZ: u32 = 8000;
/// Frames per block, as `analyze --pq` reads them.
const BLOCK: usize = 4096;
const START_US: i64 = 1_700_000_000_000_000;

fn grid() -> Grid {
    let phase = |a: f64, deg: f64| PhaseSignal {
        voltage_rms_v: 230.0,
        current_rms_a: a,
        angle_deg: deg,
    };
    Grid::new(GridConfig {
        rate_hz: RATE_HZ,
        phases: [phase(5.0, 0.0), phase(3.0, 30.0), phase(1.0, -20.0)],
        noise_rel: 1e-4,
        ..GridConfig::default()
    })
}

fn bench(c: &mut Criterion) {
    let seconds: usize = std::env::var("SMARTMETER_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3600);
    // at most ten minutes in memory (a whole number of cycles: repeating it is seamless)
    let held_s = seconds.min(600);
    let repeats = seconds.div_ceil(held_s);
    let mut samples = vec![0f32; held_s * RATE_HZ as usize * 6];
    let mut g = grid();
    for chunk in samples.chunks_mut(BLOCK * 6) {
        g.fill(chunk);
    }
    let frames = (held_s * repeats * RATE_HZ as usize) as u64;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hour.wav");
    let channels = ["v_l1", "i_l1", "v_l2", "i_l2", "v_l3", "i_l3"].map(String::from);
    let units = ["V", "mA", "V", "mA", "V", "mA"].map(String::from);
    let mut meta = RecordingMeta::new(RATE_HZ, channels.to_vec(), units.to_vec());
    meta.start_unix_us = Some(START_US);
    let mut w = PendingRecording::create(&path)
        .expect("create")
        .start(meta)
        .expect("header");
    let mut block = Vec::with_capacity(BLOCK * 6);
    for _ in 0..repeats {
        for chunk in samples.chunks(BLOCK * 6) {
            block.clear();
            block.extend(chunk.chunks_exact(2).flat_map(|vi| [vi[0], vi[1] * 1000.0]));
            w.write(&block).expect("write");
        }
    }
    w.finish(RecordingStatus::Complete).expect("finish");

    let mut group = c.benchmark_group("analyze_pq_1h_8k_6ch");
    group.throughput(Throughput::Elements(frames));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("in_memory_pq", |b| {
        b.iter(|| {
            let cfg = PqConfig::new(RATE_HZ);
            let flicker = PqFlicker::new(RATE_HZ).expect("flicker");
            let mut pq = Pq::<f32, _>::with_flicker(cfg, flicker).expect("pq");
            let mut t_us = START_US;
            for _ in 0..repeats {
                for chunk in samples.chunks(BLOCK * 6) {
                    pq.feed(black_box(chunk), t_us, &mut ());
                    t_us += (chunk.len() / 6) as i64 * 1_000_000 / i64::from(RATE_HZ);
                }
            }
            pq.frequency_10s_hz()
        })
    });
    let opts = PqAnalyzeOptions::default();
    group.bench_function("analyze_pq_wav_file", |b| {
        b.iter(|| {
            let mut items = 0usize;
            analyze_pq_file(&path, &opts, |item| {
                black_box(item);
                items += 1;
            })
            .expect("analyze --pq");
            items
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
