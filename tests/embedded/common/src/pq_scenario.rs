//! The power-quality test vector shared by the QEMU runners and the host test
//! `tests/pq_determinism.rs`: 24-bit codes of a distorted, unbalanced 50.2 Hz grid made with IEEE
//! `f64` arithmetic only (a rotating phasor, no `sin`/`cos` from a platform library), so that the
//! host and the device feed bit-identical codes.

use smartmeter::dsp::pq::{PqConfig, PqRecord};

pub const RATE_HZ: u32 = 32_000;
pub const CHUNK_FRAMES: usize = 1_600;
pub const CHUNKS: usize = 40;
pub const T0_US: i64 = 1_700_000_000_000_000;
pub const VOLTS_PER_CODE: f64 = 400.0 / 8_388_607.0;
pub const AMPS_PER_CODE: f64 = 10.0 / 8_388_607.0;
pub const DIGEST_SEED: u64 = 0xcbf2_9ce4_8422_2325;
/// What the RV32 runner printed (`pq digest …`); the host must compute the same.
pub const RV32_DIGEST: u64 = 0xca1c_624e_0c36_6746;

pub fn config() -> PqConfig {
    PqConfig {
        nominal_voltage_v: Some(230.0),
        nominal_frequency_hz: Some(50),
        ..PqConfig::new(RATE_HZ)
    }
}

/// Phasors of the fundamental (`z`) and its 3rd and 5th powers, rotated per frame.
pub struct Generator {
    z: (f64, f64),
    step: (f64, f64),
    n: u64,
}

fn mul(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}

impl Default for Generator {
    fn default() -> Self {
        Self::new()
    }
}

impl Generator {
    pub fn new() -> Self {
        // e^{jω} for 50.2 Hz at 32 kHz, from its Taylor series (exact to the last bit or two,
        // identical everywhere)
        let w = 2.0 * core::f64::consts::PI * 50.2 / f64::from(RATE_HZ);
        let (mut c, mut s, mut tc, mut ts) = (0.0, 0.0, 1.0, w);
        for k in 0..12 {
            c += tc;
            s += ts;
            let a = f64::from(2 * k + 1);
            let b = f64::from(2 * k + 2);
            tc = -tc * w * w / (a * b);
            ts = -ts * w * w / (b * (b + 1.0));
        }
        Self {
            z: (1.0, 0.0),
            step: (c, s),
            n: 0,
        }
    }

    /// Fills whole six-channel frames of codes.
    pub fn fill(&mut self, out: &mut [i32]) {
        // L2, L3 fundamentals at −120°, +120° (cos, sin of 120° exactly representable enough)
        let r120 = (-0.5, -0.866_025_403_784_438_6);
        let amp_v = [230.0, 226.0, 233.0];
        let amp_i = [5.0, 2.0, 0.5];
        // current lags 30°, −20°, 0°
        let lag = [
            (0.866_025_403_784_438_6, -0.5),
            (0.939_692_620_785_908_4, 0.342_020_143_325_668_7),
            (1.0, 0.0),
        ];
        for frame in out.chunks_exact_mut(6) {
            let mut zp = self.z;
            for p in 0..3 {
                let zi = mul(zp, lag[p]);
                let z3 = mul(mul(zi, zi), zi);
                let z5 = mul(mul(mul(zp, zp), mul(zp, zp)), zp);
                let v = core::f64::consts::SQRT_2 * amp_v[p] * (zp.0 + 0.05 * z5.0);
                let i = core::f64::consts::SQRT_2 * amp_i[p] * (zi.0 + 0.2 * z3.0);
                frame[2 * p] = round(v / VOLTS_PER_CODE);
                frame[2 * p + 1] = round(i / AMPS_PER_CODE);
                zp = mul(zp, r120);
            }
            self.z = mul(self.z, self.step);
            self.n += 1;
            if self.n.is_multiple_of(1024) {
                // one Newton step towards |z| = 1 (it is within 1e-13 of it)
                let k = 0.5 * (3.0 - (self.z.0 * self.z.0 + self.z.1 * self.z.1));
                self.z = (self.z.0 * k, self.z.1 * k);
            }
        }
    }
}

fn round(x: f64) -> i32 {
    (x + if x < 0.0 { -0.5 } else { 0.5 }) as i32
}

/// FNV-1a over the bits of a basic record's values.
pub fn digest(h: &mut u64, r: &PqRecord) {
    let mut eat = |x: u32| {
        for b in x.to_le_bytes() {
            *h ^= u64::from(b);
            *h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for p in 0..3 {
        eat(r.voltage_v[p].to_bits());
        for k in 0..50 {
            eat(r.harmonics_v[p][k].to_bits());
            eat(r.harmonics_i_a[p][k].to_bits());
        }
    }
    eat(r.u2_pct.unwrap_or(-1.0).to_bits());
    eat(r.u0_pct.unwrap_or(-1.0).to_bits());
    eat((r.start_unix_s - 1.7e9).to_bits() as u32);
}
