"""``pinwarden pin``: pins of certificates, keys and CSRs in real files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from conftest import World
from pinwarden import Pin
from pinwarden.cli import main


def _csr_pem(world: World) -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backup")]))
        .sign(world.leaf.key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def test_bundle_with_every_kind(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(
        b"leading text is ignored\n"
        + world.leaf.chain_pem
        + world.leaf.key_pem
        + _csr_pem(world)
        + world.root.cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert main(["pin", str(bundle), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in rows] == [
        "certificate",
        "certificate",
        "private-key",
        "csr",
        "public-key",
    ]
    assert [r["index"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["pin"] == str(world.leaf.pin)
    assert rows[1]["pin"] == str(world.intermediate.pin)
    assert rows[2]["pin"] == rows[3]["pin"] == str(world.leaf.pin)  # same key
    assert rows[4]["pin"] == str(world.root.pin)
    assert rows[0]["subject"] == world.leaf.cert.subject.rfc4514_string()
    assert {r["source"] for r in rows} == {str(bundle)}


def test_text_output_and_der(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    der = tmp_path / "root.der"
    der.write_bytes(world.root.cert.public_bytes(serialization.Encoding.DER))
    assert main(["pin", str(der)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(str(world.root.pin))
    assert "certificate" in out
    assert "root.der #1" in out


def test_encrypted_key_needs_its_passphrase(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "backup.key"
    key.write_bytes(
        world.leaf.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    assert main(["pin", str(key)]) == 2
    assert "password" in capsys.readouterr().err
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    assert main(["pin", str(key), "--passphrase-file", str(wrong)]) == 2
    assert "wrong password" in capsys.readouterr().err
    secret = tmp_path / "pass"
    secret.write_text("s3cret\n")
    assert main(["pin", str(key), "--passphrase-file", str(secret), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["pin"] == str(world.leaf.pin)


def test_stdin(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(world.intermediate.cert_pem))
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["pin", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["pin"] == str(world.intermediate.pin)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\x00\x01garbage", "not PEM, and not a DER"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "PEM block 1"),
        (b"-----BEGIN CERTIFICATE-----\nno end line\n", "without a matching END"),
        (b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", "no certificate, key or CSR"),
    ],
)
def test_garbage_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, fragment: str
) -> None:
    path = tmp_path / "bad.pem"
    path.write_bytes(content)
    assert main(["pin", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert fragment in err
    assert len(err.strip().splitlines()) == 1


def test_all_files_are_read(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.pem", tmp_path / "b.pem"
    a.write_bytes(world.leaf.cert_pem)
    b.write_bytes(world.root.cert_pem)
    assert main(["pin", str(a), str(b), "--json"]) == 0
    pins = [Pin.parse(r["pin"]) for r in json.loads(capsys.readouterr().out)]
    assert pins == [world.leaf.pin, world.root.pin]
