//! YubiHSM2 provisioning commands:
//!
//! * `pawl device yubihsm-setup --auth-key-id N` — the HSM authentication key's password is
//!   read from stdin, turned into `K-ENC ‖ K-MAC` as Yubico specifies (PBKDF2-HMAC-SHA256,
//!   salt "Yubico", 10 000 iterations) in this process, wiped, and sent to the board, which
//!   seals it with each HSM key registered next. While `pawl serve` runs the request goes
//!   through its control socket (as `keys import` secrets do); it is never logged.
//! * `pawl keys import --backend yubihsm --key-id N --public-key PK` — register an asymmetric
//!   key inside the HSM by its object id and public key. The board has no request that reads
//!   a public key from the HSM, so the public key comes from whoever made the key
//!   (`yubihsm-shell get-pubkey`, or `pawl-sim yubihsm`'s output); a wrong one cannot make the
//!   board release anything — every HSM signature is verified under it first.

use std::io::Read;

use anyhow::Context as _;
use pawl_core::keys::{PublicKey, SecretBytes};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Request, Response};
use sha2::Sha256;

use super::{Context, ask};

/// `K-ENC ‖ K-MAC` from a YubiHSM2 authentication password.
pub fn derive_auth_keys(password: &[u8]) -> SecretBytes {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, b"Yubico", 10_000, &mut out);
    let keys = SecretBytes::new(out);
    zeroize::Zeroize::zeroize(&mut out);
    keys
}

/// `pawl device yubihsm-setup`: password from stdin → keys → the board (provisioning mode).
pub fn setup(ctx: &Context, auth_key_id: u16) -> anyhow::Result<()> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the YubiHSM2 authentication password from stdin")?;
    let password = text.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        zeroize::Zeroize::zeroize(&mut text);
        anyhow::bail!("stdin holds no password (the YubiHSM2 authentication key's password)");
    }
    let keys = derive_auth_keys(password.as_bytes());
    zeroize::Zeroize::zeroize(&mut text);
    let link = ctx.open_link()?;
    match ask(&link, &Request::YubiHsmSetup { auth_key_id, keys }) {
        Ok(Response::Done) => {
            if ctx.json {
                super::print_json(&serde_json::json!({"auth_key_id": auth_key_id}));
            } else {
                println!(
                    "YubiHSM2 authentication key {auth_key_id} set on the board for the HSM keys registered next"
                );
            }
            Ok(())
        }
        Ok(other) => anyhow::bail!("unexpected answer from the board: {other:?}"),
        Err(e) if e.to_string().contains("operational mode") => Err(e.context(
            "the YubiHSM2 can only be set up while the board is in provisioning mode (hold the button at power-up)",
        )),
        Err(e) => Err(e),
    }
}

/// `pawl keys import --backend yubihsm`: register HSM key `key_id` with `public_key`.
pub fn import(
    ctx: &Context,
    key_id: Option<u16>,
    public_key: Option<&str>,
    policy: Policy,
    print: fn(&Context, anyhow::Result<Response>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let key_id = key_id.context(
        "--key-id N (the key's object id in the HSM) is required with --backend yubihsm",
    )?;
    let text = public_key.context(
        "--public-key PK (edpk…/sppk…/p2pk…, e.g. from `yubihsm-shell get-pubkey`) is required with --backend yubihsm",
    )?;
    let public_key = PublicKey::from_b58(text.trim())
        .map_err(|e| anyhow::anyhow!("--public-key: `{text}` is not a public key: {e}"))?;
    let link = ctx.open_link()?;
    print(
        ctx,
        ask(
            &link,
            &Request::RegisterHsmKey {
                key_id,
                public_key,
                policy,
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yubico's default authentication key (id 1, password "password"): its published
    /// K-ENC ‖ K-MAC (also what Python's `hashlib.pbkdf2_hmac` gives).
    #[test]
    fn derives_like_yubico() {
        let k = derive_auth_keys(b"password");
        let want = "090b47dbed595654901dee1cc655e420592fd483f759e29909a04c4505d2ce0a";
        assert_eq!(hex::encode(k.expose()), want);
        assert_ne!(hex::encode(derive_auth_keys(b"passwore").expose()), want);
    }
}
