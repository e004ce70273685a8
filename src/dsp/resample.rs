//! Anti-aliased sample-rate conversion for the `sample` streams (any output rate 1..=32000 Hz).
//!
//! The original device "resampled" by dropping samples, which folds everything above the new
//! Nyquist frequency (harmonics, switching noise) into the band. [`Resampler`] instead runs:
//!
//! 1. a number of **decimate-by-2 stages**: a 47-tap Kaiser-windowed (β = 8) low-pass with cutoff
//!    0.2·fₛ,in (flat to 0.15·fₛ,in, ≥ 70 dB from 0.25·fₛ,in, so nothing folds into the band that
//!    survives), then
//! 2. one **final stage** (skipped when the halvings land exactly on the output rate): a
//!    Kaiser-windowed sinc (β = 8) evaluated at any fractional position from a phase table with
//!    linear interpolation between phases. It low-pass filters and resamples in one step.
//!
//! Two designs, chosen per rate by [`Resampler::new`]:
//!
//! * **sharp** (the classic one): halve while the rate stays ≥ 2× the output rate, then 32 taps each
//!   side, 64 phases, cutoff `min(fₛ,in, fₛ,out)/2 − 4 %` of the intermediate rate. Its group delay
//!   is ≈ 28–55 output periods — a few ms at kHz rates, seconds below 100 Hz. It is used whenever
//!   twice its group delay fits in one output period plus [`LATENCY_BUDGET_S`] (every output rate
//!   ≥ 125 Hz, and every interpolation).
//! * **bounded** (lower rates): the final stage's length is set by time, not by taps: halve down to
//!   the highest intermediate rate at which at most 128 taps each side span the delay budget, then
//!   filter there with the narrowest transition that budget allows. The whole chain's group delay is
//!   at most `(1/out_rate + LATENCY_BUDGET_S)/2`, so a converter started cold delivers its first clean
//!   output within one output period plus [`LATENCY_BUDGET_S`] (a 1 Hz stream: ≈ 1.5 s).
//!
//! **Guarantees** (checked at the rates below for 8 and 32 kHz inputs in `tests/dsp_resample.rs`;
//! every converter reports its own edges through [`Resampler::passband_hz`] and
//! [`Resampler::stopband_hz`]):
//! * stopband ≥ 70 dB from just above [`stopband_hz`](Resampler::stopband_hz) (≥ 60 dB at the edge
//!   itself) to the input's Nyquist frequency. That edge is 0.5·`out_rate_hz` (no aliasing) for every
//!   rate ≥ 15 Hz; below, the latency budget does not allow so steep a transition and the edge lies
//!   higher (≈ 7 Hz at 5–10 Hz, ≈ 3 Hz at 1 Hz): slow content between 0.5·`out_rate_hz` and the edge
//!   is attenuated less and can alias. The line fundamental (45–65 Hz) and its harmonics are always
//!   ≥ 70 dB down below 100 Hz;
//! * passband flat within 0.1 dB to [`passband_hz`](Resampler::passband_hz): ≈ 0.3·`out_rate_hz`
//!   when decimating to ≥ 50 Hz, ≈ 0.4·`in_rate_hz` when interpolating; narrower below 50 Hz (only
//!   the slowest content at 20 Hz, only DC below ≈ 15 Hz: those streams carry the signal's slow part);
//! * linear phase: output `k` describes exactly the input instant
//!   [`first_output_at`](Resampler::first_output_at)` + k·in_rate/out_rate` (exact integer step, no
//!   drift), once the input up to that instant plus [`group_delay_s`](Resampler::group_delay_s) is in;
//!   [`Resampler::align`] places that grid.
//!
//! | output rate (32 kHz in) | design | group delay | flat to | ≥ 70 dB from |
//! |---|---|---|---|---|
//! | 8000 Hz | sharp | 2.2 ms | 2400 Hz | 4000 Hz |
//! | 1000 Hz | sharp | 22 ms | 300 Hz | 500 Hz |
//! | 125 Hz | sharp | 183 ms | 37.5 Hz | 62.5 Hz |
//! | 100 Hz | bounded | 132 ms | 30 Hz | 50 Hz |
//! | 50 Hz | bounded | 259 ms | 14.7 Hz | 25 Hz |
//! | 20 Hz | bounded | 273 ms | 0.35 Hz | 10 Hz |
//! | 10 Hz | bounded | 299 ms | DC | 6.9 Hz |
//! | 5 Hz | bounded | 347 ms | DC | 6.8 Hz |
//! | 1 Hz | bounded | 743 ms | DC | 3.1 Hz |
//!
//! So a stream below twice the line frequency carries no line-frequency waveform: the fundamental and
//! its harmonics are in the stopband, and what remains is the slow part of the signal (DC offset,
//! drift) — what a properly anti-aliased stream at that rate can represent.
//!
//! Memory: coefficient tables and per-channel delay lines are allocated once in [`Resampler::new`]
//! (at most ≈ 44 KiB for six channels, at 10 Hz; [`Resampler::heap_bytes`]); nothing is allocated
//! while processing, aligning or resetting.
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
/// Delay of one halving stage, in its input samples.
const HALF_DELAY: i64 = (HALF_TAPS as i64 - 1) / 2;
const FRAC_HALF_WIDTH: usize = 32;
const FRAC_PHASES: usize = 64;
const KAISER_BETA: f64 = 8.0;
/// Largest channel count.
pub const MAX_CHANNELS: usize = 16;
/// Latency budget of a cold start: the design keeps twice the group delay (the time from the first
/// input to the first clean output) within one output period plus this, seconds.
pub const LATENCY_BUDGET_S: f64 = 0.5;
/// Most taps each side of a bounded design's final stage (bounds its table and delay lines).
const BOUNDED_MAX_HALF_WIDTH: usize = 128;
const BOUNDED_MIN_HALF_WIDTH: usize = 16;
/// For a Kaiser (β = 8) windowed sinc with `hw` taps each side and cutoff `a/hw` cycles per sample:
/// flat within 0.1 dB to `(a − PASS_K)/hw`, ≥ 70 dB down from `(a + STOP_K)/hw` (measured; with
/// margin), for `a ≥ MIN_A`.
const PASS_K: f64 = 0.95;
const STOP_K: f64 = 1.25;
const MIN_A: f64 = 0.5;

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
    /// Toggles per input; an output is computed when it turns false. Starting false keeps the
    /// stage's odd inputs (1, 3, 5, …), starting true its even ones.
    odd: bool,
}

/// The final stage's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FinalDesign {
    half_width: usize,
    phases: usize,
    /// Cutoff, cycles per input sample of the stage.
    cutoff: f64,
}

/// A complete chain: halvings, optional final stage, and what it guarantees.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Design {
    halvings: usize,
    last: Option<FinalDesign>,
    delay_s: f64,
    passband_hz: f64,
    stopband_hz: f64,
}

impl Design {
    /// Halve while the rate stays ≥ 2× the output, then 32 taps each side at 64 phases.
    fn sharp(in_rate: f64, out: f64) -> Design {
        let mut cur = in_rate;
        let mut halvings = 0;
        let mut delay_s = 0.0;
        let mut passband = in_rate.min(out) * 0.5;
        while out * 2.0 <= cur {
            halvings += 1;
            delay_s += HALF_DELAY as f64 / cur;
            passband = passband.min(0.15 * cur);
            cur *= 0.5;
        }
        let mut stopband = 0.5 * in_rate.min(out);
        let last = ((cur - out).abs() > 1e-9).then(|| {
            let r = out / cur;
            let fc = 0.5 * r.min(1.0) - 0.04;
            delay_s += FRAC_HALF_WIDTH as f64 / cur;
            passband = passband.min((fc - 0.04) * cur);
            stopband = (fc + 0.04) * cur;
            FinalDesign {
                half_width: FRAC_HALF_WIDTH,
                phases: FRAC_PHASES,
                cutoff: fc,
            }
        });
        Design {
            halvings,
            last,
            delay_s,
            passband_hz: passband,
            stopband_hz: stopband,
        }
    }

    /// The bounded design for decimation to `out` (see the module docs), or `None` if no chain fits.
    fn bounded(in_rate: f64, out: f64) -> Option<Design> {
        let budget_s = 0.5 * (1.0 / out + LATENCY_BUDGET_S);
        // the final stage's half length that gives the sharp design's promise (flat to 0.3·out,
        // ≥ 70 dB from 0.5·out): a transition of 0.2·out
        let full_s = (PASS_K + STOP_K) / (0.2 * out);
        let mut halving_delay_s = 0.0;
        let mut cur = in_rate;
        for halvings in 0..32 {
            if cur < 2.0 * out {
                return None;
            }
            let half_s = full_s.min(budget_s - halving_delay_s);
            if half_s <= 0.0 {
                return None;
            }
            let hw = (half_s * cur).floor();
            if hw <= BOUNDED_MAX_HALF_WIDTH as f64 {
                let hw = (hw as usize).max(BOUNDED_MIN_HALF_WIDTH);
                let half_s = hw as f64 / cur;
                let a = (0.5 * out * half_s - STOP_K).max(MIN_A);
                let cutoff = a / hw as f64;
                // linear interpolation between phases: error ≈ (2π·cutoff/phases)²/8 ≤ 1e-4
                let phases = ((222.0 * cutoff).ceil() as usize)
                    .next_power_of_two()
                    .max(16);
                return Some(Design {
                    halvings,
                    last: Some(FinalDesign {
                        half_width: hw,
                        phases,
                        cutoff,
                    }),
                    delay_s: halving_delay_s + half_s,
                    passband_hz: ((a - PASS_K) / half_s).max(0.0),
                    stopband_hz: (a + STOP_K) / half_s,
                });
            }
            halving_delay_s += HALF_DELAY as f64 / cur;
            cur *= 0.5;
        }
        None
    }
}

/// The final stage: a windowed-sinc low-pass evaluated at arbitrary positions.
///
/// The position of the next output is kept relative to the newest input as an exact fraction
/// `next_int + next_off + next_rem/step_den` (the step, input samples per output, is the rational
/// `in_rate / (2^halvings · out_rate)`), so it never drifts, however long the stream runs.
#[derive(Debug, Clone)]
struct Fractional {
    hist: History,
    half_width: usize,
    phases: usize,
    step_int: i64,
    step_rem: u64,
    step_den: u64,
    /// `1 / step_den`.
    inv_den: f64,
    next_int: i64,
    next_rem: u64,
    /// Constant sub-sample offset from [`Resampler::align`], in `[0, 1)`.
    next_off: f64,
    /// `(phases + 1) × 2·half_width` coefficients.
    table: Vec<f32>,
    coefs: Vec<f32>,
}

impl Fractional {
    fn new(
        channels: usize,
        d: FinalDesign,
        in_rate_hz: u32,
        halvings: usize,
        out_rate_hz: u32,
    ) -> Self {
        let hw = d.half_width as f64;
        let taps = 2 * d.half_width;
        let mut table = vec![0.0f32; (d.phases + 1) * taps];
        for (p, row) in table.chunks_exact_mut(taps).enumerate() {
            let frac = p as f64 / d.phases as f64;
            // tap m (0..taps) is input sample floor(t) - H + 1 + m
            let mut s = 0.0;
            for (m, c) in row.iter_mut().enumerate() {
                let off = frac - (m as f64 - hw + 1.0);
                let v = lowpass(off, d.cutoff, hw);
                *c = v as f32;
                s += v;
            }
            if s != 0.0 {
                row.iter_mut().for_each(|c| *c = (f64::from(*c) / s) as f32);
            }
        }
        let num = u64::from(in_rate_hz);
        let den = (u64::from(out_rate_hz) << halvings).max(1);
        Fractional {
            hist: History::new(channels, taps + 1),
            half_width: d.half_width,
            phases: d.phases,
            step_int: i64::try_from(num / den).unwrap_or(i64::MAX),
            step_rem: num % den,
            step_den: den,
            inv_den: 1.0 / den as f64,
            next_int: 0,
            next_rem: 0,
            next_off: 0.0,
            table,
            coefs: vec![0.0; taps],
        }
    }

    /// Places the next output at `pos` relative to the newest input.
    fn set_next(&mut self, pos: f64) {
        let fl = pos.floor();
        self.next_int = fl as i64;
        self.next_off = pos - fl;
        self.next_rem = 0;
    }

    /// The next output position, split into integer and fractional part.
    #[inline]
    fn next(&self) -> (i64, f64) {
        let fr = self.next_off + self.next_rem as f64 * self.inv_den;
        if fr >= 1.0 {
            (self.next_int + 1, fr - 1.0)
        } else {
            (self.next_int, fr)
        }
    }

    #[inline]
    fn advance(&mut self) {
        self.next_int += self.step_int;
        self.next_rem += self.step_rem;
        if self.next_rem >= self.step_den {
            self.next_rem -= self.step_den;
            self.next_int += 1;
        }
    }

    fn clear(&mut self) {
        self.hist.clear();
        self.set_next(0.0);
    }

    /// Computes every output the input pushed so far allows (`half_width` and `phases` are this
    /// stage's, passed in so that a constant can specialise the loops).
    #[inline(always)]
    fn outputs<F: FnMut(&[f32])>(
        &mut self,
        half_width: usize,
        phases: usize,
        b: &mut [f32],
        out: &mut F,
    ) {
        let taps = 2 * half_width;
        let hw = half_width as i64;
        loop {
            let (fl, fr) = self.next();
            if fl + hw > 0 || (fl + hw == 0 && fr > 0.0) {
                break;
            }
            let pf = fr * phases as f64;
            let p = (pf as usize).min(phases - 1);
            let mu = (pf - p as f64) as f32;
            let (Some(r0), Some(r1)) = (
                self.table.get(p * taps..(p + 1) * taps),
                self.table.get((p + 1) * taps..(p + 2) * taps),
            ) else {
                break;
            };
            for ((c, x0), x1) in self.coefs.iter_mut().zip(r0).zip(r1) {
                *c = x0 + mu * (x1 - x0);
            }
            // tap m is sample fl - H + 1 + m; the window's last element is sample 0
            let after = usize::try_from(-(fl + hw)).unwrap_or(0); // samples after fl + H
            for (ch, y) in b.iter_mut().enumerate() {
                let w = self.hist.window(ch);
                let end = w.len().saturating_sub(after);
                let start = end.saturating_sub(taps);
                *y = w
                    .get(start..end)
                    .unwrap_or(&[])
                    .iter()
                    .zip(self.coefs.iter())
                    .map(|(x, k)| x * k)
                    .sum();
            }
            out(b);
            self.advance();
        }
    }
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
    design: Design,
    /// Outputs still to drop before the aligned first one (chains without a final stage).
    skip: u64,
    /// Instant of the first delivered output, input samples after the first input frame.
    first_at: f64,
}

impl Resampler {
    /// A converter for interleaved frames of `channels` values from `in_rate_hz` to `out_rate_hz`,
    /// with the design the module docs describe for that pair of rates.
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
        let (fin, fout) = (f64::from(in_rate_hz), f64::from(out_rate_hz));
        let sharp = Design::sharp(fin, fout);
        let design = if 2.0 * sharp.delay_s <= 1.0 / fout + LATENCY_BUDGET_S {
            sharp
        } else {
            Design::bounded(fin, fout)
                .filter(|b| b.delay_s < sharp.delay_s)
                .unwrap_or(sharp)
        };
        let halvers = (0..design.halvings)
            .map(|_| Halver {
                hist: History::new(channels, HALF_TAPS),
                odd: false,
            })
            .collect();
        let half = (HALF_TAPS - 1) as f64 * 0.5;
        let mut half_taps: Vec<f32> = (0..HALF_TAPS)
            .map(|k| lowpass(k as f64 - half, 0.2, half + 1.0) as f32)
            .collect();
        let sum: f32 = half_taps.iter().sum();
        half_taps.iter_mut().for_each(|c| *c /= sum);
        let frac = design
            .last
            .map(|d| Fractional::new(channels, d, in_rate_hz, design.halvings, out_rate_hz));
        let mut rs = Self {
            channels,
            in_rate_hz,
            out_rate_hz,
            half_taps,
            halvers,
            frac,
            a: vec![0.0; channels],
            b: vec![0.0; channels],
            partial: Vec::with_capacity(channels),
            design,
            skip: 0,
            first_at: 0.0,
        };
        rs.first_at = rs.default_first_at();
        Ok(rs)
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

    /// Delay of the output relative to the input (linear phase), seconds: an output describing
    /// instant `t` needs the input up to `t` plus this (and from `t` minus this).
    pub fn group_delay_s(&self) -> f64 {
        self.design.delay_s
    }

    /// Upper edge of the passband (flat within 0.1 dB), Hz; 0 when only DC passes unattenuated.
    pub fn passband_hz(&self) -> f64 {
        self.design.passband_hz
    }

    /// Lower edge of the stopband (≥ 70 dB), Hz: 0.5·`out_rate_hz` unless the latency budget of a
    /// low output rate does not allow a transition that steep (see the module docs).
    pub fn stopband_hz(&self) -> f64 {
        self.design.stopband_hz
    }

    /// Heap held by the tables and delay lines, bytes (fixed after [`new`](Self::new)).
    pub fn heap_bytes(&self) -> usize {
        let f = |v: &Vec<f32>| v.capacity() * 4;
        f(&self.half_taps)
            + self.halvers.iter().map(|h| f(&h.hist.buf)).sum::<usize>()
            + self
                .frac
                .as_ref()
                .map_or(0, |x| f(&x.hist.buf) + f(&x.table) + f(&x.coefs))
            + f(&self.a)
            + f(&self.b)
            + self.partial.capacity() * 4
    }

    /// The instant output 0 describes, in input samples after the first input frame fed since
    /// [`new`](Self::new), [`reset`](Self::reset) or [`align`](Self::align) (negative: before it; such
    /// outputs are the filters' start-up). Output `k` describes
    /// `first_output_at() + k·in_rate_hz/out_rate_hz`.
    pub fn first_output_at(&self) -> f64 {
        self.first_at
    }

    /// Instant (input samples) of the first output of the halving stages with their current phases.
    fn halvings_origin(&self) -> i64 {
        self.halvers
            .iter()
            .enumerate()
            .map(|(i, h)| (i64::from(!h.odd) - HALF_DELAY) << i)
            .sum()
    }

    fn default_first_at(&self) -> f64 {
        let origin = self.halvings_origin() as f64;
        match self.frac {
            // the final stage's first output lies one of its input periods before its first input
            Some(_) => origin - (1u64 << self.halvers.len()) as f64,
            None => origin,
        }
    }

    /// Clears all history (as after [`new`](Self::new)).
    pub fn reset(&mut self) {
        for h in &mut self.halvers {
            h.hist.clear();
            h.odd = false;
        }
        if let Some(f) = &mut self.frac {
            f.clear();
        }
        self.partial.clear();
        self.skip = 0;
        self.first_at = self.default_first_at();
    }

    /// Clears all history and places the output grid so that the first output describes the input
    /// instant `at` (input samples after the first frame fed from now on); returns the instant it
    /// actually describes. With a final stage that is `at` exactly; a chain of halvings only has
    /// outputs on input samples, so `at` is rounded up to the next one. Outputs before it (the start-up
    /// transient, when `at` is less than the group delay in) are not delivered.
    pub fn align(&mut self, at: f64) -> f64 {
        self.reset();
        let m = 1i64 << self.halvers.len();
        if let Some(f) = self.frac.as_mut() {
            let origin = self
                .halvers
                .iter()
                .enumerate()
                .map(|(i, _)| (1 - HALF_DELAY) << i)
                .sum::<i64>();
            // the final stage's input k is at origin + k·m; its next position is relative to its
            // newest input, which is "−1" before the first one
            f.set_next((at - origin as f64) / m as f64 + 1.0);
            self.first_at = at;
            return at;
        }
        let want = (at - 1e-9).ceil() as i64;
        // stage i keeps input n0ᵢ of every pair: the first output is at Σ (n0ᵢ − 23)·2ⁱ
        let bits = (want + HALF_DELAY * (m - 1)).rem_euclid(m);
        for (i, h) in self.halvers.iter_mut().enumerate() {
            h.odd = (bits >> i) & 1 == 0;
        }
        let origin = bits - HALF_DELAY * (m - 1);
        let skip = if want > origin {
            (want - origin) / m
        } else {
            0
        };
        self.skip = u64::try_from(skip).unwrap_or(0);
        self.first_at = (origin + skip * m) as f64;
        self.first_at
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
            skip,
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
            if *skip > 0 {
                *skip -= 1;
            } else {
                out(a);
            }
            return;
        };
        f.hist.push(a);
        // the newest sample is at position 0 of "now"; the window holds samples -2H..=0.
        // An output at time t (relative to the newest sample) needs samples up to floor(t)+H ≤ 0.
        f.next_int -= 1;
        // the sharp design's fixed length, as a constant: its loops are unrolled for it
        if f.half_width == FRAC_HALF_WIDTH {
            f.outputs(FRAC_HALF_WIDTH, FRAC_PHASES, b, out);
        } else {
            f.outputs(f.half_width, f.phases, b, out);
        }
    }
}
