//! Signatory's file watermarks (docs/protocol.md §9.2).
//!
//! Signatory's `file` watermark backend keeps one file per chain under its base directory:
//! `<base>/watermark_v2/<chain Net…>.json` =
//! `{"<pkh>": {"<kind>": {"level": N, "round": N, "hash": "vh…" | null}}}`, where the kind is
//! the request's operation kind: `block`, `preattestation`, `attestation`,
//! `attestation_with_dal` (older versions: `preendorsement`, `endorsement`). Signatory keeps a
//! separate mark per kind; pawl has one attestation mark, so `attestation`,
//! `attestation_with_dal` and `endorsement` fold into it (the highest wins).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pawl_core::encoding::{self, Prefix};
use pawl_core::protocol::WatermarkEntry;
use pawl_core::watermark::MarkKind;
use serde_json::{Map, Value, json};

use super::{FileMark, entry_error, parse_chain, parse_pkh, parse_position, read_json};

/// Signatory's directory of per-chain files, under its base directory.
pub const DIR: &str = "watermark_v2";

/// Signatory's kind names and the mark each moves in pawl.
pub const KINDS: [(&str, MarkKind); 6] = [
    ("block", MarkKind::Block),
    ("preattestation", MarkKind::Preattestation),
    ("attestation", MarkKind::Attestation),
    ("attestation_with_dal", MarkKind::Attestation),
    ("preendorsement", MarkKind::Preattestation),
    ("endorsement", MarkKind::Attestation),
];

/// `dir` itself if it is a `watermark_v2` directory, else `dir/watermark_v2`.
pub fn watermark_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.file_name().is_some_and(|n| n == DIR) && dir.is_dir() {
        return Ok(dir.to_path_buf());
    }
    let inner = dir.join(DIR);
    if inner.is_dir() {
        return Ok(inner);
    }
    for old in ["watermark_v1", "watermark"] {
        if dir.join(old).is_dir() {
            anyhow::bail!(
                "{}: only an older Signatory layout ({old}/) is there; start a recent Signatory \
                 once on this directory (it migrates to {DIR}/), stop it, and import again",
                dir.display()
            );
        }
    }
    anyhow::bail!(
        "{}: no {DIR}/ directory (give Signatory's base directory, or its {DIR}/ itself)",
        dir.display()
    )
}

/// Every mark of every `<chain>.json` in the base directory `dir` (or its `watermark_v2`).
pub fn read(dir: &Path) -> anyhow::Result<Vec<FileMark>> {
    let wm = watermark_dir(dir)?;
    let mut names: Vec<PathBuf> = std::fs::read_dir(&wm)
        .map_err(|e| anyhow::anyhow!("{}: cannot list: {e}", wm.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    if names.is_empty() {
        anyhow::bail!("{}: no <chain id>.json file", wm.display());
    }
    let mut out = Vec::new();
    for path in names {
        let file = path.display().to_string();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let chain = parse_chain(stem)
            .map_err(|e| anyhow::anyhow!("{file}: the file name is not a chain id: {e}"))?;
        let value = read_json(&path)?;
        out.extend(parse(&file, &chain.to_b58(), &value)?);
    }
    Ok(out)
}

/// The marks of one chain's JSON (`file` names it in errors).
pub fn parse(file: &str, chain_text: &str, value: &Value) -> anyhow::Result<Vec<FileMark>> {
    let chain = parse_chain(chain_text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let keys = value.as_object().ok_or_else(|| {
        anyhow::anyhow!("{file}: expected an object of keys, found {value}; nothing was imported")
    })?;
    let mut out = Vec::new();
    for (pkh_text, kinds) in keys {
        let at_key = format!("{file}: {pkh_text}");
        let pkh = parse_pkh(pkh_text).map_err(|e| entry_error(&at_key, e))?;
        let kinds = kinds.as_object().ok_or_else(|| {
            entry_error(
                &at_key,
                format!("expected an object of kinds, found {kinds}"),
            )
        })?;
        for (kind_text, mark) in kinds {
            let origin = format!("{file}: {pkh_text} {kind_text}");
            let kind = KINDS
                .iter()
                .find(|(n, _)| n == kind_text)
                .map(|(_, k)| *k)
                .ok_or_else(|| {
                    entry_error(
                        &origin,
                        format!(
                            "unknown kind {kind_text:?} (known: {})",
                            KINDS.map(|(n, _)| n).join(", ")
                        ),
                    )
                })?;
            let (level, round) = parse_mark(mark).map_err(|e| entry_error(&origin, e))?;
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

/// `{"level", "round", "hash"}` → (level, round). A missing round is 0, as Signatory reads it.
fn parse_mark(mark: &Value) -> Result<(u32, u32), String> {
    let fields = mark
        .as_object()
        .ok_or_else(|| format!("expected a mark object, found {mark}"))?;
    if let Some(other) = fields
        .keys()
        .find(|k| !["level", "round", "hash"].contains(&k.as_str()))
    {
        return Err(format!("unknown field {other:?}"));
    }
    let level = parse_position(fields.get("level").ok_or("no level")?, "level")?;
    let round = match fields.get("round") {
        Some(r) => parse_position(r, "round")?,
        None => 0,
    };
    match fields.get("hash") {
        None | Some(Value::Null) => {}
        Some(Value::String(h)) => {
            let mut buf = [0u8; encoding::MAX_PAYLOAD];
            match encoding::decode_any(h, &mut buf) {
                Ok((Prefix::BlockPayloadHash, _)) => {}
                _ => return Err(format!("hash {h:?} is not a vh… hash")),
            }
        }
        Some(h) => return Err(format!("hash is neither null nor a string: {h}")),
    }
    Ok((level, round))
}

/// The files Signatory would read for these marks: (path under the base directory, JSON
/// text), one `watermark_v2/<chain>.json` per chain. `hash` is null (unknown). Each pawl mark
/// is written under every Signatory kind that folds into it (an attestation mark under
/// `attestation`, `attestation_with_dal` and `endorsement`), so whichever kind name the
/// Signatory version checks finds it. A round above 2^31-1 (the board's `u32::MAX`: every
/// round of the level) is written as 2^31-1, above which Signatory's int32 round cannot go.
/// A level above 2^31-1 is an error.
pub fn render(marks: &[WatermarkEntry]) -> anyhow::Result<Vec<(String, String)>> {
    let mut files: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for m in marks {
        let Ok(level) = i32::try_from(m.level) else {
            anyhow::bail!(
                "{} {} {}: level {} does not fit Signatory's 32-bit level",
                m.chain.to_b58().as_str(),
                m.pkh.to_b58().as_str(),
                m.kind.name(),
                m.level,
            );
        };
        let round = i32::try_from(m.round).unwrap_or(i32::MAX);
        let keys = files
            .entry(format!("{DIR}/{}.json", m.chain.to_b58().as_str()))
            .or_default();
        let kinds = keys
            .entry(m.pkh.to_b58().as_str().to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(kinds) = kinds {
            for (name, kind) in KINDS {
                if kind == m.kind {
                    kinds.insert(
                        name.to_string(),
                        json!({ "level": level, "round": round, "hash": null }),
                    );
                }
            }
        }
    }
    Ok(files
        .into_iter()
        .map(|(name, keys)| {
            let text = serde_json::to_string_pretty(&Value::Object(keys)).unwrap_or_default();
            (name, text + "\n")
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "NetXo5iVw1vBoxM";
    const TZ1: &str = "tz1LggX2HUdvJ1tF4Fvv8fjsrzLeW4Jr9t2Q";
    const VH: &str = "vh1oSJeYR1nEyjf9bxeBHCLXqfgdDv6hX2xrw8nmsG9KS4X1nrZb";

    fn one(kind: &str, mark: Value) -> anyhow::Result<Vec<FileMark>> {
        parse("f.json", NET, &json!({ TZ1: { kind: mark } }))
    }

    #[test]
    fn parses_every_kind_name() {
        for (name, kind) in KINDS {
            let m = one(name, json!({"level": 9, "round": 2, "hash": VH})).expect(name);
            assert_eq!(
                (m[0].mark.kind, m[0].mark.level, m[0].mark.round),
                (kind, 9, 2)
            );
            assert_eq!(m[0].origin, format!("f.json: {TZ1} {name}"));
        }
        let m = one("block", json!({"level": 9, "hash": null})).expect("no round");
        assert_eq!(m[0].mark.round, 0);
    }

    #[test]
    fn malformed_entries_are_named() {
        let cases = [
            (
                "generic",
                json!({"level": 1, "round": 0, "hash": null}),
                "unknown kind",
            ),
            ("block", json!({"round": 0, "hash": null}), "no level"),
            (
                "block",
                json!({"level": 1, "round": -1, "hash": null}),
                "outside",
            ),
            (
                "block",
                json!({"level": 1, "round": 0, "hash": "xyz"}),
                "not a vh",
            ),
            (
                "block",
                json!({"level": 1, "round": 0, "hash": 5}),
                "neither null",
            ),
            ("block", json!({"level": 1, "order": 0}), "unknown field"),
        ];
        for (kind, mark, want) in cases {
            let err = one(kind, mark.clone()).expect_err("malformed");
            let text = err.to_string();
            assert!(text.contains(want), "{mark}: {text}");
            assert!(text.contains(&format!("f.json: {TZ1} {kind}")), "{text}");
        }
        let err = parse("f.json", NET, &json!({"tz9x": {}})).expect_err("pkh");
        assert!(err.to_string().contains("bad key hash"), "{err}");
        let err = parse("f.json", NET, &json!([])).expect_err("shape");
        assert!(
            err.to_string().contains("f.json: expected an object"),
            "{err}"
        );
    }

    #[test]
    fn render_writes_every_kind_name_then_parses_back() {
        let m = one("attestation", json!({"level": 9, "round": 2, "hash": null})).expect("m");
        let files = render(&[m[0].mark]).expect("render");
        assert_eq!(files[0].0, format!("watermark_v2/{NET}.json"));
        let v: Value = serde_json::from_str(&files[0].1).expect("json");
        for name in ["attestation", "attestation_with_dal", "endorsement"] {
            assert_eq!(v[TZ1][name], json!({"level": 9, "round": 2, "hash": null}));
        }
        assert!(v[TZ1].get("block").is_none());
        let back = parse("g", NET, &v).expect("parse");
        assert_eq!(back.len(), 3);
        assert!(back.iter().all(|b| b.mark == m[0].mark));
        let whole = WatermarkEntry {
            round: u32::MAX,
            ..m[0].mark
        };
        let v: Value = serde_json::from_str(&render(&[whole]).expect("render")[0].1).expect("j");
        assert_eq!(v[TZ1]["attestation"]["round"], json!(i32::MAX));
        let too_high = WatermarkEntry {
            level: 1 << 31,
            ..m[0].mark
        };
        assert!(render(&[too_high]).is_err());
    }
}
