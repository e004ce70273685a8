//! `.f32`: raw interleaved little-endian f32, no header (like the meter's raw stream). The file does
//! not say its rate or channels: a reader must be told ([`ReadHints`]).

use std::io::Write;
use std::string::String;
use std::vec::Vec;

use super::model::{ReadHints, RecordingError, RecordingMeta, RecordingStatus, channel_names};

/// Appends `interleaved` as little-endian f32 (the sample data of `.f32` and `.wav`), through
/// `scratch` so that it is one write.
pub(super) fn write_samples(
    out: &mut impl Write,
    interleaved: &[f32],
    scratch: &mut Vec<u8>,
) -> Result<(), RecordingError> {
    scratch.clear();
    scratch.reserve(interleaved.len() * 4);
    for v in interleaved {
        scratch.extend_from_slice(&v.to_le_bytes());
    }
    out.write_all(scratch)?;
    Ok(())
}

/// The metadata of a `.f32` file of `len` bytes from the hints, and how many of its bytes are whole
/// samples.
pub(super) fn meta(len: u64, hints: &ReadHints) -> Result<(RecordingMeta, u64), RecordingError> {
    let channels: Vec<String> = hints
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
    meta.status = RecordingStatus::Complete;
    meta.truncated = !len.is_multiple_of(frame_bytes);
    Ok((meta, len - len % frame_bytes))
}

/// Little-endian f32 bytes to values, scaled per channel, in one pass (`.f32` and `.wav` data).
pub(super) fn decode(bytes: &[u8], out: &mut Vec<f32>, ch: usize, scale: Option<&[f32; 6]>) {
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
