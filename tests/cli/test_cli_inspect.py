"""``pinwarden inspect`` against real local TLS servers."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from conftest import World
from pinwarden.cli import main
from pinwarden.testing import CA, TLSServer


@pytest.fixture
def cafile(world: World, tmp_path: Path) -> str:
    path = tmp_path / "root.pem"
    path.write_bytes(world.root.cert_pem)
    return str(path)


def test_json_shows_verified_and_served_chains(
    world: World, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with TLSServer(world.leaf) as server:
        code = main(["inspect", f"localhost:{server.port}", "--cafile", cafile, "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["host"] == "localhost"
    assert data["port"] == server.port
    assert data["address"] == "127.0.0.1"
    assert data["verified"] is True
    assert data["verification_error"] is None
    assert data["tls_version"].startswith("TLSv1.")
    verified = data["verified_chain"]
    assert [c["position"] for c in verified] == ["leaf", "intermediate", "root"]
    assert [c["pin"] for c in verified] == [
        str(world.leaf.pin),
        str(world.intermediate.pin),
        str(world.root.pin),
    ]
    assert [c["pin"] for c in data["served_chain"]] == [
        str(world.leaf.pin),
        str(world.intermediate.pin),
    ]
    leaf = verified[0]
    assert leaf["key"] == "EC P-256"
    assert 85 <= leaf["days_left"] <= 90
    assert leaf["subject"] == world.leaf.cert.subject.rfc4514_string()
    assert leaf["issuer"] == world.intermediate.cert.subject.rfc4514_string()
    assert len(leaf["fingerprint_sha256"]) == 64
    assert leaf["is_ca"] is False
    assert verified[1]["is_ca"] is True


def test_text_output(world: World, cafile: str, capsys: pytest.CaptureFixture[str]) -> None:
    with TLSServer(world.leaf) as server:
        assert main(["inspect", f"localhost:{server.port}", "--cafile", cafile]) == 0
    out = capsys.readouterr().out
    assert "Verified chain (3 certificates" in out
    for pin in (world.leaf.pin, world.intermediate.pin, world.root.pin):
        assert str(pin) in out
    assert "the other 1 came from the trust store" in out


def test_connect_and_servername(
    world: World, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    leaf = world.intermediate.issue("api.example.test")
    with TLSServer(leaf) as server:
        code = main(
            [
                "inspect",
                f"api.example.test:{server.port}",
                "--connect",
                "127.0.0.1",
                "--cafile",
                cafile,
                "--json",
            ]
        )
        assert code == 0
        assert json.loads(capsys.readouterr().out)["servername"] == "api.example.test"
        code = main(
            [
                "inspect",
                f"127.0.0.1:{server.port}",
                "--servername",
                "other.example.test",
                "--cafile",
                cafile,
                "--json",
            ]
        )
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["verified"] is False
    assert (
        "other.example.test" in data["verification_error"]
        or "mismatch" in data["verification_error"].lower()
    )


def test_untrusted_chain_is_a_finding_and_still_shown(
    world: World, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = CA("stranger").intermediate().issue("localhost")
    with TLSServer(stranger) as server:
        assert main(["inspect", f"localhost:{server.port}", "--cafile", cafile, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verified_chain"] is None
    assert "certificate" in data["verification_error"]
    assert data["served_chain"][0]["pin"] == str(stranger.pin)


def test_unreachable_is_unknown_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert main(["inspect", f"127.0.0.1:{port}"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("pinwarden: could not determine:")


def test_missing_cafile_is_an_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "localhost:443", "--cafile", "/nonexistent.pem"]) == 2
    assert "/nonexistent.pem" in capsys.readouterr().err


def test_a_served_certificate_cryptography_refuses_is_shown_not_crashed(
    world: World, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    der = world.other_root.cert.public_bytes(Encoding.DER)
    at = der.find(b"\xa0\x03\x02\x01\x02")
    odd = der[:at] + b"\xa0\x03\x02\x01\x03" + der[at + 5 :]  # claims X.509 version 4
    with TLSServer(world.leaf, extra=[odd]) as server:
        assert main(["inspect", f"localhost:{server.port}", "--cafile", cafile, "--json"]) == 0
    served = json.loads(capsys.readouterr().out)["served_chain"]
    assert len(served) == 3
    assert "cannot read" in served[2]["subject"]
    assert served[2]["pin"] == str(world.other_root.pin)
    with TLSServer(world.leaf, extra=[odd]) as server:
        assert main(["inspect", f"localhost:{server.port}", "--cafile", cafile]) == 0
    assert "cannot read" in capsys.readouterr().out
