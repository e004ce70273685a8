//! Power-quality accuracy on synthetic signals made here (`tests/pq_support`), against the issue's
//! goals (tighter than IEC 61000-4-30 Class A / IEC 61000-4-7 Class I, which are printed next to
//! them). Run with `--nocapture` for the measured errors.
mod pq_support;

use pq_support::*;
use smartmeter::dsp::pq::{Interval, PqConfig, VoltageEvent, VoltageEventKind};

fn fixed(rate: u32, v: f32, f: u32) -> PqConfig {
    PqConfig {
        nominal_voltage_v: Some(v),
        nominal_frequency_hz: Some(f),
        ..PqConfig::new(rate)
    }
}

/// Worst |error| of the 10-s frequency over the given frequencies (`seconds` of signal each).
fn frequency_errors(rate: u32, nominal: u32, freqs: &[f64]) -> f64 {
    let mut worst = 0.0f64;
    for &f in freqs {
        let mut s = Signal::new(rate, f, if nominal == 60 { 120.0 } else { 230.0 });
        s.v_comps.push(Comp {
            order: 3.0,
            rel: 0.03,
            phase_deg: 0.0,
        });
        let (pq, _) = run_f32(&s, fixed(rate, 230.0, nominal), 10.3, T0_US);
        let got = f64::from(pq.frequency_10s_hz().expect("a 10-s value after 10 s"));
        worst = worst.max((got - f).abs());
    }
    worst
}

#[test]
fn frequency_42_5_to_57_5_hz_within_1_mhz() {
    let e = frequency_errors(8000, 50, &[42.5, 45.0, 49.5, 50.0, 50.5, 53.3, 57.5]);
    eprintln!(
        "10-s frequency, 50 Hz nominal: worst {:.4} mHz (goal 1, Class A 10)",
        1e3 * e
    );
    assert!(e < 1e-3, "{e}");
}

#[test]
fn frequency_51_to_69_hz_within_1_mhz() {
    let e = frequency_errors(8000, 60, &[51.0, 55.5, 59.5, 60.0, 60.5, 64.1, 69.0]);
    eprintln!(
        "10-s frequency, 60 Hz nominal: worst {:.4} mHz (goal 1, Class A 10)",
        1e3 * e
    );
    assert!(e < 1e-3, "{e}");
}

#[test]
fn frequency_at_32_khz_on_the_integer_path() {
    let s = Signal::new(32000, 49.87, 230.0);
    let (pq, _) = run_i32(&s, fixed(32000, 230.0, 50), 10.3, T0_US);
    let got = f64::from(pq.frequency_10s_hz().unwrap());
    assert!((got - 49.87).abs() < 1e-3, "{got}");
}

/// Worst basic-interval voltage error relative to Udin.
fn voltage_error(s: &Signal, cfg: PqConfig, int: bool) -> f64 {
    let (_, out) = if int {
        let (pq, o) = run_i32(s, cfg, 2.0, T0_US);
        (pq.nominal(), o)
    } else {
        let (pq, o) = run_f32(s, cfg, 2.0, T0_US);
        (pq.nominal(), o)
    };
    let h2: f64 = s.v_comps.iter().map(|c| c.rel * c.rel).sum();
    let udin = f64::from(cfg.nominal_voltage_v.unwrap());
    let mut worst = 0.0f64;
    assert!(out.basic.len() >= 4);
    for b in out.basic.iter().skip(1) {
        for p in 0..3 {
            let want = s.v_rms[p] * (1.0 + h2).sqrt();
            worst = worst.max((f64::from(b.voltage_v[p]) - want).abs() / udin);
        }
    }
    worst
}

#[test]
fn voltage_within_0_05_pct_of_udin() {
    let mut worst = 0.0f64;
    for (rate, f, v, nominal, int) in [
        (32000, 50.0, 230.0, 50, true),
        (32000, 49.5, 207.0, 50, false),
        (8000, 50.5, 253.0, 50, false),
        (32000, 60.0, 120.0, 60, true),
        (8000, 59.3, 132.0, 60, false),
    ] {
        let mut s = Signal::new(rate, f, v);
        s.v_comps.push(Comp {
            order: 5.0,
            rel: 0.06,
            phase_deg: 10.0,
        });
        s.v_comps.push(Comp {
            order: 7.0,
            rel: 0.04,
            phase_deg: 0.0,
        });
        let udin = if nominal == 60 { 120.0 } else { 230.0 };
        worst = worst.max(voltage_error(&s, fixed(rate, udin, nominal), int));
    }
    eprintln!(
        "voltage: worst {:.5} % of Udin (goal 0.05, Class A 0.1)",
        100.0 * worst
    );
    assert!(worst < 5e-4, "{worst}");
}

/// Harmonic subgroups against the analytic values: worst error in percent of the reading (for
/// components ≥ 1 % of the fundamental) and in percent of Udin/In (for the others).
fn harmonic_errors(s: &Signal, cfg: PqConfig, int: bool) -> (f64, f64) {
    let out = if int {
        run_i32(s, cfg, 2.0, T0_US).1
    } else {
        run_f32(s, cfg, 2.0, T0_US).1
    };
    let cycles = if cfg.nominal_frequency_hz == Some(60) {
        12.0
    } else {
        10.0
    };
    let (mut rel, mut abs) = (0.0f64, 0.0f64);
    assert!(out.basic.len() >= 4);
    for b in out.basic.iter().skip(1) {
        for p in 0..3 {
            for h in 1..=50 {
                let want_v = expected_subgroup_v(s, p, h, cycles);
                let got_v = f64::from(b.harmonics_v[p][h - 1]);
                let want_i = expected_subgroup_i(s, p, h, cycles);
                let got_i = f64::from(b.harmonics_i_a[p][h - 1]);
                for (got, want, full) in [(got_v, want_v, s.v_rms[p]), (got_i, want_i, s.i_rms[p])]
                {
                    if want >= 0.01 * full {
                        rel = rel.max((got - want).abs() / want);
                    } else {
                        abs = abs.max((got - want).abs() / full);
                    }
                }
            }
        }
    }
    (rel, abs)
}

fn distorted(rate: u32, f: f64, v: f64) -> Signal {
    let mut s = Signal::new(rate, f, v);
    let c = |order: f64, rel: f64, phase_deg: f64| Comp {
        order,
        rel,
        phase_deg,
    };
    s.v_comps = vec![
        c(2.0, 0.02, 10.0),
        c(3.0, 0.05, 0.0),
        c(5.0, 0.06, 45.0),
        c(7.0, 0.05, 90.0),
        c(11.0, 0.035, 0.0),
        c(13.0, 0.03, 30.0),
        c(25.0, 0.015, 0.0),
        c(39.0, 0.01, 60.0),
        c(49.0, 0.01, 0.0),
        c(50.0, 0.005, 0.0),
    ];
    s.i_comps = vec![
        c(3.0, 0.3, 20.0),
        c(5.0, 0.2, 0.0),
        c(7.0, 0.1, 0.0),
        c(9.0, 0.05, 0.0),
        c(21.0, 0.03, 0.0),
        c(47.0, 0.012, 0.0),
    ];
    s
}

#[test]
fn harmonic_subgroups_within_1_pct_with_frequency_deviation_and_interharmonics() {
    let mut worst = (0.0f64, 0.0f64);
    let cases = [
        (32000, 50.0, 230.0, 50, true),
        (32000, 50.5, 230.0, 50, true),
        (32000, 49.5, 230.0, 50, false),
        (32000, 47.0, 230.0, 50, true),
        (32000, 52.5, 230.0, 50, false),
        (8000, 50.2, 230.0, 50, false),
        (32000, 60.0, 120.0, 60, true),
        (32000, 60.5, 120.0, 60, false),
        (32000, 59.5, 120.0, 60, true),
        (32000, 57.0, 120.0, 60, false),
    ];
    for (rate, f, v, nominal, int) in cases {
        let cycles = if nominal == 60 { 12.0 } else { 10.0 };
        let mut s = distorted(rate, f, v);
        // interharmonics: on 5-Hz bins between subgroups, one inside the H3 subgroup (±5 Hz) and
        // one at the bin next to H7
        for (o, r) in [
            (2.5, 0.01),
            (4.5, 0.008),
            (17.5, 0.005),
            (3.0 + 1.0 / cycles, 0.01),
        ] {
            s.v_comps.push(Comp {
                order: o,
                rel: r,
                phase_deg: 0.0,
            });
        }
        s.i_comps.push(Comp {
            order: 7.0 - 1.0 / cycles,
            rel: 0.02,
            phase_deg: 0.0,
        });
        let udin = v as f32;
        let e = harmonic_errors(&s, fixed(rate, udin, nominal), int);
        eprintln!(
            "harmonics {rate} Hz f={f}: worst {:.4} % of reading, {:.5} % of nominal",
            100.0 * e.0,
            100.0 * e.1
        );
        worst = (worst.0.max(e.0), worst.1.max(e.1));
    }
    eprintln!(
        "harmonic subgroups: worst {:.4} % of reading (goal 1, Class I 5), {:.5} % of nominal below 1 % (Class I 0.05)",
        100.0 * worst.0,
        100.0 * worst.1
    );
    assert!(worst.0 < 0.01, "{worst:?}");
    assert!(worst.1 < 5e-4, "{worst:?}");
}

#[test]
fn thd_over_subgroups() {
    let s = distorted(32000, 50.3, 230.0);
    let (_, out) = run_i32(&s, fixed(32000, 230.0, 50), 1.5, T0_US);
    let b = out.basic.last().unwrap();
    let hv: f64 = s.v_comps.iter().map(|c| c.rel * c.rel).sum();
    let hi: f64 = s.i_comps.iter().map(|c| c.rel * c.rel).sum();
    for p in 0..3 {
        let tv = f64::from(b.thd_v_pct[p].unwrap());
        let ti = f64::from(b.thd_i_pct[p].unwrap());
        assert!((tv - 100.0 * hv.sqrt()).abs() < 0.01, "{tv}");
        assert!((ti - 100.0 * hi.sqrt()).abs() < 0.05, "{ti}");
    }
}

/// Symmetrical components of the test signal's fundamentals, percent.
fn expected_unbalance(s: &Signal) -> (f64, f64) {
    let ph: Vec<(f64, f64)> = (0..3)
        .map(|p| {
            let a = s.v_angle_deg[p].to_radians();
            (s.v_rms[p] * a.cos(), s.v_rms[p] * a.sin())
        })
        .collect();
    let rot = |z: (f64, f64), deg: f64| {
        let (sn, c) = deg.to_radians().sin_cos();
        (z.0 * c - z.1 * sn, z.0 * sn + z.1 * c)
    };
    let sum = |a: (f64, f64), b: (f64, f64), c: (f64, f64)| (a.0 + b.0 + c.0, a.1 + b.1 + c.1);
    let m = |z: (f64, f64)| z.0.hypot(z.1);
    let u0 = sum(ph[0], ph[1], ph[2]);
    let u1 = sum(ph[0], rot(ph[1], 120.0), rot(ph[2], 240.0));
    let u2 = sum(ph[0], rot(ph[1], 240.0), rot(ph[2], 120.0));
    (100.0 * m(u0) / m(u1), 100.0 * m(u2) / m(u1))
}

#[test]
fn unbalance_u2_within_0_02_pct() {
    let mut worst = 0.0f64;
    for (rate, f, v, angles, int) in [
        (
            32000,
            50.0,
            [230.0, 230.0, 230.0],
            [0.0, -120.0, 120.0],
            true,
        ),
        (
            32000,
            50.4,
            [230.0, 218.5, 236.0],
            [0.0, -118.0, 121.0],
            true,
        ),
        (
            32000,
            49.6,
            [225.0, 230.0, 241.0],
            [0.0, -123.0, 117.5],
            false,
        ),
        (
            8000,
            60.3,
            [120.0, 114.0, 126.0],
            [0.0, -121.0, 118.0],
            false,
        ),
    ] {
        let mut s = distorted(rate, f, 230.0);
        s.v_rms = v;
        s.v_angle_deg = angles;
        let nominal = if f > 55.0 { 60 } else { 50 };
        let out = if int {
            run_i32(&s, fixed(rate, 230.0, nominal), 1.5, T0_US).1
        } else {
            run_f32(&s, fixed(rate, 230.0, nominal), 1.5, T0_US).1
        };
        let (e0, e2) = expected_unbalance(&s);
        for b in out.basic.iter().skip(1) {
            let u2 = f64::from(b.u2_pct.unwrap());
            let u0 = f64::from(b.u0_pct.unwrap());
            worst = worst.max((u2 - e2).abs()).max((u0 - e0).abs());
        }
    }
    eprintln!(
        "unbalance: worst |Δu2|, |Δu0| {:.5} % (goal 0.02, Class A 0.15)",
        worst
    );
    assert!(worst < 0.02, "{worst}");
}

// ------------------------------------------------------------------------------------------------
// Events

fn events_of(s: &Signal, seconds: f64, int: bool, udin: f32, f: u32) -> Vec<VoltageEvent> {
    let cfg = fixed(s.rate_hz, udin, f);
    if int {
        run_i32(s, cfg, seconds, T0_US).1.events
    } else {
        run_f32(s, cfg, seconds, T0_US).1.events
    }
}

fn step(at_s: f64, phases: [bool; 3], factor: f64) -> Step {
    Step {
        at_s,
        phases,
        factor,
    }
}

/// Checks one event's timing (within one cycle) and residual (within 0.2 % of Udin).
fn check_event(
    e: &VoltageEvent,
    kind: VoltageEventKind,
    start_s: f64,
    dur_s: f64,
    extreme: f64,
    udin: f64,
    f: f64,
) {
    check_event_within(e, kind, (start_s, dur_s), extreme, udin, f, 0.002);
}

/// [`check_event`] with the residual allowed to be `residual` of Udin.
fn check_event_within(
    e: &VoltageEvent,
    kind: VoltageEventKind,
    (start_s, dur_s): (f64, f64),
    extreme: f64,
    udin: f64,
    f: f64,
    residual: f64,
) {
    let t0 = T0_US as f64 * 1e-6;
    let ds = e.start_unix_s - t0 - start_s;
    let dd = e.duration_s - dur_s;
    let dx = (f64::from(e.extreme_v) - extreme).abs() / udin;
    eprintln!(
        "{kind:?}: start {:+.2} ms, duration {:+.2} ms, residual {:.4} % of Udin (goals: 1 cycle, 1 cycle, 0.2 %)",
        1e3 * ds,
        1e3 * dd,
        100.0 * dx
    );
    assert_eq!(e.kind, kind, "{e:?}");
    assert!(ds.abs() <= 1.0 / f, "start {ds} {e:?}");
    assert!(dd.abs() <= 1.0 / f, "duration {dd} {e:?}");
    assert!(dx <= residual, "residual {dx} {e:?}");
    assert_eq!(f64::from(e.reference_v), udin);
}

#[test]
fn dip_on_one_phase() {
    for (rate, f, int) in [(32000, 50.0, true), (8000, 49.7, false)] {
        let mut s = Signal::new(rate, f, 230.0);
        s.steps = vec![
            step(1.5137, [true, false, false], 0.6),
            step(1.8137, [true, false, false], 1.0),
        ];
        let ev = events_of(&s, 3.0, int, 230.0, 50);
        assert_eq!(ev.len(), 1, "{ev:?}");
        check_event(&ev[0], VoltageEventKind::Dip, 1.5137, 0.3, 138.0, 230.0, f);
        assert_eq!(ev[0].phases, [true, false, false]);
    }
}

#[test]
fn dip_on_two_phases_ends_when_all_recover() {
    let mut s = Signal::new(32000, 50.0, 230.0);
    s.steps = vec![
        step(1.4, [true, true, false], 0.7),
        step(1.6, [true, false, false], 1.0),
        step(1.75, [false, true, false], 0.8),
        step(1.9, [false, true, false], 1.0),
    ];
    let ev = events_of(&s, 3.0, true, 230.0, 50);
    assert_eq!(ev.len(), 1, "{ev:?}");
    check_event(&ev[0], VoltageEventKind::Dip, 1.4, 0.5, 161.0, 230.0, 50.0);
    assert_eq!(ev[0].phases, [true, true, false]);
}

#[test]
fn dip_hysteresis_keeps_one_event() {
    // 85 % → 91 % (above 90 but below 92: still the same dip) → 85 % → 100 %
    let mut s = Signal::new(32000, 50.0, 230.0);
    let all = [true, true, true];
    s.steps = vec![
        step(1.3, all, 0.85),
        step(1.5, all, 0.91),
        step(1.7, all, 0.85),
        step(1.9, all, 1.0),
    ];
    let ev = events_of(&s, 3.0, true, 230.0, 50);
    assert_eq!(ev.len(), 1, "{ev:?}");
    check_event(
        &ev[0],
        VoltageEventKind::Dip,
        1.3,
        0.6,
        0.85 * 230.0,
        230.0,
        50.0,
    );
    // 93 % in between ends it: two dips
    s.steps[1].factor = 0.93;
    let ev = events_of(&s, 3.0, true, 230.0, 50);
    assert_eq!(ev.len(), 2, "{ev:?}");
}

#[test]
fn interruption_on_all_phases_is_one_event() {
    for (rate, f, udin, nominal) in [(32000, 50.0, 230.0, 50), (32000, 60.0, 120.0, 60)] {
        let mut s = Signal::new(rate, f, f64::from(udin));
        let all = [true, true, true];
        s.steps = vec![step(1.2511, all, 0.0), step(2.0511, all, 1.0)];
        let ev = events_of(&s, 4.0, true, udin, nominal);
        assert_eq!(ev.len(), 1, "{ev:?}");
        check_event(
            &ev[0],
            VoltageEventKind::Interruption,
            1.2511,
            0.8,
            0.0,
            f64::from(udin),
            f,
        );
        assert_eq!(ev[0].phases, all);
    }
    // two phases out, one at 50 %: a dip, not an interruption
    let mut s = Signal::new(32000, 50.0, 230.0);
    s.steps = vec![
        step(1.2, [true, true, false], 0.0),
        step(1.2, [false, false, true], 0.5),
        step(1.6, [true, true, true], 1.0),
    ];
    let ev = events_of(&s, 3.0, true, 230.0, 50);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].kind, VoltageEventKind::Dip);
}

#[test]
fn swell() {
    let mut s = Signal::new(32000, 50.0, 230.0);
    s.steps = vec![
        step(1.3, [false, false, true], 1.15),
        step(1.5, [false, false, true], 1.0),
    ];
    let ev = events_of(&s, 3.0, true, 230.0, 50);
    assert_eq!(ev.len(), 1, "{ev:?}");
    check_event(
        &ev[0],
        VoltageEventKind::Swell,
        1.3,
        0.2,
        1.15 * 230.0,
        230.0,
        50.0,
    );
    assert_eq!(ev[0].phases, [false, false, true]);
}

#[test]
fn rvc_and_dropped_rvc() {
    // a 6 % step down and back after 3 s: two RVCs with ΔUss ≈ ΔUmax ≈ 6 % of Udin
    let mut s = Signal::new(32000, 50.0, 230.0);
    s.steps = vec![
        step(2.5, [true, true, true], 0.94),
        step(5.5, [true, true, true], 1.0),
    ];
    let ev = events_of(&s, 8.0, true, 230.0, 50);
    assert_eq!(ev.len(), 2, "{ev:?}");
    for (e, at) in ev.iter().zip([2.5, 5.5]) {
        assert_eq!(e.kind, VoltageEventKind::Rvc);
        let ds = e.start_unix_s - T0_US as f64 * 1e-6 - at;
        assert!(ds.abs() <= 0.02, "{ds} {e:?}");
        let dss = f64::from(e.delta_steady_v.unwrap());
        let dmax = f64::from(e.delta_max_v.unwrap());
        assert!((dss - 0.06 * 230.0).abs() < 0.1, "{e:?}");
        assert!(dmax >= dss - 0.05 && dmax < 0.07 * 230.0, "{e:?}");
        // the transition lasts about one cycle
        assert!(e.duration_s < 0.05, "{e:?}");
    }
    // a step to 80 % is a dip: the RVC it starts is dropped
    s.steps = vec![
        step(2.5, [true, false, false], 0.8),
        step(5.5, [true, false, false], 1.0),
    ];
    let ev = events_of(&s, 8.0, true, 230.0, 50);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].kind, VoltageEventKind::Dip);
}

// ------------------------------------------------------------------------------------------------
// Nominal values

#[test]
fn auto_detects_nominal_values() {
    for (f, v, want_f, want_v) in [
        (50.1, 229.0, 50, 230.0),
        (59.8, 121.0, 60, 120.0),
        (60.0, 126.0, 60, 127.0),
        (49.9, 221.0, 50, 220.0),
        (60.2, 275.0, 60, 277.0),
        (50.0, 101.0, 50, 100.0),
    ] {
        let s = Signal::new(8000, f, v);
        let (pq, out) = run_f32(&s, PqConfig::new(8000), 3.0, T0_US);
        let n = pq.nominal().unwrap();
        assert_eq!(
            (n.frequency_hz, n.voltage_v),
            (want_f, want_v),
            "{f} Hz {v} V"
        );
        assert!(n.voltage_auto && n.frequency_auto);
        let last = out.basic.last().unwrap();
        assert_eq!(last.nominal, n);
        if want_f == 60 {
            // the estimator followed: 12-cycle windows of 200 ms
            let d = last.end_unix_s - last.start_unix_s;
            assert!((d - 12.0 / f).abs() < 1e-4, "{d}");
        }
        // nothing is reported before the decision (the first second)
        let first = out.basic.first().unwrap().start_unix_s - T0_US as f64 * 1e-6;
        assert!(first >= 0.99, "{first}");
    }
}

/// The declared voltage is the one nearest to the median of the first second's window voltages, so
/// a dip in that second does not pull it to the next lower value (with the mean it read 220 V).
#[test]
fn a_dip_in_the_first_second_does_not_bias_the_declared_voltage() {
    for at in [0.5, 0.8, 1.1] {
        let mut s = Signal::new(8000, 50.0, 230.0);
        s.steps = vec![step(at, [true; 3], 0.5), step(at + 0.15, [true; 3], 1.0)];
        let (pq, _) = run_f32(&s, PqConfig::new(8000), 3.0, T0_US);
        let n = pq.nominal().unwrap();
        assert_eq!((n.frequency_hz, n.voltage_v), (50, 230.0), "dip at {at} s");
    }
}

/// With auto-detection, an event in the second the nominal values are measured (after the settling
/// windows) is reported when they are decided, with its own start, duration and residual: the
/// Urms(½) values of that second wait for the detector (on a 60 Hz grid also while the estimator
/// settles again after its re-tune). Before, a dip there was not reported, and one running into the
/// decision was reported from the decision on (16 ms of a 200 ms dip).
#[test]
fn an_event_while_the_nominal_values_are_detected_is_reported_whole() {
    // 60 Hz: auto-detection re-tunes the estimator from 50 Hz and it settles again (the values
    // wait through that too)
    let cases = [(50.0, 230.0), (60.0, 120.0)].into_iter().flat_map(|g| {
        [(0.7, 0.15), (0.9, 0.2), (1.1, 0.2), (1.3, 0.3), (1.6, 0.1)].map(|c| (g, c))
    });
    for ((f, udin), (at, dur)) in cases {
        for int in [false, true] {
            let mut s = Signal::new(8000, f, udin);
            s.steps = vec![step(at, [true; 3], 0.5), step(at + dur, [true; 3], 1.0)];
            let (pq, out) = if int {
                let (pq, out) = run_i32(&s, PqConfig::new(8000), 4.0, T0_US);
                (pq.nominal(), out)
            } else {
                let (pq, out) = run_f32(&s, PqConfig::new(8000), 4.0, T0_US);
                (pq.nominal(), out)
            };
            assert_eq!(pq.map(|n| n.voltage_v), Some(udin as f32), "dip at {at} s");
            assert_eq!(
                out.events.len(),
                1,
                "{f} Hz, dip at {at} s ({int}): {:?}",
                out.events
            );
            // inside the ≈0.4 s in which the estimator settles again after the 50 → 60 Hz re-tune
            // (≈1.4–1.8 s here): the timing as always, the residual within 0.5 %
            let residual = if f == 60.0 && at > 1.5 { 0.005 } else { 0.002 };
            let e = &out.events[0];
            check_event_within(
                e,
                VoltageEventKind::Dip,
                (at, dur),
                udin / 2.0,
                udin,
                f,
                residual,
            );
        }
    }
}

#[test]
fn waits_for_voltage_before_deciding() {
    let mut s = Signal::new(8000, 60.0, 120.0);
    s.steps = vec![step(0.0, [true; 3], 0.0), step(1.7, [true; 3], 1.0)];
    let (pq, _) = run_f32(&s, PqConfig::new(8000), 4.0, T0_US);
    let n = pq.nominal().unwrap();
    assert_eq!((n.frequency_hz, n.voltage_v), (60, 120.0));
}

// ------------------------------------------------------------------------------------------------
// Aggregation and the clock

#[test]
fn three_second_intervals_are_15_windows() {
    let s = Signal::new(8000, 60.0, 120.0);
    let (_, out) = run_f32(&s, fixed(8000, 120.0, 60), 8.0, T0_US);
    let agg = out.of(Interval::ThreeSecond);
    assert!(agg.len() >= 2);
    for a in &agg {
        assert_eq!(a.windows, 15);
        assert!((a.end_unix_s - a.start_unix_s - 3.0).abs() < 1e-3);
        assert!((a.voltage_v[0] - 120.0).abs() < 0.01);
        assert!(!a.flagged);
    }
}

// ------------------------------------------------------------------------------------------------
// Layouts

#[test]
fn voltage_only_and_single_phase_layouts() {
    use smartmeter::dsp::pq::{Layout, Pq};
    let mut s = distorted(8000, 50.3, 230.0);
    s.steps = vec![
        step(1.7, [false, true, false], 0.5),
        step(1.9, [false, true, false], 1.0),
    ];
    for layout in [Layout::ThreePhaseVoltage, Layout::SinglePhase] {
        let cfg = PqConfig {
            layout,
            ..fixed(8000, 230.0, 50)
        };
        let mut pq = Pq::<f32>::new(cfg).unwrap();
        let mut out = Collect::default();
        for k in 0..30u64 {
            let six = s.samples(k * 800, 800);
            let x: Vec<f32> = match layout {
                Layout::ThreePhaseVoltage => {
                    six.chunks(6).flat_map(|f| [f[0], f[2], f[4]]).collect()
                }
                _ => six.chunks(6).flat_map(|f| [f[0], f[1]]).collect(),
            };
            pq.feed(&x, T0_US + k as i64 * 100_000, &mut out);
        }
        let b = out.basic.last().unwrap();
        let want = expected_subgroup_v(&s, 0, 5, 10.0);
        assert!(
            (f64::from(b.harmonics_v[0][4]) / want - 1.0).abs() < 0.01,
            "{layout:?}"
        );
        match layout {
            Layout::ThreePhaseVoltage => {
                assert!(b.u2_pct.is_some_and(|u| u < 0.01));
                assert_eq!(b.thd_i_pct, [None; 3]);
                assert_eq!(b.harmonics_i_a[0][0], 0.0);
                // the dip on L2 is seen
                assert_eq!(out.events.len(), 1, "{:?}", out.events);
                assert_eq!(out.events[0].phases, [false, true, false]);
            }
            _ => {
                assert_eq!(b.u2_pct, None);
                assert!(
                    (f64::from(b.harmonics_i_a[0][2]) / expected_subgroup_i(&s, 0, 3, 10.0) - 1.0)
                        .abs()
                        < 0.01
                );
                assert_eq!(b.voltage_v[1], 0.0);
                // L2 is not measured in single phase: no event
                assert!(out.events.is_empty(), "{:?}", out.events);
            }
        }
    }
}

/// Block `k` of 50 ms of `s` at 32 kHz; every seventh holds a NaN, an infinity and −10³⁰.
fn hostile_block(s: &Signal, k: u64) -> Vec<f32> {
    let mut x = s.samples(k * 1600, 1600);
    if k % 7 == 3 {
        x[100] = f32::NAN;
        x[101] = f32::INFINITY;
        x[500] = -1e30;
    }
    x
}

#[test]
fn hostile_input_and_clock_jumps_do_not_panic() {
    use smartmeter::dsp::pq::Pq;
    let s = Signal::new(32000, 50.0, 230.0);
    let mut pq = Pq::<f32>::new(PqConfig::new(32000)).unwrap();
    let mut out = Collect::default();
    let mut t = T0_US;
    for k in 0..40u64 {
        let x = hostile_block(&s, k);
        // the clock jumps back and forth, blocks split frames
        t += if k == 20 {
            -3_600_000_000
        } else if k == 30 {
            7_200_000_000
        } else {
            50_000
        };
        let cut = 1 + (k as usize * 37) % 11;
        pq.feed(&x[..cut], t, &mut out);
        pq.feed(&x[cut..], t, &mut out);
    }
    let mut pi = Pq::<i32>::new(PqConfig::new(8000)).unwrap();
    let codes: Vec<i32> = (0..6 * 8000)
        .map(|k| if k % 5 == 0 { i32::MAX } else { i32::MIN + k })
        .collect();
    pi.feed(&codes, T0_US, &mut out);
    for r in out.basic.iter().chain(&out.aggregates) {
        assert!(r.voltage_v.iter().all(|v| !v.is_nan()));
    }
    // with the nominal values fixed, every window is reported: a non-finite sample is limited
    // where the lattice reads it, so it cannot poison a window's spectrum
    let cfg = PqConfig {
        nominal_voltage_v: Some(230.0),
        nominal_frequency_hz: Some(50),
        ..PqConfig::new(32000)
    };
    let mut pq = Pq::<f32>::new(cfg).unwrap();
    let mut out = Collect::default();
    for k in 0..60u64 {
        let x = hostile_block(&s, k);
        pq.feed(&x, T0_US + k as i64 * 50_000, &mut out);
    }
    assert!(out.basic.len() >= 10, "{} basic intervals", out.basic.len());
    for r in &out.basic {
        let spectrum = r.harmonics_v.iter().chain(&r.harmonics_i_a).flatten();
        assert!(spectrum.copied().all(f32::is_finite), "{r:?}");
        let thd = r.thd_v_pct.iter().chain(&r.thd_i_pct).flatten();
        assert!(thd.copied().all(f32::is_finite), "{r:?}");
        assert!(r.u2_pct.is_none_or(f32::is_finite), "{r:?}");
    }
}

/// A steady, distorted 120 V / 60 Hz grid under auto-detection (the pipeline starts tuned to 50 Hz
/// and re-tunes once it has decided) gives no event and no flagged interval, whatever the start
/// phase and the block sizes: the half cycle cut short by the re-sync used to enter Urms(½) and
/// made a 10 % "swell" on L3 in 4 of 60 such runs (the simulator showed it as a flagged `getPQ`).
#[test]
fn auto_nominal_retune_on_a_distorted_60hz_grid_makes_no_event() {
    use smartmeter::dsp::pq::Pq;
    for seed in 0..60u64 {
        let s = distorted_120v_60hz();
        let mut pq = Pq::<f32>::new(PqConfig::new(32_000)).unwrap();
        let mut out = Collect::default();
        let mut n = seed * 137;
        let end = n + 6 * 32_000;
        let mut x = seed;
        while n < end {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let k = (1 + (x >> 33) % 1500).min(end - n) as usize;
            let t = T0_US + (n as f64 * 1e6 / 32_000.0).round() as i64;
            pq.feed(&s.samples(n, k), t, &mut out);
            n += k as u64;
        }
        assert!(out.events.is_empty(), "seed {seed}: {:?}", out.events);
        assert!(
            out.basic.iter().all(|r| !r.flagged),
            "seed {seed}: a flagged basic interval"
        );
        assert!(
            out.basic.len() > 10,
            "seed {seed}: basic intervals reported"
        );
    }
}

/// Under auto-detection on a distorted 60 Hz grid, every 10-s frequency (the first one included,
/// whatever the phase of the clock's 10-s ticks against the start) is within 1 mHz: the crossings
/// found before the re-tune to 60 Hz used to bias the first value by 11-22 mHz.
#[test]
fn auto_nominal_retune_keeps_the_first_ten_second_frequency_exact() {
    use smartmeter::dsp::pq::Pq;
    for off_ms in (0..10_000i64).step_by(500) {
        let s = distorted_120v_60hz();
        let mut pq = Pq::<f32>::new(PqConfig::new(32_000)).unwrap();
        let mut out = Collect::default();
        let t0 = T0_US + off_ms * 1000;
        let mut n = 0u64;
        while n < 14 * 32_000 {
            let t = t0 + (n as f64 * 1e6 / 32_000.0).round() as i64;
            pq.feed(&s.samples(n, 1600), t, &mut out);
            n += 1600;
        }
        let f: Vec<f32> = out.basic.iter().filter_map(|r| r.frequency_hz).collect();
        assert!(!f.is_empty(), "offset {off_ms} ms: a 10-s frequency");
        for x in f {
            assert!((x - 60.0).abs() <= 1e-3, "offset {off_ms} ms: {x} Hz");
        }
    }
}

/// The simulator's North-American test grid: 120 V / 60 Hz with 4 % H5 and 2 % H3 on every phase.
fn distorted_120v_60hz() -> Signal {
    let mut s = Signal::new(32_000, 60.0, 120.0);
    for (order, rel) in [(5.0, 0.04), (3.0, 0.02)] {
        s.v_comps.push(Comp {
            order,
            rel,
            phase_deg: 0.0,
        });
    }
    s
}
