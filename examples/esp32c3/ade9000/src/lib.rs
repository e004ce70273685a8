//! ADE9000 three-phase metering IC: the waveform-buffer reader the SmartMeter firmware samples with.
//!
//! The driver is generic over [`embedded_hal::spi::SpiDevice`], owns no pins besides the SPI device,
//! never allocates and never panics, so it runs unchanged on the ESP32-C3 and under host unit tests with
//! a mock SPI.
//!
//! How sampling works (ADE9000 datasheet, "Waveform buffer"):
//! - The IC writes fixed-rate sample sets (`IA, VA, IB, VB, IC, VC, IN, -`, eight signed 32-bit words)
//!   into a 2048-word circular buffer of 16 pages (16 sets per page) at 8 kSPS (DSP-processed `xPCF`
//!   samples) or 32 kSPS (sinc4 output).
//! - [`Ade9000::start_streaming`] enables continuous filling and a page-full interrupt on pages 7 and 15,
//!   routed to the IRQ0 pin. Each interrupt means one half of the buffer (128 sets) is complete.
//! - [`Ade9000::read_ready`] checks `STATUS0.PAGE_FULL`, clears it, asks `WFB_TRG_STAT` which page was
//!   filled last, and burst-reads the completed half (one SPI transaction, 4 KiB) into the caller's
//!   buffer, reordered to the core's channel order `v_l1, i_l1, v_l2, i_l2, v_l3, i_l3` as raw codes.
//! - [`FrontEnd`] turns codes into volts and amps: the ADC full scale, the voltage divider and the
//!   current transformer with its burden resistor. These two numbers are what the core's
//!   `SampleScale::Codes` takes.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![warn(missing_docs)]

use embedded_hal::spi::{Operation, SpiDevice};

/// Register addresses (16-bit command header = `addr << 4 | read << 3`).
pub mod reg {
    /// Status register 0 (32-bit, write 1 to clear).
    pub const STATUS0: u16 = 0x402;
    /// Interrupt mask for the IRQ0 pin (32-bit).
    pub const MASK0: u16 = 0x405;
    /// Configuration register 1 (16-bit).
    pub const CONFIG1: u16 = 0x481;
    /// DSP run register (16-bit, write 1 to start the DSP).
    pub const RUN: u16 = 0x480;
    /// Accumulation mode (16-bit): line frequency selection.
    pub const ACCMODE: u16 = 0x492;
    /// Waveform buffer configuration (16-bit).
    pub const WFB_CFG: u16 = 0x4A0;
    /// Page-full interrupt enables, one bit per page (16-bit).
    pub const WFB_PG_IRQEN: u16 = 0x4A1;
    /// Waveform buffer trigger status (16-bit): last page filled in bits 15:12.
    pub const WFB_TRG_STAT: u16 = 0x4A3;
    /// Silicon version (16-bit).
    pub const VERSION: u16 = 0x4FE;
    /// First word of the waveform buffer (burst-readable, 2048 words).
    pub const WAVEFORM_BUFFER: u16 = 0x800;
}

/// `STATUS0` / `MASK0` bit: a page with its interrupt enabled has been filled.
pub const PAGE_FULL: u32 = 1 << 17;
/// `CONFIG1` bit 0: software reset.
pub const SWRST: u16 = 1 << 0;
/// Full-scale waveform code for a full-scale (±1 V peak, 0.707 V rms) differential input at the ADC pins.
pub const FULL_SCALE_CODE: f32 = 74_532_013.0;
/// Words per sample set in the waveform buffer (`IA, VA, IB, VB, IC, VC, IN`, one unused).
pub const WORDS_PER_SET: usize = 8;
/// Sample sets in one half of the waveform buffer (8 pages × 16 sets).
pub const SETS_PER_HALF: usize = 128;
/// Values this driver writes per sample set (`v, i` for three phases).
pub const CHANNELS: usize = 6;
/// Bytes of one half-buffer burst read.
pub const HALF_BYTES: usize = SETS_PER_HALF * WORDS_PER_SET * 4;

/// Which samples the waveform buffer records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaveformRate {
    /// DSP-processed samples (`xI_PCF`, `xV_PCF`, high-pass filtered, phase compensated) at 8 kSPS.
    Pcf8k,
    /// Sinc4 decimator output at 32 kSPS (no high-pass filter: a DC offset stays in the samples).
    Sinc4_32k,
}

impl WaveformRate {
    /// Samples per second per channel.
    pub fn hz(self) -> u32 {
        match self {
            WaveformRate::Pcf8k => 8_000,
            WaveformRate::Sinc4_32k => 32_000,
        }
    }

    /// `WFB_CFG.WF_SRC` bits 9:8.
    fn wf_src(self) -> u16 {
        match self {
            WaveformRate::Pcf8k => 0b11 << 8,
            WaveformRate::Sinc4_32k => 0b00,
        }
    }
}

/// Mains frequency the IC's DSP is tuned to (`ACCMODE.SELFREQ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFrequency {
    /// 50 Hz networks.
    Hz50,
    /// 60 Hz networks.
    Hz60,
}

/// Analog front end: how volts and amps at the terminals map onto the ADC inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrontEnd {
    /// Voltage divider ratio (terminal volts per ADC-pin volt), e.g. 1001 for 1 MΩ over 1 kΩ.
    pub divider_ratio: f32,
    /// Current transformer turns ratio (primary amps per secondary amp), e.g. 2000.
    pub ct_ratio: f32,
    /// Burden resistor across the CT secondary, in ohms (ADC-pin volts per secondary amp).
    pub burden_ohm: f32,
}

impl FrontEnd {
    /// The original SmartMeter board: 1 MΩ / 1 kΩ divider, 2500:1 CTs on 10 Ω burdens (2 × 5.1 Ω).
    pub const SMARTMETER: FrontEnd = FrontEnd {
        divider_ratio: 1001.0,
        ct_ratio: 2500.0,
        burden_ohm: 10.2,
    };

    /// Terminal volts per waveform code.
    pub fn volts_per_code(&self) -> f32 {
        self.divider_ratio / FULL_SCALE_CODE
    }

    /// Primary amps per waveform code.
    pub fn amps_per_code(&self) -> f32 {
        self.ct_ratio / self.burden_ohm / FULL_SCALE_CODE
    }

    /// `(volts_per_code, amps_per_code)` in f64, the form the smartmeter core's calibration
    /// `FrontEnd` takes.
    pub fn scaling(&self) -> (f64, f64) {
        let fs = f64::from(FULL_SCALE_CODE);
        (
            f64::from(self.divider_ratio) / fs,
            f64::from(self.ct_ratio) / f64::from(self.burden_ohm) / fs,
        )
    }

    /// Checks that every ratio is finite and positive, naming the first that is not.
    pub fn validate(&self) -> Result<(), Error<core::convert::Infallible>> {
        let fields = [
            ("divider_ratio", self.divider_ratio),
            ("ct_ratio", self.ct_ratio),
            ("burden_ohm", self.burden_ohm),
        ];
        for (name, value) in fields {
            if !(value.is_finite() && value > 0.0) {
                return Err(Error::InvalidFrontEnd(name));
            }
        }
        Ok(())
    }
}

/// Driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error<E> {
    /// The SPI bus failed.
    #[error("SPI transfer failed: {0:?}")]
    Spi(E),
    /// The chip answered with a version register of all zeros or all ones (not present / not powered).
    #[error("no ADE9000 answered: VERSION read {0:#06x}")]
    NotPresent(u16),
    /// The caller's buffer cannot hold one half of the waveform buffer.
    #[error("buffer too small: need {need} values, got {got}")]
    BufferTooSmall {
        /// Values needed.
        need: usize,
        /// Values supplied.
        got: usize,
    },
    /// A front-end ratio is not finite and positive (the field is named).
    #[error("invalid front end: {0} must be finite and positive")]
    InvalidFrontEnd(&'static str),
}

/// A completed half of the waveform buffer, read by [`Ade9000::read_ready`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Values written (sets × [`CHANNELS`]).
    pub len: usize,
    /// Which half was read (0 = pages 0..=7, 1 = pages 8..=15).
    pub half: u8,
    /// True when the page the IC filled last is not the one we expected: a half was overwritten before
    /// we read it (samples lost).
    pub overrun: bool,
}

/// The ADE9000 on an SPI device.
#[derive(Debug)]
pub struct Ade9000<SPI> {
    spi: SPI,
    rate: WaveformRate,
    next_half: Option<u8>,
    raw: [u8; HALF_BYTES],
}

/// 16-bit SPI command header for `addr`.
pub fn command(addr: u16, read: bool) -> [u8; 2] {
    let word = ((addr & 0x0FFF) << 4) | if read { 0x08 } else { 0x00 };
    word.to_be_bytes()
}

impl<SPI: SpiDevice> Ade9000<SPI> {
    /// Wraps an SPI device (mode 0 or 3, ≤ 20 MHz; CS handled by the `SpiDevice`).
    pub fn new(spi: SPI, rate: WaveformRate) -> Self {
        Self {
            spi,
            rate,
            next_half: None,
            raw: [0; HALF_BYTES],
        }
    }

    /// Gives the SPI device back.
    pub fn release(self) -> SPI {
        self.spi
    }

    /// Sample rate of the configured waveform source.
    pub fn rate(&self) -> WaveformRate {
        self.rate
    }

    /// Reads a 16-bit register.
    pub fn read16(&mut self, addr: u16) -> Result<u16, Error<SPI::Error>> {
        let mut b = [0u8; 2];
        self.spi
            .transaction(&mut [
                Operation::Write(&command(addr, true)),
                Operation::Read(&mut b),
            ])
            .map_err(Error::Spi)?;
        Ok(u16::from_be_bytes(b))
    }

    /// Reads a 32-bit register.
    pub fn read32(&mut self, addr: u16) -> Result<u32, Error<SPI::Error>> {
        let mut b = [0u8; 4];
        self.spi
            .transaction(&mut [
                Operation::Write(&command(addr, true)),
                Operation::Read(&mut b),
            ])
            .map_err(Error::Spi)?;
        Ok(u32::from_be_bytes(b))
    }

    /// Writes a 16-bit register.
    pub fn write16(&mut self, addr: u16, value: u16) -> Result<(), Error<SPI::Error>> {
        let [c0, c1] = command(addr, false);
        let [v0, v1] = value.to_be_bytes();
        self.spi.write(&[c0, c1, v0, v1]).map_err(Error::Spi)
    }

    /// Writes a 32-bit register.
    pub fn write32(&mut self, addr: u16, value: u32) -> Result<(), Error<SPI::Error>> {
        let [c0, c1] = command(addr, false);
        let [v0, v1, v2, v3] = value.to_be_bytes();
        self.spi
            .write(&[c0, c1, v0, v1, v2, v3])
            .map_err(Error::Spi)
    }

    /// Checks the chip answers, configures the line frequency, starts the DSP and continuous
    /// waveform capture with page-full interrupts on pages 7 and 15 routed to IRQ0.
    pub fn start_streaming(&mut self, line: LineFrequency) -> Result<u16, Error<SPI::Error>> {
        let version = self.read16(reg::VERSION)?;
        if version == 0 || version == 0xFFFF {
            return Err(Error::NotPresent(version));
        }
        let selfreq = match line {
            LineFrequency::Hz50 => 0,
            LineFrequency::Hz60 => 1 << 8,
        };
        self.write16(reg::ACCMODE, selfreq)?;
        self.write16(reg::RUN, 1)?;
        // Stop any capture before reconfiguring it.
        self.write16(reg::WFB_CFG, 0)?;
        self.write16(reg::WFB_PG_IRQEN, (1 << 7) | (1 << 15))?;
        self.write32(reg::STATUS0, PAGE_FULL)?;
        self.write32(reg::MASK0, PAGE_FULL)?;
        // WF_SRC | WF_MODE = 00 (continuous fill) | WF_CAP_SEL = fixed data rate | WF_CAP_EN |
        // BURST_CHAN = 0000 (all channels).
        let cfg = self.rate.wf_src() | (1 << 5) | (1 << 4);
        self.write16(reg::WFB_CFG, cfg)?;
        self.next_half = None;
        Ok(version)
    }

    /// Stops the waveform capture and masks its interrupt.
    pub fn stop_streaming(&mut self) -> Result<(), Error<SPI::Error>> {
        self.write16(reg::WFB_CFG, 0)?;
        self.write32(reg::MASK0, 0)?;
        self.next_half = None;
        Ok(())
    }

    /// If a half of the waveform buffer is complete, reads it into `out` as raw codes in the order
    /// `v_l1, i_l1, v_l2, i_l2, v_l3, i_l3` (128 sets, 768 values) and returns what was read;
    /// `Ok(None)` when no page-full interrupt is pending. Call it on the IRQ0 falling edge (or poll).
    pub fn read_ready(&mut self, out: &mut [f32]) -> Result<Option<Block>, Error<SPI::Error>> {
        let need = SETS_PER_HALF * CHANNELS;
        if out.len() < need {
            return Err(Error::BufferTooSmall {
                need,
                got: out.len(),
            });
        }
        let status = self.read32(reg::STATUS0)?;
        if status & PAGE_FULL == 0 {
            return Ok(None);
        }
        self.write32(reg::STATUS0, PAGE_FULL)?;
        let last_page = (self.read16(reg::WFB_TRG_STAT)? >> 12) & 0x0F;
        // Page 7 (or anything in 0..=7) done: the first half is complete; 15 (8..=15): the second.
        let half: u8 = if last_page < 8 { 0 } else { 1 };
        let overrun = self.next_half.is_some_and(|h| h != half);
        self.next_half = Some(half ^ 1);
        let addr = reg::WAVEFORM_BUFFER + u16::from(half) * (SETS_PER_HALF * WORDS_PER_SET) as u16;
        self.spi
            .transaction(&mut [
                Operation::Write(&command(addr, true)),
                Operation::Read(&mut self.raw),
            ])
            .map_err(Error::Spi)?;
        let len = decode_sets(&self.raw, out);
        Ok(Some(Block { len, half, overrun }))
    }
}

/// Reorders burst-read sample sets (`IA, VA, IB, VB, IC, VC, IN, -`, big-endian i32) into
/// `v_l1, i_l1, v_l2, i_l2, v_l3, i_l3` codes. Returns the number of values written; stops at whichever
/// of `raw` (whole sets only) or `out` (whole samples only) ends first.
pub fn decode_sets(raw: &[u8], out: &mut [f32]) -> usize {
    let mut written = 0;
    for (set, dst) in raw
        .chunks_exact(WORDS_PER_SET * 4)
        .zip(out.chunks_exact_mut(CHANNELS))
    {
        let mut words = [0i32; WORDS_PER_SET];
        for (w, b) in words.iter_mut().zip(set.chunks_exact(4)) {
            *w = i32::from_be_bytes([
                b.first().copied().unwrap_or(0),
                b.get(1).copied().unwrap_or(0),
                b.get(2).copied().unwrap_or(0),
                b.get(3).copied().unwrap_or(0),
            ]);
        }
        let [ia, va, ib, vb, ic, vc, _in, _] = words;
        for (d, code) in dst.iter_mut().zip([va, ia, vb, ib, vc, ic]) {
            *d = code as f32;
        }
        written += CHANNELS;
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::spi::{Mock, Transaction as T};
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    fn read_reg(addr: u16, value: &[u8]) -> Vec<T<u8>> {
        vec![
            T::transaction_start(),
            T::write_vec(command(addr, true).to_vec()),
            T::read_vec(value.to_vec()),
            T::transaction_end(),
        ]
    }

    fn write_reg(bytes: Vec<u8>) -> Vec<T<u8>> {
        vec![
            T::transaction_start(),
            T::write_vec(bytes),
            T::transaction_end(),
        ]
    }

    #[test]
    fn command_header_matches_datasheet() {
        // Datasheet example: read of 0x4FE (VERSION) = 0x4FE8, write of 0x480 (RUN) = 0x4800.
        assert_eq!(command(reg::VERSION, true), [0x4F, 0xE8]);
        assert_eq!(command(reg::RUN, false), [0x48, 0x00]);
        assert_eq!(command(reg::WAVEFORM_BUFFER, true), [0x80, 0x08]);
    }

    #[test]
    fn start_streaming_writes_the_documented_configuration() {
        let mut ex = read_reg(reg::VERSION, &[0x00, 0xFE]);
        ex.extend(write_reg(vec![0x49, 0x20, 0x01, 0x00])); // ACCMODE = 60 Hz
        ex.extend(write_reg(vec![0x48, 0x00, 0x00, 0x01])); // RUN = 1
        ex.extend(write_reg(vec![0x4A, 0x00, 0x00, 0x00])); // WFB_CFG = 0
        ex.extend(write_reg(vec![0x4A, 0x10, 0x80, 0x80])); // pages 7, 15
        ex.extend(write_reg(vec![0x40, 0x20, 0x00, 0x02, 0x00, 0x00])); // clear PAGE_FULL
        ex.extend(write_reg(vec![0x40, 0x50, 0x00, 0x02, 0x00, 0x00])); // MASK0 = PAGE_FULL
        ex.extend(write_reg(vec![0x4A, 0x00, 0x03, 0x30])); // PCF 8k, continuous, fixed rate, enable
        let mut spi = Mock::new(&ex);
        let mut dev = Ade9000::new(spi.clone(), WaveformRate::Pcf8k);
        assert_eq!(dev.start_streaming(LineFrequency::Hz60), Ok(0x00FE));
        spi.done();
    }

    #[test]
    fn absent_chip_is_reported() {
        let ex = read_reg(reg::VERSION, &[0xFF, 0xFF]);
        let mut spi = Mock::new(&ex);
        let mut dev = Ade9000::new(spi.clone(), WaveformRate::Sinc4_32k);
        assert_eq!(
            dev.start_streaming(LineFrequency::Hz50),
            Err(Error::NotPresent(0xFFFF))
        );
        spi.done();
    }

    #[test]
    fn nothing_ready_reads_only_status() {
        let ex = read_reg(reg::STATUS0, &[0, 0, 0, 0]);
        let mut spi = Mock::new(&ex);
        let mut dev = Ade9000::new(spi.clone(), WaveformRate::Pcf8k);
        let mut out = [0.0f32; SETS_PER_HALF * CHANNELS];
        assert_eq!(dev.read_ready(&mut out), Ok(None));
        spi.done();
    }

    fn half_buffer(seed: i32) -> Vec<u8> {
        let mut raw = Vec::new();
        for set in 0..SETS_PER_HALF as i32 {
            // IA, VA, IB, VB, IC, VC, IN, unused: distinct, signed values.
            for ch in 0..WORDS_PER_SET as i32 {
                let v = (seed + set * 16 + ch) * if ch % 2 == 0 { -1 } else { 1 };
                raw.extend_from_slice(&v.to_be_bytes());
            }
        }
        raw
    }

    fn ready_half(last_page: u8, half_addr: u16, raw: &[u8]) -> Vec<T<u8>> {
        let mut ex = read_reg(reg::STATUS0, &[0x00, 0x02, 0x00, 0x00]);
        ex.extend(write_reg(vec![0x40, 0x20, 0x00, 0x02, 0x00, 0x00]));
        ex.extend(read_reg(reg::WFB_TRG_STAT, &[last_page << 4, 0x00]));
        ex.extend(read_reg(half_addr, raw));
        ex
    }

    #[test]
    fn page_full_burst_reads_the_completed_half_in_core_order() {
        let first = half_buffer(1000);
        let second = half_buffer(5000);
        let mut ex = ready_half(7, 0x800, &first);
        ex.extend(ready_half(15, 0xC00, &second));
        ex.extend(ready_half(15, 0xC00, &second)); // the IC lapped us: overrun
        let mut spi = Mock::new(&ex);
        let mut dev = Ade9000::new(spi.clone(), WaveformRate::Pcf8k);
        let mut out = [0.0f32; SETS_PER_HALF * CHANNELS];

        let b = dev.read_ready(&mut out).unwrap().unwrap();
        assert_eq!(
            b,
            Block {
                len: 768,
                half: 0,
                overrun: false
            }
        );
        // Set 0: IA=-1000, VA=1001, IB=-1002, VB=1003, IC=-1004, VC=1005.
        assert_eq!(
            &out[..6],
            &[1001.0, -1000.0, 1003.0, -1002.0, 1005.0, -1004.0]
        );
        // Last set: base 1000 + 127*16.
        let base = 1000 + 127 * 16;
        assert_eq!(
            &out[762..768],
            &[
                (base + 1) as f32,
                -(base as f32),
                (base + 3) as f32,
                -(base + 2) as f32,
                (base + 5) as f32,
                -(base + 4) as f32
            ]
        );

        let b = dev.read_ready(&mut out).unwrap().unwrap();
        assert_eq!((b.half, b.overrun), (1, false));
        assert_eq!(out[0], 5001.0);
        let b = dev.read_ready(&mut out).unwrap().unwrap();
        assert_eq!((b.half, b.overrun), (1, true));
        spi.done();
    }

    #[test]
    fn short_buffer_is_an_error_not_a_panic() {
        let mut spi = Mock::new(&[]);
        let mut dev = Ade9000::new(spi.clone(), WaveformRate::Pcf8k);
        let mut out = [0.0f32; 10];
        assert_eq!(
            dev.read_ready(&mut out),
            Err(Error::BufferTooSmall { need: 768, got: 10 })
        );
        spi.done();
    }

    #[test]
    fn decode_handles_partial_input_without_panicking() {
        let raw = half_buffer(0);
        let mut out = [0.0f32; 14]; // two whole samples and change
        assert_eq!(decode_sets(&raw, &mut out), 12);
        assert_eq!(decode_sets(&raw[..40], &mut out), 6); // one whole set and a fragment
        assert_eq!(decode_sets(&[], &mut out), 0);
    }

    #[test]
    fn front_end_scaling_maps_full_scale_to_terminal_units() {
        let fe = FrontEnd::SMARTMETER;
        fe.validate().unwrap();
        // A full-scale code is 1 V peak at the pins: 1001 V peak at the terminals.
        let v = FULL_SCALE_CODE * fe.volts_per_code();
        assert!((v - 1001.0).abs() < 1e-2, "{v}");
        // 230 V rms peak = 325.27 V: code = 325.27 / 1001 * FS.
        let code = (230.0 * core::f32::consts::SQRT_2 / 1001.0 * FULL_SCALE_CODE).round();
        assert!((code * fe.volts_per_code() - 325.269).abs() < 1e-2);
        // 1 V peak at the pins over 10.2 Ω = 98 mA secondary = 245.1 A primary at 2500:1.
        let a = FULL_SCALE_CODE * fe.amps_per_code();
        assert!((a - 245.098).abs() < 1e-2, "{a}");
        let (v, a) = fe.scaling();
        assert!((v * f64::from(FULL_SCALE_CODE) - 1001.0).abs() < 1e-9);
        assert!((a * f64::from(FULL_SCALE_CODE) - 2500.0 / 10.2).abs() < 1e-4);
        let bad = FrontEnd {
            burden_ohm: 0.0,
            ..fe
        };
        assert_eq!(bad.validate(), Err(Error::InvalidFrontEnd("burden_ohm")));
        let nan = FrontEnd {
            divider_ratio: f32::NAN,
            ..fe
        };
        assert_eq!(nan.validate(), Err(Error::InvalidFrontEnd("divider_ratio")));
    }
}
