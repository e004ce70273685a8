//! The persistent store of the simulator: one file per record slot under `--state`.
//!
//! Each slot is replaced atomically (write a temporary file, fsync, rename, fsync the directory), so a
//! `kill -9` at any instant leaves either the old or the new content of that slot; on top of that the
//! engine alternates between two slots per record kind and checksums every record.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::device::SlotId;
use crate::hal::{ErrorKind, ErrorType, MAX_RECORD_BYTES, Store};

/// Record slots as files `<dir>/<slot>.rec`.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Uses (and creates) `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(FileStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The file of a slot.
    pub fn path(&self, slot: SlotId) -> PathBuf {
        self.dir.join(format!("{}.rec", slot.name()))
    }

    fn write_atomic(&self, slot: SlotId, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(slot);
        let tmp = self.dir.join(format!(".{}.tmp", slot.name()));
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        if let Ok(d) = fs::File::open(&self.dir) {
            // Directory fsync makes the rename itself durable; not every filesystem supports it.
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl ErrorType for FileStore {
    type Error = ErrorKind;
}

impl Store for FileStore {
    fn load(&mut self, slot: SlotId, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        match fs::read(self.path(slot)) {
            Ok(bytes) if bytes.len() <= buf.len() && bytes.len() <= MAX_RECORD_BYTES => {
                let dst = buf
                    .get_mut(..bytes.len())
                    .ok_or(ErrorKind::BufferTooSmall)?;
                dst.copy_from_slice(&bytes);
                Ok(bytes.len())
            }
            Ok(_) => Err(ErrorKind::BufferTooSmall),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(_) => Err(ErrorKind::Storage),
        }
    }

    fn save(&mut self, slot: SlotId, bytes: &[u8]) -> Result<(), ErrorKind> {
        self.write_atomic(slot, bytes)
            .map_err(|_| ErrorKind::Storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_and_empty_slots_read_as_zero() {
        let dir = std::env::temp_dir().join(format!("smartmeter-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut s = FileStore::open(&dir).unwrap();
        let mut buf = [0u8; MAX_RECORD_BYTES];
        let slot = SlotId::ALL[2];
        assert_eq!(s.load(slot, &mut buf).unwrap(), 0);
        s.save(slot, b"hello").unwrap();
        assert_eq!(s.load(slot, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        s.save(slot, b"hi").unwrap();
        assert_eq!(s.load(slot, &mut buf).unwrap(), 2);
        assert_eq!(s.load(SlotId::ALL[3], &mut buf).unwrap(), 0);
        let _ = fs::remove_dir_all(&dir);
    }
}
