//! The client's error type: one enum, each variant a situation a person can act on.

use std::string::{String, ToString};
use std::time::Duration;

/// Everything that can go wrong talking to a meter.
///
/// The `Display` text is one line meant for a person (the CLI prints it as is); the variants let a
/// program react (retry on [`ClientError::Timeout`], stop the session on [`ClientError::Busy`], ...).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The `HOST` argument is not `host[:port]`, `[v6]:port` or a serial device path.
    #[error("invalid host `{host}`: {reason}")]
    InvalidHost {
        /// What was given.
        host: String,
        /// What was expected.
        reason: &'static str,
    },
    /// A name could be resolved neither by DNS nor by mDNS.
    #[error("cannot resolve `{host}`: {reason}")]
    Resolve {
        /// The name that was looked up.
        host: String,
        /// Why it failed.
        reason: String,
    },
    /// The TCP connection (or the serial device) could not be opened.
    #[error("cannot reach {addr}: {source}")]
    Connect {
        /// The address or device path.
        addr: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Reading or writing the connection failed after it was established.
    #[error("connection to the meter failed: {0}")]
    Io(#[from] std::io::Error),
    /// The meter closed the connection (restart, too many clients, network loss).
    #[error("the meter closed the connection{}", reason.as_deref().map(|r| std::format!(" ({r})")).unwrap_or_default())]
    Closed {
        /// The last `Info:` text or error the meter sent before closing, if any.
        reason: Option<String>,
    },
    /// The meter stopped answering (no byte within the liveness time and the probe's timeout): it
    /// lost power or network, while the socket itself reported nothing.
    #[error("connection lost: {reason}")]
    ConnectionLost {
        /// What was observed.
        reason: String,
    },
    /// No answer within the request timeout.
    #[error("no reply to `{what}` within {after:?}")]
    Timeout {
        /// The command (or step) that timed out.
        what: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The meter answered `"error":true`; `msg` is the meter's own text.
    #[error("the meter refused `{cmd}`: {msg}")]
    Refused {
        /// The refused command.
        cmd: String,
        /// The meter's `msg`.
        msg: String,
    },
    /// The meter refused because a sampling session is running (`"state":"busy"`).
    #[error(
        "the meter is busy sampling and refused `{cmd}` (stop the session with `{{\"cmd\":\"stop\"}}`)"
    )]
    Busy {
        /// The refused command.
        cmd: String,
    },
    /// The meter sent something that is not the protocol (a reply that is not JSON, a frame whose
    /// length does not fit the session's channel count, ...).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The command to send is not valid (raw `cmd` text that is not a JSON object, a line too long).
    #[error("invalid command: {0}")]
    InvalidCommand(String),
    /// mDNS discovery failed to start.
    #[error("mDNS: {0}")]
    Mdns(String),
    /// The MQTT broker could not be reached or dropped the connection.
    #[error("MQTT broker {broker}: {reason}")]
    Mqtt {
        /// `host:port` of the broker.
        broker: String,
        /// Why.
        reason: String,
    },
}

impl ClientError {
    /// True when the meter itself said no (refused command or busy); false for transport problems.
    pub fn is_refusal(&self) -> bool {
        matches!(self, ClientError::Refused { .. } | ClientError::Busy { .. })
    }
}

impl ClientError {
    /// The same error again, for telling everyone who waits (an I/O error keeps its kind and
    /// text, not its source chain).
    pub(crate) fn duplicate(&self) -> ClientError {
        use ClientError as E;
        match self {
            E::InvalidHost { host, reason } => E::InvalidHost {
                host: host.clone(),
                reason,
            },
            E::Resolve { host, reason } => E::Resolve {
                host: host.clone(),
                reason: reason.clone(),
            },
            E::Connect { addr, source } => E::Connect {
                addr: addr.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            E::Io(e) => E::Io(std::io::Error::new(e.kind(), e.to_string())),
            E::Closed { reason } => E::Closed {
                reason: reason.clone(),
            },
            E::ConnectionLost { reason } => E::ConnectionLost {
                reason: reason.clone(),
            },
            E::Timeout { what, after } => E::Timeout {
                what: what.clone(),
                after: *after,
            },
            E::Refused { cmd, msg } => E::Refused {
                cmd: cmd.clone(),
                msg: msg.clone(),
            },
            E::Busy { cmd } => E::Busy { cmd: cmd.clone() },
            E::Protocol(m) => E::Protocol(m.clone()),
            E::InvalidCommand(m) => E::InvalidCommand(m.clone()),
            E::Mdns(m) => E::Mdns(m.clone()),
            E::Mqtt { broker, reason } => E::Mqtt {
                broker: broker.clone(),
                reason: reason.clone(),
            },
        }
    }
}
