//! What the meter answered: the typed [`Reply`] and the JSON object exactly as it was sent.

use std::string::{String, ToString};

use crate::client::error::ClientError;
use crate::wire::reply::{Reply, ReplyError};

/// One reply of the meter: the typed [`Reply`] (what programs look at) and the JSON object as the
/// meter sent it (what `--json` prints, byte for byte).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    reply: Reply,
    json: String,
}

/// The JSON a [`Reply::SetupDone`] is shown as: `?` is answered with the bare text `Setup done`,
/// which is no JSON object.
const SETUP_DONE_JSON: &str = r#"{"msg":"Setup done"}"#;

impl Response {
    /// Parses a reply payload (the bytes after `Info:`), tolerantly ([`Reply::parse`]).
    pub fn parse(payload: &[u8]) -> Result<Response, ReplyError> {
        let reply = Reply::parse(payload)?;
        let json = match reply {
            Reply::SetupDone => SETUP_DONE_JSON.to_string(),
            _ => String::from_utf8_lossy(payload.trim_ascii()).into_owned(),
        };
        Ok(Response { reply, json })
    }

    /// The answer to `?` (`Info:Setup done`), shown as `{"msg":"Setup done"}`.
    pub fn setup_done() -> Response {
        Response {
            reply: Reply::SetupDone,
            json: SETUP_DONE_JSON.to_string(),
        }
    }

    /// The typed reply.
    pub fn reply(&self) -> &Reply {
        &self.reply
    }

    /// The typed reply, by value.
    pub fn into_reply(self) -> Reply {
        self.reply
    }

    /// The JSON object as the meter sent it (without `Info:` and the line end).
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The `cmd` of the reply ([`Reply::cmd`]).
    pub fn cmd(&self) -> Option<&str> {
        self.reply.cmd()
    }

    /// `"error":true`.
    pub fn is_error(&self) -> bool {
        self.reply.is_error()
    }

    /// Turns an error reply into the matching [`ClientError`]: [`ClientError::Busy`] for the busy
    /// guard, else [`ClientError::Refused`] with the meter's `msg` (`cmd` from the reply, else
    /// `sent_cmd`).
    pub fn check(self, sent_cmd: &str) -> Result<Response, ClientError> {
        let Reply::Error { cmd, msg, state } = &self.reply else {
            return Ok(self);
        };
        let cmd = cmd.as_deref().unwrap_or(sent_cmd).to_string();
        if state.is_some() {
            return Err(ClientError::Busy { cmd });
        }
        Err(ClientError::Refused {
            cmd,
            msg: if msg.is_empty() {
                "(no message)".to_string()
            } else {
                msg.clone()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_text_and_types_the_reply() {
        let text = r#"{"error":false,"cmd":"getEnergy","energy":[10149.5684,5101.23238,4509.21022],"unit":"Wh","startTs":1632219770,"start":"09/20/2021 12:22:50.068","days":1}"#;
        let r = Response::parse(std::format!(" {text}\r\n").as_bytes()).unwrap();
        assert_eq!(r.json(), text);
        assert_eq!(r.cmd(), Some("getEnergy"));
        assert!(matches!(r.reply(), Reply::Energy { energy_wh, .. } if energy_wh[1] == 5101.23238));
        let busy = Response::parse(
            br#"{"error":true,"cmd":"getPower","msg":"Device currently sampling","state":"busy"}"#,
        )
        .unwrap();
        assert!(
            matches!(busy.check("getPower"), Err(ClientError::Busy { cmd }) if cmd == "getPower")
        );
        let refused = Response::parse(br#"{"error":true,"msg":"JSON format error"}"#).unwrap();
        assert_eq!(
            refused.check("x").unwrap_err().to_string(),
            "the meter refused `x`: JSON format error"
        );
        assert_eq!(
            Response::parse(b"Setup done").unwrap(),
            Response::setup_done()
        );
        assert!(Response::parse(b"[1]").is_err());
        assert!(Response::parse(b"{").is_err());
        assert!(Response::parse(b"\xff").is_err());
    }
}
