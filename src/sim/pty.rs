//! The serial variant over a pseudo-terminal (`--serial`).
//!
//! The simulator keeps both ends open: the master carries the device side, the slave (its path is printed
//! at start) is what a host program opens as if it were the meter's USB serial port. Both ends are raw
//! (no echo, no `\n` → `\r\n` rewriting), so `Data:` frames pass byte for byte.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::pty::openpty;
use nix::sys::termios::{self, SetArg};
use tokio::sync::mpsc;

/// Bytes read from the master per message.
const READ_CHUNK: usize = 1024;

/// The three ends [`Pty::spawn`] hands out: bytes from the host, bytes to the host, the slave path.
pub type PtyChannels = (mpsc::Receiver<Vec<u8>>, mpsc::Sender<Vec<u8>>, PathBuf);

/// An open pseudo-terminal pair.
#[derive(Debug)]
pub struct Pty {
    master: File,
    /// Held open so reads of the master block (instead of failing with EIO) while no host has the
    /// slave open, and so the terminal settings survive host programs coming and going.
    slave: OwnedFd,
    path: PathBuf,
}

impl Pty {
    /// Opens a raw pseudo-terminal pair.
    pub fn open() -> std::io::Result<Self> {
        let pair = openpty(None, None).map_err(std::io::Error::from)?;
        let mut t = termios::tcgetattr(&pair.slave).map_err(std::io::Error::from)?;
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(&pair.slave, SetArg::TCSANOW, &t).map_err(std::io::Error::from)?;
        let path = nix::unistd::ttyname(&pair.slave).map_err(std::io::Error::from)?;
        Ok(Pty {
            master: File::from(pair.master),
            slave: pair.slave,
            path,
        })
    }

    /// Moves the pty onto two threads: bytes from the host arrive on the returned receiver, bytes for
    /// the host are written from the returned sender (bounded, so a host that does not read applies
    /// back-pressure to the engine instead of growing memory).
    pub fn spawn(self) -> std::io::Result<PtyChannels> {
        let Pty {
            master,
            slave,
            path,
        } = self;
        let mut reader = master.try_clone()?;
        let mut writer = master;
        let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(64);
        let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(16);
        std::thread::Builder::new()
            .name("pty-read".into())
            .spawn(move || {
                let _slave = slave;
                let mut buf = [0u8; READ_CHUNK];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if in_tx
                                .blocking_send(buf.get(..n).unwrap_or(&[]).to_vec())
                                .is_err()
                            {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
                    }
                }
            })?;
        std::thread::Builder::new()
            .name("pty-write".into())
            .spawn(move || {
                while let Some(chunk) = out_rx.blocking_recv() {
                    if writer.write_all(&chunk).is_err() {
                        break;
                    }
                }
            })?;
        Ok((in_rx, out_tx, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_the_pty_unchanged_in_both_directions() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut from_host, to_host, path) = Pty::open().unwrap().spawn().unwrap();
            let mut host = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            // CR, LF, NUL, ^C and 0xff must not be translated or interpreted (raw mode).
            let sent = b"a\r\nb\n\x00\x03\xff".to_vec();
            host.write_all(&sent).unwrap();
            let mut got = Vec::new();
            while got.len() < sent.len() {
                got.extend(from_host.recv().await.unwrap());
            }
            assert_eq!(got, sent);
            let frame = b"Data:\x04\x00\x00\x00\x00\x00\x0a\x0d\x03\xff\r\n".to_vec();
            to_host.send(frame.clone()).await.unwrap();
            let back = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; 17];
                host.read_exact(&mut buf).unwrap();
                buf
            })
            .await
            .unwrap();
            assert_eq!(back, frame);
        });
    }
}
