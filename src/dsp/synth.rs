//! Deterministic 3-phase (or single-phase) voltage/current generator.
//!
//! Used by the host simulator as its "ADC" and by the accuracy tests as the reference signal. Same
//! configuration and seed give bit-identical output on every platform that implements IEEE f64
//! (the phase is computed from the sample index, not accumulated, so it never drifts).
//!
//! ```
//! use smartmeter::dsp::synth::{Grid, GridConfig};
//! let mut grid = Grid::new(GridConfig::default());
//! let mut buf = [0.0f32; 6 * 160];
//! grid.fill(&mut buf); // v_l1,i_l1,v_l2,i_l2,v_l3,i_l3 in V and A, continuing across calls
//! assert!(buf.iter().all(|x| x.is_finite()));
//! ```

use core::f64::consts::PI;
#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;

/// Maximum number of harmonics per waveform kind.
pub const MAX_HARMONICS: usize = 8;

/// One harmonic component, relative to the fundamental of the same channel.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Harmonic {
    /// Harmonic order (2 = 100 Hz at 50 Hz).
    pub order: u32,
    /// Amplitude relative to the fundamental (0.05 = 5 %).
    pub relative: f64,
    /// Phase in degrees relative to `order × fundamental phase`.
    pub phase_deg: f64,
}

/// Fundamental voltage and current of one phase.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhaseSignal {
    /// RMS of the voltage fundamental, volts.
    pub voltage_rms_v: f64,
    /// RMS of the current fundamental, amps.
    pub current_rms_a: f64,
    /// Angle by which the current fundamental lags the voltage fundamental, degrees
    /// (60 = PF 0.5 inductive, -36.87 = PF 0.8 capacitive).
    pub angle_deg: f64,
}

impl Default for PhaseSignal {
    fn default() -> Self {
        Self {
            voltage_rms_v: 230.0,
            current_rms_a: 5.0,
            angle_deg: 0.0,
        }
    }
}

/// Generator settings. All fields are public; [`Default`] is a clean, balanced 230 V / 5 A / 50 Hz
/// grid at 8000 Hz.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GridConfig {
    /// Output sample rate, Hz.
    pub rate_hz: u32,
    /// Line frequency at sample 0, Hz.
    pub frequency_hz: f64,
    /// Linear frequency ramp, Hz per second (0 = constant).
    pub frequency_ramp_hz_per_s: f64,
    /// Per phase fundamentals, `[L1, L2, L3]`.
    pub phases: [PhaseSignal; 3],
    /// L2 and L3 lead instead of lag L1 by 120°/240° (negative sequence).
    pub reversed_sequence: bool,
    /// Emit two channels (`v_l1, i_l1`) instead of six.
    pub single_phase: bool,
    /// Voltage harmonics (same relative content on every phase).
    pub voltage_harmonics: heapless::Vec<Harmonic, MAX_HARMONICS>,
    /// Current harmonics (same relative content on every phase).
    pub current_harmonics: heapless::Vec<Harmonic, MAX_HARMONICS>,
    /// DC offset added to every voltage channel, relative to its fundamental RMS (0.01 = 1 %).
    pub voltage_dc_rel: f64,
    /// DC offset added to every current channel, relative to its fundamental RMS.
    pub current_dc_rel: f64,
    /// Gaussian noise, standard deviation relative to the channel's fundamental RMS.
    pub noise_rel: f64,
    /// Seed of the noise generator.
    pub seed: u64,
    /// Quantise to this many bits (2..=32) over `±voltage_full_scale_v` / `±current_full_scale_a`.
    pub quantisation_bits: Option<u8>,
    /// Peak voltage of the simulated ADC full scale, volts.
    pub voltage_full_scale_v: f64,
    /// Peak current of the simulated ADC full scale, amps.
    pub current_full_scale_a: f64,
}

impl Default for GridConfig {
    fn default() -> Self {
        Self {
            rate_hz: 8000,
            frequency_hz: 50.0,
            frequency_ramp_hz_per_s: 0.0,
            phases: [PhaseSignal::default(); 3],
            reversed_sequence: false,
            single_phase: false,
            voltage_harmonics: heapless::Vec::new(),
            current_harmonics: heapless::Vec::new(),
            voltage_dc_rel: 0.0,
            current_dc_rel: 0.0,
            noise_rel: 0.0,
            seed: 1,
            quantisation_bits: None,
            voltage_full_scale_v: 400.0,
            current_full_scale_a: 10.0,
        }
    }
}

/// What an ideal meter reads for one phase of a [`Grid`] (DC excluded, as the estimator removes it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expected {
    /// True RMS voltage (AC part), volts.
    pub vrms_v: f64,
    /// True RMS current (AC part), amps.
    pub irms_a: f64,
    /// Active power, watts (sum over matching harmonic orders).
    pub active_power_w: f64,
    /// Fundamental reactive power Q₁, var.
    pub reactive_power_var: f64,
    /// Apparent power Vrms·Irms, VA.
    pub apparent_power_va: f64,
    /// Fundamental phase angle (current lag), degrees.
    pub phase_deg: f64,
    /// Voltage THD, percent of the fundamental.
    pub thd_v_pct: f64,
    /// Current THD, percent of the fundamental.
    pub thd_i_pct: f64,
}

/// The generator. Holds only the configuration, a sample counter and the PRNG state.
#[derive(Debug, Clone)]
pub struct Grid {
    config: GridConfig,
    index: u64,
    rng: u64,
    spare: Option<f64>,
}

impl Grid {
    /// A generator at sample 0.
    pub fn new(config: GridConfig) -> Self {
        let rng = config.seed ^ 0x9E37_79B9_7F4A_7C15;
        Self {
            config,
            index: 0,
            rng,
            spare: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GridConfig {
        &self.config
    }

    /// Changes the configuration from the next sample on; the phase stays continuous only if the
    /// frequency settings are unchanged.
    pub fn set_config(&mut self, config: GridConfig) {
        self.config = config;
    }

    /// Channels per frame: 6, or 2 in single-phase mode.
    pub fn channels(&self) -> usize {
        if self.config.single_phase { 2 } else { 6 }
    }

    /// Frames generated so far.
    pub fn sample_index(&self) -> u64 {
        self.index
    }

    /// Line frequency at the current sample, Hz.
    pub fn frequency_now_hz(&self) -> f64 {
        let t = self.index as f64 / f64::from(self.config.rate_hz.max(1));
        self.config.frequency_hz + self.config.frequency_ramp_hz_per_s * t
    }

    /// Fills `out` with whole frames (a trailing partial frame is left untouched) and returns the
    /// number of frames written.
    pub fn fill(&mut self, out: &mut [f32]) -> usize {
        let ch = self.channels();
        let mut frames = 0;
        for frame in out.chunks_exact_mut(ch) {
            let values = self.next_frame();
            for (o, v) in frame.iter_mut().zip(values.iter()) {
                *o = *v;
            }
            frames += 1;
        }
        frames
    }

    /// The next frame of six channels (single-phase mode uses the first two).
    pub fn next_frame(&mut self) -> [f32; 6] {
        let c = &self.config;
        let rate = f64::from(c.rate_hz.max(1));
        let t = self.index as f64 / rate;
        let cycles = c.frequency_hz * t + 0.5 * c.frequency_ramp_hz_per_s * t * t;
        let base = 2.0 * PI * (cycles - cycles.floor());
        let seq = if c.reversed_sequence { 1.0 } else { -1.0 };
        let mut out = [0.0f32; 6];
        let nphase = if c.single_phase { 1 } else { 3 };
        let mut vals = [0.0f64; 6];
        for (p, (ph, pair)) in c
            .phases
            .iter()
            .zip(vals.chunks_exact_mut(2))
            .take(nphase)
            .enumerate()
        {
            let shift = seq * 2.0 * PI / 3.0 * p as f64;
            let theta = base + shift;
            let lag = ph.angle_deg.to_radians();
            let va = ph.voltage_rms_v * core::f64::consts::SQRT_2;
            let ia = ph.current_rms_a * core::f64::consts::SQRT_2;
            let mut v = va * theta.cos();
            let mut i = ia * (theta - lag).cos();
            for h in &c.voltage_harmonics {
                let n = f64::from(h.order);
                v += va * h.relative * (n * theta + h.phase_deg.to_radians()).cos();
            }
            for h in &c.current_harmonics {
                let n = f64::from(h.order);
                i += ia * h.relative * (n * (theta - lag) + h.phase_deg.to_radians()).cos();
            }
            v += c.voltage_dc_rel * ph.voltage_rms_v;
            i += c.current_dc_rel * ph.current_rms_a;
            if let [vo, io] = pair {
                *vo = v;
                *io = i;
            }
        }
        let noise_rel = c.noise_rel;
        if noise_rel > 0.0 {
            let sigma = [
                c.phases[0].voltage_rms_v,
                c.phases[0].current_rms_a,
                c.phases[1].voltage_rms_v,
                c.phases[1].current_rms_a,
                c.phases[2].voltage_rms_v,
                c.phases[2].current_rms_a,
            ];
            let n = nphase * 2;
            for (x, s) in vals.iter_mut().zip(sigma).take(n) {
                *x += noise_rel * s * self.gauss();
            }
        }
        let c = &self.config;
        for (k, (o, x)) in out.iter_mut().zip(vals).enumerate() {
            let fs = if k % 2 == 0 {
                c.voltage_full_scale_v
            } else {
                c.current_full_scale_a
            };
            *o = match c.quantisation_bits {
                Some(bits) if (2..=32).contains(&bits) && fs > 0.0 => {
                    let steps = f64::from(1u32 << (bits.min(31) - 1));
                    let code = (x / fs * steps).round().clamp(-steps, steps - 1.0);
                    (code * fs / steps) as f32
                }
                _ => x as f32,
            };
        }
        self.index += 1;
        out
    }

    /// The analytically expected reading of `phase` (0..3) for the current configuration.
    pub fn expected(&self, phase: usize) -> Expected {
        let c = &self.config;
        let ph = c.phases.get(phase).copied().unwrap_or_default();
        let hv: f64 = c
            .voltage_harmonics
            .iter()
            .map(|h| h.relative * h.relative)
            .sum();
        let hi: f64 = c
            .current_harmonics
            .iter()
            .map(|h| h.relative * h.relative)
            .sum();
        let v1 = ph.voltage_rms_v;
        let i1 = ph.current_rms_a;
        let lag = ph.angle_deg.to_radians();
        let mut p = v1 * i1 * lag.cos();
        for hvh in &c.voltage_harmonics {
            for hih in &c.current_harmonics {
                if hvh.order == hih.order {
                    let n = f64::from(hvh.order);
                    // v phase: nθ + ψv ; i phase: n(θ − lag) + ψi
                    let dphi = n * lag + hvh.phase_deg.to_radians() - hih.phase_deg.to_radians();
                    p += v1 * hvh.relative * i1 * hih.relative * dphi.cos();
                }
            }
        }
        let vrms = v1 * (1.0 + hv).sqrt();
        let irms = i1 * (1.0 + hi).sqrt();
        Expected {
            vrms_v: vrms,
            irms_a: irms,
            active_power_w: p,
            reactive_power_var: v1 * i1 * lag.sin(),
            apparent_power_va: vrms * irms,
            phase_deg: ph.angle_deg,
            thd_v_pct: 100.0 * hv.sqrt(),
            thd_i_pct: 100.0 * hi.sqrt(),
        }
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64: tiny, full period, good enough for test noise.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal deviate (Box–Muller).
    fn gauss(&mut self) -> f64 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        let u1 = self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * PI * u2).sin_cos();
        self.spare = Some(r * s);
        r * c
    }
}
