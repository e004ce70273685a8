//! mDNS: finding meters (`_elec._tcp`) and resolving meter names (`<name>.local`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;

use mdns_sd::{HostnameResolutionEvent, ServiceDaemon, ServiceEvent};

use super::error::ClientError;

/// The meters' mDNS service type.
pub const SERVICE_TYPE: &str = "_elec._tcp.local.";

/// One meter found on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The instance name (the meter's name).
    pub name: String,
    /// The host name it announces (`<name>.local.`).
    pub hostname: String,
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
    /// The command port (54321).
    pub port: u16,
    /// TXT `version`.
    pub version: Option<String>,
    /// TXT `type` (`smartmeter`).
    pub kind: Option<String>,
}

/// Browses `_elec._tcp` for `wait` and returns every meter that answered, sorted by name.
pub async fn discover(wait: Duration) -> Result<Vec<Discovered>, ClientError> {
    let daemon = ServiceDaemon::new().map_err(|e| ClientError::Mdns(e.to_string()))?;
    let rx = daemon
        .browse(SERVICE_TYPE)
        .map_err(|e| ClientError::Mdns(e.to_string()))?;
    let mut found: BTreeMap<String, Discovered> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let event = match tokio::time::timeout_at(deadline, rx.recv_async()).await {
            Ok(Ok(ev)) => ev,
            Ok(Err(_)) | Err(_) => break,
        };
        if let ServiceEvent::ServiceResolved(svc) = event {
            let name = svc
                .fullname
                .strip_suffix(SERVICE_TYPE)
                .unwrap_or(&svc.fullname)
                .trim_end_matches('.')
                .to_string();
            let mut addresses: Vec<IpAddr> = svc.addresses.iter().map(|a| a.to_ip_addr()).collect();
            addresses.sort();
            let d = Discovered {
                name: name.clone(),
                hostname: svc.host.clone(),
                addresses,
                port: svc.port,
                version: svc
                    .txt_properties
                    .get_property_val_str("version")
                    .map(str::to_string),
                kind: svc
                    .txt_properties
                    .get_property_val_str("type")
                    .map(str::to_string),
            };
            found.insert(name, d);
        }
    }
    let _ = daemon.stop_browse(SERVICE_TYPE);
    let _ = daemon.shutdown();
    Ok(found.into_values().collect())
}

/// Resolves a `HOST` name to an address: an IP literal as is; else DNS; else mDNS, first as the
/// host name `<name>.local`, then as a `_elec._tcp` instance called `name` (whose port wins only if
/// the caller gave the default port).
pub async fn resolve(host: &str, port: u16, wait: Duration) -> Result<SocketAddr, ClientError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let is_local = host.ends_with(".local") || host.ends_with(".local.");
    if !is_local
        && let Ok(Ok(mut addrs)) =
            tokio::time::timeout(wait, tokio::net::lookup_host((host, port))).await
        && let Some(a) = addrs.next()
    {
        return Ok(a);
    }
    let short = host.trim_end_matches('.').trim_end_matches(".local");
    let daemon = ServiceDaemon::new().map_err(|e| ClientError::Mdns(e.to_string()))?;
    let result = mdns_lookup(&daemon, short, port, wait).await;
    let _ = daemon.shutdown();
    result.ok_or_else(|| ClientError::Resolve {
        host: host.to_string(),
        reason: std::format!(
            "not a known DNS name, and no meter answered as `{short}.local` or `_elec._tcp` within {wait:?}"
        ),
    })
}

async fn mdns_lookup(
    daemon: &ServiceDaemon,
    name: &str,
    port: u16,
    wait: Duration,
) -> Option<SocketAddr> {
    let hostname = std::format!("{name}.local.");
    let by_host = daemon
        .resolve_hostname(&hostname, Some(wait.as_millis() as u64))
        .ok()?;
    let by_service = daemon.browse(SERVICE_TYPE).ok()?;
    let instance = std::format!("{name}.{SERVICE_TYPE}");
    let mut deadline = tokio::time::Instant::now() + wait;
    let (mut host_open, mut service_open) = (true, true);
    // An address found by host name, kept while a service record (with the real port) may follow.
    let mut by_name: Option<IpAddr> = None;
    let first = |ips: Vec<IpAddr>| {
        let mut ips = ips;
        ips.sort_by_key(|ip| ip.is_ipv6());
        ips.first().copied()
    };
    loop {
        tokio::select! {
            ev = by_host.recv_async(), if host_open => match ev {
                Ok(HostnameResolutionEvent::AddressesFound(_, addrs)) => {
                    if let Some(ip) = first(addrs.iter().map(|a| a.to_ip_addr()).collect()) {
                        if port != super::host::DEFAULT_PORT {
                            return Some(SocketAddr::new(ip, port));
                        }
                        by_name.get_or_insert(ip);
                        deadline = deadline.min(tokio::time::Instant::now() + Duration::from_millis(1500));
                    }
                }
                Ok(_) => {}
                Err(_) => host_open = false,
            },
            ev = by_service.recv_async(), if service_open => match ev {
                Ok(ServiceEvent::ServiceResolved(svc))
                    if svc.fullname.eq_ignore_ascii_case(&instance)
                        || svc.host.eq_ignore_ascii_case(&hostname) =>
                {
                    let p = if port == super::host::DEFAULT_PORT { svc.port } else { port };
                    if let Some(ip) = first(svc.addresses.iter().map(|a| a.to_ip_addr()).collect()) {
                        return Some(SocketAddr::new(ip, p));
                    }
                }
                Ok(_) => {}
                Err(_) => service_open = false,
            },
            () = tokio::time::sleep_until(deadline) => return by_name.map(|ip| SocketAddr::new(ip, port)),
        }
    }
}
