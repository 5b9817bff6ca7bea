"""The test kit's TLS server, loopback names and pytest plugin, used for real."""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from conftest import World
from pinwarden import Pin
from pinwarden.testing import CA, TLSServer, loopback_names
from pinwarden.testing.pytest_plugin import PKI
from pinwarden.tls import served_chain
from tls_support import connect, get


def _served_pins(world: World, server: TLSServer) -> list[Pin]:
    client = ssl.create_default_context(cadata=world.cadata)
    with connect(client, server) as tls:
        return [Pin.from_certificate(der) for der in served_chain(tls)]


def test_serves_the_chain_and_records_requests(world: World) -> None:
    with TLSServer(world.leaf, response_body=b"hi\n") as server:
        assert _served_pins(world, server) == [world.leaf.pin, world.intermediate.pin]
        client = ssl.create_default_context(cadata=world.cadata)
        with connect(client, server) as tls:
            tls.sendall(
                b"POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
            )
            response = b""
            while chunk := tls.recv(4096):
                response += chunk
    assert response.endswith(b"\r\n\r\nhi\n")
    assert server.requests[-1].method == "POST"
    assert server.requests[-1].path == "/r"
    assert server.requests[-1].body == b"abc"
    assert server.handshakes == 2


def test_switches_chain_at_runtime_and_appends_extras(world: World) -> None:
    other = world.other_root.intermediate().issue("localhost")
    with TLSServer(world.leaf) as server:
        assert _served_pins(world, server)[0] == world.leaf.pin
        server.serve(other, extra=[world.root.cert])
        assert _served_pins(world, server) == [
            other.pin,
            Pin.from_certificate(other.chain[0]),
            world.root.pin,
        ]


def test_failed_handshakes_are_counted(world: World) -> None:
    with TLSServer(CA("stranger").issue()) as server:
        client = ssl.create_default_context(cadata=world.cadata)
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(client, server)
        # The server's side finishes in its own thread; give it a moment.
        deadline = time.monotonic() + 5
        while not server.failed_handshakes and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.failed_handshakes == 1
        assert server.requests == []


def test_listens_on_loopback_only(world: World) -> None:
    with pytest.raises(ValueError, match="loopback"):
        TLSServer(world.leaf, host="0.0.0.0")


def test_maximum_version(world: World) -> None:
    with TLSServer(world.leaf, maximum_version=ssl.TLSVersion.TLSv1_2) as server:
        client = ssl.create_default_context(cadata=world.cadata)
        with connect(client, server) as tls:
            assert tls.version() == "TLSv1.2"
            assert b"200 OK" in get(tls)


def test_loopback_names_resolve_only_inside_the_block() -> None:
    name = "svc.pinwarden-kit.test"
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(name, 443)
    with loopback_names([name]):
        with loopback_names([name.upper()]):
            assert socket.getaddrinfo(name, 443)[0][4][0] == "127.0.0.1"
        assert socket.getaddrinfo(name + ".", 443)[0][4][0] == "127.0.0.1"
        assert socket.getaddrinfo("localhost", 443)[0][4][0] == "127.0.0.1"
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(name, 443)


def test_fixtures_work_together(pinwarden_pki: PKI, pinwarden_server: TLSServer) -> None:
    assert pinwarden_server.issued is pinwarden_pki.leaf
    client = ssl.create_default_context(cadata=pinwarden_pki.root_pem)
    with connect(client, pinwarden_server) as tls:
        assert b"200 OK" in get(tls)


def test_plugin_is_registered_for_users(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx
        import pinwarden

        def test_pinned(pinwarden_pki, pinwarden_server):
            policy = pinwarden.Policy.from_dict({"pin": [{
                "hosts": ["localhost"],
                "pins": [str(pinwarden_pki.intermediate.pin), str(pinwarden_pki.root.pin)],
            }]})
            context = pinwarden.create_context(policy, cadata=pinwarden_pki.root_pem)
            with httpx.Client(verify=context) as client:
                assert client.get(pinwarden_server.url()).status_code == 200
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
