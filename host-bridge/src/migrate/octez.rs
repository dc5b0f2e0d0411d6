//! octez-signer's high watermark files (docs/protocol.md §9.1).
//!
//! With `--check-high-watermark`, octez-signer keeps one file per kind in its base directory
//! (`$HOME/.tezos-signer`): `block_high_watermarks`, `preattestation_high_watermarks`,
//! `attestation_high_watermarks` (before Octez v23: `preendorsement_high_watermarks`,
//! `endorsement_high_watermarks`). Each is
//! `{"<chain Net…>": {"<pkh>": {"level": N, "round": N?, "hash": "<64 hex>", "signature": "…"?}}}`.

use std::collections::BTreeMap;
use std::path::Path;

use pawl_core::keys::Curve;
use pawl_core::protocol::WatermarkEntry;
use pawl_core::watermark::MarkKind;
use serde_json::{Map, Value, json};

use super::{FileMark, entry_error, parse_chain, parse_pkh, parse_position, read_json};

/// The files octez-signer writes, and the mark each holds. The current names come first.
pub const FILES: [(&str, MarkKind); 5] = [
    ("block_high_watermarks", MarkKind::Block),
    ("preattestation_high_watermarks", MarkKind::Preattestation),
    ("attestation_high_watermarks", MarkKind::Attestation),
    ("preendorsement_high_watermarks", MarkKind::Preattestation),
    ("endorsement_high_watermarks", MarkKind::Attestation),
];

/// The highest round a tz4 (pre)attestation mark may carry before it is taken for the garbage
/// Octez before v24 wrote (docs/protocol.md §9.1).
pub const MAX_PLAUSIBLE_TZ4_ROUND: i64 = 65_535;

/// The file holding `kind` under the current names.
pub fn file_name(kind: MarkKind) -> &'static str {
    match kind {
        MarkKind::Block => FILES[0].0,
        MarkKind::Preattestation => FILES[1].0,
        MarkKind::Attestation => FILES[2].0,
        MarkKind::CometBft => "cometbft_high_watermarks",
    }
}

/// Every mark of every high watermark file in `dir`, each checked. Errors name the file and
/// the entry. No file at all is an error (octez-signer writes them only with
/// `--check-high-watermark`).
pub fn read(dir: &Path) -> anyhow::Result<Vec<FileMark>> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let mut out = Vec::new();
    let mut found = 0;
    for (name, kind) in FILES {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        found += 1;
        let value = read_json(&path)?;
        out.extend(parse(&path.display().to_string(), kind, &value)?);
    }
    if found == 0 {
        anyhow::bail!(
            "{}: no octez-signer high watermark file ({}); octez-signer writes them only when run with --check-high-watermark",
            dir.display(),
            FILES.map(|(n, _)| n).join(", ")
        );
    }
    Ok(out)
}

/// The marks of one file's JSON (`file` names it in errors).
pub fn parse(file: &str, kind: MarkKind, value: &Value) -> anyhow::Result<Vec<FileMark>> {
    let chains = value.as_object().ok_or_else(|| {
        anyhow::anyhow!(
            "{file}: expected an object of chain ids, found {value}; nothing was imported"
        )
    })?;
    let mut out = Vec::new();
    for (chain_text, keys) in chains {
        let at_chain = format!("{file}: chain {chain_text}");
        let chain = parse_chain(chain_text).map_err(|e| entry_error(&at_chain, e))?;
        let keys = keys.as_object().ok_or_else(|| {
            entry_error(
                &at_chain,
                format!("expected an object of keys, found {keys}"),
            )
        })?;
        for (pkh_text, mark) in keys {
            let origin = format!("{file}: {chain_text} {pkh_text}");
            let pkh = parse_pkh(pkh_text).map_err(|e| entry_error(&origin, e))?;
            let (level, round) =
                parse_mark(mark, kind, pkh.curve).map_err(|e| entry_error(&origin, e))?;
            out.push(FileMark {
                mark: WatermarkEntry {
                    chain,
                    pkh,
                    kind,
                    level,
                    round,
                },
                origin,
            });
        }
    }
    Ok(out)
}

/// `{"level", "round"?, "hash", "signature"?}` → (level, round). A mark without a round (an
/// older octez-signer) blocks its whole level: it is read as round `u32::MAX`, the board's
/// form of "every round of this level".
fn parse_mark(mark: &Value, kind: MarkKind, curve: Curve) -> Result<(u32, u32), String> {
    let fields = mark
        .as_object()
        .ok_or_else(|| format!("expected a mark object, found {mark}"))?;
    if let Some(other) = fields
        .keys()
        .find(|k| !["level", "round", "hash", "signature"].contains(&k.as_str()))
    {
        return Err(format!("unknown field {other:?}"));
    }
    let level = fields.get("level").ok_or("no level")?;
    let round = fields.get("round");
    if curve == Curve::Bls12_381 && kind != MarkKind::Block {
        implausible_tz4(kind, level, round)?;
    }
    let level = parse_position(level, "level")?;
    let round = match round {
        Some(r) => parse_position(r, "round")?,
        None => u32::MAX,
    };
    match fields.get("hash") {
        Some(Value::String(h)) if h.len() == 64 && hex::decode(h).is_ok() => {}
        Some(h) => return Err(format!("hash is not 32 bytes of hex: {h}")),
        None => return Err("no hash".into()),
    }
    match fields.get("signature") {
        None | Some(Value::String(_)) => {}
        Some(s) => return Err(format!("signature is not a string: {s}")),
    }
    Ok((level, round))
}

/// Octez before v24 read a tz4 (pre)attestation's level 2 bytes too far (offset 40 instead
/// of 38: a tz4 consensus operation has no slot). What it stored as the level is the real
/// level's low 16 bits shifted up, and as the round the first 4 bytes of the block payload
/// hash. Such a mark is refused: it is either far above the real level (so importing it
/// would stop the key from attesting for months) or negative.
fn implausible_tz4(kind: MarkKind, level: &Value, round: Option<&Value>) -> Result<(), String> {
    let l = level.as_i64();
    let r = round.and_then(Value::as_i64);
    let bad_level = l.is_some_and(|l| !(0..=i64::from(i32::MAX)).contains(&l));
    let bad_round = r.is_some_and(|r| !(0..=MAX_PLAUSIBLE_TZ4_ROUND).contains(&r));
    if bad_level || bad_round {
        return Err(format!(
            "implausible tz4 {} mark (level {level}, round {}): octez-signer before v24 stored \
             garbage for tz4 (pre)attestations (it read the level at offset 40 instead of 38); \
             refusing to import it. Replace this entry, in a copy of the directory, with the \
             key's last signed level and round (e.g. from a block explorer), or delete it",
            kind.name(),
            round.map_or("absent".to_string(), Value::to_string),
        ));
    }
    Ok(())
}

/// The files octez-signer would read for these marks: (file name, JSON text), under the
/// current names (Octez v23 and later). `hash` is 32 zero bytes and `signature` is omitted:
/// for a mark with a round and no signature, Octez compares only the level and round (it
/// never looks at the hash), so it refuses anything at or below the mark, as pawl does.
/// A round above 2^31-1 (the board's `u32::MAX` of a mark restored from its ceiling, which
/// blocks every round of the level) is written without `round`: for such a mark Octez refuses
/// every request at or below the level. A level above 2^31-1 is an error.
pub fn render(marks: &[WatermarkEntry]) -> anyhow::Result<Vec<(String, String)>> {
    let mut files: BTreeMap<&'static str, Map<String, Value>> = BTreeMap::new();
    for m in marks {
        let Ok(level) = i32::try_from(m.level) else {
            anyhow::bail!(
                "{} {} {}: level {} does not fit octez-signer's 32-bit level",
                m.chain.to_b58().as_str(),
                m.pkh.to_b58().as_str(),
                m.kind.name(),
                m.level,
            );
        };
        let mut mark = json!({ "level": level, "hash": "00".repeat(32) });
        if let Ok(round) = i32::try_from(m.round) {
            mark["round"] = json!(round);
        }
        let chains = files.entry(file_name(m.kind)).or_default();
        let keys = chains
            .entry(m.chain.to_b58().as_str().to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(keys) = keys {
            keys.insert(m.pkh.to_b58().as_str().to_string(), mark);
        }
    }
    Ok(files
        .into_iter()
        .map(|(name, chains)| {
            let text = serde_json::to_string_pretty(&Value::Object(chains)).unwrap_or_default();
            (name.to_string(), text + "\n")
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "NetXo5iVw1vBoxM";
    const TZ1: &str = "tz1LggX2HUdvJ1tF4Fvv8fjsrzLeW4Jr9t2Q";
    const TZ4: &str = "tz4EECtMxAuJ9UDLaiMZH7G1GCFYUWsj8HZn";
    const HASH: &str = "6b46e5d1b0ab2c1a9c3a3aa85e66b8e7e4b7e1dfa9b5c8bbd1e2b2ef7f0d4c11";

    fn one(kind: MarkKind, pkh: &str, mark: Value) -> anyhow::Result<Vec<FileMark>> {
        parse("f", kind, &json!({ NET: { pkh: mark } }))
    }

    #[test]
    fn parses_a_mark_with_and_without_round() {
        let m = one(
            MarkKind::Block,
            TZ1,
            json!({"level": 12, "round": 1, "hash": HASH, "signature": "sig"}),
        )
        .expect("parse");
        assert_eq!((m[0].mark.level, m[0].mark.round), (12, 1));
        assert_eq!(m[0].origin, format!("f: {NET} {TZ1}"));
        let m = one(MarkKind::Block, TZ1, json!({"level": 12, "hash": HASH})).expect("parse");
        assert_eq!((m[0].mark.level, m[0].mark.round), (12, u32::MAX));
    }

    #[test]
    fn malformed_entries_are_named() {
        let cases = [
            (json!({"level": 1, "round": 0}), "no hash"),
            (json!({"round": 0, "hash": HASH}), "no level"),
            (json!({"level": -3, "round": 0, "hash": HASH}), "outside"),
            (
                json!({"level": 1, "round": 0, "hash": "abcd"}),
                "32 bytes of hex",
            ),
            (
                json!({"level": 1, "round": 0, "hash": HASH, "x": 1}),
                "unknown field",
            ),
            (
                json!({"level": "1", "round": 0, "hash": HASH}),
                "not an integer",
            ),
            (json!([1, 2]), "expected a mark object"),
        ];
        for (mark, want) in cases {
            let err = one(MarkKind::Block, TZ1, mark.clone()).expect_err("malformed");
            let text = err.to_string();
            assert!(text.contains(want), "{mark}: {text}");
            assert!(text.contains(&format!("f: {NET} {TZ1}")), "{text}");
        }
        let err = one(MarkKind::Block, "tz1bad", json!({})).expect_err("pkh");
        assert!(err.to_string().contains("bad key hash"), "{err}");
        let err = parse("f", MarkKind::Block, &json!({"NetBad": {}})).expect_err("chain");
        assert!(err.to_string().contains("bad chain id"), "{err}");
        let err = parse("f", MarkKind::Block, &json!([])).expect_err("shape");
        assert!(err.to_string().contains("f: expected an object"), "{err}");
    }

    #[test]
    fn garbage_tz4_attestation_levels_are_refused() {
        // Level 10_000_000 (0x00989680) and round 0, read 2 bytes late: level 0x96800000
        // (negative as int32), round = the first bytes of the payload hash.
        let garbage = json!({"level": -1769996288i64, "round": 1848254766, "hash": HASH});
        let err = one(MarkKind::Attestation, TZ4, garbage.clone()).expect_err("garbage");
        assert!(
            err.to_string().contains("implausible tz4 attestation"),
            "{err}"
        );
        assert!(err.to_string().contains(TZ4), "{err}");
        // A positive garbage level is caught by its round.
        let garbage = json!({"level": 1_048_576, "round": 70_000, "hash": HASH});
        let err = one(MarkKind::Preattestation, TZ4, garbage).expect_err("garbage");
        assert!(
            err.to_string().contains("implausible tz4 preattestation"),
            "{err}"
        );
        // The same values for a tz1 key are an ordinary (non-garbage) range error or fine.
        let big_round = json!({"level": 1_048_576, "round": 70_000, "hash": HASH});
        assert!(one(MarkKind::Attestation, TZ1, big_round.clone()).is_ok());
        // And a tz4 block mark is not affected (Octez read block levels correctly).
        assert!(one(MarkKind::Block, TZ4, big_round).is_ok());
        let fine = json!({"level": 10_000_000, "round": 3, "hash": HASH});
        assert!(one(MarkKind::Attestation, TZ4, fine).is_ok());
    }

    #[test]
    fn render_then_parse_round_trips() {
        let marks = one(
            MarkKind::Attestation,
            TZ1,
            json!({"level": 44, "round": 2, "hash": HASH}),
        )
        .expect("parse");
        let files = render(&[marks[0].mark]).expect("render");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, "attestation_high_watermarks");
        let v: Value = serde_json::from_str(&files[0].1).expect("json");
        assert_eq!(v[NET][TZ1]["hash"], json!("00".repeat(32)));
        assert!(v[NET][TZ1].get("signature").is_none());
        let back = parse("g", MarkKind::Attestation, &v).expect("parse");
        assert_eq!(back[0].mark, marks[0].mark);
        // A whole-level mark (round u32::MAX) is written without a round, and read back so.
        let whole = WatermarkEntry {
            round: u32::MAX,
            ..marks[0].mark
        };
        let files = render(&[whole]).expect("render");
        let v: Value = serde_json::from_str(&files[0].1).expect("json");
        assert!(v[NET][TZ1].get("round").is_none(), "{v}");
        let back = parse("g", MarkKind::Attestation, &v).expect("parse");
        assert_eq!(back[0].mark, whole);
        let too_high = WatermarkEntry {
            level: 1 << 31,
            ..marks[0].mark
        };
        assert!(render(&[too_high]).is_err());
    }
}
