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
import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any

from pinwarden.checker import HAS_CHAIN_API, Connection, PinChecker, served_chain, verified_chain
from pinwarden.errors import CertificateError, PinValidationError, UnsupportedPlatformError
from pinwarden.policy import Policy
from pinwarden.reports import Reporter, Violation
from pinwarden.verify import Verdict

__all__ = ["PinnedSSLContext", "create_context", "served_chain", "verified_chain"]


# The stdlib classes as they were when pinwarden was imported: the pinned classes derive
# from them, and a library that later replaces ssl.SSLContext (truststore's
# inject_into_ssl, eventlet, gevent) breaks the stdlib's own property setters.
_STDLIB_CONTEXT = ssl.SSLContext
# The C-level switches, set directly: the stdlib's Python setters look SSLContext up as a
# module global, which recurses once that global was replaced.
_CHECK_HOSTNAME: Any = vars(_ssl._SSLContext)["check_hostname"]
_VERIFY_MODE: Any = vars(_ssl._SSLContext)["verify_mode"]


def _checker(conn: Connection) -> tuple[PinChecker, ssl.SSLContext]:
    context = conn.context
    checker = getattr(context, "_pinwarden_checker", None)
    if not isinstance(checker, PinChecker):
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
        except Exception as exc:
            # Anything unforeseen in the check fails closed, as the certificate error
            # every client knows how to report.
            error = PinValidationError(f"the pin check could not complete: {exc!r}")
            self._pin_result = error
            self._pin_fail()
            raise error from exc

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
    Create it with :func:`create_context`.

    Turning verification off on it (``check_hostname = False`` or ``verify_mode =
    CERT_NONE``) is allowed, as some libraries do it, but from then on every connection
    is refused, even if it is turned back on: CPython copies those switches into each
    connection when it is created, and under CERT_NONE OpenSSL still reports the chain
    its failed verification built.
    """

    sslsocket_class = PinnedSSLSocket
    sslobject_class = PinnedSSLObject
    _pinwarden_checker: PinChecker
    _pinwarden_verification_off = False

    @property
    def policy(self) -> Policy:
        """The (immutable) pin policy of this context."""
        return self._pinwarden_checker.policy

    @property
    def check_hostname(self) -> bool:
        return bool(_CHECK_HOSTNAME.__get__(self))

    @check_hostname.setter
    def check_hostname(self, value: bool) -> None:
        _CHECK_HOSTNAME.__set__(self, value)
        if not value:
            self._pinwarden_verification_off = True

    @property  # type: ignore[override]
    def verify_mode(self) -> ssl.VerifyMode:
        return ssl.VerifyMode(_VERIFY_MODE.__get__(self))

    @verify_mode.setter
    def verify_mode(self, value: ssl.VerifyMode) -> None:
        _VERIFY_MODE.__set__(self, value)
        if value == ssl.CERT_NONE:
            self._pinwarden_verification_off = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        sock = super().wrap_socket(*args, **kwargs)
        if not isinstance(sock, PinnedSSLSocket):
            # sslsocket_class was replaced on this instance, or by a patched ssl module.
            sock.close()
            raise PinValidationError("the context no longer makes pinned sockets; refused")
        return sock

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        obj = super().wrap_bio(*args, **kwargs)
        if not isinstance(obj, PinnedSSLObject):
            raise PinValidationError("the context no longer makes pinned connections; refused")
        return obj


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


def _refuse_patched_ssl() -> None:
    patched = [
        cls.__bases__[-1]
        for cls in (PinnedSSLContext, PinnedSSLSocket, PinnedSSLObject)
        if cls.__bases__[-1].__module__ != "ssl"
    ]
    if patched or ssl.SSLContext is not _STDLIB_CONTEXT:
        where = patched[0] if patched else ssl.SSLContext
        raise UnsupportedPlatformError(
            f"the ssl module was patched ({where.__module__}.{where.__qualname__} replaces "
            "the standard class: truststore.inject_into_ssl, eventlet or gevent monkey "
            "patching); pinned connections could bypass the pin check, so pinwarden "
            "refuses. Use pinwarden's context without that patching."
        )


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
    if not HAS_CHAIN_API:
        raise UnsupportedPlatformError(
            f"Python {sys.version.split()[0]} exposes no verified certificate chain "
            "(needs CPython 3.10+ with OpenSSL); pins cannot be checked safely"
        )
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a pinwarden.Policy, got {type(policy).__name__}")
    _refuse_patched_ssl()
    context = PinnedSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # A TLS 1.2 renegotiation could swap the server's chain after the pin check.
    context.options |= ssl.OP_NO_RENEGOTIATION
    # Names are checked against subjectAltName only, as browsers and urllib3 do.
    context.hostname_checks_common_name = False
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
    context._pinwarden_checker = PinChecker(
        policy, on_violation, reporter if send_reports else None, clock or _utcnow
    )
    return context
