//! A minimal SNTP (RFC 4330) client: one request, one reply, offset and round trip.
//!
//! The engine asks for a sync with `Action::NtpRequest { server }`; the binding answers with the offset
//! of the server's clock against the host clock, which the engine then applies to every `now`.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;

/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;
/// Default NTP port.
pub const NTP_PORT: u16 = 123;

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum NtpError {
    /// The server name did not resolve.
    #[error("cannot resolve time server `{0}`")]
    Resolve(String),
    /// A socket operation failed.
    #[error("time server i/o: {0}")]
    Io(#[from] std::io::Error),
    /// No valid reply within the timeout.
    #[error("time server did not answer within {0:?}")]
    Timeout(Duration),
    /// The reply was malformed (length, mode, originate timestamp) or a kiss-o'-death.
    #[error("invalid time server reply: {0}")]
    Reply(&'static str),
}

/// One completed exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SntpSample {
    /// Server clock minus host clock, microseconds.
    pub offset_us: i64,
    /// Round trip minus the server's processing time, microseconds.
    pub round_trip_us: u64,
}

fn host_now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Unix microseconds to a 64-bit NTP timestamp.
pub fn to_ntp(unix_us: u64) -> u64 {
    let secs = unix_us / 1_000_000 + NTP_UNIX_OFFSET_S;
    // Rounded up, so that `from_ntp` (rounding down) gives back the exact microsecond.
    let frac = ((unix_us % 1_000_000) << 32).div_ceil(1_000_000);
    (secs << 32) | frac
}

/// A 64-bit NTP timestamp to Unix microseconds (era 0; times before 1970 give 0).
pub fn from_ntp(ts: u64) -> u64 {
    let secs = (ts >> 32).saturating_sub(NTP_UNIX_OFFSET_S);
    let frac_us = ((ts & 0xffff_ffff) * 1_000_000) >> 32;
    secs * 1_000_000 + frac_us
}

fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Computes the sample from the four timestamps of one exchange (all Unix microseconds).
pub fn sample_from(t1: u64, t2: u64, t3: u64, t4: u64) -> SntpSample {
    let (t1, t2, t3, t4) = (t1 as i128, t2 as i128, t3 as i128, t4 as i128);
    let offset = ((t2 - t1) + (t3 - t4)) / 2;
    let delay = ((t4 - t1) - (t3 - t2)).max(0);
    SntpSample {
        offset_us: i64::try_from(offset).unwrap_or(0),
        round_trip_us: u64::try_from(delay).unwrap_or(0),
    }
}

/// Parses a server reply to the request sent at `t1` (its transmit timestamp `sent`).
pub fn parse_reply(reply: &[u8], sent: u64, t1: u64, t4: u64) -> Result<SntpSample, NtpError> {
    if reply.len() < 48 {
        return Err(NtpError::Reply("shorter than 48 bytes"));
    }
    let first = reply.first().copied().unwrap_or(0);
    if first & 0x07 != 4 && first & 0x07 != 5 {
        return Err(NtpError::Reply("not a server reply"));
    }
    if reply.get(1).copied().unwrap_or(0) == 0 {
        return Err(NtpError::Reply("kiss-o'-death"));
    }
    let origin = read_u64(reply, 24).ok_or(NtpError::Reply("originate"))?;
    if origin != sent {
        return Err(NtpError::Reply("originate timestamp does not match"));
    }
    let t2 = from_ntp(read_u64(reply, 32).ok_or(NtpError::Reply("receive"))?);
    let t3 = from_ntp(read_u64(reply, 40).ok_or(NtpError::Reply("transmit"))?);
    if t3 == 0 {
        return Err(NtpError::Reply("zero transmit timestamp"));
    }
    Ok(sample_from(t1, t2, t3, t4))
}

/// Splits `host`, `host:port` or `[v6]:port` into host and port (default 123).
pub fn split_server(server: &str) -> (String, u16) {
    match crate::sim::cli::parse_host_port(server) {
        Ok(hp) => (hp.host, hp.port.unwrap_or(NTP_PORT)),
        Err(_) => (server.to_string(), NTP_PORT),
    }
}

/// Queries `server` once (resolving names), waiting at most `timeout` for a matching reply.
pub async fn query(server: &str, timeout: Duration) -> Result<SntpSample, NtpError> {
    let (host, port) = split_server(server);
    let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| NtpError::Resolve(server.to_string()))?
        .next()
        .ok_or_else(|| NtpError::Resolve(server.to_string()))?;
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(addr).await?;
    let t1 = host_now_us();
    let sent = to_ntp(t1);
    let mut req = [0u8; 48];
    req[0] = 0x23; // LI 0, version 4, mode 3 (client)
    req[40..48].copy_from_slice(&sent.to_be_bytes());
    sock.send(&req).await?;
    let mut buf = [0u8; 128];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => return Err(NtpError::Timeout(timeout)),
        };
        let t4 = host_now_us();
        // Stray or stale datagrams are skipped until the deadline.
        if let Ok(s) = parse_reply(buf.get(..n).unwrap_or(&[]), sent, t1, t4) {
            return Ok(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_timestamps_round_trip_to_the_microsecond() {
        for us in [0u64, 1, 999_999, 1_700_000_000_123_456] {
            assert_eq!(from_ntp(to_ntp(us)), us);
        }
    }

    #[test]
    fn offset_and_delay_follow_rfc4330() {
        // Server 1 s ahead, 10 ms each way, 2 ms processing.
        let s = sample_from(1_000_000, 2_010_000, 2_012_000, 1_022_000);
        assert_eq!(s.offset_us, 1_000_000);
        assert_eq!(s.round_trip_us, 20_000);
    }

    #[test]
    fn replies_are_checked() {
        let sent = to_ntp(5_000_000);
        let mut r = [0u8; 48];
        r[0] = 0x24;
        r[1] = 1;
        r[24..32].copy_from_slice(&sent.to_be_bytes());
        r[32..40].copy_from_slice(&to_ntp(6_000_000).to_be_bytes());
        r[40..48].copy_from_slice(&to_ntp(6_000_000).to_be_bytes());
        let s = parse_reply(&r, sent, 5_000_000, 5_000_000).unwrap();
        assert_eq!(s.offset_us, 1_000_000);
        assert!(parse_reply(&r[..40], sent, 0, 0).is_err());
        assert!(parse_reply(&r, sent + 1, 0, 0).is_err());
        r[1] = 0;
        assert!(parse_reply(&r, sent, 0, 0).is_err());
    }

    #[test]
    fn servers_split_with_default_port() {
        assert_eq!(
            split_server("time.google.com"),
            ("time.google.com".into(), 123)
        );
        assert_eq!(split_server("127.0.0.1:1234"), ("127.0.0.1".into(), 1234));
        assert_eq!(split_server("[::1]:9"), ("::1".into(), 9));
    }
}
