//! The BLS equality run (`blscheck.sh`): reads test keys and messages that the host checker
//! (`firmware/blscheck`) wrote to `blscheck.in`, signs each through pawl-core's own key code
//! (the board's blst, with the Thumb-2 field arithmetic of `firmware/vendor/blst`), and writes
//! the public key and signature to `blscheck.out`. The host checker compares every byte with
//! host blst (crates.io, its own x86-64 assembly).
//!
//! First, the Thumb-2 field routines themselves against a reference on inputs that reach
//! every carry (`field.rs`; signing alone never reaches some of them).
//!
//! Record in: `kind` (0: sign the message with the `…_POP_` signature DST, 1: proof of
//! possession over the key's own public key), the 32-byte little-endian Tezos secret, the
//! message length (u16 little-endian), the message. Record out: 48-byte compressed public
//! key, 96-byte compressed signature. These are test keys made for the run, never a baker's.

#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use pawl_core::keys::{Curve, KeyPair, SecretBytes, Signature, SigningVersion, TezosSigner};
use pawl_qemu::semihost::{HostFile, Open};
use pawl_qemu::{fail, init_heap};

/// Longest message a record may carry (the host checker stays below it).
const MAX_MESSAGE: usize = 1024;
/// Cases per field routine.
const FIELD_CASES: u32 = 20_000;

mod field;

fn read_exact(file: &mut HostFile, buf: &mut [u8]) -> bool {
    matches!(file.read(buf), Ok(n) if n == buf.len())
}

#[entry]
fn main() -> ! {
    init_heap();
    if let Err(m) = field::check(&mut field::Rng::new(0x9e37_79b9_7f4a_7c15), FIELD_CASES) {
        hprintln!(
            "BLSCHECK field {} differs from the reference, case {}",
            m.routine,
            m.case
        );
        fail("a Thumb-2 field routine differs from the reference");
    }
    hprintln!(
        "BLSCHECK field routines identical to the reference cases={}",
        FIELD_CASES
    );
    let Ok(mut input) = HostFile::open(c"blscheck.in", Open::Read) else {
        fail("open blscheck.in");
    };
    let Ok(mut output) = HostFile::open(c"blscheck.out", Open::Create) else {
        fail("create blscheck.out");
    };
    let mut message = [0u8; MAX_MESSAGE];
    let mut records = 0u32;
    loop {
        let mut head = [0u8; 1 + 32 + 2];
        match input.read(&mut head) {
            Ok(0) => break,
            Ok(n) if n == head.len() => {}
            _ => fail("blscheck.in: truncated record header"),
        }
        let kind = head[0];
        let mut le = [0u8; 32];
        le.copy_from_slice(&head[1..33]);
        let secret = SecretBytes::new(le);
        let len = usize::from(u16::from_le_bytes([head[33], head[34]]));
        let Some(message) = message.get_mut(..len) else {
            fail("blscheck.in: message longer than MAX_MESSAGE");
        };
        if !read_exact(&mut input, message) {
            fail("blscheck.in: truncated message");
        }
        let Ok(key) = KeyPair::from_secret(Curve::Bls12_381, &secret) else {
            fail("blscheck.in: secret is not a BLS scalar");
        };
        let signature = match kind {
            0 => key.try_sign(message, SigningVersion::LATEST),
            1 => key.prove_possession(None),
            _ => fail("blscheck.in: unknown record kind"),
        };
        let Ok(Signature::Bls(signature)) = signature else {
            fail("BLS signing failed");
        };
        let public = key.public_key().as_bytes();
        if output.write(public).is_err() || output.write(&signature).is_err() {
            fail("write blscheck.out");
        }
        records += 1;
    }
    hprintln!("BLSCHECK signed records={}", records);
    debug::exit(debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}
