//! SNTP (RFC 4330) over embassy-net UDP: one request, one answer, the four timestamps handed to the
//! engine, which computes and applies the offset itself.

use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpAddress, IpEndpoint, Stack};
use embassy_time::{Duration, with_timeout};

/// Seconds between the NTP era (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;
const NTP_PACKET: usize = 48;

/// One exchange: client send/receive times on the local clock, server receive/transmit times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    /// Local clock when the request left, µs since the Unix epoch.
    pub t1_us: u64,
    /// Server clock when the request arrived.
    pub t2_us: u64,
    /// Server clock when the answer left.
    pub t3_us: u64,
    /// Local clock when the answer arrived.
    pub t4_us: u64,
}

impl Exchange {
    /// Offset to add to the local clock, µs (`((t2 - t1) + (t3 - t4)) / 2`).
    pub fn offset_us(&self) -> i64 {
        let a = self.t2_us as i64 - self.t1_us as i64;
        let b = self.t3_us as i64 - self.t4_us as i64;
        (a + b) / 2
    }

    /// Round-trip delay without the server's processing time, µs.
    pub fn round_trip_us(&self) -> u64 {
        (self.t4_us.saturating_sub(self.t1_us))
            .saturating_sub(self.t3_us.saturating_sub(self.t2_us))
    }
}

/// Why an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SntpError {
    /// The name did not resolve.
    Dns,
    /// The socket could not be bound or the request not sent.
    Socket,
    /// No (valid) answer within the timeout.
    Timeout,
    /// The answer was malformed, not from a server, or a kiss-o'-death.
    BadReply,
}

fn ntp_to_unix_us(secs: u32, frac: u32) -> u64 {
    let s = u64::from(secs).wrapping_sub(NTP_UNIX_OFFSET_S);
    s.wrapping_mul(1_000_000) + ((u64::from(frac) * 1_000_000) >> 32)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

/// Asks `server` (`host` or `host:port`, default port 123) for the time. `now_us` reads the local clock.
pub async fn query(
    stack: Stack<'_>,
    server: &str,
    now_us: impl Fn() -> u64,
) -> Result<Exchange, SntpError> {
    let (host, port) = match server.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().unwrap_or(123)),
        _ => (server, 123),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr: IpAddress = match host.parse() {
        Ok(ip) => ip,
        Err(_) => *stack
            .dns_query(host, embassy_net::dns::DnsQueryType::A)
            .await
            .map_err(|_| SntpError::Dns)?
            .first()
            .ok_or(SntpError::Dns)?,
    };
    let mut rx_meta = [PacketMetadata::EMPTY; 2];
    let mut tx_meta = [PacketMetadata::EMPTY; 2];
    let mut rx = [0u8; 128];
    let mut tx = [0u8; 128];
    let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
    socket.bind(0).map_err(|_| SntpError::Socket)?;
    let mut req = [0u8; NTP_PACKET];
    req[0] = 0x23; // LI = 0, VN = 4, mode = 3 (client)
    let t1_us = now_us();
    // Transmit timestamp: the server echoes it as "originate", which authenticates the answer.
    let secs = (t1_us / 1_000_000 + NTP_UNIX_OFFSET_S) as u32;
    let frac = (((t1_us % 1_000_000) << 32) / 1_000_000) as u32;
    req[40..44].copy_from_slice(&secs.to_be_bytes());
    req[44..48].copy_from_slice(&frac.to_be_bytes());
    socket
        .send_to(&req, IpEndpoint::new(addr, port))
        .await
        .map_err(|_| SntpError::Socket)?;
    let mut buf = [0u8; NTP_PACKET];
    loop {
        let (n, _) = with_timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
            .await
            .map_err(|_| SntpError::Timeout)?
            .map_err(|_| SntpError::Socket)?;
        let t4_us = now_us();
        if n < NTP_PACKET || buf[24..32] != req[40..48] {
            continue; // not the answer to this request
        }
        let mode = buf[0] & 0x07;
        let stratum = buf[1];
        if mode != 4 || stratum == 0 || stratum > 15 {
            return Err(SntpError::BadReply);
        }
        let t2 = ntp_to_unix_us(
            be32(&buf, 32).ok_or(SntpError::BadReply)?,
            be32(&buf, 36).ok_or(SntpError::BadReply)?,
        );
        let t3 = ntp_to_unix_us(
            be32(&buf, 40).ok_or(SntpError::BadReply)?,
            be32(&buf, 44).ok_or(SntpError::BadReply)?,
        );
        return Ok(Exchange {
            t1_us,
            t2_us: t2,
            t3_us: t3,
            t4_us,
        });
    }
}
