//! Writes the seed corpora under `core/fuzz/seeds/` (`seeds/request/` is read, not written:
//! it holds upstream payloads). Run from `core/fuzz`: `cargo run --bin seedgen`.

use std::fs;
use std::path::Path;

use pawl_core_fuzz::seeds::{self, Seed};

fn write(dir: &Path, seeds: &[Seed]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    for (name, bytes) in seeds {
        fs::write(dir.join(name), bytes)?;
    }
    println!("{}: {} seeds", dir.display(), seeds.len());
    Ok(())
}

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut requests: Vec<Seed> = Vec::new();
    for entry in fs::read_dir(root.join("request"))? {
        let entry = entry?;
        requests.push((
            entry.file_name().to_string_lossy().into_owned(),
            fs::read(entry.path())?,
        ));
    }
    requests.sort();
    write(&root.join("frame"), &seeds::frame_seeds(&requests))?;
    write(&root.join("store"), &seeds::store_seeds())?;
    write(&root.join("board"), &seeds::board_seeds())?;
    Ok(())
}
