//! [`Command::parse`]: line handling, the byte-compare fast path for argument-less commands, and
//! the scan of everything else into a [`RawCommand`] that [`validate`](super::validate) turns into a
//! [`Command`].

use alloc::string::String;

use super::error::CommandError;
use super::raw::{Loose, RawCommand};
use super::scan::{self, ScanError};
use super::types::{Command, MAX_LINE_BYTES};
use super::validate::{Fields, access_token};

impl Command {
    /// Parses one line of untrusted bytes (with or without its `\n` / `\r\n`). A JSON object that
    /// only lacks its final `}` is accepted (the seed README's calibration example is written so).
    ///
    /// Never panics; memory is bounded by the 600-byte line limit, checked before any parsing, and
    /// by a nesting limit on known keys (unknown keys are skipped iteratively). The raw form lives on
    /// the stack (about 1.8 KB, 3.6 KB with a `payload`: arrays of up to 6 numbers are kept
    /// inline); the heap is only used for escaped strings, other arrays and the typed result's
    /// strings.
    pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
        let line = Command::strip_line(line)?;
        match line.first() {
            None => Err(CommandError::Empty),
            Some(b'?') => Ok(Command::Availability),
            Some(b'!') => Ok(Command::Keepalive),
            Some(_) => match Command::bare(line) {
                Some(command) => Ok(command),
                None => Command::parse_json(line),
            },
        }
    }

    /// The line without its `\n` / `\r\n` and surrounding whitespace, once its length is checked.
    #[inline(always)]
    pub(super) fn strip_line(line: &[u8]) -> Result<&[u8], CommandError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE_BYTES {
            return Err(CommandError::LineTooLong);
        }
        Ok(line.trim_ascii())
    }

    /// The canonical line of a command without arguments (`{"cmd":"getPower"}`, what host tools poll
    /// with), recognised by comparing bytes. Any other spelling (spaces, more keys, escapes) is left
    /// to [`parse_json`](Self::parse_json), which gives the same command for these lines (a unit test
    /// holds the two together). Always inlined: it is the whole cost of those lines.
    #[inline(always)]
    pub(super) fn bare(line: &[u8]) -> Option<Command> {
        let name = line.strip_prefix(b"{\"cmd\":\"")?.strip_suffix(b"\"}")?;
        Some(match name {
            b"info" => Command::Info,
            b"getPower" => Command::GetPower,
            b"getVoltage" => Command::GetVoltage,
            b"getCurrent" => Command::GetCurrent,
            b"getEnergy" => Command::GetEnergy,
            b"getPeriod" => Command::GetPeriod,
            b"getPhaseAngle" => Command::GetPhaseAngle,
            b"getQuality" => Command::GetQuality,
            b"stop" => Command::Stop,
            b"restart" => Command::Restart,
            b"factoryReset" => Command::FactoryReset,
            b"basicReset" => Command::BasicReset,
            b"clearLog" => Command::ClearLog,
            b"getLog" => Command::GetLog,
            b"ntp" => Command::Ntp,
            b"clearEvents" => Command::ClearEvents,
            _ => return None,
        })
    }

    /// The general path: a trimmed, non-empty line that is neither `?` nor `!`, through the JSON
    /// scanner. Not inlined: its large stack frame would otherwise be set up for the bare lines too.
    #[inline(never)]
    fn parse_json(line: &[u8]) -> Result<Command, CommandError> {
        Command::scan_json(line, Command::from_fields)
    }

    /// [`Command::parse_json`], also reading the command's `token` key (see [`Envelope`]).
    #[inline(never)]
    pub(super) fn parse_json_token(line: &[u8]) -> Result<(Command, Option<String>), CommandError> {
        Command::scan_json(line, |f| {
            let command = Command::from_fields(f)?;
            let token = access_token(f, &command)?;
            Ok((command, token))
        })
    }

    /// Scans a JSON line and hands its fields to `typed`.
    #[inline(always)]
    fn scan_json<T>(
        line: &[u8],
        typed: impl Fn(&Fields<'_, '_>) -> Result<T, CommandError>,
    ) -> Result<T, CommandError> {
        // At most two ~1.8 KB structs on the stack; no heap use for a well-formed command.
        let mut raw = RawCommand::default();
        let mut payload = None;
        match raw.fill_split_from_json(&mut payload, line) {
            Ok(owns_heap) => {
                let result = typed(&Fields {
                    top: &raw,
                    payload: payload.as_ref(),
                });
                if !owns_heap {
                    // Only borrowed strings and scalars: nothing to free, so skip the drop
                    // glue of the ~60 optional fields (no leak: there is no heap memory).
                    core::mem::forget(raw);
                    core::mem::forget(payload);
                }
                result
            }
            // The seed's own calibration example lacks its final `}`: retry once with it.
            Err(scan::ScanError::Eof) => {
                let mut fixed = alloc::vec::Vec::with_capacity(line.len() + 1);
                fixed.extend_from_slice(line);
                fixed.push(b'}');
                let raw = RawCommand::from_json(&fixed)?;
                typed(&Fields {
                    top: &raw,
                    payload: raw.payload(),
                })
            }
            Err(_) => Err(CommandError::Json),
        }
    }
}

impl<'a> RawCommand<'a> {
    /// Reads one JSON object (no line handling: see [`Command::parse`]).
    /// Invalid JSON, a non-object, or a key given twice is [`CommandError::Json`].
    pub fn from_json(json: &'a [u8]) -> Result<RawCommand<'a>, CommandError> {
        let mut raw = RawCommand::default();
        raw.fill_from_json(json).map_err(|_| CommandError::Json)?;
        Ok(raw)
    }

    /// Parses `json` into `self` (which should be empty), without moving the large struct around.
    pub(crate) fn fill_from_json(&mut self, json: &'a [u8]) -> Result<(), ScanError> {
        scan::fill(self, None, json).map(|_| ())
    }

    /// Like [`RawCommand::fill_from_json`], but an object `payload` is read into `payload` (set
    /// only when there is one, so commands without payload pay nothing for it) instead of a heap box.
    pub(crate) fn fill_split_from_json(
        &mut self,
        payload: &mut Option<RawCommand<'a>>,
        json: &'a [u8],
    ) -> Result<bool, ScanError> {
        let owns_heap = scan::fill(self, Some(payload), json)?;
        if !matches!(self.payload, Some(Loose::Null)) {
            *payload = None;
        }
        Ok(owns_heap)
    }
}

#[cfg(test)]
mod tests {
    use super::super::validate::invalid;
    use super::*;
    use alloc::string::ToString;

    /// Every command without arguments: its canonical line takes the byte-compare fast path, which
    /// gives what the JSON scanner gives for that line; other spellings and near misses go to the
    /// scanner.
    #[test]
    fn bare_fast_path_agrees_with_the_scanner() {
        let unit = [
            Command::Info,
            Command::GetPower,
            Command::GetVoltage,
            Command::GetCurrent,
            Command::GetEnergy,
            Command::GetPeriod,
            Command::GetPhaseAngle,
            Command::GetQuality,
            Command::Stop,
            Command::Restart,
            Command::FactoryReset,
            Command::BasicReset,
            Command::ClearLog,
            Command::GetLog,
            Command::Ntp,
            Command::ClearEvents,
        ];
        for c in unit {
            let line = c.encode();
            assert_eq!(Command::bare(line.as_bytes()), Some(c.clone()), "{line}");
            assert_eq!(
                Command::parse_json(line.as_bytes()),
                Ok(c.clone()),
                "{line}"
            );
            assert_eq!(
                Command::parse(alloc::format!("{line}\r\n").as_bytes()),
                Ok(c.clone())
            );
            let spaced = line.replace(':', ": ");
            assert_eq!(Command::bare(spaced.as_bytes()), None);
            assert_eq!(Command::parse(spaced.as_bytes()), Ok(c.clone()), "{spaced}");
        }
        for near in [
            r#"{"cmd":"getpower"}"#,
            r#"{"cmd":"sample"}"#,
            r#"{"cmd":"info"}}"#,
            r#"{"cmd":"info\"}"#,
            r#"{"cmd":""}"#,
        ] {
            assert_eq!(Command::bare(near.as_bytes()), None, "{near}");
            assert_eq!(
                Command::parse(near.as_bytes()),
                Command::parse_json(near.as_bytes()),
                "{near}"
            );
        }
    }

    /// Arrays of numbers are kept inline; every other array takes the heap form. Both give the
    /// same commands and the same error texts.
    #[test]
    fn inline_and_heap_arrays_agree() {
        for (inline, heap) in [
            (
                r#"{"cmd":"calibration","cal":[1.0,1,0.98,1.02,1.0,1.0]}"#,
                r#"{"cmd":"calibration","cal":["1.0",1,0.98,1.02,1.0,1.0]}"#,
            ),
            (
                r#"{"cmd":"calibration","cal":[1.0,1.5]}"#,
                r#"{"cmd":"calibration","cal":[1.0,"1.5"]}"#,
            ),
            (
                r#"{"cmd":"calibration","cal":[1.0,1.0,0.98,1.02,1.0,3.0]}"#,
                r#"{"cmd":"calibration","cal":[1.0,1.0,0.98,1.02,1.0,3e0]}"#,
            ),
            (
                r#"{"cmd":"resetEnergy","energy":[1.5,-2.5,3]}"#,
                r#"{"cmd":"resetEnergy","energy":[1.5,-2.5,3E0]}"#,
            ),
            (
                r#"{"cmd":"resetEnergy","energy":[1.5,-2.5]}"#,
                r#"{"cmd":"resetEnergy","energy":[1.5,[-2.5]]}"#,
            ),
            (
                r#"{"cmd":"sample","payload":{"type":"TCP","slot":[1,4]}}"#,
                r#"{"cmd":"sample","payload":{"type":"TCP","slot":["1",4]}}"#,
            ),
            (
                r#"{"cmd":"sample","payload":{"type":"TCP","slot":[4,4]}}"#,
                r#"{"cmd":"sample","payload":{"type":"TCP","slot":[4,4e0]}}"#,
            ),
            (
                r#"{"cmd":"sample","payload":{"type":[1,2.5]}}"#,
                r#"{"cmd":"sample","payload":{"type":[1,2.5e0]}}"#,
            ),
        ] {
            assert_eq!(
                Command::parse(inline.as_bytes()),
                Command::parse(heap.as_bytes()),
                "{inline} vs {heap}"
            );
        }
        assert_eq!(
            Command::parse(br#"{"cmd":"sample","payload":{"type":[1,2.5,-0]}}"#)
                .unwrap_err()
                .to_string(),
            "Unsupported sampling type: [1,2.5,-0.0]"
        );
        assert_eq!(
            Command::parse(br#"{"cmd":"calibration","cal":[1,1,1,1,1,1,1]}"#),
            Err(invalid(
                "calibration",
                "cal",
                "expected an array of 6 factors"
            ))
        );
    }
}
