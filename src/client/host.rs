//! `HOST` arguments: `host[:port]`, `[v6]:port`, a bare IPv6 literal, or a serial device path.

use std::path::PathBuf;
use std::string::{String, ToString};

use super::error::ClientError;

/// The meter's TCP command port.
pub const DEFAULT_PORT: u16 = 54321;
/// The raw-stream port (section 6).
pub const STREAM_PORT: u16 = 54322;
/// The default UDP data port.
pub const DEFAULT_UDP_PORT: u16 = 54323;

/// Where a meter is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A TCP endpoint; `host` is an IP literal, a DNS name or a meter name resolved by mDNS.
    Tcp {
        /// Address or name, without brackets.
        host: String,
        /// Port, [`DEFAULT_PORT`] unless given.
        port: u16,
    },
    /// A serial device (`/dev/ttyUSB0`, `COM3`).
    Serial {
        /// The device path.
        path: PathBuf,
    },
}

impl Target {
    /// Parses a `HOST` argument.
    ///
    /// Accepted: `10.0.0.7`, `10.0.0.7:5000`, `meter.local`, `kitchen`, `[fe80::1]:54321`,
    /// `fe80::1` (a bare IPv6 literal takes the default port), `/dev/ttyACM0`, `COM3`.
    ///
    /// ```
    /// use smartmeter::client::Target;
    /// assert_eq!(
    ///     Target::parse("kitchen:5000").unwrap(),
    ///     Target::Tcp { host: "kitchen".into(), port: 5000 }
    /// );
    /// ```
    pub fn parse(s: &str) -> Result<Target, ClientError> {
        let s = s.trim();
        let invalid = |reason| ClientError::InvalidHost {
            host: s.to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(invalid("empty"));
        }
        if s.starts_with('/') || is_com_port(s) {
            return Ok(Target::Serial { path: s.into() });
        }
        if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or(invalid("missing `]`"))?;
            let port = match after {
                "" => DEFAULT_PORT,
                p => parse_port(
                    p.strip_prefix(':')
                        .ok_or(invalid("expected `:port` after `]`"))?,
                )
                .ok_or(invalid("port must be 1-65535"))?,
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(invalid("not an IPv6 address inside `[]`"));
            }
            return Ok(Target::Tcp {
                host: host.to_string(),
                port,
            });
        }
        if s.matches(':').count() > 1 {
            if s.parse::<std::net::Ipv6Addr>().is_ok() {
                return Ok(Target::Tcp {
                    host: s.to_string(),
                    port: DEFAULT_PORT,
                });
            }
            return Err(invalid("write IPv6 addresses as `[addr]:port`"));
        }
        let (host, port) = match s.split_once(':') {
            Some((h, p)) => (h, parse_port(p).ok_or(invalid("port must be 1-65535"))?),
            None => (s, DEFAULT_PORT),
        };
        if host.is_empty() {
            return Err(invalid("empty host name"));
        }
        if host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(invalid("host names have no spaces or slashes"));
        }
        Ok(Target::Tcp {
            host: host.to_string(),
            port,
        })
    }
}

impl core::str::FromStr for Target {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::parse(s)
    }
}

impl core::fmt::Display for Target {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Target::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Target::Tcp { host, port } => write!(f, "{host}:{port}"),
            Target::Serial { path } => write!(f, "{}", path.display()),
        }
    }
}

fn parse_port(p: &str) -> Option<u16> {
    p.parse::<u16>().ok().filter(|&p| p != 0)
}

fn is_com_port(s: &str) -> bool {
    s.len() > 3
        && s.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("COM"))
        && s.get(3..)
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(h: &str, p: u16) -> Target {
        Target::Tcp {
            host: h.into(),
            port: p,
        }
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(Target::parse("10.0.0.7").unwrap(), tcp("10.0.0.7", 54321));
        assert_eq!(
            Target::parse("10.0.0.7:5000").unwrap(),
            tcp("10.0.0.7", 5000)
        );
        assert_eq!(
            Target::parse("meter.local").unwrap(),
            tcp("meter.local", 54321)
        );
        assert_eq!(Target::parse("[::1]:7").unwrap(), tcp("::1", 7));
        assert_eq!(Target::parse("[::1]").unwrap(), tcp("::1", 54321));
        assert_eq!(Target::parse("fe80::1").unwrap(), tcp("fe80::1", 54321));
        assert_eq!(
            Target::parse("/dev/ttyACM0").unwrap(),
            Target::Serial {
                path: "/dev/ttyACM0".into()
            }
        );
        assert_eq!(
            Target::parse("COM3").unwrap(),
            Target::Serial {
                path: "COM3".into()
            }
        );
        assert_eq!(tcp("::1", 7).to_string(), "[::1]:7");
        assert_eq!(tcp("a", 7).to_string(), "a:7");
    }

    #[test]
    fn rejected_forms() {
        for bad in [
            "", "a:0", "a:70000", "a:x", ":5", "[::1", "[nope]:5", "1::2::3", "a b",
        ] {
            let err = Target::parse(bad).unwrap_err();
            assert!(
                matches!(err, ClientError::InvalidHost { .. }),
                "{bad}: {err}"
            );
        }
    }
}
