"""verify(): the pure pin check of a verified chain against a policy."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from conftest import World
from pinwarden.pins import Pin
from pinwarden.policy import Mode, Policy
from pinwarden.verify import Outcome, Verdict, verify

DER = serialization.Encoding.DER
UTC = dt.timezone.utc


def _independent_pin(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _chain(world: World) -> list[x509.Certificate]:
    """The verified chain: leaf, intermediate, trust anchor."""
    return [world.leaf.cert, world.intermediate.cert, world.root.cert]


def _ders(world: World) -> list[bytes]:
    return [c.public_bytes(DER) for c in _chain(world)]


@pytest.mark.parametrize(
    ("position", "label"), [(0, "leaf"), (1, "chain position 1"), (2, "chain position 2")]
)
def test_match_at_each_position(world: World, now: dt.datetime, position: int, label: str) -> None:
    cert = _chain(world)[position]
    pin = Pin.from_certificate(cert)
    policy = world.policy(world.backup_pin, pin)
    for chain in (_chain(world), _ders(world)):
        verdict = verify(policy, "localhost", chain, now=now)
        assert verdict.outcome is Outcome.MATCHED
        assert verdict.matched_pin == pin
        assert verdict.matched_position == position
        assert verdict.allowed
        assert not verdict.violation
        assert verdict.chain == tuple(_ders(world))
        assert verdict.rule is policy.rules[0]
        assert verdict.pattern is not None and verdict.pattern.text == "localhost"
        assert verdict.message() == f"localhost: {pin} matched the {label}"


def test_the_nearest_match_is_reported(world: World, now: dt.datetime) -> None:
    policy = world.policy(world.root.pin, world.leaf.pin)
    verdict = verify(policy, "localhost", _chain(world), now=now)
    assert (verdict.matched_pin, verdict.matched_position) == (world.leaf.pin, 0)


def test_mismatch(world: World, now: dt.datetime) -> None:
    stranger = world.other_root.pin
    policy = world.policy(world.backup_pin, stranger)
    verdict = verify(policy, "localhost", _chain(world), now=now)
    assert verdict.outcome is Outcome.MISMATCH
    assert not verdict.allowed
    assert verdict.violation
    assert verdict.matched_pin is None and verdict.matched_position is None
    message = verdict.message()
    lines = [line.strip() for line in message.splitlines()]
    assert lines[0].startswith("localhost: no pin matched the verified chain")
    assert "enforce" in lines[0]
    for cert in _chain(world):
        assert f"{_independent_pin(cert)}: {cert.subject.rfc4514_string()}" in lines
    assert str(world.backup_pin) in lines
    assert str(stranger) in lines
    assert "note:" not in message
    # The chain is listed before the expected pins, in chain order.
    order = [
        lines.index(f"{_independent_pin(c)}: {c.subject.rfc4514_string()}") for c in _chain(world)
    ]
    assert order == sorted(order)
    assert max(order) < lines.index(str(world.backup_pin))


def test_mismatch_with_a_fingerprint_pin_explains_it(world: World, now: dt.datetime) -> None:
    fingerprint = Pin("sha256", world.intermediate.cert.fingerprint(hashes.SHA256()))
    policy = world.policy(world.backup_pin, fingerprint)
    verdict = verify(policy, "localhost", _chain(world), now=now)
    assert verdict.outcome is Outcome.MISMATCH
    message = verdict.message()
    notes = [line.strip() for line in message.splitlines() if line.strip().startswith("note:")]
    assert len(notes) == 1
    assert "fingerprint" in notes[0]
    assert world.intermediate.cert.subject.rfc4514_string() in notes[0]
    assert _independent_pin(world.intermediate.cert) in notes[0]
    # The note follows the pin it is about.
    lines = [line.strip() for line in message.splitlines()]
    assert lines[lines.index(notes[0]) - 1] == str(fingerprint)


def test_not_pinned(world: World, now: dt.datetime) -> None:
    policy = world.policy(world.backup_pin, world.leaf.pin)
    for chain in (_chain(world), []):
        verdict = verify(policy, "other.example", chain, now=now)
        assert verdict.outcome is Outcome.NOT_PINNED
        assert verdict.allowed
        assert not verdict.violation
        assert verdict.rule is None and verdict.pattern is None
        assert verdict.message() == "other.example: no pin rule covers this host"


def test_expiry(world: World) -> None:
    policy = world.policy(world.backup_pin, world.other_root.pin, expires="2027-06-01")
    before = dt.datetime(2027, 6, 1, 23, 59, 59, 999999, tzinfo=UTC)
    after = dt.datetime(2027, 6, 2, tzinfo=UTC)
    enforced = verify(policy, "localhost", _chain(world), now=before)
    assert enforced.outcome is Outcome.MISMATCH
    assert not enforced.allowed
    expired = verify(policy, "localhost", _chain(world), now=after)
    assert expired.outcome is Outcome.EXPIRED
    assert expired.allowed
    assert not expired.violation
    assert expired.rule is policy.rules[0]
    message = expired.message()
    assert "expired" in message
    assert "NOT enforced" in message
    assert "2027-06-02T00:00:00+00:00" in message
    # A matching chain before expiry still matches.
    good = world.policy(world.backup_pin, world.leaf.pin, expires="2027-06-01")
    assert verify(good, "localhost", _chain(world), now=before).outcome is Outcome.MATCHED


def test_expiry_compares_instants_not_wall_clocks(world: World) -> None:
    policy = world.policy(world.backup_pin, world.other_root.pin, expires="2027-06-01")
    paris_summer = dt.timezone(dt.timedelta(hours=2))
    still_june_1st_utc = dt.datetime(2027, 6, 2, 1, 30, tzinfo=paris_summer)
    assert (
        verify(policy, "localhost", _chain(world), now=still_june_1st_utc).outcome
        is Outcome.MISMATCH
    )


def test_report_only_mismatch_is_allowed_but_a_violation(world: World, now: dt.datetime) -> None:
    policy = world.policy(world.other_root.pin, mode="report-only")
    verdict = verify(policy, "localhost", _chain(world), now=now)
    assert verdict.outcome is Outcome.MISMATCH
    assert verdict.rule is not None and verdict.rule.mode is Mode.REPORT_ONLY
    assert verdict.allowed
    assert verdict.violation
    assert "report-only" in verdict.message().splitlines()[0]


def test_report_only_match(world: World, now: dt.datetime) -> None:
    policy = world.policy(world.leaf.pin, mode="report-only")
    verdict = verify(policy, "localhost", _chain(world), now=now)
    assert verdict.outcome is Outcome.MATCHED
    assert verdict.allowed and not verdict.violation


@pytest.mark.parametrize("mode", ["enforce", "report-only"])
def test_empty_chain_for_a_pinned_host(world: World, now: dt.datetime, mode: str) -> None:
    policy = world.policy(world.backup_pin, world.leaf.pin, mode=mode)
    verdict = verify(policy, "localhost", [], now=now)
    assert verdict.outcome is Outcome.NO_CHAIN
    assert not verdict.allowed
    assert verdict.violation
    assert verdict.chain == ()
    assert "no verified certificate chain" in verdict.message()


def test_naive_now_is_refused(world: World) -> None:
    policy = world.policy(world.backup_pin, world.leaf.pin)
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(policy, "localhost", _chain(world), now=dt.datetime(2030, 1, 1))


@pytest.mark.parametrize("position", [0, 1, 2])
def test_legacy_sha1_pins_match(world: World, now: dt.datetime, position: int) -> None:
    cert = _chain(world)[position]
    spki = cert.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    legacy = Pin.parse("sha1/" + base64.b64encode(hashlib.sha1(spki).digest()).decode())
    assert legacy.legacy
    # One sha256 and one sha1 pin may be the same key: that needs allow_single_pin.
    mixed = world.policy(world.backup_pin, legacy, allow_single_pin=True)
    for policy in (mixed, world.policy(legacy, Pin("sha1", bytes(20)))):
        verdict = verify(policy, "localhost", _chain(world), now=now)
        assert verdict.outcome is Outcome.MATCHED
        assert (verdict.matched_pin, verdict.matched_position) == (legacy, position)


def test_legacy_sha1_mismatch(world: World, now: dt.datetime) -> None:
    policy = world.policy(Pin("sha1", bytes(20)), Pin("sha1", bytes(19) + b"\x01"))
    assert verify(policy, "localhost", _chain(world), now=now).outcome is Outcome.MISMATCH


def test_hostname_is_normalised(world: World, now: dt.datetime) -> None:
    policy = world.policy(world.backup_pin, world.leaf.pin)
    verdict = verify(policy, "LocalHost.", _chain(world), now=now)
    assert verdict.hostname == "localhost"
    assert verdict.outcome is Outcome.MATCHED


def test_the_applicable_rule_decides(world: World, now: dt.datetime) -> None:
    policy = Policy.from_dict(
        {
            "pin": [
                {
                    "hosts": ["**.example.com"],
                    "pins": [str(world.backup_pin), str(world.other_root.pin)],
                },
                {
                    "hosts": ["api.example.com"],
                    "pins": [str(world.backup_pin), str(world.root.pin)],
                },
            ]
        }
    )
    api = verify(policy, "api.example.com", _chain(world), now=now)
    assert api.outcome is Outcome.MATCHED
    assert api.pattern is not None and api.pattern.text == "api.example.com"
    www = verify(policy, "www.example.com", _chain(world), now=now)
    assert www.outcome is Outcome.MISMATCH
    assert www.pattern is not None and www.pattern.text == "**.example.com"


def test_verdict_allowed_table() -> None:
    rule = Policy.from_dict(
        {
            "pin": [
                {
                    "hosts": ["a.example"],
                    "pins": [str(Pin("sha256", bytes(32)))],
                    "mode": "report-only",
                }
            ]
        }
    ).rules[0]
    enforce = Policy.from_dict(
        {
            "pin": [
                {
                    "hosts": ["a.example"],
                    "pins": [str(Pin("sha256", bytes(32))), str(Pin("sha256", b"\x01" * 32))],
                }
            ]
        }
    ).rules[0]
    assert not Verdict("a.example", Outcome.MISMATCH, (), enforce).allowed
    assert Verdict("a.example", Outcome.MISMATCH, (), rule).allowed
    assert not Verdict("a.example", Outcome.MISMATCH, ()).allowed
    assert not Verdict("a.example", Outcome.NO_CHAIN, (), rule).allowed
    assert Verdict("a.example", Outcome.NOT_PINNED, ()).allowed
    assert Outcome("not-pinned") is Outcome.NOT_PINNED
