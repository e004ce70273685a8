//! What every recording format shares: the format, how a recording ended, its metadata, errors.

use std::io;
use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;

/// The on-disk format, chosen by the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.wav`: RIFF/WAVE, WAVE_FORMAT_EXTENSIBLE, IEEE float 32-bit, LIST/INFO metadata.
    Wav,
    /// `.csv`: header `t,<channel>,...`, then one row per sample, `t` in Unix seconds (µs resolution).
    Csv,
    /// `.f32`: raw interleaved little-endian f32, no header (like the meter's raw stream).
    F32,
}

impl Format {
    /// `.wav`, `.csv` or `.f32` (case-insensitive); anything else is `None`.
    /// A trailing `.part` (an unfinished recording) is looked through.
    pub fn from_path(path: &Path) -> Option<Format> {
        let mut ext = path.extension()?.to_str()?.to_ascii_lowercase();
        if ext == "part" {
            ext = Path::new(path.file_stem()?)
                .extension()?
                .to_str()?
                .to_ascii_lowercase();
        }
        match ext.as_str() {
            "wav" => Some(Format::Wav),
            "csv" => Some(Format::Csv),
            "f32" | "raw" => Some(Format::F32),
            _ => None,
        }
    }
}

/// How a recording ended; stored in the WAV INFO comment, fixed width so it can be patched. (Not
/// the meter's MQTT status payload, which is [`wire::mqtt::Status`](crate::wire::mqtt::Status).)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingStatus {
    /// Still being written (or the writer was killed).
    Recording,
    /// All requested samples were written.
    Complete,
    /// Stopped early by the user (Ctrl-C); the meter was stopped cleanly.
    Interrupted,
    /// Ended early by an error (connection lost, disk full...).
    Incomplete,
}

impl RecordingStatus {
    /// The text stored in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingStatus::Recording => "recording",
            RecordingStatus::Complete => "complete",
            RecordingStatus::Interrupted => "interrupted",
            RecordingStatus::Incomplete => "incomplete",
        }
    }
    pub(super) fn parse(s: &str) -> Option<RecordingStatus> {
        match s.trim() {
            "recording" => Some(RecordingStatus::Recording),
            "complete" => Some(RecordingStatus::Complete),
            "interrupted" => Some(RecordingStatus::Interrupted),
            "incomplete" => Some(RecordingStatus::Incomplete),
            _ => None,
        }
    }
}

/// What a recording says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingMeta {
    /// Samples per second (per channel).
    pub rate_hz: u32,
    /// Channel names in file order (`v_l1`, `i_l1`, ...).
    pub channels: Vec<String>,
    /// Unit per channel (`V`, `mA`, `W`, `VAR`); may be empty when unknown.
    pub units: Vec<String>,
    /// The meter's `startTs` in microseconds since the Unix epoch, if known.
    pub start_unix_us: Option<i64>,
    /// The meter's name, if known.
    pub name: Option<String>,
    /// How the recording ended (WAV only; other formats report [`RecordingStatus::Complete`]).
    pub status: RecordingStatus,
    /// Packets the meter dropped during the recording (zero-filled), if recorded.
    pub lost_packets: u64,
    /// True when the file is shorter than its header says (a writer that was killed).
    pub truncated: bool,
}

impl RecordingMeta {
    /// Metadata for a new recording of `channels` at `rate_hz`.
    pub fn new(rate_hz: u32, channels: Vec<String>, units: Vec<String>) -> RecordingMeta {
        RecordingMeta {
            rate_hz,
            channels,
            units,
            start_unix_us: None,
            name: None,
            status: RecordingStatus::Recording,
            lost_packets: 0,
            truncated: false,
        }
    }
}

/// Channel names for a `measures` value as the meter reports it (`v,i,v,i,v,i`, `v,i_L2`,
/// `p,p,p,q,q,q`, `v,v,v,i,i,i_RMS`, and the accepted short spellings).
pub fn channel_names(measures: &str) -> Option<Vec<String>> {
    let names: &[&str] = match measures.trim() {
        "" | "v,i" | "v,i,v,i,v,i" => &["v_l1", "i_l1", "v_l2", "i_l2", "v_l3", "i_l3"],
        "v,i_L1" => &["v_l1", "i_l1"],
        "v,i_L2" => &["v_l2", "i_l2"],
        "v,i_L3" => &["v_l3", "i_l3"],
        "p,q" | "p,p,p,q,q,q" => &["p_l1", "p_l2", "p_l3", "q_l1", "q_l2", "q_l3"],
        "v,i_RMS" | "v,v,v,i,i,i_RMS" => &[
            "vrms_l1", "vrms_l2", "vrms_l3", "irms_l1", "irms_l2", "irms_l3",
        ],
        _ => return None,
    };
    Some(names.iter().map(|s| s.to_string()).collect())
}

/// Parses the meter's `"<unix>.<mmm>"` timestamp into microseconds.
pub fn parse_unix_ts_us(s: &str) -> Option<i64> {
    let (secs, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    let secs: i64 = secs.parse().ok()?;
    let mut us: i64 = 0;
    let mut scale = 100_000;
    for b in frac.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        us += i64::from(b - b'0') * scale;
        scale /= 10;
    }
    secs.checked_mul(1_000_000)?.checked_add(us)
}

/// Why a recording could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingError {
    /// The file could not be read.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The extension is not `.wav`, `.csv` or `.f32`.
    #[error("unknown recording format (use .wav, .csv or .f32)")]
    UnknownFormat,
    /// The WAV structure is wrong; `field` names the offending part.
    #[error("not a usable WAV file: {field}: {reason}")]
    Wav {
        /// Chunk or field.
        field: &'static str,
        /// What was expected.
        reason: String,
    },
    /// A CSV line does not parse.
    #[error("CSV line {line}: {reason}")]
    Csv {
        /// 1-based line number.
        line: u64,
        /// What was wrong.
        reason: String,
    },
    /// A parameter needed to read the file is missing or out of range.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The parameter.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// What the reader needs for formats that do not describe themselves (`.f32`; `.csv` without a
/// second row to derive the rate from).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReadHints {
    /// Sample rate; required for `.f32` (the file does not say it, and a guess would silently
    /// shift every frequency and time).
    pub rate_hz: Option<u32>,
    /// Channel names; `.f32` default the six waveforms `v_l1,i_l1,...`.
    pub channels: Option<Vec<String>>,
}
