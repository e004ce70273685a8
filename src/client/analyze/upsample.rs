//! Interpolation of a slow recording by an integer factor up to the estimator's rate range (see
//! the parent module's docs): a Kaiser-windowed sinc, exact timing by construction.

use std::vec::Vec;

/// Half-width of the interpolation filter, input samples (64 taps per output phase).
const INTERP_HALF_WIDTH: usize = 32;
/// Kaiser window parameter of the interpolation filter (≈ 90 dB: passband ripple ≪ 0.01 %).
const INTERP_KAISER_BETA: f64 = 9.0;

fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term) = (1.0, 1.0);
    let q = x * x / 4.0;
    for k in 1..50 {
        term *= q / f64::from(k * k);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// Interpolates a slow recording by an integer factor up to the estimator's range: a
/// Kaiser-windowed sinc (cut-off at the input's Nyquist frequency, flat far beyond the line
/// frequency's harmonics that such a file can hold), one tap set per output phase.
///
/// Timing is exact by construction: output frame `q` is the signal at input time `q / factor`,
/// and the first output passed on is the first whose filter support lies wholly inside the
/// recording (input time `K − 1`), so [`Upsampler::time_of_first_s`] is the file time of the first
/// frame fed to the estimator.
pub(super) struct Upsampler {
    ch: usize,
    in_rate_hz: u32,
    /// `taps[p * 2K + j]`: weight of history sample `j` (oldest first) for output phase `p`.
    taps: Vec<f32>,
    /// The last `2K` input frames, oldest first, interleaved.
    hist: Vec<f32>,
    frames_in: usize,
}

impl Upsampler {
    pub(super) fn new(ch: usize, in_rate_hz: u32, factor: u32) -> Upsampler {
        let k = INTERP_HALF_WIDTH;
        let factor = factor.max(1) as usize;
        let n = 2 * k;
        let mut taps = Vec::with_capacity(factor * n);
        for p in 0..factor {
            let frac = p as f64 / factor as f64;
            let row: Vec<f64> = (0..n)
                .map(|j| {
                    // distance from history sample j to the output time, input samples
                    let t = (k - 1) as f64 - j as f64 + frac;
                    let sinc = if t.abs() < 1e-12 {
                        1.0
                    } else {
                        let x = core::f64::consts::PI * t;
                        x.sin() / x
                    };
                    let r = t / k as f64;
                    let w = if r.abs() >= 1.0 {
                        0.0
                    } else {
                        bessel_i0(INTERP_KAISER_BETA * (1.0 - r * r).sqrt())
                            / bessel_i0(INTERP_KAISER_BETA)
                    };
                    sinc * w
                })
                .collect();
            let sum: f64 = row.iter().sum();
            taps.extend(row.iter().map(|c| (c / sum) as f32));
        }
        Upsampler {
            ch,
            in_rate_hz,
            taps,
            hist: Vec::with_capacity(n * ch),
            frames_in: 0,
        }
    }

    /// File time of the first output frame passed on, seconds after the first input sample.
    pub(super) fn time_of_first_s(&self) -> f64 {
        (INTERP_HALF_WIDTH - 1) as f64 / f64::from(self.in_rate_hz)
    }

    /// Replaces `out` with the output frames this block completes.
    pub(super) fn process(&mut self, block: &[f32], out: &mut Vec<f32>) {
        out.clear();
        let n = 2 * INTERP_HALF_WIDTH;
        for frame in block.chunks_exact(self.ch) {
            if self.hist.len() == n * self.ch {
                self.hist.drain(..self.ch);
            }
            self.hist.extend_from_slice(frame);
            self.frames_in += 1;
            if self.frames_in < n {
                continue;
            }
            for row in self.taps.chunks_exact(n) {
                for c in 0..self.ch {
                    let y: f32 = self
                        .hist
                        .iter()
                        .skip(c)
                        .step_by(self.ch)
                        .zip(row)
                        .map(|(x, k)| x * k)
                        .sum();
                    out.push(y);
                }
            }
        }
    }
}
