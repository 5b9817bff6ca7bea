"""Every hash form of a key or certificate, cross-checked against the openssl CLI; reading
hash values in every notation people paste; identifying which form of which certificate a
value is; and the raw-key and fingerprint traps explained on a mismatch, down to a pinned
connection to a real local server."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from hypothesis import example, given, settings
from hypothesis import strategies as st

import pinwarden
from conftest import World
from pinwarden.errors import PinFormatError
from pinwarden.forms import (
    FORM_DESCRIPTIONS,
    Candidate,
    FormName,
    KeyForms,
    decode_value,
    forms_of_certificate,
    forms_of_spki,
    identify,
    raw_key,
)
from pinwarden.pins import Pin, pin_diagnosis
from pinwarden.testing import CA, Issued, KeyType, PrivateKey, TLSServer, generate_key
from pinwarden.verify import Outcome, verify
from tls_support import connect

SETTINGS = settings(max_examples=300, deadline=None)
KEY_TYPES: tuple[KeyType, ...] = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
DER = serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
ALL_FORMS: tuple[FormName, ...] = (
    "spki-sha256",
    "raw-key-sha256",
    "cert-sha256",
    "spki-sha1",
    "cert-sha1",
)
NOW = dt.datetime.now(dt.timezone.utc)


# -- material: one key per type for the whole module (RSA 3072/4096 are slow to make) ------


@cache
def key_of(key_type: KeyType) -> PrivateKey:
    return generate_key(key_type)


@dataclass(frozen=True)
class Chain:
    """A leaf whose key is of ``key_type``, issued by an intermediate whose key is of the
    next type in KEY_TYPES: every type is exercised both as a leaf and as a CA."""

    key_type: KeyType
    root: CA
    intermediate: CA
    leaf: Issued

    @property
    def ders(self) -> list[bytes]:
        """The verified chain a client would see, leaf first."""
        return [c.public_bytes(DER) for c in (self.leaf.cert, self.intermediate.cert)] + [
            self.root.cert.public_bytes(DER)
        ]


@cache
def chain_of(key_type: KeyType) -> Chain:
    following = KEY_TYPES[(KEY_TYPES.index(key_type) + 1) % len(KEY_TYPES)]
    root = CA(f"forms root {key_type}")
    intermediate = root.intermediate(f"forms intermediate {following}", key=key_of(following))
    leaf = intermediate.issue("localhost", "127.0.0.1", key=key_of(key_type))
    return Chain(key_type, root, intermediate, leaf)


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(DER, SPKI)


def _ed25519_certificate() -> x509.Certificate:
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ed25519.test")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .sign(key, None)
    )


# -- the openssl oracle ------------------------------------------------------------------


def _openssl(args: list[str], data: bytes) -> bytes:
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("the openssl CLI (independent oracle) is not installed")
    done = subprocess.run([path, *args], input=data, capture_output=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _openssl_digest(algorithm: str, data: bytes) -> bytes:
    return _openssl(["dgst", f"-{algorithm}", "-binary"], data)


def _openssl_fingerprint_line(cert: x509.Certificate, algorithm: str) -> str:
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return _openssl(["x509", "-noout", "-fingerprint", f"-{algorithm}"], pem).decode().strip()


def _openssl_ec_point(public_pem: bytes) -> bytes:
    """The uncompressed point as ``openssl ec -text`` prints it (``pub:`` hex lines)."""
    text = _openssl(
        ["ec", "-pubin", "-text", "-noout", "-conv_form", "uncompressed"], public_pem
    ).decode()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "pub:") + 1
    hex_lines: list[str] = []
    for line in lines[start:]:
        if not re.fullmatch(r"\s+[0-9a-f:]+", line):
            break
        hex_lines.append(line.strip())
    return bytes.fromhex("".join(hex_lines).replace(":", ""))


# -- forms of every key type, against openssl ---------------------------------------------


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_every_form_of_a_certificate_equals_openssl(key_type: KeyType) -> None:
    cert = chain_of(key_type).leaf.cert
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    forms = forms_of_certificate(cert.public_bytes(DER))

    public_pem = _openssl(["x509", "-noout", "-pubkey"], cert_pem)
    spki_der = _openssl(["pkey", "-pubin", "-outform", "DER"], public_pem)
    assert forms.spki_sha256 == _openssl_digest("sha256", spki_der)
    assert forms.spki_sha1 == _openssl_digest("sha1", spki_der)
    assert forms.pin == Pin("sha256", _openssl_digest("sha256", spki_der))

    fingerprint_256 = _openssl_fingerprint_line(cert, "sha256")
    fingerprint_1 = _openssl_fingerprint_line(cert, "sha1")
    assert forms.cert_sha256 == bytes.fromhex(fingerprint_256.split("=", 1)[1].replace(":", ""))
    assert forms.cert_sha1 == bytes.fromhex(fingerprint_1.split("=", 1)[1].replace(":", ""))

    if key_type.startswith("rsa"):
        pkcs1 = _openssl(["rsa", "-pubin", "-RSAPublicKey_out", "-outform", "DER"], public_pem)
        assert raw_key(spki_der) == pkcs1
        assert forms.raw_key_sha256 == _openssl_digest("sha256", pkcs1)
    else:
        point = _openssl_ec_point(public_pem)
        size = {"ec-p256": 65, "ec-p384": 97}[key_type]
        assert len(point) == size
        assert point[0] == 0x04  # uncompressed: 04 ‖ X ‖ Y
        # The point is the content of the SPKI's BIT STRING, which ends the DER.
        assert spki_der[-size:] == point
        curve = ec.SECP256R1() if key_type == "ec-p256" else ec.SECP384R1()
        again = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
        assert again.public_bytes(DER, SPKI) == spki_der
        assert raw_key(spki_der) == point
        assert forms.raw_key_sha256 == _openssl_digest("sha256", point)

    # Every form differs from every other: a value names one form only.
    digests = [d for _, d in forms.items()]
    assert len(set(digests)) == len(digests) == 5


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_forms_of_a_bare_key_have_no_certificate_forms(key_type: KeyType) -> None:
    spki = key_of(key_type).public_key().public_bytes(DER, SPKI)
    forms = forms_of_spki(spki)
    assert forms.cert_sha256 is None and forms.cert_sha1 is None
    assert [name for name, _ in forms.items()] == ["spki-sha256", "raw-key-sha256", "spki-sha1"]
    assert forms.spki_sha256 == hashlib.sha256(spki).digest()
    assert forms.pin == Pin.from_private_key(key_of(key_type))
    # The same key in a certificate: the key forms are the same.
    in_cert = forms_of_certificate(chain_of(key_type).leaf.cert.public_bytes(DER))
    assert in_cert.raw_key_sha256 == forms.raw_key_sha256
    assert in_cert.spki_sha1 == forms.spki_sha1


def test_items_put_the_pin_first_and_follow_the_documented_order() -> None:
    forms = forms_of_certificate(chain_of("ec-p256").leaf.cert.public_bytes(DER))
    assert [name for name, _ in forms.items()] == list(ALL_FORMS)
    assert set(FORM_DESCRIPTIONS) == set(ALL_FORMS)
    assert "the pin" in FORM_DESCRIPTIONS["spki-sha256"]
    for name in ALL_FORMS[1:]:
        if name != "spki-sha1":
            assert "not a pin" in FORM_DESCRIPTIONS[name]


def test_ed25519_has_no_raw_form() -> None:
    cert = _ed25519_certificate()
    spki = _spki(cert)
    assert raw_key(spki) is None
    forms = forms_of_certificate(cert.public_bytes(DER))
    assert forms.raw_key_sha256 is None
    assert [name for name, _ in forms.items()] == [
        "spki-sha256",
        "cert-sha256",
        "spki-sha1",
        "cert-sha1",
    ]
    assert forms.pin == Pin.from_certificate(cert)


@given(st.binary(max_size=300))
@example(b"")
@example(b"\x30\x03\x02\x01\x00")
@SETTINGS
def test_raw_key_of_arbitrary_bytes_is_none_or_bytes(data: bytes) -> None:
    # raw_key reads SPKI bytes from anywhere (a server, a file): it must never raise.
    result = raw_key(data)
    assert result is None or isinstance(result, bytes)


def test_raw_key_of_a_truncated_spki_is_none() -> None:
    spki = key_of("rsa-2048").public_key().public_bytes(DER, SPKI)
    assert raw_key(spki[:-1]) is None
    assert raw_key(spki + b"\x00") is None


# -- decode_value: every notation --------------------------------------------------------


DIGEST_32 = hashlib.sha256(b"pinwarden").digest()
DIGEST_20 = hashlib.sha1(b"pinwarden").digest()
B64 = base64.b64encode(DIGEST_32).decode()
HEX = DIGEST_32.hex()


def _colons(digest: bytes, upper: bool = True) -> str:
    text = ":".join(f"{b:02x}" for b in digest)
    return text.upper() if upper else text


@pytest.mark.parametrize(
    ("text", "digest", "encoding"),
    [
        (f"sha256/{B64}", DIGEST_32, "base64"),
        (f"SHA256/{B64}", DIGEST_32, "base64"),
        (f'pin-sha256="{B64}"', DIGEST_32, "base64"),
        (f"pin-sha256={B64}", DIGEST_32, "base64"),
        (B64, DIGEST_32, "base64"),
        (f"  {B64}\n", DIGEST_32, "base64"),
        (base64.urlsafe_b64encode(DIGEST_32).decode(), DIGEST_32, "base64"),
        (base64.urlsafe_b64encode(DIGEST_32).decode().rstrip("="), DIGEST_32, "base64"),
        (B64.rstrip("="), DIGEST_32, "base64"),
        (HEX, DIGEST_32, "hex"),
        (HEX.upper(), DIGEST_32, "hex"),
        (_colons(DIGEST_32), DIGEST_32, "hex"),
        (_colons(DIGEST_32, upper=False), DIGEST_32, "hex"),
        (" ".join(f"{b:02x}" for b in DIGEST_32), DIGEST_32, "hex"),
        (f"SHA256 Fingerprint={_colons(DIGEST_32)}", DIGEST_32, "hex"),  # OpenSSL 1.1
        (f"sha256 Fingerprint={_colons(DIGEST_32)}", DIGEST_32, "hex"),  # OpenSSL 3
        (f"sha1/{base64.b64encode(DIGEST_20).decode()}", DIGEST_20, "base64"),
        (f'pin-sha1="{base64.b64encode(DIGEST_20).decode()}"', DIGEST_20, "base64"),
        (base64.b64encode(DIGEST_20).decode(), DIGEST_20, "base64"),
        (DIGEST_20.hex(), DIGEST_20, "hex"),
        (f"SHA1 Fingerprint={_colons(DIGEST_20)}", DIGEST_20, "hex"),
    ],
)
def test_decode_value_reads_every_notation(text: str, digest: bytes, encoding: str) -> None:
    assert decode_value(text) == [(digest, encoding)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "hello",
        "sha256/",
        'pin-sha256=""',
        HEX[:-1],  # 63 hex digits
        HEX + "00",
        "AA:BB:CC",
        base64.b64encode(DIGEST_32[:31]).decode(),
        base64.b64encode(DIGEST_32 + b"\x00").decode(),
        f"{B64[:-2]}!=",
        f"md5 Fingerprint={_colons(hashlib.md5(b'x').digest())}",
        "sha256/" + "é" * 44,
        "\x00" * 44,
    ],
)
def test_decode_value_refuses_garbage_with_a_pin_format_error(text: str) -> None:
    with pytest.raises(PinFormatError) as info:
        decode_value(text)
    message = str(info.value)
    assert "SHA-256" in message
    assert "base64" in message and "hex" in message


def test_decode_value_names_the_value_and_shortens_a_long_one() -> None:
    with pytest.raises(PinFormatError, match="not-a-hash"):
        decode_value("not-a-hash")
    with pytest.raises(PinFormatError) as info:
        decode_value("x" * 500)
    assert len(str(info.value)) < 250


def test_decode_value_refuses_a_non_string() -> None:
    with pytest.raises(PinFormatError, match="string"):
        decode_value(DIGEST_32)  # type: ignore[arg-type]


@given(st.text(max_size=120))
@example("sha256/" + B64)
@example(":" * 64)
@example("0" * 40 + ":")
@example("pin-sha1=" + "A" * 28)
@SETTINGS
def test_decode_value_of_any_text_is_a_digest_or_a_pin_format_error(text: str) -> None:
    try:
        readings = decode_value(text)
    except PinFormatError:
        return
    assert readings
    for digest, encoding in readings:
        assert isinstance(digest, bytes) and len(digest) in (20, 32)
        assert encoding in ("base64", "hex")


@st.composite
def written_digests(draw: st.DrawFn) -> tuple[bytes, str, str]:
    """A 20- or 32-byte digest, written in one of the notations people paste."""
    digest = draw(st.binary(min_size=20, max_size=20) | st.binary(min_size=32, max_size=32))
    name = "sha256" if len(digest) == 32 else "sha1"
    b64 = base64.b64encode(digest).decode()
    notations = {
        "base64": [
            b64,
            f"{name}/{b64}",
            f'pin-{name}="{b64}"',
            base64.urlsafe_b64encode(digest).decode(),
        ],
        "hex": [
            digest.hex(),
            digest.hex().upper(),
            _colons(digest),
            f"{name.upper()} Fingerprint={_colons(digest)}",
        ],
    }
    encoding = draw(st.sampled_from(sorted(notations)))
    return digest, encoding, draw(st.sampled_from(notations[encoding]))


@given(written_digests())
@SETTINGS
def test_every_notation_of_any_digest_reads_back(written: tuple[bytes, str, str]) -> None:
    digest, encoding, text = written
    assert (digest, encoding) in decode_value(text)


# -- identify ----------------------------------------------------------------------------


def _candidates(chain: Chain) -> list[Candidate]:
    labelled = [("leaf", chain.leaf.cert), ("intermediate", chain.intermediate.cert)]
    return [Candidate(label, forms_of_certificate(c.public_bytes(DER))) for label, c in labelled]


def _written(form: str, digest: bytes, style: int) -> str:
    """The digest of ``form`` the way someone would paste it (several styles)."""
    b64 = base64.b64encode(digest).decode()
    name = "sha1" if form.endswith("sha1") else "sha256"
    return [f"{name}/{b64}", b64, digest.hex(), f"{name} Fingerprint={_colons(digest)}"][style]


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_identify_names_every_form_of_every_certificate(key_type: KeyType) -> None:
    chain = chain_of(key_type)
    candidates = _candidates(chain)
    for candidate in candidates:
        for style, (form, digest) in enumerate(candidate.forms.items()):
            text = _written(form, digest, style % 4)
            found = identify(text, candidates)
            assert len(found) == 1, (form, text)
            match = found[0]
            assert match.form == form
            assert match.candidate is candidate
            assert match.encoding == ("hex" if style % 4 >= 2 else "base64")
            assert match.is_pin is (form == "spki-sha256")
            assert match.pin == candidate.forms.pin


def test_identify_finds_nothing_for_an_unrelated_value() -> None:
    candidates = _candidates(chain_of("ec-p256"))
    assert identify(str(chain_of("rsa-2048").leaf.pin), candidates) == []
    assert identify(hashlib.sha256(b"unrelated").hexdigest(), candidates) == []
    assert identify(B64, []) == []


def test_identify_reports_every_candidate_a_value_belongs_to() -> None:
    # The same key as a certificate and as a bare key: its pin identifies both.
    chain = chain_of("rsa-2048")
    spki = key_of("rsa-2048").public_key().public_bytes(DER, SPKI)
    candidates = [*_candidates(chain), Candidate("the key", forms_of_spki(spki))]
    found = identify(str(chain.leaf.pin), candidates)
    assert [m.candidate.label for m in found] == ["leaf", "the key"]
    assert all(m.form == "spki-sha256" and m.is_pin for m in found)


def test_identify_raises_on_garbage() -> None:
    with pytest.raises(PinFormatError):
        identify("nonsense", _candidates(chain_of("ec-p256")))


def test_a_prefix_that_promises_another_length_is_refused() -> None:
    chain = chain_of("ec-p256")
    leaf = _candidates(chain)[0].forms
    # A SHA-1 value written as sha256/… is a mistake to point out, not to reinterpret.
    text = f"sha256/{base64.b64encode(leaf.spki_sha1).decode()}"
    with pytest.raises(PinFormatError, match=r"20 bytes.*sha256 value has 32"):
        decode_value(text)
    sha1 = f"sha1/{base64.b64encode(leaf.spki_sha1).decode()}"
    [match] = identify(sha1, _candidates(chain))
    assert match.form == "spki-sha1"


# -- pin_diagnosis and the mismatch message ---------------------------------------------


def _trap(forms: KeyForms, trap: str) -> Pin:
    digest = forms.raw_key_sha256 if trap == "raw-key" else forms.cert_sha256
    assert digest is not None
    return Pin("sha256", digest)


TRAP_WORDS = {"raw-key": "raw public key", "fingerprint": "fingerprint"}


@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.parametrize("trap", ["raw-key", "fingerprint"])
@pytest.mark.parametrize("position", [0, 1])
def test_pin_diagnosis_names_the_trap_and_the_right_pin(
    key_type: KeyType, trap: str, position: int
) -> None:
    chain = chain_of(key_type)
    cert = [chain.leaf.cert, chain.intermediate.cert][position]
    other = [chain.leaf.cert, chain.intermediate.cert][1 - position]
    wrong = _trap(forms_of_certificate(cert.public_bytes(DER)), trap)
    hint = pin_diagnosis(wrong, chain.ders)
    assert hint is not None
    assert TRAP_WORDS[trap] in hint
    if trap == "raw-key":
        assert "SecKeyCopyExternalRepresentation" in hint
    assert str(wrong) in hint
    assert cert.subject.rfc4514_string() in hint
    assert str(Pin.from_certificate(cert)) in hint
    assert str(Pin.from_certificate(other)) not in hint


def test_pin_diagnosis_stays_silent_when_there_is_nothing_to_explain() -> None:
    chain = chain_of("rsa-3072")
    assert pin_diagnosis(chain.intermediate.pin, chain.ders) is None
    assert pin_diagnosis(Pin("sha256", DIGEST_32), chain.ders) is None
    # sha1 pins are never raw-key hashes or SHA-256 fingerprints.
    assert pin_diagnosis(Pin.from_certificate(chain.leaf.cert, "sha1"), chain.ders) is None
    # A raw-key hash of a key that is not in the chain.
    elsewhere = forms_of_certificate(chain_of("ec-p384").leaf.cert.public_bytes(DER))
    assert pin_diagnosis(_trap(elsewhere, "raw-key"), chain.ders) is None
    # Ed25519 has no raw form; its certificate is described without error.
    assert pin_diagnosis(Pin("sha256", DIGEST_32), [_ed25519_certificate()]) is None


def _policy(*pins: Pin) -> pinwarden.Policy:
    return pinwarden.Policy.from_dict(
        {"pin": [{"hosts": ["localhost"], "pins": [str(p) for p in pins]}]}
    )


@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.parametrize("trap", ["raw-key", "fingerprint"])
def test_a_mismatch_message_explains_the_trap(key_type: KeyType, trap: str) -> None:
    chain = chain_of(key_type)
    backup = Pin.from_private_key(generate_key())
    wrong = _trap(forms_of_certificate(chain.intermediate.cert.public_bytes(DER)), trap)
    verdict = verify(_policy(wrong, backup), "localhost", chain.ders, now=NOW)
    assert verdict.outcome is Outcome.MISMATCH
    lines = [line.strip() for line in verdict.message().splitlines()]
    notes = [line for line in lines if line.startswith("note:")]
    assert len(notes) == 1  # about the trap pin; the backup pin has no note
    assert TRAP_WORDS[trap] in notes[0]
    assert f"its SPKI pin is {chain.intermediate.pin}" in notes[0]
    assert lines[lines.index(notes[0]) - 1] == str(wrong)


def _version_4(cert_der: bytes) -> bytes:
    """The same certificate claiming X.509 version 4: OpenSSL still reads it, cryptography
    refuses it (see test_tls.py)."""
    at = cert_der.find(b"\xa0\x03\x02\x01\x02")
    assert at > 0
    return cert_der[:at] + b"\xa0\x03\x02\x01\x03" + cert_der[at + 5 :]


def test_a_mismatch_message_never_fails_on_a_certificate_cryptography_cannot_read() -> None:
    # Verdict.message() already falls back for the subject of such a certificate
    # (verify._subject); looking for traps among the chain must not make it raise.
    chain = chain_of("ec-p256")
    odd = _version_4(chain.ders[0])
    pins = (Pin.from_private_key(generate_key()), Pin.from_private_key(generate_key()))
    verdict = verify(_policy(*pins), "localhost", [odd, *chain.ders[1:]], now=NOW)
    assert verdict.outcome is Outcome.MISMATCH
    message = verdict.message()
    assert "<certificate cryptography cannot read>" in message
    assert all(str(p) in message for p in pins)


@pytest.mark.parametrize(("trap", "position"), [("raw-key", 1), ("fingerprint", 0)])
def test_a_pinned_connection_refused_for_a_trap_pin_says_why(
    world: World, trap: str, position: int
) -> None:
    cert = [world.leaf.cert, world.intermediate.cert][position]
    wrong = _trap(forms_of_certificate(cert.public_bytes(DER)), trap)
    context = world.context(world.policy(wrong, world.backup_pin))
    with TLSServer(world.leaf) as server:
        with pytest.raises(pinwarden.PinValidationError) as info:
            connect(context, server)
        assert server.requests == []
    message = str(info.value)
    assert f"note: {wrong} is" in message
    assert TRAP_WORDS[trap] in message
    assert f"its SPKI pin is {Pin.from_certificate(cert)}" in message
    assert cert.subject.rfc4514_string() in message
    assert info.value.verdict is not None
    assert info.value.verdict.outcome is Outcome.MISMATCH


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_a_raw_key_pin_of_an_intermediate_of_every_type_end_to_end(key_type: KeyType) -> None:
    # The world fixture is EC P-256 only; here the intermediate has the key type after
    # key_type (chain_of), so each type is the pinned intermediate once.
    chain = chain_of(key_type)
    wrong = _trap(forms_of_certificate(chain.intermediate.cert.public_bytes(DER)), "raw-key")
    policy = _policy(wrong, Pin.from_private_key(generate_key()))
    context = pinwarden.create_context(
        policy, cadata=chain.root.cert_pem.decode(), send_reports=False
    )
    with TLSServer(chain.leaf) as server, pytest.raises(pinwarden.PinValidationError) as info:
        connect(context, server)
    assert "raw public key" in str(info.value)
    assert f"its SPKI pin is {chain.intermediate.pin}" in str(info.value)
