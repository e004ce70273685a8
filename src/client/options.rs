//! Tunables of a connection to a meter.

use std::string::String;
use std::time::Duration;

/// Tunables of a [`Client`](super::Client) (and of the sans-IO [`Connection`](super::Connection)
/// under it).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long a request waits for its reply (default 5 s).
    pub timeout: Duration,
    /// How long connecting (and waiting for the unsolicited `info`) may take (default 5 s).
    pub connect_timeout: Duration,
    /// Quiet time after which `!` is sent (default 30 s).
    pub keepalive: Duration,
    /// Serial baud rate (default 115200).
    pub baud_rate: u32,
    /// Data frames buffered between the connection and a slow
    /// [`SampleStream`](super::SampleStream) reader before the connection stops reading (TCP
    /// back-pressure; the meter then drops frames, seen as gaps).
    pub frame_buffer: usize,
    /// Quiet time (nothing received) after which the meter is asked for `info` to check it is still
    /// there; if nothing arrives within `timeout` after that, the connection is lost (default 5 s;
    /// `None` never probes).
    pub liveness: Option<Duration>,
    /// Access token: sent as `{"cmd":"auth","token":T}` right after connecting, so commands that
    /// change settings work on a protected meter. `None` (or empty) sends nothing.
    pub token: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(30),
            baud_rate: 115_200,
            frame_buffer: 512,
            liveness: Some(Duration::from_secs(5)),
            token: None,
        }
    }
}
