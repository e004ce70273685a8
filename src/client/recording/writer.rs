//! The crash-safe writer over every format (see the [module docs](super)).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::string::String;
use std::vec::Vec;

use super::model::{Format, RecordingError, RecordingMeta, RecordingStatus};
use super::wav::{self, WAV_MAX_DATA, WavLayout};
use super::{csv, f32};

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
                reason: std::format!("{} channels (1-64 supported)", meta.channels.len()),
            });
        }
        let mut out = BufWriter::with_capacity(1 << 16, self.file);
        let mut layout = None;
        match self.format {
            Format::Wav => layout = Some(wav::write_wav_header(&mut out, &meta)?),
            Format::Csv => csv::write_header(&mut out, &meta)?,
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
            line: String::new(),
        })
    }
}

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
    line: String,
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
                reason: std::format!(
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
                f32::write_samples(&mut self.out, interleaved, &mut self.scratch)?;
            }
            Format::Csv => csv::write_rows(
                &mut self.out,
                &mut self.line,
                interleaved,
                self.channels,
                self.rate_hz,
                self.start_us,
                self.frames,
            )?,
        }
        self.frames += new_frames;
        Ok(())
    }

    /// Flushes and patches the header, so the file on disk is valid up to here.
    pub fn checkpoint(&mut self) -> Result<(), RecordingError> {
        self.patch(RecordingStatus::Recording)
    }

    fn patch(&mut self, status: RecordingStatus) -> Result<(), RecordingError> {
        self.out.flush()?;
        if let Some(l) = self.layout {
            wav::patch_header(
                self.out.get_mut(),
                &l,
                self.frames,
                self.channels,
                self.lost_packets,
                status,
            )?;
        }
        Ok(())
    }

    /// Finalises the file with `status`. [`RecordingStatus::Complete`] and [`RecordingStatus::Interrupted`] rename
    /// it to its final name; [`RecordingStatus::Incomplete`] leaves it as `<FILE>.part` (flagged by name
    /// and, for WAV, by its INFO comment). Returns where the file is.
    pub fn finish(mut self, status: RecordingStatus) -> Result<PathBuf, RecordingError> {
        self.patch(status)?;
        self.out.get_ref().sync_all()?;
        match status {
            RecordingStatus::Complete | RecordingStatus::Interrupted => {
                std::fs::rename(&self.part_path, &self.final_path)?;
                Ok(self.final_path)
            }
            RecordingStatus::Recording | RecordingStatus::Incomplete => Ok(self.part_path),
        }
    }
}
