//! Host side of the QEMU board's BLS equality run (`firmware/qemu/blscheck.sh`).
//!
//! * `pawl-blscheck gen COUNT FILE`: writes COUNT records of test keys and messages (random
//!   from the OS, after a few fixed edge cases) in the format `blscheck` (the board binary)
//!   reads.
//! * `pawl-blscheck check IN OUT`: for each record of IN, computes the public key and signature
//!   with host blst and compares them with the board's in OUT; prints the first mismatches and
//!   exits non-zero on any difference or a short OUT.
//!
//! Record in: kind (0: sign the message, 1: proof of possession over the key's own public key),
//! 32-byte little-endian secret (the Tezos `BLsk` encoding), u16 little-endian message length,
//! message. Record out: 48-byte compressed public key, 96-byte compressed signature.

use std::fs;
use std::io::Read;
use std::process::ExitCode;

use blst::min_pk::SecretKey;

/// tz4 signatures (Octez signature versions 2 and 3): the proof-of-possession ciphersuite's
/// signing DST (draft-irtf-cfrg-bls-signature, section 4.2.3).
const SIGN_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// Proofs of possession of that ciphersuite.
const POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// The BLS12-381 group order r, big-endian.
const ORDER: [u8; 32] = [
    0x73, 0xed, 0xa7, 0x53, 0x29, 0x9d, 0x7d, 0x48, 0x33, 0x39, 0xd8, 0x08, 0x09, 0xa1, 0xd8, 0x05,
    0x53, 0xbd, 0xa4, 0x02, 0xff, 0xfe, 0x5b, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
];
/// Longest message written (the board binary accepts up to 1024 bytes).
const MAX_MESSAGE: usize = 600;
const OUT_RECORD: usize = 48 + 96;

struct Record {
    kind: u8,
    secret_le: [u8; 32],
    message: Vec<u8>,
}

impl Record {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind);
        out.extend_from_slice(&self.secret_le);
        let len = u16::try_from(self.message.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&self.message);
    }

    /// Public key and signature as host blst computes them.
    fn expected(&self) -> Result<[u8; OUT_RECORD], String> {
        let mut be = self.secret_le;
        be.reverse();
        let sk = SecretKey::from_bytes(&be).map_err(|e| format!("secret rejected: {e:?}"))?;
        let pk = sk.sk_to_pk().compress();
        let sig = match self.kind {
            0 => sk.sign(&self.message, SIGN_DST, &[]),
            1 => sk.sign(&pk, POP_DST, &[]),
            k => return Err(format!("unknown kind {k}")),
        };
        let mut out = [0u8; OUT_RECORD];
        out[..48].copy_from_slice(&pk);
        out[48..].copy_from_slice(&sig.compress());
        Ok(out)
    }
}

fn parse(bytes: &[u8]) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (head, tail) = rest
            .split_at_checked(35)
            .ok_or("input: truncated record header")?;
        let len = usize::from(u16::from_le_bytes([head[33], head[34]]));
        let (message, tail) = tail
            .split_at_checked(len)
            .ok_or("input: truncated message")?;
        let mut secret_le = [0u8; 32];
        secret_le.copy_from_slice(&head[1..33]);
        records.push(Record {
            kind: head[0],
            secret_le,
            message: message.to_vec(),
        });
        rest = tail;
    }
    Ok(records)
}

/// Bytes from the OS's random source.
struct Random(fs::File);

impl Random {
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let mut v = vec![0u8; n];
        self.0
            .read_exact(&mut v)
            .map_err(|e| format!("/dev/urandom: {e}"))?;
        Ok(v)
    }

    fn below(&mut self, n: u32) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) % n)
    }
}

fn le_of(be: [u8; 32]) -> [u8; 32] {
    let mut le = be;
    le.reverse();
    le
}

fn generate(count: usize, path: &str) -> Result<(), String> {
    let mut rng = Random(fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?);
    let mut one = [0u8; 32];
    one[31] = 1;
    let mut order_minus_one = ORDER;
    order_minus_one[31] -= 1;
    let mut two = [0u8; 32];
    two[31] = 2;
    // Edge cases first: the smallest and largest scalars; messages around SHA-256 block and
    // padding boundaries, and empty.
    let fixed: [([u8; 32], usize); 8] = [
        (one, 0),
        (order_minus_one, 1),
        (two, 55),
        (one, 56),
        (order_minus_one, 64),
        (two, 119),
        (one, 128),
        (order_minus_one, MAX_MESSAGE),
    ];
    let mut out = Vec::new();
    for (i, (be, len)) in fixed.iter().enumerate().take(count) {
        let kind = u8::from(i % 4 == 3);
        Record {
            kind,
            secret_le: le_of(*be),
            message: rng.bytes(*len)?,
        }
        .encode(&mut out);
    }
    for _ in fixed.len()..count {
        // A uniformly random valid scalar: the IETF KeyGen of random key material.
        let ikm = rng.bytes(32)?;
        let sk = SecretKey::key_gen(&ikm, &[]).map_err(|e| format!("key_gen: {e:?}"))?;
        let kind = u8::from(rng.below(8)? == 0);
        let len = rng.below(u32::try_from(MAX_MESSAGE).unwrap_or(u32::MAX) + 1)? as usize;
        Record {
            kind,
            secret_le: le_of(sk.to_bytes()),
            message: rng.bytes(len)?,
        }
        .encode(&mut out);
    }
    fs::write(path, out).map_err(|e| format!("{path}: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check(input: &str, output: &str) -> Result<usize, String> {
    let records = parse(&fs::read(input).map_err(|e| format!("{input}: {e}"))?)?;
    let board = fs::read(output).map_err(|e| format!("{output}: {e}"))?;
    if board.len() != records.len() * OUT_RECORD {
        return Err(format!(
            "{output}: {} bytes, expected {} records of {OUT_RECORD}",
            board.len(),
            records.len()
        ));
    }
    let mut mismatches = 0usize;
    for (i, (record, got)) in records.iter().zip(board.chunks(OUT_RECORD)).enumerate() {
        let want = record.expected()?;
        if got != want {
            mismatches += 1;
            if mismatches <= 5 {
                eprintln!(
                    "record {i} (kind {}, message {} bytes, test secret {}): board {} host {}",
                    record.kind,
                    record.message.len(),
                    hex(&record.secret_le),
                    hex(got),
                    hex(&want)
                );
            }
        }
    }
    if mismatches > 0 {
        return Err(format!(
            "{mismatches} of {} board BLS results differ from host blst",
            records.len()
        ));
    }
    Ok(records.len())
}

fn run(args: &[String]) -> Result<(), String> {
    match args {
        [cmd, count, path] if cmd == "gen" => {
            let count = count
                .parse()
                .map_err(|_| format!("COUNT: not a number: {count}"))?;
            generate(count, path)
        }
        [cmd, input, output] if cmd == "check" => {
            let n = check(input, output)?;
            let sign = parse(&fs::read(input).map_err(|e| format!("{input}: {e}"))?)?
                .iter()
                .filter(|r| r.kind == 0)
                .count();
            println!(
                "BLSCHECK {n} board results identical to host blst ({sign} signatures, {} proofs of possession, with their public keys)",
                n - sign
            );
            Ok(())
        }
        _ => Err("usage: pawl-blscheck gen COUNT FILE | check IN OUT".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pawl-blscheck: {e}");
            ExitCode::FAILURE
        }
    }
}
