//! The simulator's command line. Every value is checked here, so a bad option is a usage error
//! (exit status 2, clap's message naming the option) before anything is bound or written.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::sim::grid::disturbance::{
    Flicker, VoltageDisturbance, VoltageHarmonic, parse_dip, parse_flicker, parse_interrupt,
    parse_swell, parse_vharmonic,
};

/// Errors of the option values that clap cannot check by type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArgsError {
    /// A per-phase list did not hold exactly three numbers.
    #[error("invalid {field}: expected three comma-separated numbers, got `{value}`")]
    PerPhase {
        /// The option name.
        field: &'static str,
        /// What was given.
        value: String,
    },
    /// `--harmonic` was not `K:REL` with an order 2..=50 and a finite, non-negative amplitude.
    #[error("invalid harmonic: expected K:REL with K in 2..=50 and REL >= 0, got `{0}`")]
    Harmonic(String),
    /// `--mqtt` was not `HOST[:PORT]`.
    #[error("invalid mqtt: expected HOST[:PORT], got `{0}`")]
    Server(String),
    /// An interval was not a positive number of seconds.
    #[error("invalid interval: expected seconds > 0, got `{0}`")]
    Interval(String),
    /// A number outside its range (or not a finite number).
    #[error("invalid {field}: expected {expected}, got `{value}`")]
    Range {
        /// The option name.
        field: &'static str,
        /// The accepted range, in words.
        expected: &'static str,
        /// What was given.
        value: String,
    },
    /// `--name` is not a valid mDNS name.
    #[error(
        "invalid name: expected 1-24 characters of A-Z a-z 0-9 - (an mDNS host label), got `{0}`"
    )]
    Name(String),
    /// `--token` is longer than the protocol allows.
    #[error("invalid token: at most 64 bytes")]
    Token,
    /// `--state` names an existing file.
    #[error("invalid state directory `{0}`: it exists and is not a directory")]
    StateNotDir(String),
}

/// Line frequencies the simulated grid can have, Hz (50/60 Hz grids with a wide margin; the
/// metering windows lock onto 0.5-2× the nominal frequency).
pub const FREQUENCY_RANGE_HZ: core::ops::RangeInclusive<f32> = 40.0..=70.0;
/// RMS voltages the simulated grid can have, V (0 simulates an outage).
pub const VOLTAGE_RANGE_V: core::ops::RangeInclusive<f32> = 0.0..=1000.0;
/// Command connections the simulator can be asked to serve at once.
pub const MAX_CLIENTS_RANGE: core::ops::RangeInclusive<usize> = 1..=1024;

/// Three per-phase values `[L1, L2, L3]`.
pub type PerPhase = [f32; 3];

/// One current harmonic on top of the fundamental.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurrentHarmonic {
    /// Harmonic order (2 = twice the line frequency).
    pub order: u32,
    /// Amplitude relative to the fundamental current.
    pub rel: f32,
}

/// A `HOST[:PORT]` server address (`[v6]:port` too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or address literal (without brackets).
    pub host: String,
    /// Port; `None` = the service's default.
    pub port: Option<u16>,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => write!(f, "{host}:{p}"),
            None => write!(f, "{host}"),
        }
    }
}

/// `smartmeter-sim`: a virtual 3-phase SmartMeter on real sockets, fed by a synthetic grid.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "smartmeter-sim",
    version,
    about = "A virtual 3-phase SmartMeter on real sockets (TCP, UDP, MQTT, mDNS, a serial pty), fed by a synthetic grid.",
    after_help = "Grid disturbances: every AT counts from the moment the simulator prints its `listening on` \
line; durations read 4s, 100ms, 1.5s, 2m (a bare number is seconds). Levels switch at a sample instant \
(rectangular, as the IEC 61000-4-11/-4-15 test signals); where events overlap on a phase the later \
one applies (at equal starts: interruption over swell over dip); flicker modulates whatever level is \
in force; currents stay as set. Example: --voltage 230 --vharmonic 5:0.05 --dip 4s:100ms:0.6:1 \
--swell 8s:200ms:1.15 --interrupt 12s:1s --flicker 1620:0.407",
    max_term_width = 100
)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Command port (0 = any free port; the real one is printed).
    #[arg(long, default_value_t = 54321)]
    pub port: u16,
    /// Raw stream port (0 = any free port; the real one is printed).
    #[arg(long = "stream-port", default_value_t = 54322)]
    pub stream_port: u16,
    /// Most command connections served at once (1-1024).
    #[arg(long = "max-clients", default_value_t = 8, allow_hyphen_values = true,
          value_parser = parse_max_clients)]
    pub max_clients: usize,
    /// Device name (overrides and replaces the stored name): 1-24 of A-Z a-z 0-9 -.
    #[arg(long, value_parser = parse_name)]
    pub name: Option<String>,
    /// Directory of the persistent state (created if missing; its files are owner-only).
    #[arg(long, default_value = "./smartmeter-state", value_parser = parse_state)]
    pub state: PathBuf,
    /// RMS line-to-neutral voltage in volts, 0-1000: V for all phases, or V1,V2,V3 (the phases stay
    /// 120° apart).
    #[arg(long = "voltage", value_name = "V|V1,V2,V3", default_value = "230", allow_hyphen_values = true,
          value_parser = parse_voltage)]
    pub voltage_v: PerPhase,
    /// Line frequency in hertz, 40-70 (50 and 60 Hz grids).
    #[arg(long = "frequency", default_value_t = 50.0, allow_hyphen_values = true,
          value_parser = parse_frequency)]
    pub frequency_hz: f32,
    /// RMS amps of the fundamental current per phase: A1,A2,A3.
    #[arg(long = "current", default_value = "5,3,1", value_parser = parse_current)]
    pub current_a: PerPhase,
    /// Angle by which each phase's fundamental current lags its voltage, degrees: D1,D2,D3.
    #[arg(long = "phase-deg", default_value = "0,30,-20", allow_hyphen_values = true,
          value_parser = parse_phase)]
    pub phase_deg: PerPhase,
    /// Current harmonic K with amplitude REL of the fundamental (repeatable): K:REL.
    #[arg(long = "harmonic", value_parser = parse_harmonic)]
    pub harmonics: Vec<CurrentHarmonic>,
    /// Voltage harmonic K (2-50) with amplitude REL (0-1) of the fundamental voltage, on every phase
    /// (repeatable; repeats of one order add up): K:REL.
    #[arg(long = "vharmonic", value_name = "K:REL", value_parser = parse_vharmonic, help_heading = "Grid disturbances")]
    pub vharmonics: Vec<VoltageHarmonic>,
    /// Voltage dip AT after `listening on`, lasting DURATION, to RESIDUAL (0-1) of --voltage, on
    /// PHASES (default all; e.g. 1 or 1,3) (repeatable), e.g.
    /// 4s:100ms:0.6:1.
    #[arg(long = "dip", value_name = "AT:DURATION:RESIDUAL[:PHASES]", value_parser = parse_dip, help_heading = "Grid disturbances")]
    pub dips: Vec<VoltageDisturbance>,
    /// Voltage swell to LEVEL (1-2) of --voltage (repeatable), e.g.
    /// 10s:200ms:1.2:3.
    #[arg(long = "swell", value_name = "AT:DURATION:LEVEL[:PHASES]", value_parser = parse_swell, help_heading = "Grid disturbances")]
    pub swells: Vec<VoltageDisturbance>,
    /// Interruption: all phases to 1 % of --voltage (repeatable): AT:DURATION, e.g. 20s:2s.
    #[arg(long = "interrupt", value_name = "AT:DURATION", value_parser = parse_interrupt, help_heading = "Grid disturbances")]
    pub interrupts: Vec<VoltageDisturbance>,
    /// Flicker: rectangular amplitude modulation of all phases, CPM changes per minute (> 0, at
    /// most 6000), ΔV/V = DVV % (0-50) between the two levels (IEC 61000-4-15's test signal):
    /// CPM:DVV, e.g. 1620:0.407 (Pst = 1 at 230 V/50 Hz).
    #[arg(long = "flicker", value_name = "CPM:DVV", value_parser = parse_flicker, help_heading = "Grid disturbances")]
    pub flicker: Option<Flicker>,
    /// Gaussian noise, relative to the amplitudes (seeded), 0-1.
    #[arg(long = "noise", default_value_t = 0.0, allow_hyphen_values = true,
          value_parser = parse_noise)]
    pub noise_rel: f32,
    /// Seed of the noise generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// MQTT broker HOST[:PORT] (overrides the stored server).
    // The text is also the `--help` line, so `[:PORT]` stays as it reads there, not as a link.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, value_parser = parse_host_port)]
    pub mqtt: Option<HostPort>,
    /// Announce `<name>.local` and `_elec._tcp` over mDNS.
    #[arg(long)]
    pub mdns: bool,
    /// Open a pseudo-terminal that speaks the serial variant and print its path.
    #[arg(long)]
    pub serial: bool,
    /// Access token (at most 64 bytes). While one is set, commands that change settings are refused
    /// ("Authentication required") until the connection sends {"cmd":"auth","token":TOKEN}; reading
    /// (info, get*, sampling) stays open. Also read from SMARTMETER_TOKEN (--token wins), so it need
    /// not show in the process list. The token is stored with the settings: a later start without
    /// --token keeps it; --token '' (or SMARTMETER_TOKEN=) removes it.
    #[arg(long, env = "SMARTMETER_TOKEN", hide_env_values = true, value_parser = parse_token)]
    pub token: Option<String>,
    /// Seconds between MQTT status messages.
    #[arg(long = "status-interval", default_value = "5", value_parser = parse_secs)]
    pub status_interval: Duration,
    /// Seconds between energy persists.
    #[arg(long = "persist-interval", default_value = "10", value_parser = parse_secs)]
    pub persist_interval: Duration,
    /// Seconds between stream-server / MQTT reconnect attempts.
    #[arg(long = "reconnect-interval", default_value = "30", value_parser = parse_secs)]
    pub reconnect_interval: Duration,
    /// Seconds without a complete line after which a client may be evicted for a newcomer
    /// (docs/protocol.md §1: 60; for tests).
    #[arg(long = "idle-timeout", default_value = "60", value_parser = parse_secs, hide = true)]
    pub idle_timeout: Duration,
}

fn parse_three(field: &'static str, s: &str) -> Result<PerPhase, ArgsError> {
    let err = || ArgsError::PerPhase {
        field,
        value: s.to_string(),
    };
    let mut out = [0.0f32; 3];
    let mut parts = s.split(',');
    for slot in &mut out {
        let v: f32 = parts
            .next()
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(err)?;
        if !v.is_finite() {
            return Err(err());
        }
        *slot = v;
    }
    if parts.next().is_some() {
        return Err(err());
    }
    Ok(out)
}

/// Parses `--current A1,A2,A3` (non-negative amps).
pub fn parse_current(s: &str) -> Result<PerPhase, ArgsError> {
    let v = parse_three("current", s)?;
    if v.iter().any(|a| *a < 0.0) {
        return Err(ArgsError::PerPhase {
            field: "current",
            value: s.to_string(),
        });
    }
    Ok(v)
}

/// Parses `--phase-deg D1,D2,D3`.
pub fn parse_phase(s: &str) -> Result<PerPhase, ArgsError> {
    parse_three("phase-deg", s)
}

/// Parses `--harmonic K:REL`.
pub fn parse_harmonic(s: &str) -> Result<CurrentHarmonic, ArgsError> {
    let err = || ArgsError::Harmonic(s.to_string());
    let (k, rel) = s.split_once(':').ok_or_else(err)?;
    let order: u32 = k.trim().parse().map_err(|_| err())?;
    let rel: f32 = rel.trim().parse().map_err(|_| err())?;
    if !(2..=50).contains(&order) || !rel.is_finite() || rel < 0.0 {
        return Err(err());
    }
    Ok(CurrentHarmonic { order, rel })
}

/// Parses `HOST`, `HOST:PORT` or `[V6]:PORT`.
pub fn parse_host_port(s: &str) -> Result<HostPort, ArgsError> {
    let err = || ArgsError::Server(s.to_string());
    let s = s.trim();
    if s.is_empty() {
        return Err(err());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').ok_or_else(err)?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| err())?),
            None if tail.is_empty() => None,
            None => return Err(err()),
        };
        return Ok(HostPort {
            host: host.to_string(),
            port,
        });
    }
    match s.split_once(':') {
        // A bare IPv6 literal has several colons: no port.
        Some((_, tail)) if tail.contains(':') => Ok(HostPort {
            host: s.to_string(),
            port: None,
        }),
        Some((host, port)) if !host.is_empty() => Ok(HostPort {
            host: host.to_string(),
            port: Some(port.parse().map_err(|_| err())?),
        }),
        Some(_) => Err(err()),
        None => Ok(HostPort {
            host: s.to_string(),
            port: None,
        }),
    }
}

fn finite(field: &'static str, expected: &'static str, s: &str) -> Result<f32, ArgsError> {
    let err = || ArgsError::Range {
        field,
        expected,
        value: s.to_string(),
    };
    let v: f32 = s.trim().parse().map_err(|_| err())?;
    if v.is_finite() { Ok(v) } else { Err(err()) }
}

fn in_range(
    field: &'static str,
    expected: &'static str,
    range: core::ops::RangeInclusive<f32>,
    s: &str,
) -> Result<f32, ArgsError> {
    let v = finite(field, expected, s)?;
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(ArgsError::Range {
            field,
            expected,
            value: s.to_string(),
        })
    }
}

/// Parses `--voltage`: one value for all phases or `V1,V2,V3` (each finite, 0-1000 V).
pub fn parse_voltage(s: &str) -> Result<PerPhase, ArgsError> {
    const EXPECTED: &str = "0-1000 V, one value or V1,V2,V3";
    let parts: Vec<&str> = s.split(',').collect();
    match parts.as_slice() {
        [v] => Ok([in_range("voltage", EXPECTED, VOLTAGE_RANGE_V, v)?; 3]),
        [a, b, c] => Ok([
            in_range("voltage", EXPECTED, VOLTAGE_RANGE_V, a)?,
            in_range("voltage", EXPECTED, VOLTAGE_RANGE_V, b)?,
            in_range("voltage", EXPECTED, VOLTAGE_RANGE_V, c)?,
        ]),
        _ => Err(ArgsError::Range {
            field: "voltage",
            expected: EXPECTED,
            value: s.to_string(),
        }),
    }
}

/// Parses `--frequency` (40-70 Hz).
pub fn parse_frequency(s: &str) -> Result<f32, ArgsError> {
    in_range("frequency", "40-70 Hz", FREQUENCY_RANGE_HZ, s)
}

/// Parses `--noise` (0-1, relative).
pub fn parse_noise(s: &str) -> Result<f32, ArgsError> {
    in_range("noise", "a relative level 0-1", 0.0..=1.0, s)
}

/// Parses `--max-clients` (1-1024).
pub fn parse_max_clients(s: &str) -> Result<usize, ArgsError> {
    let err = || ArgsError::Range {
        field: "max-clients",
        expected: "1-1024",
        value: s.to_string(),
    };
    let n: usize = s.trim().parse().map_err(|_| err())?;
    if MAX_CLIENTS_RANGE.contains(&n) {
        Ok(n)
    } else {
        Err(err())
    }
}

/// Parses `--name` (the mDNS name rule: 1-24 of `[A-Za-z0-9-]`).
pub fn parse_name(s: &str) -> Result<String, ArgsError> {
    if crate::wire::command::is_valid_mdns_name(s) {
        Ok(s.to_string())
    } else {
        Err(ArgsError::Name(s.to_string()))
    }
}

/// Parses `--token` (at most 64 bytes; empty = remove the stored token).
pub fn parse_token(s: &str) -> Result<String, ArgsError> {
    if s.len() > crate::wire::command::MAX_TOKEN_BYTES {
        return Err(ArgsError::Token);
    }
    Ok(s.to_string())
}

/// Parses `--state`: any path but an existing non-directory.
pub fn parse_state(s: &str) -> Result<PathBuf, ArgsError> {
    let p = PathBuf::from(s);
    match std::fs::metadata(&p) {
        Ok(m) if !m.is_dir() => Err(ArgsError::StateNotDir(s.to_string())),
        _ => Ok(p),
    }
}

/// Parses a positive number of seconds (fractions allowed).
pub fn parse_secs(s: &str) -> Result<Duration, ArgsError> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| ArgsError::Interval(s.to_string()))?;
    if !v.is_finite() || v <= 0.0 || v > 1e9 {
        return Err(ArgsError::Interval(s.to_string()));
    }
    Ok(Duration::from_secs_f64(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_issue() {
        let a = Args::try_parse_from(["smartmeter-sim"]).unwrap();
        assert_eq!(a.bind.to_string(), "127.0.0.1");
        assert_eq!((a.port, a.stream_port, a.max_clients), (54321, 54322, 8));
        assert_eq!(a.state, PathBuf::from("./smartmeter-state"));
        assert_eq!((a.voltage_v, a.frequency_hz), ([230.0; 3], 50.0));
        assert!(a.vharmonics.is_empty() && a.dips.is_empty() && a.swells.is_empty());
        assert!(a.interrupts.is_empty() && a.flicker.is_none());
        assert_eq!(a.current_a, [5.0, 3.0, 1.0]);
        assert_eq!(a.phase_deg, [0.0, 30.0, -20.0]);
        assert!(a.harmonics.is_empty());
        assert_eq!((a.noise_rel, a.seed), (0.0, 0));
        assert!(a.mqtt.is_none() && !a.mdns && !a.serial && a.token.is_none() && a.name.is_none());
        assert_eq!(a.status_interval, Duration::from_secs(5));
        assert_eq!(a.persist_interval, Duration::from_secs(10));
        assert_eq!(a.reconnect_interval, Duration::from_secs(30));
    }

    #[test]
    fn every_option_parses() {
        let a = Args::try_parse_from([
            "smartmeter-sim",
            "--bind",
            "0.0.0.0",
            "--port",
            "1",
            "--stream-port",
            "2",
            "--max-clients",
            "60",
            "--name",
            "m1",
            "--state",
            "/tmp/x",
            "--voltage",
            "120",
            "--frequency",
            "49.83",
            "--current",
            "1,2,3",
            "--phase-deg",
            "-10,0,45",
            "--harmonic",
            "3:0.2",
            "--harmonic",
            "5:0.1",
            "--vharmonic",
            "5:0.06",
            "--dip",
            "4s:100ms:0.6:1,2",
            "--dip",
            "1m:1.5s:0",
            "--swell",
            "10s:200ms:1.2",
            "--interrupt",
            "20s:2s",
            "--flicker",
            "1620:0.407",
            "--noise",
            "0.001",
            "--seed",
            "7",
            "--mqtt",
            "[::1]:1884",
            "--mdns",
            "--serial",
            "--token",
            "t",
            "--status-interval",
            "1",
            "--persist-interval",
            "0.5",
            "--reconnect-interval",
            "1",
        ])
        .unwrap();
        assert_eq!(a.phase_deg, [-10.0, 0.0, 45.0]);
        assert_eq!(a.voltage_v, [120.0; 3]);
        assert_eq!(a.vharmonics.len(), 1);
        assert_eq!(a.dips.len(), 2);
        assert_eq!(a.dips[1].at, Duration::from_secs(60));
        assert_eq!((a.swells.len(), a.interrupts.len()), (1, 1));
        assert_eq!(a.flicker.map(|f| f.cpm), Some(1620.0));
        assert_eq!(
            a.harmonics,
            vec![
                CurrentHarmonic { order: 3, rel: 0.2 },
                CurrentHarmonic { order: 5, rel: 0.1 }
            ]
        );
        assert_eq!(
            a.mqtt,
            Some(HostPort {
                host: "::1".into(),
                port: Some(1884)
            })
        );
        assert_eq!(a.persist_interval, Duration::from_millis(500));
        assert!(a.mdns && a.serial);
    }

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        assert!(
            parse_current("1,2")
                .unwrap_err()
                .to_string()
                .contains("current")
        );
        assert!(parse_current("1,2,3,4").is_err());
        assert!(parse_current("1,-2,3").is_err());
        assert!(parse_harmonic("1:0.2").is_err());
        assert!(parse_harmonic("3").is_err());
        assert!(parse_harmonic("3:nan").is_err());
        assert!(parse_host_port("").is_err());
        assert!(parse_host_port("h:x").is_err());
        assert_eq!(parse_host_port("h").unwrap().port, None);
        assert_eq!(parse_host_port("h:1").unwrap().to_string(), "h:1");
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-1").is_err());
        assert_eq!(parse_voltage("230").unwrap(), [230.0; 3]);
        assert_eq!(parse_voltage("230,220,0").unwrap(), [230.0, 220.0, 0.0]);
        for bad in [
            "230,220",
            "230,220,240,1",
            "230,,240",
            "230,nan,240",
            "-1",
            "1001,1,1",
            "",
        ] {
            let e = parse_voltage(bad).unwrap_err().to_string();
            assert!(e.contains("voltage: expected 0-1000 V"), "{bad}: {e}");
        }
    }

    #[test]
    fn flicker_is_given_once_and_disturbances_are_usage_errors() {
        use clap::error::ErrorKind;
        let e = Args::try_parse_from([
            "smartmeter-sim",
            "--flicker",
            "110:0.7",
            "--flicker",
            "7:1.4",
        ])
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
        assert_eq!(e.exit_code(), 2);
        let e = Args::try_parse_from(["smartmeter-sim", "--dip", "4s:100ms:1.5:1"]).unwrap_err();
        assert_eq!((e.kind(), e.exit_code()), (ErrorKind::ValueValidation, 2));
        assert!(e.to_string().contains("dip residual: expected 0-1"), "{e}");
    }
}
