//! The virtual board's flash writer: applies flash writes to the backing file in the order
//! they were made, one `fdatasync` each, on a thread of its own, so the board answers while
//! the disk catches up. The file always holds a prefix of the writes — exactly what a power
//! cut leaves on NOR flash — and [`WriteBehind`] tells the store how far the writer has got
//! ([`crate::store::Durability`]).

use core::sync::atomic::{AtomicU64, Ordering};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::vec::Vec;

use crate::store::{Durability, StoreError};

/// How far the writer has got.
#[derive(Debug, Default)]
struct Progress {
    /// Writes on the medium (each flushed).
    settled: u64,
    /// The file failed: nothing after `settled` will reach it.
    failed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    issued: AtomicU64,
    progress: Mutex<Progress>,
    changed: Condvar,
}

/// The flash's end: queues writes for the writer thread.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    queue: Option<mpsc::Sender<(u64, Vec<u8>)>>,
    thread: Option<JoinHandle<()>>,
}

/// The store's end: how far the writes have got ([`Durability`]). The default one has no
/// writer behind it: nothing is ever pending.
#[derive(Clone, Debug, Default)]
pub struct WriteBehind(Arc<Shared>);

impl Writer {
    /// Start a writer thread for `file`.
    pub(crate) fn start(file: File) -> std::io::Result<(Writer, WriteBehind)> {
        let shared = Arc::new(Shared::default());
        let (queue, jobs) = mpsc::channel::<(u64, Vec<u8>)>();
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("pawl-flash-writer".into())
            .spawn(move || {
                for (offset, bytes) in jobs {
                    let done = file
                        .write_all_at(&bytes, offset)
                        .and_then(|()| file.sync_data());
                    let mut progress = match theirs.progress.lock() {
                        Ok(p) => p,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    match done {
                        Ok(()) => progress.settled += 1,
                        Err(_) => progress.failed = true,
                    }
                    let failed = progress.failed;
                    drop(progress);
                    theirs.changed.notify_all();
                    if failed {
                        break;
                    }
                }
            })?;
        Ok((
            Writer {
                shared: Arc::clone(&shared),
                queue: Some(queue),
                thread: Some(thread),
            },
            WriteBehind(shared),
        ))
    }

    /// Queue `bytes` for `offset` (the flash image already holds them).
    pub(crate) fn push(&self, offset: u64, bytes: Vec<u8>) -> Result<(), ()> {
        self.shared.issued.fetch_add(1, Ordering::SeqCst);
        let sent = self.queue.as_ref().map(|q| q.send((offset, bytes)));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => {
                // The writer stopped (the file failed): this write will never land.
                if let Ok(mut p) = self.shared.progress.lock() {
                    p.failed = true;
                }
                Err(())
            }
        }
    }
}

impl Drop for Writer {
    /// Let the writer finish what was queued (a clean stop loses nothing), then stop it.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Durability for WriteBehind {
    fn issued(&self) -> u64 {
        self.0.issued.load(Ordering::SeqCst)
    }

    fn is_settled(&self, point: u64) -> bool {
        self.0.progress.lock().is_ok_and(|p| p.settled >= point)
    }

    fn settle(&mut self, point: u64) -> Result<(), StoreError> {
        let mut progress = self.0.progress.lock().map_err(|_| StoreError::Io)?;
        while progress.settled < point && !progress.failed {
            progress = self.0.changed.wait(progress).map_err(|_| StoreError::Io)?;
        }
        if progress.settled >= point {
            Ok(())
        } else {
            Err(StoreError::Io)
        }
    }
}
