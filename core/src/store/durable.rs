//! When a flash write reaches its medium.
//!
//! On a board, programming and erasing NOR flash finish before the call returns: a write is
//! durable when it returns ([`Synchronous`]). The virtual board's flash is a host file, and
//! flushing a file (`fdatasync`) takes 0.1–3 ms: there a background writer applies the writes
//! to the file in order, one flush each, while the board goes on answering
//! (`crate::sim::WriteBehind`). The file then always holds a prefix of the writes — what a
//! power cut leaves on NOR flash — and the store asks, before it relies on a record, whether
//! the writer has got that far.
//!
//! The store relies on a record only once it is settled: every write except an idle-time
//! ceiling reservation waits for it at once; a reservation is waited for by the first
//! signature that needs it, which at the chain's pace finds it long settled
//! (`docs/design.md` §8).

use super::StoreError;

/// Where a flash's writes are on their way to the medium.
pub trait Durability {
    /// A point marking every write issued so far (grows with each write).
    fn issued(&self) -> u64;
    /// Whether every write up to `point` is on the medium (does not wait).
    fn is_settled(&self, point: u64) -> bool;
    /// Wait until every write up to `point` is on the medium; [`StoreError::Io`] if the
    /// medium failed on the way.
    fn settle(&mut self, point: u64) -> Result<(), StoreError>;
}

/// A flash whose writes are durable when they return (every board's).
#[derive(Clone, Copy, Debug, Default)]
pub struct Synchronous;

impl Durability for Synchronous {
    fn issued(&self) -> u64 {
        0
    }

    fn is_settled(&self, _: u64) -> bool {
        true
    }

    fn settle(&mut self, _: u64) -> Result<(), StoreError> {
        Ok(())
    }
}
