//! The persistent record format: versioned, sequence-numbered, CRC-checked, written to alternating slots.
//!
//! Layout (little-endian): `b"SMRC"` magic, format version `u8`, kind `u8`, sequence `u32`, payload length
//! `u16`, payload (JSON of the kind's state), CRC-32 (IEEE) of everything before it.
//!
//! Each [`RecordKind`] owns two [`SlotId`]s; record `seq` goes to slot `seq % 2`. A write interrupted
//! at any byte therefore only damages the slot being written; on load the valid slot with the highest
//! sequence number wins, so the previous record is still loadable. A record that fails its checks is
//! never trusted: the engine falls back to the defaults and logs an `[E]` line.
//!
//! ```
//! use smartmeter::device::{Record, RecordKind};
//! let r = Record::new(RecordKind::Settings, 7, b"{}".to_vec()).unwrap();
//! let back = Record::decode(r.bytes()).unwrap();
//! assert_eq!((back.kind(), back.seq(), back.payload()), (RecordKind::Settings, 7, &b"{}"[..]));
//! ```

use alloc::vec::Vec;

/// Magic bytes at the start of every record.
pub const MAGIC: [u8; 4] = *b"SMRC";
/// Current record format version.
pub const VERSION: u8 = 1;
const HEADER: usize = 4 + 1 + 1 + 4 + 2;
/// Largest payload a record carries.
pub const MAX_PAYLOAD: usize = crate::hal::MAX_RECORD_BYTES - HEADER - 4;

pub use crate::hal::{RecordKind, SlotId};

/// The kind's code in the record header.
fn kind_code(kind: RecordKind) -> u8 {
    match kind {
        RecordKind::Settings => 1,
        RecordKind::Energy => 2,
        RecordKind::Logbook => 3,
        RecordKind::Events => 4,
    }
}

fn kind_from_code(c: u8) -> Option<RecordKind> {
    match c {
        1 => Some(RecordKind::Settings),
        2 => Some(RecordKind::Energy),
        3 => Some(RecordKind::Logbook),
        4 => Some(RecordKind::Events),
        _ => None,
    }
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Fewer bytes than the header and checksum need, or than the length field says.
    #[error("record truncated: {0} bytes")]
    Truncated(usize),
    /// The magic bytes are wrong.
    #[error("record magic mismatch")]
    Magic,
    /// Written by an unknown format version.
    #[error("unsupported record version {0}")]
    Version(u8),
    /// Unknown kind code.
    #[error("unknown record kind {0}")]
    Kind(u8),
    /// The CRC does not match: a torn or corrupted write.
    #[error("record checksum mismatch")]
    Checksum,
    /// The payload exceeds [`MAX_PAYLOAD`].
    #[error("record payload too large: {0} bytes")]
    TooLarge(usize),
    /// The payload does not decode into the kind's state.
    #[error("record payload invalid")]
    Payload,
}

/// An encoded record, ready for [`Store::save`](crate::hal::Store::save) at [`Record::slot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    kind: RecordKind,
    seq: u32,
    bytes: Vec<u8>,
}

impl Record {
    /// Encodes a payload. Fails only when the payload is larger than [`MAX_PAYLOAD`].
    pub fn new(kind: RecordKind, seq: u32, payload: Vec<u8>) -> Result<Self, RecordError> {
        let len = u16::try_from(payload.len())
            .ok()
            .filter(|&l| usize::from(l) <= MAX_PAYLOAD)
            .ok_or(RecordError::TooLarge(payload.len()))?;
        let mut bytes = Vec::with_capacity(HEADER + payload.len() + 4);
        bytes.extend_from_slice(&MAGIC);
        bytes.push(VERSION);
        bytes.push(kind_code(kind));
        bytes.extend_from_slice(&seq.to_le_bytes());
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&payload);
        let crc = crc32(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        Ok(Record { kind, seq, bytes })
    }

    /// Checks and decodes stored bytes. Never panics; trailing bytes after the CRC are ignored
    /// (a slot may be larger than the record last written into it).
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let (head, rest) = bytes
            .split_at_checked(HEADER)
            .ok_or(RecordError::Truncated(bytes.len()))?;
        let (magic, head_rest) = head.split_at_checked(4).ok_or(RecordError::Magic)?;
        if magic != MAGIC {
            return Err(RecordError::Magic);
        }
        let [version, kind, s0, s1, s2, s3, l0, l1] = *head_rest else {
            return Err(RecordError::Truncated(bytes.len()));
        };
        if version != VERSION {
            return Err(RecordError::Version(version));
        }
        let kind = kind_from_code(kind).ok_or(RecordError::Kind(kind))?;
        let seq = u32::from_le_bytes([s0, s1, s2, s3]);
        let len = usize::from(u16::from_le_bytes([l0, l1]));
        let (payload, tail) = rest
            .split_at_checked(len)
            .ok_or(RecordError::Truncated(bytes.len()))?;
        let crc_bytes: [u8; 4] = tail
            .get(..4)
            .and_then(|c| c.try_into().ok())
            .ok_or(RecordError::Truncated(bytes.len()))?;
        let total = HEADER + len;
        let body = bytes
            .get(..total)
            .ok_or(RecordError::Truncated(bytes.len()))?;
        if crc32(body) != u32::from_le_bytes(crc_bytes) {
            return Err(RecordError::Checksum);
        }
        let _ = payload;
        Ok(Record {
            kind,
            seq,
            bytes: bytes.get(..total + 4).unwrap_or(bytes).to_vec(),
        })
    }

    /// The record kind.
    pub fn kind(&self) -> RecordKind {
        self.kind
    }
    /// Sequence number (monotonic per kind).
    pub fn seq(&self) -> u32 {
        self.seq
    }
    /// Where to write it: copy `seq % 2` of its kind.
    pub fn slot(&self) -> SlotId {
        SlotId {
            kind: self.kind,
            copy: u8::from(self.seq % 2 == 1),
        }
    }
    /// The encoded bytes (header, payload, CRC).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// Consumes the record into its bytes (`Record::encode` of the API contract).
    pub fn encode(self) -> Vec<u8> {
        self.bytes
    }
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        let end = self.bytes.len().saturating_sub(4);
        self.bytes.get(HEADER..end).unwrap_or(&[])
    }
}

/// What the binding loaded from its store at boot. `Restored::default()` = nothing stored.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    slots: [Option<Vec<u8>>; SlotId::ALL.len()],
}

/// The outcome of picking the newest valid record of a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// Both slots empty: a fresh device.
    Empty,
    /// The newest valid record.
    Found(Record),
    /// Something was stored but nothing is valid.
    Corrupt(RecordError),
}

impl Restored {
    /// Adds the raw bytes read from `slot` (empty bytes = empty slot).
    pub fn insert(&mut self, slot: SlotId, bytes: Vec<u8>) {
        if let Some(s) = self.slots.get_mut(slot.index()) {
            *s = if bytes.is_empty() { None } else { Some(bytes) };
        }
    }

    /// Builder form of [`Restored::insert`].
    pub fn with(mut self, slot: SlotId, bytes: Vec<u8>) -> Self {
        self.insert(slot, bytes);
        self
    }

    /// Picks the valid record of `kind` with the highest sequence number (wrapping-aware).
    pub fn pick(&self, kind: RecordKind) -> Pick {
        let mut best: Option<Record> = None;
        let mut err = None;
        let mut any = false;
        for copy in 0..2u8 {
            let slot = SlotId { kind, copy };
            let Some(Some(bytes)) = self.slots.get(slot.index()) else {
                continue;
            };
            any = true;
            match Record::decode(bytes) {
                Ok(r) if r.kind == kind => {
                    best = match best {
                        Some(b) if (r.seq.wrapping_sub(b.seq) as i32) <= 0 => Some(b),
                        _ => Some(r),
                    };
                }
                Ok(_) => err = Some(RecordError::Kind(kind_code(kind))),
                Err(e) => err = Some(e),
            }
        }
        match (best, any) {
            (Some(r), _) => Pick::Found(r),
            (None, false) => Pick::Empty,
            (None, true) => Pick::Corrupt(err.unwrap_or(RecordError::Payload)),
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib), bitwise: records are small and written rarely.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn newer_slot_wins_and_torn_write_keeps_previous() {
        let a = Record::new(RecordKind::Energy, 4, b"old".to_vec()).unwrap();
        let b = Record::new(RecordKind::Energy, 5, b"new".to_vec()).unwrap();
        let r = Restored::default()
            .with(a.slot(), a.bytes().to_vec())
            .with(b.slot(), b.bytes().to_vec());
        assert_eq!(r.pick(RecordKind::Energy), Pick::Found(b.clone()));
        for cut in 0..b.bytes().len() {
            let r = Restored::default()
                .with(a.slot(), a.bytes().to_vec())
                .with(b.slot(), b.bytes()[..cut].to_vec());
            assert_eq!(
                r.pick(RecordKind::Energy),
                Pick::Found(a.clone()),
                "cut {cut}"
            );
        }
    }
}
