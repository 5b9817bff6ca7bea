"""The pin check a pinned connection runs when its handshake completes, and the
per-context state behind it: where violations go, and the chains verified in full
handshakes (a resumed session carries none)."""

from __future__ import annotations

import _ssl
import datetime as dt
import logging
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from pinwarden.errors import PinValidationError
from pinwarden.hosts import is_plain_host, normalize_host
from pinwarden.policy import Policy
from pinwarden.reports import Reporter, Violation, build_report
from pinwarden.verify import Outcome, Verdict, evaluate

__all__ = ["HAS_CHAIN_API", "Connection", "PinChecker", "served_chain", "verified_chain"]

logger = logging.getLogger("pinwarden")

# Probe once which chain API this interpreter has (DESIGN.md pitfall 3): public
# get_verified_chain() since 3.13 (DER bytes), private _sslobj.get_verified_chain() on
# 3.10-3.12 (_ssl.Certificate objects, or None).
_PUBLIC_CHAIN_API = hasattr(ssl.SSLObject, "get_verified_chain")
_PRIVATE_CHAIN_API = hasattr(getattr(_ssl, "_SSLSocket", None), "get_verified_chain")
HAS_CHAIN_API = _PUBLIC_CHAIN_API or _PRIVATE_CHAIN_API
_DER = getattr(_ssl, "ENCODING_DER", 2)
_RESUMPTION_CACHE = 512
_EXPIRED_LOG_EVERY = 3600.0

Connection = ssl.SSLSocket | ssl.SSLObject


def _chain(conn: Connection, verified: bool) -> list[bytes]:
    if _PUBLIC_CHAIN_API:
        method = "get_verified_chain" if verified else "get_unverified_chain"
        return list(getattr(conn, method)())
    sslobj = getattr(conn, "_sslobj", None)
    if sslobj is None:
        return []
    certs = getattr(sslobj, "get_verified_chain" if verified else "get_unverified_chain")()
    return [cert.public_bytes(_DER) for cert in certs or ()]


def verified_chain(conn: Connection) -> list[bytes]:
    """DER certificates of the chain OpenSSL verified (leaf first, trust anchor last);
    empty on a resumed session or when verification was off."""
    return _chain(conn, verified=True)


def served_chain(conn: Connection) -> list[bytes]:
    """DER certificates exactly as the server sent them (untrusted)."""
    return _chain(conn, verified=False)


class PinChecker:
    """Per-context state: the policy, where violations go, and the verified chains of
    earlier full handshakes for resumed sessions (which carry no verified chain)."""

    def __init__(
        self,
        policy: Policy,
        on_violation: Callable[[Violation], object] | None,
        reporter: Reporter | None,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.policy = policy
        self.on_violation = on_violation
        self.reporter = reporter
        self.clock = clock
        self._lock = threading.Lock()
        self._chains: OrderedDict[tuple[str, bytes], list[bytes]] = OrderedDict()
        self._expired_logged: dict[str, float] = {}

    def check(self, conn: Connection, context: ssl.SSLContext) -> Verdict:
        # check_hostname=True is only possible with verification on (CERT_OPTIONAL means
        # CERT_REQUIRED for a client), so one cheap attribute read covers both switches;
        # the flag remembers that they were ever off (see PinnedSSLContext).
        if getattr(context, "_pinwarden_verification_off", False) or not context.check_hostname:
            raise PinValidationError(
                "certificate or hostname verification was turned off on this context "
                f"(now verify_mode={context.verify_mode.name}, "
                f"check_hostname={context.check_hostname}); pinwarden adds pins to CA "
                "validation and refuses to pin on a context where it was ever switched off"
            )
        if not conn.server_hostname:
            raise PinValidationError("no server_hostname: cannot tell which pins apply")
        hostname = normalize_host(conn.server_hostname)
        if not is_plain_host(hostname):
            raise PinValidationError(
                f"server_hostname {conn.server_hostname!r} is neither a DNS name nor an IP "
                "address in a form pinwarden can match to a rule; refused"
            )
        match = self.policy.rule_for_normalized(hostname)
        if match is None:
            return Verdict(hostname, Outcome.NOT_PINNED, ())
        chain = verified_chain(conn)
        resumed = bool(conn.session_reused)
        if chain:
            if not resumed:
                self._remember((hostname, chain[0]), chain)
        elif resumed:
            # CPython gives no verified chain on a resumed session (openssl#13673): use
            # the chain OpenSSL verified for this leaf in the full handshake that made
            # the session, or fail closed.
            chain = self._recall((hostname, conn.getpeercert(binary_form=True) or b""))
        now = self.clock() if match.rule.expires_at is not None else None
        verdict = evaluate(match, hostname, tuple(chain), now)
        if verdict.outcome is Outcome.EXPIRED:
            self._log_expired(verdict)
        elif verdict.violation:
            self._violation(conn, verdict, resumed)
        return verdict

    def _remember(self, key: tuple[str, bytes], chain: list[bytes]) -> None:
        if self._chains.get(key) == chain:
            return  # the usual case, the same server again: no lock, no reordering
        with self._lock:
            self._chains[key] = chain
            self._chains.move_to_end(key)
            while len(self._chains) > _RESUMPTION_CACHE:
                self._chains.popitem(last=False)

    def _recall(self, key: tuple[str, bytes]) -> list[bytes]:
        with self._lock:
            return list(self._chains.get(key, ()))

    def _log_expired(self, verdict: Verdict) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._expired_logged.get(verdict.hostname)
            if last is not None and now - last < _EXPIRED_LOG_EVERY:
                return
            if len(self._expired_logged) > 10_000:
                self._expired_logged.clear()
            self._expired_logged[verdict.hostname] = now
        logger.warning("pinwarden: %s", verdict.message())

    def _violation(self, conn: Connection, verdict: Verdict, resumed: bool) -> None:
        message = verdict.message()
        if verdict.outcome is Outcome.NO_CHAIN and resumed:
            message += (
                " (resumed TLS session: OpenSSL keeps no verified chain for it and no "
                "verified handshake with this certificate is on record; open a new session)"
            )
        blocked = not verdict.allowed
        try:
            port = conn.getpeername()[1] if isinstance(conn, ssl.SSLSocket) else None
        except OSError:
            port = None
        served = served_chain(conn)
        report = build_report(verdict, port=port, served_chain=served, now=self.clock())
        if self.on_violation is not None:
            try:
                self.on_violation(Violation(verdict, report, blocked))
            except Exception:
                logger.exception("pinwarden: on_violation callback failed (ignored)")
        uri = verdict.rule.report_uri if verdict.rule else None
        if uri and self.reporter is not None:
            self.reporter.submit(uri, report)
        if blocked:
            raise PinValidationError(message, verdict)
        logger.warning("pinwarden: report-only: %s", message)
