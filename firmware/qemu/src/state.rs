//! The rest of the board's state in host files: the anti-rollback counter, the board key, the
//! entropy source and the button. The RP2350 keeps its counter in flash beside the store
//! (anchored by an OTP epoch, as this board's `otp=` file does: [`crate::otp`]), its board key
//! in OTP, and has a TRNG and a real button; these stand-ins are for the CI board only.
//!
//! | file (in the state directory) | what |
//! |---|---|
//! | `flash.bin` | the flash region ([`crate::flash`]) |
//! | `rollback-counter` | number of the newest record written, 4 bytes little-endian |
//! | `board.key` | 32 bytes sealing the keys in `flash.bin`; made on first boot |
//! | `button` | created by the operator (or a test) to "press" the button; the board deletes it |

use core::ffi::CStr;

use pawl_core::board::Presence;
use pawl_core::keys::{Entropy, KeyError, PublicKeyHash};
use pawl_core::request::RequestKind;
use pawl_core::store::{BoardKey, RollbackGuard, StoreError};

use crate::log;
use crate::semihost::{self, HostError, HostFile, Open};

/// A rising counter in a host file, 4 bytes little-endian (absent or empty: 0): the shape of
/// both counters outside `flash.bin` — the rollback guard here and the OTP epoch
/// ([`crate::otp`]).
pub struct CounterFile {
    file: HostFile,
    value: u32,
}

impl CounterFile {
    /// Open (or create, at zero) the file at `path`; any size but 0 or 4 bytes is refused.
    pub fn open(path: &CStr) -> Result<CounterFile, HostError> {
        let mut file = match HostFile::open(path, Open::ReadWrite) {
            Ok(f) => f,
            Err(_) => {
                drop(HostFile::open(path, Open::Create)?);
                HostFile::open(path, Open::ReadWrite)?
            }
        };
        let value = match file.size()? {
            0 => 0,
            4 => {
                let mut bytes = [0u8; 4];
                file.read_at(0, &mut bytes)?;
                u32::from_le_bytes(bytes)
            }
            _ => return Err(HostError),
        };
        Ok(CounterFile { file, value })
    }

    /// The value.
    pub fn value(&self) -> u32 {
        self.value
    }

    /// Raise the value to `to` (nothing when it is not higher).
    pub fn raise(&mut self, to: u32) -> Result<(), StoreError> {
        if to <= self.value {
            return Ok(());
        }
        self.file
            .write_at(0, &to.to_le_bytes())
            .map_err(|_| StoreError::Io)?;
        self.value = to;
        Ok(())
    }
}

/// The anti-rollback counter in `rollback-counter`.
pub struct FileGuard(CounterFile);

impl FileGuard {
    /// Open (or create, at zero) the counter file.
    pub fn open() -> Result<FileGuard, HostError> {
        CounterFile::open(c"rollback-counter").map(FileGuard)
    }
}

impl RollbackGuard for FileGuard {
    fn floor(&mut self) -> Result<u32, StoreError> {
        Ok(self.0.value())
    }

    fn advance(&mut self, seq: u32) -> Result<(), StoreError> {
        self.0.raise(seq)
    }
}

/// Random bytes from the host's `/dev/urandom`. QEMU models no TRNG on this machine: a
/// CI-board shortcut (the RP2350 image uses its TRNG).
pub struct HostEntropy {
    file: HostFile,
}

impl HostEntropy {
    /// Open `/dev/urandom`.
    pub fn open() -> Result<HostEntropy, HostError> {
        Ok(HostEntropy {
            file: HostFile::open(c"/dev/urandom", Open::Read)?,
        })
    }
}

impl Entropy for HostEntropy {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), KeyError> {
        let mut at = 0;
        while at < dest.len() {
            match self.file.read(&mut dest[at..]) {
                Ok(0) | Err(_) => return Err(KeyError::EntropyFailed),
                Ok(n) => at += n,
            }
        }
        Ok(())
    }
}

/// The board key from `board.key` (the provisioning file). On the first boot, when the file
/// does not exist, 32 random bytes are written to it (through a temporary file and a rename,
/// so a killed first boot leaves no short key). A file of another length is refused.
pub fn board_key(entropy: &mut HostEntropy) -> Result<BoardKey, HostError> {
    let path = c"board.key";
    let mut bytes = [0u8; 32];
    match HostFile::open(path, Open::Read) {
        Ok(mut file) => {
            if file.size()? != bytes.len() {
                return Err(HostError);
            }
            file.read_at(0, &mut bytes)?;
        }
        Err(_) => {
            entropy.fill(&mut bytes).map_err(|_| HostError)?;
            let tmp = c"board.key.new";
            let written = HostFile::open(tmp, Open::Create).and_then(|mut f| f.write(&bytes));
            if written.is_err() {
                bytes.fill(0);
                return Err(HostError);
            }
            semihost::rename(tmp, path)?;
            log!("made a new board key in board.key (first boot)");
        }
    }
    let key = BoardKey::new(bytes);
    bytes.fill(0);
    Ok(key)
}

/// The button: the file `button` in the state directory, which nothing on the serial link can
/// create. A confirmation waits up to `timeout_cs` centiseconds for it to appear and deletes it
/// (one press, one confirmation). A file already there when the wait starts is deleted first and
/// does not count: the press must come after the request.
pub struct FileButton {
    timeout_cs: u32,
}

const BUTTON: &CStr = c"button";

impl FileButton {
    /// A button with a confirmation window of `timeout_cs` centiseconds. Deletes a stale press.
    pub fn new(timeout_cs: u32) -> FileButton {
        // Best effort: a file that cannot be deleted is deleted again before each wait.
        let _ = semihost::remove(BUTTON);
        FileButton { timeout_cs }
    }

    fn pressed() -> bool {
        semihost::exists(BUTTON) && semihost::remove(BUTTON).is_ok()
    }
}

impl FileButton {
    /// Wait up to the window for a press made after the wait starts.
    fn wait(&mut self) -> bool {
        if semihost::exists(BUTTON) && semihost::remove(BUTTON).is_err() {
            log!("button: cannot clear a stale press; refusing");
            return false;
        }
        let Ok(start) = semihost::clock_cs() else {
            return false;
        };
        loop {
            if Self::pressed() {
                log!("button: pressed");
                return true;
            }
            match semihost::clock_cs() {
                Ok(now) if now.wrapping_sub(start) < self.timeout_cs => {}
                _ => {
                    log!("button: no press in time");
                    return false;
                }
            }
            // Sleep until the next SysTick (about 0.1 s).
            cortex_m::asm::wfi();
            cortex_m::peripheral::SCB::clear_pendst();
        }
    }
}

impl Presence for FileButton {
    fn confirm(&mut self, key: &PublicKeyHash, kind: RequestKind) -> bool {
        log!(
            "confirm: {} request for {}: waiting {} ms for the button (create <state>/button)",
            kind.name(),
            key,
            u64::from(self.timeout_cs) * 10
        );
        self.wait()
    }

    fn wait_press(&mut self) -> Option<bool> {
        log!(
            "self-test: waiting {} ms for the button (create <state>/button)",
            u64::from(self.timeout_cs) * 10
        );
        Some(self.wait())
    }
}
