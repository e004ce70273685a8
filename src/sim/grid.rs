//! The sample pump: the synthetic grid, sampled in real time on the host clock.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use crate::dsp::synth::{Grid, GridConfig, Harmonic, MAX_HARMONICS, PhaseSignal};
use crate::hal::Instant;
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
    grid: Grid,
    t0: Instant,
    index: u64,
}

/// The synthetic grid the command line describes: L2 and L3 lag L1 by 120° and 240°, each phase's
/// current lags its voltage by `--phase-deg`, `--harmonic` adds current harmonics on top of the
/// fundamental.
pub fn grid_config(args: &Args) -> Result<GridConfig, String> {
    let mut current_harmonics = heapless::Vec::new();
    for h in &args.harmonics {
        current_harmonics
            .push(Harmonic {
                order: h.order,
                relative: f64::from(h.rel),
                phase_deg: 0.0,
            })
            .map_err(|_| format!("at most {MAX_HARMONICS} harmonics"))?;
    }
    let phase = |k: usize| PhaseSignal {
        voltage_rms_v: f64::from(args.voltage_v),
        current_rms_a: f64::from(args.current_a.get(k).copied().unwrap_or(0.0)),
        angle_deg: f64::from(args.phase_deg.get(k).copied().unwrap_or(0.0)),
    };
    if !(args.frequency_hz > 0.0 && args.frequency_hz < 1000.0) {
        return Err(format!("frequency {} Hz out of range", args.frequency_hz));
    }
    Ok(GridConfig {
        rate_hz: SOURCE_RATE_HZ,
        frequency_hz: f64::from(args.frequency_hz),
        phases: [phase(0), phase(1), phase(2)],
        current_harmonics,
        noise_rel: f64::from(args.noise_rel),
        seed: args.seed,
        ..GridConfig::default()
    })
}

impl GridSource {
    /// Starts the clock of the source at `t0`.
    pub fn new(args: &Args, t0: Instant) -> Result<Self, String> {
        Ok(GridSource {
            grid: Grid::new(grid_config(args)?),
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
        let backlog = due - self.index;
        let n = backlog.min(MAX_BLOCK);
        out.clear();
        out.resize(usize::try_from(n).unwrap_or(0) * 6, 0.0);
        if backlog > MAX_BACKLOG_S * rate {
            // Generated and dropped, so the waveform stays continuous in time.
            let skip = backlog - rate / 10;
            let mut left = skip;
            while left > 0 {
                let k = left.min(n);
                let len = usize::try_from(k).unwrap_or(0) * 6;
                self.grid.fill(out.get_mut(..len).unwrap_or(&mut []));
                left -= k;
            }
            self.index += skip;
            tracing::warn!("sample pump stalled: skipped {skip} samples");
        }
        let start = self.instant_of(self.index);
        self.grid.fill(out);
        self.index += n;
        Some(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["smartmeter-sim"];
        v.extend_from_slice(extra);
        Args::try_parse_from(v).unwrap()
    }

    #[test]
    fn blocks_follow_the_clock_without_gaps() {
        let t0 = Instant::from_secs(1_000);
        let mut src = GridSource::new(&args(&[]), t0).unwrap();
        let mut buf = Vec::new();
        let first = src
            .next_block(t0 + core::time::Duration::from_millis(10), &mut buf)
            .unwrap();
        assert_eq!(first, t0);
        assert_eq!(buf.len(), 320 * 6);
        assert!(
            src.next_block(t0 + core::time::Duration::from_millis(10), &mut buf)
                .is_none()
        );
        let mut total = 320u64;
        let now = t0 + core::time::Duration::from_millis(500);
        while let Some(start) = src.next_block(now, &mut buf) {
            assert_eq!(start, src.instant_of(total), "consecutive starts");
            total += (buf.len() / 6) as u64;
        }
        assert_eq!(total, 16_000);
    }

    #[test]
    fn a_long_stall_skips_instead_of_bursting() {
        let t0 = Instant::from_secs(1_000);
        let mut src = GridSource::new(&args(&[]), t0).unwrap();
        let mut buf = Vec::new();
        let now = t0 + core::time::Duration::from_secs(5);
        let start = src.next_block(now, &mut buf).unwrap();
        // Only the last 0.1 s is delivered.
        assert_eq!(start, now - core::time::Duration::from_millis(100));
    }

    #[test]
    fn options_map_onto_the_grid() {
        let c = grid_config(&args(&[
            "--current",
            "1,2,3",
            "--phase-deg",
            "-5,0,5",
            "--harmonic",
            "3:0.2",
        ]))
        .unwrap();
        assert_eq!(c.rate_hz, SOURCE_RATE_HZ);
        assert_eq!(c.phases.map(|p| p.current_rms_a), [1.0, 2.0, 3.0]);
        assert_eq!(c.phases.map(|p| p.angle_deg), [-5.0, 0.0, 5.0]);
        assert_eq!(c.current_harmonics.len(), 1);
        let many: Vec<&str> = (2..=11)
            .flat_map(|k| {
                [
                    "--harmonic",
                    Box::leak(format!("{k}:0.01").into_boxed_str()),
                ]
            })
            .collect();
        assert!(grid_config(&args(&many)).is_err());
    }
}
