"""Write the store fixture that every later pawl must load (issue: key lifecycle, item 5):
the QEMU firmware's state directory after a provisioning and a little baking, as a board would
hold it in the field, plus what the board said about itself before it was switched off.

    tests/e2e/.venv/bin/python tests/e2e/make_store_fixture.py core/tests/fixtures/store-v1

Run once, by hand, when the stored format changes in a way a fixture should pin (the old
fixtures stay: each is a format some board may hold). The output directory gets flash.bin,
board.key, rollback-counter (the QEMU board's files, docs/design.md §8) and expected.json
(`pawl keys list --json` and `pawl watermark show --json` as the firmware answered them)."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import procs  # noqa: E402
import tezos  # noqa: E402
from test_qemu import ELF, FIRMWARE, QemuStack  # noqa: E402

CHAIN = tezos.TEST_CHAIN
CHAIN_B58 = tezos.chain_b58(CHAIN)
# docs/protocol.md §8.4: public upstream vectors, never real keys.
SECRETS = {
    "tz1": "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd",
    "tz2": "spsk1zkqrmst1yg2c4xi3crWcZPqgdc9KtPtb9SAZWYHAdiQzdHy7j",
    "tz4": "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq",
}
CURVE = {"tz1": "ed", "tz2": "sp", "tz4": "bls"}


def main(out: Path) -> None:
    subprocess.run(["cargo", "build", "--release", "--bin", "pawl-qemu"], cwd=FIRMWARE,
                   check=True)
    bins = procs.Binaries()
    root = Path(tempfile.mkdtemp(prefix="pawl-fixture-"))
    stack = QemuStack(bins, ELF, root, "fixture")
    try:
        stack.boot()

        def cli(*args, stdin_text=None):
            return procs.pawl_cli(bins, [*args, "--home", str(stack.bridge_home), "--device",
                                         str(stack.device)], stdin_text=stdin_text)

        pkhs = {}
        for name, secret in SECRETS.items():
            extra = ["--allow-ops", "transaction"] if name == "tz1" else []
            pkhs[name] = cli("keys", "import", "--chain", CHAIN_B58, *extra,
                             stdin_text=secret + "\n").split()[0]
        cli("watermark", "jump-limit", pkhs["tz2"], "--levels", "5000")
        bridge = stack.start_bridge()
        for name, pkh in pkhs.items():
            pk = tezos.public_key_of(SECRETS[name])
            version = 2 if name == "tz4" else None
            for level in (100, 101, 140):
                for p in (tezos.preattestation(CURVE[name], CHAIN, level, 0),
                          tezos.attestation(CURVE[name], CHAIN, level, 1)):
                    status, body = bridge.sign(pkh, p, version=version)
                    assert status == 200, (name, level, status, body)
                    tezos.verify(pk, body["signature"], p)
            status, body = bridge.sign(pkh, tezos.block(CHAIN, 141, 0), version=version)
            assert status == 200, (name, status, body)
        cli("keys", "retire", pkhs["tz1"], "--above", "100000")
        expected = {
            "keys": json.loads(cli("keys", "list", "--json"))["keys"],
            "watermarks": json.loads(cli("watermark", "show", "--json"))["watermarks"],
        }
        stack.stop()
        out.mkdir(parents=True, exist_ok=True)
        for f in ("flash.bin", "board.key", "rollback-counter"):
            shutil.copy(stack.board_home / f, out / f)
        (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    finally:
        stack.stop()
        procs.kill_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
