"""Who issued a log entry's certificate, as far as the entry proves it
(:func:`check_issuer`): by the issuer's key where the entry carries or proves it, else by
the issuer's name, which is only a claim.

Separate from :mod:`pinwarden.ct.verdicts` so that the judge's expectations stand apart
from how an issuer is recognised; :mod:`pinwarden.ct.verdicts` re-exports the public names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from pinwarden.caa.identities import CAIdentity, identify_issuer
from pinwarden.ct._entry_names import _load_quietly
from pinwarden.ct.entries import LogEntry
from pinwarden.errors import CertificateError
from pinwarden.pins import Pin


@dataclass(frozen=True)
class IssuerCheck:
    """Who issued a log entry's certificate, as far as the entry proves it.

    ``identity`` is the CA its key identifies (``by_key``), or else the CA its issuer name
    claims (None when neither is known). ``key`` is the issuer's SPKI pin when the entry
    proves it. ``doubt`` says why ``identity`` is only a claim (None when ``by_key``, or
    when there is no identity at all): a certificate is never ``expected`` on a claim."""

    identity: CAIdentity | None
    by_key: bool = False
    key: Pin | None = None
    doubt: str | None = None


def _issuer_key(entry: LogEntry) -> tuple[Pin | None, str]:
    """The issuer's SPKI pin, or None and why it is not known."""
    if entry.issuer_key_hash is not None:
        # Part of the logged precertificate entry: covered by the log's signature.
        return Pin("sha256", entry.issuer_key_hash), ""
    if entry.certificate_der is None or not entry.chain_der:
        return None, "the log entry does not carry the issuing certificate"
    # The chain beside an x509_entry is not covered by the log's signature: its first
    # certificate counts only once it is shown to have signed this one.
    try:
        certificate = _load_quietly(entry.certificate_der)
        issuer = _load_quietly(entry.chain_der[0])
        certificate.verify_directly_issued_by(issuer)
        return Pin.from_certificate(issuer), ""
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm, CertificateError):
        return None, "the first certificate of the chain submitted with it did not sign it"


def check_issuer(entry: LogEntry, identities: Sequence[CAIdentity]) -> IssuerCheck:
    """Who issued ``entry``'s certificate (:mod:`pinwarden.ct.verdicts`): by the issuer's
    key when the entry proves it and it is among an identity's pins, else by the issuer
    name, with the reason that name is only a claim."""
    key, missing = _issuer_key(entry)
    if key is not None:
        for identity in identities:
            if key in identity.pins:
                return IssuerCheck(identity, by_key=True, key=key)
    claimed = None
    if entry.issuer is not None:
        try:
            claimed = identify_issuer(entry.issuer, identities=identities)
        except CertificateError:
            claimed = None
    if claimed is None:
        return IssuerCheck(None, key=key)
    issuer = entry.issuer or "(unknown issuer)"
    if claimed.pins:
        if key is not None:
            doubt = (
                f"issuer {issuer!r} claims to be {claimed.name} but its key {key} is not a "
                f"known {claimed.name} key"
            )
        else:
            doubt = (
                f"issuer {issuer!r} claims to be {claimed.name} but its key cannot be "
                f"checked against the known {claimed.name} keys: {missing}"
            )
    else:
        doubt = (
            f"issuer {issuer!r} is taken for {claimed.name} by its name only, which any CA "
            "can give its certificates; to check its key, add the SPKI pins of "
            f"{claimed.name}'s issuing intermediates to a CA identities file "
            "(ct monitor --identities FILE)"
        )
    return IssuerCheck(claimed, key=key, doubt=doubt)


def issuer_identity(entry: LogEntry, identities: Sequence[CAIdentity]) -> CAIdentity | None:
    """The CA that issued ``entry``'s certificate by :func:`check_issuer` (proved by its
    key, or only claimed by its name), or None when the table does not know it."""
    return check_issuer(entry, identities).identity
