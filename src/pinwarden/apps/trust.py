"""The keys of a trust store, to tell whether a pinned root is still trusted."""

from __future__ import annotations

import contextlib
import re
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pinwarden.errors import CertificateError
from pinwarden.pins import spki_sha256

__all__ = ["TrustStore", "load_trust_store"]


@dataclass(frozen=True)
class TrustStore:
    """The certificates of a trust store (DER) and their SPKI SHA-256 digests."""

    source: str
    digests: frozenset[bytes]
    certificates: tuple[bytes, ...] = ()

    def anchors(self) -> list[x509.Certificate]:
        """The certificates as ``cryptography`` objects (for path building)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # see _certificates
            return [x509.load_der_x509_certificate(d) for d in self.certificates]

    def __contains__(self, digest: object) -> bool:
        return digest in self.digests


_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _certificates(data: bytes) -> list[bytes]:
    """Every certificate of a PEM bundle; one unreadable certificate (system bundles
    hold a few that cryptography frowns upon) costs only itself."""
    ders: list[bytes] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "serial number wasn't positive"
        for block in _BLOCK.finditer(data):
            with contextlib.suppress(ValueError):
                cert = x509.load_pem_x509_certificate(block.group(0))
                ders.append(cert.public_bytes(serialization.Encoding.DER))
    return ders


def load_trust_store(cafile: str | Path | None = None) -> TrustStore:
    """The certificates of ``cafile`` (PEM), or of the system store OpenSSL uses (its
    CA file and the hashed files of its CA directory)."""
    if cafile is not None:
        try:
            data = Path(cafile).read_bytes()
        except OSError as exc:
            raise CertificateError(f"{cafile}: {exc.strerror or exc}") from None
        ders = _certificates(data)
        if not ders:
            raise CertificateError(f"{cafile}: no PEM certificate in this CA file")
        return TrustStore(str(cafile), frozenset(spki_sha256(d) for d in ders), tuple(ders))
    paths = ssl.get_default_verify_paths()
    ders = []
    sources = []
    if paths.cafile:
        with contextlib.suppress(OSError):
            ders.extend(_certificates(Path(paths.cafile).read_bytes()))
            sources.append(paths.cafile)
    if paths.capath and Path(paths.capath).is_dir():
        for entry in sorted(Path(paths.capath).glob("*.[0-9]")):
            with contextlib.suppress(OSError):
                ders.extend(_certificates(entry.read_bytes()))
        sources.append(paths.capath)
    ders = list(dict.fromkeys(ders))  # the CA file and directory hold the same roots
    digests = frozenset(spki_sha256(d) for d in ders)
    return TrustStore(" + ".join(sources) or "<empty system store>", digests, tuple(ders))
