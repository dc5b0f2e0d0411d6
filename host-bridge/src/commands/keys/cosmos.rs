//! What `pawl keys list` shows of a Cosmos key: the public key as Cosmos tooling writes it
//! (base64, as in `priv_validator_key.json` and `gentx`), the validator address (the first 20
//! bytes of SHA-256 of the public key, upper-case hex, as CometBFT prints it), and the chain
//! the board pinned it to with its height/round/step mark.

use base64::Engine as _;
use pawl_core::keys::PublicKey;
use pawl_core::protocol::cometbft::{CometRequest, CometResponse};
use pawl_core::protocol::{KeyInfo, Request, Response, Role};
use serde_json::{Value, json};
use sha2::Digest as _;

/// Base64 public key and validator address of an Ed25519 Cosmos key.
pub fn identity(k: &KeyInfo) -> Option<(String, String)> {
    match (k.duty.role, &k.public_key) {
        (Role::Cosmos, PublicKey::Ed25519(pk)) => Some((
            base64::engine::general_purpose::STANDARD.encode(pk),
            hex::encode_upper(&sha2::Sha256::digest(pk)[..20]),
        )),
        _ => None,
    }
}

/// The chain the board pinned the key to and its mark, asked of the board (`None` when it
/// cannot say).
pub fn state(link: &crate::link::Link, k: &KeyInfo) -> Option<Value> {
    identity(k)?;
    let request = Request::CometBft(CometRequest::State { pkh: k.pkh });
    match link.ask_blocking(&request).ok()?.response {
        Response::CometBft(CometResponse::State { chain_id, mark }) => Some(json!({
            "chain_id": chain_id.as_deref(),
            "mark": mark.map(|m| json!({
                "height": m.height,
                "round": m.round,
                "step": m.step.map(|s| s.name()),
            })),
        })),
        _ => None,
    }
}

/// The `cosmos` object of a key's JSON, or `None` for a key that is not a Cosmos key.
pub fn json(k: &KeyInfo, state: Option<Value>) -> Option<Value> {
    let (public_key, address) = identity(k)?;
    let mut v = json!({"public_key": public_key, "validator_address": address});
    if let Some(Value::Object(s)) = state {
        for (name, value) in s {
            v[name] = value;
        }
    }
    Some(v)
}

/// The words a Cosmos key's line gets: its public key and validator address.
pub fn line(k: &KeyInfo) -> Option<String> {
    let (public_key, address) = identity(k)?;
    Some(format!(" cosmos pubkey {public_key} address {address}"))
}

/// The words `pawl keys list` adds after them: the chain and the mark.
pub fn state_line(state: Option<&Value>) -> String {
    let mut words = String::new();
    if let Some(chain) = state.and_then(|s| s["chain_id"].as_str()) {
        words.push_str(&format!(" chain {chain}"));
    }
    if let Some(m) = state.map(|s| &s["mark"]).filter(|m| !m.is_null()) {
        words.push_str(&format!(
            " mark {}/{}/{}",
            m["height"],
            m["round"],
            m["step"].as_str().unwrap_or("-")
        ));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use pawl_core::keys::PublicKeyHash;
    use pawl_core::protocol::{Backend, Duty};

    #[test]
    fn validator_address_is_the_first_20_bytes_of_sha256_upper_hex() {
        // The digest from openssl, outside the code under test.
        let pk = [0x12u8; 32];
        let digest = openssl::sha::sha256(&pk);
        let key = KeyInfo {
            pkh: PublicKeyHash::from_b58("tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx").expect("pkh"),
            public_key: PublicKey::Ed25519(pk),
            backend: Backend::OnBoard,
            policy: Default::default(),
            duty: Duty {
                role: Role::Cosmos,
                ..Duty::default()
            },
        };
        let (b64, address) = identity(&key).expect("a Cosmos key");
        assert_eq!(b64, "EhISEhISEhISEhISEhISEhISEhISEhISEhISEhISEhI=");
        assert_eq!(address, hex::encode(&digest[..20]).to_uppercase());
        let tezos = KeyInfo {
            duty: Duty::default(),
            ..key
        };
        assert!(identity(&tezos).is_none());
    }
}
