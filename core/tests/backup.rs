//! Key backups (`pawl_core::backup`): what the board seals is opened by the real `age` binary
//! (Debian package `age`, installed by `tests/setup`) with an identity made by `age-keygen` —
//! an implementation that shares nothing with pawl's.

use std::io::Write as _;
use std::process::{Command, Stdio};

use pawl_core::backup;
use pawl_core::keys::{Curve, Entropy, KeyError, SecretBytes};

mod support;
use support::board::TestEntropy;

/// A fresh age identity: (identity file, the recipient's 32 bytes).
fn identity(dir: &std::path::Path) -> (std::path::PathBuf, [u8; 32]) {
    let path = dir.join("identity.txt");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .expect("age-keygen (Debian package `age`; run tests/setup)");
    assert!(out.status.success(), "age-keygen: {out:?}");
    let text = std::fs::read_to_string(&path).expect("identity file");
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("age-keygen prints the public key");
    let (hrp, data) = bech32::decode(recipient).expect("bech32 recipient");
    assert_eq!(hrp.as_str(), "age");
    (path, data.try_into().expect("32-byte X25519 recipient"))
}

fn age_decrypt(identity: &std::path::Path, sealed: &[u8]) -> Result<String, String> {
    let mut child = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("age (Debian package `age`; run tests/setup)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(sealed)
        .expect("write to age");
    let out = child.wait_with_output().expect("age runs");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("utf-8 plaintext"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

// Secrets from docs/protocol.md §8.4 (upstream test vectors; public, never real keys), and a
// P-256 scalar of our own (no upstream p2sk vector), written out by pawl's encoder.
const SECRETS: [&str; 3] = [
    "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd",
    "spsk1zkqrmst1yg2c4xi3crWcZPqgdc9KtPtb9SAZWYHAdiQzdHy7j",
    "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq",
];

fn p256_text() -> String {
    SecretBytes::new([0x11; 32]).to_b58(Curve::P256).to_string()
}

#[test]
fn age_opens_what_the_board_seals_for_every_curve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (id, recipient) = identity(dir.path());
    let mut entropy = TestEntropy(7);
    for text in SECRETS.map(String::from).into_iter().chain([p256_text()]) {
        let text = text.as_str();
        let (curve, secret) = SecretBytes::from_b58(text).expect("vector secret");
        let sealed = backup::seal(curve, &secret, &recipient, &mut entropy).expect("sealed");
        assert!(sealed.len() <= backup::MAX_BACKUP);
        let opened = age_decrypt(&id, &sealed).unwrap_or_else(|e| panic!("age -d: {e}"));
        assert_eq!(opened, format!("{text}\n"), "{curve:?}");
        assert!(
            !sealed.windows(text.len()).any(|w| w == text.as_bytes()),
            "the secret text appears in the sealed file"
        );
    }
}

#[test]
fn age_refuses_a_tampered_backup_and_another_identity() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (id, recipient) = identity(dir.path());
    let other = tempfile::tempdir().expect("temp dir");
    let (other_id, _) = identity(other.path());
    let (curve, secret) = SecretBytes::from_b58(SECRETS[0]).expect("vector secret");
    let sealed = backup::seal(curve, &secret, &recipient, &mut TestEntropy(9)).expect("sealed");
    assert!(
        age_decrypt(&other_id, &sealed).is_err(),
        "opened with the wrong identity"
    );
    // One flipped bit anywhere — header, MAC, nonce or ciphertext — and age refuses.
    for at in [30, 60, 120, sealed.len() - 40, sealed.len() - 1] {
        let mut bad = sealed.to_vec();
        bad[at] ^= 0x01;
        assert!(
            age_decrypt(&id, &bad).is_err(),
            "byte {at} flipped and still opened"
        );
    }
}

#[test]
fn two_backups_of_one_key_share_no_randomness() {
    let (curve, secret) = SecretBytes::from_b58(SECRETS[0]).expect("vector secret");
    let recipient = [9u8; 32];
    let mut entropy = TestEntropy(1);
    let a = backup::seal(curve, &secret, &recipient, &mut entropy).expect("sealed");
    let b = backup::seal(curve, &secret, &recipient, &mut entropy).expect("sealed");
    assert_eq!(a.len(), b.len());
    assert_ne!(a[..70], b[..70], "the same ephemeral share twice");
}

#[test]
fn a_low_order_recipient_is_refused() {
    // The all-zero point: every shared secret with it is zero, and age identities abort on that.
    let (curve, secret) = SecretBytes::from_b58(SECRETS[0]).expect("vector secret");
    let err = backup::seal(curve, &secret, &[0u8; 32], &mut TestEntropy(2)).expect_err("refused");
    assert_eq!(err, KeyError::InvalidPublicKey);
}

#[test]
fn failing_entropy_seals_nothing() {
    struct Dry;
    impl Entropy for Dry {
        fn fill(&mut self, _: &mut [u8]) -> Result<(), KeyError> {
            Err(KeyError::EntropyFailed)
        }
    }
    let (curve, secret) = SecretBytes::from_b58(SECRETS[0]).expect("vector secret");
    assert_eq!(
        backup::seal(curve, &secret, &[9u8; 32], &mut Dry).expect_err("no entropy"),
        KeyError::EntropyFailed
    );
}
