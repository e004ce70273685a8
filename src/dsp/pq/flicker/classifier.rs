//! Block 5: the classifier of Pinst values and the short- and long-term severities Pst and Plt.
//!
//! # Classes
//! 1024 classes in fixed memory (2 KiB of `u16` counts): class 0 holds everything below 2⁻¹⁴
//! (6.1·10⁻⁵, zero and negative values included); classes 1..=1023 split every octave from 2⁻¹⁴
//! to 2¹⁸ (2.6·10⁵) into 32 equal steps, so a class is 1.6–3.1 % wide everywhere on the
//! logarithmic scale that Pst weighs (the scheme of a float's exponent and top 5 mantissa bits,
//! which is how a value finds its class: no logarithm, no search). Values above the last class
//! count in it; NaN is not counted. Commercial Class A meters use the same order of resolution
//! (e.g. 1024 logarithmic classes over 10⁻⁴…10⁴).
//!
//! # Percentiles
//! `P_x` is the level exceeded during `x` % of the samples, read from the cumulative
//! distribution with linear interpolation inside the class where it crosses `x` (the samples of a
//! class are taken as spread evenly over it), so a percentile is off by far less than a class
//! width. Pst uses the smoothed percentiles of IEC 61000-4-15 Ed.2:
//! `Pst = √(0.0314·P0.1 + 0.0525·P1s + 0.0657·P3s + 0.28·P10s + 0.08·P50s)` with
//! `P1s = (P0.7+P1+P1.5)/3`, `P3s = (P2.2+P3+P4)/3`, `P10s = (P6+P8+P10+P13+P17)/5`,
//! `P50s = (P30+P50+P80)/3`.
//!
//! # Counts
//! The classifier is fed at [`super::CLASSIFIER_RATE_HZ`] (100 Hz): a 10-min interval is 60 000
//! samples, which fits `u16` counts. Should a class reach 65 535 (an interval over 10.9 min, or a
//! caller feeding faster), every count is halved (rounding up, so no occupied class empties):
//! the distribution, and so Pst, stays the same to within the rounding of one count per class.

use alloc::boxed::Box;
use alloc::vec;
#[allow(unused_imports)] // inherent f32 methods shadow it with `std`
use num_traits::Float;

/// Number of classes.
pub const CLASSES: usize = 1024;
/// Classes per octave above the lowest class.
const PER_OCTAVE: u32 = 32;
/// Biased `f32` exponent of the lowest class edge, 2⁻¹⁴.
const LOWEST_EXPONENT: u32 = 127 - 14;

/// Exceedance percentages used by Pst, ascending.
const PST_PERCENTILES: [f64; 15] = [
    0.1, 0.7, 1.0, 1.5, 2.2, 3.0, 4.0, 6.0, 8.0, 10.0, 13.0, 17.0, 30.0, 50.0, 80.0,
];

/// Class of a Pinst value (`None` for NaN).
fn class_of(pinst: f32) -> Option<usize> {
    if pinst.is_nan() {
        return None;
    }
    let bits = pinst.to_bits();
    if bits >> 31 != 0 {
        return Some(0);
    }
    let e = bits >> 23;
    if e < LOWEST_EXPONENT {
        return Some(0);
    }
    let k = 1 + (e - LOWEST_EXPONENT) * PER_OCTAVE + ((bits >> 18) & (PER_OCTAVE - 1));
    Some((k as usize).min(CLASSES - 1))
}

/// Lower edge of class `k` (`k` may be `CLASSES`: the upper edge of the last class).
fn lower_edge(k: usize) -> f32 {
    if k == 0 {
        return 0.0;
    }
    let i = (k - 1) as u32;
    f32::from_bits(((LOWEST_EXPONENT + i / PER_OCTAVE) << 23) | ((i % PER_OCTAVE) << 18))
}

/// Block 5 of one phase: the classifier over one observation period (10 min for Pst).
///
/// ```
/// use smartmeter::dsp::pq::flicker::PstClassifier;
/// let mut c = PstClassifier::new();
/// // A steady Pinst of 1/0.5096 (the sum of the Pst weights) is Pst 1.
/// for _ in 0..60_000 {
///     c.add(1.0 / 0.5096);
/// }
/// let pst = c.pst().unwrap_or(0.0);
/// assert!((pst - 1.0).abs() < 0.01, "{pst}");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PstClassifier {
    counts: Box<[u16]>,
    total: u32,
}

impl Default for PstClassifier {
    fn default() -> Self {
        Self::new()
    }
}

impl PstClassifier {
    /// An empty classifier (allocates its 2 KiB of counts once, here).
    pub fn new() -> Self {
        Self {
            counts: vec![0u16; CLASSES].into_boxed_slice(),
            total: 0,
        }
    }

    /// Bytes of memory, heap included.
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of::<Self>() + self.counts.len() * core::mem::size_of::<u16>()
    }

    /// Counts one Pinst value (one classifier sample, see [`super::CLASSIFIER_RATE_HZ`]). NaN is
    /// ignored; negative values count as 0, values above 2.6·10⁵ in the top class.
    pub fn add(&mut self, pinst: f32) {
        let Some(k) = class_of(pinst) else { return };
        if self.counts.get(k).copied() == Some(u16::MAX) {
            self.halve();
        }
        if let Some(c) = self.counts.get_mut(k) {
            *c += 1;
            self.total += 1;
        }
    }

    #[cold]
    fn halve(&mut self) {
        let mut total = 0u32;
        for c in self.counts.iter_mut() {
            *c = c.div_ceil(2);
            total += u32::from(*c);
        }
        self.total = total;
    }

    /// Samples counted since the last reset (after any halving: the counts' sum).
    pub fn samples(&self) -> u32 {
        self.total
    }

    /// Clears every count (the start of a new observation period).
    pub fn reset(&mut self) {
        self.counts.fill(0);
        self.total = 0;
    }

    /// The level exceeded by `exceeded_pct` % of the samples (`0..=100`), or `None` when empty.
    pub fn percentile(&self, exceeded_pct: f32) -> Option<f32> {
        let pct = f64::from(exceeded_pct.clamp(0.0, 100.0));
        self.levels([pct]).map(|[p]| p as f32)
    }

    /// Levels exceeded by each of `pct` (ascending), interpolated inside the crossing class.
    fn levels<const N: usize>(&self, pct: [f64; N]) -> Option<[f64; N]> {
        if self.total == 0 {
            return None;
        }
        let total = f64::from(self.total);
        let mut out = [0.0f64; N];
        let mut next = 0usize;
        let mut above = 0.0f64;
        for (k, &c) in self.counts.iter().enumerate().rev() {
            let c = f64::from(c);
            let lo = f64::from(lower_edge(k));
            let hi = f64::from(lower_edge(k + 1));
            while let (Some(&p), Some(slot)) = (pct.get(next), out.get_mut(next)) {
                let target = p / 100.0 * total;
                // An empty class cannot hold a crossing (a target of 0 is the top occupied class).
                if c == 0.0 || above + c < target {
                    break;
                }
                let frac = (target - above) / c;
                *slot = hi - frac * (hi - lo);
                next += 1;
            }
            above += c;
        }
        Some(out)
    }

    /// Short-term flicker severity of the samples counted so far (IEC 61000-4-15 Ed.2, smoothed
    /// percentiles), or `None` when nothing was counted.
    pub fn pst(&self) -> Option<f32> {
        let p = self.levels(PST_PERCENTILES)?;
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        let (p01, p1s, p3s, p10s, p50s) = match p {
            [
                p01,
                p07,
                p1,
                p15,
                p22,
                p3,
                p4,
                p6,
                p8,
                p10,
                p13,
                p17,
                p30,
                p50,
                p80,
            ] => (
                p01,
                mean(&[p07, p1, p15]),
                mean(&[p22, p3, p4]),
                mean(&[p6, p8, p10, p13, p17]),
                mean(&[p30, p50, p80]),
            ),
        };
        let sum = 0.0314 * p01 + 0.0525 * p1s + 0.0657 * p3s + 0.28 * p10s + 0.08 * p50s;
        Some(sum.max(0.0).sqrt() as f32)
    }
}

/// Long-term flicker severity: `Plt = ∛(Σ Pst³ / N)` over the given short-term values (IEC: the
/// twelve 10-min values of 2 h). NaN and negative values count as 0, values above 10⁶ as 10⁶, so the
/// result is always finite; an empty slice gives 0.
pub fn plt(pst: &[f32]) -> f32 {
    if pst.is_empty() {
        return 0.0;
    }
    let sum: f64 = pst
        .iter()
        .map(|&p| {
            let p = if p.is_nan() {
                0.0
            } else {
                f64::from(p.clamp(0.0, 1e6))
            };
            p * p * p
        })
        .sum();
    (sum / pst.len() as f64).cbrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_edges_bracket_their_values() {
        for &p in &[6.2e-5f32, 1e-4, 0.5, 1.0, 1.01, 7.3, 1234.5, 2.5e5] {
            let k = class_of(p).unwrap_or(0);
            assert!(lower_edge(k) <= p && p < lower_edge(k + 1), "{p} in {k}");
            let width = lower_edge(k + 1) / lower_edge(k) - 1.0;
            assert!(width > 0.015 && width < 0.032, "{width}");
        }
        assert_eq!(class_of(0.0), Some(0));
        assert_eq!(class_of(-3.0), Some(0));
        assert_eq!(class_of(f32::INFINITY), Some(CLASSES - 1));
        assert_eq!(class_of(f32::NAN), None);
        assert_eq!(lower_edge(1), 1.0 / 16384.0);
    }

    #[test]
    fn percentile_of_a_uniform_ramp_is_interpolated() {
        let mut c = PstClassifier::new();
        // 10 000 values spread evenly over 1..=2: P_x = 2 - x/100.
        for i in 0..10_000 {
            c.add(1.0 + (i as f32 + 0.5) / 10_000.0);
        }
        for x in [1.0f32, 10.0, 50.0, 90.0] {
            let p = c.percentile(x).unwrap_or(0.0);
            assert!((p - (2.0 - x / 100.0)).abs() < 2e-3, "P{x} = {p}");
        }
    }

    #[test]
    fn halving_keeps_the_distribution() {
        let mut a = PstClassifier::new();
        for k in 0..200_000u32 {
            a.add(if k % 10 == 0 { 4.0 } else { 1.0 });
        }
        assert!(a.samples() < 131_072);
        let p = a.percentile(5.0).unwrap_or(0.0);
        assert!((p - 4.0).abs() < 0.13, "{p}");
        let p = a.percentile(50.0).unwrap_or(0.0);
        assert!((p - 1.0).abs() < 0.04, "{p}");
    }
}
