//! The persistent store of the simulator: one file per record slot under `--state`.
//!
//! Each slot is replaced atomically (write a temporary file, fsync, rename, fsync the directory), so a
//! `kill -9` at any instant leaves either the old or the new content of that slot; on top of that the
//! engine alternates between two slots per record kind and checksums every record.
//!
//! The settings record holds secrets (the access token, Wi-Fi and MQTT passwords), so on Unix every
//! slot file is owner-only (`0600`) from the moment it exists: the temporary file is created (or
//! re-used after a crash) with that mode before a byte is written, and the rename replaces the old
//! file whatever its mode was. A directory the store creates is `0700`.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::hal::SlotId;
use crate::hal::{ErrorKind, ErrorType, MAX_RECORD_BYTES, Store};

/// Record slots as files `<dir>/<slot>.rec`.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Uses (and creates, owner-only) `dir`. A path that exists but is not a directory is refused
    /// with an error that says so (`--state` names a directory).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        match fs::metadata(dir) {
            Ok(m) if !m.is_dir() => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists and is not a directory (--state names a directory to keep the state in)",
                ));
            }
            Ok(_) => {}
            Err(_) => create_private_dir(dir)?,
        }
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
            let mut f = create_private_file(&tmp)?;
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

/// Creates `dir` (and its parents); on Unix the directories created are `0700`.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Opens `path` for writing, truncated, owner-only: a new file is created `0600`, and an existing one
/// (a temporary file left by a crash) is set to `0600` before anything is written to it.
fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let f = o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
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
        self.write_atomic(slot, bytes).map_err(|_| {
            tracing::warn!("state: cannot write {}", self.path(slot).display());
            ErrorKind::Storage
        })
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

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn slot_files_are_owner_only_also_when_replacing_a_world_readable_file() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let mut s = FileStore::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let slot = SlotId::ALL[0];
        s.save(slot, b"{\"token\":\"t\"}").unwrap();
        assert_eq!(mode(&s.path(slot)), 0o600);
        // A file written by an older version (0644), and a stale temporary file left by a crash.
        fs::set_permissions(s.path(slot), fs::Permissions::from_mode(0o644)).unwrap();
        let stale = dir.join(format!(".{}.tmp", slot.name()));
        fs::write(&stale, b"old").unwrap();
        fs::set_permissions(&stale, fs::Permissions::from_mode(0o644)).unwrap();
        s.save(slot, b"{\"token\":\"u\"}").unwrap();
        assert_eq!(mode(&s.path(slot)), 0o600);
        assert_eq!(fs::read(s.path(slot)).unwrap(), b"{\"token\":\"u\"}");
        assert!(!stale.exists());
    }

    #[test]
    fn a_state_path_that_is_a_file_is_refused_with_a_message() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"x").unwrap();
        let e = FileStore::open(&file).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }
}
