//! A simulated NOR flash: in memory or backed by a file, with power cuts on demand.
//!
//! NOR rules, as on the board's QSPI flash: erase sets a whole page to `0xFF`; programming can
//! only clear bits (the new byte is `old & new`); writes are whole, aligned 4-byte words.
//!
//! Every word programmed and every page erased is one **step**. [`SimFlash::cut_after`] makes
//! the flash lose power before a given step: that step does not happen (or, `torn`, happens
//! halfway: half the word's bytes programmed, half the page erased) and every later operation
//! fails with [`SimFlashError::PowerOff`]. [`SimFlash::journal`] records every step so a test can
//! rebuild the image at any point of a run without running it again.
//!
//! A file-backed flash writes each operation's bytes and `fdatasync`s before returning, so the
//! virtual board loses nothing to an OS crash either — or, after [`SimFlash::write_behind`],
//! hands them to a writer thread that does the same in order while the board goes on
//! ([`super::behind`]).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::vec;
use std::vec::Vec;

use embedded_storage_async::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Erase page size.
pub const PAGE: usize = 4096;
/// Program word size.
pub const WORD: usize = 4;

/// One step of flash activity (or, for tests, of the rollback guard logged alongside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A word programmed at `offset` with `word` (before the AND with what was there).
    Program {
        /// Byte offset (word-aligned).
        offset: u32,
        /// The bytes programmed.
        word: [u8; WORD],
    },
    /// The page starting at `offset` erased.
    Erase {
        /// Byte offset (page-aligned).
        offset: u32,
    },
    /// A rollback guard advanced to this record number (logged by test guards).
    Guard(u32),
}

/// A shared, growing record of [`Event`]s.
pub type Journal = Arc<Mutex<Vec<Event>>>;

/// Why a simulated flash operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimFlashError {
    /// The power was cut.
    PowerOff,
    /// Outside the flash.
    OutOfBounds,
    /// Not aligned to a word (program) or page (erase).
    NotAligned,
    /// The backing file failed.
    File,
}

impl NorFlashError for SimFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            SimFlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            SimFlashError::NotAligned => NorFlashErrorKind::NotAligned,
            SimFlashError::PowerOff | SimFlashError::File => NorFlashErrorKind::Other,
        }
    }
}

/// A power cut scheduled before step `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cut {
    at: u64,
    torn: bool,
}

/// The simulated flash.
pub struct SimFlash {
    mem: Vec<u8>,
    file: Option<File>,
    steps: u64,
    cut: Option<Cut>,
    off: bool,
    journal: Option<Journal>,
    writer: Option<super::behind::Writer>,
}

/// Apply one event to an image (used by [`SimFlash`] and by tests rebuilding images).
/// `torn` applies half of it.
pub fn apply(image: &mut [u8], event: &Event, torn: bool) {
    match *event {
        Event::Program { offset, word } => {
            let at = offset as usize;
            let n = if torn { WORD / 2 } else { WORD };
            for (cell, new) in image[at..at + n].iter_mut().zip(word) {
                *cell &= new;
            }
        }
        Event::Erase { offset } => {
            let at = offset as usize;
            let n = if torn { PAGE / 2 } else { PAGE };
            image[at..at + n].fill(0xFF);
        }
        Event::Guard(_) => {}
    }
}

impl SimFlash {
    /// An erased in-memory flash of `pages` pages.
    pub fn new(pages: usize) -> Self {
        Self::from_image(vec![0xFF; pages * PAGE])
    }

    /// An in-memory flash holding `image` (a whole number of pages).
    pub fn from_image(image: Vec<u8>) -> Self {
        SimFlash {
            mem: image,
            file: None,
            steps: 0,
            cut: None,
            off: false,
            journal: None,
            writer: None,
        }
    }

    /// A flash backed by the file at `path`, created erased with `pages` pages if missing. An
    /// existing file of another size is refused.
    pub fn open_file(path: &Path, pages: usize) -> io::Result<Self> {
        let size = pages * PAGE;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        let mem = if len == 0 {
            let mem = vec![0xFF; size];
            file.write_all_at(&mem, 0)?;
            file.sync_all()?;
            mem
        } else if len == size {
            let mut mem = vec![0; size];
            file.read_exact_at(&mut mem, 0)?;
            mem
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                std::format!(
                    "{} is {len} bytes, expected {size} ({pages} pages of {PAGE})",
                    path.display()
                ),
            ));
        };
        Ok(SimFlash {
            mem,
            file: Some(file),
            steps: 0,
            cut: None,
            off: false,
            journal: None,
            writer: None,
        })
    }

    /// From now on, write the backing file from a thread of its own, in order, one flush per
    /// write; the handle tells the store how far it has got. An in-memory flash has nothing to
    /// write: its handle is always settled.
    pub fn write_behind(&mut self) -> io::Result<super::WriteBehind> {
        let Some(file) = &self.file else {
            return Ok(super::WriteBehind::default());
        };
        let (writer, handle) = super::behind::Writer::start(file.try_clone()?)?;
        self.writer = Some(writer);
        Ok(handle)
    }

    /// The flash contents.
    pub fn image(&self) -> &[u8] {
        &self.mem
    }

    /// Steps (words programmed, pages erased) so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Lose power before step `at` (counted from this flash's creation); with `torn` that step
    /// happens halfway.
    pub fn cut_after(&mut self, at: u64, torn: bool) {
        self.cut = Some(Cut { at, torn });
    }

    /// Whether the power is off.
    pub fn is_off(&self) -> bool {
        self.off
    }

    /// Log every step into `journal` from now on.
    pub fn journal(&mut self, journal: Journal) {
        self.journal = Some(journal);
    }

    /// Take one step; `Err` if the power is (now) off.
    fn step(&mut self, event: Event) -> Result<(), SimFlashError> {
        if self.off {
            return Err(SimFlashError::PowerOff);
        }
        if let Some(cut) = self.cut
            && cut.at == self.steps
        {
            if cut.torn {
                apply(&mut self.mem, &event, true);
            }
            self.off = true;
            return Err(SimFlashError::PowerOff);
        }
        apply(&mut self.mem, &event, false);
        self.steps += 1;
        if let Some(journal) = &self.journal
            && let Ok(mut journal) = journal.lock()
        {
            journal.push(event);
        }
        Ok(())
    }

    fn persist(&mut self, from: usize, to: usize) -> Result<(), SimFlashError> {
        if let Some(writer) = &self.writer {
            return writer
                .push(from as u64, self.mem[from..to].to_vec())
                .map_err(|()| SimFlashError::File);
        }
        if let Some(file) = &self.file {
            file.write_all_at(&self.mem[from..to], from as u64)
                .and_then(|()| file.sync_data())
                .map_err(|_| SimFlashError::File)?;
        }
        Ok(())
    }

    fn range(&self, offset: u32, len: usize) -> Result<(usize, usize), SimFlashError> {
        let from = offset as usize;
        let to = from.checked_add(len).ok_or(SimFlashError::OutOfBounds)?;
        if to > self.mem.len() {
            return Err(SimFlashError::OutOfBounds);
        }
        Ok((from, to))
    }
}

impl ErrorType for SimFlash {
    type Error = SimFlashError;
}

impl ReadNorFlash for SimFlash {
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        if self.off {
            return Err(SimFlashError::PowerOff);
        }
        let (from, to) = self.range(offset, bytes.len())?;
        bytes.copy_from_slice(&self.mem[from..to]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl NorFlash for SimFlash {
    const WRITE_SIZE: usize = WORD;
    const ERASE_SIZE: usize = PAGE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let (start, end) = self.range(from, to.saturating_sub(from) as usize)?;
        if !start.is_multiple_of(PAGE) || !end.is_multiple_of(PAGE) {
            return Err(SimFlashError::NotAligned);
        }
        let mut result = Ok(());
        for page in (start..end).step_by(PAGE) {
            let offset = u32::try_from(page).map_err(|_| SimFlashError::OutOfBounds)?;
            result = self.step(Event::Erase { offset });
            if result.is_err() {
                break;
            }
        }
        self.persist(start, end)?;
        result
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let (start, end) = self.range(offset, bytes.len())?;
        if !start.is_multiple_of(WORD) || !bytes.len().is_multiple_of(WORD) {
            return Err(SimFlashError::NotAligned);
        }
        let mut result = Ok(());
        for (i, chunk) in bytes.chunks_exact(WORD).enumerate() {
            let mut word = [0u8; WORD];
            word.copy_from_slice(chunk);
            let offset = u32::try_from(start + i * WORD).map_err(|_| SimFlashError::OutOfBounds)?;
            result = self.step(Event::Program { offset, word });
            if result.is_err() {
                break;
            }
        }
        self.persist(start, end)?;
        result
    }
}
