"""``pinwarden.apps.simulate``: version × host cells for a rotation, the names a chain is
simulated for, and the path building that decides whether a chain verifies at all."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.apps.simulate import (
    Status,
    Target,
    build_verified_chain,
    names_for_chain,
    simulate,
)
from pinwarden.pins import Pin
from pinwarden.policy import Policy
from pinwarden.testing import CA, Issued, generate_key

NOW = dt.datetime.now(dt.timezone.utc)
_ROOT = CA("property root")
_LEAF = _ROOT.issue("app.test", "127.0.0.1")


@dataclass(frozen=True)
class Rotation:
    """The server moves from the ``old`` intermediate to the ``new`` one (same root)."""

    root: CA
    old: CA
    new: CA
    backup: Pin
    leaf: Issued  # the NEW deployment: issued by ``new``

    def target(self, host: str = "app.test", *, now: dt.datetime = NOW) -> Target:
        chain, problem = build_verified_chain(
            [self.leaf.cert, self.new.cert], host, [self.root.cert], now
        )
        return Target(host, chain, problem)


@pytest.fixture(scope="module")
def rotation() -> Rotation:
    root = CA("rotation root")
    old = root.intermediate("old issuing CA")
    new = root.intermediate("new issuing CA")
    backup = Pin.from_public_key(generate_key().public_key())
    return Rotation(root, old, new, backup, new.issue("app.test"))


def _policy(*pins: Pin, hosts: tuple[str, ...] = ("app.test",), **rule: Any) -> Policy:
    data: dict[str, Any] = {"hosts": list(hosts), "pins": [str(p) for p in pins], **rule}
    return Policy.from_dict({"pin": [data]})


def _statuses(cells: list[Any]) -> dict[str, Status]:
    return {c.version: c.status for c in cells}


def test_rotation_locks_out_only_the_version_without_the_new_key(rotation: Rotation) -> None:
    r = rotation
    expiry = (NOW + dt.timedelta(days=30)).date()
    versions = [
        ("v1", _policy(r.old.pin, r.backup)),
        ("v2", _policy(r.old.pin, r.new.pin, r.backup)),
        ("v3", _policy(r.root.pin, r.backup, expires=expiry.isoformat())),
    ]
    cells = simulate(versions, [r.target()], now=NOW)
    assert [c.version for c in cells] == ["v1", "v2", "v3"]
    assert _statuses(cells) == {
        "v1": Status.LOCKED_OUT,
        "v2": Status.PASSES,
        "v3": Status.PASSES,
    }
    v1, v2, v3 = cells
    assert v1.status.blocks
    assert v1.verdict is not None and v1.verdict.matched_pin is None
    assert "no pin matched" in v1.detail
    assert "\n" not in v1.detail  # one line per cell, for the table
    assert v2.verdict is not None and v2.verdict.matched_pin == r.new.pin
    assert v3.verdict is not None and v3.verdict.matched_pin == r.root.pin


def test_expiry_day_is_enforced_and_the_next_day_fails_open(rotation: Rotation) -> None:
    r = rotation
    expiry = (NOW + dt.timedelta(days=30)).date()
    v3 = [("v3", _policy(r.old.pin, r.backup, expires=expiry.isoformat()))]
    last_moment = dt.datetime.combine(expiry, dt.time(23, 59, 59), dt.timezone.utc)
    first_open = dt.datetime.combine(expiry + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    # v3 pins the OLD intermediate: locked out while enforced, open once expired.
    [enforced] = simulate(v3, [r.target(now=last_moment)], now=last_moment)
    [expired] = simulate(v3, [r.target(now=first_open)], now=first_open)
    assert enforced.status is Status.LOCKED_OUT
    assert expired.status is Status.FAILS_OPEN
    assert not expired.status.blocks
    assert "fails open" in expired.detail


def test_report_only_mismatch_is_reported_not_blocked(rotation: Rotation) -> None:
    r = rotation
    versions = [("v1", _policy(r.old.pin, r.backup, mode="report-only"))]
    [cell] = simulate(versions, [r.target()], now=NOW)
    assert cell.status is Status.REPORTED
    assert not cell.status.blocks


def test_host_outside_every_rule_is_not_pinned(rotation: Rotation) -> None:
    r = rotation
    versions = [("v1", _policy(r.old.pin, r.backup, hosts=("other.test",)))]
    [cell] = simulate(versions, [r.target()], now=NOW)
    assert cell.status is Status.NOT_PINNED


def test_targets_without_a_chain_are_invalid_or_unknown(rotation: Rotation) -> None:
    r = rotation
    versions = [("v1", _policy(r.new.pin, r.backup)), ("v2", _policy(r.root.pin, r.backup))]
    bad = Target("app.test", None, "does not verify for app.test: expired")
    gone = Target("app.test", None, "cannot connect to 127.0.0.1:1", "127.0.0.1", True)
    cells = simulate(versions, [bad, gone], now=NOW)
    assert [(c.version, c.target, c.status) for c in cells] == [
        ("v1", bad, Status.INVALID_CHAIN),
        ("v1", gone, Status.UNKNOWN),
        ("v2", bad, Status.INVALID_CHAIN),
        ("v2", gone, Status.UNKNOWN),
    ]
    # Even a version whose pins would match cannot pass a chain nobody accepts.
    assert cells[0].detail == "does not verify for app.test: expired"
    assert cells[1].detail == "cannot connect to 127.0.0.1:1"
    assert cells[0].verdict is None
    assert gone.label == "app.test (127.0.0.1)"
    assert bad.label == "app.test"


@pytest.mark.parametrize("status", list(Status))
def test_only_lockout_and_invalid_chain_block(status: Status) -> None:
    assert status.blocks is (status in (Status.LOCKED_OUT, Status.INVALID_CHAIN))


# -- the chain: does it verify for the host? ------------------------------------------


def test_verified_chain_runs_from_leaf_to_anchor(rotation: Rotation) -> None:
    r = rotation
    chain, problem = build_verified_chain([r.leaf.cert, r.new.cert], "APP.test", [r.root.cert], NOW)
    assert problem is None
    der = serialization.Encoding.DER
    assert chain == (
        r.leaf.cert.public_bytes(der),
        r.new.cert.public_bytes(der),
        r.root.cert.public_bytes(der),
    )


def test_unrelated_certificates_sent_along_are_not_in_the_verified_chain(
    rotation: Rotation,
) -> None:
    # A server (or attacker) may pad the chain; only the path that verifies counts.
    r = rotation
    stray = CA("stray root").cert
    chain, problem = build_verified_chain(
        [r.leaf.cert, stray, r.old.cert, r.new.cert], "app.test", [r.root.cert], NOW
    )
    assert problem is None and chain is not None
    assert len(chain) == 3
    assert stray.public_bytes(serialization.Encoding.DER) not in chain


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong-name", "does not verify for other.test"),
        ("missing-intermediate", "does not verify for app.test"),
        ("untrusted", "does not verify for app.test"),
        ("expired", "does not verify for app.test"),
        ("no-certificate", "no certificate"),
        ("no-anchor", "the trust store is empty"),
    ],
)
def test_chains_that_do_not_verify_say_why(rotation: Rotation, case: str, expected: str) -> None:
    r = rotation
    certs = [r.leaf.cert, r.new.cert]
    anchors = [r.root.cert]
    host, now = "app.test", NOW
    if case == "wrong-name":
        host = "other.test"
    elif case == "missing-intermediate":
        certs = [r.leaf.cert]
    elif case == "untrusted":
        anchors = [CA("another root").cert]
    elif case == "expired":
        now = NOW + dt.timedelta(days=400)
    elif case == "no-certificate":
        certs = []
    elif case == "no-anchor":
        anchors = []
    chain, problem = build_verified_chain(certs, host, anchors, now)
    assert chain is None
    assert problem is not None and problem.startswith(expected)


def test_ip_address_hosts_verify_against_ip_sans() -> None:
    root = CA("ip root")
    leaf = root.issue("127.0.0.1")
    chain, problem = build_verified_chain([leaf.cert], "127.0.0.1", [root.cert], NOW)
    assert problem is None and chain is not None
    chain, problem = build_verified_chain([leaf.cert], "127.0.0.2", [root.cert], NOW)
    assert chain is None and problem is not None


@settings(max_examples=150, deadline=None)
@given(host=st.text(max_size=80))
def test_any_host_text_gives_a_result_never_an_exception(host: str) -> None:
    chain, problem = build_verified_chain([_LEAF.cert], host, [_ROOT.cert], NOW)
    assert (chain is None) != (problem is None)


# -- which names a chain is simulated for --------------------------------------------


def test_names_are_the_sans_with_wildcards_expanded_to_the_policies_exact_hosts() -> None:
    leaf = CA("names root").issue("API.test.", "*.cdn.test", "::1", "127.0.0.1")
    pins = [Pin.from_public_key(generate_key().public_key()) for _ in range(2)]
    policies = [
        _policy(*pins, hosts=("img.cdn.test", "a.b.cdn.test", "cdn.test", "**.cdn.test")),
        _policy(*pins, hosts=("js.cdn.test", "img.cdn.test", "unrelated.test")),
    ]
    assert names_for_chain(leaf.cert, policies) == [
        "api.test",
        "img.cdn.test",
        "js.cdn.test",
        "::1",
        "127.0.0.1",
    ]


def test_a_leaf_without_san_names_nothing() -> None:
    key = generate_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    assert names_for_chain(cert, [_policy(*_two_pins(), hosts=("app.test",))]) == []


def _two_pins() -> tuple[Pin, Pin]:
    return (
        Pin.from_public_key(generate_key().public_key()),
        Pin.from_public_key(generate_key().public_key()),
    )
