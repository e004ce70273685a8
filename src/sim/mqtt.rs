//! The MQTT bridge: one rumqttc client per configured broker, moving publishes both ways.
//!
//! The engine decides *what* to publish and how to answer, and names the broker, the topic filters
//! (`powermeter/+`, `powermeter/<name>/+`) and the last will (`powermeter/<name>/state/online` =
//! `offline`, retained) in [`MqttSettings`]; this bridge only connects, subscribes, reports connection
//! changes and hands incoming publishes to the engine.
//!
//! Going away on purpose (a rename, a new broker, a restart, SIGTERM) is a clean MQTT disconnect,
//! which sends no last will: so [`Bridge::stop`] queues the `DISCONNECT` behind every publish queued
//! before it (the engine's `offline`, or the empty payload that clears a retained topic of an old
//! name), and the bridge ends only once the broker has read them and closed the connection. The
//! next bridge waits for that ([`Bridge::start`]'s `after`), so two sessions never overlap. A
//! stopping bridge reports nothing to the engine: the end of a session the engine replaced is no
//! failure.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};

use crate::device::MqttSettings;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// After its `DISCONNECT` is written, how long a stopping bridge waits for the broker to close.
const LINGER: Duration = Duration::from_secs(2);

/// What the bridge reports to the simulator's engine task.
#[derive(Debug)]
pub enum BridgeEvent {
    /// The broker accepted (true), or a connection attempt failed or the connection was lost
    /// (false; reported for every failed attempt, the engine's logbook collapses the flood).
    Connected(bool),
    /// A publish arrived on a subscribed topic.
    Message {
        /// Topic.
        topic: String,
        /// Payload bytes.
        payload: Vec<u8>,
    },
}

/// A running bridge; stop it with [`Bridge::stop`].
#[derive(Debug)]
pub struct Bridge {
    client: AsyncClient,
    task: JoinHandle<()>,
    stopping: Arc<AtomicBool>,
    wake: Arc<Notify>,
    /// The configuration it runs with (to skip needless reconnects).
    pub config: MqttSettings,
}

/// Bridges that were stopped and are finishing their clean disconnect.
#[derive(Debug, Default)]
pub struct Stopped(Vec<JoinHandle<()>>);

impl Stopped {
    /// Adds the bridges of `other`.
    pub fn merge(&mut self, other: Stopped) {
        self.0.extend(other.0);
    }

    /// Waits until every bridge has disconnected (its queued publishes delivered), at most `limit`
    /// each; a bridge that takes longer is aborted.
    pub async fn wait(self, limit: Duration) {
        for mut task in self.0 {
            if tokio::time::timeout(limit, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Bridge {
    /// Starts connecting in the background, once the bridges in `after` have finished (so their
    /// last publishes precede this session); retries every `retry` while the broker is unreachable.
    pub fn start(
        config: MqttSettings,
        retry: Duration,
        events: mpsc::Sender<BridgeEvent>,
        after: Option<Stopped>,
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
        let stopping = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        let (stop_flag, stop_wake) = (stopping.clone(), wake.clone());
        let task = tokio::spawn(async move {
            if let Some(previous) = after {
                previous.wait(LINGER * 2).await;
            }
            let stopped = || stop_flag.load(Ordering::SeqCst);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if stopped() {
                            // Connected only to deliver what was queued; the DISCONNECT follows.
                            continue;
                        }
                        for f in &filters {
                            let _ = sub.try_subscribe(f.clone(), QoS::AtMostOnce);
                        }
                        if events.send(BridgeEvent::Connected(true)).await.is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if stopped() {
                            continue;
                        }
                        let msg = BridgeEvent::Message {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                        };
                        if events.send(msg).await.is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                        // Every request queued before it is written and flushed; read until the
                        // broker closes, so it has processed them (no reset on unread input).
                        let _ = tokio::time::timeout(LINGER, async {
                            while eventloop.poll().await.is_ok() {}
                        })
                        .await;
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!("mqtt: {e}");
                        if stopped() {
                            return;
                        }
                        if events.send(BridgeEvent::Connected(false)).await.is_err() {
                            return;
                        }
                        // Retry after `retry`, unless the bridge is stopped meanwhile.
                        if tokio::time::timeout(retry, stop_wake.notified())
                            .await
                            .is_ok()
                        {
                            return;
                        }
                    }
                }
            }
        });
        Bridge {
            client,
            task,
            stopping,
            wake,
            config,
        }
    }

    /// Queues a publish; dropped when the client's queue is full or the broker is away. The QoS is
    /// the protocol's ([`mqtt::publish_qos`](crate::wire::mqtt::publish_qos)): retained messages
    /// (`online`/`offline`, clearing an old name, like the last will) and power-quality events go
    /// with QoS 1, the rest with QoS 0.
    pub fn publish(&self, topic: String, payload: Vec<u8>, retain: bool) {
        let qos = match crate::wire::mqtt::publish_qos(&topic, retain) {
            crate::wire::mqtt::Qos::AtLeastOnce => QoS::AtLeastOnce,
            crate::wire::mqtt::Qos::AtMostOnce => QoS::AtMostOnce,
        };
        if self
            .client
            .try_publish(topic, qos, retain, payload)
            .is_err()
        {
            tracing::debug!("mqtt: publish dropped");
        }
    }

    /// Disconnects cleanly (no last will) after every publish queued so far; the returned handle
    /// completes when the broker has them (or the bridge gave up).
    pub fn stop(self) -> Stopped {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        if self.client.try_disconnect().is_err() {
            // The request queue is full or gone: nothing more will be delivered.
            self.task.abort();
        }
        Stopped(vec![self.task])
    }
}
