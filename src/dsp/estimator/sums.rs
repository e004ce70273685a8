//! Accumulation: the per-frame kernel and its lanes, the per-sample accumulators between folds
//! ([`Run`]), the `f64` half-cycle and window sums ([`Sums`]) and the fold between them, and the
//! trapezoid weights of the frames next to a window edge.

use super::{Estimator, Sample};
use num_traits::AsPrimitive;

/// Frames are folded from the per-sample accumulators into `f64` at least every this many blocks.
pub(super) const FOLD_BLOCKS: u32 = 64;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Sums {
    pub(super) w: f64,
    pub(super) s1: [f64; 6],
    pub(super) s2: [f64; 6],
    pub(super) sp: [f64; 6],
    pub(super) sl: [f64; 6],
    pub(super) re: [f64; 6],
    pub(super) im: [f64; 6],
    pub(super) zre: f64,
    pub(super) zim: f64,
    /// Σ w·z²: the image (negative-frequency) term of the single-bin DFT.
    pub(super) kre: f64,
    pub(super) kim: f64,
}

impl Sums {
    #[inline]
    pub(super) fn add_sample(&mut self, x: &[f64; 6], w: f64, zr: f64, zi: f64) {
        let sw = swap_pairs(x);
        let r2 = rot2(x);
        self.w += w;
        let wx: [f64; 6] = x.map(|v| w * v);
        for k in 0..6 {
            // constant trip count over fixed-size arrays: always in bounds
            #[allow(clippy::indexing_slicing)]
            {
                self.s1[k] += wx[k];
                self.s2[k] += wx[k] * x[k];
                self.sp[k] += wx[k] * sw[k];
                self.sl[k] += wx[k] * r2[k];
                self.re[k] += wx[k] * zr;
                self.im[k] += wx[k] * zi;
            }
        }
        self.zre += w * zr;
        self.zim += w * zi;
        self.kre += w * (zr * zr - zi * zi);
        self.kim += w * 2.0 * zr * zi;
    }

    pub(super) fn merge(&mut self, o: &Sums) {
        self.w += o.w;
        add6(&mut self.s1, &o.s1);
        add6(&mut self.s2, &o.s2);
        add6(&mut self.sp, &o.sp);
        add6(&mut self.sl, &o.sl);
        add6(&mut self.re, &o.re);
        add6(&mut self.im, &o.im);
        self.zre += o.zre;
        self.zim += o.zim;
        self.kre += o.kre;
        self.kim += o.kim;
    }
}

#[inline(always)]
pub(super) fn add6(a: &mut [f64; 6], b: &[f64; 6]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

#[inline(always)]
pub(super) fn swap_pairs<T: Copy>(x: &[T; 6]) -> [T; 6] {
    [x[1], x[0], x[3], x[2], x[5], x[4]]
}

#[inline(always)]
pub(super) fn rot2<T: Copy>(x: &[T; 6]) -> [T; 6] {
    [x[2], x[3], x[4], x[5], x[0], x[1]]
}

/// Per-sample accumulators between folds.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Run<A, D> {
    pub(super) s1: [A; LANES],
    pub(super) s2: [A; LANES],
    pub(super) sp: [A; LANES],
    pub(super) sl: [A; LANES],
    /// Σ over blocks of block sum · Re/Im(z) (before the boxcar-gain correction).
    pub(super) re: [D; LANES],
    pub(super) im: [D; LANES],
    /// Σ over blocks of z and z².
    pub(super) zr: D,
    pub(super) zi: D,
    pub(super) kr: D,
    pub(super) ki: D,
    pub(super) frames: u32,
    pub(super) blocks: u32,
}

/// Six channels padded to eight lanes (two 4-wide or one 8-wide vector).
pub(super) const LANES: usize = 8;

impl<S: Sample> Estimator<S> {
    /// Moves the per-sample accumulators into the `f64` half-cycle sums.
    ///
    /// `df` and `gd` convert the phasor sums of block-rate accumulation (the `f32` path: block sums
    /// times the block-centre phasor) to per-sample terms; the integer path accumulates per-sample
    /// terms already and passes 1.
    pub(super) fn fold(&mut self, run: &mut Run<S::Acc, S::Dft>, df: f64, gd: f64) {
        let sc = self.scale;
        let sw = swap_pairs(&sc);
        let r2 = rot2(&sc);
        let h = &mut self.half;
        let unit = S::DFT_UNIT;
        for (((re, im), (rr, ri)), c) in
            h.re.iter_mut()
                .zip(&mut h.im)
                .zip(run.re.iter().zip(&run.im))
                .zip(&sc)
        {
            // (for `f32`, `unit` is 1 and the products are exactly the block path's)
            *re += rr.as_() * c * gd * unit;
            *im += ri.as_() * c * gd * unit;
        }
        h.zre += run.zr.as_() * df * gd * unit;
        h.zim += run.zi.as_() * df * gd * unit;
        h.kre += run.kr.as_() * df * unit;
        h.kim += run.ki.as_() * df * unit;
        h.w += f64::from(run.frames);
        for k in 0..6 {
            let (Some(a1), Some(a2), Some(ap), Some(al)) =
                (run.s1.get(k), run.s2.get(k), run.sp.get(k), run.sl.get(k))
            else {
                continue;
            };
            let (Some(c), Some(cw), Some(cr)) = (sc.get(k), sw.get(k), r2.get(k)) else {
                continue;
            };
            if let Some(x) = h.s1.get_mut(k) {
                *x += a1.as_() * c;
            }
            if let Some(x) = h.s2.get_mut(k) {
                *x += a2.as_() * c * c;
            }
            if let Some(x) = h.sp.get_mut(k) {
                *x += ap.as_() * c * cw;
            }
            if let Some(x) = h.sl.get_mut(k) {
                *x += al.as_() * c * cr;
            }
        }
        *run = Run::default();
    }
}

/// Weight of frame `k` (relative to the block's first frame) on the early side of a window edge at
/// `n0 + β` frames: the trapezoid rule with interpolated end points (see `split_block`).
#[inline]
pub(super) fn pre_weight(k: f64, n0: f64, beta: f64) -> f64 {
    if k < n0 {
        1.0
    } else if k == n0 {
        1.0 - 0.5 * (1.0 - beta) * (1.0 - beta)
    } else if k == n0 + 1.0 {
        0.5 * beta * beta
    } else {
        0.0
    }
}

#[inline(always)]
pub(super) fn add_lanes<A: Copy + core::ops::AddAssign>(a: &mut [A; LANES], b: &[A; LANES]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += *y;
    }
}

/// The per-frame kernel: squares and products of one block accumulated into `run`, the block sum of
/// every channel returned. Eight lanes `[v1,i1,v2,i2,v3,i3,0,0]` so that the compiler maps it onto
/// SIMD registers; `sp` holds `v·i` in the even lanes, `sl` the neighbour products `v1·v2, v2·v3,
/// v3·v1` in lanes 0, 2, 4.
#[inline(always)]
pub(super) fn kernel(
    blk: &[[f32; 6]],
    s2: &mut [f32; LANES],
    sp: &mut [f32; LANES],
    sl: &mut [f32; LANES],
) -> [f32; LANES] {
    let mut s1 = [f32::default(); LANES];
    for f in blk {
        let z = 0.0f32;
        let [x0, x1, x2, x3, x4, x5] = *f;
        let x = [x0, x1, x2, x3, x4, x5, z, z];
        let sw = [x1, x0, x3, x2, x5, x4, z, z];
        let r2 = [x2, x3, x4, x5, x0, x1, z, z];
        for k in 0..LANES {
            // constant trip count: indices are in bounds and the loop is unrolled
            #[allow(clippy::indexing_slicing)]
            {
                s1[k] += x[k];
                s2[k] += x[k] * x[k];
                sp[k] += x[k] * sw[k];
                sl[k] += x[k] * r2[k];
            }
        }
    }
    s1
}
