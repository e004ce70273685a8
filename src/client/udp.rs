//! UDP reception: a `sample` session of type UDP sends one `Data:` frame per datagram to the
//! requester's address.

use std::net::SocketAddr;
use std::string::ToString;
use std::vec;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::conn::{Client, Expect};
use super::sample::{SampleMsg, SampleStream, SessionInfo};
use super::{ClientError, DEFAULT_UDP_PORT};
use crate::wire::command::{Command, SampleRequest, StreamType};
use crate::wire::frame::Frame;

/// Gap accounting for datagrams (they may also arrive out of order or twice: those are dropped).
#[derive(Debug, Default, Clone, Copy)]
pub struct PacketCounter {
    next: Option<u32>,
}

impl PacketCounter {
    /// The gap before `packet`, or `None` for a duplicate / late packet (to drop).
    pub fn accept(&mut self, packet: u32) -> Option<u32> {
        let gap = match self.next {
            None => 0,
            Some(n) if packet >= n => packet - n,
            Some(_) => return None,
        };
        self.next = Some(packet.wrapping_add(1));
        Some(gap)
    }
}

impl Client {
    /// Starts a UDP sampling session: binds `0.0.0.0:<port>` (the request's port, default 54323)
    /// first, then asks the meter to send there. With `prefix` off, datagrams are raw samples and
    /// losses cannot be detected.
    pub async fn sample_udp(&self, mut req: SampleRequest) -> Result<SampleStream, ClientError> {
        let port = match req.stream {
            StreamType::Udp { port } => port,
            _ => DEFAULT_UDP_PORT,
        };
        req.stream = StreamType::Udp { port };
        let socket = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], port)))
            .await
            .map_err(|source| ClientError::Connect {
                addr: std::format!("UDP port {port} (local)"),
                source,
            })?;
        let cmd = Command::Sample(req);
        let answer = self
            .send(cmd.encode(), "sample".to_string(), Expect::Json)
            .await?;
        let response = answer.response.check("sample")?;
        let info = SessionInfo::from_response(response, &req)?;
        let (tx, rx) = mpsc::channel(self.options().frame_buffer.max(1));
        let prefix = req.prefix;
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            let mut counter = PacketCounter::default();
            let mut raw_packet: u32 = 0;
            loop {
                let n = match socket.recv(&mut buf).await {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(SampleMsg::End(Some(ClientError::Io(e)))).await;
                        return;
                    }
                };
                let dgram = buf.get(..n).unwrap_or_default();
                let msg = if prefix {
                    let Ok(frame) = Frame::new_checked(dgram) else {
                        continue;
                    };
                    let Some(gap) = counter.accept(frame.packet_number()) else {
                        continue;
                    };
                    SampleMsg::Frame {
                        packet: frame.packet_number(),
                        gap,
                        payload: frame.payload().to_vec(),
                    }
                } else {
                    raw_packet = raw_packet.wrapping_add(1);
                    SampleMsg::Frame {
                        packet: raw_packet - 1,
                        gap: 0,
                        payload: dgram.to_vec(),
                    }
                };
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
        });
        Ok(
            SampleStream::new(info, rx, self.actor(), self.options().timeout, false)
                .with_udp_task(task),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_gaps_and_duplicates() {
        let mut c = PacketCounter::default();
        assert_eq!(c.accept(5), Some(0));
        assert_eq!(c.accept(6), Some(0));
        assert_eq!(c.accept(9), Some(2));
        assert_eq!(c.accept(8), None);
        assert_eq!(c.accept(9), None);
        assert_eq!(c.accept(10), Some(0));
    }
}
