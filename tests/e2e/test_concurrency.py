"""Many clients at once, and a board killed (kill -9) in the middle of a storm."""

import os
import threading
import time

import pytest

import tezos
from conftest import KEY_SPECS, make_stack

CHAIN = tezos.TEST_CHAIN


def post_all(bridge, pkh, payloads, timeout=20.0):
    """Send every payload at the same instant from its own thread and connection."""
    results = [None] * len(payloads)
    barrier = threading.Barrier(len(payloads))

    def client(i):
        barrier.wait(timeout=30)
        try:
            results[i] = bridge.sign(pkh, payloads[i], timeout=timeout)
        except Exception as e:  # a timeout is a result too
            results[i] = (None, repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout + 40)
    return results


@pytest.mark.parametrize("name", ["tz1", "tz4"])
def test_64_clients_same_level_and_round(bridge, keys, levels, name):
    """64 different attestations for one (level, round) at once: exactly one is signed."""
    key, level = keys[name], levels.take()
    payloads = [tezos.attestation(key.curve, CHAIN, level, 0, slot=i) for i in range(64)]
    results = post_all(bridge, key.pkh, payloads)
    statuses = [r[0] for r in results]
    winners = [i for i, s in enumerate(statuses) if s == 200]
    assert len(winners) == 1, f"statuses: {sorted(statuses, key=str)}"
    assert statuses.count(409) == 63, f"statuses: {sorted(statuses, key=str)}"
    w = winners[0]
    signature = results[w][1]["signature"]
    tezos.verify(key.pk, signature, payloads[w])
    # The winner's identical retry gets the same signature; every loser stays refused.
    status, body = bridge.sign(key.pkh, payloads[w])
    assert status == 200 and body["signature"] == signature
    status, _ = bridge.sign(key.pkh, payloads[(w + 1) % 64])
    assert status == 409


STORM_SPECS = [s for s in KEY_SPECS if s.name in ("tz1", "tz4")]


@pytest.fixture
def storm_stack(bins, tmp_root):
    stack, keys = make_stack(bins, tmp_root, f"storm-{os.getpid()}", STORM_SPECS)
    yield stack, keys
    stack.stop()


def test_kill9_mid_storm_then_restart(storm_stack):
    """16 clients sign attestations and blocks at increasing levels; the board process is killed
    with SIGKILL mid-storm and restarted on the same home (new pty, same device path). Nothing at
    or below a mark whose signature a client received may be signed again."""
    stack, keys = storm_stack
    bridge = stack.bridge
    lock = threading.Lock()
    next_level = iter(range(10, 10_000_000))
    acked: dict[tuple[str, str], tuple[int, bytes, str]] = {}  # (key, kind) → level, payload, sig
    outcomes: dict[object, int] = {}
    stop = threading.Event()

    def client(i):
        key = keys["tz1" if i % 2 == 0 else "tz4"]
        kind = "block" if i % 4 < 2 else "attestation"
        while not stop.is_set():
            with lock:
                level = next(next_level)
            payload = (tezos.block(CHAIN, level, 0) if kind == "block"
                       else tezos.attestation(key.curve, CHAIN, level, 0, slot=i))
            try:
                status, body = bridge.sign(key.pkh, payload, timeout=10)
            except Exception:
                status, body = None, None
            with lock:
                outcomes[status] = outcomes.get(status, 0) + 1
                if status == 200:
                    best = acked.get((key.name, kind))
                    if best is None or level > best[0]:
                        acked[(key.name, kind)] = (level, payload, body["signature"])
            if status != 200:
                time.sleep(0.01)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(16)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    stack.sim.kill9()  # power cut, mid-storm
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert outcomes.get(200, 0) > 0, f"nothing was signed before the kill: {outcomes}"
    assert len(acked) == 4, f"every (key, kind) got a signature before the kill: {acked.keys()}"
    for (name, _), (level, payload, sig) in acked.items():
        tezos.verify(keys[name].pk, sig, payload)

    stack.restart_sim()
    # The bridge must find the restarted board at the same device path.
    deadline = time.monotonic() + 30
    probe = keys["tz1"]
    status, body = None, None
    while time.monotonic() < deadline:
        try:
            status, body = bridge.sign(probe.pkh, tezos.attestation("ed", CHAIN, 1, 0),
                                       timeout=10)
        except OSError as e:  # the bridge process itself must survive the board's death
            status, body = None, repr(e)
        if status not in (None, 502, 503, 504):
            break
        time.sleep(0.25)
    assert status not in (None, 502, 503, 504), \
        f"the bridge did not reach the restarted board within 30 s: {status} {body!r}"
    for name in ("tz1", "tz4"):
        status, body = bridge.public_key(keys[name].pkh)
        if status == 404:
            pytest.xfail("the virtual board is not yet persistent: its keys are gone after "
                         "kill -9 and restart (needs the file-backed store)")
        assert status == 200 and body["public_key"] == keys[name].pk, (status, body)

    # At or below every acknowledged mark: refused.
    for (name, kind), (level, payload, sig) in sorted(acked.items()):
        key = keys[name]
        if kind == "block":
            again = [tezos.block(CHAIN, level, 0), tezos.block(CHAIN, level - 1, 3)]
        else:
            again = [tezos.attestation(key.curve, CHAIN, level, 0, slot=99),
                     tezos.attestation(key.curve, CHAIN, level - 1, 5, slot=99)]
        for p in again:
            status, body = bridge.sign(key.pkh, p)
            if status == 404:
                pytest.xfail("the virtual board is not yet persistent (unknown key after "
                             "restart)")
            assert status == 409, (f"{name} {kind} at level {level} signed again after the "
                                   f"restart: {status} {body!r}")
        # The acknowledged request itself: refused, or its very signature (never another one).
        status, body = bridge.sign(key.pkh, payload)
        assert status == 409 or (status == 200 and body["signature"] == sig), (status, body)

    # And the board still signs above its marks.
    top = max(level for level, _, _ in acked.values()) + 1000
    for name in ("tz1", "tz4"):
        key = keys[name]
        p = tezos.attestation(key.curve, CHAIN, top, 0)
        status, body = bridge.sign(key.pkh, p)
        assert status == 200, (status, body)
        tezos.verify(key.pk, body["signature"], p)
