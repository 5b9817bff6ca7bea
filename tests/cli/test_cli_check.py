"""``pinwarden check``: every address of live local endpoints against a policy; an
address that could not be checked is "unknown" (exit 3), never "ok"."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cryptography.hazmat.primitives import serialization

from pinwarden.cli import main
from pinwarden.pins import Pin
from pinwarden.probe import probe as real_probe
from pinwarden.testing import CA, DNSServer, TLSServer, generate_key
from tls_support import PeakCounter, closed_port, two_addresses

NOW = dt.datetime.now(dt.timezone.utc)
TODAY = NOW.date()
MIDNIGHT = dt.datetime.combine(TODAY, dt.time(), dt.timezone.utc)


@dataclass(frozen=True)
class Site:
    """app.test, pinned to the ``pinned`` intermediate (and a backup); ``other`` is an
    intermediate of the same root that the policy does not pin."""

    root: CA
    pinned: CA
    other: CA
    backup: Pin
    dir: Path

    @property
    def cafile(self) -> str:
        return str(self.dir / "root.pem")

    def policy(self, *pins: Pin, name: str = "pins.toml", **rule: Any) -> str:
        table: dict[str, Any] = {
            "hosts": ["app.test"],
            "pins": [str(p) for p in pins or (self.pinned.pin, self.backup)],
        }
        table.update(rule)
        path = self.dir / name
        path.write_text(tomli_w.dumps({"version": 1, "pin": [table]}), encoding="utf-8")
        return str(path)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    root = CA("check root")
    # Expires 1000 days and 12 hours after today's midnight: --at TODAY gives 1000 days left.
    pinned = root.intermediate(
        "pinned issuing CA", not_after=MIDNIGHT + dt.timedelta(days=1000, hours=12)
    )
    s = Site(
        root,
        pinned,
        root.intermediate("other issuing CA"),
        Pin.from_public_key(generate_key().public_key()),
        tmp_path,
    )
    (tmp_path / "root.pem").write_bytes(root.cert_pem)
    return s


@pytest.fixture
def dns() -> Iterator[DNSServer]:
    with DNSServer() as server:
        yield server


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = _run(capsys, *args, "--json")
    return code, json.loads(out)


def _common(site: Site, dns: DNSServer) -> list[str]:
    return ["--nameserver", dns.nameserver, "--cafile", site.cafile]


def test_two_addresses_one_name_are_judged_separately(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dns.add("app.test", "A", "127.0.0.1")
    dns.add("app.test", "A", "127.0.0.2")
    policy = site.policy()
    good, bad = site.pinned.issue("app.test"), site.other.issue("app.test")
    with two_addresses(good, bad) as port:
        target = f"app.test:{port}"
        code, data = _json(
            capsys, "--policy", policy, target, *_common(site, dns), "--at", TODAY.isoformat()
        )
        text_code, out, _ = _run(capsys, "--policy", policy, target, *_common(site, dns))
    assert code == text_code == 1
    assert set(data) == {"policy", "at", "results", "summary"}
    assert data["policy"] == policy
    assert data["summary"] == {"ok": 1, "mismatch": 1}
    first, second = data["results"]
    assert [(r["host"], r["port"], r["address"], r["status"]) for r in data["results"]] == [
        ("app.test", port, "127.0.0.1", "ok"),
        ("app.test", port, "127.0.0.2", "mismatch"),
    ]
    assert first["matched_pin"] == str(site.pinned.pin)
    assert first["matched_position"] == 1
    [pinned] = first["pinned_certificates"]
    assert pinned["pin"] == str(site.pinned.pin)
    assert pinned["position"] == "intermediate"
    assert pinned["days_left"] == 1000
    assert [c["pin"] for c in first["verified_chain"]] == [
        str(good.pin),
        str(site.pinned.pin),
        str(site.root.pin),
    ]
    assert second["matched_pin"] is None
    assert second["pinned_certificates"] == []
    assert str(site.other.pin) in second["detail"]  # the chain it served, for the fix
    assert f"app.test:{port} at 127.0.0.1: ok" in out
    assert f"app.test:{port} at 127.0.0.2: mismatch" in out
    assert "1 mismatch, 1 ok" in out


def test_all_addresses_ok_is_exit_0(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dns.add("app.test", "A", "127.0.0.1")
    dns.add("app.test", "A", "127.0.0.2")
    policy = site.policy(site.pinned.pin, site.other.pin, site.backup)
    with two_addresses(site.pinned.issue("app.test"), site.other.issue("app.test")) as port:
        code, out, _ = _run(capsys, "--policy", policy, f"app.test:{port}", *_common(site, dns))
    assert code == 0
    assert "2 ok" in out
    assert out.count("days left") == 2


def test_hosts_default_to_the_policy_names_on_port(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dns.add("app.test", "A", "127.0.0.1")
    dns.add("api.test", "A", "127.0.0.1")
    pins = [str(site.pinned.pin), str(site.backup)]
    path = site.dir / "two.toml"
    path.write_text(
        tomli_w.dumps(
            {
                "pin": [
                    {"hosts": ["app.test"], "pins": pins},
                    {"hosts": ["**.api.test", "*.img.test"], "pins": pins},
                ]
            }
        )
    )
    with TLSServer(site.pinned.issue("app.test", "api.test")) as server:
        code, data = _json(
            capsys, "--policy", str(path), "--port", str(server.port), *_common(site, dns)
        )
    assert code == 0
    # *.img.test names no host to connect to; **.api.test includes api.test itself.
    assert [(r["host"], r["port"], r["status"]) for r in data["results"]] == [
        ("app.test", server.port, "ok"),
        ("api.test", server.port, "ok"),
    ]


@pytest.mark.parametrize("fault", ["NXDOMAIN", "SERVFAIL", "closed-port"])
def test_an_address_that_cannot_be_checked_is_unknown_never_ok(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    port = closed_port()
    if fault != "NXDOMAIN":
        dns.add("app.test", "A", "127.0.0.1")
    if fault == "SERVFAIL":
        dns.fail("app.test", "SERVFAIL")
    args = ["--policy", site.policy(), f"app.test:{port}", *_common(site, dns)]
    code, data = _json(capsys, *args)
    assert code == 3
    [result] = data["results"]
    assert result["status"] == "unknown"
    assert result["matched_pin"] is None
    assert data["summary"] == {"unknown": 1}
    if fault == "closed-port":
        assert result["address"] == "127.0.0.1"
        assert f"127.0.0.1:{port}" in result["detail"]
    else:
        assert result["address"] is None
        assert "app.test" in result["detail"] and fault in result["detail"]
    code, out, _ = _run(capsys, *args)
    assert code == 3
    assert "unknown" in out
    assert ": ok" not in out
    assert out.splitlines()[-1] == "1 unknown"


def test_one_unreachable_address_beside_a_good_one_is_still_exit_3(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dns.add("app.test", "A", "127.0.0.1")
    dns.add("app.test", "A", "127.0.0.2")  # nothing listens there
    with TLSServer(site.pinned.issue("app.test")) as server:
        code, data = _json(
            capsys, "--policy", site.policy(), f"app.test:{server.port}", *_common(site, dns)
        )
    assert code == 3
    assert [(r["address"], r["status"]) for r in data["results"]] == [
        ("127.0.0.1", "ok"),
        ("127.0.0.2", "unknown"),
    ]
    assert f"127.0.0.2:{server.port}" in data["results"][1]["detail"]


def test_a_chain_that_does_not_verify_is_invalid_chain(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dns.add("app.test", "A", "127.0.0.1")
    stranger = CA("unknown root").intermediate().issue("app.test")
    with TLSServer(stranger) as server:
        code, data = _json(
            capsys, "--policy", site.policy(), f"app.test:{server.port}", *_common(site, dns)
        )
    assert code == 1
    [result] = data["results"]
    assert result["status"] == "invalid-chain"
    assert result["verified_chain"] is None
    assert result["detail"].startswith("does not verify")


def test_an_expired_rule_is_expired(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dns.add("app.test", "A", "127.0.0.1")
    yesterday = TODAY - dt.timedelta(days=1)
    policy = site.policy(site.root.pin, site.backup, expires=yesterday)
    with TLSServer(site.other.issue("app.test")) as server:
        code, data = _json(
            capsys, "--policy", policy, f"app.test:{server.port}", *_common(site, dns)
        )
        # The same rule, judged as of its last day, is still enforced and matches.
        # (the last second of it: the test kit's certificates begin a day before now)
        on_last_day = ["--at", f"{yesterday.isoformat()}T23:59:59Z"]
        _, before = _json(
            capsys, "--policy", policy, f"app.test:{server.port}", *_common(site, dns), *on_last_day
        )
    assert code == 0
    [result] = data["results"]
    assert result["status"] == "expired"
    assert result["matched_pin"] is None
    assert "NOT enforced" in result["detail"]
    assert [r["status"] for r in before["results"]] == ["ok"]


def test_a_host_outside_the_policy_is_not_pinned(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dns.add("www.test", "A", "127.0.0.1")
    with TLSServer(site.other.issue("www.test")) as server:
        code, data = _json(
            capsys, "--policy", site.policy(), f"www.test:{server.port}", *_common(site, dns)
        )
    assert code == 0
    assert [r["status"] for r in data["results"]] == ["not-pinned"]


def test_concurrency_one_checks_everything_one_at_a_time(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = PeakCounter(real_probe, 0.05)
    monkeypatch.setattr("pinwarden.apps.live.probe", counter)
    for name in ("app.test", "api.test", "www.test"):
        dns.add(name, "A", "127.0.0.1")
        dns.add(name, "A", "127.0.0.2")
    leaf = site.pinned.issue("app.test", "api.test", "www.test")
    with two_addresses(leaf, leaf) as port:
        targets = [f"{n}:{port}" for n in ("app.test", "api.test", "www.test")]
        code, data = _json(
            capsys,
            "--policy",
            site.policy(),
            *targets,
            *_common(site, dns),
            "--concurrency",
            "1",
        )
    assert code == 0
    assert counter.peak == 1
    assert [(r["host"], r["address"]) for r in data["results"]] == [
        (n, a) for n in ("app.test", "api.test", "www.test") for a in ("127.0.0.1", "127.0.0.2")
    ]
    assert [r["status"] for r in data["results"]] == ["ok", "ok"] + ["not-pinned"] * 4


def test_a_dns_timeout_is_unknown_within_a_few_seconds(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dns.fail("app.test", "timeout")
    start = time.monotonic()
    code, data = _json(
        capsys, "--policy", site.policy(), "app.test:443", *_common(site, dns), "--timeout", "1"
    )
    assert time.monotonic() - start < 5
    assert code == 3
    [result] = data["results"]
    assert result["status"] == "unknown"
    assert "app.test" in result["detail"] and "timed out" in result["detail"]


def test_a_server_that_never_answers_the_handshake_times_out(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dns.add("app.test", "A", "127.0.0.1")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes TCP; nobody ever speaks TLS
        port = silent.getsockname()[1]
        start = time.monotonic()
        code, data = _json(
            capsys,
            "--policy",
            site.policy(),
            f"app.test:{port}",
            *_common(site, dns),
            "--timeout",
            "1",
        )
        elapsed = time.monotonic() - start
    assert elapsed < 5
    assert code == 3
    [result] = data["results"]
    assert result["status"] == "unknown"
    assert f"127.0.0.1:{port}" in result["detail"]


def test_a_certificate_fingerprint_pin_is_warned_about(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    der = site.pinned.cert.public_bytes(serialization.Encoding.DER)
    fingerprint = "sha256/" + base64.b64encode(hashlib.sha256(der).digest()).decode()
    dns.add("app.test", "A", "127.0.0.1")
    policy = site.policy(Pin.parse(fingerprint), site.backup)
    with TLSServer(site.pinned.issue("app.test")) as server:
        code, _, err = _run(
            capsys, "--policy", policy, f"app.test:{server.port}", *_common(site, dns)
        )
    assert code == 1
    assert "warning:" in err and "fingerprint" in err
    assert str(site.pinned.pin) in err


# -- bad input ------------------------------------------------------------------------


def test_malformed_policy_is_exit_2_naming_the_file(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = site.dir / "broken.toml"
    path.write_text('[[pin]]\nhosts = ["app.test"]\npins = ["sha256/short"]\n')
    code, out, err = _run(capsys, "--policy", str(path), "app.test", *_common(site, dns))
    assert code == 2
    assert out == ""
    assert str(path) in err and "pin[0].pins[0]" in err
    assert dns.queries == []  # nothing was looked up for a policy that did not load


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--concurrency", "0"], "--concurrency"),
        (["--timeout", "0"], "--timeout"),
        (["--at", "soon"], "--at"),
        (["https://app.test/"], "URL"),
        (["app.test:99999"], "port"),
    ],
)
def test_bad_options_are_exit_2(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str], args: list[str], problem: str
) -> None:
    code, out, err = _run(capsys, "--policy", site.policy(), *args, *_common(site, dns))
    assert code == 2
    assert out == ""
    assert problem in err


def test_bad_cafile_is_exit_2_naming_it(
    site: Site, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = site.dir / "bad-ca.pem"
    bad.write_text("nothing here\n")
    code, _, err = _run(
        capsys,
        "--policy",
        site.policy(),
        "app.test",
        "--nameserver",
        dns.nameserver,
        "--cafile",
        str(bad),
    )
    assert code == 2
    assert str(bad) in err


def test_at_a_date_after_the_leaf_expires_the_chain_is_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    root = CA("check date root")
    issuing = root.intermediate("check date CA")
    leaf = issuing.issue("localhost", not_after=now + dt.timedelta(days=80))
    (tmp_path / "root.pem").write_bytes(root.cert_pem)
    backup = Pin.from_public_key(generate_key().public_key())
    policy = tmp_path / "pins.toml"
    policy.write_text(f'[[pin]]\nhosts = ["localhost"]\npins = ["{issuing.pin}", "{backup}"]\n')
    with TLSServer(leaf) as server:
        args = [
            "check",
            "--policy",
            str(policy),
            f"localhost:{server.port}",
            "--cafile",
            str(tmp_path / "root.pem"),
            "--json",
            "--at",
        ]
        assert main([*args, (now + dt.timedelta(days=10)).date().isoformat()]) == 0
        assert json.loads(capsys.readouterr().out)["results"][0]["status"] == "ok"
        assert main([*args, (now + dt.timedelta(days=200)).date().isoformat()]) == 1
        result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["status"] == "invalid-chain"
    assert "expires on" in result["detail"]
