//! How a key is printed: one line for people, one JSON object for scripts.

use pawl_core::policy::Policy;
use pawl_core::protocol::{Backend, KeyInfo, Role};
use serde_json::{Value, json};

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

/// One key as JSON: `{"pkh","public_key","curve","backend","policy":{"kinds","ops","chains",
/// "confirm"},"duty":{"role","standby","from_level","until_level"},"cosmos"}` (`cosmos`: null,
/// or a Cosmos key's `{"public_key","validator_address"}`).
pub fn key_json(k: &KeyInfo) -> Value {
    let (kinds, ops, chains, confirm) = policy_parts(&k.policy);
    json!({
        "pkh": k.pkh.to_b58().as_str(),
        "public_key": k.public_key.to_b58().as_str(),
        "curve": k.pkh.curve.name(),
        "backend": backend_name(k.backend),
        "policy": {"kinds": kinds, "ops": ops, "chains": chains, "confirm": confirm},
        "duty": {
            "role": k.duty.role.name(),
            "standby": k.duty.standby,
            "from_level": k.duty.from_level,
            "until_level": k.duty.until_level,
        },
        "cosmos": super::cosmos::json(k, None),
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
    let duty = &k.duty;
    if duty.role != Role::Consensus {
        line.push_str(&format!(" role {}", duty.role.name()));
    }
    if let Some(words) = super::cosmos::line(k) {
        line.push_str(&words);
    }
    if duty.standby {
        line.push_str(" STANDBY (signs nothing)");
    }
    match (duty.from_level, duty.until_level) {
        (None, None) => {}
        (from, until) => line.push_str(&format!(
            " levels {}..{}",
            from.map_or(String::new(), |l| l.to_string()),
            until.map_or(String::new(), |l| l.to_string())
        )),
    }
    line
}
