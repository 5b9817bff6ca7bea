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
import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from pinwarden.ct._alert_channels import (
    Channel,
    DeliveryError,
    EmailChannel,
    HookChannel,
    StdoutChannel,
    WebhookChannel,
)
from pinwarden.ct._alert_spec import parse_alert_spec, unique_channels
from pinwarden.ct._alert_text import (
    EVENT_DISCOVERED as EVENT_DISCOVERED,
)
from pinwarden.ct._alert_text import (
    EVENT_MISBEHAVIOUR as EVENT_MISBEHAVIOUR,
)
from pinwarden.ct._alert_text import (
    EVENT_STALLED as EVENT_STALLED,
)
from pinwarden.ct._alert_text import (
    HOOK_VARIABLES as HOOK_VARIABLES,
)
from pinwarden.ct._alert_text import (
    AlertEvent,
    clean,
    hook_environment,
    summary_line,
)

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


def backoff(attempts: int, *, base: float = 5.0, cap: float = 3600.0) -> timedelta:
    """Delay before the next try after ``attempts`` failures: exponential, capped, with
    full jitter so that many alerts failing together do not retry together."""
    ceiling = min(cap, base * (2 ** min(attempts, 20)))
    return timedelta(seconds=random.uniform(base, max(base, ceiling)))


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
