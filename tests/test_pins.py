"""Pins: reading every accepted notation, refusing bad ones with a useful message, and
computing pins from certificates, keys and CSRs (cross-checked against the openssl CLI)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import vectors
from pinwarden.errors import CertificateError, PinFormatError
from pinwarden.pins import (
    Algorithm,
    Pin,
    certificate_der,
    fingerprint_sha256,
    pin_diagnosis,
    spki_sha256,
)
from pinwarden.testing import CA, Issued, KeyType, PrivateKey, generate_key, pem

SETTINGS = settings(max_examples=200, deadline=None)
DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
PASSWORD = "correct horse"


# -- the openssl oracle ---------------------------------------------------------------------


def _openssl_path() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("the openssl CLI (independent oracle) is not installed")
    return path


def _openssl(args: list[str], data: bytes) -> bytes:
    done = subprocess.run(
        [_openssl_path(), *args], input=data, capture_output=True, check=False, timeout=30
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _openssl_pin_of_pubkey_pem(public_pem: bytes, digest: str = "sha256") -> str:
    """``openssl pkey -pubin -outform der | openssl dgst -<digest> -binary | base64``."""
    spki = _openssl(["pkey", "-pubin", "-outform", "der"], public_pem)
    raw = _openssl(["dgst", f"-{digest}", "-binary"], spki)
    return f"{digest}/" + _openssl(["base64", "-A"], raw).decode("ascii").strip()


def openssl_certificate_pin(cert: bytes, *, der: bool = False, digest: str = "sha256") -> str:
    """The documented recipe: ``openssl x509 -pubkey -noout | openssl pkey -pubin
    -outform der | openssl dgst -sha256 -binary | base64``."""
    inform = ["-inform", "der"] if der else []
    public_pem = _openssl(["x509", *inform, "-pubkey", "-noout"], cert)
    return _openssl_pin_of_pubkey_pem(public_pem, digest)


def openssl_private_key_pin(key_pem: bytes) -> str:
    return _openssl_pin_of_pubkey_pem(_openssl(["pkey", "-pubout"], key_pem))


def openssl_csr_pin(csr_pem: bytes) -> str:
    return _openssl_pin_of_pubkey_pem(_openssl(["req", "-pubkey", "-noout"], csr_pem))


# -- material -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Material:
    """One key in every serialisation pinwarden must read, and a certificate and CSR for it."""

    key_type: KeyType
    key: PrivateKey
    issued: Issued
    csr: x509.CertificateSigningRequest

    @property
    def spki(self) -> bytes:
        return self.key.public_key().public_bytes(DER, SPKI)


@cache
def material(key_type: KeyType) -> Material:
    key = generate_key(key_type)
    issued = CA("pins test root").issue("pins.example", key=key)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pins.example")]))
        .sign(key, hashes.SHA256())
    )
    return Material(key_type, key, issued, csr)


KEY_TYPES: list[KeyType] = ["rsa-2048", "ec-p256", "ec-p384"]


@pytest.fixture(params=KEY_TYPES)
def mat(request: pytest.FixtureRequest) -> Material:
    return material(cast(KeyType, request.param))


def _private(
    key: PrivateKey, encoding: serialization.Encoding, fmt: str, password: str | None
) -> bytes:
    formats = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
    }
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(encoding, formats[fmt], enc)


# -- parsing --------------------------------------------------------------------------------

DIGEST = hashlib.sha256(b"pinwarden").digest()
B64 = base64.b64encode(DIGEST).decode()
SHA1_DIGEST = hashlib.sha1(b"legacy").digest()


def test_fixture_digest_has_characters_that_differ_in_url_safe_base64() -> None:
    assert "+" in B64 or "/" in B64
    assert base64.urlsafe_b64encode(DIGEST).decode() != B64


@pytest.mark.parametrize(
    "text",
    [
        f"sha256/{B64}",
        f"SHA256/{B64}",
        f"  sha256/{B64}\n",
        f"sha256/ {B64}",
        f'pin-sha256="{B64}"',
        f'pin-sha256 = "{B64}"',
        f"pin-sha256={B64}",
        f'PIN-SHA256="{B64}"',
        B64,
        DIGEST.hex(),
        DIGEST.hex().upper(),
        ":".join(f"{b:02x}" for b in DIGEST),
        ":".join(f"{b:02X}" for b in DIGEST),
    ],
)
def test_parse_every_sha256_notation(text: str) -> None:
    pin = Pin.parse(text)
    assert pin == Pin("sha256", DIGEST)
    assert not pin.legacy
    assert str(pin) == f"sha256/{B64}"
    assert pin.base64 == B64
    assert pin.hex == DIGEST.hex()
    assert pin.hpkp == f'pin-sha256="{B64}"'


@pytest.mark.parametrize(
    "text",
    [
        "sha1/" + base64.b64encode(SHA1_DIGEST).decode(),
        'pin-sha1="' + base64.b64encode(SHA1_DIGEST).decode() + '"',
    ],
)
def test_sha1_is_accepted_only_as_legacy(text: str) -> None:
    pin = Pin.parse(text)
    assert pin.algorithm == "sha1"
    assert pin.digest == SHA1_DIGEST
    assert pin.legacy
    assert str(pin) == "sha1/" + base64.b64encode(SHA1_DIGEST).decode()


def _b64_of(size: int) -> str:
    return base64.b64encode(hashlib.sha512(b"x").digest()[:size]).decode()


URL_SAFE = base64.urlsafe_b64encode(DIGEST).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"empty"),
        ("   \t", r"empty"),
        (f"sha256/{_b64_of(31)}", r"decodes to 31 bytes, a sha256 pin has 32"),
        (f"sha256/{_b64_of(33)}", r"decodes to 33 bytes, a sha256 pin has 32"),
        ("sha256/", r"decodes to 0 bytes"),
        (_b64_of(20), r"decodes to 20 bytes, a sha256 pin has 32"),
        (f"sha1/{B64}", r"decodes to 32 bytes, a sha1 pin has 20"),
        (f'pin-sha256="{_b64_of(16)}"', r"decodes to 16 bytes"),
        ("sha256/!!!!not*base64", r"not valid base64"),
        ("sha256/" + B64[:-1], r"not valid base64"),
        (f"sha256/{URL_SAFE}", r"URL-safe base64"),
        (URL_SAFE, r"URL-safe base64"),
        (f"sha512/{_b64_of(64)}", r"unknown algorithm 'sha512'"),
        (f"sha384/{_b64_of(48)}", r"unknown algorithm 'sha384'"),
        (f"md5/{_b64_of(16)}", r"unknown algorithm 'md5'"),
        ("md5/not base64 at all", r"unknown algorithm 'md5'"),
        (SHA1_DIGEST.hex(), r"SHA-1"),
        (":".join(f"{b:02x}" for b in SHA1_DIGEST), r"SHA-1"),
        (DIGEST.hex()[:-2], r"not valid base64|hex"),
        ("hello world", r"is not sha256/<base64>"),
    ],
)
def test_bad_pins_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(PinFormatError, match=message):
        Pin.parse(text)


def test_hex_with_an_embedded_newline_is_a_pin_format_error() -> None:
    # "$" in the hex regex also matches before a final newline, so this reaches
    # bytes.fromhex() and escaped as a bare ValueError.
    with pytest.raises(PinFormatError):
        Pin.parse("0" * 63 + "\n:")


@pytest.mark.parametrize(
    ("value", "type_name"), [(42, "int"), (None, "NoneType"), (b"sha256/x", "bytes")]
)
def test_non_string_pin(value: object, type_name: str) -> None:
    with pytest.raises(PinFormatError, match=f"must be a string, got {type_name}"):
        Pin.parse(value)  # type: ignore[arg-type]


def test_long_bad_input_is_shortened_in_the_message() -> None:
    with pytest.raises(PinFormatError) as info:
        Pin.parse("x" * 500)
    assert len(str(info.value)) < 300


def test_pin_constructor_validates() -> None:
    with pytest.raises(PinFormatError, match="32 bytes, got 31"):
        Pin("sha256", DIGEST[:31])
    with pytest.raises(PinFormatError, match="20 bytes, got 32"):
        Pin("sha1", DIGEST)
    with pytest.raises(PinFormatError, match="unknown pin algorithm 'md5'"):
        Pin(cast(Algorithm, "md5"), DIGEST[:16])


def test_pins_are_hashable_values() -> None:
    assert {Pin.parse(B64), Pin.parse(DIGEST.hex())} == {Pin("sha256", DIGEST)}
    assert Pin("sha256", DIGEST) != Pin("sha256", bytes(32))
    assert repr(Pin("sha256", DIGEST)) == f"Pin('sha256/{B64}')"


# -- parsing: properties --------------------------------------------------------------------

sha256_pins = st.binary(min_size=32, max_size=32).map(lambda d: Pin("sha256", d))
any_pins = st.one_of(sha256_pins, st.binary(min_size=20, max_size=20).map(lambda d: Pin("sha1", d)))


@SETTINGS
@given(any_pins)
def test_round_trip_str_and_hpkp(pin: Pin) -> None:
    assert Pin.parse(str(pin)) == pin
    assert Pin.parse(pin.hpkp) == pin
    assert Pin.parse(f"  {pin}  ") == pin


@SETTINGS
@given(sha256_pins)
def test_round_trip_bare_and_hex(pin: Pin) -> None:
    assert Pin.parse(pin.base64) == pin
    assert Pin.parse(pin.hex) == pin
    assert Pin.parse(pin.hex.upper()) == pin
    pairs = [pin.hex[i : i + 2] for i in range(0, 64, 2)]
    assert Pin.parse(":".join(pairs)) == pin
    assert Pin.parse(":".join(pairs).upper()) == pin


pin_like_text = st.one_of(
    st.text(),
    st.text(alphabet="0123456789abcdefABCDEF:\n \t", max_size=80),
    st.builds(
        lambda prefix, body: prefix + body,
        st.sampled_from(
            ["", "sha256/", "sha1/", "SHA256/", "sha512/", 'pin-sha256="', "pin-sha1=", "x/"]
        ),
        st.text(
            alphabet='ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_:"\n é',
            max_size=70,
        ),
    ),
)


@SETTINGS
@given(pin_like_text)
@example("0" * 39 + "\n:")
@example('pin-sha256="é"')
def test_arbitrary_text_raises_only_pin_format_error(text: str) -> None:
    try:
        pin = Pin.parse(text)
    except PinFormatError:
        return
    except Exception as exc:  # pragma: no cover - reported as the failure
        pytest.fail(f"Pin.parse({text!r}) raised {type(exc).__name__}: {exc}")
    assert len(pin.digest) == {"sha256": 32, "sha1": 20}[pin.algorithm]


# -- computing ------------------------------------------------------------------------------


def test_certificate_forms_give_the_same_pin(mat: Material) -> None:
    cert = mat.issued.cert
    expected = Pin("sha256", hashlib.sha256(mat.spki).digest())
    forms: list[bytes | str | x509.Certificate] = [
        cert,
        pem(cert),
        pem(cert).decode("ascii"),
        cert.public_bytes(DER),
    ]
    for form in forms:
        assert Pin.from_certificate(form) == expected
    assert mat.issued.pin == expected
    assert Pin.from_certificate(cert, "sha1") == Pin("sha1", hashlib.sha1(mat.spki).digest())


def test_public_key_forms_give_the_same_pin(mat: Material) -> None:
    public = mat.key.public_key()
    expected = Pin.from_certificate(mat.issued.cert)
    forms: list[PublicKeyTypes | bytes | str] = [
        public,
        public.public_bytes(PEM, SPKI),
        public.public_bytes(PEM, SPKI).decode("ascii"),
        public.public_bytes(DER, SPKI),
    ]
    if mat.key_type.startswith("rsa"):
        forms.append(public.public_bytes(PEM, serialization.PublicFormat.PKCS1))
    for form in forms:
        assert Pin.from_public_key(form) == expected


PRIVATE_FORMS = [
    ("pkcs8", PEM, None),
    ("pkcs8", DER, None),
    ("traditional", PEM, None),
    ("traditional", DER, None),
    ("pkcs8", PEM, PASSWORD),
    ("pkcs8", DER, PASSWORD),
    ("traditional", PEM, PASSWORD),
]


@pytest.mark.parametrize(("fmt", "encoding", "password"), PRIVATE_FORMS)
def test_private_key_forms_give_the_same_pin(
    mat: Material, fmt: str, encoding: serialization.Encoding, password: str | None
) -> None:
    data = _private(mat.key, encoding, fmt, password)
    expected = Pin.from_certificate(mat.issued.cert)
    assert Pin.from_private_key(data, password) == expected
    if password:
        assert Pin.from_private_key(data, password.encode()) == expected
    if encoding is PEM:
        assert Pin.from_private_key(data.decode("ascii"), password) == expected


def test_private_key_object(mat: Material) -> None:
    assert Pin.from_private_key(mat.key) == Pin.from_certificate(mat.issued.cert)


@pytest.mark.parametrize(
    ("fmt", "encoding"), [("pkcs8", PEM), ("pkcs8", DER), ("traditional", PEM)]
)
def test_encrypted_private_key_without_password(fmt: str, encoding: serialization.Encoding) -> None:
    data = _private(material("ec-p256").key, encoding, fmt, PASSWORD)
    with pytest.raises(CertificateError, match="encrypted: a password is needed"):
        Pin.from_private_key(data)


@pytest.mark.parametrize(
    ("fmt", "encoding"), [("pkcs8", PEM), ("pkcs8", DER), ("traditional", PEM)]
)
def test_encrypted_private_key_with_wrong_password(
    fmt: str, encoding: serialization.Encoding
) -> None:
    data = _private(material("ec-p256").key, encoding, fmt, PASSWORD)
    with pytest.raises(CertificateError, match="could not be decrypted: wrong password"):
        Pin.from_private_key(data, "wrong horse")


def test_password_for_an_unencrypted_key() -> None:
    data = _private(material("ec-p256").key, PEM, "pkcs8", None)
    with pytest.raises(CertificateError, match="not encrypted"):
        Pin.from_private_key(data, PASSWORD)


@pytest.mark.parametrize(
    "data", [b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]
)
def test_unreadable_private_key(data: bytes) -> None:
    with pytest.raises(CertificateError, match="not a readable private key"):
        Pin.from_private_key(data)


@pytest.mark.parametrize(
    "data", [b"", b"garbage", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"]
)
def test_unreadable_public_key(data: bytes) -> None:
    with pytest.raises(CertificateError, match="not a readable public key"):
        Pin.from_public_key(data)


def test_csr_forms_give_the_same_pin(mat: Material) -> None:
    expected = Pin.from_certificate(mat.issued.cert)
    csr_pem = mat.csr.public_bytes(PEM)
    forms: list[x509.CertificateSigningRequest | bytes | str] = [
        mat.csr,
        csr_pem,
        csr_pem.decode("ascii"),
        mat.csr.public_bytes(DER),
    ]
    for form in forms:
        assert Pin.from_csr(form) == expected


@pytest.mark.parametrize(
    "data",
    [b"garbage", b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"],
)
def test_unreadable_csr(data: bytes) -> None:
    with pytest.raises(CertificateError, match="not a readable CSR"):
        Pin.from_csr(data)


def test_different_keys_give_different_pins() -> None:
    pins = {Pin.from_certificate(material(t).issued.cert) for t in KEY_TYPES}
    assert len(pins) == len(KEY_TYPES)


def test_reissued_certificate_keeps_the_pin() -> None:
    mat = material("ec-p256")
    again = CA("another root").issue("other.example", key=mat.key)
    assert again.cert.public_bytes(DER) != mat.issued.cert.public_bytes(DER)
    assert Pin.from_certificate(again.cert) == Pin.from_certificate(mat.issued.cert)


def test_matches(mat: Material) -> None:
    der = mat.issued.cert.public_bytes(DER)
    other = material("ec-p256" if mat.key_type != "ec-p256" else "rsa-2048").issued.cert
    assert Pin.from_certificate(der).matches(der)
    assert Pin.from_certificate(der, "sha1").matches(der)
    assert not Pin.from_certificate(other).matches(der)
    assert not Pin.from_certificate(other, "sha1").matches(der)
    assert spki_sha256(der) == hashlib.sha256(mat.spki).digest()


# -- certificate_der and fingerprints ----------------------------------------------------------


def test_certificate_der_refuses_bundles_and_garbage() -> None:
    cert = material("ec-p256").issued.cert
    other = material("rsa-2048").issued.cert
    with pytest.raises(CertificateError, match="expected one certificate, the PEM holds 2"):
        certificate_der(pem(cert, other))
    with pytest.raises(CertificateError, match="not a readable DER certificate"):
        certificate_der(b"garbage")
    with pytest.raises(CertificateError, match="not a readable PEM certificate"):
        certificate_der(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateError, match="expected certificate bytes, got int"):
        certificate_der(cast(Any, 42))
    with pytest.raises(CertificateError):
        Pin.from_certificate(b"garbage")


def test_fingerprint_is_of_the_whole_certificate() -> None:
    cert = material("ec-p256").issued.cert
    der = cert.public_bytes(DER)
    assert fingerprint_sha256(der) == cert.fingerprint(hashes.SHA256())
    assert fingerprint_sha256(der) != spki_sha256(der)


def test_pin_diagnosis_recognises_a_fingerprint() -> None:
    root = CA("diagnosis root")
    inter = root.intermediate("diagnosis intermediate")
    leaf = inter.issue("diag.example")
    chain = [leaf.cert, inter.cert]
    for cert in chain:
        fingerprint = Pin("sha256", cert.fingerprint(hashes.SHA256()))
        hint = pin_diagnosis(fingerprint, chain)
        assert hint is not None
        assert "fingerprint" in hint
        assert cert.subject.rfc4514_string() in hint
        assert str(Pin.from_certificate(cert)) in hint
        others = [c for c in chain if c is not cert]
        assert all(str(Pin.from_certificate(c)) not in hint for c in others)
    # DER and PEM inputs work too.
    fp_leaf = Pin("sha256", fingerprint_sha256(leaf.cert.public_bytes(DER)))
    assert pin_diagnosis(fp_leaf, [leaf.cert.public_bytes(DER), pem(inter.cert)]) is not None


def test_pin_diagnosis_is_silent_otherwise() -> None:
    leaf = material("ec-p256").issued
    chain = [leaf.cert, *leaf.chain]
    assert pin_diagnosis(leaf.pin, chain) is None
    assert pin_diagnosis(Pin("sha256", bytes(32)), chain) is None
    assert pin_diagnosis(Pin.from_certificate(leaf.cert, "sha1"), chain) is None
    # The fingerprint of a certificate that is not in the chain: nothing to say.
    stranger = material("rsa-2048").issued.cert
    assert pin_diagnosis(Pin("sha256", stranger.fingerprint(hashes.SHA256())), chain) is None


# -- the openssl oracle ----------------------------------------------------------------------


@pytest.mark.parametrize("digest", ["sha256", "sha1"])
def test_certificate_pin_agrees_with_openssl(mat: Material, digest: str) -> None:
    cert = mat.issued.cert
    algorithm = cast(Algorithm, digest)
    assert str(Pin.from_certificate(cert, algorithm)) == openssl_certificate_pin(
        pem(cert), digest=digest
    )
    assert str(Pin.from_certificate(cert, algorithm)) == openssl_certificate_pin(
        cert.public_bytes(DER), der=True, digest=digest
    )


def test_private_key_and_csr_pins_agree_with_openssl(mat: Material) -> None:
    key_pem = _private(mat.key, PEM, "pkcs8", None)
    assert str(Pin.from_private_key(key_pem)) == openssl_private_key_pin(key_pem)
    csr_pem = mat.csr.public_bytes(PEM)
    assert str(Pin.from_csr(csr_pem)) == openssl_csr_pin(csr_pem)


# -- a real certificate and its issuer -------------------------------------------------------


@pytest.fixture
def real() -> Path:
    return vectors("ct/sct-real")


@pytest.mark.vectors
@pytest.mark.parametrize("name", ["leaf_google-cert.bin", "issuer_google-cert.bin"])
def test_real_certificate_pins_agree_with_openssl(real: Path, name: str) -> None:
    der = (real / name).read_bytes()
    pin = Pin.from_certificate(der)
    assert str(pin) == openssl_certificate_pin(der, der=True)
    assert str(Pin.from_certificate(der, "sha1")) == openssl_certificate_pin(
        der, der=True, digest="sha1"
    )
    assert pin.matches(der)
    cert = x509.load_der_x509_certificate(der)
    assert pin == Pin.from_public_key(cert.public_key())
    assert Pin.parse(str(pin)) == pin


@pytest.mark.vectors
def test_real_leaf_and_issuer_differ_and_diagnose(real: Path) -> None:
    leaf = (real / "leaf_google-cert.bin").read_bytes()
    issuer = (real / "issuer_google-cert.bin").read_bytes()
    assert Pin.from_certificate(leaf) != Pin.from_certificate(issuer)
    hint = pin_diagnosis(Pin("sha256", hashlib.sha256(issuer).digest()), [leaf, issuer])
    assert hint is not None
    assert str(Pin.from_certificate(issuer)) in hint
    assert "WR2" in hint


@pytest.mark.vectors
def test_real_log_keys_pin_to_their_documented_log_ids(real: Path) -> None:
    """A CT log ID is by definition SHA-256 of the log's SPKI: the manifest's values (taken
    from the Chrome log list) are an independent check of from_public_key on DER input."""
    manifest = json.loads((real / "manifest.json").read_text())
    for log in manifest["logs"]:
        spki = (real / log["key_file"]).read_bytes()
        pin = Pin.from_public_key(spki)
        assert pin.base64 == log["log_id_b64"]
        public_pem = serialization.load_der_public_key(spki).public_bytes(PEM, SPKI)
        assert str(pin) == _openssl_pin_of_pubkey_pem(public_pem)


@pytest.mark.parametrize("head", ["sm3/", "md5/", "sha1/", "sha256/"])
def test_a_bare_pin_that_starts_like_an_algorithm_is_still_a_bare_pin(head: str) -> None:
    text = head + "A" * (43 - len(head)) + "="
    digest = base64.b64decode(text)
    assert len(digest) == 32
    # Found by hypothesis where hashlib knows "sm3": "/" is a base64 character.
    assert Pin.parse(text) == Pin("sha256", digest)
