//! Subscription and ingest: one MQTT connection subscribed to `powermeter/+/state/#` (or the
//! shared `$share/<group>/…` of a collector group), each message parsed with the `wire` types
//! and turned into rows, handed to the sinks in batches.
//!
//! The subscription is QoS 1 (events are published with QoS 1; status messages arrive with the
//! QoS they were published with). The session is clean and the subscription is renewed on every
//! connection, so a broker that restarts without persistence is re-subscribed; the connection is
//! retried forever with a backoff of up to 10 s. At start, a broker that cannot be reached (or
//! refuses the subscription) is an error.

use std::boxed::Box;
use std::collections::HashMap;
use std::string::{String, ToString};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use std::vec::Vec;

use crate::client::broker::describe;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeReasonCode};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::metrics::Stats;
use super::progress::Log;
use super::rows::{Batch, MeterName};
use crate::wire::mqtt::{self, StateLeaf, Status};
use crate::wire::pq::{PqAggregate, PqEvent};

/// A batch is handed to the sinks at this many rows, or [`BATCH_AGE`] after its first row.
pub const BATCH_ROWS: usize = 8192;
/// The longest a row waits in the ingest before the sinks get it.
pub const BATCH_AGE: Duration = Duration::from_millis(200);
/// The largest MQTT packet accepted (a `state/pq` aggregate is ~3 KB).
pub const MAX_PACKET: usize = 256 * 1024;

/// Why the broker could not be used at start.
#[derive(Debug, thiserror::Error)]
#[error("MQTT broker {broker}: {reason}")]
pub struct BrokerError {
    /// `host:port`.
    pub broker: String,
    /// Why.
    pub reason: String,
}

/// How to reach the broker.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Where the broker is.
    pub addr: crate::client::BrokerAddr,
    /// The TLS configuration (`None`: plain TCP).
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// User name and password, if the broker wants them.
    pub credentials: Option<(String, String)>,
    /// The MQTT client id (unique per collector).
    pub client_id: String,
    /// The topic filter (plain or shared).
    pub filter: String,
    /// How long the first connection may take.
    pub connect_timeout: Duration,
}

impl BrokerOptions {
    fn label(&self) -> String {
        self.addr.to_string()
    }

    fn mqtt_options(&self) -> MqttOptions {
        let mut o = self
            .addr
            .mqtt_options(self.client_id.clone(), self.tls.as_ref());
        o.set_keep_alive(Duration::from_secs(30));
        o.set_clean_session(true);
        o.set_max_packet_size(MAX_PACKET, MAX_PACKET);
        o.set_request_channel_capacity(16);
        if let Some((u, p)) = &self.credentials {
            o.set_credentials(u.clone(), p.clone());
        }
        o
    }
}

/// A connected, subscribed broker session, ready for [`Ingest::run`].
pub struct Ingest {
    opts: BrokerOptions,
    client: AsyncClient,
    events: EventLoop,
    meters: HashMap<Box<str>, MeterName>,
    stats: Arc<Stats>,
    log: Arc<Log>,
    last_invalid_log: Option<Instant>,
}

impl Ingest {
    /// Connects and subscribes; fails if either does not happen within the connect timeout.
    pub async fn connect(
        opts: BrokerOptions,
        stats: Arc<Stats>,
        log: Arc<Log>,
    ) -> Result<Ingest, BrokerError> {
        let err = |reason: String| BrokerError {
            broker: opts.label(),
            reason,
        };
        let (client, mut events) = AsyncClient::new(opts.mqtt_options(), 64);
        events
            .network_options
            .set_connection_timeout(opts.connect_timeout.as_secs().max(1));
        let deadline = Instant::now() + opts.connect_timeout;
        let mut subscribed = false;
        while !subscribed {
            let ev = tokio::time::timeout_at(deadline, events.poll())
                .await
                .map_err(|_| err("no answer (timed out)".into()))?
                .map_err(|e| err(describe(&e)))?;
            match ev {
                Event::Incoming(Packet::ConnAck(_)) => client
                    .try_subscribe(opts.filter.clone(), QoS::AtLeastOnce)
                    .map_err(|e| err(e.to_string()))?,
                Event::Incoming(Packet::SubAck(ack)) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, SubscribeReasonCode::Failure))
                    {
                        return Err(err(std::format!(
                            "the broker refused the subscription to {}",
                            opts.filter
                        )));
                    }
                    subscribed = true;
                }
                _ => {}
            }
        }
        log.event(
            "subscribed",
            &std::format!("subscribed to {} on {}", opts.filter, opts.label()),
            serde_json::json!({ "broker": opts.label(), "filter": opts.filter }),
        );
        Ok(Ingest {
            opts,
            client,
            events,
            meters: HashMap::new(),
            stats,
            log,
            last_invalid_log: None,
        })
    }

    /// The shared name of a meter (one allocation per meter, not per row).
    fn meter(&mut self, name: &str) -> MeterName {
        if let Some(m) = self.meters.get(name) {
            return m.clone();
        }
        let m: MeterName = Arc::from(name);
        self.meters.insert(name.into(), m.clone());
        m
    }

    /// Turns one message into rows of `batch`; anything else than a state topic is ignored.
    pub fn handle(&mut self, topic: &str, payload: &[u8], batch: &mut Batch) {
        let Some(t) = mqtt::parse_state_topic(topic) else {
            return;
        };
        self.stats.messages.add(1);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let now_s = now.as_secs_f64();
        let meter = self.meter(t.meter);
        let before = batch.rows();
        let outcome: Result<(), String> = match t.leaf {
            StateLeaf::Status => match Status::parse(payload) {
                Ok(s) => {
                    let now_us = i64::try_from(now.as_micros()).unwrap_or(i64::MAX);
                    batch.push_status(&meter, &s, now_us);
                    self.stats.seen(&meter, Some(&s), now_s);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            },
            StateLeaf::Pq => match PqAggregate::parse(payload) {
                Ok(a) => batch
                    .push_aggregate(&meter, &a)
                    .ok_or_else(|| "start/end out of range".to_string()),
                Err(e) => Err(e.to_string()),
            },
            StateLeaf::Event => match PqEvent::parse(payload) {
                Ok(e) => batch
                    .push_event(&meter, &e)
                    .ok_or_else(|| "start out of range".to_string()),
                Err(e) => Err(e.to_string()),
            },
            _ => Ok(()),
        };
        if !matches!(t.leaf, StateLeaf::Status) {
            self.stats.seen(&meter, None, now_s);
        }
        self.stats
            .rows_received
            .add((batch.rows().saturating_sub(before)) as u64);
        if let Err(reason) = outcome {
            self.stats.invalid.add(1);
            // At most one line per 10 s: a misbehaving meter must not flood the log.
            let quiet = self
                .last_invalid_log
                .is_some_and(|t| t.elapsed() < Duration::from_secs(10));
            if !quiet {
                self.last_invalid_log = Some(Instant::now());
                self.log.event(
                    "invalid",
                    &std::format!("ignored an invalid message on {topic}: {reason}"),
                    serde_json::json!({ "topic": topic, "error": reason }),
                );
            }
        }
    }

    /// Receives until `shutdown` completes, handing batches to every sender in `sinks`. Broker
    /// outages are logged and retried; the subscription is renewed on every reconnection.
    pub async fn run(
        mut self,
        sinks: Vec<mpsc::Sender<Arc<Batch>>>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut batch = Batch::default();
        let mut batch_start: Option<Instant> = None;
        let mut connected = true;
        let mut backoff = Duration::from_millis(250);
        loop {
            let flush_at = batch_start.map(|t| t + BATCH_AGE);
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = async {
                    match flush_at {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => {
                    send(&sinks, &mut batch).await;
                    batch_start = None;
                }
                ev = self.events.poll() => match ev {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        self.handle(&p.topic, &p.payload, &mut batch);
                        if batch_start.is_none() && !batch.is_empty() {
                            batch_start = Some(Instant::now());
                        }
                        if batch.rows() >= BATCH_ROWS {
                            send(&sinks, &mut batch).await;
                            batch_start = None;
                        }
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        backoff = Duration::from_millis(250);
                        if let Err(e) = self.client.try_subscribe(self.opts.filter.clone(), QoS::AtLeastOnce) {
                            self.log.event("subscribe_error", &std::format!("cannot renew the subscription: {e}"), serde_json::json!({ "error": e.to_string() }));
                        }
                        if !connected {
                            connected = true;
                            self.log.event(
                                "broker_back",
                                &std::format!("reconnected to {}; subscription renewed", self.opts.label()),
                                serde_json::json!({ "broker": self.opts.label() }),
                            );
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if connected {
                            connected = false;
                            self.stats.broker_reconnects.add(1);
                            self.log.event(
                                "broker_lost",
                                &std::format!("lost the broker {} ({}); reconnecting", self.opts.label(), describe(&e)),
                                serde_json::json!({ "broker": self.opts.label(), "error": describe(&e) }),
                            );
                        }
                        // Rows received so far go to the sinks while we wait.
                        send(&sinks, &mut batch).await;
                        batch_start = None;
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        }
        send(&sinks, &mut batch).await;
        let _ = self.client.try_disconnect();
        // Let the DISCONNECT go out (bounded).
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            while let Ok(ev) = self.events.poll().await {
                if let Event::Outgoing(rumqttc::Outgoing::Disconnect) = ev {
                    break;
                }
            }
        })
        .await;
    }
}

/// Hands the batch to every sink (waiting when a sink is behind: backpressure).
async fn send(sinks: &[mpsc::Sender<Arc<Batch>>], batch: &mut Batch) {
    if batch.is_empty() {
        return;
    }
    let b = Arc::new(std::mem::take(batch));
    for s in sinks {
        // A closed sink has stopped (its task ended); nothing else to do with the rows.
        let _ = s.send(b.clone()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_every_state_leaf() {
        // No connection needed: `handle` is pure apart from the counters.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let stats = Arc::new(Stats::default());
            let (client, events) = AsyncClient::new(MqttOptions::new("t", "127.0.0.1", 1), 1);
            let mut ing = Ingest {
                opts: BrokerOptions {
                    addr: crate::client::BrokerAddr::parse("h:1").unwrap(),
                    tls: None,
                    credentials: None,
                    client_id: "t".into(),
                    filter: mqtt::STATE_FILTER.into(),
                    connect_timeout: Duration::from_secs(1),
                },
                client,
                events,
                meters: HashMap::new(),
                stats: stats.clone(),
                log: Arc::new(Log::quiet()),
                last_invalid_log: None,
            };
            let mut b = Batch::default();
            let s = Status {
                ts_s: Some(10.0),
                voltage_v: [Some(1.0); 3],
                ..Status::default()
            };
            ing.handle("powermeter/a/state/status", s.to_json().as_bytes(), &mut b);
            ing.handle("powermeter/a/state/status", b"{junk", &mut b);
            ing.handle("powermeter/b/state/online", b"online", &mut b);
            ing.handle("powermeter/b/cmd", b"{}", &mut b);
            let e = PqEvent {
                id: 1,
                kind: crate::wire::pq::EventKind::Dip,
                phases: crate::wire::pq::PhaseSet::ALL,
                start_s: 5.0,
                duration_s: 0.1,
                extreme_v: 100.0,
                reference_v: 230.0,
            };
            ing.handle("powermeter/b/state/event", e.to_json().as_bytes(), &mut b);
            assert_eq!(b.readings.len(), 3);
            assert_eq!(b.events.len(), 1);
            assert_eq!(stats.messages.get(), 4);
            assert_eq!(stats.invalid.get(), 1);
            assert_eq!(stats.rows_received.get(), 4);
            assert_eq!(stats.meters(), 2);
            assert!(Arc::ptr_eq(&b.readings[0].meter, &b.readings[2].meter));
        });
    }
}
