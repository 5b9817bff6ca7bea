"""The hand-written DER walk that slices the SubjectPublicKeyInfo out of a certificate."""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import vectors
from pinwarden._der import spki_of_certificate
from pinwarden.errors import CertificateError
from pinwarden.testing import CA, KeyType, PrivateKey, generate_key

SETTINGS = settings(max_examples=200, deadline=None)
DER = serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(DER, SPKI)


@cache
def _cert(key_type: KeyType) -> x509.Certificate:
    return CA("der test root").issue("der.example", key_type=key_type).cert


# -- a minimal DER encoder, to build a version 1 certificate by hand -------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


ECDSA_SHA256 = _seq(bytes.fromhex("06082a8648ce3d040302"))
RSA_SHA256 = _seq(bytes.fromhex("06092a864886f70d01010b"), bytes.fromhex("0500"))


def _v1_certificate(key: PrivateKey) -> bytes:
    """A self-signed X.509 v1 certificate: its TBSCertificate has no [0] version field
    (and no extensions)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "v1.example")]).public_bytes()
    algorithm = RSA_SHA256 if isinstance(key, rsa.RSAPrivateKey) else ECDSA_SHA256
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    validity = _seq(
        _tlv(0x17, start.strftime("%y%m%d%H%M%SZ").encode()),
        _tlv(0x17, (start + dt.timedelta(days=30)).strftime("%y%m%d%H%M%SZ").encode()),
    )
    spki = key.public_key().public_bytes(DER, SPKI)
    tbs = _seq(_tlv(0x02, b"\x01\x23\x45"), algorithm, name, validity, name, spki)
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return _seq(tbs, algorithm, _tlv(0x03, b"\x00" + signature))


# -- well-formed certificates -----------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072"])
def test_spki_equals_cryptography_encoding(key_type: KeyType) -> None:
    cert = _cert(key_type)
    der = cert.public_bytes(DER)
    assert cert.version is x509.Version.v3
    spki = spki_of_certificate(der)
    assert spki == _spki(cert)
    assert der.count(spki) == 1


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_version_1_certificate(key_type: KeyType) -> None:
    key = generate_key(key_type)
    der = _v1_certificate(key)
    cert = x509.load_der_x509_certificate(der)
    assert cert.version is x509.Version.v1
    cert.verify_directly_issued_by(cert)  # the hand-built certificate is well-formed
    assert spki_of_certificate(der) == key.public_key().public_bytes(DER, SPKI)
    assert spki_of_certificate(der) == _spki(cert)


@pytest.mark.vectors
@pytest.mark.parametrize("name", ["leaf_google-cert.bin", "issuer_google-cert.bin"])
def test_real_certificates(name: str) -> None:
    der = (vectors("ct/sct-real") / name).read_bytes()
    assert spki_of_certificate(der) == _spki(x509.load_der_x509_certificate(der))


def test_only_the_certificate_is_read_not_what_follows() -> None:
    der = _cert("ec-p256").public_bytes(DER)
    assert spki_of_certificate(der + b"\x00trailing") == _spki(_cert("ec-p256"))


# -- malformed input ----------------------------------------------------------------------------


def test_every_truncation_is_refused() -> None:
    der = _cert("rsa-2048").public_bytes(DER)
    for size in range(len(der)):
        with pytest.raises(CertificateError, match="DER"):
            spki_of_certificate(der[:size])


def _spki_offset(der: bytes, spki: bytes) -> int:
    return der.index(spki)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"truncated Certificate header at byte 0"),
        (b"\x30", r"truncated Certificate header"),
        (b"\x31\x03abc", r"must start with a SEQUENCE"),
        (b"\x30\x80\x30\x00\x00\x00", r"bad length of Certificate"),
        (b"\x30\x85\x00\x00\x00\x00\x05" + b"\x00" * 5, r"bad length of Certificate"),
        (b"\x30\x82\xff", r"bad length of Certificate"),
        (
            b"\x30\x82\x01\x00" + b"\x30" * 10,
            r"Certificate at byte 0 claims 256 bytes, only 10 remain",
        ),
        (b"\x30\x05\x02\x03abc", r"TBSCertificate is not a SEQUENCE"),
        (b"\x30\x04\x30\x02\x02\x00", r"truncated signature header"),
    ],
)
def test_garbage_is_refused_with_a_message(data: bytes, message: str) -> None:
    with pytest.raises(CertificateError, match=message):
        spki_of_certificate(data)


def test_spki_must_be_a_sequence() -> None:
    cert = _cert("ec-p256")
    der = bytearray(cert.public_bytes(DER))
    der[_spki_offset(bytes(der), _spki(cert))] = 0x31
    with pytest.raises(CertificateError, match="subjectPublicKeyInfo is not a SEQUENCE"):
        spki_of_certificate(bytes(der))


# -- properties -----------------------------------------------------------------------------------


def _check(data: bytes) -> None:
    try:
        spki = spki_of_certificate(data)
    except CertificateError:
        return
    except Exception as exc:  # pragma: no cover - reported as the failure
        pytest.fail(f"spki_of_certificate({data!r}) raised {type(exc).__name__}: {exc}")
    assert spki[:1] == b"\x30"
    assert spki in data


@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_certificate_error(data: bytes) -> None:
    _check(data)


@SETTINGS
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=0x84))
def test_arbitrary_sequences_raise_only_certificate_error(body: bytes, length_byte: int) -> None:
    # Start with plausible headers so the walk gets past the first checks.
    _check(bytes([0x30, length_byte]) + body)
    _check(_seq(_seq(body)))
    _check(_seq(_seq(bytes([0xA0, 0x03, 0x02, 0x01, 0x02]) + body)))


@SETTINGS
@given(st.data())
def test_mutated_certificates_raise_only_certificate_error(data: st.DataObject) -> None:
    der = bytearray(_cert("ec-p256").public_bytes(DER))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        index = data.draw(st.integers(min_value=0, max_value=len(der) - 1))
        der[index] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(der)))
    _check(bytes(der[:cut]))
