//! mDNS responder (edge-mdns): `<name>.local` and the `_elec._tcp` service on port 54321 with the TXT
//! keys of docs/protocol.md section 9; and the DHCP server of the fallback access point.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use edge_mdns::HostAnswersMdnsHandler;
use edge_mdns::buf::VecBufAccess;
use edge_mdns::domain::base::Ttl;
use edge_mdns::host::{Host, Service, ServiceAnswers};
use edge_mdns::io::{IPV4_DEFAULT_SOCKET, Mdns};
use edge_nal::UdpSplit;
use edge_nal_embassy::{Udp, UdpBuffers};
use embassy_futures::select::{Either, select};
use embassy_net::Stack;
use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, NoopRawMutex};
use embassy_sync::signal::Signal;
use log::{info, warn};

use crate::wifi::NET_CONFIG;

/// Raised when the meter's name changed: the responder re-announces under the new name.
pub static RENAMED: Signal<CriticalSectionRawMutex, ()> = Signal::new();

/// Firmware version advertised in TXT.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Answers mDNS queries on `stack` for as long as it has an address; restarts on rename.
#[embassy_executor::task(pool_size = 2)]
pub async fn responder(stack: Stack<'static>) {
    let buffers: UdpBuffers<2, 1500, 1500, 2> = UdpBuffers::new();
    let udp = Udp::new(stack, &buffers);
    let recv_buf = VecBufAccess::<NoopRawMutex, 1500>::new();
    let send_buf = VecBufAccess::<NoopRawMutex, 1500>::new();
    let signal = Signal::<NoopRawMutex, ()>::new();
    loop {
        stack.wait_config_up().await;
        let Some(cfg) = stack.config_v4() else {
            continue;
        };
        let ip = cfg.address.address();
        let name = NET_CONFIG.lock(|c| c.borrow().name.clone());
        let host = Host {
            hostname: &name,
            ipv4: ip,
            ipv6: Ipv6Addr::UNSPECIFIED,
            ttl: Ttl::from_secs(60),
        };
        let service = Service {
            name: &name,
            priority: 1,
            weight: 5,
            service: "_elec",
            protocol: "_tcp",
            port: 54321,
            service_subtypes: &[],
            txt_kvs: &[
                ("type", "smartmeter"),
                ("version", VERSION),
                ("stream", "54322"),
            ],
        };
        let socket =
            match edge_mdns::io::bind(&udp, IPV4_DEFAULT_SOCKET, Some(Ipv4Addr::UNSPECIFIED), None)
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    warn!("mdns: bind failed: {e:?}");
                    embassy_time::Timer::after_secs(5).await;
                    continue;
                }
            };
        let mut socket = socket;
        let (recv, send) = socket.split();
        let mdns = Mdns::<_, _, _, _, _, NoopRawMutex>::new(
            Some(ip),
            None,
            recv,
            send,
            &recv_buf,
            &send_buf,
            esp_hal::rng::Rng::new(),
            &signal,
        );
        info!("mdns: {name}.local at {ip}");
        let answers = ServiceAnswers::new(&host, &service);
        match select(
            mdns.run(HostAnswersMdnsHandler::new(answers)),
            select(RENAMED.wait(), stack.wait_config_down()),
        )
        .await
        {
            Either::First(Err(e)) => {
                warn!("mdns: {e:?}");
                embassy_time::Timer::after_secs(1).await;
            }
            Either::First(Ok(())) | Either::Second(_) => {}
        }
    }
}

/// Hands out 192.168.4.50.. on the fallback access point.
#[embassy_executor::task]
pub async fn dhcp_server(stack: Stack<'static>, ip: Ipv4Addr) {
    use edge_dhcp::io::server::run;
    use edge_dhcp::server::{Server, ServerOptions};
    use edge_nal::UdpBind;
    let buffers: UdpBuffers<1, 1024, 1024, 2> = UdpBuffers::new();
    let udp = Udp::new(stack, &buffers);
    let mut buf = [0u8; 1024];
    let mut gw = [Ipv4Addr::UNSPECIFIED; 1];
    let options = ServerOptions::new(ip, Some(&mut gw));
    let mut server = Server::<_, 8>::new_with_et(ip);
    loop {
        match udp
            .bind(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67)))
            .await
        {
            Ok(mut socket) => {
                if let Err(e) = run(&mut server, &options, &mut socket, &mut buf).await {
                    warn!("dhcp server: {e:?}");
                }
            }
            Err(e) => warn!("dhcp server: bind failed: {e:?}"),
        }
        embassy_time::Timer::after_secs(1).await;
    }
}
