//! Resampler: passband gain, stopband (aliasing) rejection, frame counts, group delay, streaming.
use smartmeter::dsp::resample::{Resampler, ResamplerError};

/// Feeds a tone on channel 0 and returns the RMS of the settled output relative to the input RMS.
fn tone_gain(in_rate: u32, out_rate: u32, f_hz: f64) -> f64 {
    let mut rs = Resampler::new(1, in_rate, out_rate).unwrap();
    let seconds = 4.0f64.max(40.0 / f64::from(out_rate));
    let n = (f64::from(in_rate) * seconds) as usize;
    let input: Vec<f32> = (0..n)
        .map(|k| (2.0 * std::f64::consts::PI * f_hz * k as f64 / f64::from(in_rate)).sin() as f32)
        .collect();
    let mut out = Vec::new();
    for chunk in input.chunks(997) {
        rs.process(chunk, |f| out.push(f[0]));
    }
    // the last half, cut to whole tone cycles (20 outputs: 5 cycles at 0.25·out, 3 at 0.3·out, where
    // 0.7·out aliases): an RMS over a partial cycle is off by up to 1/(2·len)
    let tail = &out[out.len() - out.len() / 2 / 20 * 20..];
    let rms = (tail.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
    rms * std::f64::consts::SQRT_2
}

#[test]
fn passband_is_flat_when_decimating() {
    for (i, o) in [
        (32000, 8000),
        (8000, 1000),
        (32000, 7919),
        (8000, 50),
        (8000, 3000),
    ] {
        let g = tone_gain(i, o, 0.25 * f64::from(o));
        assert!((g - 1.0).abs() < 0.002, "{i}->{o}: gain {g}");
    }
}

#[test]
fn aliasing_components_are_rejected() {
    // A tone above the output Nyquist would fold into the band if samples were just dropped.
    for (i, o) in [
        (32000, 8000),
        (8000, 1000),
        (32000, 7919),
        (8000, 50),
        (8000, 3000),
    ] {
        let g = tone_gain(i, o, 0.7 * f64::from(o));
        assert!(g < 1e-3, "{i}->{o}: alias gain {g}");
    }
}

#[test]
fn upsampling_passes_the_band() {
    let g = tone_gain(8000, 32000, 1000.0);
    assert!((g - 1.0).abs() < 0.002, "gain {g}");
}

#[test]
fn frame_count_matches_the_ratio_and_any_block_split() {
    let mut rs = Resampler::new(6, 32000, 7919).unwrap();
    let input = vec![0.25f32; 6 * 32000];
    let mut a = 0usize;
    rs.process(&input, |f| {
        assert_eq!(f.len(), 6);
        a += 1;
    });
    let mut rs2 = Resampler::new(6, 32000, 7919).unwrap();
    let mut b = 0usize;
    for chunk in input.chunks(7) {
        rs2.process(chunk, |_| b += 1);
    }
    assert_eq!(a, b);
    assert!((7919 - 40..=7919).contains(&a), "{a}");
}

#[test]
fn identity_rate_is_transparent() {
    let mut rs = Resampler::new(2, 8000, 8000).unwrap();
    let input: Vec<f32> = (0..100).map(|k| k as f32).collect();
    let mut out = Vec::new();
    rs.process(&input, |f| out.extend_from_slice(f));
    assert_eq!(out, input);
    assert_eq!(rs.group_delay_s(), 0.0);
}

#[test]
fn group_delay_is_reported() {
    // A step through 8000 -> 1000: the output crosses 0.5 at the reported delay (±1 output sample).
    let mut rs = Resampler::new(1, 8000, 1000).unwrap();
    let mut out = Vec::new();
    let input: Vec<f32> = (0..8000)
        .map(|k| if k >= 4000 { 1.0 } else { 0.0 })
        .collect();
    rs.process(&input, |f| out.push(f[0]));
    let idx = out.iter().position(|x| *x >= 0.5).unwrap();
    let t_cross = idx as f64 / 1000.0;
    let expected = 0.5 + rs.group_delay_s();
    assert!(
        (t_cross - expected).abs() <= 1.5e-3,
        "{t_cross} vs {expected}"
    );
}

#[test]
fn invalid_parameters_name_the_field() {
    assert_eq!(
        Resampler::new(0, 8000, 100).unwrap_err(),
        ResamplerError::Channels(0)
    );
    assert_eq!(
        Resampler::new(6, 8000, 0).unwrap_err(),
        ResamplerError::OutRate(0)
    );
    assert_eq!(
        Resampler::new(6, 8000, 32001).unwrap_err().to_string(),
        "Invalid out_rate_hz: 32001 (expected 1..=32000)"
    );
}

#[test]
fn one_hertz_output_works() {
    let mut rs = Resampler::new(6, 32000, 1).unwrap();
    let input = vec![1.0f32; 6 * 32000];
    let mut n = 0;
    for _ in 0..40 {
        rs.process(&input, |f| {
            n += 1;
            assert!(f.iter().all(|x| x.is_finite()));
        });
    }
    // outputs describe first_output_at + k seconds; the last one needs the input up to its instant
    // plus the group delay (≤ ½ s + ¼ s at 1 Hz: the latency budget)
    let d = rs.group_delay_s();
    assert!(d <= 0.75, "{d}");
    let expected = 40.0 - d - rs.first_output_at() / 32000.0;
    assert!((n as f64 - expected).abs() <= 1.0, "{n} vs {expected}");
}

/// |H(f)| of the converter: a complex tone (cos, sin on two channels) has the same magnitude at every
/// settled output sample, even when it aliases to DC.
fn magnitude(in_rate: u32, out_rate: u32, f_hz: f64) -> f64 {
    let mut rs = Resampler::new(2, in_rate, out_rate).unwrap();
    let (fin, fout) = (f64::from(in_rate), f64::from(out_rate));
    let step = fin / fout;
    // settled: the first output instant at least one group delay (+ 2 periods) into the input
    let settled = (rs.group_delay_s() + 2.0 / fout) * fin;
    let first_good = ((settled - rs.first_output_at()) / step).ceil().max(0.0) as usize;
    let n = (settled + rs.group_delay_s() * fin + 12.0 * step) as usize;
    let mut worst: f64 = 0.0;
    let mut k = 0usize;
    let mut buf = Vec::with_capacity(2 * 4096);
    for start in (0..n).step_by(4096) {
        buf.clear();
        for j in start..(start + 4096).min(n) {
            let ph = 2.0 * std::f64::consts::PI * f_hz * j as f64 / fin;
            buf.push(ph.cos() as f32);
            buf.push(ph.sin() as f32);
        }
        rs.process(&buf, |y| {
            if k >= first_good {
                worst = worst.max(f64::from(y[0]).hypot(f64::from(y[1])));
            }
            k += 1;
        });
    }
    assert!(k > first_good + 4, "{in_rate}->{out_rate}: too few outputs");
    worst
}

/// Every design keeps what it reports (the table of the module docs): flat within 0.1 dB to
/// `passband_hz`, ≥ 70 dB down from just above `stopband_hz` (≥ 60 dB at the edge itself) up to the
/// input's Nyquist frequency, the line fundamental (45–65 Hz) removed below 100 Hz, and a cold start's first
/// clean output within one output period plus the latency budget.
#[test]
fn every_rate_keeps_its_reported_passband_stopband_and_latency() {
    use smartmeter::dsp::resample::LATENCY_BUDGET_S;
    for in_rate in [32000u32, 8000] {
        for out in [
            1u32, 2, 5, 10, 15, 20, 30, 50, 60, 100, 120, 125, 200, 400, 1000, 8000,
        ] {
            let rs = Resampler::new(1, in_rate, out).unwrap();
            let (pass, stop, d) = (rs.passband_hz(), rs.stopband_hz(), rs.group_delay_s());
            let what = format!("{in_rate}->{out}: pass {pass} Hz, stop {stop} Hz, delay {d} s");
            assert!(
                2.0 * d <= 1.0 / f64::from(out) + LATENCY_BUDGET_S + 1e-9,
                "{what}"
            );
            for f in [0.0, 0.5 * pass, pass] {
                let g = 20.0 * magnitude(in_rate, out, f).log10();
                assert!(g.abs() <= 0.105, "{what}: {g} dB at {f} Hz");
            }
            if out >= in_rate {
                continue; // nothing to reject
            }
            let g = 20.0 * magnitude(in_rate, out, stop).log10();
            assert!(g <= -60.0, "{what}: {g} dB at the stop edge");
            let nyquist = 0.5 * f64::from(in_rate);
            let mut f = 1.02 * stop;
            while f < nyquist {
                let g = 20.0 * magnitude(in_rate, out, f).log10();
                assert!(g <= -70.0, "{what}: {g} dB at {f} Hz");
                f *= 1.6;
            }
            if out < 100 {
                for f in [45.0, 49.5, 50.0, 50.5, 60.0, 150.0] {
                    let g = 20.0 * magnitude(in_rate, out, f).log10();
                    assert!(g <= -70.0, "{what}: line frequency {f} Hz at {g} dB");
                }
            }
            // the promises of the sharp design hold down to 50 Hz, the stop edge down to 15 Hz
            if out >= 50 {
                assert!(pass >= 0.29 * f64::from(out), "{what}");
            }
            if out >= 15 {
                assert!((stop - 0.5 * f64::from(out)).abs() < 1e-6, "{what}");
            }
        }
    }
}

/// Output `k` describes input instant `first_output_at() + k·in/out` exactly (a ramp passes a
/// linear-phase filter unchanged, so each value names its instant), with the default grid and after
/// `align`, for designs with and without a final fractional stage.
#[test]
fn outputs_describe_exactly_the_instants_reported() {
    for (i, o) in [
        (32000u32, 8000u32),
        (32000, 1000),
        (8000, 4000),
        (32000, 7919),
        (32000, 50),
        (8000, 1),
        (8000, 8000),
        (8000, 32000),
    ] {
        for align in [None, Some(0.0), Some(1234.3), Some(4000.77)] {
            let mut rs = Resampler::new(1, i, o).unwrap();
            let at = align.map(|a| rs.align(a));
            let step = f64::from(i) / f64::from(o);
            let first = rs.first_output_at();
            if let (Some(a), Some(got)) = (align, at) {
                assert_eq!(got, first, "{i}->{o}");
                assert!(
                    got >= a - 1e-9 && got < a + 1.0,
                    "{i}->{o}: aligned to {a}: {got}"
                );
            }
            // a ramp of 1e-3 per input sample, centred on the first 2 s
            let n = (2.0 * f64::from(i) + rs.group_delay_s() * f64::from(i) * 2.0) as usize;
            let input: Vec<f32> = (0..n).map(|k| (k as f64 * 1e-3) as f32).collect();
            let mut out = Vec::new();
            rs.process(&input, |y| out.push(f64::from(y[0])));
            let settled = rs.group_delay_s() * f64::from(i) + 1.0;
            let mut checked = 0;
            for (k, y) in out.iter().enumerate() {
                let t = first + k as f64 * step;
                if t >= settled {
                    assert!(
                        (y * 1e3 - t).abs() < 0.05 + t * 2e-6,
                        "{i}->{o} {align:?}: output {k} reads {} for {t}",
                        y * 1e3
                    );
                    checked += 1;
                }
            }
            assert!(checked >= 1, "{i}->{o} {align:?}");
        }
    }
}
