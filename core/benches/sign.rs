//! Criterion benchmark: one board round per curve — parse + policy + watermark + durable
//! mark (in-memory store) + sign — on a tz1/tz2/tz3 attestation and a tz4 BLS-mode attestation,
//! at increasing levels so every iteration signs afresh. Also the pieces on their own.
//!
//! Run: `cargo bench -p pawl-core --bench sign`

use core::hint::black_box;
use criterion::{Criterion, criterion_group, criterion_main};
use pawl_core::board::{Board, BoardInfo, NoButton};
use pawl_core::keys::{
    Curve, Entropy, KeyError, KeyPair, SecretBytes, SigningVersion, TezosSigner,
};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Request, Response};
use pawl_core::request::parse;
use pawl_core::store::MemoryStore;

struct Fixed;
impl Entropy for Fixed {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), KeyError> {
        dest.fill(0x42);
        Ok(())
    }
}

fn attestation(bls: bool, level: u32) -> Vec<u8> {
    let mut v = vec![0x13, 0xb3, 0xd7, 0x9f, 0x99];
    v.extend_from_slice(&[0xaa; 32]);
    if bls {
        v.push(41);
    } else {
        v.push(21);
        v.extend_from_slice(&7u16.to_be_bytes());
    }
    v.extend_from_slice(&level.to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(&[0x55; 32]);
    v
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("board_sign_attestation");
    for curve in Curve::ALL {
        let bls = curve == Curve::Bls12_381;
        let mut board = Board::open(
            MemoryStore::new(),
            Fixed,
            NoButton,
            Mode::Provisioning,
            BoardInfo {
                firmware: "bench",
                board: "host",
            },
        );
        let pkh = match board.handle(Request::GenerateKey {
            curve,
            policy: Policy::default(),
        }) {
            Response::KeyInfo(k) => k.pkh,
            other => panic!("{other:?}"),
        };
        let mut level = 0u32;
        group.bench_function(curve.name(), |b| {
            b.iter(|| {
                level += 1;
                let payload = attestation(bls, level);
                let r = board.handle(Request::Sign {
                    pkh,
                    version: SigningVersion::LATEST,
                    payload: &payload,
                });
                assert!(matches!(r, Response::Signature(_)), "{r:?}");
                black_box(r)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("pieces");
    let payload = attestation(false, 10);
    group.bench_function("parse_attestation", |b| {
        b.iter(|| black_box(parse(black_box(&payload))))
    });
    for curve in Curve::ALL {
        let pair = KeyPair::from_secret(curve, &SecretBytes::new([0x21; 32])).expect("key");
        let p = attestation(curve == Curve::Bls12_381, 10);
        group.bench_function(format!("sign_only_{}", curve.name()), |b| {
            b.iter(|| black_box(pair.try_sign(black_box(&p), SigningVersion::LATEST)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
