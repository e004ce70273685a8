//! Per-window spectrum: the folded lattice sums → harmonic subgroups H1..H50 (IEC 61000-4-7) and
//! fundamental phasors, with a 128-point fixed-point FFT.
//!
//! For a window of `C` cycles sampled at `M` points per cycle (`N = C·M` points `x[rM + q]`), the
//! DFT bins that make up the subgroups are `C·h` and `C·h ± 1`. Folding the window over its cycles
//! turns them into two `M`-point DFTs:
//! * `X[C·h] = Σ_q y₀[q]·e^{−j2πhq/M}` with `y₀[q] = Σ_r x[rM+q]`,
//! * `X[C·h+1] = Σ_q y₁[q]·e^{−j2πhq/M}` with `y₁[q] = e^{−j2πq/N}·Σ_r x[rM+q]·e^{−j2πr/C}`, and
//!   `X[C·h−1] = conj(X[N − C·h + 1]) = conj(Y₁[M − h])` (the signal is real).
//!
//! The lattice accumulates `y₀` and the inner sum of `y₁` per point (one add and two
//! multiplications); here the voltage and current `y₀` of a phase share one complex FFT, each `y₁`
//! gets its own, in block floating point (inputs shifted to `[2²⁷, 2²⁸)`, each stage halves).

use super::lattice::{Accumulator, HalfSums};
use super::tables::{BIT_REVERSE_SWAPS, M, STAGE_TWIDDLE, point_twiddle};

/// Largest harmonic order reported.
pub const HARMONICS: usize = 50;

/// A complex value in fixed point.
pub(super) type C32 = (i32, i32);

/// `(a·b) >> 32`: one `mulh` on RV32.
#[inline(always)]
pub(super) fn mulh(a: i32, b: i32) -> i32 {
    ((i64::from(a) * i64::from(b)) >> 32) as i32
}

/// In-place radix-2 DIT FFT of `M` points, each stage scaled by ½ (the result is `DFT/M`).
///
/// The twiddles of each stage are a contiguous slice ([`STAGE_TWIDDLE`]) and the bit reversal a
/// list of swaps, so the butterfly loops carry no index arithmetic or bounds checks; the
/// arithmetic (and so every bit of the result) is that of the textbook loop.
fn fft(x: &mut [C32; M]) {
    for &(i, j) in BIT_REVERSE_SWAPS.iter() {
        x.swap(usize::from(i), usize::from(j));
    }
    let mut half = 1;
    while half < M {
        let tw = STAGE_TWIDDLE.get(half - 1..2 * half - 1).unwrap_or(&[]);
        if half <= 2 {
            // twiddles 1 and −j (one zero component): half the multiplications, the same bits
            for block in x.chunks_exact_mut(2 * half) {
                let (lo, hi) = block.split_at_mut(half);
                for ((a, b), w) in lo.iter_mut().zip(hi.iter_mut()).zip(tw) {
                    let (tr, ti) = if w.1 == 0 {
                        (mulh(b.0, w.0), mulh(b.1, w.0))
                    } else if w.0 == 0 {
                        (0i32.wrapping_sub(mulh(b.1, w.1)), mulh(b.0, w.1))
                    } else {
                        (
                            mulh(b.0, w.0).wrapping_sub(mulh(b.1, w.1)),
                            mulh(b.0, w.1).wrapping_add(mulh(b.1, w.0)),
                        )
                    };
                    let (ar, ai) = (a.0 >> 1, a.1 >> 1);
                    *a = (ar.wrapping_add(tr), ai.wrapping_add(ti));
                    *b = (ar.wrapping_sub(tr), ai.wrapping_sub(ti));
                }
            }
            half *= 2;
            continue;
        }
        for block in x.chunks_exact_mut(2 * half) {
            let (lo, hi) = block.split_at_mut(half);
            for ((a, b), w) in lo.iter_mut().zip(hi.iter_mut()).zip(tw) {
                // t = b·w/2 (Q31 mulh), a/2
                let tr = mulh(b.0, w.0).wrapping_sub(mulh(b.1, w.1));
                let ti = mulh(b.0, w.1).wrapping_add(mulh(b.1, w.0));
                let (ar, ai) = (a.0 >> 1, a.1 >> 1);
                *a = (ar.wrapping_add(tr), ai.wrapping_add(ti));
                *b = (ar.wrapping_sub(tr), ai.wrapping_sub(ti));
            }
        }
        half *= 2;
    }
}

/// Shifts `x` so that its largest component lies in `[2²⁷, 2²⁸)`; returns the left shift applied.
fn normalise(x: &mut [C32; M]) -> i32 {
    let m = x
        .iter()
        .fold(0u32, |m, c| m | c.0.unsigned_abs() | c.1.unsigned_abs());
    if m == 0 {
        return 0;
    }
    let lead = 31 - m.leading_zeros() as i32; // position of the top bit
    let shift = 27 - lead;
    if shift > 0 {
        for c in x.iter_mut() {
            *c = (c.0 << shift, c.1 << shift);
        }
    } else if shift < 0 {
        let s = -shift;
        for c in x.iter_mut() {
            *c = (c.0 >> s, c.1 >> s);
        }
    }
    shift
}

/// `re² + im²` exactly (components below 2³¹ in magnitude: at most 2⁶³).
#[inline]
fn power(re: i64, im: i64) -> u64 {
    re.unsigned_abs()
        .wrapping_mul(re.unsigned_abs())
        .wrapping_add(im.unsigned_abs().wrapping_mul(im.unsigned_abs()))
}

/// `2^e` as `f32` (|e| < 126).
#[inline]
fn pow2(e: i32) -> f32 {
    f32::from_bits(((127 + e.clamp(-126, 127)) as u32) << 23)
}

/// Folded sums of one channel over one window (see the module docs); `ur`, `ui` carry the
/// per-cycle modulated sums at 16 times the scale of `y0`.
#[derive(Debug, Clone)]
pub(super) struct Fold {
    pub y0: [i32; M],
    pub ur: [i32; M],
    pub ui: [i32; M],
}

impl Default for Fold {
    fn default() -> Self {
        Self {
            y0: [0; M],
            ur: [0; M],
            ui: [0; M],
        }
    }
}

impl Fold {
    pub(super) fn clear(&mut self) {
        self.y0 = [0; M];
        self.ur = [0; M];
        self.ui = [0; M];
    }
}

/// The integer folds of the six channels and the FFT's scratch: what a lattice of codes
/// accumulates (every operation is integer and wraps, so a host reproduces the device's bits).
#[derive(Debug, Clone)]
pub struct IntFolds {
    folds: [Fold; 6],
    scratch: [C32; M],
}

impl Accumulator for IntFolds {
    type Point = [i32; 6];
    type Sum = [i64; 3];
    type Twiddle = (i32, i32);

    fn boxed() -> alloc::boxed::Box<Self> {
        alloc::boxed::Box::new(Self {
            folds: core::array::from_fn(|_| Fold::default()),
            scratch: [(0, 0); M],
        })
    }

    fn clear(&mut self) {
        for f in &mut self.folds {
            f.clear();
        }
    }

    #[inline(always)]
    fn twiddle(q31: (i32, i32)) -> (i32, i32) {
        q31
    }

    /// One add into `y₀` and two `mulh` into the modulated sums per channel; `Σx`, `Σx²` of the
    /// voltages.
    #[inline(always)]
    fn add(&mut self, q: usize, x: &[i32; 6], (cr, ci): (i32, i32), half: &mut HalfSums<[i64; 3]>) {
        for (fold, &v) in self.folds.iter_mut().zip(x) {
            if let (Some(y0), Some(ur), Some(ui)) =
                (fold.y0.get_mut(q), fold.ur.get_mut(q), fold.ui.get_mut(q))
            {
                *y0 = y0.wrapping_add(v);
                let v5 = v.wrapping_shl(5);
                *ur = ur.wrapping_add(mulh(v5, cr));
                *ui = ui.wrapping_add(mulh(v5, ci));
            }
        }
        for (p, (s1, s2)) in half.s1.iter_mut().zip(half.s2.iter_mut()).enumerate() {
            let v = i64::from(x.get(2 * p).copied().unwrap_or(0));
            *s1 = s1.wrapping_add(v);
            *s2 = s2.wrapping_add(v.wrapping_mul(v));
        }
    }

    fn spectra(&mut self, phases: usize, currents: bool, cycles: usize) -> [(Channel, Channel); 3] {
        let mut out = [(Channel::default(), Channel::default()); 3];
        let (pairs, _) = self.folds.as_chunks::<2>();
        for (o, [v, i]) in out.iter_mut().zip(pairs).take(phases) {
            *o = phase(v, currents.then_some(i), cycles, &mut self.scratch);
        }
        out
    }
}

/// Subgroup powers of one channel (`Σ |X|²` of the three bins, in `(DFT/M)²` units of the lattice
/// values), and the fundamental phasor (`DFT/M` units).
#[derive(Debug, Clone, Copy)]
pub struct Channel {
    pub power: [f32; HARMONICS],
    pub phasor: (f32, f32),
}

impl Default for Channel {
    fn default() -> Self {
        Self {
            power: [0.0; HARMONICS],
            phasor: (0.0, 0.0),
        }
    }
}

/// The `y₁` FFT of one channel: the `C·h ± 1` bin powers added into `out`.
fn side_bins(f: &Fold, cycles: usize, scratch: &mut [C32; M], out: &mut Channel) {
    for (q, (s, (r, i))) in scratch.iter_mut().zip(f.ur.iter().zip(&f.ui)).enumerate() {
        let w = point_twiddle(cycles, q);
        // (r + j·i)·(w.0 + j·w.1) / 2
        *s = (
            mulh(*r, w.0).wrapping_sub(mulh(*i, w.1)),
            mulh(*r, w.1).wrapping_add(mulh(*i, w.0)),
        );
    }
    let shift = normalise(scratch);
    fft(scratch);
    // y₁ is 16/2 = 8 times the scale of y₀: powers 64 times
    let k = pow2(-2 * shift - 6);
    let bins = &*scratch;
    for (h, p) in out.power.iter_mut().enumerate() {
        let order = h + 1;
        let up = bins.get(order).copied().unwrap_or_default();
        let down = bins.get(M - order).copied().unwrap_or_default();
        let sum = power(i64::from(up.0), i64::from(up.1))
            .wrapping_add(power(i64::from(down.0), i64::from(down.1)));
        *p += sum as f32 * k;
    }
}

/// Spectrum of one phase: voltage (`v`) and current (`i`, absent for voltage-only layouts).
pub(super) fn phase(
    v: &Fold,
    i: Option<&Fold>,
    cycles: usize,
    scratch: &mut [C32; M],
) -> (Channel, Channel) {
    let mut cv = Channel::default();
    let mut ci = Channel::default();
    // the two centre-bin DFTs in one: z = y0_v + j·y0_i
    for (s, (a, b)) in scratch
        .iter_mut()
        .zip(v.y0.iter().zip(i.map_or(&[0i32; M], |f| &f.y0)))
    {
        *s = (*a, *b);
    }
    let shift = normalise(scratch);
    fft(scratch);
    // 2V = Z[h] + conj Z[M−h], 2I = −j·(Z[h] − conj Z[M−h]): powers of 2V, 2I
    let k = pow2(-2 * shift - 2);
    for h in 1..=HARMONICS {
        let (a, b) = scratch.get(h).copied().unwrap_or_default();
        let (c, d) = scratch.get(M - h).copied().unwrap_or_default();
        let (a, b, c, d) = (i64::from(a), i64::from(b), i64::from(c), i64::from(d));
        let (vr, vi, ir, ii) = (a + c, b - d, b + d, c - a);
        if let Some(p) = cv.power.get_mut(h - 1) {
            *p = power(vr, vi) as f32 * k;
        }
        if let Some(p) = ci.power.get_mut(h - 1) {
            *p = power(ir, ii) as f32 * k;
        }
        if h == 1 {
            let kp = pow2(-shift - 1);
            cv.phasor = (vr as f32 * kp, vi as f32 * kp);
            ci.phasor = (ir as f32 * kp, ii as f32 * kp);
        }
    }
    side_bins(v, cycles, scratch, &mut cv);
    if let Some(i) = i {
        side_bins(i, cycles, scratch, &mut ci);
    }
    (cv, ci)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_of_a_cosine() {
        let mut x = [(0i32, 0i32); M];
        for (q, c) in x.iter_mut().enumerate() {
            let (_, co) = super::super::tables::sin_cos(
                2.0 * core::f64::consts::PI * 5.0 * q as f64 / M as f64 + 0.3,
            );
            *c = ((co * 1e8) as i32, 0);
        }
        let sh = normalise(&mut x);
        fft(&mut x);
        let a = x[5];
        let mag = ((a.0 as f64).powi(2) + (a.1 as f64).powi(2)).sqrt() * 2f64.powi(-sh);
        // DFT/M of a cosine of amplitude A at bin 5: A/2
        assert!((mag / 0.5e8 - 1.0).abs() < 1e-6, "{mag}");
        let ph = (a.1 as f64).atan2(a.0 as f64);
        assert!((ph - 0.3).abs() < 1e-6);
        for (k, c) in x.iter().enumerate() {
            if k != 5 && k != M - 5 {
                assert!(c.0.abs() < 8 && c.1.abs() < 8, "{k} {c:?}");
            }
        }
    }
}
