"""Reading certificates, keys and CSRs from PEM/DER files and bundles, and describing
certificates the way pinwarden reports them."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtensionOID

from pinwarden._der import first_element
from pinwarden.errors import CertificateError
from pinwarden.pins import Pin, certificate_der, fingerprint_sha256

__all__ = [
    "CertInfo",
    "LoadedObject",
    "Position",
    "describe_chain",
    "key_description",
    "load_objects",
]

ObjectKind = Literal["certificate", "private-key", "public-key", "csr"]
Position = Literal["leaf", "intermediate", "root"]

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
_PRIVATE_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"ENCRYPTED PRIVATE KEY"}
_CERT_LABELS = {b"CERTIFICATE", b"TRUSTED CERTIFICATE", b"X509 CERTIFICATE"}
_CSR_LABELS = {b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"}
_PUBLIC_LABELS = {b"PUBLIC KEY", b"RSA PUBLIC KEY"}


@dataclass(frozen=True)
class LoadedObject:
    """One thing found in a file: its kind, where it was (``source``, and ``index``: the
    1-based number of its PEM block in the file, counting blocks of every label, or 1
    for a DER file), the pin of its public key, and for certificates the certificate."""

    kind: ObjectKind
    source: str
    index: int
    pin: Pin
    certificate: x509.Certificate | None = None
    subject: str | None = None


def load_objects(
    data: bytes, *, source: str = "<bytes>", password: bytes | str | None = None
) -> list[LoadedObject]:
    """Every certificate, private key, public key and CSR in PEM data (any number of
    blocks, other text ignored) or in a single DER object.

    Raises :class:`~pinwarden.errors.CertificateError` naming ``source`` and the block
    when something cannot be read, or when nothing is found."""
    if b"-----BEGIN" in data:
        blocks = list(_PEM_BLOCK.finditer(data))
        if not blocks:
            raise CertificateError(f"{source}: a PEM header without a matching END line")
        found = [
            _load_block(m.group(1), m.group(0), source, i, password)
            for i, m in enumerate(blocks, start=1)
        ]
        objects = [obj for obj in found if obj is not None]
        if not objects:
            labels = ", ".join(sorted({m.group(1).decode() for m in blocks}))
            raise CertificateError(f"{source}: no certificate, key or CSR (PEM blocks: {labels})")
        return objects
    return [_load_der(data, source, password)]


def _load_block(
    label: bytes, pem: bytes, source: str, index: int, password: bytes | str | None
) -> LoadedObject | None:
    where = f"{source}: PEM block {index} ({label.decode()})"
    try:
        if label in _CERT_LABELS:
            if label == b"TRUSTED CERTIFICATE":
                # OpenSSL appends its trust settings after the certificate's DER.
                body = b"".join(pem.splitlines()[1:-1])
                try:
                    der = first_element(base64.b64decode(body, validate=True))
                except (binascii.Error, ValueError):
                    raise CertificateError("the base64 body is corrupt") from None
                cert = x509.load_der_x509_certificate(der)
            else:
                cert = x509.load_pem_x509_certificate(pem.replace(label, b"CERTIFICATE"))
            return _cert_object(cert, source, index)
        if label in _CSR_LABELS:
            return LoadedObject("csr", source, index, Pin.from_csr(pem))
        if label in _PRIVATE_LABELS:
            return LoadedObject("private-key", source, index, Pin.from_private_key(pem, password))
        if label in _PUBLIC_LABELS:
            return LoadedObject("public-key", source, index, Pin.from_public_key(pem))
    except CertificateError as exc:
        raise CertificateError(f"{where}: {exc}") from None
    except ValueError as exc:
        raise CertificateError(f"{where}: {exc}") from None
    return None


def _cert_object(cert: x509.Certificate, source: str, index: int) -> LoadedObject:
    try:
        pin = Pin.from_certificate(cert)
    except CertificateError as exc:
        raise CertificateError(f"{source}: object {index}: {exc}") from None
    return LoadedObject(
        "certificate", source, index, pin, certificate=cert, subject=cert.subject.rfc4514_string()
    )


def _load_der(data: bytes, source: str, password: bytes | str | None) -> LoadedObject:
    # DER has no label: try each kind in turn, most common first.
    try:
        return _cert_object(x509.load_der_x509_certificate(data), source, 1)
    except ValueError:
        pass
    try:
        return LoadedObject("csr", source, 1, Pin.from_csr(x509.load_der_x509_csr(data)))
    except ValueError:
        pass
    try:
        return LoadedObject("public-key", source, 1, Pin.from_public_key(data))
    except CertificateError:
        pass
    try:
        return LoadedObject("private-key", source, 1, Pin.from_private_key(data, password))
    except CertificateError as exc:
        if "password" in str(exc):
            raise CertificateError(f"{source}: {exc}") from None
    raise CertificateError(
        f"{source}: not PEM, and not a DER certificate, CSR, public key or private key"
    )


def key_description(key: PublicKeyTypes) -> str:
    """``RSA 2048``, ``EC P-256``, ``Ed25519``..."""
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        names = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"EC {names.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__


@dataclass(frozen=True)
class CertInfo:
    """What pinwarden shows about one certificate of a chain."""

    position: Position
    subject: str
    issuer: str
    key: str
    not_before: dt.datetime
    not_after: dt.datetime
    pin: Pin
    fingerprint_sha256: str
    is_ca: bool
    der: bytes

    @classmethod
    def from_certificate(cls, cert: x509.Certificate | bytes, position: Position) -> CertInfo:
        der = certificate_der(cert)
        obj = cert if isinstance(cert, x509.Certificate) else x509.load_der_x509_certificate(der)
        try:
            key = key_description(obj.public_key())
        except Exception:  # an algorithm cryptography cannot load; the pin still works
            key = obj.public_key_algorithm_oid.dotted_string
        try:
            bc = obj.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
            is_ca = bool(getattr(bc, "ca", False))
        except (x509.ExtensionNotFound, ValueError):
            is_ca = False
        return cls(
            position=position,
            subject=obj.subject.rfc4514_string(),
            issuer=obj.issuer.rfc4514_string(),
            key=key,
            not_before=obj.not_valid_before_utc,
            not_after=obj.not_valid_after_utc,
            pin=Pin.from_certificate(der),
            fingerprint_sha256=fingerprint_sha256(der).hex(),
            is_ca=is_ca,
            der=der,
        )

    def days_left(self, now: dt.datetime) -> int:
        """Whole days until ``not_after`` (negative once expired)."""
        return (self.not_after - now).days

    def to_json(self, now: dt.datetime) -> dict[str, object]:
        """The documented JSON form (see docs/json.md)."""
        return {
            "position": self.position,
            "subject": self.subject,
            "issuer": self.issuer,
            "key": self.key,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "days_left": self.days_left(now),
            "pin": str(self.pin),
            "fingerprint_sha256": self.fingerprint_sha256,
            "is_ca": self.is_ca,
        }


def describe_chain(
    chain: Sequence[x509.Certificate | bytes], *, ends_at_anchor: bool
) -> list[CertInfo]:
    """Describe a chain leaf first. The last certificate is called ``root`` only when
    ``ends_at_anchor`` (a verified chain) or when it is self-issued."""
    infos: list[CertInfo] = []
    for i, cert in enumerate(chain):
        position: Position = "leaf" if i == 0 else "intermediate"
        infos.append(CertInfo.from_certificate(cert, position))
    if len(infos) > 1:
        last = infos[-1]
        if ends_at_anchor or last.subject == last.issuer:
            infos[-1] = CertInfo(**{**last.__dict__, "position": "root"})
    return infos
