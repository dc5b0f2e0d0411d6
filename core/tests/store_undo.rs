//! The flash store's slots and undo records under power cuts and failing guards: what the
//! hostile-host fuzzer found (`core/tests/hostile.rs`), each at its cause in
//! `core/src/store/nor/` and `core/src/store/resets.rs`.
//!
//! * Power cuts between a mark's name and its first ceiling leave name-only slots; they must
//!   not fill the table for good (fuzzer seed 0xb, step 727: `Store(Full)` with 62 of 64 marks).
//! * `ForgetWatermarks` forgets all of a key's doomed marks or none, whatever the cut point
//!   (seed 0x829a6dc2a9c0b3a6, step 636684: a cut between two forget records).
//! * A rollback guard that fails after the record is durable: the board answers what the
//!   flash now holds, and writes nothing more until the guard catches up.
//! * A store image written before the forget table (per-index forget records, a lowering, a
//!   name-only slot) still loads, and its name-only slot is reclaimed.
#![allow(clippy::cast_possible_truncation)]

mod support;

use core::cell::Cell;
use std::rc::Rc;

use pawl_core::board::{Board, MAX_MARKS};
use pawl_core::keys::PublicKeyHash;
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Refusal, Request, Response};
use pawl_core::request::ChainId;
use pawl_core::sim::SimFlash;
use pawl_core::sim::flash::PAGE;
use pawl_core::store::{
    BoardKey, NorStore, NorStoreConfig, Record, RollbackGuard, Store, StoreError,
};
use pawl_core::watermark::{MarkId, MarkKind};
use support::board::{INFO, SharedButton, TestEntropy, attestation, import, sign};
use support::power::{BOARD_KEY, SharedGuard};

const TZ1: &str = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd";
const MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];
const PAGES: usize = 8;
const AHEAD: u32 = 16;

type Nor = NorStore<SimFlash, SharedGuard>;

fn store(flash: SimFlash, pages: usize) -> Nor {
    let config = NorStoreConfig {
        region: 0..(pages * PAGE) as u32,
        ceiling_ahead: AHEAD,
    };
    NorStore::new(
        flash,
        config,
        &BoardKey::new(BOARD_KEY),
        SharedGuard::default(),
    )
    .expect("config")
}

/// Load `s`; the marks it reports.
fn marks(s: &mut impl Store) -> Vec<(MarkId, u32, u32)> {
    let mut out = Vec::new();
    s.load(&mut |r| {
        if let Record::Mark { id, level, round } = r {
            out.push((id, level, round));
        }
        Ok(())
    })
    .expect("loads");
    out.sort();
    out
}

fn mark(n: u32) -> MarkId {
    MarkId {
        chain: ChainId(n.to_be_bytes()),
        key: PublicKeyHash::from_b58("tz1LggX2HUdvJ1tF4Fvv8fjsrzLeW4Jr9t2Q").expect("pkh"),
        kind: MarkKind::Attestation,
    }
}

/// The image a power cut leaves when it falls after the name record of `id` and before its
/// first ceiling: found by cutting at each flash step in turn.
fn orphan(image: &[u8], id: &MarkId) -> Vec<u8> {
    for k in 0..400 {
        let mut flash = SimFlash::from_image(image.to_vec());
        flash.cut_after(k, false);
        let mut s = store(flash, PAGES);
        let before = marks(&mut s);
        let seq = s.seq();
        assert!(s.persist_mark(id, 10, 0).is_err(), "cut at step {k}");
        let after = s.into_flash().image().to_vec();
        let mut s = store(SimFlash::from_image(after.clone()), PAGES);
        let now = marks(&mut s);
        if s.seq() == seq + 1 {
            assert_eq!(now, before, "a name alone is no mark");
            return after;
        }
    }
    panic!("no cut point between a name and its first ceiling");
}

/// Finding 1: name-only slots left by power cuts are reused. Three cuts between a name and
/// its ceiling, then 64 other marks: all 64 fit (before the fix the 62nd was `Full`, and only
/// an erase cleared it), and survive a reboot; the table is then full of real marks only.
#[test]
fn power_cuts_between_a_name_and_its_ceiling_do_not_fill_the_table() {
    let mut image = SimFlash::new(PAGES).image().to_vec();
    for n in 0..3 {
        image = orphan(&image, &mark(1_000 + n));
    }
    let mut s = store(SimFlash::from_image(image), PAGES);
    assert!(marks(&mut s).is_empty());
    for n in 0..MAX_MARKS as u32 {
        s.persist_mark(&mark(n), 100 + n, 0)
            .unwrap_or_else(|e| panic!("mark {n} of {MAX_MARKS}: {e:?}"));
    }
    let mut s = store(s.into_flash(), PAGES);
    let loaded = marks(&mut s);
    assert_eq!(loaded.len(), MAX_MARKS);
    for (n, (id, level, _)) in loaded.iter().enumerate() {
        assert_eq!((*id, *level), (mark(n as u32), 100 + n as u32 + AHEAD));
    }
    assert_eq!(s.persist_mark(&mark(1_000), 5, 0), Err(StoreError::Full));
}

/// Finding 1, the other way out: the mark a name-only slot was written for takes it again,
/// with its name written again before the ceiling, and loads.
#[test]
fn a_name_only_slot_is_taken_by_its_own_mark() {
    let image = orphan(SimFlash::new(PAGES).image(), &mark(7));
    let mut s = store(SimFlash::from_image(image), PAGES);
    assert!(marks(&mut s).is_empty());
    s.persist_mark(&mark(7), 50, 0).expect("its own mark");
    let mut s = store(s.into_flash(), PAGES);
    assert_eq!(marks(&mut s), vec![(mark(7), 50 + AHEAD, u32::MAX)]);
}

type UBoard = Board<Nor, TestEntropy, SharedButton>;

fn boot(flash: SimFlash, button: &SharedButton) -> UBoard {
    Board::open(
        store(flash, PAGES),
        TestEntropy(3),
        button.clone(),
        Mode::Provisioning,
        INFO,
    )
}

fn pinned() -> Policy {
    let mut p = Policy::default();
    p.chains.push(ChainId(MAINNET)).expect("room");
    p
}

fn board_marks(b: &UBoard) -> Vec<String> {
    b.watermarks().iter().map(|e| format!("{e:?}")).collect()
}

/// Finding 2: a forget of four marks, cut by the power at every flash step (clean and torn):
/// a refusal leaves the board's marks as they were, and the image the cut leaves holds all
/// four or none — never some. Before the fix, each mark was its own record and a cut between
/// two of them left a key with part of its marks forgotten.
#[test]
fn a_forget_of_several_marks_is_all_or_none_at_every_cut_point() {
    let button = SharedButton::default();
    button.press.set(true);
    let mut b = boot(SimFlash::new(PAGES), &button);
    let (pkh, _) = import(&mut b, TZ1, Policy::default());
    for i in 0..4u32 {
        let chain = (0x5000_0000 + i).to_be_bytes();
        sign(&mut b, &pkh, &attestation(chain, 1_000 + i, 0, 1)).expect("invented chain");
    }
    sign(&mut b, &pkh, &attestation(MAINNET, 200, 0, 1)).expect("mainnet");
    assert!(matches!(
        b.handle(Request::SetPolicy {
            pkh,
            policy: pinned()
        }),
        Response::KeyInfo(_)
    ));
    let image = b.into_store().into_flash().image().to_vec();
    let all = board_marks(&boot(SimFlash::from_image(image.clone()), &button));
    assert_eq!(all.len(), 5);
    let mut outcomes = [0u32; 2];
    for torn in [false, true] {
        for k in 0.. {
            let mut flash = SimFlash::from_image(image.clone());
            flash.cut_after(k, torn);
            let mut b = boot(flash, &button);
            let answer = b.handle(Request::ForgetWatermarks { pkh });
            if answer == Response::Done {
                assert_eq!(board_marks(&b).len(), 1);
                let b = boot(b.into_store().into_flash(), &button);
                assert_eq!(board_marks(&b).len(), 1, "done is durable");
                break;
            }
            assert_eq!(answer, Response::Refused(Refusal::Store(StoreError::Io)));
            assert_eq!(
                board_marks(&b),
                all,
                "cut at {k}: a refusal changes nothing"
            );
            let after = b.into_store().into_flash().image().to_vec();
            let b = boot(SimFlash::from_image(after), &button);
            let left = board_marks(&b);
            match left.len() {
                5 => assert_eq!(left, all),
                1 => outcomes[1] += 1,
                n => panic!("cut at step {k} (torn {torn}): {n} of 5 marks left: {left:?}"),
            }
            outcomes[0] += u32::from(left.len() == 5);
            assert!(k < 2_000, "the forget never completes");
        }
    }
    assert!(outcomes[0] > 0, "some cuts leave every mark");
}

/// A rollback guard kept outside the flash that fails to advance while `fail` is set.
#[derive(Clone, Default)]
struct FlakyGuard {
    value: Rc<Cell<u32>>,
    fail: Rc<Cell<bool>>,
}

impl RollbackGuard for FlakyGuard {
    fn floor(&mut self) -> Result<u32, StoreError> {
        Ok(self.value.get())
    }

    fn advance(&mut self, seq: u32) -> Result<(), StoreError> {
        if self.fail.get() {
            return Err(StoreError::Io);
        }
        self.value.set(self.value.get().max(seq));
        Ok(())
    }
}

type GBoard = Board<NorStore<SimFlash, FlakyGuard>, TestEntropy, SharedButton>;

fn guarded(flash: SimFlash, guard: &FlakyGuard) -> GBoard {
    let config = NorStoreConfig {
        region: 0..(PAGES * PAGE) as u32,
        ceiling_ahead: AHEAD,
    };
    let s = NorStore::new(flash, config, &BoardKey::new(BOARD_KEY), guard.clone()).expect("cfg");
    Board::open(
        s,
        TestEntropy(4),
        SharedButton::default(),
        Mode::Provisioning,
        INFO,
    )
}

fn policy_of(b: &mut GBoard) -> Policy {
    match b.handle(Request::ListKeys) {
        Response::Keys(k) => k[0].policy.clone(),
        other => panic!("{other:?}"),
    }
}

/// Finding 3, the one path where the board answered a refusal with its power on and the write
/// took effect after a reboot: the key record was durable, then the rollback guard failed to
/// advance, and `SetPolicy` was refused `Store(Io)` — yet the next boot loaded the new policy.
/// Now the write answers what the flash holds (the guard lagging one record behind, as after a
/// power cut between the two), and while the guard still fails the next write is refused
/// before anything reaches the flash.
#[test]
fn a_failing_guard_never_turns_a_durable_write_into_a_refusal() {
    let guard = FlakyGuard::default();
    let mut b = guarded(SimFlash::new(PAGES), &guard);
    let (pkh, _) = import(&mut b, TZ1, Policy::default());
    guard.fail.set(true);
    let answer = b.handle(Request::SetPolicy {
        pkh,
        policy: pinned(),
    });
    assert!(matches!(answer, Response::KeyInfo(_)), "{answer:?}");
    assert_eq!(policy_of(&mut b), pinned());
    let seq = b.store().seq();
    assert_eq!(guard.value.get(), seq - 1, "the guard lags one record");

    // The guard still fails: refused, and nothing written.
    let answer = b.handle(Request::SetPolicy {
        pkh,
        policy: Policy::default(),
    });
    assert_eq!(answer, Response::Refused(Refusal::Store(StoreError::Io)));
    assert_eq!(b.store().seq(), seq, "nothing written");
    let mut b = guarded(b.into_store().into_flash(), &guard);
    assert_eq!(
        policy_of(&mut b),
        pinned(),
        "the answered write holds, the refused one not"
    );

    // The guard recovers: it catches up first, then the write goes through.
    guard.fail.set(false);
    let answer = b.handle(Request::SetPolicy {
        pkh,
        policy: Policy::default(),
    });
    assert!(matches!(answer, Response::KeyInfo(_)), "{answer:?}");
    assert_eq!(guard.value.get(), b.store().seq());
    let mut b = guarded(b.into_store().into_flash(), &guard);
    assert_eq!(policy_of(&mut b), Policy::default());
}

/// A store image written by the store before the forget table existed
/// (`fixtures/legacy-undo.img`, 4 pages, board key `[7; 32]`, N = 16): a tz1 key signed
/// attestations on chains 01010101 and 02020202 and on mainnet (100, then a burn at 2³¹−1);
/// a power cut left a name-only slot for chain 03030303; the key was pinned to mainnet, its
/// two other marks forgotten (two per-index forget records), its mainnet mark lowered to
/// (100, 0), then a block and a preattestation at 200 signed on mainnet (reusing the
/// forgotten indices). It loads as it did, and keeps working: the name-only slot is reused
/// and more forgets go into the table.
#[test]
fn a_store_from_before_the_forget_table_loads_and_keeps_working() {
    let image = legacy_image();
    let button = SharedButton::default();
    let config = NorStoreConfig {
        region: 0..(4 * PAGE) as u32,
        ceiling_ahead: AHEAD,
    };
    let open = |flash: SimFlash| -> UBoard {
        let s = NorStore::new(
            flash,
            config.clone(),
            &BoardKey::new(BOARD_KEY),
            SharedGuard::default(),
        )
        .expect("config");
        Board::open(s, TestEntropy(5), button.clone(), Mode::Provisioning, INFO)
    };
    let mut b = open(SimFlash::from_image(image));
    let expect = |b: &UBoard| {
        let got: Vec<(MarkKind, u32, u32)> = b
            .watermarks()
            .iter()
            .map(|(id, m)| {
                assert_eq!(id.chain, ChainId(MAINNET));
                (id.kind, m.level, m.round)
            })
            .collect();
        got
    };
    let mut want = vec![
        (MarkKind::Attestation, 100, 0),
        (MarkKind::Block, 216, u32::MAX),
        (MarkKind::Preattestation, 216, u32::MAX),
    ];
    assert_eq!(expect(&b), want);
    let pkh = b.watermarks().iter().next().expect("a mark").0.key;
    assert!(sign(&mut b, &pkh, &attestation(MAINNET, 100, 0, 9)).is_err());
    sign(&mut b, &pkh, &attestation(MAINNET, 101, 0, 9)).expect("above the lowering");
    want[0] = (MarkKind::Attestation, 101, 0);

    // A forget now goes into the table, on top of the legacy per-index records.
    assert!(matches!(
        b.handle(Request::SetPolicy {
            pkh,
            policy: Policy::default()
        }),
        Response::KeyInfo(_)
    ));
    for c in [[4u8; 4], [5u8; 4]] {
        sign(&mut b, &pkh, &attestation(c, 9, 0, 1)).expect("another chain");
    }
    assert!(matches!(
        b.handle(Request::SetPolicy {
            pkh,
            policy: pinned()
        }),
        Response::KeyInfo(_)
    ));
    button.press.set(true);
    assert_eq!(b.handle(Request::ForgetWatermarks { pkh }), Response::Done);
    assert_eq!(expect(&b), want);
    let b = open(b.into_store().into_flash());
    want[0] = (MarkKind::Attestation, 101 + AHEAD, u32::MAX);
    assert_eq!(
        expect(&b),
        want,
        "after a reboot: the legacy forgets and the table both hold"
    );

    // The name-only slot of the old image is reclaimed once the table has no other room: its
    // three marks and 61 new ones fit.
    let mut s = NorStore::new(
        SimFlash::from_image(legacy_image()),
        config,
        &BoardKey::new(BOARD_KEY),
        SharedGuard::default(),
    )
    .expect("config");
    assert_eq!(marks(&mut s).len(), 3);
    for n in 0..MAX_MARKS as u32 - 3 {
        s.persist_mark(&mark(n), 100, 0)
            .unwrap_or_else(|e| panic!("new mark {n}: {e:?}"));
    }
    assert_eq!(marks(&mut s).len(), MAX_MARKS);
}

fn legacy_image() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/legacy-undo.img"
    ))
    .expect("fixture")
}

/// A flash whose `lie_at`-th program call (counted from its creation) programs the bytes and
/// then reports a failure: a write the store is told failed, complete on flash all the same.
struct LyingFlash {
    inner: SimFlash,
    writes: u64,
    lie_at: Option<u64>,
}

impl embedded_storage_async::nor_flash::ErrorType for LyingFlash {
    type Error = pawl_core::sim::flash::SimFlashError;
}

impl embedded_storage_async::nor_flash::ReadNorFlash for LyingFlash {
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.inner.read(offset, bytes).await
    }

    fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

impl embedded_storage_async::nor_flash::NorFlash for LyingFlash {
    const WRITE_SIZE: usize = pawl_core::sim::flash::WORD;
    const ERASE_SIZE: usize = PAGE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.inner.erase(from, to).await
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.inner.write(offset, bytes).await?;
        self.writes += 1;
        if Some(self.writes) == self.lie_at {
            return Err(pawl_core::sim::flash::SimFlashError::File);
        }
        Ok(())
    }
}

type LBoard = Board<NorStore<LyingFlash, SharedGuard>, TestEntropy, SharedButton>;

fn lying(image: &[u8], lie_at: Option<u64>, button: &SharedButton) -> LBoard {
    let flash = LyingFlash {
        inner: SimFlash::from_image(image.to_vec()),
        writes: 0,
        lie_at,
    };
    let config = NorStoreConfig {
        region: 0..(PAGES * PAGE) as u32,
        ceiling_ahead: AHEAD,
    };
    let s = NorStore::new(
        flash,
        config,
        &BoardKey::new(BOARD_KEY),
        SharedGuard::default(),
    )
    .expect("config");
    Board::open(s, TestEntropy(6), button.clone(), Mode::Provisioning, INFO)
}

fn image_of(b: LBoard) -> Vec<u8> {
    b.into_store().into_flash().inner.image().to_vec()
}

/// Boot on `image`, `prepare` (signing since this boot, so the board's marks sit below the
/// ceilings its store holds), then ask `request` with the flash lying at each program call
/// in turn, until the board answers a store refusal although the record landed (`landed`
/// says so of the image after a reboot). Returns a board that answered just so, still
/// running, its flash honest from then on (the lie was one program call).
fn refused_but_landed<'a>(
    image: &[u8],
    button: &SharedButton,
    prepare: impl Fn(&mut LBoard),
    request: impl Fn() -> Request<'a>,
    landed: impl Fn(&LBoard) -> bool,
) -> LBoard {
    let writes = {
        let mut b = lying(image, None, button);
        prepare(&mut b);
        b.into_store().into_flash().writes
    };
    for k in writes + 1..writes + 64 {
        let mut probe = lying(image, Some(k), button);
        prepare(&mut probe);
        let answer = probe.handle(request());
        assert_ne!(
            answer,
            Response::Done,
            "the lie came after the write (k = {k})"
        );
        assert!(
            matches!(answer, Response::Refused(Refusal::Store(_))),
            "{answer:?}"
        );
        if landed(&lying(&image_of(probe), None, button)) {
            let mut b = lying(image, Some(k), button);
            prepare(&mut b);
            assert_eq!(b.handle(request()), answer);
            return b;
        }
    }
    panic!("no program call whose failure leaves the record complete");
}

/// After a store refusal whose record landed anyway (a flash that reports a failure after
/// programming), the store acts on no guess. A forget that landed: the mark the board still
/// holds is written again (name first) before anything above it is signed, so after a
/// reboot the board does not sign that level again; the store loads healthy.
#[test]
fn a_forget_that_failed_but_landed_never_lets_a_level_be_signed_twice() {
    let button = SharedButton::default();
    button.press.set(true);
    let mut b = lying(SimFlash::new(PAGES).image(), None, &button);
    let (pkh, _) = import(&mut b, TZ1, Policy::default());
    let other = [5, 5, 5, 5];
    sign(&mut b, &pkh, &attestation(other, 10, 0, 1)).expect("other chain");
    sign(&mut b, &pkh, &attestation(MAINNET, 200, 0, 1)).expect("mainnet");
    let image = image_of(b);
    // After the reboot the marks are the ceilings (26, 216): sign above, then pin the key.
    let prepare = |b: &mut LBoard| {
        sign(b, &pkh, &attestation(other, 27, 0, 1)).expect("other chain");
        assert!(matches!(
            b.handle(Request::SetPolicy {
                pkh,
                policy: pinned()
            }),
            Response::KeyInfo(_)
        ));
    };
    let mut b = refused_but_landed(
        &image,
        &button,
        prepare,
        || Request::ForgetWatermarks {
            pkh: PublicKeyHash::from_b58("tz1LggX2HUdvJ1tF4Fvv8fjsrzLeW4Jr9t2Q").expect("pkh"),
        },
        |after| after.watermarks().len() == 1,
    );
    assert_eq!(
        b.watermarks().len(),
        2,
        "refused: the board still holds both marks"
    );
    assert!(matches!(
        b.handle(Request::SetPolicy {
            pkh,
            policy: Policy::default()
        }),
        Response::KeyInfo(_)
    ));
    // Below the ceiling (43) the store held before the forget landed.
    sign(&mut b, &pkh, &attestation(other, 28, 0, 1)).expect("above the mark it holds");
    let mut b = lying(&image_of(b), None, &button);
    assert!(
        sign(&mut b, &pkh, &attestation(other, 28, 0, 2)).is_err(),
        "level 28 was signed: never again"
    );
    assert_eq!(b.watermarks().len(), 2, "healthy, both marks");
}

/// The same for a lowering that failed but landed: the board still holds the mark where it
/// was and signs above it only after a new ceiling is durable.
#[test]
fn a_lowering_that_failed_but_landed_never_lets_a_level_be_signed_twice() {
    let button = SharedButton::default();
    button.press.set(true);
    let mut b = lying(SimFlash::new(PAGES).image(), None, &button);
    let (pkh, _) = import(&mut b, TZ1, pinned());
    sign(&mut b, &pkh, &attestation(MAINNET, 200, 0, 1)).expect("mainnet");
    let image = image_of(b);
    let lower = move || Request::LowerWatermark {
        chain: ChainId(MAINNET),
        pkh: PublicKeyHash::from_b58("tz1LggX2HUdvJ1tF4Fvv8fjsrzLeW4Jr9t2Q").expect("pkh"),
        kind: MarkKind::Attestation,
        level: 100,
        round: 0,
    };
    // After the reboot the mark is the ceiling (216): sign above it (ceiling 233).
    let prepare = |b: &mut LBoard| {
        sign(b, &pkh, &attestation(MAINNET, 217, 0, 1)).expect("mainnet");
    };
    let mut b = refused_but_landed(&image, &button, prepare, lower, |after| {
        after
            .watermarks()
            .iter()
            .any(|(_, m)| (m.level, m.round) == (100, 0))
    });
    sign(&mut b, &pkh, &attestation(MAINNET, 218, 0, 1)).expect("above the mark it holds");
    let mut b = lying(&image_of(b), None, &button);
    assert!(
        sign(&mut b, &pkh, &attestation(MAINNET, 218, 0, 2)).is_err(),
        "level 218 was signed: never again"
    );
}

/// A new mark's name that failed but landed: its slot stays held, so the next new mark is
/// named under another index, and the store loads healthy (two names under one index would
/// be damage: a store that refuses every signature).
#[test]
fn a_name_that_failed_but_landed_keeps_its_index() {
    let button = SharedButton::default();
    let mut b = lying(SimFlash::new(PAGES).image(), None, &button);
    let (pkh, _) = import(&mut b, TZ1, Policy::default());
    let image = image_of(b);
    let payload = attestation([6, 6, 6, 6], 10, 0, 1);
    let first = || Request::Sign {
        pkh: PublicKeyHash::from_b58("tz1LggX2HUdvJ1tF4Fvv8fjsrzLeW4Jr9t2Q").expect("pkh"),
        version: pawl_core::keys::SigningVersion::default(),
        payload: &payload,
    };
    // Landed: the name is on flash (one record more than before), no mark.
    let seq = lying(&image, None, &button).store().seq();
    let mut b = refused_but_landed(
        &image,
        &button,
        |_| {},
        first,
        |after| after.store().seq() == seq + 1 && after.watermarks().is_empty(),
    );
    sign(&mut b, &pkh, &attestation([7, 7, 7, 7], 10, 0, 1)).expect("another new mark");
    let mut b = lying(&image_of(b), None, &button);
    match b.handle(Request::Status) {
        Response::Status(s) => assert_eq!(s.store, pawl_core::protocol::StoreHealth::Ok),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.watermarks().len(), 1);
    sign(&mut b, &pkh, &attestation([6, 6, 6, 6], 30, 0, 1)).expect("the first chain too");
}
