//! Target `request`: Tezos signing payloads through `request::parse` (magic byte, consensus
//! layouts, operation batches, Micheline).

use pawl_core::policy::Policy;
use pawl_core::request::{ConsensusForm, OpKind, OpKindSet, RequestKind, parse};

/// Run one input as a payload.
pub fn run(data: &[u8]) {
    let Ok(parsed) = parse(data) else { return };
    match parsed.kind {
        RequestKind::Block | RequestKind::Preattestation | RequestKind::Attestation => {
            let c = parsed
                .consensus
                .expect("a consensus request carries its position");
            // The position pawl marks is the one Octez reads at its fixed offsets.
            let tz4 = c.form == ConsensusForm::BlsMode;
            let (chain, magic, level, round) = crate::octez_position(data, tz4)
                .expect("a parsed consensus payload is long enough for Octez's offsets");
            assert_eq!(magic, data[0]);
            assert_eq!(chain, c.chain_id.0, "chain differs from Octez's offset");
            assert_eq!(level, c.level, "level differs from Octez's offset");
            assert_eq!(round, c.round, "round differs from Octez's offset");
            assert_eq!(
                c.form == ConsensusForm::Block,
                parsed.kind == RequestKind::Block
            );
        }
        RequestKind::Generic => {
            assert!(parsed.consensus.is_none());
            assert!(parsed.op_count >= 1, "a batch without contents parsed");
            assert!(!parsed.op_kinds.is_empty(), "a batch with no kinds parsed");
        }
        RequestKind::Michelson => assert!(parsed.consensus.is_none()),
    }
    // The policy reads the parse result: it must decide, never panic.
    let all = OpKind::ALL
        .iter()
        .fold(OpKindSet::EMPTY, |set, k| set.with(*k));
    let mut policy = Policy {
        ops: all,
        ..Policy::default()
    };
    for kind in RequestKind::ALL {
        policy.kinds = policy.kinds.with(kind);
    }
    let _ = policy.check(&parsed, false);
    let _ = policy.check(&parsed, true);
    let _ = Policy::default().check(&parsed, true);
}
