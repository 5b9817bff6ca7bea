"""``pinwarden simulate``: a rotation across three shipped app versions, gated before and
after deployment, against chain files and live local servers."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cryptography.hazmat.primitives import serialization

from pinwarden.cli import main
from pinwarden.pins import Pin
from pinwarden.testing import CA, DNSServer, Issued, TLSServer, generate_key
from tls_support import two_addresses

TODAY = dt.datetime.now(dt.timezone.utc).date()
V3_EXPIRES = TODAY + dt.timedelta(days=30)


@dataclass(frozen=True)
class Rotation:
    """Apps v1–v3 in the field while the server moves from the ``old`` intermediate to
    the ``new`` one. v1 pins old + backup, v2 adds new, v3 pins the root + backup and
    expires on V3_EXPIRES."""

    root: CA
    old: CA
    new: CA
    backup: Pin
    old_leaf: Issued
    new_leaf: Issued
    dir: Path

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def versions(self, *names: str) -> list[str]:
        out: list[str] = []
        for name in names or ("v1", "v2", "v3"):
            out += ["--policy", f"{name}={self.path(name + '.toml')}"]
        return out


def _write_policy(path: Path, *pins: Pin | str, **rule: Any) -> None:
    table: dict[str, Any] = {"hosts": ["app.test"], "pins": [str(p) for p in pins]}
    table.update(rule)
    path.write_text(tomli_w.dumps({"version": 1, "pin": [table]}), encoding="utf-8")


@pytest.fixture
def rotation(tmp_path: Path) -> Rotation:
    root = CA("rotation root")
    old, new = root.intermediate("old issuing CA"), root.intermediate("new issuing CA")
    backup = Pin.from_public_key(generate_key().public_key())
    r = Rotation(root, old, new, backup, old.issue("app.test"), new.issue("app.test"), tmp_path)
    (tmp_path / "root.pem").write_bytes(root.cert_pem)
    (tmp_path / "new.pem").write_bytes(r.new_leaf.chain_pem)
    _write_policy(tmp_path / "v1.toml", old.pin, backup)
    _write_policy(tmp_path / "v2.toml", old.pin, new.pin, backup)
    _write_policy(tmp_path / "v3.toml", root.pin, backup, expires=V3_EXPIRES)
    return r


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["simulate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = _run(capsys, *args, "--json")
    return code, json.loads(out)


def _statuses(data: dict[str, Any]) -> dict[str, str]:
    return {r["version"]: r["status"] for r in data["results"]}


def _chain_args(r: Rotation, chain: str = "new.pem") -> list[str]:
    return ["--chain", r.path(chain), "--cafile", r.path("root.pem")]


# -- a chain file: the CI gate before deployment ----------------------------------------


def test_new_chain_locks_out_v1_only(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    code, data = _json(capsys, *r.versions(), *_chain_args(r))
    assert code == 1
    assert _statuses(data) == {"v1": "locked-out", "v2": "passes", "v3": "passes"}
    assert data["locked_out"] == ["v1"]
    by_version = {row["version"]: row for row in data["results"]}
    assert by_version["v1"]["matched_pin"] is None
    assert by_version["v2"]["matched_pin"] == str(r.new.pin)
    assert by_version["v3"]["matched_pin"] == str(r.root.pin)
    assert {row["host"] for row in data["results"]} == {"app.test"}  # the leaf's name


def test_json_schema(rotation: Rotation, capsys: pytest.CaptureFixture[str]) -> None:
    r = rotation
    _, data = _json(capsys, *r.versions(), *_chain_args(r), "--at", TODAY.isoformat())
    assert set(data) == {"at", "results", "locked_out"}
    assert data["at"] == f"{TODAY.isoformat()}T00:00:00+00:00"
    assert len(data["results"]) == 3
    for row in data["results"]:
        assert set(row) == {"version", "host", "address", "status", "detail", "matched_pin"}
        assert row["address"] is None  # a chain file has no address
        assert isinstance(row["detail"], str) and row["detail"]


def test_text_output_names_the_locked_out_version(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    code, out, _ = _run(capsys, *r.versions(), *_chain_args(r))
    assert code == 1
    assert "LOCKED OUT: v1" in out
    assert "v1 × app.test: app.test: no pin matched the verified chain" in out
    assert out.count("passes") == 2


def test_before_the_rotation_every_version_passes(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    (r.dir / "old.pem").write_bytes(r.old_leaf.chain_pem)
    code, out, _ = _run(capsys, *r.versions(), *_chain_args(r, "old.pem"))
    assert code == 0
    assert "no shipped version is locked out" in out


def test_after_v3_expires_it_fails_open(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    on_last_day = ["--at", V3_EXPIRES.isoformat()]
    _, data = _json(capsys, *r.versions("v3"), *_chain_args(r), *on_last_day)
    assert _statuses(data) == {"v3": "passes"}
    day_after = ["--at", (V3_EXPIRES + dt.timedelta(days=1)).isoformat()]
    code, data = _json(capsys, *r.versions("v2", "v3"), *_chain_args(r), *day_after)
    assert code == 0
    assert _statuses(data) == {"v2": "passes", "v3": "fails-open"}
    assert data["locked_out"] == []
    code, out, _ = _run(capsys, *r.versions("v3"), *_chain_args(r), *day_after)
    assert "fails-open" in out
    assert "NOT enforced" in out


def test_report_only_is_reported_and_passes_the_gate(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    _write_policy(r.dir / "v1.toml", r.old.pin, r.backup, mode="report-only")
    code, data = _json(capsys, *r.versions("v1", "v2"), *_chain_args(r))
    assert code == 0
    assert _statuses(data) == {"v1": "reported", "v2": "passes"}


def test_a_host_no_version_pins_is_not_pinned(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    other = r.new.issue("other.test")
    (r.dir / "other.pem").write_bytes(other.chain_pem)
    args = [*_chain_args(r, "other.pem"), "--name", "other.test"]
    code, data = _json(capsys, *r.versions("v1"), *args)
    assert code == 0
    assert _statuses(data) == {"v1": "not-pinned"}


def test_a_chain_that_covers_no_pinned_host_is_checked_against_the_pinned_hosts(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    # Deployed in place of the pinned host's certificate, this chain would break it: the
    # CI gate must not pass it as "not pinned".
    r = rotation
    other = r.new.issue("other.test")
    (r.dir / "other.pem").write_bytes(other.chain_pem)
    code, data = _json(capsys, *r.versions("v1"), *_chain_args(r, "other.pem"))
    assert code == 1
    rows = {(row["host"], row["status"]) for row in data["results"]}
    assert ("other.test", "not-pinned") in rows
    assert any(status == "invalid-chain" for host, status in rows if host != "other.test")


@pytest.mark.parametrize("case", ["wrong-name", "missing-intermediate", "untrusted"])
def test_a_chain_that_does_not_verify_is_invalid_for_every_version(
    rotation: Rotation, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    r = rotation
    args = _chain_args(r)
    if case == "wrong-name":
        args += ["--name", "api.test"]
    elif case == "missing-intermediate":
        (r.dir / "leaf.pem").write_bytes(r.new_leaf.cert_pem)
        args = _chain_args(r, "leaf.pem")
    else:
        (r.dir / "other-root.pem").write_bytes(CA("another root").cert_pem)
        args = [*_chain_args(r)[:2], "--cafile", r.path("other-root.pem")]
    code, data = _json(capsys, *r.versions(), *args)
    assert code == 1
    assert set(_statuses(data).values()) == {"invalid-chain"}
    assert data["locked_out"] == ["v1", "v2", "v3"]
    host = "api.test" if case == "wrong-name" else "app.test"
    assert all(f"does not verify for {host}" in row["detail"] for row in data["results"])


def test_several_names_give_one_row_each(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    both = r.new.issue("app.test", "api.test")
    (r.dir / "both.pem").write_bytes(both.chain_pem)
    _write_policy(r.dir / "v1.toml", r.old.pin, r.backup, hosts=["app.test", "api.test"])
    code, data = _json(capsys, *r.versions("v1", "v2"), *_chain_args(r, "both.pem"))
    assert code == 1
    assert [(row["version"], row["host"], row["status"]) for row in data["results"]] == [
        ("v1", "app.test", "locked-out"),
        ("v1", "api.test", "locked-out"),
        ("v2", "app.test", "passes"),
        ("v2", "api.test", "not-pinned"),
    ]
    code, data = _json(capsys, *r.versions("v2"), *_chain_args(r, "both.pem"), "--name", "API.test")
    assert [row["host"] for row in data["results"]] == ["api.test"]


def test_der_chain_file_and_default_version_name(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    der = r.new_leaf.cert.public_bytes(serialization.Encoding.DER)
    (r.dir / "leaf.der").write_bytes(der)
    (r.dir / "app-2.3.toml").write_text((r.dir / "v2.toml").read_text())
    # A DER file holds one certificate: the leaf alone does not verify without its
    # intermediate, so give the name and expect invalid-chain, read from DER all the same.
    code, data = _json(
        capsys,
        "--policy",
        r.path("app-2.3.toml"),
        "--chain",
        r.path("leaf.der"),
        "--cafile",
        r.path("root.pem"),
    )
    assert code == 1
    assert [(row["version"], row["status"]) for row in data["results"]] == [
        ("app-2.3", "invalid-chain")
    ]


# -- pins that can never match --------------------------------------------------------


def _raw_key_pin(issued: Issued) -> str:
    raw = issued.cert.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return "sha256/" + base64.b64encode(hashlib.sha256(raw).digest()).decode()


def _fingerprint_pin(der: bytes) -> str:
    return "sha256/" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_raw_key_hash_and_fingerprint_pins_are_warned_about(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    raw = _raw_key_pin(r.new_leaf)
    fingerprint = _fingerprint_pin(r.new.cert.public_bytes(serialization.Encoding.DER))
    _write_policy(r.dir / "ios.toml", raw, r.backup)
    _write_policy(r.dir / "android.toml", fingerprint, r.backup)
    code, out, err = _run(
        capsys,
        "--policy",
        f"ios={r.path('ios.toml')}",
        "--policy",
        f"android={r.path('android.toml')}",
        *_chain_args(r),
    )
    assert code == 1
    assert "LOCKED OUT: ios, android" in out
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert warnings[0].startswith("warning: ios: ") and "raw public key" in warnings[0]
    assert str(r.new_leaf.pin) in warnings[0]  # the pin to use instead
    assert warnings[1].startswith("warning: android: ") and "fingerprint" in warnings[1]
    assert str(r.new.pin) in warnings[1]


def test_no_warning_for_sound_pins(rotation: Rotation, capsys: pytest.CaptureFixture[str]) -> None:
    r = rotation
    _, _, err = _run(capsys, *r.versions(), *_chain_args(r))
    assert "warning" not in err


# -- live servers ---------------------------------------------------------------------


@pytest.fixture
def dns() -> Iterator[DNSServer]:
    with DNSServer() as server:
        yield server


def _live_args(r: Rotation, dns: DNSServer, *targets: str) -> list[str]:
    hosts = [a for t in targets for a in ("--host", t)]
    return [*hosts, "--nameserver", dns.nameserver, "--cafile", r.path("root.pem")]


def test_two_addresses_serving_different_chains_get_a_row_each(
    rotation: Rotation, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    dns.add("app.test", "A", "127.0.0.1")
    dns.add("app.test", "A", "127.0.0.2")
    with two_addresses(r.old_leaf, r.new_leaf) as port:
        code, data = _json(capsys, *r.versions(), *_live_args(r, dns, f"app.test:{port}"))
        text_code, out, _ = _run(capsys, *r.versions(), *_live_args(r, dns, f"app.test:{port}"))
    assert code == text_code == 1
    rows = [(row["version"], row["address"], row["status"]) for row in data["results"]]
    assert rows == [
        ("v1", "127.0.0.1", "passes"),
        ("v1", "127.0.0.2", "locked-out"),
        ("v2", "127.0.0.1", "passes"),
        ("v2", "127.0.0.2", "passes"),
        ("v3", "127.0.0.1", "passes"),
        ("v3", "127.0.0.2", "passes"),
    ]
    assert data["locked_out"] == ["v1"]
    assert "v1 × app.test (127.0.0.2): app.test: no pin matched" in out
    assert "v1 × app.test (127.0.0.1)" not in out


def test_unreachable_host_is_unknown_exit_3(
    rotation: Rotation, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    dns.add("app.test", "A", "127.0.0.1")
    code, data = _json(capsys, *r.versions("v2"), *_live_args(r, dns, f"app.test:{closed}"))
    assert code == 3
    [row] = data["results"]
    assert row["status"] == "unknown"
    assert row["address"] == "127.0.0.1"
    assert f"127.0.0.1:{closed}" in row["detail"]
    code, data = _json(capsys, *r.versions("v2"), *_live_args(r, dns, "missing.test:443"))
    assert code == 3
    [row] = data["results"]
    assert row["status"] == "unknown"
    assert "missing.test" in row["detail"]


def test_a_lockout_outranks_an_unknown(
    rotation: Rotation, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    dns.add("app.test", "A", "127.0.0.1")
    with TLSServer(r.new_leaf) as server:
        code, data = _json(
            capsys,
            *r.versions("v1"),
            *_live_args(r, dns, f"app.test:{server.port}", "missing.test:443"),
        )
    assert code == 1
    assert [row["status"] for row in data["results"]] == ["locked-out", "unknown"]


def test_live_raw_key_hash_is_warned_about_too(
    rotation: Rotation, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same trap as with --chain: the served chain is at hand, so say why it never
    # matches rather than leave a bare "locked-out".
    r = rotation
    _write_policy(r.dir / "ios.toml", _raw_key_pin(r.new_leaf), r.backup)
    dns.add("app.test", "A", "127.0.0.1")
    with TLSServer(r.new_leaf) as server:
        code, _, err = _run(
            capsys,
            "--policy",
            f"ios={r.path('ios.toml')}",
            *_live_args(r, dns, f"app.test:{server.port}"),
        )
    assert code == 1
    assert "raw public key" in err
    assert str(r.new_leaf.pin) in err


# -- bad input ------------------------------------------------------------------------


def test_both_chain_and_host_is_a_usage_error(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    code, out, err = _run(capsys, *r.versions(), *_chain_args(r), "--host", "app.test")
    assert code == 2
    assert out == ""
    assert "--chain" in err and "--host" in err


def test_neither_chain_nor_host_is_a_usage_error(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, *rotation.versions())
    assert code == 2
    assert out == ""
    assert "--chain" in err


def test_name_without_chain_is_a_usage_error(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, *rotation.versions(), "--host", "app.test", "--name", "x.test")
    assert code == 2
    assert "--name" in err


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'[[pin]\nhosts = ["app.test"]\n', "not valid TOML"),
        (b'[[pin]]\nhosts = ["app.test"]\npins = ["sha256/abc"]\n', "pin[0].pins[0]"),
        (b"\xff\xfe not text", "not UTF-8"),
    ],
)
def test_malformed_policy_names_the_file(
    rotation: Rotation, capsys: pytest.CaptureFixture[str], content: bytes, problem: str
) -> None:
    r = rotation
    (r.dir / "broken.toml").write_bytes(content)
    code, out, err = _run(
        capsys, *r.versions("v1"), "--policy", f"v9={r.path('broken.toml')}", *_chain_args(r)
    )
    assert code == 2
    assert out == ""
    assert r.path("broken.toml") in err
    assert problem in err
    assert len(err.strip().splitlines()) == 1


def test_missing_policy_or_chain_file_names_it(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    code, _, err = _run(capsys, "--policy", r.path("nope.toml"), *_chain_args(r))
    assert code == 2
    assert r.path("nope.toml") in err
    code, _, err = _run(capsys, *r.versions(), *_chain_args(r, "nope.pem"))
    assert code == 2
    assert r.path("nope.pem") in err


def test_chain_file_without_a_certificate_is_an_input_error(
    rotation: Rotation, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rotation
    (r.dir / "key.pem").write_bytes(r.new_leaf.key_pem)
    (r.dir / "junk.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64!\n")
    for name in ("key.pem", "junk.pem"):
        code, out, err = _run(capsys, *r.versions(), *_chain_args(r, name))
        assert code == 2, err
        assert out == ""
        assert r.path(name) in err


@pytest.mark.parametrize(
    "policies",
    [
        ["v1={a}", "v1={b}"],
        ["{a}", "{a}"],
        ["{a}", "app={b}"],
    ],
)
def test_two_versions_with_one_name_are_refused(
    rotation: Rotation, capsys: pytest.CaptureFixture[str], policies: list[str]
) -> None:
    r = rotation
    first, second = r.dir / "a", r.dir / "b"
    first.mkdir()
    second.mkdir()
    for folder in (first, second):
        (folder / "app.toml").write_text((r.dir / "v1.toml").read_text())
    args = []
    for spec in policies:
        args += ["--policy", spec.format(a=first / "app.toml", b=second / "app.toml")]
    code, out, err = _run(capsys, *args, *_chain_args(r))
    assert code == 2
    assert out == ""
    assert "two versions" in err


def test_bad_date_is_a_usage_error(rotation: Rotation, capsys: pytest.CaptureFixture[str]) -> None:
    r = rotation
    for value in ("next tuesday", "2027-01-01T00:00:00"):
        code, _, err = _run(capsys, *r.versions(), *_chain_args(r), "--at", value)
        assert code == 2
        assert value in err


def test_host_mode_judges_the_chain_on_the_simulated_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    root = CA("sim date root")
    issuing = root.intermediate("sim date CA")
    leaf = issuing.issue("localhost", not_after=now + dt.timedelta(days=80))
    (tmp_path / "root.pem").write_bytes(root.cert_pem)
    backup = Pin.from_public_key(generate_key().public_key())
    (tmp_path / "v1.toml").write_text(
        f'[[pin]]\nhosts = ["localhost"]\npins = ["{issuing.pin}", "{backup}"]\n'
    )
    with TLSServer(leaf) as server:
        base = [
            "simulate",
            "--policy",
            f"v1={tmp_path / 'v1.toml'}",
            "--host",
            f"localhost:{server.port}",
            "--cafile",
            str(tmp_path / "root.pem"),
            "--json",
        ]
        soon = (now + dt.timedelta(days=10)).date().isoformat()
        later = (now + dt.timedelta(days=200)).date().isoformat()
        assert main([*base, "--at", soon]) == 0
        assert json.loads(capsys.readouterr().out)["results"][0]["status"] == "passes"
        # By then the leaf has expired: no client accepts the chain, pinned or not.
        assert main([*base, "--at", later]) == 1
        assert json.loads(capsys.readouterr().out)["results"][0]["status"] == "invalid-chain"
