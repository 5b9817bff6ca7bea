"""``pinwarden ct log sth|get|verify``: against the local test log over both APIs, through the
real CLI in-process."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pinwarden.cli import main
from pinwarden.testing.ctlog import LocalCTLog, write_log_list

APIS = ["rfc6962", "static"]


@pytest.fixture(params=APIS)
def log(request: pytest.FixtureRequest) -> Iterator[LocalCTLog]:
    with LocalCTLog(request.param, name=f"Pinwarden '{request.param}' test log") as served:
        served.grow(300, precert_every=4)
        served.issue("shop.example.test", "www.shop.example.test")
        served.publish()
        yield served


@pytest.fixture
def log_list(log: LocalCTLog, tmp_path: Path) -> str:
    return str(log.write_log_list(tmp_path / "log_list.json"))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["ct", "log", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- sth ---------------------------------------------------------------------------------------


def test_sth_text(log: LocalCTLog, log_list: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sth", log.name, "--log-list", log_list)
    assert code == 0
    assert "tree size   301" in out
    assert base64.b64encode(log.root(301)).decode() in out
    assert log.root(301).hex() in out
    assert "verified" in out
    assert ("origin" in out) == (log.api == "static")


def test_sth_json(log: LocalCTLog, log_list: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sth", log.url, "--log-list", log_list, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["verified"] is True
    assert data["log"]["api"] == ("static-ct-api" if log.api == "static" else "rfc6962")
    assert data["log"]["log_id"] == base64.b64encode(log.log_id).decode()
    head = data["tree_head"]
    assert head["tree_size"] == 301
    assert head["timestamp"] == log.head.timestamp_ms
    assert head["sha256_root_hash"] == base64.b64encode(log.root(301)).decode()
    assert ("checkpoint" in head) == (log.api == "static")


@pytest.mark.parametrize("form", ["pem", "der", "base64"])
def test_sth_with_a_key_file(
    log: LocalCTLog, tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    key = serialization.load_der_public_key(log.key_der)
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    data = {"pem": pem, "der": log.key_der, "base64": base64.b64encode(log.key_der)}[form]
    path = tmp_path / "log.key"
    path.write_bytes(data)
    code, out, err = run(capsys, "sth", log.url, "--key", str(path), "--api", log.api, "--json")
    assert code == 0, err
    assert json.loads(out)["tree_head"]["tree_size"] == 301


def test_sth_with_the_wrong_api(
    log: LocalCTLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "log.der"
    path.write_bytes(log.key_der)
    other = "static" if log.api == "rfc6962" else "rfc6962"
    code, _, err = run(capsys, "sth", log.url, "--key", str(path), "--api", other, "--retries", "0")
    assert code == 3  # the other API's endpoints are not there
    assert "could not determine" in err
    assert "404" in err


def test_misbehaviour_exits_1_with_evidence(
    log: LocalCTLog, log_list: str, capsys: pytest.CaptureFixture[str]
) -> None:
    log.inject("bad-sth-signature")
    code, out, _ = run(capsys, "sth", log.name, "--log-list", log_list)
    assert code == 1
    assert "MISBEHAVIOUR (bad-signature)" in out
    assert "Evidence" in out
    assert "301" in out  # the tree head the log served
    code, out, _ = run(capsys, "sth", log.name, "--log-list", log_list, "--json")
    assert code == 1
    data = json.loads(out)
    assert data["verified"] is False
    assert data["misbehaviour"]["kind"] == "bad-signature"
    assert data["misbehaviour"]["evidence"]


def test_unreachable_log_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with LocalCTLog("rfc6962") as log:
        path = log.write_log_list(tmp_path / "list.json")
    code, out, err = run(capsys, "sth", log.name, "--log-list", str(path), "--retries", "0")
    assert code == 3
    assert out == ""
    assert "pinwarden: could not determine:" in err


# -- finding the log ---------------------------------------------------------------------------


def test_log_lookup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (
        LocalCTLog("rfc6962", name="Acme 'Alpha2026' log") as alpha,
        LocalCTLog("static", name="Acme 'Beta2026' log") as beta,
    ):
        alpha.publish()
        beta.publish()
        path = str(write_log_list(tmp_path / "list.json", alpha, beta))
        for value in (
            "alpha2026",
            "ACME 'BETA2026' LOG",
            base64.b64encode(beta.log_id).decode(),
            alpha.url.rstrip("/"),
            beta.url.replace("http://", "https://"),
        ):
            code, out, err = run(capsys, "sth", value, "--log-list", path, "--json")
            assert code == 0, (value, err)
            wanted = alpha if "lpha" in value or value.startswith(alpha.url[:-1]) else beta
            assert json.loads(out)["log"]["log_id"] == base64.b64encode(wanted.log_id).decode()
        code, _, err = run(capsys, "sth", "acme", "--log-list", path)
        assert code == 2
        assert "matches 2 logs" in err
        code, _, err = run(capsys, "sth", "gamma", "--log-list", path)
        assert code == 2
        assert "no log in" in err


def test_no_cached_log_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code, _, err = run(capsys, "sth", "some log")
    assert code == 2
    assert "pinwarden ct loglist update" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sth", "not-a-url", "--key", "KEY"], "LOG is the log's http(s) URL"),
        (["sth", "http://127.0.0.1:9/", "--key", "MISSING"], "cannot read"),
        (["sth", "http://127.0.0.1:9/", "--key", "GARBAGE"], "not a PEM or DER public key"),
        (["sth", "http://127.0.0.1:9/", "--key", "KEY", "--log-list", "x"], "not both"),
        (
            ["sth", "http://127.0.0.1:9/", "--key", "KEY", "--origin", "o"],
            "static-ct-api logs only",
        ),
        (["sth", "http://127.0.0.1:9/", "--key", "KEY", "--timeout", "0"], "--timeout"),
        (["sth", "http://127.0.0.1:9/", "--key", "KEY", "--retries", "-1"], "--retries"),
        (["get", "http://127.0.0.1:9/", "5", "4", "--key", "KEY"], "0 <= INDEX <= END"),
        (["verify", "http://127.0.0.1:9/", "--start", "5", "--end", "4", "--key", "KEY"], "N <= M"),
    ],
)
def test_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "KEY").write_bytes(_key_der())
    (tmp_path / "GARBAGE").write_bytes(b"\x00garbage")
    files = {"KEY", "MISSING", "GARBAGE"}
    argv = [str(tmp_path / a) if a in files else a for a in args]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in " ".join(err.split())


def _key_der() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


# -- get ---------------------------------------------------------------------------------------


def test_get_json(log: LocalCTLog, log_list: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "get", log.name, "298", "300", "--log-list", log_list, "--json")
    assert code == 0
    data = json.loads(out)
    entries = data["entries"]
    assert [e["index"] for e in entries] == [298, 299, 300]
    assert [e["leaf_hash"] for e in entries] == [
        base64.b64encode(log.leaf_hash(i)).decode() for i in (298, 299, 300)
    ]
    assert entries[1]["entry_type"] == "precert_entry"  # every 4th entry
    assert entries[0]["entry_type"] == "x509_entry"
    assert entries[0]["dns_names"] == ["host298.example.test"]
    assert entries[2]["dns_names"] == ["shop.example.test", "www.shop.example.test"]
    assert entries[2]["issuer"] == log.ca.cert.subject.rfc4514_string()
    assert entries[2]["spki_pin"].startswith("sha256/")
    assert entries[2]["error"] is None
    assert data["tree_head"]["tree_size"] == 301


def test_get_text(log: LocalCTLog, log_list: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "get", log.name, "300", "--log-list", log_list)
    assert code == 0
    assert out.startswith("#300 ")
    assert "shop.example.test, www.shop.example.test" in out
    assert "certificate" in out
    assert base64.b64encode(log.leaf_hash(300)).decode() in out


def test_get_text_marks_what_the_leaf_does_not_cover(
    log: LocalCTLog, log_list: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "get", log.name, "299", "300", "--log-list", log_list)
    assert code == 0
    first, second = out.split("\n\n")
    assert "precertificate" in first  # every 4th entry
    for text in (first, second):
        chain = [line for line in text.splitlines() if line.split()[:1] == ["chain"]]
        assert len(chain) == 1
        assert chain[0].endswith("unauthenticated (extra_data)")
    assert "pre-cert" in first
    assert "pre-cert" not in second  # an x509 entry's certificate is the leaf itself
    precert = next(line for line in first.splitlines() if "pre-cert" in line)
    assert precert.endswith("unauthenticated (extra_data)")


def test_get_beyond_the_tree(
    log: LocalCTLog, log_list: str, capsys: pytest.CaptureFixture[str]
) -> None:
    log.grow(5)  # not published: not in the signed tree yet
    code, _, err = run(capsys, "get", log.name, "301", "--log-list", log_list)
    assert code == 2
    assert "301 entries" in err


def test_get_malformed_entries(
    log: LocalCTLog, log_list: str, capsys: pytest.CaptureFixture[str]
) -> None:
    log.inject("malformed-entries")
    code, out, _ = run(capsys, "get", log.name, "0", "--log-list", log_list, "--json")
    assert code == 1
    assert json.loads(out)["misbehaviour"]["kind"] == "malformed-entry"


# -- verify ------------------------------------------------------------------------------------


def test_verify_everything(
    log: LocalCTLog, log_list: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "verify", log.name, "--log-list", log_list)
    assert code == 0
    assert "entries 0..300 (301)" in out
    assert "root recomputed from every entry equals the signed root" in out
    code, out, _ = run(capsys, "verify", log.name, "--log-list", log_list, "--json")
    data = json.loads(out)
    assert (data["start"], data["end"], data["entries"], data["root_recomputed"]) == (
        0,
        301,
        301,
        True,
    )


def test_verify_a_range(log: LocalCTLog, log_list: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["verify", log.name, "--log-list", log_list, "--start", "100", "--end", "260"]
    code, out, _ = run(capsys, *args, "--json")
    assert code == 0
    data = json.loads(out)
    assert (data["entries"], data["root_recomputed"]) == (160, False)
    code, out, _ = run(capsys, "verify", log.name, "--log-list", log_list, "--start", "301")
    assert code == 0
    assert "no entries" in out
    code, _, err = run(capsys, "verify", log.name, "--log-list", log_list, "--end", "302")
    assert code == 2
    assert "beyond" in err


def test_verify_finds_a_wrong_root(
    log: LocalCTLog, log_list: str, capsys: pytest.CaptureFixture[str]
) -> None:
    log.inject("wrong-root")
    code, out, _ = run(capsys, "verify", log.name, "--log-list", log_list)
    assert code == 1
    assert "MISBEHAVIOUR (wrong-root)" in out


def test_outside_text_cannot_drive_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalCTLog("rfc6962", name="evil\x1b[2J log") as log:
        log.publish()
        path = str(log.write_log_list(tmp_path / "list.json"))
        code, out, _ = run(capsys, "sth", "evil", "--log-list", path)
    assert code == 0
    assert "\x1b" not in out
    assert "evil\\x1b[2J log" in out


# -- hostile servers ----------------------------------------------------------------------------


@contextmanager
def serving(
    answer: Callable[[http.server.BaseHTTPRequestHandler], None],
) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 answering every GET with ``answer``: its base URL and
    the paths asked."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            answer(self)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", seen
    finally:
        server.shutdown()
        server.server_close()


def _reply(
    status: int, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()
) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def test_a_redirect_elsewhere_is_not_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "log.der"
    key.write_bytes(_key_der())
    with serving(_reply(200, b"internal-only: db_password=hunter2")) as (secret, secret_seen):
        target = secret + "admin/config"
        with serving(_reply(302, headers=(("Location", target),))) as (url, seen):
            code, out, err = run(capsys, "sth", url, "--key", str(key), "--json")
    assert code == 3
    assert out == ""
    assert "redirect" in err
    assert target in err
    assert "hunter2" not in out + err
    assert secret_seen == []  # the other host was never asked
    assert seen == ["/ct/v1/get-sth"]  # once: a redirect is not retried


def test_a_retry_after_in_other_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "log.der"
    key.write_bytes(_key_der())
    # "\u00b2" (superscript two) is a digit to str.isdigit() but not to int().
    with serving(_reply(429, headers=(("Retry-After", "\u00b2"),))) as (url, seen):
        code, _, err = run(capsys, "sth", url, "--key", str(key), "--retries", "1")
    assert len(seen) == 2
    assert code == 3
    assert "failed after 2 attempt(s): HTTP 429" in " ".join(err.split())
