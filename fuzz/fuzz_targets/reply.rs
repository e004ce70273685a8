//! `Reply::parse` on arbitrary bytes: never panics; whatever parses re-encodes to a canonical line that
//! parses back to the same reply, and that line comes out of the demultiplexer as one text event whose
//! payload parses to the same reply again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartmeter::wire::frame::{Demux, Event};
use smartmeter::wire::reply::Reply;

fuzz_target!(|data: &[u8]| {
    let Ok(reply) = Reply::parse(data) else { return };
    let line = reply.to_line();
    let again = Reply::parse(line.as_bytes())
        .unwrap_or_else(|e| panic!("canonical line {line:?} of {reply:?} does not parse: {e}"));
    assert_eq!(again, reply, "round trip through {line:?}");
    assert_eq!(again.to_line(), line, "to_line is not canonical");

    let mut demux = Demux::new();
    let mut events = 0;
    demux.push(line.as_bytes(), |event| {
        events += 1;
        let payload = match event {
            Ok(Event::Reply(p) | Event::Text(p)) => p,
            other => panic!("{line:?} demultiplexed as {other:?}"),
        };
        assert_eq!(Reply::parse(payload).ok().as_ref(), Some(&reply));
    });
    assert_eq!(events, 1, "{line:?} is not one line");
});
