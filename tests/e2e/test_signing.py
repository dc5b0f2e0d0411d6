"""End to end: `pawl-sim board --pty` + `pawl serve`, driven by Taquito and pytezos."""

import json

import pytest

import procs
import tezos
from conftest import KEY_SPECS
from helpers import delegation, forge, sign_verified, transfer

ALL = ["tz1", "tz2", "tz3", "tz4"]
NOT_BLS = ["tz1", "tz2", "tz3"]
CHAIN = tezos.TEST_CHAIN


def test_public_keys(bridge, keys):
    assert sorted(keys) == ALL
    for spec in KEY_SPECS:
        key = keys[spec.name]
        assert key.pkh.startswith(spec.name), key.pkh
        status, body = bridge.public_key(key.pkh)
        assert status == 200, (status, body)
        assert body["public_key"] == key.pk
        # The hash pawl reports is the hash of the public key it serves (pytezos).
        assert tezos.pkh_of(body["public_key"]) == key.pkh
        if spec.secret:  # and the key pawl holds is the one imported
            assert key.pk == tezos.public_key_of(spec.secret)
    results = procs.taquito([{"op": "remote_pk", "url": bridge.url, "pkh": keys[n].pkh}
                             for n in NOT_BLS])
    for name, r in zip(NOT_BLS, results):
        assert r["ok"] and r["publicKey"] == keys[name].pk, r


@pytest.mark.parametrize("name", ALL)
def test_consensus_payloads(bridge, keys, levels, name):
    """Blocks (0x11), preattestations (0x12) and attestations (0x13) — tags 20/21 for tz1-3,
    BLS-mode tags 40/41 for tz4 — over increasing levels and rounds."""
    key, base = keys[name], levels.take()
    c = key.curve
    payloads = [
        tezos.block(CHAIN, base, 0),
        tezos.preattestation(c, CHAIN, base, 0, slot=3),
        tezos.attestation(c, CHAIN, base, 0, slot=3),
        tezos.block(CHAIN, base, 1, payload_round=0, locked_round=0),  # re-proposal, F = 37
        tezos.preattestation(c, CHAIN, base, 1, slot=3),
        tezos.attestation(c, CHAIN, base, 1, slot=3),
        tezos.block(CHAIN, base + 1, 0),
        tezos.preattestation(c, CHAIN, base + 1, 0, slot=1000),
        tezos.attestation(c, CHAIN, base + 1, 0, slot=1000),
    ]
    sign_verified(bridge, key, payloads)


@pytest.mark.parametrize("name", NOT_BLS)
def test_attestation_with_dal(bridge, keys, levels, name):
    """Tag 23: the DAL attestation bitset, a Zarith natural, ends the payload."""
    key, base = keys[name], levels.take()
    payloads = [
        tezos.consensus(0x13, 23, CHAIN, base, 0, slot=5, dal=0b1011),
        tezos.consensus(0x13, 23, CHAIN, base + 1, 0, slot=5, dal=(1 << 40) | 0b101),
        tezos.consensus(0x13, 23, CHAIN, base + 2, 0, slot=5, dal=0),
    ]
    sign_verified(bridge, key, payloads)


@pytest.mark.parametrize("name,tag", [("tz4", 21), ("tz4", 20), ("tz4", 23), ("tz1", 41),
                                      ("tz2", 40)])
def test_consensus_tag_must_match_key_type(bridge, keys, levels, name, tag):
    """tz4 signs BLS-mode payloads only (40/41), tz1-3 the slotted ones (20/21/23): a mismatch
    would put the watermark's level and round at the wrong offsets."""
    key, base = keys[name], levels.take()
    magic = 0x12 if tag in (20, 40) else 0x13
    payload = tezos.consensus(magic, tag, CHAIN, base, 0, slot=1)
    status, body = bridge.sign(key.pkh, payload)
    assert status in (400, 403), f"{name} with tag {tag}: {status} {body!r}"


def test_reference_vectors(bridge, keys):
    """Deterministic schemes must reproduce the vectors' signatures exactly (docs/protocol.md
    §8.5: computed with Python `cryptography` and py_ecc; Taquito's InMemorySigner gives the
    same)."""
    c3 = bytes.fromhex("13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb1"
                       "51150015000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d"
                       "5e93ce617fa11e44")
    tag41 = bytes.fromhex("13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25"
                          "bb15129000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed"
                          "9d5e93ce617fa11e44")
    tag40 = bytes.fromhex("12b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25"
                          "bb15128000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed"
                          "9d5e93ce617fa11e44")
    [s_c3] = sign_verified(bridge, keys["tz1"], [c3])
    assert s_c3 == ("edsigtia28aoA2ey7TrYKTyKmyppzwnq6VNrwZSwofgMTvFogDMMxs3MnEsfnZnU3g3EZx4zT9X4"
                    "dYmB5zpDr9QtypNbBN2j7vd")
    s41, s40 = sign_verified(bridge, keys["tz4"], [tag41, tag40], version=2)
    assert s41 == ("BLsigAQnvUM2quKobRY6uuHMu5KVqYEy19nZbHkpRh3KLNVqJuk5VVspVNLMzWJVWtbjxNU1vzP7b"
                   "Us2g393JvE6d1LpU2nEVNAMWHGga1SGFc9pZj2L4Lano7coyPQvfethFTLitZ6jvK")
    assert s40 == ("BLsigAmK2BXU2CvZzgs6TgU2hwLJ8m8PXq5JypfY2QmnWCS9StCqXDxuXF6aBzB83Q6RwNgaJ8XLx"
                   "eeRrA2ccZY8jdxWTVhGTqPZpGcycaRDyFJGwKrfyYuM6hcB2rjP7NzJLT4ZzYp6GQ")


@pytest.mark.parametrize("name,version", [("tz1", 2), ("tz2", 3), ("tz4", 2), ("tz4", 3)])
def test_version_query(bridge, keys, levels, name, version):
    """Octez clients send ?version= on every request; BLS versions 2/3 sign with POP."""
    key, base = keys[name], levels.take()
    sign_verified(bridge, key, [tezos.attestation(key.curve, CHAIN, base, 0, slot=2)],
                  version=version)


@pytest.mark.parametrize("name", ALL)
def test_identical_retry_is_byte_identical(bridge, keys, levels, name):
    """A retry of the exact request returns the byte-identical signature (P-256 included, whose
    signatures are not deterministic in Octez: a second one would be a second block hash)."""
    key, base = keys[name], levels.take()
    for payload in (tezos.block(CHAIN, base, 0),
                    tezos.attestation(key.curve, CHAIN, base, 0, slot=9)):
        [first] = sign_verified(bridge, key, [payload])
        for _ in range(2):
            status, body = bridge.sign(key.pkh, payload)
            assert status == 200, (status, body)
            assert body["signature"] == first


@pytest.mark.parametrize("name", ALL)
def test_watermark_refusals(bridge, keys, levels, name):
    """Lower level → 409, same level and round with another payload → 409, lower round → 409;
    higher round or level → signed. Kinds keep separate marks."""
    key, base = keys[name], levels.take()
    c = key.curve
    sign_verified(bridge, key, [tezos.attestation(c, CHAIN, base + 5, 1, slot=4)])
    for refused in (tezos.attestation(c, CHAIN, base + 4, 7, slot=4),  # lower level
                    tezos.attestation(c, CHAIN, base + 5, 0, slot=4),  # lower round
                    tezos.attestation(c, CHAIN, base + 5, 1, slot=4)):  # same, other payload
        status, body = bridge.sign(key.pkh, refused)
        assert status == 409, f"expected 409 for {refused.hex()}: {status} {body!r}"
    if c != "bls":  # Taquito maps the 409 to an error carrying the status
        [r] = procs.taquito([{"op": "remote_sign", "url": bridge.url, "pkh": key.pkh,
                              "hex": tezos.attestation(c, CHAIN, base + 1, 0)[1:].hex(),
                              "watermark": "13"}])
        assert not r["ok"] and r["status"] == 409, r
    sign_verified(bridge, key, [
        tezos.attestation(c, CHAIN, base + 5, 2, slot=4),
        tezos.attestation(c, CHAIN, base + 6, 0, slot=4),
        tezos.block(CHAIN, base + 5, 0),  # blocks have their own mark
        tezos.preattestation(c, CHAIN, base + 5, 0, slot=4),
    ])
    status, _ = bridge.sign(key.pkh, tezos.block(CHAIN, base + 4, 9))
    assert status == 409


def test_transfer_allowed_by_policy(bridge, keys):
    """tz1 may sign transactions and reveals (--allow-ops transaction,reveal); the operation is
    forged by Taquito's local forger."""
    tz1 = keys["tz1"]
    payload = forge([transfer(tz1.pkh)])
    sign_verified(bridge, tz1, [payload])
    batch = forge([transfer(tz1.pkh, counter=11), transfer(tz1.pkh, keys["tz2"].pkh, counter=12)])
    sign_verified(bridge, tz1, [batch])


def test_transfer_refused_by_policy(bridge, keys):
    """tz2 has no generic kind; tz1 has no delegation: 403, and Taquito reports it as such."""
    tz1, tz2 = keys["tz1"], keys["tz2"]
    refused = [
        (tz2, forge([transfer(tz2.pkh)])),
        (tz1, forge([delegation(tz1.pkh, tz2.pkh)])),
        (tz1, forge([transfer(tz1.pkh, counter=20), delegation(tz1.pkh, tz2.pkh, counter=21)])),
    ]
    for key, payload in refused:
        status, body = bridge.sign(key.pkh, payload)
        assert status == 403, f"{key.name} {payload.hex()}: {status} {body!r}"
    results = procs.taquito([{"op": "remote_sign", "url": bridge.url, "pkh": k.pkh,
                              "hex": p[1:].hex(), "watermark": "03"} for k, p in refused])
    for r in results:
        assert not r["ok"] and r["status"] == 403 \
            and r["error"].startswith("OperationNotAuthorized"), r


def test_tz4_reveal_with_proof(bridge, keys):
    """A tz4 reveal carrying its proof of possession (computed and forged by Taquito), signed as
    a generic operation: pawl must parse the proof field to classify the operation."""
    tz4 = keys["tz4"]
    [pop] = procs.taquito([{"op": "prove_possession", "secret": tz4.secret}])
    assert pop["ok"], pop
    proof = pop["prefixSig"]
    assert tezos.verify_pop(tz4.pk, proof), "Taquito's proof does not verify with py_ecc"
    reveal = {"kind": "reveal", "source": tz4.pkh, "fee": "1000", "counter": "1",
              "gas_limit": "1000", "storage_limit": "0", "public_key": tz4.pk, "proof": proof}
    payload = forge([reveal])
    assert proof  # the forged bytes end with the 96-byte proof
    sign_verified(bridge, tz4, [payload])
    # The same reveal for the tz1 key (no proof) is also a signable generic operation.
    tz1 = keys["tz1"]
    sign_verified(bridge, tz1, [forge([{"kind": "reveal", "source": tz1.pkh, "fee": "1000",
                                        "counter": "2", "gas_limit": "1000",
                                        "storage_limit": "0", "public_key": tz1.pk}])])


def test_chain_restriction(bridge, keys, levels):
    """tz3 was generated with --chain <test chain>: consensus on another chain is refused."""
    tz3, base = keys["tz3"], levels.take()
    other = bytes.fromhex("7a06a770")  # mainnet
    status, body = bridge.sign(tz3.pkh, tezos.attestation("p2", other, base, 0))
    assert status == 403, (status, body)
    sign_verified(bridge, tz3, [tezos.attestation("p2", CHAIN, base, 0)])


def test_unknown_key(bridge):
    pkh = tezos.random_tz1()
    status, _ = bridge.public_key(pkh)
    assert status == 404
    status, _ = bridge.sign(pkh, tezos.attestation("ed", CHAIN, 5, 0))
    assert status == 404
    [r] = procs.taquito([{"op": "remote_sign", "url": bridge.url, "pkh": pkh,
                          "hex": tezos.attestation("ed", CHAIN, 5, 0)[1:].hex(),
                          "watermark": "13"}])
    assert not r["ok"] and r["error"] == "PublicKeyNotFoundError", r


@pytest.mark.parametrize("body", [b'"zz13"', b'"131"', b"not json", b"42", b'{"a": 1}',
                                  b'"13 00"'])
def test_bad_request(bridge, keys, body):
    status, resp = bridge.request("POST", f"/keys/{keys['tz1'].pkh}", body)
    assert status == 400, (body, status, resp)
    # Octez-shaped error body: a JSON list of errors with a human message.
    errors = json.loads(resp)
    assert isinstance(errors, list) and errors and errors[0].get("msg"), resp


def test_metrics(bridge):
    if not bridge.metrics_url:
        pytest.fail("pawl serve did not print a 'metrics on' line")
    import urllib.request
    with urllib.request.urlopen(bridge.metrics_url, timeout=10) as r:
        text = r.read().decode()
    assert r.status == 200 and "# TYPE" in text
