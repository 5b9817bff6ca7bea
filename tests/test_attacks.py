"""The attack suite: what an attacker (or a careless operator) tries, and must not get
past the pinned context. Real TLS servers on 127.0.0.1, real clients."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

import pinwarden
import pinwarden.checker
from conftest import World
from pinwarden import Outcome, PinValidationError
from pinwarden.testing import CA, TLSServer
from pinwarden.tls import served_chain
from tls_support import connect, get, memory_handshake


def _http_client(context: ssl.SSLContext, server: TLSServer) -> None:
    conn = http.client.HTTPSConnection("localhost", server.port, context=context, timeout=10)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
    finally:
        conn.close()


def _httpx_sync(context: ssl.SSLContext, server: TLSServer) -> None:
    with httpx.Client(verify=context) as client:
        client.get(server.url()).raise_for_status()


def _asyncio_streams(context: ssl.SSLContext, server: TLSServer) -> None:
    async def go() -> None:
        reader, writer = await asyncio.open_connection("localhost", server.port, ssl=context)
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            await writer.drain()
            await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(ssl.SSLError, OSError):
                await writer.wait_closed()

    asyncio.run(go())


TLS12 = ssl.TLSVersion.TLSv1_2

CLIENTS: dict[str, Callable[[ssl.SSLContext, TLSServer], None]] = {
    "http.client": _http_client,
    "httpx": _httpx_sync,
    "asyncio": _asyncio_streams,
}


def _root_cause(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__]
    return seen


def _blocked_by(exc: BaseException, kind: type[BaseException]) -> BaseException:
    for item in _root_cause(exc):
        if isinstance(item, kind):
            return item
    raise AssertionError(f"{exc!r} was not caused by {kind.__name__}")


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_padded_chain_from_another_trusted_ca_is_blocked(world: World, client: str) -> None:
    """(a) The attacker holds a valid certificate from another trusted CA and appends
    the pinned intermediate and root to what it serves (OkHttp CVE-2016-2402)."""
    forged = world.other_root.intermediate("attacker's CA").issue("localhost")
    policy = world.policy(world.intermediate.pin, world.root.pin)
    context = world.context(policy)
    with TLSServer(forged, extra=[world.intermediate.cert, world.root.cert]) as server:
        # The served chain really contains the pinned certificates...
        probe = ssl.create_default_context(cadata=world.cadata)
        with connect(probe, server) as tls:
            served = served_chain(tls)
        assert any(world.intermediate.pin.matches(der) for der in served)
        # ...but the verified chain does not, so the pinned client refuses.
        with pytest.raises((OSError, httpx.HTTPError)) as info:
            CLIENTS[client](context, server)
        error = _blocked_by(info.value, PinValidationError)
        assert isinstance(error, PinValidationError) and error.verdict is not None
        assert not any(world.intermediate.pin.matches(der) for der in error.verdict.chain)
        assert server.requests == []


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_right_pin_wrong_hostname_is_blocked(world: World, client: str) -> None:
    """(b) A certificate under the pinned CA, but for another name."""
    elsewhere = world.intermediate.issue("other.example.test")
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    with TLSServer(elsewhere) as server:
        with pytest.raises((OSError, httpx.HTTPError)) as info:
            CLIENTS[client](context, server)
        error = _blocked_by(info.value, ssl.SSLCertVerificationError)
        assert "hostname" in str(error).lower() or "match" in str(error).lower()
        assert server.requests == []


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_right_pin_untrusted_ca_is_blocked(world: World, client: str) -> None:
    """(c) Pins alone never make a chain trusted: a self-made CA whose key is pinned
    is still refused when the client does not trust it."""
    untrusted = CA("untrusted but pinned")
    leaf = untrusted.intermediate().issue("localhost")
    policy = world.policy(untrusted.pin, leaf.pin)
    context = world.context(policy)
    with TLSServer(leaf) as server:
        with pytest.raises((OSError, httpx.HTTPError)) as info:
            CLIENTS[client](context, server)
        error = _blocked_by(info.value, ssl.SSLCertVerificationError)
        assert not isinstance(error, PinValidationError)  # OpenSSL refused first
        assert server.requests == []


def test_resumed_session_without_a_verified_handshake_on_record_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(d) A resumed session whose full handshake is no longer on record (evicted) is
    refused: it is never let through unchecked."""
    monkeypatch.setattr(pinwarden.checker, "_RESUMPTION_CACHE", 1)
    policy = world.policy(
        world.intermediate.pin, world.backup_pin, hosts=["localhost", "127.0.0.1"]
    )
    context = world.context(policy)
    with TLSServer(world.leaf, maximum_version=TLS12) as server:
        with connect(context, server) as first:
            get(first)
            session = first.session
        with connect(context, server, hostname="127.0.0.1") as other:
            get(other)  # evicts localhost's record from the one-entry cache
        with pytest.raises(PinValidationError, match="resumed TLS session") as info:
            connect(context, server, session=session)
        assert info.value.verdict is not None
        assert info.value.verdict.outcome is Outcome.NO_CHAIN


def test_session_from_a_refused_handshake_cannot_buy_a_pass(world: World) -> None:
    """(d) A resumed session has no verified chain. A caller driving memory BIOs (as
    asyncio does) can still read .session after the pin check refused the handshake;
    resuming it must be refused again, checked against the chain verified when the
    session was made."""
    context = world.context(world.policy(world.backup_pin, world.other_root.pin))
    server_context = world.leaf.server_context(maximum_version=TLS12)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = context.wrap_bio(c_in, c_out, server_hostname="localhost")
    srv = server_context.wrap_bio(s_in, s_out, server_side=True)
    failed = False
    for _ in range(10):
        try:
            client.do_handshake()
        except ssl.SSLWantReadError:
            pass
        except PinValidationError:
            failed = True
            break
        s_in.write(c_out.read())
        with contextlib.suppress(ssl.SSLWantReadError):
            srv.do_handshake()
        c_in.write(s_out.read())
    assert failed
    session = client.session
    assert session is not None
    resumed: list[ssl.SSLObject] = []
    with pytest.raises(PinValidationError) as info:
        memory_handshake(context, server_context, session=session, created=resumed)
    assert resumed[0].session_reused
    assert info.value.verdict is not None
    assert info.value.verdict.outcome is Outcome.MISMATCH
    # Reads and writes on the refused object keep raising the pin error.
    with pytest.raises(PinValidationError):
        client.write(b"GET / HTTP/1.1\r\n\r\n")


def test_fingerprint_mistaken_for_a_pin_fails_closed_and_says_why(world: World) -> None:
    der = world.intermediate.cert.public_bytes(serialization.Encoding.DER)
    fingerprint = pinwarden.Pin("sha256", hashlib.sha256(der).digest())
    context = world.context(world.policy(fingerprint, world.backup_pin))
    with TLSServer(world.leaf) as server, pytest.raises((OSError, httpx.HTTPError)) as info:
        _http_client(context, server)
    error = _blocked_by(info.value, PinValidationError)
    assert "fingerprint" in str(error)
    assert str(world.intermediate.pin) in str(error)


BROKEN_POLICIES = {
    "one pin": ('[[pin]]\nhosts=["localhost"]\npins=["sha256/{p}"]\n', "backup"),
    "typo in a key": (
        '[[pin]]\nhost=["localhost"]\npins=["sha256/{p}","sha256/{q}"]\n',
        "unknown key",
    ),
    "bad pin": ('[[pin]]\nhosts=["localhost"]\npins=["sha256/abc","sha256/{q}"]\n', "pins[0]"),
    "bad mode": (
        '[[pin]]\nhosts=["localhost"]\npins=["sha256/{p}","sha256/{q}"]\nmode="audit"\n',
        "mode",
    ),
    "not toml": ("[[pin]\nhosts=", "TOML"),
    "no rules": ("", "no [[pin]] rules"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_POLICIES))
def test_a_broken_policy_never_becomes_a_context(world: World, tmp_path: Path, case: str) -> None:
    """(e) A broken policy file is an error naming the file and the key — never a
    context that silently pins nothing."""
    text, fragment = BROKEN_POLICIES[case]
    path = tmp_path / "pins.toml"
    path.write_text(
        text.replace("{p}", world.intermediate.pin.base64).replace("{q}", world.backup_pin.base64)
    )
    with pytest.raises(pinwarden.PolicyError) as info:
        world.context(pinwarden.Policy.load(path))
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize("spelling", ["::1", "0:0:0:0:0:0:0:1", "0000::0001"])
def test_every_spelling_of_a_pinned_address_is_pinned(world: World, spelling: str) -> None:
    """A rule for an IP address covers every way of writing it: a client that writes
    the address differently must not slip past the rule."""
    leaf = world.intermediate.issue("::1")
    context = world.context(world.policy(world.backup_pin, world.other_root.pin, hosts=["::1"]))
    with TLSServer(leaf, host="::1") as server:
        sock = socket.create_connection(("::1", server.port), timeout=10)
        with pytest.raises(PinValidationError):
            context.wrap_socket(sock, server_hostname=spelling)
        sock.close()
        assert server.requests == []


@pytest.mark.parametrize(
    "spelling",
    [
        "0127.0.0.1",
        "127.0.0.0001",
        "+127.0.0.1",
        "127.-0.0.1",
        "127. 0.0.1",
        "127.000.000.001",
        "127.0.0.1 anything.example",
    ],
)
def test_openssl_ipv4_spellings_are_pinned(world: World, spelling: str) -> None:
    """OpenSSL reads these as 127.0.0.1 when it verifies the IP SAN; the rule for
    127.0.0.1 must apply to them too (found by review: they went unpinned)."""
    context = world.context(
        world.policy(world.backup_pin, world.other_root.pin, hosts=["127.0.0.1"])
    )
    with TLSServer(world.leaf) as server:
        with pytest.raises(PinValidationError):
            connect(context, server, hostname=spelling)
        assert server.requests == []


@pytest.mark.parametrize("name", ["1.2.3", "host.123", "10.0.0.1.5"])
def test_names_that_cannot_be_matched_reliably_are_refused(world: World, name: str) -> None:
    """A server_hostname pinwarden cannot map to one canonical name is refused, even
    when no rule would apply, rather than risk a spelling that escapes a rule."""
    context = world.context(world.policy(world.backup_pin, world.other_root.pin, hosts=["x.test"]))
    # The certificate does name it: OpenSSL's hostname check passes, pinwarden's refuses.
    with TLSServer(world.intermediate.issue(name)) as server:
        with pytest.raises(PinValidationError, match="neither a DNS name nor an IP"):
            connect(context, server, hostname=name)
        assert server.requests == []


def test_turning_verification_off_and_on_again_leaves_the_context_refusing(world: World) -> None:
    """CPython copies check_hostname into a connection when it is created: a connection
    made while it was off skips the hostname check even if it is back on by the time
    of the handshake. A certificate the pinned CA issued for another name would then
    pass; the context must refuse from the moment verification was switched off."""
    elsewhere = world.intermediate.issue("evil.example")
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    with TLSServer(elsewhere) as server:
        context.check_hostname = False
        tls = connect(context, server, do_handshake_on_connect=False)  # made while off
        context.check_hostname = True
        with pytest.raises(PinValidationError, match="ever switched off"):
            tls.do_handshake()
        tls.close()
        assert server.requests == []


def test_verify_mode_off_marks_the_context_too(world: World) -> None:
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED  # writing "on" is harmless (urllib3 does)
    with TLSServer(world.leaf) as server:
        with connect(context, server) as tls:
            assert b"200 OK" in get(tls)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        with pytest.raises(PinValidationError, match="ever switched off"):
            connect(context, server)


def test_a_context_that_stopped_making_pinned_sockets_refuses(world: World) -> None:
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    context.sslsocket_class = ssl.SSLSocket  # type: ignore[assignment]
    context.sslobject_class = ssl.SSLObject  # type: ignore[assignment]
    with TLSServer(world.leaf) as server:
        with pytest.raises(PinValidationError, match="no longer makes pinned"):
            connect(context, server)
        with pytest.raises(PinValidationError, match="no longer makes pinned"):
            context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="localhost")
        assert server.requests == []


def test_a_patched_ssl_module_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """truststore.inject_into_ssl, eventlet and gevent replace ssl.SSLContext; a context
    built on top of that could skip the pin check, so none is made."""

    class Replacement(ssl.SSLContext):
        pass

    monkeypatch.setattr(ssl, "SSLContext", Replacement)
    with pytest.raises(pinwarden.UnsupportedPlatformError, match="ssl module was patched"):
        world.context(world.policy(world.intermediate.pin, world.backup_pin))


def test_renegotiation_and_common_name_fallback_are_off(world: World) -> None:
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    # A TLS 1.2 renegotiation could swap the chain after the pin check.
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert context.hostname_checks_common_name is False
