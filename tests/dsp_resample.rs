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
    let skip = out.len() / 2;
    let tail = &out[skip..];
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
    // outputs start once the fractional stage (32 taps each side at 32000/2^14 Hz) is primed
    let expected = 40.0 - 32.0 / (32000.0 / 16384.0);
    assert!(rs.group_delay_s() > 20.0);
    assert!((n as f64 - expected).abs() <= 2.0, "{n} vs {expected}");
}
