"""Reading certificates, keys and CSRs from PEM/DER files and bundles, and describing
certificates the way pinwarden reports them."""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtensionOID

from pinwarden._der import first_element, spki_of_certificate
from pinwarden.errors import CertificateError
from pinwarden.pins import (
    Pin,
    certificate_der,
    fingerprint_sha256,
    spki_of_csr,
    spki_of_private_key,
    spki_of_public_key,
    spki_sha256,
)

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

_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,64})-----\r?\n")
_PRIVATE_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"ENCRYPTED PRIVATE KEY"}
_CERT_LABELS = {b"CERTIFICATE", b"TRUSTED CERTIFICATE", b"X509 CERTIFICATE"}
_CSR_LABELS = {b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"}
_PUBLIC_LABELS = {b"PUBLIC KEY", b"RSA PUBLIC KEY"}


@dataclass(frozen=True)
class LoadedObject:
    """One thing found in a file: its kind, where it was (``source``, and ``index``: the
    1-based number of its PEM block in the file, counting blocks of every label, or 1
    for a DER file), the pin of its public key, the DER SubjectPublicKeyInfo it was
    computed from, and for certificates the certificate."""

    kind: ObjectKind
    source: str
    index: int
    pin: Pin
    certificate: x509.Certificate | None = None
    subject: str | None = None
    spki: bytes | None = None


def load_objects(
    data: bytes | str, *, source: str = "<bytes>", password: bytes | str | None = None
) -> list[LoadedObject]:
    """Every certificate, private key, public key and CSR in PEM data (any number of
    blocks, other text ignored) or in a single DER object.

    Raises :class:`~pinwarden.errors.CertificateError` naming ``source`` and the block
    when something cannot be read, or when nothing is found."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if b"-----BEGIN" in data:
        blocks = _pem_blocks(data, source)
        found = [
            _load_block(label, block, source, i, password)
            for i, (label, block) in enumerate(blocks, start=1)
        ]
        objects = [obj for obj in found if obj is not None]
        if not objects:
            labels = ", ".join(sorted({label.decode() for label, _ in blocks}))
            raise CertificateError(f"{source}: no certificate, key or CSR (PEM blocks: {labels})")
        return objects
    return [_load_der(data, source, password)]


def _pem_blocks(data: bytes, source: str) -> list[tuple[bytes, bytes]]:
    """(label, whole block) of each PEM block, in one pass: a regex spanning BEGIN to
    END would rescan the rest of the input for every BEGIN without an END."""
    blocks: list[tuple[bytes, bytes]] = []
    pos = 0
    while (begin := _PEM_BEGIN.search(data, pos)) is not None:
        label = begin.group(1)
        end_line = b"-----END " + label + b"-----"
        end = data.find(end_line, begin.end())
        if end < 0:
            raise CertificateError(
                f"{source}: PEM block {len(blocks) + 1} ({label.decode()}) has a BEGIN line "
                "without a matching END line"
            )
        pos = end + len(end_line)
        blocks.append((label, data[begin.start() : pos]))
    if not blocks:
        raise CertificateError(f"{source}: a PEM BEGIN line that is not well formed")
    return blocks


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
            return _key_object("csr", source, index, spki_of_csr(pem))
        if label in _PRIVATE_LABELS:
            return _key_object("private-key", source, index, spki_of_private_key(pem, password))
        if label in _PUBLIC_LABELS:
            return _key_object("public-key", source, index, spki_of_public_key(pem))
    except Exception as exc:  # ours, or cryptography's ValueError, InvalidVersion...
        raise CertificateError(f"{where}: {exc}") from None
    return None


def _key_object(kind: ObjectKind, source: str, index: int, spki: bytes) -> LoadedObject:
    return LoadedObject(kind, source, index, Pin.from_spki(spki), spki=spki)


def _cert_object(cert: x509.Certificate, source: str, index: int) -> LoadedObject:
    try:
        spki = spki_of_certificate(certificate_der(cert))
    except CertificateError as exc:
        raise CertificateError(f"{source}: object {index}: {exc}") from None
    return LoadedObject(
        "certificate",
        source,
        index,
        Pin.from_spki(spki),
        certificate=cert,
        subject=_name_text(cert, "subject"),
        spki=spki,
    )


def _load_der(data: bytes, source: str, password: bytes | str | None) -> LoadedObject:
    # DER has no label: try each kind in turn, most common first. Once one kind reads,
    # a later failure (say, an unsupported key type) is that object's error.
    with contextlib.suppress(Exception):  # ValueError, InvalidVersion...
        return _cert_object(x509.load_der_x509_certificate(data), source, 1)
    csr: x509.CertificateSigningRequest | None = None
    with contextlib.suppress(Exception):
        csr = x509.load_der_x509_csr(data)
    if csr is not None:
        try:
            return _key_object("csr", source, 1, spki_of_csr(csr))
        except CertificateError as exc:
            raise CertificateError(f"{source}: {exc}") from None
    try:
        return _key_object("public-key", source, 1, spki_of_public_key(data))
    except CertificateError:
        pass
    try:
        return _key_object("private-key", source, 1, spki_of_private_key(data, password))
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
    """What pinwarden shows about one certificate of a chain. A certificate that
    cryptography cannot read (a server may send anything) is still described: its
    ``subject`` says so, and the fields that need parsing are None."""

    position: Position
    subject: str
    issuer: str
    key: str
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    pin: Pin | None
    fingerprint_sha256: str
    is_ca: bool
    der: bytes

    @classmethod
    def from_certificate(cls, cert: x509.Certificate | bytes, position: Position) -> CertInfo:
        if isinstance(cert, x509.Certificate):
            obj = cert
            der = certificate_der(cert)
        else:
            der = cert
            try:
                obj = x509.load_der_x509_certificate(der)
            except Exception as exc:  # ValueError, InvalidVersion, ...
                return cls._unreadable(der, position, exc)
        try:
            key = key_description(obj.public_key())
        except Exception:  # an algorithm cryptography cannot load; the pin still works
            key = obj.public_key_algorithm_oid.dotted_string
        try:
            bc = obj.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
            is_ca = bool(getattr(bc, "ca", False))
        except Exception:
            # cryptography decodes extensions on first access and raises ExtensionNotFound,
            # ValueError, DuplicateExtension or UnsupportedGeneralNameType (no common base):
            # a certificate a server sent is still described, as not a CA.
            is_ca = False
        return cls(
            position=position,
            subject=_name_text(obj, "subject"),
            issuer=_name_text(obj, "issuer"),
            key=key,
            not_before=obj.not_valid_before_utc,
            not_after=obj.not_valid_after_utc,
            pin=Pin.from_certificate(der),
            fingerprint_sha256=fingerprint_sha256(der).hex(),
            is_ca=is_ca,
            der=der,
        )

    @classmethod
    def _unreadable(cls, der: bytes, position: Position, exc: Exception) -> CertInfo:
        try:
            pin: Pin | None = Pin("sha256", spki_sha256(der))
        except CertificateError:
            pin = None
        return cls(
            position=position,
            subject=f"<certificate cryptography cannot read: {exc}>",
            issuer="",
            key="unknown",
            not_before=None,
            not_after=None,
            pin=pin,
            fingerprint_sha256=fingerprint_sha256(der).hex(),
            is_ca=False,
            der=der,
        )

    def days_left(self, now: dt.datetime) -> int | None:
        """Whole days until ``not_after`` (negative once expired)."""
        return None if self.not_after is None else (self.not_after - now).days

    def to_json(self, now: dt.datetime) -> dict[str, object]:
        """The documented JSON form (see docs/json.md)."""
        return {
            "position": self.position,
            "subject": self.subject,
            "issuer": self.issuer,
            "key": self.key,
            "not_before": self.not_before.isoformat() if self.not_before else None,
            "not_after": self.not_after.isoformat() if self.not_after else None,
            "days_left": self.days_left(now),
            "pin": str(self.pin) if self.pin else None,
            "fingerprint_sha256": self.fingerprint_sha256,
            "is_ca": self.is_ca,
        }


def _name_text(cert: x509.Certificate, which: Literal["subject", "issuer"]) -> str:
    """The RFC 4514 text of a name, or what was wrong with it: cryptography decodes names
    lazily and raises ValueError or TypeError (a BIT STRING where a string belongs)."""
    try:
        name = cert.subject if which == "subject" else cert.issuer
        return name.rfc4514_string()
    except (ValueError, TypeError) as exc:
        return f"<{which} cryptography cannot read: {exc}>"


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
