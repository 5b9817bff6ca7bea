"""``pinwarden ct loglist show|update``: real files, a real local HTTP server, the cache."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from conftest import vectors
from pinwarden.cli import main
from pinwarden.cli.ct_loglist import load_for_cli
from pinwarden.ct.logs import Log, LogList, LogState, log_id_of
from pinwarden.errors import LogListError

UTC = timezone.utc


def _log(description: str, operator: str, **kwargs: Any) -> Log:
    key = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return Log(description=description, log_id=log_id_of(key), key=key, operator=operator, **kwargs)


def _list(timestamp: datetime) -> LogList:
    return LogList(
        logs=(
            _log(
                "Classic",
                "Alpha",
                url="https://classic.example/",
                state=LogState.USABLE,
                state_since=datetime(2024, 2, 1, tzinfo=UTC),
            ),
            _log(
                "Tiles",
                "Beta",
                tiled=True,
                submission_url="https://submit.example/",
                monitoring_url="https://monitor.example/",
                mmd=60,
                state=LogState.QUALIFIED,
                state_since=datetime(2024, 3, 1, tzinfo=UTC),
                temporal_interval=(
                    datetime(2026, 1, 1, tzinfo=UTC),
                    datetime(2026, 7, 1, tzinfo=UTC),
                ),
            ),
        ),
        version="7",
        timestamp=timestamp,
    )


def _fresh() -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    return json.dumps(_list(now - timedelta(days=1)).to_chrome_v3()).encode()


@pytest.fixture(autouse=True)
def cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test gets its own empty cache."""
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home / "pinwarden" / "ct"


@dataclass
class Site:
    base: str
    files: dict[str, bytes]

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def site() -> Iterator[Site]:
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}", files)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _public_pem(key: rsa.RSAPrivateKey, tmp_path: Path) -> Path:
    path = tmp_path / "pub.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


# -- show ----------------------------------------------------------------------------------


@pytest.mark.vectors
def test_show_real_sample_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = vectors("ct/loglist") / "loglist3.json"
    assert main(["ct", "loglist", "show", "--log-list", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["source"] == str(path)
    assert (data["kind"], data["version"], data["timestamp"]) == (
        "chrome",
        "9.4",
        "2022-05-06T12:55:11Z",
    )
    assert data["fetched_at"] is None
    assert [o["name"] for o in data["operators"]] == ["Google", "Bob's CT Log Shop"]
    google = data["operators"][0]["logs"]
    assert [log["state"] for log in google] == ["readonly", "usable", None, "usable", "qualified"]
    assert google[0]["final_tree_head"]["tree_size"] == 46466472
    assert google[0]["state_since"] == "2016-11-30T13:24:18Z"
    assert {log["api"] for log in google} == {"rfc6962"}
    assert google[4]["temporal_interval"] == {
        "start_inclusive": "2018-02-27T00:00:00Z",
        "end_exclusive": "2020-01-01T00:00:00Z",
    }
    # A 2022 list is stale today: said in the JSON and on stderr.
    assert "older than 70 days" in data["warning"]
    assert "pinwarden: warning:" in captured.err and "published" in captured.err


@pytest.mark.vectors
def test_show_at_a_date_when_the_list_was_fresh(capsys: pytest.CaptureFixture[str]) -> None:
    path = vectors("ct/loglist") / "loglist3.json"
    argv = ["ct", "loglist", "show", "--log-list", str(path), "--json", "--at", "2022-06-01"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["warning"] is None and data["at"] == "2022-06-01T00:00:00Z"
    assert captured.err == ""
    assert main([*argv[:-1], "2022-07-15"]) == 0  # 69 days and 11 hours
    assert json.loads(capsys.readouterr().out)["warning"] is None
    assert main([*argv[:-1], "2022-07-16"]) == 0  # 70 days and 11 hours
    assert "more than 70 days ago" in json.loads(capsys.readouterr().out)["warning"]
    assert main([*argv[:-1], "2022-07-18"]) == 0
    assert "published 72 days ago" in json.loads(capsys.readouterr().out)["warning"]


def test_show_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "list.json"
    path.write_bytes(_fresh())
    assert main(["ct", "loglist", "show", "--log-list", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    text = captured.out
    assert "Chrome CT log list version 7" in text
    assert "2 logs from 2 operators" in text
    alpha, beta = text.split("\nAlpha\n")[1].split("\nBeta\n")
    assert "Classic" in alpha and "usable since 2024-02-01 00:00:00Z" in alpha
    assert "rfc6962" in alpha and "https://classic.example/" in alpha
    assert "static-ct-api" in beta and "https://monitor.example/" in beta
    assert "https://submit.example/" in beta and "mmd         60 s" in beta
    assert "from 2026-01-01 00:00:00Z to before 2026-07-01 00:00:00Z" in beta


def test_outside_text_cannot_drive_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(_fresh())
    document["operators"][0]["logs"][0]["description"] = "\x1b[2JEvil [bold]log[/bold]"
    path = tmp_path / "list.json"
    path.write_text(json.dumps(document))
    assert main(["ct", "loglist", "show", "--log-list", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\\x1b[2JEvil [bold]log[/bold]" in out


def test_show_without_a_cached_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ct", "loglist", "show"]) == 2
    message = capsys.readouterr().err
    assert "no Chrome CT log list is cached" in message
    assert "pinwarden ct loglist update" in message and "--log-list" in message


def test_show_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "list.json"
    path.write_text('{"operators": [{"name": "X", "logs": [{"key": 1}]}]}')
    assert main(["ct", "loglist", "show", "--log-list", str(path)]) == 2
    message = capsys.readouterr().err
    assert f"{path}: operators[0].logs[0].key: must be a string, not a number" in message
    assert main(["ct", "loglist", "show", "--log-list", str(tmp_path / "none.json")]) == 2
    assert "cannot read the log list" in capsys.readouterr().err


# -- update --------------------------------------------------------------------------------


def test_update_verifies_caches_and_show_reads_the_cache(
    site: Site,
    rsa_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    cache_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = _fresh()
    site.files.update({"/log_list.json": data, "/log_list.sig": _sign(rsa_key, data)})
    argv = [
        "ct",
        "loglist",
        "update",
        "--url",
        site.url("/log_list.json"),
        "--signature-url",
        site.url("/log_list.sig"),
        "--public-key",
        str(_public_pem(rsa_key, tmp_path)),
    ]
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "chrome"
    assert result["url"] == site.url("/log_list.json")
    assert result["signature_url"] == site.url("/log_list.sig")
    assert result["signature_verified"] is True
    assert result["cache"] == str(cache_home / "chrome-log-list.json")
    assert (result["logs"], result["operators"], result["version"]) == (2, 2, "7")
    assert result["warning"] is None
    fetched = datetime.fromisoformat(result["fetched_at"].replace("Z", "+00:00"))
    assert abs(fetched - datetime.now(UTC)) < timedelta(minutes=5)
    assert (cache_home / "chrome-log-list.json").read_bytes() == data

    assert main(["ct", "loglist", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["source"] == str(cache_home / "chrome-log-list.json")
    assert shown["fetched_at"] == result["fetched_at"]
    assert [o["name"] for o in shown["operators"]] == ["Alpha", "Beta"]

    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "signature   verified" in text and "the given key" in text
    assert str(cache_home) in text


def test_update_refuses_a_tampered_list(
    site: Site,
    rsa_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    cache_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = _fresh()
    site.files.update(
        {"/log_list.json": data.replace(b"classic", b"evil"), "/log_list.sig": _sign(rsa_key, data)}
    )
    argv = [
        "ct",
        "loglist",
        "update",
        "--url",
        site.url("/log_list.json"),
        "--signature-url",
        site.url("/log_list.sig"),
        "--public-key",
        str(_public_pem(rsa_key, tmp_path)),
        "--json",
    ]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "the signature does not verify with the given public key" in captured.err
    assert not cache_home.exists()


def test_update_apple_without_signature(
    site: Site, cache_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(_fresh())
    del document["log_list_timestamp"]
    document["assetVersion"] = 32
    document["assetVersionV2"] = 1013
    site.files["/current_log_list.json"] = json.dumps(document).encode()
    argv = ["ct", "loglist", "update", "--kind", "apple", "--url"]
    assert main([*argv, site.url("/current_log_list.json"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "apple"
    assert result["signature_url"] is None and result["signature_verified"] is False
    assert result["timestamp"] is None
    assert (cache_home / "apple-log-list.json").is_file()
    assert not (cache_home / "chrome-log-list.json").exists()
    assert main(["ct", "loglist", "show", "--kind", "apple", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "apple"
    assert main([*argv, site.url("/current_log_list.json")]) == 0
    assert "none published" in capsys.readouterr().out


def test_update_network_failure_is_exit_3(
    site: Site, cache_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ct", "loglist", "update", "--url", site.url("/missing.json")]) == 3
    assert "could not determine" in capsys.readouterr().err
    assert not cache_home.exists()


def test_update_option_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.pem"
    key.write_text("x")
    argv = ["ct", "loglist", "update", "--url", "https://x.example/l.json"]
    assert main([*argv, "--public-key", str(key)]) == 2
    assert "--public-key needs a signature" in capsys.readouterr().err
    assert main([*argv, "--timeout", "0"]) == 2
    assert main(["ct", "loglist", "update", "--kind", "mozilla"]) == 2


# -- the shared loader ---------------------------------------------------------------------


def test_load_for_cli(
    tmp_path: Path, site: Site, cache_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    with pytest.raises(LogListError, match="pinwarden ct loglist update"):
        load_for_cli(None, now)
    old = LogList(logs=_list(now).logs, timestamp=now - timedelta(days=100))
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old.to_chrome_v3()))
    loaded = load_for_cli(str(path), now)
    assert [log.log_id for log in loaded.logs] == [log.log_id for log in old.logs]
    assert "published 100 days ago" in capsys.readouterr().err
    load_for_cli(str(path), now, at=now - timedelta(days=40))
    assert capsys.readouterr().err == ""
    # A URL is downloaded and cached; afterwards no option means that cached list.
    site.files["/list.json"] = _fresh()
    load_for_cli(site.url("/list.json"), now)
    assert capsys.readouterr().err == ""
    cached = load_for_cli(None, now)
    assert cached.fetched_at is not None
    assert base64.b64encode(cached.logs[0].log_id).decode() == cached.logs[0].log_id_b64
    assert cached.source == str(cache_home / "chrome-log-list.json")
