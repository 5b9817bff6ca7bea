"""Evidence about one host never passes another host's rule, and rules that cannot be
checked live say so."""

from __future__ import annotations

import datetime as dt

from pinwarden.apps.lint import Evidence, lint_policy
from pinwarden.certs import describe_chain
from pinwarden.pins import Pin
from pinwarden.policy import Policy
from pinwarden.testing import CA, generate_key


def _spare() -> str:
    return str(Pin.from_public_key(generate_key().public_key()))


def test_a_chain_for_one_host_is_not_evidence_for_another_rule() -> None:
    now = dt.datetime.now(dt.timezone.utc)
    root = CA("evidence root")
    api_ca, other_ca = root.intermediate("api CA"), root.intermediate("other CA")
    api = api_ca.issue("api.example.test")
    other = other_ca.issue("other.example.test")
    policy = Policy.from_dict(
        {
            "pin": [
                {"hosts": ["api.example.test"], "pins": [str(api_ca.pin), _spare()]},
                # Only its own chain's keys: no backup. The api chain must not hide that.
                {"hosts": ["other.example.test"], "pins": [str(other_ca.pin), str(other.pin)]},
            ]
        }
    )
    api_chain = tuple(describe_chain([api.cert, api_ca.cert], ends_at_anchor=False))
    findings = lint_policy(policy, Evidence(now, api_chain))
    by_rule = {(f.rule.id, f.rule_index) for f in findings}
    assert ("PW019", 1) in by_rule
    assert ("PW002", 1) not in by_rule
    assert ("PW019", 0) not in by_rule
    # Given the other host's chain too, its missing backup is found.
    other_chain = tuple(describe_chain([other.cert, other_ca.cert], ends_at_anchor=False))
    findings = lint_policy(policy, Evidence(now, api_chain, chains=(other_chain,)))
    by_rule = {(f.rule.id, f.rule_index) for f in findings}
    assert ("PW002", 1) in by_rule
    assert not any(rule_id == "PW019" for rule_id, _ in by_rule)


def test_a_wildcard_only_rule_cannot_be_checked_live() -> None:
    now = dt.datetime.now(dt.timezone.utc)
    policy = Policy.from_dict(
        {"pin": [{"hosts": ["*.example.test"], "pins": [_spare(), _spare()]}]}
    )
    findings = lint_policy(policy, Evidence(now, live=()))
    assert [f.rule.id for f in findings if f.rule.id == "PW017"] == ["PW017"]
    assert "only wildcard patterns" in next(f.message for f in findings if f.rule.id == "PW017")
