"""The test kit's local CT log, checked from outside: over HTTP, with signatures verified
by cryptography directly and proofs by a small RFC 9162 verifier written here (the log
builds them from RFC 6962's recursive definitions), never with pinwarden.ct's clients."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinwarden.ct.logs import LogState
from pinwarden.ct.sct import SignedEntryType
from pinwarden.testing import CA
from pinwarden.testing.ctlog import (
    LocalCTLog,
    issue_precertificate,
    local_log_list,
    write_log_list,
)

# -- an independent reference: RFC 6962 hashing, RFC 9162 verification ---------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 2.1 MTH over leaf hashes, bottom-up: pair neighbours, carry the odd one."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        paired = [node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, proof: list[bytes], first_root: bytes, second_root: bytes
) -> bool:
    """RFC 9162 2.1.4.2 (equal sizes: an empty proof and equal roots)."""
    if first == second:
        return not proof and first_root == second_root
    if first == 0 or first > second or not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


def verify_signed(log: LocalCTLog, data: bytes, digitally_signed: bytes) -> None:
    """An RFC 5246 DigitallySigned over ``data`` by the log's key: raises if it is not."""
    hash_alg, sig_alg = digitally_signed[0], digitally_signed[1]
    length = int.from_bytes(digitally_signed[2:4], "big")
    signature = digitally_signed[4:]
    assert hash_alg == 4
    assert length == len(signature)
    key = load_der_public_key(log.log.key)
    if isinstance(key, ec.EllipticCurvePublicKey):
        assert sig_alg == 3
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(key, rsa.RSAPublicKey)
        assert sig_alg == 1
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def tree_head_input(timestamp: int, size: int, root: bytes) -> bytes:
    """RFC 6962 3.5 TreeHeadSignature: v1, tree_hash, timestamp, size, root."""
    return b"\x00\x01" + timestamp.to_bytes(8, "big") + size.to_bytes(8, "big") + root


def v24(data: bytes) -> bytes:
    return len(data).to_bytes(3, "big") + data


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


class Cursor:
    """Reads TLS-encoded fields (a few lines, so the test does not trust the log's writer)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        assert self.at + n <= len(self.data), "truncated"
        self.at += n
        return self.data[self.at - n : self.at]

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vec(self, n: int) -> bytes:
        return self.take(self.uint(n))


def parse_tile_leaves(data: bytes) -> list[dict[str, Any]]:
    """static-ct-api TileLeaf entries, with each one's MerkleTreeLeaf hash."""
    cursor, leaves = Cursor(data), []
    while cursor.at < len(data):
        start = cursor.at
        timestamp, entry_type = cursor.uint(8), cursor.uint(2)
        leaf: dict[str, Any] = {"timestamp": timestamp, "type": entry_type}
        if entry_type == 0:
            leaf["cert"] = cursor.vec(3)
        else:
            assert entry_type == 1
            leaf["issuer_key_hash"], leaf["tbs"] = cursor.take(32), cursor.vec(3)
        leaf["extensions"] = cursor.vec(2)
        leaf["hash"] = leaf_hash(b"\x00\x00" + data[start : cursor.at])
        if entry_type == 1:
            leaf["precert"] = cursor.vec(3)
        chain = cursor.vec(2)
        leaf["chain"] = [chain[i : i + 32] for i in range(0, len(chain), 32)]
        leaves.append(leaf)
    return leaves


def tile(index: int, width: int | None = None) -> str:
    digits = f"{index:0{(len(str(index)) + 2) // 3 * 3}d}"
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    path = "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])
    return path + (f".p/{width}" if width else "")


# -- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def rfc_log() -> Iterator[LocalCTLog]:
    with LocalCTLog("rfc6962") as log:
        yield log


@pytest.fixture
def static_log() -> Iterator[LocalCTLog]:
    with LocalCTLog("static") as log:
        yield log


def client(log: LocalCTLog) -> httpx.Client:
    return httpx.Client(base_url=log.url, trust_env=False, timeout=10)


def get_sth(log: LocalCTLog) -> dict[str, Any]:
    with client(log) as http:
        response = http.get("ct/v1/get-sth")
    assert response.status_code == 200
    sth: dict[str, Any] = response.json()
    sth["root"] = base64.b64decode(sth["sha256_root_hash"])
    sth["signature"] = base64.b64decode(sth["tree_head_signature"])
    return sth


def sth_verifies(log: LocalCTLog, sth: dict[str, Any]) -> bool:
    try:
        verify_signed(
            log, tree_head_input(sth["timestamp"], sth["tree_size"], sth["root"]), sth["signature"]
        )
    except InvalidSignature:
        return False
    return True


def get_checkpoint(log: LocalCTLog) -> dict[str, Any]:
    """The checkpoint parsed as a signed note; ``verifies`` says whether the log's
    RFC6962NoteSignature over it verifies."""
    with client(log) as http:
        response = http.get("checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    text, _, signatures = response.text.rpartition("\n\n")
    origin, size, root = text.split("\n")
    (line,) = signatures.rstrip("\n").split("\n")
    dash, name, encoded = line.split(" ")
    blob = base64.b64decode(encoded)
    timestamp = int.from_bytes(blob[4:12], "big")
    try:
        data = tree_head_input(timestamp, int(size), base64.b64decode(root))
        verify_signed(log, data, blob[12:])
        verifies = True
    except InvalidSignature:
        verifies = False
    return {
        "origin": origin,
        "size": int(size),
        "root": base64.b64decode(root),
        "dash": dash,
        "name": name,
        "key_id": blob[:4],
        "timestamp": timestamp,
        "verifies": verifies,
    }


def all_entries(log: LocalCTLog, size: int) -> list[dict[str, bytes]]:
    entries: list[dict[str, bytes]] = []
    with client(log) as http:
        while len(entries) < size:
            response = http.get(
                "ct/v1/get-entries", params={"start": len(entries), "end": size - 1}
            )
            assert response.status_code == 200
            batch = response.json()["entries"]
            assert batch
            entries += [{k: base64.b64decode(v) for k, v in e.items()} for e in batch]
    return entries


def tiles_root(log: LocalCTLog, size: int) -> bytes:
    """The root at ``size`` (< 65536) from the log's level-0 tiles."""
    hashes_: list[bytes] = []
    with client(log) as http:
        for index in range((size + 255) // 256):
            width = min(256, size - index * 256)
            path = f"tile/0/{tile(index, None if width == 256 else width)}"
            body = http.get(path).content
            hashes_ += [body[i : i + 32] for i in range(0, len(body), 32)]
    return mth(hashes_)


# -- RFC 6962 endpoints ------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_get_sth_is_signed_over_the_entries_root(key_type: Any) -> None:
    with LocalCTLog("rfc6962", key_type=key_type) as log:
        empty = get_sth(log)
        assert empty["tree_size"] == 0
        assert empty["root"] == hashlib.sha256(b"").digest()
        assert sth_verifies(log, empty)
        log.grow(37)
        log.publish()
        sth = get_sth(log)
        assert sth["tree_size"] == 37
        assert sth_verifies(log, sth)
        assert sth["timestamp"] > empty["timestamp"]
        leaves = [leaf_hash(e["leaf_input"]) for e in all_entries(log, 37)]
        assert mth(leaves) == sth["root"] == log.root()


def test_serves_the_last_published_head_not_the_live_tree(rfc_log: LocalCTLog) -> None:
    rfc_log.grow(5)
    first = rfc_log.publish()
    rfc_log.grow(3)
    assert rfc_log.size == 8
    assert get_sth(rfc_log)["tree_size"] == 5
    with client(rfc_log) as http:
        assert http.get("ct/v1/get-entries?start=5&end=7").status_code == 400
        assert (
            http.get(
                "ct/v1/get-proof-by-hash",
                params={"hash": base64.b64encode(rfc_log.leaf_hash(6)).decode(), "tree_size": 5},
            ).status_code
            == 404
        )
    second = rfc_log.publish()
    assert second.timestamp_ms > first.timestamp_ms
    assert get_sth(rfc_log)["tree_size"] == 8
    assert len(all_entries(rfc_log, 8)) == 8


def test_get_entries_batches_and_bounds() -> None:
    with LocalCTLog("rfc6962", max_batch=7) as log:
        log.grow(20)
        log.publish()
        with client(log) as http:
            batch = http.get("ct/v1/get-entries?start=3&end=100").json()["entries"]
            assert len(batch) == 7  # fewer than asked, as real logs do
            tail = http.get("ct/v1/get-entries?start=18&end=100").json()["entries"]
            assert len(tail) == 2  # clamped to the tree
            for query in (
                "start=20&end=25",
                "start=5&end=4",
                "start=%2B1&end=3",
                "start=1_0&end=12",
                "start=%201&end=3",
                "start=1",
                "start=1&start=2&end=3",
                "start=-1&end=3",
            ):
                assert http.get(f"ct/v1/get-entries?{query}").status_code == 400, query
        entries = all_entries(log, 20)
    assert [leaf_hash(e["leaf_input"]) for e in entries] == [log.leaf_hash(i) for i in range(20)]


def test_x509_entries_carry_the_certificate_and_chain_to_the_root(rfc_log: LocalCTLog) -> None:
    issued = rfc_log.ca.issue("www.example.test")
    logged = rfc_log.add_certificate(issued)
    rfc_log.publish()
    (entry,) = all_entries(rfc_log, 1)
    leaf = Cursor(entry["leaf_input"])
    assert leaf.uint(1) == 0  # v1
    assert leaf.uint(1) == 0  # timestamped_entry
    assert leaf.uint(8) == logged.timestamp_ms
    assert leaf.uint(2) == 0  # x509_entry
    assert leaf.vec(3) == der(issued.cert)
    assert leaf.vec(2) == b""  # no extensions on an RFC 6962 log
    assert leaf.at == len(entry["leaf_input"])
    extra = Cursor(entry["extra_data"])
    chain = Cursor(extra.vec(3))
    assert extra.at == len(entry["extra_data"])
    assert [chain.vec(3), chain.vec(3)] == [der(rfc_log.ca.cert), der(rfc_log.ca.root.cert)]
    assert chain.at == len(chain.data)


def test_precertificate_entries_hash_the_tbs_without_poison(rfc_log: LocalCTLog) -> None:
    pair = issue_precertificate(rfc_log.ca, "pre.example.test")
    assert pair.precert.cert.extensions.get_extension_for_class(x509.PrecertPoison).critical
    logged = rfc_log.add_precertificate(pair)
    assert logged.entry_type is SignedEntryType.PRECERT
    rfc_log.publish()
    (entry,) = all_entries(rfc_log, 1)
    leaf = Cursor(entry["leaf_input"])
    leaf.take(10)
    assert leaf.uint(2) == 1  # precert_entry
    issuer_spki = rfc_log.ca.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert leaf.take(32) == hashlib.sha256(issuer_spki).digest()
    # The final certificate's TBS, as cryptography encoded it: the poison taken out of the
    # precertificate must leave exactly these bytes.
    assert leaf.vec(3) == pair.final.cert.tbs_certificate_bytes
    extra = Cursor(entry["extra_data"])
    assert extra.vec(3) == der(pair.precert.cert)
    assert Cursor(extra.vec(3)).vec(3) == der(rfc_log.ca.cert)
    # The SCT covers the same PreCert.
    verify_signed(rfc_log, b"\x00\x00" + entry["leaf_input"][2:], logged.sct.raw[43:])


def test_poison_as_the_only_extension_leaves_no_extensions_field() -> None:
    ca = CA()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string("CN=bare")
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(ca.cert.not_valid_before_utc)
        .not_valid_after(ca.cert.not_valid_after_utc)
    )
    bare = builder.sign(ca.key, hashes.SHA256())
    precert = builder.add_extension(x509.PrecertPoison(), critical=True).sign(
        ca.key, hashes.SHA256()
    )
    with LocalCTLog() as log:
        logged = log.add_precertificate(precert, [ca.cert])
    assert bare.tbs_certificate_bytes in logged.leaf_input


def test_inclusion_and_consistency_proofs_over_http(rfc_log: LocalCTLog) -> None:
    rfc_log.grow(45)
    sizes = [1, 2, 3, 8, 13, 32, 45]
    heads = {}
    with client(rfc_log) as http:
        for size in sizes:
            heads[size] = rfc_log.root(size)
        rfc_log.publish()
        for size in sizes:
            for index in range(size):
                answer = http.get(
                    "ct/v1/get-proof-by-hash",
                    params={
                        "hash": base64.b64encode(rfc_log.leaf_hash(index)).decode(),
                        "tree_size": size,
                    },
                ).json()
                assert answer["leaf_index"] == index
                proof = [base64.b64decode(h) for h in answer["audit_path"]]
                assert verify_inclusion(index, size, rfc_log.leaf_hash(index), proof, heads[size])
        for first in sizes:
            for second in sizes:
                if first > second:
                    continue
                answer = http.get(
                    "ct/v1/get-sth-consistency", params={"first": first, "second": second}
                ).json()
                proof = [base64.b64decode(h) for h in answer["consistency"]]
                assert verify_consistency(first, second, proof, heads[first], heads[second])
                if first < second:  # and the proof binds the roots
                    assert not verify_consistency(
                        first, second, proof, heads[second], heads[second]
                    )
        # An unescaped "+" arrives as a space: the log reads it back as "+".
        plus = next(i for i in range(45) if b"+" in base64.b64encode(rfc_log.leaf_hash(i)))
        raw = base64.b64encode(rfc_log.leaf_hash(plus)).decode()
        answer = http.get(f"ct/v1/get-proof-by-hash?hash={raw}&tree_size=45").json()
        assert answer["leaf_index"] == plus
        for query in (
            "first=3&second=2",
            "first=1&second=46",
            "first=a&second=2",
        ):
            assert http.get(f"ct/v1/get-sth-consistency?{query}").status_code == 400
        assert http.get("ct/v1/get-proof-by-hash?hash=AAAA&tree_size=4").status_code == 400
        assert http.get("ct/v1/get-proof-by-hash?hash=!!&tree_size=4").status_code == 400
        missing = base64.b64encode(b"\x01" * 32).decode()
        assert (
            http.get(
                "ct/v1/get-proof-by-hash", params={"hash": missing, "tree_size": 4}
            ).status_code
            == 404
        )


@pytest.fixture(scope="module")
def tree_of_300() -> Iterator[LocalCTLog]:
    with LocalCTLog() as log:
        log.grow(300)
        yield log


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_every_proof_verifies_with_the_reference(
    tree_of_300: LocalCTLog, data: st.DataObject
) -> None:
    log = tree_of_300
    second = data.draw(st.integers(1, 300), label="second")
    first = data.draw(st.integers(0, second), label="first")
    index = data.draw(st.integers(0, second - 1), label="index")
    leaves = [log.leaf_hash(i) for i in range(second)]
    root = mth(leaves)
    assert log.root(second) == root
    proof = log.inclusion_proof(index, second)
    assert verify_inclusion(index, second, leaves[index], proof, root)
    assert not verify_inclusion(index, second, leaves[index], proof, node(root, root))
    if first:
        consistency = log.consistency_proof(first, second)
        assert verify_consistency(first, second, consistency, mth(leaves[:first]), root)


def test_get_roots_and_add_chain_return_verifiable_scts(rfc_log: LocalCTLog) -> None:
    issued = rfc_log.ca.issue("submitted.example.test")
    pair = issue_precertificate(rfc_log.ca, "pre-submitted.example.test")
    with client(rfc_log) as http:
        roots = http.get("ct/v1/get-roots").json()["certificates"]
        assert [base64.b64decode(r) for r in roots] == [der(rfc_log.ca.root.cert)]
        chain = [base64.b64encode(der(c)).decode() for c in (issued.cert, rfc_log.ca.cert)]
        sct = http.post("ct/v1/add-chain", json={"chain": chain}).json()
        pre_chain = [
            base64.b64encode(der(c)).decode() for c in (pair.precert.cert, rfc_log.ca.cert)
        ]
        pre_sct = http.post("ct/v1/add-pre-chain", json={"chain": pre_chain}).json()
    assert base64.b64decode(sct["id"]) == hashlib.sha256(rfc_log.log.key).digest()
    assert sct["sct_version"] == 0
    assert sct["extensions"] == ""
    signed = (
        b"\x00\x00"
        + sct["timestamp"].to_bytes(8, "big")
        + b"\x00\x00"
        + v24(der(issued.cert))
        + b"\x00\x00"
    )
    verify_signed(rfc_log, signed, base64.b64decode(sct["signature"]))
    issuer_key_hash = hashlib.sha256(
        rfc_log.ca.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
    pre_signed = (
        b"\x00\x00"
        + pre_sct["timestamp"].to_bytes(8, "big")
        + b"\x00\x01"
        + issuer_key_hash
        + v24(pair.final.cert.tbs_certificate_bytes)
        + b"\x00\x00"
    )
    verify_signed(rfc_log, pre_signed, base64.b64decode(pre_sct["signature"]))
    with pytest.raises(InvalidSignature):
        verify_signed(rfc_log, pre_signed + b"x", base64.b64decode(pre_sct["signature"]))
    rfc_log.publish()
    entries = all_entries(rfc_log, 2)
    # The log completed the chain with its root.
    assert Cursor(entries[0]["extra_data"]).vec(3) == v24(der(rfc_log.ca.cert)) + v24(
        der(rfc_log.ca.root.cert)
    )


def test_add_chain_refuses_what_a_log_must_refuse(rfc_log: LocalCTLog) -> None:
    stranger = CA("stranger").intermediate()
    foreign = stranger.issue("x.example.test")
    ours = rfc_log.ca.issue("y.example.test")
    pair = issue_precertificate(rfc_log.ca, "z.example.test")

    def b64(*certs: x509.Certificate) -> list[str]:
        return [base64.b64encode(der(c)).decode() for c in certs]

    with client(rfc_log) as http:
        cases = {
            "unknown root": ("add-chain", {"chain": b64(foreign.cert, stranger.cert)}),
            "broken link": ("add-chain", {"chain": b64(ours.cert, stranger.cert)}),
            "precert to add-chain": (
                "add-chain",
                {"chain": b64(pair.precert.cert, rfc_log.ca.cert)},
            ),
            "cert to add-pre-chain": ("add-pre-chain", {"chain": b64(ours.cert, rfc_log.ca.cert)}),
            "empty chain": ("add-chain", {"chain": []}),
            "no chain": ("add-chain", {"certs": []}),
            "not base64": ("add-chain", {"chain": ["%%%"]}),
            "not a certificate": ("add-chain", {"chain": ["AAAA"]}),
        }
        for case, (endpoint, body) in cases.items():
            assert http.post(f"ct/v1/{endpoint}", json=body).status_code == 400, case
        assert http.post("ct/v1/add-chain", content=b"\xff{").status_code == 400
        assert http.get("ct/v1/add-chain").status_code == 405
        assert http.post("ct/v1/get-sth").status_code == 405
        assert http.get("checkpoint").status_code == 404  # not a static log
        # The root itself may be sent.
        ok = http.post(
            "ct/v1/add-chain", json={"chain": b64(ours.cert, rfc_log.ca.cert, rfc_log.ca.root.cert)}
        )
        assert ok.status_code == 200
    assert rfc_log.size == 1


# -- static-ct-api -----------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_checkpoint_is_a_signed_note_with_the_rfc6962_signature(key_type: Any) -> None:
    with LocalCTLog("static", key_type=key_type, prefix="/logs/test2026h1") as log:
        log.grow(70)
        head = log.publish()
        note = get_checkpoint(log)
        from_tiles = tiles_root(log, 70)
        with client(log) as http:
            assert http.get(log.url.replace("/logs/test2026h1/", "/checkpoint")).status_code == 404
            assert http.get("ct/v1/get-sth").status_code == 404  # not an RFC 6962 log
    assert log.url == f"http://127.0.0.1:{log.port}/logs/test2026h1/"
    assert note["origin"] == note["name"] == f"127.0.0.1:{log.port}/logs/test2026h1"
    assert note["dash"] == "\u2014"
    assert note["size"] == 70
    assert note["root"] == head.root == from_tiles
    assert note["timestamp"] == head.timestamp_ms
    log_id = hashlib.sha256(log.log.key).digest()
    assert (
        note["key_id"] == hashlib.sha256(note["origin"].encode() + b"\n\x05" + log_id).digest()[:4]
    )
    assert note["verifies"]


def test_tiles_match_the_tree_at_every_level() -> None:
    with LocalCTLog("static") as log:
        # Level 2 needs 65536 entries: log one certificate over and over (issuing
        # 65,536 would take seconds) through the log's own bulk path.
        issued = log.ca.issue("same.example.test")
        chain = (der(log.ca.cert), der(log.ca.root.cert))
        for _ in range(65536 + 44):
            log._append(SignedEntryType.X509, der(issued.cert), chain)
        log.grow(256)  # and real, distinct certificates on top
        size = log.size
        log.publish()
        assert size == 65836
        with client(log) as http:

            def hashes_of(path: str) -> list[bytes]:
                response = http.get(path)
                assert response.status_code == 200, path
                assert response.headers["content-type"] == "application/octet-stream"
                return [response.content[i : i + 32] for i in range(0, len(response.content), 32)]

            level0 = [hashes_of(f"tile/0/{tile(n)}") for n in range(256)]
            assert all(len(t) == 256 for t in level0)
            assert level0[3][17] == log.leaf_hash(3 * 256 + 17)
            level1 = hashes_of("tile/1/000")
            assert level1 == [mth(t) for t in level0]
            assert hashes_of("tile/1/001.p/1") == [mth(hashes_of("tile/0/256"))]
            assert hashes_of("tile/2/000.p/1") == [mth(level1)] == [log.root(65536)]
            last = hashes_of("tile/0/257.p/44")
            assert last == [log.leaf_hash(257 * 256 + i) for i in range(44)]
            assert hashes_of("tile/0/257.p/3") == last[:3]
            # Data tiles: the same leaves, parsed here.
            leaves = parse_tile_leaves(http.get("tile/data/257.p/44").content)
            assert [leaf["hash"] for leaf in leaves] == last
            assert leaves[-1]["cert"] != leaves[0]["cert"]
            for path in (
                "tile/0/257",  # not full yet
                "tile/0/257.p/45",  # more than there is
                "tile/1/001",
                "tile/2/000",
                "tile/0/x000/001",  # not canonical
                "tile/0/1",
                "tile/00/001",
                "tile/0/001.p/0",
                "tile/0/001.p/256",
                "tile/0/001.p/07",
                "tile/6/000.p/1",
                "tile/-1/000",
                "tile/data/258",
                "tile/0/",
                "tile/names/000",
            ):
                assert http.get(path).status_code == 404, path
            assert tile(1234067) == "x001/x234/067"
            assert http.get(f"tile/0/{tile(1234067)}").status_code == 404


def test_data_tiles_carry_precertificates_chains_and_leaf_indexes(static_log: LocalCTLog) -> None:
    log = static_log
    log.grow(3)
    pair = issue_precertificate(log.ca, "pre.example.test")
    logged = log.add_precertificate(pair)
    log.issue("plain.example.test")
    log.publish()
    with client(log) as http:
        leaves = parse_tile_leaves(http.get("tile/data/000.p/5").content)
        level0 = http.get("tile/0/000.p/5").content
        assert [leaf["hash"] for leaf in leaves] == [level0[i : i + 32] for i in range(0, 160, 32)]
        for index, leaf in enumerate(leaves):
            # static-ct-api's leaf_index extension: type 0, 5 bytes, the index.
            assert leaf["extensions"] == b"\x00\x00\x05" + index.to_bytes(5, "big")
        pre = leaves[3]
        assert pre["type"] == 1
        assert pre["precert"] == der(pair.precert.cert)
        assert pre["tbs"] == pair.final.cert.tbs_certificate_bytes
        assert logged.sct.leaf_index == 3
        assert logged.sct.extensions == pre["extensions"]
        assert pre["chain"] == [
            hashlib.sha256(der(c)).digest() for c in (log.ca.cert, log.ca.root.cert)
        ]
        for fingerprint in pre["chain"]:
            response = http.get(f"issuer/{fingerprint.hex()}")
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/pkix-cert"
            assert hashlib.sha256(response.content).digest() == fingerprint
        assert http.get(f"issuer/{pre['chain'][0].hex().upper()}").status_code == 404
        assert http.get(f"issuer/{'00' * 32}").status_code == 404
        roots = http.get("ct/v1/get-roots").json()["certificates"]
        assert roots == [base64.b64encode(der(log.ca.root.cert)).decode()]


def test_gzip_when_accepted_or_always() -> None:
    def fetch(log: LocalCTLog, accept: str) -> tuple[str | None, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", log.port, timeout=10)
        try:
            connection.request("GET", "/tile/data/000.p/9", headers={"Accept-Encoding": accept})
            response = connection.getresponse()
            return response.getheader("Content-Encoding"), response.read()
        finally:
            connection.close()

    for mode in ("accepted", "always", "never"):
        with LocalCTLog("static", gzip=mode) as log:
            log.grow(9)
            log.publish()
            encoding, body = fetch(log, "identity")
            assert encoding == ("gzip" if mode == "always" else None)
            plain = gzip.decompress(body) if encoding else body
            assert len(parse_tile_leaves(plain)) == 9
            encoding, body = fetch(log, "gzip, identity")
            assert encoding == (None if mode == "never" else "gzip")
            assert (gzip.decompress(body) if encoding else body) == plain
            assert fetch(log, "gzip;q=0")[0] == ("gzip" if mode == "always" else None)


# -- log lists -------------------------------------------------------------------------------


def test_log_and_log_list_describe_the_running_logs(tmp_path: Path) -> None:
    with (
        LocalCTLog("rfc6962", operator="Op A", mmd=60) as classic,
        LocalCTLog(
            "static", operator="Op B", key_type="rsa-2048", state=LogState.READONLY
        ) as tiled,
    ):
        path = write_log_list(tmp_path / "list.json", classic, tiled)
        single = classic.write_log_list(tmp_path / "one.json")
    document = json.loads(path.read_text())
    assert json.loads(single.read_text())["operators"][0]["logs"][0]["url"] == classic.url
    assert "log_list_timestamp" in document
    assert "version" in document
    by_name = {op["name"]: op for op in document["operators"]}
    (entry,) = by_name["Op A"]["logs"]
    (tiled_entry,) = by_name["Op B"]["tiled_logs"]
    assert entry["url"] == classic.url
    assert entry["mmd"] == 60
    assert "usable" in entry["state"]
    key = base64.b64decode(entry["key"])
    assert key == classic.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert base64.b64decode(entry["log_id"]) == hashlib.sha256(key).digest()
    assert tiled_entry["submission_url"] == tiled_entry["monitoring_url"] == tiled.url
    assert "readonly" in tiled_entry["state"]
    assert isinstance(load_der_public_key(base64.b64decode(tiled_entry["key"])), rsa.RSAPublicKey)
    listing = local_log_list(classic, tiled)
    assert listing.by_id(classic.log_id) == classic.log
    assert tiled.log.tiled
    assert tiled.log.base_url == tiled.url
    assert classic.log.base_url == classic.url
    assert listing.operators == ("Op A", "Op B")


# -- faults ----------------------------------------------------------------------------------


def test_bad_sth_signature(rfc_log: LocalCTLog, static_log: LocalCTLog) -> None:
    for log in (rfc_log, static_log):
        log.grow(4)
        log.publish()
        log.inject("bad-sth-signature")
        assert log.faults == {"bad-sth-signature"}
    sth = get_sth(rfc_log)
    assert sth["root"] == rfc_log.head.root  # the head is right, its signature is not
    assert not sth_verifies(rfc_log, sth)
    assert not get_checkpoint(static_log)["verifies"]
    for log in (rfc_log, static_log):
        log.heal()
    assert sth_verifies(rfc_log, get_sth(rfc_log))
    assert get_checkpoint(static_log)["verifies"]


def test_wrong_root(rfc_log: LocalCTLog, static_log: LocalCTLog) -> None:
    for log in (rfc_log, static_log):
        log.grow(6)
        log.publish()
        log.inject("wrong-root")
    sth = get_sth(rfc_log)
    assert sth_verifies(rfc_log, sth)  # validly signed...
    assert sth["tree_size"] == 6
    leaves = [leaf_hash(e["leaf_input"]) for e in all_entries(rfc_log, 6)]
    assert mth(leaves) != sth["root"]  # ...but not the entries' root
    note = get_checkpoint(static_log)
    assert note["verifies"]
    assert tiles_root(static_log, 6) != note["root"]
    rfc_log.heal("wrong-root")
    assert get_sth(rfc_log)["root"] == mth(leaves)


def test_fork_serves_another_tree_that_is_not_consistent(rfc_log: LocalCTLog) -> None:
    rfc_log.grow(10)
    rfc_log.publish()
    seen = get_sth(rfc_log)
    honest = all_entries(rfc_log, 10)
    rfc_log.inject("fork", index=3)
    same_size = get_sth(rfc_log)
    assert sth_verifies(rfc_log, same_size)
    assert same_size["tree_size"] == 10
    assert same_size["root"] != seen["root"]
    forked = all_entries(rfc_log, 10)
    assert [i for i in range(10) if forked[i] != honest[i]] == [3]
    # The fork is self-consistent: its entries give its root...
    assert mth([leaf_hash(e["leaf_input"]) for e in forked]) == same_size["root"]
    rfc_log.heal("fork")
    rfc_log.inject("fork", index=9, extra=5)
    bigger = get_sth(rfc_log)
    assert sth_verifies(rfc_log, bigger)
    assert bigger["tree_size"] == 15
    with client(rfc_log) as http:
        answer = http.get("ct/v1/get-sth-consistency?first=10&second=15").json()
    proof = [base64.b64decode(h) for h in answer["consistency"]]
    # ...but no proof links it to the head the client saw before.
    assert not verify_consistency(10, 15, proof, seen["root"], bigger["root"])
    fork_root_10 = mth([leaf_hash(e["leaf_input"]) for e in all_entries(rfc_log, 10)])
    assert verify_consistency(10, 15, proof, fork_root_10, bigger["root"])
    rfc_log.heal()
    assert get_sth(rfc_log)["root"] == seen["root"]
    assert rfc_log.faults == frozenset()


def test_fork_on_a_static_log(static_log: LocalCTLog) -> None:
    static_log.grow(300)
    static_log.publish()
    seen = get_checkpoint(static_log)
    static_log.inject("fork", extra=20)
    fork = get_checkpoint(static_log)
    assert fork["verifies"]
    assert fork["size"] == 320
    assert tiles_root(static_log, 320) == fork["root"]
    assert tiles_root(static_log, 300) != seen["root"]  # the tiles betray the fork
    static_log.heal("fork")
    assert tiles_root(static_log, 300) == seen["root"]


def test_truncated_and_malformed_entries(rfc_log: LocalCTLog, static_log: LocalCTLog) -> None:
    for log in (rfc_log, static_log):
        log.grow(5)
        log.publish()
    honest = all_entries(rfc_log, 5)
    with client(static_log) as http:
        honest_tile = http.get("tile/data/000.p/5").content
    rfc_log.inject("truncated-entries")
    static_log.inject("truncated-entries")
    cut = all_entries(rfc_log, 5)
    assert cut[0]["leaf_input"] == honest[0]["leaf_input"][: len(honest[0]["leaf_input"]) // 2]
    assert cut[1:] == honest[1:]
    with client(static_log) as http:
        assert http.get("tile/data/000.p/5").content == honest_tile[: len(honest_tile) // 2]
        assert http.get("tile/0/000.p/5").status_code == 200  # hash tiles are untouched
    for log in (rfc_log, static_log):
        log.heal("truncated-entries")
        log.inject("malformed-entries")
    bad = all_entries(rfc_log, 5)
    assert bad[0]["leaf_input"][0] == 0xFF
    assert bad[0]["leaf_input"][1:] == honest[0]["leaf_input"][1:]
    with client(static_log) as http:
        body = http.get("tile/data/000.p/5").content
    assert len(body) == len(honest_tile)
    assert body[8:10] == b"\xff\xff"
    with pytest.raises(AssertionError):
        parse_tile_leaves(body)
    rfc_log.heal()
    assert all_entries(rfc_log, 5) == honest


def test_rate_limit_with_retry_after_counts_down(static_log: LocalCTLog) -> None:
    static_log.grow(3)
    static_log.publish()
    static_log.inject("rate-limit", count=2, retry_after=7)
    with client(static_log) as http:
        first, second, third = (http.get("checkpoint") for _ in range(3))
    assert [r.status_code for r in (first, second, third)] == [429, 429, 200]
    assert first.headers["retry-after"] == "7"
    assert static_log.requests[-3:] == ["/checkpoint"] * 3
    assert static_log.faults == frozenset()
    static_log.inject("rate-limit", retry_after=0, only="tile/data/")
    with client(static_log) as http:
        assert http.get("checkpoint").status_code == 200
        assert http.get("tile/0/000.p/3").status_code == 200
        for _ in range(3):
            limited = http.get("tile/data/000.p/3")
            assert limited.status_code == 429
            assert limited.headers["retry-after"] == "0"
        static_log.heal("rate-limit")
        assert http.get("tile/data/000.p/3").status_code == 200


def test_slow_and_drop(rfc_log: LocalCTLog) -> None:
    rfc_log.inject("slow", delay=0.3, count=1)
    with client(rfc_log) as http:
        started = time.monotonic()
        assert http.get("ct/v1/get-sth").status_code == 200
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        assert http.get("ct/v1/get-sth").status_code == 200
        assert time.monotonic() - started < 0.3
    rfc_log.inject("drop", count=2, only="ct/v1/get-entries")
    with client(rfc_log) as http:
        assert http.get("ct/v1/get-sth").status_code == 200
        for _ in range(2):
            with pytest.raises(httpx.RemoteProtocolError):
                http.get("ct/v1/get-entries?start=0&end=0")
        assert http.get("ct/v1/get-entries?start=0&end=0").status_code == 400  # empty log
    assert rfc_log.requests.count("/ct/v1/get-entries?start=0&end=0") == 3
    # Slow, then rate limited: both apply to one request.
    rfc_log.inject("slow", delay=0.2)
    rfc_log.inject("rate-limit", count=1)
    with client(rfc_log) as http:
        started = time.monotonic()
        assert http.get("ct/v1/get-sth").status_code == 429
        assert time.monotonic() - started >= 0.2
    assert rfc_log.faults == {"slow"}


def test_inject_refuses_what_it_cannot_do(rfc_log: LocalCTLog) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        rfc_log.inject("flood")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="until healed"):
        rfc_log.inject("wrong-root", count=2)
    with pytest.raises(ValueError, match="cannot fork"):
        rfc_log.inject("fork")  # nothing published yet
    with pytest.raises(ValueError, match="count"):
        rfc_log.inject("drop", count=0)
    assert rfc_log.faults == frozenset()
    with pytest.raises(ValueError, match="loopback"):
        LocalCTLog(host="192.0.2.1")
    with pytest.raises(ValueError, match="key"):
        LocalCTLog(key_type="ec-p384")  # type: ignore[arg-type]


# -- robustness ------------------------------------------------------------------------------


def test_publishing_while_serving_is_safe(rfc_log: LocalCTLog, static_log: LocalCTLog) -> None:
    """While a writer grows and publishes, readers see only signed heads that verify,
    never shrink, and are consistent with each other (RFC 6962: by proof; static: the
    tiles served give the checkpoint's root)."""
    for log in (rfc_log, static_log):
        log.grow(1)
        log.publish()
    stop = threading.Event()
    failures: list[str] = []
    checks: list[int] = []

    def writer() -> None:
        for _ in range(25):
            for log in (rfc_log, static_log):
                log.grow(3)
                log.publish()
            time.sleep(0.01)
        stop.set()

    def rfc_reader() -> None:
        previous: dict[str, Any] | None = None
        with client(rfc_log) as http:
            while not stop.is_set():
                sth = get_sth(rfc_log)
                if not sth_verifies(rfc_log, sth):
                    failures.append(f"bad signature at {sth['tree_size']}")
                if previous is not None:
                    first, second = previous["tree_size"], sth["tree_size"]
                    if second < first:
                        failures.append(f"shrank from {first} to {second}")
                        continue
                    answer = http.get(
                        "ct/v1/get-sth-consistency", params={"first": first, "second": second}
                    ).json()
                    proof = [base64.b64decode(h) for h in answer["consistency"]]
                    if not verify_consistency(first, second, proof, previous["root"], sth["root"]):
                        failures.append(f"inconsistent {first} -> {second}")
                    checks.append(second)
                previous = sth

    def static_reader() -> None:
        while not stop.is_set():
            note = get_checkpoint(static_log)
            if not note["verifies"] or tiles_root(static_log, note["size"]) != note["root"]:
                failures.append(f"checkpoint of size {note['size']} does not match its tiles")
            checks.append(note["size"])

    threads = [threading.Thread(target=rfc_reader) for _ in range(2)]
    threads.append(threading.Thread(target=static_reader))
    for thread in threads:
        thread.start()
    writer()
    for thread in threads:
        thread.join(30)
    assert not failures
    assert len(checks) >= 10
    assert get_sth(rfc_log)["tree_size"] == get_checkpoint(static_log)["size"] == 76


@pytest.fixture(scope="module")
def idle_static_log() -> Iterator[LocalCTLog]:
    log = LocalCTLog("static")  # never started: requests are answered in-process
    log.grow(300)
    log.publish()
    yield log
    log.stop()


_PATHS = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda base, tail: base + tail,
        st.sampled_from(
            [
                "/tile/",
                "/tile/data/",
                "/tile/0/",
                "/tile/1/",
                "/issuer/",
                "/checkpoint",
                "/ct/v1/get-roots",
                "/ct/v1/get-entries?",
                "/ct/v1/add-chain",
                "/",
            ]
        ),
        st.text(alphabet="x0123456789./p?&=%+-abcdef", max_size=30),
    ),
)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(method=st.sampled_from(["GET", "POST", "PUT"]), path=_PATHS, body=st.binary(max_size=64))
def test_any_request_gets_an_http_answer(
    idle_static_log: LocalCTLog, method: str, path: str, body: bytes
) -> None:
    response = idle_static_log._respond(method, path, body)
    assert response.status in (200, 400, 404, 405)


@pytest.fixture(scope="module")
def idle_rfc_log() -> Iterator[LocalCTLog]:
    log = LocalCTLog("rfc6962")
    log.grow(20)
    log.publish()
    yield log
    log.stop()


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.text(alphabet="x0123456789./p?&=%+-", max_size=40), body=st.binary(max_size=200))
def test_rfc6962_requests_and_chains_of_garbage(
    idle_rfc_log: LocalCTLog, path: str, body: bytes
) -> None:
    log = idle_rfc_log
    assert log._respond("GET", "/ct/v1/get-entries?" + path, b"").status in (200, 400)
    assert log._respond("GET", "/ct/v1/get-proof-by-hash?" + path, b"").status in (400, 404)
    assert log._respond("GET", "/ct/v1/get-sth-consistency?" + path, b"").status in (200, 400)
    chain = json.dumps({"chain": [base64.b64encode(body).decode()]}).encode()
    assert log._respond("POST", "/ct/v1/add-pre-chain", chain).status == 400
    assert log._respond("POST", "/ct/v1/add-chain", body).status == 400


def test_stop_closes_the_port() -> None:
    log = LocalCTLog().start()
    port = log.port
    with client(log) as http:
        assert http.get("ct/v1/get-sth").status_code == 200
    log.stop()
    with pytest.raises(httpx.ConnectError), httpx.Client(trust_env=False) as http:
        http.get(f"http://127.0.0.1:{port}/ct/v1/get-sth")
