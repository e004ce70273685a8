//! The disk buffer of a sink whose target is away: rows that no longer fit the memory bound are
//! written to files, oldest first, and read back when the target returns. The files outlive the
//! process, so rows spooled when the collector stops are written by the next run.
//!
//! Each file is one or more [`Batch`]es as JSON lines, written as `*.tmp`, synced, and renamed to
//! `<unix ms>-<pid>-<seq>-<rows>r.jsonl`; a name sorts by age. A file that cannot be read back is
//! renamed `*.bad` and kept (never silently deleted), and so is a chunk the database refuses
//! (`*.rejected`).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

use super::rows::Batch;

/// Why the spool failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The file system refused.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A spool file is not what this program writes (it was renamed `.bad`).
    #[error("spool {path}: unreadable line {line}: {reason}")]
    Corrupt {
        /// The file (after renaming).
        path: String,
        /// 1-based line.
        line: usize,
        /// Why.
        reason: String,
    },
}

/// Rows per spool file at most (a file is read back whole).
pub const FILE_ROWS: usize = 100_000;

/// One sink's spool directory.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    files: VecDeque<(PathBuf, u64)>,
    rows: u64,
    seq: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Spool {
    /// Opens (creates) `dir`, removes unfinished `*.tmp` files, and queues the spool files left
    /// by earlier runs, oldest first.
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut found = Vec::new();
        for e in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            } else if let Some(stem) = name.strip_suffix("r.jsonl") {
                let rows = stem
                    .rsplit('-')
                    .next()
                    .and_then(|r| r.parse::<u64>().ok())
                    .unwrap_or(0);
                found.push((e.path(), rows));
            }
        }
        found.sort();
        let rows = found.iter().map(|f| f.1).sum();
        Ok(Spool {
            dir: dir.to_path_buf(),
            files: found.into(),
            rows,
            seq: 0,
        })
    }

    /// Rows in the spool.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Files in the spool.
    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// Nothing spooled.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Writes `batches` as one new file (the newest).
    pub fn write<'b>(
        &mut self,
        batches: impl IntoIterator<Item = &'b Batch>,
    ) -> Result<(), SpoolError> {
        if let Some((path, rows)) = self.write_file(batches, "jsonl")? {
            self.files.push_back((path, rows));
            self.rows += rows;
        }
        Ok(())
    }

    /// Writes `batches` as a `.rejected` file: kept for inspection, never read back.
    pub fn write_rejected<'b>(
        &mut self,
        batches: impl IntoIterator<Item = &'b Batch>,
    ) -> Result<(), SpoolError> {
        self.write_file(batches, "rejected").map(drop)
    }

    fn write_file<'b>(
        &mut self,
        batches: impl IntoIterator<Item = &'b Batch>,
        ext: &str,
    ) -> Result<Option<(PathBuf, u64)>, SpoolError> {
        self.seq += 1;
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let stem = std::format!("{ms:013}-{}-{:06}", std::process::id(), self.seq);
        let tmp = self.dir.join(std::format!("{stem}.tmp"));
        let mut rows = 0u64;
        let result = (|| {
            let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io(&tmp))?);
            for b in batches {
                if b.is_empty() {
                    continue;
                }
                serde_json::to_writer(&mut w, b).map_err(|e| io(&tmp)(std::io::Error::other(e)))?;
                w.write_all(b"\n").map_err(io(&tmp))?;
                rows += b.rows() as u64;
            }
            let f = w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
            f.sync_all().map_err(io(&tmp))
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        if rows == 0 {
            let _ = std::fs::remove_file(&tmp);
            return Ok(None);
        }
        let path = self.dir.join(std::format!("{stem}-{rows}r.{ext}"));
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(Some((path, rows)))
    }

    /// Reads the oldest file back as one batch (`None` when the spool is empty). A corrupt file is
    /// renamed `.bad`, dropped from the queue, and reported.
    pub fn read_oldest(&mut self) -> Option<Result<Batch, SpoolError>> {
        let (path, rows) = self.files.front()?.clone();
        let result = (|| {
            let f = File::open(&path).map_err(io(&path))?;
            let mut all = Batch::default();
            for (n, line) in BufReader::new(f).lines().enumerate() {
                let line = line.map_err(io(&path))?;
                if line.trim().is_empty() {
                    continue;
                }
                let mut b: Batch =
                    serde_json::from_str(&line).map_err(|e| SpoolError::Corrupt {
                        path: path.display().to_string(),
                        line: n + 1,
                        reason: e.to_string(),
                    })?;
                all.append(&mut b);
            }
            Ok(all)
        })();
        if let Err(SpoolError::Corrupt { line, reason, .. }) = &result {
            let bad = path.with_extension("bad");
            let _ = std::fs::rename(&path, &bad);
            self.files.pop_front();
            self.rows = self.rows.saturating_sub(rows);
            return Some(Err(SpoolError::Corrupt {
                path: bad.display().to_string(),
                line: *line,
                reason: reason.clone(),
            }));
        }
        Some(result)
    }

    /// Deletes the oldest file (after its rows were stored).
    pub fn remove_oldest(&mut self) -> Result<(), SpoolError> {
        if let Some((path, rows)) = self.files.pop_front() {
            self.rows = self.rows.saturating_sub(rows);
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::mqtt::Status;
    use std::sync::Arc;

    fn batch(n: usize, t: i64) -> Batch {
        let mut b = Batch::default();
        let m = Arc::from("m");
        for k in 0..n {
            b.push_status(
                &m,
                &Status {
                    voltage_v: [Some(230.0), None, Some(1.5)],
                    ..Status::default()
                },
                t + k as i64,
            );
        }
        b
    }

    #[test]
    fn files_survive_a_restart_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        assert!(s.read_oldest().is_none());
        s.write([&batch(2, 0), &batch(1, 100)]).unwrap();
        s.write([&batch(1, 200)]).unwrap();
        s.write([&Batch::default()]).unwrap();
        assert_eq!((s.files(), s.rows()), (2, 12));
        drop(s);
        std::fs::write(dir.path().join("x.tmp"), b"partial").unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        assert_eq!((s.files(), s.rows()), (2, 12));
        assert!(!dir.path().join("x.tmp").exists());
        let first = s.read_oldest().unwrap().unwrap();
        assert_eq!(first.readings.len(), 9);
        assert_eq!(first.readings[0].time_us, 0);
        assert_eq!(first.readings[8].time_us, 100);
        assert_eq!(first.readings[0].voltage, Some(230.0));
        assert_eq!(first.readings[1].voltage, None);
        s.remove_oldest().unwrap();
        assert_eq!(s.read_oldest().unwrap().unwrap().readings[0].time_us, 200);
        s.remove_oldest().unwrap();
        assert!(s.is_empty());
        assert_eq!(s.rows(), 0);
    }

    #[test]
    fn a_corrupt_file_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("0000000000001-1-000001-3r.jsonl"),
            b"{oops\n",
        )
        .unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        assert_eq!(s.rows(), 3);
        assert!(matches!(
            s.read_oldest(),
            Some(Err(SpoolError::Corrupt { line: 1, .. }))
        ));
        assert!(s.is_empty());
        assert_eq!(s.rows(), 0);
        assert!(dir.path().join("0000000000001-1-000001-3r.bad").exists());
    }
}
