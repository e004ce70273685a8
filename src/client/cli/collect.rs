//! `smartmeter collect`: the arguments and the signal handling around [`crate::client::collect`].

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::string::{String, ToString};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{Cli, CliError, duration_arg};
use crate::client::collect::progress::Log;
use crate::client::collect::{self, CollectConfig, DEFAULT_OUT};

/// Arguments of `smartmeter collect`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CollectArgs {
    /// Broker `host[:port]` (default port 1883).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub mqtt: String,
    /// Write Parquet files under DIR/<table>/date=YYYY-MM-DD/ (the default, into ./smartmeter-data,
    /// when --postgres is not given).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write to PostgreSQL (tables created if absent; e.g. postgres://user:pw@host/db).
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Share the stream with every collector of this group (MQTT shared subscription): each message
    /// is stored by one of them.
    #[arg(long, value_name = "NAME", value_parser = group_arg)]
    pub group: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (ADDR = ip:port, or :port for all interfaces).
    #[arg(long, value_name = "ADDR", value_parser = metrics_arg)]
    pub metrics: Option<SocketAddr>,
    /// Broker user name.
    #[arg(long, value_name = "U", requires = "password")]
    pub user: Option<String>,
    /// Broker password.
    #[arg(long, value_name = "P", requires = "user")]
    pub password: Option<String>,
    /// Close Parquet files after this long (at most 1h).
    #[arg(long, default_value = "1h", value_parser = rotate_arg)]
    pub rotate: Duration,
    /// Rows kept in memory while PostgreSQL is away before spilling to disk (under --out, or
    /// ./smartmeter-data, in .spool/postgres).
    #[arg(long, default_value_t = 1_000_000, value_name = "ROWS")]
    pub buffer_rows: u64,
    /// How long to wait for the broker (and the database) at start (90, 3s, 2m).
    #[arg(long, default_value = "5s", value_parser = super::duration_arg)]
    pub timeout: Duration,
    /// Structured log lines (one JSON object each) instead of the progress line.
    #[arg(long)]
    pub json: bool,
}

fn group_arg(s: &str) -> Result<String, String> {
    crate::wire::mqtt::shared_state_filter(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

fn metrics_arg(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.trim_start_matches(':')
        .parse::<u16>()
        .map(|port| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
        .map_err(|_| std::format!("expected ip:port or :port, got `{s}`"))
}

fn rotate_arg(s: &str) -> Result<Duration, String> {
    let d = duration_arg(s)?;
    if d.is_zero() || d > Duration::from_secs(3600) {
        return Err("the rotation is between 1s and 1h".into());
    }
    Ok(d)
}

impl CollectArgs {
    /// The library configuration these arguments ask for.
    pub(crate) fn config(&self, connect_timeout: Duration) -> CollectConfig {
        let mut cfg = CollectConfig::new(&self.mqtt);
        cfg.credentials = self.user.clone().zip(self.password.clone());
        cfg.group = self.group.clone();
        cfg.out = match (&self.out, &self.postgres) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(PathBuf::from(DEFAULT_OUT)),
        };
        cfg.data_dir = self
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
        cfg.postgres = self.postgres.clone();
        cfg.metrics = self.metrics;
        cfg.rotate = self.rotate;
        cfg.buffer_rows = self.buffer_rows;
        cfg.connect_timeout = connect_timeout;
        cfg
    }
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the collector until SIGINT/SIGTERM; exit 0 after flushing.
pub(crate) async fn collect(cli: &Cli, args: &CollectArgs) -> Result<ExitCode, CliError> {
    let log = Arc::new(Log::new(cli.json || args.json));
    collect::run(args.config(args.timeout), log, stop_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<CollectArgs, clap::Error> {
        let mut all = std::vec!["smartmeter", "collect"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all)?.command {
            super::super::Command::Collect(a) => Ok(a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn arguments_and_defaults() {
        let a = parse(&["--mqtt", "broker"]).unwrap();
        let c = a.config(Duration::from_secs(5));
        assert_eq!(c.out, Some(PathBuf::from("smartmeter-data")));
        assert_eq!(c.postgres, None);
        assert_eq!(c.rotate, Duration::from_secs(3600));
        let a = parse(&[
            "--mqtt",
            "b",
            "--postgres",
            "postgres://x/y",
            "--group",
            "g",
        ])
        .unwrap();
        let c = a.config(Duration::from_secs(5));
        assert_eq!(c.out, None, "--postgres alone writes no Parquet");
        assert_eq!(c.data_dir, PathBuf::from("smartmeter-data"));
        assert_eq!(c.filter().unwrap(), "$share/g/powermeter/+/state/#");
        let a = parse(&[
            "--mqtt",
            "b",
            "--out",
            "/d",
            "--metrics",
            ":9464",
            "--user",
            "u",
            "--password",
            "p",
        ])
        .unwrap();
        let c = a.config(Duration::from_secs(5));
        assert_eq!(c.out, Some(PathBuf::from("/d")));
        assert_eq!(c.metrics, Some("0.0.0.0:9464".parse().unwrap()));
        assert_eq!(c.credentials, Some(("u".into(), "p".into())));
        for bad in [
            &["--out", "x"][..],
            &["--mqtt", "b", "--group", "a/b"],
            &["--mqtt", "b", "--metrics", "nowhere"],
            &["--mqtt", "b", "--user", "u"],
            &["--mqtt", "b", "--rotate", "2h"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
