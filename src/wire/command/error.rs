//! [`CommandError`]: why a command line was refused, with the protocol's exact texts.

use alloc::string::String;

use super::server::ServerKind;

/// Why a command line was refused. `Display` is the exact `msg` of the error reply (docs/protocol.md §1,
/// §2, §5) and [`CommandError::cmd`] the `cmd` it echoes, so the engine builds the reply as
/// `{"error":true[,"cmd":cmd],"msg":<Display>}` in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The line exceeds [`MAX_LINE_BYTES`](super::MAX_LINE_BYTES).
    #[error("Line too long (max 600 bytes)")]
    LineTooLong,
    /// The line is empty or only whitespace (the engine may ignore it instead of replying).
    #[error("JSON format error, syntax: {{\"cmd\":<cmdName>, \"[payload\":{{<data>}}]}}}}")]
    Empty,
    /// Not JSON, not an object, a duplicate key, or no string `cmd`.
    #[error("JSON format error, syntax: {{\"cmd\":<cmdName>, \"[payload\":{{<data>}}]}}}}")]
    Json,
    /// `cmd` names no known command.
    #[error("unknown command")]
    UnknownCommand {
        /// The name as sent.
        cmd: String,
    },
    /// `sample` without `type`.
    #[error("Not a valid \"sample\" command, \"type\" missing")]
    SampleTypeMissing,
    /// `sample` with an unknown `type`.
    #[error("Unsupported sampling type: {value}")]
    UnsupportedType {
        /// The type as sent.
        value: String,
    },
    /// `sample` with unknown `measures`.
    #[error("Unsupported measures: {value}")]
    UnsupportedMeasures {
        /// The measures as sent.
        value: String,
    },
    /// `sample` with a `rate` that is not an integer in range (1..=32000, ≤ 50 for derived measures).
    #[error("SamplingRate could not be set to {value}")]
    SamplingRate {
        /// The rate as sent.
        value: String,
    },
    /// `sample` of type UDP with a `port` outside 1..=65535.
    #[error("Unsupported UDP port: {value}")]
    UdpPort {
        /// The port as sent.
        value: String,
    },
    /// `sample` with a `slot` that is not `[s,n]`, `0 <= s < n`.
    #[error("Invalid slot")]
    Slot,
    /// `reqSamples` with `samples` missing or outside 10..=2000.
    #[error("Samples must be 10-2000")]
    Samples,
    /// `mdns` with a missing or invalid name.
    #[error("MDNS name must be 1-24 characters [A-Za-z0-9-]")]
    MdnsName,
    /// `addWifi`/`delWifi` with an SSID over 32 or a password over 64 bytes.
    #[error("SSID or password too long (max 32, 64)")]
    WifiTooLong {
        /// `addWifi` or `delWifi`.
        cmd: &'static str,
    },
    /// `calibration` with a factor outside [0.5, 2.0] (`calV` is index 0, `calI` index 1).
    #[error("Calibration parameter cal[{index}]: {value} not allowed [0.5-2.0]")]
    CalibrationFactor {
        /// Position in `cal`.
        index: usize,
        /// The factor as sent.
        value: String,
    },
    /// `log` without `level`.
    #[error("Not a valid Log level cmd, level missing")]
    LogLevelMissing,
    /// `log` with an unknown level.
    #[error("Unknown log level: {value}")]
    UnknownLogLevel {
        /// The level as sent.
        value: String,
    },
    /// `dailyRestart` without `hour` or `minute`.
    #[error("Missing hour/minute")]
    MissingHourMinute,
    /// `dailyRestart` with an hour outside -1..=23.
    #[error("Hour must be in 24h format, -1 to disable")]
    Hour,
    /// `dailyRestart` with a minute outside -1..=59.
    #[error("Minute must be -1<min<60, -1 to disable")]
    Minute,
    /// `…Server` without `payload.server`.
    #[error("{kind} address required in payload with key server")]
    ServerMissing {
        /// Which server.
        kind: ServerKind,
    },
    /// Any other invalid field: `Invalid <field>: <reason>`.
    #[error("Invalid {field}: {reason}")]
    Invalid {
        /// The command.
        cmd: &'static str,
        /// The wire key, e.g. `flowCtr`.
        field: &'static str,
        /// What was expected, e.g. `expected true or false`.
        reason: &'static str,
    },
}

impl CommandError {
    /// The `cmd` the error reply echoes; `None` when the line had no usable command name.
    pub fn cmd(&self) -> Option<&str> {
        Some(match self {
            CommandError::LineTooLong | CommandError::Empty | CommandError::Json => return None,
            CommandError::UnknownCommand { cmd } => cmd,
            CommandError::SampleTypeMissing
            | CommandError::UnsupportedType { .. }
            | CommandError::UnsupportedMeasures { .. }
            | CommandError::SamplingRate { .. }
            | CommandError::UdpPort { .. }
            | CommandError::Slot => "sample",
            CommandError::Samples => "reqSamples",
            CommandError::MdnsName => "mdns",
            CommandError::WifiTooLong { cmd } | CommandError::Invalid { cmd, .. } => cmd,
            CommandError::CalibrationFactor { .. } => "calibration",
            CommandError::LogLevelMissing | CommandError::UnknownLogLevel { .. } => "log",
            CommandError::MissingHourMinute | CommandError::Hour | CommandError::Minute => {
                "dailyRestart"
            }
            CommandError::ServerMissing { kind } => kind.cmd(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn json_error_text() {
        assert_eq!(
            CommandError::Json.to_string(),
            r#"JSON format error, syntax: {"cmd":<cmdName>, "[payload":{<data>}]}}"#
        );
    }
}
