//! `pawl keys import --backend pkcs11 --label L`: find the key pair labelled `L` in the token
//! of `[pkcs11]`, read its public key, register it on the board as a host-held key
//! (provisioning mode) and record `pkh → L` in `<home>/pkcs11_keys.json`. No secret leaves the
//! token; the board checks every signature against the public key read here.

use anyhow::Context as _;
use clap::Args;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use pawl_core::keys::PublicKey;
use pawl_core::policy::Policy;
use pawl_core::protocol::{Request, Response};

use super::{KeyRef, NAME, Pkcs11Error, Token, call, private_key};
use crate::commands::{Context, ask};
use crate::keyring::KeyFile;

/// The PKCS#11 options of `pawl keys import`.
#[derive(Debug, Args)]
#[group(id = "pkcs11_import")]
pub struct ImportArgs {
    /// PKCS#11: the key pair's label (`CKA_LABEL`) in the token of `[pkcs11]`.
    #[arg(long = "label", value_name = "LABEL")]
    pub label: Option<String>,
}

/// The public key of the key pair labelled `label`; also checks that its private half is
/// there (the label names one key pair).
fn public_key(token: &Token, label: &str) -> Result<PublicKey, Pkcs11Error> {
    token.with_session(|session, handles| {
        private_key(session, handles, label)?;
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(call)?;
        let [public] = found.as_slice() else {
            return Err(Pkcs11Error::NoKey(format!(
                "the token has {} public keys labelled `{label}` (expected one, beside the private key)",
                found.len()
            )));
        };
        let attributes = session
            .get_attributes(
                *public,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                ],
            )
            .map_err(call)?;
        let (mut key_type, mut params, mut point) = (None, None, None);
        for a in attributes {
            match a {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let (Some(key_type), Some(params), Some(point)) = (key_type, params, point) else {
            return Err(Pkcs11Error::NoKey(format!(
                "the public key labelled `{label}` is not an EC or Edwards key (no CKA_EC_PARAMS / CKA_EC_POINT)"
            )));
        };
        super::public::from_attributes(key_type, &params, &point)
            .map_err(|why| Pkcs11Error::NoKey(format!("key `{label}`: {why}")))
    })
}

/// Run the import; `print` prints the board's answer like other key commands.
pub fn import(
    ctx: &Context,
    args: ImportArgs,
    policy: Policy,
    print: fn(&Context, anyhow::Result<Response>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let settings = ctx
        .config
        .pkcs11
        .clone()
        .context("--backend pkcs11 needs a [pkcs11] section in pawl.toml (library, token_label or slot, pin_file or pin_env)")?;
    let label = args.label.context(
        "--label LABEL (the key pair's CKA_LABEL in the token) is required with --backend pkcs11",
    )?;
    let keys: KeyFile<KeyRef> = KeyFile::open(&ctx.home, NAME).map_err(anyhow::Error::msg)?;
    let token = Token::open(&settings).context("[pkcs11] in pawl.toml")?;
    let public_key = public_key(&token, &label)
        .with_context(|| format!("reading key `{label}` from the token"))?;
    let link = ctx.open_link()?;
    let answer = ask(&link, &Request::RegisterHostKey { public_key, policy });
    if let Ok(Response::KeyInfo(info)) = &answer {
        keys.record(KeyRef {
            pkh: info.pkh.to_b58().to_string(),
            label: label.clone(),
        })
        .map_err(anyhow::Error::msg)?;
    }
    print(ctx, answer)
}
