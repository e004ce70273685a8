//! Constant tables of the lattice (interpolation kernels, folding and FFT twiddles), evaluated at
//! compile time from a deterministic series so that every target gets bit-identical coefficients
//! (no platform `sin`), and the device keeps them in flash rather than RAM.

use core::f64::consts::PI;

/// Lattice points per line cycle (the synchronous resampling rate is `M · f₁`).
pub(super) const M: usize = 128;
/// Largest cycles per basic window (12 at 60 Hz).
pub(super) const MAX_CYCLES: usize = 12;
/// Phases of the Lagrange table; the weights between two phases are interpolated linearly
/// (exact for the table's phases, and within `(1/P)²/8` of the kernel's delay in between, which
/// is far below what rounding the fraction to a phase would cost).
pub(super) const LAGRANGE_PHASES: usize = 64;
/// Taps of the Lagrange interpolator.
pub(super) const LAGRANGE_TAPS: usize = 6;

/// `sin x` and `cos x` for any finite `x`, to within a few ulp, in `const` context.
pub(crate) const fn sin_cos(x: f64) -> (f64, f64) {
    // reduce to [-π, π]
    let two_pi = 2.0 * PI;
    let k = (x / two_pi) as i64;
    let mut r = x - (k as f64) * two_pi;
    if r > PI {
        r -= two_pi;
    } else if r < -PI {
        r += two_pi;
    }
    // reduce to [-π/2, π/2]: sin(π − r) = sin r, cos(π − r) = −cos r
    let mut sign_c = 1.0;
    if r > PI / 2.0 {
        r = PI - r;
        sign_c = -1.0;
    } else if r < -PI / 2.0 {
        r = -PI - r;
        sign_c = -1.0;
    }
    let r2 = r * r;
    // Taylor series to x^27: the remainder is below 1e-19 on [-π/2, π/2]
    let mut s = 0.0;
    let mut c = 0.0;
    let mut term_s = r;
    let mut term_c = 1.0;
    let mut n = 0;
    while n < 14 {
        s += term_s;
        c += term_c;
        let a = (2 * n + 2) as f64;
        let b = (2 * n + 3) as f64;
        term_s = -term_s * r2 / (a * b);
        term_c = -term_c * r2 / ((2 * n + 1) as f64 * a);
        n += 1;
    }
    (s, sign_c * c)
}

/// `round(x · 2³¹)` saturated to `i32`.
pub(super) const fn q31(x: f64) -> i32 {
    let v = x * 2_147_483_648.0;
    let v = if v < 0.0 { v - 0.5 } else { v + 0.5 };
    if v >= 2_147_483_647.0 {
        i32::MAX
    } else if v <= -2_147_483_648.0 {
        i32::MIN
    } else {
        v as i32
    }
}

// Indices in the `const` builders below are loop counters bounded by the array lengths; they are
// evaluated at compile time, where an out-of-bounds index would fail the build.
/// 6-tap Lagrange weights for nodes −2..=3 around `floor(τ)` at fraction `mu`.
#[allow(clippy::indexing_slicing)]
const fn lagrange6(mu: f64) -> [f64; LAGRANGE_TAPS] {
    let mut out = [0.0; LAGRANGE_TAPS];
    let mut k = 0;
    while k < LAGRANGE_TAPS {
        let xk = k as f64 - 2.0;
        let mut w = 1.0;
        let mut j = 0;
        while j < LAGRANGE_TAPS {
            if j != k {
                let xj = j as f64 - 2.0;
                w *= (mu - xj) / (xk - xj);
            }
            j += 1;
        }
        out[k] = w;
        k += 1;
    }
    out
}

/// `LAGRANGE[p]` are the Q31 weights of taps `floor(τ)−2 ..= floor(τ)+3` for a fraction `p/P`
/// (`P + 1` rows: a fraction between `p/P` and `(p+1)/P` interpolates rows `p` and `p + 1`).
#[allow(clippy::indexing_slicing)]
pub(super) static LAGRANGE: [[i32; LAGRANGE_TAPS]; LAGRANGE_PHASES + 1] = {
    let mut t = [[0i32; LAGRANGE_TAPS]; LAGRANGE_PHASES + 1];
    let mut p = 0;
    while p <= LAGRANGE_PHASES {
        let w = lagrange6(p as f64 / LAGRANGE_PHASES as f64);
        let mut k = 0;
        while k < LAGRANGE_TAPS {
            t[p][k] = q31(w[k]);
            k += 1;
        }
        p += 1;
    }
    t
};

/// [`LAGRANGE`] as `f32` weights (for `f32` input).
#[allow(clippy::indexing_slicing)]
pub(super) static LAGRANGE_F32: [[f32; LAGRANGE_TAPS]; LAGRANGE_PHASES + 1] = {
    let mut t = [[0.0f32; LAGRANGE_TAPS]; LAGRANGE_PHASES + 1];
    let mut p = 0;
    while p <= LAGRANGE_PHASES {
        let w = lagrange6(p as f64 / LAGRANGE_PHASES as f64);
        let mut k = 0;
        while k < LAGRANGE_TAPS {
            t[p][k] = w[k] as f32;
            k += 1;
        }
        p += 1;
    }
    t
};

/// `FFT_TWIDDLE[k] = e^{−j2πk/M}` (Q31), `k < M/2`.
#[allow(clippy::indexing_slicing)]
const FFT_TWIDDLE: [(i32, i32); M / 2] = {
    let mut t = [(0i32, 0i32); M / 2];
    let mut k = 0;
    while k < M / 2 {
        let (s, c) = sin_cos(-2.0 * PI * k as f64 / M as f64);
        t[k] = (q31(c), q31(s));
        k += 1;
    }
    t
};

/// The index into [`FFT_TWIDDLE`] of entry `i` of [`STAGE_TWIDDLE`]: the stage of butterflies
/// `half` apart holds entries `half − 1 .. 2·half − 1`, entry `half − 1 + k` being the twiddle
/// `k · M/(2·half)`.
const fn stage_twiddle_index(i: usize) -> usize {
    let mut half = 1;
    while 2 * half - 1 <= i {
        half *= 2;
    }
    (i + 1 - half) * (M / (2 * half))
}

/// The twiddles of every FFT stage, stage after stage: the stage of butterflies `half` apart uses
/// `STAGE_TWIDDLE[half − 1 .. 2·half − 1]`, i.e. `FFT_TWIDDLE[k · M/(2·half)]` for `k < half`.
#[allow(clippy::indexing_slicing)]
pub(super) static STAGE_TWIDDLE: [(i32, i32); M - 1] = {
    let mut t = [(0i32, 0i32); M - 1];
    let mut i = 0;
    while i < M - 1 {
        t[i] = FFT_TWIDDLE[stage_twiddle_index(i)];
        i += 1;
    }
    t
};

/// [`STAGE_TWIDDLE`] in `f32`, rounded from the exact values (the FFT of `f32` input, module
/// `spectrum_float`).
#[allow(clippy::indexing_slicing)]
pub(super) static STAGE_TWIDDLE_F32: [(f32, f32); M - 1] = {
    let mut t = [(0.0f32, 0.0f32); M - 1];
    let mut i = 0;
    while i < M - 1 {
        let (s, c) = sin_cos(-2.0 * PI * stage_twiddle_index(i) as f64 / M as f64);
        t[i] = (c as f32, s as f32);
        i += 1;
    }
    t
};

/// The swaps of the `M`-point bit-reversal permutation (`i < j`).
#[allow(clippy::indexing_slicing)]
pub(super) static BIT_REVERSE_SWAPS: [(u8, u8); 56] = {
    let mut t = [(0u8, 0u8); 56];
    let mut n = 0;
    let mut i = 0;
    while i < M {
        let j = (i as u32).reverse_bits() >> (32 - 7);
        if j as usize > i {
            t[n] = (i as u8, j as u8);
            n += 1;
        }
        i += 1;
    }
    assert!(n == 56);
    t
};

/// `CYCLE_TWIDDLE[C][r] = e^{−j2πr/C}` (Q31): the per-cycle modulation that folds the bins
/// `C·h ± 1` of a `C`-cycle window.
#[allow(clippy::indexing_slicing)]
pub(super) static CYCLE_TWIDDLE: [[(i32, i32); MAX_CYCLES]; MAX_CYCLES + 1] = {
    let mut t = [[(0i32, 0i32); MAX_CYCLES]; MAX_CYCLES + 1];
    let mut c = 1;
    while c <= MAX_CYCLES {
        let mut r = 0;
        while r < c {
            let (s, co) = sin_cos(-2.0 * PI * r as f64 / c as f64);
            t[c][r] = (q31(co), q31(s));
            r += 1;
        }
        c += 1;
    }
    t
};

/// `FINE_TWIDDLE[C][b] = e^{−j2πb/(C·M)}` (Q31), `b < C`: with the `M`-th roots of unity of
/// [`STAGE_TWIDDLE`] it gives the per-point factor `e^{−j2πq/(C·M)}` of the `C·h + 1` bins as
/// `e^{−j2π⌊q/C⌋/M} · e^{−j2π(q mod C)/(C·M)}` ([`point_twiddle`]), a 1.2 KB table instead of
/// the 13 KB of every `(C, q)`.
#[allow(clippy::indexing_slicing)]
static FINE_TWIDDLE: [[(i32, i32); MAX_CYCLES]; MAX_CYCLES + 1] = {
    let mut t = [[(0i32, 0i32); MAX_CYCLES]; MAX_CYCLES + 1];
    let mut c = 1;
    while c <= MAX_CYCLES {
        let mut b = 0;
        while b < c {
            let (s, co) = sin_cos(-2.0 * PI * b as f64 / (c * M) as f64);
            t[c][b] = (q31(co), q31(s));
            b += 1;
        }
        c += 1;
    }
    t
};

/// `e^{−j2πq/(C·M)}` (Q31) for `q < M`, `1 ≤ C ≤ MAX_CYCLES` (`C` out of range counts as 1),
/// within 2 LSB of the exact value (one rounded product of two Q31 table entries).
pub(super) fn point_twiddle(cycles: usize, q: usize) -> (i32, i32) {
    let c = cycles.clamp(1, MAX_CYCLES);
    let (a, b) = (q / c, q % c);
    // e^{−j2πa/M}: the last FFT stage holds a < M/2; the other half is its negative
    let half = M / 2;
    let (ar, ai) = STAGE_TWIDDLE
        .get(half - 1 + a % half)
        .copied()
        .unwrap_or((i32::MAX, 0));
    let (ar, ai) = if a >= half {
        (ar.saturating_neg(), ai.saturating_neg())
    } else {
        (ar, ai)
    };
    let (br, bi) = FINE_TWIDDLE
        .get(c)
        .and_then(|t| t.get(b))
        .copied()
        .unwrap_or((i32::MAX, 0));
    let mul =
        |x: i64| ((x + (1 << 30)) >> 31).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    let (ar, ai, br, bi) = (i64::from(ar), i64::from(ai), i64::from(br), i64::from(bi));
    (mul(ar * br - ai * bi), mul(ar * bi + ai * br))
}

/// Kaiser-windowed sinc interpolator for input rates too low for the 6-tap Lagrange kernel: `taps`
/// weights per phase, `phases + 1` rows, Q31, each row normalised to a DC gain of 1. Built once at
/// construction (the lattice interpolates linearly between rows, so a few dozen phases do).
pub(super) fn windowed_sinc(taps: usize, phases: usize, beta: f64) -> alloc::vec::Vec<i32> {
    let half = (taps / 2) as f64;
    let i0_beta = bessel_i0(beta);
    let mut out = alloc::vec::Vec::with_capacity((phases + 1) * taps);
    for p in 0..=phases {
        let mu = p as f64 / phases as f64;
        let mut row = [0.0f64; 64];
        let mut sum = 0.0;
        for (k, w) in row.iter_mut().enumerate().take(taps) {
            // node k sits at floor(τ) + k − (taps/2 − 1); t is its distance from τ
            let t = k as f64 - (half - 1.0) - mu;
            let x = t / half;
            let win = if x.abs() >= 1.0 {
                0.0
            } else {
                bessel_i0(beta * sqrt_newton(1.0 - x * x)) / i0_beta
            };
            let sinc = if t.abs() < 1e-12 {
                1.0
            } else {
                sin_cos(PI * t).0 / (PI * t)
            };
            *w = sinc * win;
            sum += *w;
        }
        for w in row.iter().take(taps) {
            out.push(q31(w / sum));
        }
    }
    out
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    let mut k = 1.0;
    while term > 1e-17 * sum {
        term *= q / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

/// `√x` by Newton's method (IEEE `sqrt` is exact too; this keeps the table code `libm`-free).
fn sqrt_newton(x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let mut r = if x > 1.0 { x } else { 1.0 };
    for _ in 0..60 {
        let n = 0.5 * (r + x / r);
        if n == r {
            break;
        }
        r = n;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_matches_std() {
        for k in -2000..2000 {
            let x = k as f64 * 0.0123;
            let (s, c) = sin_cos(x);
            assert!((s - x.sin()).abs() < 1e-14, "{x}");
            assert!((c - x.cos()).abs() < 1e-14, "{x}");
        }
    }

    #[test]
    fn point_twiddle_is_within_two_lsb() {
        for c in 1..=MAX_CYCLES {
            for q in 0..M {
                let (s, co) = sin_cos(-2.0 * PI * q as f64 / (c * M) as f64);
                let (r, i) = point_twiddle(c, q);
                assert!((i64::from(r) - i64::from(q31(co))).abs() <= 2, "{c} {q}");
                assert!((i64::from(i) - i64::from(q31(s))).abs() <= 2, "{c} {q}");
            }
        }
    }

    #[test]
    fn kernels_have_unit_dc_gain() {
        for row in LAGRANGE.iter() {
            let s: i64 = row.iter().map(|&w| i64::from(w)).sum();
            assert!((s - (1i64 << 31)).abs() < 8, "{s}");
        }
        assert_eq!(LAGRANGE[0], [0, 0, i32::MAX, 0, 0, 0]);
        assert_eq!(LAGRANGE[LAGRANGE_PHASES], [0, 0, 0, i32::MAX, 0, 0]);
        let t = windowed_sinc(32, 64, 8.0);
        for row in t.chunks(32) {
            let s: i64 = row.iter().map(|&w| i64::from(w)).sum();
            assert!((s - (1i64 << 31)).abs() < 64, "{s}");
        }
    }
}
