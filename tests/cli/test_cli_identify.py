"""``pinwarden identify VALUE``: which form of which certificate, key or CSR a value is,
for files and for the chain of a real local TLS server; exit codes and JSON."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from pinwarden import Pin
from pinwarden.cli import main
from pinwarden.forms import KeyForms, forms_of_certificate, forms_of_spki
from pinwarden.testing import CA, Issued, KeyType, PrivateKey, TLSServer, generate_key

KEY_TYPES: tuple[KeyType, ...] = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
MATCH_KEYS = {"form", "encoding", "is_pin", "of", "pin"}


@cache
def key_of(key_type: KeyType) -> PrivateKey:
    return generate_key(key_type)


@cache
def root() -> CA:
    return CA("identify test root")


@dataclass(frozen=True)
class Chain:
    """A leaf with a key of ``key_type`` under an intermediate with the next type's key."""

    key_type: KeyType
    intermediate: CA
    leaf: Issued

    def forms(self, position: int) -> KeyForms:
        cert = [self.leaf.cert, self.intermediate.cert, root().cert][position]
        return forms_of_certificate(cert.public_bytes(DER))

    def subject(self, position: int) -> str:
        cert = [self.leaf.cert, self.intermediate.cert, root().cert][position]
        return cert.subject.rfc4514_string()


@cache
def chain_of(key_type: KeyType) -> Chain:
    following = KEY_TYPES[(KEY_TYPES.index(key_type) + 1) % len(KEY_TYPES)]
    intermediate = root().intermediate(f"identify intermediate {following}", key=key_of(following))
    return Chain(key_type, intermediate, intermediate.issue("localhost", key=key_of(key_type)))


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _colons(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)


def _run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"value", "matches"}
    for match in data["matches"]:
        assert set(match) == MATCH_KEYS
    return code, data


@pytest.fixture(scope="module")
def cafile(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "root.pem"
    path.write_bytes(root().cert_pem)
    return str(path)


# -- --cert FILE ---------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_every_form_of_every_certificate_in_a_file(
    key_type: KeyType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = chain_of(key_type)
    path = tmp_path / "chain.pem"
    path.write_bytes(chain.leaf.chain_pem)
    for position in (0, 1):
        forms = chain.forms(position)
        for i, (form, digest) in enumerate(forms.items()):
            # Alternate notations: base64 (prefixed or bare) and hex (plain or with colons).
            value = [
                f"{'sha1' if form.endswith('sha1') else 'sha256'}/{_b64(digest)}",
                digest.hex(),
                _b64(digest),
                _colons(digest),
            ][i % 4]
            code, data = _run_json(["identify", value, "--cert", str(path)], capsys)
            assert data["value"] == value
            [match] = data["matches"]
            assert match["form"] == form
            assert match["encoding"] == ("hex" if i % 2 else "base64")
            assert match["is_pin"] is (form == "spki-sha256")
            assert match["of"] == f"{path} #{position + 1} certificate {chain.subject(position)}"
            assert match["pin"] == str(forms.pin)
            assert code == (0 if form == "spki-sha256" else 1), form


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-3072"])
def test_raw_key_of_a_certificate_as_text(
    key_type: KeyType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = chain_of(key_type)
    path = tmp_path / "chain.pem"
    path.write_bytes(chain.leaf.chain_pem)
    forms = chain.forms(1)
    assert forms.raw_key_sha256 is not None
    assert main(["identify", _b64(forms.raw_key_sha256), "--cert", str(path)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == (f"raw-key-sha256 (base64) of {path} #2 certificate {chain.subject(1)}")
    assert "SecKeyCopyExternalRepresentation" in lines[1]
    assert lines[2].strip() == f"use this pin instead: {forms.pin}"
    assert lines[3].strip() == f"(in hex: {forms.pin.digest.hex()})"

    assert main(["identify", str(forms.pin), "--cert", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        out.splitlines()[0] == f"spki-sha256 (base64) of {path} #2 certificate {chain.subject(1)}"
    )
    assert f"this is the pin: {forms.pin}" in out
    assert "instead" not in out


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_keys_and_csrs_in_files(
    key_type: KeyType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = key_of(key_type)
    secret = tmp_path / "passphrase"
    secret.write_text("open sesame\n")
    private = tmp_path / "backup.key"
    private.write_bytes(
        key.private_bytes(
            PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"open sesame"),
        )
    )
    csr = tmp_path / "backup.csr"
    csr.write_bytes(
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backup")]))
        .sign(key, hashes.SHA256())
        .public_bytes(PEM)
    )
    public = tmp_path / "backup.pub.der"
    public.write_bytes(key.public_key().public_bytes(DER, SPKI))
    forms = forms_of_spki(key.public_key().public_bytes(DER, SPKI))
    assert forms.raw_key_sha256 is not None
    files = ["--cert", str(private), "--cert", str(csr), "--cert", str(public)]
    argv = ["identify", forms.raw_key_sha256.hex(), *files, "--passphrase-file", str(secret)]
    code, data = _run_json(argv, capsys)
    assert code == 1
    assert [m["of"] for m in data["matches"]] == [
        f"{private} #1 private-key",
        f"{csr} #1 csr",
        f"{public} #1 public-key",
    ]
    assert {m["form"] for m in data["matches"]} == {"raw-key-sha256"}
    assert {m["pin"] for m in data["matches"]} == {str(Pin.from_private_key(key))}

    # The pin itself is the pin of all three.
    code, data = _run_json(
        ["identify", str(forms.pin), *files, "--passphrase-file", str(secret)], capsys
    )
    assert code == 0
    assert len(data["matches"]) == 3
    assert all(m["is_pin"] for m in data["matches"])


def test_an_encrypted_key_without_its_passphrase_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private = tmp_path / "backup.key"
    private.write_bytes(
        key_of("ec-p256").private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"x")
        )
    )
    assert (
        main(["identify", str(Pin.from_private_key(key_of("ec-p256"))), "--cert", str(private)])
        == 2
    )
    err = capsys.readouterr().err
    assert "password" in err and str(private) in err


def test_a_value_that_matches_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chain = chain_of("ec-p256")
    path = tmp_path / "chain.pem"
    path.write_bytes(chain.leaf.chain_pem)
    stranger = str(Pin.from_private_key(key_of("rsa-2048")))
    assert main(["identify", stranger, "--cert", str(path)]) == 1
    out = capsys.readouterr().out
    assert "matches no form of the 2 certificate(s) and key(s) compared" in out
    code, data = _run_json(["identify", stranger, "--cert", str(path)], capsys)
    assert code == 1
    assert data == {"value": stranger, "matches": []}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("not a hash", "not a SHA-256 or SHA-1 value"),
        ("sha256/AAAA", "not a SHA-256 or SHA-1 value"),
        ("ab" * 31, "not a SHA-256 or SHA-1 value"),
    ],
)
def test_a_malformed_value_is_exit_2(
    value: str, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "chain.pem"
    path.write_bytes(chain_of("ec-p256").leaf.chain_pem)
    assert main(["identify", value, "--cert", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert fragment in captured.err
    assert captured.err.startswith("pinwarden: error:")


def test_bad_arguments_are_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pin = str(chain_of("ec-p256").leaf.pin)
    assert main(["identify", pin]) == 2
    assert "--host" in capsys.readouterr().err
    missing = tmp_path / "missing.pem"
    assert main(["identify", pin, "--cert", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"\x00\x01 not a certificate")
    assert main(["identify", pin, "--cert", str(garbage)]) == 2
    assert str(garbage) in capsys.readouterr().err
    assert main(["identify", pin, "--host", "https://localhost/"]) == 2
    assert "not a URL" in capsys.readouterr().err


# -- --host HOST[:PORT] ----------------------------------------------------------------------


@pytest.fixture(params=KEY_TYPES)
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Chain, TLSServer]]:
    chain = chain_of(request.param)
    with TLSServer(chain.leaf) as server:
        yield chain, server


def test_every_form_of_the_served_chain(
    served: tuple[Chain, TLSServer], cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    chain, server = served
    target = f"localhost:{server.port}"
    positions = {0: "leaf", 1: "intermediate", 2: "root"}
    for position, name in positions.items():
        forms = chain.forms(position)
        for form, digest in forms.items():
            code, data = _run_json(
                ["identify", _b64(digest), "--host", target, "--cafile", cafile], capsys
            )
            [match] = data["matches"]
            assert match["form"] == form
            assert match["of"] == f"{target} [{position}] {name} {chain.subject(position)}"
            assert match["pin"] == str(forms.pin)
            assert code == (0 if form == "spki-sha256" else 1)


def test_the_raw_key_hash_of_the_intermediate_is_named_so(
    served: tuple[Chain, TLSServer], cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    chain, server = served
    raw = chain.forms(1).raw_key_sha256
    assert raw is not None
    code = main(
        [
            "identify",
            f"sha256/{_b64(raw)}",
            "--host",
            f"localhost:{server.port}",
            "--cafile",
            cafile,
        ]
    )
    assert code == 1
    captured = capsys.readouterr()
    first = captured.out.splitlines()[0]
    assert first.startswith("raw-key-sha256 (base64) of ")
    assert "[1] intermediate" in first
    assert chain.subject(1) in first
    assert f"use this pin instead: {chain.intermediate.pin}" in captured.out
    assert "did not verify" not in captured.err


def test_connect_servername_and_files_together(
    tmp_path: Path, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = chain_of("rsa-2048")
    leaf = chain.intermediate.issue("api.example.test", key=key_of("ec-p384"))
    extra = tmp_path / "other.pem"
    extra.write_bytes(chain_of("ec-p256").leaf.cert_pem)
    raw = forms_of_certificate(leaf.cert.public_bytes(DER)).raw_key_sha256
    assert raw is not None
    with TLSServer(leaf) as server:
        by_connect = [
            "--host",
            f"api.example.test:{server.port}",
            "--connect",
            "127.0.0.1",
        ]
        by_sni = ["--host", f"127.0.0.1:{server.port}", "--servername", "api.example.test"]
        for how in (by_connect, by_sni):
            argv = ["identify", raw.hex(), *how, "--cafile", cafile, "--cert", str(extra)]
            code, data = _run_json(argv, capsys)
            assert code == 1
            [match] = data["matches"]
            assert match["form"] == "raw-key-sha256"
            assert match["encoding"] == "hex"
            assert " [0] leaf CN=api.example.test" in match["of"]
            assert match["pin"] == str(leaf.pin)
            assert "did not verify" not in capsys.readouterr().err
        # The file given next to --host is compared too.
        other_pin = str(chain_of("ec-p256").leaf.pin)
        code, data = _run_json(
            ["identify", other_pin, *by_sni, "--cafile", cafile, "--cert", str(extra)], capsys
        )
    assert code == 0
    assert [m["of"] for m in data["matches"]] == [
        f"{extra} #1 certificate {chain_of('ec-p256').subject(0)}"
    ]


def test_an_unverified_chain_is_identified_against_what_was_served(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No --cafile: the test root is not in the system store, so the chain does not verify.
    chain = chain_of("rsa-4096")
    raw = chain.forms(1).raw_key_sha256
    assert raw is not None
    with TLSServer(chain.leaf) as server:
        code = main(["identify", _b64(raw), "--host", f"localhost:{server.port}", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert "did not verify" in captured.err
    assert "served" in captured.err
    [match] = json.loads(captured.out)["matches"]
    assert match["form"] == "raw-key-sha256"
    assert f"[1] intermediate {chain.subject(1)}" in match["of"]


def _version_4(cert_der: bytes) -> bytes:
    """The same certificate claiming X.509 version 4: OpenSSL sends it, cryptography
    cannot read it (as in test_tls.py)."""
    at = cert_der.find(b"\xa0\x03\x02\x01\x02")
    assert at > 0
    return cert_der[:at] + b"\xa0\x03\x02\x01\x03" + cert_der[at + 5 :]


def test_a_served_certificate_cryptography_cannot_read_is_still_identified(
    capsys: pytest.CaptureFixture[str],
) -> None:
    chain = chain_of("ec-p256")
    odd_issued = CA("identify odd root").issue("odd.test")
    odd = _version_4(odd_issued.cert.public_bytes(DER))
    with TLSServer(chain.leaf, extra=[odd]) as server:
        value = hashlib.sha256(odd).hexdigest()
        code = main(["identify", value, "--host", f"localhost:{server.port}", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    [match] = json.loads(captured.out)["matches"]
    assert match["form"] == "cert-sha256"
    assert " [2] intermediate <certificate cryptography cannot read" in match["of"]
    assert match["pin"] == str(odd_issued.pin)  # the version does not change the key


def test_a_closed_port_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    code = main(
        [
            "identify",
            str(chain_of("ec-p256").leaf.pin),
            "--host",
            f"127.0.0.1:{port}",
            "--timeout",
            "5",
        ]
    )
    assert code == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("pinwarden: could not determine:")
    assert f"127.0.0.1:{port}" in captured.err


def test_the_pin_of_an_unverified_chain_is_not_endorsed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Seen through a chain that does not verify, the key may be an interceptor's: the
    # match is shown, marked unverified, and the exit status is not "this is the pin".
    chain = chain_of("ec-p256")
    pin = chain.forms(0).pin
    with TLSServer(chain.leaf) as server:
        code = main(["identify", str(pin), "--host", f"localhost:{server.port}", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    [match] = json.loads(captured.out)["matches"]
    assert match["is_pin"] is True
    assert match["of"].endswith("(unverified)")
