"""Alert channels delivered for real: a hook process, a local webhook server, a local SMTP
server; and the --alert syntax."""

from __future__ import annotations

import asyncio
import io
import json
import os
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from hypothesis import given
from hypothesis import strategies as st

from pinwarden.ct.alerts import (
    AlertEvent,
    DeliveryError,
    EmailChannel,
    HookChannel,
    StdoutChannel,
    WebhookChannel,
    backoff,
    clean,
    deliver_all,
    hook_environment,
    parse_alert_spec,
    summary_line,
)
from pinwarden.errors import InputError

FINDING = AlertEvent(
    7,
    "discovered",
    {
        "watch_item": ".example.com",
        "names": ["www.example.com", "*.example.com"],
        "issuer": "CN=Rogue CA",
        "serial": "0a1b",
        "not_before": "2026-01-01T00:00:00Z",
        "not_after": "2026-04-01T00:00:00Z",
        "tbs_sha256": "ab" * 32,
        "cert_sha256": "cd" * 32,
        "spki_pin": "sha256/" + "A" * 43 + "=",
        "verdict": "unexpected",
        "reasons": ["issuer not allowed by CAA", "key not in the pins"],
        "logs": [{"log": "Test Log", "index": 12}, {"log": "Other", "index": 3}],
        "cert_file": "/tmp/x.pem",
    },
)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_summary_names_verdict_issuer_and_reasons() -> None:
    line = summary_line(FINDING)
    assert line.startswith("UNEXPECTED certificate for www.example.com, *.example.com")
    assert "CN=Rogue CA" in line
    assert "key not in the pins" in line


def test_stdout_text_and_json_lines() -> None:
    text, lines = io.StringIO(), io.StringIO()
    run(StdoutChannel(stream=text).deliver(FINDING))
    run(StdoutChannel(json_lines=True, stream=lines).deliver(FINDING))
    assert text.getvalue() == summary_line(FINDING) + "\n"
    decoded = json.loads(lines.getvalue())
    assert decoded["event"] == "discovered"
    assert decoded["id"] == 7
    assert decoded["names"] == ["www.example.com", "*.example.com"]


def test_hook_gets_certspotter_style_variables(tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\nenv > {out}\n")
    hook.chmod(0o755)
    run(HookChannel(hook).deliver(FINDING))
    seen = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert seen["EVENT"] == "discovered"
    assert seen["DNS_NAMES"] == "www.example.com,*.example.com"
    assert seen["VERDICT"] == "unexpected"
    assert seen["SERIAL"] == "0a1b"
    assert seen["TBS_SHA256"] == "ab" * 32
    assert seen["LOGS"] == "Test Log#12,Other#3"
    assert seen["CERT_FILENAME"] == "/tmp/x.pem"


def test_failing_hook_is_a_delivery_error(tmp_path: Path) -> None:
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\necho 'disk full' >&2\nexit 4\n")
    hook.chmod(0o755)
    with pytest.raises(DeliveryError, match="status 4: disk full"):
        run(HookChannel(hook).deliver(FINDING))


def test_hook_that_hangs_is_killed(tmp_path: Path) -> None:
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\nexec sleep 30\n")
    hook.chmod(0o755)
    with pytest.raises(DeliveryError, match="longer than"):
        run(HookChannel(hook, timeout=0.3).deliver(FINDING))


def test_hook_values_stay_on_one_line() -> None:
    event = AlertEvent(1, "log-misbehaviour", {"log": "L", "message": "a\nEVIL=1"})
    env = hook_environment(event)
    assert "\n" not in env["MESSAGE"]
    assert "\n" not in env["SUMMARY"]


class _Sink:
    def __init__(self, status: int) -> None:
        self.status = status
        self.bodies: list[Any] = []


@pytest.fixture
def webhook() -> Iterator[tuple[str, _Sink]]:
    sink = _Sink(200)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            sink.bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(sink.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", sink
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_posts_the_alert_as_json(webhook: tuple[str, _Sink]) -> None:
    url, sink = webhook
    run(WebhookChannel(url).deliver(FINDING))
    run(WebhookChannel(url, slack=True).deliver(FINDING))
    assert sink.bodies[0]["verdict"] == "unexpected"
    assert sink.bodies[0]["event"] == "discovered"
    assert sink.bodies[1] == {"text": summary_line(FINDING)}


def test_webhook_error_status_is_retried_later(webhook: tuple[str, _Sink]) -> None:
    url, sink = webhook
    sink.status = 503
    with pytest.raises(DeliveryError, match="HTTP 503"):
        run(WebhookChannel(url).deliver(FINDING))


def test_unreachable_webhook_is_a_delivery_error() -> None:
    from tls_support import closed_port

    with pytest.raises(DeliveryError, match="webhook"):
        run(WebhookChannel(f"http://127.0.0.1:{closed_port()}/", timeout=2).deliver(FINDING))


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def test_email_through_a_local_smtp_server() -> None:
    from tls_support import closed_port

    mailbox = _Mailbox()
    # aiosmtpd's start() connects to the configured port to check the server is up, so it
    # cannot be given port 0: take a port just released.
    port = closed_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        channel = parse_alert_spec(
            f"smtp://127.0.0.1:{port}?from=monitor@example.org&to=a@example.org,b@example.org"
        )
        assert isinstance(channel, EmailChannel)
        run(channel.deliver(FINDING))
    finally:
        controller.stop()
    ((sender, recipients, content),) = mailbox.messages
    assert sender == "monitor@example.org"
    assert recipients == ["a@example.org", "b@example.org"]
    message = message_from_bytes(content)
    assert message["Subject"].startswith("[pinwarden] UNEXPECTED certificate")
    assert "issuer not allowed by CAA" in message.get_payload()


def test_smtp_server_down_is_a_delivery_error() -> None:
    from tls_support import closed_port

    channel = EmailChannel("127.0.0.1", closed_port(), "a@b.c", ("d@e.f",), timeout=2)
    with pytest.raises(DeliveryError, match="e-mail through"):
        run(channel.deliver(FINDING))


def test_deliver_all_reports_each_channel(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/sh\nexit 1\n")
    bad.chmod(0o755)
    stream = io.StringIO()
    outcome = run(deliver_all([StdoutChannel(stream=stream), HookChannel(bad)], FINDING))
    assert outcome["stdout"] is None
    assert isinstance(outcome[f"hook:{bad}"], DeliveryError)


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("stdout", "stdout"),
        ("json", "stdout-json"),
        ("smtp://mail.example:2525?from=a@x.y&to=b@x.y", "smtp:mail.example:2525:b@x.y"),
        ("smtp://m.example?from=a@x.y&to=z@x.y,b@x.y", "smtp:m.example:25:b@x.y,z@x.y"),
        ("smtps://u:p@m.example?from=a@x.y&to=b@x.y", "smtp:m.example:465:b@x.y"),
    ],
)
def test_alert_specs(spec: str, name: str) -> None:
    assert parse_alert_spec(spec).name == name


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pager", "expected stdout"),
        ("carrier:pigeon", "unknown channel"),
        ("hook:/nonexistent/hook", "not an executable"),
        ("webhook:ftp://x/", "http"),
        ("smtp://mail.example?to=b@x.y", "exactly one from="),
        ("smtp://mail.example:99999?from=a@x.y&to=b@x.y", "bad host or port"),
        ("smtp://u:secret@mail.example?from=a@x.y&to=b@x.y", "needs smtps:// or starttls=1"),
        ("smtp://mail.example?from=a@x.y&to=nobody", "not an e-mail address"),
        ("webhook:http://[::1/x", "not a URL"),
    ],
)
def test_bad_alert_specs(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_alert_spec(spec)


def test_backoff_grows_and_is_capped() -> None:
    assert all(5 <= backoff(0).total_seconds() <= 5 for _ in range(5))
    assert all(backoff(30).total_seconds() <= 3600 for _ in range(50))
    assert max(backoff(10).total_seconds() for _ in range(50)) > 60


def test_webhook_names_do_not_carry_the_secret_url() -> None:
    channel = parse_alert_spec("slack:https://hooks.slack.example/T000/B000/SECRET")
    assert channel.name.startswith("slack:hooks.slack.example#")
    assert "SECRET" not in channel.name
    assert "SECRET" not in repr(channel)
    other = parse_alert_spec("slack:https://hooks.slack.example/T000/B000/OTHER")
    assert other.name != channel.name


def test_smtp_password_is_not_echoed_or_shown() -> None:
    with pytest.raises(InputError) as caught:
        parse_alert_spec("smtp://user:hunter2@mail.example?from=a@x.y")
    assert "hunter2" not in str(caught.value)
    channel = parse_alert_spec("smtp://user:hunter2@m.example?from=a@x.y&to=b@x.y&starttls=1")
    assert "hunter2" not in repr(channel)


def test_plus_in_addresses_is_kept() -> None:
    channel = parse_alert_spec("smtp://m.example?from=ct+mon@x.y&to=alerts+ct@x.y")
    assert isinstance(channel, EmailChannel)
    assert channel.sender == "ct+mon@x.y"
    assert channel.recipients == ("alerts+ct@x.y",)


def test_the_same_channel_twice_is_refused() -> None:
    from pinwarden.ct.alerts import unique_channels

    with pytest.raises(InputError, match="given twice"):
        unique_channels([parse_alert_spec("stdout"), parse_alert_spec("text")])


HOSTILE = AlertEvent(
    9,
    "discovered",
    {
        "names": ["evil\x1b]0;owned\x07.example.com"],
        "issuer": "CN=Rogue\x00CA\r\nBcc: victim@example.org \ud800",
        "verdict": "unexpected",
        "reasons": ["line\nbreak"],
        "id": 1234,
        "event": "forged",
    },
)


def test_hostile_certificate_text_is_escaped_everywhere(tmp_path: Path) -> None:
    line = summary_line(HOSTILE)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in line)
    assert "\\x1b" in line and "\\x00" in line
    env = hook_environment(HOSTILE)
    assert all("\x00" not in v and "\n" not in v and "\r" not in v for v in env.values())
    # The payload cannot override the alert's own id and event.
    assert HOSTILE.to_dict()["id"] == 9
    assert HOSTILE.to_dict()["event"] == "discovered"

    text = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    run(StdoutChannel(stream=text).deliver(HOSTILE))
    out = tmp_path / "env.txt"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\nprintf '%s' \"$ISSUER_DN\" > {out}\n")
    hook.chmod(0o755)
    run(HookChannel(hook).deliver(HOSTILE))
    assert out.read_text().startswith("CN=Rogue\\x00CA\\x0d\\x0aBcc")


def test_unicode_line_breaks_and_bidi_controls_are_escaped() -> None:
    # U+2028/U+2029 split lines for str.splitlines() and many viewers; bidi overrides and
    # isolates reorder what a reader sees ("CN=R3" shown after a forged sentence).
    issuer = "CN=R3\u2028EXPECTED from Let's Encrypt\u2029,O=\u202eliveE\u2066x\u2069\u200f\ufeff"
    event = AlertEvent(1, "discovered", {**FINDING.payload, "issuer": issuer})
    line = summary_line(event)
    assert line.isprintable() and len(line.splitlines()) == 1
    for escape in ("\\u2028", "\\u2029", "\\u202e", "\\u2066", "\\u2069", "\\u200f", "\\ufeff"):
        assert escape in line
    env = hook_environment(event)
    assert env["ISSUER_DN"] == clean(issuer) and env["ISSUER_DN"].isprintable()
    # Printable text, IDN names included, is left as it is.
    assert clean("bücher.example – ok") == "bücher.example – ok"
    assert clean("\U000e0001tag") == "\\U000e0001tag"


@given(st.text())
def test_clean_text_is_one_printable_line(text: str) -> None:
    cleaned = clean(text)
    assert cleaned.isprintable()
    assert len(cleaned.splitlines()) <= 1
    assert cleaned == text or not text.isprintable()


def test_a_cancelled_hook_is_killed_and_reaped(tmp_path: Path) -> None:
    # The monitor cancels a channel still sending when it stops: the hook, in a session
    # of its own that a Ctrl-C never reaches, must not outlive it, nor stay unreaped.
    started = tmp_path / "pid"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho $$ > {started}\nexec sleep 30\n")
    hook.chmod(0o755)

    async def main() -> int:
        task = asyncio.ensure_future(HookChannel(hook).deliver(FINDING))
        while not started.exists() or not started.read_text().strip():
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return int(started.read_text())

    pid = run(main())
    with pytest.raises(ProcessLookupError):  # killed, and reaped: not even a zombie left
        os.kill(pid, 0)


def test_hostile_alert_by_email_is_delivered_with_a_clean_subject() -> None:
    from tls_support import closed_port

    mailbox = _Mailbox()
    port = closed_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        run(EmailChannel("127.0.0.1", port, "m@x.y", ("a@x.y",), timeout=5).deliver(HOSTILE))
    finally:
        controller.stop()
    ((_, _, content),) = mailbox.messages
    message = message_from_bytes(content)
    assert message["Bcc"] is None  # the CR LF in the issuer did not become a header
    assert "\\x0d\\x0aBcc" in message["Subject"]


def test_a_channel_crashing_does_not_hide_the_others(tmp_path: Path) -> None:
    class Broken:
        name = "broken"

        async def deliver(self, event: AlertEvent) -> None:
            raise RuntimeError("boom")

    stream = io.StringIO()
    outcome = run(deliver_all([Broken(), StdoutChannel(stream=stream)], FINDING))
    assert isinstance(outcome["broken"], DeliveryError)
    assert "boom" in str(outcome["broken"])
    assert outcome["stdout"] is None
    assert stream.getvalue()


def test_hook_leaving_a_background_child_is_delivered(tmp_path: Path) -> None:
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\nsleep 20 &\nexit 0\n")
    hook.chmod(0o755)
    run(HookChannel(hook, timeout=5).deliver(FINDING))  # returns at once, no timeout


def test_hook_does_not_inherit_stale_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG", "stale-from-parent")
    monkeypatch.setenv("KEEP_ME", "yes")
    out = tmp_path / "env.txt"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\nenv > {out}\n")
    hook.chmod(0o755)
    run(HookChannel(hook).deliver(FINDING))
    seen = out.read_text()
    assert "LOG=stale-from-parent" not in seen
    assert "KEEP_ME=yes" in seen


def test_starttls_verifies_the_server_certificate(world: Any) -> None:
    """STARTTLS against a local server whose certificate is from the test CA: refused with
    the default trust store, delivered when the CA is trusted."""
    import ssl

    from tls_support import closed_port

    server_context = world.leaf.server_context()
    mailbox = _Mailbox()
    port = closed_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context,
        require_starttls=True,
    )
    controller.start()
    try:
        untrusted = EmailChannel("127.0.0.1", port, "m@x.y", ("a@x.y",), starttls=True, timeout=5)
        with pytest.raises(DeliveryError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
            run(untrusted.deliver(FINDING))
        assert mailbox.messages == []
        trusted = ssl.create_default_context(cadata=world.root.cert_pem.decode())
        trusted.check_hostname = False  # the test leaf is for its own name, not 127.0.0.1
        ok = EmailChannel(
            "127.0.0.1", port, "m@x.y", ("a@x.y",), starttls=True, timeout=5, context=trusted
        )
        run(ok.deliver(FINDING))
    finally:
        controller.stop()
    assert len(mailbox.messages) == 1
