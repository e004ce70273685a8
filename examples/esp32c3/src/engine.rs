//! The glue between the core's engine and the network: one task pumps the [`Driver`] (samples in,
//! timeouts, persistence, restart, the firmware's own log lines), others move bytes between sockets
//! (and the USB serial port, `crate::serial`) and the engine and carry out the engine's network
//! events. Byte streams are served by `smartmeter_glue::Link` (host-tested against a real engine);
//! nothing here looks inside a command or a frame.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;
use core::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use embassy_net::tcp::TcpSocket;
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpAddress, IpEndpoint, Stack};
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, NoopRawMutex};
use embassy_sync::channel::Channel;
use embassy_time::{Duration, Ticker, Timer};
use log::{info, warn};
use smartmeter::device::driver::Driver;
use smartmeter::device::{ConnId, ConnKind, Device, Action, Instant, MqttSettings, NtpResult};
use smartmeter_glue::{Ended, Host, Link, Logger};

use crate::hal_impl::{Esp, Meter, RtcClock};
use crate::store::FlashStore;
use crate::{mdns, mqtt, sntp, wifi};

/// The engine wired to this board's HAL.
pub type Engine = Driver<Meter, RtcClock, FlashStore, Esp>;

/// Shared by every task of the (single) executor; never held across an `.await`.
pub type Shared = Mutex<NoopRawMutex, RefCell<Engine>>;

/// Command port (docs/protocol.md §1).
pub const COMMAND_PORT: u16 = 54321;
/// Raw stream port (§6).
pub const RAW_PORT: u16 = 54322;
/// How often the engine is pumped: the ADE9000 fills a half buffer every 16 ms at 8 kSPS.
const PUMP_PERIOD: Duration = Duration::from_millis(4);
/// How often an idle connection looks for output (and offers held-back input again).
const OUTPUT_POLL: Duration = Duration::from_millis(5);
/// Log records queued between two pump rounds (4 ms) before further ones are counted as dropped.
const LOG_LINES: usize = 16;

/// The `log` crate's logger: records are queued and the pump moves them into the engine's log, so
/// they reach every connection (the USB serial port included) as `Info:[L]` lines and warnings and
/// errors reach the persistent logbook (docs/protocol.md §4), like the original device's log.
pub static LOGGER: Logger<LOG_LINES> = Logger::new();

static CLOSING: Mutex<CriticalSectionRawMutex, RefCell<Vec<ConnId>>> =
    Mutex::new(RefCell::new(Vec::new()));
static NTP_REQUESTS: Channel<CriticalSectionRawMutex, String, 2> = Channel::new();
static NTP_RESULTS: Channel<CriticalSectionRawMutex, NtpResult, 2> = Channel::new();
static DATAGRAMS: Channel<CriticalSectionRawMutex, (SocketAddr, Vec<u8>), 16> = Channel::new();
static STREAM_SERVER: Channel<CriticalSectionRawMutex, (String, u16), 1> = Channel::new();

fn now(engine: &mut Engine) -> Instant {
    engine.now()
}

/// The shared engine as the glue's [`Host`]: what a served connection needs from this board.
#[derive(Clone, Copy)]
pub struct Board(pub &'static Shared);

impl Host for Board {
    fn with_device<R>(&self, f: impl FnOnce(&mut Device, Instant) -> R) -> R {
        self.0.lock(|e| {
            let mut e = e.borrow_mut();
            let t = now(&mut e);
            f(&mut e.device, t)
        })
    }

    fn take_close(&self, conn: ConnId) -> bool {
        CLOSING.lock(|c| {
            let mut c = c.borrow_mut();
            let pos = c.iter().position(|&x| x == conn);
            pos.map(|p| c.swap_remove(p)).is_some()
        })
    }

    fn idle(&self) -> impl core::future::Future<Output = ()> {
        Timer::after(OUTPUT_POLL)
    }
}

/// Publishes the core's Wi-Fi list and name to the radio and mDNS tasks when they changed.
pub fn sync_net_config(engine: &Engine) {
    let cfg = engine.device.config();
    let aps: Vec<(String, String)> = cfg
        .wifi
        .iter()
        .map(|ap| (ap.ssid.clone(), ap.pwd.clone()))
        .collect();
    let (name_changed, aps_changed) = wifi::NET_CONFIG.lock(|c| {
        let mut c = c.borrow_mut();
        let name_changed = c.name != cfg.name;
        let aps_changed = c.aps != aps;
        if name_changed {
            c.name = cfg.name.clone();
        }
        if aps_changed {
            c.aps = aps;
        }
        (name_changed, aps_changed)
    });
    if aps_changed || name_changed {
        wifi::NET_CHANGED.signal(());
    }
    if name_changed {
        mdns::RENAMED.signal(());
    }
}

/// Calls `Device::set_link` with its link record built from `Default` and `fill`: the record's type is
/// inferred from the method, so this binding does not depend on the module the core declares it in.
fn set_link<T: Default>(
    device: &mut Device,
    ip: Option<&str>,
    setter: fn(&mut Device, Option<&str>, T),
    fill: impl FnOnce(&mut T),
) {
    let mut link = T::default();
    fill(&mut link);
    setter(device, ip, link);
}

fn broker(s: MqttSettings) -> mqtt::Broker {
    mqtt::Broker {
        host: s.host,
        port: s.port,
        user: s.user,
        password: s.password,
        client_id: s.client_id,
        will: Some((s.will_topic, s.will_payload)),
        subscriptions: s.subscriptions,
    }
}

fn dispatch(event: Action) {
    match event {
        Action::NtpRequest { server } => {
            if NTP_REQUESTS.try_send(server).is_err() {
                // An exchange is already running; the engine times the request out and retries.
                warn!("ntp: request dropped, one in flight");
            }
        }
        Action::Publish {
            topic,
            payload,
            retain,
        } => {
            let _ = mqtt::OUTGOING.try_send(mqtt::Outgoing {
                topic,
                payload,
                retain,
            });
        }
        Action::SendDatagram { addr, bytes } => {
            if DATAGRAMS.try_send((addr, bytes)).is_err() {
                warn!("udp: datagram dropped, queue full");
            }
        }
        Action::Connect { host, port } => {
            let _ = STREAM_SERVER.try_send((host, port));
        }
        Action::Close(conn) => CLOSING.lock(|c| c.borrow_mut().push(conn)),
        Action::MqttConfigure(settings) => mqtt::CONFIGURE.signal(settings.map(broker)),
        Action::Announce { name } => info!("mdns: name is now {name}"),
        // Persist and Restart are served by the core's Driver; anything newer is logged.
        other => warn!("engine event not handled by this binding: {other:?}"),
    }
}

/// Pumps the engine forever and carries out its events.
#[embassy_executor::task]
pub async fn pump(engine: &'static Shared, stack: Stack<'static>, ap_stack: Stack<'static>) {
    let mut ticker = Ticker::every(PUMP_PERIOD);
    let mut rounds: u32 = 0;
    loop {
        ticker.next().await;
        let events = engine.lock(|e| {
            let mut e = e.borrow_mut();
            let t = now(&mut e);
            LOGGER.drain_into(&mut e.device, t);
            while let Ok(result) = NTP_RESULTS.try_receive() {
                e.device.handle_ntp(t, result);
            }
            if let Some(connected) = mqtt::CONNECTED.try_take() {
                e.device.handle_mqtt_connected(t, connected);
            }
            while let Ok((topic, payload)) = mqtt::INCOMING.try_receive() {
                e.device.handle_mqtt(t, &topic, &payload);
            }
            if rounds.is_multiple_of(250) {
                // Once a second: link facts for `info`, Wi-Fi list / name for the radio and mDNS.
                let link = wifi::LINK.lock(|l| l.borrow().clone());
                // The station's address, or the fallback access point's while that is up.
                let ip = stack
                    .config_v4()
                    .filter(|_| stack.is_link_up())
                    .or_else(|| ap_stack.config_v4().filter(|_| ap_stack.is_link_up()))
                    .map(|c| c.address.address().to_string());
                set_link(&mut e.device, ip.as_deref(), Device::set_link, |info| {
                    if !link.ssid.is_empty() {
                        info.ssid = link.ssid;
                    }
                    if !link.bssid.is_empty() {
                        info.bssid = link.bssid;
                    }
                    info.rssi = link.rssi_dbm;
                });
                sync_net_config(&e);
            }
            let pumped = e.pump();
            (pumped.network, e.system.requested())
        });
        rounds = rounds.wrapping_add(1);
        let (events, restart) = events;
        for event in events {
            dispatch(event);
        }
        if restart {
            // The engine's clean shutdown before the reset: energy and logbook written now (not as
            // of the restart request), the retained `offline` handed to the broker session.
            let goodbye = engine.lock(|e| e.borrow_mut().shutdown());
            for event in goodbye.network {
                dispatch(event);
            }
            Timer::after(crate::hal_impl::RESTART_GRACE).await;
            crate::hal_impl::Esp::reset_now();
        }
    }
}

/// Serves one TCP connection until the peer or the engine closes it, then closes the socket.
async fn serve(
    engine: &'static Shared,
    socket: &mut TcpSocket<'_>,
    kind: ConnKind,
    bufs: &mut ConnBuffers,
) {
    let (rx, tx) = socket.split();
    // However it ended (peer, engine, error), the engine has been told and the socket goes.
    let _: Ended = Link::new(rx, tx, &mut bufs.input, &mut bufs.output)
        .serve(&Board(engine), kind)
        .await;
    socket.close();
    let _ = socket.flush().await;
    socket.abort();
}

/// Per-connection buffers of a TCP task: input the engine has not taken yet, one `poll_output`.
struct ConnBuffers {
    input: [u8; 512],
    output: [u8; 1460],
}

impl ConnBuffers {
    const fn new() -> Self {
        Self {
            input: [0; 512],
            output: [0; 1460],
        }
    }
}

fn peer(socket: &TcpSocket<'_>) -> SocketAddr {
    match socket.remote_endpoint() {
        Some(IpEndpoint {
            addr: IpAddress::Ipv4(ip),
            port,
        }) => SocketAddr::V4(SocketAddrV4::new(ip, port)),
        _ => SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
    }
}

/// Accepts connections on `port` forever; several of these run per port so the engine sees (and can
/// refuse, with its own reply) one client more than it allows.
#[embassy_executor::task(pool_size = 10)]
pub async fn listener(engine: &'static Shared, stack: Stack<'static>, port: u16) {
    let mut rx = [0u8; 512];
    let mut tx = [0u8; 2048];
    let mut bufs = ConnBuffers::new();
    loop {
        let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
        socket.set_timeout(Some(Duration::from_secs(120)));
        if socket.accept(port).await.is_err() {
            Timer::after(Duration::from_millis(100)).await;
            continue;
        }
        let peer = peer(&socket);
        let kind = if port == RAW_PORT {
            ConnKind::RawStream { peer }
        } else {
            ConnKind::Command { peer }
        };
        serve(engine, &mut socket, kind, &mut bufs).await;
    }
}

/// Opens the outgoing stream-server connection whenever the engine asks.
#[embassy_executor::task]
pub async fn stream_server(engine: &'static Shared, stack: Stack<'static>) {
    let mut rx = [0u8; 1024];
    let mut tx = [0u8; 4096];
    let mut bufs = ConnBuffers::new();
    loop {
        let (host, port) = STREAM_SERVER.receive().await;
        let addr: Option<IpAddress> = match host.parse() {
            Ok(ip) => Some(ip),
            Err(_) => stack
                .dns_query(&host, embassy_net::dns::DnsQueryType::A)
                .await
                .ok()
                .and_then(|a| a.first().copied()),
        };
        let Some(addr) = addr else {
            warn!("stream server {host}: does not resolve");
            continue;
        };
        let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
        socket.set_timeout(Some(Duration::from_secs(120)));
        if socket.connect((addr, port)).await.is_err() {
            warn!("stream server {host}:{port}: connect failed");
            continue;
        }
        let peer = peer(&socket);
        serve(
            engine,
            &mut socket,
            ConnKind::StreamServer { peer },
            &mut bufs,
        )
        .await;
    }
}

/// Sends the engine's UDP data frames.
#[embassy_executor::task]
pub async fn datagrams(stack: Stack<'static>) {
    let mut rx_meta = [PacketMetadata::EMPTY; 1];
    let mut tx_meta = [PacketMetadata::EMPTY; 8];
    let mut rx = [0u8; 64];
    let mut tx = [0u8; 4096];
    let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
    if let Err(e) = socket.bind(0) {
        warn!("udp: bind failed: {e:?}");
        return;
    }
    loop {
        let (addr, bytes) = DATAGRAMS.receive().await;
        let ip = match addr.ip() {
            IpAddr::V4(v4) => IpAddress::Ipv4(v4),
            IpAddr::V6(_) => continue,
        };
        if let Err(e) = socket
            .send_to(&bytes, IpEndpoint::new(ip, addr.port()))
            .await
        {
            warn!("udp: send to {addr} failed: {e:?}");
        }
    }
}

/// Runs the SNTP exchanges the engine asks for.
#[embassy_executor::task]
pub async fn ntp(stack: Stack<'static>) {
    loop {
        let server = NTP_REQUESTS.receive().await;
        let result = match sntp::query(stack, &server, crate::clock::now_us).await {
            Ok(x) => NtpResult::Synced {
                offset_us: x.offset_us(),
                round_trip_us: x.round_trip_us(),
            },
            Err(e) => {
                warn!("ntp {server}: {e:?}");
                NtpResult::Failed
            }
        };
        NTP_RESULTS.send(result).await;
    }
}
