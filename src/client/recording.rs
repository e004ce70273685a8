//! Recording files: 32-bit float WAV (channel names in a LIST/INFO chunk), CSV with a timestamp per
//! sample, raw little-endian f32. Written crash-safely, read back for `analyze`.
//!
//! Crash safety: a recording is written to `<FILE>.part` and renamed to `<FILE>` only when it is
//! finished (the requested number of samples, or a Ctrl-C that stopped the meter cleanly). A WAV
//! header is re-patched on every [`RecordingWriter::checkpoint`], so even a `.part` left by a killed
//! process is a valid WAV of everything checkpointed; its INFO comment then still says
//! `status=recording`. A recording that ended early because of an error is finalised (valid header,
//! `status=incomplete`) and left as `.part`: nothing half-written is left under the final name.

//!
//! | file | what |
//! |---|---|
//! | `model` | [`Format`], [`RecordingStatus`], [`RecordingMeta`], [`RecordingError`]: what every format shares |
//! | `wav`, `csv`, `f32` | one file format each: its header, its samples, written and read |
//! | `writer`, `reader` | [`PendingRecording`] / [`RecordingWriter`], [`RecordingReader`]: the crash-safe writer and the block reader over any format |

mod csv;
mod f32;
mod model;
mod reader;
mod wav;
mod writer;

#[cfg(test)]
mod tests;

pub use model::{
    Format, ReadHints, RecordingError, RecordingMeta, RecordingStatus, channel_names,
    parse_unix_ts_us,
};
pub use reader::RecordingReader;
pub use writer::{PendingRecording, RecordingWriter, part_path};
