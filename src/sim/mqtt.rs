//! The MQTT bridge: one rumqttc client per configured broker, moving publishes both ways.
//!
//! The engine decides *what* to publish and how to answer, and names the broker, the topic filters
//! (`powermeter/+`, `powermeter/<name>/+`) and the last will (`powermeter/<name>/state/online` =
//! `offline`, retained) in [`MqttSettings`]; this bridge only connects, subscribes, reports connection
//! changes and hands incoming publishes to the engine.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};

use crate::device::MqttSettings;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
    pub config: MqttSettings,
}

impl Bridge {
    /// Starts connecting in the background; retries every `retry` while the broker is unreachable.
    pub fn start(
        config: MqttSettings,
        retry: Duration,
        events: mpsc::Sender<BridgeEvent>,
    ) -> Bridge {
        let mut opts = MqttOptions::new(config.client_id.clone(), config.host.clone(), config.port);
        opts.set_keep_alive(Duration::from_secs(15));
        opts.set_clean_session(true);
        opts.set_max_packet_size(64 * 1024, 64 * 1024);
        opts.set_last_will(LastWill::new(
            config.will_topic.clone(),
            config.will_payload.clone(),
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(user) = &config.user {
            opts.set_credentials(user.clone(), config.password.clone().unwrap_or_default());
        }
        let (client, mut eventloop) = AsyncClient::new(opts, 256);
        let sub = client.clone();
        let filters = config.subscriptions.clone();
        let task = tokio::spawn(async move {
            let mut connected = false;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for f in &filters {
                            let _ = sub.try_subscribe(f.clone(), QoS::AtMostOnce);
                        }
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
