//! The folds and the spectrum of a lattice of `f32` input (hosts): the same sums and bins as the
//! integer path of module `spectrum`, with the six channels side by side.
//!
//! A lattice point of `f32` input is never quantised: its six channel values are one `[f32; 8]`
//! vector (two lanes idle) that is added into the folds lane by lane, so a point costs three
//! vector multiply-adds instead of six adds and twelve 64-bit multiplications. At the end of a
//! window all channels go through one lane-parallel FFT for the centre bins `C·h` and one for the
//! side bins `C·h ± 1` (two instead of nine scalar FFTs). The FFTs are `f32`: their rounding
//! (~10⁻⁷ of the largest bin) is that of the `f32` folds and input themselves, and an `f64` FFT
//! (two lanes per vector instead of four) changed no harmonic error the accuracy tests print at
//! their precision while costing 20 % more. Bin powers are formed in `f64`.

use super::lattice::{Accumulator, HalfSums};
use super::spectrum::{Channel, HARMONICS};
use super::tables::{BIT_REVERSE_SWAPS, M, STAGE_TWIDDLE_F32, point_twiddle};

/// The FFT's arithmetic.
type F = f32;

/// Lanes of a fold vector: the six channels and two idle lanes.
const L: usize = 8;

/// `f32` folds of the six channels (lane = channel in frame order `v1 i1 v2 i2 v3 i3`) and the
/// FFTs' scratch: the centre bins of a phase's voltage and current share one complex lane
/// (`y₀ᵥ + j·y₀ᵢ`, three lanes and an idle one), the side bins take one lane per channel.
#[derive(Debug, Clone)]
pub struct FloatFolds {
    y0: [[f32; L]; M],
    ur: [[f32; L]; M],
    ui: [[f32; L]; M],
    cre: [[F; 4]; M],
    cim: [[F; 4]; M],
    sre: [[F; 6]; M],
    sim: [[F; 6]; M],
}

impl Accumulator for FloatFolds {
    type Point = [f32; L];
    type Sum = [f32; L];
    type Twiddle = (f32, f32);

    fn boxed() -> alloc::boxed::Box<Self> {
        alloc::boxed::Box::new(Self {
            y0: [[0.0; L]; M],
            ur: [[0.0; L]; M],
            ui: [[0.0; L]; M],
            cre: [[0.0; 4]; M],
            cim: [[0.0; 4]; M],
            sre: [[0.0; 6]; M],
            sim: [[0.0; 6]; M],
        })
    }

    fn clear(&mut self) {
        self.y0 = [[0.0; L]; M];
        self.ur = [[0.0; L]; M];
        self.ui = [[0.0; L]; M];
    }

    #[inline(always)]
    fn twiddle(q31: (i32, i32)) -> (f32, f32) {
        const K: f32 = 1.0 / 2_147_483_648.0;
        (q31.0 as f32 * K, q31.1 as f32 * K)
    }

    /// Three vector multiply-adds into the folds; the half-cycle sums are the point's own lanes
    /// (`f32` over at most 64 points: relative error below 10⁻⁵ in Urms(½)).
    #[inline(always)]
    fn add(&mut self, q: usize, x: &[f32; L], (cr, ci): (f32, f32), half: &mut HalfSums<[f32; L]>) {
        if let (Some(y0), Some(ur), Some(ui)) =
            (self.y0.get_mut(q), self.ur.get_mut(q), self.ui.get_mut(q))
        {
            for (((y0, ur), ui), &v) in y0.iter_mut().zip(ur).zip(ui).zip(x) {
                *y0 += v;
                *ur += v * cr;
                *ui += v * ci;
            }
        }
        for ((s1, s2), &v) in half.s1.iter_mut().zip(half.s2.iter_mut()).zip(x) {
            *s1 += v;
            *s2 += v * v;
        }
    }

    fn spectra(&mut self, phases: usize, currents: bool, cycles: usize) -> [(Channel, Channel); 3] {
        let mut out = [(Channel::default(), Channel::default()); 3];
        let inv = 1.0 / M as f64;
        // centre bins C·h: z = y₀ᵥ + j·y₀ᵢ per phase
        for ((re, im), y) in self.cre.iter_mut().zip(self.cim.iter_mut()).zip(&self.y0) {
            let [v1, i1, v2, i2, v3, i3, _, _] = y.map(F::from);
            *re = [v1, v2, v3, 0.0];
            *im = [i1, i2, i3, 0.0];
        }
        fft(&mut self.cre, &mut self.cim);
        // 2V = Z[h] + conj Z[M−h], 2I = −j·(Z[h] − conj Z[M−h])
        let k = 0.5 * inv;
        for (p, (v, i)) in out.iter_mut().enumerate().take(phases) {
            for h in 1..=HARMONICS {
                let (a, b) = bin(&self.cre, &self.cim, h, p);
                let (c, d) = bin(&self.cre, &self.cim, M - h, p);
                let (vr, vi, ir, ii) = ((a + c) * k, (b - d) * k, (b + d) * k, (c - a) * k);
                if let (Some(pv), Some(pi)) = (v.power.get_mut(h - 1), i.power.get_mut(h - 1)) {
                    *pv = (vr * vr + vi * vi) as f32;
                    *pi = (ir * ir + ii * ii) as f32;
                }
                if h == 1 {
                    v.phasor = (vr as f32, vi as f32);
                    i.phasor = (ir as f32, ii as f32);
                }
            }
        }
        // side bins C·h ± 1: y₁[q] = e^{−j2πq/N}·(ur + j·ui)[q], one lane per channel
        for (q, ((re, im), (ur, ui))) in self
            .sre
            .iter_mut()
            .zip(self.sim.iter_mut())
            .zip(self.ur.iter().zip(&self.ui))
            .enumerate()
        {
            let w = point_twiddle(cycles, q);
            let (wr, wi) = (
                (f64::from(w.0) / 2_147_483_648.0) as F,
                (f64::from(w.1) / 2_147_483_648.0) as F,
            );
            for (((re, im), &r), &i) in re.iter_mut().zip(im.iter_mut()).zip(ur).zip(ui) {
                let (r, i) = (F::from(r), F::from(i));
                *re = r * wr - i * wi;
                *im = r * wi + i * wr;
            }
        }
        fft(&mut self.sre, &mut self.sim);
        let k2 = inv * inv;
        for (p, (v, i)) in out.iter_mut().enumerate().take(phases) {
            for (lane, c) in [(2 * p, v), (2 * p + 1, i)] {
                for (h, pw) in c.power.iter_mut().enumerate() {
                    let (a, b) = bin(&self.sre, &self.sim, h + 1, lane);
                    let (d, e) = bin(&self.sre, &self.sim, M - h - 1, lane);
                    *pw += ((a * a + b * b + d * d + e * e) * k2) as f32;
                }
            }
            if !currents {
                *i = Channel::default();
            }
        }
        out
    }
}

/// Bin `k` of lane `lane` of an FFT's output.
#[inline]
fn bin<const N: usize>(re: &[[F; N]; M], im: &[[F; N]; M], k: usize, lane: usize) -> (f64, f64) {
    let r = re.get(k).and_then(|v| v.get(lane)).copied();
    let i = im.get(k).and_then(|v| v.get(lane)).copied();
    (f64::from(r.unwrap_or(0.0)), f64::from(i.unwrap_or(0.0)))
}

const _: () = assert!(HARMONICS < M / 2);

/// In-place radix-2 DIT FFT of `M` points of every lane (unscaled: the result is the DFT).
fn fft<const N: usize>(re: &mut [[F; N]; M], im: &mut [[F; N]; M]) {
    for &(i, j) in BIT_REVERSE_SWAPS.iter() {
        re.swap(usize::from(i), usize::from(j));
        im.swap(usize::from(i), usize::from(j));
    }
    let mut half = 1;
    while half < M {
        let tw = STAGE_TWIDDLE_F32.get(half - 1..2 * half - 1).unwrap_or(&[]);
        for (br, bi) in re
            .chunks_exact_mut(2 * half)
            .zip(im.chunks_exact_mut(2 * half))
        {
            let (lr, hr) = br.split_at_mut(half);
            let (li, hi) = bi.split_at_mut(half);
            for (((ar, ai), (cr, ci)), &(wr, wi)) in lr
                .iter_mut()
                .zip(li.iter_mut())
                .zip(hr.iter_mut().zip(hi.iter_mut()))
                .zip(tw)
            {
                butterfly(ar, ai, cr, ci, wr, wi);
            }
        }
        half *= 2;
    }
}

/// One radix-2 butterfly of every lane. Not inlined: inside the stage loop the compiler packed four
/// butterflies' lane `k` into a vector (gathering every operand, ≈60 instructions per butterfly);
/// on its own it packs the lanes (≈20, and the call).
#[inline(never)]
fn butterfly<const N: usize>(
    ar: &mut [F; N],
    ai: &mut [F; N],
    cr: &mut [F; N],
    ci: &mut [F; N],
    wr: F,
    wi: F,
) {
    for k in 0..N {
        // constant trip count over fixed-size arrays
        #[allow(clippy::indexing_slicing)]
        {
            let tr = cr[k] * wr - ci[k] * wi;
            let ti = cr[k] * wi + ci[k] * wr;
            let (a, b) = (ar[k], ai[k]);
            ar[k] = a + tr;
            ai[k] = b + ti;
            cr[k] = a - tr;
            ci[k] = b - ti;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::pq::tables::sin_cos;

    #[test]
    fn fft_matches_the_definition() {
        let mut re = [[0.0 as F; L]; M];
        let mut im = [[0.0 as F; L]; M];
        let x = |q: usize, lane: usize| ((q * 37 + lane * 11) % 23) as f64 - 11.0;
        for (q, (r, i)) in re.iter_mut().zip(im.iter_mut()).enumerate() {
            for lane in 0..L {
                r[lane] = x(q, lane) as F;
                i[lane] = (x(q + 5, lane) * 0.5) as F;
            }
        }
        fft(&mut re, &mut im);
        for k in [0usize, 1, 7, 50, 64, 127] {
            for lane in [0usize, 5] {
                let (mut sr, mut si) = (0.0, 0.0);
                for q in 0..M {
                    let (s, c) = sin_cos(-2.0 * core::f64::consts::PI * (k * q) as f64 / M as f64);
                    let (a, b) = (x(q, lane), x(q + 5, lane) * 0.5);
                    sr += a * c - b * s;
                    si += a * s + b * c;
                }
                // `f32` rounding: ~10⁻⁶ of the ~10³ a bin of this input reaches
                assert!((f64::from(re[k][lane]) - sr).abs() < 2e-3, "{k} {lane}");
                assert!((f64::from(im[k][lane]) - si).abs() < 2e-3, "{k} {lane}");
            }
        }
    }
}
