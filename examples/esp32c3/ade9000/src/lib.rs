//! ADE9000 three-phase metering IC: the waveform-buffer reader the SmartMeter firmware samples with.
//!
//! The driver is generic over [`embedded_hal::spi::SpiDevice`], owns no pins besides the SPI device,
//! never allocates and never panics, so it runs unchanged on the ESP32-C3 and under host unit tests with
//! a mock SPI.
//!
//! How sampling works (ADE9000 Technical Reference Manual UG-1098, "Waveform Buffer"):
//! - The IC stores fixed-rate sample sets (`IA, VA, IB, VB, IC, VC, IN` plus a spare slot: eight
//!   32-bit words per set) in a 2048-word circular buffer at `0x800..=0xFFF`: 16 pages of 128 words,
//!   16 sets per page. [`WaveformRate`] picks the source (`WFB_CFG.WF_SRC`): the DSP-processed
//!   `xI_PCF`/`xV_PCF` samples at 8 kSPS or the sinc4 output at 32 kSPS.
//! - [`Ade9000::start_streaming`] fills the buffer continuously (`WF_MODE = 3`, no trigger enabled, so
//!   it never stops) and enables page-full interrupts on pages 7 and 15, routed to the IRQ0 pin. Each
//!   interrupt means one half of the buffer (128 sets) is complete.
//! - [`Ade9000::read_ready`] checks `STATUS0.PAGE_FULL`, clears it, asks `WFB_TRG_STAT.WFB_LAST_PAGE`
//!   which page was filled last, and burst-reads the completed half in one SPI transaction. With
//!   `BURST_CHAN = 0000` and `WF_IN_EN = 0` the burst returns only `IA, VA, IB, VB, IC, VC` per set
//!   (6 words, 3 KiB per half); the driver reorders them to the core's channel order
//!   `v_l1, i_l1, v_l2, i_l2, v_l3, i_l3` as raw codes.
//! - [`FrontEnd`] describes the analog path: the voltage divider, the current transformer with its
//!   burden resistor and the PGA gains [`Ade9000::start_streaming`] programs into `PGA_GAIN`. With the
//!   full-scale code of the selected source it turns codes into volts and amps; these two numbers are
//!   what the core's `SampleScale::Codes` takes. [`FrontEnd::SMARTMETER`] reproduces the original
//!   board's scaling (see its documentation for the derivation and sources).
//!
//! Every register address, width and bit position below names the public source it was checked
//! against (read, not copied): the Linux IIO driver `torvalds/linux:drivers/iio/adc/ade9000.c` (2025,
//! Analog Devices), the Analog Devices no-OS driver `analogdevicesinc/no-OS:drivers/meter/ade9000/ade9000.h`
//! (2024), Analog Devices' Arduino ADE9000API (copy at `CalPlug/ADE9078-3PhaseWattmeter:Documents/
//! Project Resources/AD Example ADE9000 Library/Software/library/ADE9000API/ADE9000API.h`), the
//! datasheet field descriptions of the register-compatible ADE9078 (whose rates are half the
//! ADE9000's) in `CalPlug/ADE9078-3PhaseWattmeter:Firmware/ArduinoFirmware/ADE9078/ADE9078registers.h`,
//! the ESP32 library of the original SmartMeter `voelkerb/ADE9000:src/ADE9000.h`, and the reference
//! manual UG-1098 (page 36, "Waveform Buffer", Table 22).
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

/// Register addresses.
///
/// Registers `0x480..=0x4FE` are 16 bits wide, everything else is 32 bits (sources: the `_16` register
/// names, `VERSION_16 0x4FE` included, in `ADE9078registers.h`; the 16-bit range check in AliMoal's
/// ADE90xx library; ADE9000API writing `RUN` with `SPI_Write_16(ADDR_RUN, 0x0001)`; the Linux driver
/// `drivers/iio/adc/ade9000.c` uses the same split but treats the two end points `RUN` and `VERSION`
/// as 32-bit, which the chip tolerates for writes because it latches the first 16 data bits).
/// Addresses: `torvalds/linux:drivers/iio/adc/ade9000.c` (`ADE9000_REG_*`), identical in
/// `analogdevicesinc/no-OS:drivers/meter/ade9000/ade9000.h`.
pub mod reg {
    /// Status register 0 (32-bit, write 1 to clear).
    pub const STATUS0: u16 = 0x402;
    /// Interrupt mask for the IRQ0 pin (32-bit).
    pub const MASK0: u16 = 0x405;
    /// DSP run register (16-bit, write 1 to start the DSP).
    pub const RUN: u16 = 0x480;
    /// Configuration register 1 (16-bit): `SWRST` in bit 0.
    pub const CONFIG1: u16 = 0x481;
    /// Accumulation mode (16-bit): line frequency selection `SELFREQ` in bit 8.
    pub const ACCMODE: u16 = 0x492;
    /// Waveform buffer configuration (16-bit), fields in [`super::wfb_cfg`].
    pub const WFB_CFG: u16 = 0x4A0;
    /// Page-full interrupt enables, bit `n` for page `n` (16-bit).
    pub const WFB_PG_IRQEN: u16 = 0x4A1;
    /// Events that trigger (stop or mark) a capture (16-bit); zero disables all triggers.
    pub const WFB_TRG_CFG: u16 = 0x4A2;
    /// Waveform buffer trigger status (16-bit): `WFB_LAST_PAGE` in bits 15:12.
    pub const WFB_TRG_STAT: u16 = 0x4A3;
    /// PGA gain of every ADC channel (16-bit), fields in [`super::pga`] (`ADE9000_REG_PGA_GAIN 0x4B9`
    /// in both drivers; `PGA_GAIN_16 0x4B9` in `ADE9078registers.h`).
    pub const PGA_GAIN: u16 = 0x4B9;
    /// Silicon version (16-bit).
    pub const VERSION: u16 = 0x4FE;
    /// First word of the waveform buffer (`0x800..=0xFFF`, burst-readable).
    pub const WAVEFORM_BUFFER: u16 = 0x800;
    /// First word of the second half of the waveform buffer (page 8), `ADE9000_REG_WF_HALF_BUFF`.
    pub const WAVEFORM_BUFFER_HALF: u16 = 0xC00;
}

/// `WFB_CFG` bit fields (`torvalds/linux:drivers/iio/adc/ade9000.c` `ADE9000_WF_*_MASK`,
/// `analogdevicesinc/no-OS:drivers/meter/ade9000/ade9000.h` "ADE9000_REG_WFB_CFG Bit Definition" with
/// the `ade9000_wf_src_e`, `ade9000_wf_mode_e`, `ade9000_burst_ch_e` enums, and the field
/// descriptions in `ADE9078registers.h`: "WF_IN_EN = 0: IN waveform samples are not read out of the
/// waveform buffer through SPI", "BURST_CHAN: selects which data to read out ... through SPI").
pub mod wfb_cfg {
    /// Bits 3:0 `BURST_CHAN = 0000`: a burst read returns all channels of each set.
    pub const BURST_CHAN_ALL: u16 = 0;
    /// Bit 4 `WF_CAP_EN`: start filling the buffer (from `0x800`).
    pub const WF_CAP_EN: u16 = 1 << 4;
    /// Bit 5 `WF_CAP_SEL`: 1 = fixed data rate samples, 0 = resampled (128 points per line cycle).
    pub const WF_CAP_SEL_FIXED_RATE: u16 = 1 << 5;
    /// Bits 7:6 `WF_MODE`: 0 stops when the buffer is full; 3 fills continuously and only records
    /// the address of enabled trigger events (the Linux driver's "streaming mode").
    pub const WF_MODE_CONTINUOUS: u16 = 0b11 << 6;
    /// Bits 9:8 `WF_SRC = 00`: sinc4 output, 32 kSPS.
    pub const WF_SRC_SINC4: u16 = 0b00 << 8;
    /// Bits 9:8 `WF_SRC = 10`: sinc4 + IIR low-pass output, 8 kSPS (`01` is reserved).
    pub const WF_SRC_SINC4_LPF: u16 = 0b10 << 8;
    /// Bits 9:8 `WF_SRC = 11`: DSP-processed `xI_PCF`, `xV_PCF`, 8 kSPS.
    pub const WF_SRC_PCF: u16 = 0b11 << 8;
    /// Bit 12 `WF_IN_EN`: also store (and burst) the neutral current `IN`. This driver leaves it 0.
    pub const WF_IN_EN: u16 = 1 << 12;
}

/// `STATUS0` / `MASK0` bit 17 `PAGE_FULL`: a page with its interrupt enabled has been filled
/// (`ADE9000_ST0_PAGE_FULL_BIT` in the Linux driver, `ADE9000_STATUS0_PAGE_FULL` in no-OS).
pub const PAGE_FULL: u32 = 1 << 17;
/// `CONFIG1` bit 0 `SWRST`: software reset (`ADE9000_SWRST_BIT` / no-OS `ADE9000_SWRST`).
pub const SWRST: u16 = 1 << 0;
/// `ACCMODE` bit 8 `SELFREQ`: 1 = 60 Hz, 0 = 50 Hz (no-OS `ADE9000_SELFREQ`, Linux
/// `ADE9000_ACCMODE_60HZ 0x0100`).
pub const ACCMODE_SELFREQ_60HZ: u16 = 1 << 8;
/// `WFB_TRG_STAT` bits 15:12 `WFB_LAST_PAGE`, the page filled last with fixed-rate samples; bits 10:0
/// hold a trigger address (no-OS `ADE9000_WFB_LAST_PAGE`, `ADE9078registers.h`).
pub const WFB_LAST_PAGE_SHIFT: u16 = 12;
/// `WFB_PG_IRQEN` bits for pages 7 and 15: one interrupt per completed half
/// (Linux `ADE9000_MIDDLE_PAGE_BIT`, `ADE9000_LAST_PAGE_BIT`).
pub const PG_IRQEN_HALVES: u16 = (1 << 7) | (1 << 15);

/// `PGA_GAIN` bit fields: two bits per ADC, `IA` in bits 1:0, `IB` 3:2, `IC` 5:4, `IN` 7:6, `VA` 9:8,
/// `VB` 11:10, `VC` 13:12 (no-OS `ADE9000_IA_GAIN NO_OS_GENMASK(1, 0)` … `ADE9000_VC_GAIN
/// NO_OS_GENMASK(13, 12)`; the field descriptions in `ADE9078registers.h`).
pub mod pga {
    /// Bit offsets of the four current-channel fields (`IA, IB, IC, IN`).
    pub const CURRENT_SHIFTS: [u16; 4] = [0, 2, 4, 6];
    /// Bit offsets of the three voltage-channel fields (`VA, VB, VC`).
    pub const VOLTAGE_SHIFTS: [u16; 3] = [8, 10, 12];
}

/// Gain of the ADE9000's programmable-gain amplifier in front of one ADC.
///
/// A gain of `g` makes `1/g` V peak at the pins the full-scale input, so the same code means `g`
/// times fewer volts at the pins. Field codes from the datasheet description of `PGA_GAIN` (quoted in
/// `CalPlug/ADE9078-3PhaseWattmeter:Firmware/ArduinoFirmware/ADE9078/ADE9078registers.h`): `00` = 1,
/// `01` = 2, `10` = 4, `11` = 4. The Linux driver's `PGA_GAIN` read-back (`min(1 << code, 4)`) and no-OS
/// `ADE9000_PGA_GAIN_4 = 3` agree that `11` is gain 4; no-OS names code `10` "gain 3", so this driver
/// writes `11` for gain 4, as the original SmartMeter firmware does (`0x15FF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgaGain {
    /// Gain 1 (`00`, the reset value): ±1 V peak full scale.
    X1,
    /// Gain 2 (`01`): ±0.5 V peak full scale.
    X2,
    /// Gain 4 (`11`): ±0.25 V peak full scale.
    X4,
}

impl PgaGain {
    /// The two-bit field code.
    pub fn code(self) -> u16 {
        match self {
            PgaGain::X1 => 0b00,
            PgaGain::X2 => 0b01,
            PgaGain::X4 => 0b11,
        }
    }

    /// The amplification factor.
    pub fn factor(self) -> f32 {
        match self {
            PgaGain::X1 => 1.0,
            PgaGain::X2 => 2.0,
            PgaGain::X4 => 4.0,
        }
    }
}

/// The `PGA_GAIN` value giving all three voltage ADCs `voltage` and all four current ADCs (the
/// neutral included) `current`.
pub fn pga_gain_register(voltage: PgaGain, current: PgaGain) -> u16 {
    let v = pga::VOLTAGE_SHIFTS
        .iter()
        .fold(0, |acc, s| acc | (voltage.code() << s));
    pga::CURRENT_SHIFTS
        .iter()
        .fold(v, |acc, s| acc | (current.code() << s))
}

/// Waveform code of a `xI_PCF` / `xV_PCF` sample for a full-scale input (±1 V peak, 0.707 V rms at
/// the ADC pins, PGA gain 1): `ADE9000_PCF_FS_CODES` in `analogdevicesinc/no-OS`,
/// `ADE9000_PCF_FULL_SCALE_CODES` in ADE9000API, `ADE9000_8K_FULL_SCALE_CODES` in `voelkerb/ADE9000`. (The Linux driver uses the rounded
/// 74,770,000, 0.3 % higher; calibration absorbs the difference.)
pub const PCF_FULL_SCALE_CODE: f32 = 74_532_013.0;
/// Waveform code of a sinc4 sample (32 kSPS) for a full-scale input: `ADE9000_32K_FULL_SCALE_CODES`
/// in `voelkerb/ADE9000` (the sinc4 output is 24 bits shifted left by 4, UG-1098 Table 22).
pub const SINC4_FULL_SCALE_CODE: f32 = 67_107_786.0;

/// Waveform samples are handed out shifted right by this many bits: the IC's codes reach ±7.5·10⁷
/// (27 bits) at full scale, the smartmeter core's integer path takes codes of up to 24 bits (every
/// `i64` sum then stays in range), and a 24-bit code still resolves 2·10⁻⁷ of full scale.
pub const CODE_SHIFT: u32 = 4;

/// 32-bit words per page of the waveform buffer (`ADE9000_WFB_PAGE_SIZE`).
pub const WORDS_PER_PAGE: usize = 128;
/// Pages in the waveform buffer (`ADE9000_WFB_NR_OF_PAGES`).
pub const PAGES: usize = 16;
/// Words one sample set occupies in the buffer: `IA, VA, IB, VB, IC, VC, IN` and a spare
/// (`ADE9000_WFB_MAX_CHANNELS`).
pub const STORED_WORDS_PER_SET: usize = 8;
/// Sample sets per page (16).
pub const SETS_PER_PAGE: usize = WORDS_PER_PAGE / STORED_WORDS_PER_SET;
/// Sample sets in one half of the waveform buffer (8 pages × 16 sets).
pub const SETS_PER_HALF: usize = SETS_PER_PAGE * PAGES / 2;
/// Words a burst read returns per set with `BURST_CHAN = 0000`, `WF_IN_EN = 0`:
/// `IA, VA, IB, VB, IC, VC` (the Linux driver reads `128 × 6` words per half in streaming mode).
pub const BURST_WORDS_PER_SET: usize = 6;
/// Values this driver writes per sample set (`v, i` for three phases).
pub const CHANNELS: usize = 6;
/// Bytes of one half-buffer burst read (3072).
pub const HALF_BYTES: usize = SETS_PER_HALF * BURST_WORDS_PER_SET * 4;

/// Which samples the waveform buffer records (`WFB_CFG.WF_SRC`; rates from UG-1098 page 36).
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

    /// Code of a full-scale input in this source's samples, as the IC writes them.
    pub fn full_scale_code(self) -> f32 {
        match self {
            WaveformRate::Pcf8k => PCF_FULL_SCALE_CODE,
            WaveformRate::Sinc4_32k => SINC4_FULL_SCALE_CODE,
        }
    }

    /// Code of a full-scale input in the samples [`Ade9000::read_ready`] hands out (shifted right by
    /// [`CODE_SHIFT`]).
    pub fn delivered_full_scale_code(self) -> f32 {
        self.full_scale_code() / (1u32 << CODE_SHIFT) as f32
    }

    /// `WFB_CFG.WF_SRC` bits 9:8.
    fn wf_src(self) -> u16 {
        match self {
            WaveformRate::Pcf8k => wfb_cfg::WF_SRC_PCF,
            WaveformRate::Sinc4_32k => wfb_cfg::WF_SRC_SINC4,
        }
    }

    /// The `WFB_CFG` value [`Ade9000::start_streaming`] writes before setting `WF_CAP_EN`:
    /// continuous fill of fixed-rate samples from this source, all channels, no neutral.
    pub fn wfb_cfg(self) -> u16 {
        self.wf_src()
            | wfb_cfg::WF_MODE_CONTINUOUS
            | wfb_cfg::WF_CAP_SEL_FIXED_RATE
            | wfb_cfg::BURST_CHAN_ALL
    }
}

/// Which half of the buffer is complete, given `WFB_LAST_PAGE`.
///
/// Pages 7 and 15 raise the interrupt, but the IC keeps filling while the interrupt is serviced, so
/// the last filled page may already be past them: pages 7..=14 mean the first half (pages 0..=7) is
/// complete and the second is being written; 15 and 0..=6 mean the second half is complete. This
/// tolerates up to 7 pages (14 ms at 8 kSPS, 3.5 ms at 32 kSPS) of interrupt latency.
pub fn completed_half(last_page: u16) -> u8 {
    match last_page & 0x0F {
        7..=14 => 0,
        _ => 1,
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

/// Analog front end: how volts and amps at the terminals map onto the ADC inputs, including the PGA
/// gains the driver programs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrontEnd {
    /// Voltage divider ratio (terminal volts per ADC-pin volt), e.g. 1001 for 1 MΩ over 1 kΩ.
    pub divider_ratio: f32,
    /// Current transformer turns ratio (primary amps per secondary amp), e.g. 2000.
    pub ct_ratio: f32,
    /// Burden resistor across the CT secondary, in ohms (ADC-pin volts per secondary amp).
    pub burden_ohm: f32,
    /// PGA gain of the three voltage ADCs.
    pub voltage_pga: PgaGain,
    /// PGA gain of the four current ADCs (`IA, IB, IC, IN`).
    pub current_pga: PgaGain,
}

impl FrontEnd {
    /// The original SmartMeter board and the gains its firmware programs: a 994.7:1 voltage divider,
    /// 2000:1 current transformers on a 15.74 Ω burden, PGA ×2 on the voltage and ×4 on the current
    /// channels.
    ///
    /// This is the one place these constants are documented (the firmware's README refers here; a
    /// test in `tests/front_end_docs.rs` fails if this sentence or the README disagrees with the
    /// values below).
    ///
    /// The original firmware's ADE9000 library (`voelkerb/ADE9000:src/ADE9000.h`, used by
    /// `voelkerb/smartmeter:Firmware/Version_2_0`) converts codes with `FULL_SCALE_VOLTAGE_V 994.7` V and
    /// `FULL_SCALE_VOLTAGE_I 127.065` A per full-scale code, divided by `STANDARD_VOLTAGE_GAIN 2.0` and
    /// `STANDARD_CURRENT_GAIN 4.0`, the gains it writes to `PGA_GAIN` (`0x15FF`, "Gain is 2 for voltage
    /// and 4 for current", `src/ADE9000.cpp` `startSampling`). Where the two numbers come from:
    /// - voltage: `voelkerb/smartmeter:Firmware/Analog Devices API/ADE9000Calibration/
    ///   ADE9000CalibrationInputs.h` sets `VOLTAGE_TRANSFER_FUNCTION 0.00100532823967` with the comment
    ///   `R_Sens1 / (R_HSR + R_PTC + R_1 + R_2 + R_3 + R_Sens1) = 1/994,7`; the DAQ-board BOM
    ///   (`voelkerb/smartmeter:BOM/README.md`) lists three 330 kΩ per phase (`R13-21`), 3.3 kΩ high-surge
    ///   resistors (`R7-9`), PTCs (`R10-12`) and 1 kΩ sense resistors. Divider ratio 994.7.
    /// - current: the same file sets `CURRENT_TRANSFER_FUNCTION 0.007869987801519` V/A (= 1/127.065); the
    ///   BOM lists eight 7.87 Ω burden resistors (`R28-33, R40, R41`: two per current channel, 15.74 Ω).
    ///   15.74 Ω × 127.065 A/V = 2000.0, so the CTs are 2000:1 (the CT part itself is not named in the
    ///   published sources; the ratio is inferred from these two numbers).
    ///
    /// With the PGA a full-scale code is 0.5 V peak (voltage) and 0.25 V peak (current) at the pins:
    /// 497.35 V and 31.766 A at the terminals. The full-scale codes ([`PCF_FULL_SCALE_CODE`],
    /// [`SINC4_FULL_SCALE_CODE`]) are the library's `ADE9000_8K_FULL_SCALE_CODES` and
    /// `ADE9000_32K_FULL_SCALE_CODES`, so [`FrontEnd::scaling`] reproduces the original's volts and amps
    /// per code, times 2^[`CODE_SHIFT`] for the bits this driver strips.
    pub const SMARTMETER: FrontEnd = FrontEnd {
        divider_ratio: 994.7,
        ct_ratio: 2000.0,
        burden_ohm: 15.74,
        voltage_pga: PgaGain::X2,
        current_pga: PgaGain::X4,
    };

    /// An external front end with the PGA at its reset value (gain 1 on every channel).
    pub const fn unity_gain(divider_ratio: f32, ct_ratio: f32, burden_ohm: f32) -> FrontEnd {
        FrontEnd {
            divider_ratio,
            ct_ratio,
            burden_ohm,
            voltage_pga: PgaGain::X1,
            current_pga: PgaGain::X1,
        }
    }

    /// The `PGA_GAIN` register value [`Ade9000::start_streaming`] writes for this front end.
    pub fn pga_gain_register(&self) -> u16 {
        pga_gain_register(self.voltage_pga, self.current_pga)
    }

    /// Terminal volts per delivered code of `rate`'s samples.
    pub fn volts_per_code(&self, rate: WaveformRate) -> f32 {
        self.divider_ratio / self.voltage_pga.factor() / rate.delivered_full_scale_code()
    }

    /// Primary amps per delivered code of `rate`'s samples.
    pub fn amps_per_code(&self, rate: WaveformRate) -> f32 {
        self.ct_ratio
            / self.burden_ohm
            / self.current_pga.factor()
            / rate.delivered_full_scale_code()
    }

    /// `(volts_per_code, amps_per_code)` for `rate`'s samples in f64, the form the smartmeter core's
    /// calibration `FrontEnd` takes. The full-scale code differs by source (sinc4 vs `xPCF`), so
    /// the scaling must be taken for the rate the chip streams at; the PGA gains are the ones
    /// [`Ade9000::start_streaming`] programs from this front end.
    pub fn scaling(&self, rate: WaveformRate) -> (f64, f64) {
        let fs = f64::from(rate.delivered_full_scale_code());
        (
            f64::from(self.divider_ratio) / f64::from(self.voltage_pga.factor()) / fs,
            f64::from(self.ct_ratio)
                / f64::from(self.burden_ohm)
                / f64::from(self.current_pga.factor())
                / fs,
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
    front_end: FrontEnd,
    next_half: Option<u8>,
    raw: [u8; HALF_BYTES],
}

/// 16-bit SPI command header for `addr`: the 12-bit address in bits 15:4, the read flag in bit 3,
/// sent MSB first (`ADE9000_REG_ADDR_MASK GENMASK(15, 4)`, `ADE9000_REG_READ_BIT_MASK BIT(3)` in
/// `torvalds/linux:drivers/iio/adc/ade9000.c`; `ADE9000_SPI_READ NO_OS_BIT(3)` in no-OS). Data follows
/// MSB first, 16 or 32 bits by register; a burst read keeps clocking out consecutive words.
pub fn command(addr: u16, read: bool) -> [u8; 2] {
    let word = ((addr & 0x0FFF) << 4) | if read { 0x08 } else { 0x00 };
    word.to_be_bytes()
}

impl<SPI: SpiDevice> Ade9000<SPI> {
    /// Wraps an SPI device (mode 0 or 3, ≤ 20 MHz; CS handled by the `SpiDevice`) that streams `rate`'s
    /// samples through `front_end` (whose PGA gains [`Ade9000::start_streaming`] programs).
    pub fn new(spi: SPI, rate: WaveformRate, front_end: FrontEnd) -> Self {
        Self {
            spi,
            rate,
            front_end,
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

    /// The analog front end the samples pass through.
    pub fn front_end(&self) -> FrontEnd {
        self.front_end
    }

    /// `(volts_per_code, amps_per_code)` of the samples [`Ade9000::read_ready`] hands out: the front
    /// end, its PGA gains and the streamed source's full-scale code together.
    pub fn scaling(&self) -> (f64, f64) {
        self.front_end.scaling(self.rate)
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

    /// Checks the chip answers, sets the front end's PGA gains, configures the line frequency, starts
    /// the DSP and continuous waveform capture with page-full interrupts on pages 7 and 15 routed to
    /// IRQ0.
    pub fn start_streaming(&mut self, line: LineFrequency) -> Result<u16, Error<SPI::Error>> {
        let version = self.read16(reg::VERSION)?;
        if version == 0 || version == 0xFFFF {
            return Err(Error::NotPresent(version));
        }
        // Before the DSP runs, as the original firmware does (`PGA_GAIN` first in its `init`).
        self.write16(reg::PGA_GAIN, self.front_end.pga_gain_register())?;
        let selfreq = match line {
            LineFrequency::Hz50 => 0,
            LineFrequency::Hz60 => ACCMODE_SELFREQ_60HZ,
        };
        self.write16(reg::ACCMODE, selfreq)?;
        self.write16(reg::RUN, 1)?;
        // Stop any capture before reconfiguring it; no trigger may end or re-centre the capture.
        self.write16(reg::WFB_CFG, 0)?;
        self.write16(reg::WFB_TRG_CFG, 0)?;
        self.write16(reg::WFB_PG_IRQEN, PG_IRQEN_HALVES)?;
        self.write32(reg::STATUS0, PAGE_FULL)?;
        self.write32(reg::MASK0, PAGE_FULL)?;
        // Configure with WF_CAP_EN clear, then set it: capture restarts at 0x800 (page 0).
        let cfg = self.rate.wfb_cfg();
        self.write16(reg::WFB_CFG, cfg)?;
        self.write16(reg::WFB_CFG, cfg | wfb_cfg::WF_CAP_EN)?;
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

    /// If a half of the waveform buffer is complete, reads it (one 3 KiB burst) into `out` as raw
    /// codes in the order
    /// `v_l1, i_l1, v_l2, i_l2, v_l3, i_l3` (128 sets, 768 values) and returns what was read;
    /// `Ok(None)` when no page-full interrupt is pending. Call it on the IRQ0 falling edge (or poll).
    pub fn read_ready(&mut self, out: &mut [i32]) -> Result<Option<Block>, Error<SPI::Error>> {
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
        let last_page = self.read16(reg::WFB_TRG_STAT)? >> WFB_LAST_PAGE_SHIFT;
        let half = completed_half(last_page);
        let overrun = self.next_half.is_some_and(|h| h != half);
        self.next_half = Some(half ^ 1);
        let addr = if half == 0 {
            reg::WAVEFORM_BUFFER
        } else {
            reg::WAVEFORM_BUFFER_HALF
        };
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

/// Reorders burst-read sample sets (`IA, VA, IB, VB, IC, VC`, big-endian i32) into
/// `v_l1, i_l1, v_l2, i_l2, v_l3, i_l3` codes shifted right by [`CODE_SHIFT`]. Returns the number of
/// values written; stops at whichever of `raw` (whole sets only) or `out` (whole samples only) ends
/// first.
pub fn decode_sets(raw: &[u8], out: &mut [i32]) -> usize {
    let mut written = 0;
    for (set, dst) in raw
        .chunks_exact(BURST_WORDS_PER_SET * 4)
        .zip(out.chunks_exact_mut(CHANNELS))
    {
        let mut words = [0i32; BURST_WORDS_PER_SET];
        for (w, b) in words.iter_mut().zip(set.chunks_exact(4)) {
            *w = i32::from_be_bytes([
                b.first().copied().unwrap_or(0),
                b.get(1).copied().unwrap_or(0),
                b.get(2).copied().unwrap_or(0),
                b.get(3).copied().unwrap_or(0),
            ]);
        }
        let [ia, va, ib, vb, ic, vc] = words;
        for (d, code) in dst.iter_mut().zip([va, ia, vb, ib, vc, ic]) {
            *d = code >> CODE_SHIFT;
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
        // Address in bits 15:4, read flag in bit 3: VERSION (0x4FE) read = 0x4FE8, RUN (0x480)
        // write = 0x4800.
        assert_eq!(command(reg::VERSION, true), [0x4F, 0xE8]);
        assert_eq!(command(reg::RUN, false), [0x48, 0x00]);
        assert_eq!(command(reg::WAVEFORM_BUFFER, true), [0x80, 0x08]);
        assert_eq!(command(reg::WAVEFORM_BUFFER_HALF, true), [0xC0, 0x08]);
        assert_eq!(command(reg::WFB_TRG_STAT, true), [0x4A, 0x38]);
        assert_eq!(command(reg::STATUS0, false), [0x40, 0x20]);
        assert_eq!(command(reg::PGA_GAIN, false), [0x4B, 0x90]);
    }

    #[test]
    fn register_map_matches_the_published_drivers() {
        // Addresses as in drivers/iio/adc/ade9000.c and no-OS ade9000.h.
        let map = [
            (reg::STATUS0, 0x402),
            (reg::MASK0, 0x405),
            (reg::RUN, 0x480),
            (reg::CONFIG1, 0x481),
            (reg::ACCMODE, 0x492),
            (reg::WFB_CFG, 0x4A0),
            (reg::WFB_PG_IRQEN, 0x4A1),
            (reg::WFB_TRG_CFG, 0x4A2),
            (reg::WFB_TRG_STAT, 0x4A3),
            (reg::PGA_GAIN, 0x4B9),
            (reg::VERSION, 0x4FE),
            (reg::WAVEFORM_BUFFER, 0x800),
            (reg::WAVEFORM_BUFFER_HALF, 0xC00),
        ];
        for (got, want) in map {
            assert_eq!(got, want);
        }
        // The half-buffer address is 8 pages of 128 words past the start.
        assert_eq!(
            usize::from(reg::WAVEFORM_BUFFER_HALF - reg::WAVEFORM_BUFFER),
            WORDS_PER_PAGE * PAGES / 2
        );
        assert_eq!((SETS_PER_PAGE, SETS_PER_HALF, HALF_BYTES), (16, 128, 3072));
        // WFB_CFG fields: PCF source, continuous mode, fixed rate, all channels, no neutral.
        assert_eq!(WaveformRate::Pcf8k.wfb_cfg(), 0x03E0);
        assert_eq!(WaveformRate::Sinc4_32k.wfb_cfg(), 0x00E0);
        assert_eq!(WaveformRate::Pcf8k.wfb_cfg() & wfb_cfg::WF_IN_EN, 0);
        assert_eq!(wfb_cfg::WF_SRC_SINC4_LPF, 0x0200);
        assert_eq!(
            (PAGE_FULL, SWRST, ACCMODE_SELFREQ_60HZ),
            (0x2_0000, 1, 0x100)
        );
    }

    fn start_sequence(
        version: [u8; 2],
        pga: [u8; 2],
        accmode: [u8; 2],
        cfg: [u8; 2],
        cfg_en: [u8; 2],
    ) -> Vec<T<u8>> {
        let mut ex = read_reg(reg::VERSION, &version);
        ex.extend(write_reg(vec![0x4B, 0x90, pga[0], pga[1]])); // PGA_GAIN
        ex.extend(write_reg(vec![0x49, 0x20, accmode[0], accmode[1]])); // ACCMODE
        ex.extend(write_reg(vec![0x48, 0x00, 0x00, 0x01])); // RUN = 1
        ex.extend(write_reg(vec![0x4A, 0x00, 0x00, 0x00])); // WFB_CFG = 0 (capture off)
        ex.extend(write_reg(vec![0x4A, 0x20, 0x00, 0x00])); // WFB_TRG_CFG = 0 (no triggers)
        ex.extend(write_reg(vec![0x4A, 0x10, 0x80, 0x80])); // WFB_PG_IRQEN = pages 7, 15
        ex.extend(write_reg(vec![0x40, 0x20, 0x00, 0x02, 0x00, 0x00])); // clear PAGE_FULL
        ex.extend(write_reg(vec![0x40, 0x50, 0x00, 0x02, 0x00, 0x00])); // MASK0 = PAGE_FULL
        ex.extend(write_reg(vec![0x4A, 0x00, cfg[0], cfg[1]])); // WFB_CFG, capture still off
        ex.extend(write_reg(vec![0x4A, 0x00, cfg_en[0], cfg_en[1]])); // ... then WF_CAP_EN
        ex
    }

    #[test]
    fn start_streaming_writes_the_documented_configuration() {
        // 60 Hz; PCF source (0x300) | WF_MODE 3 (0xC0) | fixed rate (0x20), then | WF_CAP_EN (0x10).
        // PGA_GAIN 0x15FF: voltages gain 2, currents gain 4, as the original firmware writes it.
        let ex = start_sequence(
            [0x00, 0xFE],
            [0x15, 0xFF],
            [0x01, 0x00],
            [0x03, 0xE0],
            [0x03, 0xF0],
        );
        let mut spi = Mock::new(&ex);
        let mut dev = Ade9000::new(spi.clone(), WaveformRate::Pcf8k, FrontEnd::SMARTMETER);
        assert_eq!(dev.start_streaming(LineFrequency::Hz60), Ok(0x00FE));
        spi.done();
    }

    #[test]
    fn sinc4_streaming_selects_wf_src_zero_and_50_hz() {
        let ex = start_sequence(
            [0x00, 0x40],
            [0x15, 0xFF],
            [0x00, 0x00],
            [0x00, 0xE0],
            [0x00, 0xF0],
        );
        let mut spi = Mock::new(&ex);
        let mut dev = Ade9000::new(spi.clone(), WaveformRate::Sinc4_32k, FrontEnd::SMARTMETER);
        assert_eq!(dev.start_streaming(LineFrequency::Hz50), Ok(0x0040));
        assert_eq!(dev.rate().hz(), 32_000);
        spi.done();
    }

    #[test]
    fn unity_gain_front_end_leaves_the_pga_at_its_reset_value() {
        let ex = start_sequence(
            [0x00, 0xFE],
            [0x00, 0x00],
            [0x00, 0x00],
            [0x03, 0xE0],
            [0x03, 0xF0],
        );
        let mut spi = Mock::new(&ex);
        let fe = FrontEnd::unity_gain(1001.0, 2500.0, 10.2);
        let mut dev = Ade9000::new(spi.clone(), WaveformRate::Pcf8k, fe);
        assert_eq!(dev.start_streaming(LineFrequency::Hz50), Ok(0x00FE));
        assert_eq!(dev.front_end(), fe);
        spi.done();
    }

    #[test]
    fn pga_gain_fields_match_the_datasheet_layout() {
        // The original firmware's value: VA/VB/VC = 01 (gain 2), IA/IB/IC/IN = 11 (gain 4).
        assert_eq!(FrontEnd::SMARTMETER.pga_gain_register(), 0x15FF);
        assert_eq!(pga_gain_register(PgaGain::X1, PgaGain::X1), 0x0000);
        // Voltage fields only (bits 13:8), current fields only (bits 7:0).
        assert_eq!(pga_gain_register(PgaGain::X4, PgaGain::X1), 0x3F00);
        assert_eq!(pga_gain_register(PgaGain::X1, PgaGain::X2), 0x0055);
        assert_eq!(pga_gain_register(PgaGain::X2, PgaGain::X2), 0x1555);
        // Bits 15:14 are reserved and never set.
        assert_eq!(pga_gain_register(PgaGain::X4, PgaGain::X4) & 0xC000, 0);
        assert_eq!(
            [PgaGain::X1, PgaGain::X2, PgaGain::X4].map(PgaGain::factor),
            [1.0, 2.0, 4.0]
        );
    }

    #[test]
    fn absent_chip_is_reported() {
        let ex = read_reg(reg::VERSION, &[0xFF, 0xFF]);
        let mut spi = Mock::new(&ex);
        let mut dev = Ade9000::new(spi.clone(), WaveformRate::Sinc4_32k, FrontEnd::SMARTMETER);
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
        let mut dev = Ade9000::new(spi.clone(), WaveformRate::Pcf8k, FrontEnd::SMARTMETER);
        let mut out = [0i32; SETS_PER_HALF * CHANNELS];
        assert_eq!(dev.read_ready(&mut out), Ok(None));
        spi.done();
    }

    /// What a burst read of one half returns: 128 sets of `IA, VA, IB, VB, IC, VC`.
    fn half_buffer(seed: i32) -> Vec<u8> {
        let mut raw = Vec::new();
        for set in 0..SETS_PER_HALF as i32 {
            // IA, VA, IB, VB, IC, VC: distinct, signed values (currents negative).
            for ch in 0..BURST_WORDS_PER_SET as i32 {
                // as the IC writes them: CODE_SHIFT bits more than the codes handed out
                let v = ((seed + set * 16 + ch) << CODE_SHIFT) * if ch % 2 == 0 { -1 } else { 1 };
                raw.extend_from_slice(&v.to_be_bytes());
            }
        }
        raw
    }

    fn ready_half(last_page: u8, half_addr: u16, raw: &[u8]) -> Vec<T<u8>> {
        let mut ex = read_reg(reg::STATUS0, &[0x00, 0x02, 0x00, 0x00]);
        ex.extend(write_reg(vec![0x40, 0x20, 0x00, 0x02, 0x00, 0x00]));
        // WFB_LAST_PAGE in bits 15:12, a trigger address in the low bits that must be ignored.
        ex.extend(read_reg(
            reg::WFB_TRG_STAT,
            &[(last_page << 4) | 0x03, 0xFF],
        ));
        ex.extend(read_reg(half_addr, raw));
        ex
    }

    #[test]
    fn page_full_burst_reads_the_completed_half_in_core_order() {
        let first = half_buffer(1000);
        let second = half_buffer(5000);
        assert_eq!(first.len(), HALF_BYTES);
        let mut ex = ready_half(7, 0x800, &first);
        ex.extend(ready_half(15, 0xC00, &second));
        ex.extend(ready_half(15, 0xC00, &second)); // the IC lapped us: overrun
        let mut spi = Mock::new(&ex);
        let mut dev = Ade9000::new(spi.clone(), WaveformRate::Pcf8k, FrontEnd::SMARTMETER);
        let mut out = [0i32; SETS_PER_HALF * CHANNELS];

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
        assert_eq!(&out[..6], &[1001, -1000, 1003, -1002, 1005, -1004]);
        // Set 1 starts 6 words (not 8) into the burst.
        assert_eq!(&out[6..8], &[1017, -1016]);
        // Last set: base 1000 + 127*16.
        let base = 1000 + 127 * 16;
        assert_eq!(
            &out[762..768],
            &[
                base + 1,
                -base,
                base + 3,
                -(base + 2),
                base + 5,
                -(base + 4)
            ]
        );

        let b = dev.read_ready(&mut out).unwrap().unwrap();
        assert_eq!((b.half, b.overrun), (1, false));
        assert_eq!(out[0], 5001);
        let b = dev.read_ready(&mut out).unwrap().unwrap();
        assert_eq!((b.half, b.overrun), (1, true));
        spi.done();
    }

    #[test]
    fn late_service_still_reads_the_completed_half() {
        // The IRQ for page 7 was serviced after the IC had already filled page 8: the first half
        // is the complete one (the second is being written), and vice versa after page 15.
        for page in 7..=14 {
            assert_eq!(completed_half(page), 0, "page {page}");
        }
        for page in [15, 0, 1, 6] {
            assert_eq!(completed_half(page), 1, "page {page}");
        }
        let first = half_buffer(0);
        let second = half_buffer(100);
        let mut ex = ready_half(8, 0x800, &first);
        ex.extend(ready_half(0, 0xC00, &second));
        let mut spi = Mock::new(&ex);
        let mut dev = Ade9000::new(spi.clone(), WaveformRate::Pcf8k, FrontEnd::SMARTMETER);
        let mut out = [0i32; SETS_PER_HALF * CHANNELS];
        let b = dev.read_ready(&mut out).unwrap().unwrap();
        assert_eq!((b.half, b.overrun), (0, false));
        let b = dev.read_ready(&mut out).unwrap().unwrap();
        assert_eq!((b.half, b.overrun), (1, false));
        assert_eq!(out[0], 101);
        spi.done();
    }

    #[test]
    fn short_buffer_is_an_error_not_a_panic() {
        let mut spi = Mock::new(&[]);
        let mut dev = Ade9000::new(spi.clone(), WaveformRate::Pcf8k, FrontEnd::SMARTMETER);
        let mut out = [0i32; 10];
        assert_eq!(
            dev.read_ready(&mut out),
            Err(Error::BufferTooSmall { need: 768, got: 10 })
        );
        spi.done();
    }

    #[test]
    fn decode_handles_partial_input_without_panicking() {
        let raw = half_buffer(0);
        let mut out = [0i32; 14]; // two whole samples and change
        assert_eq!(decode_sets(&raw, &mut out), 12);
        assert_eq!(decode_sets(&raw[..30], &mut out), 6); // one whole set and a fragment
        assert_eq!(decode_sets(&[], &mut out), 0);
    }

    #[test]
    fn front_end_scaling_maps_full_scale_to_terminal_units() {
        let fe = FrontEnd::SMARTMETER;
        fe.validate().unwrap();
        for rate in [WaveformRate::Pcf8k, WaveformRate::Sinc4_32k] {
            let fs = rate.delivered_full_scale_code();
            // A full-scale code is 0.5 V peak at the pins (PGA 2): 994.7 / 2 V at the terminals.
            let v = fs * fe.volts_per_code(rate);
            assert!((v - 497.35).abs() < 1e-2, "{v}");
            // 0.25 V peak at the pins (PGA 4) over 15.74 Ω at 2000:1: 127.065 / 4 A.
            let a = fs * fe.amps_per_code(rate);
            assert!((a - 31.766).abs() < 1e-3, "{a}");
            let (v, a) = fe.scaling(rate);
            // (994.7 and 15.74 are not exact in f32: compare to 1 ppm.)
            assert!((v * f64::from(fs) / 497.35 - 1.0).abs() < 1e-6);
            assert!((a * f64::from(fs) - 2000.0 / 15.74 / 4.0).abs() < 1e-4);
        }
        // The original library's volts and milliamps per raw 8 kSPS code, after dividing by the PGA
        // gains (its commented ADC_TO_V_8k / ADC_TO_mA_8k are the gain-1 values), times the
        // 2^CODE_SHIFT this driver strips from each code.
        let shift = f64::from(1u32 << CODE_SHIFT);
        let (v, a) = fe.scaling(WaveformRate::Pcf8k);
        let v_orig = 994.7 / 74_532_013.0 / 2.0 * shift;
        let a_orig = 127.065 / 74_532_013.0 / 4.0 * shift;
        assert!((v / v_orig - 1.0).abs() < 1e-6, "{v} vs {v_orig}");
        assert!((a / a_orig - 1.0).abs() < 1e-5, "{a} vs {a_orig}");
        assert!((0.000013345943038 / 2.0 * shift / v - 1.0).abs() < 1e-6);
        assert!((0.001704837892947e-3 / 4.0 * shift / a - 1.0).abs() < 1e-5);
        // The same through the driver, which knows its rate and front end.
        let dev = Ade9000::new(Mock::new(&[]), WaveformRate::Pcf8k, fe);
        assert_eq!(dev.scaling(), (v, a));
        dev.release().done();
        // 230 V rms peak = 325.27 V: code = 325.27 / 497.35 * FS, about 65 % of full scale.
        let code = (230.0 * core::f32::consts::SQRT_2 / 497.35 * PCF_FULL_SCALE_CODE
            / (1u32 << CODE_SHIFT) as f32)
            .round();
        assert!((code * fe.volts_per_code(WaveformRate::Pcf8k) - 325.269).abs() < 1e-2);
        // Unity gain: a gain-1 front end needs twice / four times the pin voltage for the same code.
        let unity = FrontEnd::unity_gain(994.7, 2000.0, 15.74);
        let (v1, a1) = unity.scaling(WaveformRate::Pcf8k);
        assert!((v1 / v - 2.0).abs() < 1e-12 && (a1 / a - 4.0).abs() < 1e-12);
        // The sinc4 source has a smaller full-scale code: the same code means more volts.
        let (v_pcf, _) = fe.scaling(WaveformRate::Pcf8k);
        let (v_sinc, _) = fe.scaling(WaveformRate::Sinc4_32k);
        // (f32 constants: 74,532,013 and 67,107,786 are stored to 24 significant bits.)
        assert!((v_sinc / v_pcf - 74_532_013.0 / 67_107_786.0).abs() < 1e-6);
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
