//! One function per subcommand that talks to a meter, and the dispatch of a parsed command line.

use std::format;
use std::process::ExitCode;
use std::string::ToString;

use super::args::{Cli, CliCommand, Level, MeterArgs, SetCommand, WifiAction};
use super::error::CliError;
use super::{analyze, collect, output, pq, record, signal};
use crate::client::{ClientError, Notice, Response};
use crate::wire::command::{
    CalibrationArgs, Command as WireCommand, CommandError, DailyRestart, MqttServerSettings,
    ServerAddr, WifiCredentials,
};

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
        CliCommand::Discover { wait, .. } => {
            let found = crate::client::discover(*wait).await?;
            out.discovered(&found)?;
        }
        CliCommand::Info { meter, .. } => {
            let c = meter.connect().await?;
            let r = c.info().await?;
            out.response(&r)?;
        }
        CliCommand::Get { what, meter, .. } => {
            let c = meter.connect().await?;
            let r = c.request(&what.command()).await?;
            out.quantity(*what, &r)?;
        }
        CliCommand::Cmd { meter, line, .. } => {
            let line = line.trim();
            check_raw_line(line)?;
            let c = meter.connect().await?;
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
        CliCommand::Set { what, .. } => {
            let r = set(what).await?;
            out.confirmation(&r)?;
        }
        CliCommand::Log {
            meter,
            follow,
            level,
            ..
        } => return log(meter, *follow, *level, &out).await,
        CliCommand::Record { .. } => return record::record(&cli, &out).await,
        CliCommand::Watch {
            meter,
            interval,
            count,
            ..
        } => {
            let mut signals = signal::Signals::install()?;
            let c = meter.connect().await?;
            output::watch(&c, &out, *interval, *count, &mut signals).await?;
        }
        CliCommand::Pq {
            meter, interval, ..
        } => return pq::pq(meter, *interval, &out).await,
        CliCommand::Events {
            meter,
            since,
            follow,
            ..
        } => return pq::events(meter, *since, *follow, &out).await,
        CliCommand::Analyze { .. } => return analyze::analyze(&cli, &out),
        CliCommand::Collect(args) => return collect::collect(cli.json, args).await,
        CliCommand::Fleet {
            broker, tls, wait, ..
        } => {
            let addr = crate::client::BrokerAddr::parse(broker).map_err(|e| match e {
                crate::client::ClientError::Mqtt { reason, .. } => {
                    CliError::Usage(format!("invalid broker `{broker}`: {reason}"))
                }
                other => CliError::from(other),
            })?;
            let meters = crate::client::fleet_snapshot(&addr, &tls.files(), *wait).await?;
            out.fleet(&meters)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `log`: the persistent log, then with `--follow` the live lines until Ctrl-C / SIGTERM (exit 0)
/// or until the connection is lost (exit 1, "connection lost").
async fn log(
    meter: &MeterArgs,
    follow: bool,
    level: Level,
    out: &output::Out,
) -> Result<ExitCode, CliError> {
    let mut signals = if follow {
        Some(signal::Signals::install()?)
    } else {
        None
    };
    let c = meter.connect().await?;
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
                Ok(Notice::Log(line)) if !line.text.is_empty() => out.log_line(&line)?,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Err(lost(c.closed().await)),
            },
            _ = signals.recv() => return Ok(ExitCode::SUCCESS),
        }
    }
}

async fn set(what: &SetCommand) -> Result<Response, CliError> {
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
                [v, i] => CalibrationArgs::Uniform { v: *v, i: *i },
                [a, b, c, d, e, f] => CalibrationArgs::Factors([*a, *b, *c, *d, *e, *f]),
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
    let c = meter.connect().await?;
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
