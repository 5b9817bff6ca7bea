"""Verifying SCTs: the verdict on one SCT for a certificate, from the log list's key and
state at the SCT's time (see :func:`verify_sct` for the rules), and finding the issuer whose
key hash a precertificate SCT covers.

Separate from parsing: this is the part that needs a log list, a clock and the issuer, and
that decides; the bytes it checks come from :mod:`pinwarden.ct._sct_signed`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import datetime, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from pinwarden.ct._sct_codec import embedded_sct_items
from pinwarden.ct._sct_signed import issuer_key_hash, signed_data
from pinwarden.ct._sct_types import (
    HASH_SHA256,
    SCT,
    SIG_ECDSA,
    SIG_RSA,
    MalformedSCT,
    SCTResult,
    SCTStatus,
    SignedEntryType,
    _describe,
)
from pinwarden.ct.logs import Log, LogList, LogState
from pinwarden.errors import CertificateError


def find_issuer(
    cert: x509.Certificate, candidates: Iterable[x509.Certificate], *, by_name: bool = False
) -> x509.Certificate | None:
    """The first candidate whose subject is ``cert``'s issuer and whose key verifies
    ``cert``'s signature, else ``None``.

    With ``by_name``, when no candidate's signature verifies, the first candidate whose
    subject is ``cert``'s issuer: an altered certificate still names its issuer, and
    checking its SCTs against that issuer shows them as bad signatures rather than
    leaving them unverified. A candidate whose name cryptography cannot decode is skipped.
    """
    named = [c for c in candidates if _names_issuer(cert, c)]
    for candidate in named:
        if _issued_by(cert, candidate):
            return candidate
    return named[0] if by_name and named else None


def _names_issuer(cert: x509.Certificate, candidate: x509.Certificate) -> bool:
    try:
        return candidate.subject == cert.issuer
    except (ValueError, TypeError):  # a name cryptography decodes lazily and cannot read
        return False


def verify_sct(
    sct: SCT | MalformedSCT,
    cert: x509.Certificate,
    *,
    issuer: x509.Certificate | bytes | None,
    log_list: LogList,
    now: datetime,
) -> SCTResult:
    """The verdict on one SCT for ``cert``.

    ``issuer`` (the issuer's certificate, or its DER SubjectPublicKeyInfo) is needed for a
    PRECERT SCT, whose signature covers the issuer key hash; ``None`` is accepted only for
    X509 SCTs (else :class:`CertificateError`). Rules, in this order:

    0. MALFORMED: ``sct`` is a :class:`MalformedSCT` (no issuer needed); ``log`` is the
       log its log ID names, when that field was read and is in the list.
    1. UNKNOWN_LOG: the SCT's log ID is not in ``log_list``.
    2. BAD_SIGNATURE: the hash algorithm is not SHA-256, the signature algorithm does not
       match the log's key (ECDSA or RSA), the signature does not verify over the entry
       rebuilt from ``cert`` and ``issuer`` (an altered certificate or a wrong issuer), or
       the log's key is unusable: not a key RFC 6962 section 2.1.4 allows (ECDSA on NIST
       P-256, or RSA of at least 2048 bits) or one cryptography cannot load. Such a log
       can sign nothing that counts, so its SCTs are bad rather than unknown.
    3. FUTURE_TIMESTAMP: the SCT's timestamp is after ``now``.
    4. LOG_NOT_TRUSTED: the log was not trusted when it issued the SCT:

       * its state is ``pending`` or ``rejected``;
       * it is ``retired`` and the SCT is not before the retirement time (``state_since``;
         a retired log without a time is never trusted);
       * it is ``readonly`` and the SCT is not before the time it froze (a frozen log
         accepts nothing, so such an SCT cannot be genuine log output);
       * it has a ``temporal_interval`` that does not contain ``cert``'s notAfter.

       ``qualified``, ``usable``, ``readonly`` (SCT before the freeze), ``retired`` (SCT
       before the retirement) and a log without a state count as trusted: as Chrome does,
       a retired log's SCTs issued while it was trusted stay good.
    5. VALID otherwise.
    """
    if isinstance(sct, MalformedSCT):
        return _malformed(sct, log_list)
    log = log_list.by_id(sct.log_id)
    if log is None:
        return SCTResult(
            sct,
            SCTStatus.UNKNOWN_LOG,
            None,
            None,
            f"log {_b64(sct.log_id)} is not in the log list ({log_list.source})",
        )
    operator = log.operator_at(sct.timestamp)

    def result(status: SCTStatus, detail: str) -> SCTResult:
        return SCTResult(sct, status, log, operator, detail)

    key_hash: bytes | None = None
    if sct.entry_type is SignedEntryType.PRECERT:
        if issuer is None:
            raise CertificateError(
                f"{_describe(cert)}: the issuer certificate is needed to verify an embedded "
                "SCT (the log signed the issuer's key hash)"
            )
        key_hash = issuer_key_hash(issuer)
    problem = _signature_problem(sct, log, signed_data(sct, cert, key_hash))
    if problem is not None:
        if problem == _DOES_NOT_VERIFY:
            problem += _why_not(sct, cert, issuer)
        return result(SCTStatus.BAD_SIGNATURE, problem)
    if sct.timestamp > now:
        return result(
            SCTStatus.FUTURE_TIMESTAMP,
            f"the SCT is dated {_iso(sct.timestamp)}, after {_iso(now)}",
        )
    distrust = _trust_problem(sct, log, cert)
    if distrust is not None:
        return result(SCTStatus.LOG_NOT_TRUSTED, distrust)
    return result(SCTStatus.VALID, f"signature by {log.description} verifies")


def verify_embedded(
    cert: x509.Certificate,
    issuer: x509.Certificate | bytes | None,
    log_list: LogList,
    now: datetime,
) -> tuple[SCTResult, ...]:
    """The verdicts on every SCT embedded in ``cert`` (an empty tuple when it has none).
    An SCT that cannot be decoded is a MALFORMED verdict; :class:`CTFormatError` when the
    SCT list itself is malformed (see :func:`embedded_sct_items`)."""
    return tuple(
        verify_sct(sct, cert, issuer=issuer, log_list=log_list, now=now)
        for sct in embedded_sct_items(cert)
    )


def _malformed(sct: MalformedSCT, log_list: LogList) -> SCTResult:
    log = log_list.by_id(sct.log_id) if sct.log_id is not None else None
    operator = (
        log.operator_at(sct.timestamp) if log is not None and sct.timestamp is not None else None
    )
    return SCTResult(sct, SCTStatus.MALFORMED, log, operator, sct.error)


_DOES_NOT_VERIFY = "the signature does not verify"


def _signature_problem(sct: SCT, log: Log, message: bytes) -> str | None:
    if sct.hash_algorithm != HASH_SHA256:
        return f"hash algorithm {sct.hash_algorithm} is not SHA-256 (4), the only one CT allows"
    try:
        key = log.public_key()
    except (TypeError, ValueError, UnsupportedAlgorithm) as exc:
        return f"the log list's key for {log.description} is unusable: {exc}"
    unusable = _key_not_allowed(key)
    if unusable is not None:
        return f"the log list's key for {log.description} is unusable: {unusable}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if sct.signature_algorithm != SIG_ECDSA:
            return _mismatch(sct, "ECDSA")
        try:
            key.verify(sct.signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return _DOES_NOT_VERIFY
        return None
    if sct.signature_algorithm != SIG_RSA:
        return _mismatch(sct, "RSA")
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(sct.signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return _DOES_NOT_VERIFY
    return None


_RFC6962_KEYS = "RFC 6962 section 2.1.4 allows only ECDSA on NIST P-256 or RSA of 2048 bits or more"


def _key_not_allowed(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str | None:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            return f"an ECDSA key on {key.curve.name}; {_RFC6962_KEYS}"
    elif key.key_size < 2048:
        return f"an RSA key of {key.key_size} bits; {_RFC6962_KEYS}"
    return None


def _mismatch(sct: SCT, key_kind: str) -> str:
    names = {SIG_RSA: "RSA", SIG_ECDSA: "ECDSA"}
    claimed = names.get(sct.signature_algorithm, f"number {sct.signature_algorithm}")
    return f"the SCT's signature algorithm is {claimed} but the log's key is {key_kind}"


def _why_not(sct: SCT, cert: x509.Certificate, issuer: x509.Certificate | bytes | None) -> str:
    if sct.entry_type is SignedEntryType.X509:
        return " over this certificate: was it altered, or is the SCT for another certificate?"
    if isinstance(issuer, x509.Certificate) and not _issued_by(cert, issuer):
        return (
            f" and {_describe(issuer, 'the issuer')} did not sign this certificate either: "
            "does the issuer match? (or was the certificate altered?)"
        )
    return " over this certificate and issuer: does the issuer match? (or was it altered?)"


def _trust_problem(sct: SCT, log: Log, cert: x509.Certificate) -> str | None:
    state, since = log.state, log.state_since
    if state in (LogState.PENDING, LogState.REJECTED):
        return f"{log.description} is {state.value}: its SCTs do not count"
    if state is LogState.RETIRED and (since is None or sct.timestamp >= since):
        when = f" at {_iso(since)}" if since else " (the list gives no time)"
        return f"{log.description} retired{when}; the SCT is dated {_iso(sct.timestamp)}"
    if state is LogState.READONLY and since is not None and sct.timestamp >= since:
        return (
            f"{log.description} has been read-only since {_iso(since)}; an SCT dated "
            f"{_iso(sct.timestamp)} cannot come from it"
        )
    if log.temporal_interval is not None:
        start, end = log.temporal_interval
        expiry = cert.not_valid_after_utc
        if not start <= expiry < end:
            return (
                f"the certificate expires {_iso(expiry)}, outside {log.description}'s "
                f"temporal interval [{_iso(start)}, {_iso(end)})"
            )
    return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
