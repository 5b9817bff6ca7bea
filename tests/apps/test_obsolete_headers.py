"""Parsing and fetching the obsolete pinning headers (HPKP, Expect-CT)."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
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


def test_repeated_pins_are_listed_once() -> None:
    value = f'pin-sha256="{A}"; pin-sha256="{B}"; pin-sha256="{A}"; max-age=1'
    header = parse_header("Public-Key-Pins", value)
    assert header.pins == (Pin.parse(f"sha256/{A}"), Pin.parse(f"sha256/{B}"))
    assert header.to_json()["pins"] == [f"sha256/{A}", f"sha256/{B}"]
    assert not header.malformed
    assert header.warnings == (f"pin sha256/{A} is listed more than once",)
    # Three copies of one pin are still one pin: no backup.
    single = parse_header("Public-Key-Pins", f'pin-sha256="{A}"; pin-sha256="{A}"; max-age=1')
    assert single.pins == (Pin.parse(f"sha256/{A}"),)
    assert any("one pin only" in p for p in single.problems)


@pytest.mark.parametrize(
    ("value", "seconds", "digits"),
    [
        ("99999999999999999999999", 99999999999999999999999, 23),
        ("18446744073709551616", 1 << 64, 20),
        ("000000000000000000000000000000000000000000000086400", 86400, None),
        ("18446744073709551615", (1 << 64) - 1, None),
    ],
)
def test_a_huge_max_age_is_a_number(value: str, seconds: int, digits: int | None) -> None:
    header = parse_header("Expect-CT", f"max-age={value}")
    assert not header.malformed, header.problems
    assert header.max_age == seconds
    absurd = [w for w in header.warnings if "absurdly large" in w]
    if digits is None:
        assert absurd == []
    else:
        assert absurd == [
            f"max-age is absurdly large ({digits} digits, more than 2^64-1 seconds); "
            "browsers capped it"
        ]


def test_a_max_age_of_thousands_of_digits_is_not_converted() -> None:
    # int() of more than 4300 digits raises ValueError; the header must not.
    header = parse_header("Expect-CT", "max-age=" + "9" * 5000)
    assert not header.malformed
    assert header.max_age is None
    assert header.warnings == ("max-age is absurdly large (5000 digits); browsers capped it",)


@given(st.text("0123456789", min_size=1, max_size=400))
def test_any_digits_are_a_number_of_seconds(digits: str) -> None:
    header = parse_header("Expect-CT", f"max-age={digits}")
    assert not header.malformed, header.problems
    significant = digits.lstrip("0") or "0"
    assert header.max_age == (int(significant) if len(significant) <= 300 else None)


def test_headers_over_plain_http_are_ignored_by_browsers() -> None:
    fields = [
        ("Public-Key-Pins", f'pin-sha256="{A}"; pin-sha256="{B}"; max-age=1'),
        ("Public-Key-Pins-Report-Only", f'pin-sha256="{A}"; pin-sha256="{B}"'),
        ("Expect-CT", "max-age=1"),
    ]
    plain = find_obsolete_headers(fields, "HTTP://x.example/")
    assert [h.warnings for h in plain] == [
        (
            "sent over plain http: browsers ignored it (RFC 7469 section 2.2.2: HPKP counts "
            "only on a secure connection)",
        ),
        (
            "sent over plain http: browsers ignored it (RFC 7469 section 2.2.2: HPKP counts "
            "only on a secure connection)",
        ),
        (
            "sent over plain http: browsers ignored it (RFC 9163 section 2.2: Expect-CT counts "
            "only on a secure connection)",
        ),
    ]
    assert not any(h.malformed for h in plain)
    assert all(h.warnings == () for h in find_obsolete_headers(fields, "https://x.example/"))
    assert all(h.warnings == () for h in find_obsolete_headers(fields))


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


# --- a plain-HTTP server that sends exactly the bytes a test chooses -------------------------

Answer = bytes | Callable[[socket.socket, threading.Event], None]


class _RawServer:
    """Answers each request on 127.0.0.1 with the route's bytes (or runs the route's function
    on the connection, for slow or endless answers), then closes the connection."""

    def __init__(self) -> None:
        self.routes: dict[str, Answer] = {}
        self.requests: list[str] = []
        self.stop = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self._sock.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}{path}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ")[1].decode()
            self.requests.append(path)
            answer = self.routes.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            if callable(answer):
                answer(conn, self.stop)
            else:
                conn.sendall(answer)

    def close(self) -> None:
        self.stop.set()
        self._accept.join(5)
        self._sock.close()
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def raw() -> Iterator[_RawServer]:
    server = _RawServer()
    try:
        yield server
    finally:
        server.close()


HPKP = f'pin-sha256="{A}"; pin-sha256="{B}"; max-age=60'


def _response(status: str, *fields: str, body: bytes = b"") -> bytes:
    head = "".join(f"{f}\r\n" for f in (*fields, f"Content-Length: {len(body)}"))
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode("latin-1") + body


@pytest.mark.parametrize("follow", [False, True])
def test_a_bad_location_keeps_the_report(raw: _RawServer, follow: bool) -> None:
    # httpx builds the redirect request even when not following it; a Location that is not a
    # URL used to raise there and lose the Public-Key-Pins of the response itself.
    raw.routes["/old"] = _response(
        "302 Found", "Location: https://[::1", f"Public-Key-Pins: {HPKP}"
    )
    report = fetch_headers(raw.url("/old"), timeout=5, follow=follow)
    assert report.status == 302
    assert report.final_url == raw.url("/old")
    assert report.redirect == "https://[::1"
    assert report.redirects == ()
    assert [h.name for h in report.headers] == [PUBLIC_KEY_PINS]
    assert report.headers[0].url == raw.url("/old")
    (note,) = report.notes
    assert note.startswith("redirect not followed: its Location 'https://[::1' is not a URL (")
    assert report.to_json()["redirect"] == "https://[::1"
    assert "notes" not in report.to_json()


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("ftp://example.com/x", "only http and https URLs can be fetched"),
        ("https://exa%20mple.com/", "not a valid URL: bad host 'exa%20mple.com'"),
        ("https://example.com:99999/", "not a valid URL: port 99999 is out of range"),
    ],
)
def test_follow_reports_a_redirect_it_cannot_follow(
    raw: _RawServer, target: str, problem: str
) -> None:
    # Once a response has arrived, its redirect target is the server's doing, not a usage
    # error: report what came, with a note.
    raw.routes["/old"] = _response("302 Found", f"Location: {target}", "Expect-CT: max-age=1")
    report = fetch_headers(raw.url("/old"), timeout=5, follow=True)
    assert raw.requests == ["/old"]
    assert report.status == 302
    assert report.redirect == target
    assert [h.name for h in report.headers] == [EXPECT_CT]
    assert report.notes == (f"redirect to {target} not followed: {problem}",)
    # Without --follow the redirect is only shown; there is nothing to explain.
    assert fetch_headers(raw.url("/old"), timeout=5).notes == ()


def test_fetch_over_plain_http_warns_on_each_header(raw: _RawServer) -> None:
    raw.routes["/"] = _response("200 OK", f"Public-Key-Pins: {HPKP}", "Expect-CT: max-age=1")
    report = fetch_headers(raw.url("/"), timeout=5)
    assert [h.name for h in report.headers] == [PUBLIC_KEY_PINS, EXPECT_CT]
    for header in report.headers:
        assert len(header.warnings) == 1
        assert header.warnings[0].startswith("sent over plain http: browsers ignored it")


def test_follow_checks_every_response_and_reads_no_body(raw: _RawServer) -> None:
    def endless_body(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(
            b"HTTP/1.1 301 Moved\r\nLocation: /new\r\nExpect-CT: max-age=1\r\n"
            b"Content-Length: 100000000\r\n\r\n"
        )
        while not stop.wait(0.05):
            conn.sendall(b"x" * 100)

    raw.routes["/old"] = endless_body
    raw.routes["/new"] = _response("200 OK", f"Public-Key-Pins: {HPKP}")
    started = time.monotonic()
    report = fetch_headers(raw.url("/old"), timeout=5, follow=True)
    # httpx reads a redirect's body before following; this one would take minutes.
    assert time.monotonic() - started < 3
    assert raw.requests == ["/old", "/new"]
    assert report.status == 200
    assert report.redirects == (raw.url("/old"),)
    assert [(h.name, h.url) for h in report.headers] == [
        (EXPECT_CT, raw.url("/old")),
        (PUBLIC_KEY_PINS, raw.url("/new")),
    ]


def test_timeout_bounds_the_whole_fetch_not_each_read(raw: _RawServer) -> None:
    def drip(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(80):  # 8 s, each byte well inside the 1 s read timeout
            if stop.wait(0.1):
                return
            conn.sendall(b"a")
        conn.sendall(b"\r\nContent-Length: 0\r\n\r\n")

    raw.routes["/"] = drip
    started = time.monotonic()
    with pytest.raises(NetworkError, match=r"no answer within 1 s \(the whole fetch"):
        fetch_headers(raw.url("/"), timeout=1)
    assert time.monotonic() - started < 3


def test_timeout_covers_every_redirect(raw: _RawServer) -> None:
    def slow_hop(target: str) -> Answer:
        def answer(conn: socket.socket, stop: threading.Event) -> None:
            if not stop.wait(0.4):
                conn.sendall(_response("302 Found", f"Location: {target}"))

        return answer

    for hop in range(6):
        raw.routes[f"/{hop}"] = slow_hop(f"/{hop + 1}")
    raw.routes["/6"] = _response("200 OK")
    with pytest.raises(NetworkError, match="no answer within 1 s"):
        fetch_headers(raw.url("/0"), timeout=1, follow=True)
    assert 2 <= len(raw.requests) <= 4
    assert fetch_headers(raw.url("/0"), timeout=10, follow=True).status == 200


def test_redirect_loop_is_a_network_error(raw: _RawServer) -> None:
    raw.routes["/loop"] = _response("302 Found", "Location: /loop")
    with pytest.raises(NetworkError, match="more than 20 redirects"):
        fetch_headers(raw.url("/loop"), timeout=5, follow=True)
    assert len(raw.requests) == 21
