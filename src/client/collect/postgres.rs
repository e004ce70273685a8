//! The PostgreSQL sink: tables created if absent (hypertables when TimescaleDB is installed), rows
//! written with binary `COPY` in one transaction per chunk, and nothing lost while the database is
//! away.
//!
//! While the database is unreachable (or a write fails), rows wait in memory up to a bound; past it
//! the memory is spilled to the [`Spool`] on disk. When the database is back,
//! the spool is written first (oldest first), then memory. On shutdown the sink keeps writing for
//! a grace period; whatever is still unwritten then goes to the spool, which the next run writes.
//!
//! Guarantees and limits:
//! - A chunk is one transaction: it is stored whole or not at all, and retried until stored.
//! - `pq_intervals` and `pq_events` have a unique key and are inserted with `ON CONFLICT DO
//!   NOTHING`, so a redelivered QoS 1 event or a replayed chunk is stored once. `readings` has no
//!   key (for throughput): the only way to duplicate readings is a commit whose acknowledgement is
//!   lost with the connection, which is then retried.
//! - A chunk the database refuses twice on a live connection (a value out of its range) is set
//!   aside as a `.rejected` file in the spool directory and counted as lost, so that one bad row
//!   cannot stop the stream.
//! - TLS with `sslmode=require` (also `verify-ca`/`verify-full`) in the connection string: the
//!   server's certificate is always verified, chain and name, against the platform's trusted
//!   certificates or, with `sslrootcert=PATH`, only the CAs of that PEM file (libpq's
//!   `verify-full`; libpq's `require` alone would accept any certificate); `sslcert=PATH` and
//!   `sslkey=PATH` give a client certificate (`cert` authentication). Without `sslmode`, or with
//!   `prefer`, the connection is plain, as before.

use std::collections::VecDeque;
use std::string::{String, ToString};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use std::vec::Vec;

use std::path::PathBuf;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Socket};

use crate::client::TlsFiles;

use super::metrics::Stats;
use super::progress::Log;
use super::rows::Batch;
use super::spool::{FILE_ROWS, Spool, SpoolError};

/// Rows written per transaction at most.
pub const CHUNK_ROWS: usize = 50_000;

/// How long one chunk may take before the connection is considered dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Why the database could not be used at start.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The URL is not a PostgreSQL connection string.
    #[error("invalid PostgreSQL URL: {0}")]
    Url(String),
    /// Connecting or creating the tables failed.
    #[error("PostgreSQL at {target}: {reason}")]
    Connect {
        /// `host:port/dbname`.
        target: String,
        /// Why.
        reason: String,
    },
}

/// A parsed PostgreSQL connection string and the label it is shown with (no password). (Where a
/// *meter* is, is [`client::Target`](crate::client::Target).)
#[derive(Debug, Clone)]
pub struct DatabaseTarget {
    config: Config,
    label: String,
    /// With `sslmode=require`: the TLS configuration.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl DatabaseTarget {
    /// Parses `postgres://user:pw@host:port/db?...` or `host=... dbname=...`, with libpq's
    /// `sslrootcert`, `sslcert`, `sslkey` and `sslmode=verify-ca|verify-full` understood too (see
    /// the module docs).
    pub fn parse(url: &str) -> Result<DatabaseTarget, PostgresError> {
        let (url, files) = take_tls_params(url)?;
        let config: Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| PostgresError::Url(e.to_string()))?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
            .to_string();
        let mut config = config;
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("smartmeter collect");
        }
        let label = std::format!("{host}:{port}/{db}");
        let tls = match config.get_ssl_mode() {
            SslMode::Require => {
                Some(crate::client::tls::client_config(&files).map_err(|reason| {
                    PostgresError::Connect {
                        target: label.clone(),
                        reason,
                    }
                })?)
            }
            _ if !files.is_empty() => {
                return Err(PostgresError::Url(
                    "sslrootcert, sslcert and sslkey are for TLS: add sslmode=require (or verify-full)"
                        .into(),
                ));
            }
            _ => None,
        };
        Ok(DatabaseTarget { config, label, tls })
    }

    /// `host:port/dbname`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Connects and creates the tables if absent.
    pub async fn connect(&self) -> Result<Client, PostgresError> {
        let err = |e: tokio_postgres::Error| PostgresError::Connect {
            target: self.label.clone(),
            reason: describe(&e),
        };
        let client = match &self.tls {
            Some(tls) => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new((**tls).clone());
                connect_spawned(&self.config, tls).await
            }
            None => connect_spawned(&self.config, NoTls).await,
        }
        .map_err(err)?;
        ensure_schema(&client).await.map_err(err)?;
        Ok(client)
    }
}

/// Connects with `tls` and drives the connection on its own task.
async fn connect_spawned<T>(config: &Config, tls: T) -> Result<Client, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Takes out of a connection string what tokio-postgres does not read: libpq's `sslrootcert`,
/// `sslcert` and `sslkey` (file paths, returned) and the `sslmode`s `verify-ca` and `verify-full`
/// (written as `require`, which verifies the certificate here anyway). A string without any of
/// them is returned as it is.
fn take_tls_params(url: &str) -> Result<(String, TlsFiles), PostgresError> {
    let mut files = TlsFiles::default();
    if !["sslrootcert", "sslcert", "sslkey", "verify-"]
        .iter()
        .any(|k| url.contains(k))
    {
        return Ok((url.to_string(), files));
    }
    let uri = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let (base, params, sep) = match (uri, url.split_once('?')) {
        (true, Some((base, query))) => (std::format!("{base}?"), query, '&'),
        (true, None) => return Ok((url.to_string(), files)),
        (false, _) => (String::new(), url, ' '),
    };
    let mut kept: Vec<String> = Vec::new();
    for part in params.split(sep).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((key @ ("sslrootcert" | "sslcert" | "sslkey"), v)) => {
                let v = if uri {
                    percent_decode(v).ok_or_else(|| {
                        PostgresError::Url(std::format!("{key}: bad %-escape in {v:?}"))
                    })?
                } else {
                    v.trim_matches('\'').to_string()
                };
                let slot = match key {
                    "sslrootcert" => &mut files.ca,
                    "sslcert" => &mut files.client_cert,
                    _ => &mut files.client_key,
                };
                *slot = Some(PathBuf::from(v));
            }
            Some(("sslmode", "verify-ca" | "verify-full")) => kept.push("sslmode=require".into()),
            _ => kept.push(part.to_string()),
        }
    }
    let rest = kept.join(if uri { "&" } else { " " });
    let url = match (uri, rest.is_empty()) {
        (true, true) => base.trim_end_matches('?').to_string(),
        _ => std::format!("{base}{rest}"),
    };
    Ok((url, files))
}

/// `%XX` escapes of a URI component decoded (UTF-8); `None` if one is malformed.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = core::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An error with the server's message when there is one.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => std::format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            crate::client::tls::with_hint(s, "sslrootcert=PATH", "sslcert=PATH and sslkey=PATH")
        }
    }
}

/// The tables (and their column types) this sink writes; `CREATE … IF NOT EXISTS`.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS readings (
    time timestamptz NOT NULL,
    meter text NOT NULL,
    phase smallint NOT NULL,
    voltage real,
    current real,
    active_power real,
    reactive_power real,
    apparent_power real,
    power_factor real,
    frequency real,
    energy_import double precision,
    energy_export double precision
);
CREATE INDEX IF NOT EXISTS readings_time_brin ON readings USING brin (time);
CREATE TABLE IF NOT EXISTS pq_intervals (
    time timestamptz NOT NULL,
    end_time timestamptz NOT NULL,
    meter text NOT NULL,
    interval text NOT NULL,
    phase smallint NOT NULL,
    flagged boolean NOT NULL,
    nominal_voltage real NOT NULL,
    nominal_frequency real NOT NULL,
    voltage real,
    voltage_min real,
    voltage_max real,
    frequency real,
    u0 real,
    u2 real,
    thd_v real,
    thd_i real,
    harmonics_v real[] NOT NULL,
    harmonics_i real[] NOT NULL,
    pst real,
    plt real,
    UNIQUE (meter, interval, phase, time)
);
CREATE TABLE IF NOT EXISTS pq_events (
    time timestamptz NOT NULL,
    meter text NOT NULL,
    id bigint NOT NULL,
    type text NOT NULL,
    phases smallint[] NOT NULL,
    duration double precision NOT NULL,
    extreme real NOT NULL,
    reference real NOT NULL,
    delta_max real,
    delta_steady real,
    UNIQUE (meter, id, time)
);
CREATE TEMP TABLE IF NOT EXISTS pq_intervals_in (LIKE pq_intervals) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS pq_events_in (LIKE pq_events) ON COMMIT DELETE ROWS;
";

async fn ensure_schema(client: &Client) -> Result<(), tokio_postgres::Error> {
    // Two collectors creating the tables at once can race on the catalog; one retry settles it.
    if client.batch_execute(SCHEMA).await.is_err() {
        client.batch_execute(SCHEMA).await?;
    }
    let timescale = client
        .query_opt(
            "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'",
            &[],
        )
        .await?
        .is_some();
    if timescale {
        for t in super::metrics::TABLES {
            client
                .execute(
                    "SELECT create_hypertable($1::text::regclass, 'time', if_not_exists => TRUE, migrate_data => TRUE)",
                    &[&t],
                )
                .await?;
        }
    }
    Ok(())
}

const COPY_READINGS: &str = "COPY readings (time, meter, phase, voltage, current, active_power, \
    reactive_power, apparent_power, power_factor, frequency, energy_import, energy_export) \
    FROM STDIN (FORMAT binary)";
const READING_TYPES: [Type; 12] = [
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::INT2,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT8,
    Type::FLOAT8,
];
const COPY_INTERVALS: &str = "COPY pq_intervals_in (time, end_time, meter, interval, phase, \
    flagged, nominal_voltage, nominal_frequency, voltage, voltage_min, voltage_max, frequency, u0, \
    u2, thd_v, thd_i, harmonics_v, harmonics_i, pst, plt) FROM STDIN (FORMAT binary)";
const INTERVAL_TYPES: [Type; 20] = [
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::INT2,
    Type::BOOL,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4_ARRAY,
    Type::FLOAT4_ARRAY,
    Type::FLOAT4,
    Type::FLOAT4,
];
const COPY_EVENTS: &str = "COPY pq_events_in (time, meter, id, type, phases, duration, extreme, \
    reference, delta_max, delta_steady) FROM STDIN (FORMAT binary)";
const EVENT_TYPES: [Type; 10] = [
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::INT2_ARRAY,
    Type::FLOAT8,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
];

fn time(us: i64) -> SystemTime {
    let d = Duration::from_micros(us.unsigned_abs());
    let t = if us >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    };
    t.unwrap_or(UNIX_EPOCH)
}

/// Rows per table of a chunk.
type Counts = [u64; 3];

/// Writes one chunk in one transaction.
async fn write(client: &mut Client, chunk: &[Arc<Batch>]) -> Result<Counts, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let mut counts = [0u64; 3];
    if chunk.iter().any(|b| !b.readings.is_empty()) {
        let sink = tx.copy_in(COPY_READINGS).await?;
        let w = BinaryCopyInWriter::new(sink, &READING_TYPES);
        tokio::pin!(w);
        for r in chunk.iter().flat_map(|b| b.readings.iter()) {
            let meter: &str = &r.meter;
            let row: [&(dyn ToSql + Sync); 12] = [
                &time(r.time_us),
                &meter,
                &r.phase,
                &r.voltage,
                &r.current,
                &r.active_power,
                &r.reactive_power,
                &r.apparent_power,
                &r.power_factor,
                &r.frequency,
                &r.energy_import,
                &r.energy_export,
            ];
            w.as_mut().write(&row).await?;
        }
        counts[0] = w.finish().await?;
    }
    if chunk.iter().any(|b| !b.intervals.is_empty()) {
        let sink = tx.copy_in(COPY_INTERVALS).await?;
        let w = BinaryCopyInWriter::new(sink, &INTERVAL_TYPES);
        tokio::pin!(w);
        for r in chunk.iter().flat_map(|b| b.intervals.iter()) {
            let meter: &str = &r.meter;
            let interval: &str = &r.interval;
            let row: [&(dyn ToSql + Sync); 20] = [
                &time(r.time_us),
                &time(r.end_time_us),
                &meter,
                &interval,
                &r.phase,
                &r.flagged,
                &r.nominal_voltage,
                &r.nominal_frequency,
                &r.voltage,
                &r.voltage_min,
                &r.voltage_max,
                &r.frequency,
                &r.u0,
                &r.u2,
                &r.thd_v,
                &r.thd_i,
                &r.harmonics_v,
                &r.harmonics_i,
                &r.pst,
                &r.plt,
            ];
            w.as_mut().write(&row).await?;
        }
        counts[1] = w.finish().await?;
        tx.execute(
            "INSERT INTO pq_intervals SELECT * FROM pq_intervals_in ON CONFLICT DO NOTHING",
            &[],
        )
        .await?;
    }
    if chunk.iter().any(|b| !b.events.is_empty()) {
        let sink = tx.copy_in(COPY_EVENTS).await?;
        let w = BinaryCopyInWriter::new(sink, &EVENT_TYPES);
        tokio::pin!(w);
        for r in chunk.iter().flat_map(|b| b.events.iter()) {
            let meter: &str = &r.meter;
            let kind: &str = &r.kind;
            let row: [&(dyn ToSql + Sync); 10] = [
                &time(r.time_us),
                &meter,
                &r.id,
                &kind,
                &r.phases,
                &r.duration,
                &r.extreme,
                &r.reference,
                &r.delta_max,
                &r.delta_steady,
            ];
            w.as_mut().write(&row).await?;
        }
        counts[2] = w.finish().await?;
        tx.execute(
            "INSERT INTO pq_events SELECT * FROM pq_events_in ON CONFLICT DO NOTHING",
            &[],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(counts)
}

/// Where a chunk came from: it goes back there if it could not be written.
enum Origin {
    /// The oldest spool file (deleted once written).
    Spool,
    /// The front of the memory queue.
    Memory,
}

/// Rows accepted and not yet stored: a bounded memory queue in front of the spool.
struct Buffer {
    memory: VecDeque<Arc<Batch>>,
    memory_rows: u64,
    bound_rows: u64,
    spool: Arc<Mutex<Spool>>,
}

impl Buffer {
    fn spool_rows(&self) -> u64 {
        self.spool.lock().map_or(0, |s| s.rows())
    }

    fn spool_empty(&self) -> bool {
        self.spool.lock().map_or(true, |s| s.is_empty())
    }

    fn is_empty(&self) -> bool {
        self.memory.is_empty() && self.spool_empty()
    }

    /// Queues a batch; past the bound, the whole memory queue is spilled to disk.
    async fn accept(&mut self, b: Arc<Batch>, log: &Log, stats: &Stats) {
        self.memory_rows += b.rows() as u64;
        self.memory.push_back(b);
        if self.memory_rows > self.bound_rows {
            let rows = self.memory_rows;
            match self.spill().await {
                Ok(()) => log.event(
                    "spooled",
                    &std::format!("{rows} rows spilled to disk (database away)"),
                    serde_json::json!({ "rows": rows }),
                ),
                Err(e) => {
                    stats.postgres.write_errors.add(1);
                    log.event(
                        "spool_error",
                        &std::format!("cannot spill to disk, keeping rows in memory: {e}"),
                        serde_json::json!({ "error": e.to_string() }),
                    );
                }
            }
        }
    }

    /// Moves the whole memory queue to the spool, in files of at most [`FILE_ROWS`] rows.
    async fn spill(&mut self) -> Result<(), SpoolError> {
        if self.memory.is_empty() {
            return Ok(());
        }
        let batches: Vec<Arc<Batch>> = self.memory.drain(..).collect();
        self.memory_rows = 0;
        let spool = self.spool.clone();
        let result = tokio::task::spawn_blocking(move || {
            let Ok(mut spool) = spool.lock() else {
                let e = SpoolError::Io {
                    path: "spool".into(),
                    source: std::io::Error::other("spool lock poisoned"),
                };
                return Err((e, batches));
            };
            let mut start = 0;
            while start < batches.len() {
                let mut end = start;
                let mut rows = 0;
                while end < batches.len() && (end == start || rows < FILE_ROWS) {
                    rows += batches.get(end).map_or(0, |b| b.rows());
                    end += 1;
                }
                if let Err(e) = spool.write(
                    batches
                        .get(start..end)
                        .unwrap_or_default()
                        .iter()
                        .map(|b| &**b),
                ) {
                    return Err((e, batches.into_iter().skip(start).collect::<Vec<_>>()));
                }
                start = end;
            }
            Ok(())
        })
        .await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err((e, back))) => {
                // Keep what could not be spilled in memory.
                for b in back.into_iter().rev() {
                    self.memory_rows += b.rows() as u64;
                    self.memory.push_front(b);
                }
                Err(e)
            }
            Err(join) => Err(SpoolError::Io {
                path: "spool".into(),
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }

    /// The next chunk to write: the oldest spool file, else up to [`CHUNK_ROWS`] rows of memory.
    async fn next_chunk(&mut self, log: &Log, stats: &Stats) -> Option<(Origin, Vec<Arc<Batch>>)> {
        while !self.spool_empty() {
            let spool = self.spool.clone();
            let read = tokio::task::spawn_blocking(move || match spool.lock() {
                Ok(mut s) => s.read_oldest(),
                Err(_) => None,
            })
            .await
            .ok()
            .flatten();
            match read {
                Some(Ok(b)) => return Some((Origin::Spool, std::vec![Arc::new(b)])),
                Some(Err(e)) => {
                    stats.postgres.write_errors.add(1);
                    log.event(
                        "spool_error",
                        &std::format!("{e}"),
                        serde_json::json!({ "error": e.to_string() }),
                    );
                    if let SpoolError::Io { .. } = e {
                        // Unreadable for now (disk): try memory, the file stays queued.
                        break;
                    }
                }
                None => break,
            }
        }
        let mut chunk = Vec::new();
        let mut rows = 0;
        while let Some(b) = self.memory.front() {
            if !chunk.is_empty() && rows + b.rows() > CHUNK_ROWS {
                break;
            }
            rows += b.rows();
            self.memory_rows = self.memory_rows.saturating_sub(b.rows() as u64);
            chunk.extend(self.memory.pop_front());
        }
        (!chunk.is_empty()).then_some((Origin::Memory, chunk))
    }

    /// A chunk was stored: a spool file is deleted.
    async fn stored(&mut self, origin: Origin) -> Result<(), SpoolError> {
        if let Origin::Spool = origin {
            let spool = self.spool.clone();
            return tokio::task::spawn_blocking(move || match spool.lock() {
                Ok(mut s) => s.remove_oldest(),
                Err(_) => Ok(()),
            })
            .await
            .unwrap_or(Ok(()));
        }
        Ok(())
    }

    /// A chunk could not be stored: memory rows go back to the front (a spool file stays queued).
    fn put_back(&mut self, origin: Origin, chunk: Vec<Arc<Batch>>) {
        if let Origin::Memory = origin {
            for b in chunk.into_iter().rev() {
                self.memory_rows += b.rows() as u64;
                self.memory.push_front(b);
            }
        }
    }

    /// Sets a chunk aside for good (the database refuses it): a `.rejected` file.
    async fn reject(&mut self, origin: Origin, chunk: Vec<Arc<Batch>>) -> Result<(), SpoolError> {
        let spool = self.spool.clone();
        tokio::task::spawn_blocking(move || {
            let mut s = spool.lock().map_err(|_| SpoolError::Io {
                path: "spool".into(),
                source: std::io::Error::other("spool lock poisoned"),
            })?;
            s.write_rejected(chunk.iter().map(|b| &**b))?;
            if let Origin::Spool = origin {
                s.remove_oldest()?;
            }
            Ok(())
        })
        .await
        .unwrap_or(Ok(()))
    }
}

/// Settings of the sink task.
pub struct SinkOptions {
    /// Rows kept in memory before spilling to disk.
    pub bound_rows: u64,
    /// How long to keep writing after the input ends before spooling the rest.
    pub drain: Duration,
}

/// Runs the sink until `rx` is closed and everything is stored or spooled.
pub async fn run(
    target: DatabaseTarget,
    first: Client,
    mut rx: mpsc::Receiver<Arc<Batch>>,
    spool: Spool,
    opts: SinkOptions,
    stats: Arc<Stats>,
    log: Arc<Log>,
) {
    if !spool.is_empty() {
        log.event(
            "spool",
            &std::format!(
                "{} rows in {} spool files from an earlier run are written first",
                spool.rows(),
                spool.files()
            ),
            serde_json::json!({ "rows": spool.rows(), "files": spool.files() }),
        );
    }
    let mut buf = Buffer {
        memory: VecDeque::new(),
        memory_rows: 0,
        bound_rows: opts.bound_rows,
        spool: Arc::new(Mutex::new(spool)),
    };
    let mut client = Some(first);
    let mut backoff = Duration::from_millis(500);
    let mut next_try = Instant::now();
    let mut input_open = true;
    let mut drain_deadline: Option<Instant> = None;
    let mut refused_once = false;
    let gauges = |buf: &Buffer, in_flight: u64| {
        stats
            .postgres
            .rows_buffered
            .set(buf.memory_rows + in_flight);
        stats.postgres.rows_spooled.set(buf.spool_rows());
    };
    loop {
        gauges(&buf, 0);
        if client.as_ref().is_some_and(Client::is_closed) {
            client = None;
            log.event(
                "database_lost",
                &std::format!(
                    "lost the connection to PostgreSQL at {}; buffering",
                    target.label()
                ),
                serde_json::json!({ "target": target.label() }),
            );
        }
        if !input_open && buf.is_empty() {
            break;
        }
        if let Some(deadline) = drain_deadline
            && Instant::now() >= deadline
        {
            let rows = buf.memory_rows;
            if let Err(e) = buf.spill().await {
                log.event(
                    "spool_error",
                    &std::format!("{rows} rows could not be spooled at exit: {e}"),
                    serde_json::json!({ "rows": rows, "error": e.to_string() }),
                );
                stats.postgres.rows_lost.add(rows);
            } else if rows > 0 {
                log.event(
                    "spooled",
                    &std::format!("{rows} rows spooled at exit; the next run writes them"),
                    serde_json::json!({ "rows": rows }),
                );
            }
            gauges(&buf, 0);
            break;
        }
        if client.is_none() && Instant::now() >= next_try {
            match target.connect().await {
                Ok(c) => {
                    client = Some(c);
                    backoff = Duration::from_millis(500);
                    log.event(
                        "database_back",
                        &std::format!(
                            "connected to PostgreSQL at {}; writing {} buffered rows",
                            target.label(),
                            buf.memory_rows + buf.spool_rows()
                        ),
                        serde_json::json!({ "target": target.label(), "rows": buf.memory_rows + buf.spool_rows() }),
                    );
                }
                Err(_) => {
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        let chunk = match client {
            Some(_) => buf.next_chunk(&log, &stats).await,
            None => None,
        };
        let (Some(c), Some((origin, chunk))) = (client.as_mut(), chunk) else {
            // Nothing to write now: wait for input, the next reconnect, or the drain deadline.
            let wake = match (client.is_some(), drain_deadline) {
                (false, Some(d)) => next_try.min(d),
                (false, None) => next_try,
                (true, Some(d)) => d,
                (true, None) => Instant::now() + Duration::from_secs(3600),
            };
            tokio::select! {
                b = rx.recv(), if input_open => match b {
                    Some(b) => buf.accept(b, &log, &stats).await,
                    None => {
                        input_open = false;
                        drain_deadline = Some(Instant::now() + opts.drain);
                    }
                },
                _ = tokio::time::sleep_until(wake) => {}
            }
            continue;
        };
        let in_flight: u64 = chunk.iter().map(|b| b.rows() as u64).sum();
        gauges(&buf, in_flight);
        let result = {
            let fut = tokio::time::timeout(WRITE_TIMEOUT, write(c, &chunk));
            tokio::pin!(fut);
            loop {
                tokio::select! {
                    biased;
                    r = &mut fut => break r,
                    b = rx.recv(), if input_open => match b {
                        Some(b) => {
                            buf.accept(b, &log, &stats).await;
                            gauges(&buf, in_flight);
                        }
                        None => {
                            input_open = false;
                            drain_deadline = Some(Instant::now() + opts.drain);
                        }
                    },
                }
            }
        };
        match result {
            Ok(Ok(counts)) => {
                refused_once = false;
                for (c, n) in stats.postgres.rows_written.iter().zip(counts) {
                    c.add(n);
                }
                if let Err(e) = buf.stored(origin).await {
                    stats.postgres.write_errors.add(1);
                    log.event(
                        "spool_error",
                        &std::format!("{e}"),
                        serde_json::json!({ "error": e.to_string() }),
                    );
                }
            }
            Ok(Err(e)) if e.as_db_error().is_some() && !c.is_closed() && refused_once => {
                // Refused twice on a live connection: the data, not the connection.
                refused_once = false;
                stats.postgres.write_errors.add(1);
                stats.postgres.rows_lost.add(in_flight);
                let reason = describe(&e);
                let _ = buf.reject(origin, chunk).await;
                log.event(
                    "rejected",
                    &std::format!("PostgreSQL refused {in_flight} rows twice ({reason}); set aside as a .rejected file"),
                    serde_json::json!({ "rows": in_flight, "error": reason }),
                );
            }
            other => {
                let reason = match &other {
                    Ok(Err(e)) => describe(e),
                    _ => "write timed out".to_string(),
                };
                stats.postgres.write_errors.add(1);
                let live =
                    matches!(&other, Ok(Err(e)) if e.as_db_error().is_some() && !c.is_closed());
                refused_once = live;
                buf.put_back(origin, chunk);
                if !live {
                    client = None;
                    next_try = Instant::now() + backoff;
                    log.event(
                        "database_lost",
                        &std::format!(
                            "writing to PostgreSQL at {} failed ({reason}); buffering",
                            target.label()
                        ),
                        serde_json::json!({ "target": target.label(), "error": reason }),
                    );
                }
            }
        }
    }
    gauges(&buf, 0);
}

#[cfg(test)]
mod tests;
