//! Recording files: 32-bit float WAV (channel names in a LIST/INFO chunk), CSV with a timestamp per
//! sample, raw little-endian f32. Written crash-safely, read back for `analyze`.
//!
//! Crash safety: a recording is written to `<FILE>.part` and renamed to `<FILE>` only when it is
//! finished (the requested number of samples, or a Ctrl-C that stopped the meter cleanly). A WAV
//! header is re-patched on every [`RecordingWriter::checkpoint`], so even a `.part` left by a killed
//! process is a valid WAV of everything checkpointed; its INFO comment then still says
//! `status=recording`. A recording that ended early because of an error is finalised (valid header,
//! `status=incomplete`) and left as `.part`: nothing half-written is left under the final name.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

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

/// How a recording ended; stored in the WAV INFO comment, fixed width so it can be patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Still being written (or the writer was killed).
    Recording,
    /// All requested samples were written.
    Complete,
    /// Stopped early by the user (Ctrl-C); the meter was stopped cleanly.
    Interrupted,
    /// Ended early by an error (connection lost, disk full...).
    Incomplete,
}

impl Status {
    /// The text stored in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Recording => "recording",
            Status::Complete => "complete",
            Status::Interrupted => "interrupted",
            Status::Incomplete => "incomplete",
        }
    }
    fn parse(s: &str) -> Option<Status> {
        match s.trim() {
            "recording" => Some(Status::Recording),
            "complete" => Some(Status::Complete),
            "interrupted" => Some(Status::Interrupted),
            "incomplete" => Some(Status::Incomplete),
            _ => None,
        }
    }
}

const STATUS_WIDTH: usize = 11;
const LOST_WIDTH: usize = 10;

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
    /// How the recording ended (WAV only; other formats report [`Status::Complete`]).
    pub status: Status,
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
            status: Status::Recording,
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

// ---------------------------------------------------------------------------------------------------
// Writer

/// An output file that exists (so it is known to be writable) but has no header yet.
#[derive(Debug)]
pub struct PendingRecording {
    format: Format,
    final_path: PathBuf,
    part_path: PathBuf,
    file: File,
}

/// The `.part` path a recording is written to before it is finished.
pub fn part_path(path: &Path) -> PathBuf {
    let mut s = std::ffi::OsString::from(path.as_os_str());
    s.push(".part");
    PathBuf::from(s)
}

impl PendingRecording {
    /// Creates `<path>.part` now, so that an unwritable destination is reported before the meter
    /// starts sampling.
    pub fn create(path: &Path) -> Result<PendingRecording, RecordingError> {
        let format = Format::from_path(path).ok_or(RecordingError::UnknownFormat)?;
        let part_path = part_path(path);
        let file = File::create(&part_path)?;
        Ok(PendingRecording {
            format,
            final_path: path.to_path_buf(),
            part_path,
            file,
        })
    }

    /// The format chosen from the extension.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Removes the `.part` file (nothing was recorded).
    pub fn discard(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.part_path);
    }

    /// Writes the header; the file is then ready for samples.
    pub fn start(self, meta: RecordingMeta) -> Result<RecordingWriter, RecordingError> {
        if meta.rate_hz == 0 {
            return Err(RecordingError::Invalid {
                field: "rate",
                reason: "must be at least 1 Hz".into(),
            });
        }
        if meta.channels.is_empty() || meta.channels.len() > 64 {
            return Err(RecordingError::Invalid {
                field: "channels",
                reason: format!("{} channels (1-64 supported)", meta.channels.len()),
            });
        }
        let mut out = BufWriter::with_capacity(1 << 16, self.file);
        let mut layout = None;
        match self.format {
            Format::Wav => layout = Some(write_wav_header(&mut out, &meta)?),
            Format::Csv => {
                let mut line = String::from("t");
                for c in &meta.channels {
                    line.push(',');
                    line.push_str(c);
                }
                line.push('\n');
                out.write_all(line.as_bytes())?;
            }
            Format::F32 => {}
        }
        Ok(RecordingWriter {
            format: self.format,
            final_path: self.final_path,
            part_path: self.part_path,
            out,
            layout,
            channels: meta.channels.len(),
            rate_hz: meta.rate_hz,
            start_us: meta.start_unix_us.unwrap_or(0),
            frames: 0,
            lost_packets: 0,
            scratch: Vec::new(),
        })
    }
}

/// Byte offsets of the WAV header fields patched on checkpoint and finish.
#[derive(Debug, Clone, Copy)]
struct WavLayout {
    fact_frames_at: u64,
    status_at: u64,
    lost_at: u64,
    data_size_at: u64,
    data_start: u64,
}

/// Largest WAV data chunk (the RIFF size field is 32 bits).
const WAV_MAX_DATA: u64 = u32::MAX as u64 - 4096;

/// Writes samples of one recording; see the module docs for the crash-safety guarantees.
#[derive(Debug)]
pub struct RecordingWriter {
    format: Format,
    final_path: PathBuf,
    part_path: PathBuf,
    out: BufWriter<File>,
    layout: Option<WavLayout>,
    channels: usize,
    rate_hz: u32,
    start_us: i64,
    frames: u64,
    lost_packets: u64,
    scratch: Vec<u8>,
}

impl RecordingWriter {
    /// Samples (frames) written per channel so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Where the file will be when finished.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Where the file is while being written.
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    /// Records the number of packets the meter dropped (stored in the WAV comment).
    pub fn set_lost_packets(&mut self, lost: u64) {
        self.lost_packets = lost;
    }

    /// Appends interleaved samples; a trailing partial frame is an error.
    pub fn write(&mut self, interleaved: &[f32]) -> Result<(), RecordingError> {
        if !interleaved.len().is_multiple_of(self.channels) {
            return Err(RecordingError::Invalid {
                field: "samples",
                reason: format!(
                    "{} values is not a whole number of {}-channel frames",
                    interleaved.len(),
                    self.channels
                ),
            });
        }
        let new_frames = (interleaved.len() / self.channels) as u64;
        match self.format {
            Format::Wav | Format::F32 => {
                if self.format == Format::Wav
                    && (self.frames + new_frames) * self.channels as u64 * 4 > WAV_MAX_DATA
                {
                    return Err(RecordingError::Invalid {
                        field: "duration",
                        reason: "a WAV file holds at most 4 GiB; record to .f32 instead".into(),
                    });
                }
                self.scratch.clear();
                self.scratch.reserve(interleaved.len() * 4);
                for v in interleaved {
                    self.scratch.extend_from_slice(&v.to_le_bytes());
                }
                self.out.write_all(&self.scratch)?;
            }
            Format::Csv => {
                use std::fmt::Write as _;
                let mut line = String::with_capacity(16 * (self.channels + 1));
                let rate = i64::from(self.rate_hz);
                for (k, frame) in interleaved.chunks_exact(self.channels).enumerate() {
                    let idx = self.frames as i64 + k as i64;
                    let t = self.start_us + (idx * 1_000_000 + rate / 2) / rate;
                    line.clear();
                    let _ = write!(
                        line,
                        "{}.{:06}",
                        t.div_euclid(1_000_000),
                        t.rem_euclid(1_000_000)
                    );
                    for v in frame {
                        let _ = write!(line, ",{v}");
                    }
                    line.push('\n');
                    self.out.write_all(line.as_bytes())?;
                }
            }
        }
        self.frames += new_frames;
        Ok(())
    }

    /// Flushes and patches the header, so the file on disk is valid up to here.
    pub fn checkpoint(&mut self) -> Result<(), RecordingError> {
        self.patch(Status::Recording)
    }

    fn patch(&mut self, status: Status) -> Result<(), RecordingError> {
        self.out.flush()?;
        if let Some(l) = self.layout {
            let data_bytes = self.frames * self.channels as u64 * 4;
            let file = self.out.get_mut();
            let end = file.stream_position()?;
            let data_size = u32::try_from(data_bytes).unwrap_or(u32::MAX);
            let riff_size = u32::try_from(l.data_start - 8 + data_bytes).unwrap_or(u32::MAX);
            file.seek(SeekFrom::Start(4))?;
            file.write_all(&riff_size.to_le_bytes())?;
            file.seek(SeekFrom::Start(l.fact_frames_at))?;
            file.write_all(&u32::try_from(self.frames).unwrap_or(u32::MAX).to_le_bytes())?;
            file.seek(SeekFrom::Start(l.status_at))?;
            file.write_all(format!("{:<STATUS_WIDTH$}", status.as_str()).as_bytes())?;
            file.seek(SeekFrom::Start(l.lost_at))?;
            let lost = self.lost_packets.min(9_999_999_999);
            file.write_all(format!("{lost:0LOST_WIDTH$}").as_bytes())?;
            file.seek(SeekFrom::Start(l.data_size_at))?;
            file.write_all(&data_size.to_le_bytes())?;
            file.seek(SeekFrom::Start(end))?;
        }
        Ok(())
    }

    /// Finalises the file with `status`. [`Status::Complete`] and [`Status::Interrupted`] rename
    /// it to its final name; [`Status::Incomplete`] leaves it as `<FILE>.part` (flagged by name
    /// and, for WAV, by its INFO comment). Returns where the file is.
    pub fn finish(mut self, status: Status) -> Result<PathBuf, RecordingError> {
        self.patch(status)?;
        self.out.get_ref().sync_all()?;
        match status {
            Status::Complete | Status::Interrupted => {
                std::fs::rename(&self.part_path, &self.final_path)?;
                Ok(self.final_path)
            }
            Status::Recording | Status::Incomplete => Ok(self.part_path),
        }
    }
}

fn info_sub(buf: &mut Vec<u8>, id: &[u8; 4], text: &str) -> usize {
    buf.extend_from_slice(id);
    let len = text.len() + 1;
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(0).to_le_bytes());
    let text_at = buf.len();
    buf.extend_from_slice(text.as_bytes());
    buf.push(0);
    if len % 2 == 1 {
        buf.push(0);
    }
    text_at
}

fn write_wav_header(
    out: &mut impl Write,
    meta: &RecordingMeta,
) -> Result<WavLayout, RecordingError> {
    let ch = u16::try_from(meta.channels.len()).unwrap_or(1);
    let mut h: Vec<u8> = Vec::with_capacity(512);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(b"WAVE");
    // fmt: WAVE_FORMAT_EXTENSIBLE, IEEE float
    h.extend_from_slice(b"fmt ");
    h.extend_from_slice(&40u32.to_le_bytes());
    h.extend_from_slice(&0xFFFEu16.to_le_bytes());
    h.extend_from_slice(&ch.to_le_bytes());
    h.extend_from_slice(&meta.rate_hz.to_le_bytes());
    h.extend_from_slice(&(meta.rate_hz * u32::from(ch) * 4).to_le_bytes());
    h.extend_from_slice(&(ch * 4).to_le_bytes());
    h.extend_from_slice(&32u16.to_le_bytes());
    h.extend_from_slice(&22u16.to_le_bytes());
    h.extend_from_slice(&32u16.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&KSDATAFORMAT_SUBTYPE_IEEE_FLOAT);
    // fact: frame count
    h.extend_from_slice(b"fact");
    h.extend_from_slice(&4u32.to_le_bytes());
    let fact_frames_at = h.len() as u64;
    h.extend_from_slice(&0u32.to_le_bytes());
    // LIST/INFO
    let list_at = h.len();
    h.extend_from_slice(b"LIST");
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(b"INFO");
    if let Some(name) = &meta.name {
        info_sub(&mut h, b"INAM", name);
    }
    info_sub(
        &mut h,
        b"ISFT",
        concat!("smartmeter ", env!("CARGO_PKG_VERSION")),
    );
    let start = meta
        .start_unix_us
        .map(|us| {
            format!(
                "{}.{:06}",
                us.div_euclid(1_000_000),
                us.rem_euclid(1_000_000)
            )
        })
        .unwrap_or_default();
    let head = format!(
        "channels={};units={};rate={};startTs={};lostPackets=",
        meta.channels.join(","),
        meta.units.join(","),
        meta.rate_hz,
        start
    );
    let comment = format!(
        "{head}{:0LOST_WIDTH$};status={:<STATUS_WIDTH$}",
        0,
        Status::Recording.as_str()
    );
    let text_at = info_sub(&mut h, b"ICMT", &comment);
    let lost_at = (text_at + head.len()) as u64;
    let status_at = lost_at + LOST_WIDTH as u64 + ";status=".len() as u64;
    let list_len = u32::try_from(h.len() - list_at - 8).unwrap_or(0);
    if let Some(slot) = h.get_mut(list_at + 4..list_at + 8) {
        slot.copy_from_slice(&list_len.to_le_bytes());
    }
    h.extend_from_slice(b"data");
    let data_size_at = h.len() as u64;
    h.extend_from_slice(&0u32.to_le_bytes());
    let data_start = h.len() as u64;
    out.write_all(&h)?;
    Ok(WavLayout {
        fact_frames_at,
        status_at,
        lost_at,
        data_size_at,
        data_start,
    })
}

const KSDATAFORMAT_SUBTYPE_IEEE_FLOAT: [u8; 16] = [
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

// ---------------------------------------------------------------------------------------------------
// Reader

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

enum Source {
    Binary {
        file: BufReader<File>,
        remaining: u64,
        buf: Vec<u8>,
    },
    Csv {
        file: BufReader<File>,
        line: String,
        line_no: u64,
        pending: Option<Vec<f32>>,
    },
}

/// Reads a recording block by block (bounded memory, whatever the file size).
pub struct RecordingReader {
    meta: RecordingMeta,
    source: Source,
}

impl core::fmt::Debug for RecordingReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecordingReader")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl RecordingReader {
    /// Opens `path`; the format comes from the extension.
    pub fn open(path: &Path, hints: &ReadHints) -> Result<RecordingReader, RecordingError> {
        let format = Format::from_path(path).ok_or(RecordingError::UnknownFormat)?;
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut file = BufReader::with_capacity(1 << 16, file);
        match format {
            Format::Wav => {
                let (meta, remaining) = read_wav_header(&mut file, len)?;
                Ok(RecordingReader {
                    meta,
                    source: Source::Binary {
                        file,
                        remaining,
                        buf: Vec::new(),
                    },
                })
            }
            Format::F32 => {
                let channels = hints
                    .channels
                    .clone()
                    .unwrap_or_else(|| channel_names("").unwrap_or_default());
                let rate_hz = hints.rate_hz.ok_or(RecordingError::Invalid {
                    field: "rate",
                    reason: "a .f32 file does not record its sample rate; it must be given".into(),
                })?;
                if channels.is_empty() || rate_hz == 0 {
                    return Err(RecordingError::Invalid {
                        field: "channels/rate",
                        reason: "need at least one channel and a rate of at least 1 Hz".into(),
                    });
                }
                let frame_bytes = channels.len() as u64 * 4;
                let mut meta = RecordingMeta::new(rate_hz, channels, Vec::new());
                meta.status = Status::Complete;
                meta.truncated = len % frame_bytes != 0;
                Ok(RecordingReader {
                    meta,
                    source: Source::Binary {
                        file,
                        remaining: len - len % frame_bytes,
                        buf: Vec::new(),
                    },
                })
            }
            Format::Csv => open_csv(file, hints),
        }
    }

    /// What the file says about itself.
    pub fn meta(&self) -> &RecordingMeta {
        &self.meta
    }

    /// Channels per frame.
    pub fn channels(&self) -> usize {
        self.meta.channels.len()
    }

    /// Replaces `out` with up to `max_frames` interleaved frames; returns the number of frames read
    /// (0 at the end of the file).
    pub fn read_frames(
        &mut self,
        out: &mut Vec<f32>,
        max_frames: usize,
    ) -> Result<usize, RecordingError> {
        self.read_frames_scaled(out, max_frames, None)
    }

    /// [`RecordingReader::read_frames`] straight into `out` (no intermediate byte buffer: the file's
    /// bytes are read into the `f32` block itself, then byte-swapped on big-endian hosts only).
    /// Returns the number of frames read.
    pub fn read_frames_direct(
        &mut self,
        out: &mut Vec<f32>,
        max_frames: usize,
    ) -> Result<usize, RecordingError> {
        let ch = self.meta.channels.len().max(1);
        let Source::Binary {
            file, remaining, ..
        } = &mut self.source
        else {
            return self.read_frames(out, max_frames);
        };
        let frame_bytes = ch as u64 * 4;
        let frames =
            usize::try_from((*remaining / frame_bytes).min(max_frames as u64)).unwrap_or(0);
        out.clear();
        out.resize(frames * ch, 0.0);
        file.read_exact(bytemuck::cast_slice_mut::<f32, u8>(out.as_mut_slice()))?;
        *remaining -= (frames * ch * 4) as u64;
        if cfg!(target_endian = "big") {
            for x in out.iter_mut() {
                *x = f32::from_bits(u32::from_le(x.to_bits()));
            }
        }
        Ok(frames)
    }

    /// [`RecordingReader::read_frames`], multiplying channel `k` by `scale[k]` while decoding (one
    /// pass over the data; `analyze` uses it to turn mA into A).
    pub fn read_frames_scaled(
        &mut self,
        out: &mut Vec<f32>,
        max_frames: usize,
        scale: Option<&[f32; 6]>,
    ) -> Result<usize, RecordingError> {
        out.clear();
        let ch = self.meta.channels.len();
        match &mut self.source {
            Source::Binary {
                file,
                remaining,
                buf,
            } => {
                let frame_bytes = ch as u64 * 4;
                let want = (*remaining / frame_bytes).min(max_frames as u64) * frame_bytes;
                let want = usize::try_from(want).unwrap_or(0);
                buf.resize(want, 0);
                file.read_exact(buf)?;
                *remaining -= want as u64;
                decode(buf, out, ch, scale);
                Ok(want / 4 / ch)
            }
            Source::Csv {
                file,
                line,
                line_no,
                pending,
            } => {
                let mut frames = 0;
                if let Some(ahead) = pending.take() {
                    frames += ahead.len() / ch;
                    out.extend_from_slice(&ahead);
                }
                while frames < max_frames {
                    line.clear();
                    if file.read_line(line)? == 0 {
                        break;
                    }
                    *line_no += 1;
                    if line.trim().is_empty() {
                        continue;
                    }
                    let row = parse_csv_row(line, ch, *line_no)?;
                    out.extend(row.1);
                    frames += 1;
                }
                if let Some(scale) = scale {
                    for (x, k) in out.iter_mut().zip(scale.iter().take(ch.min(6)).cycle()) {
                        *x *= k;
                    }
                }
                Ok(frames)
            }
        }
    }

    /// Reads the whole file into memory (interleaved). For tests and small files.
    pub fn read_all(&mut self) -> Result<Vec<f32>, RecordingError> {
        let mut all = Vec::new();
        let mut block = Vec::new();
        while self.read_frames(&mut block, 1 << 16)? > 0 {
            all.extend_from_slice(&block);
        }
        Ok(all)
    }
}

/// Little-endian f32 bytes to values, scaled per channel, in one pass.
fn decode(bytes: &[u8], out: &mut Vec<f32>, ch: usize, scale: Option<&[f32; 6]>) {
    out.reserve(bytes.len() / 4);
    match (scale, ch) {
        (None, _) => {
            let (quads, _) = bytes.as_chunks::<4>();
            out.extend(quads.iter().map(|q| f32::from_le_bytes(*q)));
        }
        (Some(s), 6) => {
            let (frames, _) = bytes.as_chunks::<24>();
            for f in frames {
                let (quads, _) = f.as_chunks::<4>();
                out.extend(quads.iter().zip(s).map(|(q, k)| f32::from_le_bytes(*q) * k));
            }
        }
        (Some(s), 2) => {
            let (frames, _) = bytes.as_chunks::<8>();
            let (s0, s1) = (
                s.first().copied().unwrap_or(1.0),
                s.get(1).copied().unwrap_or(1.0),
            );
            for f in frames {
                let (a, b) = f.split_at(4);
                let a: [u8; 4] = a.try_into().unwrap_or_default();
                let b: [u8; 4] = b.try_into().unwrap_or_default();
                out.push(f32::from_le_bytes(a) * s0);
                out.push(f32::from_le_bytes(b) * s1);
            }
        }
        (Some(s), _) => {
            let (quads, _) = bytes.as_chunks::<4>();
            let n = ch.clamp(1, 6);
            out.extend(
                quads
                    .iter()
                    .zip(s.iter().take(n).cycle())
                    .map(|(q, k)| f32::from_le_bytes(*q) * k),
            );
        }
    }
}

fn parse_csv_row(line: &str, ch: usize, line_no: u64) -> Result<(f64, Vec<f32>), RecordingError> {
    let bad = |reason: String| RecordingError::Csv {
        line: line_no,
        reason,
    };
    let mut fields = line.trim_end().split(',');
    let t: f64 = fields
        .next()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| bad("first column must be the timestamp t".into()))?;
    let mut values = Vec::with_capacity(ch);
    for (i, f) in fields.enumerate() {
        let v: f32 = f
            .trim()
            .parse()
            .map_err(|_| bad(format!("column {} is not a number: `{}`", i + 2, f.trim())))?;
        values.push(v);
    }
    if values.len() != ch {
        return Err(bad(format!(
            "{} values, the header names {ch} channels",
            values.len()
        )));
    }
    Ok((t, values))
}

fn open_csv(
    mut file: BufReader<File>,
    hints: &ReadHints,
) -> Result<RecordingReader, RecordingError> {
    let mut header = String::new();
    file.read_line(&mut header)?;
    let mut cols = header.trim_end().split(',');
    if cols.next().map(str::trim) != Some("t") {
        return Err(RecordingError::Csv {
            line: 1,
            reason: "header must start with `t`".into(),
        });
    }
    let channels: Vec<String> = cols.map(|c| c.trim().to_string()).collect();
    if channels.is_empty() {
        return Err(RecordingError::Csv {
            line: 1,
            reason: "header names no channel".into(),
        });
    }
    // Derive the rate from the first rows (bounded look-ahead): timestamps have µs resolution, so
    // one interval alone cannot tell 3000 Hz from 3003 Hz.
    let mut pending = Vec::new();
    let mut first_last: Option<(i64, i64)> = None;
    let mut rows = 0u64;
    let mut line = String::new();
    let mut line_no = 1u64;
    while rows < 1024 {
        line.clear();
        if file.read_line(&mut line)? == 0 {
            break;
        }
        line_no += 1;
        if line.trim().is_empty() {
            continue;
        }
        let (_, values) = parse_csv_row(&line, channels.len(), line_no)?;
        let t_us =
            line.split(',')
                .next()
                .and_then(parse_unix_ts_us)
                .ok_or(RecordingError::Csv {
                    line: line_no,
                    reason: "bad timestamp".into(),
                })?;
        first_last = Some((first_last.map_or(t_us, |(f, _)| f), t_us));
        pending.extend(values);
        rows += 1;
    }
    let derived = match first_last {
        Some((f, l)) if l > f => Some(((rows - 1) as f64 * 1e6 / (l - f) as f64).round() as u32),
        _ => None,
    };
    let rate_hz = hints.rate_hz.or(derived).unwrap_or(8000).max(1);
    let mut meta = RecordingMeta::new(rate_hz, channels, Vec::new());
    meta.status = Status::Complete;
    meta.start_unix_us = first_last.map(|(f, _)| f);
    let pending = (!pending.is_empty()).then_some(pending);
    Ok(RecordingReader {
        meta,
        source: Source::Csv {
            file,
            line: String::new(),
            line_no: 3,
            pending,
        },
    })
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
}
fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
}

fn read_wav_header(
    file: &mut BufReader<File>,
    len: u64,
) -> Result<(RecordingMeta, u64), RecordingError> {
    let wav = |field, reason: &str| RecordingError::Wav {
        field,
        reason: reason.into(),
    };
    let mut riff = [0u8; 12];
    file.read_exact(&mut riff)
        .map_err(|_| wav("RIFF", "file shorter than a WAV header"))?;
    if riff.get(..4) != Some(b"RIFF") || riff.get(8..12) != Some(b"WAVE") {
        return Err(wav("RIFF", "missing RIFF/WAVE signature"));
    }
    let mut pos: u64 = 12;
    let mut fmt: Option<(u16, u32)> = None;
    let mut meta = RecordingMeta::new(0, Vec::new(), Vec::new());
    meta.status = Status::Complete;
    loop {
        let mut head = [0u8; 8];
        file.read_exact(&mut head)
            .map_err(|_| wav("data", "no data chunk"))?;
        pos += 8;
        let (id, size) = head.split_at(4);
        let size = u64::from(read_u32(size, 0).unwrap_or(0));
        if id == b"data" {
            let (channels, rate) = fmt.ok_or(wav("fmt", "data chunk before the fmt chunk"))?;
            meta.rate_hz = rate;
            if meta.channels.len() != usize::from(channels) {
                meta.channels = (1..=channels).map(|i| format!("ch{i}")).collect();
                meta.units.clear();
            }
            let frame = u64::from(channels) * 4;
            let available = len.saturating_sub(pos);
            let data = size.min(available);
            meta.truncated = size > available;
            return Ok((meta, data - data % frame));
        }
        let padded = size + (size & 1);
        if id == b"fmt " || id == b"LIST" {
            if padded > 64 * 1024 {
                return Err(wav(
                    if id == b"fmt " { "fmt" } else { "LIST" },
                    "chunk larger than 64 KiB",
                ));
            }
            let mut body = vec![0u8; usize::try_from(padded).unwrap_or(0)];
            file.read_exact(&mut body)
                .map_err(|_| wav("chunk", "truncated header chunk"))?;
            if id == b"fmt " {
                let tag = read_u16(&body, 0).ok_or(wav("fmt", "too short"))?;
                let channels = read_u16(&body, 2).ok_or(wav("fmt", "too short"))?;
                let rate = read_u32(&body, 4).ok_or(wav("fmt", "too short"))?;
                let bits = read_u16(&body, 14).ok_or(wav("fmt", "too short"))?;
                let float = match tag {
                    3 => true,
                    0xFFFE => body.get(24..40) == Some(&KSDATAFORMAT_SUBTYPE_IEEE_FLOAT[..]),
                    _ => false,
                };
                if !float || bits != 32 {
                    return Err(wav("fmt", "only 32-bit IEEE float WAV is supported"));
                }
                if channels == 0 || rate == 0 {
                    return Err(wav("fmt", "zero channels or zero sample rate"));
                }
                fmt = Some((channels, rate));
            } else {
                parse_info(&body, &mut meta);
            }
        } else {
            file.seek_relative(i64::try_from(padded).unwrap_or(i64::MAX))?;
        }
        pos += padded;
    }
}

fn parse_info(body: &[u8], meta: &mut RecordingMeta) {
    if body.get(..4) != Some(b"INFO") {
        return;
    }
    let mut at = 4;
    while let (Some(id), Some(size)) = (body.get(at..at + 4), read_u32(body, at + 4)) {
        let size = size as usize;
        let text = body
            .get(at + 8..at + 8 + size)
            .map(|t| {
                String::from_utf8_lossy(t)
                    .trim_end_matches('\0')
                    .to_string()
            })
            .unwrap_or_default();
        match id {
            b"INAM" => meta.name = Some(text),
            b"ICMT" => {
                for kv in text.split(';') {
                    let Some((k, v)) = kv.split_once('=') else {
                        continue;
                    };
                    let list = || {
                        v.split(',')
                            .filter(|s| !s.is_empty())
                            .map(|s| s.to_string())
                            .collect()
                    };
                    match k {
                        "channels" => meta.channels = list(),
                        "units" => meta.units = list(),
                        "startTs" => meta.start_unix_us = parse_unix_ts_us(v),
                        "lostPackets" => meta.lost_packets = v.trim().parse().unwrap_or(0),
                        "status" => meta.status = Status::parse(v).unwrap_or(Status::Complete),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        at += 8 + size + (size & 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recording at `path` started with [`meta6`].
    fn started(path: &Path) -> RecordingWriter {
        PendingRecording::create(path)
            .unwrap()
            .start(meta6())
            .unwrap()
    }

    fn meta6() -> RecordingMeta {
        let mut m = RecordingMeta::new(
            8000,
            channel_names("v,i").unwrap(),
            ["V", "mA", "V", "mA", "V", "mA"].map(String::from).to_vec(),
        );
        m.start_unix_us = Some(1_614_697_441_119_000);
        m.name = Some("smartmeterX".into());
        m
    }

    fn samples(frames: usize) -> Vec<f32> {
        (0..frames * 6).map(|i| i as f32 * 0.5 - 7.25).collect()
    }

    #[test]
    fn wav_round_trip_with_info() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        let pending = PendingRecording::create(&path).unwrap();
        assert!(part_path(&path).exists());
        let mut w = pending.start(meta6()).unwrap();
        let s = samples(1001);
        w.write(&s[..600]).unwrap();
        w.checkpoint().unwrap();
        w.write(&s[600..]).unwrap();
        w.set_lost_packets(3);
        assert_eq!(w.finish(Status::Complete).unwrap(), path);
        assert!(!part_path(&path).exists());
        let mut r = RecordingReader::open(&path, &ReadHints::default()).unwrap();
        let m = r.meta().clone();
        assert_eq!(m.rate_hz, 8000);
        assert_eq!(m.channels, meta6().channels);
        assert_eq!(m.units, meta6().units);
        assert_eq!(m.start_unix_us, Some(1_614_697_441_119_000));
        assert_eq!(m.name.as_deref(), Some("smartmeterX"));
        assert_eq!(m.status, Status::Complete);
        assert_eq!(m.lost_packets, 3);
        assert!(!m.truncated);
        assert_eq!(r.read_all().unwrap(), s);
        // The header sizes are consistent: RIFF size = file length - 8.
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(read_u32(&bytes, 4).unwrap() as usize, bytes.len() - 8);
    }

    #[test]
    fn killed_writer_leaves_flagged_valid_part() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        let mut w = started(&path);
        w.write(&samples(100)).unwrap();
        w.checkpoint().unwrap();
        w.write(&samples(50)).unwrap();
        let part = w.part_path().to_path_buf();
        // Simulate a kill: the BufWriter is flushed on drop but the header is not patched again.
        drop(w);
        let mut r = RecordingReader::open(&part, &ReadHints::default()).unwrap();
        assert_eq!(r.meta().status, Status::Recording);
        assert_eq!(
            r.read_all().unwrap().len(),
            600,
            "only checkpointed frames are claimed"
        );
        assert!(!path.exists());
    }

    #[test]
    fn incomplete_stays_part() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        let mut w = started(&path);
        w.write(&samples(10)).unwrap();
        let at = w.finish(Status::Incomplete).unwrap();
        assert_eq!(at, part_path(&path));
        let r = RecordingReader::open(&at, &ReadHints::default()).unwrap();
        assert_eq!(r.meta().status, Status::Incomplete);
    }

    #[test]
    fn csv_timestamps_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        let mut w = started(&path);
        let s = samples(5);
        w.write(&s).unwrap();
        w.finish(Status::Complete).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "t,v_l1,i_l1,v_l2,i_l2,v_l3,i_l3");
        assert_eq!(
            lines[1],
            "1614697441.119000,-7.25,-6.75,-6.25,-5.75,-5.25,-4.75"
        );
        assert!(lines[2].starts_with("1614697441.119125,"));
        assert_eq!(lines.len(), 6);
        let mut r = RecordingReader::open(&path, &ReadHints::default()).unwrap();
        assert_eq!(r.meta().rate_hz, 8000);
        assert_eq!(r.meta().start_unix_us, Some(1_614_697_441_119_000));
        assert_eq!(r.read_all().unwrap(), s);
    }

    #[test]
    fn f32_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.f32");
        let mut w = started(&path);
        let s = samples(33);
        w.write(&s).unwrap();
        w.finish(Status::Interrupted).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 33 * 24);
        assert!(matches!(
            RecordingReader::open(&path, &ReadHints::default()),
            Err(RecordingError::Invalid { field: "rate", .. })
        ));
        let hints = ReadHints {
            rate_hz: Some(8000),
            channels: None,
        };
        let mut r = RecordingReader::open(&path, &hints).unwrap();
        assert_eq!(r.read_all().unwrap(), s);
    }

    #[test]
    fn garbage_files_give_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.wav");
        for bytes in [
            &b""[..],
            b"RIFF\0\0\0\0WAVE",
            b"RIFF\0\0\0\0WAVEdata\x10\0\0\0",
            b"RIFX0000WAVE",
        ] {
            std::fs::write(&p, bytes).unwrap();
            assert!(matches!(
                RecordingReader::open(&p, &ReadHints::default()),
                Err(RecordingError::Wav { .. })
            ));
        }
        let c = dir.path().join("g.csv");
        std::fs::write(&c, "t,a\n1.0,x\n").unwrap();
        assert!(matches!(
            RecordingReader::open(&c, &ReadHints::default()),
            Err(RecordingError::Csv { line: 2, .. })
        ));
        assert!(matches!(
            PendingRecording::create(&dir.path().join("a.mp3")),
            Err(RecordingError::UnknownFormat)
        ));
        assert!(PendingRecording::create(&dir.path().join("no/such/dir.wav")).is_err());
    }

    #[test]
    fn names_and_timestamps() {
        assert_eq!(channel_names("v,i_L2").unwrap(), ["v_l2", "i_l2"]);
        assert_eq!(channel_names("p,q").unwrap().len(), 6);
        assert!(channel_names("x").is_none());
        assert_eq!(
            parse_unix_ts_us("1614697441.119"),
            Some(1_614_697_441_119_000)
        );
        assert_eq!(parse_unix_ts_us("12"), Some(12_000_000));
        assert_eq!(parse_unix_ts_us("1.x"), None);
    }
}
