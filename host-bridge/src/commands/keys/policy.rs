//! `pawl keys policy`, and the policy flags every key command takes: building a [`Policy`]
//! from flags, and printing one.

use anyhow::Context as _;
use clap::Args;
use pawl_core::keys::PublicKeyHash;
use pawl_core::policy::Policy;
use pawl_core::protocol::{Request, Response};
use pawl_core::request::{ChainId, KindSet, OpKind, OpKindSet, RequestKind};

use super::super::{Context, ask, print_json};
use super::{key_json, key_line};

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

/// `pawl keys policy PKH [flags]`: the board answers with the key as it now stands.
pub fn set(ctx: &Context, pkh: &str, flags: &PolicyArgs) -> anyhow::Result<()> {
    let key = PublicKeyHash::from_b58(pkh.trim())
        .map_err(|e| anyhow::anyhow!("`{pkh}` is not a key hash (tz1…/tz2…/tz3…/tz4…): {e}"))?;
    let policy = flags.to_policy()?;
    let link = ctx.open_link()?;
    let answer = ask(&link, &Request::SetPolicy { pkh: key, policy })
        .with_context(|| format!("changing the policy of {key}"))?;
    let Response::KeyInfo(info) = answer else {
        anyhow::bail!("unexpected answer from the board: {answer:?}");
    };
    if ctx.json {
        print_json(&key_json(&info));
    } else {
        println!("{}", key_line(&info));
    }
    Ok(())
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
