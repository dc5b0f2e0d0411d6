//! `pawl keys list|generate|import`.

use std::io::Read;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use pawl_core::keys::{Curve, SecretBytes};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Backend, KeyInfo, Request, Response};
use pawl_core::request::{ChainId, KindSet, OpKind, OpKindSet, RequestKind};
use serde_json::{Value, json};

use super::{Context, ask, print_json};

/// `pawl keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the board's keys and their policies.
    List,
    /// Generate a key on the board (provisioning mode); or, with `--backend yubihsm`, inside
    /// a YubiHSM2 (after `pawl device yubihsm-setup`), registered on the board.
    Generate {
        /// Curve: ed25519 (tz1), secp256k1 (tz2), p256 (tz3), bls (tz4; board only).
        #[arg(long, value_enum)]
        curve: CurveArg,
        /// What the key may sign.
        #[command(flatten)]
        policy: PolicyArgs,
        /// Where the key is made.
        #[command(flatten)]
        hsm: HsmGenerateArgs,
        /// tz4 on the board only: also allow proofs of possession while the board is in
        /// operational mode (by default a key proves possession in provisioning mode only).
        #[arg(long = "allow-pop")]
        allow_pop: bool,
    },
    /// Import a secret key (edsk…/spsk…/p2sk…/BLsk…, unencrypted) read from stdin
    /// (provisioning mode); or, with `--backend azure`, register an Azure Key Vault key by
    /// its public key (no secret leaves Key Vault); or, with `--backend yubihsm`, a key inside
    /// a YubiHSM2 by `--key-id` (after `pawl device yubihsm-setup`; the board reads the public
    /// key from the HSM, `--public-key` only double-checks it).
    Import {
        /// What the key may sign.
        #[command(flatten)]
        policy: PolicyArgs,
        /// Where the key lives.
        #[command(flatten)]
        azure: super::azure_import::AzureImportArgs,
        /// tz4 on the board only: also allow proofs of possession while the board is in
        /// operational mode (by default a key proves possession in provisioning mode only).
        #[arg(long = "allow-pop")]
        allow_pop: bool,
    },
}

/// `--backend` of `pawl keys generate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum GenerateBackend {
    /// On the board, sealed in its flash.
    #[default]
    Board,
    /// Inside a YubiHSM2 (tz1, tz2, tz3): sign-only, not exportable.
    Yubihsm,
}

/// The YubiHSM2 options of `pawl keys generate`.
#[derive(Debug, Args)]
pub struct HsmGenerateArgs {
    /// Where the key is made: `board` or `yubihsm`.
    #[arg(long, value_enum, default_value = "board")]
    pub backend: GenerateBackend,
    /// YubiHSM2: object id for the new key (0: the HSM picks one).
    #[arg(long, value_name = "N")]
    pub key_id: Option<u16>,
    /// YubiHSM2: object label (default "pawl baker key").
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
    /// YubiHSM2: domains the key belongs to, e.g. `1` or `1,2` (default 1); must share one
    /// with the authentication key.
    #[arg(long, value_name = "LIST")]
    pub domains: Option<String>,
}

/// `--curve` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CurveArg {
    /// tz1.
    Ed25519,
    /// tz2.
    Secp256k1,
    /// tz3.
    P256,
    /// tz4 (BLS12-381).
    Bls,
}

impl From<CurveArg> for Curve {
    fn from(c: CurveArg) -> Curve {
        match c {
            CurveArg::Ed25519 => Curve::Ed25519,
            CurveArg::Secp256k1 => Curve::Secp256k1,
            CurveArg::P256 => Curve::P256,
            CurveArg::Bls => Curve::Bls12_381,
        }
    }
}

/// Policy flags. Without any, a key signs blocks, preattestations and attestations on Tezos
/// mainnet (a baking key).
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Request kinds the key signs, comma-separated: block, preattestation, attestation,
    /// generic, michelson. Default: block,preattestation,attestation.
    #[arg(long, value_name = "KINDS", value_delimiter = ',')]
    pub allow: Vec<String>,
    /// Operation kinds allowed in generic (0x03) requests, comma-separated (transaction,
    /// delegation, ballot, reveal, …). Implies `generic` in --allow.
    #[arg(long = "allow-ops", value_name = "OPS", value_delimiter = ',')]
    pub allow_ops: Vec<String>,
    /// Pin the key to a chain id (Net…); repeat for several (at most 4). Default: Tezos
    /// mainnet (NetXdQprcVkpaWU) only.
    #[arg(long = "chain", value_name = "CHAIN_ID", conflicts_with = "any_chain")]
    pub chains: Vec<String>,
    /// Sign for any chain id. UNSAFE for a baking key: a compromised host can then fill the
    /// board's watermark table with invented chains (and a key's first request on a chain has
    /// no mark to check against). Only for test networks that come and go.
    #[arg(long = "any-chain")]
    pub any_chain: bool,
    /// Request kinds that also need a press of the board's button (confirm-on-device),
    /// comma-separated, from the same names as --allow; each is also allowed. The board waits
    /// a bounded time for the press: raise `[device] response_timeout_ms` and
    /// `request_timeout_ms` in pawl.toml above that window.
    #[arg(long, value_name = "KINDS", value_delimiter = ',')]
    pub confirm: Vec<String>,
}

/// Parse a comma-separated list of request kind names for `flag`.
fn kind_set(flag: &str, names: &[String]) -> anyhow::Result<KindSet> {
    let mut kinds = KindSet::EMPTY;
    for name in names.iter().map(|s| s.trim()) {
        let kind = RequestKind::from_name(name).with_context(|| {
            format!(
                "{flag}: unknown request kind `{name}` (expected block, preattestation, attestation, generic or michelson)"
            )
        })?;
        kinds = kinds.with(kind);
    }
    Ok(kinds)
}

impl PolicyArgs {
    /// Build the policy, with errors naming the bad value.
    pub fn to_policy(&self) -> anyhow::Result<Policy> {
        let mut policy = Policy::default();
        if !self.allow.is_empty() {
            policy.kinds = kind_set("--allow", &self.allow)?;
        }
        let mut ops = OpKindSet::EMPTY;
        for name in self.allow_ops.iter().map(|s| s.trim()) {
            let op = OpKind::from_name(name).with_context(|| {
                let known: Vec<&str> = OpKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "--allow-ops: unknown operation kind `{name}` (known: {})",
                    known.join(", ")
                )
            })?;
            ops = ops.with(op);
        }
        if !self.allow_ops.is_empty() {
            policy.kinds = policy.kinds.with(RequestKind::Generic);
        }
        policy.ops = ops;
        policy.confirm = kind_set("--confirm", &self.confirm)?;
        for kind in policy.confirm.iter() {
            policy.kinds = policy.kinds.with(kind);
        }
        for text in &self.chains {
            let chain = ChainId::from_b58(text.trim())
                .map_err(|e| anyhow::anyhow!("--chain: `{text}` is not a chain id: {e}"))?;
            policy
                .chains
                .push(chain)
                .map_err(|_| anyhow::anyhow!("--chain: at most 4 chains per key"))?;
        }
        // An empty list is "any chain" on the board: only an explicit --any-chain asks for it.
        if self.chains.is_empty() && !self.any_chain {
            policy
                .chains
                .push(ChainId::MAINNET)
                .map_err(|_| anyhow::anyhow!("--chain: at most 4 chains per key"))?;
        }
        Ok(policy)
    }
}

/// Run `pawl keys …`.
pub fn run(ctx: &Context, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List => list(ctx),
        KeysCommand::Generate {
            curve, allow_pop, ..
        } if allow_pop && !matches!(curve, CurveArg::Bls) => {
            anyhow::bail!("--allow-pop goes with tz4 keys (--curve bls) on the board")
        }
        KeysCommand::Generate {
            curve, policy, hsm, ..
        } if hsm.backend == GenerateBackend::Yubihsm => {
            let key_id = hsm.key_id.context(
                "--key-id N (the new key's object id in the HSM, 0 to let it pick) is required with --backend yubihsm",
            )?;
            let domains = super::yubihsm::domains_mask(hsm.domains.as_deref().unwrap_or("1"))?;
            let what = super::yubihsm::GenerateInHsm {
                curve: curve.into(),
                key_id,
                label: hsm.label.as_deref().unwrap_or("pawl baker key"),
                domains,
            };
            super::yubihsm::generate(ctx, what, policy.to_policy()?, print_new_key)
        }
        KeysCommand::Generate { hsm, .. }
            if hsm.key_id.is_some() || hsm.label.is_some() || hsm.domains.is_some() =>
        {
            anyhow::bail!("--key-id, --label and --domains go with --backend yubihsm")
        }
        KeysCommand::Generate {
            curve,
            policy,
            allow_pop,
            ..
        } => {
            let policy = policy.to_policy()?;
            let link = ctx.open_link()?;
            let answer = ask(
                &link,
                &Request::GenerateKey {
                    curve: curve.into(),
                    policy,
                },
            );
            print_new_key(ctx, allow_possession(&link, answer, allow_pop))
        }
        KeysCommand::Import { azure, .. } if azure.check_flags().is_err() => azure.check_flags(),
        KeysCommand::Import {
            azure, allow_pop, ..
        } if allow_pop && (azure.is_azure() || azure.is_yubihsm()) => {
            anyhow::bail!(
                "--allow-pop goes with tz4 keys on the board, not --backend azure/yubihsm"
            )
        }
        KeysCommand::Import { policy, azure, .. } if azure.is_yubihsm() => super::yubihsm::import(
            ctx,
            azure.key_id,
            azure.public_key.as_deref(),
            policy.to_policy()?,
            print_new_key,
        ),
        KeysCommand::Import { policy, azure, .. } if azure.is_azure() => {
            super::azure_import::run(ctx, azure, policy.to_policy()?, print_new_key)
        }
        KeysCommand::Import {
            policy, allow_pop, ..
        } => {
            let policy = policy.to_policy()?;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the secret key from stdin")?;
            let parsed = SecretBytes::from_b58(text.trim());
            // The text is the key: wipe it before anything else can go wrong.
            zeroize::Zeroize::zeroize(&mut text);
            let (curve, secret) = parsed.map_err(|e| {
                anyhow::anyhow!(
                    "stdin does not hold an unencrypted secret key (edsk…/spsk…/p2sk…/BLsk…): {e}"
                )
            })?;
            if allow_pop && curve != Curve::Bls12_381 {
                anyhow::bail!("--allow-pop goes with tz4 keys (BLsk…)");
            }
            let link = ctx.open_link()?;
            let answer = ask(
                &link,
                &Request::ImportKey {
                    curve,
                    secret,
                    policy,
                },
            );
            print_new_key(ctx, allow_possession(&link, answer, allow_pop))
        }
    }
}

/// `--allow-pop`: once the key is on the board, allow it to prove possession in operational
/// mode (a second provisioning request; if it fails the key stays, proving possession in
/// provisioning mode only, and the error says so).
fn allow_possession(
    link: &crate::link::Link,
    answer: anyhow::Result<Response>,
    allow: bool,
) -> anyhow::Result<Response> {
    let info = match answer {
        Ok(Response::KeyInfo(info)) if allow => info,
        other => return other,
    };
    let request = Request::AllowPossession {
        pkh: info.pkh,
        operational: true,
    };
    match ask(link, &request) {
        Ok(Response::Done) => Ok(Response::KeyInfo(info)),
        other => Err(match other {
            Ok(unexpected) => anyhow::anyhow!("unexpected answer from the board: {unexpected:?}"),
            Err(e) => e,
        })
        .with_context(|| {
            format!(
                "key {} was added, but not allowed to prove possession in operational mode",
                info.pkh
            )
        }),
    }
}

fn print_new_key(ctx: &Context, answer: anyhow::Result<Response>) -> anyhow::Result<()> {
    let info = match answer {
        Ok(Response::KeyInfo(info)) => info,
        Ok(other) => anyhow::bail!("unexpected answer from the board: {other:?}"),
        Err(e) => {
            if e.to_string().contains("operational mode") {
                return Err(e.context(
                    "keys can only be added while the board is in provisioning mode (hold the button at power-up)",
                ));
            }
            return Err(e);
        }
    };
    if ctx.json {
        print_json(&key_json(&info));
    } else {
        println!("{}", key_line(&info));
    }
    Ok(())
}

fn list(ctx: &Context) -> anyhow::Result<()> {
    let link = ctx.open_link()?;
    let Response::Keys(keys) = ask(&link, &Request::ListKeys)? else {
        anyhow::bail!("unexpected answer to list keys");
    };
    if ctx.json {
        let keys: Vec<Value> = keys.iter().map(key_json).collect();
        print_json(&json!({ "keys": keys }));
    } else if keys.is_empty() {
        println!("no keys on the board (add one with `pawl keys generate --curve ed25519`)");
    } else {
        for k in &keys {
            println!("{}", key_line(k));
        }
    }
    Ok(())
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::OnBoard => "on-board",
        Backend::YubiHsm => "yubihsm",
        Backend::HostHeld => "host-held",
    }
}

type PolicyParts = (
    Vec<&'static str>,
    Vec<&'static str>,
    Vec<String>,
    Vec<&'static str>,
);

fn policy_parts(p: &Policy) -> PolicyParts {
    (
        p.kinds.iter().map(|k| k.name()).collect(),
        p.ops.iter().map(|k| k.name()).collect(),
        p.chains.iter().map(|c| c.to_b58().to_string()).collect(),
        p.confirm.iter().map(|k| k.name()).collect(),
    )
}

/// One key as JSON:
/// `{"pkh","public_key","curve","backend","policy":{"kinds","ops","chains","confirm"}}`.
pub fn key_json(k: &KeyInfo) -> Value {
    let (kinds, ops, chains, confirm) = policy_parts(&k.policy);
    json!({
        "pkh": k.pkh.to_b58().as_str(),
        "public_key": k.public_key.to_b58().as_str(),
        "curve": k.pkh.curve.name(),
        "backend": backend_name(k.backend),
        "policy": {"kinds": kinds, "ops": ops, "chains": chains, "confirm": confirm},
    })
}

/// One key as a line: the pkh is the first token.
pub fn key_line(k: &KeyInfo) -> String {
    let (kinds, ops, chains, confirm) = policy_parts(&k.policy);
    let mut line = format!(
        "{} {} {} {} allows {}",
        k.pkh,
        k.public_key.to_b58().as_str(),
        k.pkh.curve.name(),
        backend_name(k.backend),
        kinds.join(",")
    );
    if !ops.is_empty() {
        line.push_str(&format!(" ops {}", ops.join(",")));
    }
    if !confirm.is_empty() {
        line.push_str(&format!(" confirm {}", confirm.join(",")));
    }
    if chains.is_empty() {
        line.push_str(" on any chain");
    } else {
        line.push_str(&format!(" on {}", chains.join(",")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(allow: &[&str], confirm: &[&str]) -> PolicyArgs {
        PolicyArgs {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            allow_ops: vec![],
            chains: vec![],
            any_chain: false,
            confirm: confirm.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_key_is_pinned_to_mainnet_unless_told_otherwise() {
        // Mainnet's chain id as Octez prints it, not pawl's constant.
        let mainnet = ChainId::from_b58("NetXdQprcVkpaWU").expect("mainnet");
        let policy = args(&[], &[]).to_policy().expect("valid flags");
        assert_eq!(policy.chains.as_slice(), &[mainnet]);

        let ghostnet = "NetXnHfVqm9iesp";
        let mut pinned = args(&[], &[]);
        pinned.chains = vec![ghostnet.into()];
        let policy = pinned.to_policy().expect("valid flags");
        assert_eq!(
            policy.chains.as_slice(),
            &[ChainId::from_b58(ghostnet).expect("ghostnet")]
        );

        let mut any = args(&[], &[]);
        any.any_chain = true;
        assert!(any.to_policy().expect("valid flags").chains.is_empty());
    }

    #[test]
    fn confirm_kinds_are_confirmed_and_allowed() {
        let policy = args(&["block"], &["attestation", "generic"])
            .to_policy()
            .expect("valid flags");
        for kind in [RequestKind::Attestation, RequestKind::Generic] {
            assert!(policy.needs_confirmation(kind), "{kind:?}");
            assert!(policy.kinds.contains(kind), "{kind:?}");
        }
        assert!(!policy.needs_confirmation(RequestKind::Block));
        assert!(policy.kinds.contains(RequestKind::Block));
        assert!(!policy.kinds.contains(RequestKind::Preattestation));
    }

    #[test]
    fn no_confirm_flag_confirms_nothing() {
        let policy = args(&[], &[]).to_policy().expect("valid flags");
        assert_eq!(policy.confirm, KindSet::EMPTY);
    }

    #[test]
    fn unknown_confirm_kind_is_an_error_naming_the_flag() {
        let err = args(&[], &["transfer"]).to_policy().expect_err("bad kind");
        assert!(err.to_string().contains("--confirm"), "{err}");
    }
}
