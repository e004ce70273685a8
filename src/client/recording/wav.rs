//! `.wav`: RIFF/WAVE, WAVE_FORMAT_EXTENSIBLE, IEEE float 32-bit, with the recording's metadata in a
//! LIST/INFO chunk whose fixed-width fields (`lostPackets`, `status`) are patched in place.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use super::model::{RecordingError, RecordingMeta, RecordingStatus, parse_unix_ts_us};

const STATUS_WIDTH: usize = 11;
const LOST_WIDTH: usize = 10;

/// Byte offsets of the WAV header fields patched on checkpoint and finish.
#[derive(Debug, Clone, Copy)]
pub(super) struct WavLayout {
    fact_frames_at: u64,
    status_at: u64,
    lost_at: u64,
    data_size_at: u64,
    data_start: u64,
}

/// Largest WAV data chunk (the RIFF size field is 32 bits).
pub(super) const WAV_MAX_DATA: u64 = u32::MAX as u64 - 4096;

/// Patches the header of the file being written for `frames` samples per channel: sizes, frame
/// count, status and lost packets. The file position is kept.
pub(super) fn patch_header(
    file: &mut File,
    l: &WavLayout,
    frames: u64,
    channels: usize,
    lost_packets: u64,
    status: RecordingStatus,
) -> Result<(), RecordingError> {
    let data_bytes = frames * channels as u64 * 4;
    let end = file.stream_position()?;
    let data_size = u32::try_from(data_bytes).unwrap_or(u32::MAX);
    let riff_size = u32::try_from(l.data_start - 8 + data_bytes).unwrap_or(u32::MAX);
    file.seek(SeekFrom::Start(4))?;
    file.write_all(&riff_size.to_le_bytes())?;
    file.seek(SeekFrom::Start(l.fact_frames_at))?;
    file.write_all(&u32::try_from(frames).unwrap_or(u32::MAX).to_le_bytes())?;
    file.seek(SeekFrom::Start(l.status_at))?;
    file.write_all(format!("{:<STATUS_WIDTH$}", status.as_str()).as_bytes())?;
    file.seek(SeekFrom::Start(l.lost_at))?;
    let lost = lost_packets.min(9_999_999_999);
    file.write_all(format!("{lost:0LOST_WIDTH$}").as_bytes())?;
    file.seek(SeekFrom::Start(l.data_size_at))?;
    file.write_all(&data_size.to_le_bytes())?;
    file.seek(SeekFrom::Start(end))?;
    Ok(())
}

pub(super) fn info_sub(buf: &mut Vec<u8>, id: &[u8; 4], text: &str) -> usize {
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

pub(super) fn write_wav_header(
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
        RecordingStatus::Recording.as_str()
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

pub(super) fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
}
pub(super) fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
}

pub(super) fn read_wav_header(
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
    meta.status = RecordingStatus::Complete;
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

pub(super) fn parse_info(body: &[u8], meta: &mut RecordingMeta) {
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
                        "status" => {
                            meta.status =
                                RecordingStatus::parse(v).unwrap_or(RecordingStatus::Complete)
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        at += 8 + size + (size & 1);
    }
}
