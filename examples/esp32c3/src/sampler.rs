//! Sample sources: the ADE9000 waveform buffer over SPI (feature `ade9000`, the original SmartMeter's
//! metering IC) or the on-chip ADC1 with a CT clamp and a voltage divider (feature `adc`, single phase).
//! Both hand out raw `i32` codes (up to 24 bits) plus the core's [`FrontEnd`] scaling of their analog
//! front end, validated by the core at start-up: the core measures the codes on its integer path (no
//! soft-float work per sample on this FPU-less core) and scales them only for sampling sessions.

use smartmeter::calibration::{Calibration, FrontEnd};

/// Checks a front end with the core's calibration rules; logs and falls back to unit scaling if the
/// board constants are unusable (the readings are then plainly wrong rather than silently so).
fn validated(front_end: FrontEnd) -> FrontEnd {
    match Calibration::default().with_front_end(front_end) {
        Ok(_) => front_end,
        Err(e) => {
            log::error!("front end rejected by the core: {e}");
            FrontEnd::default()
        }
    }
}

/// Raw codes read by a front end, interleaved `v_l1, i_l1, v_l2, i_l2, v_l3, i_l3`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Codes {
    /// Samples per second per channel.
    pub rate_hz: u32,
    /// Local clock (µs since the epoch) of the first sample.
    pub start_us: u64,
    /// Values written (a multiple of 6).
    pub len: usize,
    /// The core's code-to-units scaling of this front end.
    pub front_end: FrontEnd,
}

/// Samples per second per channel of this build's front end.
#[cfg(feature = "ade9000")]
pub const RATE_HZ: u32 = 8_000;
/// Samples per second per channel of this build's front end.
#[cfg(all(feature = "adc", not(feature = "ade9000")))]
pub const RATE_HZ: u32 = adc::RATE_HZ;

/// Front-end failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceError {
    /// The metering IC did not answer or the bus failed (the on-chip ADC has no bus to fail).
    #[cfg_attr(not(feature = "ade9000"), allow(dead_code))]
    Bus,
    /// A half buffer was overwritten before it was read: samples were lost.
    Overrun,
    /// The caller's buffer is too small for one block.
    BufferTooSmall,
}

/// The ADE9000 on SPI2 with a GPIO chip select.
#[cfg(feature = "ade9000")]
pub type AdeSpi = embedded_hal_bus::spi::ExclusiveDevice<
    esp_hal::spi::master::Spi<'static, esp_hal::Blocking>,
    esp_hal::gpio::Output<'static>,
    embassy_time::Delay,
>;
/// The sample source this build uses.
#[cfg(feature = "ade9000")]
pub type Source = ade::Ade9000Source<AdeSpi>;
#[cfg(all(feature = "adc", not(feature = "ade9000")))]
pub use adc::AdcSource as Source;

#[cfg(feature = "ade9000")]
pub mod ade {
    use ade9000::{Ade9000, Error, FrontEnd as Board, LineFrequency, WaveformRate};
    use embedded_hal::spi::SpiDevice;
    use esp_hal::gpio::Input;
    use smartmeter::calibration::FrontEnd;

    use super::{Codes, SourceError};

    /// Reads between two start attempts while the chip does not answer (≈ 1 s of pump rounds).
    const RETRY_READS: u32 = 250;

    /// The ADE9000 on SPI2, its IRQ0 (page full) on a GPIO.
    pub struct Ade9000Source<SPI> {
        chip: Ade9000<SPI>,
        irq: Input<'static>,
        front_end: FrontEnd,
        started: bool,
        until_retry: u32,
    }

    impl<SPI: SpiDevice> Ade9000Source<SPI> {
        /// A source that starts continuous waveform capture (8 kSPS, 50 Hz mains) on first use and
        /// keeps retrying while the chip does not answer (the meter stays reachable without it).
        pub fn new(spi: SPI, irq: Input<'static>, board: Board) -> Self {
            // The full-scale code depends on the waveform source, so scale for the streamed rate.
            let chip = Ade9000::new(spi, WaveformRate::Pcf8k, board);
            let (volts_per_code, amps_per_code) = chip.scaling();
            Self {
                chip,
                irq,
                front_end: super::validated(FrontEnd {
                    volts_per_code,
                    amps_per_code,
                }),
                started: false,
                until_retry: 0,
            }
        }

        fn ensure_started(&mut self) -> Result<(), SourceError> {
            if self.started {
                return Ok(());
            }
            if self.until_retry > 0 {
                self.until_retry -= 1;
                return Err(SourceError::Bus);
            }
            match self.chip.start_streaming(LineFrequency::Hz50) {
                Ok(version) => {
                    log::info!("ade9000: version {version:#06x}, streaming at 8 kSPS");
                    self.started = true;
                    Ok(())
                }
                Err(e) => {
                    log::warn!("ade9000: {e:?}");
                    self.until_retry = RETRY_READS;
                    Err(SourceError::Bus)
                }
            }
        }

        /// Reads the completed half buffer if IRQ0 is asserted; `Ok(None)` otherwise.
        pub fn read(&mut self, buf: &mut [i32]) -> Result<Option<Codes>, SourceError> {
            self.ensure_started()?;
            if self.irq.is_high() {
                return Ok(None);
            }
            let now = crate::clock::now_us();
            match self.chip.read_ready(buf) {
                Ok(Some(block)) if block.overrun => Err(SourceError::Overrun),
                Ok(Some(block)) => {
                    let rate_hz = self.chip.rate().hz();
                    let samples = (block.len / 6) as u64;
                    Ok(Some(Codes {
                        rate_hz,
                        start_us: now.saturating_sub(samples * 1_000_000 / u64::from(rate_hz)),
                        len: block.len,
                        front_end: self.front_end,
                    }))
                }
                Ok(None) => Ok(None),
                Err(Error::BufferTooSmall { .. }) => Err(SourceError::BufferTooSmall),
                Err(_) => {
                    self.started = false;
                    Err(SourceError::Bus)
                }
            }
        }
    }
}

#[cfg(feature = "adc")]
pub mod adc {
    //! Single-phase on-chip ADC: voltage divider on one ADC1 input, CT clamp (with burden, biased at
    //! mid-rail) on another, sampled at [`RATE_HZ`] by a task into a ring the engine drains.

    use core::cell::RefCell;

    use embassy_sync::blocking_mutex::Mutex;
    use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
    use embassy_time::{Duration, Ticker};
    use esp_hal::analog::adc::{Adc, AdcPin};
    use esp_hal::peripherals::{ADC1, GPIO0, GPIO1};
    use heapless::Deque;
    use smartmeter::calibration::FrontEnd;

    use super::{Codes, SourceError};

    /// Samples per second per channel (two oneshot conversions per tick).
    pub const RATE_HZ: u32 = 2_000;
    /// Half the ADC range at 11 dB attenuation (≈ 2.5 V span, bias at mid-rail), volts at the pin.
    const HALF_RANGE_V: f64 = 1.25;
    /// 12-bit converter: ±2048 codes around the bias.
    const ADC_BITS: u8 = 12;
    const RING: usize = 1024;

    /// Analog front end of the ADC variant.
    #[derive(Debug, Clone, Copy)]
    pub struct AdcFrontEnd {
        /// Mains volts per volt at the pin (divider ratio, after the mid-rail bias is removed).
        pub divider_ratio: f32,
        /// CT turns ratio.
        pub ct_ratio: f32,
        /// Burden resistor in ohms.
        pub burden_ohm: f32,
    }

    /// The analog front end the ADC variant is built for. Documented here only: the README refers
    /// here.
    ///
    /// - voltage: 230 V rms mains through a 9 V AC transformer and a 1:11 divider, ≈ 280 mains volts
    ///   per volt at the pin (after the mid-rail bias is removed);
    /// - current: an SCT-013-000 clamp (100 A : 50 mA, turns ratio 2000) on a 33 Ω burden.
    pub const BOARD: AdcFrontEnd = AdcFrontEnd {
        divider_ratio: 280.0,
        ct_ratio: 2000.0,
        burden_ohm: 33.0,
    };

    struct Ring {
        samples: Deque<(i16, i16), RING>,
        first_us: u64,
        lost: bool,
    }

    static RING_BUF: Mutex<CriticalSectionRawMutex, RefCell<Ring>> =
        Mutex::new(RefCell::new(Ring {
            samples: Deque::new(),
            first_us: 0,
            lost: false,
        }));

    /// Samples V on GPIO0 and I on GPIO1 forever, removing each channel's DC bias with a slow
    /// first-order high-pass (time constant ≈ 4 s) so the codes are centred on zero.
    #[embassy_executor::task]
    pub async fn sample_task(
        mut adc: Adc<'static, ADC1<'static>, esp_hal::Blocking>,
        mut v_pin: AdcPin<GPIO0<'static>, ADC1<'static>>,
        mut i_pin: AdcPin<GPIO1<'static>, ADC1<'static>>,
    ) {
        let mut ticker = Ticker::every(Duration::from_hz(u64::from(RATE_HZ)));
        let mut bias = [2048.0f32; 2];
        let alpha = 1.0 / (4.0 * RATE_HZ as f32);
        loop {
            ticker.next().await;
            let v = nb::block!(adc.read_oneshot(&mut v_pin)).unwrap_or(0);
            let i = nb::block!(adc.read_oneshot(&mut i_pin)).unwrap_or(0);
            let mut out = [0i16; 2];
            for ((b, o), raw) in bias.iter_mut().zip(out.iter_mut()).zip([v, i]) {
                let x = f32::from(raw);
                *b += alpha * (x - *b);
                *o = (x - *b) as i16;
            }
            let now = crate::clock::now_us();
            RING_BUF.lock(|r| {
                let mut r = r.borrow_mut();
                if r.samples.is_empty() {
                    r.first_us = now;
                }
                if r.samples.push_back((out[0], out[1])).is_err() {
                    r.lost = true;
                }
            });
        }
    }

    /// Drains the ring filled by [`sample_task`].
    pub struct AdcSource {
        front_end: FrontEnd,
    }

    impl AdcSource {
        /// A source scaled by `board` through the core's [`FrontEnd::from_hardware`].
        pub fn new(board: AdcFrontEnd) -> Self {
            let front_end = FrontEnd::from_hardware(
                f64::from(board.divider_ratio),
                f64::from(board.ct_ratio / board.burden_ohm),
                HALF_RANGE_V,
                ADC_BITS,
            )
            .map(super::validated)
            .unwrap_or_else(|e| {
                log::error!("adc front end: {e}");
                FrontEnd::default()
            });
            Self { front_end }
        }

        /// Moves everything buffered into `buf` (L2 and L3 stay zero: single phase).
        pub fn read(&mut self, buf: &mut [i32]) -> Result<Option<Codes>, SourceError> {
            RING_BUF.lock(|r| {
                let mut r = r.borrow_mut();
                if core::mem::take(&mut r.lost) {
                    r.samples.clear();
                    return Err(SourceError::Overrun);
                }
                if r.samples.is_empty() {
                    return Ok(None);
                }
                let start_us = r.first_us;
                let mut len = 0;
                for dst in buf.chunks_exact_mut(6) {
                    let Some((v, i)) = r.samples.pop_front() else {
                        break;
                    };
                    dst.copy_from_slice(&[i32::from(v), i32::from(i), 0, 0, 0, 0]);
                    len += 6;
                }
                if len == 0 {
                    return Err(SourceError::BufferTooSmall);
                }
                // The next block starts where this one ended.
                r.first_us = start_us + (len as u64 / 6) * 1_000_000 / u64::from(RATE_HZ);
                Ok(Some(Codes {
                    rate_hz: RATE_HZ,
                    start_us,
                    len,
                    front_end: self.front_end,
                }))
            })
        }
    }
}
