//! Wi-Fi: station over the stored AP list, falling back to an open access point named after the meter
//! (as the original SmartMeter did), so a meter that lost its network can still be reached and given a
//! new one (`addWifi` on 192.168.4.1:54321).

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Timer, with_timeout};
use esp_radio::wifi::ap::AccessPointConfig;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{AuthenticationMethodConfig, Config, WifiController};
use log::{info, warn};

/// How long one AP may take to associate.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the fallback access point stays up before the station list is tried again.
const FALLBACK_PERIOD: Duration = Duration::from_secs(300);

/// What the radio should join or offer; written by the engine glue from the core's `Config`.
pub struct NetConfig {
    /// The meter's name: mDNS host name and the SSID of the fallback access point.
    pub name: String,
    /// Stored networks, `(ssid, password)`, tried in order; an empty password means an open network.
    pub aps: Vec<(String, String)>,
}

/// The current network configuration, shared by the Wi-Fi, mDNS and engine tasks.
pub static NET_CONFIG: Mutex<CriticalSectionRawMutex, RefCell<NetConfig>> =
    Mutex::new(RefCell::new(NetConfig {
        name: String::new(),
        aps: Vec::new(),
    }));

/// Raised when the AP list or the name changed: the Wi-Fi task reconnects.
pub static NET_CHANGED: Signal<CriticalSectionRawMutex, ()> = Signal::new();

/// Which radio mode is up (read by the status/`info` glue).
#[derive(Debug, Clone, Default)]
pub struct LinkState {
    /// SSID joined as a station, or offered as the fallback AP.
    pub ssid: String,
    /// BSSID of the joined AP, `aa:bb:..`.
    pub bssid: String,
    /// Signal strength of the joined AP in dBm (0 in AP mode).
    pub rssi_dbm: i32,
}

/// Current link, for `info`.
pub static LINK: Mutex<CriticalSectionRawMutex, RefCell<LinkState>> =
    Mutex::new(RefCell::new(LinkState {
        ssid: String::new(),
        bssid: String::new(),
        rssi_dbm: 0,
    }));

fn snapshot() -> (String, Vec<(String, String)>) {
    NET_CONFIG.lock(|c| {
        let c = c.borrow();
        (c.name.clone(), c.aps.clone())
    })
}

fn station_config(ssid: &str, pwd: &str) -> Option<Config> {
    let auth = if pwd.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::Wpa2Personal(pwd.try_into().ok()?)
    };
    Some(Config::Station(
        StationConfig::default()
            .with_ssid(ssid.try_into().ok()?)
            .with_authentication(auth),
    ))
}

/// Keeps the radio connected forever: every stored AP in turn, else the open fallback AP for
/// [`FALLBACK_PERIOD`] (or until the AP list changes), then again from the top.
#[embassy_executor::task]
pub async fn connection(mut controller: WifiController<'static>) {
    loop {
        let (name, aps) = snapshot();
        let mut joined = false;
        for (ssid, pwd) in &aps {
            let Some(cfg) = station_config(ssid, pwd) else {
                warn!("wifi: stored AP {ssid:?} has an invalid SSID or password, skipped");
                continue;
            };
            if let Err(e) = controller.set_config(&cfg) {
                warn!("wifi: configuring station for {ssid:?} failed: {e:?}");
                continue;
            }
            info!("wifi: joining {ssid:?}");
            match with_timeout(CONNECT_TIMEOUT, controller.connect_async()).await {
                Ok(Ok(connected)) => {
                    joined = true;
                    let bssid = connected.bssid;
                    LINK.lock(|l| {
                        *l.borrow_mut() = LinkState {
                            ssid: ssid.clone(),
                            bssid: alloc::format!(
                                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                                bssid[0],
                                bssid[1],
                                bssid[2],
                                bssid[3],
                                bssid[4],
                                bssid[5]
                            ),
                            rssi_dbm: controller.rssi().unwrap_or(0),
                        }
                    });
                    info!("wifi: joined {ssid:?}");
                    let changed = NET_CHANGED.wait();
                    let lost = controller.wait_for_disconnect_async();
                    match embassy_futures::select::select(lost, changed).await {
                        embassy_futures::select::Either::First(_) => {
                            warn!("wifi: lost {ssid:?}")
                        }
                        embassy_futures::select::Either::Second(()) => {
                            info!("wifi: AP list changed, reconnecting");
                            let _ = controller.disconnect_async().await;
                        }
                    }
                    break;
                }
                Ok(Err(e)) => warn!("wifi: joining {ssid:?} failed: {e:?}"),
                Err(_) => {
                    warn!("wifi: joining {ssid:?} timed out");
                    let _ = controller.disconnect_async().await;
                }
            }
        }
        if joined {
            continue;
        }
        // Nothing reachable: offer the open access point named after the meter.
        let ap_ssid = if name.is_empty() {
            "smartmeter"
        } else {
            name.as_str()
        };
        let cfg = ap_ssid
            .try_into()
            .map(|ssid| Config::AccessPoint(AccessPointConfig::default().with_ssid(ssid)));
        match cfg {
            Ok(cfg) => match controller.set_config(&cfg) {
                Ok(()) => {
                    info!("wifi: no stored AP reachable, open access point {ap_ssid:?} up");
                    LINK.lock(|l| {
                        *l.borrow_mut() = LinkState {
                            ssid: String::from(ap_ssid),
                            bssid: String::new(),
                            rssi_dbm: 0,
                        }
                    });
                    let _ = with_timeout(FALLBACK_PERIOD, NET_CHANGED.wait()).await;
                }
                Err(e) => {
                    warn!("wifi: access point failed: {e:?}");
                    Timer::after(Duration::from_secs(10)).await;
                }
            },
            Err(_) => Timer::after(Duration::from_secs(10)).await,
        }
    }
}

/// Drives one embassy-net stack.
#[embassy_executor::task(pool_size = 2)]
pub async fn net_task(mut runner: embassy_net::Runner<'static, esp_radio::wifi::Interface>) {
    runner.run().await
}
