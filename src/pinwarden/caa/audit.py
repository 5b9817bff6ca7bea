"""Audit many domains: what their CAA records allow, and whether the CA that serves
each one today may issue its next certificate (if not, the next renewal fails).

Each name is looked up (RFC 8659 §3) and, unless ``connect=False``, reached over TLS
to read the issuer of the certificate it serves; the issuer is mapped to its CAA
identity (:mod:`pinwarden.caa.identities`) and evaluated. Names are audited
concurrently on one asyncio loop, at most ``concurrency`` at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509

from pinwarden.caa.evaluate import evaluate
from pinwarden.caa.identities import CAIdentity, identify_issuer, load_identities
from pinwarden.caa.lookup import lookup_caa_async
from pinwarden.caa.model import CAALookup, Evaluation, Verdict
from pinwarden.caa.summary import CAASummary, summarize
from pinwarden.checker import verified_chain
from pinwarden.errors import CertificateError

__all__ = ["AuditFinding", "AuditResult", "Severity", "audit", "audit_name"]

Severity = Literal["error", "unknown", "warning", "note"]
_RANK: dict[str, int] = {"error": 3, "unknown": 2, "warning": 1, "note": 0}


@dataclass(frozen=True)
class AuditFinding:
    """One finding: a stable ``code``, its ``severity`` and a sentence."""

    code: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class AuditResult:
    """Everything found for one name."""

    name: str
    lookup: CAALookup
    summary: CAASummary | None
    issuer: str | None
    identity: CAIdentity | None
    evaluations: tuple[Evaluation, ...]
    findings: tuple[AuditFinding, ...]

    @property
    def status(self) -> str:
        """``error``, ``unknown``, ``warning`` or ``ok`` (notes do not count)."""
        worst = max((_RANK[f.severity] for f in self.findings), default=0)
        return {3: "error", 2: "unknown", 1: "warning"}.get(worst, "ok")


@dataclass(frozen=True)
class _Served:
    leaf: x509.Certificate | None
    chain: tuple[bytes, ...]
    error: str | None


async def _served(name: str, port: int, context: ssl.SSLContext, timeout: float) -> _Served:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(name, port, ssl=context, server_hostname=name), timeout
        )
    except ssl.SSLCertVerificationError as exc:
        why = exc.verify_message or str(exc)
        return _Served(None, (), f"{name}:{port}: the certificate does not verify: {why}")
    except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        return _Served(None, (), f"{name}:{port}: no TLS handshake: {reason}")
    try:
        sslobj = writer.get_extra_info("ssl_object")
        chain = tuple(verified_chain(sslobj)) if sslobj is not None else ()
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):  # the peer may have gone first
            await writer.wait_closed()
    del reader
    if not chain:
        return _Served(None, (), f"{name}:{port}: no verified chain")
    return _Served(x509.load_der_x509_certificate(chain[0]), chain[1:], None)


def _renewals(leaf: x509.Certificate, name: str) -> list[tuple[str, bool]]:
    """What renewing the served leaf asks CAA about, for ``name``: ``(name, False)`` for
    the name itself when the leaf names it (or names nothing readable), and
    ``(base, True)`` for each wildcard ``*.base`` of the leaf that covers ``name`` or sits
    right under it — the records of ``base`` govern ``*.base`` (RFC 8659 §3)."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [d.lower().rstrip(".") for d in san.get_values_for_type(x509.DNSName)]
    except (x509.ExtensionNotFound, ValueError):
        names = []
    bases = [n[2:] for n in names if n.startswith("*.")]
    covering = [b for b in bases if b == name or name.partition(".")[2] == b]
    checks: list[tuple[str, bool]] = []
    if name in names or not covering:
        checks.append((name, False))
    checks.extend((base, True) for base in dict.fromkeys(covering))
    return checks


def _judge_current(
    lookup: CAALookup, identity: CAIdentity, wildcard: bool
) -> tuple[tuple[Evaluation, ...], AuditFinding | None]:
    evaluations = tuple(evaluate(lookup, domain, wildcard=wildcard) for domain in identity.caa)
    allowed = [e for e in evaluations if e.verdict is Verdict.ALLOWED]
    if allowed:
        best = next((e for e in allowed if not e.conditions and not e.warnings), allowed[0])
        what = f"*.{lookup.name}" if wildcard else lookup.name
        if best.warnings:
            # Let's Encrypt is the CA the warnings are about (Boulder's stricter reading).
            strict = "let's encrypt" in identity.name.casefold()
            return evaluations, AuditFinding(
                "ca-reads-differently",
                "error" if strict else "warning",
                f"the records allow {identity.name} for {what} by the RFC, but: "
                + "; ".join(best.warnings),
            )
        if best.conditions:
            return evaluations, AuditFinding(
                "renewal-conditional",
                "warning",
                f"{identity.name} may renew {what} only if " + "; or ".join(best.conditions),
            )
        return evaluations, None
    what = f"*.{lookup.name}" if wildcard else lookup.name
    if any(e.verdict is Verdict.UNKNOWN for e in evaluations):
        return evaluations, AuditFinding("dns-error", "unknown", lookup.error or "lookup failed")
    return evaluations, AuditFinding(
        "current-ca-not-allowed",
        "error",
        f"{identity.name} ({', '.join(identity.caa)}) issued the certificate for {what} "
        "served today, but the CAA records do not allow it to issue for it: the next "
        "renewal will fail",
    )


async def audit_name(
    name: str,
    *,
    port: int = 443,
    nameserver: str | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
    identities: Sequence[CAIdentity] | None = None,
    connect: bool = True,
) -> AuditResult:
    """Audit one name (see the module docstring). ``context`` verifies the TLS
    connection (default: the system trust store)."""
    table = tuple(identities) if identities is not None else load_identities()
    lookup = await lookup_caa_async(name, nameserver=nameserver, timeout=timeout)
    findings: list[AuditFinding] = []
    summary: CAASummary | None = None
    if lookup.error is not None:
        findings.append(AuditFinding("dns-error", "unknown", lookup.error))
    else:
        summary = summarize(lookup.records)
        if lookup.found_at is None:
            findings.append(
                AuditFinding(
                    "no-caa",
                    "warning",
                    f"{name} and its parents publish no CAA records: any CA may issue; "
                    "publish records for your CA (`pinwarden caa generate`)",
                )
            )
        elif summary.wildcard_differs:
            findings.append(
                AuditFinding(
                    "wildcard-differs",
                    "note",
                    f"wildcard certificates (*.{lookup.name}) are governed differently: "
                    f"{summary.wildcard.describe()}",
                )
            )
    issuer: str | None = None
    identity: CAIdentity | None = None
    evaluations: tuple[Evaluation, ...] = ()
    if connect:
        served = await _served(name, port, context or ssl.create_default_context(), timeout)
        # With no CAA records at all any CA may renew: not knowing today's CA is then
        # only a note, not an open question.
        open_to_all = lookup.error is None and lookup.found_at is None
        undecided: Severity = "note" if open_to_all else "unknown"
        if served.error is not None or served.leaf is None:
            findings.append(AuditFinding("tls-error", undecided, served.error or "no certificate"))
        else:
            issuer = served.leaf.issuer.rfc4514_string()
            try:
                identity = identify_issuer(served.leaf, chain=served.chain, identities=table)
            except CertificateError:
                identity = None
            if identity is None:
                findings.append(
                    AuditFinding(
                        "unknown-ca",
                        undecided,
                        f"the issuer {issuer!r} is not in the CA identity table: cannot tell "
                        "whether it may renew (add it with --identities)",
                    )
                )
            elif lookup.error is None:
                judged: list[Evaluation] = []
                for base, wildcard in _renewals(served.leaf, lookup.name):
                    governing = lookup
                    if base != lookup.name:
                        governing = await lookup_caa_async(
                            base, nameserver=nameserver, timeout=timeout
                        )
                    found, finding = _judge_current(governing, identity, wildcard)
                    judged.extend(found)
                    if finding is not None:
                        findings.append(finding)
                evaluations = tuple(judged)
    return AuditResult(name, lookup, summary, issuer, identity, evaluations, tuple(findings))


async def audit(
    names: Sequence[str],
    *,
    concurrency: int = 32,
    on_progress: Callable[[int, int], None] | None = None,
    port: int = 443,
    nameserver: str | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
    identities: Sequence[CAIdentity] | None = None,
    connect: bool = True,
) -> list[AuditResult]:
    """Audit every name, at most ``concurrency`` at a time; results in input order."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    table = tuple(identities) if identities is not None else load_identities()
    tls = context or (ssl.create_default_context() if connect else None)
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(name: str) -> AuditResult:
        nonlocal done
        async with gate:
            result = await audit_name(
                name,
                port=port,
                nameserver=nameserver,
                context=tls,
                timeout=timeout,
                identities=table,
                connect=connect,
            )
        done += 1
        if on_progress is not None:
            on_progress(done, len(names))
        return result

    return list(await asyncio.gather(*(one(n) for n in names)))
