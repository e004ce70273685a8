//! The block reader over every format: bounded memory whatever the file size.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::vec::Vec;

use super::csv::CsvSource;
use super::model::{Format, ReadHints, RecordingError, RecordingMeta};
use super::{csv, f32, wav};

/// Where the samples come from.
enum Source {
    /// `.wav` data or a `.f32` file: little-endian f32.
    Binary {
        file: BufReader<File>,
        remaining: u64,
        buf: Vec<u8>,
    },
    /// `.csv` rows.
    Csv(CsvSource),
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
            Format::Wav | Format::F32 => {
                let (meta, remaining) = match format {
                    Format::Wav => wav::read_wav_header(&mut file, len)?,
                    _ => f32::meta(len, hints)?,
                };
                Ok(RecordingReader {
                    meta,
                    source: Source::Binary {
                        file,
                        remaining,
                        buf: Vec::new(),
                    },
                })
            }
            Format::Csv => {
                let (meta, source) = csv::open(file, hints)?;
                Ok(RecordingReader {
                    meta,
                    source: Source::Csv(source),
                })
            }
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
                f32::decode(buf, out, ch, scale);
                Ok(want / 4 / ch)
            }
            Source::Csv(source) => source.read(out, ch, max_frames, scale),
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
