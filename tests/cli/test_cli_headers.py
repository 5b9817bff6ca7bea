"""``pinwarden headers URL`` against a real local HTTPS server sending chosen headers.

pinwarden.testing.TLSServer always answers 200 with fixed headers, so this file runs a small
http.server-based HTTPS server of its own (same certificates from the test kit)."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import World
from pinwarden.cli import main

A = base64.b64encode(bytes(range(32))).decode()
B = base64.b64encode(bytes(range(1, 33))).decode()
HPKP = f'pin-sha256="{A}"; pin-sha256="{B}"; max-age=5184000; includeSubDomains'

Route = tuple[int, list[tuple[str, str]]]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HeaderServer

    def do_GET(self) -> None:
        status, fields = self.server.routes.get(self.path, (404, []))
        self.send_response(status)
        for name, value in fields:
            self.send_header(name, value)
        body = b"a body the command does not need to read\n" * 100
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass


class _HeaderServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.routes: dict[str, Route] = {}

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10)
        if self.context is None:  # plain http
            super().finish_request(request, client_address)
            return
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        except (ssl.SSLError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass

    def url(self, path: str = "/") -> str:
        if self.context is None:
            return f"http://127.0.0.1:{self.server_address[1]}{path}"
        return f"https://localhost:{self.server_address[1]}{path}"


@contextlib.contextmanager
def _serving(context: ssl.SSLContext | None) -> Iterator[_HeaderServer]:
    httpd = _HeaderServer(context)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        thread.join(5)
        httpd.server_close()


@pytest.fixture
def server(world: World) -> Iterator[_HeaderServer]:
    with _serving(world.leaf.server_context()) as httpd:
        yield httpd


@pytest.fixture
def plain() -> Iterator[_HeaderServer]:
    with _serving(None) as httpd:
        yield httpd


@pytest.fixture
def cafile(world: World, tmp_path: Path) -> str:
    path = tmp_path / "root.pem"
    path.write_bytes(world.root.cert_pem)
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["headers", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = _run(capsys, *args, "--json")
    data: dict[str, Any] = json.loads(out)
    return code, data


def test_no_obsolete_header_exits_0(
    server: _HeaderServer, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/"] = (200, [("Strict-Transport-Security", "max-age=63072000")])
    code, out, _ = _run(capsys, server.url(), "--cafile", cafile)
    assert code == 0
    assert "HTTP 200" in out
    assert "nothing obsolete to remove" in out
    code, data = _json(capsys, server.url(), "--cafile", cafile)
    assert code == 0
    assert data == {
        "url": server.url(),
        "status": 200,
        "final_url": server.url(),
        "redirect": None,
        "redirects": [],
        "found": False,
        "headers": [],
        "advice": [],
    }


def test_hpkp_is_reported_with_its_directives(
    server: _HeaderServer, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/"] = (200, [("Public-Key-Pins", HPKP + '; report-uri="https://r.example/"')])
    code, out, _ = _run(capsys, server.url(), "--cafile", cafile)
    assert code == 1
    assert "Public-Key-Pins (well formed) — removed from browsers in Chrome 72, Firefox 72" in out
    assert f"pin          sha256/{A}" in out
    assert f"pin          sha256/{B}" in out
    assert "max-age      5184000 s (60 days)" in out
    assert "Chrome 72, Firefox 72" in out
    assert "subdomains   yes" in out
    assert "report-uri   https://r.example/" in out
    assert "pinwarden ct monitor" in out
    assert "pinwarden caa generate" in out

    code, data = _json(capsys, server.url(), "--cafile", cafile)
    assert code == 1
    assert data["found"] is True
    (header,) = data["headers"]
    assert header["name"] == "Public-Key-Pins"
    assert header["url"] == server.url()
    assert header["pins"] == [f"sha256/{A}", f"sha256/{B}"]
    assert header["max_age"] == 5184000
    assert header["include_subdomains"] is True
    assert header["report_uri"] == "https://r.example/"
    assert header["enforce"] is None
    assert header["malformed"] is False
    assert header["removed_in"] == "Chrome 72, Firefox 72"
    assert header["warnings"] == []  # over https: no plain-http warning
    assert any("pinwarden ct monitor" in line for line in data["advice"])


def test_every_obsolete_header_in_one_response(
    server: _HeaderServer, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/all"] = (
        200,
        [
            ("expect-ct", 'max-age=86400, enforce, report-uri="https://r.example/ct"'),
            ("PUBLIC-KEY-PINS-REPORT-ONLY", HPKP),
            ("Public-Key-Pins", HPKP),
        ],
    )
    code, data = _json(capsys, server.url("/all"), "--cafile", cafile)
    assert code == 1
    names = [h["name"] for h in data["headers"]]
    assert names == ["Expect-CT", "Public-Key-Pins-Report-Only", "Public-Key-Pins"]
    expect_ct = data["headers"][0]
    assert expect_ct["enforce"] is True
    assert expect_ct["max_age"] == 86400
    assert expect_ct["removed_in"] == "Chrome 107"
    assert [d["name"] for d in expect_ct["directives"]] == ["max-age", "enforce", "report-uri"]
    code, out, _ = _run(capsys, server.url("/all"), "--cafile", cafile)
    assert code == 1
    assert "Expect-CT (well formed) — removed from browsers in Chrome 107" in out
    assert "enforce      yes" in out


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("Public-Key-Pins", f'pin-sha256="{A}', "unterminated quoted value"),
        ("Public-Key-Pins", f'pin-sha256="{A}"; max-age=60', "one pin only"),
        ("Public-Key-Pins", 'pin-sha256="\x1b[31mred"; max-age=1', "not valid base64"),
        ("Expect-CT", "max-age=86400; enforce", "separates directives with ','"),
        ("Expect-CT", "enforce", "max-age is required"),
    ],
)
def test_malformed_headers_are_reported_not_raised(
    server: _HeaderServer,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    problem: str,
) -> None:
    server.routes["/bad"] = (200, [(name, value)])
    code, out, err = _run(capsys, server.url("/bad"), "--cafile", cafile)
    assert code == 1
    assert f"{name} (malformed)" in out
    assert "problem" in out
    assert problem in out
    assert "\x1b" not in out  # a header must not drive the terminal
    if "unterminated" in problem:
        assert "subdomains" not in out  # nothing was read, so no flag is shown as absent
    assert "Traceback" not in out + err
    code, data = _json(capsys, server.url("/bad"), "--cafile", cafile)
    assert data["headers"][0]["malformed"] is True
    assert any(problem in p for p in data["headers"][0]["problems"])
    assert data["headers"][0]["value"] == value


def test_redirect_is_reported_not_followed(
    server: _HeaderServer, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/old"] = (301, [("Location", "/new")])
    server.routes["/new"] = (200, [("Public-Key-Pins", HPKP)])
    code, out, _ = _run(capsys, server.url("/old"), "--cafile", cafile)
    assert code == 0
    assert "HTTP 301" in out
    assert f"redirects to {server.url('/new')} (not followed; use --follow" in out
    code, data = _json(capsys, server.url("/old"), "--cafile", cafile)
    assert (code, data["status"], data["redirect"]) == (0, 301, server.url("/new"))
    assert data["final_url"] == server.url("/old")


def test_follow_checks_every_response(
    server: _HeaderServer, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/old"] = (302, [("Location", "/new"), ("Expect-CT", "max-age=0")])
    server.routes["/new"] = (200, [("Public-Key-Pins", HPKP)])
    code, data = _json(capsys, server.url("/old"), "--cafile", cafile, "--follow")
    assert code == 1
    assert data["status"] == 200
    assert data["final_url"] == server.url("/new")
    assert data["redirects"] == [server.url("/old")]
    assert data["redirect"] is None
    assert [(h["name"], h["url"]) for h in data["headers"]] == [
        ("Expect-CT", server.url("/old")),
        ("Public-Key-Pins", server.url("/new")),
    ]
    code, out, _ = _run(capsys, server.url("/old"), "--cafile", cafile, "--follow")
    assert code == 1
    assert f"redirected from {server.url('/old')}" in out
    assert f"(on the response of {server.url('/old')})" in out


def test_a_bad_location_does_not_lose_the_report(
    server: _HeaderServer, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/old"] = (302, [("Location", "https://[::1"), ("Public-Key-Pins", HPKP)])
    for follow in ([], ["--follow"]):
        code, out, err = _run(capsys, server.url("/old"), "--cafile", cafile, *follow)
        assert code == 1
        assert "HTTP 302" in out
        assert "redirects to https://[::1 (not followed, see below)" in out
        assert "Public-Key-Pins (well formed)" in out
        assert err.startswith(
            "pinwarden: note: redirect not followed: its Location 'https://[::1' is not a URL ("
        )
    code, data = _json(capsys, server.url("/old"), "--cafile", cafile)
    assert (code, data["status"], data["redirect"]) == (1, 302, "https://[::1")
    assert [h["name"] for h in data["headers"]] == ["Public-Key-Pins"]


def test_follow_to_ftp_is_a_redirect_not_followed(
    server: _HeaderServer, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/old"] = (302, [("Location", "ftp://example.com/file")])
    code, out, err = _run(capsys, server.url("/old"), "--cafile", cafile, "--follow")
    assert code == 0
    assert "redirects to ftp://example.com/file (not followed, see below)" in out
    assert err == (
        "pinwarden: note: redirect to ftp://example.com/file not followed: only http and "
        "https URLs can be fetched\n"
    )
    code, data = _json(capsys, server.url("/old"), "--cafile", cafile, "--follow")
    assert (code, data["status"], data["redirect"]) == (0, 302, "ftp://example.com/file")
    assert data["final_url"] == server.url("/old")


def test_plain_http_headers_are_reported_as_ignored(
    plain: _HeaderServer, capsys: pytest.CaptureFixture[str]
) -> None:
    plain.routes["/"] = (200, [("Public-Key-Pins", HPKP), ("Expect-CT", "max-age=1, enforce")])
    code, out, _ = _run(capsys, plain.url())
    assert code == 1
    assert out.count("warning      sent over plain http: browsers ignored it") == 2
    code, data = _json(capsys, plain.url())
    assert code == 1
    assert [len(h["warnings"]) for h in data["headers"]] == [1, 1]
    assert data["headers"][0]["warnings"][0].startswith("sent over plain http")


def test_https_redirect_to_plain_http_is_followed_and_flagged(
    server: _HeaderServer,
    plain: _HeaderServer,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.routes["/"] = (301, [("Location", plain.url("/x")), ("Expect-CT", "max-age=1")])
    plain.routes["/x"] = (200, [("Expect-CT", "max-age=1")])
    code, data = _json(capsys, server.url(), "--cafile", cafile, "--follow")
    assert code == 1
    assert data["redirects"] == [server.url()]
    assert data["final_url"] == plain.url("/x")
    assert [h["warnings"] for h in data["headers"]] == [
        [],
        [
            "sent over plain http: browsers ignored it (RFC 9163 section 2.2: Expect-CT "
            "counts only on a secure connection)"
        ],
    ]


def test_huge_max_age_and_repeated_pins(
    server: _HeaderServer, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    value = f'pin-sha256="{A}"; pin-sha256="{A}"; pin-sha256="{B}"; max-age=' + "9" * 25
    server.routes["/"] = (200, [("Public-Key-Pins", value)])
    code, out, _ = _run(capsys, server.url(), "--cafile", cafile)
    assert code == 1
    assert "Public-Key-Pins (well formed)" in out
    assert out.count(f"pin          sha256/{A}") == 1
    assert f"max-age      {'9' * 25} s (1.157e+20 days)" in out
    assert "max-age is absurdly large (25 digits" in out
    code, data = _json(capsys, server.url(), "--cafile", cafile)
    (header,) = data["headers"]
    assert header["pins"] == [f"sha256/{A}", f"sha256/{B}"]
    assert header["max_age"] == int("9" * 25)


def test_untrusted_certificate_exits_3(
    server: _HeaderServer, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(world.other_root.cert_pem)
    server.routes["/"] = (200, [("Public-Key-Pins", HPKP)])
    code, out, err = _run(capsys, server.url(), "--cafile", str(other))
    assert code == 3
    assert out == ""
    assert err.startswith("pinwarden: could not determine: ")
    assert "CERTIFICATE_VERIFY_FAILED" in err


@pytest.mark.parametrize("url", ["ftp://example.com/", "https://", "https://exa mple.com/"])
def test_bad_url_exits_2(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, url)
    assert code == 2
    assert out == ""
    assert err.startswith("pinwarden: error: ")


def test_bad_timeout_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "https://127.0.0.1/", "--timeout", "0")
    assert code == 2
    assert "--timeout" in err
