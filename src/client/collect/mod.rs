//! `smartmeter collect`: subscribes to many meters on an MQTT broker and stores what they publish
//! (feature `collect`, part of `cli`).
//!
//! ```text
//!  broker ──► ingest ──► batches ──┬──► Parquet sink (own thread): DIR/<table>/date=…/….parquet
//!  (MQTT)    (parse,              └──► PostgreSQL sink (task): COPY; memory → disk spool while away
//!             rows)        metrics endpoint (/metrics), progress line / JSON log
//! ```
//!
//! One module per concern: [`ingest`] (subscription, parsing into rows), [`rows`] (the row model
//! and table layout), [`parquet`] (files), [`postgres`] (database), [`spool`] (disk buffer),
//! [`metrics`] (counters, latest values, Prometheus endpoint), [`progress`] (operator output).
//!
//! Several collectors started with the same `group` share the stream through an MQTT shared
//! subscription (`$share/<group>/powermeter/+/state/#`): the broker gives each message to one of
//! them, so each row is stored once and the load is split.

pub mod ingest;
pub mod metrics;
pub mod parquet;
pub mod postgres;
pub mod progress;
pub mod rows;
pub mod spool;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::string::{String, ToString};
use std::sync::Arc;
use std::time::Duration;
use std::vec::Vec;

use tokio::sync::{mpsc, oneshot};

use self::ingest::{BrokerError, BrokerOptions, Ingest};
use self::metrics::Stats;
use self::parquet::{ParquetSink, ParquetSinkError, Written};
use self::postgres::PostgresError;
use self::progress::Log;
use self::rows::Batch;
use self::spool::{Spool, SpoolError};
use crate::wire::mqtt;

/// The output directory when neither `--out` nor `--postgres` is given.
pub const DEFAULT_OUT: &str = "smartmeter-data";

/// Everything `smartmeter collect` can be told.
#[derive(Debug, Clone)]
pub struct CollectConfig {
    /// Broker `host`, `host:port` or `[v6]:port` (default port 1883), or after `mqtts://` for TLS
    /// (default port 8883; see [`BrokerAddr`](crate::client::BrokerAddr)).
    pub broker: String,
    /// With TLS to the broker: the CA file (default: the platform's certificates) and the client
    /// certificate and key, if the broker asks for one.
    pub tls: crate::client::TlsFiles,
    /// Broker user name and password.
    pub credentials: Option<(String, String)>,
    /// Shared-subscription group (several collectors split the stream).
    pub group: Option<String>,
    /// Parquet output directory (`None`: no Parquet).
    pub out: Option<PathBuf>,
    /// The directory under which the PostgreSQL spool lives (`<dir>/.spool/postgres`).
    pub data_dir: PathBuf,
    /// PostgreSQL connection string (`None`: no database).
    pub postgres: Option<String>,
    /// Address of the Prometheus endpoint (`None`: none).
    pub metrics: Option<SocketAddr>,
    /// Parquet files are closed after this long (at most an hour).
    pub rotate: Duration,
    /// The rows of open Parquet files are made durable at least this often: what a crash loses
    /// at most (the next start completes the files).
    pub checkpoint: Duration,
    /// Rows the PostgreSQL sink keeps in memory before spilling to disk.
    pub buffer_rows: u64,
    /// How long the first broker/database connection may take.
    pub connect_timeout: Duration,
    /// After the input ends, how long the database sink keeps writing before it spools the rest.
    pub drain: Duration,
}

impl CollectConfig {
    /// A configuration with the documented defaults: Parquet into `./smartmeter-data`.
    pub fn new(broker: &str) -> CollectConfig {
        CollectConfig {
            broker: broker.to_string(),
            tls: crate::client::TlsFiles::default(),
            credentials: None,
            group: None,
            out: Some(PathBuf::from(DEFAULT_OUT)),
            data_dir: PathBuf::from(DEFAULT_OUT),
            postgres: None,
            metrics: None,
            rotate: Duration::from_secs(3600),
            checkpoint: parquet::DEFAULT_CHECKPOINT,
            buffer_rows: 1_000_000,
            connect_timeout: Duration::from_secs(5),
            drain: Duration::from_secs(10),
        }
    }

    /// The MQTT filter: plain, or the group's shared subscription.
    pub fn filter(&self) -> Result<String, CollectError> {
        match &self.group {
            None => Ok(mqtt::STATE_FILTER.to_string()),
            Some(g) => mqtt::shared_state_filter(g).map_err(|e| CollectError::Usage(e.to_string())),
        }
    }
}

/// Why the collector could not start (all exit code 1, except `Usage`: 2).
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// An argument combination or value the parser could not check.
    #[error("{0}")]
    Usage(String),
    /// The broker address is invalid, unreachable, or refused us.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The database URL is invalid or the database unreachable at start.
    #[error(transparent)]
    Postgres(#[from] PostgresError),
    /// The output directory cannot be written.
    #[error(transparent)]
    Parquet(#[from] ParquetSinkError),
    /// The spool directory cannot be used.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The metrics address cannot be bound.
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// What a run did, for the last log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Meters seen.
    pub meters: usize,
    /// Messages received.
    pub messages: u64,
    /// Rows built.
    pub rows: u64,
    /// Rows stored in Parquet files.
    pub parquet_rows: u64,
    /// Rows stored in PostgreSQL.
    pub postgres_rows: u64,
    /// Rows left in the spool for the next run.
    pub spooled_rows: u64,
}

/// A short random-enough tag for file names and the MQTT client id of this process.
fn instance_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::format!("{:08x}", nanos ^ std::process::id().rotate_left(16))
}

/// Runs the collector until `shutdown` completes, then flushes every sink and returns.
///
/// Start-up errors (a bad address or URL, an unreachable broker or database, an unwritable
/// directory, a metrics address in use) are returned before anything is subscribed. After
/// start, outages of the broker and the database are ridden out and logged.
pub async fn run(
    cfg: CollectConfig,
    log: Arc<Log>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Summary, CollectError> {
    let stats = Arc::new(Stats::default());
    let filter = cfg.filter()?;
    let broker_error = |e: crate::client::ClientError| {
        CollectError::Broker(BrokerError {
            broker: cfg.broker.clone(),
            reason: match e {
                crate::client::ClientError::Mqtt { reason, .. } => reason,
                other => other.to_string(),
            },
        })
    };
    let addr = crate::client::BrokerAddr::parse(&cfg.broker).map_err(broker_error)?;
    let tls = addr.tls_config(&cfg.tls).map_err(broker_error)?;
    let tag = instance_tag();

    // Everything that can fail at start, before subscribing.
    let pg = match &cfg.postgres {
        Some(url) => {
            let target = postgres::DatabaseTarget::parse(url)?;
            let client = tokio::time::timeout(
                cfg.connect_timeout.max(Duration::from_secs(1)),
                target.connect(),
            )
            .await
            .map_err(|_| PostgresError::Connect {
                target: target.label().to_string(),
                reason: "no answer (timed out)".into(),
            })??;
            let spool = Spool::open(&cfg.data_dir.join(".spool").join("postgres"))?;
            Some((target, client, spool))
        }
        None => None,
    };
    let parquet = match &cfg.out {
        Some(dir) => {
            let mut stale = Vec::new();
            for left in parquet::recover_parts(dir) {
                match left {
                    parquet::Leftover::Recovered(w) => log.event(
                        "recovered",
                        &std::format!(
                            "completed {} ({} rows) from the checkpoint of a killed collector",
                            w.path.display(),
                            w.rows
                        ),
                        written_fields(&w),
                    ),
                    parquet::Leftover::Stale { path, reason } => stale.push((path, reason)),
                }
            }
            if !stale.is_empty() {
                log.event(
                    "stale_parts",
                    &std::format!(
                        "{} unfinished .part files from a killed collector in {} without a usable checkpoint (their rows are lost): {}",
                        stale.len(),
                        dir.display(),
                        stale.first().map(|(_, r)| r.as_str()).unwrap_or_default()
                    ),
                    serde_json::json!({
                        "files": stale.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>(),
                        "reasons": stale.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
                    }),
                );
            }
            let sink = ParquetSink::new(
                dir,
                cfg.rotate.min(Duration::from_secs(3600)),
                &tag,
                stats.clone(),
            )?
            .with_checkpoint(cfg.checkpoint);
            Some(sink)
        }
        None => None,
    };
    let metrics_listener = match cfg.metrics {
        Some(addr) => {
            let l = metrics::bind(addr)
                .await
                .map_err(|source| CollectError::Metrics { addr, source })?;
            Some(l)
        }
        None => None,
    };
    let ingest = Ingest::connect(
        BrokerOptions {
            addr,
            tls,
            credentials: cfg.credentials.clone(),
            client_id: std::format!("smartmeter-collect-{tag}"),
            filter,
            connect_timeout: cfg.connect_timeout,
        },
        stats.clone(),
        log.clone(),
    )
    .await?;

    // Started: say where everything goes.
    if let Some(dir) = &cfg.out {
        log.event(
            "parquet",
            &std::format!("writing Parquet files under {}", dir.display()),
            serde_json::json!({ "dir": dir.display().to_string() }),
        );
    }
    if let Some((target, _, _)) = &pg {
        log.event(
            "database",
            &std::format!("writing to PostgreSQL at {}", target.label()),
            serde_json::json!({ "target": target.label() }),
        );
    }
    if let Some(l) = &metrics_listener {
        let local = l
            .local_addr()
            .map_or_else(|_| std::format!("{:?}", cfg.metrics), |a| a.to_string());
        log.event(
            "metrics",
            &std::format!("metrics on http://{local}/metrics"),
            serde_json::json!({ "addr": local }),
        );
    }

    // Running: sinks first, then the ingest feeding them.
    let mut senders = Vec::new();
    let mut parquet_done = None;
    if let Some(sink) = parquet {
        let (tx, rx) = mpsc::channel::<Arc<Batch>>(64);
        senders.push(tx);
        let (done_tx, done_rx) = oneshot::channel();
        let log = log.clone();
        std::thread::Builder::new()
            .name("parquet-sink".into())
            .spawn(move || {
                parquet_thread(sink, rx, &log);
                let _ = done_tx.send(());
            })
            .map_err(|e| {
                CollectError::Parquet(ParquetSinkError::Io {
                    path: "parquet-sink thread".into(),
                    source: e,
                })
            })?;
        parquet_done = Some(done_rx);
    }
    let mut pg_done = None;
    if let Some((target, client, spool)) = pg {
        let (tx, rx) = mpsc::channel::<Arc<Batch>>(256);
        senders.push(tx);
        pg_done = Some(tokio::spawn(postgres::run(
            target,
            client,
            rx,
            spool,
            postgres::SinkOptions {
                bound_rows: cfg.buffer_rows,
                drain: cfg.drain,
            },
            stats.clone(),
            log.clone(),
        )));
    }
    let metrics_task = metrics_listener.map(|l| tokio::spawn(metrics::serve(l, stats.clone())));
    let progress_task = tokio::spawn(progress::report(log.clone(), stats.clone()));

    ingest.run(senders, shutdown).await;

    // Stopping: the senders are gone with the ingest; each sink drains and closes.
    log.event("stopping", "stopping: flushing", serde_json::json!({}));
    if let Some(done) = parquet_done {
        let _ = done.await;
    }
    if let Some(task) = pg_done {
        let _ = task.await;
    }
    progress_task.abort();
    if let Some(t) = metrics_task {
        t.abort();
    }
    log.finish();
    let summary = Summary {
        meters: stats.meters(),
        messages: stats.messages.get(),
        rows: stats.rows_received.get(),
        parquet_rows: stats.parquet.written(),
        postgres_rows: stats.postgres.written(),
        spooled_rows: stats.postgres.rows_spooled.get(),
    };
    let (text, fields) = progress::summary(&stats, 0.0);
    log.event("stopped", &std::format!("stopped: {text}"), fields);
    Ok(summary)
}

/// The JSON fields of a `file`, `checkpoint` or `recovered` event.
fn written_fields(w: &Written) -> serde_json::Value {
    serde_json::json!({ "path": w.path.display().to_string(), "table": w.table, "rows": w.rows })
}

/// The Parquet sink's thread: batches in, files out, until the batch channel closes. It runs its
/// own single-threaded runtime for the channel and the rotation clock; the writing is synchronous.
fn parquet_thread(mut sink: ParquetSink, mut rx: mpsc::Receiver<Arc<Batch>>, log: &Log) {
    let report = |results: Vec<Result<Written, ParquetSinkError>>| {
        for r in results {
            match r {
                Ok(w) if w.checkpoint => log.detail("checkpoint", written_fields(&w)),
                Ok(w) => log.event(
                    "file",
                    &std::format!("wrote {} ({} rows)", w.path.display(), w.rows),
                    written_fields(&w),
                ),
                Err(e) => log.event(
                    "write_error",
                    &std::format!("Parquet: {e}"),
                    serde_json::json!({ "sink": "parquet", "error": e.to_string() }),
                ),
            }
        }
    };
    match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt.block_on(async {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    biased;
                    b = rx.recv() => match b {
                        Some(b) => report(sink.push(&b)),
                        None => break,
                    },
                    _ = tick.tick() => report(sink.tick()),
                }
            }
        }),
        // No timer: files rotate only by size and at the end.
        Err(_) => {
            while let Some(b) = rx.blocking_recv() {
                report(sink.push(&b));
            }
        }
    }
    report(sink.close_all());
}
