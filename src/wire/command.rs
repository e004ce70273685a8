//! Commands: the lines a host sends to the meter (docs/protocol.md §1, §2, §5, §10, §11, §12).
//!
//! [`Command::parse`] takes one line of untrusted bytes and answers a typed [`Command`] or a
//! [`CommandError`] whose `Display` is the exact `msg` text of the protocol's error reply and whose
//! [`CommandError::cmd`] is the `cmd` to echo. [`Command::encode`] writes the canonical JSON that host
//! tools send. Parsing is two steps: a zero-copy scanner (`scan`) reads the line into the borrowed, loosely
//! typed [`RawCommand`], then `TryFrom` validates it into the typed [`Command`].
//!
//! Leniency (the protocol's "be liberal in what you accept"): keys in any order, any whitespace, a
//! trailing `\r\n`, unknown keys ignored, booleans as JSON booleans or the strings `"true"`/`"false"`,
//! numbers as integers, integral floats (`8000.0`) or strings (`"8000"`), keys documented inside
//! `payload` also accepted at the top level and vice versa (the documented place wins).
//!
//! Checks that need state or a clock are left to the engine: the start `time` of a sample request is
//! only checked to be a finite positive number here (the 0.5–20 s window needs `now`), `Serial` is
//! accepted (the engine answers `Unsupported sampling type: Serial` where there is no serial port),
//! and the busy guard, Wi-Fi list and token checks belong to the engine too.
//!
//! ```
//! use smartmeter::wire::command::{Command, Measures, SampleRequest, StreamType};
//!
//! let cmd = Command::parse(b" {\"payload\":{\"rate\":\"1000\",\"type\":\"UDP\",\"port\":5000},\"cmd\":\"sample\"}\r\n")?;
//! let Command::Sample(req) = &cmd else { unreachable!() };
//! assert_eq!(req.stream, StreamType::Udp { port: 5000 });
//! assert_eq!(req.measures, Measures::VoltCurrent3);
//! assert_eq!(req.rate_hz, 1000);
//! assert_eq!(
//!     cmd.encode(),
//!     r#"{"cmd":"sample","payload":{"type":"UDP","measures":"v,i,v,i,v,i","rate":1000,"prefix":true,"port":5000,"flowCtr":false}}"#
//! );
//!
//! let err = Command::parse(br#"{"cmd":"reqSamples","samples":5}"#).unwrap_err();
//! assert_eq!(err.to_string(), "Samples must be 10-2000");
//! assert_eq!(err.cmd(), Some("reqSamples"));
//! # Ok::<(), smartmeter::wire::command::CommandError>(())
//! ```
//!
//! One concern per file, and no file imports a sibling that imports it back:
//!
//! | file | what | uses |
//! |---|---|---|
//! | `types` | the typed [`Command`], its argument types, names and limits | `sample`, `server`, `extension` |
//! | `sample`, `server` | the `sample` request types; server addresses | — |
//! | `extension` | argument types of `setNominal`, `getPQ`, `homeAssistant` (§11, §12) | — |
//! | `error` | [`CommandError`]: the exact error texts | `server` |
//! | `raw` | the loose, borrowed [`RawCommand`] | — |
//! | `scan`, `number` | the zero-copy JSON scanner that fills a `RawCommand`; its number tokens | `raw`, `types` |
//! | `validate` | `RawCommand` → [`Command`] (`TryFrom`) | `raw`, `types`, `sample`, `server`, `extension`, `error` |
//! | `parse` | [`Command::parse`]: line handling, the byte-compare fast path, the scan | `scan`, `validate` |
//! | `json`, `encode` | the canonical JSON writer and [`Command::encode`] | `types`, `extension` |
//! | `envelope` | [`Envelope`]: a command with the `token` it carries (MQTT) | `parse`, `json` |

mod encode;
mod envelope;
mod error;
mod extension;
pub(crate) mod json;
mod number;
mod parse;
mod peek;
pub(crate) mod raw;
mod sample;
pub(crate) mod scan;
mod server;
mod types;
mod validate;

pub use envelope::Envelope;
pub use error::CommandError;
pub use extension::{
    HomeAssistantSettings, NominalFrequency, NominalSettings, NominalValue, PqInterval,
    is_valid_discovery_prefix,
};
pub use peek::peek_name;
pub use raw::RawCommand;
pub use sample::{Measures, SampleRequest, Slot, StreamType};
pub use server::{MqttServerSettings, ServerAddr, ServerKind};
pub use types::{
    CalibrationArgs, Command, DailyRestart, EnergyReset, MAX_LINE_BYTES, MAX_MDNS_NAME_BYTES,
    MAX_SSID_BYTES, MAX_TOKEN_BYTES, MAX_WIFI_PWD_BYTES, WifiCredentials, is_valid_mdns_name,
};
