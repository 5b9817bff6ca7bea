"""Reading certificates, keys and CSRs from PEM bundles and DER, and describing chains."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from functools import cache

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import vectors
from pinwarden.certs import CertInfo, describe_chain, key_description, load_objects
from pinwarden.errors import CertificateError
from pinwarden.pins import Pin
from pinwarden.testing import CA, Issued, KeyType, PrivateKey, generate_key, pem

SETTINGS = settings(max_examples=200, deadline=None)
DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
PKCS8 = serialization.PrivateFormat.PKCS8
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL
PLAIN = serialization.NoEncryption()
PASSWORD = b"s3cret"


def _pin_of(key: PrivateKey) -> Pin:
    """Independent of pinwarden's loaders: SHA-256 of cryptography's SPKI encoding."""
    return Pin("sha256", hashlib.sha256(key.public_key().public_bytes(DER, SPKI)).digest())


def _csr(key: PrivateKey) -> x509.CertificateSigningRequest:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr.example")]))
        .sign(key, hashes.SHA256())
    )


@dataclass(frozen=True)
class Hierarchy:
    root: CA
    intermediate: CA
    leaf: Issued
    rsa_key: PrivateKey
    ec_key: PrivateKey
    csr_key: PrivateKey
    public_key: PrivateKey


@cache
def hierarchy() -> Hierarchy:
    root = CA("certs root", key_type="ec-p384")
    intermediate = root.intermediate("certs intermediate", key_type="rsa-2048")
    leaf = intermediate.issue("certs.example", "192.0.2.1", key_type="ec-p256")
    return Hierarchy(
        root,
        intermediate,
        leaf,
        rsa_key=generate_key("rsa-2048"),
        ec_key=generate_key("ec-p256"),
        csr_key=generate_key("ec-p256"),
        public_key=generate_key("rsa-2048"),
    )


def _relabel(data: bytes, old: bytes, new: bytes) -> bytes:
    return data.replace(b"BEGIN " + old, b"BEGIN " + new).replace(b"END " + old, b"END " + new)


def _pem_block(label: str, body: bytes) -> bytes:
    lines = base64.encodebytes(body).replace(b"\n", b"").decode()
    wrapped = "\n".join(lines[i : i + 64] for i in range(0, len(lines), 64))
    return f"-----BEGIN {label}-----\n{wrapped}\n-----END {label}-----\n".encode()


# -- PEM bundles ------------------------------------------------------------------------------


def test_bundle_of_every_kind() -> None:
    h = hierarchy()
    parts = [
        b"Bag Attributes: a friendly name that OpenSSL prints\n",
        pem(h.leaf.cert),
        b"\nsome commentary between blocks\n",
        pem(h.intermediate.cert),
        h.rsa_key.private_bytes(PEM, PKCS8, PLAIN),
        h.ec_key.private_bytes(PEM, TRADITIONAL, PLAIN),
        _csr(h.csr_key).public_bytes(PEM),
        h.public_key.public_key().public_bytes(PEM, SPKI),
        h.public_key.public_key().public_bytes(PEM, serialization.PublicFormat.PKCS1),
    ]
    objects = load_objects(b"".join(parts), source="bundle.pem")
    assert [(o.kind, o.index) for o in objects] == [
        ("certificate", 1),
        ("certificate", 2),
        ("private-key", 3),
        ("private-key", 4),
        ("csr", 5),
        ("public-key", 6),
        ("public-key", 7),
    ]
    assert all(o.source == "bundle.pem" for o in objects)
    assert [o.pin for o in objects] == [
        _pin_of(h.leaf.key),
        _pin_of(h.intermediate.key),
        _pin_of(h.rsa_key),
        _pin_of(h.ec_key),
        _pin_of(h.csr_key),
        _pin_of(h.public_key),
        _pin_of(h.public_key),
    ]
    assert objects[0].certificate == h.leaf.cert
    assert objects[0].subject == h.leaf.cert.subject.rfc4514_string()
    assert objects[1].certificate == h.intermediate.cert
    assert all(o.certificate is None and o.subject is None for o in objects[2:])


def test_crlf_line_endings() -> None:
    h = hierarchy()
    data = pem(h.leaf.cert, h.root.cert).replace(b"\n", b"\r\n")
    assert [o.pin for o in load_objects(data)] == [_pin_of(h.leaf.key), _pin_of(h.root.key)]


@pytest.mark.parametrize("label", [b"TRUSTED CERTIFICATE", b"X509 CERTIFICATE"])
def test_other_certificate_labels(label: bytes) -> None:
    h = hierarchy()
    data = _relabel(pem(h.leaf.cert), b"CERTIFICATE", label)
    assert data.startswith(b"-----BEGIN " + label + b"-----")
    [obj] = load_objects(data)
    assert obj.kind == "certificate"
    assert obj.pin == _pin_of(h.leaf.key)


def test_trusted_certificate_with_openssl_trust_settings() -> None:
    """``openssl x509 -trustout -addtrust serverAuth`` writes the certificate followed by
    its X509_CERT_AUX trust settings, ``SEQUENCE { SEQUENCE OF OID }``, in one block:
    what the TRUSTED CERTIFICATE label exists for."""
    h = hierarchy()
    server_auth = bytes.fromhex("06082b06010505070301")  # 1.3.6.1.5.5.7.3.1
    aux = b"\x30\x0c\x30\x0a" + server_auth
    data = _pem_block("TRUSTED CERTIFICATE", h.root.cert.public_bytes(DER) + aux)
    [obj] = load_objects(data, source="trusted.pem")
    assert obj.kind == "certificate"
    assert obj.pin == _pin_of(h.root.key)


def test_new_certificate_request_label() -> None:
    key = hierarchy().csr_key
    data = _relabel(_csr(key).public_bytes(PEM), b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST")
    [obj] = load_objects(data)
    assert (obj.kind, obj.pin) == ("csr", _pin_of(key))


def test_unknown_blocks_are_skipped() -> None:
    key = generate_key("ec-p256")
    params = _pem_block("EC PARAMETERS", bytes.fromhex("06082a8648ce3d030107"))  # prime256v1
    data = key.private_bytes(PEM, TRADITIONAL, PLAIN) + params
    [obj] = load_objects(data)
    assert (obj.kind, obj.pin) == ("private-key", _pin_of(key))


def test_encrypted_private_key_in_a_bundle() -> None:
    h = hierarchy()
    encrypted = h.ec_key.private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(PASSWORD))
    assert b"ENCRYPTED PRIVATE KEY" in encrypted
    data = pem(h.leaf.cert) + encrypted
    objects = load_objects(data, source="k.pem", password=PASSWORD)
    assert [o.pin for o in objects] == [_pin_of(h.leaf.key), _pin_of(h.ec_key)]
    assert load_objects(data, password=PASSWORD.decode())[1].pin == _pin_of(h.ec_key)
    with pytest.raises(
        CertificateError, match=r"^k\.pem: PEM block 2 \(ENCRYPTED PRIVATE KEY\): .*password"
    ):
        load_objects(data, source="k.pem")
    with pytest.raises(CertificateError, match=r"k\.pem: PEM block 2 .*wrong password"):
        load_objects(data, source="k.pem", password=b"nope")


# -- DER --------------------------------------------------------------------------------------


def test_der_of_each_kind() -> None:
    h = hierarchy()
    cases: list[tuple[bytes, str, Pin]] = [
        (h.leaf.cert.public_bytes(DER), "certificate", _pin_of(h.leaf.key)),
        (_csr(h.csr_key).public_bytes(DER), "csr", _pin_of(h.csr_key)),
        (h.public_key.public_key().public_bytes(DER, SPKI), "public-key", _pin_of(h.public_key)),
        (
            h.public_key.public_key().public_bytes(DER, serialization.PublicFormat.PKCS1),
            "public-key",
            _pin_of(h.public_key),
        ),
        (h.rsa_key.private_bytes(DER, PKCS8, PLAIN), "private-key", _pin_of(h.rsa_key)),
        (h.rsa_key.private_bytes(DER, TRADITIONAL, PLAIN), "private-key", _pin_of(h.rsa_key)),
        (h.ec_key.private_bytes(DER, PKCS8, PLAIN), "private-key", _pin_of(h.ec_key)),
        (h.ec_key.private_bytes(DER, TRADITIONAL, PLAIN), "private-key", _pin_of(h.ec_key)),
    ]
    for data, kind, expected in cases:
        [obj] = load_objects(data, source="x.der")
        assert (obj.kind, obj.source, obj.index, obj.pin) == (kind, "x.der", 1, expected)
    [cert] = load_objects(cases[0][0])
    assert cert.certificate == h.leaf.cert


def test_encrypted_traditional_pem_key_in_a_bundle() -> None:
    h = hierarchy()
    encrypted = h.rsa_key.private_bytes(
        PEM, TRADITIONAL, serialization.BestAvailableEncryption(PASSWORD)
    )
    assert b"Proc-Type: 4,ENCRYPTED" in encrypted
    objects = load_objects(encrypted + pem(h.leaf.cert), source="t.pem", password=PASSWORD)
    assert [(o.kind, o.pin) for o in objects] == [
        ("private-key", _pin_of(h.rsa_key)),
        ("certificate", _pin_of(h.leaf.key)),
    ]
    with pytest.raises(
        CertificateError, match=r"^t\.pem: PEM block 1 \(RSA PRIVATE KEY\): .*password"
    ):
        load_objects(encrypted, source="t.pem")


def test_encrypted_der_private_key() -> None:
    key = hierarchy().ec_key
    data = key.private_bytes(DER, PKCS8, serialization.BestAvailableEncryption(PASSWORD))
    [obj] = load_objects(data, password=PASSWORD)
    assert (obj.kind, obj.pin) == ("private-key", _pin_of(key))
    with pytest.raises(CertificateError, match=r"^key\.der: .*password is needed"):
        load_objects(data, source="key.der")
    with pytest.raises(CertificateError, match=r"^key\.der: .*wrong password"):
        load_objects(data, source="key.der", password=b"nope")


# -- garbage ----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x30\x03\x02\x01\x00", bytes(range(256))])
def test_garbage_der(data: bytes) -> None:
    with pytest.raises(CertificateError, match=r"^junk\.bin: not PEM, and not a DER certificate"):
        load_objects(data, source="junk.bin")


@pytest.mark.parametrize(
    ("label", "body"),
    [
        ("CERTIFICATE", b"not a certificate"),
        ("TRUSTED CERTIFICATE", b"\x30\x03\x02\x01\x00"),
        ("CERTIFICATE REQUEST", b"not a csr"),
        ("PRIVATE KEY", b"not a key"),
        ("EC PRIVATE KEY", b"not a key"),
        ("PUBLIC KEY", b"not a key"),
    ],
)
def test_garbage_block_is_named(label: str, body: bytes) -> None:
    data = pem(hierarchy().leaf.cert) + _pem_block(label, body)
    with pytest.raises(CertificateError, match=rf"^bundle\.pem: PEM block 2 \({label}\): "):
        load_objects(data, source="bundle.pem")


def test_pem_header_without_end() -> None:
    with pytest.raises(
        CertificateError,
        match=r"^a\.pem: PEM block 1 \(CERTIFICATE\) has a BEGIN line without a matching END",
    ):
        load_objects(b"-----BEGIN CERTIFICATE-----\nAAAA\n", source="a.pem")


def test_pem_with_nothing_pinwarden_reads() -> None:
    data = _pem_block("EC PARAMETERS", b"\x06\x01\x00") + _pem_block("X509 CRL", b"\x30\x00")
    with pytest.raises(
        CertificateError,
        match=r"^p\.pem: no certificate, key or CSR \(PEM blocks: EC PARAMETERS, X509 CRL\)",
    ):
        load_objects(data, source="p.pem")


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_certificate_error(data: bytes) -> None:
    try:
        objects = load_objects(data)
    except CertificateError:
        return
    assert len(objects) == 1


@SETTINGS
@given(
    st.sampled_from(
        [
            "CERTIFICATE",
            "TRUSTED CERTIFICATE",
            "CERTIFICATE REQUEST",
            "PRIVATE KEY",
            "RSA PRIVATE KEY",
            "PUBLIC KEY",
            "RSA PUBLIC KEY",
        ]
    ),
    st.binary(max_size=200),
)
def test_arbitrary_pem_blocks_raise_only_certificate_error(label: str, body: bytes) -> None:
    with pytest.raises(CertificateError, match=rf"PEM block 1 \({label}\)"):
        load_objects(_pem_block(label, body))


# -- describing certificates ------------------------------------------------------------------


def test_describe_a_verified_chain() -> None:
    h = hierarchy()
    chain = [h.leaf.cert, h.intermediate.cert, h.root.cert]
    infos = describe_chain(chain, ends_at_anchor=True)
    assert [i.position for i in infos] == ["leaf", "intermediate", "root"]
    assert [i.key for i in infos] == ["EC P-256", "RSA 2048", "EC P-384"]
    assert [i.is_ca for i in infos] == [False, True, True]
    for info, cert in zip(infos, chain, strict=True):
        assert info.subject == cert.subject.rfc4514_string()
        assert info.issuer == cert.issuer.rfc4514_string()
        assert info.pin == Pin(
            "sha256", hashlib.sha256(cert.public_key().public_bytes(DER, SPKI)).digest()
        )
        assert info.fingerprint_sha256 == cert.fingerprint(hashes.SHA256()).hex()
        assert info.der == cert.public_bytes(DER)
        assert info.not_before == cert.not_valid_before_utc
        assert info.not_after == cert.not_valid_after_utc
    # DER input describes the same.
    assert describe_chain([c.public_bytes(DER) for c in chain], ends_at_anchor=True) == infos


def test_describe_positions_without_anchor() -> None:
    h = hierarchy()
    served = describe_chain([h.leaf.cert, h.intermediate.cert], ends_at_anchor=False)
    assert [i.position for i in served] == ["leaf", "intermediate"]
    anchored = describe_chain([h.leaf.cert, h.intermediate.cert], ends_at_anchor=True)
    assert [i.position for i in anchored] == ["leaf", "root"]
    # A self-issued last certificate is a root even when not known to be the anchor.
    full = describe_chain([h.leaf.cert, h.intermediate.cert, h.root.cert], ends_at_anchor=False)
    assert [i.position for i in full] == ["leaf", "intermediate", "root"]
    assert [i.position for i in describe_chain([h.root.cert], ends_at_anchor=True)] == ["leaf"]
    assert describe_chain([], ends_at_anchor=True) == []


def test_intermediate_of_intermediate() -> None:
    root = CA("r", key_type="ec-p256")
    a = root.intermediate("a")
    b = a.intermediate("b")
    leaf = b.issue("deep.example")
    infos = describe_chain([leaf.cert, b.cert, a.cert, root.cert], ends_at_anchor=True)
    assert [i.position for i in infos] == ["leaf", "intermediate", "intermediate", "root"]
    assert infos[1].issuer == infos[2].subject


@pytest.mark.parametrize(
    ("key_type", "description"),
    [
        ("rsa-2048", "RSA 2048"),
        ("rsa-3072", "RSA 3072"),
        ("ec-p256", "EC P-256"),
        ("ec-p384", "EC P-384"),
    ],
)
def test_key_description(key_type: KeyType, description: str) -> None:
    assert key_description(generate_key(key_type).public_key()) == description


def test_key_description_of_other_keys() -> None:
    assert key_description(ed25519.Ed25519PrivateKey.generate().public_key()) == "Ed25519"


def test_days_left() -> None:
    now = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    issued = CA("days root").issue(
        "days.example",
        not_before=now - dt.timedelta(days=5),
        not_after=now + dt.timedelta(days=10, hours=1),
    )
    info = CertInfo.from_certificate(issued.cert, "leaf")
    assert info.days_left(now) == 10
    assert info.days_left(now + dt.timedelta(days=10)) == 0
    assert info.days_left(now + dt.timedelta(days=10, hours=2)) == -1
    assert info.days_left(now - dt.timedelta(days=3)) == 13
    as_json = info.to_json(now)
    assert as_json["days_left"] == 10
    assert as_json["pin"] == str(issued.pin)
    assert as_json["position"] == "leaf"
    assert as_json["not_after"] == (now + dt.timedelta(days=10, hours=1)).isoformat()
    assert as_json["is_ca"] is False
    json.dumps(as_json)


@pytest.mark.vectors
def test_real_chain_is_described() -> None:
    folder = vectors("ct/sct-real")
    manifest = json.loads((folder / "manifest.json").read_text())
    leaf = (folder / manifest["leaf"]).read_bytes()
    issuer = (folder / manifest["issuer"]).read_bytes()
    infos = describe_chain([leaf, issuer], ends_at_anchor=False)
    assert [i.position for i in infos] == ["leaf", "intermediate"]
    assert infos[0].subject == manifest["leaf_subject"]
    assert infos[0].issuer == infos[1].subject
    assert infos[0].not_after == dt.datetime.fromisoformat(manifest["not_after"])
    assert infos[0].not_before == dt.datetime.fromisoformat(manifest["not_before"])
    assert infos[0].key == "EC P-256"  # openssl x509 -text: id-ecPublicKey, NIST CURVE: P-256
    assert infos[1].key == "RSA 2048"  # openssl x509 -text: rsaEncryption, (2048 bit)
    assert infos[0].fingerprint_sha256 == hashlib.sha256(leaf).hexdigest()
    when = dt.datetime(2025, 9, 19, 8, 34, 2, tzinfo=dt.timezone.utc)
    assert infos[0].days_left(when) == 10
    [obj] = load_objects(leaf, source="leaf.der")
    assert obj.pin == infos[0].pin


# -- certificates OpenSSL reads and cryptography refuses (found by review) -----------------


def _version_4(cert: x509.Certificate) -> bytes:
    der = cert.public_bytes(DER)
    at = der.find(b"\xa0\x03\x02\x01\x02")
    return der[:at] + b"\xa0\x03\x02\x01\x03" + der[at + 5 :]


def test_unreadable_certificates_are_certificate_errors() -> None:
    odd = _version_4(CA("odd").cert)
    with pytest.raises(CertificateError, match=r"odd\.der"):
        load_objects(odd, source="odd.der")
    with pytest.raises(CertificateError, match="PEM block 1"):
        load_objects(pem(odd), source="odd.pem")
    with pytest.raises(CertificateError):
        Pin.from_certificate(odd)


def test_an_unreadable_certificate_is_still_described() -> None:
    ca = CA("odd")
    info = CertInfo.from_certificate(_version_4(ca.cert), "leaf")
    assert "cannot read" in info.subject
    assert info.pin == ca.pin  # the DER walk still finds the key
    assert info.not_after is None
    assert info.to_json(dt.datetime.now(dt.timezone.utc))["days_left"] is None


def _tlv(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    if size < 0x80:
        return bytes((tag, size)) + contents
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + contents


# 2.5.29.99 stands in for basicConstraints (2.5.29.19): the same DER length, so replacing
# one with the other in a TBS gives a certificate with basicConstraints twice.
_STAND_IN = x509.ObjectIdentifier("2.5.29.99")
_STAND_IN_DER, _BASIC_CONSTRAINTS_DER = bytes.fromhex("0603551d63"), bytes.fromhex("0603551d13")
_UNIQUE_ID_DER, _CN_DER = bytes.fromhex("060355042d"), bytes.fromhex("0603550403")


def _odd_certificate(ca: CA, *, twice: bool = False, bit_string_cn: bool = False) -> bytes:
    """DER of a CA certificate cryptography loads but raises on when its extensions are
    read (``twice``: DuplicateExtension) or its subject and issuer (``bit_string_cn``:
    TypeError, a BIT STRING where the CN's string belongs). Signed by ``ca`` (ECDSA)."""
    from cryptography.x509.name import _ASN1Type

    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd.example")])
    if bit_string_cn:
        unique = x509.NameAttribute(
            NameOID.X500_UNIQUE_IDENTIFIER, b"\x00\x01", _type=_ASN1Type.BitString
        )
        name = x509.Name([unique])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca.key.public_key())
        .serial_number(77)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if twice:
        value = x509.BasicConstraints(ca=True, path_length=None).public_bytes()
        builder = builder.add_extension(x509.UnrecognizedExtension(_STAND_IN, value), True)
    tbs = builder.sign(ca.key, hashes.SHA256()).tbs_certificate_bytes
    tbs = tbs.replace(_STAND_IN_DER, _BASIC_CONSTRAINTS_DER).replace(_UNIQUE_ID_DER, _CN_DER)
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    signature = ca.key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    ecdsa_with_sha256 = bytes.fromhex("300a06082a8648ce3d040302")
    return _tlv(0x30, tbs + ecdsa_with_sha256 + _tlv(0x03, b"\x00" + signature))


def test_a_duplicated_extension_is_described_as_not_a_ca() -> None:
    ca = CA("odd")
    der = _odd_certificate(ca, twice=True)
    cert = x509.load_der_x509_certificate(der)
    with pytest.raises(x509.DuplicateExtension):
        _ = cert.extensions
    for form in (cert, der):
        info = CertInfo.from_certificate(form, "leaf")
        assert info.is_ca is False  # cryptography cannot tell; pinwarden does not guess
        assert info.subject == "CN=odd.example"
        assert info.pin == ca.pin
    # A chain a server sends is described whatever it holds.
    assert [i.subject for i in describe_chain([der], ends_at_anchor=False)] == ["CN=odd.example"]
    [obj] = load_objects(der, source="odd.der")
    assert obj.certificate is not None


def test_a_name_cryptography_cannot_decode_is_described() -> None:
    ca = CA("odd")
    der = _odd_certificate(ca, bit_string_cn=True)
    cert = x509.load_der_x509_certificate(der)
    with pytest.raises(TypeError):
        _ = cert.subject
    info = CertInfo.from_certificate(cert, "leaf")
    assert info.subject.startswith("<subject cryptography cannot read: ")
    assert info.issuer.startswith("<issuer cryptography cannot read: ")
    assert info.is_ca is True
    assert info.pin == ca.pin
    json.dumps(info.to_json(dt.datetime.now(dt.timezone.utc)))
    # Read from a file, DER or PEM, it is still the certificate it is.
    for data, source in ((der, "odd.der"), (pem(der), "odd.pem")):
        [obj] = load_objects(data, source=source)
        assert obj.kind == "certificate"
        assert obj.subject is not None
        assert obj.subject.startswith("<subject cryptography cannot read")


def test_many_begin_lines_without_end_fail_on_the_first() -> None:
    data = b"-----BEGIN CERTIFICATE-----\nAAAA\n" * 20_000
    with pytest.raises(CertificateError, match=r"PEM block 1 .* without a matching END"):
        load_objects(data, source="many.pem")
