"""The log-list model: operators over time, IDs, and the v3 document it writes."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pinwarden.ct.logs import FinalTreeHead, Log, LogList, LogState, PreviousOperator, log_id_of

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
T1 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _key() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _log(**kwargs: object) -> Log:
    key = _key()
    fields: dict[str, object] = {
        "description": "Test 'Log'",
        "log_id": log_id_of(key),
        "key": key,
        "operator": "Now Inc",
    }
    fields.update(kwargs)
    return Log(**fields)  # type: ignore[arg-type]


def test_log_id_is_sha256_of_spki() -> None:
    key = _key()
    assert log_id_of(key) == hashlib.sha256(key).digest()


def test_operator_at_walks_previous_operators_in_time_order() -> None:
    log = _log(
        previous_operators=(
            PreviousOperator("Second", T1),
            PreviousOperator("First", T0),
        )
    )
    assert log.operator_at(datetime(2023, 6, 1, tzinfo=timezone.utc)) == "First"
    assert log.operator_at(T0) == "Second"  # end_time is exclusive
    assert log.operator_at(datetime(2024, 6, 1, tzinfo=timezone.utc)) == "Second"
    assert log.operator_at(T1) == "Now Inc"


def test_base_url_depends_on_api() -> None:
    assert _log(url="https://a/").base_url == "https://a/"
    tiled = _log(submission_url="https://s/", monitoring_url="https://m/", tiled=True)
    assert tiled.base_url == "https://m/"


def test_by_id_and_operators() -> None:
    a, b = _log(operator="A"), _log(operator="B")
    listed = LogList((a, b, _log(operator="A")))
    assert listed.by_id(b.log_id) is b
    assert listed.by_id(b"\x00" * 32) is None
    assert listed.operators == ("A", "B")


def test_to_chrome_v3_groups_by_operator_and_api() -> None:
    rfc = _log(
        url="https://r/",
        state=LogState.READONLY,
        state_since=T0,
        final_tree_head=FinalTreeHead(7, b"\x01" * 32),
        temporal_interval=(T0, T1),
        previous_operators=(PreviousOperator("Old", T0),),
    )
    tiled = _log(
        submission_url="https://s/",
        monitoring_url="https://m/",
        tiled=True,
        state=LogState.USABLE,
        state_since=T1,
    )
    document = LogList((rfc, tiled), version="1.0", timestamp=T1).to_chrome_v3()
    assert document["version"] == "1.0"
    assert document["log_list_timestamp"] == "2025-01-01T00:00:00Z"
    (operator,) = document["operators"]
    (logged,) = operator["logs"]
    (tiled_doc,) = operator["tiled_logs"]
    assert logged["url"] == "https://r/"
    assert logged["state"]["readonly"]["final_tree_head"]["tree_size"] == 7
    assert logged["temporal_interval"]["end_exclusive"] == "2025-01-01T00:00:00Z"
    assert logged["previous_operators"] == [{"name": "Old", "end_time": "2024-01-01T00:00:00Z"}]
    assert tiled_doc["monitoring_url"] == "https://m/"
    assert "url" not in tiled_doc
    assert tiled_doc["state"] == {"usable": {"timestamp": "2025-01-01T00:00:00Z"}}
