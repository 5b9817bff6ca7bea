"""The chain probe: connect to a TLS server and read the chain it serves and the chain
OpenSSL verifies from it. Used by ``pinwarden inspect`` (and later by ``check``)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from dataclasses import dataclass

from pinwarden.certs import CertInfo, describe_chain
from pinwarden.errors import CertificateError, InputError, NetworkError
from pinwarden.tls import served_chain, verified_chain

__all__ = ["ProbeResult", "parse_target", "probe"]


def parse_target(target: str, default_port: int = 443) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address → (host, port)."""
    text = target.strip()
    if "://" in text:
        raise InputError(f"{target!r}: give HOST[:PORT], not a URL")
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise InputError(f"{target!r}: missing ']' after an IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise InputError(f"{target!r}: expected ':PORT' after ']'")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not host or any(c.isspace() for c in host):
        raise InputError(f"{target!r}: no host name")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InputError(f"{target!r}: port {port_text!r} is not a number from 1 to 65535")
        return host, int(port_text)
    return host, default_port


@dataclass(frozen=True)
class ProbeResult:
    """What a handshake showed. ``verified_chain`` is None when verification failed, with
    the reason in ``verification_error`` (``served_chain`` is then read from a second,
    unverified handshake, for display only)."""

    host: str
    port: int
    servername: str
    address: str
    tls_version: str
    cipher: str
    served_chain: list[CertInfo]
    verified_chain: list[CertInfo] | None
    verification_error: str | None

    @property
    def verified(self) -> bool:
        return self.verified_chain is not None

    def to_json(self, now: dt.datetime) -> dict[str, object]:
        """The documented ``inspect --json`` schema (docs/json.md)."""
        return {
            "host": self.host,
            "port": self.port,
            "servername": self.servername,
            "address": self.address,
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "verified": self.verified,
            "verification_error": self.verification_error,
            "verified_chain": [c.to_json(now) for c in self.verified_chain]
            if self.verified_chain is not None
            else None,
            "served_chain": [c.to_json(now) for c in self.served_chain],
        }


def _client_context(cafile: str | None, cadata: str | None, verify: bool) -> ssl.SSLContext:
    if not verify:
        # Display only: this handshake's chain is never trusted or pinned against.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=cafile, cadata=cadata)
    except (OSError, ssl.SSLError) as exc:
        raise CertificateError(f"cannot load CA certificates {cafile or ''}: {exc}") from None


def _handshake(
    context: ssl.SSLContext, address: str, port: int, servername: str, timeout: float
) -> ssl.SSLSocket:
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except socket.gaierror as exc:
        raise NetworkError(f"cannot resolve {address}: {exc.strerror}") from None
    except OSError as exc:
        raise NetworkError(f"cannot connect to {address}:{port}: {exc.strerror or exc}") from None
    try:
        return context.wrap_socket(sock, server_hostname=servername)
    except ssl.SSLCertVerificationError:
        sock.close()
        raise
    except (ssl.SSLError, OSError) as exc:
        sock.close()
        raise NetworkError(f"TLS handshake with {address}:{port} failed: {exc}") from None


def probe(
    host: str,
    port: int = 443,
    *,
    servername: str | None = None,
    connect: str | None = None,
    cafile: str | None = None,
    cadata: str | None = None,
    timeout: float = 10.0,
) -> ProbeResult:
    """Handshake with ``connect`` (default: ``host``) on ``port``, sending and verifying
    ``servername`` (default: ``host``) against the system trust store, or ``cafile`` /
    ``cadata`` (PEM). Raises NetworkError when no handshake completes."""
    name = servername or host
    address = connect or host
    verified: list[CertInfo] | None = None
    error: str | None = None
    try:
        sock = _handshake(_client_context(cafile, cadata, True), address, port, name, timeout)
    except ssl.SSLCertVerificationError as exc:
        error = exc.verify_message or str(exc)
        sock = _handshake(_client_context(None, None, False), address, port, name, timeout)
    with sock:
        served = describe_chain(served_chain(sock), ends_at_anchor=False)
        if error is None:
            verified = describe_chain(verified_chain(sock), ends_at_anchor=True)
        peer = sock.getpeername()[0]
        cipher = sock.cipher()
        return ProbeResult(
            host=host,
            port=port,
            servername=name,
            address=str(peer),
            tls_version=sock.version() or "",
            cipher=cipher[0] if cipher else "",
            served_chain=served,
            verified_chain=verified,
            verification_error=error,
        )
