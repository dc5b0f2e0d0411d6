//! `pawl watermark import` / `export` as a baker runs them, on the virtual board: the files of
//! `tests/fixtures/watermarks` (octez-signer, Signatory; see their README).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::*;

const NET: &str = "NetXo5iVw1vBoxM";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/watermarks")
        .join(name)
}

/// Run `pawl --home HOME ARGS…` with `stdin`: (success, stdout, stderr).
fn pawl(home: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pawl"));
    cmd.arg("--home").arg(home).args(args);
    run_with_stdin(cmd, stdin)
}

fn ok(home: &Path, args: &[&str]) -> String {
    let (ok, out, err) = pawl(home, args, "");
    assert!(ok, "pawl {args:?} failed:\n{out}\n{err}");
    out
}

/// A fresh virtual board holding the tz1 and (if `tz2`) the tz2 key of the fixtures.
fn board(tz2: bool) -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    let mut keys = vec![SIGNATORY_SK];
    if tz2 {
        keys.push(PYTEZOS_SPSK);
    }
    for sk in keys {
        let (ok, _, err) = pawl(
            home.path(),
            &["keys", "import", "--chain", NET],
            &format!("{sk}\n"),
        );
        assert!(ok, "{err}");
    }
    home
}

/// `pawl watermark show --json`: (chain, pkh, kind) → (level, round), sorted.
fn marks(home: &Path) -> Vec<(String, String, String, u64, u64)> {
    let v: Value =
        serde_json::from_str(ok(home, &["watermark", "show", "--json"]).trim()).expect("json");
    let mut out: Vec<_> = v["watermarks"]
        .as_array()
        .expect("list")
        .iter()
        .map(|w| {
            (
                w["chain"].as_str().expect("chain").to_string(),
                w["pkh"].as_str().expect("pkh").to_string(),
                w["kind"].as_str().expect("kind").to_string(),
                w["level"].as_u64().expect("level"),
                w["round"].as_u64().expect("round"),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every mark of `want` is on the board at or above its position. (The board shows a mark
/// restored from its ceiling after each command's restart, up to `ceiling_ahead` levels above
/// what was imported, all rounds: docs/design.md §8.) What exactly was sent is checked on
/// the import's own report ([`raised`]).
fn assert_covers(home: &Path, want: &[(String, String, String, u64, u64)]) {
    let have = marks(home);
    assert_eq!(have.len(), want.len(), "{have:?} vs {want:?}");
    for (w, h) in want.iter().zip(&have) {
        assert_eq!((&w.0, &w.1, &w.2), (&h.0, &h.1, &h.2), "{have:?}");
        assert!((h.3, h.4) >= (w.3, w.4), "{h:?} below {w:?}");
    }
}

/// The marks an import's `--json` report raised (or would raise), sorted like [`marks`].
fn raised(v: &Value) -> Vec<(String, String, String, u64, u64)> {
    let mut out: Vec<_> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "raise")
        .map(|e| {
            (
                e["chain"].as_str().expect("chain").to_string(),
                e["pkh"].as_str().expect("pkh").to_string(),
                e["kind"].as_str().expect("kind").to_string(),
                e["new"]["level"].as_u64().expect("level"),
                e["new"]["round"].as_u64().expect("round"),
            )
        })
        .collect();
    out.sort();
    out
}

fn m(pkh: &str, kind: &str, level: u64, round: u64) -> (String, String, String, u64, u64) {
    (NET.into(), pkh.into(), kind.into(), level, round)
}

/// What the `octez` fixture holds.
fn octez_marks() -> Vec<(String, String, String, u64, u64)> {
    let mut v = vec![
        m(SIGNATORY_PKH, "block", 5000, 1),
        m(SIGNATORY_PKH, "preattestation", 5001, 0),
        m(SIGNATORY_PKH, "attestation", 5001, 0),
        m(PYTEZOS_TZ2, "block", 4990, 0),
        m(PYTEZOS_TZ2, "attestation", 5000, 2),
    ];
    v.sort();
    v
}

fn import_json(home: &Path, from: &str, dir: &Path, dry: bool) -> Value {
    let dir = dir.to_str().expect("utf8");
    let mut args = vec!["watermark", "import", "--from", from, dir, "--json"];
    if dry {
        args.push("--dry-run");
    }
    serde_json::from_str(ok(home, &args).trim()).expect("json")
}

fn actions(v: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["pkh"].as_str().expect("pkh").to_string(),
                e["kind"].as_str().expect("kind").to_string(),
                e["action"].as_str().expect("action").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn dry_run_changes_nothing_then_import_raises_the_marks() {
    let home = board(true);
    let (ok_, out, err) = pawl(
        home.path(),
        &[
            "watermark",
            "import",
            "--from",
            "octez",
            fixture("octez").to_str().expect("utf8"),
            "--dry-run",
        ],
        "",
    );
    assert!(ok_, "{err}");
    assert!(out.contains("dry run"), "{out}");
    assert!(
        out.contains(&format!(
            "{NET} {SIGNATORY_PKH} block          no mark → level 5000 round 1"
        )),
        "{out}"
    );
    assert!(out.contains("5 mark(s) would be raised, 0 kept"), "{out}");
    assert_eq!(marks(home.path()), vec![], "a dry run changed the board");

    let dry = import_json(home.path(), "octez", &fixture("octez"), true);
    assert_eq!(raised(&dry), octez_marks());
    assert_eq!(marks(home.path()), vec![], "a dry run changed the board");

    let v = import_json(home.path(), "octez", &fixture("octez"), false);
    assert_eq!(v["imported"], json!(5), "{v}");
    assert_eq!(raised(&v), octez_marks());
    assert_covers(home.path(), &octez_marks());
}

#[test]
fn a_second_import_of_lower_marks_reports_kept_and_changes_nothing() {
    let home = board(true);
    import_json(home.path(), "octez", &fixture("octez"), false);
    let before = marks(home.path());
    // Octez before v23 (preendorsement/endorsement names), every mark at or below.
    let v = import_json(home.path(), "octez", &fixture("octez-pre-v23"), false);
    assert_eq!(v["imported"], json!(0), "{v}");
    assert_eq!(
        actions(&v),
        vec![
            (SIGNATORY_PKH.into(), "attestation".into(), "kept".into()),
            (SIGNATORY_PKH.into(), "block".into(), "kept".into()),
            (SIGNATORY_PKH.into(), "preattestation".into(), "kept".into()),
        ]
    );
    let e = &v["entries"][0];
    assert!(e["board"].is_object() && e["new"].is_object(), "{v}");
    assert_eq!(marks(home.path()), before);
    // The text form says why.
    let out = ok(
        home.path(),
        &[
            "watermark",
            "import",
            "--from",
            "octez",
            fixture("octez-pre-v23").to_str().expect("utf8"),
        ],
    );
    assert!(
        out.contains(&format!(
            "{NET} {SIGNATORY_PKH} block          kept: board is higher or equal (level 50"
        )),
        "{out}"
    );
    assert!(out.contains("≥ level 4000 round 0)"), "{out}");
    assert!(out.contains("0 mark(s) raised, 3 kept"), "{out}");
    assert_eq!(marks(home.path()), before);
}

#[test]
fn pre_v23_names_import_into_a_fresh_board() {
    let home = board(false);
    let v = import_json(home.path(), "octez", &fixture("octez-pre-v23"), false);
    let mut want = vec![
        m(SIGNATORY_PKH, "block", 4000, 0),
        m(SIGNATORY_PKH, "preattestation", 4001, 0),
        m(SIGNATORY_PKH, "attestation", 5001, 0),
    ];
    want.sort();
    assert_eq!(raised(&v), want);
    assert_covers(home.path(), &want);
}

#[test]
fn signatory_kinds_fold_into_pawl_marks() {
    let home = board(false);
    let v = import_json(home.path(), "signatory", &fixture("signatory"), false);
    assert_eq!(v["imported"], json!(3), "{v}");
    // attestation_with_dal (7002) wins over attestation (7001) and endorsement (6000).
    let mut want = vec![
        m(SIGNATORY_PKH, "block", 7000, 0),
        m(SIGNATORY_PKH, "preattestation", 7001, 1),
        m(SIGNATORY_PKH, "attestation", 7002, 0),
    ];
    want.sort();
    assert_eq!(raised(&v), want);
    assert_covers(home.path(), &want);
    let skipped = actions(&v).into_iter().filter(|a| a.2 == "skipped").count();
    assert_eq!(skipped, 2, "{v}");
    // The base directory or watermark_v2/ itself.
    let again = import_json(
        home.path(),
        "signatory",
        &fixture("signatory/watermark_v2"),
        true,
    );
    assert_eq!(again["entries"][0]["action"], json!("kept"), "{again}");
}

/// A bad file, a bad entry, a key the board does not hold: an error naming the file and the
/// entry, and nothing imported (not even the good entries before it).
#[test]
fn a_bad_file_imports_nothing() {
    let home = board(false);
    let cases: Vec<(&str, PathBuf, Vec<String>)> = vec![
        (
            "octez",
            fixture("octez-garbage-tz4"),
            vec![
                "attestation_high_watermarks".into(),
                "tz4EECtMxAuJ9UDLaiMZH7G1GCFYUWsj8HZn".into(),
                "implausible tz4 attestation mark".into(),
            ],
        ),
        (
            "signatory",
            fixture("signatory-unknown-kind"),
            vec![
                format!("{NET}.json: {SIGNATORY_PKH} generic"),
                "unknown kind".into(),
            ],
        ),
        (
            // The tz2 key is not on this board.
            "octez",
            fixture("octez"),
            vec![format!("{NET} {PYTEZOS_TZ2}"), "does not hold key".into()],
        ),
        (
            "octez",
            fixture("signatory"),
            vec!["no octez-signer high watermark file".into()],
        ),
    ];
    for (from, dir, wants) in cases {
        let (ok_, out, err) = pawl(
            home.path(),
            &[
                "watermark",
                "import",
                "--from",
                from,
                dir.to_str().expect("utf8"),
            ],
            "",
        );
        assert!(!ok_, "{dir:?} imported:\n{out}");
        for want in wants {
            assert!(err.contains(&want), "{dir:?}: {want:?} not in:\n{err}");
        }
        assert_eq!(marks(home.path()), vec![], "{dir:?} changed the board");
    }
    // Malformed JSON, named.
    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        bad.path().join("block_high_watermarks"),
        "{ \"NetXo5iVw1vBoxM\": ",
    )
    .expect("write");
    let (ok_, _, err) = pawl(
        home.path(),
        &[
            "watermark",
            "import",
            "--from",
            "octez",
            bad.path().to_str().expect("utf8"),
        ],
        "",
    );
    assert!(!ok_);
    assert!(
        err.contains("block_high_watermarks: malformed JSON"),
        "{err}"
    );
    assert_eq!(marks(home.path()), vec![]);
}

/// Board → octez-signer files → a fresh board, and the same through Signatory's files.
#[test]
fn export_then_import_round_trips_into_a_fresh_board() {
    let home = board(true);
    import_json(home.path(), "octez", &fixture("octez"), false);
    let want = marks(home.path());
    for format in ["octez", "signatory"] {
        let out = tempfile::tempdir().expect("tempdir");
        let dir = out.path().to_str().expect("utf8");
        // A dry run writes nothing.
        let text = ok(
            home.path(),
            &["watermark", "export", "--format", format, dir, "--dry-run"],
        );
        assert!(text.contains("would write"), "{text}");
        assert_eq!(std::fs::read_dir(out.path()).expect("ls").count(), 0);
        ok(
            home.path(),
            &["watermark", "export", "--format", format, dir],
        );
        let files: Vec<String> = walk(out.path());
        match format {
            "octez" => assert_eq!(
                files,
                vec![
                    "attestation_high_watermarks",
                    "block_high_watermarks",
                    "preattestation_high_watermarks"
                ]
            ),
            _ => assert_eq!(files, vec![format!("watermark_v2/{NET}.json")]),
        }
        // Exporting again does not overwrite.
        let (ok_, _, err) = pawl(
            home.path(),
            &["watermark", "export", "--format", format, dir],
            "",
        );
        assert!(!ok_ && err.contains("exists"), "{err}");

        let fresh = board(true);
        let v = import_json(fresh.path(), format, out.path(), false);
        assert_eq!(v["imported"], json!(want.len()), "{format}: {v}");
        // What the files carried is exactly the first board's marks (whole-level rounds
        // included: Octez without a round, Signatory as 2^31-1, which still covers them)...
        let sent = raised(&v);
        assert_eq!(sent.len(), want.len(), "{format}: {v}");
        for (s, w) in sent.iter().zip(&want) {
            assert_eq!((&s.0, &s.1, &s.2, s.3), (&w.0, &w.1, &w.2, w.3), "{format}");
            let whole = |r: u64| if r >= i32::MAX as u64 { u64::MAX } else { r };
            assert_eq!(whole(s.4), whole(w.4), "{format}: {s:?} vs {w:?}");
        }
        // ...and the fresh board holds them.
        assert_covers(fresh.path(), &want);
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("ls") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            for f in walk(&p) {
                let name = p.file_name().expect("name").to_string_lossy().to_string();
                out.push(format!("{name}/{f}"));
            }
        } else {
            out.push(p.file_name().expect("name").to_string_lossy().to_string());
        }
    }
    out.sort();
    out
}
