//! The store-maintenance run (`maintenance.sh`): how long a request can wait behind the
//! store's own work on this board. The board image's `NorStore` over the semihosting flash
//! file (256 KiB, N = 16) is driven directly — no signing, so that the region wraps three
//! times in seconds — by requests for 8 marks in turn, each 20 levels above the last, so that
//! every request makes a ceiling durable on its path (the worst case: no reservation helps).
//!
//! * `saturated`: no idle time between requests (a board kept busy): page reclaims land inside
//!   requests, as every reclaim did before idle-time page closing.
//! * `idle`: the board's idle-time work runs between requests, as board glue runs it when no
//!   frame waits: reservations and page closing; a request arriving while a step runs waits
//!   for that step.
//!
//! Per request and per idle step: instructions (SysTick under `-icount`, host flash I/O not
//! counted), flash programs and erases. Prints `MAINT …` lines; run it in an empty directory.

#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use pawl_core::keys::PublicKeyHash;
use pawl_core::request::ChainId;
use pawl_core::store::{FORMAT_VERSION, NorStore, Store};
use pawl_core::watermark::{MarkId, MarkKind};
use pawl_qemu::flash::{self, HostFlash};
use pawl_qemu::otp::QemuGuard;
use pawl_qemu::{fail, init_heap, open_store};

#[path = "../measure.rs"]
mod measure;
use measure::{start_counting, timed};

/// The costliest step seen: instructions, programs and erases it took.
#[derive(Default, Clone, Copy)]
struct Worst {
    instr: u64,
    programs: u64,
    erases: u32,
}

impl Worst {
    fn see(&mut self, instr: u64, programs: u64, erases: u32) {
        // Flash time dominates on real flash: an erase outweighs any instruction count.
        let key = |w: &Worst| (w.erases, w.programs, w.instr);
        let new = Worst {
            instr,
            programs,
            erases,
        };
        if key(&new) > key(self) {
            *self = new;
        }
    }
}

/// One step of idle-time work, its cost seen in `step`; `false` when there was none.
fn idle_step(
    store: &mut NorStore<HostFlash, QemuGuard>,
    step: &mut Worst,
    instructions: &impl Fn(u64) -> u64,
) -> bool {
    let (p0, e0) = (store.programs(), store.wear().pages_erased);
    let (more, t) = timed(|| store.reserve_ahead());
    let Ok(more) = more else { fail("idle work") };
    if more {
        step.see(
            instructions(t),
            store.programs() - p0,
            store.wear().pages_erased - e0,
        );
    }
    more
}

#[entry]
fn main() -> ! {
    init_heap();
    let instructions = start_counting();
    let (mut store, _) = open_store();
    if store.load(&mut |_| Ok(())).is_err() || store.stamp_format(FORMAT_VERSION).is_err() {
        fail("load an empty store (run in an empty directory)");
    }
    let pkh = PublicKeyHash::from_b58("tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx")
        .unwrap_or_else(|_| fail("pkh"));
    let marks: [MarkId; 8] = core::array::from_fn(|i| MarkId {
        chain: ChainId([0x7a, 0x06, 0xa7, i as u8]),
        key: pkh,
        kind: MarkKind::Attestation,
    });
    let pages = flash::PAGES as u32;
    for idle in [false, true] {
        let (mut request, mut step) = (Worst::default(), Worst::default());
        let (mut requests, mut level) = (0u32, 1_000u32);
        let start = store.wear().pages_erased;
        while store.wear().pages_erased < start + 3 * pages {
            let id = &marks[requests as usize % marks.len()];
            if requests % marks.len() as u32 == 0 {
                level += 20;
            }
            let (p0, e0) = (store.programs(), store.wear().pages_erased);
            let (done, t) = timed(|| store.persist_mark(id, level, 0));
            if done.is_err() {
                fail("persist_mark");
            }
            request.see(
                instructions(t),
                store.programs() - p0,
                store.wear().pages_erased - e0,
            );
            requests += 1;
            if idle {
                while idle_step(&mut store, &mut step, &instructions) {}
            }
        }
        hprintln!(
            "MAINT mode={} requests={} erased={} request_instr={} request_programs={} request_erases={} idle_instr={} idle_programs={} idle_erases={}",
            if idle { "idle" } else { "saturated" },
            requests,
            store.wear().pages_erased - start,
            request.instr,
            request.programs,
            request.erases,
            step.instr,
            step.programs,
            step.erases
        );
    }
    hprintln!("MAINT done");
    debug::exit(debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}
