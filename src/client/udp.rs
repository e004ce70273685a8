//! UDP reception: a `sample` session of type UDP sends one `Data:` frame per datagram to the
//! requester's address. The datagrams go through a sans-IO [`SampleTracker`]; this task only
//! receives them.

use std::net::SocketAddr;
use std::vec;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::channel::SampleMsg;
use super::conn::Client;
use super::connection::{Request, SampleTracker, SamplingInfo};
use super::error::ClientError;
use super::host::DEFAULT_UDP_PORT;
use super::sample::SampleStream;
use crate::wire::command::{Command, SampleRequest, StreamType};

impl Client {
    /// Starts a UDP sampling session: binds `0.0.0.0:<port>` (the request's port, default 54323)
    /// first, then asks the meter to send there. With `prefix` off, datagrams are raw samples and
    /// losses cannot be detected. Duplicate and late datagrams are dropped.
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
        let d = self
            .send(Request::Command(Command::Sample(req)), "sample")
            .await?;
        let response = d
            .answer
            .replies
            .into_iter()
            .last()
            .ok_or_else(|| ClientError::Protocol("no reply to `sample`".into()))?
            .check("sample")?;
        let info = SamplingInfo::from_response(response, &req)?;
        let (tx, rx) = mpsc::channel(self.options().frame_buffer.max(1));
        let prefix = req.prefix;
        let mut tracker = SampleTracker::new(info.clone(), false);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                let n = match socket.recv(&mut buf).await {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(SampleMsg::End(Some(ClientError::Io(e)))).await;
                        return;
                    }
                };
                let Some(block) = tracker.datagram(buf.get(..n).unwrap_or_default(), prefix) else {
                    continue;
                };
                if tx.send(SampleMsg::Block(block)).await.is_err() {
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
