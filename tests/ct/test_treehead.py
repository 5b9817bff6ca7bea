"""Signed tree heads: RFC 6962 get-sth JSON and static-ct-api checkpoints, signed here with
keys generated per test (ECDSA P-256 and RSA), parsed strictly and verified."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.ct.logs import Log, log_id_of
from pinwarden.ct.treehead import (
    MAX_TREE_SIZE,
    SIG_ECDSA,
    SIG_RSA,
    SignedTreeHead,
    checkpoint_key_id,
    checkpoint_origin,
    digitally_signed,
    expected_origins,
    format_checkpoint,
    parse_checkpoint,
    parse_digitally_signed,
    parse_sth,
    tree_head_signature_input,
    verify_checkpoint,
    verify_sth,
)
from pinwarden.errors import CTFormatError, LogListError, LogMisbehaviourError, PinwardenError

ROOT = hashlib.sha256(b"some tree").digest()
TIMESTAMP = 1_751_880_849_149


@dataclass
class Signer:
    """A test log: a key, its Log entry and a way to sign tree heads."""

    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    log: Log

    def sign(self, size: int, timestamp: int, root: bytes) -> bytes:
        data = tree_head_signature_input(size, timestamp, root)
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            raw = self.key.sign(data, ec.ECDSA(hashes.SHA256()))
            return digitally_signed(4, SIG_ECDSA, raw)
        raw = self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return digitally_signed(4, SIG_RSA, raw)

    def sth(self, size: int = 10, timestamp: int = TIMESTAMP, root: bytes = ROOT) -> SignedTreeHead:
        return SignedTreeHead(size, timestamp, root, self.sign(size, timestamp, root))

    def sth_json(self, **changes: Any) -> dict[str, Any]:
        head = self.sth()
        data: dict[str, Any] = {
            "tree_size": head.tree_size,
            "timestamp": head.timestamp_ms,
            "sha256_root_hash": base64.b64encode(head.root_hash).decode(),
            "tree_head_signature": base64.b64encode(head.signature).decode(),
        }
        data.update(changes)
        return data

    def checkpoint(self, size: int = 10, root: bytes = ROOT, origin: str | None = None) -> str:
        origin = origin or checkpoint_origin(self.log.submission_url or self.log.url or "")
        return format_checkpoint(self.sth(size, TIMESTAMP, root), origin, self.log.log_id)


def make_signer(kind: str = "ec", *, tiled: bool = False) -> Signer:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if kind == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if tiled:
        log = Log(
            "Test Tiled 2025h1",
            log_id_of(spki),
            spki,
            "Test Operator",
            tiled=True,
            submission_url="https://ct.example.org/2025h1/",
            monitoring_url="https://tiles.example.net/2025h1/",
        )
    else:
        log = Log("Test Log", log_id_of(spki), spki, "Test Operator", url="https://ct.example/log/")
    return Signer(key, log)


@pytest.fixture(scope="module")
def ec_signer() -> Signer:
    return make_signer("ec")


@pytest.fixture(scope="module")
def rsa_signer() -> Signer:
    return make_signer("rsa")


@pytest.fixture(scope="module")
def tiled() -> Signer:
    return make_signer("ec", tiled=True)


# -- get-sth -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_sth_parses_and_verifies(kind: str, ec_signer: Signer, rsa_signer: Signer) -> None:
    signer = ec_signer if kind == "ec" else rsa_signer
    body = json.dumps(signer.sth_json(extra_field="ignored")).encode()
    head = parse_sth(body)
    assert (head.tree_size, head.timestamp_ms, head.root_hash) == (10, TIMESTAMP, ROOT)
    assert head.timestamp.isoformat() == "2025-07-07T09:34:09.149000+00:00"
    verify_sth(head, signer.log)
    assert parse_digitally_signed(head.signature, "sig")[:2] == (
        4,
        SIG_ECDSA if kind == "ec" else SIG_RSA,
    )


def test_sth_json_round_trip(ec_signer: Signer) -> None:
    head = parse_sth(ec_signer.sth_json())
    again = SignedTreeHead.from_json(json.dumps(head.to_json()))
    assert again == head
    assert head.to_json()["timestamp_iso"] == "2025-07-07T09:34:09.149Z"


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": 11},
        {"timestamp": TIMESTAMP + 1},
        {"sha256_root_hash": base64.b64encode(bytes(32)).decode()},
    ],
    ids=["size", "timestamp", "root"],
)
def test_sth_with_a_changed_field_fails(ec_signer: Signer, change: dict[str, Any]) -> None:
    head = parse_sth(ec_signer.sth_json(**change))
    with pytest.raises(LogMisbehaviourError) as info:
        verify_sth(head, ec_signer.log)
    assert info.value.kind == "bad-signature"
    assert info.value.log == "Test Log"
    assert info.value.evidence["tree_head"] == head.to_json()


def test_sth_signed_by_another_key_fails(ec_signer: Signer) -> None:
    other = make_signer("ec")
    with pytest.raises(LogMisbehaviourError, match="does not verify"):
        verify_sth(other.sth(), ec_signer.log)


def test_sth_algorithm_must_match_the_key(ec_signer: Signer, rsa_signer: Signer) -> None:
    head = ec_signer.sth()
    _, _, raw = parse_digitally_signed(head.signature, "sig")
    as_rsa = SignedTreeHead(10, TIMESTAMP, ROOT, digitally_signed(4, SIG_RSA, raw))
    with pytest.raises(LogMisbehaviourError, match="key is ECDSA"):
        verify_sth(as_rsa, ec_signer.log)
    sha1 = SignedTreeHead(10, TIMESTAMP, ROOT, digitally_signed(2, SIG_ECDSA, raw))
    with pytest.raises(LogMisbehaviourError, match="hash algorithm 2"):
        verify_sth(sha1, ec_signer.log)
    with pytest.raises(LogMisbehaviourError, match="key is RSA"):
        verify_sth(head, rsa_signer.log)


def test_unusable_log_key_is_a_log_list_error(ec_signer: Signer) -> None:
    broken = Log("Broken", b"\x00" * 32, b"not a key", "op", url="https://x.example/")
    with pytest.raises(LogListError, match="Broken"):
        verify_sth(ec_signer.sth(), broken)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tree_size": None}, "tree_size is not an integer"),
        ({"tree_size": True}, "tree_size is not an integer"),
        ({"tree_size": -1}, "tree_size -1 is not in"),
        ({"tree_size": 1 << 64}, "not in 0..2"),
        ({"timestamp": "1"}, "timestamp is not an integer"),
        ({"timestamp": 1 << 62}, "after the year 9999"),
        ({"sha256_root_hash": "***"}, "sha256_root_hash is not base64"),
        ({"sha256_root_hash": base64.b64encode(bytes(31)).decode()}, "31 bytes"),
        ({"sha256_root_hash": 5}, "sha256_root_hash is not a string"),
        ({"tree_head_signature": base64.b64encode(b"\x04\x03\x00").decode()}, "truncated"),
        ({"tree_head_signature": base64.b64encode(b"\x04\x03\x00\x01ab").decode()}, "trailing"),
    ],
)
def test_sth_field_errors(ec_signer: Signer, change: dict[str, Any], message: str) -> None:
    with pytest.raises(CTFormatError, match=message):
        parse_sth(json.dumps(ec_signer.sth_json(**change)), source="my log: get-sth")


@pytest.mark.parametrize(
    "field", ["tree_size", "timestamp", "sha256_root_hash", "tree_head_signature"]
)
def test_sth_missing_field(ec_signer: Signer, field: str) -> None:
    data = ec_signer.sth_json()
    del data[field]
    with pytest.raises(CTFormatError, match=f"get-sth: {field} is missing"):
        parse_sth(data)


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 100_000, b'"x"', b"null"]
)
def test_sth_not_an_object(body: bytes) -> None:
    with pytest.raises(CTFormatError, match="get-sth: not"):
        parse_sth(body)


# -- checkpoints ---------------------------------------------------------------------------


def test_checkpoint_origin() -> None:
    assert checkpoint_origin("https://rome.ct.example.com/2024h1/") == "rome.ct.example.com/2024h1"
    assert checkpoint_origin("https://rome.ct.example.com//") == "rome.ct.example.com"
    assert checkpoint_origin("http://127.0.0.1:8080/log") == "127.0.0.1:8080/log"
    assert checkpoint_origin("example.com/log/") == "example.com/log"


def test_key_id_is_over_the_log_id_not_the_spki(tiled: Signer) -> None:
    # static-ct-api: SHA-256(key name || 0x0A || 0x05 || LogID)[:4], LogID = SHA-256(SPKI).
    name = "ct.example.org/2025h1"
    expected = hashlib.sha256(name.encode() + b"\n\x05" + tiled.log.log_id).digest()[:4]
    assert checkpoint_key_id(name, tiled.log.log_id) == expected
    assert expected != hashlib.sha256(name.encode() + b"\n\x05" + tiled.log.key).digest()[:4]


def test_checkpoint_verifies(tiled: Signer) -> None:
    note = tiled.checkpoint()
    assert note.startswith("ct.example.org/2025h1\n10\n")
    head = verify_checkpoint(note.encode(), tiled.log)
    assert (head.tree_size, head.timestamp_ms, head.root_hash) == (10, TIMESTAMP, ROOT)
    assert head.origin == "ct.example.org/2025h1"
    assert head.checkpoint == note
    # The note signature is the get-sth signature (static-ct-api: the forms convert).
    verify_sth(head, tiled.log)


@pytest.mark.parametrize("size", [MAX_TREE_SIZE + 1, 1 << 63, (1 << 64) - 1])
def test_an_implausible_signed_size_is_misbehaviour(
    size: int, ec_signer: Signer, tiled: Signer
) -> None:
    head = ec_signer.sth(size=size)
    with pytest.raises(LogMisbehaviourError) as info:
        verify_sth(head, ec_signer.log)
    assert info.value.kind == "implausible-size"
    assert info.value.evidence["tree_head"] == head.to_json()
    with pytest.raises(LogMisbehaviourError) as info:
        verify_checkpoint(tiled.checkpoint(size=size), tiled.log)
    assert info.value.kind == "implausible-size"
    evidence = info.value.evidence["tree_head"]
    assert isinstance(evidence, dict)
    assert evidence["tree_size"] == size
    assert "checkpoint" in evidence


def test_the_size_limit(ec_signer: Signer, tiled: Signer) -> None:
    verify_sth(ec_signer.sth(size=MAX_TREE_SIZE), ec_signer.log)
    assert verify_checkpoint(tiled.checkpoint(size=MAX_TREE_SIZE), tiled.log).tree_size == (
        MAX_TREE_SIZE
    )
    # A caller may ask for less.
    with pytest.raises(LogMisbehaviourError, match="implausible-size"):
        verify_sth(ec_signer.sth(size=11), ec_signer.log, max_tree_size=10)
    with pytest.raises(LogMisbehaviourError, match="implausible-size"):
        verify_checkpoint(tiled.checkpoint(size=11), tiled.log, max_tree_size=10)


def test_a_bad_signature_is_reported_before_the_size(ec_signer: Signer) -> None:
    head = ec_signer.sth(size=1 << 63)
    forged = SignedTreeHead(head.tree_size + 1, head.timestamp_ms, ROOT, head.signature)
    with pytest.raises(LogMisbehaviourError, match="bad-signature"):
        verify_sth(forged, ec_signer.log)


def test_checkpoint_with_rsa_key() -> None:
    signer = make_signer("rsa", tiled=True)
    head = verify_checkpoint(signer.checkpoint(size=0, root=hashlib.sha256().digest()), signer.log)
    assert head.tree_size == 0


def test_expected_origins_accept_the_monitoring_prefix(tiled: Signer) -> None:
    assert expected_origins(tiled.log) == ("ct.example.org/2025h1", "tiles.example.net/2025h1")
    note = tiled.checkpoint(origin="tiles.example.net/2025h1")
    assert verify_checkpoint(note, tiled.log).origin == "tiles.example.net/2025h1"


def test_checkpoint_of_another_origin_is_refused(tiled: Signer) -> None:
    note = tiled.checkpoint(origin="evil.example/log")
    with pytest.raises(LogMisbehaviourError) as info:
        verify_checkpoint(note, tiled.log)
    assert info.value.kind == "wrong-origin"
    assert info.value.evidence["checkpoint"] == note
    # An explicit origin overrides the list's URLs.
    assert verify_checkpoint(note, tiled.log, origin="evil.example/log").tree_size == 10


def _witness_line(name: str) -> str:
    return "\u2014 " + name + " " + base64.b64encode(b"\x01\x02\x03\x04" + bytes(64)).decode()


def test_witness_signatures_are_ignored(tiled: Signer) -> None:
    note = tiled.checkpoint()
    with_witnesses = (
        note
        + _witness_line("witness.example/w1")
        + "\n"
        # Same name as the log, but another key ID: another key, ignored.
        + _witness_line("ct.example.org/2025h1")
        + "\n"
    )
    assert verify_checkpoint(with_witnesses, tiled.log).tree_size == 10
    # Witness lines first work too.
    body, signature = note.split("\n\n")
    first = body + "\n\n" + _witness_line("witness.example/w1") + "\n" + signature
    assert verify_checkpoint(first, tiled.log).tree_size == 10


def test_checkpoint_without_the_logs_signature(tiled: Signer) -> None:
    body = tiled.checkpoint().split("\n\n")[0]
    note = body + "\n\n" + _witness_line("witness.example/w1") + "\n"
    with pytest.raises(LogMisbehaviourError, match="no signature by the log's key") as info:
        verify_checkpoint(note, tiled.log)
    assert info.value.kind == "bad-signature"


def test_checkpoint_key_id_over_spki_is_not_the_logs(tiled: Signer) -> None:
    # A signer that computed the key ID over the DER SPKI: not recognised as the log's key.
    head = tiled.sth()
    origin = "ct.example.org/2025h1"
    wrong_id = hashlib.sha256(origin.encode() + b"\n\x05" + tiled.log.key).digest()[:4]
    signature = wrong_id + head.timestamp_ms.to_bytes(8, "big") + head.signature
    note = f"{origin}\n10\n{base64.b64encode(ROOT).decode()}\n\n\u2014 {origin} "
    note += base64.b64encode(signature).decode() + "\n"
    with pytest.raises(LogMisbehaviourError, match="no signature by the log's key"):
        verify_checkpoint(note, tiled.log)


def test_checkpoint_with_a_bad_signature(tiled: Signer) -> None:
    forged = tiled.checkpoint(size=10).replace("\n10\n", "\n11\n", 1)
    with pytest.raises(LogMisbehaviourError, match="line 5: the signature") as info:
        verify_checkpoint(forged, tiled.log)
    assert info.value.kind == "bad-signature"


def test_any_bad_signature_of_the_log_rejects_the_note(tiled: Signer) -> None:
    note = tiled.checkpoint()
    good_line = note.split("\n\n")[1].rstrip("\n")
    name, encoded = good_line[2:].split(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 1
    bad_line = f"\u2014 {name} {base64.b64encode(bytes(raw)).decode()}"
    with pytest.raises(LogMisbehaviourError, match="line 6"):
        verify_checkpoint(note + bad_line + "\n", tiled.log)


def test_truncated_note_signature(tiled: Signer) -> None:
    origin = "ct.example.org/2025h1"
    key_id = checkpoint_key_id(origin, tiled.log.log_id)
    note = f"{origin}\n10\n{base64.b64encode(ROOT).decode()}\n\n\u2014 {origin} "
    note += base64.b64encode(key_id + b"\x00" * 9).decode() + "\n"
    with pytest.raises(LogMisbehaviourError, match="truncated") as info:
        verify_checkpoint(note, tiled.log)
    assert info.value.kind == "bad-signature"


def test_extension_lines_are_refused_with_an_rfc6962_signature(tiled: Signer) -> None:
    body, signature = tiled.checkpoint().split("\n\n")
    note = body + "\nextension line\n\n" + signature
    with pytest.raises(LogMisbehaviourError) as info:
        verify_checkpoint(note, tiled.log)
    assert info.value.kind == "malformed-tree-head"


def test_parse_checkpoint_fields(tiled: Signer) -> None:
    body, signature = tiled.checkpoint().split("\n\n")
    note = body + "\next one\next two\n\n" + signature + _witness_line("w.example/x") + "\n"
    parsed = parse_checkpoint(note.encode())
    assert parsed.origin == "ct.example.org/2025h1"
    assert parsed.extensions == ("ext one", "ext two")
    assert [(s.name, s.line) for s in parsed.signatures] == [
        ("ct.example.org/2025h1", 7),
        ("w.example/x", 8),
    ]
    assert parsed.text == body + "\next one\next two\n"


VALID = (
    "log.example/a\n10\n"
    + base64.b64encode(ROOT).decode()
    + "\n\n\u2014 log.example/a "
    + base64.b64encode(bytes(70)).decode()
    + "\n"
)


@pytest.mark.parametrize(
    ("note", "message"),
    [
        (VALID.rstrip("\n"), "does not end with a newline"),
        (VALID.replace("\n\n", "\n"), "no blank line"),
        (VALID.replace("\u2014", "-"), "line 5: a signature line starts with an em dash"),
        (VALID.replace("\n10\n", "\n010\n"), "line 2: tree size '010'"),
        (VALID.replace("\n10\n", "\n-1\n"), "line 2"),
        (VALID.replace("\n10\n", "\n" + str(1 << 64) + "\n"), "does not fit 64 bits"),
        (VALID.replace("\n10\n", "\n1e3\n"), "line 2"),
        (VALID.replace("\u2014 log.example/a", "\u2014 log+example/a"), "line 5: key name"),
        (VALID.replace("\u2014 log.example/a ", "\u2014  "), "line 5: key name"),
        (VALID.replace("\u2014 log.example/a ", "\u2014 a b "), "line 5: a signature line is"),
        (VALID[:-3] + "!!\n", "line 5: signature is not base64"),
        (
            VALID.split("\u2014")[0]
            + "\u2014 log.example/a "
            + base64.b64encode(b"1234").decode()
            + "\n",
            "shorter than a key ID",
        ),
        (
            VALID.replace(base64.b64encode(ROOT).decode(), base64.b64encode(bytes(31)).decode()),
            "line 3: root hash is 31",
        ),
        (
            VALID.replace(base64.b64encode(ROOT).decode(), "not base64!"),
            "line 3: root hash is not base64",
        ),
        (VALID.replace("log.example/a\n10", "log.example/a\r\n10", 1), "line 1: control character"),
        (VALID.replace("\n10\n", "\n1\t0\n"), "line 2: control character"),
        ("log.example/a\n10\n\n" + VALID.split("\n\n")[1], "body has 2 line"),
        ("\n10\n" + VALID.split("\n", 2)[2], "line 1: the origin is empty"),
        (VALID + "\n", "no signature lines after the blank line"),
    ],
)
def test_checkpoint_format_errors(note: str, message: str) -> None:
    with pytest.raises(CTFormatError, match=message):
        parse_checkpoint(note, source="my checkpoint")


def test_checkpoint_empty_extension_line(tiled: Signer) -> None:
    body, signature = tiled.checkpoint().split("\n\n")
    # Only the last blank line separates the signatures, so an earlier one is an empty
    # extension line.
    note = body + "\n\next\n\n" + signature
    with pytest.raises(CTFormatError, match="line 4: empty extension line"):
        parse_checkpoint(note)


def test_checkpoint_not_utf8() -> None:
    with pytest.raises(CTFormatError, match="not UTF-8"):
        parse_checkpoint(VALID.encode().replace(b"log.example", b"log\xffexample", 1))
    with pytest.raises(CTFormatError, match="not valid Unicode"):
        parse_checkpoint(VALID.replace("log.example", "log\ud800example", 1))


def test_checkpoint_size_and_signature_limits() -> None:
    many = VALID + "".join(_witness_line(f"w{i}.example") + "\n" for i in range(100))
    with pytest.raises(CTFormatError, match="101 signature lines"):
        parse_checkpoint(many)
    at_limit = VALID + "".join(_witness_line(f"w{i}.example") + "\n" for i in range(99))
    assert len(parse_checkpoint(at_limit).signatures) == 100
    with pytest.raises(CTFormatError, match="larger than"):
        parse_checkpoint(b"x" * ((1 << 20) + 1))


# -- hypothesis: hostile input only raises pinwarden errors -----------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=20,
)
sth_like = st.fixed_dictionaries(
    {},
    optional={
        "tree_size": json_values | st.integers(min_value=-1, max_value=1 << 65),
        "timestamp": json_values,
        "sha256_root_hash": st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())
        | json_values,
        "tree_head_signature": st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode())
        | json_values,
    },
)


@settings(max_examples=300)
@given(data=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_sth_parser_raises_only_pinwarden_errors(data: bytes) -> None:
    with contextlib.suppress(CTFormatError):
        parse_sth(data)


@settings(max_examples=300)
@given(obj=sth_like)
def test_sth_like_objects_raise_only_pinwarden_errors(obj: dict[str, Any]) -> None:
    try:
        head = parse_sth(json.dumps(obj))
    except CTFormatError:
        return
    assert head.tree_size == obj["tree_size"]


HOSTILE_SIGNER = make_signer("ec", tiled=True)
GOOD_NOTE = HOSTILE_SIGNER.checkpoint()


@settings(max_examples=300)
@given(data=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_checkpoint_parser_raises_only_pinwarden_errors(data: bytes) -> None:
    with contextlib.suppress(PinwardenError):
        verify_checkpoint(data, HOSTILE_SIGNER.log)


note_lines = st.lists(
    st.sampled_from(["ct.example.org/2025h1", "10", "0", base64.b64encode(ROOT).decode(), ""])
    | st.text(max_size=30),
    max_size=6,
)
signature_lines = st.lists(
    st.tuples(
        st.sampled_from(["ct.example.org/2025h1", "w.example", "", "a b"]) | st.text(max_size=10),
        st.binary(max_size=90).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=10),
    ).map(lambda pair: f"\u2014 {pair[0]} {pair[1]}"),
    max_size=4,
)


@settings(max_examples=300)
@given(body=note_lines, signatures=signature_lines)
def test_structured_notes_raise_only_pinwarden_errors(
    body: list[str], signatures: list[str]
) -> None:
    note = "\n".join(body) + "\n\n" + "".join(line + "\n" for line in signatures)
    with contextlib.suppress(PinwardenError):
        head = verify_checkpoint(note, HOSTILE_SIGNER.log)
        # Random signatures never verify.
        raise AssertionError(f"verified {head}")


@settings(max_examples=300)
@given(
    position=st.integers(min_value=0, max_value=len(GOOD_NOTE.encode()) - 1),
    replacement=st.binary(min_size=0, max_size=3),
)
def test_mutated_checkpoints_never_verify_wrongly(position: int, replacement: bytes) -> None:
    raw = GOOD_NOTE.encode()
    mutated = raw[:position] + replacement + raw[position + 1 :]
    try:
        head = verify_checkpoint(mutated, HOSTILE_SIGNER.log)
    except PinwardenError:
        return
    # Anything that still verifies says exactly what the log signed.
    assert (head.tree_size, head.root_hash, head.timestamp_ms) == (10, ROOT, TIMESTAMP)
