//! The YubiHSM2 counterpart for tests: the yubihsm crate's MockHsm (its own card-side SCP03),
//! driven with raw message bytes, with keys put in through the crate's own client.
#![allow(dead_code)]

use openssl::hash::MessageDigest;
use openssl::pkcs5::pbkdf2_hmac;
use pawl_core::keys::SecretBytes;
use pawl_core::protocol::{Request, Response};
use yubihsm::asymmetric::Algorithm;
use yubihsm::{Capability, Client, Connector, Credentials, Domain, object::Label};

/// Default YubiHSM2 authentication key: id 1, password "password".
pub const AUTH_ID: u16 = 1;
pub const PASSWORD: &[u8] = b"password";
/// Where the tests put their keys.
pub const K256_ID: u16 = 0x10;
pub const P256_ID: u16 = 0x11;
pub const ED25519_ID: u16 = 0x12;
/// A second authentication key, allowed only to sign and read public keys.
pub const SIGNER_AUTH_ID: u16 = 2;
pub const SIGNER_PASSWORD: &[u8] = b"signer password";

/// K-ENC ‖ K-MAC from a password, as Yubico specifies (PBKDF2-HMAC-SHA256, salt "Yubico",
/// 10 000 iterations), computed with OpenSSL.
pub fn derive(password: &[u8]) -> SecretBytes {
    let mut out = [0u8; 32];
    pbkdf2_hmac(
        password,
        b"Yubico",
        10_000,
        MessageDigest::sha256(),
        &mut out,
    )
    .expect("pbkdf2");
    SecretBytes::new(out)
}

/// A mock HSM with a secp256k1, a P-256 and an Ed25519 key generated inside it, and a
/// signing-only authentication key.
pub struct Hsm {
    pub connector: Connector,
    /// Messages the HSM has been sent through [`Hsm::send`].
    pub messages: usize,
}

impl Hsm {
    pub fn new() -> Hsm {
        let connector = Connector::mockhsm();
        let client = Client::open(connector.clone(), Credentials::default(), true).expect("open");
        let caps = Capability::SIGN_ECDSA | Capability::SIGN_EDDSA;
        for (id, alg) in [
            (K256_ID, Algorithm::EcK256),
            (P256_ID, Algorithm::EcP256),
            (ED25519_ID, Algorithm::Ed25519),
        ] {
            client
                .generate_asymmetric_key(id, Label::from("pawl"), Domain::DOM1, caps, alg)
                .expect("generate");
        }
        client
            .put_authentication_key(
                SIGNER_AUTH_ID,
                Label::from("pawl-signer"),
                Domain::DOM1,
                Capability::SIGN_ECDSA | Capability::SIGN_EDDSA,
                caps,
                yubihsm::authentication::Algorithm::YubicoAes,
                yubihsm::authentication::Key::derive_from_password(SIGNER_PASSWORD),
            )
            .expect("auth key");
        Hsm {
            connector,
            messages: 0,
        }
    }

    /// The crate's own client (for public keys and cross-checks).
    pub fn client(&self) -> Client {
        Client::open(self.connector.clone(), Credentials::default(), true).expect("open")
    }

    /// Send raw message bytes; the HSM's raw reply, or `Err` for the connector's error —
    /// including the mock panicking, which it does on messages it refuses to authenticate
    /// (a wrong host cryptogram or C-MAC, an unknown key id).
    pub fn send(&mut self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.messages += 1;
        let connector = self.connector.clone();
        let message = message.to_vec();
        std::panic::catch_unwind(core::panic::AssertUnwindSafe(move || {
            connector
                .send_message(uuid::Uuid::nil(), message.into())
                .map(Into::into)
                .map_err(|e| e.to_string())
        }))
        .unwrap_or_else(|_| Err("the mock HSM refused the message (panicked)".into()))
    }
}

/// What the relay does to the HSM's reply number `n` (0-based within one request).
pub type Relay<'a> = &'a mut dyn FnMut(usize, Vec<u8>) -> Option<Vec<u8>>;

/// A relay that carries every reply unchanged.
pub fn honest() -> impl FnMut(usize, Vec<u8>) -> Option<Vec<u8>> {
    |_, r| Some(r)
}

/// Send `request`, relaying every `RelayToHsm` to the mock and its reply back through `relay`
/// (`None`: the relay drops it and the exchange ends there).
pub fn drive(
    b: &mut super::board::TestBoard,
    hsm: &mut Hsm,
    request: Request<'_>,
    relay: Relay<'_>,
) -> Response {
    let mut response = b.handle(request);
    let mut n = 0;
    while let Response::RelayToHsm { sealed } = &response {
        let reply = hsm.send(sealed).unwrap_or_else(|_| vec![0x7f, 0, 1, 0x0e]);
        let Some(reply) = relay(n, reply) else {
            return response;
        };
        n += 1;
        response = b.handle(Request::HsmReply { sealed: &reply });
    }
    response
}
