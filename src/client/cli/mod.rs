//! The `smartmeter` command-line tool (feature `cli`): argument parsing (clap), human and `--json`
//! output, and one function per subcommand. The binary `src/bin/smartmeter.rs` only calls [`main`].
//!
//! Exit codes: 0 success; 1 an error (unreachable host, connection lost, unreadable or unwritable
//! file); 2 bad arguments; 3 the meter refused the command (its `msg` is printed) or is busy;
//! 4 a recording lost packets (the file is complete, zero-filled, and says so); 130 a recording
//! stopped by Ctrl-C (the file is finalised).

mod analyze;
mod collect;
mod output;
mod plot;
mod record;

use std::format;
use std::path::PathBuf;
use std::process::ExitCode;
use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;

use clap::{Parser, Subcommand, ValueEnum};

use super::recording::RecordingError;
use super::{Client, ClientError, ClientOptions, Target, parse_duration};
use crate::wire::command::{Calibration, DailyRestart, MqttServerSettings, ServerAddr};
use crate::wire::log::LogLevel;

/// Discover, command, record and analyse SmartMeter devices.
#[derive(Debug, Parser)]
#[command(name = "smartmeter", version, about, max_term_width = 100)]
pub struct Cli {
    /// Print the meter's JSON reply objects (and one JSON object per window for `analyze`).
    #[arg(long, global = true)]
    pub json: bool,
    /// How long to wait for a reply (90, 3s, 2m, 1h).
    #[arg(long, global = true, default_value = "5s", value_parser = duration_arg)]
    pub timeout: Duration,
    /// Baud rate when HOST is a serial device.
    #[arg(long, global = true, default_value_t = 115_200)]
    pub baud: u32,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List meters on the local network (mDNS `_elec._tcp`): name, address, version.
    Discover {
        /// How long to listen.
        #[arg(long, default_value = "3s", value_parser = duration_arg)]
        wait: Duration,
    },
    /// Show the meter's info.
    Info {
        /// `host[:port]` (default port 54321), a meter name (mDNS), or a serial device.
        host: Target,
    },
    /// Read a measurement (a table per phase, with units).
    Get {
        /// What to read.
        what: Quantity,
        /// `host[:port]`, a meter name, or a serial device.
        host: Target,
    },
    /// Send a raw command line (a JSON object, `?` or `!`) and print the reply.
    Cmd {
        /// `host[:port]`, a meter name, or a serial device.
        host: Target,
        /// The command, e.g. '{"cmd":"getEnergy"}'.
        #[arg(value_name = "JSON")]
        line: String,
    },
    /// Change a setting.
    Set {
        /// The setting.
        #[command(subcommand)]
        what: SetCommand,
    },
    /// Print the meter's persistent log (warnings and errors), one row per line.
    Log {
        /// `host[:port]`, a meter name, or a serial device.
        host: Target,
        /// Then keep printing live log lines until Ctrl-C.
        #[arg(long, short)]
        follow: bool,
        /// Level of the live lines with --follow.
        #[arg(long, default_value = "info")]
        level: Level,
    },
    /// Record waveforms to a file (.wav, .csv or .f32, chosen by the extension).
    Record {
        /// `host[:port]`, a meter name, or a serial device.
        host: Target,
        /// Samples per second, 1-32000.
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
        #[arg(long)]
        udp: Option<u16>,
        /// Do not insert zeros for lost packets (timestamps after a loss are then shifted).
        #[arg(long)]
        no_zero_fill: bool,
    },
    /// A live per-phase table of V, I, P, Q, S, PF and f, refreshed every second.
    Watch {
        /// `host[:port]`, a meter name, or a serial device.
        host: Target,
        /// Refresh period.
        #[arg(long, default_value = "1s", value_parser = duration_arg)]
        interval: Duration,
        /// Stop after this many refreshes (default: until Ctrl-C).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Run the metering DSP over a recording and print per-window results.
    Analyze {
        /// A recording (.wav, .csv, .f32).
        file: PathBuf,
        /// CSV output (one row per window).
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Draw voltage/current waveforms and power over time into this PNG.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Sample rate of a .f32 file (default 8000).
        #[arg(long)]
        rate: Option<u32>,
        /// Channel names of a .f32 file (default v_l1,i_l1,v_l2,i_l2,v_l3,i_l3).
        #[arg(long, value_delimiter = ',')]
        channels: Option<Vec<String>>,
        /// Nominal line frequency.
        #[arg(long, default_value_t = 50, value_parser = nominal_arg)]
        nominal: u32,
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
    },
}

/// `get` quantities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Quantity {
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
}

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Level {
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
pub enum SetCommand {
    /// The meter's name (mDNS name, AP name): 1-24 of A-Z a-z 0-9 -.
    Name {
        /// The meter.
        host: Target,
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
        /// The meter.
        host: Target,
        /// `host`, `host:port`, `[v6]:port` or `-`.
        server: String,
        /// Broker user.
        #[arg(long)]
        user: Option<String>,
        /// Broker password.
        #[arg(long)]
        pwd: Option<String>,
        /// Broker port (default 1883).
        #[arg(long)]
        port: Option<u16>,
    },
    /// The stream server the meter connects out to on port 54322 (`-` disables).
    Stream {
        /// The meter.
        host: Target,
        /// `host`, `host:port`, `[v6]:port` or `-`.
        server: String,
    },
    /// The NTP server (`-` disables).
    TimeServer {
        /// The meter.
        host: Target,
        /// `host`, `host:port`, `[v6]:port` or `-`.
        server: String,
    },
    /// Calibration factors (each 0.5-2.0): six `vL1 iL1 vL2 iL2 vL3 iL3`, or two `v i` for all phases.
    Calibration {
        /// The meter.
        host: Target,
        /// The factors.
        #[arg(num_args = 2..=6, allow_negative_numbers = true)]
        factors: Vec<f32>,
    },
    /// Restart every day at HH:MM (device time), or `off`.
    DailyRestart {
        /// The meter.
        host: Target,
        /// `HH:MM` or `off`.
        at: String,
    },
    /// The log level of this connection (the meter keeps it per connection).
    LogLevel {
        /// The meter.
        host: Target,
        /// The level.
        level: Level,
    },
}

/// `set wifi` actions.
#[derive(Debug, Subcommand)]
pub enum WifiAction {
    /// Add an access point (at most 5).
    Add {
        /// The meter.
        host: Target,
        /// SSID (≤ 32 bytes).
        ssid: String,
        /// Password (≤ 64 bytes; empty for an open network).
        #[arg(default_value = "")]
        pwd: String,
    },
    /// Remove an access point.
    Del {
        /// The meter.
        host: Target,
        /// SSID.
        ssid: String,
    },
}

fn nominal_arg(s: &str) -> Result<u32, String> {
    match s {
        "50" => Ok(50),
        "60" => Ok(60),
        _ => Err("the nominal line frequency is 50 or 60".into()),
    }
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// Everything a subcommand can fail with; `Display` is the one line printed after `smartmeter: error: `.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
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
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Client(e) if e.is_refusal() => 3,
            CliError::Usage(_) | CliError::Collect(super::collect::CollectError::Usage(_)) => 2,
            CliError::DataLoss(_) => 4,
            _ => 1,
        }
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
        Err(e) => {
            std::eprintln!("smartmeter: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

pub(crate) async fn connect(cli: &Cli, host: &Target) -> Result<Client, CliError> {
    let opts = ClientOptions {
        timeout: cli.timeout,
        connect_timeout: cli.timeout,
        baud_rate: cli.baud,
        ..ClientOptions::default()
    };
    Ok(Client::connect_with(host, opts).await?)
}

fn server_arg(s: &str) -> Result<ServerAddr, CliError> {
    ServerAddr::parse(s).map_err(|e| CliError::Usage(std::format!("invalid server `{s}`: {e}")))
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    use output::Out;
    let out = Out::new(cli.json);
    match &cli.command {
        Command::Discover { wait } => {
            let found = super::discover(*wait).await?;
            out.discovered(&found)?;
        }
        Command::Info { host } => {
            let c = connect(&cli, host).await?;
            let r = c.info().await?;
            out.response(&r)?;
        }
        Command::Get { what, host } => {
            let c = connect(&cli, host).await?;
            let cmd = match what {
                Quantity::Power => crate::wire::command::Command::GetPower,
                Quantity::Voltage => crate::wire::command::Command::GetVoltage,
                Quantity::Current => crate::wire::command::Command::GetCurrent,
                Quantity::Energy => crate::wire::command::Command::GetEnergy,
                Quantity::Frequency => crate::wire::command::Command::GetPeriod,
                Quantity::Phase => crate::wire::command::Command::GetPhaseAngle,
            };
            let r = c.request(&cmd).await?;
            out.quantity(*what, &r)?;
        }
        Command::Cmd { host, line } => {
            let c = connect(&cli, host).await?;
            let replies = c.request_raw(line).await?;
            if line.trim_start().starts_with('?') && !cli.json {
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
        Command::Set { what } => {
            let r = set(&cli, what).await?;
            out.confirmation(&r)?;
        }
        Command::Log {
            host,
            follow,
            level,
        } => {
            let c = connect(&cli, host).await?;
            let rows = c.get_log().await?;
            out.log_rows(&rows)?;
            if *follow {
                c.set_log_level((*level).into()).await?;
                let mut notices = c.notices();
                loop {
                    tokio::select! {
                        n = notices.recv() => match n {
                            Ok(super::Notice::Log(line)) => out.log_line(&line)?,
                            Ok(_) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(_) => return Err(ClientError::Closed { reason: None }.into()),
                        },
                        _ = tokio::signal::ctrl_c() => break,
                    }
                }
            }
        }
        Command::Record { .. } => return record::record(&cli).await,
        Command::Watch {
            host,
            interval,
            count,
        } => {
            let c = connect(&cli, host).await?;
            output::watch(&c, &out, *interval, *count).await?;
        }
        Command::Analyze { .. } => return analyze::analyze(&cli),
        Command::Collect(args) => return collect::collect(&cli, args).await,
        Command::Fleet { broker, wait } => {
            let meters = super::fleet_snapshot(broker, *wait).await?;
            out.fleet(&meters)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set(cli: &Cli, what: &SetCommand) -> Result<super::Response, CliError> {
    Ok(match what {
        SetCommand::Name { host, name } => connect(cli, host).await?.set_name(name).await?,
        SetCommand::Wifi { action } => match action {
            WifiAction::Add { host, ssid, pwd } => {
                connect(cli, host).await?.add_wifi(ssid, pwd).await?
            }
            WifiAction::Del { host, ssid } => connect(cli, host).await?.del_wifi(ssid).await?,
        },
        SetCommand::Mqtt {
            host,
            server,
            user,
            pwd,
            port,
        } => {
            let settings = MqttServerSettings {
                server: server_arg(server)?,
                user: user.clone(),
                pwd: pwd.clone(),
                port: *port,
            };
            connect(cli, host).await?.set_mqtt_server(settings).await?
        }
        SetCommand::Stream { host, server } => {
            let s = server_arg(server)?;
            connect(cli, host).await?.set_stream_server(s).await?
        }
        SetCommand::TimeServer { host, server } => {
            let s = server_arg(server)?;
            connect(cli, host).await?.set_time_server(s).await?
        }
        SetCommand::Calibration { host, factors } => {
            let cal = match factors.as_slice() {
                [v, i] => Calibration::Uniform { v: *v, i: *i },
                [a, b, c, d, e, f] => Calibration::Factors([*a, *b, *c, *d, *e, *f]),
                _ => {
                    return Err(CliError::Usage(
                        "give six factors (vL1 iL1 vL2 iL2 vL3 iL3) or two (v i)".into(),
                    ));
                }
            };
            connect(cli, host).await?.set_calibration(cal).await?
        }
        SetCommand::DailyRestart { host, at } => {
            let when = parse_daily(at)?;
            connect(cli, host).await?.set_daily_restart(when).await?
        }
        SetCommand::LogLevel { host, level } => {
            connect(cli, host)
                .await?
                .set_log_level((*level).into())
                .await?
        }
    })
}

fn parse_daily(at: &str) -> Result<DailyRestart, CliError> {
    if matches!(at, "off" | "none" | "-") {
        return Ok(DailyRestart::Disabled);
    }
    let bad = || {
        CliError::Usage(std::format!(
            "invalid time `{at}`: expected HH:MM (24 h) or off"
        ))
    };
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
            matches!(c.command, Command::Get { what: Quantity::Power, host: Target::Tcp { ref host, port: 5000 } } if host == "10.0.0.7")
        );
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
            matches!(c.command, Command::Set { what: SetCommand::Calibration { ref factors, .. } } if factors == &[1.0, 0.98])
        );
        let c = Cli::try_parse_from(["smartmeter", "--json", "cmd", "h", "{\"cmd\":\"info\"}"])
            .unwrap();
        assert!(matches!(c.command, Command::Cmd { ref line, .. } if line == "{\"cmd\":\"info\"}"));
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
}
