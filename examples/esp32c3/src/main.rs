//! SmartMeter firmware for the ESP32-C3: the `smartmeter` core served over Wi-Fi and USB serial.
//!
//! This binary only moves bytes: sockets and the USB-Serial-JTAG port ↔ the core's sans-IO engine, the
//! metering front end → the engine, the engine's events → flash, SNTP, MQTT, mDNS and the radio.
//! Commands, replies, frames, log lines and every protocol rule live in the core.
#![no_std]
#![no_main]
// One `unsafe` block: installing the `log` logger on a core without atomic instructions.
#![deny(unsafe_code)]

extern crate alloc;

mod clock;
mod engine;
mod hal_impl;
mod mdns;
mod mqtt;
mod sampler;
mod serial;
mod sntp;
mod store;
mod wifi;

use alloc::string::String;
use core::cell::RefCell;
use core::net::Ipv4Addr;

use embassy_executor::Spawner;
use embassy_net::{Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_sync::blocking_mutex::Mutex;
use esp_backtrace as _;
use esp_hal::clock::CpuClock;
use esp_hal::rtc_cntl::Rtc;
use esp_hal::timer::timg::TimerGroup;
use esp_hal::usb::usb_serial_jtag::UsbSerialJtag;
use esp_radio::wifi::{ControllerConfig, Interface, WifiController};
use smartmeter::device::DeviceOptions;
use smartmeter::device::driver::Driver;
use static_cell::StaticCell;

esp_bootloader_esp_idf::esp_app_desc!();

/// Address of the meter on its own fallback access point.
const AP_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 4, 1);
/// Command clients served at once (the engine refuses one more with its own reply).
const MAX_CLIENTS: usize = 4;

macro_rules! mk_static {
    ($t:ty, $val:expr) => {{
        static CELL: StaticCell<$t> = StaticCell::new();
        CELL.uninit().write($val)
    }};
}

/// Spawns a task; a full task pool is a build-time sizing bug, reported loudly.
macro_rules! spawn {
    ($spawner:expr, $task:expr) => {
        match $task {
            Ok(token) => $spawner.spawn(token),
            Err(e) => log::error!("spawn {}: {e:?}", stringify!($task)),
        }
    };
}

/// Installs [`engine::LOGGER`] as the `log` crate's logger, at the level named by `ESP_LOG` at build
/// time (`error`, `warn`, `info`, `debug`, `trace`, `off`; default and fallback `info`).
#[allow(unsafe_code)]
fn init_logger() {
    let level = option_env!("ESP_LOG")
        .and_then(|s| s.parse::<log::LevelFilter>().ok())
        .unwrap_or(log::LevelFilter::Info);
    // SAFETY: the rv32imc core has no atomic read-modify-write, so `log` only offers the racy setters;
    // they must not race with another call or with a log record being emitted. This runs first in
    // `main`, on the only core, before `esp_hal::init` enables interrupts and before any task exists.
    unsafe {
        let _ = log::set_logger_racy(&engine::LOGGER);
        log::set_max_level_racy(level);
    }
}

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    init_logger();
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 72 * 1024);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);
    clock::init(Rtc::new(peripherals.RTC_TIMER));

    let controller = WifiController::new(peripherals.WIFI, ControllerConfig::default())
        .unwrap_or_else(|e| panic!("wifi init: {e:?}"));
    let sta = Interface::station();
    let ap = Interface::access_point();
    let seed = u64::from(esp_hal::rng::Rng::new().random()) << 32
        | u64::from(esp_hal::rng::Rng::new().random());

    let (sta_stack, sta_runner) = embassy_net::new(
        sta,
        embassy_net::Config::dhcpv4(Default::default()),
        mk_static!(StackResources<12>, StackResources::new()),
        seed,
    );
    let (ap_stack, ap_runner) = embassy_net::new(
        ap,
        embassy_net::Config::ipv4_static(StaticConfigV4 {
            address: Ipv4Cidr::new(AP_IP, 24),
            gateway: Some(AP_IP),
            dns_servers: Default::default(),
        }),
        mk_static!(StackResources<8>, StackResources::new()),
        seed ^ 0x5a5a,
    );

    spawn!(spawner, wifi::connection(controller));
    spawn!(spawner, wifi::net_task(sta_runner));
    spawn!(spawner, wifi::net_task(ap_runner));
    spawn!(spawner, mdns::responder(sta_stack));
    spawn!(spawner, mdns::responder(ap_stack));
    spawn!(spawner, mdns::dhcp_server(ap_stack, AP_IP));
    spawn!(spawner, mqtt::task(sta_stack));

    // The engine: restored from flash, fed by the metering front end.
    #[cfg(feature = "ade9000")]
    let source = {
        use esp_hal::gpio::{Input, InputConfig, Level, Output, OutputConfig, Pull};
        use esp_hal::spi::master::{Config as SpiConfig, Spi};
        use esp_hal::time::Rate;
        // ADE9000 on SPI2: SCLK GPIO6, MOSI GPIO7, MISO GPIO2, CS GPIO10, IRQ0 (page full) GPIO3.
        let spi = Spi::new(
            peripherals.SPI2,
            SpiConfig::default()
                .with_frequency(Rate::from_mhz(10))
                .with_mode(esp_hal::spi::Mode::_0),
        )
        .unwrap_or_else(|e| panic!("spi config: {e:?}"))
        .with_sck(peripherals.GPIO6)
        .with_mosi(peripherals.GPIO7)
        .with_miso(peripherals.GPIO2);
        let cs = Output::new(peripherals.GPIO10, Level::High, OutputConfig::default());
        let device = embedded_hal_bus::spi::ExclusiveDevice::new(spi, cs, embassy_time::Delay)
            .unwrap_or_else(|e| panic!("spi device: {e:?}"));
        let irq = Input::new(
            peripherals.GPIO3,
            InputConfig::default().with_pull(Pull::Up),
        );
        sampler::ade::Ade9000Source::new(device, irq, ade9000::FrontEnd::SMARTMETER)
    };
    #[cfg(all(feature = "adc", not(feature = "ade9000")))]
    let source = {
        use esp_hal::analog::adc::{Adc, AdcConfig, Attenuation};
        // Voltage divider on GPIO0 (ADC1_CH0), CT clamp with burden on GPIO1 (ADC1_CH1).
        let mut cfg = AdcConfig::new();
        let v_pin = cfg.enable_pin(peripherals.GPIO0, Attenuation::_11dB);
        let i_pin = cfg.enable_pin(peripherals.GPIO1, Attenuation::_11dB);
        let adc = Adc::new(peripherals.ADC1, cfg);
        spawn!(spawner, sampler::adc::sample_task(adc, v_pin, i_pin));
        sampler::adc::AdcSource::new(sampler::adc::BOARD)
    };
    let source = hal_impl::Meter(source);
    let options = DeviceOptions {
        version: String::from(env!("CARGO_PKG_VERSION")),
        compiled: String::from(concat!("esp32c3 ", env!("CARGO_PKG_VERSION"))),
        // The USB-Serial-JTAG port serves the protocol's serial variant (`serial::task`).
        has_serial: true,
        rtc: true,
        max_clients: MAX_CLIENTS,
        source_rate_hz: sampler::RATE_HZ,
        buffer_size: 32 * 1024,
        sample_ring_bytes: 32 * 1024,
        // The eFuse base MAC: Home Assistant's node id and `unique_id`s come from it, so the
        // entities stay the same across restarts, renames, resets and a reflashed store.
        device_id: Some(mac_hex(esp_hal::efuse::base_mac_address().as_bytes())),
        ..DeviceOptions::default()
    };
    let store = store::FlashStore::new(esp_storage::FlashStorage::new(peripherals.FLASH));
    let driver = Driver::new(
        options,
        source,
        hal_impl::RtcClock,
        store,
        hal_impl::Esp::new(),
    );
    engine::sync_net_config(&driver);
    let engine: &'static engine::Shared =
        mk_static!(engine::Shared, Mutex::new(RefCell::new(driver)));

    // The serial connection opens on the task's first poll; the pump's first round, one period later,
    // moves the log lines queued during boot into the engine, so the port gets them too.
    let usb = UsbSerialJtag::new(peripherals.USB_DEVICE).into_async();
    spawn!(spawner, serial::task(engine, usb));
    spawn!(spawner, engine::pump(engine, sta_stack, ap_stack));
    for _ in 0..=MAX_CLIENTS {
        spawn!(
            spawner,
            engine::listener(engine, sta_stack, engine::COMMAND_PORT)
        );
    }
    for _ in 0..2 {
        spawn!(
            spawner,
            engine::listener(engine, sta_stack, engine::RAW_PORT)
        );
    }
    for port in [engine::COMMAND_PORT, engine::COMMAND_PORT, engine::RAW_PORT] {
        spawn!(spawner, engine::listener(engine, ap_stack, port));
    }
    spawn!(spawner, engine::stream_server(engine, sta_stack));
    spawn!(spawner, engine::datagrams(sta_stack));
    spawn!(spawner, engine::ntp(sta_stack));

    loop {
        embassy_time::Timer::after_secs(60).await;
    }
}

/// `bytes` as lower-case hex without separators (`a0b1c2d3e4f5`), without `core::fmt`.
fn mac_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}
