//! `smartmeter analyze` over synthetic recordings (`dsp::synth`): every reported row is a complete
//! window with its true start time and values within 0.05 % of the signal's truth, from the first
//! row on, at 50 and 60 Hz, at the rates `record` writes (also below 1000 Hz), and for `p,q` and
//! `v,i_RMS` recordings.
#![cfg(feature = "cli")]

mod cli_support;

use std::path::{Path, PathBuf};

use cli_support::{cli, stderr, stdout};
use serde_json::Value;
use smartmeter::client::recording::{
    PendingRecording, RecordingMeta, RecordingStatus, channel_names,
};
use smartmeter::dsp::synth::{Grid, GridConfig, PhaseSignal};

const TOL: f64 = 5e-4;

/// A grid: `v` volts; 5, 3, 1 A lagging 0°, 30°, -20° (the simulator's default currents).
fn grid(rate_hz: u32, f_hz: f64, v: f64) -> GridConfig {
    GridConfig {
        rate_hz,
        frequency_hz: f_hz,
        phases: [
            PhaseSignal {
                voltage_rms_v: v,
                current_rms_a: 5.0,
                angle_deg: 0.0,
            },
            PhaseSignal {
                voltage_rms_v: v,
                current_rms_a: 3.0,
                angle_deg: 30.0,
            },
            PhaseSignal {
                voltage_rms_v: v,
                current_rms_a: 1.0,
                angle_deg: -20.0,
            },
        ],
        ..GridConfig::default()
    }
}

struct Truth {
    v: f64,
    i_ma: [f64; 3],
    p: [f64; 3],
    q: [f64; 3],
    s: [f64; 3],
}

fn truth(g: &GridConfig) -> Truth {
    let ph = |k: usize| g.phases[k];
    Truth {
        v: ph(0).voltage_rms_v,
        i_ma: [0, 1, 2].map(|k| ph(k).current_rms_a * 1e3),
        p: [0, 1, 2].map(|k| {
            ph(k).voltage_rms_v * ph(k).current_rms_a * ph(k).angle_deg.to_radians().cos()
        }),
        q: [0, 1, 2].map(|k| {
            ph(k).voltage_rms_v * ph(k).current_rms_a * ph(k).angle_deg.to_radians().sin()
        }),
        s: [0, 1, 2].map(|k| ph(k).voltage_rms_v * ph(k).current_rms_a),
    }
}

/// `seconds` of the grid after skipping `skip` samples (so the file starts mid-cycle), currents in
/// mA as the meter sends them; two-channel (`v,i` of one phase) when `phase` is given.
fn samples(g: &GridConfig, skip: usize, seconds: f64, phase: Option<usize>) -> Vec<f32> {
    let mut grid = Grid::new(g.clone());
    let mut junk = vec![0f32; 6 * skip];
    grid.fill(&mut junk);
    let n = (seconds * f64::from(g.rate_hz)).round() as usize;
    let mut buf = vec![0f32; 6 * n];
    grid.fill(&mut buf);
    let mut out = Vec::with_capacity(buf.len());
    for f in buf.chunks_exact(6) {
        match phase {
            None => out.extend([f[0], f[1] * 1e3, f[2], f[3] * 1e3, f[4], f[5] * 1e3]),
            Some(p) => out.extend([f[2 * p], f[2 * p + 1] * 1e3]),
        }
    }
    out
}

fn write(path: &Path, rate: u32, measures: &str, units: &str, data: &[f32]) {
    let mut meta = RecordingMeta::new(
        rate,
        channel_names(measures).unwrap(),
        units.split(',').map(String::from).collect(),
    );
    meta.start_unix_us = Some(1_700_000_000_250_000);
    let mut w = PendingRecording::create(path).unwrap().start(meta).unwrap();
    w.write(data).unwrap();
    w.finish(RecordingStatus::Complete).unwrap();
}

fn analyze_json(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["analyze", "--json"];
    all.extend_from_slice(args);
    let o = cli(&all);
    assert!(o.status.success(), "analyze {args:?}: {}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        a.abs()
    } else {
        ((a - b) / b).abs()
    }
}

fn at(w: &Value, key: &str, k: usize) -> f64 {
    w[key][k]
        .as_f64()
        .unwrap_or_else(|| panic!("{key}[{k}] in {w}"))
}

/// Every row: the right number of whole cycles, values within 0.05 % (Q relative to S, as a
/// meter's reactive accuracy is stated), consecutive windows, the first one at the first rising
/// zero crossing of the (first) phase.
#[track_caller]
fn check_rows(
    rows: &[Value],
    g: &GridConfig,
    cycles: u32,
    phases: &[usize],
    first_crossing_s: f64,
) {
    let t = truth(g);
    let f = g.frequency_hz;
    let t0 = 1_700_000_000.25;
    assert!(!rows.is_empty());
    for (n, w) in rows.iter().enumerate() {
        assert_eq!(w["cycles"], cycles, "row {n}: {w}");
        for &k in phases {
            let ctx = format!("row {n} L{}: {w}", k + 1);
            assert!(rel(at(w, "voltage", k), t.v) < TOL, "V {ctx}");
            assert!(rel(at(w, "current", k), t.i_ma[k]) < TOL, "I {ctx}");
            assert!(rel(at(w, "activePower", k), t.p[k]) < TOL, "P {ctx}");
            assert!(
                (at(w, "reactivePower", k) - t.q[k]).abs() < TOL * t.s[k],
                "Q {ctx} vs {}",
                t.q[k]
            );
            assert!(rel(at(w, "apparentPower", k), t.s[k]) < TOL, "S {ctx}");
        }
        let freq = w["frequency"][phases[0]].as_f64().unwrap_or(f);
        assert!(rel(freq, f) < TOL, "f row {n}: {w}");
    }
    // The first window starts at the first rising crossing (seen through the detector's band-pass
    // filters: a constant delay of up to 0.12 cycle when the nominal frequency is not the line's).
    let first = rows[0]["t"].as_f64().unwrap() - t0;
    let late = first - first_crossing_s;
    assert!(
        late > -2.0 / f64::from(g.rate_hz) && late < 0.15 / f,
        "first window at {first} s, the first crossing at {first_crossing_s} s"
    );
    // Gapless windows of exactly `cycles` line cycles.
    for pair in rows.windows(2) {
        let dt = pair[1]["t"].as_f64().unwrap() - pair[0]["t"].as_f64().unwrap();
        assert!(
            // (edges are crossings located to a fraction of a sample)
            (dt - f64::from(cycles) / f).abs() < 0.5 / f64::from(g.rate_hz),
            "step {dt} between {} and {}",
            pair[0],
            pair[1]
        );
    }
}

/// Seconds from the file's first sample to L1's first rising zero crossing (L1 is `cos(2πft)` from
/// the grid's sample 0, so it rises through zero at ft = 3/4 mod 1).
fn first_crossing(g: &GridConfig, skip: usize) -> f64 {
    first_crossing_lagging(g, skip, 0.0)
}

/// The same for a phase lagging L1 by `lag_cycles` (L2: 1/3).
fn first_crossing_lagging(g: &GridConfig, skip: usize, lag_cycles: f64) -> f64 {
    let f = g.frequency_hz;
    let phase = f * skip as f64 / f64::from(g.rate_hz);
    (0.75 + lag_cycles - phase).rem_euclid(1.0) / f
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn file(d: &tempfile::TempDir, name: &str) -> PathBuf {
    d.path().join(name)
}

#[test]
fn clean_50_hz_rows_are_complete_and_right_from_the_first() {
    let d = dir();
    // Start phases that made the first rows read 93.6 V / 41.7 V / 54.5 V (windows cut at the start).
    for skip in [0usize, 37, 101, 150] {
        let g = grid(8000, 50.0, 230.0);
        let wav = file(&d, &format!("clean-{skip}.wav"));
        write(
            &wav,
            8000,
            "v,i",
            "V,mA,V,mA,V,mA",
            &samples(&g, skip, 3.0, None),
        );
        let rows = analyze_json(&[wav.to_str().unwrap()]);
        check_rows(&rows, &g, 10, &[0, 1, 2], first_crossing(&g, skip));
        // 3 s hold 15 windows; the samples before the first crossing are in none.
        assert_eq!(rows.len(), 14, "skip {skip}");
        assert!((rows[0]["t"].as_f64().unwrap() - 1_700_000_000.25) < 0.02 + 1e-6);
    }
}

#[test]
fn sixty_hz_gets_twelve_cycle_windows_and_the_right_q() {
    let d = dir();
    let g = grid(8000, 60.0, 120.0);
    let wav = file(&d, "us.wav");
    write(
        &wav,
        8000,
        "v,i",
        "V,mA,V,mA,V,mA",
        &samples(&g, 55, 3.0, None),
    );
    let rows = analyze_json(&[wav.to_str().unwrap()]);
    check_rows(&rows, &g, 12, &[0, 1, 2], first_crossing(&g, 55));
    // Told 50 Hz, it still measures right over 10 cycles.
    let rows = analyze_json(&["--nominal", "50", wav.to_str().unwrap()]);
    check_rows(&rows, &g, 10, &[0, 1, 2], first_crossing(&g, 55));
    // The table says what it did.
    let o = cli(&["analyze", wav.to_str().unwrap()]);
    let text = stdout(&o);
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("(12 cycles at 60 Hz nominal)"),
        "{text}"
    );
}

#[test]
fn single_phase_csv_and_slow_rates_that_record_writes() {
    let d = dir();
    // v,i_L2 at 1000 Hz as CSV.
    let g = grid(1000, 50.0, 230.0);
    let csv = file(&d, "l2.csv");
    write(&csv, 1000, "v,i_L2", "V,mA", &samples(&g, 7, 2.0, Some(1)));
    let rows = analyze_json(&[csv.to_str().unwrap()]);
    // Windows follow the recorded phase's own zero crossings (L2 lags L1 by a third of a cycle).
    check_rows(
        &rows,
        &g,
        10,
        &[1],
        first_crossing_lagging(&g, 7, 1.0 / 3.0),
    );
    for w in &rows {
        assert!(
            w["voltage"][0].is_null() && w["voltage"][2].is_null(),
            "{w}"
        );
    }
    // Below 1000 Hz: interpolated for the estimator, times still the file's.
    for (rate, f) in [(500u32, 50.0), (250, 50.0), (400, 60.0)] {
        let g = grid(rate, f, 230.0);
        let wav = file(&d, &format!("slow-{rate}.wav"));
        write(
            &wav,
            rate,
            "v,i",
            "V,mA,V,mA,V,mA",
            &samples(&g, 3, 4.0, None),
        );
        let rows = analyze_json(&[wav.to_str().unwrap()]);
        let cycles = if f == 60.0 { 12 } else { 10 };
        // The interpolation filter reaches 31 samples back: rows start at the first crossing
        // after them.
        let reach = 31.0 / f64::from(rate);
        let c = first_crossing(&g, 3);
        let c = c + ((reach - c) * f).ceil().max(0.0) / f;
        check_rows(&rows, &g, cycles, &[0, 1, 2], c);
        assert!(rows.len() >= 15, "{rate} Hz: {} rows", rows.len());
    }
    // Too slow to hold a line cycle: refused with the reason.
    let wav = file(&d, "too-slow.wav");
    write(
        &wav,
        100,
        "v,i",
        "V,mA,V,mA,V,mA",
        &samples(&grid(100, 50.0, 230.0), 0, 2.0, None),
    );
    let o = cli(&["analyze", wav.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at least 200 Hz"), "{}", stderr(&o));
}

#[test]
fn derived_recordings_are_reported_per_second() {
    let d = dir();
    // p,q at 10 Hz: 2.5 s → two whole seconds; each row the mean of its ten samples.
    let rate = 10u32;
    let n = 25;
    let data: Vec<f32> = (0..n)
        .flat_map(|k| {
            let x = k as f32;
            [1000.0 + x, 500.0 - x, 200.0, 100.0 + 2.0 * x, -50.0, 0.0]
        })
        .collect();
    let wav = file(&d, "pq.wav");
    write(&wav, rate, "p,q", "W,W,W,VAR,VAR,VAR", &data);
    let rows = analyze_json(&[wav.to_str().unwrap()]);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (s, w) in rows.iter().enumerate() {
        let mean_x = (s * 10) as f64 + 4.5;
        assert_eq!(w["cycles"], 0);
        assert!((w["t"].as_f64().unwrap() - (1_700_000_000.25 + s as f64)).abs() < 1e-6);
        assert!(
            (at(w, "activePower", 0) - (1000.0 + mean_x)).abs() < 1e-3,
            "{w}"
        );
        assert!(
            (at(w, "activePower", 1) - (500.0 - mean_x)).abs() < 1e-3,
            "{w}"
        );
        assert!(
            (at(w, "reactivePower", 0) - (100.0 + 2.0 * mean_x)).abs() < 1e-3,
            "{w}"
        );
        assert!((at(w, "reactivePower", 1) + 50.0).abs() < 1e-3, "{w}");
        assert!(
            w["voltage"][0].is_null() && w["apparentPower"][0].is_null(),
            "{w}"
        );
    }
    // v,i_RMS at 50 Hz as CSV: RMS aggregation per second, S = V·I.
    let data: Vec<f32> = (0..100)
        .flat_map(|k| {
            let v = if k % 2 == 0 { 230.0 } else { 232.0 };
            [v, 229.0, 231.0, 5000.0, 3000.0, 1000.0]
        })
        .collect();
    let csv = file(&d, "rms.csv");
    write(&csv, 50, "v,i_RMS", "V,V,V,mA,mA,mA", &data);
    let rows = analyze_json(&[csv.to_str().unwrap()]);
    assert_eq!(rows.len(), 2);
    let v1 = ((230.0f64 * 230.0 + 232.0 * 232.0) / 2.0).sqrt();
    for w in &rows {
        assert!((at(w, "voltage", 0) - v1).abs() < 1e-3, "{w}");
        assert!((at(w, "current", 1) - 3000.0).abs() < 1e-3, "{w}");
        assert!((at(w, "apparentPower", 2) - 231.0).abs() < 1e-3, "{w}");
        assert!(w["activePower"][0].is_null(), "{w}");
    }
    let o = cli(&["analyze", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("2 one-second rows over 100 samples"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("L1") && l.contains("231.00")),
        "{text}"
    );
}

#[test]
fn raw_f32_needs_its_rate_and_plots_report_plain_errors() {
    let d = dir();
    let g = grid(4000, 50.0, 230.0);
    let data = samples(&g, 0, 1.0, None);
    let raw = file(&d, "x.f32");
    std::fs::write(
        &raw,
        data.iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let o = cli(&["analyze", raw.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--rate"), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1);
    let rows = analyze_json(&["--rate", "4000", raw.to_str().unwrap()]);
    assert!(rows.len() >= 3, "{rows:?}");
    // --rate is for files that do not say it.
    let wav = file(&d, "x.wav");
    write(&wav, 4000, "v,i", "V,mA,V,mA,V,mA", &data);
    assert_eq!(
        cli(&["analyze", "--rate", "8000", wav.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    // A plot into a missing directory: the system's words, before any work.
    let o = cli(&[
        "analyze",
        "--plot",
        "/nonexistent-dir/p.png",
        wav.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert_eq!(
        e,
        "smartmeter: error: /nonexistent-dir/p.png: No such file or directory (os error 2)\n"
    );
    assert!(stdout(&o).is_empty());
    let png = file(&d, "p.png");
    let o = cli(&[
        "analyze",
        "--plot",
        png.to_str().unwrap(),
        wav.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    // Derived recordings plot too.
    let pq = file(&d, "pq.wav");
    write(&pq, 10, "p,q", "W,W,W,VAR,VAR,VAR", &[1.0; 6 * 30]);
    let o = cli(&[
        "analyze",
        "--plot",
        png.to_str().unwrap(),
        pq.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}
