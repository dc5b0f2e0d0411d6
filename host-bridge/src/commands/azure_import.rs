//! `pawl keys import --backend azure --vault URL --key NAME`: read the Key Vault key's public
//! key (JWK), register it on the board as a host-held key (provisioning mode), and record
//! which Key Vault key signs for the new pkh in `<home>/azure_keys.json`.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Request, Response};

use super::{Context, ask};
use crate::keyring::azure::{AzureKeyring, KeyRef, record_key};

/// `--backend`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// A secret read from stdin, sealed on the board.
    #[default]
    Board,
    /// An Azure Key Vault key (tz2 P-256K or tz3 P-256), host-trusted tier.
    Azure,
    /// A key inside a YubiHSM2 (tz1, tz2 or tz3), by object id.
    Yubihsm,
    /// A key pair in a PKCS#11 token (tz1, tz2 or tz3), by `--label`, host-trusted tier.
    Pkcs11,
    /// A Google Cloud KMS key version (tz2 or tz3), by `--gcp-key`, host-trusted tier.
    Gcp,
    /// An AWS KMS key (tz2 ECC_SECG_P256K1 or tz3 ECC_NIST_P256), host-trusted tier, by ARN.
    Aws,
}

/// The Azure options of `pawl keys import`.
#[derive(Debug, Args)]
pub struct AzureImportArgs {
    /// Where the key lives: `board` (secret from stdin), `azure` (Key Vault), `yubihsm` or
    /// `aws` (KMS).
    #[arg(long, value_enum, default_value = "board")]
    pub backend: BackendArg,
    /// Azure: the vault URL (default: `[azure] vault_url`).
    #[arg(long, value_name = "URL")]
    pub vault: Option<String>,
    /// Azure: the key's name in the vault.
    #[arg(long = "key", value_name = "NAME")]
    pub key: Option<String>,
    /// Azure: a key version (default: the current one).
    #[arg(long, value_name = "VERSION")]
    pub key_version: Option<String>,
    /// YubiHSM2: the key's object id in the HSM (a number). AWS: the KMS key's ARN (or its
    /// key id, or `alias/NAME`; the key's ARN is what gets recorded).
    #[arg(long, value_name = "ID")]
    pub key_id: Option<String>,
    /// YubiHSM2: the public key you expect (edpk…/sppk…/p2pk…); the board refuses the import
    /// if the HSM holds another.
    #[arg(long, value_name = "PK")]
    pub public_key: Option<String>,
}

impl AzureImportArgs {
    /// Whether `--backend azure` was given.
    pub fn is_azure(&self) -> bool {
        self.backend == BackendArg::Azure
    }

    /// Whether `--backend yubihsm` was given.
    pub fn is_yubihsm(&self) -> bool {
        self.backend == BackendArg::Yubihsm
    }

    /// Whether `--backend aws` was given.
    pub fn is_aws(&self) -> bool {
        self.backend == BackendArg::Aws
    }

    /// Whether the key lives anywhere but on the board (an HSM or a key service).
    pub fn is_off_board(&self) -> bool {
        self.backend != BackendArg::Board
    }

    /// `--key-id` as a YubiHSM2 object id.
    pub fn yubihsm_key_id(&self) -> anyhow::Result<Option<u16>> {
        self.key_id
            .as_deref()
            .map(|id| {
                id.parse::<u16>().map_err(|_| {
                    anyhow::anyhow!("--key-id `{id}` is not a YubiHSM2 object id (0 to 65535)")
                })
            })
            .transpose()
    }

    /// Refuse flags that belong to another backend (they would be silently ignored).
    pub fn check_flags(&self) -> anyhow::Result<()> {
        let azure = self.vault.is_some() || self.key.is_some() || self.key_version.is_some();
        if azure && !self.is_azure() {
            anyhow::bail!("--vault, --key and --key-version go with --backend azure");
        }
        if self.key_id.is_some() && !(self.is_yubihsm() || self.is_aws()) {
            anyhow::bail!("--key-id goes with --backend yubihsm or --backend aws");
        }
        if self.public_key.is_some() && !self.is_yubihsm() {
            anyhow::bail!("--public-key goes with --backend yubihsm");
        }
        Ok(())
    }
}

/// Run the Azure import; `print` prints the board's answer like other key commands.
pub fn run(
    ctx: &Context,
    args: AzureImportArgs,
    policy: Policy,
    print: fn(&Context, anyhow::Result<Response>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let settings = ctx
        .config
        .azure
        .clone()
        .context("--backend azure needs an [azure] section in pawl.toml (credential, …)")?;
    let vault = args
        .vault
        .or_else(|| settings.vault_url.clone())
        .context("--vault URL (or [azure] vault_url) is required with --backend azure")?;
    let key = args
        .key
        .context("--key NAME is required with --backend azure")?;
    let keyring = AzureKeyring::open(settings, &ctx.home).context("[azure] in pawl.toml")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let public_key = runtime
        .block_on(keyring.public_key(&vault, &key, args.key_version.as_deref()))
        .with_context(|| format!("reading key `{key}` from {vault}"))?;
    let link = ctx.open_link()?;
    let answer = ask(&link, &Request::RegisterHostKey { public_key, policy });
    if let Ok(Response::KeyInfo(info)) = &answer {
        record_key(
            &ctx.home,
            KeyRef {
                pkh: info.pkh.to_b58().to_string(),
                vault: vault.clone(),
                key: key.clone(),
                version: args.key_version.clone(),
            },
        )?;
    }
    print(ctx, answer)
}
