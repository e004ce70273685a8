//! Command semantics (PROTOCOL.md §2, §5, §10). (Interim until `wire::command` lands.)
use super::Instant;
use super::engine::{Device, Sink};
use super::json::Obj;

impl Device {
    pub(crate) fn command(&mut self, sink: Sink, now: Instant, line: &[u8]) {
        let _ = line;
        let json = Obj::reply(true, "x").finish();
        let _ = now;
        self.reply(sink, &json);
    }
}
