//! The `f32` per-block path of the estimator.

use super::detector::{Biquad, EdgeEvent};
use super::sums::{FOLD_BLOCKS, LANES, Run, add_lanes, kernel, pre_weight};
use super::{Estimator, MAX_DECIMATION, Observer, Sample};
#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;

/// The `f32` per-block path: vectorised `f32` lanes, detector and phasor in `f64`.
impl Estimator<f32> {
    /// `frames.len()` is a multiple of `d`.
    pub(super) fn process_blocks_float<F: Observer>(&mut self, frames: &[[f32; 6]], cb: &mut F) {
        match self.d {
            8 => self.process_blocks_d::<8, F>(frames, cb),
            4 => self.process_blocks_d::<4, F>(frames, cb),
            2 => self.process_blocks_d::<2, F>(frames, cb),
            1 => self.process_blocks_d::<1, F>(frames, cb),
            _ => self.process_blocks_any(frames, cb),
        }
    }

    fn process_blocks_d<const D: usize, F: Observer>(&mut self, frames: &[[f32; 6]], cb: &mut F) {
        let (blocks, _) = frames.as_chunks::<D>();
        let mut run = self.run;
        // the detector's filter state lives in registers across blocks
        let mut filt = self.filt;
        for blk in blocks {
            let b1 = kernel(blk, &mut run.s2, &mut run.sp, &mut run.sl);
            self.after_kernel(blk, &b1, &mut run, &mut filt, cb);
        }
        self.filt = filt;
        self.run = run;
    }

    fn process_blocks_any<F: Observer>(&mut self, frames: &[[f32; 6]], cb: &mut F) {
        let mut run = self.run;
        let mut filt = self.filt;
        for blk in frames.chunks_exact(self.d) {
            let b1 = kernel(blk, &mut run.s2, &mut run.sp, &mut run.sl);
            self.after_kernel(blk, &b1, &mut run, &mut filt, cb);
        }
        self.filt = filt;
        self.run = run;
    }

    /// Per-block work after the per-frame sums: crossing detection, phasor, events.
    #[inline(always)]
    fn after_kernel<F: Observer>(
        &mut self,
        blk: &[[f32; 6]],
        b1: &[f32; LANES],
        run: &mut Run<f32, f32>,
        filt: &mut [Biquad; 2],
        cb: &mut F,
    ) {
        let d = blk.len();
        let df = d as f64;
        let s = self.next_frame as f64;
        let [f0, f1] = filt;
        let mut y = f1.step(f0.step(f64::from(b1[0]) * self.scale[0] / df));
        if !y.is_finite() {
            // NaN/∞ in the input must not poison the detector forever
            *f0 = f0.cleared();
            *f1 = f1.cleared();
            y = 0.0;
        }
        let ay = y.abs();
        if ay > self.peak {
            self.peak = ay;
        }
        let h = self.h_min.max(0.25 * self.amp);
        let mut event = self.crossing(self.y_prev, y, -h, h, df);
        self.y_prev = y;
        if event.is_none() {
            event = self.deadline(s, df);
        }
        match event {
            None => {
                add_lanes(&mut run.s1, b1);
                run.frames += d as u32;
                run.blocks += 1;
                let zc = self.zc as f32;
                let zs = self.zs as f32;
                for ((re, im), x) in run.re.iter_mut().zip(&mut run.im).zip(*b1) {
                    *re += x * zc;
                    *im += x * zs;
                }
                run.zr += zc;
                run.zi += zs;
                run.kr += zc * zc - zs * zs;
                let zz = zs * zc;
                run.ki += zz;
                run.ki += zz;
                if run.blocks >= FOLD_BLOCKS {
                    self.fold(run, self.d as f64, self.inv_g);
                }
            }
            Some((ev, u)) => self.split_block(blk, ev, u, run, cb),
        }
        if let Some(last) = blk.last() {
            self.prev_frame = *last;
        }
        // advance the reference phasor to the next block's centre
        let zc = self.zc * self.rot_c - self.zs * self.rot_s;
        let zs = self.zc * self.rot_s + self.zs * self.rot_c;
        self.zc = zc;
        self.zs = zs;
        self.next_frame += d as u64;
    }

    /// Handles a block containing an event at time `t = s − 1 + u` (`s` = the block's first frame,
    /// `0 ≤ u ≤ d`). The window edge cuts the piecewise-linear interpolant of the samples (the
    /// trapezoid rule with interpolated end points), so a sample next to the edge is shared between
    /// both sides with weights `1 − (1−β)²/2` and `β²/2`, β the edge's fraction past the sample.
    fn split_block<F: Observer>(
        &mut self,
        blk: &[[f32; 6]],
        ev: EdgeEvent,
        u: f64,
        run: &mut Run<f32, f32>,
        cb: &mut F,
    ) {
        // the kernel already added this block's products to `run`: take them out again (exact for
        // integers; one extra rounding of a partial sum for f32), the block is re-done per sample
        let mut s2 = [f32::default(); LANES];
        let mut sp = [f32::default(); LANES];
        let mut sl = [f32::default(); LANES];
        let _ = kernel(blk, &mut s2, &mut sp, &mut sl);
        for (a, b) in run.s2.iter_mut().zip(s2) {
            *a -= b;
        }
        for (a, b) in run.sp.iter_mut().zip(sp) {
            *a -= b;
        }
        for (a, b) in run.sl.iter_mut().zip(sl) {
            *a -= b;
        }
        self.fold(run, self.d as f64, self.inv_g);
        let mut xs = [[0.0f64; 6]; MAX_DECIMATION + 1];
        let mut zk = [(0.0f64, 0.0f64); MAX_DECIMATION + 1];
        let mut pre = [0.0f64; MAX_DECIMATION + 1];
        let centre = (blk.len() as f64 - 1.0) * 0.5;
        // u − 1 is the edge relative to the block's first frame; slot 0 is the previous frame
        let rel = u - 1.0;
        let n0 = rel.floor();
        let beta = rel - n0;
        let frames = core::iter::once(&self.prev_frame).chain(blk.iter());
        // phasor of the previous frame (k = -1), then rotated by e^{-jω} per frame
        let (sn0, cs0) = (self.omega * (-1.0 - centre)).sin_cos();
        let mut zcur = (self.zc * cs0 + self.zs * sn0, self.zs * cs0 - self.zc * sn0);
        let (s1, c1) = self.omega.sin_cos();
        for (j, (((f, x), z), wp)) in frames.zip(&mut xs).zip(&mut zk).zip(&mut pre).enumerate() {
            let k = j as f64 - 1.0;
            for ((xo, v), c) in x.iter_mut().zip(f).zip(&self.scale) {
                *xo = v.to_f64() * c;
            }
            *z = zcur;
            zcur = (zcur.0 * c1 + zcur.1 * s1, zcur.1 * c1 - zcur.0 * s1);
            *wp = pre_weight(k, n0, beta);
            // the previous frame was already counted with weight 1
            let add = if j == 0 { *wp - 1.0 } else { *wp };
            if add != 0.0 {
                self.half.add_sample(x, add, z.0, z.1);
            }
        }
        let t = self.next_frame as f64 - 1.0 + u;
        self.handle_event(ev, t, cb);
        for (x, (z, wp)) in xs.iter().zip(zk.iter().zip(&pre)).take(blk.len() + 1) {
            let wpost = 1.0 - wp;
            if wpost != 0.0 {
                self.half.add_sample(x, wpost, z.0, z.1);
            }
        }
        // keep the phasor unit length
        let m = (self.zc * self.zc + self.zs * self.zs).sqrt();
        if m > 0.0 {
            self.zc /= m;
            self.zs /= m;
        }
    }
}
