//! `pawl`: the host bridge (being built).

fn main() {}
