"""The test kit's CT logs and its CA issuing certificates with embedded SCTs: the
precertificate and the final certificate are what RFC 6962 section 3.1 describes,
cryptography's own SCT parser reads what we embed, and OpenSSL accepts the certificate in a
real handshake."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import socket

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.certificate_transparency import LogEntryType
from cryptography.x509.oid import ExtensionOID
from cryptography.x509.verification import PolicyBuilder, Store

from pinwarden.ct.logs import Log, LogState, PreviousOperator
from pinwarden.ct.sct import (
    SCTStatus,
    SignedEntry,
    SignedEntryType,
    embedded_scts,
    parse_sct,
    verify_embedded,
    verify_sct,
)
from pinwarden.testing import CA, TLSServer
from pinwarden.testing.ct import TestLog, issue_with_scts, log_list_of, timestamp_ms, x509_sct
from pinwarden.tls import served_chain, verified_chain

UTC = dt.timezone.utc
DER = serialization.Encoding.DER


@pytest.fixture(scope="module")
def ca() -> CA:
    return CA("kit CT root").intermediate("kit CT issuing CA")


@pytest.fixture(scope="module")
def logs() -> list[TestLog]:
    return [
        TestLog("Kit Argon", operator="Argon Inc"),
        TestLog("Kit Xenon", operator="Xenon Ltd", key_type="rsa-2048"),
        TestLog("Kit Sunlight", operator="Sun SA", tiled=True),
    ]


def test_test_log_identity() -> None:
    log = TestLog("Kit Log 2026h1", operator="Someone")
    spki = log.key.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert log.spki == spki
    assert log.log_id == hashlib.sha256(spki).digest()
    assert log.url == "https://ct.invalid/kit-log-2026h1/"
    assert TestLog("other").log_id != log.log_id


def test_as_log() -> None:
    log = TestLog("Kit Log", operator="Now Corp")
    handover = dt.datetime(2024, 6, 1, tzinfo=UTC)
    entry = log.as_log(
        state=LogState.RETIRED,
        since=handover,
        previous_operators=[("Then Corp", handover)],
        temporal_interval=(handover, handover + dt.timedelta(days=180)),
    )
    assert (entry.description, entry.operator, entry.key, entry.log_id) == (
        "Kit Log",
        "Now Corp",
        log.spki,
        log.log_id,
    )
    assert (entry.state, entry.state_since) == (LogState.RETIRED, handover)
    assert entry.previous_operators == (PreviousOperator("Then Corp", handover),)
    assert entry.operator_at(handover - dt.timedelta(seconds=1)) == "Then Corp"
    assert entry.url == log.url
    assert not entry.tiled
    default = log.as_log()
    assert default.state is LogState.USABLE
    assert default.state_since == dt.datetime(2020, 1, 1, tzinfo=UTC)
    assert log.as_log(state=None).state_since is None


def test_tiled_log_entry() -> None:
    entry = TestLog("Kit Tiles", tiled=True, url="https://tiles.invalid/").as_log()
    assert entry.tiled
    assert entry.url is None
    assert (
        entry.submission_url == entry.monitoring_url == entry.base_url == "https://tiles.invalid/"
    )


def test_log_list_of(logs: list[TestLog]) -> None:
    ready = TestLog("Kit Pending").as_log(state=LogState.PENDING)
    log_list = log_list_of([*logs, ready])
    assert [log.description for log in log_list.logs] == [
        "Kit Argon",
        "Kit Xenon",
        "Kit Sunlight",
        "Kit Pending",
    ]
    assert log_list.by_id(logs[1].log_id) == logs[1].as_log()
    assert log_list.logs[3] is ready
    document = log_list.to_chrome_v3()
    keys = [
        entry["key"]
        for operator in document["operators"]
        for entry in operator["logs"] + operator["tiled_logs"]
    ]
    assert base64.b64encode(logs[0].spki).decode() in keys


def test_precertificate_and_final_certificate(ca: CA, logs: list[TestLog]) -> None:
    times = [
        dt.datetime(2025, 4, 1, 10, 0, 0, 123000, tzinfo=UTC) + dt.timedelta(minutes=i)
        for i in range(3)
    ]
    issued = issue_with_scts(
        ca,
        "example.com",
        logs,
        not_before=dt.datetime(2025, 4, 1, tzinfo=UTC),
        sct_times=times,
    )
    precert, cert = issued.precert, issued.cert
    assert precert is not None
    poison = precert.extensions.get_extension_for_oid(ExtensionOID.PRECERT_POISON)
    assert poison.critical
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_oid(ExtensionOID.PRECERT_POISON)
    for field in ("serial_number", "subject", "issuer", "not_valid_before_utc"):
        assert getattr(precert, field) == getattr(cert, field)
    assert precert.public_key() == cert.public_key()
    assert issued.issuer == ca.cert
    cert.verify_directly_issued_by(ca.cert)
    precert.verify_directly_issued_by(ca.cert)

    # cryptography's own SCT parser reads what the kit embedded.
    extension = cert.extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    )
    assert not extension.critical
    theirs = list(extension.value)
    assert [s.log_id for s in theirs] == [log.log_id for log in logs]
    assert [s.timestamp.replace(tzinfo=UTC) for s in theirs] == times
    assert {s.entry_type for s in theirs} == {LogEntryType.PRE_CERTIFICATE}
    assert [s.signature for s in theirs] == [s.signature for s in embedded_scts(cert)]
    assert list(issued.scts) == [s.raw for s in embedded_scts(cert)]

    results = verify_embedded(cert, issued.issuer, log_list_of(logs), dt.datetime.now(UTC))
    assert [r.status for r in results] == [SCTStatus.VALID] * 3
    scts = embedded_scts(cert)
    assert [s.signature_algorithm for s in scts] == [3, 1, 3]
    assert scts[2].leaf_index is not None
    assert scts[0].leaf_index is None


@pytest.mark.parametrize("days", [90, 180, 181, 398])
def test_lifetimes(ca: CA, days: int) -> None:
    start = dt.datetime(2025, 1, 15, tzinfo=UTC)
    issued = issue_with_scts(ca, "example.com", [TestLog()], days=days, not_before=start)
    assert issued.cert.not_valid_before_utc == start
    assert issued.cert.not_valid_after_utc - start == dt.timedelta(days=days)
    # The default SCT is dated an hour after notBefore.
    assert embedded_scts(issued.cert)[0].timestamp == start + dt.timedelta(hours=1)


def test_explicit_not_after_and_default_validity(ca: CA) -> None:
    end = dt.datetime(2030, 1, 1, tzinfo=UTC)
    assert issue_with_scts(ca, "example.com", [], not_after=end).cert.not_valid_after_utc == end
    recent = issue_with_scts(ca, "example.com", [])
    age = dt.datetime.now(UTC) - recent.cert.not_valid_before_utc
    assert dt.timedelta(hours=23) < age < dt.timedelta(days=1, minutes=5)


def test_sct_times_must_match_logs(ca: CA) -> None:
    with pytest.raises(ValueError, match="2 SCT times for 1 logs"):
        issue_with_scts(ca, "example.com", [TestLog()], sct_times=[dt.datetime.now(UTC)] * 2)


def test_rsa_leaf_key(ca: CA) -> None:
    issued = issue_with_scts(ca, "example.com", [TestLog()], key_type="rsa-2048")
    usage = issued.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_encipherment


def test_corrupt_flips_one_bit_of_the_signature() -> None:
    log = TestLog("Kit RSA", key_type="rsa-2048")  # PKCS#1 v1.5 is deterministic
    entry = SignedEntry.x509(b"not really a certificate")
    good = parse_sct(log.sign_sct(entry, 1000), entry_type=SignedEntryType.X509)
    bad = parse_sct(log.sign_sct(entry, 1000, corrupt=True), entry_type=SignedEntryType.X509)
    assert good.signature[:-1] == bad.signature[:-1]
    assert good.signature[-1] ^ bad.signature[-1] == 1


def test_sign_sct_with_extensions() -> None:
    log = TestLog()
    raw = log.sign_sct(SignedEntry.x509(b"x"), 5, b"\x09\x00\x01z")
    sct = parse_sct(raw, entry_type=SignedEntryType.X509)
    assert (sct.log_id, sct.timestamp_ms, sct.extensions) == (log.log_id, 5, b"\x09\x00\x01z")


def test_x509_sct_over_the_final_certificate(ca: CA) -> None:
    log = TestLog()
    issued = issue_with_scts(ca, "example.com", [])
    when = dt.datetime.now(UTC) - dt.timedelta(seconds=5)
    sct = parse_sct(x509_sct(log, issued.cert, when), entry_type=SignedEntryType.X509)
    assert sct.timestamp_ms == timestamp_ms(when)
    result = verify_sct(
        sct, issued.cert, issuer=None, log_list=log_list_of([log]), now=dt.datetime.now(UTC)
    )
    assert result.status is SCTStatus.VALID


def test_timestamp_ms_is_exact() -> None:
    assert timestamp_ms(dt.datetime(1970, 1, 1, 0, 0, 1, 999999, tzinfo=UTC)) == 1999
    assert timestamp_ms(dt.datetime(2025, 7, 7, 9, 34, 9, 149000, tzinfo=UTC)) == 1751880849149


def test_verifies_as_a_server_certificate_and_in_a_real_handshake(ca: CA) -> None:
    logs = [TestLog("Kit A"), TestLog("Kit B", operator="B")]
    issued = issue_with_scts(ca, "localhost", logs, extra_names=["127.0.0.1"])
    verifier = (
        PolicyBuilder()
        .store(Store([issued.root]))
        .time(dt.datetime.now(UTC))
        .build_server_verifier(x509.DNSName("localhost"))
    )
    assert verifier.verify(issued.cert, list(issued.chain))[0] == issued.cert
    with (
        TLSServer(issued) as server,
        socket.create_connection(server.address, timeout=10) as raw,
        ca.client_context().wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        served, verified = served_chain(tls), verified_chain(tls)
    leaf = x509.load_der_x509_certificate(served[0])
    issuer = x509.load_der_x509_certificate(verified[1])
    results = verify_embedded(leaf, issuer, log_list_of(logs), dt.datetime.now(UTC))
    assert [r.status for r in results] == [SCTStatus.VALID, SCTStatus.VALID]


def test_log_list_of_accepts_logs_only() -> None:
    log = Log("bare", b"\x01" * 32, b"key", "op")
    assert log_list_of([log]).logs == (log,)
