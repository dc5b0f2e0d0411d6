//! `pawl-sim`: simulators (being built).

fn main() {}
