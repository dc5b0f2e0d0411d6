//! Key encodings and signatures against upstream vectors (each names its source), and every
//! signature pawl-core makes checked by an independent implementation (`support`).

mod support;

use pawl_core::digest::blake2b_256;
use pawl_core::encoding::{EncodingError, Prefix, decode_any, encode};
use pawl_core::keys::{
    Curve, KeyError, KeyPair, PublicKey, PublicKeyHash, SecretBytes, Signature, SigningVersion,
    TezosSigner,
};
use support::{unhex, verify_independently, verify_pop_independently};

fn pair(sk: &str) -> KeyPair {
    let (curve, secret) = SecretBytes::from_b58(sk).expect("secret key");
    KeyPair::from_secret(curve, &secret).expect("key pair")
}

/// (secret, public, hash) triples.
const KEY_VECTORS: &[(&str, &str, &str)] = &[
    // baking-bad/pytezos tests/unit_tests/test_crypto/test_crypto.py
    (
        "edsk3nM41ygNfSxVU4w1uAW3G9EnTQEB5rjojeZedLTGmiGRcierVv",
        "edpku976gpuAD2bXyx1XGraeKuCo1gUZ3LAJcHM12W1ecxZwoiu22R",
        "tz1eKkWU5hGtfLUiqNpucHrXymm83z3DG9Sq",
    ),
    // baking-bad/pytezos tests/unit_tests/test_crypto/test_crypto.py
    (
        "spsk1zkqrmst1yg2c4xi3crWcZPqgdc9KtPtb9SAZWYHAdiQzdHy7j",
        "sppk7aMNM3xh14haqEyaxNjSt7hXanCDyoWtRcxF8wbtya859ak6yZT",
        "tz28YZoayJjVz2bRgGeVjxE8NonMiJ3r2Wdu",
    ),
    // ecadlabs/signatory pkg/signatory/signatory_test.go
    (
        "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd",
        "edpkv45regue1bWtuHnCgLU8xWKLwa9qRqv4gimgJKro4LSc3C5VjV",
        "tz1LggX2HUdvJ1tF4Fvv8fjsrzLeW4Jr9t2Q",
    ),
    // tezos/tezos-mirror src/lib_crypto/test/key_encoding_vectors.ml (BLS: little-endian secret)
    (
        "BLsk1eGhiPQXKtvvkBeXzmtVVJs6KPhEF45drF7MLjoCDcSnTGuyjL",
        "BLpk1ur5XXicWYMMzCVZZWyLZhybtyX8Zot2uCzDCZW8KcC5BdZiLVXRZvZzi4GuZYL9SarUvKpE",
        "tz4TFJdv9Jd44FtBMAxi3KQT7AtazhVyaPa6",
    ),
    // tezos/tezos-mirror tezt/lib_tezos/constant.ml (tz4_account)
    (
        "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq",
        "BLpk1yUiLJ7RezbyViD5ZvWTfQndM3TRRYmvYWkUfH2EJqsLFnzzvpJss6pbuz3U1DDMpk8v16nV",
        "tz4EECtMxAuJ9UDLaiMZH7G1GCFYUWsj8HZn",
    ),
];

#[test]
fn keys_derive_upstream_public_keys_and_hashes() {
    for (sk, pk, pkh) in KEY_VECTORS {
        let p = pair(sk);
        assert_eq!(p.public_key().to_b58().as_str(), *pk, "public key of {sk}");
        assert_eq!(p.pkh().to_b58().as_str(), *pkh, "hash of {sk}");
        assert_eq!(
            PublicKey::from_b58(pk)
                .expect("pk")
                .hash()
                .to_b58()
                .as_str(),
            *pkh
        );
        assert_eq!(
            PublicKeyHash::from_b58(pkh).expect("pkh").to_b58().as_str(),
            *pkh
        );
        // Round trip of the secret in its own encoding.
        assert_eq!(p.to_secret().to_b58(p.curve()).as_str(), *sk);
    }
}

#[test]
fn deterministic_signatures_match_upstream() {
    // baking-bad/pytezos test_crypto.py: sign b"test" (no watermark). Ed25519 and RFC 6979
    // secp256k1 are deterministic, so the exact signature must come out.
    let cases = [
        (
            "edsk3nM41ygNfSxVU4w1uAW3G9EnTQEB5rjojeZedLTGmiGRcierVv",
            "edsigtzLBGCyadERX1QsYHKpwnxSxEYQeGLnJGsSkHEsyY8vB5GcNdnvzUZDdFevJK7YZQ2ujwVjvQZn62ahCEcy74AwtbA8HuN",
        ),
        (
            "spsk1zkqrmst1yg2c4xi3crWcZPqgdc9KtPtb9SAZWYHAdiQzdHy7j",
            "spsig1RriZtYADyRhyNoQMa6AiPuJJ7AUDcrxWZfgqexzgANqMv4nXs6qsXDoXcoChBgmCcn2t7Y3EkJaVRuAmNh2cDDxWTdmsz",
        ),
    ];
    for (sk, expected) in cases {
        let p = pair(sk);
        let sig = p.try_sign(b"test", SigningVersion::LATEST).expect("sign");
        assert_eq!(sig.to_b58().as_str(), expected);
        assert!(verify_independently(p.public_key(), b"test", &sig));
    }
}

#[test]
fn ed25519_attestation_matches_derived_vector() {
    // docs/protocol.md §8.5 (derived: computed with Python `cryptography`, not pawl):
    // Signatory C3 attestation signed by Signatory's test key.
    let c3 = unhex(
        "13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb151150015000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44",
    );
    let p = pair("edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd");
    let sig = p.try_sign(&c3, SigningVersion(2)).expect("sign");
    assert_eq!(
        sig.to_b58().as_str(),
        "edsigtia28aoA2ey7TrYKTyKmyppzwnq6VNrwZSwofgMTvFogDMMxs3MnEsfnZnU3g3EZx4zT9X4dYmB5zpDr9QtypNbBN2j7vd"
    );
}

#[test]
fn bls_consensus_signatures_match_py_ecc_vectors() {
    // docs/protocol.md §8.5 (derived), computed with py_ecc G2ProofOfPossession:
    // tezt tz4_account signing the BLS-mode attestation (tag 41) and preattestation (tag 40).
    let p = pair("BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq");
    let cases = [
        (
            "13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb15129000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44",
            "BLsigAQnvUM2quKobRY6uuHMu5KVqYEy19nZbHkpRh3KLNVqJuk5VVspVNLMzWJVWtbjxNU1vzP7bUs2g393JvE6d1LpU2nEVNAMWHGga1SGFc9pZj2L4Lano7coyPQvfethFTLitZ6jvK",
        ),
        (
            "12b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb15128000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44",
            "BLsigAmK2BXU2CvZzgs6TgU2hwLJ8m8PXq5JypfY2QmnWCS9StCqXDxuXF6aBzB83Q6RwNgaJ8XLxeeRrA2ccZY8jdxWTVhGTqPZpGcycaRDyFJGwKrfyYuM6hcB2rjP7NzJLT4ZzYp6GQ",
        ),
    ];
    for (msg, expected) in cases {
        let msg = unhex(msg);
        for version in [2, 3] {
            let sig = p.try_sign(&msg, SigningVersion(version)).expect("sign");
            assert_eq!(sig.to_b58().as_str(), expected);
            assert!(verify_independently(p.public_key(), &msg, &sig));
        }
    }
}

#[test]
fn bls_refuses_versions_0_and_1() {
    let p = pair("BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq");
    for version in [0, 1] {
        assert_eq!(
            p.try_sign(b"x", SigningVersion(version)),
            Err(KeyError::BlsNeedsVersion2 { version })
        );
    }
    assert_eq!(
        p.try_sign(b"x", SigningVersion(4)),
        Err(KeyError::UnknownSigningVersion { version: 4 })
    );
}

#[test]
fn bls_proof_of_possession() {
    // Derived vector (py_ecc), docs/protocol.md §8.5: PoP of tezt tz4_account.
    let p = pair("BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq");
    let proof = p.prove_possession(None).expect("pop");
    assert_eq!(
        proof.to_b58().as_str(),
        "BLsig9a5nLiDGB7zGFTWJGdsZT3WPMCTAh5qVUmJekTzPbiQttFVD6jDg4Mf1gEV8Y3fq7sv9Vs6U7Tpx9ZST7GZdw9NGz9JLkdfeXmGz5yh1BnVSr5aYcLfPEpwteCGRx4Bk1q2SuaAnh"
    );
    let PublicKey::Bls(pk) = p.public_key() else {
        panic!("BLS key")
    };
    assert!(verify_pop_independently(pk, &proof));
    // Not for other curves.
    let ed = pair("edsk3nM41ygNfSxVU4w1uAW3G9EnTQEB5rjojeZedLTGmiGRcierVv");
    assert_eq!(ed.prove_possession(None), Err(KeyError::PossessionNeedsBls));
}

#[test]
fn octez_pop_sample_verifies() {
    // tezos/tezos-mirror tezt/tests/encoding_samples/alpha/operation.unsigned/
    // operation.unsigned-reveal-with-proof.sample.json
    let pk = PublicKey::from_b58(
        "BLpk1oMu38Jfc6nAvxqudMyqr5BHWAaQXzAJkJqh6aPwn1vcRenuceokhfUC4v3oWq4TaXymK8V7",
    )
    .expect("pk");
    assert_eq!(
        pk.hash().to_b58().as_str(),
        "tz4MvCEiLgK6vYRSkug9Nz64UNTbT4McNq8m"
    );
    let proof = Signature::from_b58("BLsigB1UxGiXYQv6XHKw2torEoyvoAJ2dnkGMWSLLCMC4Yds5Db2oFVKVkSV3cuuvb8hjPdAHp8adWWnvyXFQpCbc7mQLo5b3v6FtwqgU2jZojEDjgpSB7Uo1F2fjhgZCz6H6zjpuoxCoo", Curve::Bls12_381).expect("sig");
    assert_eq!(pk.verify_possession(&proof, None), Ok(()));
    let PublicKey::Bls(raw) = pk else {
        panic!("BLS key")
    };
    assert!(verify_pop_independently(&raw, &proof));
}

#[test]
fn bls_augmented_scheme_verifies_but_is_not_used_for_signing() {
    // baking-bad/pytezos test_crypto.py: Aug-scheme signature (signature version 1).
    let p = pair("BLsk2DidLEXYjL5PvteqHgsve5LoJfZVqTQyKU9XsyXdEpoAh6k8D8");
    let msg = b"bls12_381 deterministic signatures";
    let sig = Signature::from_b58("BLsigBTk7yQU5YriqxMPQNXQqAUJKaQDz2LGZdXsBmBWVNrBvVTWXKqCq5Fgz7bJe16wvTzG7wJV23RefadzWgrNz5LZRCxpGoeGXbzABJqtnYzC1RKbQ4EatpraXtYKPFcRfdxN9maGaC", Curve::Bls12_381).expect("sig");
    assert_eq!(p.public_key().verify(msg, &sig, SigningVersion(1)), Ok(()));
    assert_eq!(
        p.public_key().verify(msg, &sig, SigningVersion(2)),
        Err(KeyError::BadSignature)
    );
}

#[test]
fn upstream_signatures_verify() {
    // (public key, message hex, signature): Taquito taquito-remote-signer/test/utils.spec.ts and
    // taquito-remote-signer.spec.ts, pytezos test_crypto.py (p2pk, legacy block).
    let cases = [
        (
            "sppk7c7hkPj47yjYFEHX85q46sFJGw6RBrqoVSHwAJAT4e14KJwzoey",
            "03d0c10e3ed11d7c6e3357f6ef335bab9e8f2bd54d0ce20c482e241191a6e4b8ce6c01be917311d9ac46959750e405d57e268e2ed9e174a80794fbd504e12a4a000141eb3781afed2f69679ff2bbe1c5375950b0e40d00ff000000005e05050505050507070100000024747a32526773486e74516b72794670707352466261313652546656503539684b72654a4d07070100000024747a315a6672455263414c42776d4171776f6e525859565142445439426a4e6a42484a750001",
            "spsig1cdLkp1RLgUHAp13aRFkZ6MQDPp7xCnjAExGL3MBSdMDmT6JgQSX8cufyDgJRM3sinFtiCzLbsyP6d365EHoNevxhT47nx",
        ),
        (
            "sppk7c7hkPj47yjYFEHX85q46sFJGw6RBrqoVSHwAJAT4e14KJwzoey",
            "03d0c10e3ed11d7c6e3357f6ef335bab9e8f2bd54d0ce20c482e241191a6e4b8ce6c01be917311d9ac46959750e405d57e268e2ed9e174a80794fbd504e12a4a000141eb3781afed2f69679ff2bbe1c5375950b0e40d00ff000000005e05050505050507070100000024747a32526773486e74516b72794670707352466261313652546656503539684b72654a4d07070100000024747a315a6672455263414c42776d4171776f6e525859565142445439426a4e6a42484a750001",
            "sigtofRkQAsLW8ne1HcGhbuBg2Ja2Yt9A2gfpwZFBsdjRWLPSVVqN9BVRpGr7DMwz1e4WjyF8iAjpf1LKyZMcJTSPrDaRzsx",
        ),
        (
            "p2pk66tej1sH5x3q6nKJPRQzrwdNLZaEJ7pxJF6PqxFnDtnoLwxASPC",
            "03cb87b51ef159103aabe530068d82ca0eb92e7599fd3626a7c8d3239c527d37086b02fc42be07e9e7bc9f6cd1767fd794684de9164e7ff602deb235cc08000203315f70a6ad19fd18316ffdc918adb8d66173b572c86190534abd4ba4c67860dd6d02fc42be07e9e7bc9f6cd1767fd794684de9164e7f9404dfb235e10bb402000000000024020000001f05000369050103690502020000001003210316034c0317031a053d036d0342000000070a00000002cafe",
            "p2sigagM3BrzRFALwKGP18QdzJ9SxBwu5S71QLBgcT1TRTJS2xgjFXJfa5tsaYBeH4V2awuKYHouqo19RLDAzMHY6Xo2H1APy5",
        ),
        (
            "edpkuHBANnEDH17ZPrwmXVq3XDY72u6B4q7rLqSmWqD1ZwKUGGVLyc",
            "039a0dc8355685fc5f7031495dd9361dae2c2c3c48868afb590efe07529ea32d1d6c004ae9ee0aa42817b42a3939a0b99ab8f72c035f6d9804caa320b5120200010f9ea64ac1c6dc91458c13ae950911e5edb3d4bf00ff00000000070a00000002cafe",
            "edsigtZAr36wyLRsSsCdbXY2gwfyqVGL7QFaHEbSryhdU3By6Na7X1uwNNpZXD7GGrAk6QrRVb87TPrtf2PSvBfd2iY99h3JnHk",
        ),
        (
            "edpkuAhkJ81xGyf4PcmRMHLSaQGbDEpkGhNbcjNVnKWKR8kqkgQR3f",
            "0365cac93523b8c10346c0107cfea5e12ff3c759459020e532f299e2f41082f7cb6d0000f68c4abfa21dfc0c9efcf588190388cac85d9db60f81d6038b79d8030000000000b902000000b405000764045b0000000a2564656372656d656e74045b0000000a25696e6372656d656e740501035b0502020000008503210317057000010321057100020316072e020000002b032105700002032105710003034203210317057000010321057100020316034b051f020000000405200002020000002b0321057000020321057100030342032103170570000103210571000203160312051f0200000004052000020321053d036d0342051f020000000405200003000000020000",
            "sigiGUGvWRkoYuf7ReH3wWAYnpgBFTa2DJ4Nxi7v1Wy5KqS7sZaxNhRiW6ivuoSUdKZnyGTABVk23WnppatuYqHty7uDtWRY",
        ),
        (
            "p2pk67wVncLFS1DQDm2gVR45sYCzQSXTtqn3bviNYXVCq6WRoqtxHXL",
            "017a06a770000508440322bf4860a065d1c8747a08f7685be9c79da2b21d5930c12fff86b230081d223b000000005c752b3a04bc5b950ff781580616c12a646af98285da66232b232661f179c98d6f8c8912ae0000001100000001000000000800000000009b55bda7ad9debcd2657b76d444b14807c7b5dc13e06f754e2b43186d0fb22b3d3332c0000000000031048815b00",
            "sigqWxz3GKFXg6G8ndSzJF8JD9j7m12kPWZj6bHLqdKw6XpxhVLwGm26hVqMdEfgPdoz8qoA5QkM9mvnMyMFmYny9sqjb5bE",
        ),
    ];
    for (pk, msg, sig) in cases {
        let pk = PublicKey::from_b58(pk).expect("pk");
        let msg = unhex(msg);
        let sig = Signature::from_b58(sig, pk.curve()).expect("sig");
        assert_eq!(
            pk.verify(&msg, &sig, SigningVersion::LATEST),
            Ok(()),
            "{pk:?}"
        );
        assert!(verify_independently(&pk, &msg, &sig), "independent {pk:?}");
        // One flipped message bit must fail.
        let mut bad = msg.clone();
        bad[10] ^= 1;
        assert_eq!(
            pk.verify(&bad, &sig, SigningVersion::LATEST),
            Err(KeyError::BadSignature)
        );
    }
    // Taquito remote-signer spec: the raw bytes of the `sig…` vector.
    let sig = Signature::from_b58("sigiGUGvWRkoYuf7ReH3wWAYnpgBFTa2DJ4Nxi7v1Wy5KqS7sZaxNhRiW6ivuoSUdKZnyGTABVk23WnppatuYqHty7uDtWRY", Curve::Ed25519).expect("sig");
    assert_eq!(
        hex::encode(sig.as_bytes()),
        "9b00f3b02e3760092415595548e2bd6532b0223d8ff282d31b6f30e35592b6b91a4c37fb0a6a24cc8b5176cc497e204ab722a4711803121ff51dc5a450cfd10b"
    );
}

#[test]
fn authentication_signature_vector() {
    // docs/protocol.md §8.5 (derived with Python): the Octez authentication bytes and signature.
    let auth = unhex(
        "040100749c7e9fd828c941420cdbbe8b51e3a66a15afca13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb151150015000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44",
    );
    assert_eq!(
        hex::encode(blake2b_256(&auth)),
        "d57bb8d1676a8e92095f255d7540ffda36856be4a74d5ded08329707db49c6f3"
    );
    let signer = pair("edsk3nM41ygNfSxVU4w1uAW3G9EnTQEB5rjojeZedLTGmiGRcierVv");
    let sig = signer
        .try_sign(&auth, SigningVersion::LATEST)
        .expect("sign");
    assert_eq!(
        sig.to_b58().as_str(),
        "edsigu5X2o15uRym8yPfxydF26gLT9cE7XDVkzgQw1DubEyBQ7G321YsdvsAnxPZvCEyVyPrwcqLdqnAhWcpnaMT5GpVk1HwAsi"
    );
    let target = PublicKeyHash::from_b58("tz1WGcYos3hL7GXYXjKrMnSFdkT7FyXnFBvf").expect("pkh");
    assert_eq!(&target.to_bytes()[..], &auth[2..23]);
}

#[test]
fn generated_keys_sign_and_verify_independently_on_every_curve() {
    struct Counter(u8);
    impl pawl_core::keys::Entropy for Counter {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), KeyError> {
            for b in dest.iter_mut() {
                self.0 = self.0.wrapping_mul(31).wrapping_add(7);
                *b = self.0;
            }
            Ok(())
        }
    }
    let msg = unhex(
        "13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb151150015000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44",
    );
    for curve in Curve::ALL {
        let p = KeyPair::generate(curve, &mut Counter(curve.tag())).expect("generate");
        assert_eq!(p.curve(), curve);
        let sig = p.try_sign(&msg, SigningVersion::LATEST).expect("sign");
        assert!(verify_independently(p.public_key(), &msg, &sig), "{curve}");
        assert_eq!(
            p.public_key().verify(&msg, &sig, SigningVersion::LATEST),
            Ok(())
        );
        // Deterministic: the same request gives the same bytes.
        assert_eq!(p.try_sign(&msg, SigningVersion::LATEST), Ok(sig));
        // The secret survives a round trip through its Tezos encoding.
        let again = KeyPair::from_secret(curve, &p.to_secret()).expect("reload");
        assert_eq!(again.public_key(), p.public_key());
        // No secret in Debug.
        let dbg = format!("{p:?} {:?}", p.to_secret());
        assert!(!dbg.contains(&hex::encode(p.to_secret().expose())), "{dbg}");
        assert!(dbg.contains("redacted"));
    }
}

#[test]
fn secp256k1_is_low_s_over_many_messages() {
    // libsecp256k1 (the independent verifier) rejects high-S: every one of these must pass.
    let p = pair("spsk1zkqrmst1yg2c4xi3crWcZPqgdc9KtPtb9SAZWYHAdiQzdHy7j");
    for i in 0u32..200 {
        let msg = i.to_be_bytes();
        let sig = p.try_sign(&msg, SigningVersion::LATEST).expect("sign");
        assert!(
            verify_independently(p.public_key(), &msg, &sig),
            "message {i}"
        );
    }
}

#[test]
fn encrypted_secret_keys_are_refused_clearly() {
    for prefix in [Prefix::Edesk, Prefix::Spesk, Prefix::P2esk, Prefix::BLesk] {
        let text = encode(prefix, &[0x11; 56]).expect("encode");
        assert!(
            text.starts_with(prefix.human()),
            "{text} vs {}",
            prefix.human()
        );
        let err = SecretBytes::from_b58(&text)
            .map(|_| ())
            .expect_err("refused");
        assert_eq!(err, EncodingError::EncryptedSecretKey { prefix });
        assert!(err.to_string().contains("decrypt"));
    }
}

#[test]
fn every_prefix_round_trips_and_starts_with_its_text() {
    for prefix in Prefix::ALL {
        if prefix.is_encrypted_secret() {
            continue;
        }
        let payload = vec![0x5a; prefix.payload_len()];
        let text = encode(prefix, &payload).expect("encode");
        assert!(text.starts_with(prefix.human()), "{prefix:?}: {text}");
        let mut buf = [0u8; 96];
        let (found, back) = decode_any(&text, &mut buf).expect("decode");
        assert_eq!(found, prefix);
        assert_eq!(back, &payload[..]);
    }
    // The 64-byte edsk form keeps the seed.
    let long = encode(Prefix::EdskLong, &[3u8; 64]).expect("encode");
    let (curve, secret) = SecretBytes::from_b58(&long).expect("decode");
    assert_eq!((curve, secret.expose()), (Curve::Ed25519, &[3u8; 32]));
}
