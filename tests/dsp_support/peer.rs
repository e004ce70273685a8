//! Drives the peer crate `metrology_insight` the way its README and its own accuracy harness do:
//! 8 kHz samples, one call of `process_and_update_metrics` per 160-sample window (its buffers are
//! hard-coded to 160 samples), values read from `socket.phases[p]`.
#![allow(dead_code)]

use metrology_insight::{MetrologyInsight, MetrologyInsightConfig};

/// Samples per peer window (its `MAX_SIGNAL_SAMPLES`).
pub const PEER_WINDOW: usize = 160;

/// The peer's readings of one phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerReading {
    pub vrms_v: f64,
    pub irms_a: f64,
    pub p_w: f64,
    pub q_var: f64,
    pub freq_hz: f64,
}

pub struct Peer {
    mi: MetrologyInsight,
}

impl Peer {
    /// The README's Quick Start configuration at 8000 Hz.
    pub fn new() -> Self {
        let config = MetrologyInsightConfig {
            adc_samples_seconds: 8000.0,
            adc_samples_per_cycle: 160.0,
            avg_sec: 160.0 / 8000.0,
            ..MetrologyInsightConfig::default()
        };
        let mut mi = MetrologyInsight::new(config);
        mi.set_nominal_voltage(230.0);
        Self { mi }
    }

    /// One window of interleaved six-channel frames (at most 160 frames).
    pub fn window(&mut self, frames: &[f32]) {
        let n = (frames.len() / 6).min(PEER_WINDOW);
        for p in 0..3 {
            let ph = &mut self.mi.socket.phases[p];
            for (k, f) in frames.chunks_exact(6).take(n).enumerate() {
                ph.voltage.real_wave[k] = f[2 * p];
                ph.current.real_wave[k] = f[2 * p + 1];
            }
            ph.voltage.real_wave_len = n;
            ph.current.real_wave_len = n;
        }
        self.mi.process_and_update_metrics(3);
        for p in 0..3 {
            self.mi.socket.phases[p].voltage.clear_samples();
            self.mi.socket.phases[p].current.clear_samples();
        }
    }

    pub fn read(&self, p: usize) -> PeerReading {
        let ph = &self.mi.socket.phases[p];
        PeerReading {
            vrms_v: f64::from(ph.voltage.rms),
            irms_a: f64::from(ph.current.rms),
            p_w: f64::from(ph.power_metrics.real_power),
            q_var: f64::from(ph.power_metrics.reactive_power),
            freq_hz: f64::from(ph.voltage.pll_state.freq_est),
        }
    }
}

/// The peer's power-quality readings (its `process_and_update_metrics` computes them every window).
#[derive(Debug, Clone, Copy)]
pub struct PeerPq {
    /// Voltage harmonics H1..H50 in percent of H1 (its one-cycle, single-bin method).
    pub harmonics_v_pct: [f32; 50],
    pub thd_v_pct: f32,
    pub u2_pct: f32,
    pub u0_pct: f32,
    pub freq_10s_hz: f32,
}

impl Peer {
    pub fn pq(&self, p: usize) -> PeerPq {
        let ph = &self.mi.socket.phases[p];
        let u = &self.mi.socket.unbalance_metrics;
        PeerPq {
            harmonics_v_pct: ph.voltage.harmonics,
            thd_v_pct: ph.voltage.thd,
            u2_pct: u.u2_neg_ratio_pct,
            u0_pct: u.u0_zero_ratio_pct,
            freq_10s_hz: ph.voltage.pll_state.freq_10s,
        }
    }
}
