//! MQTT bridge (rust-mqtt, MQTT 5): keeps one broker session as the engine configures it, publishes
//! what the engine emits and hands every received message back to the engine. Topics, payloads, the
//! last will and the subscriptions all come from the core; this module only moves bytes.

use alloc::string::String;
use alloc::vec::Vec;
use core::num::NonZero;

use embassy_futures::select::{Either3, select3};
use embassy_net::tcp::TcpSocket;
use embassy_net::{IpAddress, Stack};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Ticker, with_timeout};
use log::{info, warn};
use rust_mqtt::buffer::AllocBuffer;
use rust_mqtt::client::Client;
use rust_mqtt::client::event::Event as MqttEvent;
use rust_mqtt::client::options::{
    ConnectOptions, PublicationOptions, SubscriptionOptions, TopicReference, WillOptions,
};
use rust_mqtt::config::KeepAlive;
use rust_mqtt::types::{MqttBinary, MqttString, TopicFilter, TopicName};

/// Broker session wanted by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Host name or address literal.
    pub host: String,
    /// TCP port (1883).
    pub port: u16,
    /// Optional credentials.
    pub user: Option<String>,
    /// Optional password.
    pub password: Option<String>,
    /// Client identifier.
    pub client_id: String,
    /// Last will `(topic, payload)`, published retained by the broker when we vanish.
    pub will: Option<(String, Vec<u8>)>,
    /// Topic filters to subscribe to after connecting.
    pub subscriptions: Vec<String>,
}

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Topic name.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Retain flag.
    pub retain: bool,
}

/// The engine's wish: `Some` = connect (or reconnect with new settings), `None` = disconnect.
pub static CONFIGURE: Signal<CriticalSectionRawMutex, Option<Broker>> = Signal::new();
/// Messages to publish (dropped while disconnected: measurements are not worth queueing).
pub static OUTGOING: Channel<CriticalSectionRawMutex, Outgoing, 8> = Channel::new();
/// Messages received, for the engine: `(topic, payload)`.
pub static INCOMING: Channel<CriticalSectionRawMutex, (String, Vec<u8>), 4> = Channel::new();
/// Connection state changes, for the engine.
pub static CONNECTED: Signal<CriticalSectionRawMutex, bool> = Signal::new();

const RECONNECT: Duration = Duration::from_secs(10);
const KEEPALIVE_S: u16 = 30;

async fn resolve(stack: Stack<'_>, host: &str) -> Option<IpAddress> {
    if let Ok(ip) = host.parse() {
        return Some(ip);
    }
    stack
        .dns_query(host, embassy_net::dns::DnsQueryType::A)
        .await
        .ok()?
        .first()
        .copied()
}

/// Runs the broker session forever, following [`CONFIGURE`].
#[embassy_executor::task]
pub async fn task(stack: Stack<'static>) {
    let mut wanted: Option<Broker> = None;
    loop {
        let Some(broker) = wanted.clone() else {
            wanted = CONFIGURE.wait().await;
            continue;
        };
        match session(stack, &broker).await {
            SessionEnd::Reconfigured(next) => wanted = next,
            SessionEnd::Failed => {
                CONNECTED.signal(false);
                // Drop what the engine queued meanwhile, wait, or take new settings.
                while OUTGOING.try_receive().is_ok() {}
                if let Ok(next) = with_timeout(RECONNECT, CONFIGURE.wait()).await {
                    wanted = next;
                }
            }
        }
    }
}

enum SessionEnd {
    Reconfigured(Option<Broker>),
    Failed,
}

async fn session(stack: Stack<'static>, broker: &Broker) -> SessionEnd {
    stack.wait_config_up().await;
    let Some(ip) = resolve(stack, &broker.host).await else {
        warn!("mqtt: cannot resolve {}", broker.host);
        return SessionEnd::Failed;
    };
    let mut rx = [0u8; 1536];
    let mut tx = [0u8; 1536];
    let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
    socket.set_timeout(Some(Duration::from_secs(3 * u64::from(KEEPALIVE_S))));
    if let Err(e) = socket.connect((ip, broker.port)).await {
        warn!(
            "mqtt: connect to {}:{} failed: {e:?}",
            broker.host, broker.port
        );
        return SessionEnd::Failed;
    }
    let mut buffer = AllocBuffer;
    let mut client: Client<'_, '_, _, _, 2, 1, 1, 0, 0, 0, 0> = Client::new(&mut buffer);

    let will_topic = broker
        .will
        .as_ref()
        .and_then(|(t, _)| MqttString::from_str(t).ok())
        .and_then(TopicName::new);
    let will_payload = broker
        .will
        .as_ref()
        .and_then(|(_, p)| MqttBinary::from_slice(p).ok());
    let user = broker
        .user
        .as_deref()
        .and_then(|u| MqttString::from_str(u).ok());
    let password = broker
        .password
        .as_deref()
        .and_then(|p| MqttBinary::from_slice(p.as_bytes()).ok());
    let mut options = ConnectOptions::new()
        .clean_start()
        .keep_alive(KeepAlive::Seconds(
            NonZero::new(KEEPALIVE_S).unwrap_or(NonZero::<u16>::MIN),
        ));
    if let (Some(topic), Some(payload)) = (will_topic, will_payload) {
        options = options.will(WillOptions::new(topic, payload).retain());
    }
    if let Some(user) = user {
        options = options.user_name(user);
    }
    if let Some(password) = password {
        options = options.password(password);
    }
    let Ok(client_id) = MqttString::from_str(&broker.client_id) else {
        return SessionEnd::Failed;
    };
    if let Err(e) = client.connect(socket, &options, Some(client_id)).await {
        warn!("mqtt: CONNECT refused: {e:?}");
        return SessionEnd::Failed;
    }
    for filter in &broker.subscriptions {
        let Some(filter) = MqttString::from_str(filter).ok().and_then(TopicFilter::new) else {
            continue;
        };
        if client
            .subscribe(filter, &SubscriptionOptions::new())
            .await
            .is_err()
        {
            return SessionEnd::Failed;
        }
    }
    info!("mqtt: connected to {}:{}", broker.host, broker.port);
    CONNECTED.signal(true);

    let mut ping = Ticker::every(Duration::from_secs(u64::from(KEEPALIVE_S) / 2));
    loop {
        // `poll_header` is cancel-safe, so a publish or a ping may interrupt the wait for input.
        match select3(client.poll_header(), OUTGOING.receive(), async {
            select_configure_or_tick(&mut ping).await
        })
        .await
        {
            Either3::First(Ok(header)) => match client.poll_body(header).await {
                Ok(MqttEvent::Publish(p)) => {
                    let topic = match &p.topic {
                        TopicReference::Name(n) | TopicReference::Mapping(n, _) => {
                            String::from(n.as_ref().as_str())
                        }
                        TopicReference::Alias(_) => continue,
                    };
                    let payload = Vec::from(&*p.message);
                    if INCOMING.try_send((topic, payload)).is_err() {
                        warn!("mqtt: engine busy, message dropped");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    warn!("mqtt: receive failed: {e:?}");
                    let _ = client.abort().await;
                    return SessionEnd::Failed;
                }
            },
            Either3::First(Err(e)) => {
                warn!("mqtt: connection lost: {e:?}");
                let _ = client.abort().await;
                return SessionEnd::Failed;
            }
            Either3::Second(msg) => {
                let Some(topic) = MqttString::from_str(&msg.topic)
                    .ok()
                    .and_then(TopicName::new)
                else {
                    continue;
                };
                let mut options = PublicationOptions::new(TopicReference::Name(topic));
                if msg.retain {
                    options = options.retain();
                }
                if let Err(e) = client
                    .publish(&options, msg.payload.as_slice().into())
                    .await
                {
                    warn!("mqtt: publish failed: {e:?}");
                    let _ = client.abort().await;
                    return SessionEnd::Failed;
                }
            }
            Either3::Third(Some(next)) => {
                // The engine replaced (or dropped) this session itself: its end is no failure, so
                // it is not reported (a `false` here would read as a lost broker), and a state of
                // the old session the engine has not taken yet is stale.
                CONNECTED.reset();
                let _ = client
                    .disconnect(&rust_mqtt::client::options::DisconnectOptions::new())
                    .await;
                return SessionEnd::Reconfigured(next);
            }
            Either3::Third(None) => {
                if client.ping().await.is_err() {
                    let _ = client.abort().await;
                    return SessionEnd::Failed;
                }
            }
        }
    }
}

/// Waits for new settings (`Some(new)`) or the next keep-alive tick (`None`).
async fn select_configure_or_tick(ping: &mut Ticker) -> Option<Option<Broker>> {
    match embassy_futures::select::select(CONFIGURE.wait(), ping.next()).await {
        embassy_futures::select::Either::First(next) => Some(next),
        embassy_futures::select::Either::Second(()) => None,
    }
}
