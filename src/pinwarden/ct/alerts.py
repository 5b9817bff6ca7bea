"""Where the monitor's alerts go: stdout (text or JSON lines), an executable hook, a webhook
(plain JSON or Slack-compatible), and e-mail through SMTP.

An alert is delivered at least once per channel and, through the store's outbox, exactly once
across restarts: the monitor commits the finding and its alert in one transaction, then the
:class:`Dispatcher` delivers what is due and records each delivery. A channel that fails is
retried with exponential backoff and jitter until it succeeds.

The hook's environment follows certspotter's hook variables (EVENT, WATCH_ITEM, DNS_NAMES,
ISSUER_DN, SERIAL, NOT_BEFORE, NOT_AFTER, TBS_SHA256, CERT_SHA256, PUBKEY_SHA256,
CERT_FILENAME, JSON_FILENAME, SUMMARY) plus pinwarden's VERDICT, REASONS, SPKI_PIN and LOGS.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import smtplib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from pinwarden.errors import InputError, NetworkError

__all__ = [
    "AlertEvent",
    "Channel",
    "DeliveryError",
    "EmailChannel",
    "HookChannel",
    "StdoutChannel",
    "WebhookChannel",
    "backoff",
    "hook_environment",
    "parse_alert_spec",
    "summary_line",
]

EVENT_DISCOVERED = "discovered"
EVENT_MISBEHAVIOUR = "log-misbehaviour"
EVENT_STALLED = "log-stalled"


class DeliveryError(NetworkError):
    """A channel could not deliver an alert now; it will be retried."""


@dataclass(frozen=True)
class AlertEvent:
    """One alert: ``kind`` is ``discovered``, ``log-misbehaviour`` or ``log-stalled``;
    ``payload`` the JSON-ready details (docs/json.md, "ct monitor alerts")."""

    id: int
    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "event": self.kind, **self.payload}


class Channel(Protocol):
    """Something that delivers alerts. ``name`` keys deliveries in the store's outbox, so it
    must stay the same across restarts for the same destination."""

    @property
    def name(self) -> str: ...

    async def deliver(self, event: AlertEvent) -> None:
        """Deliver ``event`` or raise :class:`DeliveryError`."""


def summary_line(event: AlertEvent) -> str:
    """One human sentence for an alert (stdout, Slack text, e-mail subject)."""
    p = event.payload
    if event.kind == EVENT_DISCOVERED:
        names = ", ".join(p.get("names", [])[:5]) or "(no names)"
        more = len(p.get("names", [])) - 5
        if more > 0:
            names += f" (+{more} more)"
        reasons = "; ".join(p.get("reasons", []))
        tail = f": {reasons}" if reasons else ""
        return (
            f"{str(p.get('verdict', '?')).upper()} certificate for {names} "
            f"from {p.get('issuer', '?')} (watch {p.get('watch_item', '?')}){tail}"
        )
    if event.kind == EVENT_MISBEHAVIOUR:
        return (
            f"CT log {p.get('log', '?')} misbehaved ({p.get('kind', '?')}): {p.get('message', '')}"
        )
    if event.kind == EVENT_STALLED:
        return f"CT log {p.get('log', '?')} stalled: {p.get('message', '')}"
    return f"{event.kind}: {json.dumps(dict(p), sort_keys=True)}"


def hook_environment(event: AlertEvent) -> dict[str, str]:
    """The variables a hook receives, beside the monitor's own environment."""
    p = event.payload
    env = {"EVENT": event.kind, "ALERT_ID": str(event.id), "SUMMARY": summary_line(event)}
    simple = {
        "WATCH_ITEM": "watch_item",
        "ISSUER_DN": "issuer",
        "SERIAL": "serial",
        "NOT_BEFORE": "not_before",
        "NOT_AFTER": "not_after",
        "TBS_SHA256": "tbs_sha256",
        "CERT_SHA256": "cert_sha256",
        "PUBKEY_SHA256": "pubkey_sha256",
        "SPKI_PIN": "spki_pin",
        "VERDICT": "verdict",
        "CERT_FILENAME": "cert_file",
        "JSON_FILENAME": "json_file",
        "LOG": "log",
        "KIND": "kind",
        "MESSAGE": "message",
    }
    for variable, key in simple.items():
        value = p.get(key)
        if value is not None:
            env[variable] = str(value)
    if "names" in p:
        env["DNS_NAMES"] = ",".join(p["names"])
    if "reasons" in p:
        env["REASONS"] = "; ".join(p["reasons"])
    if "logs" in p:
        env["LOGS"] = ",".join(f"{entry['log']}#{entry['index']}" for entry in p["logs"])
    # A hook is run without a shell, but values still reach programs that may print them:
    # keep them on one line.
    return {
        k: " ".join(v.split()) if k != "SUMMARY" else v.replace("\n", " ") for k, v in env.items()
    }


def backoff(attempts: int, *, base: float = 5.0, cap: float = 3600.0) -> timedelta:
    """Delay before the next try after ``attempts`` failures: exponential, capped, with
    full jitter so that many alerts failing together do not retry together."""
    ceiling = min(cap, base * (2 ** min(attempts, 20)))
    return timedelta(seconds=random.uniform(base, max(base, ceiling)))


@dataclass
class StdoutChannel:
    """Print each alert: a text line, or a JSON object per line with ``json_lines``."""

    json_lines: bool = False
    stream: TextIO | None = None

    @property
    def name(self) -> str:
        return "stdout-json" if self.json_lines else "stdout"

    async def deliver(self, event: AlertEvent) -> None:
        stream = self.stream or sys.stdout
        if self.json_lines:
            stream.write(json.dumps(event.to_dict(), sort_keys=True) + "\n")
        else:
            stream.write(summary_line(event) + "\n")
        stream.flush()


@dataclass
class HookChannel:
    """Run an executable per alert with :func:`hook_environment`; exit 0 means delivered."""

    path: Path
    timeout: float = 60.0

    @property
    def name(self) -> str:
        return f"hook:{self.path}"

    async def deliver(self, event: AlertEvent) -> None:
        env = {**os.environ, **hook_environment(event)}
        try:
            process = await asyncio.create_subprocess_exec(
                str(self.path),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise DeliveryError(f"hook {self.path} could not be started: {exc}") from exc
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), self.timeout)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            raise DeliveryError(f"hook {self.path} ran longer than {self.timeout:g}s") from None
        if process.returncode != 0:
            detail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise DeliveryError(
                f"hook {self.path} exited with status {process.returncode}: {detail[0]}"
            )


@dataclass
class WebhookChannel:
    """POST each alert as JSON; with ``slack`` the body is ``{"text": summary}`` (Slack,
    Mattermost and compatible incoming webhooks). Any 2xx status means delivered."""

    url: str
    slack: bool = False
    timeout: float = 30.0
    transport: httpx.AsyncBaseTransport | None = None

    @property
    def name(self) -> str:
        return f"{'slack' if self.slack else 'webhook'}:{self.url}"

    async def deliver(self, event: AlertEvent) -> None:
        body: dict[str, Any] = {"text": summary_line(event)} if self.slack else event.to_dict()
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout, transport=self.transport, follow_redirects=False
            ) as client:
                response = await client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.url}: {exc}") from exc
        if not response.is_success:
            raise DeliveryError(f"webhook {self.url} answered HTTP {response.status_code}")


@dataclass
class EmailChannel:
    """Send each alert as a plain-text e-mail through an SMTP server."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0

    @property
    def name(self) -> str:
        return f"smtp:{self.host}:{self.port}:{','.join(self.recipients)}"

    def _message(self, event: AlertEvent) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = "[pinwarden] " + summary_line(event)[:200]
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(
            summary_line(event) + "\n\n" + json.dumps(event.to_dict(), indent=2, sort_keys=True)
        )
        return message

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username is not None:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)

    async def deliver(self, event: AlertEvent) -> None:
        try:
            await asyncio.to_thread(self._send, self._message(event))
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"e-mail through {self.host}:{self.port}: {exc}") from exc


def parse_alert_spec(spec: str) -> Channel:
    """One ``--alert`` value: ``stdout``, ``json``, ``hook:/path/to/program``,
    ``webhook:https://…``, ``slack:https://…``, or
    ``smtp://[user:password@]host[:port]?from=a@example.com&to=b@example.com[&starttls=1]``."""
    text = spec.strip()
    if text in ("stdout", "text"):
        return StdoutChannel()
    if text in ("json", "stdout-json"):
        return StdoutChannel(json_lines=True)
    scheme, sep, rest = text.partition(":")
    if not sep:
        raise InputError(
            f"--alert {spec!r}: expected stdout, json, hook:, webhook:, slack: or smtp://"
        )
    if scheme == "hook":
        path = Path(rest).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise InputError(f"--alert {spec!r}: {path} is not an executable file")
        return HookChannel(path.resolve())
    if scheme in ("webhook", "slack"):
        parts = urlsplit(rest)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"--alert {spec!r}: the webhook must be an http(s) URL")
        return WebhookChannel(rest, slack=scheme == "slack")
    if scheme in ("smtp", "smtps"):
        return _smtp(spec)
    raise InputError(f"--alert {spec!r}: unknown channel {scheme!r}")


def _smtp(spec: str) -> EmailChannel:
    parts = urlsplit(spec)
    if parts.scheme != "smtp" or not parts.hostname:
        raise InputError(f"--alert {spec!r}: expected smtp://host[:port]?from=…&to=…")
    query = parse_qs(parts.query)
    senders = query.get("from", [])
    recipients = tuple(r for value in query.get("to", []) for r in value.split(",") if r)
    if len(senders) != 1 or not recipients:
        raise InputError(f"--alert {spec!r}: give exactly one from= and at least one to=")
    try:
        port = parts.port or 25
    except ValueError as exc:
        raise InputError(f"--alert {spec!r}: bad port") from exc
    return EmailChannel(
        host=parts.hostname,
        port=port,
        sender=senders[0],
        recipients=recipients,
        starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


async def deliver_all(
    channels: Sequence[Channel], event: AlertEvent
) -> dict[str, DeliveryError | None]:
    """Try ``event`` on every channel at once; the result maps channel name to its error
    (``None`` when delivered)."""

    async def one(channel: Channel) -> DeliveryError | None:
        try:
            await channel.deliver(event)
        except DeliveryError as exc:
            return exc
        return None

    outcomes = await asyncio.gather(*(one(c) for c in channels))
    return {c.name: o for c, o in zip(channels, outcomes, strict=True)}


def next_attempt(now: datetime, attempts: int) -> datetime:
    """When to retry a delivery that failed ``attempts`` times."""
    return now + backoff(attempts)
