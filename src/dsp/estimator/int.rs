//! The integer per-block path of [`Estimator<i32>`](super::Estimator), for cores without an FPU.
//!
//! The `f32` path spends its per-block work in `f64` (detector filters, a six-channel DFT, the
//! reference phasor's rotation). On an ESP32-C3 every one of those operations is a soft-float call
//! of 50–150 instructions, which cost more than the samples themselves. Here everything that runs
//! per frame or per block is integer arithmetic:
//!
//! * per frame: six `i32` block sums and twelve exact products `x²`, `v·i`, `v·v'` (only the lanes
//!   the measurements read) widened to `i64`;
//! * per block: the L1 block sum (in quarter codes) through the same two band-pass biquads as the
//!   `f32` path, with Q28 coefficients and integer hysteresis; the single-bin DFT of the six block
//!   sums against a Q30 reference phasor that is rotated in integers (the boxcar-gain correction is
//!   folded into the phasor, so the sums are per-sample terms); an integer pre-check of the
//!   timeout/lost-sync deadlines;
//! * the sums are folded into the `f64` half-cycle sums at most every 512 frames (24-bit codes keep
//!   every `i64` sum below 2⁶²), and at every event.
//!
//! Only a block in which an event falls leaves the integers: its frames of weight 1 on either side of
//! the edge are added exactly (with per-frame phasors), the at most three frames that straddle the
//! edge are split in `f64` as in the `f32` path, and the detector state is carried across the event
//! through the `f64` fields the shared event code uses (`peak`, `zc`/`zs`). The arithmetic wraps
//! rather than panics for codes beyond 24 bits (the results are then meaningless, not undefined).

use super::detector::{Biquad, EdgeEvent};
use super::sums::{Run, pre_weight};
use super::{Estimator, MAX_DECIMATION, Observer};
#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;

/// Fixed-point scale of the reference phasor: 1.0 is 2³⁰.
const ZQ: u32 = 30;
/// Value of one unit of the integer DFT sums (what `Sample::DFT_UNIT` of `i32` says).
const DFT_UNIT: f64 = 1.0 / (1u64 << ZQ) as f64;
const _: () = assert!(DFT_UNIT == <i32 as super::Sample>::DFT_UNIT);
/// Fixed-point scale of the detector's filter coefficients: 1.0 is 2²⁸.
const CQ: u32 = 28;
/// The detector works on block sums in quarter codes (two fractional bits).
const YQ: u32 = 2;
/// Fixed-point scale of the edge frames' weights: 1.0 is 2¹².
const WQ: u32 = 12;
/// Integer sums are folded into `f64` at least every this many frames: Σ x·z over 512 frames of
/// 24-bit codes is < 2⁶².
const FOLD_FRAMES: u32 = 512;

#[inline(always)]
fn wide(a: i32, b: i32) -> i64 {
    i64::from(a) * i64::from(b)
}

/// `round(x · 2^q)` saturated to `i32` (NaN → 0).
fn quantise(x: f64, q: u32) -> i32 {
    let v = x * (1u64 << q) as f64;
    let v = if v < 0.0 { v - 0.5 } else { v + 0.5 };
    v as i32
}

/// Complex product in Q30 (`(a.0 + j·a.1)·(b.0 + j·b.1)`), rounded.
#[inline(always)]
fn cmul(a: (i32, i32), b: (i32, i32)) -> (i32, i32) {
    let half = 1i64 << (ZQ - 1);
    let re = wide(a.0, b.0)
        .wrapping_sub(wide(a.1, b.1))
        .wrapping_add(half)
        >> ZQ;
    let im = wide(a.0, b.1)
        .wrapping_add(wide(a.1, b.0))
        .wrapping_add(half)
        >> ZQ;
    (re as i32, im as i32)
}

/// Band-pass biquad in direct form I with `b2 = −b0` (the RBJ band-pass), Q28 coefficients.
#[derive(Debug, Clone, Copy, Default)]
struct IntBiquad {
    b0: i32,
    a1: i32,
    a2: i32,
    x1: i32,
    x2: i32,
    y1: i32,
    y2: i32,
}

impl IntBiquad {
    fn from_float(f: &Biquad) -> Self {
        Self {
            b0: quantise(f.b0, CQ),
            a1: quantise(f.a1, CQ),
            a2: quantise(f.a2, CQ),
            ..Self::default()
        }
    }

    #[inline(always)]
    fn step(&mut self, x: i32) -> i32 {
        let acc = wide(self.b0, x.wrapping_sub(self.x2))
            .wrapping_sub(wide(self.a1, self.y1))
            .wrapping_sub(wide(self.a2, self.y2));
        let y = (acc.wrapping_add(1 << (CQ - 1)) >> CQ) as i32;
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// The integer path's state; the `f64` fields of the estimator stay authoritative across events.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct IntPath {
    filt: [IntBiquad; 2],
    /// Detector output of the previous block.
    y_prev: i32,
    /// Largest |y| since the last rising crossing.
    peak: u32,
    /// Hysteresis threshold.
    h: i32,
    /// Volts per detector unit (a quarter code of a block sum, per frame).
    unit_v: f64,
    /// Reference phasor at the current block's centre, Q30.
    z: (i32, i32),
    /// The same with the boxcar-gain correction (what block sums are multiplied by).
    zg: (i32, i32),
    /// Boxcar-gain correction, Q30.
    inv_g: i32,
    /// Rotation by one block.
    rot: (i32, i32),
    /// Rotation by one frame, `e^{−jω}`.
    step: (i32, i32),
    /// From the block centre to the previous block's last frame.
    back: (i32, i32),
    /// `omega` for which `rot`, `inv_g`, `step` and `back` were computed.
    omega: f64,
    /// `amp` for which `h` was computed.
    amp: f64,
    /// First block start at which the timeout / lost-sync deadline needs the exact check.
    check_from: u64,
    /// The fields above mirror the estimator's `f64` state.
    ready: bool,
}

impl IntPath {
    pub(super) fn new(filt: &[Biquad; 2]) -> Self {
        Self {
            filt: [
                IntBiquad::from_float(&filt[0]),
                IntBiquad::from_float(&filt[1]),
            ],
            ..Self::default()
        }
    }
}

impl IntPath {
    /// New filter coefficients (nominal frequency changed), the filter state kept.
    pub(super) fn retune(&mut self, filt: &[Biquad; 2]) {
        for (i, f) in self.filt.iter_mut().zip(filt) {
            let n = IntBiquad::from_float(f);
            i.b0 = n.b0;
            i.a1 = n.a1;
            i.a2 = n.a2;
        }
    }
}

/// One block's per-frame sums.
struct BlockSums {
    s1: [i32; 6],
    s2: [i64; 6],
    /// `v·i` of the three phases.
    sp: [i64; 3],
    /// `v1·v2, v2·v3, v3·v1`.
    sl: [i64; 3],
}

impl BlockSums {
    /// Hosts (64-bit cores with vector `f64`): the products in `f64` lanes, exactly the integers
    /// of the portable loop for codes below 2²⁴ (a product is below 2⁴⁸, a block sum of at most
    /// [`MAX_DECIMATION`] of them below 2⁵¹, and `f64` holds 53 bits), so the host and the device
    /// compute bit-identical sums (tests/pq_determinism.rs). Scalar `i64` products cost one
    /// multiply each (twelve per frame); here they are six two-lane vector multiplies. Beyond
    /// 24 bits the results are meaningless either way (the portable loop wraps, this saturates).
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[inline(always)]
    fn of(blk: &[[i32; 6]]) -> Self {
        const { assert!(MAX_DECIMATION <= 8) };
        let mut s1 = [0i32; 6];
        // four lanes (three phases and a zero), two vector registers per array
        let (mut vv, mut ii, mut vi, mut vn) = ([0.0f64; 4], [0.0f64; 4], [0.0f64; 4], [0.0f64; 4]);
        for f in blk {
            let [x0, x1, x2, x3, x4, x5] = f.map(f64::from);
            let v = [x0, x2, x4, 0.0];
            let i = [x1, x3, x5, 0.0];
            let n = [x2, x4, x0, 0.0];
            for (s, &c) in s1.iter_mut().zip(f) {
                *s = s.wrapping_add(c);
            }
            for k in 0..4 {
                // constant trip count over fixed-size arrays
                #[allow(clippy::indexing_slicing)]
                {
                    vv[k] += v[k] * v[k];
                    ii[k] += i[k] * i[k];
                    vi[k] += v[k] * i[k];
                    vn[k] += v[k] * n[k];
                }
            }
        }
        let [vv, ii, vi, vn] = [vv, ii, vi, vn].map(|a| a.map(exact_i64));
        Self {
            s1,
            s2: [vv[0], ii[0], vv[1], ii[1], vv[2], ii[2]],
            sp: [vi[0], vi[1], vi[2]],
            sl: [vn[0], vn[1], vn[2]],
        }
    }

    /// The device (RV32: `mul` + `mulh` per product) and other targets: exact `i64` products.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    #[inline(always)]
    fn of(blk: &[[i32; 6]]) -> Self {
        let mut out = Self {
            s1: [0; 6],
            s2: [0; 6],
            sp: [0; 3],
            sl: [0; 3],
        };
        // one phase at a time: its ten accumulators fit the registers of an RV32 core
        for p in 0..3 {
            let (kv, ki, kn) = (2 * p, 2 * p + 1, (2 * p + 2) % 6);
            let (mut sv, mut si) = (0i32, 0i32);
            let (mut vv, mut ii, mut vi, mut vn) = (0i64, 0i64, 0i64, 0i64);
            for f in blk {
                let (Some(&v), Some(&i), Some(&n)) = (f.get(kv), f.get(ki), f.get(kn)) else {
                    continue;
                };
                sv = sv.wrapping_add(v);
                si = si.wrapping_add(i);
                vv = vv.wrapping_add(wide(v, v));
                ii = ii.wrapping_add(wide(i, i));
                vi = vi.wrapping_add(wide(v, i));
                vn = vn.wrapping_add(wide(v, n));
            }
            // constant indices below 6
            #[allow(clippy::indexing_slicing)]
            {
                out.s1[kv] = sv;
                out.s1[ki] = si;
                out.s2[kv] = vv;
                out.s2[ki] = ii;
                out.sp[p] = vi;
                out.sl[p] = vn;
            }
        }
        out
    }
}

/// An integer-valued `f64` below 2⁵¹ in magnitude as `i64`, exactly (the mantissa after adding
/// 1.5·2⁵²; no saturation checks: beyond that range the result is meaningless, never undefined).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
fn exact_i64(x: f64) -> i64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2⁵²
    ((x + MAGIC).to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64)
}

#[inline(always)]
fn acc(a: &mut i64, x: i64) {
    *a = a.wrapping_add(x);
}

impl Run<i64, i64> {
    /// Adds one block's sums, its DFT terms against the gain-corrected phasor `zg`, and the phasor
    /// terms of its `d` frames (`z` is the plain phasor, for the image term).
    #[inline(always)]
    fn add_block(&mut self, b: &BlockSums, d: usize, z: (i32, i32), zg: (i32, i32)) {
        for k in 0..6 {
            // constant trip count over fixed-size arrays
            #[allow(clippy::indexing_slicing)]
            {
                let x = b.s1[k];
                acc(&mut self.s1[k], i64::from(x));
                acc(&mut self.s2[k], b.s2[k]);
                acc(&mut self.re[k], wide(x, zg.0));
                acc(&mut self.im[k], wide(x, zg.1));
            }
        }
        for p in 0..3 {
            #[allow(clippy::indexing_slicing)]
            {
                acc(&mut self.sp[2 * p], b.sp[p]);
                acc(&mut self.sl[2 * p], b.sl[p]);
            }
        }
        let n = d as i64;
        acc(&mut self.zr, i64::from(zg.0) * n);
        acc(&mut self.zi, i64::from(zg.1) * n);
        let (kr, ki) = square(z);
        acc(&mut self.kr, kr * n);
        acc(&mut self.ki, ki * n);
        self.frames = self.frames.wrapping_add(d as u32);
    }

    /// Adds one frame with its own phasor `z` (weight 1).
    fn add_frame(&mut self, f: &[i32; 6], z: (i32, i32)) {
        let s = BlockSums::of(core::slice::from_ref(f));
        self.add_block(&s, 1, z, z);
    }

    /// Adds one frame with its own phasor `z` and a weight `wq` in Q12 (`|wq| ≤ 2¹²`); the caller
    /// accounts for the weight in the half-cycle's `w`. Products are rounded to whole units, which is
    /// far below a code.
    fn add_frame_weighted(&mut self, f: &[i32; 6], z: (i32, i32), wq: i32) {
        let w = i64::from(wq);
        let scaled = |x: i64| x.wrapping_mul(w) >> WQ;
        let s = BlockSums::of(core::slice::from_ref(f));
        for k in 0..6 {
            // constant trip count over fixed-size arrays
            #[allow(clippy::indexing_slicing)]
            {
                let x = s.s1[k];
                acc(&mut self.s1[k], scaled(i64::from(x)));
                acc(&mut self.s2[k], scaled(s.s2[k]));
                // x·z < 2⁵³: drop 12 of its 30 fractional bits before the weight
                acc(&mut self.re[k], (wide(x, z.0) >> WQ).wrapping_mul(w));
                acc(&mut self.im[k], (wide(x, z.1) >> WQ).wrapping_mul(w));
            }
        }
        for p in 0..3 {
            #[allow(clippy::indexing_slicing)]
            {
                acc(&mut self.sp[2 * p], scaled(s.sp[p]));
                acc(&mut self.sl[2 * p], scaled(s.sl[p]));
            }
        }
        acc(&mut self.zr, scaled(i64::from(z.0)));
        acc(&mut self.zi, scaled(i64::from(z.1)));
        let (kr, ki) = square(z);
        acc(&mut self.kr, scaled(kr));
        acc(&mut self.ki, scaled(ki));
    }
}

/// `z²` in Q30.
#[inline(always)]
fn square(z: (i32, i32)) -> (i64, i64) {
    let re = wide(z.0, z.0).wrapping_sub(wide(z.1, z.1)) >> ZQ;
    let im = wide(z.0, z.1) >> (ZQ - 1);
    (re, im)
}

impl<S: super::Sample> Estimator<S> {
    /// Hands the integer state over to the `f64` fields the shared event code reads.
    pub(super) fn int_to_float(&mut self) {
        let ip = &self.int;
        if !ip.ready {
            return;
        }
        self.peak = f64::from(ip.peak) * ip.unit_v;
        self.zc = f64::from(ip.z.0) * DFT_UNIT;
        self.zs = f64::from(ip.z.1) * DFT_UNIT;
    }

    /// Re-derives the whole integer state from the `f64` fields (first use, calibration change).
    pub(super) fn float_to_int(&mut self) {
        let d = self.d as f64;
        let unit_v = self.scale.first().copied().unwrap_or(1.0) / (d * f64::from(1u32 << YQ));
        let ip = &mut self.int;
        ip.unit_v = unit_v;
        ip.amp = self.amp;
        ip.h = threshold(self.h_min, self.amp, unit_v);
        ip.peak = (self.peak / unit_v) as u32;
        ip.z = (quantise(self.zc, ZQ), quantise(self.zs, ZQ));
        self.int_rotations();
        let ip = &mut self.int;
        ip.zg = cmul(ip.z, (ip.inv_g, 0));
        self.int.check_from = self.check_from();
        self.int.ready = true;
    }

    /// The rotations that follow the estimated frequency.
    fn int_rotations(&mut self) {
        let d = self.d as f64;
        let ip = &mut self.int;
        ip.omega = self.omega;
        ip.rot = (quantise(self.rot_c, ZQ), quantise(self.rot_s, ZQ));
        ip.inv_g = quantise(self.inv_g, ZQ);
        let (s1, c1) = self.omega.sin_cos();
        ip.step = (quantise(c1, ZQ), quantise(-s1, ZQ));
        let centre = (d - 1.0) * 0.5;
        let (sn0, cs0) = (self.omega * (-1.0 - centre)).sin_cos();
        ip.back = (quantise(cs0, ZQ), quantise(-sn0, ZQ));
    }

    /// First block start at which the timeout / lost-sync deadline needs the exact check (which
    /// fires for a block start `s > limit`).
    fn check_from(&self) -> u64 {
        let d = self.d as f64;
        let limit = if self.synced {
            self.lost_limit + self.last_rise + 1.0 - d
        } else {
            self.win_timeout + 1.0 - d
        };
        (limit - 1.0).floor() as u64
    }
}

/// The hysteresis threshold `max(h_min, amp/4)` in detector units, rounded up.
fn threshold(h_min: f64, amp: f64, unit_v: f64) -> i32 {
    let h = h_min.max(0.25 * amp) / unit_v;
    if h.is_finite() {
        h.ceil() as i32
    } else {
        i32::MAX
    }
}

impl Estimator<i32> {
    /// [`Sample::rescale`](super::Sample::rescale): the detector's units follow the front end.
    pub(super) fn rescale_int(&mut self, before: bool) {
        if before {
            self.int_to_float();
        } else if self.int.ready {
            self.float_to_int();
        }
    }

    /// `frames.len()` is a multiple of `d`.
    pub(super) fn process_blocks_int<F: Observer>(&mut self, frames: &[[i32; 6]], cb: &mut F) {
        if !self.int.ready {
            self.float_to_int();
        }
        match self.d {
            8 => self.blocks_int::<8, F>(frames, cb),
            4 => self.blocks_int::<4, F>(frames, cb),
            2 => self.blocks_int::<2, F>(frames, cb),
            1 => self.blocks_int::<1, F>(frames, cb),
            _ => {
                let mut run = self.run;
                for blk in frames.chunks_exact(self.d) {
                    self.block_int(blk, &mut run, cb);
                }
                self.run = run;
            }
        }
    }

    fn blocks_int<const D: usize, F: Observer>(&mut self, frames: &[[i32; 6]], cb: &mut F) {
        let (blocks, _) = frames.as_chunks::<D>();
        let mut run = self.run;
        for blk in blocks {
            self.block_int(blk, &mut run, cb);
        }
        self.run = run;
    }

    #[inline(always)]
    fn block_int<F: Observer>(&mut self, blk: &[[i32; 6]], run: &mut Run<i64, i64>, cb: &mut F) {
        let d = blk.len();
        let sums = BlockSums::of(blk);
        let s = self.next_frame;
        let ip = &mut self.int;
        let [f0, f1] = &mut ip.filt;
        let y = f1.step(f0.step(sums.s1[0].wrapping_mul(1 << YQ)));
        ip.peak = ip.peak.max(y.unsigned_abs());
        let (y_prev, h) = (ip.y_prev, ip.h);
        ip.y_prev = y;
        let df = d as f64;
        let mut event = self.crossing(y_prev, y, h.saturating_neg(), h, df);
        if event.is_none() && s >= self.int.check_from {
            // the exact test, in f64 as the f32 path does it
            event = self.deadline(s as f64, df);
        }
        match event {
            None => {
                let ip = &mut self.int;
                run.add_block(&sums, d, ip.z, ip.zg);
                if run.frames >= FOLD_FRAMES {
                    self.fold(run, 1.0, 1.0);
                }
                let ip = &mut self.int;
                ip.z = cmul(ip.z, ip.rot);
                ip.zg = cmul(ip.z, (ip.inv_g, 0));
            }
            Some((ev, u)) => self.split_int(blk, ev, u, run, cb),
        }
        if let Some(last) = blk.last() {
            self.prev_frame = *last;
        }
        self.next_frame += d as u64;
    }

    /// The integer twin of the `f32` path's `split_block`: the same trapezoid weights, applied in
    /// integers (frames of weight 1 exactly, the edge frames with Q12 weights), and one fold.
    fn split_int<F: Observer>(
        &mut self,
        blk: &[[i32; 6]],
        ev: EdgeEvent,
        u: f64,
        run: &mut Run<i64, i64>,
        cb: &mut F,
    ) {
        let n = blk.len() + 1;
        // slot 0 is the previous block's last frame; one phasor per slot
        let mut zk = [(0i32, 0i32); MAX_DECIMATION + 1];
        let mut z = cmul(self.int.z, self.int.back);
        for slot in zk.iter_mut().take(n) {
            *slot = z;
            z = cmul(z, self.int.step);
        }
        let rel = u - 1.0;
        let n0 = rel.floor();
        let beta = rel - n0;
        let weight = |j: usize| pre_weight(j as f64 - 1.0, n0, beta);
        let prev = self.prev_frame;
        let frame = |j: usize| {
            if j == 0 { Some(&prev) } else { blk.get(j - 1) }
        };
        for j in 0..n {
            // the previous frame was already counted with weight 1
            let w = weight(j) - if j == 0 { 1.0 } else { 0.0 };
            if let (Some(f), Some(z)) = (frame(j), zk.get(j)) {
                self.add_weighted(run, f, *z, w);
            }
        }
        self.fold(run, 1.0, 1.0);
        self.peak = f64::from(self.int.peak) * self.int.unit_v;
        let t = self.next_frame as f64 - 1.0 + u;
        self.handle_event(ev, t, cb);
        for j in 0..n {
            if let (Some(f), Some(z)) = (frame(j), zk.get(j)) {
                self.add_weighted(run, f, *z, 1.0 - weight(j));
            }
        }
        self.after_event();
        // keep the phasor unit length (one Newton step for 1/|z|: |z| is within 1e-6 of 1) and
        // advance it to the next block's centre with the rotation the event may have changed
        let ip = &mut self.int;
        let m2 = wide(ip.z.0, ip.z.0).wrapping_add(wide(ip.z.1, ip.z.1)) >> ZQ;
        let k = ((3i64 << ZQ) - m2) >> 1;
        ip.z = cmul(ip.z, (k as i32, 0));
        ip.z = cmul(ip.z, ip.rot);
        ip.zg = cmul(ip.z, (ip.inv_g, 0));
    }

    /// Brings the integer state up to date with what an event changed in the `f64` fields.
    fn after_event(&mut self) {
        if self.omega != self.int.omega {
            self.int_rotations();
        }
        let ip = &mut self.int;
        if self.amp != ip.amp {
            ip.amp = self.amp;
            ip.h = threshold(self.h_min, self.amp, ip.unit_v);
        }
        if self.peak == 0.0 {
            ip.peak = 0;
        }
        self.int.check_from = self.check_from();
    }

    /// Adds frame `f` with weight `w` (`−1 ≤ w ≤ 1`) into `run`, and a fractional weight into the
    /// half-cycle's `w` (the fold adds only whole frames).
    fn add_weighted(&mut self, run: &mut Run<i64, i64>, f: &[i32; 6], z: (i32, i32), w: f64) {
        if w == 1.0 {
            run.add_frame(f, z);
            return;
        }
        let wq = quantise(w, WQ);
        if wq != 0 {
            run.add_frame_weighted(f, z, wq);
            self.half.w += f64::from(wq) / f64::from(1u32 << WQ);
        }
    }
}
