//! Anti-aliased sample-rate conversion for the `sample` streams (any output rate 1..=32000 Hz).
//!
//! The original device "resampled" by dropping samples, which folds everything above the new
//! Nyquist frequency (harmonics, switching noise) into the band. [`Resampler`] instead runs:
//!
//! 1. as many **decimate-by-2 stages** as keep the intermediate rate ≥ 2× the output rate: a 47-tap
//!    Kaiser-windowed (β = 8) low-pass with cutoff 0.2·fₛ,in (flat to 0.15·fₛ,in, ≥ 70 dB from 0.25·fₛ,in, so
//!    nothing folds into the band that survives), then
//! 2. one **fractional stage**: a 64-tap Kaiser-windowed sinc evaluated on a 64-phase table with linear
//!    interpolation between phases, cutoff `min(fₛ,in, fₛ,out)/2 − 4 %` of the intermediate rate.
//!
//! **Passband**: flat (≤ 0.1 dB) to ≈ 0.3·`out_rate_hz` when decimating, ≈ 0.4·`in_rate_hz` when
//! interpolating; **stopband** ≥ ~70 dB from 0.5·`out_rate_hz` (no aliasing).
//! **Group delay**: [`Resampler::group_delay_s`] (linear phase; 23 input samples per halving stage
//! at that stage's rate plus 32 samples of the fractional stage — e.g. ≈ 4.2 ms for 8000 → 1000 Hz,
//! and seconds for a 1 Hz output: a sharp filter at 0.3 Hz needs that long).
//!
//! Memory: coefficient tables and per-channel delay lines are allocated once in [`Resampler::new`]
//! (≈ 17 KiB + 0.5 KiB per channel per stage); nothing is allocated while processing.
//!
//! ```
//! use smartmeter::dsp::Resampler;
//! let mut rs = Resampler::new(6, 32000, 8000)?;
//! let input = vec![0.5f32; 6 * 3200];
//! let mut frames = 0;
//! rs.process(&input, |frame| { assert_eq!(frame.len(), 6); frames += 1; });
//! assert!((790..=800).contains(&frames));
//! # Ok::<(), smartmeter::dsp::ResamplerError>(())
//! ```

use alloc::vec;
use alloc::vec::Vec;
use core::f64::consts::PI;
#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;

const HALF_TAPS: usize = 47;
const FRAC_HALF_WIDTH: usize = 32;
const FRAC_PHASES: usize = 64;
const KAISER_BETA: f64 = 8.0;
/// Largest channel count.
pub const MAX_CHANNELS: usize = 16;

/// Invalid resampler parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResamplerError {
    /// Input rate outside `1..=192000`.
    #[error("Invalid in_rate_hz: {0} (expected 1..=192000)")]
    InRate(u32),
    /// Output rate outside `1..=32000`.
    #[error("Invalid out_rate_hz: {0} (expected 1..=32000)")]
    OutRate(u32),
    /// Channel count outside `1..=16`.
    #[error("Invalid channels: {0} (expected 1..=16)")]
    Channels(usize),
}

fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..40 {
        term *= q / f64::from(k * k);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

fn kaiser(t: f64, half_width: f64) -> f64 {
    let r = t / half_width;
    if r.abs() >= 1.0 {
        return 0.0;
    }
    bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / bessel_i0(KAISER_BETA)
}

/// Windowed sinc low-pass, cutoff `fc` in cycles per sample, at offset `t` samples.
fn lowpass(t: f64, fc: f64, half_width: f64) -> f64 {
    let x = 2.0 * fc * t;
    let sinc = if x.abs() < 1e-12 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    };
    2.0 * fc * sinc * kaiser(t, half_width)
}

/// A per-channel history ring stored twice so the last `len` samples are always contiguous.
#[derive(Debug, Clone)]
struct History {
    buf: Vec<f32>,
    len: usize,
    pos: usize,
    channels: usize,
}

impl History {
    fn new(channels: usize, len: usize) -> Self {
        Self {
            buf: vec![0.0; channels * 2 * len],
            len,
            pos: 0,
            channels,
        }
    }
    #[inline]
    fn push(&mut self, frame: &[f32]) {
        let l2 = 2 * self.len;
        for (c, x) in frame.iter().enumerate().take(self.channels) {
            let base = c * l2;
            if let Some(v) = self.buf.get_mut(base + self.pos) {
                *v = *x;
            }
            if let Some(v) = self.buf.get_mut(base + self.pos + self.len) {
                *v = *x;
            }
        }
        self.pos = (self.pos + 1) % self.len;
    }
    /// The last `len` samples of channel `c`, oldest first.
    #[inline]
    fn window(&self, c: usize) -> &[f32] {
        let start = c * 2 * self.len + self.pos;
        self.buf.get(start..start + self.len).unwrap_or(&[])
    }
    fn clear(&mut self) {
        self.buf.iter_mut().for_each(|x| *x = 0.0);
        self.pos = 0;
    }
}

#[derive(Debug, Clone)]
struct Halver {
    hist: History,
    odd: bool,
}

#[derive(Debug, Clone)]
struct Fractional {
    hist: History,
    /// Input samples per output sample.
    step: f64,
    /// Position of the next output, in input samples relative to the newest pushed sample + 1.
    next: f64,
    /// `(FRAC_PHASES + 1) × 2·FRAC_HALF_WIDTH` coefficients.
    table: Vec<f32>,
    coefs: Vec<f32>,
}

/// Streaming multi-channel rate converter; see the module docs for the filters.
#[derive(Debug, Clone)]
pub struct Resampler {
    channels: usize,
    in_rate_hz: u32,
    out_rate_hz: u32,
    half_taps: Vec<f32>,
    halvers: Vec<Halver>,
    frac: Option<Fractional>,
    /// Scratch frames between stages.
    a: Vec<f32>,
    b: Vec<f32>,
    partial: Vec<f32>,
    group_delay_s: f64,
    passband_hz: f64,
}

impl Resampler {
    /// A converter for interleaved frames of `channels` values from `in_rate_hz` to `out_rate_hz`.
    pub fn new(channels: usize, in_rate_hz: u32, out_rate_hz: u32) -> Result<Self, ResamplerError> {
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(ResamplerError::Channels(channels));
        }
        if !(1..=192_000).contains(&in_rate_hz) {
            return Err(ResamplerError::InRate(in_rate_hz));
        }
        if !(1..=32_000).contains(&out_rate_hz) {
            return Err(ResamplerError::OutRate(out_rate_hz));
        }
        let mut cur = f64::from(in_rate_hz);
        let out = f64::from(out_rate_hz);
        let mut halvers = Vec::new();
        let mut delay_s = 0.0;
        let mut passband = f64::from(in_rate_hz.min(out_rate_hz)) * 0.5;
        while out * 2.0 <= cur {
            halvers.push(Halver {
                hist: History::new(channels, HALF_TAPS),
                odd: false,
            });
            delay_s += (HALF_TAPS as f64 - 1.0) * 0.5 / cur;
            passband = passband.min(0.15 * cur);
            cur *= 0.5;
        }
        let half = (HALF_TAPS - 1) as f64 * 0.5;
        let mut half_taps: Vec<f32> = (0..HALF_TAPS)
            .map(|k| lowpass(k as f64 - half, 0.2, half + 1.0) as f32)
            .collect();
        let sum: f32 = half_taps.iter().sum();
        half_taps.iter_mut().for_each(|c| *c /= sum);
        let frac = if (cur - out).abs() > 1e-9 {
            let r = out / cur;
            let fc = 0.5 * r.min(1.0) - 0.04;
            let hw = FRAC_HALF_WIDTH as f64;
            let taps = 2 * FRAC_HALF_WIDTH;
            let mut table = vec![0.0f32; (FRAC_PHASES + 1) * taps];
            for (p, row) in table.chunks_exact_mut(taps).enumerate() {
                let frac = p as f64 / FRAC_PHASES as f64;
                // tap m (0..taps) is input sample floor(t) - H + 1 + m
                let mut s = 0.0;
                for (m, c) in row.iter_mut().enumerate() {
                    let off = frac - (m as f64 - hw + 1.0);
                    let v = lowpass(off, fc, hw);
                    *c = v as f32;
                    s += v;
                }
                if s != 0.0 {
                    row.iter_mut().for_each(|c| *c = (f64::from(*c) / s) as f32);
                }
            }
            delay_s += hw / cur;
            passband = passband.min((fc - 0.04) * cur);
            Some(Fractional {
                hist: History::new(channels, taps + 1),
                step: cur / out,
                next: 0.0,
                table,
                coefs: vec![0.0; taps],
            })
        } else {
            None
        };
        Ok(Self {
            channels,
            in_rate_hz,
            out_rate_hz,
            half_taps,
            halvers,
            frac,
            a: vec![0.0; channels],
            b: vec![0.0; channels],
            partial: Vec::with_capacity(channels),
            group_delay_s: delay_s,
            passband_hz: passband,
        })
    }

    /// Channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Input rate, Hz.
    pub fn in_rate_hz(&self) -> u32 {
        self.in_rate_hz
    }

    /// Output rate, Hz.
    pub fn out_rate_hz(&self) -> u32 {
        self.out_rate_hz
    }

    /// Delay of the output relative to the input (linear phase), seconds.
    pub fn group_delay_s(&self) -> f64 {
        self.group_delay_s
    }

    /// Upper edge of the (nominally flat) passband, Hz.
    pub fn passband_hz(&self) -> f64 {
        self.passband_hz
    }

    /// Clears all history (as after [`new`](Self::new)).
    pub fn reset(&mut self) {
        for h in &mut self.halvers {
            h.hist.clear();
            h.odd = false;
        }
        if let Some(f) = &mut self.frac {
            f.hist.clear();
            f.next = 0.0;
        }
        self.partial.clear();
    }

    /// Feeds interleaved samples (any length; a trailing partial frame is kept for the next call)
    /// and calls `out` with every output frame, in order.
    pub fn process<F: FnMut(&[f32])>(&mut self, input: &[f32], mut out: F) {
        let ch = self.channels;
        let mut rest = input;
        if !self.partial.is_empty() {
            let need = ch - self.partial.len();
            let (head, tail) = rest.split_at(need.min(rest.len()));
            self.partial.extend_from_slice(head);
            rest = tail;
            if self.partial.len() < ch {
                return;
            }
            let mut frame = [0.0f32; MAX_CHANNELS];
            for (d, s) in frame.iter_mut().zip(&self.partial) {
                *d = *s;
            }
            self.partial.clear();
            if let Some(f) = frame.get(..ch) {
                self.push_frame(f, &mut out);
            }
        }
        let mut chunks = rest.chunks_exact(ch);
        for f in &mut chunks {
            self.push_frame(f, &mut out);
        }
        self.partial.extend_from_slice(chunks.remainder());
    }

    fn push_frame<F: FnMut(&[f32])>(&mut self, frame: &[f32], out: &mut F) {
        let Self {
            half_taps,
            halvers,
            frac,
            a,
            b,
            ..
        } = self;
        a.copy_from_slice(frame);
        for h in halvers.iter_mut() {
            h.hist.push(a);
            h.odd = !h.odd;
            if h.odd {
                // keep every second output
                return;
            }
            for (c, y) in b.iter_mut().enumerate() {
                *y = h
                    .hist
                    .window(c)
                    .iter()
                    .zip(half_taps.iter())
                    .map(|(x, k)| x * k)
                    .sum();
            }
            core::mem::swap(a, b);
        }
        let Some(f) = frac else {
            out(a);
            return;
        };
        f.hist.push(a);
        // the newest sample is at position 0 of "now"; the window holds samples -(2H-1)..=0.
        // An output at time t (relative to the newest sample) needs samples up to floor(t)+H ≤ 0.
        f.next -= 1.0;
        let taps = 2 * FRAC_HALF_WIDTH;
        let hw = FRAC_HALF_WIDTH as f64;
        while f.next + hw <= 0.0 {
            let t = f.next;
            let fl = t.floor();
            let fr = t - fl;
            let pf = fr * FRAC_PHASES as f64;
            let p = (pf as usize).min(FRAC_PHASES - 1);
            let mu = (pf - p as f64) as f32;
            let (Some(r0), Some(r1)) = (
                f.table.get(p * taps..(p + 1) * taps),
                f.table.get((p + 1) * taps..(p + 2) * taps),
            ) else {
                break;
            };
            for ((c, x0), x1) in f.coefs.iter_mut().zip(r0).zip(r1) {
                *c = x0 + mu * (x1 - x0);
            }
            // tap m is sample fl - H + 1 + m; the window's last element is sample 0
            let skip = (-(fl + hw)) as usize; // samples after fl + H
            for (ch, y) in b.iter_mut().enumerate() {
                let w = f.hist.window(ch);
                let end = w.len().saturating_sub(skip);
                let start = end.saturating_sub(taps);
                *y = w
                    .get(start..end)
                    .unwrap_or(&[])
                    .iter()
                    .zip(f.coefs.iter())
                    .map(|(x, k)| x * k)
                    .sum();
            }
            out(b);
            f.next += f.step;
        }
    }
}
