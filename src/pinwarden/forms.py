"""The hashes people call "the pin", and which one a given value is.

Only the SHA-256 of the SubjectPublicKeyInfo is a pin for OkHttp, Android, TrustKit,
iOS' NSPinnedDomains, HPKP and pinwarden. Other values are easily mistaken for it:

* the **raw-key hash**: SHA-256 of what ``SecKeyCopyExternalRepresentation`` returns on
  Apple platforms (PKCS#1 ``RSAPublicKey`` for RSA, the X9.63 point ``04‖X‖Y`` for EC):
  the key without its algorithm header, so never equal to the SPKI hash;
* the **certificate fingerprint**: SHA-256 of the whole certificate, which changes at
  every renewal and is not what any pinning library compares;
* the **SPKI SHA-1**: OkHttp 2/3's legacy ``sha1/`` pins.

:func:`forms_of_spki` computes every form; :func:`identify` says which form of which
certificate or key a value is. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pinwarden._der import spki_of_certificate
from pinwarden.errors import PinFormatError
from pinwarden.pins import Pin

__all__ = [
    "FORM_DESCRIPTIONS",
    "Candidate",
    "FormName",
    "Identification",
    "KeyForms",
    "decode_value",
    "forms_of_certificate",
    "forms_of_spki",
    "identify",
    "raw_key",
]

FormName = Literal["spki-sha256", "raw-key-sha256", "cert-sha256", "spki-sha1", "cert-sha1"]

FORM_DESCRIPTIONS: dict[FormName, str] = {
    "spki-sha256": "SPKI SHA-256: the pin (OkHttp, Android, TrustKit, iOS NSPinnedDomains, HPKP)",
    "raw-key-sha256": (
        "raw-key SHA-256: SHA-256 of SecKeyCopyExternalRepresentation (no SPKI header); not a pin"
    ),
    "cert-sha256": "certificate SHA-256 fingerprint: changes at every renewal; not a pin",
    "spki-sha1": "SPKI SHA-1: OkHttp 2/3 legacy sha1/ pin",
    "cert-sha1": "certificate SHA-1 fingerprint: not a pin",
}

_PREFIXED = re.compile(r"^(sha256|sha1)/(.*)$", re.IGNORECASE | re.DOTALL)
_HPKP = re.compile(r'^pin-(sha256|sha1)\s*=\s*"?([^"]*)"?$', re.IGNORECASE)
# "SHA256 Fingerprint=AB:CD:..." as `openssl x509 -fingerprint` prints it.
_OPENSSL_FP = re.compile(r"^(sha256|sha1) fingerprint\s*=\s*(.*)$", re.IGNORECASE)
_HEX = re.compile(r"[0-9a-fA-F]+")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def raw_key(spki_der: bytes) -> bytes | None:
    """What ``SecKeyCopyExternalRepresentation`` returns for this key on Apple platforms:
    PKCS#1 ``RSAPublicKey`` DER for RSA, the uncompressed X9.63 point for EC. None for
    other key types (Security.framework has no such form for them) or keys
    ``cryptography`` cannot load."""
    try:
        key = serialization.load_der_public_key(spki_der)
    except Exception:  # ValueError, UnsupportedAlgorithm: no raw form to offer
        return None
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    return None


@dataclass(frozen=True)
class KeyForms:
    """Every hash form of one key (and of its certificate, when there is one)."""

    spki_sha256: bytes
    spki_sha1: bytes
    raw_key_sha256: bytes | None
    cert_sha256: bytes | None = None
    cert_sha1: bytes | None = None

    @property
    def pin(self) -> Pin:
        """The SPKI pin: the form to configure."""
        return Pin("sha256", self.spki_sha256)

    def items(self) -> list[tuple[FormName, bytes]]:
        """(form, digest) for every form this key has, the pin first."""
        found: list[tuple[FormName, bytes | None]] = [
            ("spki-sha256", self.spki_sha256),
            ("raw-key-sha256", self.raw_key_sha256),
            ("cert-sha256", self.cert_sha256),
            ("spki-sha1", self.spki_sha1),
            ("cert-sha1", self.cert_sha1),
        ]
        return [(name, digest) for name, digest in found if digest is not None]


def forms_of_spki(spki_der: bytes, cert_der: bytes | None = None) -> KeyForms:
    """Every form of the key in ``spki_der`` (and the fingerprints of ``cert_der``)."""
    raw = raw_key(spki_der)
    return KeyForms(
        spki_sha256=hashlib.sha256(spki_der).digest(),
        spki_sha1=hashlib.sha1(spki_der).digest(),  # noqa: S324 - OkHttp's legacy pin form
        raw_key_sha256=hashlib.sha256(raw).digest() if raw is not None else None,
        cert_sha256=hashlib.sha256(cert_der).digest() if cert_der is not None else None,
        cert_sha1=(
            hashlib.sha1(cert_der).digest()  # noqa: S324 - a fingerprint users paste
            if cert_der is not None
            else None
        ),
    )


def forms_of_certificate(cert_der: bytes) -> KeyForms:
    """Every form of a DER certificate's key, and the certificate's fingerprints."""
    return forms_of_spki(spki_of_certificate(cert_der), cert_der)


@dataclass(frozen=True)
class Candidate:
    """Something a value may be a hash of: a certificate of a chain, or a key or CSR
    from a file. ``label`` says which, for people (``[1] CN=R11,O=Let's Encrypt``)."""

    label: str
    forms: KeyForms


@dataclass(frozen=True)
class Identification:
    """``value`` is the ``form`` hash of ``candidate``; ``pin`` is what to use instead."""

    form: FormName
    encoding: Literal["base64", "hex"]
    candidate: Candidate

    @property
    def pin(self) -> Pin:
        return self.candidate.forms.pin

    @property
    def is_pin(self) -> bool:
        return self.form == "spki-sha256"


def decode_value(text: str) -> list[tuple[bytes, Literal["base64", "hex"]]]:
    """Every reading of a hash value as a 20- or 32-byte digest: ``sha256/…``,
    ``sha1/…``, ``pin-sha256="…"``, bare base64 (standard or URL-safe), hex with or
    without ``:`` separators, or ``SHA256 Fingerprint=…`` as openssl prints it.

    Raises :class:`~pinwarden.errors.PinFormatError` when no reading gives a digest."""
    if not isinstance(text, str):
        raise PinFormatError(f"a hash value must be a string, got {type(text).__name__}")
    value = text.strip()
    size: int | None = None  # what a "sha256/" or "SHA1 Fingerprint=" prefix promises
    for pattern in (_PREFIXED, _HPKP, _OPENSSL_FP):
        match = pattern.match(value)
        if match:
            size = 32 if match.group(1).lower() == "sha256" else 20
            value = match.group(2).strip()
            break
    shown = value if len(value) <= 60 else value[:59] + "…"
    readings: list[tuple[bytes, Literal["base64", "hex"]]] = []
    compact = value.replace(":", "").replace(" ", "")
    if _HEX.fullmatch(compact) and len(compact) in (40, 64):
        readings.append((bytes.fromhex(compact), "hex"))
    standard = value.replace("-", "+").replace("_", "/")
    if _B64.fullmatch(standard):
        try:
            digest = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) in (20, 32):
            readings.append((digest, "base64"))
    if size is not None:
        promised = [r for r in readings if len(r[0]) == size]
        if readings and not promised:
            name = "sha256" if size == 32 else "sha1"
            raise PinFormatError(
                f"{text.strip()[:60]!r} holds {len(readings[0][0])} bytes; "
                f"a {name} value has {size}"
            )
        readings = promised
    if not readings:
        raise PinFormatError(
            f"{shown!r} is not a SHA-256 or SHA-1 value in base64 or hex "
            "(a SHA-256 value is 44 base64 characters or 64 hex digits)"
        )
    return readings


def identify(value: str, candidates: Iterable[Candidate]) -> list[Identification]:
    """Which form of which candidate ``value`` is (empty: it matches none of them)."""
    readings = decode_value(value)
    found: list[Identification] = []
    pool: Sequence[Candidate] = list(candidates)
    for candidate in pool:
        for form, digest in candidate.forms.items():
            for reading, encoding in readings:
                if len(reading) == len(digest) and hmac.compare_digest(reading, digest):
                    found.append(Identification(form, encoding, candidate))
    return found
