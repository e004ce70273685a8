//! The sample pump: the synthetic grid, sampled in real time on the host clock.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use crate::device::Instant;
use crate::sim::cli::Args;

/// The rate of the simulated metering front end (the ADE9000's waveform rate).
pub const SOURCE_RATE_HZ: u32 = 32_000;
/// Most samples handed to the engine per block.
const MAX_BLOCK: u64 = 1024;
/// After a stall longer than this, samples are skipped (as an overflowing ADC FIFO would) instead of
/// being generated in a burst.
const MAX_BACKLOG_S: u64 = 1;

/// Produces the grid's samples as real time passes.
#[derive(Debug)]
pub struct GridSource {
    grid: Synth,
    t0: Instant,
    index: u64,
}

impl GridSource {
    /// Starts the clock of the source at `t0`.
    pub fn new(args: &Args, t0: Instant) -> Result<Self, String> {
        Ok(GridSource {
            grid: Synth::new(args)?,
            t0,
            index: 0,
        })
    }

    /// Samples per second per channel.
    pub fn rate_hz(&self) -> u32 {
        SOURCE_RATE_HZ
    }

    fn instant_of(&self, index: u64) -> Instant {
        let rate = u64::from(SOURCE_RATE_HZ);
        let us = index / rate * 1_000_000 + (index % rate) * 1_000_000 / rate;
        Instant::from_micros(self.t0.as_micros().saturating_add(us))
    }

    /// Fills `out` with the next block of interleaved samples due by `now` and returns the instant of its
    /// first sample, or `None` when no sample is due yet.
    pub fn next_block(&mut self, now: Instant, out: &mut Vec<f32>) -> Option<Instant> {
        let rate = u64::from(SOURCE_RATE_HZ);
        let elapsed_us = now.as_micros().saturating_sub(self.t0.as_micros());
        let due = elapsed_us / 1_000_000 * rate + (elapsed_us % 1_000_000) * rate / 1_000_000;
        if due <= self.index {
            return None;
        }
        if due - self.index > MAX_BACKLOG_S * rate {
            self.index = due - rate / 10;
        }
        let n = (due - self.index).min(MAX_BLOCK);
        let start = self.instant_of(self.index);
        out.clear();
        out.resize(usize::try_from(n).unwrap_or(0) * 6, 0.0);
        self.grid.fill(self.index, out);
        self.index += n;
        Some(start)
    }
}

/// Stand-in synthesizer until `dsp::synth::Grid` lands (same signal model).
#[derive(Debug)]
struct Synth {
    v_peak: f64,
    f_hz: f64,
    i_peak: [f64; 3],
    phi_rad: [f64; 3],
    harmonics: Vec<(f64, f64)>,
    noise: f64,
    rng: u64,
}

impl Synth {
    fn new(args: &Args) -> Result<Self, String> {
        let s2 = core::f64::consts::SQRT_2;
        Ok(Synth {
            v_peak: f64::from(args.voltage_v) * s2,
            f_hz: f64::from(args.frequency_hz),
            i_peak: args.current_a.map(|a| f64::from(a) * s2),
            phi_rad: args.phase_deg.map(|d| f64::from(d).to_radians()),
            harmonics: args
                .harmonics
                .iter()
                .map(|h| (f64::from(h.order), f64::from(h.rel)))
                .collect(),
            noise: f64::from(args.noise_rel),
            rng: args.seed ^ 0x9E37_79B9_7F4A_7C15,
        })
    }

    fn gauss(&mut self) -> f64 {
        let mut u = || {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            ((self.rng >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (a, b) = (u(), u());
        (-2.0 * a.ln()).sqrt() * (2.0 * core::f64::consts::PI * b).cos()
    }

    fn fill(&mut self, start: u64, out: &mut [f32]) {
        let rate = f64::from(SOURCE_RATE_HZ);
        let tau = 2.0 * core::f64::consts::PI;
        for (k, s) in out.chunks_exact_mut(6).enumerate() {
            let t = (start + k as u64) as f64 / rate;
            let wt = tau * (self.f_hz * t).fract();
            for (p, pair) in s.chunks_exact_mut(2).enumerate() {
                let shift = tau * p as f64 / 3.0;
                let th = wt - shift;
                let phi = self.phi_rad.get(p).copied().unwrap_or(0.0);
                let ip = self.i_peak.get(p).copied().unwrap_or(0.0);
                let mut v = self.v_peak * th.sin();
                let mut i = ip * (th - phi).sin();
                for &(h, rel) in &self.harmonics {
                    i += ip * rel * (h * (th - phi)).sin();
                }
                if self.noise > 0.0 {
                    v += self.v_peak * self.noise * self.gauss();
                    i += ip * self.noise * self.gauss();
                }
                if let [a, b] = pair {
                    *a = v as f32;
                    *b = i as f32;
                }
            }
        }
    }
}
