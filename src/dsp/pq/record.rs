//! What the pipeline reports: interval records ([`PqRecord`]) and ended events ([`VoltageEvent`]).

use super::events::VoltageEventKind;
use super::spectrum::HARMONICS;
#[allow(unused_imports)] // inherent float methods shadow it with `std`
use num_traits::Float;

/// Below this fundamental, a voltage THD is undefined, volts.
pub(crate) const MIN_FUNDAMENTAL_V: f32 = 1.0;
/// Below this fundamental, a current THD is undefined, amps.
pub(crate) const MIN_FUNDAMENTAL_A: f32 = 1e-3;

/// Aggregation interval of a [`PqRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Interval {
    /// One basic interval, 10/12 cycles (`"200ms"`).
    Basic,
    /// 150/180 cycles (`"3s"`), re-synchronised on every 10-min tick.
    ThreeSecond,
    /// 10 min aligned to the clock (`"10min"`).
    TenMinute,
    /// 2 h = 12 × 10 min, aligned to even hours of the clock (`"2h"`).
    TwoHour,
}

impl Interval {
    /// The protocol's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Basic => "200ms",
            Self::ThreeSecond => "3s",
            Self::TenMinute => "10min",
            Self::TwoHour => "2h",
        }
    }
    pub(super) const fn index(self) -> usize {
        match self {
            Self::Basic => 0,
            Self::ThreeSecond => 1,
            Self::TenMinute => 2,
            Self::TwoHour => 3,
        }
    }
}

/// The nominal values in force, as measured or configured (the wire object `nominal` is
/// [`wire::pq::Nominal`](crate::wire::pq::Nominal), which carries no `auto` flags).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NominalValues {
    /// Declared voltage Udin, volts.
    pub voltage_v: f32,
    /// Nominal frequency, Hz.
    pub frequency_hz: u32,
    /// Udin was detected, not configured.
    pub voltage_auto: bool,
    /// The frequency was detected, not configured.
    pub frequency_auto: bool,
}

/// One completed interval: a basic interval or an aggregate (docs/protocol.md §11 `getPQ`; the JSON
/// shape lives in the wire layer).
#[derive(Debug, Clone, PartialEq)]
pub struct PqRecord {
    /// Which interval.
    pub interval: Interval,
    /// Start of the first basic interval, Unix seconds.
    pub start_unix_s: f64,
    /// End of the last basic interval, Unix seconds.
    pub end_unix_s: f64,
    /// A dip, swell or interruption was in progress during the interval.
    pub flagged: bool,
    /// Every basic interval was bounded by L1 crossings (false while there is no voltage).
    pub synchronised: bool,
    /// Basic intervals aggregated (1 for a basic interval).
    pub windows: u32,
    /// Nominal values in force.
    pub nominal: NominalValues,
    /// RMS voltage per phase (RMS of the basic values), volts.
    pub voltage_v: [f32; 3],
    /// Smallest basic value per phase, volts.
    pub voltage_min_v: [f32; 3],
    /// Largest basic value per phase, volts.
    pub voltage_max_v: [f32; 3],
    /// The last IEC 10-s frequency, Hz; `None` before the first.
    pub frequency_hz: Option<f32>,
    /// Zero-sequence unbalance `|U₀|/|U₁|`, percent; `None` without three voltages.
    pub u0_pct: Option<f32>,
    /// Negative-sequence unbalance `|U₂|/|U₁|`, percent.
    pub u2_pct: Option<f32>,
    /// THD of the voltages over subgroups 2..=50, percent; `None` without a fundamental.
    pub thd_v_pct: [Option<f32>; 3],
    /// THD of the currents, percent.
    pub thd_i_pct: [Option<f32>; 3],
    /// Harmonic subgroups H1..H50 of the voltages (index 0 = H1), volts RMS.
    pub harmonics_v: [[f32; HARMONICS]; 3],
    /// Harmonic subgroups of the currents, amps RMS.
    pub harmonics_i_a: [[f32; HARMONICS]; 3],
    /// Short-term flicker severity (10-min records, when a [`FlickerSink`](super::FlickerSink) provides it).
    pub pst: [Option<f32>; 3],
    /// Long-term flicker severity (2-h records, from twelve Pst).
    pub plt: [Option<f32>; 3],
    /// Counter of records of this interval, from 0.
    pub sequence: u64,
}

impl PqRecord {
    pub(super) fn empty(nominal: NominalValues) -> Self {
        Self {
            interval: Interval::Basic,
            start_unix_s: 0.0,
            end_unix_s: 0.0,
            flagged: false,
            synchronised: false,
            windows: 1,
            nominal,
            voltage_v: [0.0; 3],
            voltage_min_v: [0.0; 3],
            voltage_max_v: [0.0; 3],
            frequency_hz: None,
            u0_pct: None,
            u2_pct: None,
            thd_v_pct: [None; 3],
            thd_i_pct: [None; 3],
            harmonics_v: [[0.0; HARMONICS]; 3],
            harmonics_i_a: [[0.0; HARMONICS]; 3],
            pst: [None; 3],
            plt: [None; 3],
            sequence: 0,
        }
    }
}

/// THD over subgroups 2..=50 in percent of H1, per phase; `None` when H1 < `min`.
pub(crate) fn thd_pct(h: &[[f32; HARMONICS]; 3], min: f32) -> [Option<f32>; 3] {
    (*h).map(|row| {
        let h1 = row.first().copied().unwrap_or(0.0);
        let rest: f32 = row.iter().skip(1).map(|x| x * x).sum();
        (h1 >= min).then(|| 100.0 * rest.sqrt() / h1)
    })
}

/// An ended voltage event as the pipeline measures it (docs/protocol.md §11 `getEvents`; the device
/// numbers them). Its protocol object, with an id and a phase set, is
/// [`wire::pq::PqEvent`](crate::wire::pq::PqEvent).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VoltageEvent {
    /// Dip, swell, interruption or RVC.
    pub kind: VoltageEventKind,
    /// Phases involved (`[true, false, true]` = L1 and L3).
    pub phases: [bool; 3],
    /// Start, Unix seconds.
    pub start_unix_s: f64,
    /// Duration, seconds.
    pub duration_s: f64,
    /// Lowest (dip, interruption) or highest (swell) Urms(½); for an RVC the Urms(½) of the
    /// largest deviation, volts.
    pub extreme_v: f32,
    /// Udin at the time, volts.
    pub reference_v: f32,
    /// RVC only: largest |Urms(½) − mean before|, volts.
    pub delta_max_v: Option<f32>,
    /// RVC only: |mean after − mean before|, volts.
    pub delta_steady_v: Option<f32>,
}
