//! The board key, from the RP2350's one-time-programmable memory.
//!
//! # Where
//!
//! [`BOARD_SECRET_ROW`]..+16: sixteen ECC-protected OTP rows (2 bytes each, 32 bytes) at the
//! start of OTP page 48 (rows `0xc00`–`0xc0f`). Pages 3–60 are the range the RP2350 datasheet
//! leaves free for user content. The 32 bytes are a random secret the operator programs once;
//! the board key is `BLAKE2b-256("pawl/rp2350/board-key/v1" ‖ secret)`, so the raw OTP value is
//! never used as a key directly and a future key version can be derived from the same rows.
//!
//! # Unprogrammed
//!
//! Unprogrammed OTP reads as zeros. A secret that is all zeros or all ones (or that cannot be
//! read) is refused: the board then starts with no store at all and refuses everything that
//! needs one (every signature, every key), in both modes; the LED shows "refusing". It never
//! falls back to a built-in or flash-held key, which would make the sealing worthless.
//!
//! # Locking
//!
//! Until page 48 is locked, anyone who can put the board into BOOTSEL mode can read the
//! secret with `picotool otp get`. See the README for programming and locking commands;
//! this firmware does not program or lock OTP itself.

use embassy_rp::otp;
use pawl_core::digest::blake2b_256;
use pawl_core::store::BoardKey;
use zeroize::Zeroize;

/// First OTP row of the board secret (page 48, row 0).
pub const BOARD_SECRET_ROW: usize = 0xc00;
/// ECC rows holding the secret (2 bytes each).
pub const BOARD_SECRET_ROWS: usize = 16;
/// Domain separation for the derivation.
const DOMAIN: &[u8] = b"pawl/rp2350/board-key/v1";

/// Why no board key could be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpKeyError {
    /// The rows hold no secret (all zeros or all ones): the board was never set up.
    Unprogrammed,
    /// The OTP refused the read (page locked against Secure reads).
    Unreadable,
}

/// Read the secret from OTP and derive the board key.
pub fn board_key() -> Result<BoardKey, OtpKeyError> {
    let mut secret = [0u8; BOARD_SECRET_ROWS * 2];
    let read = read_secret(&mut secret);
    let result = read.and_then(|()| {
        if secret.iter().all(|&b| b == 0) || secret.iter().all(|&b| b == 0xff) {
            return Err(OtpKeyError::Unprogrammed);
        }
        let mut input = [0u8; DOMAIN.len() + BOARD_SECRET_ROWS * 2];
        input[..DOMAIN.len()].copy_from_slice(DOMAIN);
        input[DOMAIN.len()..].copy_from_slice(&secret);
        let mut derived = blake2b_256(&input);
        let key = BoardKey::new(derived);
        input.zeroize();
        derived.zeroize();
        Ok(key)
    });
    secret.zeroize();
    result
}

fn read_secret(secret: &mut [u8; BOARD_SECRET_ROWS * 2]) -> Result<(), OtpKeyError> {
    for (i, pair) in secret.chunks_exact_mut(2).enumerate() {
        let word = otp::read_ecc_word(BOARD_SECRET_ROW + i).map_err(|_| OtpKeyError::Unreadable)?;
        pair.copy_from_slice(&word.to_le_bytes());
    }
    Ok(())
}
