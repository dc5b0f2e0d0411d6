//! `pawl keys list|generate|import|policy`.

mod backup;
mod cosmos;
mod duty;
mod policy;
mod show;

use std::io::Read;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use pawl_core::keys::{Curve, SecretBytes};
use pawl_core::protocol::{Request, Response};
use serde_json::{Value, json};

use super::azure_import::BackendArg;
use super::{Context, ask, print_json};

pub use policy::PolicyArgs;
pub use show::{key_json, key_line};

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
        /// On the board only: seal the new secret once to this age recipient (`age1…`, the
        /// public key `age-keygen` prints) and write the sealed file, so the key can be
        /// restored on another board (`age -d -i IDENTITY FILE | pawl keys import`). The board
        /// never exports the secret again.
        #[arg(long = "backup-to", value_name = "AGE_RECIPIENT")]
        backup_to: Option<String>,
        /// Where the sealed backup goes (must not exist). Default: `<home>/backups/<pkh>.age`.
        #[arg(long = "backup-out", value_name = "FILE", requires = "backup_to")]
        backup_out: Option<std::path::PathBuf>,
        /// The key's role: `companion` for a tz4 DAL companion key (signs attestations only);
        /// `cosmos` for a CometBFT validator key (tz1, with `--chain-id`).
        #[arg(long, value_enum, default_value = "consensus")]
        role: duty::RoleArg,
        /// With `--role cosmos`: the CometBFT chain id the key signs for (pinned on the board;
        /// the key signs nothing else).
        #[arg(long = "chain-id", value_name = "CHAIN")]
        chain_id: Option<String>,
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
        /// PKCS#11 options.
        #[command(flatten)]
        pkcs11: crate::keyring::pkcs11::ImportArgs,
        /// Google Cloud KMS options.
        #[command(flatten)]
        gcp: crate::keyring::gcp::ImportArgs,
        /// tz4 on the board only: also allow proofs of possession while the board is in
        /// operational mode (by default a key proves possession in provisioning mode only).
        #[arg(long = "allow-pop")]
        allow_pop: bool,
        /// The key's role: `companion` for a tz4 DAL companion key (signs attestations only);
        /// `cosmos` for a CometBFT validator key (tz1, with `--chain-id`).
        #[arg(long, value_enum, default_value = "consensus")]
        role: duty::RoleArg,
        /// With `--role cosmos`: the CometBFT chain id the key signs for (pinned on the board;
        /// the key signs nothing else).
        #[arg(long = "chain-id", value_name = "CHAIN")]
        chain_id: Option<String>,
        /// Hold the key on standby: it signs nothing until `pawl keys activate` (the new board
        /// of a hand-off, or the spare of a planned failover). Stored with the key in the
        /// same request, so it never signs before activation.
        #[arg(long)]
        standby: bool,
    },
    /// Stop signing a key's consensus requests above a level on this board (provisioning
    /// mode): the old board of a hand-off. Prints the `activate` command for the new board.
    Retire(duty::RetireArgs),
    /// Let this board sign a key from a level on (provisioning mode): the new board of a
    /// hand-off, from the old board's retirement level + 1. Ends standby and retirement.
    Activate(duty::ActivateArgs),
    /// Put a key on standby on this board: it signs nothing until activated (provisioning
    /// mode).
    Standby {
        /// The key.
        pkh: String,
    },
    /// Remove a key from the board (provisioning mode). A secret held only by the board is gone
    /// for good (keep a backup, or move the key first: `pawl keys retire`); a YubiHSM2 or Azure
    /// key stays where it lives. Its marks stay on the board and guard it if it comes back;
    /// `pawl watermark forget PKH` (a press of the button) frees them.
    Remove {
        /// The key.
        pkh: String,
    },
    /// Change a key's role (provisioning mode).
    Role {
        /// The key.
        pkh: String,
        /// consensus, companion (tz4 only: attestations only), or cosmos (tz1 on the board,
        /// with --chain-id: CometBFT votes and proposals of that chain only).
        #[arg(long, value_enum)]
        role: duty::RoleArg,
        /// With `--role cosmos`: the CometBFT chain id to pin the key to.
        #[arg(long = "chain-id", value_name = "CHAIN")]
        chain_id: Option<String>,
    },
    /// Replace a key's policy with the one the flags describe (provisioning mode). Flags and
    /// defaults as for `generate`: without any, the key signs blocks, preattestations and
    /// attestations on mainnet only. Marks of chains the new policy no longer allows stay on
    /// the board (they still guard the key if the chain comes back); `pawl watermark forget`
    /// frees them.
    Policy {
        /// The key (tz1…/tz2…/tz3…/tz4…).
        pkh: String,
        /// What the key may sign from now on.
        #[command(flatten)]
        policy: PolicyArgs,
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

/// Run `pawl keys …`.
pub fn run(ctx: &Context, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List => list(ctx),
        KeysCommand::Policy { pkh, policy } => policy::set(ctx, &pkh, &policy),
        KeysCommand::Retire(args) => duty::retire(ctx, &args),
        KeysCommand::Activate(args) => duty::activate(ctx, args),
        KeysCommand::Standby { pkh } => duty::standby(ctx, &pkh),
        KeysCommand::Remove { pkh } => duty::remove(ctx, &pkh),
        KeysCommand::Role {
            pkh,
            role,
            chain_id,
        } => {
            cosmos_flags(role, chain_id.as_deref())?;
            duty::role(ctx, &pkh, role, chain_id.as_deref())
        }
        KeysCommand::Generate { role, chain_id, .. }
            if cosmos_flags(role, chain_id.as_deref()).is_err() =>
        {
            cosmos_flags(role, chain_id.as_deref())
        }
        KeysCommand::Import { role, chain_id, .. }
            if cosmos_flags(role, chain_id.as_deref()).is_err() =>
        {
            cosmos_flags(role, chain_id.as_deref())
        }
        KeysCommand::Generate {
            curve, role, hsm, ..
        } if role == duty::RoleArg::Cosmos
            && (!matches!(curve, CurveArg::Ed25519) || hsm.backend != GenerateBackend::Board) =>
        {
            anyhow::bail!(
                "--role cosmos goes with tz1 keys on the board (--curve ed25519): CometBFT validators sign with Ed25519"
            )
        }
        KeysCommand::Generate { curve, role, .. }
            if role == duty::RoleArg::Companion && !matches!(curve, CurveArg::Bls) =>
        {
            anyhow::bail!(
                "--role companion goes with tz4 keys (--curve bls): DAL companion keys are BLS"
            )
        }
        KeysCommand::Generate {
            curve, allow_pop, ..
        } if allow_pop && !matches!(curve, CurveArg::Bls) => {
            anyhow::bail!("--allow-pop goes with tz4 keys (--curve bls) on the board")
        }
        KeysCommand::Generate { hsm, backup_to, .. }
            if backup_to.is_some() && hsm.backend == GenerateBackend::Yubihsm =>
        {
            anyhow::bail!(
                "--backup-to goes with keys generated on the board: a YubiHSM2 key never leaves the HSM (use the HSM's own wrapped export)"
            )
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
            backup_to: Some(to),
            backup_out,
            role,
            chain_id,
            ..
        } => backup::generate(
            ctx,
            curve.into(),
            policy.to_policy()?,
            &to,
            backup_out.as_deref(),
            (allow_pop, role, chain_id.as_deref()),
        ),
        KeysCommand::Generate {
            curve,
            policy,
            allow_pop,
            role,
            chain_id,
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
            let answer = allow_possession(&link, answer, allow_pop);
            print_new_key(
                ctx,
                duty::with_role(&link, answer, role, chain_id.as_deref()),
            )
        }
        KeysCommand::Import { azure, .. } if azure.check_flags().is_err() => azure.check_flags(),
        KeysCommand::Import { azure, pkcs11, .. }
            if pkcs11.label.is_some() && azure.backend != BackendArg::Pkcs11 =>
        {
            anyhow::bail!("--label goes with --backend pkcs11")
        }
        KeysCommand::Import { azure, gcp, .. }
            if gcp.gcp_key.is_some() && azure.backend != BackendArg::Gcp =>
        {
            anyhow::bail!("--gcp-key goes with --backend gcp")
        }
        KeysCommand::Import {
            azure,
            allow_pop,
            role,
            standby,
            ..
        } if matches!(azure.backend, BackendArg::Pkcs11 | BackendArg::Gcp)
            && (allow_pop || standby || role != duty::RoleArg::Consensus) =>
        {
            anyhow::bail!(
                "--standby, --role and --allow-pop go with keys on the board at import; for a key in a key service, register it and then run `pawl keys standby` or `pawl keys role`"
            )
        }
        KeysCommand::Import {
            policy,
            azure,
            pkcs11,
            ..
        } if azure.backend == BackendArg::Pkcs11 => {
            crate::keyring::pkcs11::import(ctx, pkcs11, policy.to_policy()?, print_new_key)
        }
        KeysCommand::Import {
            policy, azure, gcp, ..
        } if azure.backend == BackendArg::Gcp => {
            crate::keyring::gcp::import(ctx, gcp, policy.to_policy()?, print_new_key)
        }
        KeysCommand::Import {
            azure,
            role,
            standby,
            ..
        } if (standby || role != duty::RoleArg::Consensus) && azure.is_off_board() => {
            anyhow::bail!(
                "--standby and --role go with keys on the board at import; for a key in an HSM or a key service, register it and then run `pawl keys standby` or `pawl keys role`"
            )
        }
        KeysCommand::Import {
            azure, allow_pop, ..
        } if allow_pop && azure.is_off_board() => {
            anyhow::bail!(
                "--allow-pop goes with tz4 keys on the board, not --backend azure/yubihsm/aws"
            )
        }
        KeysCommand::Import { policy, azure, .. } if azure.is_yubihsm() => super::yubihsm::import(
            ctx,
            azure.yubihsm_key_id()?,
            azure.public_key.as_deref(),
            policy.to_policy()?,
            print_new_key,
        ),
        KeysCommand::Import { policy, azure, .. } if azure.is_azure() => {
            super::azure_import::run(ctx, azure, policy.to_policy()?, print_new_key)
        }
        KeysCommand::Import { policy, azure, .. } if azure.is_aws() => crate::keyring::aws::import(
            ctx,
            azure.key_id.as_deref(),
            policy.to_policy()?,
            print_new_key,
        ),
        KeysCommand::Import {
            policy,
            allow_pop,
            role,
            standby,
            chain_id,
            ..
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
            if role == duty::RoleArg::Cosmos && curve != Curve::Ed25519 {
                anyhow::bail!("--role cosmos goes with tz1 keys (edsk…)");
            }
            let link = ctx.open_link()?;
            let duty = pawl_core::protocol::Duty {
                role: role.into(),
                standby,
                ..Default::default()
            };
            let request = if duty == pawl_core::protocol::Duty::default() {
                Request::ImportKey {
                    curve,
                    secret,
                    policy,
                }
            } else {
                Request::ImportKeyWithDuty {
                    curve,
                    secret,
                    policy,
                    duty,
                }
            };
            let answer = ask(&link, &request);
            let answer = match role {
                // Imported with the Cosmos role already (never a Tezos key), then pinned.
                duty::RoleArg::Cosmos => duty::with_role(&link, answer, role, chain_id.as_deref()),
                _ => answer,
            };
            print_new_key(ctx, allow_possession(&link, answer, allow_pop))
        }
    }
}

/// `--role cosmos` needs `--chain-id`, and `--chain-id` goes with it only.
fn cosmos_flags(role: duty::RoleArg, chain_id: Option<&str>) -> anyhow::Result<()> {
    match (role, chain_id) {
        (duty::RoleArg::Cosmos, None) => anyhow::bail!(
            "--role cosmos needs --chain-id CHAIN: the CometBFT chain the key signs for"
        ),
        (duty::RoleArg::Cosmos, Some(_)) | (_, None) => Ok(()),
        (_, Some(_)) => anyhow::bail!("--chain-id goes with --role cosmos"),
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
    ctx.for_each_shown_board(|link, name| list_of(ctx, link, name))
}

fn list_of(ctx: &Context, link: &crate::link::Link, name: Option<&str>) -> anyhow::Result<()> {
    let keys = super::board_keys(link)?;
    // A Cosmos key's chain and mark, asked of the board.
    let states: Vec<Option<Value>> = keys.iter().map(|k| cosmos::state(link, k)).collect();
    if ctx.json {
        let keys: Vec<Value> = keys
            .iter()
            .zip(&states)
            .map(|(k, state)| {
                let mut v = key_json(k);
                if state.is_some() {
                    v["cosmos"] = json!(cosmos::json(k, state.clone()));
                }
                v
            })
            .collect();
        let mut value = json!({ "keys": keys });
        if let Some(name) = name {
            value["name"] = json!(name);
        }
        print_json(&value);
    } else if keys.is_empty() {
        println!("no keys on the board (add one with `pawl keys generate --curve ed25519`)");
    } else {
        for (k, state) in keys.iter().zip(&states) {
            println!("{}{}", key_line(k), cosmos::state_line(state.as_ref()));
        }
    }
    Ok(())
}
