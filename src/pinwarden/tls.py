"""One :class:`ssl.SSLContext` that adds pin checks to full CA and hostname validation.

The check runs in ``do_handshake`` of the context's ``sslsocket_class`` (blocking clients:
requests, urllib3, urllib, http.client, websockets' sync client) and ``sslobject_class``
(asyncio streams, aiohttp, httpx/anyio, websockets' asyncio client), right after OpenSSL
finished the handshake and before any application byte is written or read: ``read``,
``write`` and ``send`` run the handshake and the check first when a caller skipped
``do_handshake`` (``do_handshake_on_connect=False``, truststore#204).
"""

from __future__ import annotations

import _ssl
import contextlib
import datetime as dt
import logging
import ssl
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from pinwarden.errors import CertificateError, PinValidationError, UnsupportedPlatformError
from pinwarden.hosts import normalize_host
from pinwarden.policy import Policy
from pinwarden.reports import Reporter, Violation, build_report
from pinwarden.verify import Outcome, Verdict, evaluate

__all__ = ["PinnedSSLContext", "create_context", "served_chain", "verified_chain"]

logger = logging.getLogger("pinwarden")

# Probe once which chain API this interpreter has (DESIGN.md pitfall 3): public
# get_verified_chain() since 3.13 (DER bytes), private _sslobj.get_verified_chain() on
# 3.10-3.12 (_ssl.Certificate objects, or None).
_PUBLIC_CHAIN_API = hasattr(ssl.SSLObject, "get_verified_chain")
_PRIVATE_CHAIN_API = hasattr(getattr(_ssl, "_SSLSocket", None), "get_verified_chain")
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


class _PinChecker:
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
        # CERT_REQUIRED for a client), so one cheap attribute read covers both switches.
        if not context.check_hostname:
            raise PinValidationError(
                "certificate or hostname verification was turned off on this context "
                f"(verify_mode={context.verify_mode.name}, "
                f"check_hostname={context.check_hostname}); "
                "pinwarden adds pins to CA validation and refuses to pin without it"
            )
        if not conn.server_hostname:
            raise PinValidationError("no server_hostname: cannot tell which pins apply")
        hostname = normalize_host(conn.server_hostname)
        match = self.policy.rule_for(hostname)
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
        report = build_report(verdict, port=port, served_chain=served_chain(conn), now=self.clock())
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


def _checker(conn: Connection) -> tuple[_PinChecker, ssl.SSLContext]:
    context = conn.context
    checker = getattr(context, "_pinwarden_checker", None)
    if not isinstance(checker, _PinChecker):
        raise PinValidationError(
            "this connection's context was not made by pinwarden.create_context"
        )
    return checker, context


class _PinnedConnection:
    """Shared logic of the two connection classes. ``_pin_result`` is None before the
    check, the Verdict after a pass, the exception after a failure."""

    _pin_result: Verdict | PinValidationError | None = None

    def _pin_check(self: Any) -> None:
        result = self._pin_result
        if isinstance(result, PinValidationError):
            raise result
        if result is not None or self.server_side:
            return
        try:
            checker, context = _checker(self)
            self._pin_result = checker.check(self, context)
        except PinValidationError as exc:
            self._pin_result = exc
            self._pin_fail()
            raise

    def _pin_fail(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def pin_verdict(self) -> Verdict | None:
        """The pin verdict of this connection once its handshake completed."""
        result = self._pin_result
        return result if isinstance(result, Verdict) else None


class PinnedSSLSocket(_PinnedConnection, ssl.SSLSocket):
    """An :class:`ssl.SSLSocket` that checks pins when its handshake completes."""

    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        self._pin_check()

    def _pin_fail(self) -> None:
        with contextlib.suppress(OSError):
            self.close()

    def _pin_guard(self) -> None:
        if (
            self._pin_result is None
            and getattr(self, "_sslobj", None) is not None
            and not self.server_side
        ):
            self.do_handshake()
        elif isinstance(self._pin_result, PinValidationError):
            raise self._pin_result

    def read(self, len: int = 1024, buffer: Any = None) -> Any:  # noqa: A002 - ssl's own name
        self._pin_guard()
        return super().read(len, buffer)

    def write(self, data: Any) -> int:
        self._pin_guard()
        return super().write(data)

    def send(self, data: Any, flags: int = 0) -> int:
        self._pin_guard()
        return super().send(data, flags)


class PinnedSSLObject(_PinnedConnection, ssl.SSLObject):
    """An :class:`ssl.SSLObject` (memory BIO, used by asyncio and anyio) that checks
    pins when its handshake completes."""

    def do_handshake(self) -> None:
        super().do_handshake()
        self._pin_check()

    def _pin_fail(self) -> None:
        # The transport belongs to the caller (asyncio, anyio), which aborts it on the
        # exception; refusing every later read and write is what is ours to do.
        pass

    def _pin_guard(self) -> None:
        if self._pin_result is None and not self.server_side:
            self.do_handshake()
        elif isinstance(self._pin_result, PinValidationError):
            raise self._pin_result

    def read(self, len: int = 1024, buffer: Any = None) -> Any:  # noqa: A002
        self._pin_guard()
        return super().read(len, buffer)

    def write(self, data: Any) -> int:
        self._pin_guard()
        return super().write(data)


class PinnedSSLContext(ssl.SSLContext):
    """An :class:`ssl.SSLContext` whose connections check pins after CA validation.
    Create it with :func:`create_context`."""

    sslsocket_class = PinnedSSLSocket
    sslobject_class = PinnedSSLObject
    _pinwarden_checker: _PinChecker

    @property
    def policy(self) -> Policy:
        """The (immutable) pin policy of this context."""
        return self._pinwarden_checker.policy


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


_DEFAULT_REPORTER: Reporter | None = None
_DEFAULT_REPORTER_LOCK = threading.Lock()


def _default_reporter() -> Reporter:
    global _DEFAULT_REPORTER
    with _DEFAULT_REPORTER_LOCK:
        if _DEFAULT_REPORTER is None:
            _DEFAULT_REPORTER = Reporter()
        return _DEFAULT_REPORTER


def create_context(
    policy: Policy,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
    on_violation: Callable[[Violation], object] | None = None,
    reporter: Reporter | None = None,
    send_reports: bool = True,
    clock: Callable[[], dt.datetime] | None = None,
) -> PinnedSSLContext:
    """An SSL client context with full CA and hostname validation plus pin checks.

    Trust anchors come from ``cafile``/``capath``/``cadata`` when given, else from the
    system store. ``on_violation`` is called (in the connecting thread; exceptions are
    logged and ignored) for every pin violation, blocked or report-only. Reports for
    rules with a ``report_uri`` go through ``reporter`` (default: one shared background
    :class:`~pinwarden.reports.Reporter` using the system trust store) unless
    ``send_reports`` is false. ``clock`` returns the current aware time (for tests).

    Raises :class:`~pinwarden.errors.UnsupportedPlatformError` on a Python without a
    verified-chain API, :class:`~pinwarden.errors.CertificateError` for unreadable CAs.
    """
    if not (_PUBLIC_CHAIN_API or _PRIVATE_CHAIN_API):
        raise UnsupportedPlatformError(
            f"Python {sys.version.split()[0]} exposes no verified certificate chain "
            "(needs CPython 3.10+ with OpenSSL); pins cannot be checked safely"
        )
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a pinwarden.Policy, got {type(policy).__name__}")
    context = PinnedSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if sys.version_info >= (3, 13):
        # Same strictness as ssl.create_default_context() on this Python.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
    if cafile is None and capath is None and cadata is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        try:
            context.load_verify_locations(cafile, capath, cadata)
        except (OSError, ssl.SSLError, ValueError, TypeError) as exc:
            what = cafile or capath or "cadata"
            raise CertificateError(f"cannot load trust anchors from {what}: {exc}") from None
    if reporter is None and send_reports:
        reporter = _default_reporter()
    context._pinwarden_checker = _PinChecker(
        policy, on_violation, reporter if send_reports else None, clock or _utcnow
    )
    return context
