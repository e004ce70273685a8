//! The synchronous lattice: every channel resampled at `M` points per line cycle, phase-locked to
//! the estimator's L1 crossings.
//!
//! A window of `C` cycles gets exactly `C·M` points, evenly spaced over the window length predicted
//! from the last measured period (`C · period`), starting where the estimator's window starts. The
//! next window starts where the points end and re-aims at the next predicted end, so the lattice
//! stays within a fraction of a point of the estimator's windows without ever going back in time
//! (it needs only a few frames of history, whatever the window length).
//!
//! Each point costs one fractional-delay interpolation per channel, with weights interpolated
//! linearly between the two nearest phases of the kernel's table (6-tap Lagrange from a constant
//! 65-phase table at rates ≥ 24 kHz: magnitude error < 0.02 % up to 3.5 kHz at 32 kHz; a 32-tap Kaiser
//! sinc below), one add into `y₀` and two multiplications into the modulated sums of the
//! spectrum, and for the voltages the squares of the half-cycle RMS.
//!
//! The interpolation reads the input as it comes ([`Tap`]), and the point goes into the
//! [`Accumulator`] of that input:
//! * integer codes (the device): `Q31` weights and `mulh`, folds in `i32` and half-cycle sums in
//!   `i64` (module `spectrum`): no floating point per point on an FPU-less core, and every bit
//!   reproducible on a host (tests/pq_determinism.rs);
//! * `f32` volts/amps (hosts): `f32` weights, and the point stays `f32` — one 8-lane vector of the
//!   six channels that is added into 8-lane folds (module `spectrum_float`). Nothing is quantised,
//!   so no dither is needed, and a point costs a few dozen vector instructions instead of rounding
//!   six values and twelve 64-bit multiplications.

pub(super) use super::spectrum::IntFolds;
use super::spectrum::{Channel, mulh};
pub(super) use super::spectrum_float::FloatFolds;
use super::tables::{
    CYCLE_TWIDDLE, LAGRANGE, LAGRANGE_F32, LAGRANGE_PHASES, LAGRANGE_TAPS, M, windowed_sinc,
};
use alloc::vec::Vec;
#[allow(unused_imports)] // inherent float methods shadow it with `std`
use num_traits::Float;

/// Lattice units per volt and per amp of `f32` input (±2048 V, ±512 A in 24 bits).
pub(super) const F32_UNITS_PER_V: f32 = 4096.0;
/// See [`F32_UNITS_PER_V`].
pub(super) const F32_UNITS_PER_A: f32 = 16384.0;

/// An input sample the lattice interpolates: `i32` lattice units (codes) or `f32` volts/amps.
/// (Public only to be a supertrait of [`PqSample`](super::PqSample); not reachable.)
pub trait Tap: Copy + Default + core::fmt::Debug + 'static {
    /// Interpolation weight (`Q31` for `i32`, plain for `f32`).
    type W: Copy + core::fmt::Debug + 'static;
    /// What the lattice accumulates per window from points of this input (integer folds for
    /// codes, `f32` folds for `f32` input).
    type Folds: Accumulator;
    /// The 6-tap Lagrange table in this weight type (flash, not RAM).
    fn lagrange() -> &'static [[Self::W; LAGRANGE_TAPS]; LAGRANGE_PHASES + 1];
    /// A `Q31` weight table in this weight type.
    fn weights(q31: Vec<i32>) -> Vec<Self::W>;
    /// `a + (b − a)·t/2³²` weight by weight: the kernel at a fraction between two table phases.
    fn lerp<const K: usize>(a: &[Self::W; K], b: &[Self::W; K], t: u32) -> [Self::W; K];
    /// `Σₖ taps[k]·w[k]` per channel, in lattice half-units.
    fn interpolate<const K: usize>(
        taps: &[[Self; 6]; K],
        w: &[Self::W; K],
    ) -> <Self::Folds as Accumulator>::Point;
}

/// The per-window sums a lattice point goes into: the folds of the spectrum (module `spectrum`)
/// and the half-cycle sums of the voltages. Integer for codes, so that the device and a host
/// compute the same bits; `f32`/`f64` for `f32` input, where nothing is quantised and the folds
/// of the six channels are one vector.
pub trait Accumulator: Clone + core::fmt::Debug + 'static {
    /// One lattice point of the six channels, in half-units.
    type Point: Copy;
    /// The half-cycle sums' type (see [`HalfSum`]).
    type Sum: HalfSum;
    /// The cycle's modulation `e^{−j2πr/C}` in the form the folds use.
    type Twiddle: Copy;
    /// Zeroed sums on the heap (the folds are kilobytes).
    fn boxed() -> alloc::boxed::Box<Self>;
    /// Zeroes the folds for a new window.
    fn clear(&mut self);
    /// The modulation of cycle `r` of `c` from its `Q31` value.
    fn twiddle(q31: (i32, i32)) -> Self::Twiddle;
    /// Adds point `q` (`< M`) of the current cycle to the folds and the voltages to `half`.
    fn add(&mut self, q: usize, x: &Self::Point, tw: Self::Twiddle, half: &mut HalfSums<Self::Sum>);
    /// The spectra of the window's `phases` phases (currents only when `currents`), `cycles`
    /// cycles long.
    fn spectra(&mut self, phases: usize, currents: bool, cycles: usize) -> [(Channel, Channel); 3];
    /// Bytes of heap behind the box.
    fn heap_bytes(&self) -> usize {
        core::mem::size_of_val(self)
    }
}

/// The half-cycle sums of the voltages of one point type: `[i64; 3]` (exact) for codes, the
/// point's own `[f32; 8]` lanes (voltages in lanes 0, 2, 4) for `f32` input.
pub trait HalfSum: Copy + Default + core::fmt::Debug + 'static {
    /// Phase `p`'s value of `self + other`, as `f32`.
    fn phase_f32(&self, other: &Self, p: usize) -> f32;
}

impl HalfSum for [i64; 3] {
    #[inline]
    fn phase_f32(&self, other: &Self, p: usize) -> f32 {
        let (a, b) = (self.get(p).copied(), other.get(p).copied());
        a.unwrap_or(0).wrapping_add(b.unwrap_or(0)) as f32
    }
}

impl HalfSum for [f32; 8] {
    #[inline]
    fn phase_f32(&self, other: &Self, p: usize) -> f32 {
        let (a, b) = (self.get(2 * p).copied(), other.get(2 * p).copied());
        (f64::from(a.unwrap_or(0.0)) + f64::from(b.unwrap_or(0.0))) as f32
    }
}

impl Tap for i32 {
    type W = i32;
    type Folds = IntFolds;
    fn lagrange() -> &'static [[i32; LAGRANGE_TAPS]; LAGRANGE_PHASES + 1] {
        &LAGRANGE
    }
    fn weights(q31: Vec<i32>) -> Vec<i32> {
        q31
    }
    /// One `mulhsu` per weight (adjacent phases differ by far less than 2³¹).
    #[inline(always)]
    fn lerp<const K: usize>(a: &[i32; K], b: &[i32; K], t: u32) -> [i32; K] {
        let mut w = [0i32; K];
        for ((w, &a), &b) in w.iter_mut().zip(a).zip(b) {
            let d = i64::from(b.wrapping_sub(a));
            *w = a.wrapping_add(((d * i64::from(t)) >> 32) as i32);
        }
        w
    }
    /// `mulh` by a `Q31` weight halves: the result is in half-units.
    #[inline(always)]
    fn interpolate<const K: usize>(taps: &[[i32; 6]; K], w: &[i32; K]) -> [i32; 6] {
        let mut x = [0i32; 6];
        for (f, &wk) in taps.iter().zip(w) {
            for (acc, &v) in x.iter_mut().zip(f) {
                *acc = acc.wrapping_add(mulh(v, wk));
            }
        }
        x
    }
}

impl Tap for f32 {
    type W = f32;
    type Folds = FloatFolds;
    fn lagrange() -> &'static [[f32; LAGRANGE_TAPS]; LAGRANGE_PHASES + 1] {
        &LAGRANGE_F32
    }
    fn weights(q31: Vec<i32>) -> Vec<f32> {
        q31.into_iter()
            .map(|w| (f64::from(w) / 2_147_483_648.0) as f32)
            .collect()
    }
    #[inline(always)]
    fn lerp<const K: usize>(a: &[f32; K], b: &[f32; K], t: u32) -> [f32; K] {
        let t = t as f32 * (1.0 / 4_294_967_296.0);
        let mut w = [0.0f32; K];
        for ((w, &a), &b) in w.iter_mut().zip(a).zip(b) {
            *w = a + (b - a) * t;
        }
        w
    }
    /// Each tap is one 8-lane vector read straight from the frames (its six channels and the
    /// next frame's first two values, which the zero lanes of the scale then drop; the last tap
    /// is padded), so a point is six broadcast multiply-adds with no shuffling of channels. The
    /// result stays `f32` (no quantisation, so no dither is needed to keep rounding errors off
    /// the harmonics), limited to ±2²² half-units (±2048 V, ±512 A); non-finite values become
    /// the range limit.
    #[inline(always)]
    fn interpolate<const K: usize>(taps: &[[f32; 6]; K], w: &[f32; K]) -> [f32; 8] {
        let flat = taps.as_flattened();
        let mut acc = [0.0f32; 8];
        for (k, &wk) in w.iter().enumerate() {
            let row: [f32; 8] = match flat.get(6 * k..6 * k + 8) {
                Some(r) => <[f32; 8]>::try_from(r).unwrap_or([0.0; 8]),
                None => {
                    let mut r = [0.0f32; 8];
                    if let (Some(dst), Some(src)) = (r.get_mut(..6), taps.get(k)) {
                        dst.copy_from_slice(src);
                    }
                    r
                }
            };
            for (a, x) in acc.iter_mut().zip(row) {
                *a += x * wk;
            }
        }
        let (hv, ha) = (0.5 * F32_UNITS_PER_V, 0.5 * F32_UNITS_PER_A);
        let scale = [hv, ha, hv, ha, hv, ha, 0.0, 0.0];
        const LIMIT: f32 = 4_194_303.0;
        let mut out = [0.0f32; 8];
        for ((o, a), k) in out.iter_mut().zip(acc).zip(scale) {
            // comparisons are false for NaN: NaN goes to the low end (one `max` and one `min`
            // instruction each, where `f32::max`'s NaN rule costs a blend)
            let y = a * k;
            let y = if y >= -LIMIT { y } else { -LIMIT };
            *o = if y <= LIMIT { y } else { LIMIT };
        }
        out
    }
}

/// The interpolation kernel, with weights of type `W`.
#[derive(Debug, Clone)]
pub(super) enum Kernel<W> {
    /// 6 taps, constant table (no RAM).
    Lagrange,
    /// `taps` weights per phase, `phases + 1` rows.
    Sinc {
        taps: usize,
        phase_bits: u32,
        table: Vec<W>,
    },
}

impl<W> Kernel<W> {
    pub(super) fn for_rate<T: Tap<W = W>>(rate_hz: u32) -> Self {
        if rate_hz >= 24_000 {
            Self::Lagrange
        } else {
            // 32 phases, interpolated: 4.2 KB of Q31 weights (the delay error between two
            // phases is (1/32)²/8 of a frame, below 5·10⁻⁴ of a 2.5 kHz harmonic at 8 kHz)
            let taps = 32;
            let phase_bits = 5;
            Self::Sinc {
                taps,
                phase_bits,
                table: T::weights(windowed_sinc(taps, 1 << phase_bits, 8.0)),
            }
        }
    }

    pub(super) fn taps(&self) -> usize {
        match self {
            Self::Lagrange => LAGRANGE_TAPS,
            Self::Sinc { taps, .. } => *taps,
        }
    }

    /// Bytes of heap used by the table.
    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            Self::Lagrange => 0,
            Self::Sinc { table, .. } => table.len() * core::mem::size_of::<W>(),
        }
    }
}

/// The frames the lattice reads: the tail of earlier blocks (`hist`, starting at frame
/// `hist_origin`) and the block being processed (`cur`, right after it).
#[derive(Debug, Clone, Copy)]
pub(super) struct Source<'a, T> {
    pub hist: &'a [[T; 6]],
    pub hist_origin: u64,
    pub cur: &'a [[T; 6]],
}

impl<T> Source<'_, T> {
    pub(super) fn cur_origin(&self) -> u64 {
        self.hist_origin + self.hist.len() as u64
    }
    pub(super) fn end(&self) -> u64 {
        self.cur_origin() + self.cur.len() as u64
    }
}

/// Recent input frames, oldest first: what the lattice still needs of earlier blocks.
#[derive(Debug, Clone)]
pub(super) struct Frames<T> {
    pub data: Vec<[T; 6]>,
    /// Frame index of `data[0]`.
    pub origin: u64,
    cap: usize,
}

impl<T: Copy> Frames<T> {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            data: Vec::with_capacity(cap),
            origin: 0,
            cap,
        }
    }

    /// Frames it can hold.
    pub(super) fn capacity(&self) -> usize {
        self.cap
    }

    /// After a block: keep the frames from `keep` on of history + block (at most the capacity,
    /// the newest).
    pub(super) fn retain(&mut self, keep: u64, cur: &[[T; 6]]) {
        let cur_origin = self.origin + self.data.len() as u64;
        let end = cur_origin + cur.len() as u64;
        let keep = keep.max(end.saturating_sub(self.cap as u64)).min(end);
        if keep >= cur_origin {
            self.data.clear();
            let from = (keep - cur_origin) as usize;
            self.data.extend_from_slice(cur.get(from..).unwrap_or(&[]));
        } else {
            let k = (keep - self.origin) as usize;
            self.data.drain(..k.min(self.data.len()));
            let room = self.cap - self.data.len();
            let take = cur.len().min(room);
            self.data.extend_from_slice(cur.get(..take).unwrap_or(&[]));
        }
        self.origin = keep;
    }
}

/// Half-cycle sums of the voltages (`Σx`, `Σx²` per phase in lattice units, see [`HalfSum`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct HalfSums<A> {
    pub s1: A,
    pub s2: A,
    /// Points summed (`M/2` except for a half cut short by an abandoned window).
    pub n: u32,
}

/// The half-cycle sum type of input `T`.
pub(super) type HalfSumOf<T> = <<T as Tap>::Folds as Accumulator>::Sum;
/// Half-cycle sums of input `T`.
pub(super) type Half<T> = HalfSums<HalfSumOf<T>>;

/// Position and bookkeeping of the lattice.
#[derive(Debug, Clone)]
pub(super) struct Lattice<T: Tap> {
    /// Next point at `frame + frac/2³²` frames.
    pub frame: u64,
    pub frac: u32,
    /// Point spacing, frames in Q32.
    pub step: u64,
    /// A window is in progress.
    pub active: bool,
    /// Points done in the window, points it has, cycles it has.
    pub n: u32,
    pub total: u32,
    pub cycles: u32,
    /// Point within the cycle, cycle within the window.
    pub q: u32,
    pub r: u32,
    /// `e^{−j2πr/C}` of the current cycle.
    pub cr: (i32, i32),
    /// The window's start (frames) as the estimator reported it, or the lattice position for a
    /// window started without a report.
    pub start: f64,
    /// The period the window was predicted with, frames.
    pub period: f64,
    /// A dip, swell or interruption was in progress during the window.
    pub flagged: bool,
    /// Start of the half cycle in progress, frames.
    pub half_start: f64,
    pub half: Half<T>,
    /// Points in `half`.
    pub half_points: u32,
    pub prev_half: Option<Half<T>>,
    /// The folds of the six channels (9–12 KB), on the heap so that the pipeline is not built in
    /// a large stack frame.
    pub folds: alloc::boxed::Box<T::Folds>,
}

impl<T: Tap> Lattice<T> {
    pub(super) fn new() -> Self {
        Self {
            frame: 0,
            frac: 0,
            step: 0,
            active: false,
            n: 0,
            total: 0,
            cycles: 0,
            q: 0,
            r: 0,
            cr: (i32::MAX, 0),
            start: 0.0,
            period: 0.0,
            flagged: false,
            half_start: 0.0,
            half: HalfSums::default(),
            half_points: 0,
            prev_half: None,
            folds: T::Folds::boxed(),
        }
    }

    /// Position of the next point, frames.
    pub(super) fn position(&self) -> f64 {
        self.frame as f64 + f64::from(self.frac) / 4_294_967_296.0
    }

    /// Opens a window of `cycles` cycles at the current position, aimed to end at `end` (frames).
    pub(super) fn open(&mut self, start: f64, cycles: u32, period: f64, end: f64) {
        let c = cycles.clamp(1, super::tables::MAX_CYCLES as u32);
        let pos = self.position();
        let pts = f64::from(c) * M as f64;
        let nominal = period / M as f64;
        // max/min, not `clamp`: clamp's panic message (min > max or NaN) links core's f64
        // formatting into the firmware
        let spacing = ((end - pos) / pts).max(0.5 * nominal).min(2.0 * nominal);
        self.step = (spacing * 4_294_967_296.0) as u64;
        self.active = true;
        self.n = 0;
        self.total = c * M as u32;
        self.cycles = c;
        self.q = 0;
        self.r = 0;
        self.cr = cycle_twiddle(c, 0);
        self.start = start;
        self.period = period;
        self.flagged = false;
        self.half_points = 0;
        self.half_start = pos;
        self.folds.clear();
    }

    /// Moves to `frame` (only forwards), keeping the window state.
    pub(super) fn seek(&mut self, frame: f64) {
        if frame > self.position() {
            let i = frame.floor();
            self.frame = i as u64;
            self.frac = ((frame - i) * 4_294_967_296.0) as u32;
            self.half_start = frame;
        }
    }
}

#[inline]
pub(super) fn cycle_twiddle(c: u32, r: u32) -> (i32, i32) {
    CYCLE_TWIDDLE
        .get(c as usize)
        .and_then(|t| t.get(r as usize))
        .copied()
        .unwrap_or((i32::MAX, 0))
}

/// What one call of [`advance`] stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// Needs more input frames.
    Input,
    /// A half cycle ended (the lattice's `half_start` is already the next one's).
    Half,
    /// The next point would lie at or after the limit.
    Limit,
}

/// Interpolates and folds points until the input runs out or a half cycle ends. `nv` voltage
/// channels (phases) get half-cycle sums.
/// `limit` is a position `(frame, fraction Q32)` the lattice must not reach.
pub(super) fn advance<T: Tap>(
    lat: &mut Lattice<T>,
    frames: &Source<'_, T>,
    kernel: &Kernel<T::W>,
    nv: usize,
    limit: (u64, u32),
) -> Stop {
    match kernel {
        Kernel::Lagrange => {
            let bits = LAGRANGE_PHASES.trailing_zeros();
            run::<T, LAGRANGE_TAPS>(lat, frames, T::lagrange(), bits, nv, limit)
        }
        Kernel::Sinc {
            table, phase_bits, ..
        } => {
            let (rows, _) = table.as_chunks::<32>();
            run::<T, 32>(lat, frames, rows, *phase_bits, nv, limit)
        }
    }
}

#[inline(always)]
fn run<T: Tap, const K: usize>(
    lat: &mut Lattice<T>,
    src: &Source<'_, T>,
    table: &[[T::W; K]],
    phase_bits: u32,
    _nv: usize,
    limit: (u64, u32),
) -> Stop {
    if !lat.active {
        return Stop::Input;
    }
    let half_m = M / 2;
    let cur_origin = src.cur_origin();
    let mut tmp = [[T::default(); 6]; K];
    // the hot state in locals, written back on every exit
    let (mut frame, mut frac) = (lat.frame, lat.frac);
    let (step_int, step_frac) = (lat.step >> 32, lat.step as u32);
    let mut q = (lat.q as usize) & (M - 1);
    let mut done = 0u32;
    let tw = T::Folds::twiddle(lat.cr);
    let mut hs = lat.half;
    let stop = loop {
        if (frame, frac) >= limit {
            break Stop::Limit;
        }
        // taps floor(τ) − (K/2 − 1) ..= floor(τ) + K/2
        let first = frame.wrapping_sub(K as u64 / 2 - 1);
        let taps: &[[T; 6]; K] = if first >= cur_origin {
            let off = (first - cur_origin) as usize;
            match src
                .cur
                .get(off..off + K)
                .and_then(|t| <&[[T; 6]; K]>::try_from(t).ok())
            {
                Some(t) => t,
                None => break Stop::Input,
            }
        } else if first >= src.hist_origin && first + K as u64 <= src.end() {
            // straddles the history and the block (or lies in the history)
            for (k, t) in tmp.iter_mut().enumerate() {
                let i = first + k as u64;
                *t = if i >= cur_origin {
                    src.cur.get((i - cur_origin) as usize).copied()
                } else {
                    src.hist.get((i - src.hist_origin) as usize).copied()
                }
                .unwrap_or_default();
            }
            &tmp
        } else if first + K as u64 > src.end() {
            break Stop::Input;
        } else {
            // the point lies before the frames held (the history overflowed): skip ahead
            frame = src.hist_origin + K as u64;
            continue;
        };
        // the two phases around the fraction, and where it lies between them
        let ph = (frac >> (32 - phase_bits)) as usize;
        let (Some(w0), Some(w1)) = (table.get(ph), table.get(ph + 1)) else {
            break Stop::Input;
        };
        let w = T::lerp(w0, w1, frac << phase_bits);
        let x = T::interpolate(taps, &w);
        lat.folds.add(q, &x, tw, &mut hs);
        // next point
        let (f, carry) = frac.overflowing_add(step_frac);
        frac = f;
        frame += step_int + u64::from(carry);
        done += 1;
        q += 1;
        if q == half_m || q == M {
            break Stop::Half;
        }
    };
    lat.frame = frame;
    lat.frac = frac;
    lat.n += done;
    lat.half = hs;
    if stop == Stop::Half {
        lat.half_points = 0;
        if q == M {
            q = 0;
            lat.r += 1;
            lat.cr = cycle_twiddle(lat.cycles, lat.r);
        }
    } else {
        lat.half_points += done;
    }
    lat.q = q as u32;
    stop
}
