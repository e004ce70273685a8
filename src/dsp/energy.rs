//! Energy registers: per phase import/export active energy and lagging/leading reactive energy.
//!
//! Integer millijoule counters with a carried sub-millijoule remainder: nothing is lost however long
//! the meter runs (an `f32` Wh register stops counting at 131 kWh, when 0.05 Wh per window falls below
//! half an ULP; an `i64` mJ register lasts 2.9 TWh). Each window adds `P·Δt`; positive P goes to
//! import, negative P to export. `net = import − export` is what `getEnergy` reports.
//!
//! ```
//! use smartmeter::dsp::energy::EnergyMeter;
//! let mut m = EnergyMeter::new();
//! m.accumulate_power([1000.0, -500.0, 0.0], [0.0; 3], 3600.0);
//! assert_eq!(m.net_wh(), [1000.0, -500.0, 0.0]);
//! let snap = m.snapshot();
//! let mut restored = EnergyMeter::new();
//! restored.restore(&snap);
//! assert_eq!(restored.import_wh(), m.import_wh());
//! ```

use super::estimator::Window;
use crate::text::Shortest;
use serde::{Deserialize, Serialize};

const MJ_PER_WH: f64 = 3_600_000.0;

/// Why [`EnergyMeter::reset_to`] refused a value: its `Display` is the `<reason>` of the
/// protocol's `Invalid energy: <reason>` reply.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EnergyError {
    /// Not a finite number.
    #[error("{} is not a finite number", Shortest(*.value_wh))]
    NotFinite {
        /// The value as given, Wh.
        value_wh: f64,
    },
    /// Beyond what the 64-bit millijoule registers hold (±[`EnergyMeter::MAX_RESET_WH`]).
    #[error("{} Wh is out of range (at most 2.5e12 Wh in magnitude)", Shortest(*.value_wh))]
    OutOfRange {
        /// The value as given, Wh.
        value_wh: f64,
    },
}

/// One integer register with a carried fractional remainder.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Register {
    mj: i64,
    /// Not yet counted energy, millijoules, in `[0, 1)`.
    rem_mj: f64,
}

impl Register {
    #[inline]
    fn add_mj(&mut self, e_mj: f64) {
        if !(e_mj.is_finite() && e_mj > 0.0) {
            return;
        }
        let total = self.rem_mj + e_mj;
        // floor without libm: total is positive
        let whole = total as i64;
        self.rem_mj = total - whole as f64;
        self.mj = self.mj.saturating_add(whole);
    }
    fn wh(&self) -> f64 {
        (self.mj as f64 + self.rem_mj) / MJ_PER_WH
    }
}

/// The persistent form: plain integers (millijoules), serde-friendly for any store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnergySnapshot {
    /// Imported active energy per phase, mJ.
    pub import_mj: [i64; 3],
    /// Exported active energy per phase, mJ.
    pub export_mj: [i64; 3],
    /// Lagging (inductive, Q₁ > 0) reactive energy per phase, mvarh·3.6 (= mJ equivalent).
    pub reactive_lag_mj: [i64; 3],
    /// Leading (capacitive, Q₁ < 0) reactive energy per phase, mJ equivalent.
    pub reactive_lead_mj: [i64; 3],
}

/// Per phase energy registers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EnergyMeter {
    import: [Register; 3],
    export: [Register; 3],
    lag: [Register; 3],
    lead: [Register; 3],
}

impl EnergyMeter {
    /// All registers zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one window's energy (active power and Q₁ times its duration).
    pub fn accumulate(&mut self, window: &Window) {
        let mut p = [0.0f64; 3];
        let mut q = [0.0f64; 3];
        for ((m, p), q) in window.phases.iter().zip(p.iter_mut()).zip(q.iter_mut()) {
            *p = f64::from(m.active_power_w);
            *q = f64::from(m.reactive_power_var);
        }
        self.accumulate_power(p, q, window.duration_s);
    }

    /// Adds `power·duration` per phase: active power (W) and fundamental reactive power (var) held
    /// for `duration_s` seconds. Non-finite or negative durations are ignored.
    #[inline]
    pub fn accumulate_power(
        &mut self,
        active_w: [f64; 3],
        reactive_var: [f64; 3],
        duration_s: f64,
    ) {
        if !(duration_s.is_finite() && duration_s > 0.0) {
            return;
        }
        let k = duration_s * 1000.0;
        for p in 0..3 {
            let (Some(pw), Some(qv)) = (active_w.get(p), reactive_var.get(p)) else {
                continue;
            };
            let (Some(imp), Some(exp), Some(lag), Some(lead)) = (
                self.import.get_mut(p),
                self.export.get_mut(p),
                self.lag.get_mut(p),
                self.lead.get_mut(p),
            ) else {
                continue;
            };
            let e = pw * k;
            if e >= 0.0 {
                imp.add_mj(e);
            } else {
                exp.add_mj(-e);
            }
            let r = qv * k;
            if r >= 0.0 {
                lag.add_mj(r);
            } else {
                lead.add_mj(-r);
            }
        }
    }

    /// Imported active energy per phase, Wh.
    pub fn import_wh(&self) -> [f64; 3] {
        self.import.map(|r| r.wh())
    }

    /// Exported active energy per phase, Wh.
    pub fn export_wh(&self) -> [f64; 3] {
        self.export.map(|r| r.wh())
    }

    /// Net active energy (import − export) per phase, Wh — what `getEnergy` reports.
    pub fn net_wh(&self) -> [f64; 3] {
        let mut out = [0.0; 3];
        for ((o, i), e) in out.iter_mut().zip(&self.import).zip(&self.export) {
            *o = ((i.mj - e.mj) as f64 + (i.rem_mj - e.rem_mj)) / MJ_PER_WH;
        }
        out
    }

    /// Lagging (inductive) reactive energy per phase, varh.
    pub fn reactive_lag_varh(&self) -> [f64; 3] {
        self.lag.map(|r| r.wh())
    }

    /// Leading (capacitive) reactive energy per phase, varh.
    pub fn reactive_lead_varh(&self) -> [f64; 3] {
        self.lead.map(|r| r.wh())
    }

    /// The registers as integers (sub-millijoule remainders are dropped).
    pub fn snapshot(&self) -> EnergySnapshot {
        EnergySnapshot {
            import_mj: self.import.map(|r| r.mj),
            export_mj: self.export.map(|r| r.mj),
            reactive_lag_mj: self.lag.map(|r| r.mj),
            reactive_lead_mj: self.lead.map(|r| r.mj),
        }
    }

    /// Replaces every register by the snapshot's values.
    pub fn restore(&mut self, snapshot: &EnergySnapshot) {
        let reg = |mj: i64| Register { mj, rem_mj: 0.0 };
        self.import = snapshot.import_mj.map(reg);
        self.export = snapshot.export_mj.map(reg);
        self.lag = snapshot.reactive_lag_mj.map(reg);
        self.lead = snapshot.reactive_lead_mj.map(reg);
    }

    /// Largest magnitude [`EnergyMeter::reset_to`] accepts, Wh: the `i64` millijoule registers hold
    /// ±2.56·10¹² Wh; 2.5·10¹² leaves 60 GWh of headroom to count on. Every value within it reads
    /// back through [`EnergyMeter::net_wh`] within a few ULP (the registers keep the
    /// sub-millijoule remainder too).
    pub const MAX_RESET_WH: f64 = 2.5e12;

    /// `resetEnergy`: sets the net active energy per phase (positive values go to import, negative to
    /// export) and clears everything else. A value that is not finite or beyond
    /// ±[`MAX_RESET_WH`](Self::MAX_RESET_WH) is refused and nothing changes, so what is confirmed
    /// is what [`net_wh`](Self::net_wh) reads back.
    pub fn reset_to(&mut self, net_wh: [f64; 3]) -> Result<(), EnergyError> {
        for &value_wh in &net_wh {
            if !value_wh.is_finite() {
                return Err(EnergyError::NotFinite { value_wh });
            }
            if value_wh.abs() > Self::MAX_RESET_WH {
                return Err(EnergyError::OutOfRange { value_wh });
            }
        }
        *self = Self::default();
        for ((wh, imp), exp) in net_wh.iter().zip(&mut self.import).zip(&mut self.export) {
            let mj = wh * MJ_PER_WH;
            if mj >= 0.0 {
                imp.add_mj(mj);
            } else {
                exp.add_mj(-mj);
            }
        }
        Ok(())
    }
}
