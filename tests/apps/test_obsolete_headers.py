"""Parsing and fetching the obsolete pinning headers (HPKP, Expect-CT)."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import World
from pinwarden import Pin
from pinwarden.apps.headers import (
    EXPECT_CT,
    PUBLIC_KEY_PINS,
    PUBLIC_KEY_PINS_REPORT_ONLY,
    fetch_headers,
    find_obsolete_headers,
    normalize_url,
    parse_header,
)
from pinwarden.errors import CertificateError, InputError, NetworkError
from pinwarden.testing import TLSServer

A = base64.b64encode(bytes(range(32))).decode()
B = base64.b64encode(bytes(range(1, 33))).decode()


def test_hpkp_with_every_directive() -> None:
    value = (
        f'pin-sha256="{A}"; pin-sha256="{B}"; max-age=5184000; includeSubDomains; '
        'report-uri="https://report.example/hpkp?a=1,b=2"'
    )
    header = parse_header("Public-Key-Pins", value, "https://example.com/")
    assert header.name == PUBLIC_KEY_PINS
    assert not header.malformed
    assert header.pins == (Pin("sha256", bytes(range(32))), Pin("sha256", bytes(range(1, 33))))
    assert header.max_age == 5184000
    assert header.include_subdomains
    assert header.report_uri == "https://report.example/hpkp?a=1,b=2"
    assert header.enforce is None
    assert header.removed == "Chrome 72, Firefox 72"
    assert [d.name for d in header.directives] == [
        "pin-sha256",
        "pin-sha256",
        "max-age",
        "includeSubDomains",
        "report-uri",
    ]
    data = header.to_json()
    assert data["pins"] == [f"sha256/{A}", f"sha256/{B}"]
    assert data["url"] == "https://example.com/"
    assert data["removed_in"] == "Chrome 72, Firefox 72"
    assert data["malformed"] is False


def test_case_and_whitespace_are_tolerated() -> None:
    value = f'  PIN-SHA256 = "{A}" ;pin-sha256=  "{B}"  ;  MAX-AGE = 10;INCLUDESUBDOMAINS  '
    header = parse_header("public-key-pins-report-only", value)
    assert header.name == PUBLIC_KEY_PINS_REPORT_ONLY
    assert not header.malformed, header.problems
    assert len(header.pins) == 2
    assert header.max_age == 10
    assert header.include_subdomains


def test_report_only_hpkp_needs_no_max_age() -> None:
    header = parse_header("Public-Key-Pins-Report-Only", f'pin-sha256="{A}"; pin-sha256="{B}"')
    assert not header.malformed
    assert header.max_age is None
    enforcing = parse_header("Public-Key-Pins", f'pin-sha256="{A}"; pin-sha256="{B}"')
    assert enforcing.problems == ("max-age is required",)


def test_expect_ct() -> None:
    header = parse_header(
        "expect-ct", ' max-age = 86400 , Enforce, report-uri="https://r.example/a,b" '
    )
    assert header.name == EXPECT_CT
    assert not header.malformed
    assert header.max_age == 86400
    assert header.enforce is True
    assert header.report_uri == "https://r.example/a,b"
    assert header.removed == "Chrome 107"
    assert header.pins == ()
    report_only = parse_header("Expect-CT", "max-age=0")
    assert report_only.enforce is False
    assert report_only.max_age == 0


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("Public-Key-Pins", f'pin-sha256="{A}', "cannot be parsed: unterminated quoted value"),
        ("Public-Key-Pins", "pin-sha256=; max-age=1", "cannot be parsed: pin-sha256= has no value"),
        ("Public-Key-Pins", "@@@", "cannot be parsed: cannot read a directive"),
        # base64 has '/' and '=', which a token cannot hold: pins must be quoted.
        ("Public-Key-Pins", f"pin-sha256={A}; max-age=1", "cannot be parsed: expected ';'"),
        ("Public-Key-Pins", f'pin-sha256="{A}" max-age=1', "cannot be parsed: expected ';'"),
        ("Public-Key-Pins", "max-age=100", "no valid pin-sha256"),
        ("Public-Key-Pins", f'pin-sha256="{A}"; max-age=100', "one pin only"),
        ("Public-Key-Pins", f'pin-sha256="{A}"; pin-sha256="{A}"; max-age=1', "one pin only"),
        ("Public-Key-Pins", f'pin-sha256="!!"; pin-sha256="{A}"; max-age=1', "not valid base64"),
        ("Public-Key-Pins", f'pin-sha256="AAAA"; pin-sha256="{A}"; max-age=1', "3 bytes"),
        ("Public-Key-Pins", f'pin-sha256; pin-sha256="{A}"; max-age=1', "pin-sha256 has no value"),
        ("Public-Key-Pins", f'pin-sha256="{A}"; pin-sha256="{B}"; max-age=1d', "not a number"),
        ("Public-Key-Pins", f'pin-sha256="{A}"; pin-sha256="{B}"; max-age="²"', "not a number"),
        ("Public-Key-Pins", f'pin-sha256="{A}"; pin-sha256="{B}"; max-age', "max-age has no value"),
        (
            "Public-Key-Pins",
            f'pin-sha256="{A}"; pin-sha256="{B}"; max-age=1; Max-Age=2',
            "Max-Age appears more than once",
        ),
        (
            "Public-Key-Pins",
            f'pin-sha256="{A}"; pin-sha256="{B}"; max-age=1; includeSubDomains=yes',
            "includeSubDomains takes no value",
        ),
        (
            "Public-Key-Pins",
            f'pin-sha256="{A}"; pin-sha256="{B}"; max-age=1; report-uri=""',
            "report-uri has no value",
        ),
        ("Public-Key-Pins", "", "max-age is required"),
        ("Expect-CT", "max-age=86400; enforce", "separates directives with ','"),
        ("Expect-CT", "enforce", "max-age is required"),
        ("Expect-CT", "max-age=1, enforce=1", "enforce takes no value"),
        ("Expect-CT", 'max-age=1, report-uri="x', "unterminated quoted value"),
    ],
)
def test_malformed_headers_say_why(name: str, value: str, problem: str) -> None:
    header = parse_header(name, value)
    assert header.malformed
    assert any(problem in p for p in header.problems), header.problems
    assert header.to_json()["malformed"] is True


def test_ignored_directives_are_warnings_not_problems() -> None:
    header = parse_header(
        "Public-Key-Pins", f'pin-sha256="{A}"; pin-sha256="{B}"; pin-sha1=abc; max-age=1; preload'
    )
    assert not header.malformed
    assert header.warnings == (
        "pin-sha1: RFC 7469 defines pin-sha256 only; ignored",
        "unknown directive 'preload' (ignored by browsers)",
    )
    expect = parse_header("Expect-CT", "max-age=1, includeSubDomains")
    assert not expect.malformed
    assert expect.include_subdomains is False
    assert expect.warnings == ("unknown directive 'includeSubDomains' (ignored by browsers)",)


def test_only_the_three_names_are_parsed() -> None:
    with pytest.raises(InputError, match="'Strict-Transport-Security' is not one of"):
        parse_header("Strict-Transport-Security", "max-age=1")


def test_find_among_response_fields() -> None:
    fields = [
        ("content-type", "text/html"),
        ("strict-transport-security", "max-age=63072000"),
        ("expect-ct", "max-age=0"),
        ("public-key-pins", f'pin-sha256="{A}"; pin-sha256="{B}"; max-age=1'),
        ("Public-Key-Pins", "max-age=2"),
    ]
    found = find_obsolete_headers(fields, "https://x.example/")
    assert [h.name for h in found] == [EXPECT_CT, PUBLIC_KEY_PINS, PUBLIC_KEY_PINS]
    assert {h.url for h in found} == {"https://x.example/"}
    assert not found[1].warnings
    assert "a second Public-Key-Pins field: browsers used the first" in found[2].warnings
    assert find_obsolete_headers([("server", "x")]) == ()


header_text = st.lists(
    st.sampled_from([*' \t;,="\\=-_.abcAZ09+/', "pin-sha256", "max-age", "enforce", A]),
    max_size=40,
).map("".join)


@given(st.sampled_from([PUBLIC_KEY_PINS, PUBLIC_KEY_PINS_REPORT_ONLY, EXPECT_CT]), header_text)
def test_any_value_is_parsed_or_reported_malformed(name: str, value: str) -> None:
    header = parse_header(name, value)
    assert header.value == value
    data = header.to_json()
    assert data["malformed"] == bool(header.problems)
    if not header.malformed and name == PUBLIC_KEY_PINS:
        assert len(set(header.pins)) >= 2
        assert header.max_age is not None


@given(st.text(max_size=60))
def test_any_unicode_value_never_raises(value: str) -> None:
    for name in (PUBLIC_KEY_PINS, EXPECT_CT):
        parse_header(name, value)


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("example.com", "https://example.com"),
        (" https://example.com/a?b=1 ", "https://example.com/a?b=1"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
    ],
)
def test_normalize_url(text: str, url: str) -> None:
    assert normalize_url(text).rstrip("/") == url.rstrip("/")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty URL"),
        ("ftp://example.com/", "only http and https"),
        ("https://", "no host"),
        ("https://exa mple.com/", "not a valid URL"),
        ("https://example.com:99999/", "not a valid URL"),
    ],
)
def test_bad_urls_are_input_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        normalize_url(text)


@pytest.fixture
def root_file(world: World, tmp_path: Path) -> str:
    path = tmp_path / "root.pem"
    path.write_bytes(world.root.cert_pem)
    return str(path)


def test_fetch_from_a_server_without_obsolete_headers(world: World, root_file: str) -> None:
    with TLSServer(world.leaf) as server:
        report = fetch_headers(server.url(path="/page"), cafile=root_file, timeout=5)
        assert server.requests[0].method == "GET"
        assert server.requests[0].path == "/page"
    assert report.status == 200
    assert report.final_url == server.url(path="/page")
    assert not report.found
    assert report.redirect is None
    assert report.to_json()["advice"] == []


def test_fetch_verifies_the_certificate(world: World, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(world.other_root.cert_pem)
    with TLSServer(world.leaf) as server, pytest.raises(NetworkError, match="CERTIFICATE_VERIFY"):
        fetch_headers(server.url(), cafile=str(other), timeout=5)


def test_fetch_checks_the_host_name(world: World, root_file: str) -> None:
    elsewhere = world.intermediate.issue("other.test")
    with TLSServer(elsewhere) as server, pytest.raises(NetworkError, match=r"[Hh]ostname mismatch"):
        fetch_headers(server.url("localhost"), cafile=root_file, timeout=5)


def test_fetch_with_nothing_listening() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(NetworkError, match=f"https://127.0.0.1:{port}/: ConnectError"):
        fetch_headers(f"https://127.0.0.1:{port}/", timeout=5)


def test_unreadable_cafile(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="cannot load trust anchors from"):
        fetch_headers("https://127.0.0.1:1/", cafile=str(tmp_path / "missing.pem"))
