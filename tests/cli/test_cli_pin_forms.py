"""``pinwarden pin FILE --all-forms``: every hash form of certificates, keys (encrypted
too), public keys and CSRs of every key type, in text and JSON."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID

from pinwarden import Pin
from pinwarden.cli import main
from pinwarden.testing import CA, Issued, KeyType, PrivateKey, generate_key

KEY_TYPES: tuple[KeyType, ...] = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
PASSPHRASE = b"backup passphrase"
ALL_FORMS = ["spki-sha256", "raw-key-sha256", "cert-sha256", "spki-sha1", "cert-sha1"]
KEY_FORMS = ["spki-sha256", "raw-key-sha256", "spki-sha1"]
NO_RAW_NOTE = "(no raw-key form"


@cache
def issued(key_type: KeyType) -> Issued:
    """A leaf with a key of ``key_type`` (one key per type for the whole module)."""
    return CA(f"pin forms root {key_type}").issue("forms.example", key=generate_key(key_type))


def _csr(key: PrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backup.example")])
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, algorithm)
    return csr.public_bytes(PEM)


def _expected(public: PublicKeyTypes, cert: x509.Certificate | None = None) -> dict[str, bytes]:
    """Every form, computed here from first principles (the openssl cross-check of the
    same forms is in test_forms.py)."""
    spki = public.public_bytes(DER, SPKI)
    forms = {
        "spki-sha256": hashlib.sha256(spki).digest(),
        "spki-sha1": hashlib.sha1(spki).digest(),
    }
    raw: bytes | None = None
    if isinstance(public, rsa.RSAPublicKey):
        raw = public.public_bytes(DER, serialization.PublicFormat.PKCS1)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        raw = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    if raw is not None:
        forms["raw-key-sha256"] = hashlib.sha256(raw).digest()
    if cert is not None:
        der = cert.public_bytes(DER)
        forms["cert-sha256"] = hashlib.sha256(der).digest()
        forms["cert-sha1"] = hashlib.sha1(der).digest()
    return forms


@dataclass
class Block:
    """One object of ``pin --all-forms`` text output."""

    header: str
    forms: dict[str, tuple[str, str]]  # name -> (base64, hex)
    pin_label: list[str]
    notes: list[str]


def _parse_text(out: str) -> list[Block]:
    blocks: list[Block] = []
    last: str | None = None
    for line in out.splitlines():
        if not line.strip():
            continue
        if line.startswith("sha256/"):
            blocks.append(Block(line, {}, [], []))
            continue
        tokens = line.split()
        block = blocks[-1]
        if tokens[0] == "PIN":
            block.pin_label.append(tokens[1])
            tokens = tokens[1:]
        if tokens[0] in ALL_FORMS:
            assert len(tokens) == 2, line
            last = tokens[0]
            block.forms[last] = (tokens[1], "")
        elif line.strip().startswith("("):
            block.notes.append(line.strip())
        else:
            assert last is not None and len(tokens) == 1, line
            block.forms[last] = (block.forms[last][0], tokens[0])
    return blocks


def _check_text_block(block: Block, expected: dict[str, bytes], names: list[str]) -> None:
    assert list(block.forms) == names
    assert block.pin_label == ["spki-sha256"]
    for name in names:
        b64, hexed = block.forms[name]
        assert base64.b64decode(b64) == expected[name], name
        assert hexed == expected[name].hex(), name
    assert block.header.startswith(str(Pin("sha256", expected["spki-sha256"])))


def _check_json_entry(entry: dict[str, object], expected: dict[str, bytes]) -> None:
    forms = entry["forms"]
    assert isinstance(forms, dict)
    assert list(forms) == [name for name in ALL_FORMS if name in expected]
    for name, digest in expected.items():
        assert forms[name] == {"base64": base64.b64encode(digest).decode(), "hex": digest.hex()}
    assert entry["pin"] == str(Pin("sha256", expected["spki-sha256"]))


@pytest.fixture(scope="module")
def passphrase_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("secret") / "passphrase"
    path.write_bytes(PASSPHRASE + b"\n")
    return str(path)


def _bundle(key_type: KeyType, folder: Path) -> Path:
    """A certificate, its key encrypted, its public key and a CSR, in one PEM file."""
    leaf = issued(key_type)
    encrypted = leaf.key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(PASSPHRASE)
    )
    path = folder / f"{key_type}.pem"
    path.write_bytes(
        leaf.cert_pem + encrypted + leaf.key.public_key().public_bytes(PEM, SPKI) + _csr(leaf.key)
    )
    return path


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_all_forms_text_for_every_kind_of_object(
    key_type: KeyType, tmp_path: Path, passphrase_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _bundle(key_type, tmp_path)
    code = main(["pin", str(bundle), "--all-forms", "--passphrase-file", passphrase_file])
    assert code == 0
    blocks = _parse_text(capsys.readouterr().out)
    leaf = issued(key_type)
    key_forms = _expected(leaf.key.public_key())
    assert len(blocks) == 4
    _check_text_block(blocks[0], _expected(leaf.key.public_key(), leaf.cert), ALL_FORMS)
    assert "certificate" in blocks[0].header
    for block, kind in zip(blocks[1:], ["private-key", "public-key", "csr"], strict=True):
        # Keys and CSRs have no certificate, hence no fingerprint forms.
        _check_text_block(block, key_forms, KEY_FORMS)
        assert kind in block.header
    assert all(block.notes == [] for block in blocks)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_all_forms_json_for_every_kind_of_object(
    key_type: KeyType, tmp_path: Path, passphrase_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _bundle(key_type, tmp_path)
    argv = ["pin", str(bundle), "--all-forms", "--json", "--passphrase-file", passphrase_file]
    assert main(argv) == 0
    entries = json.loads(capsys.readouterr().out)
    leaf = issued(key_type)
    assert [e["kind"] for e in entries] == ["certificate", "private-key", "public-key", "csr"]
    _check_json_entry(entries[0], _expected(leaf.key.public_key(), leaf.cert))
    for entry in entries[1:]:
        _check_json_entry(entry, _expected(leaf.key.public_key()))
    assert {
        "source",
        "index",
        "kind",
        "pin",
        "subject",
        "forms",
    } == set(entries[0])


def test_der_files_and_a_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = CA("pin forms chain root", key_type="rsa-2048")
    intermediate = root.intermediate("pin forms chain intermediate", key=issued("ec-p384").key)
    leaf = intermediate.issue("chain.example", key=issued("rsa-3072").key)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(leaf.chain_pem)
    cert_der = tmp_path / "root.der"
    cert_der.write_bytes(root.cert.public_bytes(DER))
    key_der = tmp_path / "public.der"
    key_der.write_bytes(leaf.key.public_key().public_bytes(DER, SPKI))
    argv = ["pin", str(chain), str(cert_der), str(key_der), "--all-forms", "--json"]
    assert main(argv) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in entries] == ["certificate"] * 3 + ["public-key"]
    _check_json_entry(entries[0], _expected(leaf.key.public_key(), leaf.cert))
    _check_json_entry(entries[1], _expected(intermediate.key.public_key(), intermediate.cert))
    _check_json_entry(entries[2], _expected(root.key.public_key(), root.cert))
    _check_json_entry(entries[3], _expected(leaf.key.public_key()))


def _ed25519(tmp_path: Path) -> tuple[Path, ed25519.Ed25519PrivateKey, x509.Certificate]:
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ed25519.example")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, None)
    )
    path = tmp_path / "ed25519.pem"
    path.write_bytes(
        cert.public_bytes(PEM)
        + key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + _csr(key)
    )
    return path, key, cert


def test_ed25519_has_no_raw_form_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, key, cert = _ed25519(tmp_path)
    assert main(["pin", str(path), "--all-forms"]) == 0
    blocks = _parse_text(capsys.readouterr().out)
    assert len(blocks) == 3
    with_cert = _expected(key.public_key(), cert)
    assert "raw-key-sha256" not in with_cert
    _check_text_block(blocks[0], with_cert, [n for n in ALL_FORMS if n in with_cert])
    for block in blocks[1:]:
        _check_text_block(block, _expected(key.public_key()), ["spki-sha256", "spki-sha1"])
    for block in blocks:
        assert len(block.notes) == 1
        assert block.notes[0].startswith(NO_RAW_NOTE)
        assert "RSA and EC only" in block.notes[0]

    assert main(["pin", str(path), "--all-forms", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert all("raw-key-sha256" not in e["forms"] for e in entries)
    _check_json_entry(entries[0], with_cert)


def test_without_all_forms_only_the_pin(
    tmp_path: Path, passphrase_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _bundle("rsa-2048", tmp_path)
    assert main(["pin", str(bundle), "--passphrase-file", passphrase_file]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 4
    assert all(line.startswith(str(issued("rsa-2048").pin)) for line in out.splitlines())
    for name in ALL_FORMS:
        assert name not in out
    assert main(["pin", str(bundle), "--passphrase-file", passphrase_file, "--json"]) == 0
    assert all("forms" not in e for e in json.loads(capsys.readouterr().out))


def test_all_forms_of_an_encrypted_key_still_needs_its_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _bundle("ec-p256", tmp_path)
    assert main(["pin", str(bundle), "--all-forms"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "password" in captured.err
    assert str(bundle) in captured.err
