//! Where the outputs go ([`PqSink`]) and where the flickermeter plugs in ([`FlickerSink`],
//! [`PqFlicker`]).

use super::flicker;
use super::record::{NominalValues, PqRecord, VoltageEvent};
use crate::dsp::estimator::Window;

/// Receives the pipeline's outputs as they complete (all methods optional).
pub trait PqSink {
    /// A classic estimator window (energy, getPower…), in order.
    fn window(&mut self, _window: &Window) {}
    /// A completed basic interval.
    fn basic(&mut self, _record: &PqRecord) {}
    /// A completed 3-s, 10-min or 2-h aggregate.
    fn aggregate(&mut self, _record: &PqRecord) {}
    /// An ended event.
    fn event(&mut self, _event: &VoltageEvent) {}
}

impl PqSink for () {}

/// Where the flickermeter plugs in: the pipeline pushes each phase's voltage decimated to
/// [`Pq::flicker_rate_hz`](super::Pq::flicker_rate_hz) and asks for Pst at every 10-min clock
/// tick. IEC 61000-4-15 needs nothing above ~100 Hz of the input beyond the carrier, so the rate
/// is chosen in 800..=1600 Hz where the input rate allows.
///
/// The decimation is the mean of each block of whole input frames (integer sums for codes, `f32`
/// for volts; one `f32` per output sample). That mean is the anti-alias filter: a boxcar of
/// `D` frames has its nulls on every multiple of the output rate, exactly where the components
/// that would fold onto the flicker band (carrier ± modulation, mirrored) sit, so the unfiltered
/// sidebands of rectangular modulation alias only through the boxcar's small response next to
/// its nulls. Table 5 of IEC 61000-4-15 through the pipeline, with rectangular modulation
/// generated at the input rate (tests/pq_flicker_pipeline.rs): within 0.8 % (230 V/50 Hz) and
/// 1.7 % (120 V/60 Hz) at 32 kHz and 8 kHz, against ±5 %.
pub trait FlickerSink {
    /// One voltage sample of `phase` (0..3), volts, at
    /// [`Pq::flicker_rate_hz`](super::Pq::flicker_rate_hz).
    fn push(&mut self, phase: usize, voltage_v: f32);
    /// The Pst of the 10-min interval that just ended for `phase`, and start the next one.
    fn take_pst(&mut self, _phase: usize) -> Option<f32> {
        None
    }
    /// The nominal values were decided (or changed): the lamp model follows Udin (230 V model for
    /// Udin ≥ 200 V, 120 V model below), the filters the frequency.
    fn set_nominal(&mut self, _nominal: &NominalValues) {}
}

/// No flickermeter: Pst/Plt stay `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFlicker;

impl FlickerSink for NoFlicker {
    fn push(&mut self, _phase: usize, _voltage_v: f32) {}
}

/// The IEC 61000-4-15 flickermeter ([`flicker`]) behind the [`FlickerSink`] hook: one
/// [`Flickermeter`](flicker::Flickermeter) and one [`PstClassifier`](flicker::PstClassifier) per
/// phase, (re)built with the lamp model and filters of the nominal values when they are decided.
/// Use it as `Pq::with_flicker(config, PqFlicker::new(config.rate_hz))`.
#[derive(Debug, Clone)]
pub struct PqFlicker {
    config: flicker::FlickerConfig,
    /// Built at construction (the classifiers' counts are allocated once, here); the meters are
    /// replaced when the nominal values are decided, which allocates nothing.
    phases: [(flicker::Flickermeter, flicker::PstClassifier); 3],
    /// The nominal values are known: before that nothing is pushed.
    ready: bool,
}

impl PqFlicker {
    /// A hook for a pipeline at `rate_hz` (it is fed at
    /// [`Pq::flicker_rate_hz`](super::Pq::flicker_rate_hz) of that rate).
    /// `None` when the flickermeter rejects that rate.
    pub fn new(rate_hz: u32) -> Option<Self> {
        let config = flicker::FlickerConfig {
            input_rate_hz: rate_hz / flicker_decimation(rate_hz),
            nominal_hz: 50,
            lamp: flicker::Lamp::V230,
        };
        let meter = flicker::Flickermeter::new(config).ok()?;
        Some(Self {
            config,
            phases: core::array::from_fn(|_| (meter.clone(), flicker::PstClassifier::new())),
            ready: false,
        })
    }

    /// The meter of `phase` (0..3).
    pub fn meter(&self, phase: usize) -> Option<&flicker::Flickermeter> {
        self.phases.get(phase).map(|(m, _)| m)
    }
}

impl FlickerSink for PqFlicker {
    #[inline]
    fn push(&mut self, phase: usize, voltage_v: f32) {
        if !self.ready {
            return;
        }
        if let Some((m, c)) = self.phases.get_mut(phase) {
            m.push(voltage_v);
            if let Some(p) = m.take_classifier_sample() {
                c.add(p);
            }
        }
    }

    fn take_pst(&mut self, phase: usize) -> Option<f32> {
        let (_, c) = self.phases.get_mut(phase)?;
        let pst = c.pst();
        c.reset();
        pst
    }

    fn set_nominal(&mut self, nominal: &NominalValues) {
        let cfg = flicker::FlickerConfig {
            nominal_hz: nominal.frequency_hz,
            lamp: flicker::Lamp::for_nominal_voltage(nominal.voltage_v),
            ..self.config
        };
        if let Ok(meter) = flicker::Flickermeter::new(cfg) {
            for (m, c) in &mut self.phases {
                *m = meter.clone();
                c.reset();
            }
            self.config = cfg;
            self.ready = true;
        }
    }
}

/// Input frames per flicker sample: the largest divisor of the rate that leaves ≥ 800 Hz (and the
/// first that reaches ≤ 1600 Hz).
pub(super) fn flicker_decimation(rate_hz: u32) -> u32 {
    let mut best = 1;
    for d in 1..=rate_hz / 800 {
        if rate_hz.is_multiple_of(d) {
            best = d;
            if rate_hz / d <= 1600 {
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flicker_rates() {
        for (rate, d) in [
            (32000, 20),
            (16000, 10),
            (8000, 5),
            (7000, 5),
            (4000, 4),
            (1000, 1),
        ] {
            assert_eq!(flicker_decimation(rate), d, "{rate}");
            assert!((800..=1600).contains(&(rate / d)));
        }
        // a prime rate keeps every sample (still within the flickermeter's 800..=32000 Hz)
        assert_eq!(flicker_decimation(12007), 1);
    }
}
