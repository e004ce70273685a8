//! Server addresses of `timeServer`, `mqttServer`, `streamServer` (docs/protocol.md §2.4).

use alloc::string::String;
use core::fmt;

/// Which server a `…Server` command sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// `timeServer` / `time_server`, NTP, port 123.
    Time,
    /// `mqttServer` / `mqtt_server`, port 1883.
    Mqtt,
    /// `streamServer` / `stream_server`, port 54322.
    Stream,
}

impl ServerKind {
    /// The command name.
    pub const fn cmd(self) -> &'static str {
        match self {
            ServerKind::Time => "timeServer",
            ServerKind::Mqtt => "mqttServer",
            ServerKind::Stream => "streamServer",
        }
    }

    /// The word in the reply texts: `TimeServer`, `MQTTServer`, `StreamServer`.
    pub const fn label(self) -> &'static str {
        match self {
            ServerKind::Time => "TimeServer",
            ServerKind::Mqtt => "MQTTServer",
            ServerKind::Stream => "StreamServer",
        }
    }

    /// The reply / info key: `time_server`, `mqtt_server`, `stream_server`.
    pub const fn key(self) -> &'static str {
        match self {
            ServerKind::Time => "time_server",
            ServerKind::Mqtt => "mqtt_server",
            ServerKind::Stream => "stream_server",
        }
    }

    /// The port used when the address has none.
    pub const fn default_port(self) -> u16 {
        match self {
            ServerKind::Time => 123,
            ServerKind::Mqtt => 1883,
            ServerKind::Stream => 54322,
        }
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A server address: `host`, `host:port`, `[v6]:port` or a bare IPv6 literal; `"-"` disables.
///
/// The host is an IPv4/IPv6 literal or a host name of at most 63 bytes (`[A-Za-z0-9._-]`); the port,
/// when given, is 1..=65535. The default port depends on the server, so it is the caller's choice
/// ([`ServerAddr::port_or`]). `Display` writes the canonical text, which parses back to the same value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum ServerAddr {
    /// `"-"`: no server.
    #[default]
    Disabled,
    /// A host with an optional port.
    Host {
        /// Name or literal, without brackets.
        host: String,
        /// Explicit port.
        port: Option<u16>,
    },
}

impl ServerAddr {
    /// Longest host part in bytes.
    pub const MAX_HOST_BYTES: usize = 63;

    /// Parses the address text; the error is the reason for `Invalid server: <reason>`.
    pub fn parse(text: &str) -> Result<ServerAddr, &'static str> {
        // `trim` decodes characters from both ends; a text that starts and ends with a visible
        // ASCII byte (what is always sent) has nothing to trim.
        let plain_end = |b: Option<&u8>| b.is_some_and(|b| (0x21..0x7f).contains(b));
        let text = if plain_end(text.as_bytes().first()) && plain_end(text.as_bytes().last()) {
            text
        } else {
            text.trim()
        };
        if text == "-" {
            return Ok(ServerAddr::Disabled);
        }
        if text.is_empty() {
            return Err("empty");
        }
        let (host, port, v6) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or("missing ]")?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or("expected :port after ]")?),
            };
            (host, port, true)
        } else {
            // One colon separates the port; more than one is a bare IPv6 literal.
            let bytes = text.as_bytes();
            match bytes.iter().position(|&b| b == b':') {
                None => (text, None, false),
                Some(i) if bytes.get(i + 1..).is_some_and(|r| r.contains(&b':')) => {
                    (text, None, true)
                }
                Some(i) => (text.get(..i).unwrap_or_default(), text.get(i + 1..), false),
            }
        };
        if host.is_empty() {
            return Err("empty host");
        }
        if host.len() > ServerAddr::MAX_HOST_BYTES {
            return Err("host longer than 63 bytes");
        }
        let ok = if v6 {
            // an IPv6 literal has at least two colons (`::`); `[:D]` is not one, and written
            // without brackets it would read back as host `` port `D`
            host.bytes().filter(|&b| b == b':').count() >= 2
                && host
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        } else {
            host.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        if !ok {
            return Err("not a host name or IP literal");
        }
        let port = match port {
            None => None,
            Some(p) => Some(parse_port(p).ok_or("port must be 1-65535")?),
        };
        Ok(ServerAddr::Host {
            host: String::from(host),
            port,
        })
    }

    /// The host, `None` when disabled.
    pub fn host(&self) -> Option<&str> {
        match self {
            ServerAddr::Disabled => None,
            ServerAddr::Host { host, .. } => Some(host),
        }
    }

    /// The explicit port or `default`.
    pub fn port_or(&self, default: u16) -> u16 {
        match self {
            ServerAddr::Host {
                port: Some(port), ..
            } => *port,
            _ => default,
        }
    }

    /// True for `"-"`.
    pub fn is_disabled(&self) -> bool {
        matches!(self, ServerAddr::Disabled)
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 {
        return None;
    }
    let mut n = 0u32;
    for b in p.bytes() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u32::from(d);
    }
    u16::try_from(n).ok().filter(|&p| p != 0)
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddr::Disabled => f.write_str("-"),
            ServerAddr::Host { host, port: None } => f.write_str(host),
            ServerAddr::Host {
                host,
                port: Some(p),
            } if host.contains(':') => write!(f, "[{host}]:{p}"),
            ServerAddr::Host {
                host,
                port: Some(p),
            } => write!(f, "{host}:{p}"),
        }
    }
}

/// `mqttServer` arguments: the broker and optional credentials / port.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct MqttServerSettings {
    /// Broker address.
    pub server: ServerAddr,
    /// `user`, ≤ 64 bytes.
    pub user: Option<String>,
    /// `pwd`, ≤ 64 bytes.
    pub pwd: Option<String>,
    /// `port` key; when absent the address's port, else 1883.
    pub port: Option<u16>,
}

impl MqttServerSettings {
    /// The port to connect to: the `port` key, else the address's port, else 1883.
    pub fn effective_port(&self) -> u16 {
        self.port
            .unwrap_or_else(|| self.server.port_or(ServerKind::Mqtt.default_port()))
    }
}

impl fmt::Debug for MqttServerSettings {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttServerSettings")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("pwd", &self.pwd.as_ref().map(|_| "***"))
            .field("port", &self.port)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    /// Whatever `ServerAddr::parse` accepts, its text (`Display`, what `encode()` writes) parses back to
    /// the same address — for every text built from the characters that matter (colons, brackets,
    /// digits, ASCII and Unicode whitespace, non-ASCII). The `command` fuzz target found `[:D]`,
    /// accepted as an IPv6 host that read back as an empty host.
    #[test]
    fn server_addr_text_round_trips() {
        const PIECES: &[&str] = &[
            "a", "1", "0", "9", ":", "[", "]", ".", "-", "_", " ", "\t", "\u{a0}", "\u{2003}", "é",
            "f", "65535", "65536", "00080", "::1", "host",
        ];
        let mut next = crate::xorshift(0x1234_5678_9abc_def1u64);
        let mut accepted = 0;
        for _ in 0..40_000 {
            let mut t = String::new();
            for _ in 0..(next() % 7) {
                let piece = PIECES[(next() as usize) % PIECES.len()];
                t.push_str(piece);
            }
            if let Ok(a) = ServerAddr::parse(&t) {
                accepted += 1;
                let text = a.to_string();
                assert_eq!(ServerAddr::parse(&text), Ok(a), "{t:?} -> {text:?}");
            }
        }
        assert!(accepted > 1_000, "{accepted}");
        for (t, ok) in [
            ("192.168.0.10:1883", true),
            (" host ", true),
            ("\u{a0}host\u{2003}", true),
            ("[::1]:80", true),
            ("fe80::1", true),
            ("-", true),
            ("[:D]", false),
            ("[:1]:80", false),
            (":80", false),
        ] {
            assert_eq!(ServerAddr::parse(t).is_ok(), ok, "{t:?}");
        }
    }
}
