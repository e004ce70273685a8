//! The MQTT bridge: one rumqttc client per configured broker, moving publishes both ways.
//!
//! The engine decides *what* to publish and how to answer; this bridge only connects (with the last will
//! `powermeter/<name>/state/online` = `offline`, retained), subscribes to `powermeter/+` and
//! `powermeter/<name>/+`, reports connection changes and hands incoming publishes to the engine.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Where and as whom to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Optional user name.
    pub user: Option<String>,
    /// Optional password.
    pub pwd: Option<String>,
    /// The meter's name (client id and topic segment).
    pub name: String,
}

/// What the bridge reports to the simulator's engine task.
#[derive(Debug)]
pub enum BridgeEvent {
    /// The broker accepted (true) or the connection was lost (false).
    Connected(bool),
    /// A publish arrived on a subscribed topic.
    Message {
        /// Topic.
        topic: String,
        /// Payload bytes.
        payload: Vec<u8>,
    },
}

/// A running bridge; dropping it disconnects.
#[derive(Debug)]
pub struct Bridge {
    client: AsyncClient,
    task: JoinHandle<()>,
    /// The configuration it runs with (to skip needless reconnects).
    pub config: BrokerConfig,
}

/// The broadcast topic filter every meter subscribes to.
pub const BROADCAST_FILTER: &str = "powermeter/+";

/// The meter's own topic filter.
pub fn own_filter(name: &str) -> String {
    format!("powermeter/{name}/+")
}

/// The last-will topic.
pub fn online_topic(name: &str) -> String {
    format!("powermeter/{name}/state/online")
}

impl Bridge {
    /// Starts connecting in the background; retries every `retry` while the broker is unreachable.
    pub fn start(config: BrokerConfig, retry: Duration, events: mpsc::Sender<BridgeEvent>) -> Bridge {
        let mut opts = MqttOptions::new(config.name.clone(), config.host.clone(), config.port);
        opts.set_keep_alive(Duration::from_secs(15));
        opts.set_clean_session(true);
        opts.set_max_packet_size(64 * 1024, 64 * 1024);
        opts.set_last_will(LastWill::new(
            online_topic(&config.name),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(user) = &config.user {
            opts.set_credentials(user.clone(), config.pwd.clone().unwrap_or_default());
        }
        let (client, mut eventloop) = AsyncClient::new(opts, 256);
        let sub = client.clone();
        let own = own_filter(&config.name);
        let task = tokio::spawn(async move {
            let mut connected = false;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = sub.try_subscribe(BROADCAST_FILTER, QoS::AtMostOnce);
                        let _ = sub.try_subscribe(own.clone(), QoS::AtMostOnce);
                        connected = true;
                        if events.send(BridgeEvent::Connected(true)).await.is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let msg = BridgeEvent::Message {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                        };
                        if events.send(msg).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!("mqtt: {e}");
                        if connected {
                            connected = false;
                            if events.send(BridgeEvent::Connected(false)).await.is_err() {
                                return;
                            }
                        }
                        tokio::time::sleep(retry).await;
                    }
                }
            }
        });
        Bridge {
            client,
            task,
            config,
        }
    }

    /// Queues a publish (QoS 0); dropped when the client's queue is full or the broker is away.
    pub fn publish(&self, topic: String, payload: Vec<u8>, retain: bool) {
        if self
            .client
            .try_publish(topic, QoS::AtMostOnce, retain, payload)
            .is_err()
        {
            tracing::debug!("mqtt: publish dropped");
        }
    }

    /// Disconnects cleanly (no last will) and stops the task.
    pub fn stop(self) {
        let _ = self.client.try_disconnect();
        let task = self.task;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            task.abort();
        });
    }
}
