"""The channels an alert is delivered through: stdout (text or JSON lines), an
executable hook, a webhook (plain JSON or Slack-compatible), and e-mail through SMTP.

Separate from :mod:`pinwarden.ct.alerts` so that each channel's transport stands apart
from the ``--alert`` syntax and the retry policy; :mod:`pinwarden.ct.alerts` re-exports
the public names.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import smtplib
import ssl
import sys
import tempfile
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol, TextIO
from urllib.parse import urlsplit

import httpx

from pinwarden.ct._alert_text import (
    HOOK_VARIABLES,
    AlertEvent,
    clean,
    hook_environment,
    summary_line,
)
from pinwarden.errors import NetworkError


class DeliveryError(NetworkError):
    """A channel could not deliver an alert now; it will be retried."""


class Channel(Protocol):
    """Something that delivers alerts. ``name`` keys deliveries in the store's outbox, so it
    must stay the same across restarts for the same destination."""

    @property
    def name(self) -> str: ...

    async def deliver(self, event: AlertEvent) -> None:
        """Deliver ``event`` or raise :class:`DeliveryError`."""


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
