//! Host glue for the virtual board (feature `std`): the same [`Board`] the firmware runs, with
//! its state in a directory, OS entropy and no button.
//!
//! Keys here live on the host's disk: this is a software signer, for trying pawl out and for
//! tests. The bridge logs a loud warning when it runs one.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::board::{Board, BoardInfo, NoButton};
use crate::keys::{Entropy, KeyError};
use crate::protocol::{FrameError, Mode};
use crate::store::MemoryStore;

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
    board: "virtual (keys on host disk)",
};

/// A virtual board with its state under one directory. Only one process may open a directory
/// at a time (an exclusive lock on `board.lock`).
pub struct VirtualBoard {
    board: Board<MemoryStore, OsEntropy, NoButton>,
    dir: PathBuf,
    _lock: File,
}

impl VirtualBoard {
    /// Open (or create) the virtual board whose state lives in `dir`.
    pub fn open(dir: &Path, mode: Mode) -> io::Result<Self> {
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
        let board = Board::open(MemoryStore::new(), OsEntropy, NoButton, mode, VIRTUAL_INFO);
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

    /// Answer one frame (without its terminating zero; modified in place); the response
    /// frame, zero included, is written to `out`. See [`Board::handle_frame`].
    pub fn handle_frame(&mut self, frame: &mut [u8], out: &mut [u8]) -> Result<usize, FrameError> {
        self.board.handle_frame(frame, out)
    }
}
