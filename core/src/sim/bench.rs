//! The virtual board's self-test instruments ([`crate::board::Instruments`]): the host's
//! monotonic clock, a scratch "flash sector" in `selftest-scratch.bin` in the board's
//! directory (4 KiB, NOR rules: erase sets `0xFF`, programming only clears bits), and a board
//! key that is a file on the host's disk.
//!
//! The scratch file is not `flash.bin`: the self-test cannot reach the store's pages. Its
//! timings are those of the host's file system (`fdatasync` after each operation, as the
//! store's writer does), not of any flash chip.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use crate::board::Instruments;
use crate::protocol::selftest::{BoardKeyState, ScratchError};

/// Bytes of the scratch sector.
pub const SCRATCH_SECTOR: u32 = 4096;
const SECTOR: usize = 4096;

/// The virtual board's instruments.
#[derive(Debug)]
pub struct SimBench {
    start: Instant,
    /// The scratch file's path; it is opened (and created) by the first erase, so a board
    /// whose self-test never erases leaves no file behind.
    path: PathBuf,
    scratch: Mutex<Option<File>>,
}

impl SimBench {
    /// Instruments for the board in `dir`.
    pub fn new(dir: &Path) -> SimBench {
        SimBench {
            start: Instant::now(),
            path: dir.join("selftest-scratch.bin"),
            scratch: Mutex::new(None),
        }
    }

    /// Instruments for the life of the process (the board keeps a `&'static`): one small
    /// allocation per board opened, never freed.
    pub fn leak(dir: &Path) -> &'static SimBench {
        std::boxed::Box::leak(std::boxed::Box::new(SimBench::new(dir)))
    }

    /// Run `f` on the scratch file at `offset` (checked against the sector), opening it first;
    /// `create`: make it when missing (erase), else a missing file is `Ok(None)`.
    fn with<R>(
        &self,
        offset: u32,
        len: usize,
        create: bool,
        f: impl FnOnce(&File, u64) -> std::io::Result<R>,
    ) -> Result<Option<R>, ScratchError> {
        let end = u64::from(offset).saturating_add(len as u64);
        if end > u64::from(SCRATCH_SECTOR) {
            return Err(ScratchError::Io);
        }
        let mut guard = self.scratch.lock().map_err(|_| ScratchError::Io)?;
        if guard.is_none() {
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false)
                .open(&self.path)
            {
                Ok(file) => *guard = Some(file),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => return Ok(None),
                Err(_) => return Err(ScratchError::Io),
            }
        }
        let file = guard.as_ref().ok_or(ScratchError::Io)?;
        f(file, u64::from(offset))
            .map(Some)
            .map_err(|_| ScratchError::Io)
    }
}

impl Instruments for SimBench {
    fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn clock(&self) -> &'static str {
        "host monotonic clock (std::time::Instant)"
    }

    fn board_key(&self) -> BoardKeyState {
        BoardKeyState::SimulatedFile
    }

    fn scratch_len(&self) -> Option<u32> {
        Some(SCRATCH_SECTOR)
    }

    fn scratch_erase(&self) -> Result<(), ScratchError> {
        self.with(0, SECTOR, true, |file, _| {
            file.write_all_at(&[0xFF; SECTOR], 0)?;
            file.set_len(u64::from(SCRATCH_SECTOR))?;
            file.sync_data()
        })
        .map(drop)
    }

    fn scratch_program(&self, offset: u32, bytes: &[u8]) -> Result<(), ScratchError> {
        let written = self.with(offset, bytes.len(), true, |file, at| {
            let mut cell = std::vec![0xFF; bytes.len()];
            read_padded(file, at, &mut cell)?;
            for (old, new) in cell.iter_mut().zip(bytes) {
                *old &= *new;
            }
            file.write_all_at(&cell, at)?;
            file.sync_data()
        });
        written.map(drop)
    }

    fn scratch_read(&self, offset: u32, bytes: &mut [u8]) -> Result<(), ScratchError> {
        let len = bytes.len();
        let mut missing = true;
        self.with(offset, len, false, |file, at| {
            missing = false;
            read_padded(file, at, bytes)
        })?;
        if missing {
            // Never erased: a fresh sector reads erased.
            bytes.fill(0xFF);
        }
        Ok(())
    }
}

/// Read at `at`; bytes past the end of the file read as erased (`0xFF`).
fn read_padded(file: &File, at: u64, bytes: &mut [u8]) -> std::io::Result<()> {
    bytes.fill(0xFF);
    let mut done = 0;
    while done < bytes.len() {
        match file.read_at(&mut bytes[done..], at + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(())
}
