"""``pinwarden.apps.recommend``: which level to pin and why, the backup it always needs,
and the known-CA table that says which CAs rotate intermediates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.apps.recommend import (
    INTERMEDIATE_MIN_REMAINING,
    KnownCA,
    Recommendation,
    load_known_cas,
    recommend,
)
from pinwarden.certs import CertInfo, describe_chain
from pinwarden.errors import InputError, PolicyError
from pinwarden.pins import Pin
from pinwarden.testing import CA, Issued, generate_key

NOW = dt.datetime.now(dt.timezone.utc)
TEST_KIT_CA = """
[[ca]]
name = "Test kit CA"
match = ["O=pinwarden test kit"]
rotating_intermediates = true
intermediates = ["issuing A", "issuing B"]
note = "Rotates on purpose."
"""


def _chain(issued: Issued) -> list[CertInfo]:
    """The verified chain of ``issued``: leaf, intermediates, root."""
    return describe_chain([issued.cert, *issued.chain, issued.root], ends_at_anchor=True)


def _backup() -> tuple[str, Pin]:
    return ("backup key", Pin.from_public_key(generate_key().public_key()))


def _rec(
    *chains: Sequence[CertInfo],
    backups: Sequence[tuple[str, Pin]] | None = None,
    known: Sequence[KnownCA] = (),
) -> Recommendation:
    return recommend(
        ["app.test"],
        list(chains),
        [_backup()] if backups is None else backups,
        now=NOW,
        known_cas=known,
    )


@pytest.fixture(scope="module")
def root() -> CA:
    return CA("recommend root")


def test_long_lived_intermediate_of_an_unknown_ca_is_pinned_with_the_backup(root: CA) -> None:
    intermediate = root.intermediate("issuing CA")
    issued = intermediate.issue("app.test")
    backup = _backup()
    rec = _rec(_chain(issued), backups=[backup])
    assert rec.level == "intermediate"
    assert [(p.pin, p.role) for p in rec.pins] == [
        (intermediate.pin, "current"),
        (backup[1], "backup"),
    ]
    assert issued.pin not in [p.pin for p in rec.pins]
    assert "90-day" in rec.reasons[0] and "not the leaf" in rec.reasons[0]
    assert rec.known_ca is None
    assert rec.warnings == ()


@pytest.mark.parametrize("days", [47, 90, 398, 825])
def test_never_the_leaf_whatever_its_lifetime(root: CA, days: int) -> None:
    start = NOW - dt.timedelta(days=1)
    issued = root.intermediate().issue(
        "app.test", not_before=start, not_after=start + dt.timedelta(days=days)
    )
    rec = _rec(_chain(issued))
    assert rec.level in ("intermediate", "root")
    assert issued.pin not in {p.pin for p in rec.pins}
    assert f"{days}" in rec.reasons[0]


def test_intermediate_expiring_within_two_years_means_the_root(root: CA) -> None:
    intermediate = root.intermediate(not_after=NOW + dt.timedelta(days=500))
    rec = _rec(_chain(intermediate.issue("app.test")))
    assert rec.level == "root"
    assert [p.pin for p in rec.pins if p.role == "current"] == [root.pin]
    assert intermediate.pin not in {p.pin for p in rec.pins}
    assert any("expires in" in r for r in rec.reasons)


def test_the_two_year_threshold(root: CA) -> None:
    margin = dt.timedelta(days=2)
    long_enough = root.intermediate(not_after=NOW + INTERMEDIATE_MIN_REMAINING + margin)
    too_short = root.intermediate(not_after=NOW + INTERMEDIATE_MIN_REMAINING - margin)
    assert _rec(_chain(long_enough.issue("app.test"))).level == "intermediate"
    assert _rec(_chain(too_short.issue("app.test"))).level == "root"


def test_a_ca_known_to_rotate_intermediates_means_the_root(root: CA) -> None:
    known = load_known_cas(TEST_KIT_CA)
    rec = _rec(_chain(root.intermediate().issue("app.test")), known=known)
    assert rec.level == "root"
    assert rec.known_ca is not None and rec.known_ca.name == "Test kit CA"
    assert any("issuing A, issuing B" in r and "Rotates on purpose." in r for r in rec.reasons)


def test_a_leaf_issued_by_the_root_pins_the_root(root: CA) -> None:
    rec = _rec(_chain(root.issue("app.test")))
    assert rec.level == "root"
    assert [p.pin for p in rec.pins if p.role == "current"] == [root.pin]


def test_backups_in_the_chain_are_left_out_with_a_warning(root: CA) -> None:
    issued = root.intermediate().issue("app.test")
    leaf_key = ("the leaf's own key", issued.pin)
    backup = _backup()
    rec = _rec(_chain(issued), backups=[leaf_key, backup])
    assert issued.pin not in {p.pin for p in rec.pins}
    assert [p.pin for p in rec.pins if p.role == "backup"] == [backup[1]]
    assert len(rec.warnings) == 1
    assert "the leaf's own key" in rec.warnings[0] and "not a backup" in rec.warnings[0]


@pytest.mark.parametrize("backups", ["none", "only-in-chain"])
def test_no_backup_outside_the_chain_is_refused(root: CA, backups: str) -> None:
    issued = root.intermediate().issue("app.test")
    given_backups = [] if backups == "none" else [("the root", root.pin)]
    with pytest.raises(InputError, match="backup"):
        _rec(_chain(issued), backups=given_backups)


def test_no_chain_is_refused() -> None:
    with pytest.raises(InputError, match="no verified chain"):
        recommend(["app.test"], [], [_backup()], now=NOW)
    with pytest.raises(InputError, match="no verified chain"):
        recommend(["app.test"], [[]], [_backup()], now=NOW)


def test_two_chains_from_two_intermediates_pin_the_root(root: CA) -> None:
    one, two = root.intermediate("one"), root.intermediate("two")
    rec = _rec(_chain(one.issue("app.test")), _chain(two.issue("app.test")))
    assert rec.level == "root"
    assert [p.pin for p in rec.pins if p.role == "current"] == [root.pin]
    assert any("2 different chains" in r for r in rec.reasons)
    assert any("2 different intermediates" in r for r in rec.reasons)


def test_two_chains_under_two_roots_pin_both_roots(root: CA) -> None:
    other = CA("second root")
    one, two = root.intermediate("one"), other.intermediate("two")
    rec = _rec(_chain(one.issue("app.test")), _chain(two.issue("app.test")))
    assert rec.level == "root"
    assert [p.pin for p in rec.pins if p.role == "current"] == [root.pin, other.pin]


def test_level_does_not_depend_on_which_address_answered_first(root: CA) -> None:
    # Addresses come in DNS order; whether the short-lived intermediate's address comes
    # first must not decide between a safe and an unsafe pin set.
    lasting = _chain(root.intermediate("lasting").issue("app.test"))
    short = root.intermediate("short-lived", not_after=NOW + dt.timedelta(days=300))
    ending = _chain(short.issue("app.test"))
    backups = [_backup()]
    first = _rec(ending, lasting, backups=backups)
    second = _rec(lasting, ending, backups=backups)
    assert first.level == "root"
    assert second.level == first.level
    assert short.pin not in {p.pin for p in second.pins}


def test_expiry_is_a_year_ahead_but_never_after_the_pinned_certificates(root: CA) -> None:
    lasting = _rec(_chain(root.intermediate().issue("app.test")))
    assert lasting.expires == (NOW + dt.timedelta(days=364)).date()
    expiring_root = CA("root ending soon", not_after=NOW + dt.timedelta(days=200))
    rec = _rec(_chain(expiring_root.issue("app.test", not_after=NOW + dt.timedelta(days=90))))
    assert rec.level == "root"
    policy = rec.policy()
    [rule] = policy.rules
    assert rule.expires_at is not None
    assert rule.expires_at <= expiring_root.cert.not_valid_after_utc
    assert any("plan its successor" in w for w in rec.warnings)


def test_the_policy_is_what_the_loader_reads(root: CA) -> None:
    rec = _rec(_chain(root.intermediate().issue("app.test")))
    policy = rec.policy()
    [rule] = policy.rules
    assert [p.text for p in rule.hosts] == ["app.test"]
    assert rule.pins == tuple(p.pin for p in rec.pins)
    assert rule.mode.value == "enforce"
    assert rule.expires_at == dt.datetime.combine(
        rec.expires + dt.timedelta(days=1), dt.time(), dt.timezone.utc
    )


# -- the known-CA table -----------------------------------------------------------------


def test_bundled_table_knows_the_rotating_public_cas() -> None:
    known = {ca.name: ca for ca in load_known_cas()}
    assert {"Let's Encrypt", "Google Trust Services", "Amazon"} <= set(known)
    lets_encrypt = known["Let's Encrypt"]
    assert lets_encrypt.rotating_intermediates
    assert lets_encrypt.matches("CN=R11,O=Let's Encrypt,C=US")
    assert not lets_encrypt.matches("CN=pinwarden test intermediate,O=pinwarden test kit")
    assert all(ca.source.startswith("https://") for ca in known.values())


def test_extra_entries_are_added_and_replace_bundled_ones_by_name() -> None:
    extra = (
        TEST_KIT_CA
        + """
[[ca]]
name = "Let's Encrypt"
match = ["O=Let's Encrypt"]
rotating_intermediates = false
note = "replaced"
"""
    )
    known = load_known_cas(extra, extra_source="mine.toml")
    names = [ca.name for ca in known]
    assert names.count("Let's Encrypt") == 1
    assert "Test kit CA" in names
    replaced = next(ca for ca in known if ca.name == "Let's Encrypt")
    assert replaced.rotating_intermediates is False
    assert replaced.note == "replaced"
    assert replaced.intermediates == ()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[[ca]]\nmatch = ['x']\n", "ca[0].name"),
        ("[[ca]]\nname = 'x'\n", "ca[0].match"),
        ("[[ca]]\nname = 'x'\nmatch = 'O=x'\n", "ca[0].match"),
        ("[[ca]]\nname = 'x'\nmatch = ['x']\nroots = [1]\n", "ca[0].roots"),
        ("ca = 3\n", "ca"),
        ("ca = [3]\n", "ca[0]"),
        ("[[ca]\n", None),
    ],
)
def test_malformed_extra_table_names_the_file_and_key(text: str, key: str | None) -> None:
    with pytest.raises(PolicyError) as caught:
        load_known_cas(text, extra_source="mine.toml")
    assert caught.value.source == "mine.toml"
    assert caught.value.key == key


def test_a_bad_rotating_flag_names_the_key_as_written() -> None:
    text = "[[ca]]\nname = 'x'\nmatch = ['x']\nrotating_intermediates = 'yes'\n"
    with pytest.raises(PolicyError) as caught:
        load_known_cas(text, extra_source="mine.toml")
    assert caught.value.key == "ca[0].rotating_intermediates"


def test_a_misspelt_key_is_refused_not_ignored() -> None:
    # A typo that silently made a rotating CA non-rotating would recommend the very
    # intermediate pin the table exists to prevent.
    text = "[[ca]]\nname = 'x'\nmatch = ['x']\nrotating_intermediate = true\n"
    with pytest.raises(PolicyError, match="rotating_intermediate"):
        load_known_cas(text, extra_source="mine.toml")


_VALUES = st.one_of(
    st.integers(-5, 5).map(str),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(max_size=10).map(lambda s: '"' + s.encode("unicode_escape").decode() + '"'),
    st.sampled_from(["[]", '["O=x"]', "[1, 2]", '[["a"]]', "{ a = 1 }", "1979-05-27"]),
)
_KEYS = st.sampled_from(
    ["name", "match", "rotating_intermediates", "intermediates", "roots", "note", "source"]
)


@settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(st.dictionaries(_KEYS, _VALUES, max_size=7), max_size=3),
    junk=st.text(max_size=30),
)
def test_any_extra_table_loads_or_raises_policy_error(
    entries: list[dict[str, str]], junk: str
) -> None:
    text = "".join(
        "[[ca]]\n" + "".join(f"{k} = {v}\n" for k, v in entry.items()) for entry in entries
    )
    for document in (text, junk, text + junk):
        error: PolicyError | None = None
        known: list[KnownCA] = []
        try:
            known = load_known_cas(document, extra_source="fuzz.toml")
        except PolicyError as exc:
            error = exc
        if error is not None:
            assert "fuzz.toml" in str(error)
        for ca in known:
            assert ca.name and ca.match
            assert isinstance(ca.rotating_intermediates, bool)
