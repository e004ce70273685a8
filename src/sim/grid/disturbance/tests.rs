//! Tests of the disturbance options and their schedule.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn durations_read_the_cli_format_exactly() {
    assert_eq!(parse_duration("4s"), Some(ms(4000)));
    assert_eq!(parse_duration("100ms"), Some(ms(100)));
    assert_eq!(parse_duration("1.5s"), Some(ms(1500)));
    assert_eq!(parse_duration("2m"), Some(ms(120_000)));
    assert_eq!(parse_duration("0.1"), Some(ms(100)));
    assert_eq!(parse_duration("0"), Some(Duration::ZERO));
    assert_eq!(parse_duration(".25s"), Some(ms(250)));
    assert_eq!(parse_duration("0.0001ms"), Some(Duration::from_nanos(100)));
    for bad in [
        "", "s", "-1s", "1.2.3s", "1x", "nan", "inf", "1e3", "2e6s", "1 0s", ".",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn events_parse_with_phases_defaulting_to_all() {
    let d = parse_dip("4s:100ms:0.6:1").unwrap();
    assert_eq!(
        d,
        VoltageDisturbance {
            kind: DisturbanceKind::Dip,
            at: ms(4000),
            duration: ms(100),
            level: 0.6,
            phases: DisturbedPhases(0b001),
        }
    );
    assert_eq!(
        parse_dip("4s:100ms:0.6:1,2").unwrap().phases,
        DisturbedPhases(0b011)
    );
    assert_eq!(
        parse_dip("4s:100ms:0.6:3, 1").unwrap().phases,
        DisturbedPhases(0b101)
    );
    assert_eq!(parse_dip("0:1.5s:0").unwrap().phases, DisturbedPhases::ALL);
    let s = parse_swell("2m:1s:1.2:2").unwrap();
    assert_eq!(
        (s.kind, s.at, s.level),
        (DisturbanceKind::Swell, ms(120_000), 1.2)
    );
    assert_eq!(s.phases, DisturbedPhases(0b010));
    let i = parse_interrupt("1s:2s").unwrap();
    assert_eq!(
        (i.kind, i.level, i.phases),
        (DisturbanceKind::Interruption, 0.01, DisturbedPhases::ALL)
    );
    assert_eq!((i.at, i.duration), (ms(1000), ms(2000)));
    assert_eq!(
        parse_vharmonic("5:0.06").unwrap(),
        VoltageHarmonic {
            order: 5,
            rel: 0.06
        }
    );
    assert_eq!(
        parse_flicker("1620:0.407").unwrap(),
        Flicker {
            cpm: 1620.0,
            dvv_pct: 0.407
        }
    );
}

#[test]
fn bad_values_name_the_field_and_its_range() {
    let table: &[(Result<(), DisturbanceError>, &str)] = &[
        (
            parse_dip("4s:100ms").map(drop),
            "AT:DURATION:RESIDUAL[:PHASES]",
        ),
        (
            parse_dip("4s:100ms:0.6:1:2").map(drop),
            "AT:DURATION:RESIDUAL",
        ),
        (
            parse_dip("4s:100ms:1.1").map(drop),
            "dip residual: expected 0-1",
        ),
        (parse_dip("4s:100ms:-0.1").map(drop), "dip residual"),
        (parse_dip("4s:100ms:nan").map(drop), "dip residual"),
        (
            parse_dip("4s:0ms:0.5").map(drop),
            "dip duration: expected a duration > 0",
        ),
        (
            parse_dip("-1s:1s:0.5").map(drop),
            "dip start: expected a duration 0-1e6 s",
        ),
        (parse_dip("4x:1s:0.5").map(drop), "dip start"),
        (
            parse_dip("4s:1s:0.5:4").map(drop),
            "dip phases: expected a comma-separated list",
        ),
        (parse_dip("4s:1s:0.5:").map(drop), "dip phases"),
        (parse_dip("4s:1s:0.5:0").map(drop), "dip phases"),
        (
            parse_swell("4s:1s:0.9").map(drop),
            "swell level: expected 1-2",
        ),
        (parse_swell("4s:1s:2.5:1").map(drop), "swell level"),
        (parse_swell("4s").map(drop), "AT:DURATION:LEVEL[:PHASES]"),
        (parse_interrupt("4s").map(drop), "AT:DURATION"),
        (parse_interrupt("4s:1s:0.5").map(drop), "AT:DURATION"),
        (parse_interrupt("4s:0").map(drop), "interrupt duration"),
        (
            parse_vharmonic("1:0.1").map(drop),
            "vharmonic order: expected an integer 2-50",
        ),
        (parse_vharmonic("51:0.1").map(drop), "vharmonic order"),
        (parse_vharmonic("2.5:0.1").map(drop), "vharmonic order"),
        (
            parse_vharmonic("3:1.5").map(drop),
            "vharmonic amplitude: expected 0-1",
        ),
        (parse_vharmonic("3").map(drop), "K:REL"),
        (parse_flicker("0:1").map(drop), "flicker rate"),
        (parse_flicker("7000:1").map(drop), "at most 6000"),
        (
            parse_flicker("110:60").map(drop),
            "flicker depth: expected ΔV/V 0-50",
        ),
        (parse_flicker("110").map(drop), "CPM:DVV"),
    ];
    for (r, msg) in table {
        let e = r.clone().unwrap_err().to_string();
        assert!(e.contains(msg), "{e:?} lacks {msg:?}");
    }
}

const RATE: u32 = 32_000;

/// The clean 230 V grid of `--voltage v` through `d`, `n` frames from sample 0.
fn render(d: &Disturbances, v_rms: [f64; 3], f_hz: f64, n: usize) -> Vec<[f32; 6]> {
    use crate::dsp::synth::{Grid, GridConfig, PhaseSignal};
    let mut g = Grid::new(GridConfig {
        rate_hz: RATE,
        frequency_hz: f_hz,
        phases: v_rms.map(|v| PhaseSignal {
            voltage_rms_v: v,
            current_rms_a: 5.0,
            angle_deg: 0.0,
        }),
        ..GridConfig::default()
    });
    (0..n)
        .map(|i| {
            let mut f = g.next_frame();
            d.apply(i as u64, &mut f);
            f
        })
        .collect()
}

/// RMS of channel `ch` over `frames[from..from + len]`.
fn rms(frames: &[[f32; 6]], ch: usize, from: usize, len: usize) -> f64 {
    let s: f64 = frames[from..from + len]
        .iter()
        .map(|f| f64::from(f[ch]).powi(2))
        .sum();
    (s / len as f64).sqrt()
}

#[test]
fn a_dip_is_residual_times_v_on_the_selected_phases_only_from_the_sample_instant() {
    let dip = parse_dip("100ms:200ms:0.6:1").unwrap();
    let mut d = Disturbances::new(RATE, 50.0, [230.0; 3], &[], &[dip], None);
    // Anchor 2.5 ms after sample 0 (80 samples): the dip spans samples 3280..9680.
    d.arm(2_500_000);
    let frames = render(&d, [230.0; 3], 50.0, 16_000);
    let cycle = 640;
    for start in [3280, 3280 + cycle, 9680 - cycle] {
        let r = rms(&frames, 0, start, cycle);
        assert!(
            (r / (0.6 * 230.0) - 1.0).abs() < 0.001,
            "L1 in the dip: {r}"
        );
    }
    for ch in [2, 4] {
        for start in (0..16_000 - cycle).step_by(cycle) {
            let r = rms(&frames, ch, start, cycle);
            assert!((r / 230.0 - 1.0).abs() < 1e-4, "ch {ch} at {start}: {r}");
        }
    }
    // Currents untouched.
    assert!((rms(&frames, 1, 3280, cycle) / 5.0 - 1.0).abs() < 1e-4);
    // Rectangular: the gain switches exactly at the first sample at/after the scheduled time.
    assert_eq!(d.gain(3279), [1.0; 3]);
    assert_eq!(d.gain(3280), [0.6, 1.0, 1.0]);
    assert_eq!(d.gain(9679), [0.6, 1.0, 1.0]);
    assert_eq!(d.gain(9680), [1.0; 3]);
    assert!((rms(&frames, 0, 9680, cycle) / 230.0 - 1.0).abs() < 1e-4);
}

#[test]
fn nothing_time_dependent_happens_before_the_anchor() {
    let dip = parse_dip("0s:1s:0.5").unwrap();
    let f = parse_flicker("1620:10").unwrap();
    let d = Disturbances::new(RATE, 50.0, [230.0; 3], &[], &[dip], Some(f));
    assert_eq!(d.gain(0), [1.0; 3]);
    assert_eq!(d.gain(1000), [1.0; 3]);
}

#[test]
fn overlaps_resolve_to_the_later_event_and_interruptions_cover_all_phases() {
    let events = [
        parse_dip("0s:1s:0.5:1,2").unwrap(),
        parse_swell("500ms:1s:1.2:2,3").unwrap(),
        parse_interrupt("500ms:100ms").unwrap(),
    ];
    let mut d = Disturbances::new(1000, 50.0, [230.0; 3], &[], &events, None);
    d.arm(0);
    assert_eq!(d.gain(100), [0.5, 0.5, 1.0]);
    assert_eq!(d.gain(550), [0.01; 3]);
    assert_eq!(d.gain(700), [0.5, 1.2, 1.2]);
    assert_eq!(d.gain(1200), [1.0, 1.2, 1.2]);
    assert_eq!(d.gain(1500), [1.0; 3]);
}

#[test]
fn a_swell_and_an_interruption_have_their_levels() {
    let events = [
        parse_swell("0s:100ms:1.15:3").unwrap(),
        parse_interrupt("200ms:100ms").unwrap(),
    ];
    let mut d = Disturbances::new(RATE, 60.0, [120.0; 3], &[], &events, None);
    d.arm(0);
    let frames = render(&d, [120.0; 3], 60.0, 12_800);
    // 60 Hz: 533.3 samples a cycle; use three cycles = 1600 samples.
    let w = 1600;
    assert!((rms(&frames, 4, 0, w) / (1.15 * 120.0) - 1.0).abs() < 0.001);
    assert!((rms(&frames, 0, 0, w) / 120.0 - 1.0).abs() < 0.001);
    for ch in [0, 2, 4] {
        assert!((rms(&frames, ch, 6400, w) / 1.2 - 1.0).abs() < 0.001);
    }
}

#[test]
fn flicker_is_a_rectangular_modulation_of_the_given_period_and_depth() {
    // 1620 changes per minute = 13.5 Hz square wave: a change every 1/27 s.
    let f = parse_flicker("1620:10").unwrap();
    let mut d = Disturbances::new(RATE, 50.0, [230.0; 3], &[], &[], Some(f));
    d.arm(0);
    let half_period = f64::from(RATE) / 27.0; // 1185.19 samples
    let mut changes = Vec::new();
    let mut last = d.gain(0)[0];
    assert!((last - 1.05).abs() < 1e-12, "starts at the upper level");
    for i in 1..(RATE as u64) {
        let g = d.gain(i)[0];
        if g != last {
            changes.push(i);
            assert!(((g - last).abs() - 0.1).abs() < 1e-12, "ΔV/V = 10 %");
            assert!(g == 0.95 || g == 1.05, "{g}");
            last = g;
        }
        assert_eq!(d.gain(i), [g; 3], "all phases alike");
    }
    assert_eq!(changes.len(), 26, "27 half periods in 1 s");
    for (k, c) in changes.iter().enumerate() {
        let want = (half_period * (k + 1) as f64).ceil() as u64;
        assert!(c.abs_diff(want) <= 1, "change {k} at {c}, want {want}");
    }
    // The cycle RMS follows the levels.
    let frames = render(&d, [230.0; 3], 50.0, 1100);
    assert!((rms(&frames, 0, 0, 640) / (1.05 * 230.0) - 1.0).abs() < 0.001);
}

#[test]
fn voltage_harmonics_have_their_amplitude_by_dft_on_every_phase() {
    let h = [
        parse_vharmonic("3:0.05").unwrap(),
        parse_vharmonic("5:0.04").unwrap(),
        parse_vharmonic("5:0.02").unwrap(), // repeats add up: H5 = 6 %
        parse_vharmonic("50:0.01").unwrap(),
    ];
    let d = Disturbances::new(RATE, 50.0, [230.0, 220.0, 240.0], &h, &[], None);
    let frames = render(&d, [230.0, 220.0, 240.0], 50.0, 6400); // 10 cycles
    for (p, v) in [230.0, 220.0, 240.0].into_iter().enumerate() {
        let amp = |k: f64| {
            let (mut re, mut im) = (0.0, 0.0);
            for (n, f) in frames.iter().enumerate() {
                let w = 2.0 * PI * k * 50.0 * n as f64 / f64::from(RATE);
                re += f64::from(f[2 * p]) * w.cos();
                im += f64::from(f[2 * p]) * w.sin();
            }
            2.0 * (re * re + im * im).sqrt() / frames.len() as f64 / SQRT_2
        };
        let h1 = amp(1.0);
        assert!((h1 / v - 1.0).abs() < 1e-4, "L{} H1 {h1}", p + 1);
        for (k, rel) in [(3.0, 0.05), (5.0, 0.06), (50.0, 0.01), (7.0, 0.0)] {
            let got = amp(k) / h1;
            assert!((got - rel).abs() < 1e-5, "L{} H{k}: {got} vs {rel}", p + 1);
        }
    }
}

#[test]
fn the_generator_is_deterministic() {
    let events = [parse_dip("10ms:20ms:0.3:2").unwrap()];
    let f = Some(parse_flicker("110:1").unwrap());
    let h = [parse_vharmonic("7:0.03").unwrap()];
    let mut a = Disturbances::new(RATE, 50.0, [230.0; 3], &h, &events, f);
    let mut b = a.clone();
    a.arm(1_234_567);
    b.arm(1_234_567);
    let (fa, fb) = (
        render(&a, [230.0; 3], 50.0, 3200),
        render(&b, [230.0; 3], 50.0, 3200),
    );
    assert!(
        fa.iter()
            .zip(&fb)
            .all(|(x, y)| x.map(f32::to_bits) == y.map(f32::to_bits))
    );
}
