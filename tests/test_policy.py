"""Pin policies: host patterns, which rule applies, validation with precise messages, and
reading policy files."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import idna
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pinwarden.errors import PolicyError
from pinwarden.hosts import HostPattern, normalize_host
from pinwarden.pins import Pin
from pinwarden.policy import Mode, PinRule, Policy

SETTINGS = settings(max_examples=200, deadline=None)
UTC = dt.timezone.utc


def _pin(seed: str) -> str:
    return str(Pin("sha256", hashlib.sha256(seed.encode()).digest()))


P1, P2, P3 = _pin("one"), _pin("two"), _pin("three")


def rule(*hosts: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"hosts": list(hosts), "pins": [P1, P2]}
    data.update(extra)
    return data


def policy(*rules: dict[str, Any]) -> Policy:
    return Policy.from_dict({"pin": list(rules)})


def covered(p: Policy, host: str) -> bool:
    return p.rule_for(host) is not None


def applies(p: Policy, host: str) -> int | None:
    """Index of the rule that applies to ``host``."""
    match = p.rule_for(host)
    if match is None:
        return None
    return next(i for i, r in enumerate(p.rules) if r is match.rule)


# -- host patterns ----------------------------------------------------------------------------


def test_exact_name() -> None:
    p = policy(rule("api.example.com"))
    assert covered(p, "api.example.com")
    for host in ("example.com", "x.api.example.com", "api.example.co", "xapi.example.com"):
        assert not covered(p, host), host


def test_single_star_is_exactly_one_label() -> None:
    p = policy(rule("*.example.com"))
    assert covered(p, "a.example.com")
    assert covered(p, "www.example.com")
    assert not covered(p, "example.com")
    assert not covered(p, "a.b.example.com")
    assert not covered(p, "aexample.com")


def test_double_star_is_the_domain_and_every_depth() -> None:
    p = policy(rule("**.example.com"))
    for host in ("example.com", "a.example.com", "a.b.c.d.example.com"):
        assert covered(p, host), host
    for host in ("com", "badexample.com", "example.com.evil", "example.org"):
        assert not covered(p, host), host


def test_include_subdomains_on_a_plain_name() -> None:
    p = policy(rule("example.com", include_subdomains=True))
    for host in ("example.com", "a.example.com", "a.b.example.com"):
        assert covered(p, host), host
    assert not covered(p, "notexample.com")


def test_include_subdomains_on_a_single_star() -> None:
    p = policy(rule("*.example.com", include_subdomains=True))
    assert covered(p, "a.example.com")
    assert covered(p, "a.b.c.example.com")
    assert not covered(p, "example.com")


def test_case_and_trailing_dots() -> None:
    p = policy(rule("API.Example.COM.", "*.CDN.example.com"))
    for host in ("api.example.com", "API.EXAMPLE.COM", "api.example.com.", "Api.Example.Com."):
        assert covered(p, host), host
    assert covered(p, "X.Cdn.Example.Com.")
    assert normalize_host("WWW.Example.COM.") == "www.example.com"


def test_unicode_pattern_matches_its_a_label() -> None:
    p = policy(rule("bücher.example", "*.Bücher.test"))
    assert covered(p, "xn--bcher-kva.example")
    assert covered(p, "XN--BCHER-KVA.EXAMPLE.")
    assert covered(p, "bücher.example")
    assert covered(p, "shop.xn--bcher-kva.test")
    assert not covered(p, "xn--bcher-kva.test")
    # And an A-label pattern covers the Unicode spelling.
    q = policy(rule("xn--bcher-kva.example"))
    assert covered(q, "bücher.example")


@pytest.mark.parametrize("name", ["straße.example", "ευχαριστώ.example", "bücher.example"])
def test_unicode_pattern_matches_the_a_label_clients_send(name: str) -> None:
    """httpx, requests and urllib3 send IDNA 2008 (UTS #46) A-labels, computed here with
    the ``idna`` package they use: "straße" is xn--strae-oqa, not IDNA 2003's "strasse"."""
    a_label = idna.encode(name, uts46=True).decode("ascii")
    assert covered(policy(rule(name)), a_label)
    # The ssl module itself encodes a Unicode server_hostname with IDNA 2003
    # ("strasse"): that spelling must not escape the rule either.
    legacy = name.encode("idna").decode("ascii")
    assert covered(policy(rule(name)), legacy)
    assert covered(policy(rule("**." + name)), "www." + legacy)


def test_ip_addresses() -> None:
    p = policy(rule("192.0.2.1", "2001:db8::1", "[2001:db8::2]"))
    assert covered(p, "192.0.2.1")
    assert not covered(p, "192.0.2.10")
    assert not covered(p, "192.0.2.1.example")
    assert covered(p, "2001:db8::1")
    assert covered(p, "2001:DB8::1")
    assert covered(p, "2001:db8::2")
    assert not covered(p, "2001:db8::3")


@pytest.mark.parametrize(
    "host", ["2001:db8:0:0:0:0:0:1", "2001:0db8::0001", "2001:DB8:0::1", "192.000.002.001"]
)
def test_ip_address_in_another_spelling(host: str) -> None:
    """The same IPv6 address spelled differently passes hostname verification (OpenSSL
    compares IP addresses by value), so it must get the same pin rule."""
    assert covered(policy(rule("2001:db8::1", "192.0.2.1")), host)


@pytest.mark.parametrize("pattern", ["*.192.0.2.1", "**.192.0.2.1", "**.::1"])
def test_ip_address_cannot_have_subdomains(pattern: str) -> None:
    with pytest.raises(PolicyError, match="IP address cannot have subdomains"):
        policy(rule(pattern))
    with pytest.raises(PolicyError, match="IP address cannot have subdomains"):
        policy(rule("192.0.2.1", include_subdomains=True))


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "non-empty string"),
        ("   ", "non-empty string"),
        ("a*.example.com", r"'\*' is only allowed as a whole first label"),
        ("*example.com", r"'\*' is only allowed"),
        ("www.*.example.com", r"'\*' is only allowed"),
        ("***.example.com", r"'\*' is only allowed"),
        ("*.", "not a valid DNS label"),
        ("-bad.example.com", "'-bad' is not a valid DNS label"),
        ("bad-.example.com", "'bad-' is not a valid DNS label"),
        ("exa mple.com", "contains whitespace"),
        ("a..example.com", "'' is not a valid DNS label"),
        ("a" * 64 + ".example.com", "not a valid DNS label"),
        ("http://example.com", "not a valid DNS label"),
    ],
)
def test_invalid_patterns(pattern: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as info:
        policy(rule("ok.example.com", pattern))
    assert info.value.key == "pin[0].hosts[1]"


def test_pattern_objects() -> None:
    assert HostPattern.parse("*.Example.com.") == HostPattern(
        "*.Example.com.", "example.com", "one-label", False
    )
    assert HostPattern.parse("**.example.com").kind == "subtree"
    assert HostPattern.parse("example.com", include_subdomains=True).kind == "subtree"
    assert str(HostPattern.parse("*.example.com")) == "*.example.com"
    assert [HostPattern.parse(t).rank for t in ("a.b", "*.a.b", "**.a.b")] == [3, 2, 1]
    with pytest.raises(PolicyError):
        HostPattern.parse(5)  # type: ignore[arg-type]


# -- host patterns: properties --------------------------------------------------------------

LABELS = ["a", "b", "c", "xn--bcher-kva"]
names = st.lists(st.sampled_from(LABELS), min_size=1, max_size=5).map(".".join)
bases = st.lists(st.sampled_from(LABELS), min_size=1, max_size=3).map(".".join)


def _under(host: str, base: str) -> bool:
    return host.endswith("." + base)


def _one_deeper(host: str, base: str) -> bool:
    return _under(host, base) and host.count(".") == base.count(".") + 1


@SETTINGS
@given(names, bases)
def test_pattern_matching_properties(host: str, base: str) -> None:
    expectations = {
        (base, False): host == base,
        (f"*.{base}", False): _one_deeper(host, base),
        (f"**.{base}", False): host == base or _under(host, base),
        (base, True): host == base or _under(host, base),
        (f"*.{base}", True): _under(host, base),
        (f"**.{base}", True): host == base or _under(host, base),
    }
    for (text, include), expected in expectations.items():
        pattern = HostPattern.parse(text, include)
        assert pattern.matches(host) is expected, (text, include, host)
        p = policy(rule(text, include_subdomains=include))
        assert covered(p, host) is expected, (text, include, host)
        assert covered(p, host.upper() + ".") is expected, (text, include, host)


@dataclass(frozen=True)
class RefPattern:
    text: str
    base: str
    kind: str  # "exact" | "one" | "sub"
    include: bool

    @property
    def rank(self) -> int:
        if self.kind == "sub" or self.include:
            return 1
        return 3 if self.kind == "exact" else 2

    def matches(self, host: str) -> bool:
        if self.kind == "exact":
            return host == self.base or (self.include and _under(host, self.base))
        if self.kind == "one":
            return _under(host, self.base) if self.include else _one_deeper(host, self.base)
        return host == self.base or _under(host, self.base)


def _ref(kind: str, base: str, include: bool) -> RefPattern:
    text = {"exact": base, "one": f"*.{base}", "sub": f"**.{base}"}[kind]
    return RefPattern(text, base, kind, include)


pattern_specs = st.tuples(st.sampled_from(["exact", "one", "sub"]), bases)
rule_specs = st.tuples(
    st.booleans(),
    st.lists(pattern_specs, min_size=1, max_size=3),
    st.lists(pattern_specs, max_size=2),
)


@SETTINGS
@given(st.lists(rule_specs, min_size=1, max_size=4), names)
def test_rule_for_is_the_most_specific_rule(
    specs: list[tuple[bool, list[tuple[str, str]], list[tuple[str, str]]]], host: str
) -> None:
    seen: set[tuple[str, int]] = set()
    rules: list[tuple[list[RefPattern], list[RefPattern], dict[str, Any]]] = []
    for include, hosts, excludes in specs:
        kept: list[RefPattern] = []
        for kind, base in hosts:
            ref = _ref(kind, base, include)
            if (ref.base, ref.rank) not in seen:  # equal specificity is refused at load
                seen.add((ref.base, ref.rank))
                kept.append(ref)
        ex = list({(k, b): _ref(k, b, False) for k, b in excludes}.values())
        if kept:
            data = rule(
                *(r.text for r in kept), include_subdomains=include, exclude=[e.text for e in ex]
            )
            rules.append((kept, ex, data))
    assume(rules)
    p = policy(*(data for _, _, data in rules))

    queries = {host} | {r.base for kept, _, _ in rules for r in kept}
    queries |= {f"a.{q}" for q in list(queries)} | {f"b.a.{q}" for q in list(queries)}
    for query in sorted(queries):
        candidates = [
            (len(ref.base.split(".")), ref.rank, i, ref.text)
            for i, (kept, ex, _) in enumerate(rules)
            if not any(e.matches(query) for e in ex)
            for ref in kept
            if ref.matches(query)
        ]
        match = p.rule_for(query)
        if not candidates:
            assert match is None, query
            continue
        _, _, index, text = max(candidates)
        assert match is not None, query
        assert match.rule is p.rules[index], query
        assert match.pattern.text == text, query


# -- which rule applies ---------------------------------------------------------------------


def test_most_specific_rule_wins() -> None:
    p = policy(
        rule("**.example.com"),  # 0
        rule("*.example.com", pins=[P2, P3]),  # 1
        rule("example.com", pins=[P1, P3]),  # 2
        rule("**.api.example.com", pins=[P3, P1]),  # 3
        rule("v1.api.example.com", pins=[P3, P2]),  # 4
    )
    assert applies(p, "example.com") == 2  # exact beats **. on the same base
    assert applies(p, "www.example.com") == 1  # *. beats **. on the same base
    assert applies(p, "a.b.example.com") == 0
    assert applies(p, "api.example.com") == 3  # a longer base beats *.example.com
    assert applies(p, "x.api.example.com") == 3
    assert applies(p, "v1.api.example.com") == 4
    assert applies(p, "x.v1.api.example.com") == 3
    assert applies(p, "example.org") is None
    match = p.rule_for("www.example.com")
    assert match is not None
    assert match.pattern.text == "*.example.com"


def test_single_star_beats_include_subdomains() -> None:
    p = policy(rule("example.com", include_subdomains=True), rule("*.example.com", pins=[P2, P3]))
    assert applies(p, "example.com") == 0
    assert applies(p, "a.example.com") == 1
    assert applies(p, "a.b.example.com") == 0


def test_exclude_exempts_a_host_and_the_next_rule_applies() -> None:
    p = policy(
        rule("*.example.com", exclude=["status.example.com"]),
        rule("**.example.com", pins=[P2, P3]),
        rule("**.api.example.com", exclude=["status.api.example.com"], pins=[P1, P3]),
    )
    assert applies(p, "www.example.com") == 0
    assert applies(p, "status.example.com") == 1
    assert applies(p, "x.api.example.com") == 2
    assert applies(p, "status.api.example.com") == 1  # falls back to a shorter base


def test_exclude_without_fallback_and_with_wildcards() -> None:
    p = policy(rule("**.example.com", exclude=["**.legacy.example.com", "*.old.example.com"]))
    assert covered(p, "example.com")
    assert covered(p, "old.example.com")
    assert not covered(p, "legacy.example.com")
    assert not covered(p, "a.b.legacy.example.com")
    assert not covered(p, "x.old.example.com")
    assert covered(p, "y.x.old.example.com")


def test_doc_example_exclude_only_exempts_what_the_rule_covers() -> None:
    p = policy(rule("**.example.com", exclude=["STATUS.example.com."]))
    assert not covered(p, "status.example.com")
    assert covered(p, "other.example.com")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("api.example.com", "api.example.com"),
        ("API.example.com.", "api.example.com"),
        ("*.example.com", "*.example.com"),
        ("**.example.com", "**.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_equal_specificity_across_rules_is_refused(first: str, second: str) -> None:
    with pytest.raises(PolicyError, match="same specificity") as info:
        policy(rule("other.example", first), rule(second, pins=[P2, P3]))
    assert info.value.key == "pin[1].hosts"
    assert first in str(info.value)
    assert "pin[0]" in str(info.value)


def test_include_subdomains_overlapping_a_double_star_is_refused() -> None:
    with pytest.raises(PolicyError, match="same specificity"):
        policy(rule("example.com", include_subdomains=True), rule("**.example.com", pins=[P2, P3]))


def test_different_specificity_on_one_base_is_fine() -> None:
    p = policy(rule("example.com"), rule("*.example.com"), rule("**.example.com"))
    assert len(p.rules) == 3


@pytest.mark.parametrize(
    "hosts",
    [["a.example", "a.example"], ["a.example", "A.EXAMPLE."], ["*.x.example", "*.x.example"]],
)
def test_duplicate_hosts_in_a_rule(hosts: list[str]) -> None:
    with pytest.raises(PolicyError, match="listed twice") as info:
        policy(rule(*hosts))
    assert info.value.key == "pin[0].hosts[1]"


def test_duplicate_pins() -> None:
    digest = Pin.parse(P1).digest
    for again in (P1, digest.hex(), f'pin-sha256="{Pin.parse(P1).base64}"'):
        with pytest.raises(
            PolicyError, match="listed twice; a backup pin must be a different key"
        ) as info:
            policy(rule("a.example", pins=[P1, again]))
        assert info.value.key == "pin[0].pins"


# -- single pins, modes, expiry, report URIs -----------------------------------------------------


def test_enforced_rule_with_one_pin_is_refused() -> None:
    with pytest.raises(PolicyError) as info:
        policy(rule("a.example", pins=[P1]))
    message = str(info.value)
    assert info.value.key == "pin[0].pins"
    assert "backup" in message
    assert "locks every client out" in message
    assert "allow_single_pin" in message


def test_single_pin_allowed_when_asked_or_report_only() -> None:
    allowed = policy(rule("a.example", pins=[P1], allow_single_pin=True))
    assert allowed.rules[0].allow_single_pin
    report_only = policy(rule("a.example", pins=[P1], mode="report-only"))
    assert report_only.rules[0].mode is Mode.REPORT_ONLY


def test_modes() -> None:
    assert policy(rule("a.example")).rules[0].mode is Mode.ENFORCE
    assert policy(rule("a.example", mode="enforce")).rules[0].mode is Mode.ENFORCE
    assert policy(rule("a.example", mode="report-only")).rules[0].mode is Mode.REPORT_ONLY


@pytest.mark.parametrize(
    "mode", ["Enforce", "report_only", "reportonly", "block", "", 1, None, ["enforce"]]
)
def test_bad_modes(mode: object) -> None:
    with pytest.raises(PolicyError, match="is not 'enforce' or 'report-only'") as info:
        policy(rule("a.example", mode=mode))
    assert info.value.key == "pin[0].mode"


@pytest.mark.parametrize(
    "uri", ["https://reports.example.net/pins", "http://127.0.0.1:8080/r", "https://r.example"]
)
def test_report_uri(uri: str) -> None:
    assert policy(rule("a.example", report_uri=uri)).rules[0].report_uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://reports.example.net/",
        "reports.example.net/pins",
        "https://",
        "https:///x",
        "https://a.example/x y",
        "https://a.example:99999/",
        "",
        5,
        ["https://a.example/"],
    ],
)
def test_bad_report_uri(uri: object) -> None:
    with pytest.raises(PolicyError, match="is not an http\\(s\\) URL") as info:
        policy(rule("a.example", report_uri=uri))
    assert info.value.key == "pin[0].report_uri"


NEXT_DAY = dt.datetime(2027, 6, 2, tzinfo=UTC)


@pytest.mark.parametrize("value", [dt.date(2027, 6, 1), "2027-06-01"])
def test_expiry_date_is_enforced_through_that_utc_day(value: object) -> None:
    r = policy(rule("a.example", expires=value)).rules[0]
    assert r.expires_at == NEXT_DAY
    assert not r.is_expired(dt.datetime(2027, 6, 1, 23, 59, 59, 999999, tzinfo=UTC))
    assert r.is_expired(NEXT_DAY)
    assert r.is_expired(NEXT_DAY + dt.timedelta(days=400))
    # 01:00 on June 2nd at UTC+2 is still June 1st in UTC.
    assert not r.is_expired(
        dt.datetime(2027, 6, 2, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    )
    # 20:00 on June 1st at UTC-5 is already June 2nd in UTC.
    assert r.is_expired(dt.datetime(2027, 6, 1, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))))


@pytest.mark.parametrize(
    "value",
    [
        "2027-06-01T12:00:00Z",
        "2027-06-01T14:00:00+02:00",
        dt.datetime(2027, 6, 1, 7, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ],
)
def test_expiry_datetime_with_offset(value: object) -> None:
    r = policy(rule("a.example", expires=value)).rules[0]
    assert r.expires_at == dt.datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    assert r.expires_at is not None and r.expires_at.utcoffset() == dt.timedelta(0)
    assert not r.is_expired(dt.datetime(2027, 6, 1, 11, 59, 59, tzinfo=UTC))
    assert r.is_expired(dt.datetime(2027, 6, 1, 12, 0, tzinfo=UTC))


def test_no_expiry() -> None:
    r = policy(rule("a.example")).rules[0]
    assert r.expires_at is None
    assert not r.is_expired(dt.datetime(9999, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2027-06-01T12:00:00", "needs a UTC offset"),
        (dt.datetime(2027, 6, 1, 12, 0), "needs a UTC offset"),
        ("tomorrow", "is not a date"),
        ("2027-13-01", "is not a date"),
        ("2027-6-1", "is not a date"),
        (5, "is not a date"),
        (True, "is not a date"),
        (dt.time(12, 0), "is not a date"),
    ],
)
def test_bad_expiry(value: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as info:
        policy(rule("a.example", expires=value))
    assert info.value.key == "pin[0].expires"


def test_rule_constructor_validates() -> None:
    hosts = (HostPattern.parse("a.example"),)
    pins = (Pin.parse(P1), Pin.parse(P2))
    assert PinRule(hosts, pins).mode is Mode.ENFORCE
    with pytest.raises(PolicyError, match="at least one host"):
        PinRule((), pins)
    with pytest.raises(PolicyError, match="needs pins"):
        PinRule(hosts, ())
    with pytest.raises(PolicyError, match="backup"):
        PinRule(hosts, pins[:1])
    with pytest.raises(PolicyError, match="UTC offset"):
        PinRule(hosts, pins, expires_at=dt.datetime(2027, 1, 1))
    assert Policy.of([PinRule(hosts, pins)]).rule_for("A.example.") is not None


@pytest.mark.parametrize(
    "data",
    [
        rule("a.example"),
        rule("a.example", "*.b.example", "**.c.example", exclude=["x.c.example"], name="n"),
        rule("a.example", "*.b.example", include_subdomains=True),
        rule(
            "a.example", expires="2027-06-01", mode="report-only", report_uri="https://r.example/x"
        ),
        rule("a.example", pins=[P1], allow_single_pin=True, expires="2027-06-01T12:00:00+02:00"),
    ],
)
def test_to_dict_round_trips(data: dict[str, Any]) -> None:
    original = PinRule.from_dict(data)
    again = PinRule.from_dict(original.to_dict())
    assert again == original
    for host in ("a.example", "y.a.example", "x.y.b.example"):
        assert covered(Policy.of([again]), host) is covered(Policy.of([original]), host), host


# -- validation: types and unknown keys ---------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "key", "message"),
    [
        ({"hosts": 5}, "pin[0].hosts", "non-empty list of host patterns"),
        ({"hosts": []}, "pin[0].hosts", "non-empty list of host patterns"),
        ({"hosts": [5]}, "pin[0].hosts[0]", "non-empty string"),
        ({"pins": P1}, "pin[0].pins", "non-empty list of pins"),
        ({"pins": []}, "pin[0].pins", "non-empty list of pins"),
        ({"pins": [P1, 5]}, "pin[0].pins[1]", "must be a string, got int"),
        ({"pins": [P1, "sha256/nope"]}, "pin[0].pins[1]", "sha256/nope"),
        ({"include_subdomains": "yes"}, "pin[0].include_subdomains", "true or false"),
        ({"allow_single_pin": 1}, "pin[0].allow_single_pin", "true or false"),
        ({"exclude": 5}, "pin[0].exclude", "must be a list"),
        ({"exclude": ["a*.example"]}, "pin[0].exclude[0]", r"'\*' is only allowed"),
        ({"name": 5}, "pin[0].name", "must be a string"),
        ({"hostz": ["a.example"]}, "pin[0]", "unknown key.*hostz"),
        ({"pin": [P1, P2]}, "pin[0]", "unknown key.*pin"),
    ],
)
def test_wrong_types_name_the_key(override: dict[str, Any], key: str, message: str) -> None:
    data = rule("a.example")
    data.update(override)
    with pytest.raises(PolicyError, match=message) as info:
        Policy.from_dict({"pin": [data]}, source="p.toml")
    assert info.value.key == key
    assert info.value.source == "p.toml"
    assert str(info.value).startswith(f"p.toml: {key}: ")


def test_hosts_may_be_a_single_string() -> None:
    assert covered(Policy.from_dict({"pin": [rule() | {"hosts": "a.example"}]}), "a.example")


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        ({}, "pin", "no \\[\\[pin\\]\\] rules"),
        ({"pin": []}, "pin", "no \\[\\[pin\\]\\] rules"),
        ({"pin": 5}, "pin", "no \\[\\[pin\\]\\] rules"),
        ({"pin": [5]}, "pin[0]", "a rule must be a table, got int"),
        ({"pins": [rule("a.example")]}, None, "unknown top-level key.*pins"),
        ({"version": 2, "pin": [rule("a.example")]}, "version", "unsupported policy version 2"),
    ],
)
def test_top_level_errors(data: dict[str, Any], key: str | None, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as info:
        Policy.from_dict(data)
    assert info.value.key == key


def test_version_1_is_accepted() -> None:
    assert len(Policy.from_dict({"version": 1, "pin": [rule("a.example")]}).rules) == 1


def test_second_rule_errors_name_its_index() -> None:
    data = {"pin": [rule("a.example"), rule("b.example", pins=[P1, "sha256/short"])]}
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(data, source="x.toml")
    assert info.value.key == "pin[1].pins[1]"
    assert str(info.value).startswith("x.toml: pin[1].pins[1]: ")


# -- policy files -----------------------------------------------------------------------------

DOC_EXAMPLE = """\
[[pin]]
hosts = ["api.example.com", "*.cdn.example.com", "**.internal.example.com"]
pins = ["{p1}", "{p2}"]          # two valid pins, the second is the backup
include_subdomains = false
exclude = ["status.api.example.com"]
expires = 2027-06-01                     # UTC; after it the rule fails open
mode = "enforce"                         # or "report-only"
report_uri = "https://reports.example.net/pins"
# allow_single_pin = true                # refused without it when there is one pin
"""


def test_documented_example_file(tmp_path: Path) -> None:
    path = tmp_path / "pins.toml"
    path.write_text(DOC_EXAMPLE.format(p1=P1, p2=P2), encoding="utf-8")
    for p in (Policy.load(path), Policy.load(str(path))):
        assert p.source == str(path)
        [r] = p.rules
        assert [h.text for h in r.hosts] == [
            "api.example.com",
            "*.cdn.example.com",
            "**.internal.example.com",
        ]
        assert r.pins == (Pin.parse(P1), Pin.parse(P2))
        assert [e.text for e in r.exclude] == ["status.api.example.com"]
        assert r.expires_at == NEXT_DAY
        assert r.mode is Mode.ENFORCE
        assert r.report_uri == "https://reports.example.net/pins"
        assert not r.allow_single_pin
        for host in (
            "api.example.com",
            "x.cdn.example.com",
            "internal.example.com",
            "a.b.internal.example.com",
        ):
            assert covered(p, host), host
        for host in (
            "status.api.example.com",
            "cdn.example.com",
            "a.b.cdn.example.com",
            "example.com",
        ):
            assert not covered(p, host), host


def test_documented_example_with_one_pin_needs_allow_single_pin(tmp_path: Path) -> None:
    path = tmp_path / "pins.toml"
    one = DOC_EXAMPLE.format(p1=P1, p2=P2).replace(f'"{P1}", "{P2}"', f'"{P1}"')
    path.write_text(one, encoding="utf-8")
    with pytest.raises(PolicyError, match="backup") as info:
        Policy.load(path)
    assert str(info.value).startswith(f"{path}: pin[0].pins: ")
    path.write_text(one.replace("# allow_single_pin", "allow_single_pin"), encoding="utf-8")
    assert Policy.load(path).rules[0].allow_single_pin


def test_toml_datetimes(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    base = f'[[pin]]\nhosts = ["a.example"]\npins = ["{P1}", "{P2}"]\n'
    path.write_text(base + "expires = 2027-06-01T14:00:00+02:00\n", encoding="utf-8")
    assert Policy.load(path).rules[0].expires_at == dt.datetime(2027, 6, 1, 12, tzinfo=UTC)
    path.write_text(base + "expires = 2027-06-01T12:00:00Z\n", encoding="utf-8")
    assert Policy.load(path).rules[0].expires_at == dt.datetime(2027, 6, 1, 12, tzinfo=UTC)
    path.write_text(base + 'expires = "2027-06-01"\n', encoding="utf-8")
    assert Policy.load(path).rules[0].expires_at == NEXT_DAY
    path.write_text(base + "expires = 2027-06-01T12:00:00\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="UTC offset") as info:
        Policy.load(path)
    assert str(info.value).startswith(f"{path}: pin[0].expires: ")
    path.write_text(base + "expires = 12:00:00\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="is not a date"):
        Policy.load(path)


def test_errors_name_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        f'[[pin]]\nhosts = ["a.example"]\npins = ["{P1}", "{P2}"]\n\n'
        f'[[pin]]\nhosts = ["b.example"]\npins = ["sha256/abc", "{P2}"]\n',
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as info:
        Policy.load(path)
    assert info.value.source == str(path)
    assert info.value.key == "pin[1].pins[0]"
    assert str(info.value).startswith(f"{path}: pin[1].pins[0]: ")
    assert "sha256/abc" in str(info.value)


def test_unknown_key_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text(
        f'[[pin]]\nhosts = ["a.example"]\npins = ["{P1}", "{P2}"]\nincludeSubdomains = true\n',
        encoding="utf-8",
    )
    with pytest.raises(PolicyError, match="includeSubdomains") as info:
        Policy.load(path)
    assert str(info.value).startswith(f"{path}: pin[0]: ")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(PolicyError, match="cannot read policy file") as info:
        Policy.load(path)
    assert info.value.source == str(path)
    assert str(path) in str(info.value)


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        Policy.load(tmp_path)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    raw = b'[[pin]]\nname = "caf\xe9"\n'
    path.write_bytes(raw)
    with pytest.raises(PolicyError, match=rf"not UTF-8 text \(byte {raw.index(0xE9)}\)") as info:
        Policy.load(path)
    assert info.value.source == str(path)


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[[pin]\nhosts = ["a.example"\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid TOML") as info:
        Policy.load(path)
    assert str(info.value).startswith(f"{path}: ")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"no \[\[pin\]\] rules") as info:
        Policy.load(path)
    assert (info.value.source, info.value.key) == (str(path), "pin")


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('hosts = "a.example"\npins = "{p1}"', "pin[0].pins"),
        ('hosts = 5\npins = ["{p1}", "{p2}"]', "pin[0].hosts"),
        (
            'hosts = ["a.example"]\npins = ["{p1}", "{p2}"]\ninclude_subdomains = "false"',
            "pin[0].include_subdomains",
        ),
        ('hosts = ["a.example"]\npins = ["{p1}", "{p2}"]\nexpires = 20270601', "pin[0].expires"),
        ('hosts = ["a.example"]\npins = ["{p1}", "{p2}"]\nmode = true', "pin[0].mode"),
    ],
)
def test_wrong_types_in_a_file(tmp_path: Path, line: str, key: str) -> None:
    path = tmp_path / "types.toml"
    path.write_text("[[pin]]\n" + line.format(p1=P1, p2=P2) + "\n", encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        Policy.load(path)
    assert info.value.key == key
    assert str(info.value).startswith(f"{path}: {key}: ")


def test_pin_as_a_plain_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "table.toml"
    path.write_text(f'[pin]\nhosts = ["a.example"]\npins = ["{P1}", "{P2}"]\n', encoding="utf-8")
    with pytest.raises(PolicyError, match=r"no \[\[pin\]\] rules"):
        Policy.load(path)


def test_from_toml_source_name() -> None:
    with pytest.raises(PolicyError, match=r"^<toml>: "):
        Policy.from_toml("x = 1")
    p = Policy.from_toml(
        f'[[pin]]\nhosts = ["a.example"]\npins = ["{P1}", "{P2}"]\n', source="inline"
    )
    assert p.source == "inline"


# -- hostile or odd input found by review ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            '[[pin]]\nhosts=["a.example"]\npins=["{p1}","{p2}"]\nexpires=9999-12-31\n',
            "out of range",
        ),
        (
            '[[pin]]\nhosts=["a.example"]\npins=["{p1}","{p2}"]\n'
            "expires=0001-01-01T00:00:00+01:00\n",
            "out of range",
        ),
        ("x = " + "[" * 600 + "]" * 600 + "\n", "TOML"),
        ("version = " + "9" * 5000 + "\n", "TOML"),
        ('version = true\n[[pin]]\nhosts=["a.example"]\npins=["{p1}","{p2}"]\n', "version"),
    ],
)
def test_hostile_documents_are_policy_errors(text: str, fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment):
        Policy.from_toml(text.replace("{p1}", P1).replace("{p2}", P2), source="h.toml")


def test_non_string_keys_are_policy_errors() -> None:
    with pytest.raises(PolicyError, match="unknown top-level key"):
        Policy.from_dict({1: "x", "pin": [rule("a.example")]})  # type: ignore[dict-item]
    with pytest.raises(PolicyError, match="unknown key"):
        policy({**rule("a.example"), 2: True})  # type: ignore[dict-item]


def test_two_hashes_of_one_key_are_not_a_backup() -> None:
    sha1 = "sha1/" + "A" * 27 + "="
    with pytest.raises(PolicyError, match="two distinct keys"):
        policy(rule("a.example", pins=[P1, sha1]))
    assert policy(rule("a.example", pins=[P1, sha1], allow_single_pin=True))


@pytest.mark.parametrize("pattern", ["127.000.000.001", "127.0.0.01", "0127.0.0.1"])
def test_ip_patterns_in_any_spelling_cover_the_address(pattern: str) -> None:
    assert covered(policy(rule(pattern)), "127.0.0.1")


@pytest.mark.parametrize("pattern", ["1.2.3", "host.123", "*.10"])
def test_patterns_that_look_like_addresses_are_refused(pattern: str) -> None:
    with pytest.raises(PolicyError, match="last label is all digits"):
        policy(rule(pattern))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-01-01T12:30:00.25+02:00", dt.datetime(2030, 1, 1, 10, 30, 0, 250000)),
        ("2030-01-01T12:30:00Z", dt.datetime(2030, 1, 1, 12, 30)),
        ("2030-01-01T12:30:00.1234567z", dt.datetime(2030, 1, 1, 12, 30, 0, 123456)),
    ],
)
def test_expiry_datetimes_read_the_same_on_every_python(text: str, expected: dt.datetime) -> None:
    policy = Policy.from_dict(
        {"pin": [{"hosts": ["a.example"], "pins": [_pin("a"), _pin("b")], "expires": text}]}
    )
    assert policy.rules[0].expires_at == expected.replace(tzinfo=dt.timezone.utc)
