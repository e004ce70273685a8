//! The IEC 61000-4-15 flickermeter on the target: the 8.8 Hz calibration point of Table 1 (Pinst,max
//! = 1 ± 8 %) and the cost per input sample in retired instructions where the core counts them.

use smartmeter::dsp::pq::flicker::{
    FlickerConfig, Flickermeter, Lamp, PstClassifier, WARM_UP_S,
};

use crate::{Platform, Runner};

/// A 230 V / 50 Hz sine, sinusoidally modulated at 8.8 Hz by ΔV/V = 0.25 % (Pinst,max = 1), made
/// by two rotating phasors (no trigonometry per sample).
struct Modulated {
    carrier: (f64, f64),
    carrier_step: (f64, f64),
    modulation: (f64, f64),
    modulation_step: (f64, f64),
}

fn rotate(p: (f64, f64), s: (f64, f64)) -> (f64, f64) {
    (p.0 * s.0 - p.1 * s.1, p.0 * s.1 + p.1 * s.0)
}

fn step(f_hz: f64, rate_hz: u32) -> (f64, f64) {
    // cos/sin of 2π·f/R by Taylor series (|x| < 0.4 here: 12 terms are exact in f64).
    let x = 2.0 * core::f64::consts::PI * f_hz / f64::from(rate_hz);
    let (mut c, mut s, mut term_c, mut term_s) = (1.0, x, 1.0, x);
    for k in 1..12 {
        let k = f64::from(k);
        term_c *= -x * x / ((2.0 * k - 1.0) * (2.0 * k));
        term_s *= -x * x / ((2.0 * k) * (2.0 * k + 1.0));
        c += term_c;
        s += term_s;
    }
    (c, s)
}

impl Modulated {
    fn new(rate_hz: u32) -> Self {
        Self {
            carrier: (1.0, 0.0),
            carrier_step: step(50.0, rate_hz),
            modulation: (1.0, 0.0),
            modulation_step: step(8.8, rate_hz),
        }
    }

    fn fill(&mut self, out: &mut [f32]) {
        for o in out {
            self.carrier = rotate(self.carrier, self.carrier_step);
            self.modulation = rotate(self.modulation, self.modulation_step);
            let v = 325.269_119 * self.carrier.1 * (1.0 + 0.0025 / 2.0 * self.modulation.1);
            *o = v as f32;
        }
    }
}

pub fn run<P: Platform>(r: &mut Runner<'_, P>) {
    r.group("dsp::pq::flicker");
    let rate = 1600u32;
    let cfg = FlickerConfig {
        input_rate_hz: rate,
        nominal_hz: 50,
        lamp: Lamp::V230,
    };
    let (Ok(m1), Ok(fast)) = (
        Flickermeter::new(cfg),
        Flickermeter::new(FlickerConfig {
            input_rate_hz: 6400,
            ..cfg
        }),
    ) else {
        r.check("new", false, format_args!("config rejected"));
        return;
    };
    let mut meters = [m1.clone(), m1.clone(), m1];
    let mut classifiers = [PstClassifier::new(), PstClassifier::new(), PstClassifier::new()];
    let mut signal = Modulated::new(rate);
    let mut block = [0.0f32; 160];
    // Warm-up plus 3 s of Pinst; the cost counts the last second: three phases (the same signal),
    // classifier included.
    let blocks = ((WARM_UP_S + 3.0) * rate as f32) as usize / block.len();
    let counted = rate as usize / block.len();
    let (mut cost, mut max_pinst) = (0u64, 0.0f32);
    for b in 0..blocks {
        signal.fill(&mut block);
        let t0 = r.instret();
        for (m, c) in meters.iter_mut().zip(classifiers.iter_mut()) {
            m.feed(&block, c);
        }
        let t1 = r.instret();
        if b + counted >= blocks {
            cost += t1.zip(t0).map_or(0, |(a, b)| a - b);
        }
        if meters[0].settled() {
            max_pinst = max_pinst.max(meters[0].pinst());
        }
    }
    r.check(
        "pinst_max_8.8hz_0.25pct_within_8pct",
        (max_pinst - 1.0).abs() < 0.08,
        format_args!("Pinst,max {max_pinst}"),
    );
    r.check(
        "classified_while_settled",
        classifiers[0].samples() > 250 && classifiers[0].pst().is_some_and(f32::is_finite),
        format_args!("{} samples", classifiers[0].samples()),
    );
    r.line(format_args!(
        "memory: {} B per Flickermeter + {} B per PstClassifier = {} B for three phases",
        Flickermeter::state_size_bytes(),
        classifiers[0].memory_bytes(),
        3 * (Flickermeter::state_size_bytes() + classifiers[0].memory_bytes())
    ));
    if cost == 0 {
        return;
    }
    let per_sample = cost / (3 * rate as u64);
    r.line(format_args!(
        "flicker at {rate} Hz: {per_sample} instructions per input sample, {cost} per second of three-phase signal (budget 3000000)"
    ));
    // The same at 6400 Hz, one phase, one second after the 1.1 s priming.
    let mut fast = fast;
    let mut signal = Modulated::new(6400);
    let mut block = [0.0f32; 640];
    let mut c = PstClassifier::new();
    let mut fast_cost = 0u64;
    for b in 0..21 {
        signal.fill(&mut block);
        let t0 = r.instret();
        fast.feed(&block, &mut c);
        let t1 = r.instret();
        if b >= 11 {
            fast_cost += t1.zip(t0).map_or(0, |(a, b)| a - b);
        }
    }
    r.line(format_args!(
        "flicker at 6400 Hz: {} instructions per input sample, {} per second of three-phase signal",
        fast_cost / 6400,
        3 * fast_cost
    ));
    r.check(
        "cost_within_budget_at_1600_hz",
        cost <= 3_000_000,
        format_args!("{cost} instructions per second of three-phase signal"),
    );
}
