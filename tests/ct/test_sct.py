"""SCT parsing (hand-made bytes, hostile bytes, round trips) and every verification verdict,
with certificates from the test kit's CA and logs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from pinwarden.ct.logs import Log, LogList, LogState, PreviousOperator
from pinwarden.ct.sct import (
    SCT,
    MalformedSCT,
    SCTStatus,
    SignedEntry,
    SignedEntryType,
    _tlv,
    embedded_sct_items,
    embedded_scts,
    encode_sct,
    encode_sct_list,
    entry_of,
    find_issuer,
    issuer_key_hash,
    leaf_index_extension,
    parse_sct,
    parse_sct_list,
    parse_sct_list_items,
    signed_data,
    verify_embedded,
    verify_sct,
)
from pinwarden.errors import CertificateError, CTFormatError
from pinwarden.testing import CA
from pinwarden.testing.ct import (
    CTIssued,
    TestLog,
    issue_with_scts,
    log_list_of,
    timestamp_ms,
    x509_sct,
)

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)
PRECERT = SignedEntryType.PRECERT
X509 = SignedEntryType.X509
DER = serialization.Encoding.DER

LOG_ID = bytes(range(32))


def _sct_bytes(
    *,
    version: int = 0,
    timestamp: int = 1_700_000_000_123,
    extensions: bytes = b"",
    hash_alg: int = 4,
    sig_alg: int = 3,
    signature: bytes = b"\x30\x06\x02\x01\x01\x02\x01\x02",
) -> bytes:
    return (
        bytes([version])
        + LOG_ID
        + timestamp.to_bytes(8, "big")
        + len(extensions).to_bytes(2, "big")
        + extensions
        + bytes([hash_alg, sig_alg])
        + len(signature).to_bytes(2, "big")
        + signature
    )


# --- parsing -------------------------------------------------------------------------------


def test_parse_reads_every_field() -> None:
    raw = _sct_bytes()
    sct = parse_sct(raw, entry_type=PRECERT)
    assert sct.version == 0
    assert sct.log_id == LOG_ID
    assert sct.timestamp_ms == 1_700_000_000_123
    assert sct.timestamp == dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert sct.extensions == b""
    assert sct.leaf_index is None
    assert (sct.hash_algorithm, sct.signature_algorithm) == (4, 3)
    assert sct.signature == b"\x30\x06\x02\x01\x01\x02\x01\x02"
    assert sct.entry_type is PRECERT
    assert sct.raw == raw
    assert encode_sct(sct) == raw


def test_leaf_index_extension_is_read() -> None:
    extensions = leaf_index_extension(0x0102030405)
    assert extensions == bytes.fromhex("0000050102030405")  # static-ct-api: 8 bytes
    sct = parse_sct(_sct_bytes(extensions=extensions), entry_type=X509)
    assert sct.leaf_index == 0x0102030405
    assert sct.extensions == extensions


def test_unknown_extensions_are_kept_and_skipped() -> None:
    extensions = b"\x07\x00\x02ab" + leaf_index_extension(9) + b"\xff\x00\x00"
    sct = parse_sct(_sct_bytes(extensions=extensions), entry_type=X509)
    assert sct.leaf_index == 9
    assert sct.extensions == extensions


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_sct_bytes(version=1), "version 1 (v2) is not supported; only v1 (0)"),
        (_sct_bytes() + b"\x00", "1 unexpected trailing bytes"),
        (_sct_bytes()[:40], "truncated at byte 33: timestamp needs 8 bytes"),
        (b"", "truncated at byte 0: version"),
        (_sct_bytes(extensions=b"\x00\x00\x04abcd"), "leaf_index extension is 4 bytes"),
        (_sct_bytes(extensions=leaf_index_extension(1) * 2), "extension type 0 appears twice"),
        (_sct_bytes(extensions=b"\x05\x00"), "truncated"),
        (_sct_bytes(timestamp=2**64 - 1), "after the year 9999"),
    ],
    ids=[
        "version",
        "trailing",
        "truncated",
        "empty",
        "short-leaf-index",
        "duplicate-ext",
        "bad-ext",
        "far-future",
    ],
)
def test_malformed_sct_is_a_format_error(data: bytes, message: str) -> None:
    with pytest.raises(CTFormatError, match=re.escape(message)) as info:
        parse_sct(data, entry_type=PRECERT, what="SCT from example.pem")
    assert str(info.value).startswith("SCT from example.pem")


def test_list_of_two() -> None:
    first, second = _sct_bytes(timestamp=1), _sct_bytes(timestamp=2)
    data = encode_sct_list([first, second])
    assert data[:2] == (len(first) + len(second) + 4).to_bytes(2, "big")
    scts = parse_sct_list(data, entry_type=X509)
    assert [s.timestamp_ms for s in scts] == [1, 2]
    assert [s.raw for s in scts] == [first, second]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "the list is empty"),
        (b"\x00\x02\x00\x00", "SCT #1 at byte 0 is 0 bytes, at least 1 required"),
        (encode_sct_list([_sct_bytes()]) + b"x", "trailing"),
        (b"\x00", "truncated"),
        (encode_sct_list([_sct_bytes(), _sct_bytes(version=2)]), "SCT #2: version 2 (v3)"),
    ],
)
def test_malformed_list_is_a_format_error(data: bytes, message: str) -> None:
    with pytest.raises(CTFormatError, match=re.escape(message)):
        parse_sct_list(data, entry_type=PRECERT)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "the list is empty"),
        (b"\x00\x02\x00\x00", "SCT #1 at byte 0 is 0 bytes, at least 1 required"),
        (encode_sct_list([_sct_bytes()]) + b"x", "trailing"),
        (b"\x00", "truncated"),
        (encode_sct_list([_sct_bytes()])[:-1], "truncated"),
    ],
    ids=["empty", "empty-sct", "trailing", "short", "cut"],
)
def test_list_framing_errors_stay_fatal_item_by_item(data: bytes, message: str) -> None:
    # Without trustworthy framing no SCT boundary can be found: the whole list fails.
    with pytest.raises(CTFormatError, match=re.escape(message)):
        parse_sct_list_items(data, entry_type=PRECERT)


SCT_BYTES_TIME = dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("bad", "error", "log_id", "timestamp"),
    [
        (_sct_bytes(version=1), "SCT #2: version 1 (v2) is not supported; only v1 (0)", None, None),
        (
            _sct_bytes(extensions=b"\x05\x00"),
            "SCT #2: extensions: truncated",
            LOG_ID,
            SCT_BYTES_TIME,
        ),
        (
            _sct_bytes(extensions=leaf_index_extension(1) * 2),
            "SCT #2: extension type 0 appears twice",
            LOG_ID,
            SCT_BYTES_TIME,
        ),
        (_sct_bytes() + b"\x00", "SCT #2: 1 unexpected trailing bytes", LOG_ID, SCT_BYTES_TIME),
        (_sct_bytes()[:40], "SCT #2: truncated at byte 33: timestamp", LOG_ID, None),
    ],
    ids=["unknown-version", "bad-extensions", "duplicate-leaf-index", "trailing", "cut"],
)
def test_an_undecodable_sct_in_a_good_list_is_kept_as_malformed(
    bad: bytes, error: str, log_id: bytes | None, timestamp: dt.datetime | None
) -> None:
    good = _sct_bytes(timestamp=5)
    items = parse_sct_list_items(encode_sct_list([good, bad, good]), entry_type=PRECERT)
    assert [type(i) for i in items] == [SCT, MalformedSCT, SCT]
    malformed = items[1]
    assert isinstance(malformed, MalformedSCT)
    assert malformed.error.startswith(error)
    assert malformed.raw == bad
    assert malformed.entry_type is PRECERT
    # Only a v1 SCT's fields are read past the version; they name the log that signed.
    assert (malformed.log_id, malformed.timestamp) == (log_id, timestamp)
    # The strict parser still refuses the list, naming the SCT.
    with pytest.raises(CTFormatError, match=re.escape(f"SCT list: {error}")):
        parse_sct_list(encode_sct_list([good, bad]), entry_type=PRECERT)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_format_errors(data: bytes) -> None:
    _parse_or_reject(data)


def _parse_or_reject(data: bytes) -> None:
    """Parsing either fails with a CTFormatError or accepts bytes that re-encode exactly
    (the encoding has one form, so nothing accepted can have been misread). Item by item,
    the list's SCTs are exactly what the strict parsers make of each one's bytes."""
    try:
        sct = parse_sct(data, entry_type=PRECERT)
    except CTFormatError:
        pass
    else:
        assert encode_sct(sct) == sct.raw == data
    try:
        scts = parse_sct_list(data, entry_type=PRECERT)
    except CTFormatError:
        pass
    else:
        assert encode_sct_list(scts) == data
    try:
        items = parse_sct_list_items(data, entry_type=PRECERT)
    except CTFormatError:
        return
    assert encode_sct_list([item.raw for item in items]) == data
    for number, item in enumerate(items, start=1):
        if isinstance(item, SCT):
            assert parse_sct(item.raw, entry_type=PRECERT) == item
        else:
            with pytest.raises(CTFormatError) as info:
                parse_sct(item.raw, entry_type=PRECERT, what=f"SCT #{number}")
            assert str(info.value) == item.error


@given(st.binary(min_size=1, max_size=200), st.integers(0, 199), st.integers(0, 7))
def test_mutated_valid_list_raises_only_format_errors(tail: bytes, cut: int, bit: int) -> None:
    data = bytearray(encode_sct_list([_sct_bytes(extensions=leaf_index_extension(3)), tail]))
    position = cut % len(data)
    data[position] ^= 1 << bit
    _parse_or_reject(bytes(data))


def _extensions() -> st.SearchStrategy[tuple[bytes, int | None]]:
    def build(items: dict[int, bytes], index: int | None) -> tuple[bytes, int | None]:
        encoded = b"".join(bytes([k]) + len(v).to_bytes(2, "big") + v for k, v in items.items())
        if index is not None:
            encoded += leaf_index_extension(index)
        return encoded, index

    return st.builds(
        build,
        st.dictionaries(st.integers(1, 255), st.binary(max_size=20), max_size=3),
        st.none() | st.integers(0, 2**40 - 1),
    )


@given(
    log_id=st.binary(min_size=32, max_size=32),
    timestamp_ms=st.integers(0, 253_402_300_799_999),
    extensions=_extensions(),
    hash_alg=st.integers(0, 255),
    sig_alg=st.integers(0, 255),
    signature=st.binary(max_size=600),
    entry_type=st.sampled_from(SignedEntryType),
)
def test_parse_of_encode_round_trips(
    log_id: bytes,
    timestamp_ms: int,
    extensions: tuple[bytes, int | None],
    hash_alg: int,
    sig_alg: int,
    signature: bytes,
    entry_type: SignedEntryType,
) -> None:
    sct = SCT(
        version=0,
        log_id=log_id,
        timestamp_ms=timestamp_ms,
        timestamp=dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=timestamp_ms),
        extensions=extensions[0],
        hash_algorithm=hash_alg,
        signature_algorithm=sig_alg,
        signature=signature,
        entry_type=entry_type,
        leaf_index=extensions[1],
    )
    encoded = encode_sct(sct)
    assert parse_sct(encoded, entry_type=entry_type) == dataclasses.replace(sct, raw=encoded)
    listed = parse_sct_list(encode_sct_list([sct, sct]), entry_type=entry_type)
    assert listed == (dataclasses.replace(sct, raw=encoded),) * 2


# --- the test PKI --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> CA:
    return CA("sct test root").intermediate("sct test issuing CA")


@pytest.fixture(scope="module")
def ec_log() -> TestLog:
    return TestLog("Test Argon", operator="Argon Inc")


@pytest.fixture(scope="module")
def rsa_log() -> TestLog:
    return TestLog("Test Xenon", operator="Xenon Ltd", key_type="rsa-2048")


@pytest.fixture(scope="module")
def issued(ca: CA, ec_log: TestLog, rsa_log: TestLog) -> CTIssued:
    return issue_with_scts(ca, "example.com", [ec_log, rsa_log])


def _verdicts(
    issued: x509.Certificate | CTIssued,
    issuer: x509.Certificate | bytes | None,
    *logs: TestLog | Log,
    now: dt.datetime = NOW,
) -> list[SCTStatus]:
    cert = issued.cert if isinstance(issued, CTIssued) else issued
    return [r.status for r in verify_embedded(cert, issuer, log_list_of(logs), now)]


def test_ecdsa_and_rsa_logs_verify(issued: CTIssued, ec_log: TestLog, rsa_log: TestLog) -> None:
    results = verify_embedded(issued.cert, issued.issuer, log_list_of([ec_log, rsa_log]), NOW)
    assert [r.status for r in results] == [SCTStatus.VALID, SCTStatus.VALID]
    assert [r.sct.signature_algorithm for r in results if isinstance(r.sct, SCT)] == [3, 1]
    assert [r.operator for r in results] == ["Argon Inc", "Xenon Ltd"]
    assert [r.log.description if r.log else None for r in results] == ["Test Argon", "Test Xenon"]
    assert all(r.valid for r in results)
    assert "verifies" in results[0].detail


def test_issuer_as_spki_bytes(issued: CTIssued, ec_log: TestLog, rsa_log: TestLog) -> None:
    spki = issued.issuer.public_key().public_bytes(
        DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert issuer_key_hash(spki) == issuer_key_hash(issued.issuer)
    assert _verdicts(issued, spki, ec_log, rsa_log) == [SCTStatus.VALID] * 2


def test_operator_at_the_sct_time(ca: CA, ec_log: TestLog) -> None:
    sct_time = dt.datetime(2024, 3, 1, tzinfo=UTC)
    cert = issue_with_scts(ca, "example.com", [ec_log], sct_times=[sct_time])
    handed_over = ec_log.as_log(
        previous_operators=[("Old Operator", sct_time + dt.timedelta(seconds=1))]
    )
    before = verify_embedded(cert.cert, cert.issuer, log_list_of([handed_over]), NOW)[0]
    assert (before.status, before.operator) == (SCTStatus.VALID, "Old Operator")
    handed_over = ec_log.as_log(previous_operators=[PreviousOperator("Old Operator", sct_time)])
    after = verify_embedded(cert.cert, cert.issuer, log_list_of([handed_over]), NOW)[0]
    assert after.operator == "Argon Inc"


@pytest.mark.parametrize("position", [0, 1], ids=["ecdsa", "rsa"])
def test_corrupt_signature_is_bad(ca: CA, ec_log: TestLog, rsa_log: TestLog, position: int) -> None:
    cert = issue_with_scts(ca, "example.com", [ec_log, rsa_log], corrupt=[position])
    results = verify_embedded(cert.cert, cert.issuer, log_list_of([ec_log, rsa_log]), NOW)
    expected = [SCTStatus.VALID, SCTStatus.VALID]
    expected[position] = SCTStatus.BAD_SIGNATURE
    assert [r.status for r in results] == expected
    assert "does not verify" in results[position].detail
    # The issuer did sign the certificate, so the detail does not blame it outright.
    assert "did not sign" not in results[position].detail


def test_wrong_issuer_is_a_bad_signature(
    issued: CTIssued, ec_log: TestLog, rsa_log: TestLog
) -> None:
    impostor = CA("sct test issuing CA")  # same name, another key
    results = verify_embedded(issued.cert, impostor.cert, log_list_of([ec_log, rsa_log]), NOW)
    assert [r.status for r in results] == [SCTStatus.BAD_SIGNATURE] * 2
    assert "does the issuer match?" in results[0].detail
    assert "did not sign this certificate" in results[0].detail
    # The root is a real CA of the chain, but not the issuer: still a bad signature.
    assert _verdicts(issued, issued.root, ec_log, rsa_log) == [SCTStatus.BAD_SIGNATURE] * 2


def test_wrong_issuer_spki_is_a_bad_signature(
    issued: CTIssued, ec_log: TestLog, rsa_log: TestLog
) -> None:
    other = (
        CA().cert.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    result = verify_embedded(issued.cert, other, log_list_of([ec_log]), NOW)[0]
    assert result.status is SCTStatus.BAD_SIGNATURE
    assert "does the issuer match?" in result.detail


def test_unknown_log(issued: CTIssued, ec_log: TestLog) -> None:
    results = verify_embedded(issued.cert, issued.issuer, log_list_of([ec_log]), NOW)
    assert [r.status for r in results] == [SCTStatus.VALID, SCTStatus.UNKNOWN_LOG]
    assert (results[1].log, results[1].operator) == (None, None)
    assert "not in the log list (<test kit>)" in results[1].detail


def test_unknown_log_beats_bad_signature(ca: CA, ec_log: TestLog) -> None:
    cert = issue_with_scts(ca, "example.com", [ec_log], corrupt=[0])
    assert _verdicts(cert, cert.issuer, TestLog("unrelated")) == [SCTStatus.UNKNOWN_LOG]


def test_same_key_under_another_name_is_not_the_same_log(issued: CTIssued) -> None:
    # The log ID is the hash of the key: a list that has other keys knows nothing of ours.
    assert (
        _verdicts(issued, issued.issuer, TestLog("Test Argon", operator="Argon Inc"))
        == [SCTStatus.UNKNOWN_LOG] * 2
    )


def test_future_timestamp(ca: CA, ec_log: TestLog) -> None:
    tomorrow = NOW + dt.timedelta(days=1)
    cert = issue_with_scts(ca, "example.com", [ec_log], sct_times=[tomorrow])
    result = verify_embedded(cert.cert, cert.issuer, log_list_of([ec_log]), NOW)[0]
    assert result.status is SCTStatus.FUTURE_TIMESTAMP
    assert result.operator == "Argon Inc"
    later = NOW + dt.timedelta(days=2)
    assert _verdicts(cert, cert.issuer, ec_log, now=later) == [SCTStatus.VALID]


def test_bad_signature_beats_future_timestamp_and_untrusted_log(ca: CA, ec_log: TestLog) -> None:
    tomorrow = NOW + dt.timedelta(days=1)
    cert = issue_with_scts(ca, "example.com", [ec_log], sct_times=[tomorrow], corrupt=[0])
    assert _verdicts(cert, cert.issuer, ec_log) == [SCTStatus.BAD_SIGNATURE]
    pending = ec_log.as_log(state=LogState.PENDING)
    assert _verdicts(cert, cert.issuer, pending) == [SCTStatus.BAD_SIGNATURE]


def test_sct_timestamp_equal_to_now_is_not_future(ca: CA, ec_log: TestLog) -> None:
    when = dt.datetime(2025, 5, 5, 12, 0, 0, 1000, tzinfo=UTC)
    cert = issue_with_scts(ca, "example.com", [ec_log], sct_times=[when])
    assert _verdicts(cert, cert.issuer, ec_log, now=when) == [SCTStatus.VALID]
    before = when - dt.timedelta(milliseconds=1)
    assert _verdicts(cert, cert.issuer, ec_log, now=before) == [SCTStatus.FUTURE_TIMESTAMP]


SCT_TIME = dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def dated(ca: CA, ec_log: TestLog) -> CTIssued:
    """A certificate valid 2025-03-01 for 90 days, its SCT dated 2025-03-01 12:00."""
    return issue_with_scts(
        ca,
        "example.com",
        [ec_log],
        not_before=dt.datetime(2025, 3, 1, tzinfo=UTC),
        sct_times=[SCT_TIME],
    )


@pytest.mark.parametrize(
    ("state", "since", "expected"),
    [
        (LogState.USABLE, SCT_TIME + dt.timedelta(days=9), SCTStatus.VALID),
        (LogState.QUALIFIED, SCT_TIME, SCTStatus.VALID),
        (None, None, SCTStatus.VALID),
        (LogState.PENDING, SCT_TIME - dt.timedelta(days=300), SCTStatus.LOG_NOT_TRUSTED),
        (LogState.REJECTED, SCT_TIME - dt.timedelta(days=300), SCTStatus.LOG_NOT_TRUSTED),
        (LogState.RETIRED, SCT_TIME + dt.timedelta(seconds=1), SCTStatus.VALID),
        (LogState.RETIRED, SCT_TIME, SCTStatus.LOG_NOT_TRUSTED),
        (LogState.RETIRED, SCT_TIME - dt.timedelta(days=1), SCTStatus.LOG_NOT_TRUSTED),
        (LogState.READONLY, SCT_TIME + dt.timedelta(days=1), SCTStatus.VALID),
        (LogState.READONLY, SCT_TIME - dt.timedelta(days=1), SCTStatus.LOG_NOT_TRUSTED),
    ],
    ids=[
        "usable",
        "qualified",
        "no-state",
        "pending",
        "rejected",
        "retired-after-sct",
        "retired-at-sct",
        "retired-before-sct",
        "readonly-after-sct",
        "readonly-before-sct",
    ],
)
def test_log_state_at_the_sct_time(
    dated: CTIssued,
    ec_log: TestLog,
    state: LogState | None,
    since: dt.datetime | None,
    expected: SCTStatus,
) -> None:
    log = ec_log.as_log(state=state, since=since)
    result = verify_embedded(dated.cert, dated.issuer, log_list_of([log]), NOW)[0]
    assert result.status is expected
    assert result.log == log
    if expected is SCTStatus.LOG_NOT_TRUSTED:
        assert "Test Argon" in result.detail


def test_retired_log_without_a_time_is_not_trusted(dated: CTIssued, ec_log: TestLog) -> None:
    log = dataclasses.replace(ec_log.as_log(state=LogState.RETIRED), state_since=None)
    result = verify_embedded(dated.cert, dated.issuer, log_list_of([log]), NOW)[0]
    assert result.status is SCTStatus.LOG_NOT_TRUSTED
    assert "no time" in result.detail


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2025-05-01", "2025-06-01", SCTStatus.VALID),  # notAfter is 2025-05-30
        ("2025-05-30", "2025-06-01", SCTStatus.VALID),  # start is inclusive
        ("2025-06-01", "2026-01-01", SCTStatus.LOG_NOT_TRUSTED),
        ("2025-01-01", "2025-05-30", SCTStatus.LOG_NOT_TRUSTED),  # end is exclusive
    ],
)
def test_temporal_interval(
    dated: CTIssued, ec_log: TestLog, start: str, end: str, expected: SCTStatus
) -> None:
    assert dated.cert.not_valid_after_utc == dt.datetime(2025, 5, 30, tzinfo=UTC)
    interval = (
        dt.datetime.fromisoformat(start).replace(tzinfo=UTC),
        dt.datetime.fromisoformat(end).replace(tzinfo=UTC),
    )
    log = ec_log.as_log(temporal_interval=interval)
    result = verify_embedded(dated.cert, dated.issuer, log_list_of([log]), NOW)[0]
    assert result.status is expected
    if expected is not SCTStatus.VALID:
        assert "temporal interval" in result.detail


def test_future_timestamp_is_reported_before_log_state(ca: CA, ec_log: TestLog) -> None:
    tomorrow = NOW + dt.timedelta(days=1)
    cert = issue_with_scts(ca, "example.com", [ec_log], sct_times=[tomorrow])
    retired = ec_log.as_log(state=LogState.RETIRED, since=NOW - dt.timedelta(days=1))
    assert _verdicts(cert, cert.issuer, retired) == [SCTStatus.FUTURE_TIMESTAMP]


@pytest.mark.parametrize(
    ("hash_alg", "sig_alg", "message"),
    [
        (2, 3, "hash algorithm 2 is not SHA-256"),
        (4, 1, "signature algorithm is RSA but the log's key is ECDSA"),
        (4, 7, "signature algorithm is number 7 but"),
    ],
)
def test_algorithm_not_matching_the_log_is_a_bad_signature(
    issued: CTIssued, ec_log: TestLog, hash_alg: int, sig_alg: int, message: str
) -> None:
    sct = dataclasses.replace(
        embedded_scts(issued.cert)[0], hash_algorithm=hash_alg, signature_algorithm=sig_alg
    )
    result = verify_sct(
        sct, issued.cert, issuer=issued.issuer, log_list=log_list_of([ec_log]), now=NOW
    )
    assert result.status is SCTStatus.BAD_SIGNATURE
    assert message in result.detail


def test_rsa_log_with_an_ecdsa_claim_is_a_bad_signature(issued: CTIssued, rsa_log: TestLog) -> None:
    sct = dataclasses.replace(embedded_scts(issued.cert)[1], signature_algorithm=3)
    result = verify_sct(
        sct, issued.cert, issuer=issued.issuer, log_list=log_list_of([rsa_log]), now=NOW
    )
    assert result.status is SCTStatus.BAD_SIGNATURE
    assert "is ECDSA but the log's key is RSA" in result.detail


def test_a_log_key_we_cannot_use_is_a_bad_signature(issued: CTIssued, ec_log: TestLog) -> None:
    weird_key = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    log = dataclasses.replace(ec_log.as_log(), key=weird_key)  # keeps ec_log's ID
    result = verify_embedded(issued.cert, issued.issuer, log_list_of([log]), NOW)[0]
    assert result.status is SCTStatus.BAD_SIGNATURE
    assert "unusable" in result.detail


def test_changed_extensions_are_a_bad_signature(issued: CTIssued, ec_log: TestLog) -> None:
    # The extensions are signed: an SCT whose extensions were changed no longer verifies.
    sct = dataclasses.replace(embedded_scts(issued.cert)[0], extensions=leaf_index_extension(1))
    result = verify_sct(
        sct, issued.cert, issuer=issued.issuer, log_list=log_list_of([ec_log]), now=NOW
    )
    assert result.status is SCTStatus.BAD_SIGNATURE


def test_tiled_log_leaf_index(ca: CA) -> None:
    tiled = TestLog("Test Sunlight", tiled=True)
    first = issue_with_scts(ca, "a.example", [tiled])
    second = issue_with_scts(ca, "b.example", [tiled])
    assert [embedded_scts(c.cert)[0].leaf_index for c in (first, second)] == [0, 1]
    assert _verdicts(second, second.issuer, tiled) == [SCTStatus.VALID]


def _embedding(
    ca: CA,
    sign: Callable[[SignedEntry, int], Sequence[bytes]],
    *extensions: x509.ExtensionType,
) -> x509.Certificate:
    """A certificate by ``ca`` with ``extensions`` and the SCTs ``sign`` makes over its
    precertificate entry at an hour ago (``sign(entry, timestamp_ms)``)."""
    start = NOW - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "embedded.example")]))
        .issuer_name(ca.cert.subject)
        .public_key(ca.key.public_key())
        .serial_number(11)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=90))
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    entry = SignedEntry.precert(
        builder.sign(ca.key, hashes.SHA256()).tbs_certificate_bytes, issuer_key_hash(ca.cert)
    )
    scts = sign(entry, timestamp_ms(NOW - dt.timedelta(hours=1)))
    return builder.add_extension(_sct_extension(encode_sct_list(scts)), critical=False).sign(
        ca.key, hashes.SHA256()
    )


def _sct_extension(sct_list: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(
        ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, _tlv(0x04, sct_list)
    )


def test_an_undecodable_sct_is_malformed_and_the_others_still_verify(
    ca: CA, ec_log: TestLog, rsa_log: TestLog
) -> None:
    def sign(entry: SignedEntry, when: int) -> list[bytes]:
        good = [ec_log.sign_sct(entry, when), rsa_log.sign_sct(entry, when)]
        v2 = b"\x01" + good[1][1:]
        bad_extensions = ec_log.sign_sct(entry, when, extensions=b"\x05\x00")
        return [good[0], v2, good[1], bad_extensions]

    cert = _embedding(ca, sign)
    results = verify_embedded(cert, ca.cert, log_list_of([ec_log, rsa_log]), NOW)
    assert [r.status for r in results] == [
        SCTStatus.VALID,
        SCTStatus.MALFORMED,
        SCTStatus.VALID,
        SCTStatus.MALFORMED,
    ]
    unknown_version, bad_extensions = results[1], results[3]
    assert isinstance(unknown_version.sct, MalformedSCT)
    assert unknown_version.detail == "SCT #2: version 1 (v2) is not supported; only v1 (0)"
    assert (unknown_version.log, unknown_version.operator) == (None, None)
    assert not unknown_version.valid
    # A v1 SCT with bad extensions still names its log.
    assert bad_extensions.detail.startswith("SCT #4: extensions: truncated")
    assert bad_extensions.log == ec_log.as_log()
    assert bad_extensions.operator == "Argon Inc"
    # The strict reader refuses the same list, naming the certificate and the SCT.
    with pytest.raises(CTFormatError, match=r"embedded\.example: SCT #2: version 1 \(v2\)"):
        embedded_scts(cert)
    assert [type(i) for i in embedded_sct_items(cert)] == [SCT, MalformedSCT, SCT, MalformedSCT]


def test_a_malformed_sct_needs_no_issuer(ca: CA, ec_log: TestLog) -> None:
    cert = _embedding(ca, lambda entry, when: [b"\x07" + ec_log.sign_sct(entry, when)[1:]])
    [item] = embedded_sct_items(cert)
    result = verify_sct(item, cert, issuer=None, log_list=log_list_of([ec_log]), now=NOW)
    assert result.status is SCTStatus.MALFORMED


# An OID of the same DER length as the one it stands in for: the DER stays well formed
# when one replaces the other, so a certificate can carry an extension twice.
_PLACEHOLDER = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.9")
_PLACEHOLDER_DER = bytes.fromhex("060a2b06010401d679020409")
_OTHER = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.8")
_OTHER_DER = bytes.fromhex("060a2b06010401d679020408")
_SCT_LIST_DER = bytes.fromhex("060a2b06010401d679020402")
_POISON_DER = bytes.fromhex("060a2b06010401d679020403")
_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")


def _resigned(tbs: bytes, ca: CA) -> x509.Certificate:
    """A certificate of ``tbs`` signed by ``ca`` (EC): builders refuse duplicates."""
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    signature = ca.key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    der = _tlv(0x30, tbs + _ECDSA_SHA256 + _tlv(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def _duplicating(cert: x509.Certificate, ca: CA, oid_der: bytes) -> x509.Certificate:
    return _resigned(cert.tbs_certificate_bytes.replace(_PLACEHOLDER_DER, oid_der), ca)


def test_a_duplicated_other_extension_does_not_stop_verification(
    ca: CA, ec_log: TestLog, rsa_log: TestLog
) -> None:
    # cryptography refuses to give the TBS without the SCT list when any extension is
    # duplicated; the logs signed the TBS with the duplicate, and it verifies.
    twice = [
        x509.UnrecognizedExtension(_OTHER, b"\x05\x00"),
        x509.UnrecognizedExtension(_PLACEHOLDER, b"\x05\x00"),
    ]

    def sign(entry: SignedEntry, when: int) -> list[bytes]:
        tbs = entry.data.replace(_PLACEHOLDER_DER, _OTHER_DER)
        real = SignedEntry.precert(tbs, entry.issuer_key_hash)
        return [ec_log.sign_sct(real, when), rsa_log.sign_sct(real, when)]

    cert = _duplicating(_embedding(ca, sign, *twice), ca, _OTHER_DER)
    with pytest.raises(x509.DuplicateExtension):
        _ = cert.extensions
    results = verify_embedded(cert, ca.cert, log_list_of([ec_log, rsa_log]), NOW)
    assert [r.status for r in results] == [SCTStatus.VALID] * 2


def test_a_duplicated_sct_list_is_a_format_error(ca: CA, ec_log: TestLog) -> None:
    def sign(entry: SignedEntry, when: int) -> list[bytes]:
        return [ec_log.sign_sct(entry, when)]

    sct_list = _tlv(0x04, encode_sct_list([_sct_bytes()]))
    second = x509.UnrecognizedExtension(_PLACEHOLDER, sct_list)
    cert = _duplicating(_embedding(ca, sign, second), ca, _SCT_LIST_DER)
    message = (
        "embedded SCT list of certificate CN=embedded.example: the SCT list extension "
        "(1.3.6.1.4.1.11129.2.4.2) appears twice"
    )
    for read in (embedded_scts, embedded_sct_items):
        with pytest.raises(CTFormatError, match=re.escape(message)):
            read(cert)
    with pytest.raises(CTFormatError, match="appears twice"):
        verify_embedded(cert, ca.cert, log_list_of([ec_log]), NOW)


def test_a_duplicated_poison_is_a_format_error(ca: CA) -> None:
    now = dt.datetime(2025, 1, 1, tzinfo=UTC)
    precert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "poisoned")]))
        .issuer_name(ca.cert.subject)
        .public_key(ca.key.public_key())
        .serial_number(43)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.PrecertPoison(), critical=True)
        .add_extension(x509.UnrecognizedExtension(_PLACEHOLDER, b"\x05\x00"), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    twice = _duplicating(precert, ca, _POISON_DER)
    with pytest.raises(CTFormatError, match=r"precertificate poison extension .* appears twice"):
        entry_of(twice, PRECERT, bytes(32))


def _ec_spki_on_unknown_curve(log: TestLog) -> bytes:
    point = log.key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    algorithm = _tlv(0x30, bytes.fromhex("06072a8648ce3d0201") + bytes.fromhex("06032a0304"))
    return _tlv(0x30, algorithm + _tlv(0x03, b"\x00" + point))


def test_a_log_key_on_an_unknown_curve_is_a_bad_signature(
    issued: CTIssued, ec_log: TestLog
) -> None:
    # cryptography raises UnsupportedAlgorithm (neither ValueError nor TypeError) for it.
    log = dataclasses.replace(ec_log.as_log(), key=_ec_spki_on_unknown_curve(ec_log))
    result = verify_embedded(issued.cert, issued.issuer, log_list_of([log]), NOW)[0]
    assert result.status is SCTStatus.BAD_SIGNATURE
    assert "unusable: Curve 1.2.3.4 is not supported" in result.detail


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (ec.generate_private_key(ec.SECP384R1()), "an ECDSA key on secp384r1"),
        (rsa.generate_private_key(65537, 1024), "an RSA key of 1024 bits"),
    ],
    ids=["p384", "rsa-1024"],
)
def test_a_log_key_rfc6962_does_not_allow_is_a_bad_signature(
    ca: CA, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, message: str
) -> None:
    # The signatures are genuine: only the key is not one a CT log may use (RFC 6962
    # section 2.1.4: ECDSA on NIST P-256, or RSA of at least 2048 bits).
    log = TestLog("Odd Key", key=key)
    cert = issue_with_scts(ca, "example.com", [log])
    result = verify_embedded(cert.cert, cert.issuer, log_list_of([log]), NOW)[0]
    assert result.status is SCTStatus.BAD_SIGNATURE
    assert f"the log list's key for Odd Key is unusable: {message}" in result.detail
    assert "RFC 6962 section 2.1.4" in result.detail


# --- names cryptography decodes lazily and cannot read ---------------------------------------


def _unreadable_subject(ca: CA, serial: int, *extensions: x509.ExtensionType) -> x509.Certificate:
    """A certificate whose subject cryptography raises TypeError for: a BIT STRING value
    under an OID (CN) that must hold a string."""
    from cryptography.x509.name import _ASN1Type

    now = dt.datetime(2025, 1, 1, tzinfo=UTC)
    unique = x509.NameAttribute(
        NameOID.X500_UNIQUE_IDENTIFIER, b"\x00\x01", _type=_ASN1Type.BitString
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([unique]))
        .issuer_name(ca.cert.subject)
        .public_key(ca.key.public_key())
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    tbs = builder.sign(ca.key, hashes.SHA256()).tbs_certificate_bytes
    cert = _resigned(tbs.replace(bytes.fromhex("060355042d"), bytes.fromhex("0603550403")), ca)
    with pytest.raises(TypeError):
        _ = cert.subject
    return cert


def test_an_unreadable_subject_does_not_hide_the_sct_error(ca: CA) -> None:
    cert = _unreadable_subject(ca, 0x51, _sct_extension(b"\x00\x00"))
    with pytest.raises(CTFormatError, match="certificate with serial 0x51: the list is empty"):
        embedded_scts(cert)


def test_an_unreadable_issuer_name_is_skipped_or_described(
    issued: CTIssued, ca: CA, ec_log: TestLog, rsa_log: TestLog
) -> None:
    unreadable = _unreadable_subject(CA("other"), 0x52)
    assert find_issuer(issued.cert, [unreadable, ca.cert]) == ca.cert
    assert find_issuer(issued.cert, [unreadable], by_name=True) is None
    # Verified against it: a bad signature whose detail names it by serial.
    results = verify_embedded(issued.cert, unreadable, log_list_of([ec_log, rsa_log]), NOW)
    assert [r.status for r in results] == [SCTStatus.BAD_SIGNATURE] * 2
    assert "the issuer with serial 0x52 did not sign this certificate" in results[0].detail


# --- X509 SCTs, precertificates, certificates without SCTs ----------------------------------


def test_x509_sct_needs_no_issuer(issued: CTIssued, ec_log: TestLog) -> None:
    raw = x509_sct(ec_log, issued.cert, NOW - dt.timedelta(minutes=1))
    sct = parse_sct(raw, entry_type=X509)
    log_list = log_list_of([ec_log])
    result = verify_sct(sct, issued.cert, issuer=None, log_list=log_list, now=NOW)
    assert result.status is SCTStatus.VALID
    other = CA().issue("example.com")
    wrong = verify_sct(sct, other.cert, issuer=None, log_list=log_list, now=NOW)
    assert wrong.status is SCTStatus.BAD_SIGNATURE
    assert "another certificate" in wrong.detail
    # The same signature read as a precert SCT covers other bytes.
    as_precert = parse_sct(raw, entry_type=PRECERT)
    result = verify_sct(as_precert, issued.cert, issuer=issued.issuer, log_list=log_list, now=NOW)
    assert result.status is SCTStatus.BAD_SIGNATURE


def test_precert_sct_without_issuer_is_an_input_error(issued: CTIssued, ec_log: TestLog) -> None:
    with pytest.raises(CertificateError, match="issuer certificate is needed"):
        verify_embedded(issued.cert, None, log_list_of([ec_log]), NOW)


def test_scts_verify_against_the_precertificate_too(issued: CTIssued, ec_log: TestLog) -> None:
    assert issued.precert is not None
    sct = embedded_scts(issued.cert)[0]
    result = verify_sct(
        sct, issued.precert, issuer=issued.issuer, log_list=log_list_of([ec_log]), now=NOW
    )
    assert result.status is SCTStatus.VALID
    ikh = issuer_key_hash(issued.issuer)
    assert entry_of(issued.precert, PRECERT, ikh) == entry_of(issued.cert, PRECERT, ikh)
    assert signed_data(sct, issued.precert, ikh) == signed_data(sct, issued.cert, ikh)


def test_removing_the_only_extension_drops_the_extensions_field(ca: CA) -> None:
    now = dt.datetime(2025, 1, 1, tzinfo=UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bare")]))
        .issuer_name(ca.cert.subject)
        .public_key(ca.key.public_key())
        .serial_number(42)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
    )
    precert = builder.add_extension(x509.PrecertPoison(), critical=True).sign(
        ca.key, hashes.SHA256()
    )
    bare = builder.sign(ca.key, hashes.SHA256())
    entry = entry_of(precert, PRECERT, bytes(32))
    assert entry.data == bare.tbs_certificate_bytes
    assert entry.data != precert.tbs_certificate_bytes


def test_certificate_without_scts(ca: CA, ec_log: TestLog) -> None:
    plain = ca.issue("example.com")
    assert embedded_scts(plain.cert) == ()
    assert verify_embedded(plain.cert, ca.cert, log_list_of([ec_log]), NOW) == ()
    assert verify_embedded(ca.cert, None, LogList(()), NOW) == ()


def _with_sct_extension(ca: CA, value: bytes) -> x509.Certificate:
    now = dt.datetime(2025, 1, 1, tzinfo=UTC)
    extension = x509.UnrecognizedExtension(
        ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, value
    )
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "garbage.example")]))
        .issuer_name(ca.cert.subject)
        .public_key(ca.key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(extension, critical=False)
        .sign(ca.key, hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"\x04\x05\x00\x03\x00\x01\x00", "SCT #1"),
        (b"\x04\x00", "truncated at byte 0"),
        (b"\x04\x02\x00\x00", "the list is empty"),
        (b"\x03\x02\x00\x00", "not one DER OCTET STRING"),
        (b"\x04\x09\x00\x00", "claims 9 bytes"),
        (b"\x04\x02\x00\x00\x00", "not one DER OCTET STRING"),
    ],
    ids=["short-sct", "empty-octets", "empty-list", "not-octets", "bad-length", "trailing"],
)
def test_garbage_sct_extension_is_a_format_error(ca: CA, value: bytes, message: str) -> None:
    cert = _with_sct_extension(ca, value)
    with pytest.raises(CTFormatError, match=re.escape(message)) as info:
        embedded_scts(cert)
    assert "embedded SCT list of certificate CN=garbage.example" in str(info.value)


# --- find_issuer ---------------------------------------------------------------------------


def test_find_issuer(issued: CTIssued, ca: CA) -> None:
    impostor = CA("sct test issuing CA")
    candidates = [impostor.cert, issued.root, issued.cert, ca.cert]
    assert find_issuer(issued.cert, candidates) == ca.cert
    assert find_issuer(issued.cert, [impostor.cert, issued.root]) is None
    assert find_issuer(ca.cert, candidates) == issued.root
    assert find_issuer(issued.cert, []) is None


def test_find_issuer_by_name(issued: CTIssued, ca: CA) -> None:
    impostor = CA("sct test issuing CA")  # the issuer's name, another key
    # A candidate that signed wins over an earlier one that only has the name.
    assert find_issuer(issued.cert, [impostor.cert, ca.cert], by_name=True) == ca.cert
    assert find_issuer(issued.cert, [issued.root, impostor.cert], by_name=True) == impostor.cert
    assert find_issuer(issued.cert, [issued.root], by_name=True) is None


def test_poison_between_other_extensions_is_removed(ca: CA) -> None:
    now = dt.datetime(2025, 1, 1, tzinfo=UTC)

    def build(poison: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "m" * 60)]))
            .issuer_name(ca.cert.subject)
            .public_key(ca.key.public_key())
            .serial_number(5)
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName("a" * 60 + ".example")] * 3), False
            )
        )
        if poison:
            builder = builder.add_extension(x509.PrecertPoison(), critical=True)
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        return builder.sign(ca.key, hashes.SHA256())

    # Long enough that the re-encoded lengths take more than one byte.
    assert entry_of(build(True), PRECERT, bytes(32)).data == build(False).tbs_certificate_bytes
