//! Fuzz target `request` (`pawl_core_fuzz::request::run`). Built by `cargo afl build` it is AFL's
//! persistent-mode harness; built by plain cargo it replays the files named on its command
//! line (e.g. a crash from `out/request/default/crashes/`).

#[cfg(fuzzing)]
fn main() {
    afl::fuzz!(|data: &[u8]| pawl_core_fuzz::request::run(data));
}

#[cfg(not(fuzzing))]
fn main() {
    pawl_core_fuzz::replay::main(pawl_core_fuzz::request::run);
}
