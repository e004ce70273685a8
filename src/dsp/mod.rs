//! Metering DSP: from interleaved voltage/current samples to everything the protocol reports.
//!
//! Pure numerics (`no_std`, no clock, no I/O, no allocation per sample). The pieces:
//!
//! | module | what |
//! |---|---|
//! | [`estimator`] | cycle-synchronous windows: RMS, P, Q₁, S, N, PF, phase, THD, frequency, line-to-line voltages, half-cycle RMS |
//! | [`energy`] | integer import/export energy registers with snapshot/restore |
//! | [`resample`] | anti-aliased rate conversion for the `sample` streams (any rate 1..=32000 Hz) |
//! | [`synth`] | a deterministic 3-phase signal generator for the simulator and the tests |
//! | [`fixed`] | the integer (i32 code, i64 sum) variant of the per-sample kernel for FPU-less MCUs |
//! | [`pq`] | power quality (IEC 61000-4-30): basic intervals, harmonic subgroups, unbalance, Urms(½) events, 10-s frequency, 3 s / 10 min / 2 h aggregation, flickermeter |
//!
//! # Why cycle-synchronous windows
//! An RMS or mean over a window that is not a whole number of line cycles carries a ripple term
//! (`sin 2ωt` does not integrate to zero). A fixed 2000-sample window at 10 kHz is 10 cycles at 50 Hz
//! but 9.9 cycles at 49.5 Hz, which already moves a reading by up to ~1 % (and P by more at low PF).
//! The [`Estimator`] therefore closes every window on a positive-going zero crossing of the L1 voltage
//! fundamental, located between samples by interpolation, after N whole cycles (default 10 at 50 Hz,
//! 12 at 60 Hz — the ~200 ms aggregation interval of IEC 61000-4-30). The samples cut by a window edge
//! contribute with the fraction of the sample period that lies inside the window, so windows tile the
//! time axis exactly and no sample is counted twice or lost (which the energy registers rely on).
//! All three phases use the L1 boundaries: any whole number of L1 cycles is also a whole number of
//! L2/L3 cycles.
//!
//! # What "reactive" means here
//! With harmonics there is no single "reactive power". This crate reports, per IEEE 1459-2010:
//! * active power `P = mean(v·i)` (all frequencies; what the energy register integrates),
//! * apparent power `S = Vrms·Irms` (true RMS values),
//! * **fundamental reactive power `Q₁ = V₁·I₁·sin(θv₁ − θi₁)`** — computed from the fundamental phasors
//!   of voltage and current; positive when the current lags (inductive load). This is what
//!   `getPower.reactivePower` and the `q` sample channel carry, because it is the quantity that
//!   reactive-energy meters (IEC 62053-23/-24) and power-factor correction act on, and it is well
//!   defined for distorted waveforms, unlike Budeanu's Q,
//! * nonactive power `N = √(S² − P²)`, which contains Q₁ plus all distortion power,
//! * `PF = P/S` (signed like P) and phase `φ = atan2(Q₁, P₁)` in degrees.
//!
//! # DC removal
//! Each window subtracts its own mean from every channel before the RMS, power and phasor sums are
//! formed (`Σx² − (Σx)²/n` on exact sums). Unlike a running high-pass filter this has no settling
//! time and no gain or phase error at the line frequency (a one-pole DC blocker costs ~0.16 % of P).
//!
//! Undefined results (no voltage, no current, division by zero) are `None`, never NaN; NaN or ∞
//! samples never produce NaN results and never stall the crossing detector.
//!
//! # Footprint
//! The whole three-phase [`Estimator`] is one plain struct of ≈2 KB (≈670 bytes per phase, see
//! [`Estimator::state_size_bytes`]) and never allocates. [`Resampler`] allocates its tables and delay
//! lines once at construction.

pub mod energy;
pub mod estimator;
pub mod fixed;
pub mod pq;
pub mod resample;
pub mod synth;

pub use energy::{EnergyMeter, EnergySnapshot};
pub use estimator::{
    ConfigError, Estimator, EstimatorConfig, HalfCycleRms, Measurement, Observer, PhaseMode,
    Sample, Window,
};
pub use resample::{Resampler, ResamplerError};
pub use synth::{Grid, GridConfig, Harmonic, PhaseSignal};
