//! Requests in flight: what each line expects back (docs/protocol.md §1.7) and who waits for it.

use std::string::{String, ToString};
use std::time::Instant;
use std::vec::Vec;

use super::response::Response;
use crate::client::error::ClientError;
use crate::wire::command::{Command, MAX_LINE_BYTES, SampleRequest, StreamType};

/// A request's id, unique within its [`Connection`](super::Connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(super) u64);

/// Something to send to the meter.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A typed command, sent in its canonical form. A `sample` of type `TCP` or `Serial` streams
    /// its frames over this connection: they come as [`ConnectionEvent::Samples`](super::ConnectionEvent::Samples).
    Command(Command),
    /// A command line as given (one JSON object, `?` or `!`); the meter judges it. A `sample`
    /// line is refused here: its frames need a receiver ([`Request::Command`]).
    Line(String),
}

impl From<Command> for Request {
    fn from(c: Command) -> Request {
        Request::Command(c)
    }
}

/// What a line gets back (docs/protocol.md §1.7).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Expect {
    /// Nothing (`!`).
    Nothing,
    /// One JSON reply.
    Reply,
    /// The text `Setup done` (`?`); it also ends this connection's sampling session.
    SetupDone,
    /// getLog: the `{"cmd":"log",...}` dump, then the reply.
    GetLog,
    /// `sample` streaming over this connection: on success, frames follow.
    Sample(SampleRequest),
    /// `stop`: the reply ends the sampling session.
    Stop,
    /// `restart`, `factoryReset`, `basicReset`: the reply, then the meter closes the connection.
    Restart,
}

impl Expect {
    pub(super) fn for_command(cmd: &Command) -> Expect {
        match cmd {
            Command::Keepalive => Expect::Nothing,
            Command::Availability => Expect::SetupDone,
            Command::GetLog => Expect::GetLog,
            Command::Sample(req) if matches!(req.stream, StreamType::Tcp | StreamType::Serial) => {
                Expect::Sample(*req)
            }
            Command::Stop => Expect::Stop,
            Command::Restart | Command::FactoryReset | Command::BasicReset => Expect::Restart,
            _ => Expect::Reply,
        }
    }
}

/// A request turned into its line, its command name (empty when the line names none) and what it
/// expects; raw lines are checked for shape only.
pub(super) fn classify(request: Request) -> Result<(String, String, Expect), ClientError> {
    match request {
        Request::Command(cmd) => Ok((
            cmd.encode(),
            cmd.name().to_string(),
            Expect::for_command(&cmd),
        )),
        Request::Line(line) => {
            let line = line.trim();
            if line.contains(['\n', '\r']) {
                return Err(ClientError::InvalidCommand("a command is one line".into()));
            }
            if line.len() > MAX_LINE_BYTES {
                return Err(ClientError::InvalidCommand(std::format!(
                    "line longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            if !matches!(line.as_bytes().first(), Some(b'?' | b'!' | b'{')) {
                return Err(ClientError::InvalidCommand(
                    "expected a JSON object, `?` or `!`".into(),
                ));
            }
            let (name, expect) = match Command::parse(line.as_bytes()) {
                Ok(cmd) => (cmd.name().to_string(), Expect::for_command(&cmd)),
                // The meter answers a refused line with one error reply.
                Err(e) => (e.cmd().unwrap_or_default().to_string(), Expect::Reply),
            };
            if name == "sample" {
                return Err(ClientError::InvalidCommand(
                    "use `record` (or Client::sample) to sample".into(),
                ));
            }
            Ok((line.to_string(), name, expect))
        }
    }
}

/// Who waits for a line's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waiter {
    /// The caller of [`Connection::send`](super::Connection::send).
    User(RequestId),
    /// The connection's own `info` or `auth` while it connects.
    Handshake,
    /// The liveness probe: any answer will do.
    Probe,
    /// A `reqSamples` credit: its reply only keeps the order.
    Credit,
    /// A request that timed out: its late reply is matched and dropped, so the order holds.
    Abandoned,
}

/// A line sent whose reply has not come yet.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    /// The command name it carries (`""`: unknown, any reply matches in order).
    pub(super) cmd: String,
    pub(super) expect: Expect,
    pub(super) waiter: Waiter,
    /// When the waiter gives up; `None` for the connection's own lines without a deadline.
    pub(super) deadline: Option<Instant>,
    /// Lines that belong to the reply and came before it (getLog's dump).
    pub(super) preludes: Vec<Response>,
}
