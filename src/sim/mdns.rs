//! mDNS announce of `<name>.local` and the `_elec._tcp` service (`--mdns`).

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use std::net::IpAddr;

use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};

/// The mDNS service type of a SmartMeter.
pub const SERVICE_TYPE: &str = "_elec._tcp.local.";

/// Announces the meter; re-announces under a new name when the engine renames it.
pub struct Announcer {
    daemon: ServiceDaemon,
    ip: IpAddr,
    port: u16,
    stream_port: u16,
    version: String,
    fullname: Option<String>,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("ip", &self.ip)
            .field("fullname", &self.fullname)
            .finish()
    }
}

/// Creates an mDNS daemon restricted to loopback when `bind` is a loopback address (so tests and local
/// runs never multicast onto a real network), or to every interface otherwise.
pub fn daemon_for(bind: IpAddr) -> Result<ServiceDaemon, mdns_sd::Error> {
    let daemon = ServiceDaemon::new()?;
    if bind.is_loopback() {
        daemon.disable_interface(IfKind::All)?;
        daemon.enable_interface(if bind.is_ipv4() {
            IfKind::LoopbackV4
        } else {
            IfKind::LoopbackV6
        })?;
    }
    Ok(daemon)
}

impl Announcer {
    /// Starts the daemon; nothing is announced before [`Announcer::announce`].
    pub fn new(
        bind: IpAddr,
        port: u16,
        stream_port: u16,
        version: &str,
    ) -> Result<Self, mdns_sd::Error> {
        Ok(Announcer {
            daemon: daemon_for(bind)?,
            ip: bind,
            port,
            stream_port,
            version: version.to_string(),
            fullname: None,
        })
    }

    /// Announces (or re-announces) `<name>.local` with the `_elec._tcp` service.
    pub fn announce(&mut self, name: &str) -> Result<(), mdns_sd::Error> {
        if let Some(old) = self.fullname.take() {
            // The unregister status is not awaited: the goodbye packet is best effort.
            let _ = self.daemon.unregister(&old);
        }
        let host = format!("{name}.local.");
        let stream = self.stream_port.to_string();
        let props = [
            ("type", "smartmeter"),
            ("version", self.version.as_str()),
            ("stream", stream.as_str()),
        ];
        let info = if self.ip.is_unspecified() {
            ServiceInfo::new(SERVICE_TYPE, name, &host, "", self.port, &props[..])?
                .enable_addr_auto()
        } else {
            ServiceInfo::new(SERVICE_TYPE, name, &host, self.ip, self.port, &props[..])?
        };
        self.fullname = Some(info.get_fullname().to_string());
        self.daemon.register(info)
    }

    /// Says goodbye and stops the daemon.
    pub fn shutdown(mut self) {
        if let Some(old) = self.fullname.take() {
            let _ = self.daemon.unregister(&old);
        }
        let _ = self.daemon.shutdown();
    }
}
