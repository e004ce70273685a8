//! The simulator's metering front end: the synthetic grid, sampled in real time on a [`Clock`], as
//! the engine's [`SampleSource`]. The grid can misbehave ([`disturbance`]): per-phase magnitudes,
//! voltage harmonics, dips, swells, interruptions and flicker, scheduled from the `listening on` line.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use crate::dsp::synth::{Grid, GridConfig, Harmonic, MAX_HARMONICS, PhaseSignal};
use crate::hal::{Clock, ErrorKind, ErrorType, Instant, RawBlock, SampleScale, SampleSource};
use crate::sim::cli::Args;

pub mod disturbance;

use disturbance::Disturbances;

/// The rate of the simulated metering front end (the ADE9000's waveform rate).
pub(crate) const SOURCE_RATE_HZ: u32 = 32_000;
/// Most samples handed to the engine per block.
const MAX_BLOCK: u64 = 1024;
/// After a stall longer than this, samples are skipped (as an overflowing ADC FIFO would) instead of
/// being generated in a burst.
const MAX_BACKLOG_S: u64 = 1;

/// Produces the grid's samples as the clock `C` passes.
#[derive(Debug)]
pub(crate) struct GridSource<C> {
    grid: Grid,
    disturbances: Disturbances,
    clock: C,
    t0: Instant,
    index: u64,
}

/// The clean synthetic grid the command line describes: L2 and L3 lag L1 by 120° and 240°, each
/// phase's voltage is `--voltage`'s, its current lags it by `--phase-deg`, `--harmonic` adds current
/// harmonics on top of the fundamental. What changes in time is [`disturbances`].
pub(crate) fn grid_config(args: &Args) -> Result<GridConfig, String> {
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
        voltage_rms_v: f64::from(args.voltage_v.get(k).copied().unwrap_or(0.0)),
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

/// The misbehaviour the command line asks for (`--vharmonic`, `--dip`, `--swell`, `--interrupt`,
/// `--flicker`), on the grid of [`grid_config`]; unarmed.
pub(crate) fn disturbances(args: &Args, config: &GridConfig) -> Disturbances {
    let events: Vec<_> = args
        .dips
        .iter()
        .chain(&args.swells)
        .chain(&args.interrupts)
        .copied()
        .collect();
    Disturbances::new(
        config.rate_hz,
        config.frequency_hz,
        config.phases.map(|p| p.voltage_rms_v),
        &args.vharmonics,
        &events,
        args.flicker,
    )
}

impl<C: Clock> GridSource<C> {
    /// Starts the source at the clock's current time. Scheduled disturbances wait for
    /// [`arm_schedule`](Self::arm_schedule).
    pub(crate) fn new(args: &Args, mut clock: C) -> Result<Self, String> {
        let t0 = clock.now().map_err(|e| format!("clock: {e:?}"))?;
        let config = grid_config(args)?;
        Ok(GridSource {
            disturbances: disturbances(args, &config),
            grid: Grid::new(config),
            clock,
            t0,
            index: 0,
        })
    }

    /// Makes `at` the zero of the disturbance schedule (`--dip 4s:…` starts 4 s after it): the
    /// runtime calls it when it prints `listening on`. Samples already generated are not changed.
    pub(crate) fn arm_schedule(&mut self, at: Instant) {
        let after_us = at.as_micros().saturating_sub(self.t0.as_micros());
        self.disturbances.arm(u128::from(after_us) * 1_000);
    }

    fn instant_of(&self, index: u64) -> Instant {
        let rate = u64::from(SOURCE_RATE_HZ);
        let us = index / rate * 1_000_000 + (index % rate) * 1_000_000 / rate;
        Instant::from_micros(self.t0.as_micros().saturating_add(us))
    }

    /// Fills `out` (whole frames, at most [`MAX_BLOCK`]) with the next samples due by `now`; returns
    /// the instant of the first one and the number of frames, or `None` when no sample is due yet.
    fn next_block(&mut self, now: Instant, out: &mut [f32]) -> Option<(Instant, usize)> {
        let rate = u64::from(SOURCE_RATE_HZ);
        let elapsed_us = now.as_micros().saturating_sub(self.t0.as_micros());
        let due = elapsed_us / 1_000_000 * rate + (elapsed_us % 1_000_000) * rate / 1_000_000;
        if due <= self.index {
            return None;
        }
        let room = u64::try_from(out.len() / 6).unwrap_or(0).min(MAX_BLOCK);
        if room == 0 {
            return None;
        }
        let backlog = due - self.index;
        let n = backlog.min(room);
        if backlog > MAX_BACKLOG_S * rate {
            // Generated and dropped, so the waveform stays continuous in time.
            let skip = backlog - rate / 10;
            let mut left = skip;
            while left > 0 {
                let k = left.min(room);
                let len = usize::try_from(k).unwrap_or(0) * 6;
                self.grid.fill(out.get_mut(..len).unwrap_or(&mut []));
                left -= k;
            }
            self.index += skip;
            tracing::warn!("sample pump stalled: skipped {skip} samples");
        }
        let start = self.instant_of(self.index);
        let len = usize::try_from(n).unwrap_or(0) * 6;
        let block = out.get_mut(..len).unwrap_or(&mut []);
        self.grid.fill(block);
        if self.disturbances.is_active() {
            for (k, frame) in (self.index..).zip(block.chunks_exact_mut(6)) {
                self.disturbances.apply(k, frame);
            }
        }
        self.index += n;
        Some((start, len))
    }
}

impl<C> ErrorType for GridSource<C> {
    type Error = ErrorKind;
}

impl<C: Clock> SampleSource for GridSource<C> {
    type Sample = f32;
    /// The samples due by the clock's `now` (volts and amps).
    fn read(&mut self, buf: &mut [f32]) -> Result<Option<RawBlock>, ErrorKind> {
        let now = self.clock.now().map_err(|_| ErrorKind::Unavailable)?;
        Ok(self.next_block(now, buf).map(|(start, len)| RawBlock {
            rate_hz: SOURCE_RATE_HZ,
            start,
            len,
            scale: SampleScale::Physical,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A clock the test sets.
    #[derive(Clone)]
    struct Manual(std::rc::Rc<std::cell::Cell<Instant>>);
    impl ErrorType for Manual {
        type Error = ErrorKind;
    }
    impl Clock for Manual {
        fn now(&mut self) -> Result<Instant, ErrorKind> {
            Ok(self.0.get())
        }
    }

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["smartmeter-sim"];
        v.extend_from_slice(extra);
        Args::try_parse_from(v).unwrap()
    }

    fn source_at(t0: Instant) -> (GridSource<Manual>, Manual) {
        let clock = Manual(std::rc::Rc::new(std::cell::Cell::new(t0)));
        (GridSource::new(&args(&[]), clock.clone()).unwrap(), clock)
    }

    #[test]
    fn blocks_follow_the_clock_without_gaps() {
        let t0 = Instant::from_secs(1_000);
        let (mut src, clock) = source_at(t0);
        let mut buf = vec![0.0f32; 6 * 512];
        clock.0.set(t0 + core::time::Duration::from_millis(10));
        let first = src.read(&mut buf).unwrap().unwrap();
        assert_eq!(first.start, t0);
        assert_eq!(first.len, 320 * 6);
        assert_eq!(first.rate_hz, SOURCE_RATE_HZ);
        assert!(src.read(&mut buf).unwrap().is_none());
        let mut total = 320u64;
        clock.0.set(t0 + core::time::Duration::from_millis(500));
        while let Some(b) = src.read(&mut buf).unwrap() {
            assert_eq!(b.start, src.instant_of(total), "consecutive starts");
            assert!(b.len <= buf.len());
            total += (b.len / 6) as u64;
        }
        assert_eq!(total, 16_000);
    }

    #[test]
    fn a_long_stall_skips_instead_of_bursting() {
        let t0 = Instant::from_secs(1_000);
        let (mut src, clock) = source_at(t0);
        let mut buf = vec![0.0f32; 6 * 512];
        let now = t0 + core::time::Duration::from_secs(5);
        clock.0.set(now);
        let b = src.read(&mut buf).unwrap().unwrap();
        // Only the last 0.1 s is delivered.
        assert_eq!(b.start, now - core::time::Duration::from_millis(100));
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
