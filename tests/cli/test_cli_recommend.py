"""``pinwarden recommend``: a pin set for what live local servers serve, with a backup,
as a policy file that loads and lints clean."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pinwarden.apps.backup import generate_backup_key
from pinwarden.cli import main
from pinwarden.pins import Pin
from pinwarden.policy import Policy
from pinwarden.testing import CA, DNSServer, Issued, TLSServer
from tls_support import two_addresses

NOW = dt.datetime.now(dt.timezone.utc)
JSON_KEYS = {
    "hosts",
    "addresses",
    "level",
    "reasons",
    "pins",
    "expires",
    "warnings",
    "known_ca",
    "policy",
}


@dataclass(frozen=True)
class Setup:
    """A root, files in ``dir`` (root.pem, backup.key), and a DNS server where
    app.test is 127.0.0.1."""

    root: CA
    backup: Pin
    dir: Path
    dns: DNSServer

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def args(self, target: str, *extra: str, backup: bool = True) -> list[str]:
        args = ["recommend", target, "--nameserver", self.dns.nameserver]
        args += ["--cafile", self.path("root.pem"), *extra]
        return args + (["--backup-key", self.path("backup.key")] if backup else [])


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    root = CA("recommend root")
    backup = generate_backup_key()
    (tmp_path / "root.pem").write_bytes(root.cert_pem)
    (tmp_path / "backup.key").write_bytes(backup.key_pem)
    with DNSServer() as dns:
        dns.add("app.test", "A", "127.0.0.1")
        yield Setup(root, backup.pin, tmp_path, dns)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = _run(capsys, *args, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == JSON_KEYS
    return code, data


def _lint_errors(
    capsys: pytest.CaptureFixture[str], setup: Setup, policy: str, *args: str
) -> tuple[int, dict[str, Any]]:
    code = main(["lint", policy, "--cafile", setup.path("root.pem"), *args, "--json"])
    report = json.loads(capsys.readouterr().out)
    return code, report


def _current_and_backups(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    current = [p["pin"] for p in data["pins"] if p["role"] == "current"]
    backups = [p["pin"] for p in data["pins"] if p["role"] == "backup"]
    return current, backups


def _served(setup: Setup, issued: Issued, name: str = "served.pem") -> str:
    path = setup.dir / name
    path.write_bytes(issued.chain_pem)
    return str(path)


# -- which level, and the ready policy file -------------------------------------------


def test_long_lived_intermediate_is_pinned_never_the_90_day_leaf(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    intermediate = setup.root.intermediate("long-lived issuing CA")
    leaf = intermediate.issue("app.test")  # 90 days
    with TLSServer(leaf) as server:
        _, data = _json(capsys, *setup.args(f"app.test:{server.port}"))
    assert data["level"] == "intermediate"
    assert data["hosts"] == ["app.test"]
    assert data["addresses"] == ["127.0.0.1"]
    assert data["known_ca"] is None
    current, backups = _current_and_backups(data)
    assert current == [str(intermediate.pin)]
    assert backups == [str(setup.backup)]
    assert str(leaf.pin) not in [p["pin"] for p in data["pins"]]
    assert any("90-day" in r for r in data["reasons"])
    policy = Policy.from_toml(data["policy"], source="recommended")
    [rule] = policy.rules
    assert set(rule.pins) == {intermediate.pin, setup.backup}
    assert [p.text for p in rule.hosts] == ["app.test"]
    assert rule.expires_at is not None
    assert NOW + dt.timedelta(days=300) < rule.expires_at <= NOW + dt.timedelta(days=366)
    assert data["expires"] == (rule.expires_at - dt.timedelta(days=1)).date().isoformat()


def test_the_written_policy_lints_clean_against_the_served_chain(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    leaf = setup.root.intermediate().issue("app.test")
    out = setup.path("pins.toml")
    with TLSServer(leaf) as server:
        code, stdout, _ = _run(capsys, *setup.args(f"app.test:{server.port}", "--out", out))
        assert code == 0
        assert f"wrote the policy to {out}" in stdout
        code, report = _lint_errors(capsys, setup, out, "--chain", _served(setup, leaf))
        assert code == 0, report
        assert report["errors"] == 0
        live = ["--live", "--port", str(server.port), "--nameserver", setup.dns.nameserver]
        code, report = _lint_errors(capsys, setup, out, *live)
    assert code == 0, report
    assert report["errors"] == 0
    [file] = report["files"]
    # The backup is not served: lint notes it as such (a backup you hold), nothing worse.
    assert {f["id"] for f in file["findings"]} <= {"PW015"}


def test_intermediate_expiring_within_two_years_pins_the_root_and_lints_clean(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    intermediate = setup.root.intermediate(
        "short-lived issuing CA", not_after=NOW + dt.timedelta(days=600)
    )
    leaf = intermediate.issue("app.test")
    out = setup.path("pins.toml")
    with TLSServer(leaf) as server:
        _, data = _json(capsys, *setup.args(f"app.test:{server.port}", "--out", out))
    assert data["level"] == "root"
    current, backups = _current_and_backups(data)
    assert current == [str(setup.root.pin)]
    assert backups == [str(setup.backup)]
    assert any("expires in" in r for r in data["reasons"])
    assert Policy.load(out).rules[0].pins == (setup.root.pin, setup.backup)
    code, report = _lint_errors(capsys, setup, out, "--chain", _served(setup, leaf))
    assert code == 0, report
    assert report["errors"] == 0


TEST_KIT = """
[[ca]]
name = "{name}"
match = ["O=pinwarden test kit"]
rotating_intermediates = {rotating}
intermediates = ["issuing one", "issuing two"]
note = "The test kit rotates."
source = "https://example.test/ca"
"""


@pytest.mark.parametrize(
    ("name", "rotating", "level"),
    [
        ("Test Kit CA", "true", "root"),
        ("Let's Encrypt", "true", "root"),  # replaces the bundled entry of that name
        ("Let's Encrypt", "false", "intermediate"),
    ],
)
def test_known_ca_data_decides_the_level(
    setup: Setup, capsys: pytest.CaptureFixture[str], name: str, rotating: str, level: str
) -> None:
    data_file = setup.dir / "cas.toml"
    data_file.write_text(TEST_KIT.format(name=name, rotating=rotating), encoding="utf-8")
    leaf = setup.root.intermediate().issue("app.test")
    out = setup.path("pins.toml")
    with TLSServer(leaf) as server:
        _, data = _json(
            capsys,
            *setup.args(f"app.test:{server.port}", "--ca-data", str(data_file), "--out", out),
        )
    assert data["known_ca"] == name
    assert data["level"] == level
    if rotating == "true":
        assert any("issuing one, issuing two" in r for r in data["reasons"])
    code, report = _lint_errors(capsys, setup, out, "--chain", _served(setup, leaf))
    assert code == 0, report


def test_without_ca_data_the_test_kit_is_not_a_known_ca(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    # The control for the test above: the bundled entries do not match the test kit.
    with TLSServer(setup.root.intermediate().issue("app.test")) as server:
        _, data = _json(capsys, *setup.args(f"app.test:{server.port}"))
    assert data["known_ca"] is None


def test_two_addresses_with_two_intermediates_pin_the_root(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.dns.add("app.test", "A", "127.0.0.2")
    one, two = setup.root.intermediate("one"), setup.root.intermediate("two")
    out = setup.path("pins.toml")
    with two_addresses(one.issue("app.test"), two.issue("app.test")) as port:
        _, data = _json(capsys, *setup.args(f"app.test:{port}", "--out", out))
        live = ["--live", "--port", str(port), "--nameserver", setup.dns.nameserver]
        code, report = _lint_errors(capsys, setup, out, *live)
    assert data["addresses"] == ["127.0.0.1", "127.0.0.2"]
    # Two intermediates seen at once: they rotate, so a third may come; pin the root.
    assert data["level"] == "root"
    assert any("2 different intermediates" in r for r in data["reasons"])
    current, backups = _current_and_backups(data)
    assert current == [str(setup.root.pin)]
    assert backups == [str(setup.backup)]
    assert code == 0, report


def test_text_output_explains_and_prints_the_policy(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    intermediate = setup.root.intermediate()
    with TLSServer(intermediate.issue("app.test")) as server:
        code, out, _ = _run(capsys, *setup.args(f"app.test:{server.port}"))
    assert code == 0
    assert out.startswith("Pin the intermediate for app.test, because:")
    assert f"{intermediate.pin}  current" in out
    assert f"{setup.backup}  backup" in out
    marker = "Policy (save as pins.toml):"
    assert marker in out
    policy = Policy.from_toml(out.split(marker, 1)[1])
    assert set(policy.rules[0].pins) == {intermediate.pin, setup.backup}


# -- backups ----------------------------------------------------------------------------


def test_backup_from_a_csr_and_an_encrypted_key(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    with_csr = generate_backup_key(csr_subject="CN=backup")
    encrypted = generate_backup_key(passphrase=b"s3cret")
    assert with_csr.csr_pem is not None
    (setup.dir / "backup.csr").write_bytes(with_csr.csr_pem)
    (setup.dir / "locked.key").write_bytes(encrypted.key_pem)
    (setup.dir / "pass").write_bytes(b"s3cret\n")
    extra = ["--backup-csr", setup.path("backup.csr"), "--backup-key", setup.path("locked.key")]
    extra += ["--passphrase-file", setup.path("pass")]
    with TLSServer(setup.root.intermediate().issue("app.test")) as server:
        _, data = _json(capsys, *setup.args(f"app.test:{server.port}", *extra, backup=False))
    _, backups = _current_and_backups(data)
    assert backups == [str(encrypted.pin), str(with_csr.pin)]


def test_backups_in_the_chain_are_left_out_with_a_warning(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    leaf = setup.root.intermediate().issue("app.test")
    (setup.dir / "leaf.key").write_bytes(leaf.key_pem)
    extra = ["--backup-key", setup.path("leaf.key"), "--backup-cert", setup.path("root.pem")]
    with TLSServer(leaf) as server:
        code, out, err = _run(capsys, *setup.args(f"app.test:{server.port}", *extra))
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert any(setup.path("leaf.key") in w and "not a backup" in w for w in warnings)
    assert any(setup.path("root.pem") in w and "not a backup" in w for w in warnings)
    policy = Policy.from_toml(out.split("Policy (save as pins.toml):", 1)[1])
    assert leaf.pin not in policy.rules[0].pins
    assert setup.root.pin not in policy.rules[0].pins
    assert setup.backup in policy.rules[0].pins


@pytest.mark.parametrize("backup", ["none", "only-in-chain"])
def test_no_backup_outside_the_chain_is_exit_2(
    setup: Setup, capsys: pytest.CaptureFixture[str], backup: str
) -> None:
    leaf = setup.root.intermediate().issue("app.test")
    (setup.dir / "leaf.key").write_bytes(leaf.key_pem)
    extra = ["--backup-key", setup.path("leaf.key")] if backup == "only-in-chain" else []
    out_file = setup.dir / "pins.toml"
    with TLSServer(leaf) as server:
        code, out, err = _run(
            capsys,
            *setup.args(f"app.test:{server.port}", *extra, "--out", str(out_file), backup=False),
        )
    assert code == 2
    assert out == ""
    assert "backup" in err and "keygen" in err
    assert not out_file.exists()


# -- --out ------------------------------------------------------------------------------


def test_out_refuses_to_overwrite_without_force(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = setup.dir / "pins.toml"
    out_file.write_text("# my hand-written policy\n")
    intermediate = setup.root.intermediate()
    with TLSServer(intermediate.issue("app.test")) as server:
        target = f"app.test:{server.port}"
        code, _, err = _run(capsys, *setup.args(target, "--out", str(out_file)))
        assert code == 2
        assert str(out_file) in err and "--force" in err
        assert out_file.read_text() == "# my hand-written policy\n"
        code, _, _ = _run(capsys, *setup.args(target, "--out", str(out_file), "--force"))
    assert code == 0
    assert intermediate.pin in Policy.load(out_file).rules[0].pins


def test_out_into_a_missing_directory_is_exit_2(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = setup.dir / "no" / "such" / "pins.toml"
    with TLSServer(setup.root.intermediate().issue("app.test")) as server:
        code, _, err = _run(capsys, *setup.args(f"app.test:{server.port}", "--out", str(out_file)))
    assert code == 2
    assert str(out_file) in err


# -- what could not be determined, and what does not verify ---------------------------


def test_an_unreachable_address_is_exit_3_naming_it(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.dns.add("app.test", "A", "127.0.0.2")  # nothing listens there
    out_file = setup.dir / "pins.toml"
    with TLSServer(setup.root.intermediate().issue("app.test")) as server:
        code, out, err = _run(
            capsys, *setup.args(f"app.test:{server.port}", "--out", str(out_file))
        )
    assert code == 3
    assert out == ""
    assert f"127.0.0.2:{server.port}" in err
    assert "127.0.0.1" not in err.replace(f"127.0.0.2:{server.port}", "")
    assert not out_file.exists()


@pytest.mark.parametrize("fault", ["NXDOMAIN", "SERVFAIL"])
def test_a_name_that_does_not_resolve_is_exit_3_naming_it(
    setup: Setup, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    name = "missing.test" if fault == "NXDOMAIN" else "app.test"
    if fault == "SERVFAIL":
        setup.dns.fail("app.test", "SERVFAIL")
    code, out, err = _run(capsys, *setup.args(f"{name}:443"))
    assert code == 3
    assert out == ""
    assert name in err and fault in err


def test_a_chain_that_does_not_verify_is_exit_1(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = CA("unknown root").intermediate().issue("app.test")
    out_file = setup.dir / "pins.toml"
    with TLSServer(stranger) as server:
        code, out, err = _run(
            capsys, *setup.args(f"app.test:{server.port}", "--out", str(out_file))
        )
    assert code == 1
    assert out == ""
    assert f"app.test:{server.port} at 127.0.0.1" in err
    assert "does not verify" in err
    assert not out_file.exists()


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "content", "problem"),
    [
        ("--backup-key", b"not a key\n", ""),
        ("--backup-csr", b"", ""),
        ("--ca-data", b"[[ca]\n", "not valid TOML"),
        ("--ca-data", b"[[ca]]\nname = 'x'\n", "ca[0].match"),
    ],
)
def test_malformed_input_files_are_exit_2_naming_the_file(
    setup: Setup, capsys: pytest.CaptureFixture[str], option: str, content: bytes, problem: str
) -> None:
    path = setup.dir / "input"
    path.write_bytes(content)
    code, out, err = _run(capsys, *setup.args("app.test:443", option, str(path)))
    assert code == 2
    assert out == ""
    assert str(path) in err
    assert problem in err
    assert setup.dns.queries == []  # refused before any network work


def test_a_key_file_given_as_csr_is_exit_2(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(
        capsys, *setup.args("app.test:443", "--backup-csr", setup.path("backup.key"))
    )
    assert code == 2
    assert setup.path("backup.key") in err and "no csr" in err


def test_a_wrong_passphrase_is_exit_2(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    (setup.dir / "locked.key").write_bytes(generate_backup_key(passphrase=b"right").key_pem)
    (setup.dir / "pass").write_bytes(b"wrong\n")
    extra = ["--backup-key", setup.path("locked.key"), "--passphrase-file", setup.path("pass")]
    code, _, err = _run(capsys, *setup.args("app.test:443", *extra, backup=False))
    assert code == 2
    assert setup.path("locked.key") in err


def test_closed_port_is_exit_3(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = _run(capsys, *setup.args(f"app.test:{port}"))
    assert code == 3
    assert f"127.0.0.1:{port}" in err
