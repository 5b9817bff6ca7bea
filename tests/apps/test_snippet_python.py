"""The python export: its TOML is the exact policy, and its code, run as written, pins
requests and httpx against a real local server."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import pinwarden
import pinwarden.requests
from conftest import REPO, World
from pinwarden import Pin, Policy
from pinwarden.apps.formats import ExportOptions, export_policy, get_format, import_policy
from pinwarden.apps.formats.python_snippet import policy_toml
from pinwarden.errors import InputError, PolicyError
from pinwarden.testing import TLSServer

SETTINGS = settings(max_examples=200, deadline=None)
UTC = dt.timezone.utc


def _pin(n: int) -> str:
    return str(Pin("sha256", hashlib.sha256(b"key %d" % n).digest()))


def _blocks(text: str) -> dict[str, str]:
    """language -> body of each fenced block of the Markdown."""
    found = re.findall(r"^(`{3,})(\w+)\n(.*?)^\1$", text, re.MULTILINE | re.DOTALL)
    assert [lang for _, lang, _ in found] == ["toml", "python"]
    return {lang: body for _, lang, body in found}


def _export(policy: Policy) -> dict[str, str]:
    exported = export_policy(policy, "python")  # raises if anything were lost
    assert exported.losses == ()
    return _blocks(exported.text)


# -- the code, run as written -----------------------------------------------------------


@pytest.fixture
def snippet_env(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The snippet's pins.toml in the working directory, the test roots as the default
    trust store (OpenSSL reads SSL_CERT_FILE), and no proxy or CA-bundle variables."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    roots = tmp_path / "roots.pem"
    roots.write_text(world.cadata, encoding="ascii")
    monkeypatch.setenv("SSL_CERT_FILE", str(roots))
    blocks = _export(world.policy(world.intermediate.pin, world.backup_pin, name='our "API"'))
    (tmp_path / "pins.toml").write_text(blocks["toml"], encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return blocks


@pytest.fixture
def clients(snippet_env: dict[str, str]) -> Iterator[dict[str, Any]]:
    namespace: dict[str, Any] = {}
    exec(compile(snippet_env["python"], "snippet.py", "exec"), namespace)
    yield namespace
    namespace["session"].close()
    namespace["client"].close()


def _pin_error_in(exc: BaseException) -> bool:
    """Whether a PinValidationError is anywhere in what a client raised."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, pinwarden.PinValidationError):
            return True
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
    return False


def test_the_code_pins_requests_and_httpx(world: World, clients: dict[str, Any]) -> None:
    assert isinstance(clients["session"], pinwarden.requests.PinnedSession)
    with TLSServer(world.leaf) as server:
        assert clients["session"].get(server.url()).status_code == 200
        assert clients["client"].get(server.url()).status_code == 200
    assert len(server.requests) == 2


def test_the_code_refuses_a_key_that_is_not_pinned(world: World, clients: dict[str, Any]) -> None:
    # Trusted by the CA store (other_root is in SSL_CERT_FILE) but not pinned.
    other = world.other_root.intermediate().issue("localhost")
    with TLSServer(other) as server:
        with pytest.raises(requests.exceptions.SSLError) as by_requests:
            clients["session"].get(server.url())
        with pytest.raises(httpx.ConnectError) as by_httpx:
            clients["client"].get(server.url())
    assert _pin_error_in(by_requests.value)
    assert _pin_error_in(by_httpx.value)
    assert server.requests == []


def test_the_code_uses_the_documented_calls() -> None:
    code = _export(Policy.from_dict({"pin": [{"hosts": ["a.test"], "pins": [_pin(1), _pin(2)]}]}))
    lines = code["python"].splitlines()
    load = 'pinwarden.Policy.load("pins.toml")'
    assert f"session = pinwarden.requests.pinned_session({load})" in lines
    assert f"client = httpx.Client(verify=pinwarden.create_context({load}))" in lines


# -- the TOML is the exact policy -------------------------------------------------------

_EXAMPLES: dict[str, dict[str, Any]] = {
    "docs": {
        "name": "public API",
        "hosts": ["api.example.com", "*.cdn.example.com", "**.internal.example.com"],
        "pins": [_pin(1), _pin(2)],
        "exclude": ["status.api.example.com"],
        "expires": "2027-06-01",
        "report_uri": "https://reports.example.net/pins",
    },
    "everything": {
        "name": 'tab\tquote" back\\slash\nnew line \x7f\x00 ``` bücher',
        "hosts": ["Bücher.example.", "*.CDN.example.net", "192.000.002.007", "2001:db8:0::1"],
        "pins": [_pin(3), "sha1/" + base64.b64encode(bytes(20)).decode()],
        "mode": "report-only",
        "allow_single_pin": True,
        "expires": "2031-02-03T04:05:06.789012-07:00",
    },
    "subdomains": {
        "hosts": "example.org",
        "include_subdomains": True,
        "pins": [_pin(4), _pin(5)],
        "exclude": ["*.x.example.org", "**.y.example.org"],
        "expires": "0001-01-01T00:00:00Z",
    },
    "single": {"hosts": ["a.test"], "pins": [_pin(6)], "allow_single_pin": True},
}


@pytest.mark.parametrize("example", sorted(_EXAMPLES))
def test_the_toml_reads_back_as_the_same_rules(example: str) -> None:
    policy = Policy.from_dict({"pin": [_EXAMPLES[example]]}, source="in.toml")
    toml = _export(policy)["toml"]
    assert Policy.from_toml(toml).rules == policy.rules


def test_all_rules_in_order() -> None:
    policy = Policy.from_dict({"pin": [_EXAMPLES[k] for k in sorted(_EXAMPLES)]})
    assert Policy.from_toml(_export(policy)["toml"]).rules == policy.rules


def test_a_midnight_expiry_is_written_as_the_day_before() -> None:
    # docs/policy.md: expires = 2027-06-01 is enforced through that day (UTC).
    docs = Policy.from_dict({"pin": [_EXAMPLES["docs"]]})
    assert "\nexpires = 2027-06-01\n" in policy_toml(docs)
    other = Policy.from_dict({"pin": [_EXAMPLES["everything"]]})
    assert "\nexpires = 2031-02-03T11:05:06.789012Z\n" in policy_toml(other)


def test_the_toml_follows_the_documented_key_order() -> None:
    toml = policy_toml(Policy.from_dict({"pin": [_EXAMPLES["docs"]]}, source='a"b\n.toml'))
    keys = re.findall(r"^(\w+) = ", toml, re.MULTILINE)
    assert keys == ["version", "name", "hosts", "pins", "exclude", "expires", "mode", "report_uri"]
    assert toml.startswith('# Generated by pinwarden from "a\\"b\\n.toml"; see docs/policy.md\n')


def test_a_lone_surrogate_is_a_loss() -> None:
    policy = Policy.from_dict({"pin": [{**_EXAMPLES["single"], "name": "x\udc80y"}]})
    exported = get_format("python").export(policy, ExportOptions())
    assert exported.losses == ("pin[0].name: a lone surrogate (U+DC80) was replaced by U+FFFD",)
    assert Policy.from_toml(_blocks(exported.text)["toml"]).rules[0].name == "x\ufffdy"


def test_it_is_export_only() -> None:
    fmt = get_format("python")
    assert (fmt.name, fmt.suffix, fmt.importable) == ("python", ".md", False)
    with pytest.raises(InputError, match="export-only"):
        import_policy(b"", "python")


_HOSTS = [
    "a.example.com",
    "*.example.com",
    "**.example.org",
    "bücher.example",
    "Straße.example",
    "192.0.2.7",
    "2001:db8::1",
    "x.y.example.net.",
]
_aware = st.datetimes(
    min_value=dt.datetime(1, 1, 2),
    max_value=dt.datetime(9999, 12, 30),
    timezones=st.just(UTC),
)


@st.composite
def _rules(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "hosts": draw(st.lists(st.sampled_from(_HOSTS), min_size=1, max_size=4, unique=True)),
        "pins": [_pin(n) for n in draw(st.sets(st.integers(0, 9), min_size=1, max_size=3))],
        "allow_single_pin": True,
    }
    if draw(st.booleans()):
        rule["include_subdomains"] = True
    if draw(st.booleans()):
        rule["exclude"] = ["**.z.example.com"]
    if draw(st.booleans()):
        rule["name"] = draw(st.text())
    if draw(st.booleans()):
        rule["mode"] = "report-only"
    choice = draw(st.sampled_from(["none", "date", "datetime"]))
    if choice == "date":
        rule["expires"] = draw(st.dates(max_value=dt.date(9999, 12, 30))).isoformat()
    elif choice == "datetime":
        rule["expires"] = draw(_aware).isoformat()
    if draw(st.booleans()):
        rule["report_uri"] = "https://r.example/?q=" + draw(
            st.text(st.characters(codec="ascii", exclude_categories=["Cc", "Zs"]))
        )
    return rule


@SETTINGS
@given(_rules())
def test_any_policy_reads_back_as_the_same_rules(rule: dict[str, Any]) -> None:
    try:
        policy = Policy.from_dict({"pin": [rule]})
    except PolicyError:
        assume(False)
        raise
    exported = get_format("python").export(policy, ExportOptions())
    assert exported.losses == ()
    assert Policy.from_toml(_blocks(exported.text)["toml"]).rules == policy.rules


def test_docs_show_the_code_as_generated() -> None:
    docs = (REPO / "docs" / "snippets.md").read_text(encoding="utf-8")
    shown = re.findall(r"```python\n(.*?)```", docs, re.DOTALL)
    policy = Policy.from_dict({"pin": [_EXAMPLES["single"]]})
    assert shown == [_export(policy)["python"]]
