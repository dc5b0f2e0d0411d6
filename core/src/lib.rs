#![no_std]
#![doc = include_str!("../README.md")]

pub mod board;
pub mod digest;
pub mod encoding;
pub mod keys;
pub mod policy;
pub mod protocol;
pub mod request;
pub mod store;
pub mod watermark;
