"""CometBFT votes and proposals signed by an Ed25519 key inside a YubiHSM2, end to end:
`pawl-sim yubihsm` (the yubihsm crate's MockHsm behind the connector HTTP API) + `pawl-sim
board --pty` + `pawl serve` with a `[[cometbft]]` entry + the independent test node
(tests/cometbft-node, tendermint-rs), each its own process. The board runs the SCP03 session
and the bridge's CometBFT client relays the sealed Sign EdDSA; every signature is checked by the
node over tendermint's sign bytes; retries are answered without the HSM, refusals send it
nothing, and a precommit for a block is answered without a vote-extension signature (an HSM
key signs no extension)."""

from pathlib import Path

import pytest

import cometbft_node
import procs
from test_cometbft import (DOUBLE_SIGN, assert_signed, block, instant, refused, stamp,
                           tz1_of)
from test_yubihsm import YubiSim, board_and_home, yubihsm_setup

CHAIN_ID = "pawl-e2e-hsm-1"
ED25519_ID = 16


@pytest.fixture(scope="module")
def comet_hsm(bins, tmp_root):
    root = tmp_root / "cometbft-yubihsm"
    logs = root / "logs"
    logs.mkdir(parents=True)
    sim = YubiSim(bins, logs, keys={"tz1": (ED25519_ID, "ed25519")})
    board, home = board_and_home(bins, root, logs, "comet-hsm", sim.url, 2000)
    node = bridge = None
    try:
        yubihsm_setup(bins, home, board)
        out = procs.pawl_cli(bins, ["keys", "import", "--home", str(home), "--device",
                                    str(board.device), "--backend", "yubihsm", "--key-id",
                                    str(ED25519_ID), "--public-key",
                                    sim.public_keys[ED25519_ID]])
        pkh = out.split()[0]
        assert pkh.startswith("tz1"), out
        out = procs.pawl_cli(bins, ["keys", "role", pkh, "--home", str(home), "--device",
                                    str(board.device), "--role", "cosmos", "--chain-id",
                                    CHAIN_ID])
        assert "cosmos" in out, out
        node = cometbft_node.Node(cometbft_node.build(), f"unix://{root / 'node.sock'}",
                                  CHAIN_ID, logs, "node-hsm")
        with open(home / "pawl.toml", "a") as f:
            f.write(f'\n[[cometbft]]\nchain_id = "{CHAIN_ID}"\naddress = "{node.address}"\n'
                    f'key = "{pkh}"\n')
        bridge = procs.Bridge(bins, home, board.device, logs, name="comet-hsm-serve")
        a = node.ask_until("pubkey", lambda a: a["answer"] == "pubkey")
        assert a["answer"] == "pubkey" and tz1_of(a["pubkey"]) == pkh, a
        yield sim, node, pkh
    finally:
        for p in (bridge, node, board, sim):
            if p is not None:
                p.stop()


def test_votes_and_proposals_are_signed_in_the_hsm(comet_hsm):
    """Proposals, prevotes and nil precommits go through the HSM and verify at the node. A
    precommit for a block carries its extension (this node speaks 0.38: no
    skip_extension_signing): the HSM key signs the precommit and not the extension, as tmkms
    answers (a chain without vote extensions takes it)."""
    sim, node = comet_hsm[:2]
    for h in (100, 101):
        for op, extra in (("proposal", {"pol_round": -1, "block": block(h)}),
                          ("prevote", {"block": block(h)}), ("precommit", {"block": None})):
            before = sim.messages()
            a = node.ask(op, height=h, round=0, time=stamp(h), **extra)
            assert_signed(a, stamp(h))
            assert sim.messages() > before, f"{op} {h}: not through the HSM"
    h = 102
    before = sim.messages()
    a = node.ask("precommit", height=h, round=0, block=block(h), time=stamp(h),
                 extension=f"{h:08x}")
    assert_signed(a, stamp(h))
    assert sim.messages() > before, "precommit: not through the HSM"
    assert a["ext_sig"] == "" and a["ext_sig_ok"] is None, a


def test_retries_without_the_hsm_and_refusals_with_zero_hsm_messages(comet_hsm):
    sim, node = comet_hsm[:2]
    h = 200
    first = node.ask("prevote", height=h, round=0, block=block(h), time=stamp(h))
    assert_signed(first, stamp(h))
    before = sim.messages()
    again = node.ask("prevote", height=h, round=0, block=block(h), time=stamp(h))
    assert_signed(again, stamp(h))
    assert again["sig"] == first["sig"]
    later = node.ask("prevote", height=h, round=0, block=block(h), time=stamp(h, 0, 750))
    assert_signed(later)
    assert instant(later["time"]) == instant(stamp(h)) and later["sig"] == first["sig"], later
    conflict = node.ask("prevote", height=h, round=0, block=block(h, 1), time=stamp(h))
    assert refused(conflict, DOUBLE_SIGN), conflict
    assert sim.messages() == before, "a retry or a refusal reached the HSM"
