"""SCT verification against a real certificate: *.google.com (July 2025), issued by Google
Trust Services WR2, with SCTs from Google Xenon2025h2 and DigiCert Yeti2025
(../shared/testdata/ct/sct-real, see its SOURCES.md)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import vectors
from pinwarden.ct.logs import Log, LogList, LogState, log_id_of
from pinwarden.ct.sct import (
    SCT,
    SCTStatus,
    SignedEntryType,
    embedded_scts,
    find_issuer,
    parse_sct,
    verify_embedded,
    verify_sct,
)
from pinwarden.testing import CA

pytestmark = pytest.mark.vectors

UTC = dt.timezone.utc
# A moment when both logs were usable and the certificate valid.
AT = dt.datetime(2025, 8, 1, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Real:
    folder: Path
    manifest: dict[str, Any]
    leaf_der: bytes
    leaf: x509.Certificate
    issuer: x509.Certificate
    logs: tuple[Log, ...]

    def log_list(self, *logs: Log) -> LogList:
        return LogList(logs or self.logs, source="sct-real test list")


@pytest.fixture(scope="module")
def real() -> Real:
    folder = vectors("ct/sct-real")
    manifest = json.loads((folder / "manifest.json").read_text())
    leaf_der = (folder / manifest["leaf"]).read_bytes()
    logs = []
    for entry in manifest["logs"]:
        key = (folder / entry["key_file"]).read_bytes()
        logs.append(
            Log(
                description=entry["name"],
                log_id=log_id_of(key),
                key=key,
                operator=entry["operator"],
                state=LogState.USABLE,
                state_since=dt.datetime(2024, 1, 1, tzinfo=UTC),
            )
        )
    return Real(
        folder,
        manifest,
        leaf_der,
        x509.load_der_x509_certificate(leaf_der),
        x509.load_der_x509_certificate((folder / manifest["issuer"]).read_bytes()),
        tuple(logs),
    )


def _statuses(
    cert: x509.Certificate,
    issuer: x509.Certificate | bytes,
    real: Real,
    logs: Sequence[Log] = (),
    at: dt.datetime = AT,
) -> list[str]:
    return [r.status.value for r in verify_embedded(cert, issuer, real.log_list(*logs), at)]


def test_both_embedded_scts_verify(real: Real) -> None:
    results = verify_embedded(real.leaf, real.issuer, real.log_list(), AT)
    assert [r.status for r in results] == [SCTStatus.VALID, SCTStatus.VALID]
    assert [r.operator for r in results] == ["Google", "DigiCert"]
    assert [r.log.description if r.log else None for r in results] == [
        "Google Xenon2025h2",
        "DigiCert Yeti2025",
    ]
    for result, entry in zip(results, real.manifest["logs"], strict=True):
        sct = result.sct
        assert isinstance(sct, SCT)
        assert base64.b64encode(sct.log_id).decode() == entry["log_id_b64"]
        expected = dt.datetime.fromisoformat(entry["sct_timestamp"]).replace(tzinfo=UTC)
        assert sct.timestamp == expected
        assert (sct.hash_algorithm, sct.signature_algorithm) == (4, 3)
        assert sct.entry_type is SignedEntryType.PRECERT
        assert sct.extensions == b""
        assert sct.leaf_index is None


def test_issuer_as_its_spki(real: Real) -> None:
    spki = real.issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert _statuses(real.leaf, spki, real) == ["valid", "valid"]


def test_bin_scts_equal_the_embedded_ones(real: Real) -> None:
    from_files = tuple(
        parse_sct((real.folder / name).read_bytes(), entry_type=SignedEntryType.PRECERT)
        for name in real.manifest["sct_files"]
    )
    assert from_files == embedded_scts(real.leaf)
    assert [s.raw for s in from_files] == [
        (real.folder / name).read_bytes() for name in real.manifest["sct_files"]
    ]


def test_our_parser_agrees_with_cryptography(real: Real) -> None:
    theirs = real.leaf.extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    ).value
    ours = embedded_scts(real.leaf)
    assert len(ours) == len(theirs) == 2
    for mine, other in zip(ours, theirs, strict=True):
        assert mine.log_id == other.log_id
        assert mine.timestamp == other.timestamp.replace(tzinfo=UTC)
        assert mine.signature == other.signature
        assert mine.extensions == other.extension_bytes


def _flip(der: bytes, offset: int, bit: int = 0x01) -> x509.Certificate:
    changed = bytearray(der)
    changed[offset] ^= bit
    return x509.load_der_x509_certificate(bytes(changed))


def test_flipped_bit_in_the_tbs_fails_both(real: Real) -> None:
    offset = real.leaf_der.index(b"*.google.com") + 2  # the subject's CN: "g" becomes "f"
    altered = _flip(real.leaf_der, offset)
    assert altered.subject.rfc4514_string() == "CN=*.foogle.com"
    results = verify_embedded(altered, real.issuer, real.log_list(), AT)
    assert [r.status for r in results] == [SCTStatus.BAD_SIGNATURE] * 2
    assert "altered" in results[0].detail


def test_a_subject_cryptography_cannot_decode_is_no_crash(real: Real) -> None:
    # Found by fuzzing: the subject CN's UTF8String tag becomes BIT STRING, and
    # cryptography raises TypeError (not ValueError) when the subject is read.
    at = real.leaf_der.index(bytes.fromhex("06035504030c0c") + b"*.google.com") + 5
    altered = _flip(real.leaf_der, at, 0x0C ^ 0x03)
    with pytest.raises(TypeError):
        _ = altered.subject
    results = verify_embedded(altered, real.issuer, real.log_list(), AT)
    assert [r.status for r in results] == [SCTStatus.BAD_SIGNATURE] * 2
    assert "the issuer CN=WR2,O=Google Trust Services,C=US did not sign" in results[0].detail
    assert find_issuer(altered, [real.issuer]) is None
    assert find_issuer(altered, [real.issuer], by_name=True) == real.issuer


def test_flipped_bit_in_an_sct_signature_fails_that_sct(real: Real) -> None:
    first = embedded_scts(real.leaf)[0].raw
    offset = real.leaf_der.index(first) + len(first) - 1  # last byte of its signature
    altered = _flip(real.leaf_der, offset)
    assert _statuses(altered, real.issuer, real) == ["bad-signature", "valid"]


def test_wrong_issuer_is_a_bad_signature(real: Real) -> None:
    wrong = CA("WR2").cert
    results = verify_embedded(real.leaf, wrong, real.log_list(), AT)
    assert [r.status for r in results] == [SCTStatus.BAD_SIGNATURE] * 2
    assert "does the issuer match?" in results[1].detail


def test_find_issuer_picks_wr2(real: Real) -> None:
    decoy = CA("WR2").cert
    assert find_issuer(real.leaf, [decoy, real.leaf, real.issuer]) == real.issuer
    assert find_issuer(real.leaf, [decoy]) is None


def test_read_as_an_x509_entry_the_signature_covers_other_bytes(real: Real) -> None:
    raw = (real.folder / real.manifest["sct_files"][0]).read_bytes()
    sct = parse_sct(raw, entry_type=SignedEntryType.X509)
    result = verify_sct(sct, real.leaf, issuer=None, log_list=real.log_list(), now=AT)
    assert result.status is SCTStatus.BAD_SIGNATURE


def test_verdicts_that_depend_on_the_list_and_the_time(real: Real) -> None:
    xenon, yeti = real.logs
    assert _statuses(real.leaf, real.issuer, real, [xenon]) == ["valid", "unknown-log"]

    before = dt.datetime(2025, 7, 7, 9, 34, 9, 140000, tzinfo=UTC)  # between the two SCTs
    assert _statuses(real.leaf, real.issuer, real, at=before) == ["future-timestamp", "valid"]

    retired = dataclasses.replace(
        yeti, state=LogState.RETIRED, state_since=dt.datetime(2025, 7, 7, tzinfo=UTC)
    )
    statuses = _statuses(real.leaf, real.issuer, real, [xenon, retired])
    assert statuses == ["valid", "log-not-trusted-at-time"]
    retired_later = dataclasses.replace(retired, state_since=dt.datetime(2026, 1, 1, tzinfo=UTC))
    assert _statuses(real.leaf, real.issuer, real, [xenon, retired_later]) == ["valid", "valid"]


def test_temporal_interval_of_the_shard(real: Real) -> None:
    xenon, yeti = real.logs
    h2 = (dt.datetime(2025, 7, 1, tzinfo=UTC), dt.datetime(2026, 1, 1, tzinfo=UTC))
    h1 = (dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2025, 7, 1, tzinfo=UTC))
    right = dataclasses.replace(xenon, temporal_interval=h2)
    wrong = dataclasses.replace(xenon, temporal_interval=h1)
    assert _statuses(real.leaf, real.issuer, real, [right, yeti]) == ["valid", "valid"]
    result = verify_embedded(real.leaf, real.issuer, real.log_list(wrong, yeti), AT)[0]
    assert result.status is SCTStatus.LOG_NOT_TRUSTED
    assert "2025-09-29T08:34:02.000Z" in result.detail
