"""Log lists: Chrome v3 and Apple parsing, signatures, downloads, the cache, staleness."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import vectors
from pinwarden.ct.loglist import (
    CHROME_ALL_LOGS_LIST_URL,
    CHROME_LOG_LIST_URL,
    GOOGLE_LOG_LIST_KEY_PEM,
    cache_path,
    cached_log_list,
    default_cache_dir,
    default_log_list,
    detect_kind,
    load_log_list,
    log_to_json,
    parse_log_list,
    published_signature_url,
    staleness_warning,
    verify_signature,
)
from pinwarden.ct.logs import FinalTreeHead, Log, LogList, LogState, PreviousOperator, log_id_of
from pinwarden.errors import LogListError, NetworkError

UTC = timezone.utc
T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _spki() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _log(description: str, operator: str, **kwargs: Any) -> Log:
    key = _spki()
    fields: dict[str, Any] = {"url": f"https://{operator.lower()}.example/{len(description)}/"}
    fields.update(kwargs)
    return Log(description=description, log_id=log_id_of(key), key=key, operator=operator, **fields)


def _built() -> LogList:
    """A list with every field the model has: RFC 6962 and tiled logs, all the states that
    carry extra data, an operator change."""
    return LogList(
        logs=(
            _log("A 'Usable'", "Alpha", state=LogState.USABLE, state_since=T0, log_type="prod"),
            _log(
                "A 'Frozen'",
                "Alpha",
                state=LogState.READONLY,
                state_since=T1,
                final_tree_head=FinalTreeHead(1234, hashlib.sha256(b"root").digest()),
                temporal_interval=(T0, T1),
            ),
            _log(
                "A 'Tiled2025'",
                "Alpha",
                url=None,
                tiled=True,
                submission_url="https://submit.alpha.example/2025/",
                monitoring_url="https://monitor.alpha.example/2025/",
                mmd=60,
                state=LogState.QUALIFIED,
                state_since=T0,
                temporal_interval=(T1, T1 + timedelta(days=182)),
            ),
            _log(
                "B 'Bought'",
                "Beta",
                state=LogState.RETIRED,
                state_since=T1,
                previous_operators=(
                    PreviousOperator("Gamma", T0),
                    PreviousOperator("Delta", T0 - timedelta(days=30)),
                ),
            ),
            _log("B 'Fresh'", "Beta", state=LogState.PENDING, state_since=T1),
            _log("B 'Bad'", "Beta", state=LogState.REJECTED, state_since=T1, log_type="test"),
        ),
        version="42.1",
        timestamp=T1,
    )


BUILT = _built()


def _bytes(document: Any) -> bytes:
    return json.dumps(document, indent=1).encode()


def _chrome_doc() -> dict[str, Any]:
    return BUILT.to_chrome_v3()


# -- the real sample -----------------------------------------------------------------------


@pytest.mark.vectors
def test_real_chrome_sample_parses_with_its_states() -> None:
    path = vectors("ct/loglist") / "loglist3.json"
    loglist = parse_log_list(path.read_bytes(), source=str(path))
    assert loglist.kind == "chrome"
    assert loglist.version == "9.4"
    assert loglist.timestamp == datetime(2022, 5, 6, 12, 55, 11, tzinfo=UTC)
    assert loglist.operators == ("Google", "Bob's CT Log Shop")
    states = {log.description: log.state for log in loglist.logs}
    assert states == {
        "Google 'Aviator' log": LogState.READONLY,
        "Google 'Icarus' log": LogState.USABLE,
        "Google 'Racketeer' log": None,
        "Google 'Rocketeer' log": LogState.USABLE,
        "Google 'Argon2020' log": LogState.QUALIFIED,
        "Bob's Dubious Log": LogState.RETIRED,
    }
    aviator = loglist.by_id(base64.b64decode("aPaY+B9kgr46jO65KB1M/HFRXWeT1ETRCmesu09P+8Q="))
    assert aviator is not None
    # Two fraction digits in the sample: read on every Python.
    assert aviator.state_since == datetime(2016, 11, 30, 13, 24, 18, 330000, tzinfo=UTC)
    assert aviator.final_tree_head == FinalTreeHead(
        46466472, base64.b64decode("LcGcZRsm+LGYmrlyC5LXhV1T6OD8iH5dNlb0sEJl9bA=")
    )
    assert aviator.url == "https://ct.googleapis.com/aviator/"
    argon = next(log for log in loglist.logs if log.description == "Google 'Argon2020' log")
    assert argon.temporal_interval == (
        datetime(2018, 2, 27, tzinfo=UTC),
        datetime(2020, 1, 1, tzinfo=UTC),
    )
    bob = next(log for log in loglist.logs if log.operator == "Bob's CT Log Shop")
    assert bob.state_since == datetime(2016, 4, 15, tzinfo=UTC)
    assert all(not log.tiled and log.mmd == 86400 for log in loglist.logs)


# -- lists we build ------------------------------------------------------------------------


def test_round_trip_through_chrome_v3() -> None:
    parsed = parse_log_list(_bytes(BUILT.to_chrome_v3()), source="built.json")
    assert parsed.logs == BUILT.logs
    assert (parsed.kind, parsed.version, parsed.timestamp) == ("chrome", "42.1", T1)
    assert parsed.source == "built.json"
    tiled = [log for log in parsed.logs if log.tiled]
    assert [log.base_url for log in tiled] == ["https://monitor.alpha.example/2025/"]
    bought = parsed.logs[3]
    assert bought.operator_at(T0 - timedelta(days=31)) == "Delta"
    assert bought.operator_at(T0 - timedelta(days=1)) == "Gamma"
    assert bought.operator_at(T0) == "Beta"


def test_unknown_fields_are_ignored_and_description_is_optional() -> None:
    document = _chrome_doc()
    document["is_all_logs"] = True
    document["future"] = {"anything": [1, 2]}
    entry = document["operators"][0]["logs"][0]
    entry["dns"] = "usable.alpha.example"
    entry["something_new"] = None
    del entry["description"]
    parsed = parse_log_list(_bytes(document), source="x")
    log = parsed.by_id(base64.b64decode(entry["log_id"]))
    assert log is not None
    assert log.description == f"log {entry['log_id']}"


def _apple_doc() -> dict[str, Any]:
    """Apple's shape (log_list_schema_v5): asset versions, a version in each state,
    tls_only, no log_list_timestamp, readonly without a final tree head."""
    keys = [_spki() for _ in range(3)]

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "$schema": "https://valid.apple.com/ct/log_list/schema_versions/log_list_schema_v5.json",
        "assetVersion": 32,
        "assetVersionV2": 1013,
        "version": "511",
        "operators": [
            {
                "email": ["ct@example.com"],
                "name": "Example",
                "logs": [
                    {
                        "description": "Example 'Classic' log",
                        "key": b64(keys[0]),
                        "log_id": b64(log_id_of(keys[0])),
                        "mmd": 86400,
                        "state": {
                            "usable": {"timestamp": "2024-11-26T18:07:26Z", "version": "308"}
                        },
                        "temporal_interval": {
                            "end_exclusive": "2027-01-01T00:00:00Z",
                            "start_inclusive": "2026-01-01T00:00:00Z",
                        },
                        "url": "https://ct.example.com/logs/classic2026/",
                    },
                    {
                        "description": "Example 'Frozen' log",
                        "key": b64(keys[1]),
                        "log_id": b64(log_id_of(keys[1])),
                        "mmd": 86400,
                        "state": {
                            "readonly": {"timestamp": "2025-01-01T00:00:00Z", "version": "7"}
                        },
                        "url": "https://ct.example.com/logs/frozen/",
                    },
                ],
                "tiled_logs": [
                    {
                        "description": "Example 'Tiles2026h1' log",
                        "key": b64(keys[2]),
                        "log_id": b64(log_id_of(keys[2])),
                        "mmd": 60,
                        "monitoring_url": "https://tiles2026h1.mon.example.com/",
                        "submission_url": "https://tiles2026h1.log.example.com/",
                        "state": {
                            "usable": {"timestamp": "2025-11-17T21:04:05Z", "version": "441"}
                        },
                        "tls_only": True,
                    }
                ],
            }
        ],
    }


def test_apple_list_is_detected_and_parsed() -> None:
    parsed = parse_log_list(_bytes(_apple_doc()), source="apple.json")
    assert parsed.kind == "apple"
    assert parsed.version == "511"
    assert parsed.timestamp is None
    classic, frozen, tiles = parsed.logs
    assert classic.state is LogState.USABLE
    assert classic.state_since == datetime(2024, 11, 26, 18, 7, 26, tzinfo=UTC)
    assert classic.temporal_interval == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert frozen.state is LogState.READONLY and frozen.final_tree_head is None
    assert tiles.tiled and tiles.mmd == 60
    assert tiles.submission_url == "https://tiles2026h1.log.example.com/"
    assert tiles.base_url == "https://tiles2026h1.mon.example.com/"
    assert {log.operator for log in parsed.logs} == {"Example"}


def test_apple_list_needs_a_state_on_every_log() -> None:
    document = _apple_doc()
    del document["operators"][0]["tiled_logs"][0]["state"]
    with pytest.raises(LogListError, match=r"operators\[0\]\.tiled_logs\[0\]\.state: missing"):
        parse_log_list(_bytes(document), source="apple.json")


def test_apple_list_needs_its_version() -> None:
    document = _apple_doc()
    del document["version"]
    with pytest.raises(LogListError, match=r"apple\.json: version: missing"):
        parse_log_list(_bytes(document), source="apple.json")


def test_kind_detection_and_override() -> None:
    assert detect_kind({"operators": []}) == "chrome"
    assert detect_kind({"assetVersionV2": 1000}) == "apple"
    assert detect_kind({"$schema": "https://valid.apple.com/ct/log_list/x.json"}) == "apple"
    assert detect_kind({"$schema": "https://example.com/valid.apple.com/"}) == "chrome"
    chrome = _bytes(_chrome_doc())
    assert parse_log_list(chrome, source="x", kind="apple").kind == "apple"
    # The kind decides the rules: read as Chrome's, Apple's list needs final tree heads
    # for read-only logs but no state.
    document = _apple_doc()
    with pytest.raises(LogListError, match=r"readonly\.final_tree_head: missing"):
        parse_log_list(_bytes(document), source="x", kind="chrome")
    del document["operators"][0]["logs"][1]
    del document["operators"][0]["logs"][0]["state"]
    assert parse_log_list(_bytes(document), source="x", kind="chrome").logs[0].state is None
    with pytest.raises(LogListError, match="unknown log list kind 'mozilla'"):
        parse_log_list(chrome, source="x", kind="mozilla")


# -- bad input -----------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], Any]


def _set(path: tuple[Any, ...], value: Any) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        target: Any = document
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return mutate


def _delete(path: tuple[Any, ...]) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        target: Any = document
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return mutate


LOG0 = ("operators", 0, "logs", 0)
FROZEN = ("operators", 0, "logs", 1)
TILED = ("operators", 0, "tiled_logs", 0)
BOUGHT = ("operators", 1, "logs", 0)

BAD: list[tuple[str, Mutation, str]] = [
    ("no operators", _delete(("operators",)), "operators: missing"),
    ("operators object", _set(("operators",), {}), "operators: must be an array, not an object"),
    ("operator string", _set(("operators", 0), "x"), r"operators\[0\]: must be an object"),
    ("operator name", _delete(("operators", 0, "name")), r"operators\[0\]\.name: missing"),
    (
        "operator without logs",
        lambda d: d["operators"][0].pop("logs") and d["operators"][0].pop("tiled_logs"),
        r"operators\[0\]: has neither logs nor tiled_logs",
    ),
    (
        "email",
        _set(("operators", 0, "email"), [1]),
        r"operators\[0\]\.email\[0\]: must be a string, not a number",
    ),
    ("logs null", _set(("operators", 0, "logs"), None), r"operators\[0\]\.logs: must be an array"),
    ("log array", _set(LOG0, []), r"operators\[0\]\.logs\[0\]: must be an object, not an array"),
    ("key missing", _delete((*LOG0, "key")), r"operators\[0\]\.logs\[0\]\.key: missing"),
    ("key not base64", _set((*LOG0, "key"), "%%%"), r"logs\[0\]\.key: not base64"),
    ("key unicode", _set((*LOG0, "key"), "é"), r"logs\[0\]\.key: not base64"),
    ("key empty", _set((*LOG0, "key"), ""), r"logs\[0\]\.key: empty"),
    ("key number", _set((*LOG0, "key"), 5), r"logs\[0\]\.key: must be a string, not a number"),
    ("log_id missing", _delete((*LOG0, "log_id")), r"logs\[0\]\.log_id: missing"),
    ("log_id short", _set((*LOG0, "log_id"), "AAAA"), r"log_id: must decode to 32 bytes, not 3"),
    (
        "log_id of another key",
        _set((*LOG0, "log_id"), base64.b64encode(bytes(32)).decode()),
        r"logs\[0\]\.log_id: is not the SHA-256 of key",
    ),
    ("mmd missing", _delete((*LOG0, "mmd")), r"logs\[0\]\.mmd: missing"),
    ("mmd string", _set((*LOG0, "mmd"), "86400"), r"mmd: must be a whole number, not a string"),
    ("mmd bool", _set((*LOG0, "mmd"), True), r"mmd: must be a whole number, not a boolean"),
    ("mmd fraction", _set((*LOG0, "mmd"), 1.5), r"mmd: must be a whole number, not 1\.5"),
    ("mmd zero", _set((*LOG0, "mmd"), 0), r"mmd: must be at least 1, not 0"),
    ("url missing", _delete((*LOG0, "url")), r"logs\[0\]\.url: missing"),
    ("url scheme", _set((*LOG0, "url"), "ftp://x/"), r"logs\[0\]\.url: \"ftp://x/\" is not"),
    ("url no host", _set((*LOG0, "url"), "https:///x"), r"url: \"https:///x\" is not an http"),
    ("url bad", _set((*LOG0, "url"), "http://[::1"), r"url: \"http://\[::1\" is not an http"),
    (
        "tiled without monitoring_url",
        _delete((*TILED, "monitoring_url")),
        r"tiled_logs\[0\]\.monitoring_url: missing",
    ),
    (
        "tiled submission_url",
        _set((*TILED, "submission_url"), ["x"]),
        r"tiled_logs\[0\]\.submission_url: must be a string, not an array",
    ),
    ("state string", _set((*LOG0, "state"), "usable"), r"logs\[0\]\.state: must be an object"),
    (
        "two states",
        _set((*LOG0, "state", "retired"), {"timestamp": "2024-01-01T00:00:00Z"}),
        r"state: must name exactly one state, not retired, usable",
    ),
    ("no state", _set((*LOG0, "state"), {}), r"state: must name exactly one state, not none"),
    (
        "unknown state",
        _set((*LOG0, "state"), {"sleepy": {"timestamp": "2024-01-01T00:00:00Z"}}),
        r"logs\[0\]\.state: unknown state \"sleepy\"",
    ),
    (
        "state timestamp missing",
        _delete((*LOG0, "state", "usable", "timestamp")),
        r"logs\[0\]\.state\.usable\.timestamp: missing",
    ),
    (
        "state timestamp garbage",
        _set((*LOG0, "state", "usable", "timestamp"), "yesterday"),
        r"state\.usable\.timestamp: \"yesterday\" is not an RFC 3339 date-time",
    ),
    (
        "state timestamp empty",
        _set((*LOG0, "state", "usable", "timestamp"), ""),
        r"state\.usable\.timestamp: \"\" is not an RFC 3339",
    ),
    (
        "state timestamp naive",
        _set((*LOG0, "state", "usable", "timestamp"), "2024-01-01T00:00:00"),
        r"timestamp: \"2024-01-01T00:00:00\" has no UTC offset",
    ),
    (
        "state timestamp out of range",
        _set((*LOG0, "state", "usable", "timestamp"), "0001-01-01T00:00:00+01:00"),
        r"timestamp: \"0001-01-01T00:00:00\+01:00\" is out of range",
    ),
    (
        "readonly without final tree head",
        _delete((*FROZEN, "state", "readonly", "final_tree_head")),
        r"logs\[1\]\.state\.readonly\.final_tree_head: missing",
    ),
    (
        "negative tree size",
        _set((*FROZEN, "state", "readonly", "final_tree_head", "tree_size"), -1),
        r"final_tree_head\.tree_size: must be at least 0, not -1",
    ),
    (
        "root hash size",
        _set((*FROZEN, "state", "readonly", "final_tree_head", "sha256_root_hash"), "AAAA"),
        r"final_tree_head\.sha256_root_hash: must decode to 32 bytes",
    ),
    (
        "interval backwards",
        _set(
            (*FROZEN, "temporal_interval"),
            {"start_inclusive": "2025-01-01T00:00:00Z", "end_exclusive": "2024-01-01T00:00:00Z"},
        ),
        r"logs\[1\]\.temporal_interval: end_exclusive is not after start_inclusive",
    ),
    (
        "interval half",
        _delete((*FROZEN, "temporal_interval", "end_exclusive")),
        r"logs\[1\]\.temporal_interval\.end_exclusive: missing",
    ),
    (
        "interval string",
        _set((*FROZEN, "temporal_interval"), "2024"),
        r"temporal_interval: must be an object, not a string",
    ),
    (
        "previous operator time",
        _set((*BOUGHT, "previous_operators", 0, "end_time"), 17),
        r"operators\[1\]\.logs\[0\]\.previous_operators\[0\]\.end_time: must be a string",
    ),
    (
        "previous operator name",
        _delete((*BOUGHT, "previous_operators", 1, "name")),
        r"previous_operators\[1\]\.name: missing",
    ),
    ("description", _set((*LOG0, "description"), 7), r"description: must be a string"),
    ("log_type", _set((*LOG0, "log_type"), ["prod"]), r"logs\[0\]\.log_type: must be a string"),
    ("version", _set(("version",), 9.4), r"built\.json: version: must be a string"),
    (
        "list timestamp",
        _set(("log_list_timestamp",), "2024-13-01T00:00:00Z"),
        r"log_list_timestamp: \"2024-13-01T00:00:00Z\" is not an RFC 3339",
    ),
    (
        "duplicate log",
        lambda d: d["operators"][1]["logs"].append(copy.deepcopy(d["operators"][0]["logs"][0])),
        r"operators\[1\]\.logs\[3\]\.log_id: \S+ is also the ID of operators\[0\]\.logs\[0\]",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_fields_name_their_path(mutate: Mutation, message: str) -> None:
    document = _chrome_doc()
    mutate(document)
    with pytest.raises(LogListError, match=message) as caught:
        parse_log_list(_bytes(document), source="built.json")
    assert str(caught.value).startswith("built.json: ")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"operators": [], "x": NaN}', "NaN is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b"[]", "a log list is a JSON object, not an array"),
        (b"null", "a log list is a JSON object, not null"),
        (b'{"operators": []}' + b" " * 10, None),
    ],
)
def test_bytes_that_are_not_a_list(data: bytes, message: str | None) -> None:
    if message is None:
        assert parse_log_list(data, source="f").logs == ()
        return
    with pytest.raises(LogListError, match=message) as caught:
        parse_log_list(data, source="f.json")
    assert str(caught.value).startswith("f.json: ")


def _only_log_list_errors(data: bytes) -> None:
    try:
        parse_log_list(data, source="fuzz")
    except LogListError as exc:
        message = str(exc)
    else:
        return
    assert message.startswith("fuzz: ")


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.sampled_from(["", "AAAA", "2024-01-01T00:00:00Z", "https://x.example/", "usable"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["operators", "logs", "tiled_logs", "state", "key", "mmd", "url"])
            | st.text(max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@given(JSON)
@settings(max_examples=300, deadline=None)
def test_arbitrary_json_gives_a_list_or_a_log_list_error(document: Any) -> None:
    _only_log_list_errors(json.dumps(document).encode())


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += _paths(child, (*prefix, i))
    return found


VALID = _chrome_doc()
VALID_PATHS = _paths(VALID)


@given(st.sampled_from(VALID_PATHS), JSON, st.booleans())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_field_replaced_or_removed_gives_a_list_or_a_log_list_error(
    path: tuple[Any, ...], value: Any, remove: bool
) -> None:
    document = copy.deepcopy(VALID)
    (_delete(path) if remove else _set(path, value))(document)
    _only_log_list_errors(json.dumps(document).encode())


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_arbitrary_bytes_give_only_log_list_errors(data: bytes) -> None:
    _only_log_list_errors(data)


# -- signatures ----------------------------------------------------------------------------


@dataclass
class Signer:
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    @property
    def pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def der(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


def test_googles_key_is_the_published_one() -> None:
    key = serialization.load_pem_public_key(GOOGLE_LOG_LIST_KEY_PEM)
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 4096
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert (
        hashlib.sha256(der).hexdigest()
        == "f1d8b68e50210d8e73d9a3e97f571773c52d7f28c0b1a71beee81d8562e6fd85"
    )


def test_signature_checks(signer: Signer) -> None:
    data = _bytes(_chrome_doc())
    signature = signer.sign(data)
    verify_signature(data, signature, signer.pem, source="s")
    verify_signature(data, signature, signer.der, source="s")
    verify_signature(data, signature, signer.key.public_key(), source="s")
    with pytest.raises(LogListError, match="s: the signature does not verify with the given"):
        verify_signature(data + b" ", signature, signer.pem, source="s")
    with pytest.raises(LogListError, match="does not verify with Google's log-list key"):
        verify_signature(data, signature, source="s")
    with pytest.raises(LogListError, match="does not verify"):
        verify_signature(data, b"short", signer.pem, source="s")
    with pytest.raises(LogListError, match="s: the log-list public key is not a PEM or DER key"):
        verify_signature(data, signature, b"garbage", source="s")
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(LogListError, match="must be RSA"):
        verify_signature(data, signature, ec_pem, source="s")


def test_published_signature_urls() -> None:
    assert published_signature_url(CHROME_LOG_LIST_URL) == (
        "https://www.gstatic.com/ct/log_list/v3/log_list.sig"
    )
    assert published_signature_url(CHROME_ALL_LOGS_LIST_URL) == (
        "https://www.gstatic.com/ct/log_list/v3/all_logs_list.sig"
    )
    assert published_signature_url("https://valid.apple.com/ct/log_list/current.json") is None


@dataclass
class Site:
    """A local HTTP server on 127.0.0.1 serving ``files`` (path → bytes)."""

    base: str
    files: dict[str, bytes]
    requested: list[str]

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def site() -> Iterator[Site]:
    files: dict[str, bytes] = {}
    requested: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}", files, requested)
    finally:
        server.shutdown()
        server.server_close()


def test_download_verify_and_cache(site: Site, signer: Signer, tmp_path: Path) -> None:
    data = _bytes(_chrome_doc())
    site.files.update({"/list.json": data, "/list.sig": signer.sign(data)})
    loglist = load_log_list(
        site.url("/list.json"),
        now=NOW,
        signature=site.url("/list.sig"),
        public_key=signer.pem,
        cache_dir=tmp_path,
    )
    assert site.requested == ["/list.json", "/list.sig"]
    assert loglist.logs == BUILT.logs
    assert loglist.fetched_at == NOW
    assert loglist.source == site.url("/list.json")
    path = cache_path("chrome", tmp_path)
    assert path == tmp_path / "chrome-log-list.json"
    assert path.read_bytes() == data
    assert (tmp_path / "chrome-log-list.sig").read_bytes() == site.files["/list.sig"]
    meta = json.loads((tmp_path / "chrome-log-list.meta.json").read_text())
    assert meta == {
        "url": site.url("/list.json"),
        "signature_url": site.url("/list.sig"),
        "signature_verified": True,
        "fetched_at": "2025-03-01T12:00:00Z",
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    cached = cached_log_list("chrome", cache_dir=tmp_path)
    assert cached is not None
    assert cached.logs == loglist.logs
    assert cached.fetched_at == NOW
    assert cached.source == str(path)
    assert default_log_list(NOW, cache_dir=tmp_path).logs == loglist.logs


def test_tampered_list_is_refused_and_nothing_is_cached(
    site: Site, signer: Signer, tmp_path: Path
) -> None:
    data = _bytes(_chrome_doc())
    tampered = data.replace(b"https://alpha.example/", b"https://evil.example/")
    assert tampered != data
    site.files.update({"/list.json": tampered, "/list.sig": signer.sign(data)})
    with pytest.raises(LogListError, match="the signature does not verify"):
        load_log_list(
            site.url("/list.json"),
            now=NOW,
            signature=site.url("/list.sig"),
            public_key=signer.pem,
            cache_dir=tmp_path / "cache",
        )
    assert not (tmp_path / "cache").exists()


def test_a_failed_update_keeps_the_previous_cached_list(
    site: Site, signer: Signer, tmp_path: Path
) -> None:
    good = _bytes(_chrome_doc())
    site.files.update({"/list.json": good, "/list.sig": signer.sign(good)})
    kwargs: dict[str, Any] = {
        "signature": site.url("/list.sig"),
        "public_key": signer.pem,
        "cache_dir": tmp_path,
    }
    load_log_list(site.url("/list.json"), now=NOW, **kwargs)
    # A list that is signed but malformed is not cached either.
    broken = _chrome_doc()
    del broken["operators"][0]["logs"][0]["key"]
    bad = _bytes(broken)
    site.files.update({"/list.json": bad, "/list.sig": signer.sign(bad)})
    with pytest.raises(LogListError, match=r"logs\[0\]\.key: missing"):
        load_log_list(site.url("/list.json"), now=NOW + timedelta(days=1), **kwargs)
    assert cache_path("chrome", tmp_path).read_bytes() == good
    cached = cached_log_list(cache_dir=tmp_path)
    assert cached is not None and cached.fetched_at == NOW


def test_chromes_own_url_is_always_checked_with_googles_key(signer: Signer, tmp_path: Path) -> None:
    data = _bytes(_chrome_doc())
    served: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        served.append(str(request.url))
        if str(request.url) == CHROME_LOG_LIST_URL:
            return httpx.Response(200, content=data)
        if str(request.url) == CHROME_LOG_LIST_URL.replace(".json", ".sig"):
            return httpx.Response(200, content=signer.sign(data))
        return httpx.Response(404)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        # Signed, but not by Google: refused, though no signature was asked for.
        with pytest.raises(LogListError, match="Google's log-list key"):
            load_log_list(CHROME_LOG_LIST_URL, now=NOW, http=client, cache_dir=tmp_path)
        assert served == [CHROME_LOG_LIST_URL, CHROME_LOG_LIST_URL.replace(".json", ".sig")]
        assert not cache_path("chrome", tmp_path).exists()
        loglist = load_log_list(
            CHROME_LOG_LIST_URL, now=NOW, http=client, public_key=signer.pem, cache_dir=tmp_path
        )
    assert loglist.logs == BUILT.logs


def test_unsigned_apple_download_is_cached_as_apple(site: Site, tmp_path: Path) -> None:
    site.files["/apple.json"] = _bytes(_apple_doc())
    loglist = load_log_list(site.url("/apple.json"), now=NOW, cache_dir=tmp_path)
    assert loglist.kind == "apple"
    assert not (tmp_path / "apple-log-list.sig").exists()
    meta = json.loads((tmp_path / "apple-log-list.meta.json").read_text())
    assert meta["signature_verified"] is False and meta["signature_url"] is None
    cached = cached_log_list("apple", cache_dir=tmp_path)
    assert cached is not None and cached.kind == "apple" and len(cached.logs) == 3
    assert cached_log_list("chrome", cache_dir=tmp_path) is None


def test_cache_false_writes_nothing(site: Site, tmp_path: Path) -> None:
    site.files["/list.json"] = _bytes(_chrome_doc())
    load_log_list(site.url("/list.json"), now=NOW, cache_dir=tmp_path, cache=False)
    assert list(tmp_path.iterdir()) == []


def test_files_with_and_without_a_signature(signer: Signer, tmp_path: Path) -> None:
    data = _bytes(_chrome_doc())
    listed = tmp_path / "list.json"
    listed.write_bytes(data)
    (tmp_path / "list.sig").write_bytes(signer.sign(data))
    plain = load_log_list(listed, now=NOW)
    assert plain.fetched_at is None and plain.source == str(listed)
    signed = load_log_list(
        listed, now=NOW, signature=tmp_path / "list.sig", public_key=signer.pem, cache_dir=tmp_path
    )
    assert signed.logs == plain.logs
    assert not cache_path("chrome", tmp_path).exists()  # files are not cached
    (tmp_path / "list.sig").write_bytes(b"\0" * 256)
    with pytest.raises(LogListError, match="does not verify"):
        load_log_list(listed, now=NOW, signature=tmp_path / "list.sig", public_key=signer.pem)
    with pytest.raises(LogListError, match=r"missing\.sig: cannot read the signature"):
        load_log_list(listed, now=NOW, signature=tmp_path / "missing.sig")
    with pytest.raises(LogListError, match=r"nowhere\.json: cannot read the log list"):
        load_log_list(tmp_path / "nowhere.json", now=NOW)


def test_network_failures_are_network_errors(site: Site, tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="HTTP 404"):
        load_log_list(site.url("/absent.json"), now=NOW, cache_dir=tmp_path)
    site.files["/list.json"] = _bytes(_chrome_doc())
    with pytest.raises(NetworkError, match=r"absent\.sig: HTTP 404"):
        load_log_list(
            site.url("/list.json"), now=NOW, signature=site.url("/absent.sig"), cache_dir=tmp_path
        )

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        httpx.Client(transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(NetworkError, match="connection refused"),
    ):
        load_log_list("https://ct.example/list.json", now=NOW, http=client, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_now_must_be_aware(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        load_log_list(tmp_path / "x.json", now=datetime(2025, 1, 1))


# -- the cache -----------------------------------------------------------------------------


def test_default_cache_dir_honours_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "pinwarden" / "ct"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # the spec says: ignore it
    assert default_cache_dir() == Path.home() / ".cache" / "pinwarden" / "ct"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "pinwarden" / "ct"


def test_no_cached_list_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(LogListError, match=r"run `pinwarden ct loglist update` or pass --log-list"):
        default_log_list(NOW, cache_dir=tmp_path)
    with pytest.raises(LogListError, match=r"no Apple CT log list .* update --kind apple`"):
        default_log_list(NOW, kind="apple", cache_dir=tmp_path)
    with pytest.raises(LogListError, match="unknown log list kind"):
        cache_path("mozilla", tmp_path)


def test_damaged_cache(tmp_path: Path) -> None:
    path = cache_path("chrome", tmp_path)
    data = _bytes(_chrome_doc())
    path.write_bytes(data)
    # No metadata, or metadata of another download: the fetch time is unknown.
    cached = cached_log_list(cache_dir=tmp_path)
    assert cached is not None and cached.fetched_at is None
    meta = path.with_name("chrome-log-list.meta.json")
    meta.write_text(json.dumps({"sha256": "00", "fetched_at": "2025-01-01T00:00:00Z"}))
    cached = cached_log_list(cache_dir=tmp_path)
    assert cached is not None and cached.fetched_at is None
    meta.write_text("{not json")
    cached = cached_log_list(cache_dir=tmp_path)
    assert cached is not None and cached.fetched_at is None
    meta.write_text(
        json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "fetched_at": "2025-01-01T00:00Z"})
    )
    cached = cached_log_list(cache_dir=tmp_path)
    assert cached is not None and cached.fetched_at == datetime(2025, 1, 1, tzinfo=UTC)
    path.write_bytes(b"{}")
    with pytest.raises(LogListError, match=r"operators: missing \(run `pinwarden ct loglist upd"):
        cached_log_list(cache_dir=tmp_path)


# -- staleness -----------------------------------------------------------------------------


def test_staleness_at_69_and_71_days() -> None:
    loglist = LogList(logs=(), timestamp=T0, source="list.json")
    assert staleness_warning(loglist, T0 + timedelta(days=69)) is None
    assert staleness_warning(loglist, T0 + timedelta(days=70)) is None
    just_over = staleness_warning(loglist, T0 + timedelta(days=70, seconds=1))
    assert just_over is not None and "published more than 70 days ago" in just_over
    warning = staleness_warning(loglist, T0 + timedelta(days=71))
    assert warning is not None
    assert warning.startswith("list.json: this log list was published 71 days ago (2024-01-01)")
    assert "older than 70 days" in warning


def test_staleness_falls_back_to_the_download_time() -> None:
    downloaded = LogList(logs=(), fetched_at=T0, kind="apple")
    assert staleness_warning(downloaded, T0 + timedelta(days=69)) is None
    warning = staleness_warning(downloaded, T0 + timedelta(days=71))
    assert warning is not None and "downloaded 71 days ago" in warning
    # The publication time wins over the download time.
    both = LogList(logs=(), timestamp=T0, fetched_at=T0 + timedelta(days=60))
    assert staleness_warning(both, T0 + timedelta(days=71)) is not None
    assert staleness_warning(LogList(logs=()), T0 + timedelta(days=1000)) is None


# -- JSON ----------------------------------------------------------------------------------


def test_log_json() -> None:
    frozen, tiled, bought = BUILT.logs[1:4]
    data = log_to_json(frozen)
    assert data["api"] == "rfc6962"
    assert data["state"] == "readonly" and data["state_since"] == "2025-01-01T00:00:00Z"
    assert data["final_tree_head"] == {
        "tree_size": 1234,
        "sha256_root_hash": base64.b64encode(hashlib.sha256(b"root").digest()).decode(),
    }
    assert data["temporal_interval"] == {
        "start_inclusive": "2024-01-01T00:00:00Z",
        "end_exclusive": "2025-01-01T00:00:00Z",
    }
    assert data["log_id"] == frozen.log_id_b64
    assert base64.b64decode(data["key"]) == frozen.key
    assert log_to_json(tiled)["api"] == "static-ct-api"
    assert log_to_json(tiled)["url"] is None
    assert log_to_json(bought)["previous_operators"] == [
        {"name": "Gamma", "end_time": "2024-01-01T00:00:00Z"},
        {"name": "Delta", "end_time": "2023-12-02T00:00:00Z"},
    ]
    json.dumps(data)
