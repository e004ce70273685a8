//! `analyze_samples` / `analyze_pq_samples` (the in-memory pipelines the Python package runs on
//! numpy arrays) give exactly the rows and items of `analyze_file` / `analyze_pq_file` over a
//! file holding the same samples: uniform units (read in place) and mixed units (scaled per block).
#![cfg(feature = "client")]

use std::path::Path;

use smartmeter::client::analyze::pq::{
    PqAnalyzeOptions, PqItem, analyze_pq_file, analyze_pq_samples,
};
use smartmeter::client::analyze::{AnalyzeOptions, analyze_file, analyze_samples};
use smartmeter::client::recording::{
    PendingRecording, RecordingMeta, RecordingStatus, channel_names,
};
use smartmeter::dsp::synth::{Grid, GridConfig};
use smartmeter::wire::pq::PqInterval;

/// 3 s of the default grid at 8 kHz; currents in mA, or in A on L2 when `l2_in_amps`.
fn recording(path: &Path, l2_in_amps: bool) -> (RecordingMeta, Vec<f32>) {
    let mut grid = Grid::new(GridConfig {
        rate_hz: 8000,
        ..GridConfig::default()
    });
    let mut data = vec![0f32; 6 * 24_000];
    grid.fill(&mut data);
    for f in data.chunks_exact_mut(6) {
        f[1] *= 1e3;
        f[5] *= 1e3;
        if !l2_in_amps {
            f[3] *= 1e3;
        }
    }
    let units = if l2_in_amps {
        "V,mA,V,A,V,mA"
    } else {
        "V,mA,V,mA,V,mA"
    };
    let mut meta = RecordingMeta::new(
        8000,
        channel_names("v,i").unwrap(),
        units.split(',').map(String::from).collect(),
    );
    meta.start_unix_us = Some(1_700_000_000_250_000);
    let mut w = PendingRecording::create(path)
        .unwrap()
        .start(meta.clone())
        .unwrap();
    w.write(&data).unwrap();
    w.finish(RecordingStatus::Complete).unwrap();
    (meta, data)
}

#[test]
fn in_memory_rows_equal_the_file_rows() {
    let d = tempfile::tempdir().unwrap();
    for l2_in_amps in [false, true] {
        let path = d.path().join(format!("r-{l2_in_amps}.wav"));
        let (meta, data) = recording(&path, l2_in_amps);
        let opts = AnalyzeOptions::default();
        let (mut from_file, mut from_memory) = (Vec::new(), Vec::new());
        analyze_file(&path, &opts, |w| from_file.push(w.clone())).unwrap();
        let summary =
            analyze_samples(&meta, &data, &opts, |w| from_memory.push(w.clone())).unwrap();
        assert_eq!(
            from_file.len(),
            14,
            "3 s hold 14 whole windows after the first crossing"
        );
        assert_eq!(from_memory, from_file, "units mixed: {l2_in_amps}");
        assert_eq!(summary.frames, 24_000);

        let opts = PqAnalyzeOptions {
            interval: PqInterval::Basic,
            ..PqAnalyzeOptions::default()
        };
        let (mut from_file, mut from_memory) = (Vec::<PqItem>::new(), Vec::new());
        analyze_pq_file(&path, &opts, |i| from_file.push(i)).unwrap();
        analyze_pq_samples(&meta, &data, &opts, |i| from_memory.push(i)).unwrap();
        assert!(!from_file.is_empty());
        assert_eq!(from_memory, from_file, "units mixed: {l2_in_amps}");
    }
}

#[test]
fn a_partial_frame_is_refused() {
    let meta = RecordingMeta::new(8000, channel_names("v,i").unwrap(), Vec::new());
    let err = analyze_samples(&meta, &[0.0; 7], &AnalyzeOptions::default(), |_| {}).unwrap_err();
    assert!(err.to_string().contains("whole number"), "{err}");
    let err =
        analyze_pq_samples(&meta, &[0.0; 7], &PqAnalyzeOptions::default(), |_| {}).unwrap_err();
    assert!(err.to_string().contains("whole number"), "{err}");
}
