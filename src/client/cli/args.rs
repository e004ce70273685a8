//! The command line: every subcommand and option (clap), checked as far as the tool can tell
//! before the meter is contacted.

use std::format;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::error::CliError;
use crate::client::collect::{CollectConfig, DEFAULT_OUT};
use crate::client::{Client, ClientOptions, Target, parse_duration};
use crate::wire::command::{Command as WireCommand, MAX_TOKEN_BYTES};
use crate::wire::log::LogLevel;
use crate::wire::pq::PqInterval;

/// Command-line tool for SmartMeter energy meters: find them, read and change their settings,
/// record their waveforms and analyse the recordings.
#[derive(Debug, Parser)]
#[command(
    name = "smartmeter",
    version,
    about = "Command-line tool for SmartMeter energy meters: find them, read and change their settings, record their waveforms and analyse the recordings.",
    long_about = None,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// Accepted before the subcommand too (`smartmeter --json info HOST`); see each subcommand's
    /// `--json`.
    #[arg(long, hide = true)]
    pub json: bool,
    /// The subcommand.
    #[command(subcommand)]
    pub command: CliCommand,
}

/// The meter a subcommand talks to, and how.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct MeterArgs {
    /// The meter: `host[:port]` (default port 54321), a meter name (resolved over mDNS), or a
    /// serial device (/dev/ttyACM0, COM3).
    #[arg(value_name = "HOST")]
    pub host: Target,
    /// Access token of a protected meter, sent as {"cmd":"auth"} first on the connection. Prefer
    /// the environment variable: a command line shows in the process list.
    #[arg(long, env = "SMARTMETER_TOKEN", hide_env_values = true, value_parser = token_arg)]
    pub token: Option<String>,
    /// How long to wait for a reply (90, 3s, 2m, 1h).
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub timeout: Duration,
    /// Baud rate when HOST is a serial device.
    #[arg(long, default_value_t = 115_200, value_parser = clap::value_parser!(u32).range(1..))]
    pub baud: u32,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CliCommand {
    /// List meters on the local network (mDNS `_elec._tcp`): name, address, firmware version.
    Discover {
        /// How long to listen.
        #[arg(long, default_value = "3s", value_parser = duration_arg)]
        wait: Duration,
        /// One JSON object per meter instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Show the meter's info.
    Info {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// Print the meter's reply object as it was sent.
        #[arg(long)]
        json: bool,
    },
    /// Read a measurement (a table per phase, with units).
    Get {
        /// What to read.
        what: GetQuantity,
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// Print the meter's reply object as it was sent.
        #[arg(long)]
        json: bool,
    },
    /// Send a raw command line (a JSON object, `?` or `!`) and print the reply objects.
    Cmd {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// The command, e.g. '{"cmd":"getEnergy"}'.
        #[arg(value_name = "JSON")]
        line: String,
        /// Print `?`'s `Setup done` as a JSON object too.
        #[arg(long)]
        json: bool,
    },
    /// Change a setting.
    Set {
        /// The setting.
        #[command(subcommand)]
        what: SetCommand,
        /// Print the meter's reply object instead of its message.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Print the meter's persistent log (warnings and errors), one row per line; with --follow
    /// then its live log lines.
    Log {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// Then keep printing live log lines until Ctrl-C (or the connection is lost: exit 1).
        #[arg(long, short)]
        follow: bool,
        /// Level of the live lines (the meter keeps it per connection, so it only applies to this
        /// --follow connection).
        #[arg(long, default_value = "info", requires = "follow")]
        level: Level,
        /// Print each row as a JSON string.
        #[arg(long)]
        json: bool,
    },
    /// Record waveforms to a file (.wav, .csv or .f32, chosen by the extension).
    Record {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// Samples per second: 1-32000 (1-50 for p,q and v,i_RMS).
        #[arg(long, short, default_value_t = 8000)]
        rate: u32,
        /// Channels: v,i (all six waveforms), v,i_L1, v,i_L2, v,i_L3, p,q or v,i_RMS.
        #[arg(long, short, default_value = "v,i")]
        measures: String,
        /// How long (90, 3s, 2m, 1h); exactly rate × duration samples are written.
        #[arg(long, short, value_parser = duration_arg)]
        duration: Duration,
        /// Output file.
        #[arg(long, short)]
        out: PathBuf,
        /// Receive over UDP on this local port instead of the TCP connection.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        udp: Option<u16>,
        /// Do not insert zeros for lost packets (timestamps after a loss are then shifted).
        #[arg(long)]
        no_zero_fill: bool,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// A live per-phase table of V, I, P, Q, S, PF and f, refreshed every second, until Ctrl-C.
    /// While another client samples (the meter is busy) it keeps the last table and retries.
    Watch {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// Refresh period (at least 100ms).
        #[arg(long, default_value = "1s", value_parser = interval_arg)]
        interval: Duration,
        /// Stop after this many refreshes (default: until Ctrl-C).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// One JSON object per refresh instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Power quality (docs/protocol.md §11): the last complete aggregate of an interval (getPQ) as a
    /// table: per-phase voltage with its min/max, frequency, unbalance u0/u2, THD, the largest
    /// harmonics, Pst/Plt where the interval has them, and whether it is flagged.
    Pq {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// Which aggregate: 200ms (the last 10/12-cycle window), 3s, 10min or 2h.
        #[arg(long, default_value = "3s", value_parser = pq_interval_arg)]
        interval: PqInterval,
        /// Print the meter's getPQ reply object as it was sent.
        #[arg(long)]
        json: bool,
    },
    /// Power-quality events (dips, swells, interruptions, rapid voltage changes) the meter has
    /// recorded, oldest first, every page of getEvents; with --follow then each new one as it ends.
    Events {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// Only events with an id above N (the last id already seen).
        #[arg(long, value_name = "N", default_value_t = 0)]
        since: u32,
        /// Then keep printing new events until Ctrl-C (exit 0) or the connection is lost
        /// (exit 1). The meter is asked again whenever it logs a warning ([W], as every ended
        /// event does) and every 5 s.
        #[arg(long, short)]
        follow: bool,
        /// One getEvents event object per line.
        #[arg(long)]
        json: bool,
    },
    /// Run the metering DSP over a recording: one row per 10-cycle window (12 at 60 Hz) for
    /// waveforms, one row per second for p,q and v,i_RMS recordings.
    Analyze {
        /// A recording (.wav, .csv, .f32).
        file: PathBuf,
        /// CSV output (one row per window).
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// One JSON object per window (keys t, cycles, voltage, current, activePower,
        /// reactivePower, apparentPower, frequency, powerFactor).
        #[arg(long)]
        json: bool,
        /// Draw waveforms and power over time into this PNG; with --pq the power-quality view:
        /// Urms(½) per phase over time with the events marked, and the mean voltage harmonic
        /// subgroups H2..H50 in % of H1.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Sample rate of a .f32 file (required: the file does not say), or of a one-row .csv.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=32000))]
        rate: Option<u32>,
        /// Channel names of a .f32 file (default v_l1,i_l1,v_l2,i_l2,v_l3,i_l3).
        #[arg(long, value_delimiter = ',')]
        channels: Option<Vec<String>>,
        /// Nominal line frequency: 50, 60, or auto (the nearer one to the first second's).
        #[arg(long, default_value = "auto", value_parser = nominal_arg)]
        nominal: NominalArg,
        /// Power quality (docs/protocol.md §11) instead of the classic rows: every completed
        /// interval of --interval and every voltage event; with --json one object per line (the
        /// getPQ object without error/cmd, or the getEvents event object).
        #[arg(long, conflicts_with = "csv")]
        pq: bool,
        /// --pq aggregation interval: 200ms, 3s, 10min or 2h.
        #[arg(long, default_value = "10min", value_parser = pq_interval_arg, requires = "pq")]
        interval: PqInterval,
        /// --pq declared voltage Udin in V (50..=1000); default auto from the first second.
        #[arg(long, value_parser = udin_arg, requires = "pq")]
        udin: Option<f32>,
    },
    /// Store what every meter publishes on an MQTT broker in Parquet files and/or PostgreSQL, with
    /// a Prometheus endpoint; runs until SIGINT/SIGTERM, then flushes and exits 0.
    Collect(CollectArgs),
    /// Status of every meter publishing on an MQTT broker.
    Fleet {
        /// Broker `host[:port]` (default port 1883), or `mqtts://host[:port]` for TLS (default
        /// port 8883).
        broker: String,
        /// TLS files for an mqtts:// broker.
        #[command(flatten)]
        tls: TlsArgs,
        /// How long to listen (meters publish their status every 5 s).
        #[arg(long, default_value = "6s", value_parser = duration_arg)]
        wait: Duration,
        /// One JSON object per meter instead of the table.
        #[arg(long)]
        json: bool,
    },
}

impl CliCommand {
    /// The subcommand's `--json`.
    pub(crate) fn json(&self) -> bool {
        match self {
            CliCommand::Discover { json, .. }
            | CliCommand::Info { json, .. }
            | CliCommand::Get { json, .. }
            | CliCommand::Cmd { json, .. }
            | CliCommand::Set { json, .. }
            | CliCommand::Log { json, .. }
            | CliCommand::Record { json, .. }
            | CliCommand::Watch { json, .. }
            | CliCommand::Pq { json, .. }
            | CliCommand::Events { json, .. }
            | CliCommand::Analyze { json, .. }
            | CliCommand::Fleet { json, .. } => *json,
            CliCommand::Collect(args) => args.json,
        }
    }
}

/// `analyze --nominal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NominalArg {
    /// Decided from the recording's first second.
    Auto,
    /// 50 or 60 Hz.
    Hz(u32),
}

/// `get` quantities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GetQuantity {
    /// getPower: P, Q, S per phase.
    Power,
    /// getVoltage: RMS V per phase.
    Voltage,
    /// getCurrent: RMS mA per phase.
    Current,
    /// getEnergy: Wh per phase since the reset.
    Energy,
    /// getPeriod: line frequency per phase.
    Frequency,
    /// getPhaseAngle: degrees per phase.
    Phase,
    /// getQuality: THD, power factor, nonactive power, half-cycle RMS extremes, 10-s frequency.
    Quality,
}

impl GetQuantity {
    pub(crate) fn command(self) -> WireCommand {
        match self {
            GetQuantity::Power => WireCommand::GetPower,
            GetQuantity::Voltage => WireCommand::GetVoltage,
            GetQuantity::Current => WireCommand::GetCurrent,
            GetQuantity::Energy => WireCommand::GetEnergy,
            GetQuantity::Frequency => WireCommand::GetPeriod,
            GetQuantity::Phase => WireCommand::GetPhaseAngle,
            GetQuantity::Quality => WireCommand::GetQuality,
        }
    }
}

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Level {
    /// Everything.
    All,
    /// Debug and above.
    Debug,
    /// Info and above.
    Info,
    /// Warnings and errors.
    Warning,
    /// Errors.
    Error,
}

impl From<Level> for LogLevel {
    fn from(l: Level) -> LogLevel {
        match l {
            Level::All => LogLevel::All,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warning => LogLevel::Warning,
            Level::Error => LogLevel::Error,
        }
    }
}

/// `set` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SetCommand {
    /// The meter's name (mDNS name, AP name): 1-24 of A-Z a-z 0-9 -.
    Name {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// The new name.
        name: String,
    },
    /// Wi-Fi access points.
    Wifi {
        /// Add or delete.
        #[command(subcommand)]
        action: WifiAction,
    },
    /// The MQTT broker (`-` disables).
    Mqtt {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// `host`, `host:port`, `[v6]:port` or `-`.
        server: String,
        /// Broker user (≤ 64 bytes).
        #[arg(long)]
        user: Option<String>,
        /// Broker password (≤ 64 bytes).
        #[arg(long)]
        pwd: Option<String>,
        /// Broker port (default: the address's, else 1883).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        port: Option<u16>,
    },
    /// The stream server the meter connects out to on port 54322 (`-` disables).
    Stream {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// `host`, `host:port`, `[v6]:port` or `-`.
        server: String,
    },
    /// The NTP server (`-` disables).
    TimeServer {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// `host`, `host:port`, `[v6]:port` or `-`.
        server: String,
    },
    /// Calibration factors (each 0.5-2.0): six `vL1 iL1 vL2 iL2 vL3 iL3`, or two `v i` for all phases.
    Calibration {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// The factors.
        #[arg(num_args = 1.., allow_negative_numbers = true)]
        factors: Vec<f32>,
    },
    /// Restart every day at HH:MM (device time), or `off`.
    DailyRestart {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// `HH:MM` or `off`.
        at: String,
    },
}

/// `set wifi` actions.
#[derive(Debug, Subcommand)]
pub(crate) enum WifiAction {
    /// Add an access point (at most 5).
    Add {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// SSID (1-32 bytes).
        ssid: String,
        /// Password (≤ 64 bytes; empty for an open network).
        #[arg(default_value = "")]
        pwd: String,
    },
    /// Remove an access point.
    Del {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: MeterArgs,
        /// SSID.
        ssid: String,
    },
}

fn pq_interval_arg(s: &str) -> Result<PqInterval, String> {
    PqInterval::parse(s).ok_or_else(|| format!("{s:?}: expected 200ms, 3s, 10min or 2h"))
}

fn udin_arg(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if (50.0..=1000.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?}: expected a declared voltage of 50..=1000 V")),
    }
}

fn nominal_arg(s: &str) -> Result<NominalArg, String> {
    match s {
        "auto" => Ok(NominalArg::Auto),
        "50" => Ok(NominalArg::Hz(50)),
        "60" => Ok(NominalArg::Hz(60)),
        _ => Err("the nominal line frequency is 50, 60 or auto".into()),
    }
}

pub(crate) fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn interval_arg(s: &str) -> Result<Duration, String> {
    let d = duration_arg(s)?;
    if d < Duration::from_millis(100) {
        return Err("the interval is at least 100ms".into());
    }
    Ok(d)
}

fn token_arg(s: &str) -> Result<String, String> {
    if s.len() > MAX_TOKEN_BYTES {
        return Err(format!("a token is at most {MAX_TOKEN_BYTES} bytes"));
    }
    Ok(s.to_string())
}

impl MeterArgs {
    /// Connects to the meter (and authenticates when a token is given).
    pub(crate) async fn connect(&self) -> Result<Client, CliError> {
        let opts = ClientOptions {
            timeout: self.timeout,
            connect_timeout: self.timeout,
            baud_rate: self.baud,
            token: self.token.clone().filter(|t| !t.is_empty()),
            ..ClientOptions::default()
        };
        Ok(Client::connect_with(&self.host, opts).await?)
    }
}

/// The certificate files of a TLS connection to the broker (`collect`, `fleet`).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct TlsArgs {
    /// With an mqtts:// broker: trust only the CA certificates in this PEM file (default: the
    /// system's trusted certificates).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// With an mqtts:// broker that asks for one (mutual TLS, e.g. AWS IoT Core): this client
    /// certificate (PEM)...
    #[arg(long, value_name = "PEM", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// ...and its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The library's form.
    pub(crate) fn files(&self) -> crate::client::TlsFiles {
        crate::client::TlsFiles {
            ca: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        }
    }
}

/// Arguments of `smartmeter collect`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CollectArgs {
    /// Broker `host[:port]` (default port 1883), or `mqtts://host[:port]` for TLS (default port
    /// 8883).
    #[arg(long, value_name = "[mqtts://]HOST[:PORT]")]
    pub mqtt: String,
    /// TLS files for an mqtts:// broker.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Write Parquet files under DIR/TABLE/date=YYYY-MM-DD/ (the default, into ./smartmeter-data,
    /// when --postgres is not given).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write to PostgreSQL (tables created if absent; e.g. postgres://user:pw@host/db; TLS with
    /// ?sslmode=require and libpq's sslrootcert, sslcert, sslkey).
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
    /// Make the rows of open Parquet files durable at least this often (1s-1h): what a crash
    /// (kill -9, power loss) can lose; the next start completes the files.
    #[arg(long, default_value = "1m", value_parser = rotate_arg)]
    pub checkpoint: Duration,
    /// Rows kept in memory while PostgreSQL is away before spilling to disk (under --out, or
    /// ./smartmeter-data, in .spool/postgres).
    #[arg(long, default_value_t = 1_000_000, value_name = "ROWS")]
    pub buffer_rows: u64,
    /// How long to wait for the broker (and the database) at start (90, 3s, 2m).
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
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
        cfg.tls = self.tls.files();
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
        cfg.checkpoint = self.checkpoint;
        cfg.buffer_rows = self.buffer_rows;
        cfg.connect_timeout = connect_timeout;
        cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_documented_forms() {
        let c =
            Cli::try_parse_from(["smartmeter", "--json", "get", "power", "10.0.0.7:5000"]).unwrap();
        assert!(c.json);
        assert!(
            matches!(c.command, CliCommand::Get { what: GetQuantity::Power, meter: MeterArgs { host: Target::Tcp { ref host, port: 5000 }, .. }, .. } if host == "10.0.0.7")
        );
        let c = Cli::try_parse_from(["smartmeter", "get", "quality", "h", "--json"]).unwrap();
        assert!(c.command.json());
        let c = Cli::try_parse_from([
            "smartmeter",
            "record",
            "kitchen",
            "--rate",
            "4000",
            "--duration",
            "2m",
            "--out",
            "x.wav",
        ])
        .unwrap();
        match c.command {
            CliCommand::Record {
                rate,
                duration,
                measures,
                ..
            } => {
                assert_eq!(
                    (rate, duration, measures.as_str()),
                    (4000, Duration::from_secs(120), "v,i")
                );
            }
            other => panic!("{other:?}"),
        }
        let c =
            Cli::try_parse_from(["smartmeter", "set", "calibration", "m", "1.0", "0.98"]).unwrap();
        assert!(
            matches!(c.command, CliCommand::Set { what: SetCommand::Calibration { ref factors, .. }, .. } if factors == &[1.0, 0.98])
        );
        let c = Cli::try_parse_from(["smartmeter", "set", "name", "m", "n", "--json"]).unwrap();
        assert!(c.command.json());
        let c = Cli::try_parse_from(["smartmeter", "--json", "cmd", "h", "{\"cmd\":\"info\"}"])
            .unwrap();
        assert!(
            matches!(c.command, CliCommand::Cmd { ref line, .. } if line == "{\"cmd\":\"info\"}")
        );
        let c = Cli::try_parse_from(["smartmeter", "info", "h", "--token", "t"]).unwrap();
        assert!(
            matches!(c.command, CliCommand::Info { ref meter, .. } if meter.token.as_deref() == Some("t"))
        );
        assert!(Cli::try_parse_from(["smartmeter", "get", "power"]).is_err());
        assert!(Cli::try_parse_from(["smartmeter", "get", "watts", "h"]).is_err());
        assert!(
            Cli::try_parse_from([
                "smartmeter",
                "record",
                "h",
                "--duration",
                "3x",
                "--out",
                "a.wav"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["smartmeter", "info", "a:99999"]).is_err());
        // Options only where they mean something.
        assert!(Cli::try_parse_from(["smartmeter", "analyze", "f.wav", "--baud", "9600"]).is_err());
        assert!(Cli::try_parse_from(["smartmeter", "discover", "--timeout", "1s"]).is_err());
        assert!(Cli::try_parse_from(["smartmeter", "log", "h", "--level", "debug"]).is_err());
        assert!(Cli::try_parse_from(["smartmeter", "set", "log-level", "h", "debug"]).is_err());
    }

    fn parse_collect(args: &[&str]) -> Result<CollectArgs, clap::Error> {
        let mut all = std::vec!["smartmeter", "collect"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all)?.command {
            CliCommand::Collect(a) => Ok(a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn collect_arguments_and_defaults() {
        let a = parse_collect(&["--mqtt", "broker"]).unwrap();
        let c = a.config(Duration::from_secs(5));
        assert_eq!(c.out, Some(PathBuf::from("smartmeter-data")));
        assert_eq!(c.postgres, None);
        assert_eq!(c.rotate, Duration::from_secs(3600));
        let a = parse_collect(&[
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
        let a = parse_collect(&[
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
            assert!(parse_collect(bad).is_err(), "{bad:?}");
        }
    }
}
