"""Certificate Transparency for tests: logs with their own keys that sign real SCTs, and a CA
that issues certificates with embedded SCTs the way a public CA does (precertificate with the
critical poison extension, SCTs over it, final certificate with the SCT list).

>>> from pinwarden.testing import CA
>>> from pinwarden.testing.ct import TestLog, issue_with_scts, log_list_of
>>> logs = [TestLog("Argon"), TestLog("Xenon", operator="Other", key_type="rsa-2048")]
>>> issued = issue_with_scts(CA().intermediate(), "example.com", logs)
>>> log_list = log_list_of(logs)  # verify_embedded(issued.cert, issued.issuer, log_list, now)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtensionOID

from pinwarden.ct._wire import u8, u64, vector
from pinwarden.ct.logs import Log, LogList, LogState, PreviousOperator, log_id_of
from pinwarden.ct.sct import (
    HASH_SHA256,
    SIG_ECDSA,
    SIG_RSA,
    SignedEntry,
    _tlv,
    encode_sct_list,
    issuer_key_hash,
    leaf_index_extension,
    sct_signature_input,
)
from pinwarden.testing.ca import CA, Issued, KeyType, PrivateKey, generate_key

__all__ = [
    "CTIssued",
    "LogKeyType",
    "TestLog",
    "issue_with_scts",
    "log_list_of",
    "timestamp_ms",
    "x509_sct",
]

LogKeyType = Literal["ec-p256", "rsa-2048"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_BACKDATE = dt.timedelta(days=1)
# How long after notBefore the default SCTs are dated: CAs log right after issuing.
_SCT_DELAY = dt.timedelta(hours=1)


def timestamp_ms(when: dt.datetime) -> int:
    """Milliseconds since the epoch of an aware datetime, exactly (no float rounding)."""
    return (when - _EPOCH) // dt.timedelta(milliseconds=1)


class TestLog:
    """A CT log's identity: a key (ECDSA P-256 by default, or RSA 2048), its ``log_id``, a
    description and an operator. It signs SCTs; it keeps no tree. A ``tiled`` log is a
    static-ct-api log: its SCTs carry a ``leaf_index`` extension counting up from 0."""

    __test__ = False  # a class named Test* is not a pytest test class

    def __init__(
        self,
        description: str = "pinwarden test log",
        *,
        operator: str = "pinwarden test operator",
        key_type: LogKeyType = "ec-p256",
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
        url: str | None = None,
        tiled: bool = False,
        mmd: int = 86400,
    ) -> None:
        self.description = description
        self.operator = operator
        self.key: PrivateKey = key or generate_key(key_type)
        self.spki = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.log_id = log_id_of(self.spki)
        slug = "".join(c if c.isalnum() else "-" for c in description.lower())
        self.url = url or f"https://ct.invalid/{slug}/"
        self.tiled = tiled
        self.mmd = mmd
        self.next_leaf_index = 0

    def __repr__(self) -> str:
        return f"TestLog({self.description!r}, operator={self.operator!r})"

    def as_log(
        self,
        *,
        state: LogState | None = LogState.USABLE,
        since: dt.datetime | None = None,
        previous_operators: Iterable[tuple[str, dt.datetime] | PreviousOperator] = (),
        temporal_interval: tuple[dt.datetime, dt.datetime] | None = None,
        url: str | None = None,
        operator: str | None = None,
    ) -> Log:
        """This log as a log-list entry. ``since`` is when it entered ``state`` (default:
        2020-01-01); ``previous_operators`` are ``(name, end_time)`` pairs."""
        base = url or self.url
        return Log(
            description=self.description,
            log_id=self.log_id,
            key=self.spki,
            operator=operator or self.operator,
            mmd=self.mmd,
            state=state,
            state_since=(since or dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
            if state is not None
            else None,
            url=None if self.tiled else base,
            submission_url=base if self.tiled else None,
            monitoring_url=base if self.tiled else None,
            tiled=self.tiled,
            temporal_interval=temporal_interval,
            previous_operators=tuple(
                p if isinstance(p, PreviousOperator) else PreviousOperator(*p)
                for p in previous_operators
            ),
        )

    def sign_sct(
        self,
        entry: SignedEntry,
        timestamp_ms: int,
        extensions: bytes = b"",
        *,
        corrupt: bool = False,
    ) -> bytes:
        """A TLS-encoded v1 SCT over ``entry`` at ``timestamp_ms``. ``corrupt`` flips a bit
        in the last byte of the signature, so it no longer verifies."""
        message = sct_signature_input(entry, timestamp_ms=timestamp_ms, extensions=extensions)
        if isinstance(self.key, rsa.RSAPrivateKey):
            signature = self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())
            algorithm = SIG_RSA
        else:
            signature = self.key.sign(message, ec.ECDSA(hashes.SHA256()))
            algorithm = SIG_ECDSA
        if corrupt:
            signature = signature[:-1] + bytes([signature[-1] ^ 0x01])
        return (
            u8(0)
            + self.log_id
            + u64(timestamp_ms)
            + vector(extensions, 2)
            + u8(HASH_SHA256)
            + u8(algorithm)
            + vector(signature, 2)
        )

    def take_leaf_index(self) -> int:
        """The next leaf index of this (tiled) log, as if one more entry were sequenced."""
        index = self.next_leaf_index
        self.next_leaf_index += 1
        return index


@dataclass(frozen=True)
class CTIssued(Issued):
    """An :class:`Issued` certificate with embedded SCTs, plus the precertificate the logs
    signed and the raw SCTs (in log order)."""

    precert: x509.Certificate | None = None
    scts: tuple[bytes, ...] = ()

    @property
    def issuer(self) -> x509.Certificate:
        """The certificate of the CA that issued it (the embedded SCTs' issuer key hash)."""
        return self.chain[0] if self.chain else self.root


def issue_with_scts(
    ca: CA,
    host: str,
    logs: Sequence[TestLog],
    *,
    days: int = 90,
    sct_times: Sequence[dt.datetime] | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    key_type: KeyType = "ec-p256",
    corrupt: Collection[int] = (),
    extra_names: Sequence[str] = (),
) -> CTIssued:
    """A certificate for ``host`` issued by ``ca`` with one embedded SCT per log in ``logs``.

    The lifetime is ``days`` from ``not_before`` (default: a day ago) unless ``not_after`` is
    given. ``sct_times`` dates each SCT (default: an hour after ``not_before``; any time,
    the future included). ``corrupt`` lists the positions in ``logs`` whose SCT gets a
    flipped signature bit. Tiled logs add a ``leaf_index`` extension.
    """
    if sct_times is not None and len(sct_times) != len(logs):
        raise ValueError(f"{len(sct_times)} SCT times for {len(logs)} logs")
    leaf_key = generate_key(key_type)
    start = not_before or (dt.datetime.now(dt.timezone.utc) - _BACKDATE)
    end = not_after or (start + dt.timedelta(days=days))
    times = list(sct_times) if sct_times is not None else [start + _SCT_DELAY] * len(logs)
    builder = ca.leaf_builder((host, *extra_names), key=leaf_key, not_before=start, not_after=end)
    # RFC 6962 section 3.1: the precertificate is the final certificate with the poison
    # extension where the SCT list will go; the logs sign its TBS without the poison.
    precert = ca.sign(builder.add_extension(x509.PrecertPoison(), critical=True))
    tbs = ca.sign(builder).tbs_certificate_bytes
    entry = SignedEntry.precert(tbs, issuer_key_hash(ca.cert))
    scts = tuple(
        log.sign_sct(
            entry,
            timestamp_ms(when),
            leaf_index_extension(log.take_leaf_index()) if log.tiled else b"",
            corrupt=position in corrupt,
        )
        for position, (log, when) in enumerate(zip(logs, times, strict=True))
    )
    extension = x509.UnrecognizedExtension(
        ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, _tlv(0x04, encode_sct_list(scts))
    )
    cert = ca.sign(builder.add_extension(extension, critical=False))
    return CTIssued(cert, leaf_key, ca.chain, ca.root.cert, precert=precert, scts=scts)


def log_list_of(logs: Iterable[TestLog | Log], *, source: str = "<test kit>") -> LogList:
    """A log list of test logs (each as :meth:`TestLog.as_log` with its defaults: usable)
    and ready-made :class:`Log` entries."""
    return LogList(
        tuple(log.as_log() if isinstance(log, TestLog) else log for log in logs), source=source
    )


def x509_sct(log: TestLog, cert: x509.Certificate, when: dt.datetime) -> bytes:
    """An SCT over the final certificate (``x509_entry``), as a TLS server or an OCSP
    response would deliver it."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return log.sign_sct(SignedEntry.x509(der), timestamp_ms(when))
