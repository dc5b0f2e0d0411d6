//! Every committed seed and crash reproducer through its target, without AFL: a regression
//! test for whatever the fuzzer found, and a check that the seeds still run clean.
//!
//! `crashes/TARGET/` holds reproducers of fixed findings: they must pass. `crashes/TARGET/open/`
//! holds findings not fixed yet (`docs/security.md`): they must still fail, so that a fix
//! shows up here and its reproducer moves one directory up.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str) -> usize {
    let run = pawl_core_fuzz::target(target).expect("target");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in ["seeds", "crashes"] {
        for file in files(&root.join(dir).join(target)) {
            eprintln!("{target}: {}", file.display());
            run(&fs::read(&file).expect("read"));
            n += 1;
        }
    }
    for file in files(&root.join("crashes").join(target).join("open")) {
        let data = fs::read(&file).expect("read");
        let outcome = catch_unwind(AssertUnwindSafe(|| run(&data)));
        assert!(
            outcome.is_err(),
            "{} no longer fails: move it to crashes/{target}/ and update docs/security.md",
            file.display()
        );
        eprintln!("{target}: {} still fails (open finding)", file.display());
    }
    n
}

#[test]
fn frame() {
    assert!(replay("frame") > 0);
}

#[test]
fn request() {
    assert!(replay("request") > 0);
}

#[test]
fn store() {
    assert!(replay("store") > 0);
}

#[test]
fn board() {
    assert!(replay("board") > 0);
}

/// The empty input and a few short ones never fail any target.
#[test]
fn trivial_inputs() {
    for (_, run) in pawl_core_fuzz::TARGETS {
        for data in [&[][..], &[0], &[0xff; 7], &[1, 2, 3, 0, 4]] {
            run(data);
        }
    }
}
