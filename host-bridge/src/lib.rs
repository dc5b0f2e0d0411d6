//! pawl's host bridge: serves the octez-signer HTTP API and talks to the board.
//!
//! ```text
//!  octez-baker / octez-client / Taquito          pawl keys … / pawl device info
//!          │ HTTP (http)                               │ control socket (control)
//!          ▼                                           ▼
//!   auth ─► http handlers ─► boards (by pkh) ─► link per board (one thread, pipelined
//!                                          │    frames, reconnects)
//!                                          │ Port: serial | control socket | virtual board
//!                                          ▼
//!                                     the boards (pawl-core decides everything)
//! ```
//!
//! The bridge never decides whether something may be signed: policy and watermark live in
//! the board. It decides who may ask (authentication, IP allow-list), carries requests,
//! maps the board's answers to Octez's HTTP shapes, logs and counts.

pub mod auth;
pub mod boards;
pub mod cometbft;
pub mod commands;
pub mod config;
pub mod control;
pub mod device;
pub mod health;
pub mod hsm_exchange;
pub mod http;
pub mod keyring;
pub mod link;
pub mod metrics;
pub mod migrate;
pub mod reload;
pub mod signer;
pub mod socket;
pub mod tls;
pub mod yubihsm;
