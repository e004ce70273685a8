//! [`Envelope`]: a command with the access token its own object carries (MQTT, docs/protocol.md §10.3).

use alloc::string::String;

use super::error::CommandError;
use super::json::Obj;
use super::types::Command;

/// A command together with the access token carried in its own JSON object (`"token":T`,
/// docs/protocol.md §10).
///
/// MQTT has no sessions (the broker relays every publisher), so a protected command sent there must
/// carry the token itself; [`Envelope::parse`] reads it next to the command at the cost of one field
/// lookup (the canonical argument-less lines keep [`Command::parse`]'s byte-compare fast path and
/// carry no token). For `auth` and `setToken` the token is the command's own argument, never the
/// envelope's. [`Envelope::encode`] writes the token only when one is given, so
/// [`Command::encode`] stays token-free.
///
/// ```
/// use smartmeter::wire::command::{Command, Envelope};
/// let e = Envelope::parse(br#"{"cmd":"delWifi","payload":{"ssid":"lab"},"token":"s3cret"}"#)?;
/// assert_eq!(e.token.as_deref(), Some("s3cret"));
/// assert_eq!(e.command, Command::DelWifi { ssid: "lab".into() });
/// assert_eq!(e.encode(), r#"{"cmd":"delWifi","payload":{"ssid":"lab"},"token":"s3cret"}"#);
/// assert_eq!(Envelope::parse(br#"{"cmd":"getPower"}"#)?.token, None);
/// # Ok::<(), smartmeter::wire::command::CommandError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The command.
    pub command: Command,
    /// The `token` key of the command's object (a string of at most [`MAX_TOKEN_BYTES`](super::MAX_TOKEN_BYTES)); `None`
    /// when absent, and always for `auth` / `setToken`.
    pub token: Option<String>,
}

impl Envelope {
    /// Parses one line like [`Command::parse`] and also reads its `token` key. A `token` that is not
    /// a string of at most 64 bytes is `Invalid token: …` (for `auth` / `setToken` as before).
    pub fn parse(line: &[u8]) -> Result<Envelope, CommandError> {
        // The steps of `Command::parse`, with the token-reading scan (a proptest holds the two
        // together; written out so the plain parse stays exactly as fast).
        let line = Command::strip_line(line)?;
        let plain = |command| Envelope {
            command,
            token: None,
        };
        match line.first() {
            None => Err(CommandError::Empty),
            Some(b'?') => Ok(plain(Command::Availability)),
            Some(b'!') => Ok(plain(Command::Keepalive)),
            Some(_) => match Command::bare(line) {
                Some(command) => Ok(plain(command)),
                None => {
                    let (command, token) = Command::parse_json_token(line)?;
                    Ok(Envelope { command, token })
                }
            },
        }
    }

    /// The canonical line: [`Command::encode`] with `"token":T` appended when a token is given (not
    /// for `?` / `!`, which are not JSON, nor for `auth` / `setToken`, which carry their own).
    pub fn encode(&self) -> String {
        let mut line = self.command.encode();
        let own = matches!(
            self.command,
            Command::Availability
                | Command::Keepalive
                | Command::Auth { .. }
                | Command::SetToken { .. }
        );
        if let (Some(t), false) = (&self.token, own)
            && line.ends_with('}')
        {
            line.pop();
            let mut o = Obj::new();
            o.str("token", t);
            let tail = o.finish();
            // `tail` is `{"token":…}`: append its members to the command's object.
            line.push(',');
            line.push_str(tail.get(1..).unwrap_or("}"));
        }
        line
    }
}
