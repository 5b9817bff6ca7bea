"""What a pin is, how to read one, and how to compute one.

A pin is the hash of a SubjectPublicKeyInfo (SPKI): the public key together with its
algorithm, DER-encoded, as RFC 7469, OkHttp, Android, TrustKit and iOS' NSPinnedDomains
define it. It survives certificate renewal as long as the key is kept.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)

from pinwarden._der import spki_of_certificate
from pinwarden.errors import CertificateError, PinFormatError

__all__ = [
    "Algorithm",
    "CertificateLike",
    "Pin",
    "certificate_der",
    "fingerprint_sha256",
    "pin_diagnosis",
    "spki_of_csr",
    "spki_of_private_key",
    "spki_of_public_key",
    "spki_sha256",
]

Algorithm = Literal["sha256", "sha1"]
CertificateLike = bytes | str | x509.Certificate
"""A certificate as DER bytes, PEM bytes or text, or a ``cryptography`` object."""

_DIGEST_SIZE = {"sha256": 32, "sha1": 20}
_HPKP = re.compile(r'^pin-(sha256|sha1)\s*=\s*"?([^"]*)"?$', re.IGNORECASE)
_HEX = re.compile(r"[0-9a-fA-F]+")
# Hash names a user might put before the slash ("sha512/…"): named as unknown
# algorithms rather than misread as base64.
_KNOWN_HASHES = {n.lower().replace("-", "").replace("_", "") for n in hashlib.algorithms_available}
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Pin:
    """An SPKI pin: ``algorithm`` (``"sha256"``, or ``"sha1"`` for OkHttp legacy pins)
    and the raw ``digest``. ``str(pin)`` is ``sha256/<base64>``."""

    algorithm: Algorithm
    digest: bytes

    def __post_init__(self) -> None:
        size = _DIGEST_SIZE.get(self.algorithm)
        if size is None:
            raise PinFormatError(f"unknown pin algorithm {self.algorithm!r}")
        if len(self.digest) != size:
            raise PinFormatError(f"a {self.algorithm} pin has {size} bytes, got {len(self.digest)}")

    # -- reading -------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Pin:
        """Read a pin written as ``sha256/<base64>``, ``pin-sha256="<base64>"`` (HPKP),
        bare base64, or hex (with or without ``:`` separators). ``sha1/<base64>`` is
        accepted for OkHttp's legacy pins and marked :attr:`legacy`.

        Raises :class:`~pinwarden.errors.PinFormatError` saying what is wrong.
        """
        if not isinstance(text, str):
            raise PinFormatError(f"a pin must be a string, got {type(text).__name__}")
        value = text.strip()
        shown = _shorten(value)
        if not value:
            raise PinFormatError("empty pin")
        algorithm: Algorithm
        hpkp = _HPKP.match(value)
        if hpkp:
            algorithm = "sha256" if hpkp.group(1).lower() == "sha256" else "sha1"
            return cls(algorithm, _b64(hpkp.group(2).strip(), algorithm, shown))
        prefix, slash, rest = value.partition("/")
        # "/" is a base64 character: a bare pin may begin with "sm3/" or even "sha1/".
        bare = _bare_sha256(value) if slash else None
        if slash and prefix.lower() in _DIGEST_SIZE:
            algorithm = "sha256" if prefix.lower() == "sha256" else "sha1"
            try:
                return cls(algorithm, _b64(rest.strip(), algorithm, shown))
            except PinFormatError:
                if bare is None:
                    raise
                return cls("sha256", bare)
        if bare is not None:
            return cls("sha256", bare)
        if slash and (prefix.lower().replace("-", "") in _KNOWN_HASHES or not _looks_b64(value)):
            raise PinFormatError(
                f"pin {shown!r}: unknown algorithm {prefix!r}; use sha256/<base64>"
            )
        compact = value.replace(":", "") if ":" in value else value
        if _HEX.fullmatch(compact):
            if len(compact) == 64:
                return cls("sha256", bytes.fromhex(compact))
            if len(compact) == 40:
                raise PinFormatError(
                    f"pin {shown!r} is a 20-byte hex value (SHA-1); only OkHttp's legacy "
                    "form sha1/<base64> is accepted for SHA-1 pins"
                )
            if ":" in value or len(compact) != 44:
                raise PinFormatError(
                    f"pin {shown!r}: {len(compact)} hex digits; a SHA-256 pin in hex has 64"
                )
        if _looks_b64(value):
            digest = _b64(value, "sha256", shown)
            return cls("sha256", digest)
        raise PinFormatError(
            f'pin {shown!r} is not sha256/<base64>, pin-sha256="<base64>", '
            "44-character base64 or 64-character hex"
        )

    # -- computing -----------------------------------------------------------------------

    @classmethod
    def from_spki(cls, spki_der: bytes, algorithm: Algorithm = "sha256") -> Pin:
        """The pin of DER-encoded SubjectPublicKeyInfo bytes."""
        return cls(algorithm, hashlib.new(algorithm, spki_der).digest())

    @classmethod
    def from_certificate(cls, cert: CertificateLike, algorithm: Algorithm = "sha256") -> Pin:
        """The pin of a certificate's public key (PEM, DER or ``cryptography`` object)."""
        der = certificate_der(cert)
        if algorithm == "sha256":
            return cls("sha256", spki_sha256(der))
        return cls.from_spki(spki_of_certificate(der), algorithm)

    @classmethod
    def from_public_key(
        cls, key: PublicKeyTypes | bytes | str, algorithm: Algorithm = "sha256"
    ) -> Pin:
        """The pin of a public key: a ``cryptography`` key, or PEM/DER SubjectPublicKeyInfo."""
        return cls.from_spki(spki_of_public_key(key), algorithm)

    @classmethod
    def from_private_key(
        cls,
        key: PrivateKeyTypes | bytes | str,
        password: bytes | str | None = None,
        algorithm: Algorithm = "sha256",
    ) -> Pin:
        """The pin of the public half of a private key (PEM or DER, PKCS#8 or traditional,
        encrypted when ``password`` is given)."""
        return cls.from_spki(spki_of_private_key(key, password), algorithm)

    @classmethod
    def from_csr(
        cls, csr: x509.CertificateSigningRequest | bytes | str, algorithm: Algorithm = "sha256"
    ) -> Pin:
        """The pin of the key in a certificate signing request (PEM or DER)."""
        return cls.from_spki(spki_of_csr(csr), algorithm)

    # -- using ---------------------------------------------------------------------------

    @property
    def legacy(self) -> bool:
        """True for ``sha1/`` pins, which only OkHttp 2 and 3 understood."""
        return self.algorithm == "sha1"

    @property
    def base64(self) -> str:
        return base64.b64encode(self.digest).decode("ascii")

    @property
    def hex(self) -> str:
        return self.digest.hex()

    @property
    def hpkp(self) -> str:
        """The RFC 7469 form: ``pin-sha256="<base64>"``."""
        return f'pin-{self.algorithm}="{self.base64}"'

    def matches(self, cert_der: bytes) -> bool:
        """Whether this pin is the SPKI hash of a DER certificate."""
        if self.algorithm == "sha256":
            return hmac.compare_digest(self.digest, spki_sha256(cert_der))
        actual = hashlib.new(self.algorithm, spki_of_certificate(cert_der)).digest()
        return hmac.compare_digest(self.digest, actual)

    def __str__(self) -> str:
        return f"{self.algorithm}/{self.base64}"

    def __repr__(self) -> str:
        return f"Pin({str(self)!r})"


def _bare_sha256(value: str) -> bytes | None:
    """The digest when ``value`` as a whole is standard base64 of 32 bytes, else None."""
    if len(value) != 44 or re.fullmatch(r"[A-Za-z0-9+/]{43}=", value) is None:
        return None
    digest = base64.b64decode(value)
    return digest if len(digest) == 32 else None


def _looks_b64(value: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", value) is not None


def _b64(value: str, algorithm: Algorithm, shown: str) -> bytes:
    size = _DIGEST_SIZE[algorithm]
    if re.search(r"[-_]", value) and not re.search(r"[+/]", value):
        hint = " (it looks like URL-safe base64; pins use standard base64 with + and /)"
    else:
        hint = ""
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PinFormatError(f"pin {shown!r}: {value[:60]!r} is not valid base64{hint}") from None
    if len(digest) != size:
        raise PinFormatError(
            f"pin {shown!r}: base64 decodes to {len(digest)} bytes, "
            f"a {algorithm} pin has {size}{hint}"
        )
    return digest


def certificate_der(cert: CertificateLike) -> bytes:
    """DER bytes of a certificate given as DER, PEM (bytes or text) or a ``cryptography``
    object. A PEM bundle must hold exactly one certificate."""
    if isinstance(cert, x509.Certificate):
        return cert.public_bytes(serialization.Encoding.DER)
    data = cert.encode() if isinstance(cert, str) else cert
    if not isinstance(data, bytes):
        raise CertificateError(f"expected certificate bytes, got {type(cert).__name__}")
    if _PEM_CERT in data:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except Exception as exc:  # ValueError, InvalidVersion...
            raise CertificateError(f"not a readable PEM certificate: {exc}") from None
        if len(certs) != 1:
            raise CertificateError(f"expected one certificate, the PEM holds {len(certs)}")
        return certs[0].public_bytes(serialization.Encoding.DER)
    try:
        x509.load_der_x509_certificate(data)
    except Exception as exc:  # ValueError, InvalidVersion...
        raise CertificateError(f"not a readable DER certificate: {exc}") from None
    return data


@lru_cache(maxsize=4096)
def spki_sha256(cert_der: bytes) -> bytes:
    """SHA-256 of a DER certificate's SPKI. Memoised by the certificate bytes: the same
    chain is checked on every new connection, and this keeps a warm check in microseconds."""
    return hashlib.sha256(spki_of_certificate(cert_der)).digest()


def fingerprint_sha256(cert_der: bytes) -> bytes:
    """SHA-256 of the whole DER certificate: its fingerprint, *not* a pin."""
    return hashlib.sha256(cert_der).digest()


def pin_diagnosis(pin: Pin, certificates: Iterable[CertificateLike]) -> str | None:
    """Explain a common mistake when ``pin`` is not an SPKI pin of any of
    ``certificates`` but another hash of one of them: its SHA-256 fingerprint, or the
    SHA-256 of its raw public key (what iOS' ``SecKeyCopyExternalRepresentation`` gives).
    None otherwise."""
    from pinwarden.forms import forms_of_certificate  # forms builds on this module

    if pin.algorithm != "sha256":
        return None
    ders: list[bytes] = []
    for cert in certificates:
        # A certificate only OpenSSL can read has no diagnosis to offer; never fail on it.
        with contextlib.suppress(CertificateError):
            ders.append(certificate_der(cert))
    if any(pin.matches(der) for der in ders):
        return None
    for der in ders:
        try:
            forms = forms_of_certificate(der)
            subject = x509.load_der_x509_certificate(der).subject.rfc4514_string()
        except Exception:  # noqa: S112 - CertificateError, ValueError...: best effort
            continue
        if forms.cert_sha256 is not None and hmac.compare_digest(pin.digest, forms.cert_sha256):
            what = "the SHA-256 fingerprint of the certificate"
        elif forms.raw_key_sha256 is not None and hmac.compare_digest(
            pin.digest, forms.raw_key_sha256
        ):
            what = (
                "the SHA-256 of the raw public key (SecKeyCopyExternalRepresentation, "
                "without the SPKI header) of the certificate"
            )
        else:
            continue
        return (
            f"{pin} is {what} {subject!r}, not the hash of its SubjectPublicKeyInfo; "
            f"its SPKI pin is {forms.pin}"
        )
    return None


def load_private_key(data: bytes, password: bytes | str | None = None) -> PrivateKeyTypes:
    """Load a PEM or DER private key, decrypting it with ``password`` when given."""
    secret = password.encode() if isinstance(password, str) else password
    try:
        if b"-----BEGIN" in data:
            return serialization.load_pem_private_key(data, secret)
        return serialization.load_der_private_key(data, secret)
    except TypeError as exc:
        # cryptography says TypeError for a missing or superfluous password.
        if secret is None:
            raise CertificateError("the private key is encrypted: a password is needed") from None
        raise CertificateError(f"private key: {exc}") from None
    except ValueError as exc:
        # Traditional PEM encryption ("Proc-Type: 4,ENCRYPTED") has no integrity check:
        # a wrong password sometimes decrypts to garbage that fails as a parse error.
        encrypted = b"ENCRYPTED" in data[:200] or "password" in str(exc).lower()
        if secret is not None and encrypted:
            raise CertificateError(
                "the private key could not be decrypted: wrong password (or a corrupt key)"
            ) from None
        raise CertificateError(f"not a readable private key: {exc}") from None
    except Exception as exc:  # cryptography raises its own types for unsupported algorithms
        raise CertificateError(f"not a readable private key: {exc}") from None


def spki_of_public_key(key: PublicKeyTypes | bytes | str) -> bytes:
    """DER SubjectPublicKeyInfo of a public key: a ``cryptography`` key, or PEM/DER SPKI."""
    if isinstance(key, (bytes, str)):
        key = _load_public_key(key.encode() if isinstance(key, str) else key)
    return _spki_of_key(key)


def spki_of_private_key(
    key: PrivateKeyTypes | bytes | str, password: bytes | str | None = None
) -> bytes:
    """DER SubjectPublicKeyInfo of the public half of a private key (PEM or DER)."""
    if isinstance(key, (bytes, str)):
        key = load_private_key(key.encode() if isinstance(key, str) else key, password)
    return _spki_of_key(key.public_key())


def spki_of_csr(csr: x509.CertificateSigningRequest | bytes | str) -> bytes:
    """DER SubjectPublicKeyInfo of the key in a certificate signing request (PEM or DER)."""
    if isinstance(csr, (bytes, str)):
        data = csr.encode() if isinstance(csr, str) else csr
        try:
            if b"-----BEGIN" in data:
                csr = x509.load_pem_x509_csr(data)
            else:
                csr = x509.load_der_x509_csr(data)
        except Exception as exc:  # ValueError, InvalidVersion...
            raise CertificateError(f"not a readable CSR: {exc}") from None
    try:
        key = csr.public_key()
    except Exception as exc:  # UnsupportedAlgorithm for key types cryptography lacks
        raise CertificateError(f"the CSR's public key cannot be read: {exc}") from None
    return _spki_of_key(key)


def _load_public_key(data: bytes) -> PublicKeyTypes:
    try:
        if b"-----BEGIN" in data:
            return serialization.load_pem_public_key(data)
        return serialization.load_der_public_key(data)
    except Exception as exc:  # ValueError, or UnsupportedAlgorithm for odd key types
        raise CertificateError(f"not a readable public key: {exc}") from None


def _spki_of_key(key: PublicKeyTypes | CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
