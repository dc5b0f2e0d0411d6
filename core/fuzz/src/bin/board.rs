//! Fuzz target `board` (`pawl_core_fuzz::board::run`). Built by `cargo afl build` it is AFL's
//! persistent-mode harness; built by plain cargo it replays the files named on its command
//! line (e.g. a crash from `out/board/default/crashes/`).

#[cfg(fuzzing)]
fn main() {
    afl::fuzz!(|data: &[u8]| pawl_core_fuzz::board::run(data));
}

#[cfg(not(fuzzing))]
fn main() {
    pawl_core_fuzz::replay::main(pawl_core_fuzz::board::run);
}
