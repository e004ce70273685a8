//! Replies: the JSON the meter answers with (docs/protocol.md §2, §5, §10, §11, §12), typed, encoded canonically and
//! parsed back tolerantly.
//!
//! Encoding ([`Reply::to_json`], [`Reply::to_line`]) always writes the canonical form: keys `error`,
//! `cmd`, then the command's own keys in the documented order (`info` and the getLog dump line have no
//! `error` key); floats in serde_json's shortest round-trip form (`1.0`), an undefined measurement as
//! `null`, never NaN.
//!
//! Parsing ([`Reply::parse`]) is for host tools reading real devices: keys in any order, `1` or `1.0`,
//! numbers as strings, unknown keys ignored, and every example of the original README
//! (`"type":"SmartMeter"`, `calV`/`calI`, `"calibration":[1,1]`, replies without `cmd`).
//!
//! # Which variant a reply maps to
//! 1. `"error":true` → [`Reply::Error`] (whatever the other keys).
//! 2. A known `cmd` → that command's variant (`"cmd":"log"` is the getLog dump when its `msg` starts with
//!    `*** LOGFile`, else [`Reply::LogLevelSet`]; `cts` without `value` and any cmd without a dedicated
//!    variant → [`Reply::Ack`]).
//! 3. No `cmd` (old firmware), decided by keys, first match wins: `type` or `version` → Info;
//!    `activePower` → Power; `voltage` → Voltage; `current` → Current; `period` → Period; `phase` →
//!    PhaseAngle; `thd_v` → Quality; `energy` with `startTs` → Energy; `chunksize` or `conn_type` →
//!    SampleStarted; `sample_duration` → Stopped; `mdns_name` → Mdns; `current_time` → Ntp;
//!    `time_server` / `mqtt_server` / `stream_server` → ServerSet; `ssids` → AddWifi if there is an `ssid`
//!    key or the msg starts with `New Ap`, else DelWifi; `calibration` → Calibration; then by `msg`
//!    prefix (`*** LOGFile`, `Log Level set to: `, `Energy reset to `, `Set daily restart to: ` /
//!    `Disabled daily restart`, `Restarting`, `Set time zone offset to: `, `Authenticated`,
//!    `Nominal set to `, `Events cleared`, `Home Assistant discovery `); finally a
//!    bare `{"error":false}` → [`Reply::GetLogDone`] (the seed prints it after the log dump). Anything
//!    else is [`ReplyError::Unrecognized`].
//!
//! ```
//! use smartmeter::wire::reply::Reply;
//!
//! let r = Reply::Voltage { voltage_v: [Some(230.1), Some(229.5), None] };
//! assert_eq!(r.to_line(), "Info:{\"error\":false,\"cmd\":\"getVoltage\",\"voltage\":[230.1,229.5,null],\"unit\":\"V\"}\r\n");
//! assert_eq!(Reply::parse(br#"{"unit":"V","voltage":[230.1,229.5,null],"cmd":"getVoltage","error":false}"#), Ok(r));
//! ```

//!
//! One concern per file, and no file imports a sibling that imports it back:
//!
//! | file | what | uses |
//! |---|---|---|
//! | `types` | [`Reply`], its payload structs, [`ReplyError`] | — |
//! | `text` | texts inside replies both ways: SSID lists, zone offsets | — |
//! | `encode` | [`Reply::to_json`], [`Reply::to_line`]: the canonical form | `types`, `text` |
//! | `raw` | the loose, borrowed form of a reply object | — |
//! | `fields` | tolerant readers of one loose field | `raw`, `types` |
//! | `shapes` | one reply shape each (`info`, `sample`, `stop`, …) | `fields`, `text`, `types` |
//! | `extension` | the §11/§12 replies both ways (`setNominal`, `getPQ`, `getEvents`, `homeAssistant`) | `types`, `fields`, `raw` |
//! | `parse` | [`Reply::parse`]: which shape a reply is (by `cmd`, else by its keys) | `shapes`, `extension`, `fields` |

mod encode;
mod extension;
mod fields;
mod parse;
mod raw;
mod shapes;
mod text;
mod types;

pub use types::{
    BUSY, InfoReply, NominalInForce, NominalSet, Phases, QualityReply, Reply, ReplyError,
    RestartKind, SampleStarted, StopStats,
};
