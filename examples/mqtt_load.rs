//! Load generator for `smartmeter collect`: publishes synthetic `state/status` messages (docs/protocol.md
//! §12) for N meters at a fixed interval, spread evenly over the interval, over several MQTT
//! connections, and prints what it achieved.
//!
//! ```text
//! cargo run --release --example mqtt_load --features client -- \
//!     --broker 127.0.0.1:1883 --meters 20000 --interval 1s --duration 60s
//! ```
//!
//! Options: `--broker HOST:PORT` (default 127.0.0.1:1883), `--meters N` (1000), `--interval D`
//! (1s), `--duration D` (10s) or `--rounds R` (publish exactly R rounds, then stop), `--clients K`
//! (connections, default 4), `--prefix NAME` (meter names `NAME-00001`…, default `load`),
//! `--pq-every R` (also publish a 10-min-style `state/pq` aggregate per meter every R rounds, 0 =
//! never), `--events N` (publish N `state/event` events, QoS 1, spread over the run).
//!
//! Each status carries `ts` = the round's start time, so a collector's output can be checked
//! round by round: meter `NAME-k` in round `r` has voltage `230 + (k % 10) / 10` on L1 and
//! energy import `r` kWh.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use smartmeter::client::parse_duration;
use smartmeter::wire::mqtt::{self, Status};
use smartmeter::wire::pq::{EventKind, Nominal, PhaseSet, PqAggregate, PqEvent, PqInterval};

#[derive(Debug, Clone)]
struct Opts {
    broker: String,
    meters: usize,
    interval: Duration,
    duration: Duration,
    rounds: Option<u64>,
    clients: usize,
    prefix: String,
    pq_every: u64,
    events: u64,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        broker: "127.0.0.1:1883".into(),
        meters: 1000,
        interval: Duration::from_secs(1),
        duration: Duration::from_secs(10),
        rounds: None,
        clients: 4,
        prefix: "load".into(),
        pq_every: 0,
        events: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().ok_or(format!("{a} needs a value"));
        let num = |s: String| s.parse::<u64>().map_err(|e| format!("{a}: {e}"));
        match a.as_str() {
            "--broker" => o.broker = v()?,
            "--meters" => o.meters = num(v()?)? as usize,
            "--interval" => o.interval = parse_duration(&v()?).map_err(|e| e.to_string())?,
            "--duration" => o.duration = parse_duration(&v()?).map_err(|e| e.to_string())?,
            "--rounds" => o.rounds = Some(num(v()?)?),
            "--clients" => o.clients = (num(v()?)? as usize).max(1),
            "--prefix" => o.prefix = v()?,
            "--pq-every" => o.pq_every = num(v()?)?,
            "--events" => o.events = num(v()?)?,
            "-h" | "--help" => {
                return Err("see the doc comment of examples/mqtt_load.rs".into());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.meters == 0 || o.interval.is_zero() {
        return Err("--meters and --interval must be positive".into());
    }
    Ok(o)
}

/// Meter `k`'s status in round `r` taken at `ts_s`.
pub fn status(k: usize, r: u64, ts_s: f64) -> Status {
    let v = 230.0 + (k % 10) as f32 / 10.0;
    Status {
        ts_s: Some(ts_s),
        voltage_v: [Some(v), Some(v - 1.0), Some(v + 1.0)],
        current_a: [Some(5.0), Some(3.0), Some(1.0)],
        active_power_w: [Some(v * 5.0), Some(600.0), Some(-200.0)],
        reactive_power_var: [Some(0.0), Some(345.0), Some(-78.5)],
        apparent_power_va: [Some(v * 5.0), Some(690.0), Some(231.0)],
        power_factor: [Some(1.0), Some(0.866), Some(-0.94)],
        frequency_hz: Some(50.0),
        energy_import_kwh: [Some(r as f64), Some(0.5), Some(0.0)],
        energy_export_kwh: [Some(0.0), Some(0.0), Some(r as f64 / 100.0)],
    }
}

fn aggregate(ts_s: f64) -> PqAggregate {
    let mut a = PqAggregate::undefined(
        PqInterval::TenMinutes,
        ts_s - 600.0,
        ts_s,
        Nominal {
            voltage_v: 230.0,
            frequency_hz: 50.0,
        },
    );
    a.voltage_v = [Some(230.0), Some(229.0), Some(231.0)];
    a.frequency_hz = Some(50.0);
    a.thd_v_pct = [Some(1.5); 3];
    for p in 0..3 {
        a.harmonics_v[p][0] = Some(230.0);
        a.harmonics_v[p][2] = Some(2.0);
    }
    a.pst = Some([Some(0.4); 3]);
    a
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mqtt_load: {e}");
            return ExitCode::from(2);
        }
    };
    let (host, port) = match o.broker.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(1883)),
        None => (o.broker.clone(), 1883),
    };
    let rounds = o.rounds.unwrap_or_else(|| {
        (o.duration.as_secs_f64() / o.interval.as_secs_f64())
            .ceil()
            .max(1.0) as u64
    });
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..o.clients {
        let mut opts = MqttOptions::new(
            format!("mqtt-load-{}-{c}", std::process::id()),
            host.clone(),
            port,
        );
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(1 << 20, 1 << 20);
        opts.set_request_channel_capacity(4096);
        opts.set_inflight(1000);
        let (client, mut events) = AsyncClient::new(opts, 4096);
        // Wait for the connection before publishing.
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => break,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("mqtt_load: cannot connect to {}: {e}", o.broker);
                    return ExitCode::from(1);
                }
            }
        }
        let driver = tokio::spawn(async move { while events.poll().await.is_ok() {} });
        let meters: Vec<usize> = (0..o.meters).filter(|k| k % o.clients == c).collect();
        let o = o.clone();
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            let names: Vec<String> = meters
                .iter()
                .map(|k| mqtt::status_topic(&format!("{}-{k:05}", o.prefix)))
                .collect();
            let pq_names: Vec<String> = meters
                .iter()
                .map(|k| mqtt::pq_topic(&format!("{}-{k:05}", o.prefix)))
                .collect();
            let mut next_event = 0u64;
            let per_client_events =
                o.events / o.clients as u64 + u64::from((c as u64) < o.events % o.clients as u64);
            for r in 0..rounds {
                let round_start = start + o.interval * r as u32;
                tokio::time::sleep_until(round_start.into()).await;
                let ts = now_s();
                // A status depends on the meter only through `k % 10`: format the round's ten
                // bodies once, so the generator spends its CPU on publishing, not on JSON.
                let bodies: Vec<String> = (0..10).map(|k| status(k, r, ts).to_json()).collect();
                // Spread the round's messages over 90 % of the interval, in 100 slices.
                let slices = 100usize;
                let per = meters.len().div_ceil(slices).max(1);
                for (s, chunk) in meters.chunks(per).enumerate() {
                    let at = round_start + o.interval.mul_f64(0.9 * s as f64 / slices as f64);
                    tokio::time::sleep_until(at.into()).await;
                    for (i, k) in chunk.iter().enumerate() {
                        let idx = s * per + i;
                        let body = bodies[*k % 10].clone();
                        if client
                            .publish(names[idx].clone(), QoS::AtMostOnce, false, body)
                            .await
                            .is_err()
                        {
                            return;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                        if o.pq_every > 0 && r % o.pq_every == 0 {
                            let body = aggregate(ts).to_json();
                            let _ = client
                                .publish(pq_names[idx].clone(), QoS::AtMostOnce, false, body)
                                .await;
                        }
                    }
                }
                // Events: spread evenly over the rounds.
                let due = per_client_events * (r + 1) / rounds;
                while next_event < due {
                    next_event += 1;
                    let k = meters[(next_event as usize) % meters.len()];
                    let e = PqEvent {
                        id: next_event as u32,
                        kind: EventKind::Dip,
                        phases: PhaseSet::from_phases(&[1]).unwrap_or(PhaseSet::ALL),
                        start_s: ts,
                        duration_s: 0.1,
                        extreme_v: 180.0,
                        reference_v: 230.0,
                    };
                    let _ = client
                        .publish(
                            mqtt::event_topic(&format!("{}-{k:05}", o.prefix)),
                            QoS::AtLeastOnce,
                            false,
                            e.to_json(),
                        )
                        .await;
                }
            }
            // Let the queue drain before disconnecting.
            let _ = client.disconnect().await;
            let _ = tokio::time::timeout(Duration::from_secs(30), driver).await;
        }));
    }
    let reporter = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let now = sent.load(Ordering::Relaxed);
                eprintln!("mqtt_load: {:.0} msg/s", (now - last) as f64 / 5.0);
                last = now;
            }
        })
    };
    for t in tasks {
        let _ = t.await;
    }
    reporter.abort();
    let n = sent.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"meters\":{},\"rounds\":{rounds},\"messages\":{n},\"seconds\":{secs:.1},\"msg_per_s\":{:.0}}}",
        o.meters,
        n as f64 / secs
    );
    ExitCode::SUCCESS
}
