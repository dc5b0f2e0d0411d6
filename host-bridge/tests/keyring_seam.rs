//! The host-held key seam (`keyring/`) with a backend the bridge has never heard of: a keyring
//! defined here, holding a secp256k1 key (libsecp256k1, not pawl-core), plugged into the sign
//! path through `Keyrings` alone. The sign path must carry it like any other: approved digests
//! signed, high-S normalised by the board, signatures verified independently; refusals and
//! identical retries with no call; a wrong signature never released; the backend's own error
//! class and label in the answer; per-backend metrics.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use pawl_bridge::auth::Authorizer;
use pawl_bridge::http::AppState;
use pawl_bridge::keyring::{Failure, HostKeyring, KeyringError, Keyrings, SignFuture};
use pawl_bridge::metrics::Metrics;
use pawl_bridge::signer::{self, Authentication, SignRequest};
use pawl_core::keys::{PublicKey, PublicKeyHash, Signature, SigningVersion};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Request, Response};
use support::{attestation, secp256k1_verifies, settings, virtual_link};

const MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

/// secp256k1 group order, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// A key service made up for this test.
struct TestKeyring {
    key: secp256k1::SecretKey,
    pkh: PublicKeyHash,
    calls: AtomicUsize,
    wrong: AtomicBool,
    throttled: AtomicBool,
}

impl HostKeyring for TestKeyring {
    fn name(&self) -> &'static str {
        "test"
    }

    fn service(&self) -> &'static str {
        "the test service"
    }

    fn has_key(&self, pkh: &PublicKeyHash) -> bool {
        *pkh == self.pkh
    }

    fn sign<'a>(&'a self, _pkh: &'a PublicKeyHash, digest: &'a [u8; 32]) -> SignFuture<'a> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if self.throttled.load(Ordering::SeqCst) {
                return Err(KeyringError {
                    failure: Failure::Throttled,
                    outcome: "test_throttled",
                    message: "the test service is throttling".into(),
                });
            }
            let mut sig = secp256k1::SECP256K1
                .sign_ecdsa(secp256k1::Message::from_digest(*digest), &self.key)
                .serialize_compact();
            if n.is_multiple_of(2) {
                // s → n − s: the high-S twin, as cloud services return half the time.
                let mut borrow = 0i16;
                for i in (0..32).rev() {
                    let d = i16::from(N[i]) - i16::from(sig[32 + i]) - borrow;
                    borrow = i16::from(d < 0);
                    sig[32 + i] = d.rem_euclid(256) as u8;
                }
            }
            if self.wrong.load(Ordering::SeqCst) {
                sig[5] ^= 0x40;
            }
            Ok(Signature::Secp256k1(sig))
        })
    }
}

fn sign(
    runtime: &tokio::runtime::Runtime,
    state: &AppState,
    pkh: PublicKeyHash,
    payload: &[u8],
) -> Result<Signature, (u16, &'static str, String)> {
    let request = SignRequest {
        pkh,
        version: SigningVersion::LATEST,
        payload: payload.to_vec(),
        authentication: Authentication::Absent,
    };
    runtime
        .block_on(signer::sign(state, &pkh.to_b58(), Ok(request)))
        .map_err(|e| (e.status.as_u16(), e.outcome, e.msg))
}

#[test]
fn a_backend_plugs_in_through_keyrings_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = virtual_link(dir.path());
    let key = secp256k1::SecretKey::from_byte_array([0x42; 32]).expect("key");
    let public =
        PublicKey::Secp256k1(secp256k1::PublicKey::from_secret_key_global(&key).serialize());
    let reply = link
        .ask_blocking(&Request::RegisterHostKey {
            public_key: public,
            policy: Policy::default(),
        })
        .expect("link");
    let Response::KeyInfo(info) = reply.response else {
        panic!("register: {:?}", reply.response);
    };
    let pkh = info.pkh;
    let sppk = public.to_b58().to_string();
    let keyring = Arc::new(TestKeyring {
        key,
        pkh,
        calls: AtomicUsize::new(0),
        wrong: AtomicBool::new(false),
        throttled: AtomicBool::new(false),
    });
    let metrics = Arc::new(Metrics::default());
    let state = AppState {
        boards: pawl_bridge::boards::Boards::single("board", link),
        auth: Authorizer::new(Vec::new()),
        settings: settings(),
        metrics: Arc::clone(&metrics),
        keyrings: Arc::new(Keyrings::new(vec![keyring.clone() as Arc<dyn HostKeyring>])),
        yubihsm: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let calls = || keyring.calls.load(Ordering::SeqCst);

    // Signed through the test service, high-S every other time, released low-S and valid.
    for level in 1..=6 {
        let payload = attestation(MAINNET, level, 0, 1);
        let sig = sign(&runtime, &state, pkh, &payload).expect("signed");
        assert!(
            secp256k1_verifies(&sppk, &payload, &sig.to_b58()),
            "level {level}"
        );
    }
    assert_eq!(calls(), 6);

    // Identical retry: the board's recorded signature; refusals: the board's. No call.
    let payload = attestation(MAINNET, 6, 0, 1);
    let again = sign(&runtime, &state, pkh, &payload).expect("retry");
    assert!(secp256k1_verifies(&sppk, &payload, &again.to_b58()));
    let other = sign(&runtime, &state, pkh, &attestation(MAINNET, 6, 0, 2)).expect_err("other");
    assert_eq!(other.0, 409, "{other:?}");
    let lower = sign(&runtime, &state, pkh, &attestation(MAINNET, 5, 0, 9)).expect_err("lower");
    assert_eq!(lower.0, 409, "{lower:?}");
    assert_eq!(calls(), 6);

    // The backend's own error class and label reach the baker; the approval stays.
    keyring.throttled.store(true, Ordering::SeqCst);
    let payload = attestation(MAINNET, 7, 0, 1);
    let err = sign(&runtime, &state, pkh, &payload).expect_err("throttled");
    assert_eq!((err.0, err.1), (503, "test_throttled"), "{err:?}");
    keyring.throttled.store(false, Ordering::SeqCst);
    let sig = sign(&runtime, &state, pkh, &payload).expect("retried");
    assert!(secp256k1_verifies(&sppk, &payload, &sig.to_b58()));

    // A wrong signature is never released, and is counted for the backend.
    keyring.wrong.store(true, Ordering::SeqCst);
    let payload = attestation(MAINNET, 8, 0, 1);
    let err = sign(&runtime, &state, pkh, &payload).expect_err("wrong");
    assert_eq!((err.0, err.1), (502, "cloud_signature_refused"), "{err:?}");
    assert!(err.2.contains("the test service"), "{err:?}");
    keyring.wrong.store(false, Ordering::SeqCst);
    let sig = sign(&runtime, &state, pkh, &payload).expect("after the fault");
    assert!(secp256k1_verifies(&sppk, &payload, &sig.to_b58()));

    let text = metrics.render(&[]);
    assert!(
        text.contains("pawl_keyring_requests_total{backend=\"test\",outcome=\"signed\"} 9"),
        "{text}"
    );
    assert!(
        text.contains("pawl_keyring_requests_total{backend=\"test\",outcome=\"test_throttled\"} 1")
    );
    assert!(text.contains("pawl_keyring_bad_signatures_total{backend=\"test\"} 1"));
    assert!(text.contains("pawl_keyring_duration_seconds_count{backend=\"test\"} 10"));
}

#[test]
fn a_host_held_key_no_keyring_holds_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = virtual_link(dir.path());
    let key = secp256k1::SecretKey::from_byte_array([0x43; 32]).expect("key");
    let public =
        PublicKey::Secp256k1(secp256k1::PublicKey::from_secret_key_global(&key).serialize());
    let reply = link
        .ask_blocking(&Request::RegisterHostKey {
            public_key: public,
            policy: Policy::default(),
        })
        .expect("link");
    let Response::KeyInfo(info) = reply.response else {
        panic!("register: {:?}", reply.response);
    };
    let state = AppState {
        boards: pawl_bridge::boards::Boards::single("board", link),
        auth: Authorizer::new(Vec::new()),
        settings: settings(),
        metrics: Arc::new(Metrics::default()),
        keyrings: Arc::new(Keyrings::default()),
        yubihsm: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let err = sign(&runtime, &state, info.pkh, &attestation(MAINNET, 3, 0, 1)).expect_err("no");
    assert_eq!((err.0, err.1), (502, "host_key_unknown"), "{err:?}");
    assert!(err.2.contains("none is configured"), "{err:?}");
}
