//! Host files through Arm semihosting (`bkpt 0xAB`), which QEMU serves with
//! `-semihosting-config enable=on,target=native`. Paths are relative to QEMU's working
//! directory: the launcher starts QEMU in the board's state directory.
//!
//! CI board only: semihosting gives the guest the whole host filesystem, and on real hardware
//! without a debugger `bkpt` is a hard fault.

use core::ffi::CStr;

use cortex_m_semihosting::{nr, syscall};

/// A semihosting call failed (the host's errno is not fetched: every caller maps any failure
/// to one error of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostError;

/// How to open a file (the fopen modes semihosting defines).
#[derive(Clone, Copy, Debug)]
pub enum Open {
    /// "rb": read an existing file.
    Read,
    /// "r+b": read and write an existing file.
    ReadWrite,
    /// "wb": create or truncate, write.
    Create,
}

impl Open {
    fn mode(self) -> usize {
        match self {
            Open::Read => nr::open::R_BINARY,
            Open::ReadWrite => nr::open::RW_BINARY,
            Open::Create => nr::open::W_TRUNC_BINARY,
        }
    }
}

/// An open host file; closed on drop.
#[derive(Debug)]
pub struct HostFile {
    handle: usize,
}

impl HostFile {
    /// Open `path`.
    pub fn open(path: &CStr, how: Open) -> Result<HostFile, HostError> {
        // SAFETY: SYS_OPEN reads `count_bytes()` bytes from a NUL-terminated string that lives
        // for the whole call, and writes no guest memory.
        let handle = unsafe { syscall!(OPEN, path.as_ptr(), how.mode(), path.count_bytes()) };
        if handle == usize::MAX {
            Err(HostError)
        } else {
            Ok(HostFile { handle })
        }
    }

    /// The file's length in bytes.
    pub fn size(&self) -> Result<usize, HostError> {
        // SAFETY: SYS_FLEN takes only the handle and touches no guest memory.
        let n = unsafe { syscall!(FLEN, self.handle) };
        if isize::try_from(n).is_err() {
            return Err(HostError);
        }
        Ok(n)
    }

    /// Read exactly `buf.len()` bytes at `offset`.
    pub fn read_at(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), HostError> {
        self.seek(offset)?;
        // SAFETY: SYS_READ writes at most `buf.len()` bytes into `buf`, which is exclusively
        // borrowed for the call.
        let left = unsafe { syscall!(READ, self.handle, buf.as_mut_ptr(), buf.len()) };
        if left == 0 { Ok(()) } else { Err(HostError) }
    }

    /// Read up to `buf.len()` bytes from the current position; returns how many were read.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        // SAFETY: as in `read_at`.
        let left = unsafe { syscall!(READ, self.handle, buf.as_mut_ptr(), buf.len()) };
        buf.len().checked_sub(left).ok_or(HostError)
    }

    /// Write all of `bytes` at `offset`. When this returns `Ok`, the host's `write(2)` has
    /// completed: the bytes survive QEMU being killed (not a host power cut).
    pub fn write_at(&mut self, offset: usize, bytes: &[u8]) -> Result<(), HostError> {
        self.seek(offset)?;
        self.write(bytes)
    }

    /// Write all of `bytes` at the current position.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), HostError> {
        // SAFETY: SYS_WRITE reads `bytes.len()` bytes from `bytes`, borrowed for the call.
        let left = unsafe { syscall!(WRITE, self.handle, bytes.as_ptr(), bytes.len()) };
        if left == 0 { Ok(()) } else { Err(HostError) }
    }

    fn seek(&mut self, offset: usize) -> Result<(), HostError> {
        // SAFETY: SYS_SEEK takes the handle and a position and touches no guest memory.
        let r = unsafe { syscall!(SEEK, self.handle, offset) };
        if r == 0 { Ok(()) } else { Err(HostError) }
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        // SAFETY: SYS_CLOSE takes only the handle, which is not used again.
        unsafe { syscall!(CLOSE, self.handle) };
    }
}

/// Whether `path` exists (can be opened for reading).
pub fn exists(path: &CStr) -> bool {
    HostFile::open(path, Open::Read).is_ok()
}

/// Delete `path`.
pub fn remove(path: &CStr) -> Result<(), HostError> {
    // SAFETY: SYS_REMOVE reads `count_bytes()` bytes of a NUL-terminated string that lives for
    // the call.
    let r = unsafe { syscall!(REMOVE, path.as_ptr(), path.count_bytes()) };
    if r == 0 { Ok(()) } else { Err(HostError) }
}

/// Rename `from` to `to` (replacing `to` on a POSIX host).
pub fn rename(from: &CStr, to: &CStr) -> Result<(), HostError> {
    // SAFETY: SYS_RENAME reads two NUL-terminated strings of the given lengths, both alive for
    // the call.
    let r = unsafe {
        syscall!(
            RENAME,
            from.as_ptr(),
            from.count_bytes(),
            to.as_ptr(),
            to.count_bytes()
        )
    };
    if r == 0 { Ok(()) } else { Err(HostError) }
}

/// Centiseconds since QEMU started (host time, also under `-icount`).
pub fn clock_cs() -> Result<u32, HostError> {
    // SAFETY: SYS_CLOCK takes no argument and touches no guest memory.
    let r = unsafe { syscall!(CLOCK) };
    if isize::try_from(r).is_err() {
        Err(HostError)
    } else {
        u32::try_from(r).map_err(|_| HostError)
    }
}

/// The command line QEMU hands the guest (`-semihosting-config arg=…`), into `buf`.
pub fn cmdline(buf: &mut [u8]) -> Result<&str, HostError> {
    let mut block = [buf.as_mut_ptr() as usize, buf.len()];
    // SAFETY: SYS_GET_CMDLINE writes at most `block[1]` bytes into `buf` and the actual length
    // back into `block[1]`; both are exclusively borrowed, and passed as a raw pointer derived
    // from `&mut` (the call's asm clobbers memory, so the write-back is seen).
    let r = unsafe { cortex_m_semihosting::syscall1(nr::GET_CMDLINE, block.as_mut_ptr() as usize) };
    if r != 0 {
        return Err(HostError);
    }
    // QEMU NUL-terminates the line (and may not shrink the length it was given).
    let line = &buf[..block[1].min(buf.len())];
    let len = line.iter().position(|&b| b == 0).unwrap_or(line.len());
    core::str::from_utf8(&line[..len]).map_err(|_| HostError)
}

/// Print a line on QEMU's standard error (the launcher's log). Never pass secrets.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        cortex_m_semihosting::heprintln!("pawl-qemu: {}", format_args!($($arg)*))
    };
}
