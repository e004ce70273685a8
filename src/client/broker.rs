//! Where an MQTT broker is and how the host tools (`collect`, `fleet`) reach it: plain TCP
//! (`host[:port]` or `mqtt://host[:port]`, port 1883) or TLS (`mqtts://host[:port]`, port 8883).
//!
//! TLS is [`super::tls`]: the broker's certificate is checked against the platform's trusted
//! certificates, or only against the CA certificates of a PEM file (`--ca-file`), for a broker with
//! a private CA. The host name (or IP address) of the address must be one the certificate names. The meters
//! themselves speak plain MQTT (docs/protocol.md §12): TLS is for collectors that reach a broker
//! across networks, e.g. a hosted one.
//!
//! ```
//! use smartmeter::client::BrokerAddr;
//! let plain = BrokerAddr::parse("broker.local")?;
//! assert_eq!((plain.host.as_str(), plain.port, plain.tls), ("broker.local", 1883, false));
//! let tls = BrokerAddr::parse("mqtts://[::1]")?;
//! assert_eq!((tls.host.as_str(), tls.port, tls.tls), ("::1", 8883, true));
//! assert_eq!(tls.to_string(), "mqtts://[::1]:8883");
//! # Ok::<(), smartmeter::client::ClientError>(())
//! ```

use std::string::{String, ToString};
use std::sync::Arc;

use rumqttc::{MqttOptions, TlsConfiguration, Transport};

use super::error::ClientError;
use super::tls::TlsFiles;

/// The default port of plain MQTT.
pub const MQTT_PORT: u16 = 1883;
/// The default port of MQTT over TLS.
pub const MQTTS_PORT: u16 = 8883;

/// A broker address: `host`, `host:port` or `[v6]:port`, optionally after `mqtt://` (plain, the
/// default) or `mqtts://` (TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (default 1883, or 8883 with TLS).
    pub port: u16,
    /// Whether to speak TLS.
    pub tls: bool,
}

impl BrokerAddr {
    /// Parses an address; the error names what is wrong with it.
    pub fn parse(broker: &str) -> Result<BrokerAddr, ClientError> {
        let bad = |reason: &str| ClientError::Mqtt {
            broker: broker.to_string(),
            reason: reason.into(),
        };
        let (tls, rest) = match broker.split_once("://") {
            None => (false, broker),
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "mqtt" | "tcp" => (false, rest),
                "mqtts" | "ssl" | "tls" => (true, rest),
                _ => return Err(bad("the scheme must be mqtt:// or mqtts://")),
            },
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '@', '?', '#']) || rest.chars().any(char::is_whitespace) {
            return Err(bad("expected host[:port] (no path, user or spaces)"));
        }
        let default_port = if tls { MQTTS_PORT } else { MQTT_PORT };
        let port_of = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("port must be 1-65535"))
        };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address in [ ] misses its ]"))?;
            match after {
                "" => (host, default_port),
                _ => match after.strip_prefix(':') {
                    Some(p) => (host, port_of(p)?),
                    None => return Err(bad("expected [v6]:port")),
                },
            }
        } else {
            match rest.split_once(':') {
                // two or more colons: an IPv6 address without brackets (and without a port)
                Some((_, p)) if p.contains(':') => (rest, default_port),
                Some((h, p)) => (h, port_of(p)?),
                None => (rest, default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.contains(['[', ']']) {
            return Err(bad("expected host[:port] or [v6]:port"));
        }
        Ok(BrokerAddr {
            host: host.to_string(),
            port,
            tls,
        })
    }

    /// The TLS configuration of this address: `None` for plain TCP; with TLS, trusting the CA
    /// file's certificates or, without one, the platform's, and presenting the client certificate
    /// if one is given. Files with a plain address are an error (they would be silently unused).
    pub(crate) fn tls_config(
        &self,
        files: &TlsFiles,
    ) -> Result<Option<Arc<rustls::ClientConfig>>, ClientError> {
        let err = |reason: String| ClientError::Mqtt {
            broker: self.to_string(),
            reason,
        };
        if !self.tls {
            return match files.is_empty() {
                false => Err(err(
                    "certificate files are for TLS: write the broker as mqtts://host[:port]".into(),
                )),
                true => Ok(None),
            };
        }
        super::tls::client_config(files).map(Some).map_err(err)
    }

    /// rumqttc's options for this broker: its host and port, and TLS with `tls` (a
    /// [`tls_config`](Self::tls_config), made once and kept for every reconnection).
    pub(crate) fn mqtt_options(
        &self,
        client_id: String,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, self.host.clone(), self.port);
        o.set_transport(match tls {
            Some(config) => Transport::Tls(TlsConfiguration::Rustls(config.clone())),
            None => Transport::Tcp,
        });
        o
    }
}

/// What went wrong with a broker connection, in words: rumqttc's error, with a hint where the
/// fix is ours to tell (a certificate the trusted CAs did not sign, or a name it does not carry).
pub(crate) fn describe(e: &rumqttc::ConnectionError) -> String {
    use rumqttc::ConnectionError;
    let text = match e {
        ConnectionError::ConnectionRefused(code) => {
            return std::format!("connection refused by the broker ({code:?})");
        }
        ConnectionError::Io(io) => io.to_string(),
        other => other.to_string(),
    };
    super::tls::with_hint(text, "--ca-file", "--client-cert and --client-key")
}

impl core::fmt::Display for BrokerAddr {
    /// `host:port` (`[v6]:port`), with `mqtts://` in front for TLS.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.tls {
            f.write_str("mqtts://")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> (String, u16, bool) {
        let a = BrokerAddr::parse(s).unwrap();
        (a.host, a.port, a.tls)
    }

    #[test]
    fn addresses_with_and_without_a_scheme() {
        assert_eq!(parsed("h"), ("h".into(), 1883, false));
        assert_eq!(parsed("h:1884"), ("h".into(), 1884, false));
        assert_eq!(parsed("[::1]:9"), ("::1".into(), 9, false));
        assert_eq!(parsed("::1"), ("::1".into(), 1883, false));
        assert_eq!(parsed("mqtt://h"), ("h".into(), 1883, false));
        assert_eq!(parsed("mqtts://h"), ("h".into(), 8883, true));
        assert_eq!(parsed("MQTTS://h:443/"), ("h".into(), 443, true));
        assert_eq!(parsed("mqtts://[fe80::1]"), ("fe80::1".into(), 8883, true));
        for bad in [
            "",
            ":1883",
            "h:0",
            "h:x",
            "h:70000",
            "mqtts://",
            "http://h",
            "mqtt://h/x",
            "mqtt://u@h",
            "h 1",
            "[::1]x:5",
        ] {
            assert!(BrokerAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_is_what_parse_reads() {
        for s in ["h:1883", "[::1]:9", "mqtts://h:8883", "mqtts://[::1]:8883"] {
            let a = BrokerAddr::parse(s).unwrap();
            assert_eq!(a.to_string(), s);
            assert_eq!(BrokerAddr::parse(&a.to_string()).unwrap(), a);
        }
    }

    #[test]
    fn certificate_files_need_tls_and_certificates() {
        let ca = |p: &str| TlsFiles {
            ca: Some(p.into()),
            ..TlsFiles::default()
        };
        let plain = BrokerAddr::parse("h").unwrap();
        assert!(matches!(plain.tls_config(&TlsFiles::default()), Ok(None)));
        let e = plain.tls_config(&ca("ca.pem")).unwrap_err();
        assert!(e.to_string().contains("mqtts://"), "{e}");
        let tls = BrokerAddr::parse("mqtts://h").unwrap();
        let e = tls.tls_config(&ca("/nonexistent/ca.pem")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = tls.tls_config(&ca(junk.to_str().unwrap())).unwrap_err();
        assert!(e.to_string().contains("no certificate (PEM"), "{e}");
        let half = TlsFiles {
            client_cert: Some(junk.clone()),
            ..TlsFiles::default()
        };
        let e = tls.tls_config(&half).unwrap_err();
        assert!(e.to_string().contains("needs its key"), "{e}");
    }
}
