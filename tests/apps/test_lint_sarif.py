"""Lint findings as SARIF 2.1.0: the structure code scanning reads, and each result on
the exact line of the key or pin it is about."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.apps.lint import RULES, Evidence, Finding, lint_policy
from pinwarden.apps.sarif import locate, to_sarif
from pinwarden.pins import Pin
from pinwarden.policy import Policy

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 6, 1, tzinfo=UTC)
LEVELS = {"error", "warning", "note"}


def _pin(n: int) -> str:
    return str(Pin("sha256", hashlib.sha256(b"key %d" % n).digest()))


def _sha1(n: int) -> str:
    return str(Pin("sha1", hashlib.sha1(b"key %d" % n).digest()))


POLICY = f"""\
version = 1

# Pins shipped in app 3.2.
[[pin]]
name = "api"
hosts = ["api.example.com", "**.co.uk"]   # the second one is a mistake
pins = [
  "{_pin(1)}",   # the intermediate
  # "{_pin(9)}", retired in 3.1
  "{_sha1(1)}",  # OkHttp 2 ["legacy"]
  "{_pin(2)}",
]
expires = 2026-01-31
report_uri = "https://api.example.com/pin-report"

[[pin]]
hosts = "www.example.com"
pins = ['{_pin(3)}', '{_pin(4)}']
"""


def _line(text: str, number: int) -> str:
    """Line ``number`` (1-based) as an editor and code scanning count lines: split at
    LF only (a CRLF's CR stays at the end of its line)."""
    return text.split("\n")[number - 1]


def _findings(text: str, source: str) -> list[Finding]:
    return lint_policy(Policy.from_toml(text, source=source), Evidence(NOW))


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _sarif(files: Sequence[tuple[str, str]]) -> dict[str, Any]:
    log = to_sarif([(source, text, _findings(text, source)) for source, text in files])
    # What CI uploads is the JSON text: it must survive the round trip unchanged.
    result: dict[str, Any] = json.loads(json.dumps(log))
    assert result == log
    return result


# -- structure ------------------------------------------------------------------


def test_log_structure() -> None:
    log = _sarif([("policies/app.toml", POLICY)])
    assert log["$schema"].startswith("https://")
    assert log["$schema"].endswith("sarif-2.1.0.json")
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "pinwarden"
    assert isinstance(driver["version"], str) and driver["version"]
    rules = driver["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    for entry in rules:
        rule = RULES[entry["id"]]
        assert entry["shortDescription"]["text"] == rule.summary
        assert entry["defaultConfiguration"]["level"] == rule.severity
        assert entry["defaultConfiguration"]["level"] in LEVELS
        assert entry["help"]["text"] == rule.fix


def test_results_are_consistent_with_the_rules() -> None:
    log = _sarif([("policies/app.toml", POLICY)])
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert {r["ruleId"] for r in results} == {"PW008", "PW009", "PW011", "PW012", "PW016"}
    for result in results:
        rule = rules[result["ruleIndex"]]
        assert rule["id"] == result["ruleId"]
        assert result["level"] in LEVELS
        assert result["level"] == rule["defaultConfiguration"]["level"]
        assert result["message"]["text"]
        assert RULES[result["ruleId"]].fix in result["message"]["text"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "policies/app.toml"
        start = physical["region"]["startLine"]
        assert isinstance(start, int) and start >= 1


@pytest.mark.parametrize(
    ("rule_id", "expected"),
    [
        ("PW008", f'  "{_sha1(1)}",  # OkHttp 2 ["legacy"]'),
        ("PW012", 'hosts = ["api.example.com", "**.co.uk"]   # the second one is a mistake'),
        ("PW016", "expires = 2026-01-31"),
        ("PW011", 'report_uri = "https://api.example.com/pin-report"'),
        ("PW009", "[[pin]]"),
    ],
)
def test_each_result_is_on_the_line_of_its_key(rule_id: str, expected: str) -> None:
    log = _sarif([("app.toml", POLICY)])
    (result,) = [r for r in log["runs"][0]["results"] if r["ruleId"] == rule_id]
    line = result["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert _line(POLICY, line) == expected


def test_pw009_of_the_second_rule_points_at_its_own_table() -> None:
    log = _sarif([("app.toml", POLICY)])
    lines = [
        r["locations"][0]["physicalLocation"]["region"]["startLine"]
        for r in log["runs"][0]["results"]
        if r["ruleId"] == "PW009"
    ]
    second_table = [i for i, t in enumerate(POLICY.split("\n"), 1) if t == "[[pin]]"][1]
    assert lines == [second_table]


def test_uris_are_relative_paths_of_each_file(in_tmp: Path) -> None:
    (in_tmp / "policies").mkdir()
    (in_tmp / "policies" / "app.toml").write_text(POLICY)
    other = f'[[pin]]\nhosts = ["x.example.com"]\npins = ["{_pin(5)}", "{_pin(6)}"]\n'
    (in_tmp / "other.toml").write_text(other)
    log = _sarif([("./policies/app.toml", POLICY), ("other.toml", other)])
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in log["runs"][0]["results"]
    }
    assert uris == {"policies/app.toml", "other.toml"}
    for uri in uris:
        assert (in_tmp / uri).is_file()


def test_absolute_path_is_a_file_uri(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    log = _sarif([(str(path), POLICY)])
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri["uri"] == path.as_uri()


def test_no_findings_is_an_empty_result_list() -> None:
    clean = (
        f'[[pin]]\nhosts = ["x.example.com"]\npins = ["{_pin(5)}", "{_pin(6)}"]\n'
        "expires = 2026-12-01\n"
    )
    log = _sarif([("clean.toml", clean)])
    assert log["runs"][0]["results"] == []
    assert len(log["runs"][0]["tool"]["driver"]["rules"]) == len(RULES)


def test_a_layout_locate_cannot_read_still_gives_a_valid_region() -> None:
    inline = f'pin = [{{ hosts = ["x.example.com"], pins = ["{_pin(5)}", "{_pin(6)}"] }}]\n'
    log = _sarif([("inline.toml", inline)])
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "PW009"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 1


# -- locate -----------------------------------------------------------------------


def _number(text: str, fragment: str) -> int:
    (found,) = [i for i, line in enumerate(text.split("\n"), 1) if fragment in line]
    return found


def test_locate_multi_line_array_with_comments() -> None:
    assert locate(POLICY, "pin[0].pins[0]") == _number(POLICY, f'  "{_pin(1)}"')
    # The commented-out pin is not counted.
    assert locate(POLICY, "pin[0].pins[1]") == _number(POLICY, _sha1(1))
    assert locate(POLICY, "pin[0].pins[2]") == _number(POLICY, _pin(2))
    assert locate(POLICY, "pin[0].pins") == POLICY.split("\n").index("pins = [") + 1


def test_locate_inline_array() -> None:
    line = _number(POLICY, _pin(3))
    assert locate(POLICY, "pin[1].pins[0]") == line
    assert locate(POLICY, "pin[1].pins[1]") == line
    assert locate(POLICY, "pin[0].hosts[1]") == _number(POLICY, "**.co.uk")


def test_locate_string_hosts_and_scalar_keys() -> None:
    assert locate(POLICY, "pin[1].hosts") == _number(POLICY, '"www.example.com"')
    assert locate(POLICY, "pin[1].hosts[0]") == _number(POLICY, '"www.example.com"')
    assert locate(POLICY, "pin[0].expires") == _number(POLICY, "expires =")
    assert locate(POLICY, "pin[0]") == _number(POLICY, "# Pins shipped") + 1


def test_locate_falls_back_to_the_table_line() -> None:
    second = [i for i, t in enumerate(POLICY.split("\n"), 1) if t == "[[pin]]"][1]
    assert locate(POLICY, "pin[1].report_uri") == second  # no such key in that table
    assert locate(POLICY, "pin[1].expires") == second  # in the first table only
    # An index past the end of the array: the array's line.
    assert locate(POLICY, "pin[1].pins[7]") == _number(POLICY, _pin(3))


@pytest.mark.parametrize("key", ["pin[2].pins", "pin[9]", "", "hosts", "pin[x].pins", "pins[0]"])
def test_locate_gives_none_when_there_is_no_such_rule(key: str) -> None:
    assert locate(POLICY, key) is None


def test_locate_ignores_tables_and_keys_in_comments() -> None:
    text = (
        "# [[pin]]\n"
        "# pins = ['x']\n"
        "[[pin]]  # the only rule\n"
        'hosts = ["a.example.com"]\n'
        "# pins = ['commented']\n"
        f'pins = [ # keys ["current", "backup"]\n'
        f'    "{_pin(1)}", "{_pin(2)}"\n'
        "]\n"
    )
    Policy.from_toml(text)  # the layout is valid TOML
    assert locate(text, "pin[0]") == 3
    assert locate(text, "pin[0].pins") == 6
    assert locate(text, "pin[0].pins[0]") == 7
    assert locate(text, "pin[0].pins[1]") == 7


def test_locate_crlf_lines() -> None:
    text = POLICY.replace("\n", "\r\n")
    assert locate(text, "pin[0].pins[2]") == _number(POLICY, _pin(2))
    assert locate(text, "pin[1]") == locate(POLICY, "pin[1]")


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_locate_counts_only_toml_line_breaks(separator: str) -> None:
    # TOML allows these characters in comments; they do not end a line for TOML, editors'
    # line numbers or code scanning (lines end at LF or CRLF), so the pin below is still
    # on line 5.
    text = (
        "[[pin]]\n"
        f'hosts = ["a.example.com"]  # note{separator}more\n'
        "pins = [\n"
        f'  "{_pin(1)}",\n'
        f'  "{_pin(2)}",\n'
        "]\n"
    )
    Policy.from_toml(text)
    assert locate(text, "pin[0].pins[1]") == 5


# -- properties -------------------------------------------------------------------

_COMMENTS = ["# plain", '# a "quoted" word', "# [[pin]] and [brackets]", "# pins = ['x']"]


@st.composite
def _layouts(draw: st.DrawFn) -> tuple[str, dict[str, int]]:
    """A valid policy in a random layout, and the line each key and pin is on."""
    lines: list[str] = []
    where: dict[str, int] = {}
    counter = 0

    def add(line: str, key: str | None = None) -> None:
        lines.append(line)
        if key is not None:
            where[key] = len(lines)

    def noise() -> None:
        for _ in range(draw(st.integers(0, 2))):
            add(draw(st.sampled_from(["", *_COMMENTS])))

    noise()
    for n in range(draw(st.integers(1, 3))):
        add("[[pin]]" + draw(st.sampled_from(["", "  # rule"])), f"pin[{n}]")
        noise()
        count = draw(st.integers(2, 4))
        pins = [_pin(counter + i) for i in range(count)]
        counter += count
        quote = draw(st.sampled_from(['"', "'"]))
        keys = ["hosts", "pins", "expires"]
        for key in draw(st.permutations(keys)):
            if key == "hosts":
                add(f'hosts = ["h{n}.example.com"]', f"pin[{n}].hosts")
            elif key == "expires":
                add("expires = 2027-01-01", f"pin[{n}].expires")
            elif draw(st.booleans()):
                body = ", ".join(f"{quote}{p}{quote}" for p in pins)
                add(f"pins = [{body}]" + draw(st.sampled_from(["", '  # ["x"]'])))
                for i in range(count):
                    where[f"pin[{n}].pins[{i}]"] = len(lines)
                where[f"pin[{n}].pins"] = len(lines)
            else:
                add("pins = [" + draw(st.sampled_from(["", "  # keys"])), f"pin[{n}].pins")
                for i, pin in enumerate(pins):
                    if draw(st.booleans()):
                        add(draw(st.sampled_from(_COMMENTS)))
                    comment = draw(st.sampled_from(["", '  # "old" ]']))
                    add(f"  {quote}{pin}{quote},{comment}", f"pin[{n}].pins[{i}]")
                add("]")
            noise()
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    return eol.join(lines) + eol, where


@settings(max_examples=300, deadline=None)
@given(_layouts())
def test_locate_finds_every_key_in_any_layout(layout: tuple[str, dict[str, int]]) -> None:
    text, where = layout
    Policy.from_toml(text)  # the generator writes valid policies
    for key, line in where.items():
        assert locate(text, key) == line, key


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from("[]pin=#\"'\n\r ab.,0123\u2028\\"), max_size=200),
    st.from_regex(r"(pin\[[0-9]{1,2}\])?(\.[a-z_]{1,8})?(\[[0-9]{1,2}\])?", fullmatch=True),
)
def test_locate_never_fails_on_any_text(text: str, key: str) -> None:
    line = locate(text, key)
    assert line is None or 1 <= line <= max(len(text.splitlines()), 1)


def test_relative_uris_are_percent_encoded() -> None:
    from pinwarden.apps.sarif import _uri

    assert _uri("policies/my pins.toml") == "policies/my%20pins.toml"
    assert _uri("a#b?.toml") == "a%23b%3F.toml"
