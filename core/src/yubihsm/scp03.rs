//! The YubiHSM2 secure channel (GlobalPlatform SCP03 as Yubico adapted it), host side, without
//! I/O: every step takes the HSM's reply bytes and writes the next message into a buffer.
//!
//! Written from Yubico's protocol description (Create Session, Authenticate Session, Session
//! Message; "Concepts: Session") and GlobalPlatform GPC_SPE_014 §6.2 (KDF, cryptograms, ICV).
//!
//! ```text
//! Create Session   → 03 ‖ 000a ‖ auth key id (2) ‖ host challenge (8)            (clear)
//!                  ← 83 ‖ 0011 ‖ sid ‖ card challenge (8) ‖ card cryptogram (8)
//!   context  = host challenge ‖ card challenge
//!   KDF(K, c, L) = AES-CMAC(K, 00×11 ‖ c ‖ 00 ‖ L (2, bits) ‖ 01 ‖ context)[..L/8]
//!   S-ENC = KDF(K-ENC, 04, 128), S-MAC = KDF(K-MAC, 06, 128), S-RMAC = KDF(K-MAC, 07, 128)
//!   card cryptogram = KDF(S-MAC, 00, 64) (checked), host cryptogram = KDF(S-MAC, 01, 64)
//! Authenticate     → 04 ‖ 0011 ‖ sid ‖ host cryptogram ‖ C-MAC (8)
//!                  ← 84 ‖ 0000
//! Session Message  → 05 ‖ len ‖ sid ‖ AES-CBC(S-ENC, ICV, pad(inner)) ‖ C-MAC (8)
//!                  ← 85 ‖ len ‖ sid ‖ AES-CBC(S-ENC, ICV, pad(inner reply)) ‖ R-MAC (8)
//!   C-MAC = AES-CMAC(S-MAC, chain ‖ header ‖ sid ‖ body); chain := that full 16-byte tag
//!   R-MAC = AES-CMAC(S-RMAC, chain ‖ header ‖ sid ‖ body)     (chain: the command's C-MAC)
//!   ICV   = AES(S-ENC, counter as 16 bytes big-endian); counter = 1 after authentication,
//!           +1 per answered message; the reply is decrypted with its command's ICV
//!   pad   = ISO/IEC 9797-1 method 2 (0x80, then zeros to a whole block), always applied
//! ```
//!
//! What this gives the board against a hostile relay: a reply is accepted only if its R-MAC
//! verifies under this session's key over the chaining value of the command it answers, so a
//! flipped byte, a replayed or reordered reply, or a reply from another session is refused
//! ([`HsmError::BadMac`]), and the caller drops the session. The relay sees only ciphertext.
//! Session expiry (the HSM forgets an idle session after 30 s) and HSM resets show up as an
//! unauthenticated error reply ([`HsmError::Device`]); the board opens a fresh session.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, InnerIvInit, KeyInit};
use cmac::{Cmac, Mac};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{AuthKey, HsmError, code};

/// Messages one session may carry; the board opens a new session after that (Yubico's limit
/// for the session counter is 2^20).
pub const MAX_MESSAGES: u32 = 0x10_0000;

const BLOCK: usize = 16;
const MAC_LEN: usize = 8;
const CHALLENGE_LEN: usize = 8;
const HEADER: usize = 3;

const DERIVE_CARD_CRYPTOGRAM: u8 = 0x00;
const DERIVE_HOST_CRYPTOGRAM: u8 = 0x01;
const DERIVE_S_ENC: u8 = 0x04;
const DERIVE_S_MAC: u8 = 0x06;
const DERIVE_S_RMAC: u8 = 0x07;

type CbcEnc = cbc::Encryptor<Aes128>;
type CbcDec = cbc::Decryptor<Aes128>;

/// Length of the Session Message [`Session::seal`] writes for `data_len` bytes of command
/// data: header, session id, the padded inner command, MAC.
pub const fn sealed_len(data_len: usize) -> usize {
    HEADER + 1 + ((HEADER + data_len) / BLOCK + 1) * BLOCK + MAC_LEN
}

fn cmac(key: &[u8; 16], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <Cmac<Aes128> as KeyInit>::new(key.into());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// SCP03 KDF (NIST SP 800-108 counter mode, AES-CMAC), one block: the first `out.len()` bytes
/// (8 or 16) of the derived data.
fn derive(key: &[u8; 16], constant: u8, context: &[u8; 16], out: &mut [u8]) {
    let mut data = [0u8; 32];
    data[11] = constant;
    // data[12]: separation indicator 0x00.
    let bits = u16::try_from(out.len() * 8).unwrap_or(128);
    data[13..15].copy_from_slice(&bits.to_be_bytes());
    data[15] = 0x01;
    data[16..].copy_from_slice(context);
    let mut tag = cmac(key, &[&data]);
    let n = out.len().min(BLOCK);
    out[..n].copy_from_slice(&tag[..n]);
    tag.zeroize();
}

fn put_header(out: &mut [u8], code: u8, len: usize) -> Result<(), HsmError> {
    let len = u16::try_from(len).map_err(|_| HsmError::TooLong)?;
    if out.len() < HEADER + usize::from(len) {
        return Err(HsmError::TooLong);
    }
    out[0] = code;
    out[1..3].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Split a reply into (code, body), checking that the length field matches exactly.
fn split(reply: &[u8]) -> Result<(u8, &[u8]), HsmError> {
    let (head, body) = reply.split_at_checked(HEADER).ok_or(HsmError::Malformed)?;
    let len = usize::from(u16::from_be_bytes([head[1], head[2]]));
    if body.len() != len {
        return Err(HsmError::Malformed);
    }
    Ok((head[0], body))
}

/// An unauthenticated error reply (`7f ‖ 0001 ‖ code`), or the expected reply code.
fn expect(reply: &[u8], command: u8) -> Result<&[u8], HsmError> {
    match split(reply)? {
        (code::ERROR, [e]) => Err(HsmError::Device { code: *e }),
        (code::ERROR, _) => Err(HsmError::Malformed),
        (c, body) if c == command | code::REPLY => Ok(body),
        (c, _) => Err(HsmError::UnexpectedReply { code: c }),
    }
}

/// Step 1: a Create Session sent, waiting for the card's challenge and cryptogram.
#[derive(Debug)]
pub struct Handshake {
    host_challenge: [u8; CHALLENGE_LEN],
}

impl Handshake {
    /// Write Create Session for `key` with a fresh `host_challenge` (from the board's RNG)
    /// into `out`; returns the handshake and the message length.
    pub fn start(
        key: &AuthKey,
        host_challenge: [u8; CHALLENGE_LEN],
        out: &mut [u8],
    ) -> Result<(Handshake, usize), HsmError> {
        let len = 2 + CHALLENGE_LEN;
        put_header(out, code::CREATE_SESSION, len)?;
        out[3..5].copy_from_slice(&key.id().to_be_bytes());
        out[5..5 + CHALLENGE_LEN].copy_from_slice(&host_challenge);
        Ok((Handshake { host_challenge }, HEADER + len))
    }

    /// Step 2: check the HSM's answer (its card cryptogram proves it holds the same
    /// authentication key), derive the session keys and write Authenticate Session into
    /// `out`. Returns the not-yet-confirmed session and the message length.
    pub fn answer(
        self,
        key: &AuthKey,
        reply: &[u8],
        out: &mut [u8],
    ) -> Result<(Opening, usize), HsmError> {
        let body = expect(reply, code::CREATE_SESSION)?;
        let [sid, rest @ ..] = body else {
            return Err(HsmError::Malformed);
        };
        if rest.len() != 2 * CHALLENGE_LEN || *sid > 15 {
            return Err(HsmError::Malformed);
        }
        let (card_challenge, card_cryptogram) = rest.split_at(CHALLENGE_LEN);
        let mut context = [0u8; 16];
        context[..8].copy_from_slice(&self.host_challenge);
        context[8..].copy_from_slice(card_challenge);

        let mut session = Session {
            id: *sid,
            enc: [0; 16],
            mac: [0; 16],
            rmac: [0; 16],
            chain: [0; 16],
            counter: 0,
            awaiting: false,
        };
        derive(key.enc(), DERIVE_S_ENC, &context, &mut session.enc);
        derive(key.mac(), DERIVE_S_MAC, &context, &mut session.mac);
        derive(key.mac(), DERIVE_S_RMAC, &context, &mut session.rmac);

        let mut expected = [0u8; 8];
        derive(
            &session.mac,
            DERIVE_CARD_CRYPTOGRAM,
            &context,
            &mut expected,
        );
        if !bool::from(expected.ct_eq(card_cryptogram)) {
            return Err(HsmError::BadCardCryptogram);
        }
        let mut host_cryptogram = [0u8; 8];
        derive(
            &session.mac,
            DERIVE_HOST_CRYPTOGRAM,
            &context,
            &mut host_cryptogram,
        );

        let len = 1 + 8 + MAC_LEN;
        put_header(out, code::AUTHENTICATE_SESSION, len)?;
        out[3] = session.id;
        out[4..12].copy_from_slice(&host_cryptogram);
        let tag = cmac(&session.mac, &[&session.chain, &out[..12]]);
        session.chain = tag;
        out[12..20].copy_from_slice(&tag[..MAC_LEN]);
        Ok((Opening { session }, HEADER + len))
    }
}

/// Step 3: Authenticate Session sent; the session is usable once the HSM confirms.
#[derive(Debug)]
pub struct Opening {
    session: Session,
}

impl Opening {
    /// The HSM's confirmation (`84 ‖ 0000`): the session is open, its counter at 1.
    pub fn confirm(self, reply: &[u8]) -> Result<Session, HsmError> {
        let body = expect(reply, code::AUTHENTICATE_SESSION)?;
        if !body.is_empty() {
            return Err(HsmError::Malformed);
        }
        let mut session = self.session;
        session.counter = 1;
        Ok(session)
    }
}

/// An authenticated session: seals commands and opens their replies, one at a time.
///
/// Invariants: the keys are this session's S-ENC, S-MAC and S-RMAC; `chain` is the full
/// C-MAC of the last command; `awaiting` is set between [`Session::seal`] and the
/// [`Session::open`] of its reply. Keys are zeroized on drop and never shown by `Debug`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Session {
    id: u8,
    enc: [u8; 16],
    mac: [u8; 16],
    rmac: [u8; 16],
    chain: [u8; 16],
    counter: u32,
    awaiting: bool,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The HSM's session number (0–15).
    pub fn id(&self) -> u8 {
        self.id
    }

    /// Messages answered in this session so far, plus one.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    fn icv(&self) -> aes::Block {
        let mut icv = aes::Block::default();
        icv[12..].copy_from_slice(&self.counter.to_be_bytes());
        let cipher = Aes128::new(&self.enc.into());
        cipher.encrypt_block(&mut icv);
        icv
    }

    /// Seal the inner command `command ‖ len ‖ data` into a Session Message in `out`; returns
    /// its length. Refused while a reply is outstanding or when the session is used up.
    pub fn seal(&mut self, command: u8, data: &[u8], out: &mut [u8]) -> Result<usize, HsmError> {
        if self.awaiting {
            return Err(HsmError::UnexpectedReply { code: command });
        }
        if self.counter == 0 || self.counter >= MAX_MESSAGES {
            return Err(HsmError::MessageLimit);
        }
        let inner = HEADER + data.len();
        let padded = (inner / BLOCK + 1) * BLOCK;
        let len = 1 + padded + MAC_LEN;
        put_header(out, code::SESSION_MESSAGE, len)?;
        out[3] = self.id;
        let body = &mut out[4..4 + padded];
        put_header(body, command, data.len())?;
        body[HEADER..inner].copy_from_slice(data);
        body[inner] = 0x80;
        body[inner + 1..].fill(0);

        let cipher = Aes128::new(&self.enc.into());
        let mut cbc = CbcEnc::inner_iv_init(cipher, &self.icv());
        for block in body.chunks_exact_mut(BLOCK) {
            let block: &mut aes::Block = block.try_into().map_err(|_| HsmError::TooLong)?;
            cbc.encrypt_block(block);
        }
        let tag = cmac(&self.mac, &[&self.chain, &out[..4 + padded]]);
        self.chain = tag;
        out[4 + padded..4 + padded + MAC_LEN].copy_from_slice(&tag[..MAC_LEN]);
        self.awaiting = true;
        Ok(HEADER + len)
    }

    /// Open the reply to the last sealed command: verify its R-MAC, decrypt it into `out`,
    /// strip the padding and check the inner reply is for `command`. Returns the inner
    /// reply's data. Any error means the session must be dropped.
    pub fn open<'o>(
        &mut self,
        command: u8,
        reply: &[u8],
        out: &'o mut [u8],
    ) -> Result<&'o [u8], HsmError> {
        if !self.awaiting {
            return Err(HsmError::UnexpectedReply {
                code: code::SESSION_MESSAGE,
            });
        }
        self.awaiting = false;
        let body = expect(reply, code::SESSION_MESSAGE)?;
        let [sid, rest @ ..] = body else {
            return Err(HsmError::Malformed);
        };
        let cipher_len = rest.len().checked_sub(MAC_LEN).ok_or(HsmError::Malformed)?;
        if *sid != self.id {
            return Err(HsmError::SessionMismatch);
        }
        let (ciphertext, rmac) = rest.split_at(cipher_len);
        let tag = cmac(&self.rmac, &[&self.chain, &reply[..4 + cipher_len]]);
        if !bool::from(tag[..MAC_LEN].ct_eq(rmac)) {
            return Err(HsmError::BadMac);
        }
        if cipher_len == 0 || cipher_len % BLOCK != 0 || cipher_len > out.len() {
            return Err(HsmError::Malformed);
        }
        let plain = &mut out[..cipher_len];
        plain.copy_from_slice(ciphertext);
        let cipher = Aes128::new(&self.enc.into());
        let mut cbc = CbcDec::inner_iv_init(cipher, &self.icv());
        for block in plain.chunks_exact_mut(BLOCK) {
            let block: &mut aes::Block = block.try_into().map_err(|_| HsmError::Malformed)?;
            cbc.decrypt_block(block);
        }
        // The reply is authentic: the counter moves on whatever it says.
        self.counter = self.counter.saturating_add(1);
        let end = plain
            .iter()
            .rposition(|b| *b != 0)
            .filter(|i| plain[*i] == 0x80)
            .ok_or(HsmError::Malformed)?;
        let plain = &out[..end];
        match split(plain)? {
            (code::ERROR, [e]) => Err(HsmError::Refused { code: *e }),
            (c, data) if c == command | code::REPLY => Ok(data),
            (c, _) => Err(HsmError::UnexpectedReply { code: c }),
        }
    }
}
