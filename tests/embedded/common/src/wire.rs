//! Commands, replies and log lines: the golden texts of `tests/golden/` (shared with the host tests),
//! parsed and re-encoded on the target, plus exact error texts of docs/protocol.md.

use alloc::format;
use alloc::string::String;

use smartmeter::wire::command::{Command, CommandError};
use smartmeter::wire::log::LogLine;
use smartmeter::wire::reply::Reply;

use crate::{Platform, Runner};

const COMMANDS: &str = include_str!("../../../golden/commands.txt");
const REPLIES: &str = include_str!("../../../golden/replies.txt");
const LOGS: &str = include_str!("../../../golden/log.txt");

fn cases(text: &'static str) -> impl Iterator<Item = (&'static str, &'static str)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split_once(' '))
}

pub fn run<P: Platform>(r: &mut Runner<'_, P>) {
    r.group("wire::command");
    let mut n = 0;
    for (name, line) in cases(COMMANDS) {
        n += 1;
        match Command::parse(line.as_bytes()) {
            Ok(cmd) => {
                let encoded = cmd.encode();
                let again = Command::parse(encoded.as_bytes());
                let ok = encoded == line && again.as_ref() == Ok(&cmd);
                r.check(name, ok, format_args!("encoded {encoded:?}"));
            }
            Err(e) => r.check(name, false, format_args!("parse error {e}")),
        }
    }
    r.check("golden_cases_present", n >= 20, format_args!("{n} cases"));
    let with_crlf = Command::parse(b"  {\"cmd\":\"getPower\"}  \r\n");
    r.eq("crlf_and_whitespace", with_crlf, Ok(Command::GetPower));
    let long = [b' '; 601];
    r.eq(
        "line_too_long",
        Command::parse(&long).map_err(|e| Reply::from_command_error(&e).to_json()),
        Err(String::from(
            r#"{"error":true,"msg":"Line too long (max 600 bytes)"}"#,
        )),
    );
    let bad = Command::parse(b"{\"cmd\":42}").err();
    let text = bad.as_ref().map(|e| Reply::from_command_error(e).to_json());
    r.eq(
        "json_format_error_text",
        text.as_deref(),
        Some(
            r#"{"error":true,"msg":"JSON format error, syntax: {\"cmd\":<cmdName>, \"[payload\":{<data>}]}}"}"#,
        ),
    );
    // No input may panic: every prefix of every golden line, and some junk.
    let mut parsed = 0u32;
    for (_, line) in cases(COMMANDS) {
        for end in 0..=line.len() {
            if let Some(prefix) = line.as_bytes().get(..end) {
                parsed += u32::from(Command::parse(prefix).is_ok());
            }
        }
    }
    for junk in [
        &b"\xff\xfe{"[..],
        b"{\"cmd\":\"sample\",\"payload\":[[[[",
        b"{{{{{{{{",
    ] {
        let _ = Command::parse(junk);
    }
    r.check("prefixes_never_panic", parsed > 0, format_args!("{parsed}"));
    let unknown = Command::parse(b"{\"cmd\":\"frobnicate\"}");
    r.check(
        "unknown_command_is_typed",
        matches!(unknown, Err(CommandError::UnknownCommand { .. })),
        format_args!("{unknown:?}"),
    );
    let text = unknown
        .err()
        .map(|e| Reply::from_command_error(&e).to_json());
    r.eq(
        "unknown_command_text",
        text.as_deref(),
        Some(r#"{"error":true,"cmd":"frobnicate","msg":"unknown command"}"#),
    );

    r.group("wire::reply");
    for (name, payload) in cases(REPLIES) {
        match Reply::parse(payload.as_bytes()) {
            Ok(reply) => {
                let json = reply.to_json();
                let line = reply.to_line();
                let ok = json == payload && line == format!("Info:{payload}\r\n");
                r.check(name, ok, format_args!("to_json {json:?}"));
            }
            Err(e) => r.check(name, false, format_args!("parse error {e}")),
        }
    }

    r.group("wire::log");
    for (name, payload) in cases(LOGS) {
        // The golden payload may end in a space (liveness line); `split_once` keeps it.
        match LogLine::parse(payload.as_bytes()) {
            Ok(line) => {
                let wire = line.to_line();
                r.eq(name, wire, format!("Info:{payload}\r\n"));
            }
            Err(e) => r.check(name, false, format_args!("parse error {e}")),
        }
    }
}
