#![no_std]
#![doc = include_str!("../README.md")]

#[cfg(feature = "std")]
extern crate std;

pub mod backup;
pub mod board;
pub mod cometbft;
pub mod digest;
pub mod encoding;
pub mod keys;
pub mod policy;
pub mod protocol;
pub mod request;
#[cfg(feature = "std")]
pub mod sim;
pub mod store;
pub mod watermark;
pub mod yubihsm;
