"""The ``--alert`` syntax: :func:`parse_alert_spec` turns one value into a channel, and
:func:`unique_channels` refuses two channels that would share one delivery record.

Separate from :mod:`pinwarden.ct.alerts` so that parsing what a user typed (and never
echoing a password from it) stands apart from delivering; :mod:`pinwarden.ct.alerts`
re-exports both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pinwarden.ct._alert_channels import (
    Channel,
    EmailChannel,
    HookChannel,
    StdoutChannel,
    WebhookChannel,
)
from pinwarden.errors import InputError


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
