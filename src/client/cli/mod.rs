//! The `smartmeter` command-line tool (feature `cli`): argument parsing (clap), human and `--json`
//! output, and one function per subcommand. The binary `src/bin/smartmeter.rs` only calls [`main`].
//!
//! Not library API: the module is hidden and [`main`] is its only public item. The tool is built on
//! crate-private parts of the client (the connection task's requests, recording internals), so
//! moving it into the binary would make those public; one hidden entry point keeps the library's
//! surface what a host-tool author needs.
//!
//! Exit codes: 0 success (also when stdout is closed early, e.g. piped into `head`); 1 an error
//! (unreachable host, connection lost, unreadable or unwritable file); 2 bad arguments (checked
//! before the meter is contacted wherever the tool can tell, with the same rules the meter
//! applies); 3 the meter refused the command (its `msg` is printed) or is busy; 4 a recording lost
//! packets (the file is complete, zero-filled, and says so); 130 / 143 a recording stopped by
//! Ctrl-C / SIGTERM (the meter is stopped and the file finalised).

mod analyze;
mod analyze_pq;
mod collect;
mod output;
mod plot;
mod record;
mod signal;

use std::format;
use std::path::PathBuf;
use std::process::ExitCode;
use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;

use clap::{Parser, Subcommand, ValueEnum};

use super::recording::RecordingError;
use super::{Client, ClientError, ClientOptions, Target, parse_duration};
use crate::wire::command::{
    Calibration, Command as WireCommand, CommandError, DailyRestart, MAX_TOKEN_BYTES,
    MqttServerSettings, ServerAddr, WifiCredentials,
};
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
    pub command: Command,
}

/// The meter a subcommand talks to, and how.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Meter {
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
pub(crate) enum Command {
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
        meter: Meter,
        /// Print the meter's reply object as it was sent.
        #[arg(long)]
        json: bool,
    },
    /// Read a measurement (a table per phase, with units).
    Get {
        /// What to read.
        what: Quantity,
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: Meter,
        /// Print the meter's reply object as it was sent.
        #[arg(long)]
        json: bool,
    },
    /// Send a raw command line (a JSON object, `?` or `!`) and print the reply objects.
    Cmd {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: Meter,
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
        meter: Meter,
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
        meter: Meter,
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
        meter: Meter,
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
        /// Draw waveforms and power over time into this PNG.
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
        nominal: Nominal,
        /// Power quality (PROTOCOL.md §11) instead of the classic rows: every completed interval
        /// of --interval and every voltage event; with --json one object per line (the getPQ
        /// object without error/cmd, or the getEvents event object).
        #[arg(long, conflicts_with_all = ["csv", "plot"])]
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
    Collect(collect::CollectArgs),
    /// Status of every meter publishing on an MQTT broker.
    Fleet {
        /// Broker `host[:port]` (default port 1883).
        broker: String,
        /// How long to listen (meters publish their status every 5 s).
        #[arg(long, default_value = "6s", value_parser = duration_arg)]
        wait: Duration,
        /// One JSON object per meter instead of the table.
        #[arg(long)]
        json: bool,
    },
}

impl Command {
    /// The subcommand's `--json`.
    fn json(&self) -> bool {
        match self {
            Command::Discover { json, .. }
            | Command::Info { json, .. }
            | Command::Get { json, .. }
            | Command::Cmd { json, .. }
            | Command::Set { json, .. }
            | Command::Log { json, .. }
            | Command::Record { json, .. }
            | Command::Watch { json, .. }
            | Command::Analyze { json, .. }
            | Command::Fleet { json, .. } => *json,
            Command::Collect(args) => args.json,
        }
    }
}

/// `analyze --nominal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nominal {
    /// Decided from the recording's first second.
    Auto,
    /// 50 or 60 Hz.
    Hz(u32),
}

/// `get` quantities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Quantity {
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

impl Quantity {
    fn command(self) -> WireCommand {
        match self {
            Quantity::Power => WireCommand::GetPower,
            Quantity::Voltage => WireCommand::GetVoltage,
            Quantity::Current => WireCommand::GetCurrent,
            Quantity::Energy => WireCommand::GetEnergy,
            Quantity::Frequency => WireCommand::GetPeriod,
            Quantity::Phase => WireCommand::GetPhaseAngle,
            Quantity::Quality => WireCommand::GetQuality,
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
        meter: Meter,
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
        meter: Meter,
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
        meter: Meter,
        /// `host`, `host:port`, `[v6]:port` or `-`.
        server: String,
    },
    /// The NTP server (`-` disables).
    TimeServer {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: Meter,
        /// `host`, `host:port`, `[v6]:port` or `-`.
        server: String,
    },
    /// Calibration factors (each 0.5-2.0): six `vL1 iL1 vL2 iL2 vL3 iL3`, or two `v i` for all phases.
    Calibration {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: Meter,
        /// The factors.
        #[arg(num_args = 1.., allow_negative_numbers = true)]
        factors: Vec<f32>,
    },
    /// Restart every day at HH:MM (device time), or `off`.
    DailyRestart {
        /// The meter and how to reach it.
        #[command(flatten)]
        meter: Meter,
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
        meter: Meter,
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
        meter: Meter,
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

fn nominal_arg(s: &str) -> Result<Nominal, String> {
    match s {
        "auto" => Ok(Nominal::Auto),
        "50" => Ok(Nominal::Hz(50)),
        "60" => Ok(Nominal::Hz(60)),
        _ => Err("the nominal line frequency is 50, 60 or auto".into()),
    }
}

fn duration_arg(s: &str) -> Result<Duration, String> {
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

/// Everything a subcommand can fail with; `Display` is the one line printed after `smartmeter: error: `.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Talking to the meter failed or the meter refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: RecordingError,
    },
    /// An argument is invalid (beyond what clap checks).
    #[error("{0}")]
    Usage(String),
    /// Packets were lost during a recording.
    #[error("{0}")]
    DataLoss(String),
    /// Analysis failed.
    #[error(transparent)]
    Analyze(#[from] super::analyze::AnalyzeError),
    /// The collector could not start.
    #[error(transparent)]
    Collect(#[from] super::collect::CollectError),
    /// Writing to stdout failed (closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Client(e) if e.is_refusal() => 3,
            CliError::Client(ClientError::InvalidHost { .. } | ClientError::InvalidCommand(_)) => 2,
            CliError::Usage(_) | CliError::Collect(super::collect::CollectError::Usage(_)) => 2,
            CliError::DataLoss(_) => 4,
            _ => 1,
        }
    }

    /// Stdout was closed by its reader (`smartmeter log … | head`): not worth a message.
    pub(crate) fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Parses the arguments, runs the subcommand on a tokio runtime, prints one error line on failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            std::eprintln!("smartmeter: error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(run(cli));
    // Do not wait for blocking tasks (mDNS threads, stdin) at exit.
    rt.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(code) => code,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            std::eprintln!("smartmeter: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Connects to the meter (and authenticates when a token is given).
pub(crate) async fn connect(m: &Meter) -> Result<Client, CliError> {
    let opts = ClientOptions {
        timeout: m.timeout,
        connect_timeout: m.timeout,
        baud_rate: m.baud,
        token: m.token.clone().filter(|t| !t.is_empty()),
        ..ClientOptions::default()
    };
    Ok(Client::connect_with(&m.host, opts).await?)
}

fn server_arg(s: &str) -> Result<ServerAddr, CliError> {
    ServerAddr::parse(s).map_err(|e| CliError::Usage(format!("invalid server `{s}`: {e}")))
}

/// Checks a typed command with the parser the meter itself runs, so that an argument the meter
/// would refuse is a usage error (exit 2) found before connecting, with the meter's own words.
fn checked(cmd: WireCommand) -> Result<WireCommand, CliError> {
    match WireCommand::parse(cmd.encode().as_bytes()) {
        Ok(_) => Ok(cmd),
        Err(e) => Err(CliError::Usage(e.to_string())),
    }
}

/// The raw `cmd` line: one line of at most 600 bytes holding a JSON object with a string `cmd`,
/// `?` or `!`. Whether the meter knows the command and accepts its values is the meter's to say.
fn check_raw_line(line: &str) -> Result<(), CliError> {
    if line.contains(['\n', '\r']) {
        return Err(CliError::Usage("a command is one line".into()));
    }
    match WireCommand::parse(line.as_bytes()) {
        Ok(WireCommand::Sample(_)) => Err(CliError::Usage(
            "use `smartmeter record` to sample (its data needs a receiver)".into(),
        )),
        Ok(_) => Ok(()),
        Err(e @ (CommandError::LineTooLong | CommandError::Empty | CommandError::Json)) => {
            let what = match e {
                CommandError::LineTooLong => "a command line is at most 600 bytes".to_string(),
                _ => "expected a JSON object with a string \"cmd\" (e.g. '{\"cmd\":\"info\"}'), `?` or `!`".to_string(),
            };
            Err(CliError::Usage(format!("invalid command `{line}`: {what}")))
        }
        Err(CommandError::UnknownCommand { cmd }) if cmd == "sample" => Err(CliError::Usage(
            "use `smartmeter record` to sample (its data needs a receiver)".into(),
        )),
        // Known shape, refused values (or a command this tool does not know): the meter decides.
        Err(_) => Ok(()),
    }
}

/// Runs one parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    use output::Out;
    let out = Out::new(cli.json || cli.command.json());
    match &cli.command {
        Command::Discover { wait, .. } => {
            let found = super::discover(*wait).await?;
            out.discovered(&found)?;
        }
        Command::Info { meter, .. } => {
            let c = connect(meter).await?;
            let r = c.info().await?;
            out.response(&r)?;
        }
        Command::Get { what, meter, .. } => {
            let c = connect(meter).await?;
            let r = c.request(&what.command()).await?;
            out.quantity(*what, &r)?;
        }
        Command::Cmd { meter, line, .. } => {
            let line = line.trim();
            check_raw_line(line)?;
            let c = connect(meter).await?;
            let replies = c.request_raw(line).await?;
            if line.starts_with('?') && !out.json {
                out.print("Setup done\n")?;
            } else {
                for r in &replies {
                    out.raw(r)?;
                }
            }
            if let Some(last) = replies.last() {
                let sent = last.cmd().unwrap_or("command").to_string();
                last.clone().check(&sent)?;
            }
        }
        Command::Set { what, .. } => {
            let r = set(what).await?;
            out.confirmation(&r)?;
        }
        Command::Log {
            meter,
            follow,
            level,
            ..
        } => return log(meter, *follow, *level, &out).await,
        Command::Record { .. } => return record::record(&cli, &out).await,
        Command::Watch {
            meter,
            interval,
            count,
            ..
        } => {
            let mut signals = signal::Signals::install()?;
            let c = connect(meter).await?;
            output::watch(&c, &out, *interval, *count, &mut signals).await?;
        }
        Command::Analyze { .. } => return analyze::analyze(&cli, &out),
        Command::Collect(args) => return collect::collect(&cli, args).await,
        Command::Fleet { broker, wait, .. } => {
            check_broker(broker)?;
            let meters = super::fleet_snapshot(broker, *wait).await?;
            out.fleet(&meters)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn check_broker(broker: &str) -> Result<(), CliError> {
    match ServerAddr::parse(broker) {
        Ok(ServerAddr::Host { .. }) => Ok(()),
        Ok(ServerAddr::Disabled) => Err(CliError::Usage(format!(
            "invalid broker `{broker}`: expected host[:port]"
        ))),
        Err(e) => Err(CliError::Usage(format!("invalid broker `{broker}`: {e}"))),
    }
}

/// `log`: the persistent log, then with `--follow` the live lines until Ctrl-C / SIGTERM (exit 0)
/// or until the connection is lost (exit 1, "connection lost").
async fn log(
    meter: &Meter,
    follow: bool,
    level: Level,
    out: &output::Out,
) -> Result<ExitCode, CliError> {
    let mut signals = if follow {
        Some(signal::Signals::install()?)
    } else {
        None
    };
    let c = connect(meter).await?;
    // Subscribed before anything is asked, so no live line is missed.
    let mut notices = c.notices();
    let rows = c.get_log().await?;
    out.log_rows(&rows)?;
    let Some(signals) = signals.as_mut() else {
        return Ok(ExitCode::SUCCESS);
    };
    c.request(&WireCommand::Log {
        level: level.into(),
    })
    .await?;
    let lost = |e: ClientError| -> CliError {
        match e {
            e @ ClientError::ConnectionLost { .. } => e.into(),
            other => ClientError::ConnectionLost {
                reason: other.to_string(),
            }
            .into(),
        }
    };
    loop {
        tokio::select! {
            n = notices.recv() => match n {
                // The idle heartbeat (an empty line every second) is not worth printing.
                Ok(super::Notice::Log(line)) if !line.text.is_empty() => out.log_line(&line)?,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Err(lost(c.closed().await)),
            },
            _ = signals.recv() => return Ok(ExitCode::SUCCESS),
        }
    }
}

async fn set(what: &SetCommand) -> Result<super::Response, CliError> {
    // Build and check the command first: bad arguments never reach (or wait for) the meter.
    let (meter, cmd) = match what {
        SetCommand::Name { meter, name } => (meter, WireCommand::Mdns { name: name.clone() }),
        SetCommand::Wifi { action } => match action {
            WifiAction::Add { meter, ssid, pwd } => (
                meter,
                WireCommand::AddWifi(WifiCredentials {
                    ssid: ssid.clone(),
                    pwd: pwd.clone(),
                }),
            ),
            WifiAction::Del { meter, ssid } => (meter, WireCommand::DelWifi { ssid: ssid.clone() }),
        },
        SetCommand::Mqtt {
            meter,
            server,
            user,
            pwd,
            port,
        } => (
            meter,
            WireCommand::MqttServer(MqttServerSettings {
                server: server_arg(server)?,
                user: user.clone(),
                pwd: pwd.clone(),
                port: *port,
            }),
        ),
        SetCommand::Stream { meter, server } => (
            meter,
            WireCommand::StreamServer {
                server: server_arg(server)?,
            },
        ),
        SetCommand::TimeServer { meter, server } => (
            meter,
            WireCommand::TimeServer {
                server: server_arg(server)?,
            },
        ),
        SetCommand::Calibration { meter, factors } => {
            let cal = match factors.as_slice() {
                [v, i] => Calibration::Uniform { v: *v, i: *i },
                [a, b, c, d, e, f] => Calibration::Factors([*a, *b, *c, *d, *e, *f]),
                _ => {
                    return Err(CliError::Usage(
                        "give six factors (vL1 iL1 vL2 iL2 vL3 iL3) or two (v i)".into(),
                    ));
                }
            };
            if let Some(bad) = factors.iter().find(|f| !f.is_finite()) {
                return Err(CliError::Usage(format!(
                    "calibration factor {bad} is not a number in 0.5-2.0"
                )));
            }
            (meter, WireCommand::Calibration(cal))
        }
        SetCommand::DailyRestart { meter, at } => {
            (meter, WireCommand::DailyRestart(parse_daily(at)?))
        }
    };
    let cmd = checked(cmd)?;
    let c = connect(meter).await?;
    Ok(c.request(&cmd).await?)
}

fn parse_daily(at: &str) -> Result<DailyRestart, CliError> {
    if matches!(at, "off" | "none" | "-") {
        return Ok(DailyRestart::Disabled);
    }
    let bad = || CliError::Usage(format!("invalid time `{at}`: expected HH:MM (24 h) or off"));
    let (h, m) = at.split_once(':').ok_or_else(bad)?;
    let hour: u8 = h.parse().map_err(|_| bad())?;
    let minute: u8 = m.parse().map_err(|_| bad())?;
    if hour > 23 || minute > 59 {
        return Err(bad());
    }
    Ok(DailyRestart::At { hour, minute })
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
            matches!(c.command, Command::Get { what: Quantity::Power, meter: Meter { host: Target::Tcp { ref host, port: 5000 }, .. }, .. } if host == "10.0.0.7")
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
            Command::Record {
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
            matches!(c.command, Command::Set { what: SetCommand::Calibration { ref factors, .. }, .. } if factors == &[1.0, 0.98])
        );
        let c = Cli::try_parse_from(["smartmeter", "set", "name", "m", "n", "--json"]).unwrap();
        assert!(c.command.json());
        let c = Cli::try_parse_from(["smartmeter", "--json", "cmd", "h", "{\"cmd\":\"info\"}"])
            .unwrap();
        assert!(matches!(c.command, Command::Cmd { ref line, .. } if line == "{\"cmd\":\"info\"}"));
        let c = Cli::try_parse_from(["smartmeter", "info", "h", "--token", "t"]).unwrap();
        assert!(
            matches!(c.command, Command::Info { ref meter, .. } if meter.token.as_deref() == Some("t"))
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

    #[test]
    fn daily_restart_times() {
        assert_eq!(parse_daily("off").unwrap(), DailyRestart::Disabled);
        assert_eq!(
            parse_daily("03:30").unwrap(),
            DailyRestart::At {
                hour: 3,
                minute: 30
            }
        );
        assert!(parse_daily("24:00").is_err());
        assert!(parse_daily("3").is_err());
    }

    #[test]
    fn raw_lines_are_checked_for_shape_only() {
        for ok in [
            "{\"cmd\":\"info\"}",
            "?",
            "!",
            "{\"cmd\":\"bogus\"}",
            "{\"cmd\":\"mdns\",\"payload\":{\"name\":\"bad name\"}}",
        ] {
            assert!(check_raw_line(ok).is_ok(), "{ok}");
        }
        for bad in [
            "not json",
            "{\"cmd\":5}",
            "[1]",
            "{}",
            "{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\"}}",
        ] {
            assert!(
                matches!(check_raw_line(bad), Err(CliError::Usage(_))),
                "{bad}"
            );
        }
    }
}
