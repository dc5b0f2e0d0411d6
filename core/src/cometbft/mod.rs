//! CometBFT sign bytes: the board's own reader of the canonical protobuf messages a CometBFT
//! node asks a privval signer to sign ([`canonical`]), over a minimal protobuf wire reader.
//!
//! Hand-written rather than `prost`: the board needs three fixed messages read from a borrowed
//! slice with no allocation, and strictness `prost` does not give (field order, duplicates,
//! over-long varints). The rules that use it are in the board's `cometbft` module.

pub mod canonical;
mod wire;

pub use canonical::{Extension, MAX_ROUND, Signable, extension, proposal, vote};
