"""``pinwarden keygen``: a backup key (and CSR) of every type, its pin, file modes, and
all-or-nothing writes that never overwrite without --force."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from pinwarden import Pin
from pinwarden.cli import main
from pinwarden.errors import CertificateError, InputError
from pinwarden.pins import load_private_key

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
PASSPHRASE = b"correct horse battery staple"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _check_type(key: object, key_type: str) -> None:
    if key_type.startswith("rsa"):
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.key_size == int(key_type[4:])
        assert key.public_key().public_numbers().e == 65537
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.curve.name == {"ec-p256": "secp256r1", "ec-p384": "secp384r1"}[key_type]


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    # Under umask 000 a careless open() would make the key world-readable.
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_bytes(PASSPHRASE + b"\n")
    return path


@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.usefixtures("permissive_umask")
def test_every_type_with_passphrase_and_csr(
    key_type: str, tmp_path: Path, passphrase_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_path, csr_path = tmp_path / "backup.key", tmp_path / "backup.csr"
    argv = [
        "keygen",
        "--out",
        str(key_path),
        "--csr",
        str(csr_path),
        "--subject",
        "CN=backup.example,O=Example",
        "--san",
        "api.example.com",
        "--san",
        "www.example.com",
        "--type",
        key_type,
        "--passphrase-file",
        str(passphrase_file),
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {
        "key": str(key_path),
        "csr": str(csr_path),
        "type": key_type,
        "encrypted": True,
        "pin": data["pin"],
    }

    key_pem = key_path.read_bytes()
    assert _mode(key_path) == 0o600
    assert key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(CertificateError, match="password"):
        load_private_key(key_pem)
    with pytest.raises(CertificateError, match="wrong password"):
        load_private_key(key_pem, b"not the passphrase")
    key = load_private_key(key_pem, PASSPHRASE)
    _check_type(key, key_type)
    assert data["pin"] == str(Pin.from_private_key(key_pem, PASSPHRASE))

    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert csr.is_signature_valid
    assert data["pin"] == str(Pin.from_csr(csr))
    assert csr.subject.rfc4514_string() == "CN=backup.example,O=Example"
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["api.example.com", "www.example.com"]
    # Nothing else (no temporary file) is left in the folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.csr", "backup.key", "passphrase"]

    # pinwarden pin reads the key back to the same pin.
    argv = ["pin", str(key_path), "--passphrase-file", str(passphrase_file), "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)[0]["pin"] == data["pin"]


@pytest.mark.usefixtures("permissive_umask")
def test_default_type_plain_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_path, csr_path = tmp_path / "backup.key", tmp_path / "backup.csr"
    argv = ["keygen", "--out", str(key_path), "--csr", str(csr_path), "--subject", "CN=b"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    key = load_private_key(key_path.read_bytes())  # not encrypted: loads without a password
    _check_type(key, "ec-p256")
    pin = Pin.from_private_key(key)
    assert captured.out == f"{pin}\n"  # only the pin on stdout: scripts can capture it
    assert Pin.from_csr(csr_path.read_bytes()) == pin
    assert "NOT encrypted" in captured.err
    assert str(key_path) in captured.err and str(csr_path) in captured.err
    assert _mode(key_path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.csr", "backup.key"]


def test_two_runs_make_two_different_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pins = set()
    for name in ("a.key", "b.key"):
        assert main(["keygen", "--out", str(tmp_path / name), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data == {
            "key": str(tmp_path / name),
            "csr": None,
            "type": "ec-p256",
            "encrypted": False,
            "pin": str(Pin.from_private_key((tmp_path / name).read_bytes())),
        }
        pins.add(data["pin"])
    assert len(pins) == 2


# -- never overwrite; --force -----------------------------------------------------------


def test_refuses_to_overwrite_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_path, csr_path = tmp_path / "backup.key", tmp_path / "backup.csr"
    key_path.write_bytes(b"the precious old key\n")
    argv = ["keygen", "--out", str(key_path), "--csr", str(csr_path), "--subject", "CN=b"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(key_path) in captured.err and "--force" in captured.err
    assert key_path.read_bytes() == b"the precious old key\n"
    assert not csr_path.exists()  # all or nothing: the CSR was not written either
    assert [p.name for p in tmp_path.iterdir()] == ["backup.key"]


def test_refuses_to_overwrite_a_csr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_path, csr_path = tmp_path / "backup.key", tmp_path / "backup.csr"
    csr_path.write_bytes(b"an old CSR\n")
    argv = ["keygen", "--out", str(key_path), "--csr", str(csr_path), "--subject", "CN=b"]
    assert main(argv) == 2
    assert str(csr_path) in capsys.readouterr().err
    assert csr_path.read_bytes() == b"an old CSR\n"
    assert not key_path.exists()


def test_refuses_to_write_through_a_dangling_symlink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "elsewhere.key"
    link = tmp_path / "backup.key"
    link.symlink_to(target)
    assert main(["keygen", "--out", str(link)]) == 2
    assert "--force" in capsys.readouterr().err
    assert not target.exists()
    assert link.is_symlink()


@pytest.mark.usefixtures("permissive_umask")
def test_force_overwrites_with_a_private_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_path, csr_path = tmp_path / "backup.key", tmp_path / "backup.csr"
    key_path.write_bytes(b"old key\n")
    key_path.chmod(0o644)
    csr_path.write_bytes(b"old csr\n")
    argv = [
        "keygen",
        "--out",
        str(key_path),
        "--csr",
        str(csr_path),
        "--subject",
        "CN=b",
        "--type",
        "ec-p384",
        "--force",
        "--json",
    ]
    assert main(argv) == 0
    pin = json.loads(capsys.readouterr().out)["pin"]
    key = load_private_key(key_path.read_bytes())
    _check_type(key, "ec-p384")
    assert str(Pin.from_private_key(key)) == pin
    assert str(Pin.from_csr(csr_path.read_bytes())) == pin
    assert _mode(key_path) == 0o600  # the old file's 0644 is not kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.csr", "backup.key"]


# -- all or nothing ------------------------------------------------------------------------


def test_an_unwritable_csr_path_leaves_no_key_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_path = tmp_path / "backup.key"
    csr_path = tmp_path / "no such folder" / "backup.csr"
    argv = ["keygen", "--out", str(key_path), "--csr", str(csr_path), "--subject", "CN=b"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(csr_path) in captured.err
    assert not key_path.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file either


def test_an_unwritable_key_path_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_path = tmp_path / "missing" / "backup.key"
    assert main(["keygen", "--out", str(key_path)]) == 2
    assert str(key_path) in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_force_with_a_csr_path_that_cannot_be_replaced_keeps_the_old_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --force, and the CSR path is a directory: the CSR cannot be put in place, so the
    # existing key must not be replaced by a new key whose CSR was never written.
    key_path = tmp_path / "backup.key"
    key_path.write_bytes(b"the key the servers use\n")
    csr_path = tmp_path / "backup.csr"
    csr_path.mkdir()
    argv = [
        "keygen",
        "--out",
        str(key_path),
        "--csr",
        str(csr_path),
        "--subject",
        "CN=b",
        "--force",
    ]
    assert main(argv) == 2
    assert str(csr_path) in capsys.readouterr().err
    assert key_path.read_bytes() == b"the key the servers use\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.csr", "backup.key"]


# -- usage and input errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--csr", "{tmp}/b.csr"], "--subject"),
        (["--subject", "CN=backup"], "--csr"),
        (["--san", "a.example"], "--san needs --csr"),
        (["--csr", "{tmp}/b.csr", "--subject", "garbage"], "RFC 4514"),
        (["--csr", "{tmp}/b.csr", "--subject", "CN="], "RFC 4514"),
        (["--csr", "{tmp}/b.csr", "--subject", "XX=unknown"], "RFC 4514"),
        (["--csr", "{tmp}/b.csr", "--subject", ""], "subject is empty"),
        (["--type", "rsa-1024"], "choose one of"),
        (["--type", "ed25519"], "choose one of"),
        (["--passphrase-file", "{tmp}/missing"], "missing"),
    ],
)
def test_usage_errors_are_exit_2_and_write_nothing(
    extra: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    argv = ["keygen", "--out", str(folder / "b.key"), *(a.format(tmp=folder) for a in extra)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert fragment in captured.err
    assert list(folder.iterdir()) == []


def test_an_internationalised_san_is_encoded_or_refused_never_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_path, csr_path = tmp_path / "b.key", tmp_path / "b.csr"
    argv = [
        "keygen",
        "--out",
        str(key_path),
        "--csr",
        str(csr_path),
        "--subject",
        "CN=b",
        "--san",
        "bücher.example",
    ]
    code = main(argv)
    captured = capsys.readouterr()
    if code == 0:  # written as its A-label
        csr = x509.load_pem_x509_csr(csr_path.read_bytes())
        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == ["xn--bcher-kva.example"]
    else:
        assert code == 2
        assert "bücher.example" in captured.err
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n"])
def test_an_empty_passphrase_file_is_exit_2(
    content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "passphrase"
    secret.write_bytes(content)
    key_path = tmp_path / "backup.key"
    assert main(["keygen", "--out", str(key_path), "--passphrase-file", str(secret)]) == 2
    err = capsys.readouterr().err
    assert "empty" in err and str(secret) in err
    assert not key_path.exists()


def test_csr_subject_with_several_attributes_round_trips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csr_path = tmp_path / "b.csr"
    subject = r"CN=api.example.com,O=Example\, Inc.,C=DE"
    argv = [
        "keygen",
        "--out",
        str(tmp_path / "b.key"),
        "--csr",
        str(csr_path),
        "--subject",
        subject,
    ]
    assert main(argv) == 0
    capsys.readouterr()
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example, Inc."
    assert csr.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "DE"
    with pytest.raises(x509.ExtensionNotFound):
        csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert csr.is_signature_valid
    key = serialization.load_pem_private_key((tmp_path / "b.key").read_bytes(), None)
    assert Pin.from_public_key(key.public_key()) == Pin.from_csr(csr)


def test_the_key_and_the_csr_cannot_share_a_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "same.pem"
    args = ["keygen", "--out", str(target), "--csr", str(target), "--subject", "CN=x"]
    assert main(args) == 2
    assert not target.exists()
    target.write_text("old")
    assert main([*args, "--force"]) == 2
    assert target.read_text() == "old"
    assert "named twice" in capsys.readouterr().err


def test_force_puts_the_old_files_back_when_the_csr_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pinwarden.apps.backup as backup

    key, csr = tmp_path / "k.pem", tmp_path / "k.csr"
    key.write_text("old key")
    csr.write_text("old csr")
    real_place = backup._place

    def failing_place(temp: str, path: Path) -> None:
        if path == csr:
            raise InputError(f"cannot write {path}: disk full")
        real_place(temp, path)

    monkeypatch.setattr(backup, "_place", failing_place)
    args = ["keygen", "--out", str(key), "--csr", str(csr), "--subject", "CN=x", "--force"]
    assert main(args) == 2
    assert key.read_text() == "old key"
    assert csr.read_text() == "old csr"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.csr", "k.pem"]


def test_a_file_system_without_hard_links_still_gets_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    def no_link(source: str, target: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    key = tmp_path / "k.pem"
    assert main(["keygen", "--out", str(key)]) == 0
    assert key.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in key.read_bytes()
    assert main(["keygen", "--out", str(key)]) == 2
