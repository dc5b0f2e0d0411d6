//! Host glue for the virtual board (feature `std`): the same [`Board`] the firmware runs, on a
//! file-backed simulated NOR flash ([`flash`]), with a file as its anti-rollback counter
//! ([`guard`]), OS entropy, the host's monotonic clock for the flash write budget
//! ([`crate::store::budget`]) and no button.
//!
//! State directory:
//!
//! | file | what |
//! |---|---|
//! | `flash.bin` | the flash region: 64 pages of 4 KiB, every write `fdatasync`ed in order by a writer thread (`behind`) |
//! | `board.key` | the board key sealing secret keys in `flash.bin` (the RP2350 keeps it in OTP) |
//! | `rollback-counter` | number of the newest record written (the RP2350 keeps it in OTP) |
//! | `board.lock` | held while a process runs the board |
//! | `selftest-scratch.bin` | the self-test's scratch "flash sector" ([`bench`]), never the store |
//!
//! Beside the directory, `<dir>.otp` holds the OTP epoch ([`epoch`]): restoring an old copy of
//! the directory is refused at boot, as a whole-flash image is on the RP2350.
//!
//! Keys here live on the host's disk: this is a software signer, for trying pawl out and for
//! tests. The bridge logs a loud warning when it runs one.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::board::{Board, BoardInfo, NoButton};
use crate::keys::{Entropy, KeyError};
use crate::protocol::{FrameError, Mode};
use crate::store::{Anchored, BoardKey, Budgeted, Clock, NorStore, NorStoreConfig, WriteBudget};

mod behind;
pub mod bench;
mod counter;
pub mod epoch;
pub mod flash;
pub mod guard;

pub use behind::WriteBehind;
pub use epoch::FileEpoch;
pub use flash::SimFlash;
pub use guard::FileGuard;

/// Pages of flash the virtual board uses (256 KiB, as on the RP2350 image).
pub const VIRTUAL_PAGES: usize = 64;

/// The virtual board's store: the flash store under the write budget.
pub type VirtualStore =
    Budgeted<NorStore<SimFlash, Anchored<FileGuard, FileEpoch>, WriteBehind>, HostClock>;

/// The host's monotonic clock ([`Instant`]), counted from when the board opened.
#[derive(Clone, Copy, Debug)]
pub struct HostClock(Instant);

impl HostClock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        HostClock(Instant::now())
    }
}

impl Clock for HostClock {
    fn now_ms(&mut self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Entropy from the operating system.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), KeyError> {
        getrandom::fill(dest).map_err(|_| KeyError::EntropyFailed)
    }
}

/// What the virtual board reports as its firmware and model.
pub const VIRTUAL_INFO: BoardInfo = BoardInfo {
    firmware: env!("CARGO_PKG_VERSION"),
    board: "virtual (host disk)",
};

/// A virtual board with its state under one directory. Only one process may open a directory
/// at a time (an exclusive lock on `board.lock`).
pub struct VirtualBoard {
    board: Board<VirtualStore, OsEntropy, NoButton>,
    dir: PathBuf,
    _lock: File,
}

impl VirtualBoard {
    /// Open (or create) the virtual board whose state lives in `dir`, reserving
    /// [`NorStoreConfig::DEFAULT_CEILING_AHEAD`] levels ahead.
    pub fn open(dir: &Path, mode: Mode) -> io::Result<Self> {
        Self::open_with(dir, mode, NorStoreConfig::DEFAULT_CEILING_AHEAD)
    }

    /// As [`VirtualBoard::open`], reserving `ceiling_ahead` levels ahead (0: exact marks). Mark
    /// writes are bounded by [`WriteBudget::DEFAULT`] in operational mode.
    pub fn open_with(dir: &Path, mode: Mode, ceiling_ahead: u32) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let lock = File::create(dir.join("board.lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                std::format!(
                    "the virtual board in {} is in use by another process",
                    dir.display()
                ),
            )
        })?;
        let key = board_key(&dir.join("board.key"))?;
        let mut flash = SimFlash::open_file(&dir.join("flash.bin"), VIRTUAL_PAGES)?;
        let durability = flash.write_behind()?;
        let guard = FileGuard::open(&dir.join("rollback-counter"))?;
        let guard = Anchored::new(guard, FileEpoch::open(&epoch::otp_path(dir))?);
        let region = 0..u32::try_from(VIRTUAL_PAGES * flash::PAGE).unwrap_or(u32::MAX);
        let config = NorStoreConfig {
            region,
            ceiling_ahead,
        };
        let store = NorStore::with_durability(flash, config, &key, guard, durability)
            .map_err(|e| io::Error::other(std::format!("flash store: {e}")))?;
        let store = Budgeted::new(store, HostClock::start(), WriteBudget::DEFAULT);
        let mut board = Board::open(store, OsEntropy, NoButton, mode, VIRTUAL_INFO);
        board.lend(bench::SimBench::leak(dir));
        Ok(VirtualBoard {
            board,
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory holding this board's state.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The board.
    pub fn board(&self) -> &Board<VirtualStore, OsEntropy, NoButton> {
        &self.board
    }

    /// Idle-time work; see [`Board::idle`].
    pub fn idle(&mut self) -> Result<bool, crate::store::StoreError> {
        self.board.idle()
    }

    /// Answer one frame (without its terminating zero; modified in place); the response
    /// frame, zero included, is written to `out`. See [`Board::handle_frame`].
    pub fn handle_frame(&mut self, frame: &mut [u8], out: &mut [u8]) -> Result<usize, FrameError> {
        self.board.handle_frame(frame, out)
    }
}

/// Read the board key, or make one (mode 0600) on first use.
fn board_key(path: &Path) -> io::Result<BoardKey> {
    let mut bytes = [0u8; 32];
    match File::open(path) {
        Ok(mut file) => {
            let mut all = std::vec::Vec::new();
            file.read_to_end(&mut all)?;
            if all.len() != 32 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    std::format!("{} is {} bytes, expected 32", path.display(), all.len()),
                ));
            }
            bytes.copy_from_slice(&all);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            getrandom::fill(&mut bytes).map_err(|_| io::Error::other("no OS entropy"))?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        Err(e) => return Err(e),
    }
    let key = BoardKey::new(bytes);
    zeroize::Zeroize::zeroize(&mut bytes);
    Ok(key)
}
