//! `smartmeter analyze` over a 1-hour 8 kHz 6-channel recording (generated here into a temporary
//! WAV file), against the in-memory DSP pipeline on the same samples (the baseline).
//!
//! Throughput is in samples (frames of six channels) per second; the goal is a ratio file/memory
//! ≥ 0.8 (file handling adds little). `SMARTMETER_BENCH_SECONDS` shortens the recording.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smartmeter::client::analyze::{AnalyzeOptions, analyze_file, estimator_for};
use smartmeter::client::recording::{PendingRecording, RecordingMeta, RecordingStatus};
use smartmeter::dsp::synth::{Grid, GridConfig, PhaseSignal};

const RATE_HZ: u32 = 8000;
/// Frames per block, as `analyze` reads them.
const BLOCK: usize = 4096;

fn grid() -> Grid {
    let cfg = GridConfig {
        rate_hz: RATE_HZ,
        phases: [
            PhaseSignal {
                voltage_rms_v: 230.0,
                current_rms_a: 5.0,
                angle_deg: 0.0,
            },
            PhaseSignal {
                voltage_rms_v: 230.0,
                current_rms_a: 3.0,
                angle_deg: 30.0,
            },
            PhaseSignal {
                voltage_rms_v: 230.0,
                current_rms_a: 1.0,
                angle_deg: -20.0,
            },
        ],
        noise_rel: 1e-4,
        ..GridConfig::default()
    };
    Grid::new(cfg)
}

fn bench(c: &mut Criterion) {
    let seconds: u64 = std::env::var("SMARTMETER_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3600);
    let frames = seconds as usize * RATE_HZ as usize;
    // The samples in volts and amps (what the DSP takes) ...
    let mut samples = vec![0f32; frames * 6];
    let mut g = grid();
    for chunk in samples.chunks_mut(BLOCK * 6) {
        g.fill(chunk);
    }
    // ... and the same recording as the meter sends it (current in mA), in a WAV file.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hour.wav");
    let channels: Vec<String> = ["v_l1", "i_l1", "v_l2", "i_l2", "v_l3", "i_l3"]
        .map(String::from)
        .to_vec();
    let units: Vec<String> = ["V", "mA", "V", "mA", "V", "mA"].map(String::from).to_vec();
    let mut meta = RecordingMeta::new(RATE_HZ, channels, units);
    meta.start_unix_us = Some(1_700_000_000_000_000);
    let mut w = PendingRecording::create(&path)
        .expect("create")
        .start(meta.clone())
        .expect("header");
    let mut block = Vec::with_capacity(BLOCK * 6);
    for chunk in samples.chunks(BLOCK * 6) {
        block.clear();
        block.extend(chunk.chunks_exact(2).flat_map(|vi| [vi[0], vi[1] * 1000.0]));
        w.write(&block).expect("write");
    }
    w.finish(RecordingStatus::Complete).expect("finish");

    let mut group = c.benchmark_group("analyze_1h_8k_6ch");
    group.throughput(Throughput::Elements(frames as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("in_memory_dsp", |b| {
        b.iter(|| {
            let mut est = estimator_for(&meta, 50).expect("estimator");
            let mut windows = 0usize;
            for chunk in samples.chunks(BLOCK * 6) {
                windows += est.feed(black_box(chunk), |w| {
                    black_box(w);
                });
            }
            windows
        })
    });
    let opts = AnalyzeOptions::default();
    group.bench_function("analyze_wav_file", |b| {
        b.iter(|| {
            let mut windows = 0usize;
            analyze_file(&path, &opts, |w| {
                black_box(w);
                windows += 1;
            })
            .expect("analyze");
            windows
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
