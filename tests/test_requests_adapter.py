"""pinwarden.requests: what the adapter and session refuse, and what they leave alone."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import pinwarden
from conftest import World
from pinwarden.requests import PinnedAdapter, pinned_session
from pinwarden.testing import TLSServer


@pytest.fixture
def server(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[TLSServer]:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    with TLSServer(world.leaf) as running:
        yield running


def test_ca_bundle_variables_do_not_apply(
    world: World, server: TLSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bundle that does not hold the world's root: were it used, the request would
    # fail validation (or be refused by the adapter as verify=<path>).
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(world.other_root.cert_pem)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bundle))
    policy = world.policy(world.intermediate.pin, world.backup_pin)
    with pinned_session(policy, cadata=world.cadata, send_reports=False) as session:
        assert session.get(server.url()).status_code == 200
    assert len(server.requests) == 1


@pytest.mark.parametrize("verify", [False, "/etc/ssl/certs/ca-certificates.crt"])
def test_weaker_or_other_verification_is_refused(
    world: World, server: TLSServer, verify: bool | str
) -> None:
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    with pinned_session(context) as session:
        with pytest.raises(pinwarden.PinwardenError, match="refuses verify="):
            session.get(server.url(), verify=verify)
        session.verify = verify
        with pytest.raises(pinwarden.PinwardenError, match="refuses verify="):
            session.get(server.url())
    assert server.requests == []


def test_requests_never_loads_certifi_into_the_pinned_context(
    world: World, server: TLSServer
) -> None:
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    before = context.cert_store_stats()["x509_ca"]
    with pinned_session(context) as session:
        for _ in range(2):
            assert session.get(server.url(), headers={"Connection": "close"}).ok
    assert context.cert_store_stats()["x509_ca"] == before == 2
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_blocked_request_raises_ssl_error_with_the_pin_error_inside(
    world: World, server: TLSServer
) -> None:
    context = world.context(world.policy(world.backup_pin, world.other_root.pin))
    with pinned_session(context) as session, pytest.raises(requests.exceptions.SSLError) as info:
        session.get(server.url())
    retry_error = info.value.args[0]  # urllib3 MaxRetryError -> SSLError -> our error
    assert isinstance(retry_error.reason.args[0], pinwarden.PinValidationError)
    assert server.requests == []


def test_only_pinned_contexts_are_accepted() -> None:
    plain = ssl.create_default_context()
    with pytest.raises(TypeError):
        pinned_session(plain)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PinnedAdapter(plain)  # type: ignore[arg-type]


def test_plain_http_to_a_pinned_host_is_refused(world: World, server: TLSServer) -> None:
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    with pinned_session(context) as session:
        with pytest.raises(pinwarden.PinwardenError, match="plain http:// to localhost"):
            session.get(f"http://localhost:{server.port}/")
        # Unpinned hosts are served as usual (127.0.0.1 is not in the policy): the
        # request reaches the TLS server in clear text and fails there, not in the guard.
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(f"http://127.0.0.1:{server.port}/", timeout=5)
    assert server.requests == []
