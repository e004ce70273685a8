//! SmartMeter firmware for the ESP32-C3: the `smartmeter` core served over Wi-Fi.
//!
//! This binary only moves bytes: sockets ↔ the core's sans-IO engine, the metering front end → the
//! engine, the engine's events → flash, SNTP, MQTT, mDNS and the radio. Commands, replies, frames and
//! every protocol rule live in the core.
#![no_std]
#![no_main]

extern crate alloc;

mod clock;
mod mdns;
mod mqtt;
mod sampler;
mod sntp;
mod store;
mod wifi;

use core::net::Ipv4Addr;

use embassy_executor::Spawner;
use embassy_net::{Ipv4Cidr, StackResources, StaticConfigV4};
use esp_backtrace as _;
use esp_hal::clock::CpuClock;
use esp_hal::rtc_cntl::Rtc;
use esp_hal::timer::timg::TimerGroup;
use esp_radio::wifi::{ControllerConfig, Interface, WifiController};
use static_cell::StaticCell;

esp_bootloader_esp_idf::esp_app_desc!();

/// Address of the meter on its own fallback access point.
const AP_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 4, 1);

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

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    esp_println::logger::init_logger_from_env();
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 96 * 1024);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);
    clock::init(Rtc::new(peripherals.RTC_TIMER));

    let mut store = store::FlashStore::new(esp_storage::FlashStorage::new(peripherals.FLASH));
    let mut probe = [0u8; 4];
    log::info!("store: slot 0 holds {:?} bytes", store.load(0, &mut probe).ok());

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

    loop {
        embassy_time::Timer::after_secs(60).await;
    }
}
