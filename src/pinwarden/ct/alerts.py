"""Where the monitor's alerts go: stdout (text or JSON lines), an executable hook, a webhook
(plain JSON or Slack-compatible), and e-mail through SMTP.

Through the store's outbox an alert is queued exactly once and delivered at least once per
channel, across restarts: the monitor commits the finding and its alert in one transaction,
then its dispatcher delivers what is due and records each delivery. A crash between sending
and recording repeats that one alert, with the same ``id`` (``ALERT_ID``), so receivers can
drop repeats. A channel that fails is retried with exponential backoff and jitter until it
succeeds.

The hook's environment follows certspotter's hook variables (EVENT, WATCH_ITEM, DNS_NAMES,
ISSUER_DN, SERIAL, NOT_BEFORE, NOT_AFTER, TBS_SHA256, CERT_SHA256, PUBKEY_SHA256,
CERT_FILENAME, JSON_FILENAME, SUMMARY) plus pinwarden's VERDICT, REASONS, SPKI_PIN and LOGS.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import re
import signal
import smtplib
import ssl
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Protocol, TextIO
from urllib.parse import unquote, urlsplit

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
    "clean",
    "deliver_all",
    "hook_environment",
    "next_attempt",
    "parse_alert_spec",
    "summary_line",
    "unique_channels",
]

EVENT_DISCOVERED = "discovered"
EVENT_MISBEHAVIOUR = "log-misbehaviour"
EVENT_STALLED = "log-stalled"


class DeliveryError(NetworkError):
    """A channel could not deliver an alert now; it will be retried."""


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def clean(text: object) -> str:
    """``text`` on one line, each character that is not printable replaced by its
    ``\\x..`` / ``\\u....`` / ``\\U........`` escape: safe for a terminal, an environment
    variable or an e-mail header. Not printable (``str.isprintable``) covers what a hostile
    certificate could put in an issuer or a name to drive a terminal, split a line or a
    header, reorder what is shown, or crash an encoder: control characters, line and
    paragraph separators, bidi and other format characters, lone surrogates."""
    value = str(text)
    if value.isprintable():
        return value  # the common case, at C speed
    return "".join(c if c.isprintable() else _escape(c) for c in value)


@dataclass(frozen=True)
class AlertEvent:
    """One alert: ``kind`` is ``discovered``, ``log-misbehaviour`` or ``log-stalled``;
    ``payload`` the JSON-ready details (docs/json.md, "ct monitor alerts")."""

    id: int
    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # id and event are the alert's own: a payload cannot override them.
        return {**self.payload, "id": self.id, "event": self.kind}


class Channel(Protocol):
    """Something that delivers alerts. ``name`` keys deliveries in the store's outbox, so it
    must stay the same across restarts for the same destination."""

    @property
    def name(self) -> str: ...

    async def deliver(self, event: AlertEvent) -> None:
        """Deliver ``event`` or raise :class:`DeliveryError`."""


def summary_line(event: AlertEvent) -> str:
    """One human sentence for an alert (stdout, Slack text, e-mail subject), with every
    control character escaped: its parts come from certificates anyone can log."""
    return clean(_summary(event))


def _summary(event: AlertEvent) -> str:
    p = event.payload
    if event.kind == EVENT_DISCOVERED:
        names = ", ".join(str(n) for n in p.get("names", [])[:5]) or "(no names)"
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
        env["DNS_NAMES"] = ",".join(str(n) for n in p["names"])
    if "reasons" in p:
        env["REASONS"] = "; ".join(str(r) for r in p["reasons"])
    if "logs" in p:
        env["LOGS"] = ",".join(f"{entry['log']}#{entry['index']}" for entry in p["logs"])
    # A hook runs without a shell, but its values reach programs that print or parse them:
    # no control characters (a NUL cannot even be passed), one line each.
    return {key: clean(value) for key, value in env.items()}


# Every variable a hook may receive: removed from the inherited environment first, so a hook
# never sees a stale value from the monitor's own environment for a variable its event lacks.
HOOK_VARIABLES = frozenset(
    {
        "EVENT",
        "ALERT_ID",
        "SUMMARY",
        "WATCH_ITEM",
        "ISSUER_DN",
        "SERIAL",
        "NOT_BEFORE",
        "NOT_AFTER",
        "TBS_SHA256",
        "CERT_SHA256",
        "PUBKEY_SHA256",
        "SPKI_PIN",
        "VERDICT",
        "CERT_FILENAME",
        "JSON_FILENAME",
        "LOG",
        "KIND",
        "MESSAGE",
        "DNS_NAMES",
        "REASONS",
        "LOGS",
    }
)


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
        # JSON escapes everything outside ASCII; the summary line has no control characters
        # or surrogates, and what the stream cannot encode is escaped, never an error.
        if self.json_lines:
            line = json.dumps(event.to_dict(), sort_keys=True)
        else:
            encoding = getattr(stream, "encoding", None) or "utf-8"
            line = summary_line(event).encode(encoding, "backslashreplace").decode(encoding)
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError) as exc:
            raise DeliveryError(f"stdout: {exc}") from exc


@dataclass
class HookChannel:
    """Run an executable per alert with :func:`hook_environment`; exit 0 means delivered."""

    path: Path
    timeout: float = 60.0

    @property
    def name(self) -> str:
        return f"hook:{self.path}"

    async def deliver(self, event: AlertEvent) -> None:
        inherited = {k: v for k, v in os.environ.items() if k not in HOOK_VARIABLES}
        env = {**inherited, **hook_environment(event)}
        # stderr goes to a file, not a pipe: a hook that leaves a background child holding
        # a pipe open would look hung although it finished.
        with tempfile.TemporaryFile() as errors:
            try:
                process = await asyncio.create_subprocess_exec(
                    str(self.path),
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=errors,
                    start_new_session=True,
                )
            except (OSError, ValueError) as exc:
                raise DeliveryError(f"hook {self.path} could not be started: {exc}") from exc
            try:
                await asyncio.wait_for(process.wait(), self.timeout)
            except asyncio.TimeoutError:
                await _kill(process)
                raise DeliveryError(f"hook {self.path} ran longer than {self.timeout:g}s") from None
            except asyncio.CancelledError:
                # The monitor is stopping: the hook (in its own session, out of reach of a
                # Ctrl-C) must not outlive it, nor be left unreaped.
                await _kill(process)
                raise
            if process.returncode != 0:
                errors.seek(0)
                lines = errors.read(65536).decode("utf-8", "replace").strip().splitlines()
                detail = clean(lines[-1]) if lines else ""
                raise DeliveryError(
                    f"hook {self.path} exited with status {process.returncode}: {detail}"
                )


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill a hook's process group and reap the hook, even if cancelled meanwhile (the
    wait after SIGKILL is short)."""
    with contextlib.suppress(ProcessLookupError):  # the group is already gone
        os.killpg(process.pid, signal.SIGKILL)
    reaped = asyncio.ensure_future(process.wait())
    cancelled = False
    while not reaped.done():
        try:
            await asyncio.shield(reaped)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


@dataclass
class WebhookChannel:
    """POST each alert as JSON; with ``slack`` the body is ``{"text": summary}`` (Slack,
    Mattermost and compatible incoming webhooks). Any 2xx status means delivered."""

    url: str = field(repr=False)
    slack: bool = False
    timeout: float = 30.0
    transport: httpx.AsyncBaseTransport | None = None

    @property
    def name(self) -> str:
        # A webhook URL is often a secret (Slack's are): the name, kept in the state
        # database and shown in messages, carries its host and a digest, not the URL.
        return f"{'slack' if self.slack else 'webhook'}:{self.redacted}"

    @property
    def redacted(self) -> str:
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:12]
        return f"{urlsplit(self.url).hostname}#{digest}"

    async def deliver(self, event: AlertEvent) -> None:
        body: dict[str, Any] = {"text": summary_line(event)} if self.slack else event.to_dict()
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout, transport=self.transport, follow_redirects=False
            ) as client:
                response = await client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.redacted}: {type(exc).__name__}") from exc
        if not response.is_success:
            raise DeliveryError(f"webhook {self.redacted} answered HTTP {response.status_code}")


@dataclass
class EmailChannel:
    """Send each alert as a plain-text e-mail through an SMTP server."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    implicit_tls: bool = False
    context: ssl.SSLContext | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"smtp:{self.host}:{self.port}:{','.join(sorted(self.recipients))}"

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
        # The server's certificate and name are verified (a default context): login() must
        # not hand the password, nor the alert, to whoever answered.
        context = self.context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.implicit_tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.starttls and not self.implicit_tls:
                smtp.starttls(context=context)
            if self.username is not None:
                smtp.login(self.username, self.password or "")
            refused = smtp.send_message(message)
        if refused:
            # Some recipients were refused: a retry resends to the others too, but a lost
            # alert is worse than a repeated one.
            raise smtplib.SMTPRecipientsRefused(refused)

    async def deliver(self, event: AlertEvent) -> None:
        try:
            await asyncio.to_thread(self._send, self._message(event))
        except (OSError, ValueError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"e-mail through {self.host}:{self.port}: {clean(exc)}") from exc


def parse_alert_spec(spec: str) -> Channel:
    """One ``--alert`` value: ``stdout``, ``json``, ``hook:/path/to/program``,
    ``webhook:https://…``, ``slack:https://…``, or
    ``smtp[s]://[user:password@]host[:port]?from=a@example.com&to=b@example.com[&starttls=1]``
    (a user name needs ``smtps://`` or ``starttls=1``; the server's certificate is verified)."""
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
        # absolute(), not resolve(): the name must stay the same when a symlinked hook is
        # re-pointed, or deliveries queued under the old name would be stranded.
        return HookChannel(path.absolute())
    if scheme in ("webhook", "slack"):
        try:
            parts = urlsplit(rest)
            host = parts.hostname
        except ValueError as exc:
            raise InputError(f"--alert {scheme}:…: not a URL: {exc}") from exc
        if parts.scheme not in ("http", "https") or not host:
            raise InputError(f"--alert {scheme}:…: the webhook must be an http(s) URL")
        return WebhookChannel(rest, slack=scheme == "slack")
    if scheme in ("smtp", "smtps"):
        return _smtp(text)
    raise InputError(f"--alert {spec!r}: unknown channel {scheme!r}")


def _smtp(spec: str) -> EmailChannel:
    shown = re.sub(r"//[^@/]*@", "//…@", spec)  # never echo a password
    try:
        parts = urlsplit(spec)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise InputError(f"--alert {shown!r}: bad host or port: {exc}") from exc
    if not host:
        raise InputError(f"--alert {shown!r}: expected smtp[s]://host[:port]?from=…&to=…")
    query: dict[str, list[str]] = {}
    for pair in filter(None, parts.query.split("&")):
        key, _, value = pair.partition("=")
        # unquote, not unquote_plus: "+" is common in addresses (alerts+ct@example.com).
        query.setdefault(unquote(key), []).append(unquote(value))
    senders = query.get("from", [])
    recipients = tuple(r for value in query.get("to", []) for r in value.split(",") if r)
    if len(senders) != 1 or not recipients:
        raise InputError(f"--alert {shown!r}: give exactly one from= and at least one to=")
    for address in (*senders, *recipients):
        if "@" not in parseaddr(address)[1] or any(c.isspace() for c in address):
            raise InputError(f"--alert {shown!r}: {address!r} is not an e-mail address")
    implicit = parts.scheme == "smtps"
    starttls = query.get("starttls", ["0"])[0] in ("1", "true", "yes")
    if parts.username and not (implicit or starttls):
        raise InputError(
            f"--alert {shown!r}: a user name needs smtps:// or starttls=1 (the password "
            "would cross the network in clear)"
        )
    return EmailChannel(
        host=host,
        port=port or (465 if implicit else 25),
        sender=senders[0],
        recipients=recipients,
        starttls=starttls,
        implicit_tls=implicit,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def unique_channels(channels: Sequence[Channel]) -> tuple[Channel, ...]:
    """``channels`` after checking that no two share a name (the store keys deliveries by
    name, so two would share one record)."""
    seen: set[str] = set()
    for channel in channels:
        if channel.name in seen:
            raise InputError(f"--alert: channel {channel.name} is given twice")
        seen.add(channel.name)
    return tuple(channels)


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
        except Exception as exc:  # one bad alert must not stop the other channels
            return DeliveryError(f"{channel.name}: {type(exc).__name__}: {clean(exc)}")
        return None

    outcomes = await asyncio.gather(*(one(c) for c in channels))
    return {c.name: o for c, o in zip(channels, outcomes, strict=True)}


def next_attempt(now: datetime, attempts: int) -> datetime:
    """When to retry a delivery that failed ``attempts`` times."""
    return now + backoff(attempts)
