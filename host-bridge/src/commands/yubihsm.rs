//! YubiHSM2 provisioning commands:
//!
//! * `pawl device yubihsm-setup --auth-key-id N` — the HSM authentication key's password is
//!   read from stdin, turned into `K-ENC ‖ K-MAC` as Yubico specifies (PBKDF2-HMAC-SHA256,
//!   salt "Yubico", 10 000 iterations) in this process, wiped, and sent to the board, which
//!   seals it with each HSM key registered next. While `pawl serve` runs the request goes
//!   through its control socket (as `keys import` secrets do); it is never logged.
//! * `pawl keys generate --backend yubihsm --curve C --key-id N` — the HSM generates the key
//!   (sign capability only, not exportable); the board reads its public key back through its
//!   own session and registers it.
//! * `pawl keys import --backend yubihsm --key-id N [--public-key PK]` — register a key already
//!   in the HSM; the board reads the public key itself, and refuses if `--public-key` names
//!   another.
//!
//! Both talk to the HSM through `[yubihsm]` of pawl.toml, relaying the board's sealed messages
//! exactly as `pawl serve` does: this process never sees the session keys either.

use std::io::Read;

use anyhow::Context as _;
use pawl_core::keys::{Curve, PublicKey, SecretBytes};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Request, Response};
use sha2::Sha256;

use super::{Context, ask};
use crate::hsm_exchange::carry;
use crate::yubihsm::HsmRelay;

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

/// `pawl keys import --backend yubihsm`: register HSM key `key_id`, its public key read by
/// the board through its session (and checked against `public_key` if given).
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
    let expect = public_key
        .map(|text| {
            PublicKey::from_b58(text.trim())
                .map_err(|e| anyhow::anyhow!("--public-key: `{text}` is not a public key: {e}"))
        })
        .transpose()?;
    let request = Request::ImportHsmKey {
        key_id,
        expect,
        policy,
    };
    print(ctx, through_hsm(ctx, &request))
}

/// What `pawl keys generate --backend yubihsm` asks for.
pub struct GenerateInHsm<'a> {
    /// Curve of the new key.
    pub curve: Curve,
    /// Object id (0: the HSM picks).
    pub key_id: u16,
    /// Object label.
    pub label: &'a str,
    /// Domains mask.
    pub domains: u16,
}

/// `pawl keys generate --backend yubihsm`: the HSM makes the key, the board registers it.
pub fn generate(
    ctx: &Context,
    what: GenerateInHsm<'_>,
    policy: Policy,
    print: fn(&Context, anyhow::Result<Response>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // The board refuses labels over 40 bytes (`HsmError::LabelTooLong`) before any HSM byte.
    let request = Request::GenerateHsmKey {
        key_id: what.key_id,
        curve: what.curve,
        label: what.label,
        domains: what.domains,
        policy,
    };
    print(ctx, through_hsm(ctx, &request))
}

/// `--domains 1,2,…` (YubiHSM2 domains 1–16) as the HSM's bit mask.
pub fn domains_mask(text: &str) -> anyhow::Result<u16> {
    let mut mask = 0u16;
    for part in text.split(',').map(str::trim) {
        let n: u8 = part
            .parse()
            .ok()
            .filter(|n| (1..=16).contains(n))
            .with_context(|| format!("--domains: `{part}` is not a domain 1–16"))?;
        mask |= 1 << (n - 1);
    }
    Ok(mask)
}

/// Ask the board `request` and carry the HSM exchange it starts to the board's final answer.
fn through_hsm(ctx: &Context, request: &Request<'_>) -> anyhow::Result<Response> {
    let settings = ctx.config.yubihsm.clone().context(
        "--backend yubihsm needs a [yubihsm] section in pawl.toml (how to reach the HSM)",
    )?;
    let relay = HsmRelay::new(settings).context("[yubihsm] in pawl.toml")?;
    let link = ctx.open_link()?;
    let sealed = match ask(&link, request) {
        Ok(Response::RelayToHsm { sealed }) => sealed.to_vec(),
        Err(e) if e.to_string().contains("no YubiHSM2 authentication key") => {
            return Err(e.context("run `pawl device yubihsm-setup --auth-key-id N` first"));
        }
        other => return other,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime
        .block_on(carry(&link, &relay, sealed, |_| {}))
        .with_context(|| format!("talking to the YubiHSM2 through {}", link.view().describe))?;
    match answer {
        Response::Refused(r) => Err(anyhow::anyhow!("the board refused: {r}")),
        other => Ok(other),
    }
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

    #[test]
    fn domains_are_a_bit_mask() {
        assert_eq!(domains_mask("1").expect("1"), 0x0001);
        assert_eq!(domains_mask("1, 2,16").expect("list"), 0x8003);
        for bad in ["0", "17", "", "x", "1,,2"] {
            assert!(domains_mask(bad).is_err(), "{bad}");
        }
    }
}
