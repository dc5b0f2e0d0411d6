//! The plain-cargo build of each target binary: run the target on every file (or every file
//! in every directory) named on the command line, and say which passed.

use std::fs;
use std::path::{Path, PathBuf};

fn files(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        let mut out: Vec<PathBuf> = fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        out.retain(|p| p.is_file());
        out.sort();
        out
    } else {
        vec![path.to_path_buf()]
    }
}

/// Replay `target` on the files named in the arguments (a panic is the finding, printed
/// with its location by the default hook).
pub fn main(target: fn(&[u8])) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!(
            "usage: TARGET FILE_OR_DIR… (a plain build replays inputs; `core/fuzz/run` fuzzes)"
        );
        std::process::exit(2);
    }
    for arg in args {
        for file in files(Path::new(&arg)) {
            let data = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            target(&data);
            println!("ok {} ({} bytes)", file.display(), data.len());
        }
    }
}
