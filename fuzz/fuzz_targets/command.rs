//! `Command::parse` on arbitrary bytes: never panics; whatever parses re-encodes to a canonical line
//! that parses back to the same command, and that line is a fixed point of encode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartmeter::wire::command::Command;

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = Command::parse(data) {
        let line = command.encode();
        let again = Command::parse(line.as_bytes())
            .unwrap_or_else(|e| panic!("canonical line {line:?} of {command:?} does not parse: {e}"));
        assert_eq!(again, command, "round trip through {line:?}");
        assert_eq!(again.encode(), line, "encode is not canonical");
    }
});
