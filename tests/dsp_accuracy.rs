//! The accuracy suite of issue 3: one named test per case, synthetic signals from `dsp::synth`.
//!
//! Limits (errors relative to the reading for RMS, relative to S for P and Q): Vrms, Irms ≤ 0.01 %;
//! P ≤ 0.02 %; Q₁ ≤ 0.02 %; phase ≤ 0.01°; PF ≤ 0.0005; frequency ≤ 1 mHz per window (no noise).
mod dsp_support;

use dsp_support::*;
use smartmeter::dsp::energy::EnergyMeter;
use smartmeter::dsp::synth::{Grid, GridConfig, PhaseSignal};
use smartmeter::dsp::{Estimator, EstimatorConfig, PhaseMode};

const SECONDS: f64 = 1.2;

#[test]
fn frequency_45_hz() {
    check(&grid(8000, 45.0, 230.0, 5.0, 30.0), 50, SECONDS, ISSUE);
}

#[test]
fn frequency_49_5_hz_is_not_off_by_fixed_windows() {
    check(&grid(8000, 49.5, 230.0, 5.0, 60.0), 50, SECONDS, ISSUE);
}

#[test]
fn frequency_50_hz() {
    check(&grid(8000, 50.0, 230.0, 5.0, 0.0), 50, SECONDS, ISSUE);
}

#[test]
fn frequency_55_hz() {
    check(&grid(8000, 55.0, 230.0, 5.0, 60.0), 50, SECONDS, ISSUE);
}

#[test]
fn frequency_60_hz_nominal_60() {
    check(&grid(8000, 60.0, 120.0, 5.0, 30.0), 60, SECONDS, ISSUE);
}

#[test]
fn frequency_65_hz() {
    check(&grid(8000, 65.0, 120.0, 5.0, -36.87), 60, SECONDS, ISSUE);
}

#[test]
fn rate_4_khz() {
    for f in [45.0, 50.0, 61.3] {
        check(&grid(4000, f, 230.0, 5.0, 60.0), 50, SECONDS, ISSUE);
    }
}

#[test]
fn rate_8_khz() {
    for f in [45.0, 50.0, 61.3] {
        check(&grid(8000, f, 230.0, 5.0, 60.0), 50, SECONDS, ISSUE);
    }
}

#[test]
fn rate_16_khz() {
    for f in [45.0, 50.0, 61.3] {
        check(&grid(16000, f, 230.0, 5.0, 60.0), 50, SECONDS, ISSUE);
    }
}

#[test]
fn rate_32_khz() {
    for f in [45.0, 50.0, 61.3] {
        check(&grid(32000, f, 230.0, 5.0, 60.0), 50, SECONDS, ISSUE);
    }
}

#[test]
fn odd_rate_1_khz_and_7_khz() {
    check(&grid(1000, 50.0, 230.0, 5.0, 60.0), 50, 2.0, ISSUE);
    check(&grid(7000, 52.0, 230.0, 5.0, 60.0), 50, SECONDS, ISSUE);
}

#[test]
fn power_factor_unity() {
    check(&grid(8000, 49.8, 230.0, 5.0, 0.0), 50, SECONDS, ISSUE);
}

#[test]
fn power_factor_0_5_inductive() {
    let w = check(&grid(8000, 49.0, 230.0, 5.0, 60.0), 50, SECONDS, ISSUE);
    eprintln!("PF 0.5 ind at 49 Hz: {w:?}");
}

#[test]
fn power_factor_0_8_capacitive() {
    check(
        &grid(8000, 50.3, 230.0, 5.0, -36.869_897_645_844_02),
        50,
        SECONDS,
        ISSUE,
    );
}

#[test]
fn current_1_to_120_percent_of_nominal() {
    for pct in [1.0, 5.0, 10.0, 50.0, 100.0, 120.0] {
        for angle in [0.0, 60.0, -36.87] {
            check(
                &grid(8000, 50.2, 230.0, 5.0 * pct / 100.0, angle),
                50,
                SECONDS,
                ISSUE,
            );
        }
    }
}

#[test]
fn current_harmonics_up_to_20_percent() {
    let mut cfg = grid(8000, 49.7, 230.0, 5.0, 30.0);
    cfg.current_harmonics = harmonics(&[
        (3, 0.20, 10.0),
        (5, 0.15, 40.0),
        (7, 0.10, 0.0),
        (11, 0.05, 0.0),
    ]);
    let windows = run(&cfg, 50, SECONDS);
    check(&cfg, 50, SECONDS, ISSUE);
    let e = Grid::new(cfg.clone()).expected(0);
    let last = windows.last().unwrap();
    let thd = f64::from(last.phases[0].thd_i_pct.unwrap());
    assert!(
        (thd - e.thd_i_pct).abs() < 0.05,
        "THD-I {thd} vs {}",
        e.thd_i_pct
    );
}

#[test]
fn voltage_harmonics_5_percent_3rd_5th_7th() {
    let mut cfg = grid(16000, 50.4, 230.0, 5.0, 45.0);
    cfg.voltage_harmonics = harmonics(&[(3, 0.05, 0.0), (5, 0.05, 90.0), (7, 0.05, 180.0)]);
    cfg.current_harmonics = harmonics(&[(3, 0.20, 0.0), (5, 0.10, 30.0), (7, 0.05, 0.0)]);
    check(&cfg, 50, SECONDS, ISSUE);
    let windows = run(&cfg, 50, SECONDS);
    let e = Grid::new(cfg.clone()).expected(1);
    let thd = f64::from(windows.last().unwrap().phases[1].thd_v_pct.unwrap());
    assert!(
        (thd - e.thd_v_pct).abs() < 0.05,
        "THD-V {thd} vs {}",
        e.thd_v_pct
    );
}

#[test]
fn dc_offset_1_percent_adds_at_most_0_01_percent() {
    let mut cfg = grid(8000, 50.1, 230.0, 5.0, 60.0);
    let clean = compare(&run(&cfg, 50, SECONDS), &expected3(&cfg), 50.1, 2);
    cfg.voltage_dc_rel = 0.01;
    cfg.current_dc_rel = 0.01;
    let dc = check(&cfg, 50, SECONDS, ISSUE);
    assert!(
        dc.v_rel - clean.v_rel <= 1e-4 && dc.p_rel_s - clean.p_rel_s <= 1e-4,
        "{dc:?} vs {clean:?}"
    );
}

/// IEC 62053-22 class 0.2S: ±0.2 % (PF 1, 5 %–Imax), ±0.4 % (PF 1, 1–5 %), ±0.3 % (PF 0.5 ind /
/// 0.8 cap, 10 %–Imax), ±0.5 % (2–10 %): asserted with a 5× margin on the error of P (energy).
#[test]
fn quantisation_16_bit_passes_class_0_2s_with_5x_margin() {
    let in_a = 5.0;
    for (pct, angle, limit_pct) in [
        (1.0, 0.0, 0.4),
        (5.0, 0.0, 0.2),
        (100.0, 0.0, 0.2),
        (120.0, 0.0, 0.2),
        (2.0, 60.0, 0.5),
        (10.0, 60.0, 0.3),
        (100.0, 60.0, 0.3),
        (10.0, -36.87, 0.3),
        (120.0, -36.87, 0.3),
    ] {
        let mut cfg = grid(8000, 50.05, 230.0, in_a * pct / 100.0, angle);
        cfg.quantisation_bits = Some(16);
        cfg.voltage_full_scale_v = 400.0;
        cfg.current_full_scale_a = 10.0;
        let windows = run(&cfg, 50, 2.2);
        let e = Grid::new(cfg.clone()).expected(0);
        let sync: Vec<_> = windows.iter().filter(|w| w.synchronised).skip(2).collect();
        let energy: f64 = sync
            .iter()
            .map(|w| f64::from(w.phases[0].active_power_w) * w.duration_s)
            .sum();
        let t: f64 = sync.iter().map(|w| w.duration_s).sum();
        let err_pct = 100.0 * (energy / t / e.active_power_w - 1.0);
        assert!(
            err_pct.abs() <= limit_pct / 5.0,
            "{pct} % In, {angle}°: {err_pct} % (limit {limit_pct} %)"
        );
    }
}

#[test]
fn unbalanced_three_phase() {
    let mut cfg = grid(8000, 50.0, 230.0, 5.0, 0.0);
    cfg.phases = [
        PhaseSignal {
            voltage_rms_v: 230.0,
            current_rms_a: 5.0,
            angle_deg: 10.0,
        },
        PhaseSignal {
            voltage_rms_v: 215.0,
            current_rms_a: 0.5,
            angle_deg: 60.0,
        },
        PhaseSignal {
            voltage_rms_v: 240.0,
            current_rms_a: 6.0,
            angle_deg: -36.87,
        },
    ];
    check(&cfg, 50, SECONDS, ISSUE);
}

#[test]
fn reversed_sequence() {
    let mut cfg = grid(8000, 50.0, 230.0, 5.0, 25.0);
    cfg.reversed_sequence = true;
    check(&cfg, 50, SECONDS, ISSUE);
}

#[test]
fn line_to_line_voltages() {
    let cfg = grid(8000, 50.0, 230.0, 5.0, 0.0);
    let windows = run(&cfg, 50, 1.0);
    let w = windows.last().unwrap();
    for lv in w.line_voltage_v {
        let lv = f64::from(lv.unwrap());
        assert!((lv / (230.0 * 3f64.sqrt()) - 1.0).abs() < 1e-4, "{lv}");
    }
}

#[test]
fn frequency_10_s_with_1_percent_noise_within_10_mhz() {
    let mut cfg = grid(8000, 50.123, 230.0, 5.0, 0.0);
    cfg.noise_rel = 0.01;
    let mut est = Estimator::<f32>::new(EstimatorConfig::new(8000, 50)).unwrap();
    let mut g = Grid::new(cfg);
    let mut buf = vec![0.0f32; 6 * 8000];
    for _ in 0..11 {
        g.fill(&mut buf);
        est.feed(&buf, |_| {});
    }
    let f10 = f64::from(est.frequency_10s_hz().expect("10-s frequency"));
    assert!((f10 - 50.123).abs() <= 0.010, "{f10}");
    eprintln!(
        "10-s frequency with 1 % noise: {f10} Hz (error {:.3} mHz)",
        (f10 - 50.123) * 1e3
    );
}

#[test]
fn no_voltage_gives_no_frequency_and_nominal_windows() {
    let cfg = grid(8000, 50.0, 0.0, 5.0, 0.0);
    // a window needs the sample at its end point: 2 s and one block more give 10 windows
    let windows = run(&cfg, 50, 2.001);
    assert_eq!(windows.len(), 10);
    for w in &windows {
        assert_eq!(w.frequency_hz, None);
        assert!(!w.synchronised);
        assert!((w.duration_s - 0.2).abs() < 1e-9, "{}", w.duration_s);
        let m = &w.phases[0];
        assert_eq!(m.vrms_v, 0.0);
        assert_eq!(m.phase_deg, None);
        assert_eq!(m.power_factor, None);
        assert_eq!(m.thd_v_pct, None);
        assert!((f64::from(m.irms_a) - 5.0).abs() < 0.05);
        assert!(!m.active_power_w.is_nan());
    }
}

#[test]
fn no_current_gives_undefined_pf_and_phase() {
    let windows = run(&grid(8000, 50.0, 230.0, 0.0, 0.0), 50, 1.0);
    let m = windows.last().unwrap().phases[2];
    assert_eq!(m.irms_a, 0.0);
    assert_eq!(m.power_factor, None);
    assert_eq!(m.phase_deg, None);
    assert_eq!(m.thd_i_pct, None);
    assert!(m.thd_v_pct.is_some());
}

#[test]
fn single_phase_mode() {
    let mut cfg = grid(8000, 50.5, 230.0, 5.0, 60.0);
    cfg.single_phase = true;
    let mut ec = EstimatorConfig::new(8000, 50);
    ec.phases = PhaseMode::Single;
    let mut est = Estimator::<f32>::new(ec).unwrap();
    let mut g = Grid::new(cfg.clone());
    let mut buf = vec![0.0f32; 2 * 8000];
    g.fill(&mut buf);
    let mut out = Vec::new();
    est.feed(&buf, |w| out.push(*w));
    let e = g.expected(0);
    let w = out.last().unwrap();
    assert!((f64::from(w.phases[0].vrms_v) / e.vrms_v - 1.0).abs() < 1e-4);
    assert!(
        (f64::from(w.phases[0].reactive_power_var) - e.reactive_power_var).abs()
            / e.apparent_power_va
            < 2e-4
    );
    assert_eq!(w.line_voltage_v, [None; 3]);
    assert_eq!(w.phases[1].vrms_v, 0.0);
}

#[test]
fn any_block_split_gives_identical_windows() {
    let cfg = grid(32000, 50.3, 230.0, 5.0, 60.0);
    let mut g = Grid::new(cfg);
    let mut buf = vec![0.0f32; 6 * 16000];
    g.fill(&mut buf);
    let mut a = Estimator::<f32>::new(EstimatorConfig::new(32000, 50)).unwrap();
    let mut b = a.clone();
    let mut wa = Vec::new();
    let mut wb = Vec::new();
    a.feed(&buf, |w| wa.push(*w));
    for chunk in buf.chunks(7) {
        b.feed(chunk, |w| wb.push(*w));
    }
    assert!(wa.len() >= 2);
    assert_eq!(wa, wb);
}

#[test]
fn half_cycle_rms_tracks_a_dip() {
    let cfg = grid(8000, 50.0, 230.0, 5.0, 0.0);
    let mut est = Estimator::<f32>::new(EstimatorConfig::new(8000, 50)).unwrap();
    let mut g = Grid::new(cfg.clone());
    let mut buf = vec![0.0f32; 6 * 4000];
    g.fill(&mut buf);
    est.feed(&buf, |_| {});
    est.reset_half_cycle_extremes();
    let mut dip = cfg.clone();
    dip.phases[0].voltage_rms_v = 161.0; // 70 %
    g.set_config(dip);
    let mut short = vec![0.0f32; 6 * 800]; // 100 ms
    g.fill(&mut short);
    est.feed(&short, |_| {});
    g.set_config(cfg);
    g.fill(&mut buf);
    est.feed(&buf, |_| {});
    let hc = est.half_cycle_rms();
    let min = f64::from(hc.min_v[0].unwrap());
    let max = f64::from(hc.max_v[0].unwrap());
    // the crossings move while the detector's filter settles after the step: ±1 %
    assert!((min - 161.0).abs() < 1.6, "min {min}");
    assert!((max - 230.0).abs() < 2.3, "max {max}");
    assert!((f64::from(hc.min_v[1].unwrap()) - 230.0).abs() < 2.3);
}

#[test]
fn energy_over_a_simulated_year_within_1e_9() {
    // One year of 200 ms windows (≈1.58e8), fed as window results.
    let windows: u64 = 365 * 24 * 3600 * 5;
    let p = [2300.7f64, -1234.5, 17.25];
    let q = [100.0f64, -50.0, 0.0];
    let mut m = EnergyMeter::new();
    let mut f32_register = 0.0f32;
    for _ in 0..windows {
        m.accumulate_power(p, q, 0.2);
        f32_register += (p[0] * 0.2 / 3600.0) as f32;
    }
    let net = m.net_wh();
    for (k, pk) in p.iter().enumerate() {
        let expected = pk * 0.2 * windows as f64 / 3600.0;
        let rel = (net[k] - expected).abs() / expected.abs();
        assert!(rel <= 1e-9, "phase {k}: {} vs {expected} ({rel:e})", net[k]);
    }
    assert!((m.reactive_lag_varh()[0] - 100.0 * 0.2 * windows as f64 / 3600.0).abs() < 1e-3);
    let f32_err = (f64::from(f32_register) / (p[0] * 0.2 * windows as f64 / 3600.0) - 1.0).abs();
    eprintln!(
        "one year: integer register exact to 1e-9; an f32 Wh register would be off by {:.1} %",
        100.0 * f32_err
    );
}

#[test]
fn estimator_windows_feed_energy_exactly() {
    let cfg = grid(8000, 50.0, 230.0, 5.0, 0.0);
    let windows = run(&cfg, 50, 2.0);
    let mut m = EnergyMeter::new();
    let mut t = 0.0;
    for w in &windows {
        m.accumulate(w);
        t += w.duration_s;
    }
    // the windows tile the time axis: total duration = frames fed (minus the unfinished window)
    let last = windows.last().unwrap();
    assert!((last.end_sample - windows[0].start_sample - t * 8000.0).abs() < 1e-6);
    let e = m.net_wh()[0];
    let expected = 1150.0 * t / 3600.0;
    assert!((e / expected - 1.0).abs() < 1e-3, "{e} vs {expected}");
}

#[test]
fn frequency_ramp_is_tracked() {
    let mut cfg: GridConfig = grid(8000, 49.0, 230.0, 5.0, 30.0);
    cfg.frequency_ramp_hz_per_s = 1.0;
    let windows = run(&cfg, 50, 3.0);
    let sync: Vec<_> = windows.iter().filter(|w| w.synchronised).skip(2).collect();
    assert!(sync.len() > 8);
    for w in sync {
        let mid_s = 0.5 * (w.start_sample + w.end_sample) / 8000.0;
        let f = f64::from(w.frequency_hz.unwrap());
        // the filter delays the crossings by a few ms; allow for it
        assert!((f - (49.0 + mid_s)).abs() < 0.02, "{f} at {mid_s}");
        assert!((f64::from(w.phases[0].vrms_v) / 230.0 - 1.0).abs() < 1e-3);
    }
}

#[test]
fn recovers_after_nan_samples() {
    let cfg = grid(8000, 50.0, 230.0, 5.0, 30.0);
    let mut g = Grid::new(cfg);
    let mut est = Estimator::<f32>::new(EstimatorConfig::new(8000, 50)).unwrap();
    let mut buf = vec![0.0f32; 6 * 8000];
    g.fill(&mut buf);
    est.feed(&buf, |_| {});
    est.feed(&[f32::NAN; 6 * 100], |_| {});
    g.fill(&mut buf);
    let mut last = None;
    est.feed(&buf, |w| last = Some(*w));
    let w = last.unwrap();
    assert!(w.synchronised);
    assert!(
        (w.phases[0].vrms_v - 230.0).abs() < 0.01,
        "{:?}",
        w.phases[0]
    );
}
